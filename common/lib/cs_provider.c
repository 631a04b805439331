#include "cs_provider.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* The providers: one row each. */
static const cs_provider_ops *const providers[] = {
    &cs_provider_local_ca,
    &cs_provider_aliyun_cas,
    &cs_provider_acme,
};

#define N_PROVIDERS (sizeof(providers) / sizeof(providers[0]))

const cs_provider_ops *cs_provider_named(const char *name)
{
    size_t i;

    for (i = 0; i < N_PROVIDERS; i++)
        if (strcmp(providers[i]->type, name) == 0)
            return providers[i];
    return NULL;
}

const char *cs_provider_types(void)
{
    static char list[256];
    size_t i, n = 0;

    if (list[0] == '\0')
        for (i = 0; i < N_PROVIDERS && n < sizeof(list); i++)
            n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", i ? ", " : "",
                                  providers[i]->type);
    return list;
}

const cs_provider_ops *cs_provider_ops_of(cs_provider_type id)
{
    size_t i;

    for (i = 0; i < N_PROVIDERS; i++)
        if (providers[i]->id == id)
            return providers[i];
    return NULL;
}

/* The current version holds a certificate that certsync revoke revoked. */
static int current_revoked(cs_store *s, const char *name, const cs_bundle *b)
{
    char fp[65];
    int revoked = 0;

    cs_bundle_fingerprint(b, fp);
    if (cs_store_revoked(s, name, fp, &revoked) != CS_OK)
        revoked = 0;
    return revoked;
}

int cs_provider_due(cs_store *s, const cs_cert_conf *cc, int force, char *reason, size_t size)
{
    cs_bundle *b;
    time_t now = time(NULL), end;
    unsigned v;
    int r = 0;

    if (cs_store_current(s, cc->name, &v) != CS_OK) {
        snprintf(reason, size, "no version yet");
        return 1;
    }
    if (cs_store_load(s, cc->name, 0, &b) != CS_OK) {
        snprintf(reason, size, "the current version v%u does not load: %s", v, cs_error_last());
        return 1;
    }
    end = cs_bundle_not_after(b);
    if (cs_bundle_validate(b, (const char *const *)cc->domains, cc->n_domains, now,
                           "the current version") != CS_OK) {
        snprintf(reason, size, "%s", cs_error_last());
        r = 1;
    } else if (current_revoked(s, cc->name, b)) {
        snprintf(reason, size, "v%u was revoked (certsync revoke)", v);
        r = 1;
    } else if (end - now <= cc->renew_before) {
        snprintf(reason, size, "v%u expires in %ld days, inside renew-before (%ld days)", v,
                 (long)((end - now) / 86400), cc->renew_before / 86400);
        r = 1;
    } else if (force) {
        snprintf(reason, size, "forced (v%u was still good for %ld days)", v,
                 (long)((end - now) / 86400));
        r = 1;
    } else {
        snprintf(reason, size, "v%u is good for %ld more days", v, (long)((end - now) / 86400));
    }
    cs_bundle_free(b);
    cs_error_clear();
    return r;
}
