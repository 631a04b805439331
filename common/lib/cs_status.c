/* certsync: the one status document (see cs_status.h and README.md "Status"). */
#include "cs_status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_ocsp.h"
#include "cs_deploy.h"
#include "cs_time.h"

json_t *cs_status_time(time_t t)
{
    char buf[CS_TIME_ISO_SIZE];

    return t ? json_string(cs_time_iso(t, buf)) : json_null();
}

static json_t *text_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

static json_t *names_json(const cs_cert_info *info)
{
    json_t *a = json_array();
    size_t i;

    for (i = 0; a && i < info->n_names; i++)
        if (json_array_append_new(a, json_string(info->names[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

/* The current version (null fields when there is none, and why). */
static void current_json(json_t *j, cs_store *s, const char *name, time_t now)
{
    cs_cert_info info;
    int have = cs_store_info(s, name, 0, &info) == CS_OK;
    const char *state = !have ? "fallback" : info.not_after <= now ? "expired" : "ok";

    /* no current version: a server with a module serves the self-signed fallback, and 503 */
    json_object_set_new(j, "state", json_string(state));
    json_object_set_new(j, "fallback", json_boolean(!have));
    json_object_set_new(j, "version", have ? json_integer(info.version) : json_null());
    json_object_set_new(j, "error_current",
                        have                              ? json_null()
                        : cs_error_code() == CS_ENOTFOUND ? json_string("no version yet")
                                                          : json_string(cs_error_last()));
    json_object_set_new(j, "fingerprint_sha256",
                        have ? json_string(info.fingerprint) : json_null());
    json_object_set_new(j, "serial", have ? text_or_null(info.serial) : json_null());
    json_object_set_new(j, "provider", have ? text_or_null(info.provider) : json_null());
    json_object_set_new(j, "remote_id", have ? text_or_null(info.remote_id) : json_null());
    json_object_set_new(j, "names", have ? names_json(&info) : json_array());
    json_object_set_new(j, "not_before", cs_status_time(have ? info.not_before : 0));
    json_object_set_new(j, "not_after", cs_status_time(have ? info.not_after : 0));
    json_object_set_new(j, "days_left",
                        have ? json_integer((json_int_t)((info.not_after - now) / 86400))
                             : json_null());
    json_object_set_new(j, "fetched_at", cs_status_time(have ? info.fetched_at : 0));
    if (have)
        cs_cert_info_clear(&info);
}

/* {"version": 3, "since": "..."}: a rollback holds it there until `certsync release`. */
static json_t *held_json(const cs_sync_state *st)
{
    json_t *since = cs_status_time(st->held_since);

    return since ? json_pack("{s:I, s:o}", "version", (json_int_t)st->held, "since", since) : NULL;
}

/* A failed on-change that every sync runs again until it succeeds (README.md, "on-change"). */
static json_t *hook_json(const cs_hook_pending *p)
{
    json_t *since = cs_status_time(p->since), *next = cs_status_time(p->next_attempt);

    if (since == NULL || next == NULL) {
        json_decref(since);
        json_decref(next);
        return NULL;
    }
    return json_pack("{s:s, s:I, s:i, s:s, s:o, s:I, s:o}", "command", p->command, "version",
                     (json_int_t)p->version, "exit_status", p->exit_status, "error", p->error,
                     "since", since, "attempts", (json_int_t)p->attempts, "next_attempt", next);
}

/* `deploy =`: each resource's last deployment, and the one that waits to be retried. */
static void deploy_json(json_t *j, cs_store *s, const char *name)
{
    json_t *rows, *pending;

    if (cs_deploy_status(s, name, &rows, &pending) != CS_OK)
        return; /* the document is one key short: cs_status_cert says out of memory */
    json_object_set_new(j, "deployments", rows);
    json_object_set_new(j, "deploy_pending", pending);
}

/* The last sync, by whoever ran it; a state.json the store refuses (a FIFO) is said so. */
static void last_sync_json(json_t *j, cs_store *s, const char *name)
{
    cs_sync_state st;
    int readable = cs_store_sync_state(s, name, &st) == CS_OK;

    json_object_set_new(j, "last_sync",
                        json_string(readable ? cs_sync_result_name(st.result) : "unreadable"));
    json_object_set_new(j, "last_sync_at", cs_status_time(readable ? st.at : 0));
    json_object_set_new(j, "last_success_at", cs_status_time(readable ? st.last_success : 0));
    json_object_set_new(j, "last_error",
                        readable ? text_or_null(st.error) : json_string(cs_error_last()));
    json_object_set_new(j, "consecutive_failures", json_integer(readable ? st.failures : 0));
    json_object_set_new(j, "held", readable && st.held ? held_json(&st) : json_null());
    json_object_set_new(j, "hook_pending",
                        readable && st.hook.version ? hook_json(&st.hook) : json_null());
    deploy_json(j, s, name);
}

/* name, the 13 keys of current_json, the 9 of last_sync_json and ocsp: a set_new that
   failed is a key missing, so the document is checked once by its size */
#define CERT_KEYS 24

cs_rc cs_status_cert(cs_store *s, const char *name, time_t now, json_t **out)
{
    json_t *j = json_object();

    *out = NULL;
    if (j == NULL)
        return cs_error_set(CS_ENOMEM, "out of memory");
    json_object_set_new(j, "name", json_string(name));
    current_json(j, s, name, now ? now : time(NULL));
    last_sync_json(j, s, name);
    json_object_set_new(j, "ocsp", cs_ocsp_status_json(s, name));
    if (json_object_size(j) != CERT_KEYS) {
        json_decref(j);
        return cs_error_set(CS_ENOMEM, "out of memory building the status of '%s'", name);
    }
    *out = j;
    return CS_OK;
}

cs_rc cs_status_document(const cs_config *c, cs_store *s, time_t now, json_t **out)
{
    json_t *j = json_object(), *certs = json_array(), *one;
    cs_rc rc = CS_OK;
    size_t i;

    *out = NULL;
    if (j == NULL || certs == NULL) {
        json_decref(j);
        json_decref(certs);
        return cs_error_set(CS_ENOMEM, "out of memory");
    }
    for (i = 0; rc == CS_OK && i < c->n_certs; i++) {
        rc = cs_status_cert(s, c->certs[i].name, now, &one);
        if (rc == CS_OK && json_array_append_new(certs, one) != 0)
            rc = cs_error_set(CS_ENOMEM, "out of memory building the status document");
    }
    if (rc == CS_OK && (json_object_set_new(j, "config", json_string(c->path)) != 0 ||
                        json_object_set_new(j, "store", json_string(cs_store_path(s))) != 0))
        rc = cs_error_set(CS_ENOMEM, "out of memory building the status document");
    /* set_new takes certs even when it fails */
    if (rc == CS_OK && json_object_set_new(j, "certificates", certs) != 0)
        rc = cs_error_set(CS_ENOMEM, "out of memory building the status document");
    else if (rc != CS_OK)
        json_decref(certs);
    if (rc != CS_OK) {
        json_decref(j);
        return rc;
    }
    *out = j;
    return CS_OK;
}

/* ---- --check: the health of one certificate ---- */

typedef struct {
    const json_t *cert;
    const char *name;
    long renew_before;
    time_t now;
} check_ctx;

/* One rule of the check: its level, or CS_CHECK_OK, with its line written to line. */
typedef cs_check_level (*check_rule)(const check_ctx *x, char *line, size_t size);

static const char *key_text(const json_t *j, const char *key)
{
    const char *v = json_string_value(json_object_get(j, key));

    return v ? v : "-";
}

static time_t key_time(const json_t *j, const char *key)
{
    time_t t = 0;

    cs_time_parse_iso(json_string_value(json_object_get(j, key)), &t);
    return t;
}

static cs_check_level check_current(const check_ctx *x, char *line, size_t size)
{
    const char *why = json_string_value(json_object_get(x->cert, "error_current"));

    if (json_is_integer(json_object_get(x->cert, "version")))
        return CS_CHECK_OK;
    if (why && strcmp(why, "no version yet") == 0) {
        snprintf(line, size,
                 "CRITICAL %s: no version yet (servers serve the fallback): run `certsync sync "
                 "%s` or `certsync import %s`",
                 x->name, x->name, x->name);
        return CS_CHECK_CRITICAL;
    }
    snprintf(line, size, "UNKNOWN %s: cannot read the current version: %s", x->name,
             why ? why : "no reason given");
    return CS_CHECK_UNKNOWN;
}

static cs_check_level check_expiry(const check_ctx *x, char *line, size_t size)
{
    json_int_t v = json_integer_value(json_object_get(x->cert, "version"));
    time_t end = key_time(x->cert, "not_after");
    long days = (long)((end - x->now) / 86400);

    if (!json_is_integer(json_object_get(x->cert, "version")))
        return CS_CHECK_OK;
    if (end <= x->now) {
        snprintf(line, size,
                 "CRITICAL %s: v%lld expired at %s: run `certsync sync %s` and see `certsync "
                 "status %s`",
                 x->name, (long long)v, key_text(x->cert, "not_after"), x->name, x->name);
        return CS_CHECK_CRITICAL;
    }
    if (end - x->now < CS_CHECK_CRITICAL_DAYS * 86400L) {
        snprintf(line, size,
                 "CRITICAL %s: v%lld expires at %s, in %ld day(s), and was not renewed: run "
                 "`certsync sync %s` and see `certsync status %s`",
                 x->name, (long long)v, key_text(x->cert, "not_after"), days, x->name, x->name);
        return CS_CHECK_CRITICAL;
    }
    if (end - x->now < x->renew_before) {
        snprintf(line, size,
                 "WARNING %s: v%lld expires at %s, in %ld day(s), inside renew-before (%ld "
                 "days): the next `certsync sync` renews it",
                 x->name, (long long)v, key_text(x->cert, "not_after"), days,
                 x->renew_before / 86400);
        return CS_CHECK_WARNING;
    }
    return CS_CHECK_OK;
}

static cs_check_level check_last_sync(const check_ctx *x, char *line, size_t size)
{
    const char *last = key_text(x->cert, "last_sync");

    if (strcmp(last, "unreadable") == 0) {
        snprintf(line, size, "UNKNOWN %s: cannot read the last sync: %s", x->name,
                 key_text(x->cert, "last_error"));
        return CS_CHECK_UNKNOWN;
    }
    if (strcmp(last, "failed") != 0)
        return CS_CHECK_OK;
    snprintf(line, size, "WARNING %s: the last sync failed at %s (%lld in a row): %s", x->name,
             key_text(x->cert, "last_sync_at"),
             (long long)json_integer_value(json_object_get(x->cert, "consecutive_failures")),
             key_text(x->cert, "last_error"));
    return CS_CHECK_WARNING;
}

/* A failed on-change: the servers may not have the current version. */
static cs_check_level check_hook(const check_ctx *x, char *line, size_t size)
{
    const json_t *h = json_object_get(x->cert, "hook_pending");
    char error[1024];
    size_t i;

    if (!json_is_object(h))
        return CS_CHECK_OK;
    /* a monitoring line is one line: the command's stderr lines joined */
    snprintf(error, sizeof(error), "%s", key_text(h, "error"));
    for (i = 0; error[i]; i++)
        error[i] = error[i] == '\n' ? '/' : error[i];
    snprintf(line, size,
             "CRITICAL %s: on-change '%s' for v%lld failed (exit status %lld, %lld attempt(s) "
             "since %s): %s; the servers may not have v%lld: fix it, then `certsync sync %s` "
             "runs it again",
             x->name, key_text(h, "command"),
             (long long)json_integer_value(json_object_get(h, "version")),
             (long long)json_integer_value(json_object_get(h, "exit_status")),
             (long long)json_integer_value(json_object_get(h, "attempts")), key_text(h, "since"),
             error, (long long)json_integer_value(json_object_get(h, "version")), x->name);
    return CS_CHECK_CRITICAL;
}

/* A revoked answer is CRITICAL; a staple that expired with the responder failing, WARNING. */
static cs_check_level check_ocsp(const check_ctx *x, char *line, size_t size)
{
    const json_t *o = json_object_get(x->cert, "ocsp");
    const char *st = json_string_value(json_object_get(o, "status"));
    time_t next = key_time(o, "next_update");

    if (!json_is_object(o))
        return CS_CHECK_OK;
    if (st && strcmp(st, "revoked") == 0) {
        snprintf(line, size, "CRITICAL %s: %s", x->name, key_text(o, "last_error"));
        return CS_CHECK_CRITICAL;
    }
    if (json_is_string(json_object_get(o, "last_error")) && next <= x->now) {
        snprintf(line, size, "WARNING %s: no valid OCSP staple (%s%s): %s", x->name,
                 next ? "it expired at " : "none fetched yet",
                 next ? key_text(o, "next_update") : "", key_text(o, "last_error"));
        return CS_CHECK_WARNING;
    }
    return CS_CHECK_OK;
}

/* A deployment to cloud products that failed: they may serve the previous certificate. */
static cs_check_level check_deploy(const check_ctx *x, char *line, size_t size)
{
    const json_t *d = json_object_get(x->cert, "deploy_pending");

    if (!json_is_object(d))
        return CS_CHECK_OK;
    snprintf(line, size,
             "CRITICAL %s: deploying certificate %s (v%lld) to the cloud products is pending "
             "(%lld attempt(s) since %s): %s; they may still serve the previous certificate: fix "
             "it, then `certsync sync %s` deploys it again",
             x->name, key_text(d, "certificate"),
             (long long)json_integer_value(json_object_get(d, "version")),
             (long long)json_integer_value(json_object_get(d, "attempts")), key_text(d, "since"),
             key_text(d, "error"), x->name);
    return CS_CHECK_CRITICAL;
}

/* Each rule adds at most one line. */
static const check_rule check_rules[] = {check_current, check_expiry, check_last_sync,
                                         check_hook,    check_ocsp,   check_deploy};

const char *cs_check_level_name(cs_check_level level)
{
    static const char *const names[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};

    return level <= CS_CHECK_UNKNOWN ? names[level] : "UNKNOWN";
}

cs_check_level cs_status_check(const json_t *cert, long renew_before, time_t now, json_t *problems)
{
    check_ctx x = {cert, key_text(cert, "name"), renew_before, now ? now : time(NULL)};
    cs_check_level worst = CS_CHECK_OK, level;
    char line[2048];
    size_t i;

    for (i = 0; i < sizeof(check_rules) / sizeof(check_rules[0]); i++) {
        level = check_rules[i](&x, line, sizeof(line));
        if (level == CS_CHECK_OK)
            continue;
        json_array_append_new(problems, json_string(line));
        worst = level > worst ? level : worst;
    }
    return worst;
}

/* ---- metrics: the Prometheus text format ---- */

/* METRIC_PRESENT: 1 when the key holds an object, 0 when null */
typedef enum { METRIC_INTEGER, METRIC_TIME, METRIC_TIME_OR_ZERO, METRIC_PRESENT } metric_kind;

/* One gauge per certificate, from one key of its document. */
static const struct {
    const char *name, *key, *help;
    metric_kind kind;
} cert_metrics[] = {
    {"certsync_cert_version", "version", "The store's current version (0: none, the fallback)",
     METRIC_INTEGER},
    {"certsync_cert_not_after_seconds", "not_after",
     "When the current version expires, Unix time (absent without a version)", METRIC_TIME},
    {"certsync_sync_last_run_seconds", "last_sync_at", "When the last sync ended (0: never)",
     METRIC_TIME_OR_ZERO},
    {"certsync_sync_last_success_seconds", "last_success_at",
     "When a sync last succeeded, Unix time (0: never)", METRIC_TIME_OR_ZERO},
    {"certsync_sync_consecutive_failures", "consecutive_failures",
     "Failed syncs since the last one that succeeded", METRIC_INTEGER},
    {"certsync_hook_pending", "hook_pending",
     "1 while a failed on-change command waits to run again (see certsync status)", METRIC_PRESENT},
    {"certsync_deploy_pending", "deploy_pending",
     "1 while a deployment to cloud products (deploy =) waits to be retried (see certsync status)",
     METRIC_PRESENT},
};

/* A label value: backslash, double quote and newline escaped. */
static void label_value(FILE *f, const char *v)
{
    for (; v && *v; v++)
        if (*v == '\\' || *v == '"')
            fprintf(f, "\\%c", *v);
        else if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
}

static void family(FILE *f, const char *name, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

static void cert_metric(FILE *f, size_t m, const json_t *cert)
{
    const json_t *v = json_object_get(cert, cert_metrics[m].key);
    long long value = json_integer_value(v);

    if (cert_metrics[m].kind == METRIC_PRESENT)
        value = json_is_object(v);
    else if (cert_metrics[m].kind != METRIC_INTEGER)
        value = (long long)key_time(cert, cert_metrics[m].key);
    if (cert_metrics[m].kind == METRIC_TIME && value == 0)
        return;
    fprintf(f, "%s{name=\"", cert_metrics[m].name);
    label_value(f, key_text(cert, "name"));
    fprintf(f, "\"} %lld\n", value);
}

static void ocsp_metric(FILE *f, const json_t *cert)
{
    const json_t *o = json_object_get(cert, "ocsp");
    const char *st = json_string_value(json_object_get(o, "status"));
    time_t next = key_time(o, "next_update");

    if (next == 0 || st == NULL || strcmp(st, "good") != 0)
        return;
    fputs("certsync_ocsp_next_update_seconds{name=\"", f);
    label_value(f, key_text(cert, "name"));
    fprintf(f, "\"} %lld\n", (long long)next);
}

/* One row per process (nginx: server.workers) or for this process (Apache: server.served). */
static void served_metric(FILE *f, const json_t *cert)
{
    const json_t *srv = json_object_get(cert, CS_STATUS_SERVER_KEY), *w;
    const json_t *rows = json_object_get(srv, "workers");
    size_t i, n = json_is_array(rows) ? json_array_size(rows) : 1;

    for (i = 0; srv && i < n; i++) {
        w = json_is_array(rows) ? json_array_get(rows, i) : json_object_get(srv, "served");
        if (!json_is_object(w))
            continue;
        fputs("certsync_served_version{name=\"", f);
        label_value(f, key_text(cert, "name"));
        fprintf(f, "\",pid=\"%lld\"} %lld\n",
                (long long)json_integer_value(json_object_get(w, "pid")),
                (long long)json_integer_value(json_object_get(w, "version")));
    }
}

cs_rc cs_status_metrics(const json_t *doc, char **out)
{
    const json_t *certs = json_object_get(doc, "certificates"), *c;
    char *text = NULL;
    size_t size = 0, m, i;
    int served = 0;
    FILE *f = open_memstream(&text, &size);

    *out = NULL;
    if (f == NULL)
        return cs_error_set(CS_ENOMEM, "out of memory building the metrics");
    for (m = 0; m < sizeof(cert_metrics) / sizeof(cert_metrics[0]); m++) {
        family(f, cert_metrics[m].name, cert_metrics[m].help);
        json_array_foreach(certs, i, c) cert_metric(f, m, c);
    }
    family(f, "certsync_ocsp_next_update_seconds",
           "When the OCSP staple of the current version expires, Unix time (absent without one)");
    json_array_foreach(certs, i, c) ocsp_metric(f, c);
    json_array_foreach(certs, i, c) served |= json_object_get(c, CS_STATUS_SERVER_KEY) != NULL;
    if (served) {
        family(f, "certsync_served_version",
               "The version each server process serves (0: the fallback)");
        json_array_foreach(certs, i, c) served_metric(f, c);
    }
    if (ferror(f) | fclose(f)) {
        free(text);
        return cs_error_set(CS_ENOMEM, "out of memory building the metrics");
    }
    *out = text;
    return CS_OK;
}
