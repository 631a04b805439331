/*
 * certsync: a dry run of a sync (`certsync sync --dry-run`): what a sync would
 * do for a managed certificate (is it due and why, what its provider would be
 * asked, which on-change command would run) with nothing written, locked,
 * ordered or spent. A provider is asked read-only questions at most (the
 * aliyun-cas list), so the answer is what a sync would find now.
 */
#ifndef CS_SYNC_PLAN_H
#define CS_SYNC_PLAN_H

#include "cs_config.h"
#include "cs_store.h"
#include "cs_sync.h"

typedef struct {
    int due;          /* a sync would install a new version */
    unsigned held;    /* held at this version by a rollback: a sync would do nothing */
    unsigned version; /* the current version (0: none) */
    char reason[256]; /* why it is due, or why not */
    char calls[512];  /* what its provider would be asked (or would do in this process) */
    char hook[1024];  /* the on-change command a sync would run, "" for none */
    int hook_pending; /* not due, but an on-change failed before: a sync runs it again */
} cs_sync_plan;

/*
 * The plan for cc. s may be NULL: the store does not exist yet (a sync would
 * create it). sess as for cs_sync_cert (it keeps a provider's list for the
 * next certificates). An error is what the sync would fail on (no such
 * certificate in the service, credentials refused, ...).
 */
cs_rc cs_sync_plan_cert(cs_sync_session *sess, cs_store *s, const cs_cert_conf *cc, int force,
                        cs_sync_plan *out);

#endif
