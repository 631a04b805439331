/*
 * One status document: what `certsync status --json`, nginx and Apache show for each
 * managed certificate, built from the store and certsync.conf.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cs_status.h"
#include "cs_test.h"

static const char *const NAMES[] = {"shop.example.com", "www.shop.example.com"};

/* a store with 'shop' installed (v1, remote id 42) and 'blog' declared but never synced */
static cs_config *setup(cs_store **s, cs_test_chain *c)
{
    char *root = cs_test_tmpdir("status"), text[8192];
    cs_install_opts o = {.provider = "aliyun-cas", .remote_id = "42", .names = NAMES, .n_names = 2};
    cs_config *cfg;
    unsigned v;

    snprintf(text, sizeof(text),
             "[store]\npath = %s/store\n[cert shop]\ndomain = shop.example.com\n"
             "[cert blog]\ndomain = blog.example.com\n",
             root);
    cs_test_write_text(cs_test_path(root, "c.conf"), text);
    assert_int_equal(cs_config_load(cs_test_path(root, "c.conf"), &cfg), CS_OK);
    free(root);
    assert_int_equal(cs_store_open(cfg->store_path, NULL, s), CS_OK);
    cs_test_chain_make(c, CS_KEY_EC256, NAMES, 2, -1, 90);
    assert_int_equal(cs_store_install(*s, "shop", c->bundle, &o, &v), CS_OK);
    return cfg;
}

static json_t *cert(json_t *doc, size_t i)
{
    return json_array_get(json_object_get(doc, "certificates"), i);
}

static const char *str(json_t *j, const char *key)
{
    return json_string_value(json_object_get(j, key));
}

static void every_declared_certificate_is_shown_with_its_current_version(void **state)
{
    cs_test_chain c;
    cs_store *s;
    cs_config *cfg = setup(&s, &c);
    json_t *doc, *shop, *names;
    char fp[65];
    time_t now = cs_bundle_not_after(c.bundle) - 10 * 86400 - 3600;
    (void)state;

    assert_int_equal(cs_store_record_sync(s, "shop", CS_SYNC_INSTALLED, NULL), CS_OK);
    assert_int_equal(cs_status_document(cfg, s, now, &doc), CS_OK);
    assert_string_equal(str(doc, "config"), cfg->path);
    assert_string_equal(str(doc, "store"), cfg->store_path);
    assert_int_equal(json_array_size(json_object_get(doc, "certificates")), 2);
    shop = cert(doc, 0);
    cs_bundle_fingerprint(c.bundle, fp);
    assert_string_equal(str(shop, "name"), "shop");
    assert_string_equal(str(shop, "state"), "ok");
    assert_true(json_is_false(json_object_get(shop, "fallback")));
    assert_int_equal(json_integer_value(json_object_get(shop, "version")), 1);
    assert_string_equal(str(shop, "fingerprint_sha256"), fp);
    assert_string_equal(str(shop, "provider"), "aliyun-cas");
    assert_string_equal(str(shop, "remote_id"), "42");
    names = json_object_get(shop, "names");
    assert_int_equal(json_array_size(names), 2);
    assert_string_equal(json_string_value(json_array_get(names, 1)), "www.shop.example.com");
    assert_int_equal(json_integer_value(json_object_get(shop, "days_left")), 10);
    assert_int_equal(strlen(str(shop, "not_after")), 20);
    assert_true(json_is_null(json_object_get(shop, "error_current")));
    assert_string_equal(str(shop, "last_sync"), "installed");
    assert_string_equal(str(shop, "last_sync_at"), str(shop, "last_success_at"));
    assert_true(json_is_null(json_object_get(shop, "last_error")));
    /* no secret: no key material, no password in any value */
    {
        char *text = json_dumps(doc, 0);

        assert_null(strstr(text, "PRIVATE"));
        assert_null(strstr(text, "password"));
        free(text);
    }
    json_decref(doc);
    cs_store_free(s);
    cs_config_free(cfg);
    cs_test_chain_free(&c);
}

static void a_name_without_a_version_is_on_the_fallback_with_every_key_present(void **state)
{
    static const char *const keys[] = {
        "name",
        "state",
        "fallback",
        "version",
        "error_current",
        "fingerprint_sha256",
        "serial",
        "provider",
        "remote_id",
        "names",
        "not_before",
        "not_after",
        "days_left",
        "fetched_at",
        "last_sync",
        "last_sync_at",
        "last_success_at",
        "last_error",
        "consecutive_failures",
        "held",
        "hook_pending",
        "ocsp",
        "deployments",
        "deploy_pending",
    };
    cs_test_chain c;
    cs_store *s;
    cs_config *cfg = setup(&s, &c);
    json_t *doc, *blog, *shop;
    size_t i;
    (void)state;

    assert_int_equal(cs_status_document(cfg, s, 0, &doc), CS_OK);
    shop = cert(doc, 0);
    blog = cert(doc, 1);
    /* one schema: the same keys whether there is a version or not */
    assert_int_equal(json_object_size(blog), sizeof(keys) / sizeof(keys[0]));
    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        assert_non_null(json_object_get(blog, keys[i]));
        assert_non_null(json_object_get(shop, keys[i]));
    }
    assert_string_equal(str(blog, "state"), "fallback");
    assert_true(json_is_true(json_object_get(blog, "fallback")));
    assert_true(json_is_null(json_object_get(blog, "version")));
    assert_string_equal(str(blog, "error_current"), "no version yet");
    assert_string_equal(str(blog, "last_sync"), "never");
    assert_true(json_is_null(json_object_get(blog, "last_sync_at")));
    /* the current version of shop counted from long after it ended */
    json_decref(doc);
    assert_int_equal(cs_status_cert(s, "shop", cs_bundle_not_after(c.bundle) + 3 * 86400, &shop),
                     CS_OK);
    assert_string_equal(str(shop, "state"), "expired");
    assert_int_equal(json_integer_value(json_object_get(shop, "days_left")), -3);
    json_decref(shop);
    cs_store_free(s);
    cs_config_free(cfg);
    cs_test_chain_free(&c);
}

static void a_failed_sync_keeps_the_last_success_and_shows_the_error(void **state)
{
    cs_test_chain c;
    cs_store *s;
    cs_config *cfg = setup(&s, &c);
    json_t *j;
    (void)state;

    assert_int_equal(cs_store_record_sync(s, "shop", CS_SYNC_INSTALLED, NULL), CS_OK);
    assert_int_equal(cs_store_record_sync(s, "shop", CS_SYNC_FAILED, "the service said no"), CS_OK);
    assert_int_equal(cs_status_cert(s, "shop", 0, &j), CS_OK);
    assert_string_equal(str(j, "last_sync"), "failed");
    assert_string_equal(str(j, "last_error"), "the service said no");
    assert_true(json_is_string(json_object_get(j, "last_success_at")));
    assert_string_equal(str(j, "state"), "ok"); /* what is served did not change */
    json_decref(j);
    cs_store_free(s);
    cs_config_free(cfg);
    cs_test_chain_free(&c);
}

static void a_state_file_the_store_refuses_is_shown_as_unreadable(void **state)
{
    cs_test_chain c;
    cs_store *s;
    cs_config *cfg = setup(&s, &c);
    char path[4096];
    json_t *j;
    (void)state;

    snprintf(path, sizeof(path), "%s/certs/shop/state.json", cfg->store_path);
    assert_int_equal(mkfifo(path, 0640), 0);
    assert_int_equal(cs_status_cert(s, "shop", 0, &j), CS_OK);
    assert_string_equal(str(j, "last_sync"), "unreadable");
    assert_non_null(strstr(str(j, "last_error"), "'state.json' is not a regular file"));
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 1);
    json_decref(j);
    cs_store_free(s);
    cs_config_free(cfg);
    cs_test_chain_free(&c);
}

/* The one problem line of a check, or "" for none; the level is returned in *level. */
static const char *check_line(json_t *cert, time_t now, cs_check_level *level)
{
    static char line[2048];
    json_t *problems = json_array();

    *level = cs_status_check(cert, 30 * 86400L, now, problems);
    assert_true(json_array_size(problems) <= 1);
    snprintf(line, sizeof(line), "%s", json_string_value(json_array_get(problems, 0)) ?: "");
    json_decref(problems);
    return line;
}

static void check_exits_like_a_monitoring_plugin_for_each_state(void **state)
{
    cs_test_chain c;
    cs_store *s;
    cs_config *cfg = setup(&s, &c);
    time_t end = cs_bundle_not_after(c.bundle);
    cs_check_level level;
    json_t *shop, *blog;
    (void)state;

    assert_int_equal(cs_store_record_sync(s, "shop", CS_SYNC_INSTALLED, NULL), CS_OK);
    assert_int_equal(cs_status_cert(s, "shop", 0, &shop), CS_OK);
    assert_string_equal(check_line(shop, end - 60 * 86400, &level), "");
    assert_int_equal(level, CS_CHECK_OK);
    assert_non_null(
        strstr(check_line(shop, end - 20 * 86400 - 60, &level), "WARNING shop: v1 expires at "));
    assert_non_null(strstr(check_line(shop, end - 20 * 86400 - 60, &level),
                           "in 20 day(s), inside renew-before (30 days)"));
    assert_int_equal(level, CS_CHECK_WARNING);
    assert_non_null(
        strstr(check_line(shop, end - 3 * 86400 - 60, &level), "CRITICAL shop: v1 expires at "));
    assert_int_equal(level, CS_CHECK_CRITICAL);
    assert_non_null(strstr(check_line(shop, end + 86400, &level), "CRITICAL shop: v1 expired at"));
    assert_int_equal(level, CS_CHECK_CRITICAL);
    json_decref(shop);
    assert_int_equal(cs_status_cert(s, "blog", 0, &blog), CS_OK);
    assert_non_null(strstr(check_line(blog, 0, &level),
                           "CRITICAL blog: no version yet (servers serve the fallback): run "
                           "`certsync sync blog`"));
    assert_int_equal(level, CS_CHECK_CRITICAL);
    json_decref(blog);
    cs_store_free(s);
    cs_config_free(cfg);
    cs_test_chain_free(&c);
}

static void failed_syncs_are_counted_warned_and_forgotten_after_a_success(void **state)
{
    cs_test_chain c;
    cs_store *s;
    cs_config *cfg = setup(&s, &c);
    time_t good = cs_bundle_not_after(c.bundle) - 60 * 86400;
    cs_check_level level;
    json_t *j;
    (void)state;

    assert_int_equal(cs_store_record_sync(s, "shop", CS_SYNC_FAILED, "the service said no"), CS_OK);
    assert_int_equal(cs_store_record_sync(s, "shop", CS_SYNC_FAILED, "the service said no"), CS_OK);
    assert_int_equal(cs_status_cert(s, "shop", 0, &j), CS_OK);
    assert_int_equal(json_integer_value(json_object_get(j, "consecutive_failures")), 2);
    assert_non_null(strstr(check_line(j, good, &level), "WARNING shop: the last sync failed at "));
    assert_non_null(strstr(check_line(j, good, &level), "(2 in a row): the service said no"));
    assert_int_equal(level, CS_CHECK_WARNING);
    json_decref(j);
    assert_int_equal(cs_store_record_sync(s, "shop", CS_SYNC_UNCHANGED, NULL), CS_OK);
    assert_int_equal(cs_status_cert(s, "shop", 0, &j), CS_OK);
    assert_int_equal(json_integer_value(json_object_get(j, "consecutive_failures")), 0);
    assert_string_equal(check_line(j, good, &level), "");
    assert_int_equal(level, CS_CHECK_OK);
    json_decref(j);
    cs_store_free(s);
    cs_config_free(cfg);
    cs_test_chain_free(&c);
}

static void a_store_that_cannot_be_read_is_unknown(void **state)
{
    cs_test_chain c;
    cs_store *s;
    cs_config *cfg = setup(&s, &c);
    char path[4096];
    cs_check_level level;
    json_t *j;
    (void)state;

    snprintf(path, sizeof(path), "%s/certs/shop/state.json", cfg->store_path);
    assert_int_equal(mkfifo(path, 0640), 0);
    assert_int_equal(cs_status_cert(s, "shop", cs_bundle_not_after(c.bundle) - 60 * 86400, &j),
                     CS_OK);
    assert_non_null(strstr(check_line(j, cs_bundle_not_after(c.bundle) - 60 * 86400, &level),
                           "UNKNOWN shop: cannot read the last sync: "));
    assert_int_equal(level, CS_CHECK_UNKNOWN);
    json_decref(j);
    cs_store_free(s);
    cs_config_free(cfg);
    cs_test_chain_free(&c);
}

static void a_pending_on_change_is_shown_critical_and_counted_until_delivered(void **state)
{
    cs_test_chain c;
    cs_store *s;
    cs_config *cfg = setup(&s, &c);
    time_t good = cs_bundle_not_after(c.bundle) - 60 * 86400;
    cs_hook_pending p = {.version = 1,
                         .command = "certsync-tomcat",
                         .exit_status = 3,
                         .error = "rejected the user (HTTP 401)\nthe keystore on disk is new",
                         .since = 1767225600,
                         .attempts = 2,
                         .next_attempt = 1767225720};
    cs_check_level level;
    json_t *j, *h, *doc;
    char *text;
    (void)state;

    assert_int_equal(cs_store_record_sync(s, "shop", CS_SYNC_UNCHANGED, NULL), CS_OK);
    assert_int_equal(cs_store_record_hook(s, "shop", &p), CS_OK);
    assert_int_equal(cs_status_cert(s, "shop", 0, &j), CS_OK);
    h = json_object_get(j, "hook_pending");
    assert_string_equal(str(h, "command"), "certsync-tomcat");
    assert_int_equal(json_integer_value(json_object_get(h, "version")), 1);
    assert_int_equal(json_integer_value(json_object_get(h, "exit_status")), 3);
    assert_int_equal(json_integer_value(json_object_get(h, "attempts")), 2);
    assert_string_equal(str(h, "error"),
                        "rejected the user (HTTP 401)\nthe keystore on disk is new");
    assert_string_equal(str(h, "since"), "2026-01-01T00:00:00Z");
    assert_string_equal(str(h, "next_attempt"), "2026-01-01T00:02:00Z");
    /* one line for the monitoring system, the command's lines joined */
    assert_non_null(strstr(check_line(j, good, &level),
                           "CRITICAL shop: on-change 'certsync-tomcat' for v1 failed (exit status "
                           "3, 2 attempt(s) since 2026-01-01T00:00:00Z): rejected the user (HTTP "
                           "401)/the keystore on disk is new"));
    assert_int_equal(level, CS_CHECK_CRITICAL);
    json_decref(j);
    assert_int_equal(cs_status_document(cfg, s, 0, &doc), CS_OK);
    assert_int_equal(cs_status_metrics(doc, &text), CS_OK);
    assert_non_null(strstr(text, "# TYPE certsync_hook_pending gauge\n"
                                 "certsync_hook_pending{name=\"shop\"} 1\n"
                                 "certsync_hook_pending{name=\"blog\"} 0\n"));
    free(text);
    json_decref(doc);
    /* delivered: null again, and OK */
    assert_int_equal(cs_store_record_hook(s, "shop", NULL), CS_OK);
    assert_int_equal(cs_status_cert(s, "shop", 0, &j), CS_OK);
    assert_true(json_is_null(json_object_get(j, "hook_pending")));
    assert_string_equal(check_line(j, good, &level), "");
    assert_int_equal(level, CS_CHECK_OK);
    json_decref(j);
    cs_store_free(s);
    cs_config_free(cfg);
    cs_test_chain_free(&c);
}

static void metrics_are_one_gauge_per_certificate_in_the_prometheus_format(void **state)
{
    cs_test_chain c;
    cs_store *s;
    cs_config *cfg = setup(&s, &c);
    char *text, want[256];
    json_t *doc;
    (void)state;

    assert_int_equal(cs_store_record_sync(s, "shop", CS_SYNC_INSTALLED, NULL), CS_OK);
    assert_int_equal(cs_store_record_sync(s, "blog", CS_SYNC_FAILED, "no answer"), CS_OK);
    assert_int_equal(cs_status_document(cfg, s, 0, &doc), CS_OK);
    assert_int_equal(cs_status_metrics(doc, &text), CS_OK);
    assert_non_null(strstr(text, "# TYPE certsync_cert_version gauge\n"
                                 "certsync_cert_version{name=\"shop\"} 1\n"
                                 "certsync_cert_version{name=\"blog\"} 0\n"));
    snprintf(want, sizeof(want), "certsync_cert_not_after_seconds{name=\"shop\"} %lld\n",
             (long long)cs_bundle_not_after(c.bundle));
    assert_non_null(strstr(text, want));
    assert_null(strstr(text, "certsync_cert_not_after_seconds{name=\"blog\"}"));
    assert_non_null(strstr(text, "certsync_sync_last_success_seconds{name=\"blog\"} 0\n"));
    assert_non_null(strstr(text, "certsync_sync_consecutive_failures{name=\"blog\"} 1\n"));
    assert_non_null(strstr(text, "certsync_sync_consecutive_failures{name=\"shop\"} 0\n"));
    assert_null(strstr(text, "certsync_served_version")); /* no server: nobody serves here */
    free(text);
    json_decref(doc);
    cs_store_free(s);
    cs_config_free(cfg);
    cs_test_chain_free(&c);
}

static void metrics_show_what_each_server_process_serves_and_escape_labels(void **state)
{
    json_t *doc =
        json_pack("{s:[{s:s, s:i, s:{s:[{s:i, s:i}, {s:i, s:n}]}}, {s:s, s:n, s:{s:{s:i, s:i}}}]}",
                  "certificates", "name", "shop", "version", 3, "server", "workers", "pid", 101,
                  "version", 3, "pid", 102, "version", "name", "odd\"na\\me\n", "version", "server",
                  "served", "pid", 7, "version", 2);
    char *text;
    (void)state;

    assert_non_null(doc);
    assert_int_equal(cs_status_metrics(doc, &text), CS_OK);
    assert_non_null(strstr(text,
                           "# TYPE certsync_served_version gauge\n"
                           "certsync_served_version{name=\"shop\",pid=\"101\"} 3\n"
                           "certsync_served_version{name=\"shop\",pid=\"102\"} 0\n"
                           "certsync_served_version{name=\"odd\\\"na\\\\me\\n\",pid=\"7\"} 2\n"));
    free(text);
    json_decref(doc);
}

/* jansson's allocator, failing only the allocation after `budget` others (-1: none) */
static long budget = -1;

static void *tight_malloc(size_t n)
{
    if (budget-- == 0)
        return NULL;
    return malloc(n);
}

/* out of memory at any point: an error, never a document with a certificate's key missing */
static void out_of_memory_never_gives_a_document_with_holes(void **state)
{
    cs_test_chain c;
    cs_store *s;
    cs_config *cfg = setup(&s, &c);
    json_t *doc = NULL, *shop;
    cs_rc rc = CS_ERR;
    long n;
    (void)state;

    for (n = 0; n < 2000 && rc != CS_OK; n++) {
        budget = n;
        json_set_alloc_funcs(tight_malloc, free);
        rc = cs_status_document(cfg, s, 0, &doc);
        budget = -1;
        if (rc != CS_OK)
            assert_int_equal(rc, CS_ENOMEM);
    }
    assert_int_equal(rc, CS_OK);
    assert_true(n > 1); /* some attempts did fail */
    shop = cert(doc, 0);
    assert_int_equal(json_object_size(shop), 24);
    /* a meta.json that could not be parsed is shown as such, never as a version without names */
    if (strcmp(str(shop, "state"), "ok") == 0)
        assert_int_equal(json_array_size(json_object_get(shop, "names")), 2);
    else
        assert_non_null(str(shop, "error_current"));
    assert_int_equal(json_object_size(cert(doc, 1)), 24);
    assert_string_equal(str(doc, "config"), cfg->path);
    assert_string_equal(str(doc, "store"), cfg->store_path);
    json_decref(doc);
    cs_store_free(s);
    cs_config_free(cfg);
    cs_test_chain_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_declared_certificate_is_shown_with_its_current_version),
        cmocka_unit_test(a_name_without_a_version_is_on_the_fallback_with_every_key_present),
        cmocka_unit_test(a_failed_sync_keeps_the_last_success_and_shows_the_error),
        cmocka_unit_test(a_state_file_the_store_refuses_is_shown_as_unreadable),
        cmocka_unit_test(out_of_memory_never_gives_a_document_with_holes),
        cmocka_unit_test(check_exits_like_a_monitoring_plugin_for_each_state),
        cmocka_unit_test(failed_syncs_are_counted_warned_and_forgotten_after_a_success),
        cmocka_unit_test(a_store_that_cannot_be_read_is_unknown),
        cmocka_unit_test(a_pending_on_change_is_shown_critical_and_counted_until_delivered),
        cmocka_unit_test(metrics_are_one_gauge_per_certificate_in_the_prometheus_format),
        cmocka_unit_test(metrics_show_what_each_server_process_serves_and_escape_labels),
    };

    return cmocka_run_group_tests_name("status", tests, NULL, NULL);
}
