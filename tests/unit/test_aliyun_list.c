/* Collecting the pages of ListUserCertificateOrder; error hints; region endpoints. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cs_aliyun.h"
#include "cs_aliyun_parse.h"
#include "cs_http.h"
#include "cs_test.h"

/* jansson's allocator, failing only the allocation after `budget` others (-1: none) */
static long budget = -1;

static void *tight_malloc(size_t n)
{
    if (budget-- == 0)
        return NULL;
    return malloc(n);
}

/* A page of n entries (more than a new array holds, so appending them must allocate). */
static json_t *page_of(int n, int total)
{
    json_t *list = json_array();

    for (int i = 0; i < n; i++)
        json_array_append_new(list, json_pack("{s:i}", "CertificateId", 1000 + i));
    return json_pack("{s:o, s:i}", "CertificateOrderList", list, "TotalCount", total);
}

static void a_full_page_asks_for_the_next_and_a_short_one_ends(void **state)
{
    json_t *all = json_array(), *full = page_of(50, 70), *last = page_of(20, 70);

    (void)state;
    assert_int_equal(cs_aliyun_list_page(full, all), 1);
    assert_int_equal(cs_aliyun_list_page(last, all), 0);
    assert_int_equal(json_array_size(all), 70);
    json_decref(full);
    json_decref(last);
    json_decref(all);
}

/* out of memory while appending: an error, never "the list ends here" with entries lost */
static void out_of_memory_is_not_the_end_of_the_list(void **state)
{
    json_t *all = json_array(), *page = page_of(20, 70);

    (void)state;
    budget = 0;
    json_set_alloc_funcs(tight_malloc, free);
    assert_int_equal(cs_aliyun_list_page(page, all), -1);
    json_set_alloc_funcs(malloc, free);
    budget = -1;
    json_decref(page);
    json_decref(all);
}

/* An error answer of the service as cs_aliyun_answer reports it. */
static const char *answered(const char *action, const char *body)
{
    cs_http_response resp = {.status = 403, .body = (char *)body, .len = strlen(body)};
    char code[64];
    json_t *out = NULL;
    int retry;

    assert_int_equal(
        cs_aliyun_answer(action, "https://cas.test", &resp, code, sizeof(code), &out, &retry),
        CS_EPROVIDER);
    return cs_error_last();
}

/* the code and the service's (Chinese) message, then a one-line English hint */
static void an_error_keeps_code_and_message_and_adds_a_hint(void **state)
{
    const char *e;

    (void)state;
    e = answered("DeleteCertificateRequest", "{\"Code\":\"OrderStateError\",\"Message\":"
                                             "\"\u8bc1\u4e66\",\"RequestId\":\"R1\"}");
    assert_non_null(
        strstr(e, "OrderStateError: \xe8\xaf\x81\xe4\xb9\xa6 (HTTP 403, RequestId R1)"));
    assert_non_null(
        strstr(e, "; only a failed or withdrawn order can be deleted: withdraw the order first"));
    e = answered("DeleteUserCertificate", "{\"Code\":\"Whatever\",\"RequestId\":\"R2\"}");
    assert_non_null(strstr(e, "only expired or uploaded certificates can be deleted"));
    e = answered("DeleteUserCertificate", "{\"Code\":\"NotFound\",\"RequestId\":\"R3\"}");
    assert_non_null(strstr(e, "no such certificate or order"));
    e = answered("ListUserCertificateOrder", "{\"Code\":\"Rare.Code\",\"RequestId\":\"R4\"}");
    assert_string_equal(strstr(e, "Rare.Code"), "Rare.Code:  (HTTP 403, RequestId R4)");
}

/* the SDK's endpoint map: listed regions go to the central endpoint, others to their own */
static void regions_use_the_sdks_endpoints(void **state)
{
    char host[128];

    (void)state;
    assert_int_equal(cs_aliyun_region_host("cn-hongkong", host, sizeof(host)), CS_OK);
    assert_string_equal(host, "cas.aliyuncs.com");
    assert_int_equal(cs_aliyun_region_host("ap-southeast-1", host, sizeof(host)), CS_OK);
    assert_string_equal(host, "cas.ap-southeast-1.aliyuncs.com");
    assert_int_equal(cs_aliyun_region_host("evil.com/x", host, sizeof(host)), CS_ECONFIG);
    assert_int_equal(cs_aliyun_region_host("", host, sizeof(host)), CS_ECONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_full_page_asks_for_the_next_and_a_short_one_ends),
        cmocka_unit_test(out_of_memory_is_not_the_end_of_the_list),
        cmocka_unit_test(an_error_keeps_code_and_message_and_adds_a_hint),
        cmocka_unit_test(regions_use_the_sdks_endpoints),
    };

    return cmocka_run_group_tests_name("aliyun_list", tests, NULL, NULL);
}
