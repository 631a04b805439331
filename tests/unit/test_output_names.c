/* File names that come from data (a service's id, a certificate's name) stay one file. */
#include "cs_output.h"
#include "cs_test.h"

static void ids_are_digits_and_names_are_plain_or_the_fallback_is_used(void **state)
{
    (void)state;

    assert_string_equal(cs_safe_file_name("9007199254741001", 1, "cert"), "9007199254741001");
    assert_string_equal(cs_safe_file_name("../../../PWN", 1, "cert"), "cert");
    assert_string_equal(cs_safe_file_name("12a", 1, "cert"), "cert");
    assert_string_equal(cs_safe_file_name("", 1, "shop"), "shop");
    assert_string_equal(cs_safe_file_name(NULL, 0, "shop"), "shop");
    assert_string_equal(cs_safe_file_name("_.shop.example.com", 0, "cert"), "_.shop.example.com");
    assert_string_equal(cs_safe_file_name("Shop-2_b", 0, "cert"), "Shop-2_b");
    assert_string_equal(cs_safe_file_name("../../../X", 0, "cert"), "cert");
    assert_string_equal(cs_safe_file_name("a..b", 0, "cert"), "cert");
    assert_string_equal(cs_safe_file_name(".hidden", 0, "cert"), "cert");
    assert_string_equal(cs_safe_file_name("a/b", 0, "cert"), "cert");
    assert_string_equal(cs_safe_file_name("a b", 0, "cert"), "cert");
    assert_string_equal(cs_safe_file_name("a\nb", 0, "cert"), "cert");
    assert_string_equal(cs_safe_file_name("é", 0, "cert"), "cert");
    assert_string_equal(
        cs_safe_file_name("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0,
                          "c"),
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"); /* 64 */
    assert_string_equal(
        cs_safe_file_name("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0,
                          "c"),
        "c"); /* 65 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ids_are_digits_and_names_are_plain_or_the_fallback_is_used),
    };

    return cmocka_run_group_tests_name("output_names", tests, NULL, NULL);
}
