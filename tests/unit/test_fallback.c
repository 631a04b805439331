/* A name with no version yet still gets a certificate to serve: self-signed, for its names. */
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "cs_fallback.h"
#include "cs_test.h"

#define NOW 1767323045

static const char *const NAMES[] = {"shop.example.com", "*.shop.example.com"};

static const char *subject_cn(const cs_bundle *b)
{
    static char cn[128];

    X509_NAME_get_text_by_NID(X509_get_subject_name(cs_bundle_leaf(b)), NID_commonName, cn,
                              sizeof(cn));
    return cn;
}

static void an_ec_fallback_covers_the_names_for_thirty_days(void **state)
{
    cs_fallback_spec spec = {.name = "shop", .names = NAMES, .n_names = 2, .now = NOW};
    cs_bundle *b;
    X509 *leaf;
    (void)state;

    spec.key_type = CS_KEY_EC384; /* any EC type: P-256 */
    assert_int_equal(cs_fallback_issue(&spec, &b), CS_OK);
    leaf = cs_bundle_leaf(b);
    assert_string_equal(subject_cn(b), "certsync fallback for shop");
    assert_int_equal(EVP_PKEY_get_base_id(cs_bundle_key(b)), EVP_PKEY_EC);
    assert_int_equal(EVP_PKEY_get_bits(cs_bundle_key(b)), 256);
    assert_int_equal(cs_bundle_not_after(b), NOW + 30 * 86400L);
    assert_true(cs_bundle_not_before(b) < NOW);
    assert_int_equal(X509_verify(leaf, cs_bundle_key(b)), 1); /* self-signed, by its own key */
    assert_int_equal(X509_check_host(leaf, "shop.example.com", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(leaf, "www.shop.example.com", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(leaf, "other.example.com", 0, 0, NULL), 0);
    cs_bundle_free(b);
}

static void an_rsa_key_type_gets_an_rsa_fallback(void **state)
{
    cs_fallback_spec spec = {.name = "legacy", .names = NAMES, .n_names = 1};
    cs_bundle *b;
    (void)state;

    spec.key_type = CS_KEY_RSA4096; /* RSA: 2048, made at every start */
    assert_int_equal(cs_fallback_issue(&spec, &b), CS_OK);
    assert_int_equal(EVP_PKEY_get_base_id(cs_bundle_key(b)), EVP_PKEY_RSA);
    assert_int_equal(EVP_PKEY_get_bits(cs_bundle_key(b)), 2048);
    assert_int_equal(cs_fallback_key_type(CS_KEY_RSA3072), CS_KEY_RSA2048);
    assert_int_equal(cs_fallback_key_type(CS_KEY_EC256), CS_KEY_EC256);
    /* now 0: the current time */
    assert_in_range(cs_bundle_not_after(b), time(NULL) + 30 * 86400L - 5, time(NULL) + 30 * 86400L);
    cs_bundle_free(b);
}

static void a_given_key_is_reused_and_stays_the_callers(void **state)
{
    cs_fallback_spec spec = {.name = "a", .names = NAMES, .n_names = 2};
    cs_bundle *b1, *b2;
    EVP_PKEY *key;
    (void)state;

    assert_int_equal(cs_key_generate(CS_KEY_EC256, &key), CS_OK);
    spec.key = key;
    assert_int_equal(cs_fallback_issue(&spec, &b1), CS_OK);
    spec.name = "b";
    assert_int_equal(cs_fallback_issue(&spec, &b2), CS_OK);
    assert_int_equal(EVP_PKEY_eq(cs_bundle_key(b1), key), 1);
    assert_int_equal(EVP_PKEY_eq(cs_bundle_key(b2), key), 1);
    cs_bundle_free(b1);
    cs_bundle_free(b2);
    EVP_PKEY_free(key); /* still ours: no double free under ASan */
}

static void without_names_the_certificate_name_is_used_and_a_long_one_is_cut(void **state)
{
    char longest[65];
    cs_fallback_spec spec = {0};
    cs_bundle *b;
    char **names;
    size_t n;
    (void)state;

    memset(longest, 'n', 64);
    longest[64] = '\0';
    spec.name = longest;
    assert_int_equal(cs_fallback_issue(&spec, &b), CS_OK);
    assert_int_equal(strlen(subject_cn(b)), 64);
    assert_memory_equal(subject_cn(b), "certsync fallback for nnn", 25);
    names = cs_bundle_names(b, &n);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], longest);
    cs_strv_free(names);
    cs_bundle_free(b);

    spec.name = "";
    assert_int_equal(cs_fallback_issue(&spec, &b), CS_EINVAL);
    assert_null(b);
    assert_non_null(strstr(cs_error_last(), "needs the certificate's name"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(an_ec_fallback_covers_the_names_for_thirty_days),
        cmocka_unit_test(an_rsa_key_type_gets_an_rsa_fallback),
        cmocka_unit_test(a_given_key_is_reused_and_stays_the_callers),
        cmocka_unit_test(without_names_the_certificate_name_is_used_and_a_long_one_is_cut),
    };

    return cmocka_run_group_tests_name("fallback", tests, NULL, NULL);
}
