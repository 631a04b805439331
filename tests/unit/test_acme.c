/*
 * ACME: the account's JWK thumbprint matches RFC 7638's own example, key
 * authorizations are token.thumbprint, requests are JWS a CA can verify, and
 * an [provider] of type acme is read (or refused) as the README says.
 */
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <openssl/param_build.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cs_acme.h"
#include "cs_config.h"
#include "cs_dns.h"
#include "cs_revoke.h"
#include "cs_store.h"
#include "cs_test.h"

/* RFC 7638 section 3.1: the RSA key and its thumbprint. */
static const char rfc7638_n[] = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu"
                                "1RK7aPFFxuhDR1L6tSoc_BJECPebWKR"
                                "XjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_"
                                "RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAta"
                                "Sqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-"
                                "bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPks"
                                "INHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
static const char rfc7638_thumbprint[] = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

static unsigned char *b64url_decode(const char *s, size_t *len)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char *out = malloc(strlen(s) * 3 / 4 + 3);
    unsigned acc = 0, bits = 0;

    *len = 0;
    for (; *s; s++) {
        const char *p = strchr(abc, *s);

        assert_non_null(p);
        acc = acc << 6 | (unsigned)(p - abc);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[(*len)++] = (unsigned char)(acc >> bits);
        }
    }
    return out;
}

static EVP_PKEY *rsa_from_n_e(const char *n64)
{
    size_t nlen;
    unsigned char *n = b64url_decode(n64, &nlen);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    BIGNUM *bn = BN_bin2bn(n, (int)nlen, NULL), *e = BN_new();
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    EVP_PKEY *key = NULL;
    OSSL_PARAM *params;

    BN_set_word(e, 65537);
    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn);
    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e);
    params = OSSL_PARAM_BLD_to_param(bld);
    assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
    assert_int_equal(EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params), 1);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(ctx);
    BN_free(bn);
    BN_free(e);
    free(n);
    return key;
}

static void base64url_has_no_padding_and_a_url_alphabet(void **state)
{
    static const struct {
        const char *in, *out;
    } v[] = {{"", ""},        {"f", "Zg"},        {"fo", "Zm8"},
             {"foo", "Zm9v"}, {"foob", "Zm9vYg"}, {"\xfb\xff", "-_8"}};
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char *s = cs_acme_b64url((const unsigned char *)v[i].in, strlen(v[i].in));

        assert_string_equal(s, v[i].out);
        free(s);
    }
}

static void the_thumbprint_is_rfc7638s_example(void **state)
{
    EVP_PKEY *key = rsa_from_n_e(rfc7638_n);
    char tp[64], *ka = NULL;
    (void)state;

    if (cs_acme_thumbprint(key, tp) != CS_OK)
        fail_msg("%s", cs_error_last());
    assert_string_equal(tp, rfc7638_thumbprint);
    /* RFC 8555 8.1: the key authorization is the token, a dot, the thumbprint */
    assert_int_equal(
        cs_acme_key_authorization("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA", key, &ka), CS_OK);
    assert_string_equal(ka, "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA."
                            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    assert_string_equal(cs_acme_alg(key), "RS256");
    free(ka);
    EVP_PKEY_free(key);
}

static void an_ec_jwk_has_padded_coordinates_in_canonical_order(void **state)
{
    EVP_PKEY *key;
    json_t *jwk;
    char *text, tp[64];
    (void)state;

    for (int i = 0; i < 8; i++) { /* some keys have a coordinate with a leading zero byte */
        assert_int_equal(cs_key_generate(CS_KEY_EC256, &key), CS_OK);
        assert_int_equal(cs_acme_jwk(key, &jwk), CS_OK);
        text = json_dumps(jwk, JSON_COMPACT);
        assert_memory_equal(text, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"", 31);
        assert_int_equal(strlen(json_string_value(json_object_get(jwk, "x"))), 43);
        assert_int_equal(strlen(json_string_value(json_object_get(jwk, "y"))), 43);
        assert_int_equal(cs_acme_thumbprint(key, tp), CS_OK);
        assert_int_equal(strlen(tp), 43);
        assert_string_equal(cs_acme_alg(key), "ES256");
        free(text);
        json_decref(jwk);
        EVP_PKEY_free(key);
    }
}

/* Check a flattened JWS as a CA does: header fields, then the signature with the public key. */
static json_t *verify_jws(const char *jws, EVP_PKEY *key, int ec, const EVP_MD *md)
{
    json_t *j = json_loads(jws, 0, NULL), *h;
    const char *p64 = json_string_value(json_object_get(j, "protected"));
    const char *b64 = json_string_value(json_object_get(j, "payload"));
    size_t hl, sl;
    unsigned char *hdr = b64url_decode(p64, &hl), *sig, *der = NULL;
    char *input;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int derlen;

    sig = b64url_decode(json_string_value(json_object_get(j, "signature")), &sl);
    assert_int_not_equal(asprintf(&input, "%s.%s", p64, b64), -1);
    if (ec) { /* JWS's r||s back to the DER OpenSSL verifies */
        ECDSA_SIG *es = ECDSA_SIG_new();

        assert_int_equal(sl, (size_t)ec * 2);
        ECDSA_SIG_set0(es, BN_bin2bn(sig, ec, NULL), BN_bin2bn(sig + ec, ec, NULL));
        derlen = i2d_ECDSA_SIG(es, &der);
        ECDSA_SIG_free(es);
    } else {
        der = OPENSSL_memdup(sig, sl);
        derlen = (int)sl;
    }
    assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, md, NULL, key), 1);
    assert_int_equal(
        EVP_DigestVerify(ctx, der, (size_t)derlen, (unsigned char *)input, strlen(input)), 1);
    h = json_loadb((char *)hdr, hl, 0, NULL);
    assert_non_null(h);
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    free(input);
    free(sig);
    free(hdr);
    json_decref(j);
    return h;
}

static void requests_are_jws_a_ca_verifies(void **state)
{
    static const struct {
        cs_key_type type;
        const char *alg;
        int ec; /* bytes of r and of s; 0: RSA */
    } v[] = {
        {CS_KEY_EC256, "ES256", 32}, {CS_KEY_EC384, "ES384", 48}, {CS_KEY_RSA2048, "RS256", 0}};
    (void)state;

    for (size_t i = 0; i < 3; i++) {
        const EVP_MD *md = v[i].ec == 48 ? EVP_sha384() : EVP_sha256();
        EVP_PKEY *key;
        char *jws;
        json_t *h;

        assert_int_equal(cs_key_generate(v[i].type, &key), CS_OK);
        assert_int_equal(cs_acme_jws(key, "https://ca.test/acct/1", "n0nce",
                                     "https://ca.test/order", "{\"a\":1}", &jws),
                         CS_OK);
        h = verify_jws(jws, key, v[i].ec, md);
        assert_string_equal(json_string_value(json_object_get(h, "alg")), v[i].alg);
        assert_string_equal(json_string_value(json_object_get(h, "nonce")), "n0nce");
        assert_string_equal(json_string_value(json_object_get(h, "url")), "https://ca.test/order");
        assert_string_equal(json_string_value(json_object_get(h, "kid")), "https://ca.test/acct/1");
        assert_null(json_object_get(h, "jwk"));
        json_decref(h);
        free(jws);
        /* before the account exists: the jwk instead of a kid; POST-as-GET: empty payload */
        assert_int_equal(cs_acme_jws(key, NULL, "n2", "https://ca.test/new-acct", NULL, &jws),
                         CS_OK);
        h = verify_jws(jws, key, v[i].ec, md);
        assert_null(json_object_get(h, "kid"));
        assert_non_null(json_object_get(h, "jwk"));
        assert_non_null(strstr(jws, "\"payload\":\"\""));
        json_decref(h);
        free(jws);
        EVP_PKEY_free(key);
    }
}

static void retry_after_is_seconds_or_a_date(void **state)
{
    (void)state;
    assert_int_equal(cs_acme_retry_after("3", 1), 3);
    assert_int_equal(cs_acme_retry_after("", 7), 7);
    assert_int_equal(cs_acme_retry_after(NULL, 7), 7);
    assert_int_equal(cs_acme_retry_after("soon", 7), 7);
    assert_int_equal(cs_acme_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 7), 0);
}

/* The http-01 answer is removed once used; ACME's private area is 0700 and only that. */
static void challenge_answers_are_removed_and_the_acme_area_is_private(void **state)
{
    char *dir = cs_test_tmpdir("acme-store"), *data = NULL;
    cs_store *s;
    struct stat st;
    size_t len;
    int fd;
    (void)state;

    assert_int_equal(cs_store_open(dir, NULL, &s), CS_OK);
    assert_int_equal(cs_store_write_challenge(s, "Shop.Test", "acme-challenge", "tok", "tok.tp"),
                     CS_OK);
    assert_int_equal(
        cs_store_read_challenge(s, "shop.test", "acme-challenge", "tok", 64, &data, &len), CS_OK);
    assert_string_equal(data, "tok.tp");
    free(data);
    assert_int_equal(cs_store_remove_challenge(s, "SHOP.test", "acme-challenge", "tok"), CS_OK);
    assert_int_equal(
        cs_store_read_challenge(s, "shop.test", "acme-challenge", "tok", 64, &data, &len),
        CS_ENOTFOUND);
    /* gone already, or never there: nothing to do */
    assert_int_equal(cs_store_remove_challenge(s, "shop.test", "acme-challenge", "tok"), CS_OK);
    assert_int_equal(cs_store_remove_challenge(s, "other.test", "acme-challenge", "tok"), CS_OK);
    assert_int_equal(cs_store_remove_challenge(s, "shop.test", "acme-challenge", "../x"),
                     CS_EINVAL);
    assert_int_equal(cs_store_area_open(s, "acme", &fd), CS_OK);
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    close(fd);
    assert_int_equal(cs_store_area_open(s, "../acme", &fd), CS_EINVAL);
    assert_int_equal(cs_store_area_open(s, ".acme", &fd), CS_EINVAL);
    cs_store_free(s);
    free(dir);
}

/* RFC 8555 7.3.4: HS256 over protected.payload with the CA's key; the payload is our JWK. */
static void the_external_account_binding_is_an_hs256_jws_over_the_jwk(void **state)
{
    static const char key64[] = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
    unsigned char mac[64], md[32], *raw;
    unsigned mdlen;
    long n = cs_acme_b64url_decode(key64, mac, sizeof(mac));
    EVP_PKEY *key;
    json_t *eab, *jwk, *h, *payload;
    char *input, *sig, *jt;
    size_t len;
    (void)state;

    assert_int_equal(n, 48);
    assert_int_equal(cs_acme_b64url_decode("a+b/", mac, sizeof(mac)), 3); /* base64 too */
    assert_int_equal(cs_acme_b64url_decode("a.b", mac, sizeof(mac)), -1);
    n = cs_acme_b64url_decode(key64, mac, sizeof(mac));
    assert_int_equal(cs_key_generate(CS_KEY_EC256, &key), CS_OK);
    assert_int_equal(cs_acme_eab(key, "kid-1", mac, (size_t)n, "https://ca.test/new-acct", &eab),
                     CS_OK);
    raw = b64url_decode(json_string_value(json_object_get(eab, "protected")), &len);
    h = json_loadb((char *)raw, len, 0, NULL);
    free(raw);
    assert_string_equal(json_string_value(json_object_get(h, "alg")), "HS256");
    assert_string_equal(json_string_value(json_object_get(h, "kid")), "kid-1");
    assert_string_equal(json_string_value(json_object_get(h, "url")), "https://ca.test/new-acct");
    assert_null(json_object_get(h, "nonce")); /* the inner JWS carries none */
    raw = b64url_decode(json_string_value(json_object_get(eab, "payload")), &len);
    payload = json_loadb((char *)raw, len, 0, NULL);
    free(raw);
    assert_int_equal(cs_acme_jwk(key, &jwk), CS_OK);
    assert_true(json_equal(payload, jwk));
    assert_true(asprintf(&input, "%s.%s", json_string_value(json_object_get(eab, "protected")),
                         json_string_value(json_object_get(eab, "payload"))) > 0);
    HMAC(EVP_sha256(), mac, (int)n, (unsigned char *)input, strlen(input), md, &mdlen);
    sig = cs_acme_b64url(md, mdlen);
    assert_string_equal(json_string_value(json_object_get(eab, "signature")), sig);
    jt = json_dumps(eab, 0);
    assert_null(strstr(jt, key64)); /* the MAC key itself is never sent */
    free(jt);
    free(sig);
    free(input);
    json_decref(h);
    json_decref(payload);
    json_decref(jwk);
    json_decref(eab);
    EVP_PKEY_free(key);
}

static const char *write_conf(const char *text);

static void dns01_is_read_with_its_publisher(void **state)
{
    cs_config *c = NULL;
    (void)state;

    assert_int_equal(cs_config_load(write_conf("[provider p]\ntype = acme\n"
                                               "directory = https://ca.test/d\n"
                                               "challenge = dns-01\ndns = alidns\n"
                                               "dns-resolver = 127.0.0.1:5353\ndns-wait = 2m\n"
                                               "endpoint = https://127.0.0.1:8443\n"
                                               "[cert w]\nprovider = p\n"
                                               "domain = example.com *.example.com\n"),
                                    &c),
                     CS_OK);
    assert_int_equal(c->providers[0].challenge, CS_ACME_DNS01);
    assert_string_equal(c->providers[0].dns, "alidns");
    assert_string_equal(c->providers[0].dns_resolver, "127.0.0.1:5353");
    assert_int_equal(c->providers[0].dns_wait, 120);
    assert_string_equal(c->providers[0].endpoint, "https://127.0.0.1:8443");
    cs_config_free(c);
    assert_int_equal(cs_config_load(write_conf("[provider p]\ntype = acme\n"
                                               "directory = https://ca.test/d\n"
                                               "challenge = dns-01\n"
                                               "dns = /usr/local/bin/dns-hook --zone x\n"),
                                    &c),
                     CS_OK);
    assert_string_equal(c->providers[0].dns, "/usr/local/bin/dns-hook --zone x");
    assert_int_equal(c->providers[0].dns_wait, 300);
    cs_config_free(c);
}

/* A TXT answer as a server sends it: compressed names, several strings, other records. */
static void a_txt_answer_is_found_among_others(void **state)
{
    unsigned char q[300], a[512];
    int n = cs_dns_txt_query("_acme-challenge.example.com", 0x1234, q, sizeof(q));
    size_t len;
    /* answers: TXT "other", TXT "abc" "def" (one value in two strings), A 127.0.0.1 */
    static const unsigned char answers[] = {
        0xc0, 12,  0,    16, 0, 1, 0, 0, 0, 60, 0, 6,  5, 'o', 't', 'h', 'e', 'r',
        0xc0, 12,  0,    16, 0, 1, 0, 0, 0, 60, 0, 8,  3, 'a', 'b', 'c', 3,   'd',
        'e',  'f', 0xc0, 12, 0, 1, 0, 1, 0, 0,  0, 60, 0, 4,   127, 0,   0,   1};
    (void)state;

    assert_int_equal(n, 12 + 28 + 1 + 4);
    assert_int_equal(q[0] << 8 | q[1], 0x1234);
    assert_int_equal(q[12], 15); /* "_acme-challenge" */
    assert_memory_equal(q + 13, "_acme-challenge", 15);
    memcpy(a, q, (size_t)n);
    a[2] |= 0x80; /* a response */
    a[7] = 3;     /* three answers */
    memcpy(a + n, answers, sizeof(answers));
    len = (size_t)n + sizeof(answers);
    assert_int_equal(cs_dns_answer_has(a, len, 0x1234, "abcdef"), 1);
    assert_int_equal(cs_dns_answer_has(a, len, 0x1234, "other"), 1);
    assert_int_equal(cs_dns_answer_has(a, len, 0x1234, "abc"), 0);
    assert_int_equal(cs_dns_answer_has(a, len, 0x1235, "abcdef"), -1);      /* not our query */
    assert_int_equal(cs_dns_answer_has(a, len - 3, 0x1234, "nothere"), -1); /* cut short */
    a[3] |= 3;                                                              /* NXDOMAIN */
    assert_int_equal(cs_dns_answer_has(a, len, 0x1234, "abcdef"), 0);
    assert_int_equal(cs_dns_txt_query("a..b", 1, q, sizeof(q)), -1);
}

static void alternate_chains_are_read_from_link_headers(void **state)
{
    char urls[4][1024];
    (void)state;

    /* two Link headers joined as cs_http joins them, and an "up" link that is not a chain */
    assert_int_equal(cs_acme_alternates("<https://ca.test/dir>;rel=\"index\", "
                                        "<https://ca.test/cert/1/alt/1>;rel=\"alternate\", "
                                        "<https://ca.test/cert/1/alt/2>; rel=\"alternate\"",
                                        urls, 4),
                     2);
    assert_string_equal(urls[0], "https://ca.test/cert/1/alt/1");
    assert_string_equal(urls[1], "https://ca.test/cert/1/alt/2");
    assert_int_equal(
        cs_acme_alternates("<https://ca.test/cert/1/alt/1>;rel=\"alternate\"", urls, 0), 0);
    assert_int_equal(cs_acme_alternates("", urls, 4), 0);
    assert_int_equal(cs_acme_alternates("<broken", urls, 4), 0);
}

/* RFC 8737 3: a self-signed certificate for the name, acmeIdentifier critical, = SHA-256(ka). */
static void the_tls_alpn01_certificate_carries_the_digest(void **state)
{
    static const char ka[] = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.thumb";
    unsigned char md[32];
    char *pem = NULL;
    BIO *bio;
    X509 *x;
    EVP_PKEY *key;
    X509_EXTENSION *ext;
    const ASN1_OCTET_STRING *v;
    ASN1_OBJECT *oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);
    int at;
    (void)state;

    assert_int_equal(cs_acme_alpn_cert("shop.example.com", ka, &pem), CS_OK);
    bio = BIO_new_mem_buf(pem, -1);
    x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    assert_non_null(x);
    assert_non_null(key);
    assert_int_equal(X509_check_private_key(x, key), 1);
    assert_int_equal(X509_check_host(x, "shop.example.com", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(x, "www.example.com", 0, 0, NULL), 0);
    at = X509_get_ext_by_OBJ(x, oid, -1);
    assert_true(at >= 0);
    ext = X509_get_ext(x, at);
    assert_int_equal(X509_EXTENSION_get_critical(ext), 1);
    v = X509_EXTENSION_get_data(ext);
    EVP_Digest(ka, strlen(ka), md, NULL, EVP_sha256(), NULL);
    /* the value is the DER of an OCTET STRING holding the digest */
    assert_int_equal(ASN1_STRING_length(v), 34);
    assert_int_equal(ASN1_STRING_get0_data(v)[0], 0x04);
    assert_int_equal(ASN1_STRING_get0_data(v)[1], 32);
    assert_memory_equal(ASN1_STRING_get0_data(v) + 2, md, 32);
    ASN1_OBJECT_free(oid);
    X509_free(x);
    EVP_PKEY_free(key);
    BIO_free(bio);
    free(pem);
}

static void revocation_reasons_are_rfc5280_codes_by_number_or_name(void **state)
{
    int code = -1;
    (void)state;

    assert_int_equal(cs_revoke_reason_parse("keyCompromise", &code), CS_OK);
    assert_int_equal(code, 1);
    assert_int_equal(cs_revoke_reason_parse("superseded", &code), CS_OK);
    assert_int_equal(code, 4);
    assert_int_equal(cs_revoke_reason_parse("5", &code), CS_OK);
    assert_int_equal(code, 5);
    /* 2 (cACompromise) and 6 (certificateHold) are not a subscriber's to give */
    assert_int_equal(cs_revoke_reason_parse("2", &code), CS_EINVAL);
    assert_non_null(strstr(cs_error_last(), "unknown reason '2'; use unspecified (0)"));
    assert_int_equal(cs_revoke_reason_parse("10", &code), CS_EINVAL);
    assert_int_equal(cs_revoke_reason_parse("", &code), CS_EINVAL);
}

static const char *write_conf(const char *text)
{
    static char *dir;

    if (dir == NULL)
        dir = cs_test_tmpdir("acme-config");
    cs_test_write_text(cs_test_path(dir, "certsync.conf"), text);
    return cs_test_path(dir, "certsync.conf");
}

static void expect_error(const char *text, const char *needle)
{
    cs_config *c = NULL;

    assert_int_equal(cs_config_load(write_conf(text), &c), CS_ECONFIG);
    if (strstr(cs_error_last(), needle) == NULL)
        fail_msg("error '%s' does not contain '%s'", cs_error_last(), needle);
}

static void an_acme_provider_is_read(void **state)
{
    cs_config *c = NULL;
    const cs_cert_conf *cc;
    (void)state;

    assert_int_equal(
        cs_config_load(write_conf("[provider le]\n"
                                  "type = acme\n"
                                  "directory = letsencrypt-staging\n"
                                  "contact = mailto:a@example.com mailto:b@example.com\n"
                                  "tos-agreed = yes\n"
                                  "ca-file = /etc/ssl/ca.pem\n"
                                  "challenge = http-01\n"
                                  "webroot = /var/www/html\n"
                                  "account-key-type = rsa2048\n"
                                  "eab-kid = kid-1\n"
                                  "eab-hmac-file = /etc/certsync/eab.key\n"
                                  "[cert shop]\n"
                                  "provider = le\n"
                                  "domain = shop.example.com www.example.com\n"
                                  "reuse-key = yes\n"),
                       &c),
        CS_OK);
    assert_int_equal(c->providers[0].type, CS_PROVIDER_ACME);
    assert_string_equal(c->providers[0].directory,
                        "https://acme-staging-v02.api.letsencrypt.org/directory");
    assert_int_equal(c->providers[0].n_contact, 2);
    assert_string_equal(c->providers[0].contact[1], "mailto:b@example.com");
    assert_int_equal(c->providers[0].tos_agreed, 1);
    assert_string_equal(c->providers[0].ca_file, "/etc/ssl/ca.pem");
    assert_string_equal(c->providers[0].webroot, "/var/www/html");
    assert_int_equal(c->providers[0].account_key_type, CS_KEY_RSA2048);
    assert_string_equal(c->providers[0].eab_kid, "kid-1");
    assert_string_equal(c->providers[0].eab_hmac_file, "/etc/certsync/eab.key");
    cc = cs_config_cert(c, "shop");
    assert_int_equal(cc->reuse_key, 1);
    cs_config_free(c);
    assert_int_equal(cs_config_load(write_conf("[provider p]\ntype = acme\n"
                                               "directory = https://127.0.0.1:14000/dir\n"
                                               "[cert a]\nprovider = p\ndomain = a.test\n"),
                                    &c),
                     CS_OK);
    assert_string_equal(c->providers[0].directory, "https://127.0.0.1:14000/dir");
    assert_int_equal(c->providers[0].tos_agreed, 0);
    assert_int_equal(c->providers[0].account_key_type, CS_KEY_EC256);
    assert_int_equal(c->certs[0].reuse_key, 0);
    cs_config_free(c);
}

static void what_acme_cannot_do_yet_is_refused_by_name(void **state)
{
    (void)state;
    expect_error("[provider p]\ntype = acme\ndirectory = https://ca.test/d\nchallenge = dns-01\n",
                 ":2: [provider p]: challenge = dns-01 needs the key 'dns': alidns");
    expect_error("[provider p]\ntype = acme\ndirectory = https://ca.test/d\nchallenge = dns-01\n"
                 "dns = hook.sh\n",
                 ":5: [provider p] dns: 'hook.sh' must start with the program's absolute path");
    expect_error("[provider p]\ntype = acme\ndns-wait = soon\n", "[provider p] dns-wait");
    expect_error("[provider p]\ntype = acme\ndirectory = https://ca.test/d\n"
                 "challenge = tls-alpn-02\n",
                 "unknown challenge 'tls-alpn-02'; use http-01, dns-01 or tls-alpn-01");
    expect_error("[provider p]\ntype = acme\ndirectory = https://ca.test/d\n"
                 "challenge = tls-alpn-01\n[cert w]\nprovider = p\ndomain = *.example.com\n",
                 "'*.example.com' is a wildcard, which tls-alpn-01 cannot validate");
    expect_error("[provider p]\ntype = acme\ndirectory = https://ca.test/d\n"
                 "[cert w]\nprovider = p\ndomain = *.example.com\n",
                 "[cert w] domain: '*.example.com' is a wildcard, which http-01 cannot validate; "
                 "set challenge = dns-01 in [provider p]");
    expect_error("[provider p]\ntype = acme\n", "[provider p]: the key 'directory' is missing");
    expect_error("[provider p]\ntype = acme\ncafile = /x\n",
                 "unknown key 'cafile'; known keys: type; ca-lifetime (local-ca); "
                 "region, credentials, endpoint, ca-file, trust-file, signature-version, "
                 "metadata-endpoint, timeout, retries, alidns-endpoint, deploy-contact "
                 "(aliyun-cas); directory, contact, "
                 "ca-file, "
                 "tos-agreed, challenge, webroot, account-key-type, eab-kid, eab-hmac-file, dns, "
                 "dns-resolver, dns-wait, preferred-chain, credentials, endpoint (acme)");
    expect_error("[provider p]\ntype = acme\ndirectory = https://ca.test/d\neab-kid = k\n",
                 "[provider p]: eab-kid and eab-hmac-file go together");
    expect_error("[provider p]\ntype = acme\ndirectory = http://ca.test/d\n",
                 ":3: [provider p] directory: 'http://ca.test/d' is neither an https:// URL");
    expect_error("[provider p]\ntype = acme\ncontact = admin@example.com\n",
                 ":3: [provider p] contact: 'admin@example.com' is not a mailto: address");
    expect_error("[provider p]\ntype = acme\ntos-agreed = sure\n",
                 "[provider p] tos-agreed: 'sure' is not yes or no");
    expect_error("[provider p]\ntype = acme\ndirectory = https://ca.test/d\n"
                 "[cert a]\nprovider = p\n",
                 "[cert a]: the key 'domain' is missing; the ACME CA needs the names");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(base64url_has_no_padding_and_a_url_alphabet),
        cmocka_unit_test(the_thumbprint_is_rfc7638s_example),
        cmocka_unit_test(an_ec_jwk_has_padded_coordinates_in_canonical_order),
        cmocka_unit_test(requests_are_jws_a_ca_verifies),
        cmocka_unit_test(retry_after_is_seconds_or_a_date),
        cmocka_unit_test(challenge_answers_are_removed_and_the_acme_area_is_private),
        cmocka_unit_test(the_external_account_binding_is_an_hs256_jws_over_the_jwk),
        cmocka_unit_test(revocation_reasons_are_rfc5280_codes_by_number_or_name),
        cmocka_unit_test(dns01_is_read_with_its_publisher),
        cmocka_unit_test(a_txt_answer_is_found_among_others),
        cmocka_unit_test(alternate_chains_are_read_from_link_headers),
        cmocka_unit_test(the_tls_alpn01_certificate_carries_the_digest),
        cmocka_unit_test(an_acme_provider_is_read),
        cmocka_unit_test(what_acme_cannot_do_yet_is_refused_by_name),
    };

    return cmocka_run_group_tests_name("acme", tests, NULL, NULL);
}
