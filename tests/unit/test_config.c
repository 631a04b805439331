/* certsync.conf: the one file every component reads; every error names file, line, key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cs_config.h"
#include "cs_output.h"
#include "cs_test.h"

static const char *write_conf(const char *text)
{
    static char *dir;

    if (dir == NULL)
        dir = cs_test_tmpdir("config");
    cs_test_write_text(cs_test_path(dir, "certsync.conf"), text);
    return cs_test_path(dir, "certsync.conf");
}

static void expect_config_error(const char *text, const char *needle)
{
    cs_config *c = NULL;

    assert_int_equal(cs_config_load(write_conf(text), &c), CS_ECONFIG);
    assert_null(c);
    if (strstr(cs_error_last(), needle) == NULL)
        fail_msg("error '%s' does not contain '%s'", cs_error_last(), needle);
    if (strstr(cs_error_last(), "certsync.conf:") == NULL)
        fail_msg("error '%s' does not name the file", cs_error_last());
}

static void the_spec_example_is_read(void **state)
{
    cs_config *c;
    const cs_cert_conf *shop;
    (void)state;

    assert_int_equal(cs_config_load(write_conf("[store]\n"
                                               "path = /var/lib/certsync\n"
                                               "\n"
                                               "[provider aliyun]            ; where from\n"
                                               "type = aliyun-cas\n"
                                               "region = cn-hangzhou\n"
                                               "credentials = default\n"
                                               "; endpoint = https://127.0.0.1:8443\n"
                                               "\n"
                                               "[provider local]\n"
                                               "type = local-ca\n"
                                               "\n"
                                               "[cert shop]\n"
                                               "provider = aliyun\n"
                                               "cert-id = 14223350\n"
                                               "formats = pem pfx jks\n"
                                               "renew-before = 30d\n"
                                               "\n"
                                               "[cert dev]\n"
                                               "provider = local\n"
                                               "domain = dev.example.com *.dev.example.com\n"
                                               "key-type = rsa2048\n"
                                               "lifetime = 7d\n"),
                                    &c),
                     CS_OK);
    assert_string_equal(c->store_path, "/var/lib/certsync");
    assert_int_equal(c->keep, 3);
    assert_int_equal(c->n_providers, 2);
    assert_int_equal(c->n_certs, 2);
    shop = cs_config_cert(c, "shop");
    assert_non_null(shop);
    assert_string_equal(shop->cert_id, "14223350");
    assert_int_equal(shop->provider->type, CS_PROVIDER_ALIYUN_CAS);
    assert_string_equal(shop->provider->region, "cn-hangzhou");
    assert_int_equal(shop->formats, CS_FMT_PEM | CS_FMT_PFX | CS_FMT_JKS);
    assert_int_equal(shop->renew_before, 30 * 86400);
    assert_int_equal(cs_config_cert(c, "dev")->n_domains, 2);
    assert_string_equal(cs_config_cert(c, "dev")->domains[1], "*.dev.example.com");
    assert_int_equal(cs_config_cert(c, "dev")->key_type, CS_KEY_RSA2048);
    assert_int_equal(cs_config_cert(c, "dev")->lifetime, 7 * 86400);
    assert_null(cs_config_cert(c, "nope"));
    cs_config_free(c);
}

static void a_cert_without_provider_uses_the_embedded_local_ca(void **state)
{
    cs_config *c;
    (void)state;

    assert_int_equal(cs_config_load(write_conf("[cert demo]\ndomain = demo.test\n"), &c), CS_OK);
    assert_null(c->certs[0].provider);
    assert_string_equal(c->store_path, CS_DEFAULT_STORE);
    cs_config_free(c);
}

static void errors_name_file_line_and_key(void **state)
{
    (void)state;
    expect_config_error("[store]\npath = /x\n\n[cert a]\ndomain = a.test\nformts = pem\n",
                        ":6: [cert a]: unknown key 'formts'");
    expect_config_error("[stor]\npath = /x\n", ":2: unknown section [stor]");
    expect_config_error("[cert a]\ndomain = a.test\nrenew-before = soon\n",
                        ":3: [cert a] renew-before: 'soon' is not a duration");
    expect_config_error("[cert a]\ndomain = a.test\nformats = pem zip\n",
                        ":3: [cert a] formats: unknown format 'zip'");
    expect_config_error("[cert a]\ndomain = a.test\nprovider = nowhere\n",
                        ":2: [cert a] provider: no [provider nowhere]");
    expect_config_error("[cert a]\ndomain = a.test\ndomain-x = 1\n", ":3:");
    expect_config_error("[provider p]\nregion = x\n",
                        ":2: [provider p]: the key 'type' is missing");
    /* the known keys come from the key tables, grouped by provider type */
    expect_config_error("[provider p]\ntype = local-ca\nregoin = x\n",
                        "unknown key 'regoin'; known keys: type; ca-lifetime (local-ca); region, "
                        "credentials, endpoint, ca-file, trust-file,");
    expect_config_error("[store]\nkeep = 0\n", "keep: '0' is not a number of versions from 1");
    expect_config_error("[provider p]\ntype = acme2\n",
                        "unknown provider type 'acme2'; known types: local-ca, aliyun-cas");
    expect_config_error("[cert a]\ndomain = a.test\nkey-type = dsa\n", "unknown key type 'dsa'");
    expect_config_error("[cert a]\ndomain = a.test\ncert-id = 12x\n", "cert-id: '12x'");
    expect_config_error("[cert a]\ndomain = bad_name!.test\n", "is not a DNS name");
    expect_config_error("[cert a]\ndomain = a.test\nlifetime = 1d\nlifetime = 2d\n",
                        ":4: [cert a] lifetime: given twice (first on line 3)");
    expect_config_error("[store]\npath = relative/dir\n", ":2: [store] path:");
    expect_config_error("[store]\nkeep = 0\n", "keep");
    expect_config_error("[cert a]\ndomain = a.test\nthis line has no equals sign\n",
                        ":3: syntax error");
    expect_config_error("path = /x\n", ":1: key 'path' is outside any section");
    expect_config_error("[cert a b]\ndomain = a.test\n", "unknown section [cert a b]");
    expect_config_error("[cert ../x]\ndomain = a.test\n", "is not a valid name");
    expect_config_error("[cert a]\nkey-type = rsa2048\n", "the key 'domain' is missing");
    expect_config_error("[provider ali]\ntype = aliyun-cas\n[cert a]\nprovider = ali\n",
                        "set cert-id or domain");
    expect_config_error("[provider ali]\ntype = aliyun-cas\nendpoint = http://x\n",
                        "must start with https://");
}

static void a_missing_file_says_how_to_point_elsewhere(void **state)
{
    cs_config *c;
    (void)state;

    assert_int_equal(cs_config_load("/nonexistent/certsync.conf", &c), CS_ENOTFOUND);
    assert_non_null(strstr(cs_error_last(), "/nonexistent/certsync.conf"));
    assert_non_null(strstr(cs_error_last(), "--config"));
}

/* root runs the commands the file names: a file another user can change is refused */
static void root_refuses_a_configuration_others_can_change(void **state)
{
    char *d = cs_test_tmpdir("config-trust");
    const char *path = cs_test_path(d, "certsync.conf");
    cs_config *c;
    (void)state;

    if (geteuid() != 0)
        skip();
    cs_test_write_text(path, "[cert a]\ndomain = a.test\non-change = /bin/true\n");
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(cs_config_load(path, &c), CS_OK);
    cs_config_free(c);
    assert_int_equal(chmod(path, 0666), 0);
    assert_int_equal(cs_config_load(path, &c), CS_ECONFIG);
    assert_non_null(strstr(cs_error_last(), "must be root's and not writable by group or others"));
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(chown(path, 33, 33), 0);
    assert_int_equal(cs_config_load(path, &c), CS_ECONFIG);
    assert_non_null(strstr(cs_error_last(), "belongs to uid 33"));
    free(d);
}

static void durations(void **state)
{
    long s;
    (void)state;

    assert_int_equal(cs_duration_parse("30d", &s), CS_OK);
    assert_int_equal(s, 30 * 86400);
    assert_int_equal(cs_duration_parse("12h", &s), CS_OK);
    assert_int_equal(s, 12 * 3600);
    assert_int_equal(cs_duration_parse("45s", &s), CS_OK);
    assert_int_equal(s, 45);
    assert_int_equal(cs_duration_parse("90", &s), CS_EINVAL);
    assert_non_null(strstr(cs_error_last(), "'90' has no unit; write 90d, 90h, 90m or 90s"));
    assert_int_equal(cs_duration_parse("-1d", &s), CS_EINVAL);
    assert_int_equal(cs_duration_parse("3w", &s), CS_EINVAL);
    assert_int_equal(cs_duration_parse("", &s), CS_EINVAL);
}

static void a_duration_without_a_unit_is_refused(void **state)
{
    cs_config *c;
    (void)state;

    expect_config_error("[cert a]\ndomain = a.test\nrenew-before = 30\n",
                        ":3: [cert a] renew-before: '30' has no unit; write 30d, 30h, 30m or 30s");
    expect_config_error("[cert a]\ndomain = a.test\nlifetime = 90\n",
                        ":3: [cert a] lifetime: '90' has no unit");
    expect_config_error("[provider p]\ntype = local-ca\nca-lifetime = 3650\n",
                        ":3: [provider p] ca-lifetime: '3650' has no unit");
    expect_config_error("[provider p]\ntype = aliyun-cas\nregion = cn-hangzhou\ntimeout = 30\n",
                        ":4: [provider p] timeout: '30' has no unit");
    /* with a unit, each is read */
    assert_int_equal(cs_config_load(write_conf("[provider p]\ntype = aliyun-cas\nregion = x\n"
                                               "timeout = 30s\n[provider l]\ntype = local-ca\n"
                                               "ca-lifetime = 3650d\n[cert a]\ndomain = a.test\n"
                                               "renew-before = 12h\nlifetime = 1d\n"),
                                    &c),
                     CS_OK);
    assert_int_equal(c->providers[0].timeout, 30);
    assert_int_equal(c->providers[1].ca_lifetime, 3650L * 86400);
    assert_int_equal(c->certs[0].renew_before, 12 * 3600);
    assert_int_equal(c->certs[0].lifetime, 86400);
    cs_config_free(c);
}

static void a_renew_before_as_long_as_the_lifetime_is_refused(void **state)
{
    cs_config *c;
    (void)state;

    /* it would reissue at every sync: both lines are named */
    expect_config_error("[cert a]\ndomain = a.test\nlifetime = 20d\nrenew-before = 30d\n",
                        ":4: [cert a]: renew-before = 30d (line 4) is not shorter than lifetime "
                        "= 20d (line 3)");
    expect_config_error("[provider l]\ntype = local-ca\n[cert a]\nprovider = l\n"
                        "renew-before = 2160h\ndomain = a.test\n",
                        ":5: [cert a]: renew-before = 90d (line 5) is not shorter than lifetime "
                        "= 90d (the default)");
    /* a lifetime shorter than the default notice: the default becomes a third of it */
    assert_int_equal(cs_config_load(write_conf("[cert a]\ndomain = a.test\nlifetime = 6d\n"), &c),
                     CS_OK);
    assert_int_equal(c->certs[0].renew_before, 2 * 86400);
    cs_config_free(c);
    /* the service decides the lifetime of its certificates: no pairing there */
    assert_int_equal(cs_config_load(write_conf("[provider p]\ntype = aliyun-cas\nregion = x\n"
                                               "[cert a]\nprovider = p\ndomain = a.test\n"
                                               "lifetime = 7d\n"),
                                    &c),
                     CS_OK);
    cs_config_free(c);
}

static void a_repeated_section_is_refused(void **state)
{
    (void)state;

    expect_config_error("[cert shop]\ndomain = a.test\n\n[cert other]\ndomain = b.test\n\n"
                        "[cert shop]\nformats = pem pfx\n",
                        ":8: [cert shop]: the section is given twice (lines 1 and 7)");
    expect_config_error("[cert shop]\ndomain = a.test\n[cert shop]\nformats = pem pfx\n",
                        ":4: [cert shop]: the section is given twice (lines 1 and 3)");
    expect_config_error("[provider p]\ntype = local-ca\n[provider p]\nca-lifetime = 1d\n",
                        ":4: [provider p]: the section is given twice (lines 1 and 3)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_spec_example_is_read),
        cmocka_unit_test(a_cert_without_provider_uses_the_embedded_local_ca),
        cmocka_unit_test(errors_name_file_line_and_key),
        cmocka_unit_test(a_missing_file_says_how_to_point_elsewhere),
        cmocka_unit_test(root_refuses_a_configuration_others_can_change),
        cmocka_unit_test(durations),
        cmocka_unit_test(a_duration_without_a_unit_is_refused),
        cmocka_unit_test(a_renew_before_as_long_as_the_lifetime_is_refused),
        cmocka_unit_test(a_repeated_section_is_refused),
    };

    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
