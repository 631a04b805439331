/*
 * certsync (internal): the pure half of cs_apply.c, reading the service's
 * answers apart from sending requests, so the unit tests feed it answers
 * shaped like the service's (and the emulator's) directly.
 */
#ifndef CS_APPLY_MAP_H
#define CS_APPLY_MAP_H

#include <jansson.h>

#include "cs_aliyun_sign.h"
#include "cs_apply.h"

/*
 * The request that places req's order: its parameters into q (initialised
 * here) and the action to send. CS_EINVAL when req cannot be sent.
 */
cs_rc cs_apply_order_request(const cs_apply_request *req, cs_kv *q, const char **action);

/*
 * A DescribeCertificateState answer for order as a state (fresh left 0); the
 * strings borrow from answer. CS_EPROVIDER when the answer lacks what its
 * Type needs (a FILE without Content, a DNS record without a value, ...).
 */
cs_rc cs_apply_map(json_t *answer, const char *order, cs_apply_state *out);

/*
 * Is st's validation data (PENDING) new to ap, i.e. not what an earlier step
 * already called fresh? Remembers it.
 */
int cs_apply_fresh(cs_apply *ap, const cs_apply_state *st);

/* The answer as apply --json shows it: no PrivateKey, OrderId and status added (new reference). */
json_t *cs_apply_line(json_t *answer, const char *order);

#endif
