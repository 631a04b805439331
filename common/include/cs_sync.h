/*
 * certsync: one sync of a managed certificate: ask its provider whether a
 * new certificate is due or available, and install it when it is. A failure
 * changes nothing that is served; it is recorded for status.
 */
#ifndef CS_SYNC_H
#define CS_SYNC_H

#include "cs_config.h"
#include "cs_store.h"

typedef struct {
    cs_sync_result result;
    unsigned version; /* current version after the sync (0: none) */
    char reason[256]; /* why a new one was installed, or why none was */
    unsigned held;    /* held at this version by a rollback: nothing was asked or done */
    /* a pending on-change (a failed one of an earlier sync) ran again: */
    enum { HOOK_NOT_RETRIED, HOOK_DELIVERED, HOOK_STILL_FAILING } hook_retried;
    char ocsp[1280];    /* what the OCSP staple refresh did ("" when not tried) */
    int ocsp_failed;    /* it failed or the responder says revoked (the sync's rc is not changed) */
    char deployed[512]; /* `deploy =`: the resources that got the current version now, or "" */
} cs_sync_outcome;

/*
 * One sync run over several certificates shares a session: a provider's
 * client and its certificate list are made once, so that a sync of many
 * unchanged certificates costs the list calls only.
 */
typedef struct cs_sync_session cs_sync_session;

/* NULL when c is NULL or memory is short. */
cs_sync_session *cs_sync_session_new(const cs_config *c);
void cs_sync_session_free(cs_sync_session *sess);

/*
 * on (the default; the servers' in-process syncs): a pending on-change runs
 * again only after its backoff (1 min after the first failure, doubling, at
 * most 1 h). off (`certsync sync`, run by a person, cron or a timer at a pace
 * of their choosing): it runs again at every sync.
 */
void cs_sync_session_set_backoff(cs_sync_session *sess, int on);

/*
 * force: issue or fetch even when the current version is still good.
 * A held certificate (cs_store_hold, after a rollback) is left alone, force
 * or not: CS_OK, out->held set and out->reason saying how to release it.
 * A failing on-change command returns an error with out->result INSTALLED,
 * and stays pending: every following sync runs it again (see
 * cs_sync_session_set_backoff) until it succeeds.
 * With `deploy =`, the current version then goes to those cloud resources
 * (cs_deploy_cert): a failure there returns an error too and stays pending.
 * sess is required (cs_sync_session_new with the configuration: it names the
 * on-change command); without it the call fails, it never skips on-change.
 * Whatever happened, the current version's OCSP staple is then refreshed
 * when due (cs_ocsp_refresh): out->ocsp says how.
 */
cs_rc cs_sync_cert(cs_sync_session *sess, cs_store *s, const cs_cert_conf *cc, int force,
                   cs_sync_outcome *out);

/*
 * Run cc's on-change command for version (no-op without one). Called after
 * every change of current: sync, import, rollback. A failure is recorded as
 * the certificate's pending hook (cs_sync_state.hook), a success clears it.
 */
cs_rc cs_sync_notify(const cs_config *c, cs_store *s, const cs_cert_conf *cc, unsigned version);

/*
 * Install options from a [cert NAME] section (cc may be NULL: defaults, no
 * names to check): names, formats, PKCS#12 profile, alias, password file.
 */
cs_install_opts cs_install_opts_for(const cs_cert_conf *cc, const char *provider,
                                    const char *remote_id);

/* Store options from [store] (owner and group resolved to ids). */
cs_rc cs_store_open_config(const cs_config *c, cs_store **out);

#endif
