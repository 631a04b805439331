/* A dry run of a sync (`certsync sync --dry-run`) through the core: the plan, and nothing done. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cs_config.h"
#include "cs_store.h"
#include "cs_sync.h"
#include "cs_sync_plan.h"
#include "cs_test.h"

static cs_config *load(char *dir)
{
    char conf[4096];
    cs_config *c;

    snprintf(conf, sizeof(conf),
             "[store]\npath = %s/store\n\n[cert web]\ndomain = web.test\nlifetime = 60d\n"
             "on-change = /bin/true web\n",
             dir);
    cs_test_write_text(cs_test_path(dir, "certsync.conf"), conf);
    assert_int_equal(cs_config_load(cs_test_path(dir, "certsync.conf"), &c), CS_OK);
    return c;
}

static void a_plan_says_what_the_sync_would_do_and_does_none_of_it(void **state)
{
    char *dir = cs_test_tmpdir("plan"), path[4200];
    cs_config *c = load(dir);
    cs_sync_session *sess = cs_sync_session_new(c);
    cs_sync_outcome out;
    cs_sync_plan p;
    cs_store *s;
    struct stat st;
    (void)state;

    /* no store yet: due, the local CA would be made first */
    assert_int_equal(cs_sync_plan_cert(sess, NULL, &c->certs[0], 0, &p), CS_OK);
    assert_true(p.due);
    assert_int_equal(p.version, 0);
    assert_string_equal(p.reason, "no version yet");
    assert_non_null(strstr(p.calls, "the local CA would be created (local-ca/); the local CA "
                                    "would issue a new 60-day certificate"));
    assert_string_equal(p.hook, "/bin/true web");

    assert_int_equal(cs_store_open_config(c, &s), CS_OK);
    assert_int_equal(cs_sync_plan_cert(sess, s, &c->certs[0], 0, &p), CS_OK);
    assert_true(p.due);
    snprintf(path, sizeof(path), "%s/store/local-ca", dir);
    assert_int_not_equal(stat(path, &st), 0); /* the plan made no CA */
    snprintf(path, sizeof(path), "%s/store/certs/web", dir);
    assert_int_not_equal(stat(path, &st), 0);

    /* after a sync: not due, no hook, nothing asked */
    assert_int_equal(cs_sync_cert(sess, s, &c->certs[0], 0, &out), CS_OK);
    assert_int_equal(cs_sync_plan_cert(sess, s, &c->certs[0], 0, &p), CS_OK);
    assert_false(p.due);
    assert_int_equal(p.version, 1);
    assert_non_null(strstr(p.reason, "v1 is good for"));
    assert_string_equal(p.hook, "");

    /* forced: due again, with the hook, and the local CA is not made again */
    assert_int_equal(cs_sync_plan_cert(sess, s, &c->certs[0], 1, &p), CS_OK);
    assert_true(p.due);
    assert_non_null(strstr(p.reason, "forced"));
    assert_null(strstr(p.calls, "would be created"));
    assert_string_equal(p.hook, "/bin/true web");

    cs_sync_session_free(sess);
    cs_store_free(s);
    cs_config_free(c);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_plan_says_what_the_sync_would_do_and_does_none_of_it),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
