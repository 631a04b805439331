/* certsync: the one loading policy of the servers (see cs_serve.h). */
#include "cs_serve.h"

#include <stdio.h>

static cs_rc check_at(const cs_bundle *b, const cs_cert_conf *cc, time_t t, const char *origin)
{
    return cs_bundle_validate(b, (const char *const *)cc->domains, cc->n_domains, t, origin);
}

cs_rc cs_serve_check(const cs_bundle *b, const cs_cert_conf *cc, time_t now, const char *origin,
                     cs_serve_verdict *out)
{
    char why[1024];
    time_t not_after = cs_bundle_not_after(b);

    *out = CS_SERVE_REFUSED;
    if (now == 0)
        now = time(NULL);
    if (check_at(b, cc, now, origin) == CS_OK) {
        *out = CS_SERVE_VALID;
        return CS_OK;
    }
    snprintf(why, sizeof(why), "%s", cs_error_last());
    /* expired: would it be good just before its end? Then only time is wrong with it */
    if (now > not_after && check_at(b, cc, not_after - 1, origin) == CS_OK) {
        *out = CS_SERVE_EXPIRED;
        cs_error_set(CS_OK, "%s expired; it is served until a valid version is installed", origin);
        return CS_OK;
    }
    return cs_error_set(CS_EBADCERT, "%s", why);
}

int cs_serve_replaces(cs_serve_verdict v, const cs_bundle *b, const cs_bundle *served, time_t now)
{
    if (v == CS_SERVE_VALID)
        return 1;
    if (v != CS_SERVE_EXPIRED)
        return 0;
    if (served == NULL)
        return 1;
    if (now == 0)
        now = time(NULL);
    return cs_bundle_not_after(served) < now &&
           cs_bundle_not_after(b) > cs_bundle_not_after(served);
}
