/* certsync: when an in-server sync runs next (see cs_retry.h for the rule). */
#include "cs_retry.h"

/* d +- 10 %, rnd spread evenly over [0.9 d, 1.1 d] */
static uint64_t jittered(uint64_t d, uint32_t rnd)
{
    uint64_t span = d / 5;

    return d - d / 10 + (span ? (uint64_t)rnd % (span + 1) : 0);
}

uint64_t cs_retry_delay_ms(unsigned failures, uint64_t interval_ms, uint32_t rnd)
{
    uint64_t cap, d = CS_RETRY_FIRST_MS;
    unsigned i;

    if (interval_ms == 0)
        interval_ms = CS_RETRY_MAX_MS;
    if (failures == 0)
        return jittered(interval_ms, rnd);
    cap = interval_ms < CS_RETRY_MAX_MS ? interval_ms : CS_RETRY_MAX_MS;
    for (i = 1; i < failures && d < cap; i++)
        d *= 2;
    return jittered(d < cap ? d : cap, rnd);
}
