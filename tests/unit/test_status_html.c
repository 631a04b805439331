/*
 * The status page for a person: nginx and Apache render the one status document
 * through cs_status_html, so what it shows and how it escapes is pinned here.
 */
#include <stdlib.h>
#include <string.h>

#include "cs_status_html.h"
#include "cs_test.h"
#include "cs_time.h"

/* now: 2026-03-01; shop lives 2026-01-01..2026-03-31 (89 days) */
static const char DOC[] =
    "{\"config\": \"/etc/certsync/certsync.conf\", \"store\": \"/var/lib/certsync\","
    " \"certificates\": ["
    "  {\"name\": \"shop\", \"state\": \"ok\", \"fallback\": false, \"version\": 3,"
    "   \"names\": [\"shop.example.com\", \"<script>alert(1)</script>.example.com\"],"
    "   \"not_before\": \"2026-01-01T00:00:00Z\", \"not_after\": \"2026-03-31T00:00:00Z\","
    "   \"days_left\": 30, \"last_sync\": \"installed\", \"last_sync_at\": "
    "\"2026-03-01T00:00:00Z\","
    "   \"last_success_at\": \"2026-03-01T00:00:00Z\", \"last_error\": null,"
    "   \"consecutive_failures\": 0, \"held\": null, \"fingerprint_sha256\": \"ab12\","
    "   \"hook_pending\": {\"command\": \"/usr/bin/certsync-tomcat --cert shop\", \"version\": 3,"
    "     \"exit_status\": 1, \"error\": \"401 & <Unauthorized>\", \"since\": "
    "\"2026-02-28T00:00:00Z\","
    "     \"attempts\": 2, \"next_attempt\": \"2026-03-01T00:10:00Z\"},"
    "   \"server\": {\"workers\": [{\"worker\": 0, \"pid\": 101, \"version\": 3,"
    "     \"since\": \"2026-03-01T00:00:00Z\"}, {\"worker\": 1, \"pid\": 102, \"version\": null,"
    "     \"since\": null}]}},"
    "  {\"name\": \"blog\", \"state\": \"fallback\", \"fallback\": true, \"version\": null,"
    "   \"names\": [], \"not_before\": null, \"not_after\": null, \"days_left\": null,"
    "   \"error_current\": \"no version yet\", \"last_sync\": \"failed\","
    "   \"last_error\": \"InvalidAccessKeyId \\u001b[31m\", \"consecutive_failures\": 4}"
    " ],"
    " \"server\": {\"module\": \"mod_certsync/1\", \"pid\": 7,"
    "   \"sync\": {\"enabled\": true, \"interval_s\": 3600, \"failures_in_a_row\": 0}}}";

static char *render(const char *text)
{
    json_t *doc = json_loads(text, 0, NULL);
    time_t now;
    char *page;

    assert_non_null(doc);
    assert_int_equal(cs_time_parse_iso("2026-03-01T00:00:00Z", &now), CS_OK);
    assert_int_equal(cs_status_html(doc, "Apache", now, &page), CS_OK);
    json_decref(doc);
    return page;
}

static void a_card_per_certificate_with_days_left_against_its_lifetime(void **state)
{
    char *page = render(DOC);
    (void)state;

    assert_non_null(strstr(page, "<title>certsync: certificates of this Apache</title>"));
    assert_non_null(strstr(page, "<section class=\"card bad\">\n<h2><span>shop</span>"));
    assert_non_null(strstr(page, "30 days left <small>of 89 (until 2026-03-31)"));
    /* 30 of 89 days: a third of the bar */
    assert_non_null(strstr(page, "class=\"fill ok\" style=\"width:33.7%\""));
    assert_non_null(strstr(page, "worker 0 (pid 101): <b>v3</b>"));
    assert_non_null(strstr(page, "worker 1 (pid 102): <b class=\"err\">fallback"));
    assert_non_null(strstr(page, "<span>blog</span><span class=\"badge bad\">no version yet"));
    assert_non_null(strstr(page, "no certificate <small>no version yet"));
    assert_non_null(strstr(page, "<th>every (s)</th><td>3600</td>"));
    free(page);
}

static void a_pending_hook_is_shown_with_its_error(void **state)
{
    char *page = render(DOC);
    (void)state;

    assert_non_null(strstr(page, "on-change command pending"));
    assert_non_null(strstr(page, "<code>/usr/bin/certsync-tomcat --cert shop</code>"));
    assert_non_null(strstr(page, "<th>exit status</th><td>1</td>"));
    assert_non_null(strstr(page, "401 &amp; &lt;Unauthorized&gt;"));
    assert_non_null(strstr(page, "<span class=\"badge bad\">on-change pending"));
    free(page);
}

static void everything_from_the_document_is_escaped(void **state)
{
    char *page = render(DOC);
    (void)state;

    assert_null(strstr(page, "<script>"));
    assert_non_null(strstr(page, "&lt;script&gt;alert(1)&lt;/script&gt;.example.com"));
    /* a control character from the service is shown, never sent to the browser */
    assert_non_null(strstr(page, "InvalidAccessKeyId \\x1b[31m"));
    assert_null(strchr(page, '\x1b'));
    free(page);
}

static void a_document_without_hook_pending_or_server_fields_renders(void **state)
{
    char *page = render("{\"config\": \"c\", \"store\": \"s\", \"certificates\": [{\"name\": "
                        "\"shop\", \"version\": 1, \"days_left\": 60, \"not_before\": "
                        "\"2026-01-01T00:00:00Z\", \"not_after\": \"2026-04-30T00:00:00Z\", "
                        "\"last_sync\": \"unchanged\", \"hook_pending\": null}]}");
    (void)state;

    assert_non_null(strstr(page, "<span class=\"badge ok\">ok</span>"));
    assert_null(strstr(page, "on-change command pending"));
    assert_null(strstr(page, "sync inside the server"));
    assert_non_null(strstr(page, "</html>\n"));
    free(page);
}

static void a_pending_deployment_is_shown_with_each_resource(void **state)
{
    char *page = render(
        "{\"config\": \"c\", \"store\": \"s\", \"certificates\": [{\"name\": \"shop\", "
        "\"version\": 2, \"days_left\": 60, \"not_before\": \"2026-01-01T00:00:00Z\", "
        "\"not_after\": \"2026-04-30T00:00:00Z\", \"last_sync\": \"installed\", "
        "\"hook_pending\": null, \"deployments\": [{\"resource\": \"cdn:www.example.com\", "
        "\"status\": \"success\", \"certificate\": \"123\", \"error\": null}, {\"resource\": "
        "\"cdn:img.example.com\", \"status\": \"error\", \"certificate\": \"123\", \"error\": "
        "\"worker 7 ended in <error>\"}], \"deploy_pending\": {\"certificate\": \"123\", "
        "\"attempts\": 2, \"since\": \"2026-02-28T00:00:00Z\", \"next_attempt\": "
        "\"2026-03-01T00:10:00Z\"}}]}");
    (void)state;

    assert_non_null(strstr(page, "<span class=\"badge bad\">deployment pending"));
    assert_non_null(strstr(page, "<th>cdn:www.example.com</th><td>success, certificate 123"));
    assert_non_null(strstr(page, "worker 7 ended in &lt;error&gt;"));
    assert_non_null(strstr(page, "<th>pending attempts</th><td>2</td>"));
    free(page);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_card_per_certificate_with_days_left_against_its_lifetime),
        cmocka_unit_test(a_pending_hook_is_shown_with_its_error),
        cmocka_unit_test(everything_from_the_document_is_escaped),
        cmocka_unit_test(a_document_without_hook_pending_or_server_fields_renders),
        cmocka_unit_test(a_pending_deployment_is_shown_with_each_resource),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
