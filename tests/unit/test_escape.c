/* Text from a service or a certificate, printed: no control character gets through. */
#include <stdlib.h>
#include <string.h>

#include "cs_escape.h"
#include "cs_test.h"

static void control_characters_and_broken_utf8_are_shown_not_obeyed(void **state)
{
    char buf[256], *d;
    (void)state;

    assert_string_equal(cs_escape("shop\n[installed] v9\r\x1b[2J", buf, sizeof(buf)),
                        "shop\\x0a[installed] v9\\x0d\\x1b[2J");
    assert_string_equal(cs_escape("a\x7f"
                                  "b\xc2\x9b"
                                  "c",
                                  buf, sizeof(buf)),
                        "a\\x7fb\\u009bc"); /* DEL, C1 CSI */
    assert_string_equal(cs_escape("\x9b"
                                  "x\xff\xe4\xb8",
                                  buf, sizeof(buf)),
                        "\\x9bx\\xff\\xe4\\xb8"); /* not UTF-8 */
    assert_string_equal(cs_escape("证书 é ok", buf, sizeof(buf)), "证书 é ok");
    assert_string_equal(cs_escape(NULL, buf, sizeof(buf)), "");
    /* cut to fit, never in the middle of an escape */
    assert_string_equal(cs_escape("ab\n", buf, 5), "ab");
    d = cs_escape_dup("\x01\x02");
    assert_string_equal(d, "\\x01\\x02");
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(control_characters_and_broken_utf8_are_shown_not_obeyed),
    };

    return cmocka_run_group_tests_name("escape", tests, NULL, NULL);
}
