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

#include "cs_deploy.h"
#include "cs_escape.h"
#include "cs_hook.h"
#include "cs_ocsp.h"
#include "cs_provider.h"
#include "cs_time.h"

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
        o.group = cc->group;
    }
    o.before_switch = cs_ocsp_before_switch;
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

#define CS_MAX_PROVIDERS 32

/* One sync run: each provider's state (a client, its list) is made once. */
struct cs_sync_session {
    const cs_config *c;
    struct {
        const cs_provider_conf *pv;
        const cs_provider_ops *ops;
        void *state;
    } p[CS_MAX_PROVIDERS];
    size_t n;
    int backoff; /* a pending on-change waits for its next_attempt */
};

cs_sync_session *cs_sync_session_new(const cs_config *c)
{
    cs_sync_session *sess = c ? calloc(1, sizeof(*sess)) : NULL;

    if (sess) {
        sess->c = c;
        sess->backoff = 1;
    }
    return sess;
}

void cs_sync_session_set_backoff(cs_sync_session *sess, int on)
{
    if (sess)
        sess->backoff = on;
}

void cs_sync_session_free(cs_sync_session *sess)
{
    size_t i;

    if (sess == NULL)
        return;
    for (i = 0; i < sess->n; i++)
        if (sess->p[i].ops->close)
            sess->p[i].ops->close(sess->p[i].state);
    free(sess);
}

/* The provider's slot in the session, opened on first use. */
static cs_rc session_slot(cs_sync_session *sess, const cs_provider_conf *pv, size_t *slot)
{
    const cs_provider_ops *ops = cs_provider_ops_of(pv->type);
    size_t i;

    for (i = 0; i < sess->n; i++)
        if (sess->p[i].pv == pv) {
            *slot = i;
            return CS_OK;
        }
    if (ops == NULL)
        return cs_error_set(CS_ECONFIG, "[provider %s]: no such provider type", pv->name);
    if (sess->n == CS_MAX_PROVIDERS)
        return cs_error_set(CS_ECONFIG, "too many providers (at most %d)", CS_MAX_PROVIDERS);
    if (ops->open && ops->open(pv, &sess->p[sess->n].state) != CS_OK)
        return cs_error_code();
    sess->p[sess->n].pv = pv;
    sess->p[sess->n].ops = ops;
    *slot = sess->n++;
    return CS_OK;
}

cs_rc cs_sync_provider_state(cs_sync_session *sess, const cs_provider_conf *pv, void **state)
{
    size_t i;

    if (session_slot(sess, pv, &i) != CS_OK)
        return cs_error_code();
    *state = sess->p[i].state;
    return CS_OK;
}

/* A [cert] without a provider is issued by the embedded local CA. */
static const cs_provider_conf embedded = {.name = (char *)"(embedded local CA)",
                                          .type = CS_PROVIDER_LOCAL_CA};

static cs_rc obtain(cs_sync_session *sess, cs_store *s, const cs_cert_conf *cc, int force,
                    cs_bundle **b, cs_provider_result *res, const char **type)
{
    const cs_provider_conf *pv = cc->provider ? cc->provider : &embedded;
    size_t i;

    if (session_slot(sess, pv, &i) != CS_OK)
        return cs_error_code();
    *type = sess->p[i].ops->type;
    return sess->p[i].ops->obtain(sess->p[i].state, s, cc, force, b, res);
}

/* In-server syncs wait before running a failing on-change again: 1 min, doubling, at most 1 h. */
#define CS_HOOK_BACKOFF_FIRST 60
#define CS_HOOK_BACKOFF_MAX 3600

static time_t hook_backoff(unsigned attempts)
{
    time_t wait = CS_HOOK_BACKOFF_FIRST;

    while (attempts-- > 1 && wait < CS_HOOK_BACKOFF_MAX)
        wait *= 2;
    return wait < CS_HOOK_BACKOFF_MAX ? wait : CS_HOOK_BACKOFF_MAX;
}

/* The on-change for version failed (why: its error): pending, one attempt more, since kept. */
static cs_rc hook_pending(cs_store *s, const char *name, unsigned version, const cs_hook_result *r,
                          const char *why)
{
    cs_sync_state st;
    cs_hook_pending p = {0};
    time_t now = time(NULL);
    int lock;
    cs_rc rc;

    if (cs_store_lock(s, name, 60, &lock) != CS_OK)
        return cs_error_code();
    if (cs_store_sync_state(s, name, &st) == CS_OK && st.hook.version != 0)
        p = st.hook;
    cs_error_clear();
    if (p.version == 0)
        p.since = now;
    p.version = version;
    p.attempts++;
    p.exit_status = r->exit_status;
    snprintf(p.command, sizeof(p.command), "%s", r->command);
    /* its own words when it said something, else ours (not run, timed out) */
    snprintf(p.error, sizeof(p.error), "%.*s", (int)sizeof(p.error) - 1,
             r->tail[0] ? r->tail : why);
    p.next_attempt = now + hook_backoff(p.attempts);
    rc = cs_store_record_hook(s, name, &p);
    cs_store_unlock(s, lock);
    return rc;
}

cs_rc cs_sync_notify(const cs_config *c, cs_store *s, const cs_cert_conf *cc, unsigned version)
{
    cs_hook_result r;
    char dir[4096], msg[1536], why[1024];
    cs_rc rc;

    if (c == NULL || cc == NULL || cc->on_change == NULL)
        return CS_OK;
    if (cs_store_version_dir(s, cc->name, version, dir, sizeof(dir)) != CS_OK)
        return cs_error_code();
    if (cs_hook_run(cc->on_change, cc->name, version, dir, c->path, 300, &r) == CS_OK) {
        if (cs_store_record_hook(s, cc->name, NULL) == CS_OK)
            return CS_OK;
        return cs_error_prefix("on-change for v%u succeeded, but its pending state stays and it "
                               "runs again at the next sync",
                               version);
    }
    rc = cs_error_code();
    cs_escape(cs_error_last(), msg, sizeof(msg));
    if (hook_pending(s, cc->name, version, &r, msg) != CS_OK) {
        snprintf(why, sizeof(why), "%s", cs_error_last());
        return cs_error_set(rc, "v%u is current, but %s; and status cannot show it: %s", version,
                            msg, why);
    }
    return cs_error_set(rc,
                        "v%u is current, but %s; the on-change stays pending (certsync status) "
                        "and runs again at the next sync",
                        version, msg);
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

/* A rolled-back certificate is held: no provider is asked, nothing is recorded. */
static int held(cs_store *s, const cs_cert_conf *cc, cs_sync_outcome *out)
{
    cs_sync_state st;
    char since[32];

    if (cs_store_sync_state(s, cc->name, &st) != CS_OK || st.held == 0) {
        cs_error_clear();
        return 0;
    }
    out->result = CS_SYNC_UNCHANGED;
    out->held = st.held;
    if (cs_store_current(s, cc->name, &out->version) != CS_OK)
        out->version = 0;
    cs_time_iso(st.held_since, since);
    snprintf(out->reason, sizeof(out->reason),
             "held at v%u since %s; `certsync release %s` resumes", st.held, since, cc->name);
    return 1;
}

/*
 * A pending on-change runs again for the current version, after its backoff
 * when the session keeps it (in-server syncs); one no longer configured is
 * dropped.
 */
static cs_rc retry_hook(cs_sync_session *sess, cs_store *s, const cs_cert_conf *cc,
                        cs_sync_outcome *out)
{
    cs_sync_state st;
    cs_rc rc;

    if (cs_store_sync_state(s, cc->name, &st) != CS_OK || st.hook.version == 0) {
        cs_error_clear();
        return CS_OK;
    }
    if (cc->on_change == NULL)
        return cs_store_record_hook(s, cc->name, NULL);
    if (out->version == 0 || (sess->backoff && time(NULL) < st.hook.next_attempt))
        return CS_OK;
    rc = cs_sync_notify(sess->c, s, cc, out->version);
    out->hook_retried = rc == CS_OK ? HOOK_DELIVERED : HOOK_STILL_FAILING;
    return rc;
}

static cs_rc sync_locked(cs_sync_session *sess, cs_store *s, const cs_cert_conf *cc, int force,
                         cs_sync_outcome *out, int lock)
{
    cs_provider_result res = {"", ""};
    cs_install_opts o = {0};
    cs_bundle *b = NULL;
    const char *type = NULL;
    cs_rc rc;

    if (held(s, cc, out)) {
        cs_store_unlock(s, lock);
        return CS_OK;
    }
    rc = obtain(sess, s, cc, force, &b, &res, &type);
    snprintf(out->reason, sizeof(out->reason), "%s", res.reason);
    if (rc == CS_OK && b == NULL)
        return unchanged(s, cc, out, lock);
    if (rc == CS_OK) {
        o = cs_install_opts_for(cc, type, res.remote_id[0] ? res.remote_id : NULL);
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
    return rc;
}

/* The last step: the current version to the cloud products of `deploy =` (cs_deploy.h). */
static cs_rc deploy(cs_sync_session *sess, cs_store *s, const cs_cert_conf *cc,
                    cs_sync_outcome *out, cs_rc rc)
{
    char before[2048];

    if (rc != CS_OK)
        snprintf(before, sizeof(before), "%s", cs_error_last());
    if (cs_deploy_cert(sess, s, cc, sess->backoff, out->deployed, sizeof(out->deployed)) == CS_OK)
        return rc == CS_OK ? CS_OK : cs_error_set(rc, "%s", before);
    return rc == CS_OK ? cs_error_code() : cs_error_set(rc, "%s; and %s", before, cs_error_last());
}

static cs_rc sync_cert(cs_sync_session *sess, cs_store *s, const cs_cert_conf *cc, int force,
                       cs_sync_outcome *out)
{
    int lock;
    cs_rc rc;

    memset(out, 0, sizeof(*out));
    /* the session carries the configuration: without it on-change would be skipped silently */
    if (sess == NULL || sess->c == NULL)
        return cs_error_set(CS_EINVAL,
                            "[cert %s]: a sync needs a session made from the "
                            "configuration (cs_sync_session_new)",
                            cc->name);
    if ((rc = cs_store_lock(s, cc->name, 60, &lock)) != CS_OK) {
        failed(s, cc, rc, out);
        return rc;
    }
    rc = sync_locked(sess, s, cc, force, out, lock);
    /* a new version ran on-change already; else one that failed before runs again */
    if (rc == CS_OK && out->result != CS_SYNC_INSTALLED)
        rc = retry_hook(sess, s, cc, out);
    if (cc->deploy && (rc == CS_OK || out->result == CS_SYNC_INSTALLED))
        rc = deploy(sess, s, cc, out, rc);
    return rc;
}

/* The staple follows the version: refreshed when due, whatever the sync did; its error is kept. */
static void staple(cs_store *s, const cs_cert_conf *cc, cs_sync_outcome *out, cs_rc rc)
{
    char msg[2048];

    snprintf(msg, sizeof(msg), "%s", cs_error_last());
    out->ocsp_failed = cs_ocsp_refresh(s, cc->name, 0, 0, out->ocsp, sizeof(out->ocsp)) != CS_OK;
    if (rc != CS_OK)
        cs_error_set(rc, "%s", msg);
    else
        cs_error_clear();
}

cs_rc cs_sync_cert(cs_sync_session *sess, cs_store *s, const cs_cert_conf *cc, int force,
                   cs_sync_outcome *out)
{
    cs_rc rc = sync_cert(sess, s, cc, force, out);

    if (out->version != 0 && !out->held)
        staple(s, cc, out, rc);
    return rc;
}
