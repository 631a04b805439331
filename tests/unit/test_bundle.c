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
    assert_int_equal(cs_bundle_load_files(&b, cs_test_path(d, "full.pem"),
                                          cs_test_path(d, "key.pem"), NULL, NULL),
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
    assert_int_equal(cs_bundle_load_files(&b, cs_test_path(d, "leaf.der"),
                                          cs_test_path(d, "key.der"), cs_test_path(d, "chain.pem"),
                                          NULL),
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

    assert_int_equal(cs_bundle_load_files(&b, cs_test_path(d, "ec.pem"),
                                          cs_test_path(d, "ec-sec1.key"), NULL, NULL),
                     CS_OK);
    cs_bundle_free(b);
    assert_int_equal(cs_bundle_load_files(&b, cs_test_path(d, "rsa.pem"),
                                          cs_test_path(d, "rsa-pkcs1.key"), NULL, NULL),
                     CS_OK);
    cs_bundle_free(b);
    assert_int_equal(cs_bundle_load_files(&b, cs_test_path(d, "ec.pem"), cs_test_path(d, "enc.key"),
                                          NULL, cs_test_path(d, "pw")),
                     CS_OK);
    assert_true(cs_key_matches_cert(cs_bundle_key(b), ec.leaf));
    cs_bundle_free(b);
    expect_error(
        cs_bundle_load_files(&b, cs_test_path(d, "ec.pem"), cs_test_path(d, "enc.key"), NULL, NULL),
        CS_EPASSWORD, "--key-password-file");
    expect_error(cs_bundle_load_files(&b, cs_test_path(d, "ec.pem"), cs_test_path(d, "enc.key"),
                                      NULL, cs_test_path(d, "badpw")),
                 CS_EPASSWORD, "password is wrong");
    expect_error(cs_bundle_load_files(&b, cs_test_path(d, "ec.pem"), cs_test_path(d, "enc.key"),
                                      NULL, cs_test_path(d, "missing-pw")),
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

    expect_error(cs_bundle_load_files(&b, cs_test_path(d, "a.pem"), cs_test_path(d, "other.key"),
                                      NULL, NULL),
                 CS_EBADCERT, "does not match");
    expect_error(cs_bundle_load_files(&b, cs_test_path(d, "wrongchain.pem"),
                                      cs_test_path(d, "a.key"), NULL, NULL),
                 CS_EBADCERT, "does not link");
    /* the key where the certificate belongs */
    expect_error(
        cs_bundle_load_files(&b, cs_test_path(d, "a.key"), cs_test_path(d, "a.key"), NULL, NULL),
        CS_EBADCERT, "BEGIN CERTIFICATE");
    expect_error(
        cs_bundle_load_files(&b, cs_test_path(d, "nope.pem"), cs_test_path(d, "a.key"), NULL, NULL),
        CS_ENOTFOUND, "nope.pem");

    /* truncated: cut the file in the middle of the second certificate */
    assert_int_equal(cs_bundle_pem_leaf(a.bundle, &pem, &len), CS_OK);
    f = fopen(cs_test_path(d, "trunc.pem"), "w");
    fputs(pem, f);
    fwrite(pem, 1, len / 2, f);
    fclose(f);
    free(pem);
    expect_error(cs_bundle_load_files(&b, cs_test_path(d, "trunc.pem"), cs_test_path(d, "a.key"),
                                      NULL, NULL),
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
        cs_bundle_load_files(&b, cs_test_path(d, "a.pem"), cs_test_path(d, "weak.key"), NULL, NULL),
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
    };

    return cmocka_run_group_tests_name("bundle", tests, NULL, NULL);
}
