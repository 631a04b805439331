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

static void a_current_profile_that_is_missing_is_named(void **state)
{
    char dir[4096];
    cs_aliyun_cred c;
    (void)state;

    snprintf(dir, sizeof(dir), "%s/.aliyun", home);
    cs_fs_mkdirs(dir, 0700);
    /* the name lives only in the parsed file: the error must not read it after the free */
    cs_test_write_text(cs_test_path(dir, "config.json"),
                       "{\"current\":\"prod-profile-that-was-removed\",\"profiles\":["
                       "{\"name\":\"AK\",\"mode\":\"AK\",\"access_key_id\":\"akid\","
                       "\"access_key_secret\":\"aksecret\"}]}");
    assert_int_equal(cs_aliyun_cred_resolve("default", NULL, &c), CS_ECONFIG);
    assert_non_null(strstr(cs_error_last(), "has no profile 'prod-profile-that-was-removed'"));
    assert_non_null(strstr(cs_error_last(), "config.json"));
    assert_null(strstr(cs_error_last(), "aksecret"));
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

static void an_integer_past_64_bits_does_not_fail_the_answer(void **state)
{
    static const char text[] =
        "{\"CertificateId\":9007199254741001,\"Huge\":123456789012345678901234567890,"
        "\"Neg\":-99999999999999999999,\"Max\":9223372036854775807,"
        "\"Str\":\"a \\\" 123456789012345678901234567890\",\"Real\":1.5e300,"
        "\"List\":[18446744073709551616,1],\"E\":0e-99999999999999999999}";
    json_t *j;
    char id[32];
    (void)state;

    assert_null(json_loads(text, 0, NULL)); /* what jansson alone does */
    j = cs_json_parse(text, strlen(text));
    assert_non_null(j);
    cs_json_id(json_object_get(j, "CertificateId"), id, sizeof(id));
    assert_string_equal(id, "9007199254741001");
    assert_true(json_is_real(json_object_get(j, "Huge")));
    assert_true(json_real_value(json_object_get(j, "Huge")) > 1e29);
    assert_true(json_real_value(json_object_get(j, "Neg")) < -9e19);
    assert_true(json_is_integer(json_object_get(j, "Max")));
    assert_string_equal(json_string_value(json_object_get(j, "Str")),
                        "a \" 123456789012345678901234567890");
    assert_true(json_is_real(json_array_get(json_object_get(j, "List"), 0)));
    assert_int_equal(json_integer_value(json_array_get(json_object_get(j, "List"), 1)), 1);
    json_decref(j);
    assert_null(cs_json_parse("{\"a\":12345678901234567890123", 27)); /* still not JSON */
}

static void a_name_far_down_a_long_san_list_is_found(void **state)
{
    size_t cap = 200 * 40, n = 0;
    char *sans = malloc(cap);
    const char *want[] = {"host-130.example-long-domain-name.test"};
    const char *wild[] = {"x.w-199.example-long-domain-name.test"};
    const char *absent[] = {"host-200.example-long-domain-name.test"};
    json_t *certs, *e;
    int i;
    (void)state;

    /* 130 names of ~40 bytes: past the 4,096 bytes the old joined buffer held */
    for (i = 0; i < 200; i++)
        n += (size_t)snprintf(sans + n, cap - n, "%s%s-%d.example-long-domain-name.test",
                              i ? "," : "", i < 199 ? "host" : "*.w", i < 199 ? i : 199);
    e = json_pack("{s:I,s:s,s:s,s:s,s:b}", "CertificateId", (json_int_t)9007199254741001LL,
                  "CommonName", "host-0.example-long-domain-name.test", "Sans", sans, "EndDate",
                  "2999-01-01", "Expired", 0);
    certs = json_pack("[o]", e);
    assert_ptr_equal(cs_aliyun_pick(certs, NULL, want, 1), e);
    assert_ptr_equal(cs_aliyun_pick(certs, NULL, wild, 1), e);
    assert_null(cs_aliyun_pick(certs, NULL, absent, 1));
    json_decref(certs);
    free(sans);
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
        cmocka_unit_test_setup_teardown(a_current_profile_that_is_missing_is_named, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(then_the_credentials_file, setup, teardown),
        cmocka_unit_test_setup_teardown(nothing_found_says_every_way_to_give_them, setup, teardown),
        cmocka_unit_test_setup_teardown(a_named_file_must_be_private, setup, teardown),
        cmocka_unit_test(ids_past_two_to_the_53_stay_exact),
        cmocka_unit_test(an_integer_past_64_bits_does_not_fail_the_answer),
        cmocka_unit_test(a_name_far_down_a_long_san_list_is_found),
        cmocka_unit_test_setup_teardown(an_empty_key_in_a_credentials_file_is_refused, setup,
                                        teardown),
    };

    return cmocka_run_group_tests_name("aliyun_cred", tests, NULL, NULL);
}
