/*
 * certsync: the schedule of the syncs that servers run by themselves (nginx
 * certsync_sync, Apache CertSyncSync). One rule for both, decided here:
 *
 *   after a run that succeeded: the interval, +-10 %
 *   after N failed runs in a row: 5 s, 10 s, 20 s, ... (5 s * 2^(N-1)), never
 *   more than the interval nor more than 1 h, +-10 %
 *
 * The jitter keeps many servers from asking the provider at the same second.
 */
#ifndef CS_RETRY_H
#define CS_RETRY_H

#include <stdint.h>

#define CS_RETRY_FIRST_MS 5000ULL
#define CS_RETRY_MAX_MS 3600000ULL

/*
 * Milliseconds from the end of a run to the next one. failures: failed runs
 * in a row (0: the last one succeeded); interval_ms: the configured interval
 * (0 is taken as 1 h); rnd: a random 32-bit value of the caller's source
 * (ngx_random(), apr_generate_random_bytes()), which picks the jitter.
 */
uint64_t cs_retry_delay_ms(unsigned failures, uint64_t interval_ms, uint32_t rnd);

#endif
