/* Collecting the pages of ListUserCertificateOrder. */
#include <jansson.h>
#include <stdlib.h>

#include "cs_aliyun_parse.h"
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_full_page_asks_for_the_next_and_a_short_one_ends),
        cmocka_unit_test(out_of_memory_is_not_the_end_of_the_list),
    };

    return cmocka_run_group_tests_name("aliyun_list", tests, NULL, NULL);
}
