/* Reading and validating what operators and the service hand us. */
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cs_bundle.h"
#include "cs_fs.h"
#include "cs_test.h"

static const char *const names[] = {"shop.example.com", "www.shop.example.com"};

static void expect_error(cs_rc rc, cs_rc code, const char *needle)
{
    assert_int_equal(rc, code);
    if (strstr(cs_error_last(), needle) == NULL)
        fail_msg("error '%s' does not contain '%s'", cs_error_last(), needle);
}

static void a_full_chain_in_any_order_is_put_in_order(void **state)
{
    cs_test_chain c;
    cs_bundle *b;
    char *d = cs_test_tmpdir("bundle");
    (void)state;

    cs_test_chain_make(&c, CS_KEY_EC256, names, 2, -1, 90);
    /* root first, leaf in the middle: a mess a user may paste */
    cs_test_write_certs(cs_test_path(d, "full.pem"), c.root, c.leaf, c.inter, NULL);
    cs_test_write_key(cs_test_path(d, "key.pem"), c.leaf_key);
    assert_int_equal(cs_bundle_load_files(cs_test_path(d, "full.pem"), cs_test_path(d, "key.pem"),
                                          NULL, NULL, &b),
                     CS_OK);
    assert_int_equal(X509_cmp(cs_bundle_leaf(b), c.leaf), 0);
    assert_int_equal(sk_X509_num(cs_bundle_issuers(b)), 2);
    assert_int_equal(X509_cmp(sk_X509_value(cs_bundle_issuers(b), 0), c.inter), 0);
    assert_int_equal(X509_cmp(sk_X509_value(cs_bundle_issuers(b), 1), c.root), 0);
    assert_int_equal(cs_bundle_validate(b, names, 2, time(NULL), "test"), CS_OK);
    cs_bundle_free(b);
    cs_test_chain_free(&c);
    free(d);
}

static void a_separate_chain_file_and_der_inputs_load(void **state)
{
    cs_test_chain c;
    cs_bundle *b;
    char *d = cs_test_tmpdir("bundle");
    unsigned char *der = NULL;
    int n;
    FILE *f;
    (void)state;

    cs_test_chain_make(&c, CS_KEY_RSA2048, names, 2, -1, 90);
    n = i2d_X509(c.leaf, &der);
    f = fopen(cs_test_path(d, "leaf.der"), "wb");
    fwrite(der, 1, (size_t)n, f);
    fclose(f);
    OPENSSL_free(der);
    der = NULL;
    /* RSA traditional DER = PKCS#1 */
    n = i2d_PrivateKey(c.leaf_key, &der);
    f = fopen(cs_test_path(d, "key.der"), "wb");
    fwrite(der, 1, (size_t)n, f);
    fclose(f);
    OPENSSL_free(der);
    cs_test_write_certs(cs_test_path(d, "chain.pem"), c.inter, NULL);
    assert_int_equal(cs_bundle_load_files(cs_test_path(d, "leaf.der"), cs_test_path(d, "key.der"),
                                          cs_test_path(d, "chain.pem"), NULL, &b),
                     CS_OK);
    assert_int_equal(sk_X509_num(cs_bundle_issuers(b)), 1);
    assert_int_equal(cs_bundle_validate(b, names, 2, time(NULL), "test"), CS_OK);
    cs_bundle_free(b);
    cs_test_chain_free(&c);
    free(d);
}

/* SEC1 for EC, PKCS#1 for RSA: the "traditional" forms older tools write */
static void write_traditional(const char *path, EVP_PKEY *k, const char *marker)
{
    BIO *bio = BIO_new_file(path, "w");
    char *data;
    size_t len;

    assert_true(PEM_write_bio_PrivateKey_traditional(bio, k, NULL, NULL, 0, NULL, NULL));
    BIO_free(bio);
    assert_int_equal(cs_fs_read(path, 100000, &data, &len), CS_OK);
    assert_non_null(strstr(data, marker));
    free(data);
}

static void sec1_pkcs1_and_encrypted_pkcs8_keys_load(void **state)
{
    cs_test_chain ec, rsa;
    cs_bundle *b;
    char *d = cs_test_tmpdir("bundle");
    FILE *f;
    (void)state;

    cs_test_chain_make(&ec, CS_KEY_EC384, names, 2, -1, 90);
    cs_test_chain_make(&rsa, CS_KEY_RSA3072, names, 2, -1, 90);
    cs_test_write_certs(cs_test_path(d, "ec.pem"), ec.leaf, ec.inter, NULL);
    cs_test_write_certs(cs_test_path(d, "rsa.pem"), rsa.leaf, rsa.inter, NULL);
    write_traditional(cs_test_path(d, "ec-sec1.key"), ec.leaf_key, "BEGIN EC PRIVATE KEY");
    write_traditional(cs_test_path(d, "rsa-pkcs1.key"), rsa.leaf_key, "BEGIN RSA PRIVATE KEY");
    f = fopen(cs_test_path(d, "enc.key"), "w");
    assert_true(
        PEM_write_PKCS8PrivateKey(f, ec.leaf_key, EVP_aes_256_cbc(), "s3cret pw", 9, NULL, NULL));
    fclose(f);
    cs_test_write_text(cs_test_path(d, "pw"), "s3cret pw\n");
    cs_test_write_text(cs_test_path(d, "badpw"), "wrong\n");

    assert_int_equal(cs_bundle_load_files(cs_test_path(d, "ec.pem"), cs_test_path(d, "ec-sec1.key"),
                                          NULL, NULL, &b),
                     CS_OK);
    cs_bundle_free(b);
    assert_int_equal(cs_bundle_load_files(cs_test_path(d, "rsa.pem"),
                                          cs_test_path(d, "rsa-pkcs1.key"), NULL, NULL, &b),
                     CS_OK);
    cs_bundle_free(b);
    assert_int_equal(cs_bundle_load_files(cs_test_path(d, "ec.pem"), cs_test_path(d, "enc.key"),
                                          NULL, cs_test_path(d, "pw"), &b),
                     CS_OK);
    assert_true(cs_key_matches_cert(cs_bundle_key(b), ec.leaf));
    cs_bundle_free(b);
    expect_error(
        cs_bundle_load_files(cs_test_path(d, "ec.pem"), cs_test_path(d, "enc.key"), NULL, NULL, &b),
        CS_EPASSWORD, "--key-password-file");
    expect_error(cs_bundle_load_files(cs_test_path(d, "ec.pem"), cs_test_path(d, "enc.key"), NULL,
                                      cs_test_path(d, "badpw"), &b),
                 CS_EPASSWORD, "password is wrong");
    expect_error(cs_bundle_load_files(cs_test_path(d, "ec.pem"), cs_test_path(d, "enc.key"), NULL,
                                      cs_test_path(d, "missing-pw"), &b),
                 CS_ENOTFOUND, "missing-pw");
    cs_test_chain_free(&ec);
    cs_test_chain_free(&rsa);
    free(d);
}

static void bad_inputs_are_rejected_with_the_file_and_reason(void **state)
{
    cs_test_chain a, other;
    cs_bundle *b;
    char *d = cs_test_tmpdir("bundle"), *pem;
    size_t len;
    FILE *f;
    (void)state;

    cs_test_chain_make(&a, CS_KEY_EC256, names, 2, -1, 90);
    cs_test_chain_make(&other, CS_KEY_EC256, names, 2, -1, 90);
    cs_test_write_certs(cs_test_path(d, "a.pem"), a.leaf, a.inter, NULL);
    cs_test_write_key(cs_test_path(d, "a.key"), a.leaf_key);
    cs_test_write_key(cs_test_path(d, "other.key"), other.leaf_key);
    /* the other chain's intermediate did not sign a's leaf */
    cs_test_write_certs(cs_test_path(d, "wrongchain.pem"), a.leaf, other.inter, NULL);

    expect_error(cs_bundle_load_files(cs_test_path(d, "a.pem"), cs_test_path(d, "other.key"), NULL,
                                      NULL, &b),
                 CS_EBADCERT, "does not match");
    expect_error(cs_bundle_load_files(cs_test_path(d, "wrongchain.pem"), cs_test_path(d, "a.key"),
                                      NULL, NULL, &b),
                 CS_EBADCERT, "does not link");
    /* the key where the certificate belongs */
    expect_error(
        cs_bundle_load_files(cs_test_path(d, "a.key"), cs_test_path(d, "a.key"), NULL, NULL, &b),
        CS_EBADCERT, "BEGIN CERTIFICATE");
    expect_error(
        cs_bundle_load_files(cs_test_path(d, "nope.pem"), cs_test_path(d, "a.key"), NULL, NULL, &b),
        CS_ENOTFOUND, "nope.pem");

    /* truncated: cut the file in the middle of the second certificate */
    assert_int_equal(cs_bundle_pem_leaf(a.bundle, &pem, &len), CS_OK);
    f = fopen(cs_test_path(d, "trunc.pem"), "w");
    fputs(pem, f);
    fwrite(pem, 1, len / 2, f);
    fclose(f);
    free(pem);
    expect_error(cs_bundle_load_files(cs_test_path(d, "trunc.pem"), cs_test_path(d, "a.key"), NULL,
                                      NULL, &b),
                 CS_EBADCERT, "truncated");
    if (strstr(cs_error_last(), "trunc.pem") == NULL)
        fail_msg("error does not name the file: %s", cs_error_last());

    cs_test_chain_free(&a);
    cs_test_chain_free(&other);
    free(d);
}

static void validity_window_and_names_are_checked(void **state)
{
    cs_test_chain expired, future, ok;
    const char *const wild[] = {"*.example.com"};
    const char *const under_wild[] = {"a.example.com"};
    const char *const deep[] = {"a.b.example.com"};
    const char *const apex[] = {"example.com"};
    const char *const other[] = {"evil.example.net"};
    (void)state;

    cs_test_chain_make(&expired, CS_KEY_EC256, names, 2, -100, -10);
    expect_error(cs_bundle_validate(expired.bundle, names, 2, time(NULL), "svc"), CS_EBADCERT,
                 "expired on");
    cs_test_chain_make(&future, CS_KEY_EC256, names, 2, 5, 90);
    expect_error(cs_bundle_validate(future.bundle, names, 2, time(NULL), "svc"), CS_EBADCERT,
                 "not valid before");
    cs_test_chain_make(&ok, CS_KEY_EC256, wild, 1, -1, 90);
    assert_int_equal(cs_bundle_validate(ok.bundle, wild, 1, time(NULL), "svc"), CS_OK);
    assert_int_equal(cs_bundle_validate(ok.bundle, under_wild, 1, time(NULL), "svc"), CS_OK);
    expect_error(cs_bundle_validate(ok.bundle, deep, 1, time(NULL), "svc"), CS_EBADCERT,
                 "does not cover the name 'a.b.example.com'");
    expect_error(cs_bundle_validate(ok.bundle, apex, 1, time(NULL), "svc"), CS_EBADCERT,
                 "does not cover");
    expect_error(cs_bundle_validate(ok.bundle, other, 1, time(NULL), "svc"), CS_EBADCERT,
                 "*.example.com");
    cs_test_chain_free(&expired);
    cs_test_chain_free(&future);
    cs_test_chain_free(&ok);
}

static void weak_keys_are_refused(void **state)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    cs_test_chain c;
    cs_bundle *b;
    char *d = cs_test_tmpdir("bundle");
    (void)state;

    cs_test_chain_make(&c, CS_KEY_EC256, names, 2, -1, 90);
    cs_test_write_certs(cs_test_path(d, "a.pem"), c.leaf, NULL);
    cs_test_write_key(cs_test_path(d, "weak.key"), k);
    expect_error(
        cs_bundle_load_files(cs_test_path(d, "a.pem"), cs_test_path(d, "weak.key"), NULL, NULL, &b),
        CS_EBADCERT, "1024 bits");
    EVP_PKEY_free(k);
    cs_test_chain_free(&c);
    free(d);
}

static void fingerprint_serial_and_names_describe_the_leaf(void **state)
{
    cs_test_chain c;
    char fp[65], serial[80];
    unsigned char md[32];
    unsigned int n;
    char **v;
    size_t count;
    (void)state;

    cs_test_chain_make(&c, CS_KEY_EC256, names, 2, -1, 90);
    cs_bundle_fingerprint(c.bundle, fp);
    X509_digest(c.leaf, EVP_sha256(), md, &n);
    assert_int_equal(strlen(fp), 64);
    for (unsigned i = 0; i < 32; i++) {
        char hex[3];

        snprintf(hex, sizeof(hex), "%02x", md[i]);
        assert_memory_equal(fp + 2 * i, hex, 2);
    }
    cs_bundle_serial(c.bundle, serial, sizeof(serial));
    assert_true(strlen(serial) > 0);
    v = cs_bundle_names(c.bundle, &count);
    assert_int_equal(count, 2);
    assert_string_equal(v[0], "shop.example.com");
    assert_string_equal(v[1], "www.shop.example.com");
    cs_strv_free(v);
    cs_test_chain_free(&c);
}

/* A chain of n intermediates under c's root, the leaf signed by the last one. */
static void long_chain(cs_test_chain *c, int n, STACK_OF(X509) * issuers, EVP_PKEY **leaf_key,
                       X509 **leaf)
{
    time_t now = time(NULL);
    cs_cert_spec ca = {NULL, NULL, 0, 1, now - 86400, now + 86400 * 30};
    cs_cert_spec ls = {names[0], names, 2, 0, now - 86400, now + 86400 * 30};
    X509 *parent = c->root, *x;
    EVP_PKEY *pkey = c->root_key, *k;

    for (int i = 0; i < n; i++) {
        char cn[64];

        snprintf(cn, sizeof(cn), "certsync test CA level %d", i + 1);
        ca.common_name = cn;
        assert_int_equal(cs_key_generate(CS_KEY_EC256, &k), CS_OK);
        assert_int_equal(cs_cert_issue(&ca, k, parent, pkey, &x), CS_OK);
        sk_X509_insert(issuers, x, 0);
        if (pkey != c->root_key)
            EVP_PKEY_free(pkey);
        parent = x;
        pkey = k;
    }
    assert_int_equal(cs_key_generate(CS_KEY_EC256, leaf_key), CS_OK);
    assert_int_equal(cs_cert_issue(&ls, *leaf_key, parent, pkey, leaf), CS_OK);
    if (pkey != c->root_key)
        EVP_PKEY_free(pkey);
}

static void a_chain_of_more_than_ten_issuers_is_refused(void **state)
{
    STACK_OF(X509) *issuers = sk_X509_new_null();
    cs_test_chain c;
    cs_bundle *b = NULL;
    EVP_PKEY *key;
    X509 *leaf;
    char *d = cs_test_tmpdir("bundle");
    (void)state;

    cs_test_chain_make(&c, CS_KEY_EC256, names, 2, -1, 90);
    long_chain(&c, 11, issuers, &key, &leaf);
    /* as the service would hand it over: leaf + 11 intermediates, in order */
    cs_test_write_certs(cs_test_path(d, "leaf.pem"), leaf, NULL);
    cs_test_write_key(cs_test_path(d, "key.pem"), key);
    {
        FILE *f = fopen(cs_test_path(d, "chain.pem"), "w");

        for (int i = 0; i < sk_X509_num(issuers); i++)
            PEM_write_X509(f, sk_X509_value(issuers, i));
        fclose(f);
    }
    expect_error(cs_bundle_load_files(cs_test_path(d, "leaf.pem"), cs_test_path(d, "key.pem"),
                                      cs_test_path(d, "chain.pem"), NULL, &b),
                 CS_EBADCERT, "the chain holds 11 certificates besides the leaf; at most 10");
    assert_null(b);
    /* built from objects, validation refuses it */
    assert_int_equal(cs_bundle_new(leaf, issuers, key, &b), CS_OK);
    expect_error(cs_bundle_validate(b, names, 2, time(NULL), "svc"), CS_EBADCERT,
                 "svc: the chain holds 11 certificates");
    cs_bundle_free(b);
    /* ten still load */
    X509_free(sk_X509_pop(issuers)); /* the topmost: level 1 */
    assert_int_equal(cs_bundle_new(leaf, issuers, key, &b), CS_OK);
    {
        char *lp, *ip, *kp, *all;
        size_t ll, il, kl;

        assert_int_equal(cs_bundle_pem_leaf(b, &lp, &ll), CS_OK);
        assert_int_equal(cs_bundle_pem_issuers(b, &ip, &il), CS_OK);
        assert_int_equal(cs_bundle_pem_key(b, &kp, &kl), CS_OK);
        cs_bundle_free(b);
        all = malloc(ll + il + 1);
        memcpy(all, lp, ll);
        memcpy(all + ll, ip, il + 1);
        if (cs_bundle_load_pem(all, ll + il, kp, kl, "x", &b) != CS_OK)
            fail_msg("%s", cs_error_last());
        assert_int_equal(sk_X509_num(cs_bundle_issuers(b)), 10);
        assert_int_equal(cs_bundle_validate(b, names, 2, time(NULL), "svc"), CS_OK);
        cs_bundle_free(b);
        free(lp);
        free(ip);
        free(kp);
        free(all);
    }
    sk_X509_pop_free(issuers, X509_free);
    X509_free(leaf);
    EVP_PKEY_free(key);
    cs_test_chain_free(&c);
    free(d);
}

static void an_input_over_64_kib_is_refused_before_parsing(void **state)
{
    cs_test_chain c;
    cs_bundle *b = NULL;
    char *leaf_pem, *key_pem, *big;
    size_t n, klen;
    (void)state;

    cs_test_chain_make(&c, CS_KEY_EC256, names, 2, -1, 90);
    assert_int_equal(cs_bundle_pem_leaf(c.bundle, &leaf_pem, &n), CS_OK);
    assert_int_equal(cs_bundle_pem_key(c.bundle, &key_pem, &klen), CS_OK);
    assert_int_equal(cs_bundle_load_pem(leaf_pem, n, key_pem, klen, "svc", &b), CS_OK);
    cs_bundle_free(b);
    b = NULL;
    /* PEM allows text around blocks: one certificate, padded past 64 KiB */
    big = malloc(n + 70000 + 1);
    memcpy(big, leaf_pem, n);
    memset(big + n, '#', 70000);
    big[n + 70000] = '\0';
    expect_error(cs_bundle_load_pem(big, n + 70000, key_pem, klen, "answer of X", &b), CS_EBADCERT,
                 "answer of X is 70");
    expect_error(cs_bundle_load_pem(big, n + 70000, key_pem, klen, "answer of X", &b), CS_EBADCERT,
                 "over 64 KiB are refused");
    assert_null(b);
    free(big);
    free(leaf_pem);
    free(key_pem);
    cs_test_chain_free(&c);
}

static void a_bundle_without_a_chain_encodes_an_empty_chain(void **state)
{
    cs_test_chain c;
    cs_bundle *b;
    char *pem;
    size_t len = 99;
    (void)state;

    cs_test_chain_make(&c, CS_KEY_EC256, names, 2, -1, 90);
    assert_int_equal(cs_bundle_new(c.leaf, NULL, c.leaf_key, &b), CS_OK);
    assert_int_equal(cs_bundle_pem_issuers(b, &pem, &len), CS_OK);
    assert_int_equal(len, 0);
    assert_string_equal(pem, "");
    free(pem);
    cs_bundle_free(b);
    cs_test_chain_free(&c);
}

static void trust_is_checked_against_the_given_roots(void **state)
{
    cs_test_chain c, other;
    char *d = cs_test_tmpdir("bundle");
    time_t now = time(NULL);
    cs_cert_spec self = {names[0], names, 2, 0, now - 86400, now + 86400 * 30};
    cs_bundle *b;
    X509 *x;
    (void)state;

    cs_test_chain_make(&c, CS_KEY_EC256, names, 2, -1, 90);
    cs_test_chain_make(&other, CS_KEY_EC256, names, 2, -1, 90);
    cs_test_write_certs(cs_test_path(d, "root.pem"), c.root, NULL);
    assert_int_equal(cs_bundle_verify_trust(c.bundle, cs_test_path(d, "root.pem"), "cert 7"),
                     CS_OK);
    /* another CA with the same names: not trusted */
    expect_error(
        cs_bundle_verify_trust(other.bundle, cs_test_path(d, "root.pem"), "cert 8"), CS_EBADCERT,
        "cert 8: the chain is not trusted: unable to get local issuer certificate (at depth 1, ");
    /* the system's roots do not know a test CA */
    expect_error(cs_bundle_verify_trust(c.bundle, NULL, "cert 7"), CS_EBADCERT,
                 "against the system's trusted roots");
    /* a self-signed leaf */
    assert_int_equal(cs_cert_issue(&self, c.leaf_key, NULL, c.leaf_key, &x), CS_OK);
    assert_int_equal(cs_bundle_new(x, NULL, c.leaf_key, &b), CS_OK);
    expect_error(cs_bundle_verify_trust(b, cs_test_path(d, "root.pem"), "cert 9"), CS_EBADCERT,
                 "self-signed certificate");
    cs_bundle_free(b);
    X509_free(x);
    /* a trust-file that is not there */
    expect_error(cs_bundle_verify_trust(c.bundle, cs_test_path(d, "none.pem"), "cert 7"),
                 CS_ECONFIG, "trust-file");
    cs_test_chain_free(&c);
    cs_test_chain_free(&other);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_full_chain_in_any_order_is_put_in_order),
        cmocka_unit_test(a_separate_chain_file_and_der_inputs_load),
        cmocka_unit_test(sec1_pkcs1_and_encrypted_pkcs8_keys_load),
        cmocka_unit_test(bad_inputs_are_rejected_with_the_file_and_reason),
        cmocka_unit_test(validity_window_and_names_are_checked),
        cmocka_unit_test(weak_keys_are_refused),
        cmocka_unit_test(fingerprint_serial_and_names_describe_the_leaf),
        cmocka_unit_test(a_chain_of_more_than_ten_issuers_is_refused),
        cmocka_unit_test(an_input_over_64_kib_is_refused_before_parsing),
        cmocka_unit_test(a_bundle_without_a_chain_encodes_an_empty_chain),
        cmocka_unit_test(trust_is_checked_against_the_given_roots),
    };

    return cmocka_run_group_tests_name("bundle", tests, NULL, NULL);
}
