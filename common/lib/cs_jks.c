#include "cs_jks.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The layout is in shared/reference/jks-format.md; every integer is big-endian. */
#define JKS_MAGIC 0xFEEDFEEDu
#define JCEKS_MAGIC 0xCECECECEu
#define JKS_VERSION 2
#define JKS_TAG_KEY 1
#define JKS_TAG_CERT 2
#define JKS_SHA1_LEN 20
#define JKS_SALT_LEN 20
#define JKS_UTF_MAX 65535
#define JKS_CERT_TYPE "X.509"
#define JKS_WHITENER "Mighty Aphrodite"
/* JAVASOFT_JDKKeyProtector, the algorithm of KeyProtector.protect */
#define JKS_KEY_PROTECTOR_OID "1.3.6.1.4.1.42.2.17.1.1"

/* ---- small helpers ---- */

static void wipe_free(void *p, size_t len)
{
    if (p == NULL)
        return;
    OPENSSL_cleanse(p, len);
    free(p);
}

/* SHA-1 of a || b || c: every JKS digest is a password followed by data. */
static int jks_sha1(const void *a, size_t a_len, const void *b, size_t b_len, const void *c,
                    size_t c_len, unsigned char md[JKS_SHA1_LEN])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok;

    ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) &&
         EVP_DigestUpdate(ctx, a, a_len) && EVP_DigestUpdate(ctx, b, b_len) &&
         EVP_DigestUpdate(ctx, c, c_len) && EVP_DigestFinal_ex(ctx, md, NULL);
    EVP_MD_CTX_free(ctx);
    return ok;
}

/*
 * KeyProtector's keystream: d1 = SHA1(pw || salt), d(i+1) = SHA1(pw || d(i)).
 * XOR is its own inverse, so this both protects and recovers (in may be out).
 */
static int jks_xor_stream(const unsigned char *pw, size_t pw_len, const unsigned char *salt,
                          const unsigned char *in, unsigned char *out, size_t len)
{
    unsigned char d[JKS_SHA1_LEN];
    size_t off, i, n;
    int ok = 1;

    memcpy(d, salt, JKS_SALT_LEN);
    for (off = 0; ok && off < len; off += JKS_SHA1_LEN) {
        ok = jks_sha1(pw, pw_len, d, sizeof(d), NULL, 0, d);
        n = len - off < JKS_SHA1_LEN ? len - off : JKS_SHA1_LEN;
        for (i = 0; i < n; i++)
            out[off + i] = in[off + i] ^ d[i];
    }
    OPENSSL_cleanse(d, sizeof(d));
    return ok;
}

/*
 * Decode one UTF-8 sequence at s[*i]. Overlong forms, surrogates and code
 * points past U+10FFFF are refused, as Java's decoder would replace them.
 */
static int utf8_next(const unsigned char *s, size_t len, size_t *i, uint32_t *cp)
{
    unsigned char c = s[*i];
    uint32_t v, min;
    size_t n, k;

    if (c < 0x80) {
        *cp = c;
        *i += 1;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF)
        n = 1, v = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 2, v = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 3, v = c & 0x07, min = 0x10000;
    else
        return 0;
    if (len - *i - 1 < n)
        return 0;
    for (k = 1; k <= n; k++) {
        if ((s[*i + k] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[*i + k] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    *i += n + 1;
    return 1;
}

static size_t put_utf8(unsigned char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* One Java char of modified UTF-8: U+0000 takes two bytes so that no 00 byte appears. */
static size_t put_mutf8_unit(unsigned char *o, uint32_t u)
{
    if (u != 0 && u < 0x80) {
        o[0] = (unsigned char)u;
        return 1;
    }
    if (u < 0x800) {
        o[0] = (unsigned char)(0xC0 | (u >> 6));
        o[1] = (unsigned char)(0x80 | (u & 0x3F));
        return 2;
    }
    return put_utf8(o, u);
}

/* Split a code point into Java chars; returns how many (1 or 2). */
static int utf16_units(uint32_t cp, uint32_t u[2])
{
    if (cp < 0x10000) {
        u[0] = cp;
        return 1;
    }
    cp -= 0x10000;
    u[0] = 0xD800 | (cp >> 10);
    u[1] = 0xDC00 | (cp & 0x3FF);
    return 2;
}

/* ---- passwords and aliases ---- */

cs_rc cs_jks_password_bytes(const char *utf8, unsigned char **out, size_t *out_len)
{
    const unsigned char *s = (const unsigned char *)utf8;
    size_t len, i = 0, n = 0, at;
    unsigned char *b;
    uint32_t cp, u[2];
    int k, units;

    if (utf8 == NULL)
        return cs_error_set(CS_EPASSWORD, "no password was given for the Java keystore");
    len = strlen(utf8);
    /* a UTF-8 byte never becomes more than two UTF-16 bytes; +1 avoids malloc(0) */
    b = malloc(2 * len + 1);
    if (b == NULL)
        return cs_error_set(CS_ENOMEM, "out of memory");
    while (i < len) {
        at = i;
        if (!utf8_next(s, len, &i, &cp)) {
            wipe_free(b, 2 * len + 1);
            return cs_error_set(CS_EINVAL,
                                "the password is not valid UTF-8 (bad byte at offset %zu); "
                                "save the password file as UTF-8",
                                at);
        }
        units = utf16_units(cp, u);
        for (k = 0; k < units; k++) {
            b[n++] = (unsigned char)(u[k] >> 8);
            b[n++] = (unsigned char)(u[k] & 0xFF);
        }
    }
    *out = b;
    *out_len = n;
    return CS_OK;
}

/*
 * The alias as DataOutput.writeUTF bytes (without the length), lower-cased
 * like Java's JKS does on store and lookup. Only ASCII letters are folded:
 * that is toLowerCase(Locale.ENGLISH) for every alias we generate.
 */
static cs_rc alias_encode(const char *alias, unsigned char **out, size_t *out_len)
{
    const unsigned char *s = (const unsigned char *)alias;
    size_t len = strlen(alias), i = 0, n = 0, at;
    uint32_t cp, u[2];
    unsigned char *b;
    int k, units;

    /* at worst a 4-byte UTF-8 sequence becomes two 3-byte surrogates */
    b = malloc(2 * len + 1);
    if (b == NULL)
        return cs_error_set(CS_ENOMEM, "out of memory");
    while (i < len) {
        at = i;
        if (!utf8_next(s, len, &i, &cp)) {
            free(b);
            return cs_error_set(CS_EINVAL,
                                "the JKS alias is not valid UTF-8 (bad byte at offset %zu); "
                                "give the alias in UTF-8",
                                at);
        }
        if (cp >= 'A' && cp <= 'Z')
            cp += 'a' - 'A';
        units = utf16_units(cp, u);
        for (k = 0; k < units; k++)
            n += put_mutf8_unit(b + n, u[k]);
    }
    if (n > JKS_UTF_MAX) {
        free(b);
        return cs_error_set(CS_EINVAL,
                            "the JKS alias is %zu bytes once encoded, more than Java's limit of "
                            "65535; choose a shorter alias",
                            n);
    }
    *out = b;
    *out_len = n;
    return CS_OK;
}

/* One Java char from modified UTF-8 at s[*i] (DataInput.readUTF rules). */
static int mutf8_unit(const unsigned char *s, size_t len, size_t *i, uint32_t *u)
{
    size_t left = len - *i;
    unsigned char c = s[*i];

    if (c < 0x80) {
        *u = c;
        *i += 1;
        return 1;
    }
    if ((c & 0xE0) == 0xC0 && left >= 2 && (s[*i + 1] & 0xC0) == 0x80) {
        *u = ((uint32_t)(c & 0x1F) << 6) | (s[*i + 1] & 0x3F);
        *i += 2;
        return 1;
    }
    if ((c & 0xF0) == 0xE0 && left >= 3 && (s[*i + 1] & 0xC0) == 0x80 &&
        (s[*i + 2] & 0xC0) == 0x80) {
        *u =
            ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[*i + 1] & 0x3F) << 6) | (s[*i + 2] & 0x3F);
        *i += 3;
        return 1;
    }
    return 0;
}

/* One code point: a Java char, or a surrogate pair joined; 0 on NUL or a lone surrogate. */
static int mutf8_next(const unsigned char *s, size_t len, size_t *i, uint32_t *cp)
{
    uint32_t hi, lo;

    if (!mutf8_unit(s, len, i, &hi) || hi == 0 || (hi >= 0xDC00 && hi <= 0xDFFF))
        return 0;
    if (hi < 0xD800 || hi > 0xDBFF) {
        *cp = hi;
        return 1;
    }
    if (*i >= len || !mutf8_unit(s, len, i, &lo) || lo < 0xDC00 || lo > 0xDFFF)
        return 0;
    *cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
    return 1;
}

/* The stored alias back to a NUL-terminated UTF-8 string. */
static cs_rc alias_decode(const unsigned char *s, size_t len, char **out)
{
    size_t i = 0, n = 0, at;
    unsigned char *b;
    uint32_t cp;

    /* a surrogate pair shrinks from 6 bytes to 4; nothing grows */
    b = malloc(len + 1);
    if (b == NULL)
        return cs_error_set(CS_ENOMEM, "out of memory");
    while (i < len) {
        at = i;
        if (!mutf8_next(s, len, &i, &cp)) {
            free(b);
            return cs_error_set(CS_EINVAL,
                                "the keystore alias has an invalid character at its byte %zu; "
                                "the file is damaged or not written by a Java keystore",
                                at);
        }
        n += put_utf8(b + n, cp);
    }
    b[n] = '\0';
    *out = (char *)b;
    return CS_OK;
}

/* ---- writer ---- */

typedef struct {
    unsigned char *p;
    size_t len, cap;
    int oom;
} jks_buf;

static void buf_put(jks_buf *o, const void *data, size_t n)
{
    unsigned char *p;
    size_t cap;

    if (o->oom || n == 0)
        return;
    if (n > o->cap - o->len) {
        for (cap = o->cap ? o->cap : 4096; cap - o->len < n; cap *= 2)
            ;
        p = realloc(o->p, cap);
        if (p == NULL) {
            o->oom = 1;
            return;
        }
        o->p = p;
        o->cap = cap;
    }
    memcpy(o->p + o->len, data, n);
    o->len += n;
}

static void buf_u2(jks_buf *o, uint32_t v)
{
    unsigned char b[2] = {(unsigned char)(v >> 8), (unsigned char)v};

    buf_put(o, b, sizeof(b));
}

static void buf_u4(jks_buf *o, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};

    buf_put(o, b, sizeof(b));
}

static void buf_u8(jks_buf *o, uint64_t v)
{
    buf_u4(o, (uint32_t)(v >> 32));
    buf_u4(o, (uint32_t)v);
}

/* A u4 length and the bytes (protected key, certificate). */
static void buf_blob(jks_buf *o, const void *data, size_t n)
{
    buf_u4(o, (uint32_t)n);
    buf_put(o, data, n);
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* key.getEncoded(): the clear PKCS#8 PrivateKeyInfo DER (OPENSSL_malloc'd). */
static cs_rc pkcs8_der(EVP_PKEY *key, unsigned char **der, size_t *len)
{
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(key);
    int n;

    if (p8 == NULL)
        return cs_error_set(CS_EBADCERT, "cannot encode the private key as PKCS#8 for JKS: %s",
                            cs_error_openssl());
    *der = NULL;
    n = i2d_PKCS8_PRIV_KEY_INFO(p8, der);
    PKCS8_PRIV_KEY_INFO_free(p8);
    if (n <= 0)
        return cs_error_set(CS_EBADCERT, "cannot encode the private key as PKCS#8 for JKS: %s",
                            cs_error_openssl());
    *len = (size_t)n;
    return CS_OK;
}

/* EncryptedPrivateKeyInfo { { KeyProtector OID, NULL }, OCTET STRING enc } as DER. */
static cs_rc wrap_protected(const unsigned char *enc, size_t enc_len, unsigned char **der,
                            size_t *der_len)
{
    ASN1_OBJECT *oid = OBJ_txt2obj(JKS_KEY_PROTECTOR_OID, 1);
    X509_SIG *sig = X509_SIG_new();
    ASN1_OCTET_STRING *data;
    X509_ALGOR *alg;
    int n = -1;

    if (oid != NULL && sig != NULL) {
        X509_SIG_getm(sig, &alg, &data);
        if (X509_ALGOR_set0(alg, oid, V_ASN1_NULL, NULL)) {
            oid = NULL; /* owned by alg now */
            *der = NULL;
            if (ASN1_OCTET_STRING_set(data, enc, (int)enc_len))
                n = i2d_X509_SIG(sig, der);
        }
    }
    ASN1_OBJECT_free(oid);
    X509_SIG_free(sig);
    if (n <= 0)
        return cs_error_set(CS_ERR, "cannot encode the protected JKS key: %s", cs_error_openssl());
    *der_len = (size_t)n;
    return CS_OK;
}

/* KeyProtector.protect: salt || (PKCS#8 XOR keystream) || SHA1(pw || PKCS#8), wrapped. */
static cs_rc protect_key(EVP_PKEY *key, const unsigned char *pw, size_t pw_len, unsigned char **der,
                         size_t *der_len)
{
    unsigned char *plain = NULL, *enc = NULL;
    size_t plain_len = 0, enc_len = 0;
    cs_rc rc;

    rc = pkcs8_der(key, &plain, &plain_len);
    if (rc != CS_OK)
        return rc;
    enc_len = JKS_SALT_LEN + plain_len + JKS_SHA1_LEN;
    enc = malloc(enc_len);
    if (enc == NULL)
        rc = cs_error_set(CS_ENOMEM, "out of memory");
    else if (RAND_bytes(enc, JKS_SALT_LEN) != 1)
        rc = cs_error_set(CS_ERR, "cannot draw a random salt for the JKS key: %s",
                          cs_error_openssl());
    else if (!jks_xor_stream(pw, pw_len, enc, plain, enc + JKS_SALT_LEN, plain_len) ||
             !jks_sha1(pw, pw_len, plain, plain_len, NULL, 0, enc + JKS_SALT_LEN + plain_len))
        rc = cs_error_set(CS_ERR, "cannot compute SHA-1 for the JKS key: %s", cs_error_openssl());
    OPENSSL_clear_free(plain, plain_len);
    if (rc == CS_OK)
        rc = wrap_protected(enc, enc_len, der, der_len);
    free(enc);
    return rc;
}

static cs_rc put_cert(jks_buf *o, X509 *x)
{
    unsigned char *der = NULL;
    char subject[256];
    int n = i2d_X509(x, &der);

    if (n <= 0) {
        X509_NAME_oneline(X509_get_subject_name(x), subject, (int)sizeof(subject));
        return cs_error_set(CS_EBADCERT, "cannot DER-encode the certificate '%s' for JKS: %s",
                            subject, cs_error_openssl());
    }
    buf_u2(o, sizeof(JKS_CERT_TYPE) - 1);
    buf_put(o, JKS_CERT_TYPE, sizeof(JKS_CERT_TYPE) - 1);
    buf_blob(o, der, (size_t)n);
    OPENSSL_free(der);
    return CS_OK;
}

/* chainCount, then the leaf and its issuers in order, as Java's getCertificateChain. */
static cs_rc put_chain(jks_buf *o, const cs_bundle *b)
{
    STACK_OF(X509) *issuers = cs_bundle_issuers(b);
    int i, n = issuers ? sk_X509_num(issuers) : 0;
    cs_rc rc;

    buf_u4(o, (uint32_t)(1 + n));
    rc = put_cert(o, cs_bundle_leaf(b));
    for (i = 0; rc == CS_OK && i < n; i++)
        rc = put_cert(o, sk_X509_value(issuers, i));
    return rc;
}

/* Everything up to the keyed hash: header and the one PrivateKeyEntry. */
static cs_rc put_body(jks_buf *o, const cs_bundle *b, const char *alias, int64_t created_ms,
                      const unsigned char *key_pw, size_t key_pw_len)
{
    unsigned char *name = NULL, *pkey = NULL;
    size_t name_len = 0, pkey_len = 0;
    cs_rc rc;

    rc = alias_encode(alias, &name, &name_len);
    if (rc == CS_OK)
        rc = protect_key(cs_bundle_key(b), key_pw, key_pw_len, &pkey, &pkey_len);
    if (rc == CS_OK) {
        buf_u4(o, JKS_MAGIC);
        buf_u4(o, JKS_VERSION);
        buf_u4(o, 1);
        buf_u4(o, JKS_TAG_KEY);
        buf_u2(o, (uint32_t)name_len);
        buf_put(o, name, name_len);
        buf_u8(o, (uint64_t)(created_ms ? created_ms : now_ms()));
        buf_blob(o, pkey, pkey_len);
        rc = put_chain(o, b);
    }
    free(name);
    OPENSSL_free(pkey);
    return rc;
}

static cs_rc check_write_args(const cs_bundle *b, const char *alias, const char *store_password,
                              const char *key_password)
{
    if (b == NULL || cs_bundle_leaf(b) == NULL || cs_bundle_key(b) == NULL)
        return cs_error_set(CS_EINVAL, "a JKS keystore needs a certificate and its private key");
    if (alias == NULL || alias[0] == '\0')
        return cs_error_set(CS_EINVAL, "a JKS keystore needs a non-empty alias; set one");
    if (store_password == NULL || store_password[0] == '\0')
        return cs_error_set(CS_EPASSWORD, "a JKS keystore needs a non-empty store password");
    if (key_password == NULL || key_password[0] == '\0')
        return cs_error_set(CS_EPASSWORD, "a JKS key entry needs a non-empty key password");
    return CS_OK;
}

cs_rc cs_jks_write(const cs_bundle *b, const char *alias, const char *store_password,
                   const char *key_password, int64_t created_ms, unsigned char **out,
                   size_t *out_len)
{
    unsigned char *spw = NULL, *kpw = NULL, md[JKS_SHA1_LEN];
    size_t spw_len = 0, kpw_len = 0;
    jks_buf o = {NULL, 0, 0, 0};
    cs_rc rc;

    rc = check_write_args(b, alias, store_password, key_password);
    if (rc == CS_OK)
        rc = cs_jks_password_bytes(store_password, &spw, &spw_len);
    if (rc == CS_OK)
        rc = cs_jks_password_bytes(key_password, &kpw, &kpw_len);
    if (rc == CS_OK)
        rc = put_body(&o, b, alias, created_ms, kpw, kpw_len);
    if (rc == CS_OK && o.oom)
        rc = cs_error_set(CS_ENOMEM, "out of memory");
    if (rc == CS_OK && !jks_sha1(spw, spw_len, JKS_WHITENER, strlen(JKS_WHITENER), o.p, o.len, md))
        rc = cs_error_set(CS_ERR, "cannot compute the JKS file hash: %s", cs_error_openssl());
    if (rc == CS_OK)
        buf_put(&o, md, sizeof(md));
    if (rc == CS_OK && o.oom)
        rc = cs_error_set(CS_ENOMEM, "out of memory");
    wipe_free(spw, spw_len);
    wipe_free(kpw, kpw_len);
    if (rc != CS_OK) {
        free(o.p);
        return rc;
    }
    *out = o.p;
    *out_len = o.len;
    return CS_OK;
}

/* ---- reader ---- */

typedef struct {
    const unsigned char *start, *p, *end;
} jks_rd;

/* The first PrivateKeyEntry, as positions in the file until the hash is checked. */
typedef struct {
    const unsigned char *alias, *key, *chain;
    size_t alias_len, key_len;
    int found;
} jks_key_entry;

static size_t rd_pos(const jks_rd *r)
{
    return (size_t)(r->p - r->start);
}

static int rd_need(jks_rd *r, size_t n)
{
    size_t left = (size_t)(r->end - r->p);

    if (n <= left)
        return 1;
    cs_error_set(CS_EINVAL,
                 "the keystore is truncated or damaged: byte %zu needs %zu more bytes than the "
                 "%zu-byte file holds; copy the whole file again",
                 rd_pos(r), n - left, (size_t)(r->end - r->start));
    return 0;
}

static int rd_uint(jks_rd *r, size_t n, uint64_t *v)
{
    size_t i;

    if (!rd_need(r, n))
        return 0;
    for (*v = 0, i = 0; i < n; i++)
        *v = (*v << 8) | *r->p++;
    return 1;
}

static int rd_u4(jks_rd *r, uint32_t *v)
{
    uint64_t x;

    if (!rd_uint(r, 4, &x))
        return 0;
    *v = (uint32_t)x;
    return 1;
}

/* n bytes of length len_size (2 for writeUTF, 4 for a blob) at the cursor. */
static int rd_sized(jks_rd *r, size_t len_size, const unsigned char **data, size_t *len)
{
    uint64_t n;

    if (!rd_uint(r, len_size, &n) || !rd_need(r, (size_t)n))
        return 0;
    *data = r->p;
    *len = (size_t)n;
    r->p += n;
    return 1;
}

static cs_rc bad_magic(uint32_t magic)
{
    if (magic == JCEKS_MAGIC)
        return cs_error_set(CS_EINVAL, "this is a JCEKS keystore, not JKS; convert it with "
                                       "keytool -importkeystore -deststoretype JKS");
    if (magic >> 24 == 0x30)
        return cs_error_set(CS_EINVAL, "this looks like a PKCS#12 (DER) file, not a JKS keystore; "
                                       "read it as PKCS#12");
    return cs_error_set(CS_EINVAL,
                        "not a JKS keystore: the file starts with %08X instead of FEEDFEED", magic);
}

static cs_rc rd_header(jks_rd *r, uint32_t *version, uint32_t *count)
{
    uint32_t magic;

    if (!rd_u4(r, &magic))
        return CS_EINVAL;
    if (magic != JKS_MAGIC)
        return bad_magic(magic);
    if (!rd_u4(r, version) || !rd_u4(r, count))
        return CS_EINVAL;
    if (*version != 1 && *version != 2)
        return cs_error_set(CS_EINVAL, "JKS version %u is not supported; only 1 and 2 exist",
                            *version);
    return CS_OK;
}

/* One certificate: the type string (version 2 only), then u4 length and DER. */
static cs_rc rd_cert(jks_rd *r, uint32_t version, const unsigned char **der, size_t *der_len)
{
    const unsigned char *type;
    size_t type_len, at;

    if (version == 2) {
        at = rd_pos(r);
        if (!rd_sized(r, 2, &type, &type_len))
            return CS_EINVAL;
        if (type_len != strlen(JKS_CERT_TYPE) || memcmp(type, JKS_CERT_TYPE, type_len) != 0)
            return cs_error_set(CS_EINVAL,
                                "the keystore holds a certificate of type '%.*s' at byte %zu; "
                                "only X.509 is supported",
                                (int)(type_len > 32 ? 32 : type_len), (const char *)type, at);
    }
    return rd_sized(r, 4, der, der_len) ? CS_OK : CS_EINVAL;
}

static cs_rc rd_key_entry(jks_rd *r, uint32_t version, jks_key_entry *e)
{
    const unsigned char *key, *chain, *der;
    size_t key_len, der_len;
    uint32_t i, n;
    cs_rc rc = CS_OK;

    if (!rd_sized(r, 4, &key, &key_len))
        return CS_EINVAL;
    chain = r->p;
    if (!rd_u4(r, &n))
        return CS_EINVAL;
    for (i = 0; rc == CS_OK && i < n; i++)
        rc = rd_cert(r, version, &der, &der_len);
    if (rc == CS_OK && !e->found) {
        e->key = key;
        e->key_len = key_len;
        e->chain = chain;
        e->found = 1;
    }
    return rc;
}

/* One entry; remembers the first PrivateKeyEntry and steps over the rest. */
static cs_rc rd_entry(jks_rd *r, uint32_t version, jks_key_entry *e)
{
    const unsigned char *alias, *der;
    size_t alias_len, der_len, at = rd_pos(r);
    uint32_t tag;
    uint64_t date;

    if (!rd_u4(r, &tag) || !rd_sized(r, 2, &alias, &alias_len) || !rd_uint(r, 8, &date))
        return CS_EINVAL;
    if (tag == JKS_TAG_CERT)
        return rd_cert(r, version, &der, &der_len);
    if (tag != JKS_TAG_KEY)
        return cs_error_set(CS_EINVAL,
                            "the keystore entry at byte %zu has type %u; a JKS file holds only "
                            "private keys (1) and trusted certificates (2)",
                            at, tag);
    if (!e->found) {
        e->alias = alias;
        e->alias_len = alias_len;
    }
    return rd_key_entry(r, version, e);
}

/* Walk every entry; on success r->p is at the keyed hash, which must end the file. */
static cs_rc rd_entries(jks_rd *r, uint32_t *version, jks_key_entry *e)
{
    uint32_t count, i;
    cs_rc rc;
    size_t left;

    rc = rd_header(r, version, &count);
    for (i = 0; rc == CS_OK && i < count; i++)
        rc = rd_entry(r, *version, e);
    if (rc != CS_OK)
        return rc;
    if (!rd_need(r, JKS_SHA1_LEN))
        return CS_EINVAL;
    left = (size_t)(r->end - r->p);
    if (left != JKS_SHA1_LEN)
        return cs_error_set(CS_EINVAL,
                            "the keystore has %zu unexpected bytes after its last entry; the "
                            "file is damaged",
                            left - JKS_SHA1_LEN);
    return CS_OK;
}

static cs_rc check_file_hash(const unsigned char *data, size_t body_len, const char *password)
{
    unsigned char *pw, md[JKS_SHA1_LEN];
    size_t pw_len;
    cs_rc rc;
    int ok;

    rc = cs_jks_password_bytes(password, &pw, &pw_len);
    if (rc != CS_OK)
        return rc;
    ok = jks_sha1(pw, pw_len, JKS_WHITENER, strlen(JKS_WHITENER), data, body_len, md);
    wipe_free(pw, pw_len);
    if (!ok)
        return cs_error_set(CS_ERR, "cannot compute the JKS file hash: %s", cs_error_openssl());
    /* Java's own words, so that operators can search for them */
    if (CRYPTO_memcmp(md, data + body_len, JKS_SHA1_LEN) != 0)
        return cs_error_set(CS_EPASSWORD,
                            "Keystore was tampered with, or password was incorrect: check the "
                            "store password, or copy the file again");
    return CS_OK;
}

/* The encryptedData of an EncryptedPrivateKeyInfo under the KeyProtector OID. */
static cs_rc unwrap_protected(const unsigned char *der, size_t len, X509_SIG **sig,
                              const unsigned char **enc, size_t *enc_len)
{
    const unsigned char *p = der;
    const ASN1_OCTET_STRING *data;
    const ASN1_OBJECT *obj;
    const X509_ALGOR *alg;
    char oid[64];

    *sig = d2i_X509_SIG(NULL, &p, (long)len);
    if (*sig == NULL || p != der + len) {
        ERR_clear_error();
        return cs_error_set(CS_EINVAL, "the protected key in the keystore is not valid DER; the "
                                       "file is damaged");
    }
    X509_SIG_get0(*sig, &alg, &data);
    X509_ALGOR_get0(&obj, NULL, NULL, alg);
    if (OBJ_obj2txt(oid, sizeof(oid), obj, 1) <= 0 || strcmp(oid, JKS_KEY_PROTECTOR_OID) != 0)
        return cs_error_set(CS_EINVAL,
                            "the key is protected with algorithm %s, not JKS's KeyProtector "
                            "(%s); convert the keystore with keytool",
                            oid, JKS_KEY_PROTECTOR_OID);
    *enc = ASN1_STRING_get0_data(data);
    *enc_len = (size_t)ASN1_STRING_length(data);
    if (*enc_len < JKS_SALT_LEN + JKS_SHA1_LEN)
        return cs_error_set(CS_EINVAL,
                            "the protected key in the keystore is only %zu bytes; "
                            "the file is damaged",
                            *enc_len);
    return CS_OK;
}

static cs_rc parse_pkcs8(const unsigned char *der, size_t len, EVP_PKEY **key)
{
    const unsigned char *p = der;
    PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)len);

    *key = p8 != NULL && p == der + len ? EVP_PKCS82PKEY(p8) : NULL;
    PKCS8_PRIV_KEY_INFO_free(p8);
    if (*key == NULL)
        return cs_error_set(CS_EBADCERT,
                            "the recovered key is not a PKCS#8 key OpenSSL can use: %s",
                            cs_error_openssl());
    return CS_OK;
}

/* KeyProtector.recover: rebuild the keystream, XOR, compare the check value. */
static cs_rc recover_key(const unsigned char *der, size_t len, const char *password,
                         const char *alias, EVP_PKEY **key)
{
    unsigned char *pw = NULL, *plain = NULL, check[JKS_SHA1_LEN];
    const unsigned char *enc = NULL;
    size_t pw_len = 0, enc_len = 0, n = 0;
    X509_SIG *sig = NULL;
    cs_rc rc;

    rc = unwrap_protected(der, len, &sig, &enc, &enc_len);
    if (rc == CS_OK)
        rc = cs_jks_password_bytes(password, &pw, &pw_len);
    if (rc == CS_OK) {
        n = enc_len - JKS_SALT_LEN - JKS_SHA1_LEN;
        plain = malloc(n + 1);
        if (plain == NULL)
            rc = cs_error_set(CS_ENOMEM, "out of memory");
    }
    if (rc == CS_OK && (!jks_xor_stream(pw, pw_len, enc, enc + JKS_SALT_LEN, plain, n) ||
                        !jks_sha1(pw, pw_len, plain, n, NULL, 0, check)))
        rc = cs_error_set(CS_ERR, "cannot compute SHA-1 for the JKS key: %s", cs_error_openssl());
    if (rc == CS_OK && CRYPTO_memcmp(check, enc + JKS_SALT_LEN + n, JKS_SHA1_LEN) != 0)
        rc = cs_error_set(CS_EPASSWORD,
                          "Cannot recover key: the key password does not open entry '%s'; "
                          "check the key password (it may differ from the store password)",
                          alias);
    if (rc == CS_OK)
        rc = parse_pkcs8(plain, n, key);
    wipe_free(plain, n);
    wipe_free(pw, pw_len);
    X509_SIG_free(sig);
    return rc;
}

static cs_rc parse_cert(const unsigned char *der, size_t len, uint32_t i, const char *alias,
                        X509 **x)
{
    const unsigned char *p = der;

    *x = d2i_X509(NULL, &p, (long)len);
    if (*x != NULL && p == der + len)
        return CS_OK;
    X509_free(*x);
    *x = NULL;
    return cs_error_set(CS_EBADCERT, "certificate %u of keystore entry '%s' is not valid DER: %s",
                        i + 1, alias, cs_error_openssl());
}

/* The chain of the entry: leaf first, then the issuers in order. */
static cs_rc read_chain(const unsigned char *at, const unsigned char *end, uint32_t version,
                        const char *alias, X509 **leaf, STACK_OF(X509) * issuers)
{
    jks_rd r = {at, at, end};
    const unsigned char *der;
    size_t der_len;
    uint32_t i, n;
    X509 *x;
    cs_rc rc = CS_OK;

    if (!rd_u4(&r, &n))
        return CS_EINVAL;
    if (n == 0)
        return cs_error_set(CS_EBADCERT,
                            "keystore entry '%s' has a key but no certificate chain; import "
                            "the certificate into it",
                            alias);
    for (i = 0; rc == CS_OK && i < n; i++) {
        rc = rd_cert(&r, version, &der, &der_len);
        if (rc == CS_OK)
            rc = parse_cert(der, der_len, i, alias, &x);
        if (rc == CS_OK && i == 0)
            *leaf = x;
        else if (rc == CS_OK && !sk_X509_push(issuers, x)) {
            X509_free(x);
            rc = cs_error_set(CS_ENOMEM, "out of memory");
        }
    }
    return rc;
}

/* Turn the first PrivateKeyEntry into a bundle, now that the file hash is good. */
static cs_rc read_key_entry(const jks_key_entry *e, const unsigned char *end, uint32_t version,
                            const char *key_password, cs_bundle **out, char *alias)
{
    STACK_OF(X509) *issuers = sk_X509_new_null();
    EVP_PKEY *key = NULL;
    X509 *leaf = NULL;
    cs_rc rc = CS_OK;

    if (issuers == NULL)
        rc = cs_error_set(CS_ENOMEM, "out of memory");
    if (rc == CS_OK)
        rc = read_chain(e->chain, end, version, alias, &leaf, issuers);
    if (rc == CS_OK)
        rc = recover_key(e->key, e->key_len, key_password, alias, &key);
    if (rc == CS_OK && !cs_key_matches_cert(key, leaf))
        rc = cs_error_set(CS_EBADCERT,
                          "the private key of keystore entry '%s' does not match its first "
                          "certificate; the keystore is inconsistent",
                          alias);
    if (rc == CS_OK)
        rc = cs_bundle_new(leaf, issuers, key, out);
    EVP_PKEY_free(key);
    X509_free(leaf);
    sk_X509_pop_free(issuers, X509_free);
    return rc;
}

cs_rc cs_jks_read(const unsigned char *data, size_t len, const char *store_password,
                  const char *key_password, cs_bundle **out, char **alias)
{
    jks_rd r = {data, data, data + len};
    jks_key_entry e = {NULL, NULL, NULL, 0, 0, 0};
    uint32_t version = 0;
    char *name = NULL;
    cs_rc rc;

    if (data == NULL || out == NULL || alias == NULL)
        return cs_error_set(CS_EINVAL, "cs_jks_read needs the keystore bytes and two results");
    if (store_password == NULL || key_password == NULL)
        return cs_error_set(CS_EPASSWORD, "reading a JKS keystore needs the store and the key "
                                          "password");
    rc = rd_entries(&r, &version, &e);
    if (rc == CS_OK)
        rc = check_file_hash(data, rd_pos(&r), store_password);
    if (rc == CS_OK && !e.found)
        rc = cs_error_set(CS_ENOTFOUND, "the keystore holds no private key entry, only trusted "
                                        "certificates; give the keystore that has the key");
    if (rc == CS_OK)
        rc = alias_decode(e.alias, e.alias_len, &name);
    if (rc == CS_OK)
        rc = read_key_entry(&e, r.p, version, key_password, out, name);
    if (rc != CS_OK) {
        free(name);
        return rc;
    }
    *alias = name;
    return CS_OK;
}
