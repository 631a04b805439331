/* certsync: a dry run of a sync (see cs_sync_plan.h). */
#include "cs_sync_plan.h"

#include <stdio.h>
#include <string.h>

#include "cs_provider.h"
#include "cs_time.h"

/* A [cert] without a provider is issued by the embedded local CA (as cs_sync.c). */
static const cs_provider_conf embedded = {.name = (char *)"(embedded local CA)",
                                          .type = CS_PROVIDER_LOCAL_CA};

/* A rolled-back certificate is held: a sync asks no provider. */
static int held(cs_store *s, const cs_cert_conf *cc, cs_sync_plan *out)
{
    cs_sync_state st;
    char since[CS_TIME_ISO_SIZE];

    if (s == NULL || cs_store_sync_state(s, cc->name, &st) != CS_OK || st.held == 0) {
        cs_error_clear();
        return 0;
    }
    out->held = st.held;
    snprintf(out->reason, sizeof(out->reason),
             "held at v%u since %s; `certsync release %s` resumes", st.held,
             cs_time_iso(st.held_since, since), cc->name);
    snprintf(out->calls, sizeof(out->calls), "none");
    return 1;
}

/* An on-change that failed: a sync runs it again for the current version (cs_sync.c). */
static int hook_pending(cs_store *s, const char *name, unsigned version)
{
    cs_sync_state st;

    if (s == NULL || version == 0 || cs_store_sync_state(s, name, &st) != CS_OK) {
        cs_error_clear();
        return 0;
    }
    return st.hook.version != 0;
}

cs_rc cs_sync_plan_cert(cs_sync_session *sess, cs_store *s, const cs_cert_conf *cc, int force,
                        cs_sync_plan *out)
{
    const cs_provider_conf *pv = cc->provider ? cc->provider : &embedded;
    const cs_provider_ops *ops = cs_provider_ops_of(pv->type);
    cs_provider_plan p = {0};
    void *state;

    memset(out, 0, sizeof(*out));
    if (s == NULL || cs_store_current(s, cc->name, &out->version) != CS_OK)
        out->version = 0;
    cs_error_clear();
    if (held(s, cc, out))
        return CS_OK;
    if (ops == NULL || ops->plan == NULL)
        return cs_error_set(CS_ECONFIG, "[provider %s]: no dry run for this provider type",
                            pv->name);
    if (cs_sync_provider_state(sess, pv, &state) != CS_OK || ops->plan(state, s, cc, force, &p))
        return cs_error_code();
    out->due = p.due;
    snprintf(out->reason, sizeof(out->reason), "%s", p.reason);
    snprintf(out->calls, sizeof(out->calls), "%s", p.calls);
    if (p.due && cc->on_change)
        snprintf(out->hook, sizeof(out->hook), "%s", cc->on_change);
    else if (cc->on_change && hook_pending(s, cc->name, out->version))
        out->hook_pending = snprintf(out->hook, sizeof(out->hook), "%s", cc->on_change) > 0;
    return CS_OK;
}
