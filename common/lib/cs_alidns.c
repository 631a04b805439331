/* Alidns: find the zone of a name, add and delete its TXT records. */
#include "cs_alidns.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cs_aliyun.h"

struct cs_alidns {
    cs_aliyun *api;
};

cs_rc cs_alidns_new(const cs_provider_conf *pv, cs_alidns **out)
{
    cs_aliyun_opts o = {0};
    cs_alidns *d = calloc(1, sizeof(*d));

    if (d == NULL)
        return cs_error_set(CS_ENOMEM, "out of memory");
    /* acme's endpoint is Alidns's; aliyun-cas's is the certificate service's */
    o.endpoint = pv->type == CS_PROVIDER_ACME ? pv->endpoint : pv->alidns_endpoint;
    o.endpoint = o.endpoint ? o.endpoint : CS_ALIDNS_ENDPOINT;
    o.ca_file = pv->ca_file;
    o.credentials = pv->credentials;
    o.version = CS_ALIDNS_VERSION;
    o.retries = 3;
    if (cs_aliyun_new(&o, &d->api) != CS_OK) {
        free(d);
        return cs_error_prefix("Alidns of [provider %s]", pv->name);
    }
    *out = d;
    return CS_OK;
}

void cs_alidns_free(cs_alidns *d)
{
    if (d == NULL)
        return;
    cs_aliyun_free(d->api);
    free(d);
}

/* DescribeDomainRecords of zone for the TXT records named rr; NoExist is CS_ENOTFOUND. */
static cs_rc describe(cs_alidns *d, const char *zone, const char *rr, json_t **records)
{
    json_t *ans = NULL;
    cs_kv q;
    cs_rc rc;

    cs_kv_init(&q);
    cs_kv_set(&q, "DomainName", zone);
    cs_kv_set(&q, "RRKeyWord", rr);
    cs_kv_set(&q, "TypeKeyWord", "TXT");
    cs_kv_set(&q, "PageSize", "500");
    rc = cs_aliyun_call(d->api, "DescribeDomainRecords", &q, &ans);
    cs_kv_clear(&q);
    if (rc != CS_OK)
        return strcmp(cs_aliyun_last_code(d->api), "InvalidDomainName.NoExist") == 0 ? CS_ENOTFOUND
                                                                                     : rc;
    *records = json_incref(json_object_get(json_object_get(ans, "DomainRecords"), "Record"));
    json_decref(ans);
    if (!json_is_array(*records)) {
        json_decref(*records);
        *records = json_array();
    }
    return CS_OK;
}

/*
 * The account's zone of fqdn (its longest parent name the account has), the
 * relative name in it, and the TXT records of that name.
 */
static cs_rc find_zone(cs_alidns *d, const char *fqdn, const char **zone, char *rr, size_t size,
                       json_t **records)
{
    const char *z = strchr(fqdn, '.');
    cs_rc rc = CS_ENOTFOUND;

    for (; z && strchr(z + 1, '.'); z = strchr(z + 1, '.')) {
        snprintf(rr, size, "%.*s", (int)(z - fqdn), fqdn);
        rc = describe(d, z + 1, rr, records);
        if (rc == CS_OK) {
            *zone = z + 1;
            return CS_OK;
        }
        if (rc != CS_ENOTFOUND)
            return cs_error_prefix("Alidns: the TXT records of %s", fqdn);
    }
    return cs_error_set(CS_ENOTFOUND,
                        "Alidns: no zone of the account holds %s (InvalidDomainName.NoExist for "
                        "each parent name); add the domain to Alibaba Cloud DNS, or use a dns "
                        "hook for its DNS provider",
                        fqdn);
}

static int record_is(json_t *r, const char *rr, const char *value)
{
    return strcasecmp(json_string_value(json_object_get(r, "RR")) ?: "", rr) == 0 &&
           strcmp(json_string_value(json_object_get(r, "Type")) ?: "", "TXT") == 0 &&
           strcmp(json_string_value(json_object_get(r, "Value")) ?: "", value) == 0;
}

cs_rc cs_alidns_txt_add(cs_alidns *d, const char *fqdn, const char *value)
{
    json_t *records = NULL, *r, *ans = NULL;
    const char *zone;
    char rr[256];
    size_t i;
    cs_kv q;
    cs_rc rc;

    if (find_zone(d, fqdn, &zone, rr, sizeof(rr), &records) != CS_OK)
        return cs_error_code();
    json_array_foreach(records, i, r) if (record_is(r, rr, value))
    {
        json_decref(records);
        return CS_OK; /* published by an earlier, interrupted sync */
    }
    json_decref(records);
    cs_kv_init(&q);
    cs_kv_set(&q, "DomainName", zone);
    cs_kv_set(&q, "RR", rr);
    cs_kv_set(&q, "Type", "TXT");
    cs_kv_set(&q, "Value", value);
    cs_kv_set(&q, "TTL", "600");
    rc = cs_aliyun_call(d->api, "AddDomainRecord", &q, &ans);
    cs_kv_clear(&q);
    json_decref(ans);
    return rc == CS_OK
               ? CS_OK
               : cs_error_prefix("Alidns: adding the TXT record %s in the zone %s", fqdn, zone);
}

cs_rc cs_alidns_txt_remove(cs_alidns *d, const char *fqdn, const char *value)
{
    json_t *records = NULL, *r, *ans;
    const char *zone;
    char rr[256], id[32];
    size_t i;
    cs_kv q;
    cs_rc rc = CS_OK;

    if (find_zone(d, fqdn, &zone, rr, sizeof(rr), &records) != CS_OK)
        return cs_error_code();
    json_array_foreach(records, i, r)
    {
        if (!record_is(r, rr, value))
            continue;
        cs_json_id(json_object_get(r, "RecordId"), id, sizeof(id));
        cs_kv_init(&q);
        cs_kv_set(&q, "RecordId", id);
        ans = NULL;
        if (cs_aliyun_call(d->api, "DeleteDomainRecord", &q, &ans) != CS_OK && rc == CS_OK)
            rc = cs_error_prefix("Alidns: deleting the TXT record %s (RecordId %s)", fqdn, id);
        cs_kv_clear(&q);
        json_decref(ans);
    }
    json_decref(records);
    return rc;
}
