/* The one change check of `current` that the servers' watchers call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cs_store.h"
#include "cs_test.h"

static const char *const names[] = {"shop.example.com"};

static void install(cs_store *s, const cs_test_chain *c, unsigned *version)
{
    cs_install_opts o = {0};

    o.provider = "import";
    o.names = names;
    o.n_names = 1;
    assert_int_equal(cs_store_install(s, "shop", c->bundle, &o, version), CS_OK);
}

static void a_server_sees_each_switch_of_current_once(void **state)
{
    char *root = cs_test_tmpdir("current");
    cs_store_stamp seen = {0};
    cs_test_chain a, b;
    cs_store *s;
    unsigned v1, v2, back;
    int changed = -1;
    (void)state;

    cs_test_chain_make(&a, CS_KEY_EC256, names, 1, -1, 90);
    cs_test_chain_make(&b, CS_KEY_EC256, names, 1, -1, 90);
    assert_int_equal(cs_store_open(root, NULL, &s), CS_OK);

    /* no version yet: nothing to serve, nothing changed */
    assert_int_equal(cs_store_current_changed(s, "shop", &seen, &changed), CS_OK);
    assert_int_equal(changed, 0);
    assert_int_equal(seen.linked, 0);

    /* the first version is a change, seen once */
    install(s, &a, &v1);
    assert_int_equal(cs_store_current_changed(s, "shop", &seen, &changed), CS_OK);
    assert_int_equal(changed, 1);
    assert_int_equal(seen.linked, 1);
    assert_int_equal(cs_store_current_changed(s, "shop", &seen, &changed), CS_OK);
    assert_int_equal(changed, 0);

    /* a new version, and a rollback to the old one: each is a change */
    install(s, &b, &v2);
    assert_int_equal(cs_store_current_changed(s, "shop", &seen, &changed), CS_OK);
    assert_int_equal(changed, 1);
    assert_int_equal(cs_store_rollback(s, "shop", 0, &back), CS_OK);
    assert_int_equal(back, v1);
    assert_int_equal(cs_store_current_changed(s, "shop", &seen, &changed), CS_OK);
    assert_int_equal(changed, 1);
    assert_int_equal(cs_store_current_changed(s, "shop", &seen, &changed), CS_OK);
    assert_int_equal(changed, 0);

    cs_store_free(s);
    cs_test_chain_free(&a);
    cs_test_chain_free(&b);
    free(root);
}

static void a_store_that_cannot_be_looked_at_says_where(void **state)
{
    char *root = cs_test_tmpdir("current"), dir[4096], aside[4096];
    cs_store_stamp seen = {0};
    cs_test_chain a;
    cs_store *s;
    int changed = -1;
    (void)state;

    cs_test_chain_make(&a, CS_KEY_EC256, names, 1, -1, 90);
    assert_int_equal(cs_store_open(root, NULL, &s), CS_OK);
    install(s, &a, NULL);
    assert_int_equal(cs_store_current_changed(s, "shop", &seen, &changed), CS_OK);
    assert_int_equal(changed, 1);

    /* the certificate's directory replaced by a file: lstat fails with ENOTDIR */
    snprintf(dir, sizeof(dir), "%s/certs/shop", root);
    snprintf(aside, sizeof(aside), "%s/certs/shop.aside", root);
    assert_int_equal(rename(dir, aside), 0);
    cs_test_write_text(dir, "not a directory\n");
    assert_int_equal(cs_store_current_changed(s, "shop", &seen, &changed), CS_EIO);
    assert_int_equal(changed, 0);
    assert_non_null(strstr(cs_error_last(), "certs/shop/current"));
    assert_int_equal(unlink(dir), 0);
    assert_int_equal(rename(aside, dir), 0);

    /* once it can be looked at again, it counts as a change: the server re-checks */
    assert_int_equal(cs_store_current_changed(s, "shop", &seen, &changed), CS_OK);
    assert_int_equal(changed, 1);

    cs_store_free(s);
    cs_test_chain_free(&a);
    free(root);
}

static void a_name_that_escapes_the_store_is_refused(void **state)
{
    char *root = cs_test_tmpdir("current");
    cs_store_stamp seen = {0};
    cs_store *s;
    int changed = -1;
    (void)state;

    assert_int_equal(cs_store_open(root, NULL, &s), CS_OK);
    assert_int_equal(cs_store_current_changed(s, "../shop", &seen, &changed), CS_EINVAL);
    assert_int_equal(changed, 0);
    cs_store_free(s);
    free(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_server_sees_each_switch_of_current_once),
        cmocka_unit_test(a_store_that_cannot_be_looked_at_says_where),
        cmocka_unit_test(a_name_that_escapes_the_store_is_refused),
    };

    return cmocka_run_group_tests_name("store_current", tests, NULL, NULL);
}
