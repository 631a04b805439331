/*
 * dns-01 (RFC 8555 8.4): the TXT record _acme-challenge.NAME carries
 * base64url(SHA-256(key authorization)). It is published through Alibaba
 * Cloud DNS (dns = alidns) or a hook (dns = /path/to/hook add|remove), the
 * sync waits until the zone's servers (or dns-resolver) answer it, and it is
 * removed once the authorization is decided.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_acme.h"
#include "cs_alidns.h"
#include "cs_dns.h"
#include "cs_hook.h"

#define DNS_HOOK_TIMEOUT_S 300

/* _acme-challenge.NAME (a wildcard's base name) and the record's value. */
static cs_rc txt_of(cs_acme *a, const char *domain, const char *token, char *name, size_t size,
                    char value[64])
{
    unsigned char md[32];
    char *ka = NULL, *b;
    cs_rc rc = cs_acme_key_authorization(token, cs_acme_account_key(a), &ka);

    if (rc != CS_OK)
        return rc;
    if (strncmp(domain, "*.", 2) == 0)
        domain += 2;
    snprintf(name, size, "_acme-challenge.%s", domain);
    b = EVP_Digest(ka, strlen(ka), md, NULL, EVP_sha256(), NULL) ? cs_acme_b64url(md, 32) : NULL;
    free(ka);
    if (b == NULL)
        return cs_error_set(CS_ENOMEM, "cannot compute the dns-01 record of '%s'", domain);
    snprintf(value, 64, "%s", b);
    free(b);
    return CS_OK;
}

static cs_rc run_hook(cs_acme *a, const char *verb, const char *domain, const char *name,
                      const char *value)
{
    const cs_provider_conf *pv = cs_acme_provider(a);
    const char *args[] = {verb, NULL};
    char *vars[3] = {NULL}, what[160];
    cs_rc rc;

    snprintf(what, sizeof(what), "[provider %s] dns hook (%s %s)", pv->name, verb, name);
    if (strncmp(domain, "*.", 2) == 0)
        domain += 2;
    if (asprintf(&vars[0], "CERTSYNC_DOMAIN=%s", domain) < 0 ||
        asprintf(&vars[1], "CERTSYNC_TXT_NAME=%s", name) < 0 ||
        asprintf(&vars[2], "CERTSYNC_TXT_VALUE=%s", value) < 0)
        rc = cs_error_set(CS_ENOMEM, "out of memory");
    else {
        const char *const env[] = {vars[0], vars[1], vars[2], NULL};

        rc = cs_hook_exec(pv->dns, args, env, what, DNS_HOOK_TIMEOUT_S, NULL);
    }
    for (size_t i = 0; i < 3; i++)
        free(vars[i]);
    return rc;
}

static cs_rc alidns(cs_acme *a, int add, const char *name, const char *value)
{
    cs_alidns *d = NULL;
    cs_rc rc = cs_alidns_new(cs_acme_provider(a), &d);

    if (rc == CS_OK)
        rc = add ? cs_alidns_txt_add(d, name, value) : cs_alidns_txt_remove(d, name, value);
    cs_alidns_free(d);
    return rc;
}

cs_rc cs_acme_dns01_publish(cs_acme *a, const char *domain, const char *token, const char *ka)
{
    const cs_provider_conf *pv = cs_acme_provider(a);
    char name[300], value[64];
    cs_rc rc;

    (void)ka; /* the record carries its digest, made again from the token by txt_of */
    if (txt_of(a, domain, token, name, sizeof(name), value) != CS_OK)
        return cs_error_code();
    rc = strcmp(pv->dns, "alidns") == 0 ? alidns(a, 1, name, value)
                                        : run_hook(a, "add", domain, name, value);
    return rc == CS_OK ? CS_OK : cs_error_prefix("dns-01 for '%s'", domain);
}

cs_rc cs_acme_dns01_ready(cs_acme *a, const char *domain, const char *token)
{
    const cs_provider_conf *pv = cs_acme_provider(a);
    char name[300], value[64];

    if (txt_of(a, domain, token, name, sizeof(name), value) != CS_OK ||
        cs_dns_wait_txt(pv->dns_resolver, name, value, pv->dns_wait) != CS_OK)
        return cs_error_prefix("dns-01 for '%s'", domain);
    return CS_OK;
}

void cs_acme_dns01_withdraw(cs_acme *a, const char *domain, const char *token)
{
    const cs_provider_conf *pv = cs_acme_provider(a);
    char name[300], value[64];

    if (txt_of(a, domain, token, name, sizeof(name), value) != CS_OK)
        return;
    if (strcmp(pv->dns, "alidns") == 0)
        alidns(a, 0, name, value);
    else
        run_hook(a, "remove", domain, name, value);
}
