/*
 * certsync: `deploy =` of a [cert]: a sync's last step deploys the current
 * version to the configured cloud resources and keeps each one's result in
 * state.json (see cs_deploy.h). The state:
 *
 *   "deploy": {"certificate": "123", "version": 5, "job": "888", "job_status": "success",
 *              "since": T, "attempts": 1, "next_attempt": T, "error": "...",
 *              "resources": {"cdn:www.example.com": {"id": "2356", "certificate": "123",
 *                            "status": "success", "job": "888", "worker": "22487",
 *                            "at": T, "error": null}, ...}}
 *
 * A resource is done for a certificate once its status is "success" with that
 * certificate: nothing is deployed twice for the same certificate and resource.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cs_deploy.h"
#include "cs_escape.h"
#include "cs_time.h"

#define STATE_KEY "deploy"

/* Like a pending on-change: 1 min after the first failure, doubling, at most 1 h. */
static time_t backoff_of(json_int_t attempts)
{
    time_t wait = 60;

    while (attempts-- > 1 && wait < 3600)
        wait *= 2;
    return wait < 3600 ? wait : 3600;
}

static const char *str(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));

    return v ? v : "";
}

static json_t *when(time_t t)
{
    char buf[CS_TIME_ISO_SIZE];

    return json_string(cs_time_iso(t, buf));
}

/* The words of `deploy =`, in their order. */
static json_t *targets_of(const char *value)
{
    json_t *a = json_array();
    const char *p = value;
    size_t n;

    while (a && *(p += strspn(p, " \t,"))) {
        n = strcspn(p, " \t,");
        json_array_append_new(a, json_stringn(p, n));
        p += n;
    }
    return a;
}

static json_t *entry(json_t *st, const char *target)
{
    json_t *res = json_object_get(st, "resources"), *e;

    if (!json_is_object(res)) {
        res = json_object();
        json_object_set_new(st, "resources", res);
    }
    if (!json_is_object(e = json_object_get(res, target))) {
        e = json_object();
        json_object_set_new(res, target, e);
    }
    return e;
}

static int done(json_t *st, const char *target, const char *cert)
{
    json_t *e = json_object_get(json_object_get(st, "resources"), target);

    return strcmp(str(e, "status"), "success") == 0 && strcmp(str(e, "certificate"), cert) == 0;
}

/* One resource's result; error NULL for none (the text is escaped: it may quote the service). */
static void set_result(json_t *st, const char *target, const char *status, const char *job,
                       const char *error)
{
    json_t *e = entry(st, target);
    char safe[1024];

    json_object_set_new(e, "certificate", json_string(str(st, "certificate")));
    json_object_set_new(e, "status", json_string(status));
    json_object_set_new(e, "job", job && *job ? json_string(job) : json_null());
    json_object_set_new(e, "at", when(time(NULL)));
    if (error)
        cs_escape(error, safe, sizeof(safe));
    json_object_set_new(e, "error", error ? json_string(safe) : json_null());
}

/* The state for cert: kept when it is the same certificate, else a new one (results kept). */
static json_t *state_for(json_t *old, const char *cert, unsigned version)
{
    json_t *st;

    if (old && strcmp(str(old, "certificate"), cert) == 0)
        return old;
    st = json_pack("{s:s, s:I, s:n, s:n, s:I, s:n, s:n, s:n}", "certificate", cert, "version",
                   (json_int_t)version, "job", "job_status", "attempts", (json_int_t)0, "since",
                   "next_attempt", "error");
    if (st && old && json_is_object(json_object_get(old, "resources")))
        json_object_set(st, "resources", json_object_get(old, "resources"));
    json_decref(old);
    return st;
}

static int job_running(const json_t *st)
{
    const char *s = str(st, "job_status");

    return *str(st, "job") && *s && strcmp(s, "success") != 0 && strcmp(s, "error") != 0 &&
           strcmp(s, "editing") != 0;
}

/* Every configured resource done: the pending state is cleared. */
static int settle(json_t *st, const json_t *targets, const char *cert, char *why, size_t size)
{
    json_t *t, *e;
    size_t i, n = 0, failed = 0;
    json_int_t attempts = json_integer_value(json_object_get(st, "attempts"));
    time_t now = time(NULL);

    why[0] = '\0';
    json_array_foreach(targets, i, t)
    {
        if (done(st, json_string_value(t), cert))
            continue;
        e = json_object_get(json_object_get(st, "resources"), json_string_value(t));
        failed++;
        n += (size_t)snprintf(why + n, size > n ? size - n : 0, "%s%s: %s", failed > 1 ? "; " : "",
                              json_string_value(t),
                              *str(e, "error") ? str(e, "error") : "not deployed yet");
    }
    if (failed == 0) {
        json_object_set_new(st, "attempts", json_integer(0));
        json_object_set_new(st, "since", json_null());
        json_object_set_new(st, "next_attempt", json_null());
        json_object_set_new(st, "error", json_null());
        return 0;
    }
    if (attempts == 0)
        json_object_set_new(st, "since", when(now));
    json_object_set_new(st, "attempts", json_integer(attempts + 1));
    json_object_set_new(st, "next_attempt", when(now + backoff_of(attempts + 1)));
    json_object_set_new(st, "error", json_string(why));
    return 1;
}

typedef struct {
    cs_store *s;
    const cs_cert_conf *cc;
    cs_aliyun *c;
    const cs_provider_conf *svc; /* the aliyun-cas provider whose client c is */
    json_t *st, *targets, *orig; /* orig: the state as read, to write only a change */
    char cert[32], job[32];
    unsigned version;
} run;

/* The rows of the due resources; those that cannot be resolved, or serve cert already, settled. */
static json_t *due_rows(run *r)
{
    json_t *rows = json_array(), *t, *row;
    char id[32], cur[32];
    size_t i;

    json_array_foreach(r->targets, i, t)
    {
        const char *target = json_string_value(t);

        if (done(r->st, target, r->cert))
            continue;
        if (cs_deploy_resolve(r->c, target, &row) != CS_OK) {
            set_result(r->st, target, "error", NULL, cs_error_last());
            continue;
        }
        cs_json_id(json_object_get(row, "Id"), id, sizeof(id));
        cs_json_id(json_object_get(row, "CertId"), cur, sizeof(cur));
        json_object_set_new(entry(r->st, target), "id", json_string(id));
        if (strcmp(cur, r->cert) == 0) {
            /* it serves this certificate already (deployed by hand, or state was lost) */
            set_result(r->st, target, "success", NULL, NULL);
            json_decref(row);
            continue;
        }
        json_object_set_new(row, "certsync_target", json_string(target));
        json_array_append_new(rows, row);
    }
    return rows;
}

/* Create and start the job for rows; the resources' state says it (or why not). */
static cs_rc start(run *r, json_t *rows)
{
    char contact[32], name[128];
    json_t *row;
    size_t i;
    cs_rc rc;

    snprintf(name, sizeof(name), "certsync %s v%u", r->cc->name, r->version);
    rc = cs_deploy_contact(r->c, r->svc->deploy_contact, contact, sizeof(contact));
    if (rc == CS_OK)
        rc = cs_deploy_start(r->c, name, r->cert, rows, contact, 0, r->job, sizeof(r->job));
    json_array_foreach(rows, i, row)
        set_result(r->st, str(row, "certsync_target"), rc == CS_OK ? "pending" : "error",
                   rc == CS_OK ? r->job : NULL, rc == CS_OK ? NULL : cs_error_last());
    json_object_set_new(r->st, "job", rc == CS_OK ? json_string(r->job) : json_null());
    json_object_set_new(r->st, "job_status", json_string(rc == CS_OK ? "pending" : "error"));
    return rc;
}

/* The workers' results into the resources' state, matched by resource id. */
static void take_results(run *r, const char *status, const json_t *workers)
{
    json_t *res = json_object_get(r->st, "resources"), *e, *w;
    const char *target;
    char id[32], wid[32], msg[512];
    size_t i;

    json_object_set_new(r->st, "job_status", json_string(status));
    json_object_foreach(res, target, e)
    {
        if (strcmp(str(e, "job"), r->job) != 0)
            continue;
        json_array_foreach(workers, i, w)
        {
            cs_json_id(json_object_get(w, "ResourceId"), id, sizeof(id));
            if (strcmp(id, str(e, "id")) != 0)
                continue;
            cs_json_id(json_object_get(w, "Id"), wid, sizeof(wid));
            snprintf(msg, sizeof(msg),
                     "the service's worker %s for resource %s ended in %s (deployment job %s): "
                     "`certsync deployment %s` and the product's console say more",
                     wid, id, str(w, "Status"), r->job, r->job);
            set_result(r->st, target, str(w, "Status"), r->job,
                       strcmp(str(w, "Status"), "success") == 0 ? NULL : msg);
            json_object_set_new(e, "worker", json_string(wid));
        }
        if (strcmp(str(e, "status"), "pending") == 0 && strcmp(status, "editing") == 0)
            set_result(r->st, target, "error", r->job,
                       "its deployment job was taken back (cancelled) before it ran");
    }
}

static cs_rc save(run *r)
{
    return cs_store_state_put(r->s, r->cc->name, STATE_KEY, r->st);
}

/* Follow the job (unlocked: it may take minutes); the caller records what it did. */
static cs_rc follow(run *r)
{
    char status[32] = "", msg[1024];
    json_t *workers = NULL, *res, *e;
    const char *target;
    int wait = r->cc->deploy_wait > 0 ? (int)r->cc->deploy_wait : CS_DEPLOY_FOLLOW_S;
    cs_rc rc = cs_deploy_follow(r->c, r->job, wait, NULL, NULL, status, sizeof(status), &workers);

    if (rc != CS_OK) {
        /* still running, or the service cannot be asked: the next sync looks again */
        snprintf(msg, sizeof(msg), "%s", cs_error_last());
        res = json_object_get(r->st, "resources");
        json_object_foreach(res, target, e)
        {
            if (strcmp(str(e, "job"), r->job) == 0)
                json_object_set_new(e, "error", json_string(msg));
        }
        return rc;
    }
    take_results(r, status, workers);
    json_decref(workers);
    return CS_OK;
}

/* What was deployed where, for the sync's output. */
static void tell(run *r, char *said, size_t size)
{
    json_t *res = json_object_get(r->st, "resources"), *e;
    const char *target;
    size_t n = 0;

    said[0] = '\0';
    json_object_foreach(res, target, e)
    {
        if (strcmp(str(e, "job"), r->job) != 0 || strcmp(str(e, "status"), "success") != 0)
            continue;
        n += (size_t)snprintf(said + n, size > n ? size - n : 0, "%s%s", n ? ", " : "", target);
    }
    if (n && n < size)
        snprintf(said + n, size - n, " got certificate %s (v%u; deployment job %s)", r->cert,
                 r->version, r->job);
}

typedef enum { STEP_WAIT, STEP_SETTLE, STEP_FOLLOW } step;

/* With the certificate's lock held: decide, resolve, start. */
static step prepare(run *r, int backoff)
{
    json_t *rows;
    time_t next = 0;
    int started;

    if (job_running(r->st)) {
        snprintf(r->job, sizeof(r->job), "%s", str(r->st, "job"));
        return STEP_FOLLOW; /* a job an earlier sync started: never a second one */
    }
    cs_time_parse_iso(str(r->st, "next_attempt"), &next);
    if (backoff && json_integer_value(json_object_get(r->st, "attempts")) > 0 && time(NULL) < next)
        return STEP_WAIT; /* an in-server sync waits for the backoff; status shows it pending */
    rows = due_rows(r);
    started = json_array_size(rows) > 0 && start(r, rows) == CS_OK;
    json_decref(rows);
    return started ? STEP_FOLLOW : STEP_SETTLE;
}

/* state.json is written only when something changed: an unchanged sync writes nothing. */
static cs_rc save_changed(run *r)
{
    if (r->orig && json_equal(r->orig, r->st))
        return CS_OK;
    json_decref(r->orig);
    r->orig = json_deep_copy(r->st);
    return save(r);
}

static cs_rc deploy_locked(run *r, int backoff, int lock, char *said, size_t size)
{
    char why[2048];
    step next = prepare(r, backoff);
    int failed;
    cs_rc rc = CS_OK;

    if (next == STEP_FOLLOW && (rc = save_changed(r)) == CS_OK) {
        /* the job is in state.json before it is followed: a sync meanwhile follows it too */
        cs_store_unlock(r->s, lock);
        if (follow(r) == CS_OK)
            tell(r, said, size);
        if ((rc = cs_store_lock(r->s, r->cc->name, 60, &lock)) != CS_OK)
            return rc;
    }
    if (rc != CS_OK || next == STEP_WAIT) {
        cs_store_unlock(r->s, lock);
        return rc;
    }
    failed = settle(r->st, r->targets, r->cert, why, sizeof(why));
    rc = save_changed(r);
    cs_store_unlock(r->s, lock);
    if (rc != CS_OK)
        return cs_error_prefix("deploying certificate %s (v%u), status cannot show it", r->cert,
                               r->version);
    if (!failed)
        return CS_OK;
    return cs_error_set(CS_EPROVIDER,
                        "deploying certificate %s (v%u) failed for %s; it stays pending (certsync "
                        "status) and the next sync deploys it again",
                        r->cert, r->version, why);
}

/* The version has no id in the service (why): every resource waits, status says why. */
static cs_rc not_ours(run *r, json_t *old, int lock, const char *why)
{
    char all[2048], msg[1024];
    json_t *t;
    size_t i;

    snprintf(msg, sizeof(msg), "v%u: %s", r->version, why);
    r->orig = old ? json_deep_copy(old) : NULL;
    if ((r->st = state_for(old, "none", r->version)) == NULL) {
        cs_store_unlock(r->s, lock);
        return cs_error_set(CS_ENOMEM, "out of memory");
    }
    json_array_foreach(r->targets, i, t)
        set_result(r->st, json_string_value(t), "error", NULL, msg);
    settle(r->st, r->targets, r->cert, all, sizeof(all));
    save_changed(r);
    cs_store_unlock(r->s, lock);
    return cs_error_set(CS_EINVAL, "[cert %s] %s: %s", r->cc->name,
                        r->cc->deploy ? "deploy" : "upload-to", msg);
}

/* An upload of this version by an earlier sync whose state was lost: found by name and print. */
static cs_rc find_upload(cs_aliyun *c, const char *name, const char *fingerprint, char *id,
                         size_t size)
{
    json_t *all, *e;
    size_t i;

    cs_error_clear();
    id[0] = '\0';
    if (cs_aliyun_list(c, "UPLOAD", NULL, NULL, &all) != CS_OK)
        return cs_error_code();
    json_array_foreach(all, i, e)
    {
        if (strcmp(str(e, "Name"), name) == 0 && strcasecmp(str(e, "Sha2"), fingerprint) == 0)
            cs_json_id(json_object_get(e, "CertificateId"), id, size);
    }
    json_decref(all);
    if (id[0])
        return CS_OK;
    return cs_error_set(CS_EPROVIDER,
                        "the service holds another certificate named '%s': delete or rename it "
                        "(`certsync list`)",
                        name);
}

/*
 * upload-to: the current version goes into the service once (known by its fingerprint in
 * state.json, "uploaded"); r->cert gets its id there.
 */
static cs_rc upload(run *r, const json_t *old, const char *fingerprint, json_t **up, char *said,
                    size_t size)
{
    const json_t *u = json_object_get(old, "uploaded");
    char name[128], id[32] = "";
    cs_bundle *b;
    cs_rc rc;

    *up = NULL;
    if (strcmp(str(u, "fingerprint"), fingerprint) == 0 && *str(u, "certificate")) {
        snprintf(r->cert, sizeof(r->cert), "%s", str(u, "certificate"));
        return CS_OK;
    }
    /* a name per certificate: at most 64 characters, unique in the account */
    snprintf(name, sizeof(name), "%.51s-%.12s", r->cc->name, fingerprint);
    if ((rc = cs_store_load(r->s, r->cc->name, 0, &b)) != CS_OK)
        return rc;
    rc = cs_aliyun_upload(r->c, name, b, id, sizeof(id));
    cs_bundle_free(b);
    if (rc != CS_OK && cs_aliyun_name_taken(r->c))
        rc = find_upload(r->c, name, fingerprint, id, sizeof(id));
    if (rc != CS_OK)
        return cs_error_prefix("upload-to %s: uploading v%u", r->cc->upload_to->name, r->version);
    snprintf(r->cert, sizeof(r->cert), "%s", id);
    *up = json_pack("{s:s, s:s, s:s, s:I, s:o}", "certificate", id, "name", name, "fingerprint",
                    fingerprint, "version", (json_int_t)r->version, "at", when(time(NULL)));
    snprintf(said, size, "uploaded v%u to [provider %s] as certificate %s (name %s)", r->version,
             r->cc->upload_to->name, id, name);
    return CS_OK;
}

/* The rest of a deployment once the certificate's id in the service is known. */
static cs_rc deploy_id(run *r, json_t *old, json_t *up, int backoff, int lock, char *said,
                       size_t size)
{
    size_t n = strlen(said);
    cs_rc rc;

    r->orig = old ? json_deep_copy(old) : NULL;
    r->st = state_for(old, r->cert, r->version);
    if (r->st && up)
        json_object_set_new(r->st, "uploaded", up);
    else
        json_decref(up);
    if (r->st == NULL) {
        cs_store_unlock(r->s, lock);
        return cs_error_set(CS_ENOMEM, "out of memory");
    }
    if (n && n + 2 < size) {
        memcpy(said + n, "; ", 3);
        n += 2;
    }
    rc = deploy_locked(r, backoff, lock, said + n, size - n);
    if (n && said[n] == '\0')
        said[n - 2] = '\0'; /* nothing was deployed now */
    return rc;
}

cs_rc cs_deploy_cert(cs_sync_session *sess, cs_store *s, const cs_cert_conf *cc, int backoff,
                     char *said, size_t size)
{
    run r = {s, cc, NULL, NULL, NULL, NULL, NULL, "", "", 0};
    char fingerprint[65];
    cs_cert_info info;
    json_t *old = NULL, *up = NULL;
    const cs_provider_conf *svc;
    int lock, ours;
    cs_rc rc;

    said[0] = '\0';
    if (cc->deploy == NULL && cc->upload_to == NULL)
        return CS_OK;
    if (cs_store_info(s, cc->name, 0, &info) != CS_OK) {
        cs_error_clear(); /* no version yet: nothing to deploy */
        return CS_OK;
    }
    ours = strcmp(info.provider, "aliyun-cas") == 0 && info.remote_id[0];
    snprintf(r.cert, sizeof(r.cert), "%s", ours ? info.remote_id : "none");
    snprintf(fingerprint, sizeof(fingerprint), "%s", info.fingerprint);
    r.version = info.version;
    cs_cert_info_clear(&info);
    /* a certificate of the service is deployed by its provider's client, an upload by upload-to's
     */
    svc = ours || !cc->upload_to ? cc->provider : cc->upload_to;
    if (svc == NULL || svc->type != CS_PROVIDER_ALIYUN_CAS)
        return CS_OK; /* the configuration allows no deploy without a service */
    r.svc = svc;
    if (cs_aliyun_of_session(sess, svc, &r.c) != CS_OK)
        return cs_error_code();
    if ((r.targets = targets_of(cc->deploy ? cc->deploy : "")) == NULL)
        return cs_error_set(CS_ENOMEM, "out of memory");
    if ((rc = cs_store_lock(s, cc->name, 60, &lock)) == CS_OK &&
        (rc = cs_store_state_get(s, cc->name, STATE_KEY, &old)) != CS_OK)
        cs_store_unlock(s, lock);
    if (rc == CS_OK && !ours && cc->upload_to) {
        rc = upload(&r, old, fingerprint, &up, said, size);
        ours = rc == CS_OK;
        if (rc != CS_OK)
            rc = not_ours(&r, old, lock, cs_error_last());
    } else if (rc == CS_OK && !ours) {
        rc = not_ours(&r, old, lock,
                      "it did not come from the service (it was imported), so it has no id there "
                      "to deploy; the next certificate from the service is deployed");
    }
    if (rc == CS_OK && ours)
        rc = deploy_id(&r, old, up, backoff, lock, said, size);
    json_decref(r.st);
    json_decref(r.orig);
    json_decref(r.targets);
    return rc;
}

/* ---- dry run ---- */

void cs_deploy_plan(cs_store *s, const cs_cert_conf *cc, int due, char *buf, size_t size)
{
    json_t *st = NULL, *targets, *t;
    const char *cert;
    size_t i, n = 0;

    buf[0] = '\0';
    if (cc->deploy == NULL)
        return;
    if (due) {
        snprintf(buf, size, "the new version would then be %sdeployed to: %s",
                 cc->upload_to ? "uploaded to its upload-to provider and " : "", cc->deploy);
        return;
    }
    if (s && cs_store_state_get(s, cc->name, STATE_KEY, &st) != CS_OK)
        cs_error_clear();
    cert = str(st, "certificate");
    if ((targets = targets_of(cc->deploy)) == NULL) {
        json_decref(st);
        return;
    }
    json_array_foreach(targets, i, t)
    {
        if (!done(st, json_string_value(t), cert))
            n += (size_t)snprintf(buf + n, size > n ? size - n : 0, "%s%s", n ? ", " : "",
                                  json_string_value(t));
    }
    if (n && n < size && st && *cert && strcmp(cert, "none") != 0)
        snprintf(buf + n, size - n, ": certificate %s would be deployed there again (%s)", cert,
                 json_integer_value(json_object_get(st, "attempts")) > 0 ? "pending"
                                                                         : "not deployed yet");
    else if (n && n < size)
        snprintf(buf + n, size - n, ": the current version would be deployed there");
    json_decref(st);
    json_decref(targets);
}

/* ---- status ---- */

static json_t *row_of(const char *target, json_t *e)
{
    json_t *o = json_pack("{s:s}", "resource", target);

    if (o == NULL)
        return NULL;
    json_object_set_new(o, "resource_id", *str(e, "id") ? json_string(str(e, "id")) : json_null());
    json_object_set_new(o, "certificate",
                        *str(e, "certificate") ? json_string(str(e, "certificate")) : json_null());
    json_object_set_new(o, "status", json_string(*str(e, "status") ? str(e, "status") : "pending"));
    json_object_set_new(o, "job", *str(e, "job") ? json_string(str(e, "job")) : json_null());
    json_object_set_new(o, "worker",
                        *str(e, "worker") ? json_string(str(e, "worker")) : json_null());
    json_object_set_new(o, "at", *str(e, "at") ? json_string(str(e, "at")) : json_null());
    json_object_set_new(o, "error", *str(e, "error") ? json_string(str(e, "error")) : json_null());
    return o;
}

static json_t *got(const json_t *st, const char *k)
{
    json_t *v = json_object_get(st, k);

    return v ? v : json_null();
}

static json_t *pending_of(json_t *st)
{
    json_t *res = json_object_get(st, "resources"), *e, *names = json_array();
    const char *target, *cert = str(st, "certificate");

    json_object_foreach(res, target, e)
    {
        if (!done(st, target, cert))
            json_array_append_new(names, json_string(target));
    }
    if (json_integer_value(json_object_get(st, "attempts")) == 0 && !job_running(st)) {
        json_decref(names);
        return json_null();
    }
    return json_pack("{s:s, s:O, s:o, s:O, s:O, s:O, s:O, s:O}", "certificate", cert, "version",
                     got(st, "version"), "resources", names, "error", got(st, "error"), "since",
                     got(st, "since"), "attempts", got(st, "attempts"), "next_attempt",
                     got(st, "next_attempt"), "job", got(st, "job"));
}

cs_rc cs_deploy_status(cs_store *s, const char *name, json_t **deployments, json_t **pending)
{
    json_t *st = NULL, *e;
    const char *target;

    int whole = 1;

    *deployments = json_array();
    *pending = NULL;
    if (cs_store_state_get(s, name, STATE_KEY, &st) != CS_OK) {
        if (cs_error_code() == CS_ENOMEM)
            whole = 0;
        cs_error_clear(); /* else last_sync says the state is unreadable */
    }
    json_object_foreach(json_object_get(st, "resources"), target, e)
    {
        if (json_array_append_new(*deployments, row_of(target, e)) != 0)
            whole = 0;
    }
    *pending = st ? pending_of(st) : json_null();
    json_decref(st);
    if (!whole || *deployments == NULL || *pending == NULL) {
        json_decref(*deployments);
        json_decref(*pending);
        return cs_error_set(CS_ENOMEM, "out of memory building the status of '%s'", name);
    }
    return CS_OK;
}
