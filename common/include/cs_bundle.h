/*
 * certsync: a certificate bundle (leaf, issuers in order, private key).
 *
 * Loading accepts PEM or DER, keys as PKCS#1, SEC1 or PKCS#8 (optionally
 * encrypted PKCS#8 with a password), and a "full chain" in any order: the
 * leaf is the certificate whose public key matches the key, the issuers are
 * put in order behind it by following signatures.
 */
#ifndef CS_BUNDLE_H
#define CS_BUNDLE_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <time.h>

#include "cs_error.h"

typedef struct cs_bundle cs_bundle;

/*
 * Load from files. cert_path holds the leaf and maybe its issuers; chain_path
 * (may be NULL) holds more issuers; key_password_file (may be NULL) holds the
 * password of an encrypted key on its first line.
 */
cs_rc cs_bundle_load_files(const char *cert_path, const char *key_path, const char *chain_path,
                           const char *key_password_file, cs_bundle **out);

/*
 * Load from memory. certs holds the leaf and any issuers (PEM); key is a PEM
 * private key. origin names the source in errors ("response of GetUserCertificateDetail").
 */
cs_rc cs_bundle_load_pem(const char *certs, size_t certs_len, const char *key, size_t key_len,
                         const char *origin, cs_bundle **out);

/* Build from objects; references are taken (up-ref'd), the caller keeps its own. */
cs_rc cs_bundle_new(X509 *leaf, STACK_OF(X509) * issuers, EVP_PKEY *key, cs_bundle **out);

void cs_bundle_free(cs_bundle *b);

/*
 * Validate: key matches leaf (done at load), at most 10 issuers (a longer
 * chain, or an input over 64 KiB, is refused at load too), issuers link with verified
 * signatures, every certificate is inside its validity window at `now`, and
 * the leaf covers every name in names (SAN dNSName rules, one wildcard label).
 * origin names the source in the error sentence.
 */
cs_rc cs_bundle_validate(const cs_bundle *b, const char *const *names, size_t n_names, time_t now,
                         const char *origin);

/*
 * Verify that leaf and issuers chain to a trusted root for TLS server use:
 * the PEM roots in ca_file, or the system's store when ca_file is NULL (dates
 * are not checked here: cs_bundle_validate does). For
 * certificates picked from a service; an operator's own import is not checked.
 */
cs_rc cs_bundle_verify_trust(const cs_bundle *b, const char *ca_file, const char *origin);

/* Borrowed: valid while b lives (up-ref what you keep longer). */
X509 *cs_bundle_leaf(const cs_bundle *b);
STACK_OF(X509) * cs_bundle_issuers(const cs_bundle *b);
EVP_PKEY *cs_bundle_key(const cs_bundle *b);

/* Lower-case hex SHA-256 of the leaf's DER (64 chars + NUL). */
void cs_bundle_fingerprint(const cs_bundle *b, char out[65]);

/* Upper-case hex serial of the leaf, "" on failure. */
void cs_bundle_serial(const cs_bundle *b, char *out, size_t size);

/* notBefore / notAfter of the leaf as Unix time. */
time_t cs_bundle_not_before(const cs_bundle *b);
time_t cs_bundle_not_after(const cs_bundle *b);

/*
 * The leaf's DNS names (SAN, else CN); owned: a NULL-terminated array for cs_strv_free.
 * NULL (and *count 0) when out of memory.
 */
char **cs_bundle_names(const cs_bundle *b, size_t *count);
void cs_strv_free(char **v);

/* PEM encodings (malloc'd, NUL-terminated). */
cs_rc cs_bundle_pem_leaf(const cs_bundle *b, char **pem, size_t *len);
cs_rc cs_bundle_pem_issuers(const cs_bundle *b, char **pem, size_t *len);
cs_rc cs_bundle_pem_key(const cs_bundle *b, char **pem, size_t *len); /* PKCS#8, clear */

/* 1 if the X509's public key and the key are one pair. */
int cs_key_matches_cert(EVP_PKEY *key, X509 *cert);

#endif
