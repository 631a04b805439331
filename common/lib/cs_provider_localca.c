/* The local-ca provider: the embedded CA of the store issues when a new version is due. */
#include "cs_localca.h"
#include "cs_provider.h"

#include <stdio.h>
#include <unistd.h>

static cs_rc localca_obtain(void *state, cs_store *s, const cs_cert_conf *cc, int force,
                            cs_bundle **b, cs_provider_result *res)
{
    (void)state;
    *b = NULL;
    if (!cs_provider_due(s, cc, force, res->reason, sizeof(res->reason)))
        return CS_OK;
    return cs_localca_issue(s, cc, cc->provider ? cc->provider->ca_lifetime : 0, b);
}

static cs_rc localca_plan(void *state, cs_store *s, const cs_cert_conf *cc, int force,
                          cs_provider_plan *out)
{
    char root[4096];

    (void)state;
    snprintf(out->reason, sizeof(out->reason), "no version yet");
    out->due = s == NULL || cs_provider_due(s, cc, force, out->reason, sizeof(out->reason));
    if (!out->due) {
        snprintf(out->calls, sizeof(out->calls), "none (the local CA is in the store)");
        return CS_OK;
    }
    snprintf(root, sizeof(root), "%s/local-ca/root.pem", s ? cs_store_path(s) : "");
    snprintf(
        out->calls, sizeof(out->calls),
        "%sthe local CA would issue a new %ld-day certificate in this process (no remote call)",
        s == NULL || access(root, F_OK) != 0 ? "the local CA would be created (local-ca/); " : "",
        cc->lifetime / 86400);
    return CS_OK;
}

const cs_provider_ops cs_provider_local_ca = {
    "local-ca", CS_PROVIDER_LOCAL_CA, NULL, NULL, localca_obtain, localca_plan,
};
