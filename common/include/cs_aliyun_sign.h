/*
 * certsync: request signing for Alibaba Cloud RPC APIs (reference §4).
 *
 * v3, ACS3-HMAC-SHA256 (default): a canonical request over the method, "/",
 * the sorted RFC 3986-encoded query, the host/content-type/x-acs-* headers
 * and the body's SHA-256; signature = hex HMAC-SHA256(secret, string to sign).
 * v1, HMAC-SHA1 (compatibility): the sorted encoded parameters,
 * METHOD&%2F&encode(query); signature = base64 HMAC-SHA1(secret + "&", ...).
 */
#ifndef CS_ALIYUN_SIGN_H
#define CS_ALIYUN_SIGN_H

#include <stddef.h>

#include "cs_error.h"

/*
 * An ordered list of name/value pairs (parameters or headers). A failed
 * cs_kv_set marks the list: signing and sending it then fail, so a request
 * never goes out with a parameter missing, whether or not the caller checked.
 */
typedef struct {
    char **names;
    char **values;
    size_t n;
    int failed;
} cs_kv;

void cs_kv_init(cs_kv *kv);
/* Add or replace name (headers: give lower-case names). */
cs_rc cs_kv_set(cs_kv *kv, const char *name, const char *value);
const char *cs_kv_get(const cs_kv *kv, const char *name);
void cs_kv_clear(cs_kv *kv);

/* RFC 3986 encoding: unreserved A-Z a-z 0-9 - _ . ~ kept, the rest %XY. */
char *cs_percent_encode(const char *s);

/* "a=1&b=2" of the encoded pairs sorted by encoded name (byte order). */
char *cs_canonical_query(const cs_kv *params);

typedef struct {
    char *canonical; /* v3: the canonical request; v1: the canonicalized query */
    char *string_to_sign;
    char *signature;      /* v3: lower hex; v1: base64 */
    char *signed_headers; /* v3 only */
    char *authorization;  /* v3 only: the Authorization header value */
} cs_signature;

void cs_signature_clear(cs_signature *s);

/*
 * v1: params holds every parameter but Signature (Action, Version, Format,
 * AccessKeyId, SignatureMethod, SignatureVersion, SignatureNonce, Timestamp,
 * SecurityToken, ...).
 */
cs_rc cs_sign_v1(const char *method, const cs_kv *params, const char *secret, cs_signature *out);

/*
 * v3: headers holds host, x-acs-action, x-acs-version, x-acs-date,
 * x-acs-signature-nonce, x-acs-content-sha256, content-type if a body is
 * sent, x-acs-accesskey-id / x-acs-security-token with STS (lower-case
 * names). query holds the query parameters.
 */
cs_rc cs_sign_v3(const char *method, const cs_kv *query, const cs_kv *headers,
                 const char *access_key_id, const char *secret, cs_signature *out);

/* Lower-hex SHA-256 of data (65 bytes with NUL). */
void cs_sha256_hex(const void *data, size_t len, char out[65]);

#endif
