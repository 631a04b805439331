/* certsync revoke --name: the current certificate of an ACME name, revoked and remembered. */
#include "cs_revoke.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cs_acme.h"

static const struct {
    const char *name;
    int code;
} reasons[] = {
    {"unspecified", 0}, {"keyCompromise", 1},        {"affiliationChanged", 3},
    {"superseded", 4},  {"cessationOfOperation", 5},
};

cs_rc cs_revoke_reason_parse(const char *text, int *code)
{
    size_t i;

    for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        if (strcasecmp(text, reasons[i].name) == 0 ||
            (text[0] - '0' == reasons[i].code && text[1] == '\0')) {
            *code = reasons[i].code;
            return CS_OK;
        }
    return cs_error_set(CS_EINVAL,
                        "unknown reason '%s'; use unspecified (0), keyCompromise (1), "
                        "affiliationChanged (3), superseded (4) or cessationOfOperation (5)",
                        text);
}

static cs_rc acme_cert(const cs_config *c, const char *name, const cs_cert_conf **out)
{
    const cs_cert_conf *cc = cs_config_cert(c, name);

    if (cc == NULL)
        return cs_error_set(CS_ENOTFOUND, "no [cert %s] in %s", name, c->path);
    if (cc->provider == NULL || cc->provider->type != CS_PROVIDER_ACME)
        return cs_error_set(CS_EINVAL,
                            "[cert %s] is not issued by an ACME CA (type = acme); a certificate "
                            "of the aliyun-cas service is revoked by its order: certsync revoke "
                            "ORDER",
                            name);
    *out = cc;
    return CS_OK;
}

cs_rc cs_revoke_current(const cs_config *c, cs_store *s, const char *name, int reason,
                        cs_revoke_result *out)
{
    const cs_cert_conf *cc = NULL;
    cs_bundle *b = NULL;
    cs_acme *a = NULL;
    cs_rc rc;

    memset(out, 0, sizeof(*out));
    if (acme_cert(c, name, &cc) != CS_OK)
        return cs_error_code();
    if (cs_store_current(s, name, &out->version) != CS_OK)
        return cs_error_prefix("'%s' has nothing to revoke", name);
    if (cs_store_load(s, name, 0, &b) != CS_OK)
        return cs_error_code();
    cs_bundle_fingerprint(b, out->fingerprint);
    cs_bundle_serial(b, out->serial, sizeof(out->serial));
    snprintf(out->ca, sizeof(out->ca), "%s", cc->provider->directory);
    rc = cs_acme_new(cc->provider, s, &a);
    if (rc == CS_OK)
        rc = cs_acme_revoke(a, cs_bundle_leaf(b), reason);
    /* marked even when the CA says it is revoked already: the store must know it too */
    if (rc == CS_OK || strstr(cs_error_last(), "urn:ietf:params:acme:error:alreadyRevoked")) {
        cs_rc marked = cs_store_mark_revoked(s, name, out->fingerprint);

        rc = rc == CS_OK ? marked : rc;
    }
    cs_acme_free(a);
    cs_bundle_free(b);
    return rc == CS_OK ? CS_OK : cs_error_prefix("revoke v%u of '%s'", out->version, name);
}
