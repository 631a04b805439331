/* Where Alibaba Cloud credentials come from, in the official SDKs' order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cs_aliyun.h"
#include "cs_aliyun_cred.h"
#include "cs_fs.h"
#include "cs_test.h"

static char *home;

static int setup(void **state)
{
    (void)state;
    home = cs_test_tmpdir("home");
    setenv("HOME", home, 1);
    setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true", 1);
    unsetenv("ALIBABA_CLOUD_ACCESS_KEY_ID");
    unsetenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET");
    unsetenv("ALIBABA_CLOUD_SECURITY_TOKEN");
    unsetenv("ALIBABA_CLOUD_PROFILE");
    unsetenv("ALIBABA_CLOUD_CLI_PROFILE_DISABLED");
    unsetenv("ALIBABA_CLOUD_CREDENTIALS_FILE");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(home);
    return 0;
}

static void write_cli_profile(void)
{
    char dir[4096];

    snprintf(dir, sizeof(dir), "%s/.aliyun", home);
    cs_fs_mkdirs(dir, 0700);
    cs_test_write_text(cs_test_path(dir, "config.json"),
                       "{\"current\":\"AK\",\"profiles\":["
                       "{\"name\":\"AK\",\"mode\":\"AK\",\"access_key_id\":\"akid\","
                       "\"access_key_secret\":\"aksecret\",\"region_id\":\"cn-hangzhou\"},"
                       "{\"name\":\"other\",\"mode\":\"AK\",\"access_key_id\":\"otherid\","
                       "\"access_key_secret\":\"othersecret\"},"
                       "{\"name\":\"role\",\"mode\":\"RamRoleArn\"}]}");
}

static void environment_comes_first(void **state)
{
    cs_aliyun_cred c;
    (void)state;

    write_cli_profile();
    setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "envid", 1);
    setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "envsecret", 1);
    setenv("ALIBABA_CLOUD_SECURITY_TOKEN", "envtoken", 1);
    assert_int_equal(cs_aliyun_cred_resolve("default", NULL, &c), CS_OK);
    assert_string_equal(c.id, "envid");
    assert_string_equal(c.secret, "envsecret");
    assert_string_equal(c.token, "envtoken");
    assert_non_null(strstr(c.source, "environment"));
    cs_aliyun_cred_clear(&c);
}

static void then_the_aliyun_cli_profile(void **state)
{
    cs_aliyun_cred c;
    (void)state;

    write_cli_profile();
    assert_int_equal(cs_aliyun_cred_resolve("default", NULL, &c), CS_OK);
    assert_string_equal(c.id, "akid");
    assert_null(c.token);
    cs_aliyun_cred_clear(&c);
    setenv("ALIBABA_CLOUD_PROFILE", "other", 1);
    assert_int_equal(cs_aliyun_cred_resolve("default", NULL, &c), CS_OK);
    assert_string_equal(c.id, "otherid");
    cs_aliyun_cred_clear(&c);
    setenv("ALIBABA_CLOUD_PROFILE", "role", 1);
    assert_int_equal(cs_aliyun_cred_resolve("default", NULL, &c), CS_ECONFIG);
    assert_non_null(strstr(cs_error_last(), "RamRoleArn"));
}

static void then_the_credentials_file(void **state)
{
    char dir[4096];
    cs_aliyun_cred c;
    (void)state;

    setenv("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "true", 1);
    write_cli_profile();
    snprintf(dir, sizeof(dir), "%s/.alibabacloud", home);
    cs_fs_mkdirs(dir, 0700);
    cs_test_write_text(cs_test_path(dir, "credentials"),
                       "[other]\ntype = access_key\naccess_key_id = x\naccess_key_secret = y\n"
                       "[default]\ntype = access_key\naccess_key_id = fileid\n"
                       "access_key_secret = filesecret\n");
    assert_int_equal(cs_aliyun_cred_resolve("default", NULL, &c), CS_OK);
    assert_string_equal(c.id, "fileid");
    assert_string_equal(c.secret, "filesecret");
    cs_aliyun_cred_clear(&c);
}

static void nothing_found_says_every_way_to_give_them(void **state)
{
    cs_aliyun_cred c;
    (void)state;

    assert_int_equal(cs_aliyun_cred_resolve("default", NULL, &c), CS_ECONFIG);
    assert_non_null(strstr(cs_error_last(), "ALIBABA_CLOUD_ACCESS_KEY_ID"));
    assert_non_null(strstr(cs_error_last(), "credentials = PATH"));
}

static void a_named_file_must_be_private(void **state)
{
    const char *f = cs_test_path(home, "cas.cred");
    cs_aliyun_cred c;
    (void)state;

    cs_test_write_text(f, "access_key_id = fid\naccess_key_secret = fsecret\n"
                          "security_token = ftoken\n");
    chmod(f, 0644);
    assert_int_equal(cs_aliyun_cred_resolve(f, NULL, &c), CS_ECONFIG);
    assert_non_null(strstr(cs_error_last(), "chmod 600"));
    assert_null(strstr(cs_error_last(), "fsecret"));
    chmod(f, 0600);
    assert_int_equal(cs_aliyun_cred_resolve(f, NULL, &c), CS_OK);
    assert_string_equal(c.id, "fid");
    assert_string_equal(c.token, "ftoken");
    cs_aliyun_cred_clear(&c);
}

static void ids_past_two_to_the_53_stay_exact(void **state)
{
    json_t *j = json_loads("{\"OrderId\":98987582437920968,\"CertId\":\"123\"}", 0, NULL);
    char id[32];
    (void)state;

    cs_json_id(json_object_get(j, "OrderId"), id, sizeof(id));
    assert_string_equal(id, "98987582437920968");
    cs_json_id(json_object_get(j, "CertId"), id, sizeof(id));
    assert_string_equal(id, "123");
    json_decref(j);
}

/* Found by tests/fuzz (fuzz_cred): the name came from the freed JSON. */
static void a_missing_current_profile_is_named(void **state)
{
    cs_aliyun_cred c;
    char dir[4096];
    (void)state;

    snprintf(dir, sizeof(dir), "%s/.aliyun", home);
    cs_fs_mkdirs(dir, 0700);
    cs_test_write_text(cs_test_path(dir, "config.json"),
                       "{\"current\":\"gone\",\"profiles\":[{\"name\":\"AK\",\"mode\":\"AK\","
                       "\"access_key_id\":\"akid\",\"access_key_secret\":\"aksecret\"}]}");
    assert_int_equal(cs_aliyun_cred_resolve("default", NULL, &c), CS_ECONFIG);
    assert_non_null(strstr(cs_error_last(), "config.json has no profile 'gone'"));
}

/* Found by tests/fuzz (fuzz_cred): an empty secret was taken, to fail later at the service. */
static void an_empty_key_in_a_credentials_file_is_refused(void **state)
{
    const char *f = cs_test_path(home, "cas.cred");
    cs_aliyun_cred c;
    (void)state;

    cs_test_write_text(f, "access_key_id = fid\naccess_key_secret =\n");
    chmod(f, 0600);
    assert_int_equal(cs_aliyun_cred_resolve(f, NULL, &c), CS_ECONFIG);
    assert_non_null(strstr(cs_error_last(), "cas.cred: access_key_id and access_key_secret"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(environment_comes_first, setup, teardown),
        cmocka_unit_test_setup_teardown(then_the_aliyun_cli_profile, setup, teardown),
        cmocka_unit_test_setup_teardown(then_the_credentials_file, setup, teardown),
        cmocka_unit_test_setup_teardown(nothing_found_says_every_way_to_give_them, setup, teardown),
        cmocka_unit_test_setup_teardown(a_named_file_must_be_private, setup, teardown),
        cmocka_unit_test(ids_past_two_to_the_53_stay_exact),
        cmocka_unit_test_setup_teardown(a_missing_current_profile_is_named, setup, teardown),
        cmocka_unit_test_setup_teardown(an_empty_key_in_a_credentials_file_is_refused, setup,
                                        teardown),
    };

    return cmocka_run_group_tests_name("aliyun_cred", tests, NULL, NULL);
}
