#include "cs_sync.h"

#include <grp.h>
#include <pwd.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cs_aliyun.h"
#include "cs_escape.h"
#include "cs_hook.h"
#include "cs_localca.h"

cs_install_opts cs_install_opts_for(const cs_cert_conf *cc, const char *provider,
                                    const char *remote_id)
{
    cs_install_opts o = {0};

    o.provider = provider;
    o.remote_id = remote_id;
    if (cc) {
        o.names = (const char *const *)cc->domains;
        o.n_names = cc->n_domains;
        o.formats = cc->formats;
        o.profile = cc->pfx_profile;
        o.alias = cc->alias;
        o.password_file = cc->password_file;
    }
    return o;
}

cs_rc cs_store_open_config(const cs_config *c, cs_store **out)
{
    cs_store_opts o = {c->keep, (uid_t)-1, (gid_t)-1};

    char buf[16384];

    /* the _r forms: server modules call this from their own threads */
    if (c->owner) {
        struct passwd pwd, *pw = NULL;

        if (getpwnam_r(c->owner, &pwd, buf, sizeof(buf), &pw) != 0 || pw == NULL)
            return cs_error_set(CS_ECONFIG, "%s: [store] owner: no user '%s' on this machine",
                                c->path, c->owner);
        o.uid = pw->pw_uid;
        o.gid = pw->pw_gid;
    }
    if (c->group) {
        struct group grp, *gr = NULL;

        if (getgrnam_r(c->group, &grp, buf, sizeof(buf), &gr) != 0 || gr == NULL)
            return cs_error_set(CS_ECONFIG, "%s: [store] group: no group '%s' on this machine",
                                c->path, c->group);
        o.gid = gr->gr_gid;
        if (o.uid == (uid_t)-1)
            o.uid = geteuid();
    }
    return cs_store_open(c->store_path, &o, out);
}

/* Is a new certificate due? Sets reason either way. */
static int due(cs_store *s, const cs_cert_conf *cc, int force, char *reason, size_t size)
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

#define CS_MAX_PROVIDERS 32

struct cs_sync_session {
    const cs_config *c;
    struct {
        const cs_provider_conf *pv;
        cs_aliyun *client;
        json_t *certs; /* ListUserCertificateOrder CERT entries, every page */
    } p[CS_MAX_PROVIDERS];
    size_t n;
};

cs_sync_session *cs_sync_session_new(const cs_config *c)
{
    cs_sync_session *sess = calloc(1, sizeof(*sess));

    if (sess)
        sess->c = c;
    return sess;
}

void cs_sync_session_free(cs_sync_session *sess)
{
    size_t i;

    if (sess == NULL)
        return;
    for (i = 0; i < sess->n; i++) {
        cs_aliyun_free(sess->p[i].client);
        json_decref(sess->p[i].certs);
    }
    free(sess);
}

static size_t slot(cs_sync_session *sess, const cs_provider_conf *pv)
{
    size_t i;

    for (i = 0; i < sess->n; i++)
        if (sess->p[i].pv == pv)
            return i;
    if (sess->n == CS_MAX_PROVIDERS)
        return CS_MAX_PROVIDERS;
    sess->p[sess->n].pv = pv;
    return sess->n++;
}

cs_rc cs_sync_client(cs_sync_session *sess, const cs_provider_conf *pv, cs_aliyun **out)
{
    size_t i = slot(sess, pv);

    if (i == CS_MAX_PROVIDERS)
        return cs_error_set(CS_ECONFIG, "too many providers (at most %d)", CS_MAX_PROVIDERS);
    if (sess->p[i].client == NULL && cs_aliyun_from_provider(pv, &sess->p[i].client) != CS_OK)
        return cs_error_prefix("[provider %s]", pv->name);
    *out = sess->p[i].client;
    return CS_OK;
}

static cs_rc cert_list(cs_sync_session *sess, const cs_provider_conf *pv, cs_aliyun **client,
                       json_t **certs)
{
    size_t i;

    if (cs_sync_client(sess, pv, client) != CS_OK)
        return cs_error_code();
    i = slot(sess, pv);
    if (sess->p[i].certs == NULL &&
        cs_aliyun_list(*client, "CERT", NULL, NULL, &sess->p[i].certs) != CS_OK)
        return cs_error_code();
    *certs = sess->p[i].certs;
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

static cs_rc fetch_detail(cs_aliyun *client, const char *id, cs_bundle **b)
{
    char origin[256];
    json_t *d;
    cs_kv q;
    cs_rc rc;
    const char *cert, *key, *rid;

    cs_kv_init(&q);
    cs_kv_set(&q, "CertId", id);
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
        rc = cs_bundle_load_pem(b, cert, strlen(cert), key, strlen(key), origin);
    if (rc == CS_OK && (rc = cs_aliyun_verify_trust(client, *b, origin)) != CS_OK) {
        cs_bundle_free(*b);
        *b = NULL;
    }
    /* the answer held the private key */
    if (key)
        OPENSSL_cleanse((void *)key, strlen(key));
    json_decref(d);
    return rc;
}

/*
 * aliyun-cas: the list says whether there is anything new; details only then.
 * CS_OK with *b NULL means the current version is already the service's one.
 */
static cs_rc obtain_aliyun(cs_sync_session *sess, cs_store *s, const cs_cert_conf *cc, int force,
                           cs_sync_outcome *out, cs_bundle **b, char *remote_id, size_t size)
{
    cs_aliyun *client;
    json_t *certs = NULL, *e;
    unsigned v = 0;

    if (cert_list(sess, cc->provider, &client, &certs) != CS_OK || certs == NULL)
        return cs_error_code() != CS_OK ? cs_error_code() : CS_EPROVIDER;
    e = cs_aliyun_pick(certs, cc->cert_id, (const char *const *)cc->domains, cc->n_domains);
    if (e == NULL) {
        if (cc->cert_id)
            return cs_error_set(CS_ENOTFOUND,
                                "[cert %s] cert-id %s is not among the certificates of the "
                                "account at %s (deleted, or in another region?)",
                                cc->name, cc->cert_id, cs_aliyun_endpoint(client));
        return cs_error_set(CS_ENOTFOUND,
                            "[cert %s] no issued, unexpired certificate at %s covers %s%s; apply "
                            "for one with `certsync apply`",
                            cc->name, cs_aliyun_endpoint(client), cc->domains[0],
                            cc->n_domains > 1 ? " and the other configured names" : "");
    }
    cs_json_id(json_object_get(e, "CertificateId"), remote_id, size);
    if (!force && is_current(s, cc, remote_id, e, &v)) {
        snprintf(out->reason, sizeof(out->reason), "v%u is the service's certificate %s", v,
                 remote_id);
        return CS_OK; /* *b stays NULL: unchanged */
    }
    snprintf(out->reason, sizeof(out->reason), "%s certificate %s of the service",
             force ? "forced: fetched" : "new:", remote_id);
    return fetch_detail(client, remote_id, b);
}

static cs_rc obtain(cs_sync_session *sess, const cs_cert_conf *cc, cs_store *s, cs_bundle **b,
                    const char **provider)
{
    const cs_provider_conf *pv = cc->provider;

    (void)sess;
    *provider = "local-ca";
    return cs_localca_issue(s, cc, pv ? pv->ca_lifetime : 0, b);
}

cs_rc cs_sync_notify(const cs_config *c, cs_store *s, const cs_cert_conf *cc, unsigned version)
{
    char dir[4096];

    if (c == NULL || cc == NULL || cc->on_change == NULL)
        return CS_OK;
    if (cs_store_version_dir(s, cc->name, version, dir, sizeof(dir)) != CS_OK)
        return cs_error_code();
    if (cs_hook_run(cc->on_change, cc->name, version, dir, c->path, 300) != CS_OK) {
        char msg[1536];

        snprintf(msg, sizeof(msg), "%s", cs_error_last());
        return cs_error_set(cs_error_code(), "v%u is current, but %s", version, msg);
    }
    return CS_OK;
}

static cs_rc unchanged(cs_store *s, const cs_cert_conf *cc, cs_sync_outcome *out, int lock)
{
    cs_rc rc;

    cs_store_current(s, cc->name, &out->version);
    cs_error_clear();
    out->result = CS_SYNC_UNCHANGED;
    rc = cs_store_record_sync(s, cc->name, CS_SYNC_UNCHANGED, NULL);
    cs_store_unlock(s, lock);
    return rc;
}

/* Record a failed sync with its error, whatever failed; the error stays set. */
static void failed(cs_store *s, const cs_cert_conf *cc, cs_rc rc, cs_sync_outcome *out)
{
    char msg[2048];

    /* it may quote the service or a certificate: no control character reaches a log or status */
    cs_escape(cs_error_last(), msg, sizeof(msg));
    out->result = CS_SYNC_FAILED;
    if (cs_store_current(s, cc->name, &out->version) != CS_OK)
        out->version = 0;
    if (cs_store_record_sync(s, cc->name, CS_SYNC_FAILED, msg) != CS_OK) {
        char why[1024];

        snprintf(why, sizeof(why), "%s", cs_error_last());
        cs_error_set(rc, "%s; status cannot show this failure: %s", msg, why);
        return;
    }
    cs_error_set(rc, "%s", msg);
}

/*
 * on-change runs without the certificate's lock (it may take minutes, and an
 * import or a server's sync must not wait for it); its failure is recorded
 * under the lock again.
 */
static cs_rc notify_unlocked(const cs_config *c, cs_store *s, const cs_cert_conf *cc,
                             unsigned version)
{
    char msg[2048];
    int lock;
    cs_rc rc = cs_sync_notify(c, s, cc, version);

    if (rc == CS_OK)
        return CS_OK;
    cs_escape(cs_error_last(), msg, sizeof(msg));
    if (cs_store_lock(s, cc->name, 60, &lock) == CS_OK) {
        cs_store_record_sync(s, cc->name, CS_SYNC_INSTALLED, msg);
        cs_store_unlock(s, lock);
    }
    return cs_error_set(rc, "%s", msg);
}

cs_rc cs_sync_cert(cs_sync_session *sess, cs_store *s, const cs_cert_conf *cc, int force,
                   cs_sync_outcome *out)
{
    cs_sync_session *own = NULL;
    cs_install_opts o = {0};
    cs_bundle *b = NULL;
    const char *provider = NULL;
    char remote_id[32] = "";
    int lock;
    cs_rc rc;

    memset(out, 0, sizeof(*out));
    if (sess == NULL && (sess = own = cs_sync_session_new(NULL)) == NULL)
        return cs_error_set(CS_ENOMEM, "out of memory");
    if ((rc = cs_store_lock(s, cc->name, 60, &lock)) != CS_OK) {
        failed(s, cc, rc, out);
        cs_sync_session_free(own);
        return rc;
    }
    if (cc->provider && cc->provider->type == CS_PROVIDER_ALIYUN_CAS) {
        provider = "aliyun-cas";
        rc = obtain_aliyun(sess, s, cc, force, out, &b, remote_id, sizeof(remote_id));
        if (rc == CS_OK && b == NULL) {
            cs_sync_session_free(own);
            return unchanged(s, cc, out, lock);
        }
    } else if (!due(s, cc, force, out->reason, sizeof(out->reason))) {
        cs_sync_session_free(own);
        return unchanged(s, cc, out, lock);
    } else {
        rc = obtain(sess, cc, s, &b, &provider);
    }
    if (rc == CS_OK) {
        o = cs_install_opts_for(cc, provider, remote_id[0] ? remote_id : NULL);
        rc = cs_store_install(s, cc->name, b, &o, &out->version);
    }
    cs_bundle_free(b);
    if (rc == CS_OK) {
        out->result = CS_SYNC_INSTALLED;
        if (cs_store_record_sync(s, cc->name, CS_SYNC_INSTALLED, NULL) != CS_OK)
            rc = cs_error_prefix("v%u is current, but status cannot show it", out->version);
        cs_store_unlock(s, lock);
        /* the servers must hear of the new version either way */
        if (notify_unlocked(sess->c, s, cc, out->version) != CS_OK)
            rc = cs_error_code();
    } else {
        failed(s, cc, rc, out);
        cs_store_unlock(s, lock);
    }
    cs_sync_session_free(own);
    return rc;
}
