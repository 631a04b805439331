/*
 * One loading policy for nginx and Apache: a version whose key, chain or names fail is never
 * served; an expired but otherwise good one is served with a warning until a valid one exists.
 */
#include <string.h>
#include <time.h>

#include "cs_serve.h"
#include "cs_test.h"

static const char *const NAMES[] = {"shop.test", "www.shop.test"};
static char *DOMAINS[] = {"shop.test", "www.shop.test", NULL};
static const cs_cert_conf CC = {.name = "shop", .domains = DOMAINS, .n_domains = 2};

static void a_valid_version_is_served(void **state)
{
    cs_test_chain c;
    cs_serve_verdict v;
    (void)state;

    cs_test_chain_make(&c, CS_KEY_EC256, NAMES, 2, -1, 90);
    assert_int_equal(cs_serve_check(c.bundle, &CC, 0, "\"shop\" v1", &v), CS_OK);
    assert_int_equal(v, CS_SERVE_VALID);
    assert_true(cs_serve_replaces(v, c.bundle, NULL, 0));
    cs_test_chain_free(&c);
}

static void an_expired_but_good_version_is_served_with_a_warning(void **state)
{
    cs_test_chain c;
    cs_serve_verdict v;
    (void)state;

    cs_test_chain_make(&c, CS_KEY_EC256, NAMES, 2, -100, -10);
    assert_int_equal(cs_serve_check(c.bundle, &CC, 0, "\"shop\" v2", &v), CS_OK);
    assert_int_equal(v, CS_SERVE_EXPIRED);
    assert_non_null(strstr(cs_error_last(), "\"shop\" v2 expired"));
    /* it replaces the fallback: better than a self-signed certificate */
    assert_true(cs_serve_replaces(v, c.bundle, NULL, 0));
    cs_test_chain_free(&c);
}

static void a_version_whose_names_fail_is_never_served(void **state)
{
    static const char *const OTHER[] = {"blog.test"};
    cs_test_chain c, old;
    cs_serve_verdict v;
    (void)state;

    cs_test_chain_make(&c, CS_KEY_EC256, OTHER, 1, -1, 90);
    assert_int_equal(cs_serve_check(c.bundle, &CC, 0, "\"shop\" v3", &v), CS_EBADCERT);
    assert_int_equal(v, CS_SERVE_REFUSED);
    assert_non_null(strstr(cs_error_last(), "shop.test"));
    assert_false(cs_serve_replaces(v, c.bundle, NULL, 0));
    /* expired as well: still refused for its names, not served as "expired" */
    cs_test_chain_make(&old, CS_KEY_EC256, OTHER, 1, -100, -10);
    assert_int_equal(cs_serve_check(old.bundle, &CC, 0, "\"shop\" v4", &v), CS_EBADCERT);
    assert_int_equal(v, CS_SERVE_REFUSED);
    cs_test_chain_free(&c);
    cs_test_chain_free(&old);
}

static void a_version_whose_key_or_chain_fail_is_never_served(void **state)
{
    cs_test_chain a, b;
    cs_bundle *wrong_key, *wrong_chain;
    STACK_OF(X509) *is = sk_X509_new_null();
    cs_serve_verdict v;
    (void)state;

    cs_test_chain_make(&a, CS_KEY_EC256, NAMES, 2, -1, 90);
    cs_test_chain_make(&b, CS_KEY_EC256, NAMES, 2, -1, 90);
    sk_X509_push(is, a.inter);
    assert_int_equal(cs_bundle_new(a.leaf, is, b.leaf_key, &wrong_key), CS_OK);
    sk_X509_set(is, 0, b.inter);
    assert_int_equal(cs_bundle_new(a.leaf, is, a.leaf_key, &wrong_chain), CS_OK);

    assert_int_equal(cs_serve_check(wrong_key, &CC, 0, "\"shop\" v5", &v), CS_EBADCERT);
    assert_int_equal(v, CS_SERVE_REFUSED);
    assert_non_null(strstr(cs_error_last(), "private key does not match"));
    assert_int_equal(cs_serve_check(wrong_chain, &CC, 0, "\"shop\" v6", &v), CS_EBADCERT);
    assert_int_equal(v, CS_SERVE_REFUSED);
    assert_non_null(strstr(cs_error_last(), "chain does not link"));

    sk_X509_free(is);
    cs_bundle_free(wrong_key);
    cs_bundle_free(wrong_chain);
    cs_test_chain_free(&a);
    cs_test_chain_free(&b);
}

static void a_version_not_valid_yet_is_not_served(void **state)
{
    cs_test_chain c;
    cs_serve_verdict v;
    (void)state;

    cs_test_chain_make(&c, CS_KEY_EC256, NAMES, 2, 10, 100);
    assert_int_equal(cs_serve_check(c.bundle, &CC, 0, "\"shop\" v7", &v), CS_EBADCERT);
    assert_int_equal(v, CS_SERVE_REFUSED);
    cs_test_chain_free(&c);
}

static void an_expired_version_never_replaces_a_valid_one(void **state)
{
    cs_test_chain valid, expired, older;
    cs_serve_verdict v;
    (void)state;

    cs_test_chain_make(&valid, CS_KEY_EC256, NAMES, 2, -1, 90);
    cs_test_chain_make(&expired, CS_KEY_EC256, NAMES, 2, -100, -10);
    cs_test_chain_make(&older, CS_KEY_EC256, NAMES, 2, -200, -50);
    assert_int_equal(cs_serve_check(expired.bundle, &CC, 0, "\"shop\" v8", &v), CS_OK);
    /* a valid one is served: it stays */
    assert_false(cs_serve_replaces(v, expired.bundle, valid.bundle, 0));
    /* an older expired one is served: the newer expired one is better */
    assert_true(cs_serve_replaces(v, expired.bundle, older.bundle, 0));
    assert_false(cs_serve_replaces(v, older.bundle, expired.bundle, 0));
    /* a valid one replaces an expired one */
    assert_true(cs_serve_replaces(CS_SERVE_VALID, valid.bundle, expired.bundle, 0));
    cs_test_chain_free(&valid);
    cs_test_chain_free(&expired);
    cs_test_chain_free(&older);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_valid_version_is_served),
        cmocka_unit_test(an_expired_but_good_version_is_served_with_a_warning),
        cmocka_unit_test(a_version_whose_names_fail_is_never_served),
        cmocka_unit_test(a_version_whose_key_or_chain_fail_is_never_served),
        cmocka_unit_test(a_version_not_valid_yet_is_not_served),
        cmocka_unit_test(an_expired_version_never_replaces_a_valid_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
