/*
 * The acme provider: an ACME CA (RFC 8555) issues when a new version is due,
 * or when an order of an earlier sync is still in progress (it is resumed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cs_acme.h"
#include "cs_provider.h"

typedef struct {
    const cs_provider_conf *pv;
    cs_acme *client; /* made at the first obtain, which brings the store */
} acme_state;

static cs_rc acme_open(const cs_provider_conf *pv, void **state)
{
    acme_state *st = calloc(1, sizeof(*st));

    if (st == NULL)
        return cs_error_set(CS_ENOMEM, "out of memory");
    st->pv = pv;
    *state = st;
    return CS_OK;
}

static void acme_close(void *state)
{
    acme_state *st = state;

    if (st == NULL)
        return;
    cs_acme_free(st->client);
    free(st);
}

/* The CA's renewal information (RFC 9773) may call for a renewal before renew-before does. */
static int ari_due(cs_acme *a, cs_store *s, const cs_cert_conf *cc, cs_provider_result *res)
{
    cs_bundle *cur = NULL;
    int due;

    if (cs_store_load(s, cc->name, 0, &cur) != CS_OK) {
        cs_error_clear();
        return 0;
    }
    due = cs_acme_ari_due(a, cc->name, cs_bundle_leaf(cur), time(NULL), res->reason,
                          sizeof(res->reason));
    cs_bundle_free(cur);
    return due;
}

static cs_rc acme_obtain(void *state, cs_store *s, const cs_cert_conf *cc, int force, cs_bundle **b,
                         cs_provider_result *res)
{
    acme_state *st = state;
    unsigned before;

    *b = NULL;
    if (st->client == NULL && cs_acme_new(st->pv, s, &st->client) != CS_OK)
        return cs_error_code();
    if (!cs_provider_due(s, cc, force, res->reason, sizeof(res->reason)) &&
        !cs_acme_order_pending(st->client, cc) && !ari_due(st->client, s, cc, res))
        return CS_OK;
    before = cs_acme_requests(st->client);
    if (cs_acme_issue(st->client, cc, b) != CS_OK)
        return cs_error_code();
    snprintf(res->reason, sizeof(res->reason), "issued by the ACME CA %s (%u requests)",
             st->pv->directory, cs_acme_requests(st->client) - before);
    return CS_OK;
}

/* Nothing is asked of the CA, nor made in the store: the steps a sync would take. */
static cs_rc acme_plan(void *state, cs_store *s, const cs_cert_conf *cc, int force,
                       cs_provider_plan *out)
{
    acme_state *st = state;

    snprintf(out->reason, sizeof(out->reason), "no version yet");
    out->due = s == NULL || cs_provider_due(s, cc, force, out->reason, sizeof(out->reason));
    if (!out->due) {
        snprintf(out->calls, sizeof(out->calls),
                 "none (an order an earlier sync left in progress would be resumed)");
        return CS_OK;
    }
    snprintf(out->calls, sizeof(out->calls),
             "the ACME CA %s: the account (registered when none is kept), an order for %zu "
             "name(s) (or the one in progress resumed), %s, finalize, download",
             st->pv->directory, cc->n_domains,
             st->pv->challenge == CS_ACME_DNS01
                 ? (strcmp(st->pv->dns, "alidns") == 0
                        ? "dns-01 TXT records added and removed through Alibaba Cloud DNS"
                        : "dns-01 TXT records added and removed by the dns hook")
             : st->pv->webroot ? "http-01 answered in the webroot and the store"
                               : "http-01 answered from the store (the modules)");
    return CS_OK;
}

const cs_provider_ops cs_provider_acme = {
    "acme", CS_PROVIDER_ACME, acme_open, acme_close, acme_obtain, acme_plan,
};
