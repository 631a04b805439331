/*
 * In-server sync as the worker user: before nginx or Apache accept `certsync_sync on`,
 * cs_sync_access_check tells whether that user can do what the sync does, naming each
 * path, the errno text and the user.
 */
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cs_sync_access.h"
#include "cs_test.h"

static cs_config *config(const char *root, const char *creds, const char *more)
{
    char text[4096];
    cs_config *c;

    snprintf(text, sizeof(text),
             "[store]\npath = %s/store\n\n[provider aliyun]\ntype = aliyun-cas\n"
             "credentials = %s\n\n[cert shop]\nprovider = aliyun\ndomain = shop.example.com\n%s",
             root, creds, more);
    cs_test_write_text(cs_test_path(root, "c.conf"), text);
    assert_int_equal(cs_config_load(cs_test_path(root, "c.conf"), &c), CS_OK);
    return c;
}

static const char *me(void)
{
    struct passwd *pw = getpwuid(geteuid());

    return pw ? pw->pw_name : "me";
}

static void everything_the_sync_needs_is_there(void **state)
{
    char *root = cs_test_tmpdir("access");
    char creds[4096];
    cs_config *c;
    (void)state;

    snprintf(creds, sizeof(creds), "%s/creds", root);
    cs_test_write_text(creds, "access_key_id = a\n");
    c = config(root, creds, "");
    assert_int_equal(cs_sync_access_check(c, me(), geteuid(), getegid()), CS_OK);
    /* the store is made by the first sync: its directory may be missing */
    assert_int_equal(mkdir(c->store_path, 0750), 0);
    assert_int_equal(cs_sync_access_check(c, me(), geteuid(), getegid()), CS_OK);
    cs_config_free(c);
    free(root);
}

static void each_problem_names_the_path_the_errno_text_and_the_user(void **state)
{
    char *root = cs_test_tmpdir("access");
    char creds[4096], want[16384];
    cs_config *c;
    (void)state;

    snprintf(creds, sizeof(creds), "%s/missing-creds", root);
    c = config(root, creds, "on-change = /nonexistent/hook --now\n");
    assert_int_equal(cs_sync_access_check(c, me(), geteuid(), getegid()), CS_EPERM);
    snprintf(want, sizeof(want),
             "the in-server sync runs as user %s (uid %ld), who cannot read "
             "the credentials file '%s': No such file or directory; the in-server sync reads the "
             "access keys as %s: chown %s %s",
             me(), (long)geteuid(), creds, me(), me(), creds);
    assert_non_null(strstr(cs_error_last(), want));
    assert_non_null(strstr(cs_error_last(),
                           "; and cannot run [cert shop] on-change '/nonexistent/hook': No such "
                           "file or directory; the in-server sync runs on-change commands as"));
    cs_config_free(c);
    free(root);
}

/* as root only: a child becomes the worker user for the check */
static void root_checks_with_the_worker_users_rights(void **state)
{
    char *root = cs_test_tmpdir("access");
    struct passwd *www = getpwnam("www-data");
    char creds[4096];
    cs_config *c;
    (void)state;

    if (geteuid() != 0 || www == NULL) {
        free(root);
        skip();
    }
    chmod(root, 0755);
    snprintf(creds, sizeof(creds), "%s/creds", root);
    cs_test_write_text(creds, "access_key_id = a\n");
    chmod(creds, 0600);
    c = config(root, creds, "");
    chmod(c->path, 0644);
    assert_int_equal(cs_sync_access_check(c, "www-data", www->pw_uid, www->pw_gid), CS_EPERM);
    assert_non_null(strstr(cs_error_last(), "runs as user www-data (uid 33), who cannot read the "
                                            "credentials file"));
    assert_non_null(strstr(cs_error_last(), "': Permission denied;"));
    /* root's own rights were never changed */
    assert_int_equal(geteuid(), 0);
    /* what the message says to do, done */
    assert_int_equal(chown(creds, www->pw_uid, www->pw_gid), 0);
    assert_int_equal(mkdir(c->store_path, 0750), 0);
    assert_int_equal(chown(c->store_path, www->pw_uid, www->pw_gid), 0);
    if (cs_sync_access_check(c, "www-data", www->pw_uid, www->pw_gid) != CS_OK)
        fail_msg("%s", cs_error_last());
    cs_config_free(c);
    free(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(everything_the_sync_needs_is_there),
        cmocka_unit_test(each_problem_names_the_path_the_errno_text_and_the_user),
        cmocka_unit_test(root_checks_with_the_worker_users_rights),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
