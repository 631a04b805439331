/* The on-change command: split without a shell, run with the version in its environment. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cs_bundle.h"
#include "cs_config.h"
#include "cs_fs.h"
#include "cs_hook.h"
#include "cs_test.h"

static void words_and_quotes_split_like_a_shell_would_not_interpret(void **state)
{
    char **v;
    (void)state;

    assert_int_equal(cs_argv_split("/usr/bin/x  --a 'b c' \"d'e\" $HOME;rm", &v), CS_OK);
    assert_string_equal(v[0], "/usr/bin/x");
    assert_string_equal(v[1], "--a");
    assert_string_equal(v[2], "b c");
    assert_string_equal(v[3], "d'e");
    assert_string_equal(v[4], "$HOME;rm"); /* no expansion, no command separator */
    assert_null(v[5]);
    cs_strv_free(v);
    assert_int_equal(cs_argv_split("/x 'open", &v), CS_EINVAL);
    assert_non_null(strstr(cs_error_last(), "unclosed"));
    assert_int_equal(cs_argv_split("   ", &v), CS_EINVAL);
}

static void the_command_gets_the_version_and_its_exit_status_counts(void **state)
{
    char *d = cs_test_tmpdir("hook"), cmd[4096], *out;
    const char *script = cs_test_path(d, "hook.sh");
    (void)state;

    cs_test_write_text(script,
                       "#!/bin/sh\n"
                       "echo \"$1|$CERTSYNC_NAME|$CERTSYNC_VERSION|$CERTSYNC_DIR\" > \"$2\"\n"
                       "exit $3\n");
    chmod(script, 0755);
    snprintf(cmd, sizeof(cmd), "%s 'an arg' %s 0", script, cs_test_path(d, "out"));
    assert_int_equal(cs_hook_run(cmd, "shop", 7, "/store/certs/shop/v7", "/c.conf", 10, NULL),
                     CS_OK);
    assert_int_equal(cs_fs_read(cs_test_path(d, "out"), 1000, &out, NULL), CS_OK);
    assert_string_equal(out, "an arg|shop|7|/store/certs/shop/v7\n");
    free(out);
    snprintf(cmd, sizeof(cmd), "%s x %s 3", script, cs_test_path(d, "out"));
    assert_int_equal(cs_hook_run(cmd, "shop", 7, "/d", "/c.conf", 10, NULL), CS_ERR);
    assert_non_null(strstr(cs_error_last(), "exited with status 3"));
    assert_int_equal(cs_hook_run("/nonexistent/reload", "shop", 7, "/d", "/c", 10, NULL), CS_ERR);
    assert_non_null(strstr(cs_error_last(), "cannot run '/nonexistent/reload'"));
    free(d);
}

static void a_failure_keeps_its_exit_status_and_the_last_lines_of_its_stderr(void **state)
{
    char *d = cs_test_tmpdir("hook"), cmd[4096];
    const char *script = cs_test_path(d, "fail.sh");
    cs_hook_result r;
    (void)state;

    cs_test_write_text(script, "#!/bin/sh\n"
                               "for i in 1 2 3 4 5 6 7; do echo \"line $i\" >&2; done\n"
                               "printf '  last \\033[31m words  \\n\\n' >&2\n"
                               "exit 9\n");
    chmod(script, 0755);
    snprintf(cmd, sizeof(cmd), "%s --password-file /secret", script);
    assert_int_equal(cs_hook_run(cmd, "shop", 2, "/d", "/c.conf", 10, &r), CS_ERR);
    assert_int_equal(r.exit_status, 9);
    /* the base name only: arguments may hold what must not be shown */
    assert_string_equal(r.command, "fail.sh");
    /* the last 5 lines, trimmed, an escape sequence defused */
    assert_string_equal(r.tail, "line 4\nline 5\nline 6\nline 7\n  last ?[31m words");
    assert_non_null(strstr(cs_error_last(), "exited with status 9: line 4 | line 5"));
    assert_int_equal(cs_hook_run("/nonexistent/reload", "shop", 2, "/d", "/c", 10, &r), CS_ERR);
    assert_int_equal(r.exit_status, 127);
    assert_non_null(strstr(r.tail, "cannot run '/nonexistent/reload'"));
    /* much more than is kept: still its last lines */
    cs_test_write_text(script, "#!/bin/sh\n"
                               "i=0; while [ $i -lt 2000 ]; do echo \"noise line $i\" >&2; "
                               "i=$((i+1)); done\n"
                               "echo 'the end' >&2; exit 1\n");
    assert_int_equal(cs_hook_run(script, "shop", 2, "/d", "/c", 10, &r), CS_ERR);
    assert_string_equal(r.tail, "noise line 1996\nnoise line 1997\nnoise line 1998\nnoise line "
                                "1999\nthe end");
    cs_test_write_text(script, "#!/bin/sh\nkill -TERM $$\n");
    assert_int_equal(cs_hook_run(script, "shop", 2, "/d", "/c", 10, &r), CS_ERR);
    assert_int_equal(r.exit_status, 128 + 15);
    free(d);
}

static void a_long_command_continues_on_indented_lines(void **state)
{
    char *d = cs_test_tmpdir("hook");
    cs_config *c;
    (void)state;

    cs_test_write_text(cs_test_path(d, "c.conf"), "[cert a]\n"
                                                  "domain = a.test\n"
                                                  "on-change = /usr/bin/certsync-tomcat --cert a\n"
                                                  "    --keystore /etc/tomcat10/a.jks\n");
    assert_int_equal(cs_config_load(cs_test_path(d, "c.conf"), &c), CS_OK);
    assert_string_equal(c->certs[0].on_change,
                        "/usr/bin/certsync-tomcat --cert a --keystore /etc/tomcat10/a.jks");
    cs_config_free(c);
    cs_test_write_text(cs_test_path(d, "c.conf"), "[cert a]\n"
                                                  "domain = a.test\n"
                                                  "on-change = /bin/true\n"
                                                  "on-change = /bin/false\n");
    assert_int_equal(cs_config_load(cs_test_path(d, "c.conf"), &c), CS_ECONFIG);
    assert_non_null(strstr(cs_error_last(), ":4: [cert a] on-change: given twice"));
    cs_test_write_text(cs_test_path(d, "c.conf"),
                       "[cert a]\ndomain = a.test\non-change = reload\n");
    assert_int_equal(cs_config_load(cs_test_path(d, "c.conf"), &c), CS_ECONFIG);
    assert_non_null(strstr(cs_error_last(), "absolute path"));
    free(d);
}

static char *hook_env_seen(const char *d)
{
    char cmd[4096], *out = NULL;
    const char *script = cs_test_path(d, "env.sh");

    cs_test_write_text(script, "#!/bin/sh\n/usr/bin/env > \"$1\"\n");
    chmod(script, 0755);
    snprintf(cmd, sizeof(cmd), "%s %s", script, cs_test_path(d, "env.out"));
    assert_int_equal(cs_hook_run(cmd, "shop", 3, "/store/certs/shop/v3", "/c.conf", 10, NULL),
                     CS_OK);
    assert_int_equal(cs_fs_read(cs_test_path(d, "env.out"), 65536, &out, NULL), CS_OK);
    return out;
}

static void the_command_sees_no_credentials_only_a_minimal_environment(void **state)
{
    char *d = cs_test_tmpdir("hook"), *env, *old_path = strdup(getenv("PATH"));
    (void)state;

    setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "s3cr3t-hook-test", 1);
    setenv("ALIBABA_CLOUD_SECURITY_TOKEN", "sts-hook-token", 1);
    setenv("HOME", "/root-of-the-caller", 1);
    setenv("TZ", "Asia/Shanghai", 1);
    setenv("PATH", "/opt/caller/bin:/usr/bin:/bin", 1);
    env = hook_env_seen(d);
    assert_null(strstr(env, "s3cr3t-hook-test"));
    assert_null(strstr(env, "sts-hook-token"));
    assert_null(strstr(env, "ALIBABA_CLOUD"));
    assert_null(strstr(env, "HOME="));
    assert_non_null(strstr(env, "PATH=/opt/caller/bin:/usr/bin:/bin\n"));
    assert_non_null(strstr(env, "TZ=Asia/Shanghai\n"));
    assert_non_null(strstr(env, "CERTSYNC_NAME=shop\n"));
    assert_non_null(strstr(env, "CERTSYNC_VERSION=3\n"));
    assert_non_null(strstr(env, "CERTSYNC_DIR=/store/certs/shop/v3\n"));
    assert_non_null(strstr(env, "CERTSYNC_CONFIG=/c.conf\n"));
    free(env);
    /* without a PATH of the caller's: the safe default */
    unsetenv("PATH");
    env = hook_env_seen(d);
    setenv("PATH", old_path, 1);
    assert_non_null(strstr(env, "PATH=/usr/sbin:/usr/bin:/sbin:/bin\n"));
    free(env);
    unsetenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET");
    unsetenv("ALIBABA_CLOUD_SECURITY_TOKEN");
    unsetenv("TZ");
    free(old_path);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(words_and_quotes_split_like_a_shell_would_not_interpret),
        cmocka_unit_test(the_command_gets_the_version_and_its_exit_status_counts),
        cmocka_unit_test(a_failure_keeps_its_exit_status_and_the_last_lines_of_its_stderr),
        cmocka_unit_test(a_long_command_continues_on_indented_lines),
        cmocka_unit_test(the_command_sees_no_credentials_only_a_minimal_environment),
    };

    return cmocka_run_group_tests_name("hook", tests, NULL, NULL);
}
