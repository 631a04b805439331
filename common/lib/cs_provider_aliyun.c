/*
 * The aliyun-cas provider: the list of the account's certificates says
 * whether there is anything new; the detail (with the key) is asked for only
 * then, so a sync of many unchanged certificates costs the list calls only.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cs_aliyun.h"
#include "cs_provider.h"

typedef struct {
    cs_aliyun *client;
    json_t *certs; /* ListUserCertificateOrder CERT entries, every page, once */
} aliyun_state;

static cs_rc aliyun_open(const cs_provider_conf *pv, void **state)
{
    aliyun_state *st = calloc(1, sizeof(*st));

    if (st == NULL)
        return cs_error_set(CS_ENOMEM, "out of memory");
    if (cs_aliyun_from_provider(pv, &st->client) != CS_OK) {
        free(st);
        return cs_error_prefix("[provider %s]", pv->name);
    }
    *state = st;
    return CS_OK;
}

static void aliyun_close(void *state)
{
    aliyun_state *st = state;

    if (st == NULL)
        return;
    cs_aliyun_free(st->client);
    json_decref(st->certs);
    free(st);
}

cs_rc cs_aliyun_of_session(cs_sync_session *sess, const cs_provider_conf *pv, cs_aliyun **out)
{
    void *state;

    if (pv->type != CS_PROVIDER_ALIYUN_CAS)
        return cs_error_set(CS_ECONFIG, "[provider %s] is not of type aliyun-cas", pv->name);
    if (cs_sync_provider_state(sess, pv, &state) != CS_OK)
        return cs_error_code();
    *out = ((aliyun_state *)state)->client;
    return CS_OK;
}

/* The current version is this service certificate already (list fields only). */
static int is_current(cs_store *s, const cs_cert_conf *cc, const char *id, json_t *e, unsigned *v)
{
    const char *sha2 = json_string_value(json_object_get(e, "Sha2"));
    cs_cert_info info;
    int same;

    if (cs_store_info(s, cc->name, 0, &info) != CS_OK) {
        cs_error_clear();
        return 0;
    }
    same = strcmp(info.remote_id, id) == 0 && strcmp(info.provider, "aliyun-cas") == 0 &&
           (sha2 == NULL || strcasecmp(sha2, info.fingerprint) == 0);
    *v = info.version;
    cs_cert_info_clear(&info);
    return same;
}

cs_rc cs_aliyun_fetch(cs_aliyun *client, const char *id, int trust, cs_bundle **b)
{
    char origin[256];
    json_t *d;
    cs_kv q;
    cs_rc rc;
    const char *cert, *key, *rid;

    cs_kv_init(&q);
    rc = cs_kv_set(&q, "CertId", id);
    if (rc == CS_OK)
        rc = cs_aliyun_call(client, "GetUserCertificateDetail", &q, &d);
    cs_kv_clear(&q);
    if (rc != CS_OK)
        return rc;
    cert = json_string_value(json_object_get(d, "Cert"));
    key = json_string_value(json_object_get(d, "Key"));
    rid = json_string_value(json_object_get(d, "RequestId"));
    snprintf(origin, sizeof(origin), "certificate %s from GetUserCertificateDetail (RequestId %s)",
             id, rid ? rid : "none");
    if (cert == NULL || *cert == '\0')
        rc = cs_error_set(CS_EPROVIDER, "%s: the answer has no certificate", origin);
    else if (key == NULL || *key == '\0')
        rc = cs_error_set(CS_EPROVIDER,
                          "%s: the service holds no private key for it (its CSR was made "
                          "elsewhere); install it with `certsync import` and your key",
                          origin);
    else
        rc = cs_bundle_load_pem(cert, strlen(cert), key, strlen(key), origin, b);
    if (rc == CS_OK && ((rc = cs_bundle_validate(*b, NULL, 0, time(NULL), origin)) != CS_OK ||
                        (trust && (rc = cs_aliyun_verify_trust(client, *b, origin)) != CS_OK))) {
        cs_bundle_free(*b);
        *b = NULL;
    }
    /* the answer held the private key */
    if (key)
        OPENSSL_cleanse((void *)key, strlen(key));
    json_decref(d);
    return rc;
}

static cs_rc not_found(const cs_cert_conf *cc, const cs_aliyun *client)
{
    if (cc->cert_id)
        return cs_error_set(CS_ENOTFOUND,
                            "[cert %s] cert-id %s is not among the certificates of the account "
                            "at %s (deleted, or in another region?)",
                            cc->name, cc->cert_id, cs_aliyun_endpoint(client));
    return cs_error_set(CS_ENOTFOUND,
                        "[cert %s] no issued, unexpired certificate at %s covers %s%s; apply for "
                        "one with `certsync apply`",
                        cc->name, cs_aliyun_endpoint(client), cc->domains[0],
                        cc->n_domains > 1 ? " and the other configured names" : "");
}

static cs_rc aliyun_obtain(void *state, cs_store *s, const cs_cert_conf *cc, int force,
                           cs_bundle **b, cs_provider_result *res)
{
    aliyun_state *st = state;
    json_t *e;
    unsigned v = 0;

    *b = NULL;
    if (st->certs == NULL && cs_aliyun_list(st->client, "CERT", NULL, NULL, &st->certs) != CS_OK)
        return cs_error_code();
    e = cs_aliyun_pick(st->certs, cc->cert_id, (const char *const *)cc->domains, cc->n_domains);
    if (e == NULL)
        return not_found(cc, st->client);
    cs_json_id(json_object_get(e, "CertificateId"), res->remote_id, sizeof(res->remote_id));
    if (!force && is_current(s, cc, res->remote_id, e, &v)) {
        snprintf(res->reason, sizeof(res->reason), "v%u is the service's certificate %s", v,
                 res->remote_id);
        return CS_OK;
    }
    snprintf(res->reason, sizeof(res->reason), "%s certificate %s of the service",
             force ? "forced: fetched" : "new:", res->remote_id);
    return cs_aliyun_fetch(st->client, res->remote_id, 1, b);
}

/* The list (read-only, made once per session) says whether a fetch would follow. */
static cs_rc aliyun_plan(void *state, cs_store *s, const cs_cert_conf *cc, int force,
                         cs_provider_plan *out)
{
    aliyun_state *st = state;
    char id[32];
    json_t *e;
    unsigned v = 0;

    if (st->certs == NULL && cs_aliyun_list(st->client, "CERT", NULL, NULL, &st->certs) != CS_OK)
        return cs_error_code();
    e = cs_aliyun_pick(st->certs, cc->cert_id, (const char *const *)cc->domains, cc->n_domains);
    if (e == NULL)
        return not_found(cc, st->client);
    cs_json_id(json_object_get(e, "CertificateId"), id, sizeof(id));
    if (!force && s && is_current(s, cc, id, e, &v)) {
        snprintf(out->reason, sizeof(out->reason), "v%u is the service's certificate %s", v, id);
        snprintf(out->calls, sizeof(out->calls),
                 "ListUserCertificateOrder (read-only, asked now) only");
        return CS_OK;
    }
    out->due = 1;
    snprintf(out->reason, sizeof(out->reason), "%s certificate %s of the service",
             force ? "forced:" : "new:", id);
    snprintf(out->calls, sizeof(out->calls),
             "ListUserCertificateOrder (read-only, asked now), then GetUserCertificateDetail "
             "CertId=%s (its certificate and key) at %s",
             id, cs_aliyun_endpoint(st->client));
    return CS_OK;
}

const cs_provider_ops cs_provider_aliyun_cas = {
    "aliyun-cas", CS_PROVIDER_ALIYUN_CAS, aliyun_open, aliyun_close, aliyun_obtain, aliyun_plan,
};
