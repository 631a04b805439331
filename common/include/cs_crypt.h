/*
 * certsync: key generation and certificate issuance (OpenSSL). Used by the
 * local CA, the servers' self-signed fallback, and the tests.
 */
#ifndef CS_CRYPT_H
#define CS_CRYPT_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <time.h>

#include "cs_error.h"

typedef enum {
    CS_KEY_RSA2048,
    CS_KEY_RSA3072,
    CS_KEY_RSA4096,
    CS_KEY_EC256,
    CS_KEY_EC384,
} cs_key_type;

/* Parse "rsa2048", "rsa3072", "rsa4096", "ec256"/"p256", "ec384"/"p384". */
cs_rc cs_key_type_parse(const char *s, cs_key_type *out);
const char *cs_key_type_name(cs_key_type t);

cs_rc cs_key_generate(cs_key_type type, EVP_PKEY **out);

typedef struct {
    const char *common_name;  /* subject CN */
    const char *const *names; /* DNS SANs (may be NULL for a CA) */
    size_t n_names;
    int is_ca;
    time_t not_before;
    time_t not_after;
} cs_cert_spec;

/*
 * Issue a certificate for pubkey, signed by issuer/issuer_key; with issuer
 * NULL it is self-signed by issuer_key (which must then be pubkey's pair).
 */
cs_rc cs_cert_issue(const cs_cert_spec *spec, EVP_PKEY *pubkey, X509 *issuer, EVP_PKEY *issuer_key,
                    X509 **out);

#endif
