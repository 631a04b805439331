/*
 * mod_certsync: the certsync-status handler.
 *
 *   <Location /certsync-status>
 *       SetHandler certsync-status
 *       Require ip 127.0.0.1
 *   </Location>
 *
 * JSON by default, an HTML page with ?format=html. Per certificate: what this
 * process serves, what the store's current version is, a version that was
 * refused, the last sync (from the store, whoever ran it) and this server's
 * own sync schedule. No key material and no secret is ever shown.
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

#include "mod_certsync.h"

APLOG_USE_MODULE(certsync);

static json_t *jtime(time_t t)
{
    char buf[32];

    if (t == 0)
        return json_null();
    certsync_iso_time(t, buf, sizeof(buf));
    return json_string(buf);
}

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
    json_object_set_new(j, "not_after", jtime(o->not_after));
    json_object_set_new(j, "since", jtime(o->since));
    json_object_set_new(j, "pid", json_integer(getpid()));
    certsync_served_release(o);
    return j;
}

static json_t *store_json(certsync_mod *m, const certsync_slot *slot, unsigned *version)
{
    cs_cert_info info;
    json_t *j, *names;
    size_t i;

    *version = 0;
    if (cs_store_info(m->store, slot->name, 0, &info) != CS_OK)
        return json_pack("{s:n,s:s}", "version", "error", cs_error_last());
    *version = info.version;
    names = json_array();
    for (i = 0; i < info.n_names; i++)
        json_array_append_new(names, json_string(info.names[i]));
    j = json_object();
    json_object_set_new(j, "version", json_integer(info.version));
    json_object_set_new(j, "fingerprint_sha256", json_string(info.fingerprint));
    json_object_set_new(j, "serial", json_string(info.serial));
    json_object_set_new(j, "provider", json_string(info.provider));
    json_object_set_new(j, "names", names);
    json_object_set_new(j, "not_before", jtime(info.not_before));
    json_object_set_new(j, "not_after", jtime(info.not_after));
    json_object_set_new(j, "days_left", json_integer((info.not_after - time(NULL)) / 86400));
    cs_cert_info_clear(&info);
    return j;
}

static json_t *last_sync_json(certsync_mod *m, const certsync_slot *slot)
{
    cs_sync_state st;

    /* a state.json refused by the store (a symlink, a FIFO): say so */
    if (cs_store_sync_state(m->store, slot->name, &st) != CS_OK)
        return json_pack("{s:s,s:s}", "result", "unreadable", "error", cs_error_last());
    return json_pack("{s:s,s:o,s:o,s:o}", "result", cs_sync_result_name(st.result), "at",
                     jtime(st.at), "last_success", jtime(st.last_success), "error",
                     jtext(st.error));
}

static json_t *cert_json(apr_pool_t *p, certsync_mod *m, const certsync_shared *sh, int i)
{
    certsync_slot *slot = APR_ARRAY_IDX(m->slots, i, certsync_slot *);
    json_t *j = json_object(), *vhosts = json_array(), *served, *rejected = json_null();
    unsigned store_version;
    const char *state;
    int k;

    for (k = 0; k < slot->vhosts->nelts; k++)
        json_array_append_new(vhosts, json_string(APR_ARRAY_IDX(slot->vhosts, k, const char *)));
    served = served_json(slot);
    pthread_rwlock_rdlock(&slot->lock);
    if (slot->rejected_version || slot->rejected_reason[0])
        rejected =
            json_pack("{s:o,s:s,s:o}", "version",
                      slot->rejected_version ? json_integer(slot->rejected_version) : json_null(),
                      "reason", slot->rejected_reason, "at", jtime(slot->rejected_at));
    pthread_rwlock_unlock(&slot->lock);

    json_object_set_new(j, "name", json_string(slot->name));
    json_object_set_new(j, "vhosts", vhosts);
    json_object_set_new(j, "store", store_json(m, slot, &store_version));
    if (json_is_true(json_object_get(served, "fallback")))
        state = "fallback";
    else if (!json_is_null(rejected))
        state = "new-version-refused";
    else if (store_version &&
             json_integer_value(json_object_get(served, "version")) != store_version)
        state = "changing";
    else
        state = "ok";
    json_object_set_new(j, "state", json_string(state));
    json_object_set_new(j, "served", served);
    json_object_set_new(j, "fallback_reason", jtext(slot->start_reason));
    json_object_set_new(j, "refused", rejected);
    json_object_set_new(j, "last_sync", last_sync_json(m, slot));
    if (m->sync)
        json_object_set_new(
            j, "server_sync",
            json_pack("{s:s,s:o,s:o}", "result", cs_sync_result_name(sh->certs[i].result),
                      "version",
                      sh->certs[i].version ? json_integer(sh->certs[i].version) : json_null(),
                      "reason", jtext(sh->certs[i].reason)));
    /* for servers that load no module: the lines of a static configuration */
    json_object_set_new(j, "apache_include",
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
    json_object_set_new(j, "last_start", jtime(apr_time_sec(sh->last_start)));
    json_object_set_new(j, "last_end", jtime(apr_time_sec(sh->last_end)));
    json_object_set_new(j, "next_run", jtime(apr_time_sec(sh->next_run)));
    json_object_set_new(j, "last_error", jtext(sh->last_error));
    return j;
}

static json_t *status_json(request_rec *r, certsync_mod *m)
{
    certsync_shared *sh = malloc(m->shared_size);
    json_t *j = json_object(), *certs = json_array();
    int i, generation = 0;

    certsync_shared_read(m, sh);
    ap_mpm_query(AP_MPMQ_GENERATION, &generation);
    json_object_set_new(j, "module", json_string("mod_certsync/" CERTSYNC_VERSION));
    json_object_set_new(j, "pid", json_integer(getpid()));
    json_object_set_new(j, "generation", json_integer(generation));
    json_object_set_new(j, "config", json_string(m->config_path));
    json_object_set_new(j, "store", json_string(cs_store_path(m->store)));
    json_object_set_new(j, "sync", sync_json(m, sh));
    for (i = 0; i < m->slots->nelts; i++)
        json_array_append_new(certs, cert_json(r->pool, m, sh, i));
    json_object_set_new(j, "certificates", certs);
    free(sh);
    return j;
}

/* ---- HTML ---- */

static const char *h(request_rec *r, json_t *v)
{
    char *text;
    const char *out;

    if (v == NULL || json_is_null(v))
        return "-";
    if (json_is_string(v))
        return ap_escape_html(r->pool, json_string_value(v));
    text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    out = ap_escape_html(r->pool, text ? text : "?");
    free(text);
    return out;
}

static void render_html(request_rec *r, json_t *st)
{
    json_t *c, *sync = json_object_get(st, "sync");
    size_t i;

    ap_set_content_type(r, "text/html; charset=utf-8");
    ap_rputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>certsync status</title>"
             "<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:4px 8px;"
             "text-align:left;vertical-align:top}table{border-collapse:collapse}"
             ".bad{color:#b00}code{font-size:90%}</style></head><body>\n",
             r);
    ap_rprintf(r,
               "<h1>certsync</h1>\n<p>%s, process %s, generation %s; config <code>%s</code>, "
               "store <code>%s</code></p>\n",
               h(r, json_object_get(st, "module")), h(r, json_object_get(st, "pid")),
               h(r, json_object_get(st, "generation")), h(r, json_object_get(st, "config")),
               h(r, json_object_get(st, "store")));
    ap_rputs("<table>\n<tr><th>certificate</th><th>state</th><th>served here</th>"
             "<th>store current</th><th>not after</th><th>last sync</th><th>problem</th></tr>\n",
             r);
    json_array_foreach(json_object_get(st, "certificates"), i, c)
    {
        json_t *served = json_object_get(c, "served"), *store = json_object_get(c, "store");
        json_t *last = json_object_get(c, "last_sync"), *refused = json_object_get(c, "refused");
        const char *state = json_string_value(json_object_get(c, "state"));
        const char *problem = "";

        if (!json_is_null(refused))
            problem = h(r, json_object_get(refused, "reason"));
        else if (json_is_true(json_object_get(served, "fallback")))
            problem = h(r, json_object_get(c, "fallback_reason"));
        else if (json_is_string(json_object_get(last, "error")))
            problem = h(r, json_object_get(last, "error"));
        ap_rprintf(r,
                   "<tr><td><b>%s</b><br>%s</td><td class=\"%s\">%s</td>"
                   "<td>v%s<br><code>%s</code></td><td>v%s</td><td>%s</td><td>%s %s</td>"
                   "<td class=\"bad\">%s</td></tr>\n",
                   h(r, json_object_get(c, "name")), h(r, json_object_get(c, "vhosts")),
                   strcmp(state, "ok") ? "bad" : "", ap_escape_html(r->pool, state),
                   h(r, json_object_get(served, "version")),
                   h(r, json_object_get(served, "fingerprint_sha256")),
                   h(r, json_object_get(store, "version")),
                   h(r, json_object_get(store, "not_after")), h(r, json_object_get(last, "result")),
                   h(r, json_object_get(last, "at")), problem);
    }
    ap_rputs("</table>\n", r);
    if (json_is_true(json_object_get(sync, "enabled")))
        ap_rprintf(r,
                   "<p>Sync in the server every %s s: %s run(s), last %s, next %s, failures in a "
                   "row %s <span class=\"bad\">%s</span></p>\n",
                   h(r, json_object_get(sync, "interval_s")), h(r, json_object_get(sync, "runs")),
                   h(r, json_object_get(sync, "last_end")), h(r, json_object_get(sync, "next_run")),
                   h(r, json_object_get(sync, "failures_in_a_row")),
                   json_is_string(json_object_get(sync, "last_error"))
                       ? h(r, json_object_get(sync, "last_error"))
                       : "");
    else
        ap_rputs("<p>Sync in the server: off (CertSyncSync on, or <code>certsync sync</code> "
                 "from cron)</p>\n",
                 r);
    ap_rputs("</body></html>\n", r);
}

int certsync_status_handler(request_rec *r)
{
    certsync_mod *m = certsync_g;
    apr_table_t *args = NULL;
    const char *format;
    json_t *st;
    char *text;

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
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    st = status_json(r, m);
    if (format && strcmp(format, "html") == 0) {
        render_html(r, st);
    } else {
        ap_set_content_type(r, "application/json");
        text = json_dumps(st, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (text) {
            ap_rputs(text, r);
            ap_rputs("\n", r);
        }
        free(text);
    }
    json_decref(st);
    return OK;
}
