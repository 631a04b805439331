/* One ISO 8601 form in every file and status document: written, read back, nothing else taken. */
#include <string.h>

#include "cs_test.h"
#include "cs_time.h"

static void a_time_is_written_in_utc_and_read_back_to_the_second(void **state)
{
    char buf[CS_TIME_ISO_SIZE];
    time_t t;
    (void)state;

    assert_string_equal(cs_time_iso(0, buf), "1970-01-01T00:00:00Z");
    assert_string_equal(cs_time_iso(1767323045, buf), "2026-01-02T03:04:05Z");
    assert_int_equal(cs_time_parse_iso("2026-01-02T03:04:05Z", &t), CS_OK);
    assert_int_equal(t, 1767323045);
    /* whatever the local zone says */
    setenv("TZ", "Asia/Shanghai", 1);
    tzset();
    assert_string_equal(cs_time_iso(1767323045, buf), "2026-01-02T03:04:05Z");
    assert_int_equal(cs_time_parse_iso("2024-02-29T23:59:59Z", &t), CS_OK);
    assert_string_equal(cs_time_iso(t, buf), "2024-02-29T23:59:59Z");
    unsetenv("TZ");
    tzset();
}

static void anything_but_the_exact_form_is_refused_and_named(void **state)
{
    static const char *const bad[] = {
        "",
        "2026-01-02",
        "2026-01-02T03:04:05",       /* no zone: local? */
        "2026-01-02T03:04:05+08:00", /* another zone */
        " 2026-01-02T03:04:05Z",     /* strptime would skip the blank */
        "2026-01-02T03:04:05Zjunk",
        "2026-02-30T00:00:00Z", /* no such day */
        "2026-13-01T00:00:00Z",
        "2026-01-02 03:04:05Z",
        "2026-01-02T03:04:60Z",
    };
    time_t t = 42;
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        t = 42;
        assert_int_equal(cs_time_parse_iso(bad[i], &t), CS_EINVAL);
        assert_int_equal(t, 0);
        assert_non_null(strstr(cs_error_last(), "is not a UTC time of the form"));
    }
    assert_int_equal(cs_time_parse_iso(NULL, &t), CS_EINVAL);
    /* text from a service is shown escaped */
    assert_int_equal(cs_time_parse_iso("\x1b[2J", &t), CS_EINVAL);
    assert_non_null(strstr(cs_error_last(), "'\\x1b[2J'"));
}

static void a_year_that_does_not_fit_the_form_gives_an_empty_string(void **state)
{
    char buf[CS_TIME_ISO_SIZE] = "x";
    (void)state;

    assert_string_equal(cs_time_iso((time_t)300000000000LL, buf), ""); /* year 11476 */
    assert_string_equal(cs_time_iso(253402300799, buf), "9999-12-31T23:59:59Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_time_is_written_in_utc_and_read_back_to_the_second),
        cmocka_unit_test(anything_but_the_exact_form_is_refused_and_named),
        cmocka_unit_test(a_year_that_does_not_fit_the_form_gives_an_empty_string),
    };

    return cmocka_run_group_tests_name("time", tests, NULL, NULL);
}
