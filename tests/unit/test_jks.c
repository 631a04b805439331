/* JKS: the bytes Java's JavaKeyStore expects, and a reader that refuses what Java refuses. */
#include <openssl/encoder.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "cs_jks.h"
#include "cs_test.h"

static const char *const names[] = {"shop.example.com"};

/* Non-ASCII passwords, with their UTF-16BE bytes written out by hand. */
static const char store_pw[] = "st\xc3\xb6re pw"; /* "störe pw" */
static const unsigned char store_pw16[] = {0, 's', 0, 't', 0, 0xF6, 0, 'r',
                                           0, 'e', 0, ' ', 0, 'p',  0, 'w'};
static const char key_pw[] = "k\xc3\xa9y pw"; /* "kéy pw" */
static const unsigned char key_pw16[] = {0, 'k', 0, 0xE9, 0, 'y', 0, ' ', 0, 'p', 0, 'w'};

#define CREATED_MS INT64_C(1700000000123)

/* ---- independent helpers: plain EVP, no code shared with cs_jks.c ---- */

static void sha1_of(const void *a, size_t a_len, const void *b, size_t b_len, unsigned char md[20])
{
    unsigned char *cat = malloc(a_len + b_len + 1);
    unsigned int n = 0;

    assert_non_null(cat);
    memcpy(cat, a, a_len);
    memcpy(cat + a_len, b, b_len);
    assert_int_equal(EVP_Digest(cat, a_len + b_len, md, &n, EVP_sha1(), NULL), 1);
    assert_int_equal(n, 20);
    free(cat);
}

/* The key's PKCS#8 PrivateKeyInfo DER through the encoder API. */
static unsigned char *pkcs8_of(EVP_PKEY *key, size_t *len)
{
    OSSL_ENCODER_CTX *ctx =
        OSSL_ENCODER_CTX_new_for_pkey(key, EVP_PKEY_KEYPAIR, "DER", "PrivateKeyInfo", NULL);
    unsigned char *der = NULL;

    assert_non_null(ctx);
    assert_int_equal(OSSL_ENCODER_to_data(ctx, &der, len), 1);
    OSSL_ENCODER_CTX_free(ctx);
    return der;
}

static unsigned char *der_of(X509 *x, size_t *len)
{
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);

    assert_true(n > 0);
    *len = (size_t)n;
    return der;
}

/* A cursor over a keystore; every step is bounds-checked. */
typedef struct {
    const unsigned char *p, *end;
} walk;

static const unsigned char *take(walk *w, size_t n)
{
    const unsigned char *at = w->p;

    assert_true((size_t)(w->end - w->p) >= n);
    w->p += n;
    return at;
}

static uint64_t take_uint(walk *w, size_t n)
{
    const unsigned char *b = take(w, n);
    uint64_t v = 0;

    for (size_t i = 0; i < n; i++)
        v = (v << 8) | b[i];
    return v;
}

static void expect(walk *w, const void *bytes, size_t n)
{
    assert_memory_equal(take(w, n), bytes, n);
}

/* A DER tag, then its definite length (short or long form). */
static size_t der_header(walk *w, unsigned char tag)
{
    size_t len, k;

    assert_int_equal(*take(w, 1), tag);
    len = *take(w, 1);
    if (len < 0x80)
        return len;
    k = len & 0x7F;
    assert_true(k >= 1 && k <= 3);
    return (size_t)take_uint(w, k);
}

/* ---- (a) the byte layout, walked by hand ---- */

/* encryptedData = salt || P XOR stream || SHA1(pw || P); rebuild it the slow way. */
static void check_key_protection(const unsigned char *enc, size_t enc_len, EVP_PKEY *key)
{
    size_t p8_len, n, off;
    unsigned char *p8 = pkcs8_of(key, &p8_len), *plain, d[20], check[20];

    assert_int_equal(enc_len, 20 + p8_len + 20);
    n = p8_len;
    plain = malloc(n);
    assert_non_null(plain);
    memcpy(d, enc, 20);
    for (off = 0; off < n; off += 20) {
        sha1_of(key_pw16, sizeof(key_pw16), d, 20, d);
        for (size_t i = 0; i < 20 && off + i < n; i++)
            plain[off + i] = enc[20 + off + i] ^ d[i];
    }
    assert_memory_equal(plain, p8, p8_len);
    sha1_of(key_pw16, sizeof(key_pw16), p8, p8_len, check);
    assert_memory_equal(enc + 20 + n, check, 20);
    free(plain);
    OPENSSL_free(p8);
}

/* EncryptedPrivateKeyInfo { { 1.3.6.1.4.1.42.2.17.1.1, NULL }, OCTET STRING } */
static void check_protected_key(const unsigned char *der, size_t len, EVP_PKEY *key)
{
    static const unsigned char alg[] = {0x30, 0x0E, 0x06, 0x0A, 0x2B, 0x06, 0x01, 0x04,
                                        0x01, 0x2A, 0x02, 0x11, 0x01, 0x01, 0x05, 0x00};
    walk w = {der, der + len};
    size_t outer, octets;

    outer = der_header(&w, 0x30);
    assert_int_equal(outer, (size_t)(w.end - w.p));
    expect(&w, alg, sizeof(alg));
    octets = der_header(&w, 0x04);
    assert_int_equal(octets, (size_t)(w.end - w.p));
    check_key_protection(take(&w, octets), octets, key);
}

static void check_cert(walk *w, X509 *x)
{
    size_t len;
    unsigned char *der = der_of(x, &len);

    assert_int_equal(take_uint(w, 2), 5);
    expect(w, "X.509", 5);
    assert_int_equal(take_uint(w, 4), len);
    expect(w, der, len);
    OPENSSL_free(der);
}

static void check_layout(cs_key_type type)
{
    unsigned char *jks, md[20];
    size_t len, pk_len;
    cs_test_chain c;
    walk w;

    cs_test_chain_make(&c, type, names, 1, -1, 90);
    assert_int_equal(
        cs_jks_write(c.bundle, "Shop.Example-COM", store_pw, key_pw, CREATED_MS, &jks, &len),
        CS_OK);
    w = (walk){jks, jks + len};
    assert_int_equal(take_uint(&w, 4), 0xFEEDFEED);
    assert_int_equal(take_uint(&w, 4), 2);
    assert_int_equal(take_uint(&w, 4), 1);
    assert_int_equal(take_uint(&w, 4), 1); /* PrivateKeyEntry */
    assert_int_equal(take_uint(&w, 2), 16);
    expect(&w, "shop.example-com", 16);
    assert_int_equal(take_uint(&w, 8), CREATED_MS);
    pk_len = (size_t)take_uint(&w, 4);
    check_protected_key(take(&w, pk_len), pk_len, c.leaf_key);
    assert_int_equal(take_uint(&w, 4), 2);
    check_cert(&w, c.leaf);
    check_cert(&w, c.inter);
    assert_int_equal(w.end - w.p, 20);
    /* SHA1(pw || "Mighty Aphrodite" || everything before the hash) */
    {
        unsigned char *pre = malloc(sizeof(store_pw16) + 16);

        assert_non_null(pre);
        memcpy(pre, store_pw16, sizeof(store_pw16));
        memcpy(pre + sizeof(store_pw16), "Mighty Aphrodite", 16);
        sha1_of(pre, sizeof(store_pw16) + 16, jks, len - 20, md);
        free(pre);
    }
    assert_memory_equal(w.p, md, 20);
    free(jks);
    cs_test_chain_free(&c);
}

static void an_rsa_keystore_has_the_exact_jks_layout(void **state)
{
    (void)state;
    check_layout(CS_KEY_RSA2048);
}

static void an_ec_keystore_has_the_exact_jks_layout(void **state)
{
    (void)state;
    check_layout(CS_KEY_EC256);
}

/* Same inputs, new salt: the header and the key's length agree, the bytes do not. */
static void each_write_draws_a_fresh_salt(void **state)
{
    unsigned char *a, *b;
    size_t a_len, b_len;
    cs_test_chain c;
    (void)state;

    cs_test_chain_make(&c, CS_KEY_EC256, names, 1, -1, 90);
    assert_int_equal(cs_jks_write(c.bundle, "shop", store_pw, key_pw, CREATED_MS, &a, &a_len),
                     CS_OK);
    assert_int_equal(cs_jks_write(c.bundle, "shop", store_pw, key_pw, CREATED_MS, &b, &b_len),
                     CS_OK);
    assert_int_equal(a_len, b_len);
    assert_memory_equal(a, b, 12 + 4 + 2 + 4 + 8 + 4);
    assert_memory_not_equal(a, b, a_len);
    free(a);
    free(b);
    cs_test_chain_free(&c);
}

/* ---- (b) passwords are Java chars, big-endian ---- */

static void check_password(const char *utf8, const unsigned char *want, size_t want_len)
{
    unsigned char *b;
    size_t len;

    assert_int_equal(cs_jks_password_bytes(utf8, &b, &len), CS_OK);
    assert_int_equal(len, want_len);
    assert_memory_equal(b, want, want_len);
    free(b);
}

static void passwords_become_utf16be_like_java_chars(void **state)
{
    static const unsigned char ascii[] = {0, 's', 0, 'e', 0, 'c', 0, 'r', 0, 'e', 0, 't'};
    static const unsigned char umlauts[] = {0x00, 0x70, 0x00, 0xE4, 0x00, 0x73, 0x00, 0x73,
                                            0x00, 0x77, 0x00, 0xF6, 0x00, 0x72, 0x00, 0x64};
    static const unsigned char key_emoji[] = {0x00, 0x61, 0xD8, 0x3D, 0xDD, 0x11};
    static const unsigned char euro[] = {0x20, 0xAC};
    (void)state;

    check_password("secret", ascii, sizeof(ascii));
    check_password("p\xc3\xa4ssw\xc3\xb6rd", umlauts, sizeof(umlauts));
    check_password("a\xf0\x9f\x94\x91", key_emoji, sizeof(key_emoji)); /* U+1F511 */
    check_password("\xe2\x82\xac", euro, sizeof(euro));
    check_password("", NULL, 0);
}

static void a_password_that_is_not_utf8_is_refused(void **state)
{
    static const char *const bad[] = {
        "\xc3",             /* cut short */
        "\xc0\xaf",         /* overlong '/' */
        "\xe0\x80\xaf",     /* overlong, three bytes */
        "\xed\xa0\x80",     /* a lone surrogate */
        "\xf4\x90\x80\x80", /* past U+10FFFF */
        "\xff",
        "ab\x80",
        "\xe2\x82x",
    };
    unsigned char *b;
    size_t len;
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(cs_jks_password_bytes(bad[i], &b, &len), CS_EINVAL);
        assert_non_null(strstr(cs_error_last(), "UTF-8"));
    }
}

/* ---- (c) round trips ---- */

static void check_round_trip(cs_key_type type, const char *spw, const char *kpw)
{
    unsigned char *jks;
    size_t len;
    cs_test_chain c;
    cs_bundle *b;
    char *alias;

    cs_test_chain_make(&c, type, names, 1, -1, 90);
    assert_int_equal(cs_jks_write(c.bundle, "Shop", spw, kpw, 0, &jks, &len), CS_OK);
    assert_int_equal(cs_jks_read(jks, len, spw, kpw, &b, &alias), CS_OK);
    assert_string_equal(alias, "shop");
    assert_int_equal(X509_cmp(cs_bundle_leaf(b), c.leaf), 0);
    assert_int_equal(sk_X509_num(cs_bundle_issuers(b)), 1);
    assert_int_equal(X509_cmp(sk_X509_value(cs_bundle_issuers(b), 0), c.inter), 0);
    assert_int_equal(EVP_PKEY_eq(cs_bundle_key(b), c.leaf_key), 1);
    cs_bundle_free(b);
    free(alias);
    free(jks);
    cs_test_chain_free(&c);
}

static void an_rsa_key_comes_back_with_separate_passwords(void **state)
{
    (void)state;
    check_round_trip(CS_KEY_RSA2048, store_pw, key_pw);
    check_round_trip(CS_KEY_RSA2048, "changeit", "changeit");
}

static void an_ec_key_comes_back_with_separate_passwords(void **state)
{
    (void)state;
    check_round_trip(CS_KEY_EC256, store_pw, key_pw);
    check_round_trip(CS_KEY_EC256, "\xf0\x9f\x94\x91 store", "\xe5\xaf\x86\xe7\xa0\x81"); /* 密码 */
}

static void aliases_are_java_modified_utf8(void **state)
{
    /* "Key" + U+1F511: lower-cased, then the surrogates D83D DD11 as 3 bytes each */
    static const unsigned char want[] = {0x00, 0x09, 'k',  'e',  'y', 0xED,
                                         0xA0, 0xBD, 0xED, 0xB4, 0x91};
    unsigned char *jks;
    size_t len;
    cs_test_chain c;
    cs_bundle *b;
    char *alias;
    (void)state;

    cs_test_chain_make(&c, CS_KEY_EC256, names, 1, -1, 90);
    assert_int_equal(
        cs_jks_write(c.bundle, "Key\xf0\x9f\x94\x91", "changeit", "changeit", 0, &jks, &len),
        CS_OK);
    assert_memory_equal(jks + 16, want, sizeof(want));
    assert_int_equal(cs_jks_read(jks, len, "changeit", "changeit", &b, &alias), CS_OK);
    assert_string_equal(alias, "key\xf0\x9f\x94\x91");
    cs_bundle_free(b);
    free(alias);
    free(jks);
    cs_test_chain_free(&c);
}

static void an_alias_longer_than_writeutf_allows_is_refused(void **state)
{
    char *alias = malloc(65537);
    unsigned char *jks;
    size_t len;
    cs_test_chain c;
    (void)state;

    assert_non_null(alias);
    cs_test_chain_make(&c, CS_KEY_EC256, names, 1, -1, 90);
    memset(alias, 'a', 65535);
    alias[65535] = '\0';
    assert_int_equal(cs_jks_write(c.bundle, alias, "changeit", "changeit", 0, &jks, &len), CS_OK);
    free(jks);
    alias[65535] = 'a';
    alias[65536] = '\0';
    assert_int_equal(cs_jks_write(c.bundle, alias, "changeit", "changeit", 0, &jks, &len),
                     CS_EINVAL);
    assert_non_null(strstr(cs_error_last(), "65535"));
    free(alias);
    cs_test_chain_free(&c);
}

/* ---- keystores written by hand: other entry types and version 1 ---- */

typedef struct {
    unsigned char b[32768];
    size_t n;
} file;

static void f_put(file *f, const void *data, size_t n)
{
    assert_true(n <= sizeof(f->b) - f->n);
    memcpy(f->b + f->n, data, n);
    f->n += n;
}

static void f_uint(file *f, uint64_t v, size_t n)
{
    for (size_t i = n; i > 0; i--) {
        unsigned char byte = (unsigned char)(v >> (8 * (i - 1)));

        f_put(f, &byte, 1);
    }
}

static void f_cert(file *f, X509 *x, int with_type)
{
    size_t len;
    unsigned char *der = der_of(x, &len);

    if (with_type) {
        f_uint(f, 5, 2);
        f_put(f, "X.509", 5);
    }
    f_uint(f, len, 4);
    f_put(f, der, len);
    OPENSSL_free(der);
}

static void f_trusted(file *f, const char *alias, X509 *x)
{
    f_uint(f, 2, 4);
    f_uint(f, strlen(alias), 2);
    f_put(f, alias, strlen(alias));
    f_uint(f, (uint64_t)CREATED_MS, 8);
    f_cert(f, x, 1);
}

/* Append the keyed hash over everything so far (the store password is store_pw). */
static void f_seal(file *f)
{
    unsigned char pre[sizeof(store_pw16) + 16], md[20];

    memcpy(pre, store_pw16, sizeof(store_pw16));
    memcpy(pre + sizeof(store_pw16), "Mighty Aphrodite", 16);
    sha1_of(pre, sizeof(pre), f->b, f->n, md);
    f_put(f, md, sizeof(md));
}

/* Our keystore's one entry, without header and hash. */
static const unsigned char *our_entry(cs_test_chain *c, unsigned char **jks, size_t *len)
{
    assert_int_equal(cs_jks_write(c->bundle, "shop", store_pw, key_pw, CREATED_MS, jks, len),
                     CS_OK);
    *len -= 12 + 20;
    return *jks + 12;
}

static void check_read_leaf(const file *f, cs_test_chain *c, const char *want_alias)
{
    cs_bundle *b;
    char *alias;

    assert_int_equal(cs_jks_read(f->b, f->n, store_pw, key_pw, &b, &alias), CS_OK);
    assert_string_equal(alias, want_alias);
    assert_int_equal(X509_cmp(cs_bundle_leaf(b), c->leaf), 0);
    assert_int_equal(EVP_PKEY_eq(cs_bundle_key(b), c->leaf_key), 1);
    cs_bundle_free(b);
    free(alias);
}

static void trusted_cert_entries_are_stepped_over(void **state)
{
    file f = {.n = 0};
    unsigned char *jks;
    const unsigned char *entry;
    size_t len;
    cs_test_chain c;
    (void)state;

    cs_test_chain_make(&c, CS_KEY_EC256, names, 1, -1, 90);
    entry = our_entry(&c, &jks, &len);
    f_uint(&f, 0xFEEDFEED, 4);
    f_uint(&f, 2, 4);
    f_uint(&f, 3, 4);
    f_trusted(&f, "root", c.root);
    f_put(&f, entry, len);
    f_trusted(&f, "intermediate", c.inter);
    f_seal(&f);
    check_read_leaf(&f, &c, "shop");
    free(jks);
    cs_test_chain_free(&c);
}

static void a_keystore_of_trusted_certs_only_has_no_key(void **state)
{
    file f = {.n = 0};
    cs_test_chain c;
    cs_bundle *b;
    char *alias;
    (void)state;

    cs_test_chain_make(&c, CS_KEY_EC256, names, 1, -1, 90);
    f_uint(&f, 0xFEEDFEED, 4);
    f_uint(&f, 2, 4);
    f_uint(&f, 1, 4);
    f_trusted(&f, "root", c.root);
    f_seal(&f);
    assert_int_equal(cs_jks_read(f.b, f.n, store_pw, key_pw, &b, &alias), CS_ENOTFOUND);
    cs_test_chain_free(&c);
}

/* Version 1 files have no "X.509" type strings. */
static void a_version_1_keystore_is_read(void **state)
{
    file f = {.n = 0};
    unsigned char *jks;
    const unsigned char *entry;
    size_t len, pk_len;
    cs_test_chain c;
    walk w;
    (void)state;

    cs_test_chain_make(&c, CS_KEY_RSA2048, names, 1, -1, 90);
    entry = our_entry(&c, &jks, &len);
    w = (walk){entry, entry + len};
    take(&w, 4 + 2 + 4 + 8); /* tag, alias "shop", date */
    pk_len = (size_t)take_uint(&w, 4);
    take(&w, pk_len);
    f_uint(&f, 0xFEEDFEED, 4);
    f_uint(&f, 1, 4);
    f_uint(&f, 1, 4);
    f_put(&f, entry, (size_t)(w.p - entry));
    f_uint(&f, 2, 4);
    f_cert(&f, c.leaf, 0);
    f_cert(&f, c.inter, 0);
    f_seal(&f);
    check_read_leaf(&f, &c, "shop");
    free(jks);
    cs_test_chain_free(&c);
}

/* ---- (d) what must fail ---- */

typedef struct {
    cs_test_chain c;
    unsigned char *jks;
    size_t len;
} fixture;

static int fixture_setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));

    assert_non_null(fx);
    cs_test_chain_make(&fx->c, CS_KEY_RSA2048, names, 1, -1, 90);
    assert_int_equal(
        cs_jks_write(fx->c.bundle, "shop", store_pw, key_pw, CREATED_MS, &fx->jks, &fx->len),
        CS_OK);
    *state = fx;
    return 0;
}

static int fixture_teardown(void **state)
{
    fixture *fx = *state;

    free(fx->jks);
    cs_test_chain_free(&fx->c);
    free(fx);
    return 0;
}

static cs_rc read_with(const unsigned char *data, size_t len, const char *spw, const char *kpw)
{
    cs_bundle *b = NULL;
    char *alias = NULL;
    cs_rc rc = cs_jks_read(data, len, spw, kpw, &b, &alias);

    if (rc == CS_OK) {
        cs_bundle_free(b);
        free(alias);
    }
    return rc;
}

static void a_wrong_store_password_is_a_password_error(void **state)
{
    fixture *fx = *state;

    assert_int_equal(read_with(fx->jks, fx->len, "store pw", key_pw), CS_EPASSWORD);
    assert_non_null(strstr(cs_error_last(), "Keystore was tampered with, or password was "
                                            "incorrect"));
}

static void a_wrong_key_password_cannot_recover_the_key(void **state)
{
    fixture *fx = *state;

    assert_int_equal(read_with(fx->jks, fx->len, store_pw, store_pw), CS_EPASSWORD);
    assert_non_null(strstr(cs_error_last(), "Cannot recover key"));
    assert_non_null(strstr(cs_error_last(), "'shop'"));
}

static void every_truncation_is_refused(void **state)
{
    fixture *fx = *state;

    for (size_t n = 0; n < fx->len; n++)
        assert_int_equal(read_with(fx->jks, n, store_pw, key_pw), CS_EINVAL);
    assert_non_null(strstr(cs_error_last(), "truncated"));
}

static void bytes_after_the_hash_are_refused(void **state)
{
    fixture *fx = *state;
    unsigned char *longer = malloc(fx->len + 1);

    assert_non_null(longer);
    memcpy(longer, fx->jks, fx->len);
    longer[fx->len] = 0;
    assert_int_equal(read_with(longer, fx->len + 1, store_pw, key_pw), CS_EINVAL);
    assert_non_null(strstr(cs_error_last(), "after its last entry"));
    free(longer);
}

static void every_flipped_byte_is_refused(void **state)
{
    fixture *fx = *state;
    unsigned char *copy = malloc(fx->len);
    size_t date_at = 12 + 4 + 2 + 4, cert_at = fx->len - 20 - 300;

    assert_non_null(copy);
    memcpy(copy, fx->jks, fx->len);
    for (size_t i = 0; i < fx->len; i++) {
        copy[i] ^= 0x01;
        assert_int_not_equal(read_with(copy, fx->len, store_pw, key_pw), CS_OK);
        /* bytes that carry no length fail the keyed hash, as in Java */
        if (i == date_at || i == cert_at || i == fx->len - 1)
            assert_int_equal(cs_error_code(), CS_EPASSWORD);
        copy[i] ^= 0x01;
    }
    assert_int_equal(read_with(copy, fx->len, store_pw, key_pw), CS_OK);
    free(copy);
}

static void other_file_types_are_named(void **state)
{
    static const unsigned char jceks[] = {0xCE, 0xCE, 0xCE, 0xCE, 0, 0, 0, 2, 0, 0, 0, 0};
    static const unsigned char p12[] = {0x30, 0x82, 0x0A, 0x00, 0x02, 0x01, 0x03, 0x30};
    static const unsigned char v3[] = {0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 3, 0, 0, 0, 0};
    (void)state;

    assert_int_equal(read_with(jceks, sizeof(jceks), "a", "a"), CS_EINVAL);
    assert_non_null(strstr(cs_error_last(), "JCEKS"));
    assert_int_equal(read_with(p12, sizeof(p12), "a", "a"), CS_EINVAL);
    assert_non_null(strstr(cs_error_last(), "PKCS#12"));
    assert_int_equal(read_with(v3, sizeof(v3), "a", "a"), CS_EINVAL);
    assert_non_null(strstr(cs_error_last(), "version 3"));
}

static void empty_passwords_and_aliases_are_refused_on_write(void **state)
{
    fixture *fx = *state;
    unsigned char *jks;
    size_t len;

    assert_int_equal(cs_jks_write(fx->c.bundle, "shop", "", "k", 0, &jks, &len), CS_EPASSWORD);
    assert_int_equal(cs_jks_write(fx->c.bundle, "shop", "s", NULL, 0, &jks, &len), CS_EPASSWORD);
    assert_int_equal(cs_jks_write(fx->c.bundle, "", "s", "k", 0, &jks, &len), CS_EINVAL);
    assert_int_equal(cs_jks_write(fx->c.bundle, "sh\xc3", "s", "k", 0, &jks, &len), CS_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(an_rsa_keystore_has_the_exact_jks_layout),
        cmocka_unit_test(an_ec_keystore_has_the_exact_jks_layout),
        cmocka_unit_test(each_write_draws_a_fresh_salt),
        cmocka_unit_test(passwords_become_utf16be_like_java_chars),
        cmocka_unit_test(a_password_that_is_not_utf8_is_refused),
        cmocka_unit_test(an_rsa_key_comes_back_with_separate_passwords),
        cmocka_unit_test(an_ec_key_comes_back_with_separate_passwords),
        cmocka_unit_test(aliases_are_java_modified_utf8),
        cmocka_unit_test(an_alias_longer_than_writeutf_allows_is_refused),
        cmocka_unit_test(trusted_cert_entries_are_stepped_over),
        cmocka_unit_test(a_keystore_of_trusted_certs_only_has_no_key),
        cmocka_unit_test(a_version_1_keystore_is_read),
        cmocka_unit_test_setup_teardown(a_wrong_store_password_is_a_password_error, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(a_wrong_key_password_cannot_recover_the_key, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(every_truncation_is_refused, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(bytes_after_the_hash_are_refused, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(every_flipped_byte_is_refused, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test(other_file_types_are_named),
        cmocka_unit_test_setup_teardown(empty_passwords_and_aliases_are_refused_on_write,
                                        fixture_setup, fixture_teardown),
    };

    return cmocka_run_group_tests_name("jks", tests, NULL, NULL);
}
