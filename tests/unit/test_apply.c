/*
 * Applying for a certificate: what the service's DescribeCertificateState answers (shaped as
 * the service and tests/emulator/cas_emulator.py send them) mean for whoever drives the order.
 */
#include <stdlib.h>
#include <string.h>

#include "cs_apply.h"
#include "cs_apply_map.h"
#include "cs_test.h"

#define ORDER "9007199254800001"

static json_t *answer(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);

    assert_non_null(j);
    return j;
}

static void a_file_validation_says_which_file_to_publish(void **state)
{
    json_t *a = answer("{\"Type\": \"domain_verify\", \"ValidateType\": \"FILE\", \"Domain\": "
                       "\"site.test\", \"Uri\": \"/.well-known/pki-validation/fileauth.txt\", "
                       "\"Content\": \"2024abc\"}");
    cs_apply_state st;
    (void)state;

    assert_int_equal(cs_apply_map(a, ORDER, &st), CS_OK);
    assert_int_equal(st.phase, CS_APPLY_PENDING);
    assert_string_equal(st.words, "pending verification");
    assert_int_equal(st.validation.kind, CS_APPLY_FILE);
    assert_string_equal(st.validation.uri, "/.well-known/pki-validation/fileauth.txt");
    assert_string_equal(st.validation.content, "2024abc");
    json_decref(a);
}

static void a_dns_validation_names_the_record_to_publish(void **state)
{
    json_t *a = answer("{\"Type\": \"domain_verify\", \"ValidateType\": \"DNS\", \"Domain\": "
                       "\"*.dns.test\", \"RecordDomain\": \"_dnsauth.dns.test\", \"RecordType\": "
                       "\"TXT\", \"RecordValue\": \"tok\"}");
    cs_apply_state st;
    (void)state;

    assert_int_equal(cs_apply_map(a, ORDER, &st), CS_OK);
    assert_int_equal(st.phase, CS_APPLY_PENDING);
    assert_int_equal(st.validation.kind, CS_APPLY_DNS);
    assert_string_equal(st.validation.record_domain, "_dnsauth.dns.test");
    assert_string_equal(st.validation.record_type, "TXT");
    assert_string_equal(st.validation.record_value, "tok");
    json_decref(a);
}

static void the_service_states_read_in_the_consoles_words(void **state)
{
    static const struct {
        const char *type, *words;
        cs_apply_phase phase;
    } rows[] = {{"process", "in review", CS_APPLY_REVIEW},
                {"verify_fail", "failed", CS_APPLY_FAILED},
                {"payed", "paid", CS_APPLY_OTHER}, /* a withdrawn order */
                {"unknow", "unknow", CS_APPLY_OTHER}};
    char text[80];
    cs_apply_state st;
    size_t i;
    json_t *a;
    (void)state;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        snprintf(text, sizeof(text), "{\"Type\": \"%s\"}", rows[i].type);
        a = answer(text);
        assert_int_equal(cs_apply_map(a, ORDER, &st), CS_OK);
        assert_int_equal(st.phase, rows[i].phase);
        assert_string_equal(st.words, rows[i].words);
        assert_string_equal(st.type, rows[i].type);
        json_decref(a);
    }
    assert_string_equal(cs_apply_words("certificate"), "issued");
}

static void an_issued_order_names_its_certificate_exactly(void **state)
{
    /* the service sends CertId as a string; ids exceed 2^53 and must not pass through a double */
    json_t *s = answer("{\"Type\": \"certificate\", \"Certificate\": \"-----BEGIN\", "
                       "\"PrivateKey\": \"k\", \"CertId\": \"9007199254741001\"}");
    json_t *n = answer("{\"Type\": \"certificate\", \"CertId\": 9007199254741003}");
    cs_apply_state st;
    (void)state;

    assert_int_equal(cs_apply_map(s, ORDER, &st), CS_OK);
    assert_int_equal(st.phase, CS_APPLY_ISSUED);
    assert_string_equal(st.cert_id, "9007199254741001");
    assert_int_equal(cs_apply_map(n, ORDER, &st), CS_OK);
    assert_string_equal(st.cert_id, "9007199254741003");
    json_decref(s);
    json_decref(n);
}

static void a_failed_review_says_which_order_failed(void **state)
{
    json_t *a = answer("{\"Type\": \"verify_fail\"}");
    cs_apply_state st;
    (void)state;

    assert_int_equal(cs_apply_map(a, ORDER, &st), CS_OK);
    assert_int_equal(st.phase, CS_APPLY_FAILED);
    assert_string_equal(st.reason, "order " ORDER " failed review");
    json_decref(a);
}

static void an_answer_without_what_its_state_needs_is_an_error_naming_the_order(void **state)
{
    static const char *const broken[] = {
        "{}", "{\"Type\": 7}",
        "{\"Type\": \"domain_verify\", \"ValidateType\": \"FILE\", \"Uri\": \"/x\"}",
        "{\"Type\": \"domain_verify\", \"ValidateType\": \"DNS\", \"RecordDomain\": \"_d.t\"}",
        "{\"Type\": \"domain_verify\", \"ValidateType\": \"DNS\", \"RecordValue\": \"v\"}"};
    cs_apply_state st;
    size_t i;
    json_t *a;
    (void)state;

    for (i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
        a = answer(broken[i]);
        assert_int_equal(cs_apply_map(a, ORDER, &st), CS_EPROVIDER);
        assert_non_null(strstr(cs_error_last(), "DescribeCertificateState of order " ORDER));
        json_decref(a);
    }
}

static void the_json_line_adds_the_order_and_its_status_and_never_the_key(void **state)
{
    json_t *a = answer("{\"Type\": \"certificate\", \"Certificate\": \"C\", \"PrivateKey\": "
                       "\"SECRET\", \"CertId\": \"5\"}");
    json_t *line = cs_apply_line(a, ORDER);
    char *text;
    (void)state;

    assert_non_null(line);
    text = json_dumps(line, JSON_COMPACT);
    assert_null(strstr(text, "SECRET"));
    assert_null(json_object_get(line, "PrivateKey"));
    assert_string_equal(json_string_value(json_object_get(line, "OrderId")), ORDER);
    assert_string_equal(json_string_value(json_object_get(line, "status")), "issued");
    assert_string_equal(json_string_value(json_object_get(line, "CertId")), "5");
    /* the answer itself is left as it was (the key is wiped by cs_apply, not here) */
    assert_string_equal(json_string_value(json_object_get(a, "PrivateKey")), "SECRET");
    free(text);
    json_decref(line);
    json_decref(a);
}

static void a_new_order_is_a_package_request_or_with_contact_details_a_dv_request(void **state)
{
    cs_apply_request pkg = {.domain = "a.test", .validate = CS_APPLY_DNS};
    cs_apply_request dv = {.domain = "b.test",
                           .validate = CS_APPLY_FILE,
                           .product = "dv-1",
                           .username = "Ops",
                           .phone = "13800000000",
                           .email = "ops@example.com"};
    const char *action;
    cs_kv q;
    (void)state;

    assert_int_equal(cs_apply_order_request(&pkg, &q, &action), CS_OK);
    assert_string_equal(action, "CreateCertificateForPackageRequest");
    assert_string_equal(cs_kv_get(&q, "Domain"), "a.test");
    assert_string_equal(cs_kv_get(&q, "ValidateType"), "DNS");
    assert_string_equal(cs_kv_get(&q, "ProductCode"), "digicert-free-1-free");
    assert_null(cs_kv_get(&q, "Username"));
    cs_kv_clear(&q);

    assert_int_equal(cs_apply_order_request(&dv, &q, &action), CS_OK);
    assert_string_equal(action, "CreateCertificateRequest");
    assert_string_equal(cs_kv_get(&q, "ValidateType"), "FILE");
    assert_string_equal(cs_kv_get(&q, "ProductCode"), "dv-1");
    assert_string_equal(cs_kv_get(&q, "Phone"), "13800000000");
    assert_string_equal(cs_kv_get(&q, "Email"), "ops@example.com");
    cs_kv_clear(&q);

    dv.email = NULL;
    assert_int_equal(cs_apply_order_request(&dv, &q, &action), CS_EINVAL);
    assert_non_null(strstr(cs_error_last(), "username, phone and email together"));
}

static void continuing_an_order_asks_nothing_until_the_first_step(void **state)
{
    cs_apply_request bad = {.domain = "a.test", .order = "12/../3"};
    cs_apply_request go_on = {.domain = "a.test", .order = ORDER};
    cs_bundle *b = (cs_bundle *)&b;
    cs_apply *ap = (cs_apply *)&ap;
    (void)state;

    /* no client: a refused id, or a known order, needs no request */
    assert_int_equal(cs_apply_start(NULL, &bad, &ap), CS_EINVAL);
    assert_null(ap);
    assert_non_null(strstr(cs_error_last(), "is not an order id"));
    assert_int_equal(cs_apply_start(NULL, &go_on, &ap), CS_OK);
    assert_string_equal(cs_apply_order(ap), ORDER);
    /* before a step there is nothing to publish, install or show */
    assert_int_equal(cs_apply_publish(ap, NULL), CS_EINVAL);
    assert_int_equal(cs_apply_bundle(ap, &b), CS_EINVAL);
    assert_null(b);
    assert_null(cs_apply_json(ap));
    cs_apply_free(ap);
}

static void validation_data_is_fresh_once_and_again_when_the_service_changes_it(void **state)
{
    cs_apply_request go_on = {.domain = "a.test", .order = ORDER};
    json_t *one = answer("{\"Type\": \"domain_verify\", \"ValidateType\": \"FILE\", \"Content\": "
                         "\"one\"}");
    json_t *two = answer("{\"Type\": \"domain_verify\", \"ValidateType\": \"FILE\", \"Content\": "
                         "\"two\"}");
    cs_apply_state st;
    cs_apply *ap;
    (void)state;

    assert_int_equal(cs_apply_start(NULL, &go_on, &ap), CS_OK);
    assert_int_equal(cs_apply_map(one, ORDER, &st), CS_OK);
    assert_true(cs_apply_fresh(ap, &st));
    assert_false(cs_apply_fresh(ap, &st)); /* every later poll: printed and written once */
    assert_int_equal(cs_apply_map(two, ORDER, &st), CS_OK);
    assert_true(cs_apply_fresh(ap, &st)); /* a new token is published again */
    cs_apply_free(ap);
    json_decref(one);
    json_decref(two);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_file_validation_says_which_file_to_publish),
        cmocka_unit_test(a_dns_validation_names_the_record_to_publish),
        cmocka_unit_test(the_service_states_read_in_the_consoles_words),
        cmocka_unit_test(an_issued_order_names_its_certificate_exactly),
        cmocka_unit_test(a_failed_review_says_which_order_failed),
        cmocka_unit_test(an_answer_without_what_its_state_needs_is_an_error_naming_the_order),
        cmocka_unit_test(the_json_line_adds_the_order_and_its_status_and_never_the_key),
        cmocka_unit_test(a_new_order_is_a_package_request_or_with_contact_details_a_dv_request),
        cmocka_unit_test(continuing_an_order_asks_nothing_until_the_first_step),
        cmocka_unit_test(validation_data_is_fresh_once_and_again_when_the_service_changes_it),
    };

    return cmocka_run_group_tests_name("apply", tests, NULL, NULL);
}
