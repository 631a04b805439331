/* The local-ca provider: the embedded CA of the store issues when a new version is due. */
#include "cs_localca.h"
#include "cs_provider.h"

static cs_rc localca_obtain(void *state, cs_store *s, const cs_cert_conf *cc, int force,
                            cs_bundle **b, cs_provider_result *res)
{
    (void)state;
    *b = NULL;
    if (!cs_provider_due(s, cc, force, res->reason, sizeof(res->reason)))
        return CS_OK;
    return cs_localca_issue(s, cc, cc->provider ? cc->provider->ca_lifetime : 0, b);
}

const cs_provider_ops cs_provider_local_ca = {
    "local-ca", CS_PROVIDER_LOCAL_CA, NULL, NULL, localca_obtain,
};
