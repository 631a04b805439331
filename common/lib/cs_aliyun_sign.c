#include "cs_aliyun_sign.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cs_kv_init(cs_kv *kv)
{
    memset(kv, 0, sizeof(*kv));
}

static cs_rc kv_failed(cs_kv *kv)
{
    kv->failed = 1;
    return cs_error_set(CS_ENOMEM, "out of memory");
}

cs_rc cs_kv_set(cs_kv *kv, const char *name, const char *value)
{
    char **nn, **nv, *v;
    size_t i;

    for (i = 0; i < kv->n; i++)
        if (strcmp(kv->names[i], name) == 0) {
            if ((v = strdup(value)) == NULL)
                return kv_failed(kv);
            free(kv->values[i]);
            kv->values[i] = v;
            return CS_OK;
        }
    nn = realloc(kv->names, (kv->n + 1) * sizeof(char *));
    if (nn)
        kv->names = nn;
    nv = nn ? realloc(kv->values, (kv->n + 1) * sizeof(char *)) : NULL;
    if (nv == NULL)
        return kv_failed(kv);
    kv->values = nv;
    kv->names[kv->n] = strdup(name);
    kv->values[kv->n] = strdup(value);
    if (kv->names[kv->n] == NULL || kv->values[kv->n] == NULL) {
        free(kv->names[kv->n]);
        free(kv->values[kv->n]);
        return kv_failed(kv);
    }
    kv->n++;
    return CS_OK;
}

const char *cs_kv_get(const cs_kv *kv, const char *name)
{
    size_t i;

    for (i = 0; i < kv->n; i++)
        if (strcmp(kv->names[i], name) == 0)
            return kv->values[i];
    return NULL;
}

void cs_kv_clear(cs_kv *kv)
{
    size_t i;

    for (i = 0; i < kv->n; i++) {
        free(kv->names[i]);
        /* values may be tokens or certificates with keys: wipe them */
        if (kv->values[i])
            OPENSSL_cleanse(kv->values[i], strlen(kv->values[i]));
        free(kv->values[i]);
    }
    free(kv->names);
    free(kv->values);
    cs_kv_init(kv);
}

char *cs_percent_encode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s), i, o = 0;
    char *out = malloc(3 * n + 1);

    if (out == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return out;
}

typedef struct {
    char *k, *v;
} pair;

static int cmp_pair(const void *a, const void *b)
{
    return strcmp(((const pair *)a)->k, ((const pair *)b)->k);
}

char *cs_canonical_query(const cs_kv *params)
{
    pair *p = calloc(params->n + 1, sizeof(pair));
    size_t i, len = 1;
    char *out = NULL;

    if (p == NULL)
        return NULL;
    for (i = 0; i < params->n; i++) {
        p[i].k = cs_percent_encode(params->names[i]);
        p[i].v = cs_percent_encode(params->values[i]);
        if (p[i].k == NULL || p[i].v == NULL)
            goto done;
        len += strlen(p[i].k) + strlen(p[i].v) + 2;
    }
    qsort(p, params->n, sizeof(pair), cmp_pair);
    out = malloc(len);
    if (out == NULL)
        goto done;
    out[0] = '\0';
    for (i = 0; i < params->n; i++) {
        if (i)
            strcat(out, "&");
        strcat(out, p[i].k);
        strcat(out, "=");
        strcat(out, p[i].v);
    }
done:
    for (i = 0; i < params->n; i++) {
        free(p[i].k);
        free(p[i].v);
    }
    free(p);
    return out;
}

void cs_signature_clear(cs_signature *s)
{
    free(s->canonical);
    free(s->string_to_sign);
    free(s->signature);
    free(s->signed_headers);
    free(s->authorization);
    memset(s, 0, sizeof(*s));
}

void cs_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0, i;

    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    for (i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

cs_rc cs_sign_v1(const char *method, const cs_kv *params, const char *secret, cs_signature *out)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    char *query, *eq, *key;
    size_t n;

    if (params->failed)
        return cs_error_set(CS_ENOMEM, "out of memory building the request's parameters");

    memset(out, 0, sizeof(*out));
    query = cs_canonical_query(params);
    eq = query ? cs_percent_encode(query) : NULL;
    n = strlen(secret);
    key = malloc(n + 2);
    if (eq == NULL || key == NULL) {
        free(query);
        free(eq);
        free(key);
        return cs_error_set(CS_ENOMEM, "out of memory");
    }
    memcpy(key, secret, n);
    memcpy(key + n, "&", 2);
    if (asprintf(&out->string_to_sign, "%s&%%2F&%s", method, eq) < 0)
        out->string_to_sign = NULL;
    free(eq);
    out->canonical = query;
    out->signature = malloc(4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1);
    if (out->string_to_sign == NULL || out->signature == NULL ||
        HMAC(EVP_sha1(), key, (int)(n + 1), (const unsigned char *)out->string_to_sign,
             strlen(out->string_to_sign), mac, &maclen) == NULL) {
        OPENSSL_cleanse(key, n + 1);
        free(key);
        cs_signature_clear(out);
        return cs_error_set(CS_ERR, "cannot compute the v1 signature");
    }
    OPENSSL_cleanse(key, n + 1);
    free(key);
    EVP_EncodeBlock((unsigned char *)out->signature, mac, (int)maclen);
    return CS_OK;
}

static int signed_header(const char *name)
{
    return strcmp(name, "host") == 0 || strcmp(name, "content-type") == 0 ||
           strncmp(name, "x-acs-", 6) == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* a value without surrounding blanks, as the service trims it */
static void trimmed(const char *v, const char **start, int *len)
{
    const char *e = v + strlen(v);

    while (*v == ' ' || *v == '\t')
        v++;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *start = v;
    *len = (int)(e - v);
}

cs_rc cs_sign_v3(const char *method, const cs_kv *query, const cs_kv *headers,
                 const char *access_key_id, const char *secret, cs_signature *out)
{
    char **names = calloc(headers->n + 1, sizeof(char *)), *q = NULL, *canon_headers = NULL;
    const char *payload = cs_kv_get(headers, "x-acs-content-sha256");
    unsigned char mac[32];
    unsigned int maclen = 0, i;
    size_t n = 0, hlen = 1, slen = 1, k;
    char hash[65];
    cs_rc rc = CS_ENOMEM;

    if (query->failed || headers->failed) {
        free(names);
        return cs_error_set(CS_ENOMEM, "out of memory building the request");
    }
    memset(out, 0, sizeof(*out));
    if (names == NULL)
        return cs_error_set(CS_ENOMEM, "out of memory");
    if (payload == NULL) {
        free(names);
        return cs_error_set(CS_EINVAL, "the x-acs-content-sha256 header is missing");
    }
    for (k = 0; k < headers->n; k++)
        if (signed_header(headers->names[k])) {
            names[n++] = headers->names[k];
            hlen += strlen(headers->names[k]) + strlen(headers->values[k]) + 2;
            slen += strlen(headers->names[k]) + 1;
        }
    qsort(names, n, sizeof(char *), cmp_str);
    canon_headers = malloc(hlen);
    out->signed_headers = malloc(slen);
    q = cs_canonical_query(query);
    if (canon_headers == NULL || out->signed_headers == NULL || q == NULL)
        goto done;
    canon_headers[0] = out->signed_headers[0] = '\0';
    for (k = 0; k < n; k++) {
        const char *v;
        int vlen;

        trimmed(cs_kv_get(headers, names[k]), &v, &vlen);
        sprintf(canon_headers + strlen(canon_headers), "%s:%.*s\n", names[k], vlen, v);
        if (k)
            strcat(out->signed_headers, ";");
        strcat(out->signed_headers, names[k]);
    }
    if (asprintf(&out->canonical, "%s\n/\n%s\n%s\n%s\n%s", method, q, canon_headers,
                 out->signed_headers, payload) < 0) {
        out->canonical = NULL;
        goto done;
    }
    cs_sha256_hex(out->canonical, strlen(out->canonical), hash);
    if (asprintf(&out->string_to_sign, "ACS3-HMAC-SHA256\n%s", hash) < 0) {
        out->string_to_sign = NULL;
        goto done;
    }
    if (HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)out->string_to_sign,
             strlen(out->string_to_sign), mac, &maclen) == NULL)
        goto done;
    out->signature = malloc(65);
    if (out->signature == NULL)
        goto done;
    for (i = 0; i < maclen; i++)
        snprintf(out->signature + 2 * i, 3, "%02x", mac[i]);
    if (asprintf(&out->authorization,
                 "ACS3-HMAC-SHA256 Credential=%s,SignedHeaders=%s,Signature=%s", access_key_id,
                 out->signed_headers, out->signature) < 0) {
        out->authorization = NULL;
        goto done;
    }
    rc = CS_OK;
done:
    free(names);
    free(canon_headers);
    free(q);
    if (rc != CS_OK) {
        cs_signature_clear(out);
        return cs_error_set(rc, "cannot compute the v3 signature");
    }
    return CS_OK;
}
