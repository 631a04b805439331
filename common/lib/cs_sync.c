#include "cs_sync.h"

#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cs_hook.h"
#include "cs_localca.h"

cs_rc cs_store_open_config(const cs_config *c, cs_store **out)
{
    cs_store_opts o = {c->keep, (uid_t)-1, (gid_t)-1};

    if (c->owner) {
        struct passwd *pw = getpwnam(c->owner);

        if (pw == NULL)
            return cs_error_set(CS_ECONFIG, "%s: [store] owner: no user '%s' on this machine",
                                c->path, c->owner);
        o.uid = pw->pw_uid;
        o.gid = pw->pw_gid;
    }
    if (c->group) {
        struct group *gr = getgrnam(c->group);

        if (gr == NULL)
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

static cs_rc obtain(const cs_cert_conf *cc, cs_store *s, cs_bundle **b, const char **provider)
{
    const cs_provider_conf *pv = cc->provider;

    if (pv == NULL || pv->type == CS_PROVIDER_LOCAL_CA) {
        *provider = "local-ca";
        return cs_localca_issue(s, cc, pv ? pv->ca_lifetime : 0, b);
    }
    *provider = "aliyun-cas";
    return cs_error_set(CS_EPROVIDER,
                        "[cert %s] uses provider '%s' of type aliyun-cas, and this build of "
                        "certsync has no aliyun-cas client yet; use type = local-ca or "
                        "`certsync import`",
                        cc->name, pv->name);
}

cs_rc cs_sync_notify(const cs_config *c, cs_store *s, const cs_cert_conf *cc, unsigned version)
{
    char dir[4096];

    if (cc == NULL || cc->on_change == NULL)
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

cs_rc cs_sync_cert(const cs_config *c, cs_store *s, const cs_cert_conf *cc, int force,
                   cs_sync_outcome *out)
{
    cs_install_opts o = {0};
    cs_bundle *b = NULL;
    const char *provider = NULL;
    int lock;
    cs_rc rc;

    memset(out, 0, sizeof(*out));
    if (cs_store_lock(s, cc->name, 60, &lock) != CS_OK)
        return cs_error_code();
    if (!due(s, cc, force, out->reason, sizeof(out->reason))) {
        cs_store_current(s, cc->name, &out->version);
        out->result = CS_SYNC_UNCHANGED;
        rc = cs_store_record_sync(s, cc->name, CS_SYNC_UNCHANGED, NULL);
        cs_store_unlock(s, lock);
        return rc;
    }
    rc = obtain(cc, s, &b, &provider);
    if (rc == CS_OK) {
        o.provider = provider;
        o.names = (const char *const *)cc->domains;
        o.n_names = cc->n_domains;
        o.formats = cc->formats;
        o.profile = cc->pfx_profile;
        o.alias = cc->alias;
        o.password_file = cc->password_file;
        rc = cs_store_install(s, cc->name, b, &o, &out->version);
    }
    cs_bundle_free(b);
    if (rc == CS_OK) {
        out->result = CS_SYNC_INSTALLED;
        rc = cs_sync_notify(c, s, cc, out->version);
        cs_store_record_sync(s, cc->name, CS_SYNC_INSTALLED, rc == CS_OK ? NULL : cs_error_last());
    } else {
        char msg[2048];

        snprintf(msg, sizeof(msg), "%s", cs_error_last());
        out->result = CS_SYNC_FAILED;
        cs_store_current(s, cc->name, &out->version);
        cs_store_record_sync(s, cc->name, CS_SYNC_FAILED, msg);
        cs_error_set(rc, "%s", msg);
    }
    cs_store_unlock(s, lock);
    return rc;
}
