/* Deploying to cloud products: the resource names an operator writes, and the service's rows. */
#include <string.h>

#include "cs_deploy.h"
#include "cs_test.h"

static void products_map_to_the_services_cloud_product_and_cloud(void **state)
{
    const char *product, *cloud;
    (void)state;

    assert_int_equal(cs_deploy_product("cdn", &product, &cloud), CS_OK);
    assert_string_equal(product, "CDN");
    assert_string_equal(cloud, "aliyun");
    assert_int_equal(cs_deploy_product("clb", &product, &cloud), CS_OK);
    assert_string_equal(product, "SLB"); /* CLB is SLB to the service */
    assert_int_equal(cs_deploy_product("TencentCDN", &product, &cloud), CS_OK);
    assert_string_equal(cloud, "Tencent");
    assert_int_equal(cs_deploy_product("ftp", &product, &cloud), CS_EINVAL);
    assert_non_null(strstr(cs_error_last(), "unknown product 'ftp'; known products: cdn, dcdn"));
}

static void a_deploy_value_is_checked_word_by_word(void **state)
{
    (void)state;

    assert_int_equal(cs_deploy_targets_check("cdn:www.example.com slb:lb-x:443, 2356001"), CS_OK);
    assert_int_equal(cs_deploy_targets_check("cdn:www.example.com ftp:x"), CS_EINVAL);
    assert_non_null(strstr(cs_error_last(), "'ftp:x': unknown product 'ftp'"));
    assert_int_equal(cs_deploy_targets_check("www.example.com"), CS_EINVAL);
    assert_non_null(strstr(cs_error_last(), "'www.example.com' is not PRODUCT:DOMAIN"));
    assert_int_equal(cs_deploy_targets_check("cdn:"), CS_EINVAL);
}

static void label(const char *row, const char *want)
{
    json_t *j = json_loads(row, 0, NULL);
    char buf[256];

    assert_non_null(j);
    cs_deploy_label(j, buf, sizeof(buf));
    assert_string_equal(buf, want);
    json_decref(j);
}

static void a_row_is_named_as_an_operator_writes_it(void **state)
{
    (void)state;

    label("{\"Id\": 1, \"CloudProduct\": \"CDN\", \"Domain\": \"www.example.com\"}",
          "cdn:www.example.com");
    label("{\"Id\": 2, \"CloudProduct\": \"SLB\", \"InstanceId\": \"lb-x\", \"ListenerPort\": "
          "\"443\", \"Domain\": \"\"}",
          "slb:lb-x:443");
    label("{\"Id\": 3, \"CloudProduct\": \"TencentCDN\", \"Domain\": \"a.test\"}",
          "tencentcdn:a.test");
    /* no domain, no instance: its id */
    label("{\"Id\": 9007199254741001, \"CloudProduct\": \"FC\"}", "9007199254741001");
}

static void a_worker_that_ended_in_error_failed(void **state)
{
    json_t *ok = json_pack("{s:s}", "Status", "success"),
           *bad = json_pack("{s:s}", "Status", "error");
    (void)state;

    assert_false(cs_deploy_worker_failed(ok));
    assert_true(cs_deploy_worker_failed(bad));
    json_decref(ok);
    json_decref(bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(products_map_to_the_services_cloud_product_and_cloud),
        cmocka_unit_test(a_deploy_value_is_checked_word_by_word),
        cmocka_unit_test(a_row_is_named_as_an_operator_writes_it),
        cmocka_unit_test(a_worker_that_ended_in_error_failed),
    };

    return cmocka_run_group_tests_name("deploy", tests, NULL, NULL);
}
