/*
 * certsync (internal): an ACME client (RFC 8555), the acme provider's core.
 *
 *   cs_acme_jws.c    base64url, the account's JWK and its thumbprint (RFC 7638),
 *                    JWS signing (ES256, ES384, RS256), key authorizations
 *   cs_acme.c        the protocol: directory, nonces, signed POSTs, problem
 *                    documents, the account
 *   cs_acme_order.c  one issuance: order, authorizations, http-01, finalize,
 *                    download; the order in progress kept in the store
 *
 * Account and orders live in <store>/acme/<provider>/ (0700; keys 0600), read
 * and written through descriptors of the store, never by path. A challenge
 * type is one row of a table (cs_acme_order.c), so dns-01 and tls-alpn-01
 * slot in beside http-01.
 */
#ifndef CS_ACME_H
#define CS_ACME_H

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <time.h>

#include "cs_bundle.h"
#include "cs_config.h"
#include "cs_http.h"
#include "cs_store.h"

/* ---- cs_acme_jws.c ---- */

/* base64url without padding (RFC 7515 section 2), malloc'd. */
char *cs_acme_b64url(const unsigned char *data, size_t len);

/* The public JWK of key (EC P-256/P-384 or RSA), members in RFC 7638 order. */
cs_rc cs_acme_jwk(EVP_PKEY *key, json_t **out);

/* base64url(SHA-256(the JWK's canonical JSON)), RFC 7638 (43 characters + NUL). */
cs_rc cs_acme_thumbprint(EVP_PKEY *key, char out[64]);

/* token "." thumbprint (RFC 8555 section 8.1), malloc'd into *out. */
cs_rc cs_acme_key_authorization(const char *token, EVP_PKEY *key, char **out);

/* "ES256", "ES384" or "RS256" for the account key; NULL for another kind. */
const char *cs_acme_alg(EVP_PKEY *key);

/*
 * A flattened JWS (RFC 8555 section 6.2): protected {alg, nonce, url, and kid
 * or (kid NULL) jwk}; payload NULL is POST-as-GET (""). *out is malloc'd.
 */
cs_rc cs_acme_jws(EVP_PKEY *key, const char *kid, const char *nonce, const char *url,
                  const char *payload, char **out);

/* base64url (or base64) text into at most size bytes; the length, or -1 when malformed. */
long cs_acme_b64url_decode(const char *s, unsigned char *out, size_t size);

/*
 * The externalAccountBinding of a newAccount (RFC 8555 7.3.4): an HS256 JWS
 * with the CA-given key id and MAC key over the account's public JWK.
 */
cs_rc cs_acme_eab(EVP_PKEY *account, const char *eab_kid, const unsigned char *mac, size_t mac_len,
                  const char *url, json_t **out);

/* ---- cs_acme.c ---- */

typedef struct cs_acme cs_acme;

/* A client for provider pv over the store s (borrowed; both outlive it). */
cs_rc cs_acme_new(const cs_provider_conf *pv, cs_store *s, cs_acme **out);
void cs_acme_free(cs_acme *a);

/* Fetch the directory and find or create the account (once per handle). */
cs_rc cs_acme_ready(cs_acme *a);

/*
 * A signed POST to url (payload NULL: POST-as-GET) with the account's kid
 * (or its jwk before it has one). A badNonce is retried with the fresh
 * nonce. On an error status the problem document becomes the error (what,
 * e.g. "authorization of 'a.example'", says what was asked). *json is the
 * parsed answer when it is JSON (NULL otherwise); resp keeps the raw one. On
 * a failure resp holds only the HTTP status (0: no answer).
 */
cs_rc cs_acme_post(cs_acme *a, const char *url, const char *payload, const char *what,
                   json_t **json, cs_http_response *resp);

/* The account key, the directory's URL of a resource ("newOrder"), the provider. */
EVP_PKEY *cs_acme_account_key(const cs_acme *a);
const char *cs_acme_resource(const cs_acme *a, const char *name);
const cs_provider_conf *cs_acme_provider(const cs_acme *a);
cs_store *cs_acme_store(const cs_acme *a);

/* Requests sent through this handle (for the issuance report and the benchmark). */
unsigned cs_acme_requests(const cs_acme *a);

/* <store>/acme/<provider>, private (0700); the caller closes *fd. */
cs_rc cs_acme_area(cs_acme *a, int *fd);

/*
 * revokeCert (RFC 8555 7.6) for leaf, signed by the account key; reason an RFC
 * 5280 code, or < 0 for none.
 */
cs_rc cs_acme_revoke(cs_acme *a, X509 *leaf, int reason);

/* Seconds a Retry-After header asks for (delta or HTTP date); dflt when none. */
long cs_acme_retry_after(const char *header, long dflt);

/* An unsigned GET (renewalInfo); resp as cs_acme_post's. */
cs_rc cs_acme_get(cs_acme *a, const char *url, cs_http_response *resp);

/* The directory, fetched once per handle (no account needed). */
cs_rc cs_acme_directory(cs_acme *a);

/* ---- cs_acme_ari.c (RFC 9773) ---- */

typedef struct {
    time_t start, end;
} cs_acme_window;

/* base64url(AKI keyIdentifier) "." base64url(serial's DER content octets); malloc'd. */
cs_rc cs_acme_ari_cert_id(X509 *leaf, char **out);

/* An RFC 3339 time ("2025-01-02T04:00:00Z", fractions, offsets) as Unix time. */
cs_rc cs_acme_rfc3339(const char *text, time_t *t);

/* The suggestedWindow of a renewalInfo answer. */
cs_rc cs_acme_ari_window(const char *json, size_t len, cs_acme_window *w);

/* The time in w at fraction r (0 <= r < 1): a uniformly random r spreads renewals. */
time_t cs_acme_ari_pick(const cs_acme_window *w, double r);

/*
 * The CA's renewal information says leaf (cert's current version) is due at
 * now: the time picked in its suggested window has come (*reason says so). 0
 * when the directory offers no renewalInfo or the CA does not answer.
 */
int cs_acme_ari_due(cs_acme *a, const char *cert, X509 *leaf, time_t now, char *reason,
                    size_t size);

/* ---- cs_acme_chain.c ---- */

/* The URLs of the rel="alternate" entries of Link header values (at most max). */
size_t cs_acme_alternates(const char *links, char urls[][1024], size_t max);

/* The PEM chain's topmost certificate is issued by (or is) the CA named issuer_cn. */
int cs_acme_chain_from(const char *pem, size_t len, const char *issuer_cn);

/* ---- cs_acme_alpn.c (RFC 8737) ---- */

/* A self-signed certificate for domain with the acmeIdentifier of ka, and its key (PEM). */
cs_rc cs_acme_alpn_cert(const char *domain, const char *ka, char **pem);

/* It goes to the store's challenges/<domain>/acme-tls-alpn/validation.pem, and away. */
cs_rc cs_acme_alpn_publish(cs_acme *a, const char *domain, const char *token, const char *ka);
void cs_acme_alpn_withdraw(cs_acme *a, const char *domain, const char *token);

/* ---- cs_acme_dns.c ---- */

/* Publish the dns-01 TXT record of domain's token; _ready waits until it is visible. */
cs_rc cs_acme_dns01_publish(cs_acme *a, const char *domain, const char *token, const char *ka);
cs_rc cs_acme_dns01_ready(cs_acme *a, const char *domain, const char *token);

/* Remove it (errors are dropped: the caller restores its own). */
void cs_acme_dns01_withdraw(cs_acme *a, const char *domain, const char *token);

/* ---- cs_acme_order.c ---- */

/*
 * Obtain a certificate for cc's names: resume the order kept in the store
 * when there is one for the same names, else place a new one. *b is owned by
 * the caller.
 */
cs_rc cs_acme_issue(cs_acme *a, const cs_cert_conf *cc, cs_bundle **b);

/* An order of cc's is in progress in the store (a crash or failure left it). */
int cs_acme_order_pending(cs_acme *a, const cs_cert_conf *cc);

#endif
