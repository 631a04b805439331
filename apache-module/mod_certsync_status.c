/*
 * mod_certsync: the certsync-status handler.
 *
 *   <Location /certsync-status>
 *       SetHandler certsync-status
 *       Require ip 127.0.0.1
 *   </Location>
 *
 * JSON by default (or ?format=json), an HTML page with ?format=html, Prometheus
 * metrics with ?format=prometheus; any other format is a 400. The core's status document
 * (cs_status.h: every certificate of certsync.conf, its current version and
 * last sync, the schema of `certsync status --json`), with what only this
 * process knows under "server": what it serves, a version it refused, the
 * watchdog's sync schedule. No key material and no secret is ever shown.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "apr_strings.h"
#include "httpd.h"
#include "ap_mpm.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "util_script.h"

#include "cs_status.h"
#include "cs_status_html.h"

#include "mod_certsync.h"

APLOG_USE_MODULE(certsync);

static json_t *jtext(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

static json_t *served_json(certsync_slot *slot)
{
    certsync_served *o = certsync_served_acquire(slot);
    json_t *j = json_object();

    if (o == NULL)
        return json_null();
    json_object_set_new(j, "version", o->version ? json_integer(o->version) : json_null());
    json_object_set_new(j, "fallback", json_boolean(o->version == 0));
    json_object_set_new(j, "fingerprint_sha256", json_string(o->fingerprint));
    json_object_set_new(j, "not_after", cs_status_time(o->not_after));
    json_object_set_new(j, "since", cs_status_time(o->since));
    json_object_set_new(j, "pid", json_integer(getpid()));
    certsync_served_release(o);
    return j;
}

static json_t *refused_json(certsync_slot *slot)
{
    json_t *j = json_null();

    pthread_rwlock_rdlock(&slot->lock);
    if (slot->rejected_version || slot->rejected_reason[0])
        j = json_pack("{s:o,s:s,s:o}", "version",
                      slot->rejected_version ? json_integer(slot->rejected_version) : json_null(),
                      "reason", slot->rejected_reason, "at", cs_status_time(slot->rejected_at));
    pthread_rwlock_unlock(&slot->lock);
    return j;
}

/* What this process serves against what the store's document says is current. */
static const char *serving_state(json_t *served, json_t *refused, json_t *store)
{
    json_int_t current = json_integer_value(json_object_get(store, "version"));

    if (json_is_true(json_object_get(served, "fallback")))
        return "fallback";
    if (!json_is_null(refused))
        return "new-version-refused";
    if (current && json_integer_value(json_object_get(served, "version")) != current)
        return "changing";
    return "ok";
}

/* The per-process fields of one certificate, under the document's "server" key. */
static json_t *server_cert_json(apr_pool_t *p, certsync_mod *m, const certsync_shared *sh, int i,
                                json_t *store)
{
    certsync_slot *slot = APR_ARRAY_IDX(m->slots, i, certsync_slot *);
    json_t *j = json_object(), *vhosts = json_array();
    json_t *served = served_json(slot), *refused = refused_json(slot);
    int k;

    for (k = 0; k < slot->vhosts->nelts; k++)
        json_array_append_new(vhosts, json_string(APR_ARRAY_IDX(slot->vhosts, k, const char *)));
    json_object_set_new(j, "state", json_string(serving_state(served, refused, store)));
    json_object_set_new(j, "vhosts", vhosts);
    json_object_set_new(j, "served", served);
    json_object_set_new(j, "fallback_reason", jtext(slot->start_reason));
    json_object_set_new(j, "refused", refused);
    if (m->sync)
        json_object_set_new(
            j, "sync",
            json_pack("{s:s,s:o,s:o}", "result", cs_sync_result_name(sh->certs[i].result),
                      "version",
                      sh->certs[i].version ? json_integer(sh->certs[i].version) : json_null(),
                      "reason", jtext(sh->certs[i].reason)));
    /* for servers that load no module: the lines of a static configuration */
    json_object_set_new(j, "include",
                        json_pack("{s:s,s:s}", "SSLCertificateFile",
                                  apr_pstrcat(p, slot->link, "/fullchain.pem", NULL),
                                  "SSLCertificateKeyFile",
                                  apr_pstrcat(p, slot->link, "/privkey.pem", NULL)));
    return j;
}

static json_t *sync_json(const certsync_mod *m, const certsync_shared *sh)
{
    json_t *j = json_object();

    json_object_set_new(j, "enabled", json_boolean(m->sync));
    json_object_set_new(j, "interval_s", json_integer(apr_time_sec(m->sync_interval)));
    if (!m->sync)
        return j;
    json_object_set_new(j, "pid", sh->pid ? json_integer(sh->pid) : json_null());
    json_object_set_new(j, "runs", json_integer(sh->runs));
    json_object_set_new(j, "failures_in_a_row", json_integer(sh->failures));
    json_object_set_new(j, "last_start", cs_status_time(apr_time_sec(sh->last_start)));
    json_object_set_new(j, "last_end", cs_status_time(apr_time_sec(sh->last_end)));
    json_object_set_new(j, "next_run", cs_status_time(apr_time_sec(sh->next_run)));
    json_object_set_new(j, "last_error", jtext(sh->last_error));
    return j;
}

static json_t *server_json(const certsync_mod *m, const certsync_shared *sh)
{
    json_t *j = json_object();
    int generation = 0;

    ap_mpm_query(AP_MPMQ_GENERATION, &generation);
    json_object_set_new(j, "module", json_string("mod_certsync/" CERTSYNC_VERSION));
    json_object_set_new(j, "pid", json_integer(getpid()));
    json_object_set_new(j, "generation", json_integer(generation));
    json_object_set_new(j, "sync", sync_json(m, sh));
    return j;
}

/* The core's document (every [cert] of certsync.conf), with this server's fields added. */
static json_t *status_json(request_rec *r, certsync_mod *m)
{
    certsync_shared *sh = malloc(m->shared_size);
    json_t *doc = NULL, *c;
    size_t k;
    int i;

    if (sh == NULL || cs_status_document(m->cfg, m->store, 0, &doc) != CS_OK) {
        free(sh);
        return NULL;
    }
    certsync_shared_read(m, sh);
    json_object_set_new(doc, CS_STATUS_SERVER_KEY, server_json(m, sh));
    json_array_foreach(json_object_get(doc, "certificates"), k, c)
    {
        const char *name = json_string_value(json_object_get(c, "name"));

        for (i = 0; i < m->slots->nelts; i++)
            if (strcmp(APR_ARRAY_IDX(m->slots, i, certsync_slot *)->name, name) == 0)
                json_object_set_new(c, CS_STATUS_SERVER_KEY,
                                    server_cert_json(r->pool, m, sh, i, c));
    }
    free(sh);
    return doc;
}

/* ---- HTML: the core's page, as nginx's ---- */

static int render_page(request_rec *r, json_t *st)
{
    char *page = NULL;

    if (cs_status_html(st, "Apache", 0, &page) != CS_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "certsync: certsync-status: %s",
                      cs_error_last());
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    ap_set_content_type(r, "text/html; charset=utf-8");
    ap_rputs(page, r);
    free(page);
    return OK;
}

static int render_json(request_rec *r, json_t *st)
{
    char *text = json_dumps(st, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

    if (text == NULL)
        return HTTP_INTERNAL_SERVER_ERROR;
    ap_set_content_type(r, "application/json");
    ap_rputs(text, r);
    ap_rputs("\n", r);
    free(text);
    return OK;
}

/* The core's metrics of the document, with what this process serves. */
static int render_metrics(request_rec *r, json_t *st)
{
    char *text = NULL;

    if (cs_status_metrics(st, &text) != CS_OK) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "certsync: certsync-status: %s",
                      cs_error_last());
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    ap_set_content_type(r, "text/plain; version=0.0.4; charset=utf-8");
    ap_rputs(text, r);
    free(text);
    return OK;
}

/* The ?format= values; the first is the default. */
static const struct {
    const char *name;
    int (*render)(request_rec *r, json_t *st);
} formats[] = {
    {"json", render_json},
    {"html", render_page},
    {"prometheus", render_metrics},
};

/* The index of format in formats (0 for none), or -1. */
static int find_format(const char *format)
{
    size_t i;

    for (i = 0; format && i < sizeof(formats) / sizeof(formats[0]); i++)
        if (strcmp(formats[i].name, format) == 0)
            return (int)i;
    return format ? -1 : 0;
}

int certsync_status_handler(request_rec *r)
{
    certsync_mod *m = certsync_g;
    apr_table_t *args = NULL;
    const char *format;
    json_t *st;
    int f;

    if (r->handler == NULL || strcmp(r->handler, "certsync-status") != 0)
        return DECLINED;
    if (r->method_number != M_GET)
        return HTTP_METHOD_NOT_ALLOWED;
    if (m == NULL || m->shared == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "certsync: certsync-status: mod_certsync is not configured here (no "
                      "CertSyncConfig or CertSyncCertificate)");
        return HTTP_NOT_FOUND;
    }
    ap_args_to_table(r, &args);
    format = args ? apr_table_get(args, "format") : NULL;
    if ((f = find_format(format)) < 0) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "certsync: certsync-status: unknown format '%s', expected json, html or "
                      "prometheus",
                      ap_escape_logitem(r->pool, format));
        return HTTP_BAD_REQUEST;
    }
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    st = status_json(r, m);
    if (st == NULL) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "certsync: certsync-status: %s",
                      cs_error_last()[0] ? cs_error_last() : "out of memory");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    f = formats[f].render(r, st);
    json_decref(st);
    return f;
}
