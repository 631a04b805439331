/* The local CA provider through a sync, as `certsync sync` runs it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cs_config.h"
#include "cs_fs.h"
#include "cs_localca.h"
#include "cs_store.h"
#include "cs_sync.h"
#include "cs_test.h"

typedef struct {
    cs_config *c;
    cs_store *s;
    cs_sync_session *sess;
    char *dir;
} env;

static void setup_env(env *e, const char *certs)
{
    char conf[8192];

    e->dir = cs_test_tmpdir("sync");
    snprintf(conf, sizeof(conf), "[store]\npath = %s/store\n\n%s", e->dir, certs);
    cs_test_write_text(cs_test_path(e->dir, "certsync.conf"), conf);
    assert_int_equal(cs_config_load(cs_test_path(e->dir, "certsync.conf"), &e->c), CS_OK);
    assert_int_equal(cs_store_open_config(e->c, &e->s), CS_OK);
    assert_non_null(e->sess = cs_sync_session_new(e->c));
}

static void teardown_env(env *e)
{
    cs_sync_session_free(e->sess);
    cs_store_free(e->s);
    cs_config_free(e->c);
    free(e->dir);
}

static void the_first_sync_issues_and_the_next_changes_nothing(void **state)
{
    env e;
    cs_sync_outcome out;
    cs_cert_info info;
    cs_bundle *b;
    struct stat st;
    char ca[4096];
    (void)state;

    setup_env(&e, "[cert web]\ndomain = web.test www.web.test\nformats = pfx jks\n");
    /* no session, no configuration: an error, never a sync that skips on-change */
    assert_int_equal(cs_sync_cert(NULL, e.s, &e.c->certs[0], 0, &out), CS_EINVAL);
    assert_null(cs_sync_session_new(NULL));
    assert_int_equal(cs_sync_cert(e.sess, e.s, &e.c->certs[0], 0, &out), CS_OK);
    assert_int_equal(out.result, CS_SYNC_INSTALLED);
    assert_int_equal(out.version, 1);
    assert_string_equal(out.reason, "no version yet");
    /* the CA's keys are private */
    assert_int_equal(cs_store_area(e.s, "local-ca", ca, sizeof(ca)), CS_OK);
    assert_int_equal(stat(cs_test_path(ca, "root.key"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(cs_test_path(ca, "issuer.key"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* a leaf for both names, issued by the intermediate, 90 days by default */
    assert_int_equal(cs_store_load(e.s, "web", 0, &b), CS_OK);
    assert_int_equal(sk_X509_num(cs_bundle_issuers(b)), 1);
    assert_true(cs_bundle_not_after(b) > time(NULL) + 89 * 86400);
    cs_bundle_free(b);
    assert_int_equal(cs_store_info(e.s, "web", 0, &info), CS_OK);
    assert_string_equal(info.provider, "local-ca");
    assert_int_equal(info.n_names, 2);
    cs_cert_info_clear(&info);

    assert_int_equal(cs_sync_cert(e.sess, e.s, &e.c->certs[0], 0, &out), CS_OK);
    assert_int_equal(out.result, CS_SYNC_UNCHANGED);
    assert_int_equal(out.version, 1);
    assert_non_null(strstr(out.reason, "is good for"));
    teardown_env(&e);
}

static void renew_before_force_and_changed_names_issue_again(void **state)
{
    env e;
    cs_sync_outcome out;
    cs_sync_state st;
    (void)state;

    /* a 10-day certificate, then the operator asks for 20 days' notice: it is due */
    setup_env(&e,
              "[cert a]\ndomain = a.test\nlifetime = 10d\nrenew-before = 5d\nkey-type = rsa2048\n"
              "[cert b]\ndomain = b.test\n");
    assert_int_equal(cs_sync_cert(e.sess, e.s, &e.c->certs[0], 0, &out), CS_OK);
    e.c->certs[0].renew_before = 20L * 86400;
    e.c->certs[0].lifetime = 30L * 86400;
    assert_int_equal(cs_sync_cert(e.sess, e.s, &e.c->certs[0], 0, &out), CS_OK);
    assert_int_equal(out.result, CS_SYNC_INSTALLED);
    assert_int_equal(out.version, 2);
    assert_non_null(strstr(out.reason, "inside renew-before"));
    assert_int_equal(cs_sync_cert(e.sess, e.s, &e.c->certs[1], 0, &out), CS_OK);
    assert_int_equal(cs_sync_cert(e.sess, e.s, &e.c->certs[1], 1, &out), CS_OK);
    assert_int_equal(out.result, CS_SYNC_INSTALLED);
    assert_non_null(strstr(out.reason, "forced"));
    assert_int_equal(cs_store_sync_state(e.s, "b", &st), CS_OK);
    assert_int_equal(st.result, CS_SYNC_INSTALLED);
    teardown_env(&e);

    /* the same store, a config that now asks for another name */
    setup_env(&e, "[cert a]\ndomain = a.test\n");
    assert_int_equal(cs_sync_cert(e.sess, e.s, &e.c->certs[0], 0, &out), CS_OK);
    cs_config_free(e.c);
    {
        char conf[8192];

        snprintf(conf, sizeof(conf),
                 "[store]\npath = %s/store\n[cert a]\ndomain = a.test new.test\n", e.dir);
        cs_test_write_text(cs_test_path(e.dir, "certsync.conf"), conf);
        assert_int_equal(cs_config_load(cs_test_path(e.dir, "certsync.conf"), &e.c), CS_OK);
    }
    assert_int_equal(cs_sync_cert(e.sess, e.s, &e.c->certs[0], 0, &out), CS_OK);
    assert_int_equal(out.result, CS_SYNC_INSTALLED);
    assert_non_null(strstr(out.reason, "new.test"));
    teardown_env(&e);
}

static void a_provider_failure_is_recorded_and_changes_nothing(void **state)
{
    env e;
    cs_sync_outcome out;
    cs_sync_state st;
    (void)state;

    /* credentials that cannot be read: the sync fails before any request */
    setup_env(&e, "[provider ali]\ntype = aliyun-cas\nendpoint = https://127.0.0.1:9\n"
                  "credentials = /nonexistent/cred\n[cert shop]\nprovider = ali\ncert-id = 1\n");
    assert_int_equal(cs_sync_cert(e.sess, e.s, &e.c->certs[0], 0, &out), CS_ENOTFOUND);
    assert_int_equal(out.result, CS_SYNC_FAILED);
    assert_int_equal(cs_store_sync_state(e.s, "shop", &st), CS_OK);
    assert_int_equal(st.result, CS_SYNC_FAILED);
    assert_non_null(strstr(st.error, "/nonexistent/cred"));
    assert_int_equal(cs_store_current(e.s, "shop", &out.version), CS_ENOTFOUND);
    teardown_env(&e);
}

/* A hook that fails until the file ok exists; it counts its runs in runs. */
static void failing_hook_env(env *e)
{
    char certs[4096], *d = cs_test_tmpdir("synchook");
    const char *hook = cs_test_path(d, "hook.sh");

    snprintf(certs, sizeof(certs), "[cert web]\ndomain = web.test\non-change = %s\n", hook);
    cs_test_write_text(hook, "#!/bin/sh\n"
                             "echo run >> \"$(dirname \"$0\")/runs\"\n"
                             "[ -e \"$(dirname \"$0\")/ok\" ] && exit 0\n"
                             "echo 'Tomcat said 401' >&2\n"
                             "exit 3\n");
    chmod(hook, 0755);
    setup_env(e, certs);
    free(e->dir);
    e->dir = d;
}

static long runs_of(const env *e)
{
    char *text = NULL;
    long n = 0;

    if (cs_fs_read(cs_test_path(e->dir, "runs"), 4096, &text, NULL) == CS_OK)
        for (char *p = text; *p; p++)
            n += *p == '\n';
    free(text);
    return n;
}

static void a_failed_on_change_stays_pending_until_a_sync_delivers_it(void **state)
{
    env e;
    cs_sync_outcome out;
    cs_sync_state st;
    time_t t0 = time(NULL);
    (void)state;

    failing_hook_env(&e);
    assert_int_equal(cs_sync_cert(e.sess, e.s, &e.c->certs[0], 0, &out), CS_ERR);
    assert_int_equal(out.result, CS_SYNC_INSTALLED);
    assert_non_null(strstr(cs_error_last(), "stays pending"));
    assert_int_equal(cs_store_sync_state(e.s, "web", &st), CS_OK);
    assert_int_equal(st.hook.version, 1);
    assert_int_equal(st.hook.attempts, 1);
    assert_int_equal(st.hook.exit_status, 3);
    assert_string_equal(st.hook.command, "hook.sh");
    assert_string_equal(st.hook.error, "Tomcat said 401");
    assert_true(st.hook.since >= t0 && st.hook.next_attempt >= st.hook.since + 60);
    /* the in-server syncs (backoff on, the default) wait for next_attempt */
    assert_int_equal(cs_sync_cert(e.sess, e.s, &e.c->certs[0], 0, &out), CS_OK);
    assert_int_equal(out.hook_retried, HOOK_NOT_RETRIED);
    assert_int_equal(runs_of(&e), 1);
    /* `certsync sync` (no backoff) runs it at once; it fails again: one attempt more */
    cs_sync_session_set_backoff(e.sess, 0);
    assert_int_equal(cs_sync_cert(e.sess, e.s, &e.c->certs[0], 0, &out), CS_ERR);
    assert_int_equal(out.result, CS_SYNC_UNCHANGED);
    assert_int_equal(out.hook_retried, HOOK_STILL_FAILING);
    assert_int_equal(cs_store_sync_state(e.s, "web", &st), CS_OK);
    assert_int_equal(st.hook.attempts, 2);
    assert_true(st.hook.since <= st.hook.next_attempt - 120);
    /* fixed: the next sync delivers it and nothing is pending any more */
    cs_test_write_text(cs_test_path(e.dir, "ok"), "");
    assert_int_equal(cs_sync_cert(e.sess, e.s, &e.c->certs[0], 0, &out), CS_OK);
    assert_int_equal(out.hook_retried, HOOK_DELIVERED);
    assert_int_equal(runs_of(&e), 3);
    assert_int_equal(cs_store_sync_state(e.s, "web", &st), CS_OK);
    assert_int_equal(st.hook.version, 0);
    assert_int_equal(cs_sync_cert(e.sess, e.s, &e.c->certs[0], 0, &out), CS_OK);
    assert_int_equal(runs_of(&e), 3);
    teardown_env(&e);
}

static void the_lock_is_free_while_on_change_runs(void **state)
{
    env e;
    char certs[4096], *marker;
    cs_store *other;
    cs_sync_outcome out;
    int token, status, i;
    pid_t pid;
    (void)state;

    e.dir = cs_test_tmpdir("sync");
    marker = strdup(cs_test_path(e.dir, "hook-started"));
    cs_test_write_text(cs_test_path(e.dir, "slow.sh"), "#!/bin/sh\n: > \"$1\"\nsleep 3\n");
    chmod(cs_test_path(e.dir, "slow.sh"), 0755);
    snprintf(certs, sizeof(certs), "[cert web]\ndomain = web.test\non-change = %s %s\n",
             cs_test_path(e.dir, "slow.sh"), marker);
    free(e.dir);
    setup_env(&e, certs);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(cs_sync_cert(cs_sync_session_new(e.c), e.s, &e.c->certs[0], 0, &out) == CS_OK ? 0
                                                                                            : 1);
    for (i = 0; i < 200 && access(marker, F_OK) != 0; i++)
        usleep(50000);
    assert_int_equal(access(marker, F_OK), 0);
    /* an import (another process, its own handle) gets the lock while the hook sleeps */
    assert_int_equal(cs_store_open_config(e.c, &other), CS_OK);
    assert_int_equal(cs_store_lock(other, "web", 1, &token), CS_OK);
    cs_store_unlock(other, token);
    cs_store_free(other);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    free(marker);
    teardown_env(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_first_sync_issues_and_the_next_changes_nothing),
        cmocka_unit_test(renew_before_force_and_changed_names_issue_again),
        cmocka_unit_test(a_provider_failure_is_recorded_and_changes_nothing),
        cmocka_unit_test(the_lock_is_free_while_on_change_runs),
        cmocka_unit_test(a_failed_on_change_stays_pending_until_a_sync_delivers_it),
    };

    return cmocka_run_group_tests_name("sync", tests, NULL, NULL);
}
