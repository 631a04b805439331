/* An in-server sync that fails is retried soon, then less and less often; one that works waits the
 * interval. */
#include "cs_retry.h"
#include "cs_test.h"

#define S 1000ULL
#define HOUR (3600 * S)
#define MID 0x7fffffffU /* rnd in the middle: no jitter either way, give or take 1 ms */

static void a_success_waits_the_interval_with_ten_percent_jitter(void **state)
{
    (void)state;
    assert_int_equal(cs_retry_delay_ms(0, 12 * HOUR, 0), 12 * HOUR * 9 / 10);
    assert_int_equal(cs_retry_delay_ms(0, 12 * HOUR, 12 * HOUR / 5), 12 * HOUR * 11 / 10);
    assert_in_range(cs_retry_delay_ms(0, 600 * S, MID), 540 * S, 660 * S);
    /* no interval configured: the default hour */
    assert_in_range(cs_retry_delay_ms(0, 0, MID), HOUR * 9 / 10, HOUR * 11 / 10);
}

static void failures_back_off_from_five_seconds_doubling_to_an_hour(void **state)
{
    static const uint64_t expected[] = {5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600};
    unsigned n;
    (void)state;

    for (n = 1; n <= sizeof(expected) / sizeof(expected[0]); n++) {
        assert_int_equal(cs_retry_delay_ms(n, 24 * HOUR, 0), expected[n - 1] * S * 9 / 10);
        assert_in_range(cs_retry_delay_ms(n, 24 * HOUR, 0xffffffffU), expected[n - 1] * S * 9 / 10,
                        expected[n - 1] * S * 11 / 10);
    }
    /* a long outage never overflows into a short delay */
    assert_int_equal(cs_retry_delay_ms(4000000000U, 24 * HOUR, 0), HOUR * 9 / 10);
}

static void a_retry_never_waits_longer_than_the_interval(void **state)
{
    (void)state;
    /* CertSyncSyncInterval 30s: 5, 10, 20, then 30 s */
    assert_int_equal(cs_retry_delay_ms(3, 30 * S, 0), 20 * S * 9 / 10);
    assert_int_equal(cs_retry_delay_ms(4, 30 * S, 0), 30 * S * 9 / 10);
    assert_int_equal(cs_retry_delay_ms(40, 30 * S, 0), 30 * S * 9 / 10);
    /* an interval shorter than the first step: the interval */
    assert_int_equal(cs_retry_delay_ms(1, 3 * S, 0), 3 * S * 9 / 10);
}

static void the_jitter_spreads_over_the_whole_window(void **state)
{
    uint64_t lo = UINT64_MAX, hi = 0, d;
    uint32_t r;
    (void)state;

    for (r = 0; r < 20000; r += 7) {
        d = cs_retry_delay_ms(1, HOUR, r * 2654435761U);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    assert_in_range(lo, 4500, 4520);
    assert_in_range(hi, 5480, 5500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_success_waits_the_interval_with_ten_percent_jitter),
        cmocka_unit_test(failures_back_off_from_five_seconds_doubling_to_an_hour),
        cmocka_unit_test(a_retry_never_waits_longer_than_the_interval),
        cmocka_unit_test(the_jitter_spreads_over_the_whole_window),
    };

    return cmocka_run_group_tests_name("retry", tests, NULL, NULL);
}
