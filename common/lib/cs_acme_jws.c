/* ACME's JOSE: base64url, JWK, its RFC 7638 thumbprint, flattened JWS, key authorizations. */
#include "cs_acme.h"

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/hmac.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

char *cs_acme_b64url(const unsigned char *data, size_t len)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *out = malloc(len / 3 * 4 + 5), *o = out;
    size_t i;

    if (out == NULL)
        return NULL;
    for (i = 0; i + 2 < len; i += 3) {
        unsigned v = (unsigned)data[i] << 16 | (unsigned)data[i + 1] << 8 | data[i + 2];

        *o++ = abc[v >> 18 & 63];
        *o++ = abc[v >> 12 & 63];
        *o++ = abc[v >> 6 & 63];
        *o++ = abc[v & 63];
    }
    if (len - i == 1) {
        *o++ = abc[data[i] >> 2];
        *o++ = abc[(data[i] & 3) << 4];
    } else if (len - i == 2) {
        unsigned v = (unsigned)data[i] << 8 | data[i + 1];

        *o++ = abc[v >> 10 & 63];
        *o++ = abc[v >> 4 & 63];
        *o++ = abc[(v & 15) << 2];
    }
    *o = '\0';
    return out;
}

/* A big number as base64url, left-padded with zeros to width bytes (0: as is). */
static json_t *b64_bn(EVP_PKEY *key, const char *param, int width)
{
    unsigned char buf[1024];
    BIGNUM *bn = NULL;
    json_t *j = NULL;
    int n;
    char *s;

    if (!EVP_PKEY_get_bn_param(key, param, &bn))
        return NULL;
    n = width ? width : BN_num_bytes(bn);
    if (n <= (int)sizeof(buf) && BN_bn2binpad(bn, buf, n) == n &&
        (s = cs_acme_b64url(buf, (size_t)n))) {
        j = json_string(s);
        free(s);
    }
    BN_free(bn);
    return j;
}

/* The coordinate size of an EC key (32 for P-256), 0 for another curve. */
static int ec_size(EVP_PKEY *key, const char **crv)
{
    char name[64];

    if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof(name), NULL))
        return 0;
    if (strcmp(name, "prime256v1") == 0 || strcmp(name, "P-256") == 0) {
        *crv = "P-256";
        return 32;
    }
    if (strcmp(name, "secp384r1") == 0 || strcmp(name, "P-384") == 0) {
        *crv = "P-384";
        return 48;
    }
    return 0;
}

const char *cs_acme_alg(EVP_PKEY *key)
{
    const char *crv;

    if (EVP_PKEY_is_a(key, "RSA"))
        return "RS256";
    if (EVP_PKEY_is_a(key, "EC"))
        switch (ec_size(key, &crv)) {
        case 32:
            return "ES256";
        case 48:
            return "ES384";
        }
    return NULL;
}

cs_rc cs_acme_jwk(EVP_PKEY *key, json_t **out)
{
    const char *crv = NULL;
    json_t *j = NULL;
    int w;

    /* json_pack keeps insertion order with JSON_PRESERVE_ORDER: RFC 7638's lexicographic one */
    if (EVP_PKEY_is_a(key, "RSA"))
        j = json_pack("{s:o,s:s,s:o}", "e", b64_bn(key, OSSL_PKEY_PARAM_RSA_E, 0), "kty", "RSA",
                      "n", b64_bn(key, OSSL_PKEY_PARAM_RSA_N, 0));
    else if (EVP_PKEY_is_a(key, "EC") && (w = ec_size(key, &crv)) > 0)
        j = json_pack("{s:s,s:s,s:o,s:o}", "crv", crv, "kty", "EC", "x",
                      b64_bn(key, OSSL_PKEY_PARAM_EC_PUB_X, w), "y",
                      b64_bn(key, OSSL_PKEY_PARAM_EC_PUB_Y, w));
    else
        return cs_error_set(CS_EINVAL, "the ACME account key is neither RSA nor EC P-256/P-384");
    if (j == NULL) {
        json_decref(j);
        return cs_error_set(CS_ERR, "cannot export the ACME account's public key");
    }
    *out = j;
    return CS_OK;
}

static char *sha256_b64(const char *data, size_t len)
{
    unsigned char md[32];

    if (!EVP_Digest(data, len, md, NULL, EVP_sha256(), NULL))
        return NULL;
    return cs_acme_b64url(md, sizeof(md));
}

cs_rc cs_acme_thumbprint(EVP_PKEY *key, char out[64])
{
    json_t *jwk;
    char *text, *b;

    if (cs_acme_jwk(key, &jwk) != CS_OK)
        return cs_error_code();
    text = json_dumps(jwk, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(jwk);
    b = text ? sha256_b64(text, strlen(text)) : NULL;
    free(text);
    if (b == NULL)
        return cs_error_set(CS_ENOMEM, "cannot compute the ACME account's thumbprint");
    snprintf(out, 64, "%s", b);
    free(b);
    return CS_OK;
}

cs_rc cs_acme_key_authorization(const char *token, EVP_PKEY *key, char **out)
{
    char tp[64];

    if (cs_acme_thumbprint(key, tp) != CS_OK)
        return cs_error_code();
    if (asprintf(out, "%s.%s", token, tp) < 0)
        return cs_error_set(CS_ENOMEM, "out of memory");
    return CS_OK;
}

/* An ECDSA DER signature as JWS wants it: r and s, each width bytes (RFC 7518 3.4). */
static int ecdsa_raw(const unsigned char *der, size_t len, int width, unsigned char *raw)
{
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &der, (long)len);
    int ok;

    if (sig == NULL)
        return 0;
    ok = BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, width) == width &&
         BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + width, width) == width;
    ECDSA_SIG_free(sig);
    return ok;
}

/* base64url of the signature over input. */
static char *sign(EVP_PKEY *key, const char *input)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    const char *crv, *alg = cs_acme_alg(key);
    unsigned char *der = NULL, raw[96];
    size_t len = 0;
    char *out = NULL;
    int w = EVP_PKEY_is_a(key, "EC") ? ec_size(key, &crv) : 0;

    if (ctx && alg &&
        EVP_DigestSignInit(ctx, NULL, strcmp(alg, "ES384") == 0 ? EVP_sha384() : EVP_sha256(), NULL,
                           key) == 1 &&
        EVP_DigestSign(ctx, NULL, &len, (const unsigned char *)input, strlen(input)) == 1 &&
        (der = malloc(len)) &&
        EVP_DigestSign(ctx, der, &len, (const unsigned char *)input, strlen(input)) == 1) {
        if (w == 0)
            out = cs_acme_b64url(der, len);
        else if (ecdsa_raw(der, len, w, raw))
            out = cs_acme_b64url(raw, (size_t)w * 2);
    }
    free(der);
    EVP_MD_CTX_free(ctx);
    return out;
}

static char *b64_text(const char *s)
{
    return cs_acme_b64url((const unsigned char *)s, strlen(s));
}

static json_t *protected_header(EVP_PKEY *key, const char *kid, const char *nonce, const char *url)
{
    json_t *h = json_pack("{s:s,s:s,s:s}", "alg", cs_acme_alg(key), "nonce", nonce, "url", url);
    json_t *jwk = NULL;

    if (h && kid)
        json_object_set_new(h, "kid", json_string(kid));
    else if (h && cs_acme_jwk(key, &jwk) == CS_OK)
        json_object_set_new(h, "jwk", jwk);
    else {
        json_decref(h);
        h = NULL;
    }
    return h;
}

cs_rc cs_acme_jws(EVP_PKEY *key, const char *kid, const char *nonce, const char *url,
                  const char *payload, char **out)
{
    json_t *h, *jws = NULL;
    char *ht = NULL, *hb = NULL, *pb = NULL, *input = NULL, *sig = NULL;

    if (cs_acme_alg(key) == NULL)
        return cs_error_set(CS_EINVAL, "the ACME account key is neither RSA nor EC P-256/P-384");
    h = protected_header(key, kid, nonce, url);
    if (h && (ht = json_dumps(h, JSON_COMPACT)) && (hb = b64_text(ht)) &&
        (pb = b64_text(payload ? payload : "")) && asprintf(&input, "%s.%s", hb, pb) >= 0 &&
        (sig = sign(key, input)))
        jws = json_pack("{s:s,s:s,s:s}", "protected", hb, "payload", pb, "signature", sig);
    *out = jws ? json_dumps(jws, JSON_COMPACT) : NULL;
    json_decref(h);
    json_decref(jws);
    free(ht);
    free(hb);
    free(pb);
    free(input);
    free(sig);
    if (*out == NULL)
        return cs_error_set(CS_ERR, "cannot sign the ACME request to %s: %s", url,
                            cs_error_openssl());
    return CS_OK;
}

/* base64url (or standard base64) text, padded or not, into bytes; -1 on a bad character. */
long cs_acme_b64url_decode(const char *s, unsigned char *out, size_t size)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned acc = 0, bits = 0;
    size_t n = 0;

    for (; *s && *s != '='; s++) {
        const char c = *s == '+' ? '-' : *s == '/' ? '_' : *s;
        const char *p = c ? strchr(abc, c) : NULL;

        if (p == NULL || n >= size)
            return -1;
        acc = (acc << 6 | (unsigned)(p - abc)) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    return (long)n;
}

cs_rc cs_acme_eab(EVP_PKEY *account, const char *eab_kid, const unsigned char *mac, size_t mac_len,
                  const char *url, json_t **out)
{
    json_t *h = json_pack("{s:s,s:s,s:s}", "alg", "HS256", "kid", eab_kid, "url", url), *jwk = NULL;
    char *ht = NULL, *jt = NULL, *hb = NULL, *pb = NULL, *input = NULL, *sig = NULL;
    unsigned char md[32];
    unsigned mdlen = 0;

    *out = NULL;
    /* RFC 8555 7.3.4: an HS256 JWS over the account's public JWK, with the CA's key id */
    if (h && cs_acme_jwk(account, &jwk) == CS_OK && (ht = json_dumps(h, JSON_COMPACT)) &&
        (jt = json_dumps(jwk, JSON_COMPACT)) && (hb = b64_text(ht)) && (pb = b64_text(jt)) &&
        asprintf(&input, "%s.%s", hb, pb) >= 0 &&
        HMAC(EVP_sha256(), mac, (int)mac_len, (const unsigned char *)input, strlen(input), md,
             &mdlen) &&
        (sig = cs_acme_b64url(md, mdlen)))
        *out = json_pack("{s:s,s:s,s:s}", "protected", hb, "payload", pb, "signature", sig);
    json_decref(h);
    json_decref(jwk);
    free(ht);
    free(jt);
    free(hb);
    free(pb);
    free(input);
    free(sig);
    if (*out == NULL)
        return cs_error_set(CS_ERR, "cannot make the external account binding: %s",
                            cs_error_openssl());
    return CS_OK;
}
