/*
 * certsync: the one loading policy of the servers (nginx, Apache), at start
 * and at every swap of `current`:
 *
 *   key, chain or names fail      never served: the config test fails with
 *                                 file:line; at a swap the old one stays
 *   expired, otherwise good       served with a warning until a valid
 *                                 version exists
 *   valid                         served
 *   no version yet                the fallback (cs_fallback.h), and 503 with
 *                                 Retry-After: CS_SERVE_RETRY_AFTER_S for
 *                                 every request but validation answers and
 *                                 status
 */
#ifndef CS_SERVE_H
#define CS_SERVE_H

#include <time.h>

#include "cs_bundle.h"
#include "cs_config.h"
#include "cs_error.h"

/* Retry-After of the 503 answered while a name has only its fallback. */
#define CS_SERVE_RETRY_AFTER_S 60

typedef enum {
    CS_SERVE_VALID,   /* serve it */
    CS_SERVE_EXPIRED, /* past its not-after, otherwise good: serve it, with a warning */
    CS_SERVE_REFUSED, /* key, chain, names or not yet valid: never serve it */
} cs_serve_verdict;

/*
 * Decide what a server does with version b of the [cert] cc at now (0: the
 * current time): *out is the verdict. CS_OK for VALID and EXPIRED (for
 * EXPIRED the message says so, for the warning); CS_EBADCERT for REFUSED,
 * with the reason. origin names the version in messages ("\"shop\" v3").
 */
cs_rc cs_serve_check(const cs_bundle *b, const cs_cert_conf *cc, time_t now, const char *origin,
                     cs_serve_verdict *out);

/*
 * Whether a version checked as v replaces what is served: served is the
 * bundle served now (borrowed), NULL while the fallback is. A valid version
 * always does; an expired one only replaces the fallback or an older
 * expired one (a valid version exists, or a newer expired one is served).
 */
int cs_serve_replaces(cs_serve_verdict v, const cs_bundle *b, const cs_bundle *served, time_t now);

#endif
