/*
 * ngx_http_certsync_module: the requests it answers. Validation answers
 * (FILE validation, ACME http-01) come from the store's challenges; the
 * status page is what this nginx serves, as JSON or as HTML for a person,
 * built into nginx buffers.
 */


#include "ngx_http_certsync.h"

#include <jansson.h>


/* a response body under construction: a chain of buffers from r->pool */
typedef struct {
    ngx_pool_t                    *pool;
    ngx_chain_t                   *first;
    ngx_chain_t                  **last;
    ngx_buf_t                     *buf;
    size_t                         len;
    ngx_uint_t                     failed;
} ngx_http_certsync_body_t;


static ngx_int_t ngx_http_certsync_validation_path(ngx_http_request_t *r,
    const char **kind, ngx_str_t *rest);
static ngx_uint_t ngx_http_certsync_token(ngx_str_t *t);
static ngx_int_t ngx_http_certsync_send(ngx_http_request_t *r,
    const char *type, ngx_http_certsync_body_t *body);
static void ngx_http_certsync_body_init(ngx_http_certsync_body_t *body,
    ngx_pool_t *pool);
static void ngx_http_certsync_add(ngx_http_certsync_body_t *body,
    const void *data, size_t len);
static void ngx_http_certsync_printf(ngx_http_certsync_body_t *body,
    const char *fmt, ...);
static int ngx_http_certsync_add_json(const char *buffer, size_t size,
    void *data);
static json_t *ngx_http_certsync_status_json(
    ngx_http_certsync_main_conf_t *mcf);
static void ngx_http_certsync_status_html(ngx_http_certsync_body_t *body,
    json_t *j);


/* ---- validation ---- */

/*
 * GET /.well-known/pki-validation/fileauth.txt and
 * GET /.well-known/acme-challenge/TOKEN for the request's Host, from
 * <store>/challenges/<host>/, where `certsync apply` puts them: read
 * through the store API (no symlink, no FIFO), under the writer's host
 * rule. A small file read, off the handshake path.
 */
ngx_int_t
ngx_http_certsync_validation_handler(ngx_http_request_t *r)
{
    char                           *data, *host, *file;
    size_t                          len;
    ngx_str_t                       rest;
    ngx_int_t                       rc;
    ngx_http_certsync_body_t        body;
    ngx_uint_t                      i, level;
    const char                     *kind;
    ngx_http_certsync_srv_conf_t   *cscf;
    ngx_http_certsync_main_conf_t  *mcf;

    cscf = ngx_http_get_module_srv_conf(r, ngx_http_certsync_module);

    if (!cscf->validation
        || !(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))
        || r != r->main)
    {
        return NGX_DECLINED;
    }

    rc = ngx_http_certsync_validation_path(r, &kind, &rest);
    if (rc != NGX_OK) {
        return rc;
    }

    /* nginx lower-cases the Host already; the rule is the writer's */
    host = ngx_pnalloc(r->pool, r->headers_in.server.len + 1);
    file = ngx_pnalloc(r->pool, rest.len + 1);
    if (host == NULL || file == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < r->headers_in.server.len; i++) {
        host[i] = ngx_tolower(r->headers_in.server.data[i]);
    }

    host[i] = '\0';
    ngx_cpystrn((u_char *) file, rest.data, rest.len + 1);

    if (!cs_challenge_host_valid(host)) {
        return NGX_HTTP_NOT_FOUND;
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_certsync_module);

    if (cs_store_read_challenge(mcf->store, host, kind, file,
                                NGX_HTTP_CERTSYNC_MAX_FILE, &data, &len)
        != CS_OK)
    {
        level = (cs_error_code() == CS_ENOTFOUND) ? NGX_LOG_INFO
                                                  : NGX_LOG_ERR;
        ngx_log_error(level, r->connection->log, 0,
                      "certsync: no %s answer for \"%s\": %s", kind, host,
                      cs_error_last());
        return NGX_HTTP_NOT_FOUND;
    }

    ngx_http_certsync_body_init(&body, r->pool);
    ngx_http_certsync_add(&body, data, len);
    free(data);

    if (body.failed) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "certsync: answered %s for \"%s\"", kind, host);

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_certsync_send(r, "text/plain", &body);

    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


/*
 * Which answer the request asks for: its kind and file (rest of the URI);
 * NGX_DECLINED for other paths, 404 for a token that cannot be one.
 */
static ngx_int_t
ngx_http_certsync_validation_path(ngx_http_request_t *r, const char **kind,
    ngx_str_t *rest)
{
    static ngx_str_t  pki = ngx_string("/.well-known/pki-validation/");
    static ngx_str_t  acme = ngx_string("/.well-known/acme-challenge/");

    if (r->uri.len > pki.len
        && ngx_strncmp(r->uri.data, pki.data, pki.len) == 0)
    {
        rest->data = r->uri.data + pki.len;
        rest->len = r->uri.len - pki.len;

        if (rest->len != sizeof("fileauth.txt") - 1
            || ngx_strncmp(rest->data, "fileauth.txt", rest->len) != 0)
        {
            return NGX_DECLINED;
        }

        *kind = "pki-validation";

    } else if (r->uri.len > acme.len
               && ngx_strncmp(r->uri.data, acme.data, acme.len) == 0)
    {
        rest->data = r->uri.data + acme.len;
        rest->len = r->uri.len - acme.len;

        if (!ngx_http_certsync_token(rest)) {
            return NGX_HTTP_NOT_FOUND;
        }

        *kind = "acme-challenge";

    } else {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* An ACME token is base64url. */
static ngx_uint_t
ngx_http_certsync_token(ngx_str_t *t)
{
    u_char      ch;
    ngx_uint_t  i;

    for (i = 0; i < t->len; i++) {
        ch = t->data[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
              || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
        {
            return 0;
        }
    }

    return t->len > 0 && t->len <= 255;
}


/* ---- the status page ---- */

ngx_int_t
ngx_http_certsync_status_handler(ngx_http_request_t *r)
{
    json_t                         *j;
    ngx_int_t                       rc;
    ngx_str_t                       format;
    ngx_uint_t                      html;
    ngx_http_certsync_body_t        body;
    ngx_http_certsync_main_conf_t  *mcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_certsync_module);

    html = ngx_http_arg(r, (u_char *) "format", 6, &format) == NGX_OK
           && format.len == 4 && ngx_strncmp(format.data, "html", 4) == 0;

    j = ngx_http_certsync_status_json(mcf);
    if (j == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_certsync_body_init(&body, r->pool);

    if (html) {
        ngx_http_certsync_status_html(&body, j);

    } else if (json_dump_callback(j, ngx_http_certsync_add_json, &body,
                                  JSON_INDENT(2))
               != 0)
    {
        body.failed = 1;
    }

    json_decref(j);

    ngx_http_certsync_add(&body, "\n", 1);

    if (body.failed) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_certsync_send(r, html ? "text/html; charset=utf-8"
                                          : "application/json", &body);
}


/* ---- the status document ---- */

static json_t *
ngx_http_certsync_time(time_t t)
{
    char       buf[32];
    struct tm  tm;

    if (t == 0) {
        return json_null();
    }

    gmtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);

    return json_string(buf);
}


static json_t *
ngx_http_certsync_cert_json(ngx_http_certsync_main_conf_t *mcf,
    ngx_http_certsync_cert_t *cert)
{
    char                         fp[65];
    json_t                      *c, *a, *w;
    time_t                       now;
    unsigned                     current;
    ngx_uint_t                   i;
    cs_sync_state                st;
    ngx_http_certsync_use_t    **usep;
    ngx_http_certsync_served_t  *row;

    now = ngx_time();
    c = json_object();

    json_object_set_new(c, "name", json_string((char *) cert->name.data));

    if (cert->bundle) {
        json_object_set_new(c, "version", json_integer(cert->version));
        json_object_set_new(c, "fallback", json_false());
        json_object_set_new(c, "fingerprint_sha256",
                            json_string(cert->fingerprint));

        a = json_array();
        for (i = 0; cert->names && cert->names[i]; i++) {
            json_array_append_new(a, json_string(cert->names[i]));
        }

        json_object_set_new(c, "names", a);
        json_object_set_new(c, "not_after",
                            ngx_http_certsync_time(cert->not_after));
        json_object_set_new(c, "days_left",
                            json_integer((cert->not_after - now) / 86400));

    } else {
        usep = cert->uses.elts;
        cs_bundle_fingerprint(usep[0]->fallback, fp);

        json_object_set_new(c, "version", json_null());
        json_object_set_new(c, "fallback", json_true());
        json_object_set_new(c, "fingerprint_sha256", json_string(fp));
    }

    json_object_set_new(c, "loaded_at",
                        ngx_http_certsync_time(cert->loaded_at));

    if (cs_store_current(mcf->store, cert->cc->name, &current) == CS_OK) {
        json_object_set_new(c, "store_version", json_integer(current));

    } else {
        json_object_set_new(c, "store_version", json_null());
    }

    /* what every worker serves, from the status zone */
    a = json_array();

    for (i = 0; mcf->sh && i < mcf->nworkers; i++) {
        row = &mcf->sh->served[cert->index * mcf->nworkers + i];

        if (row->pid == 0) {
            continue;
        }

        w = json_object();
        json_object_set_new(w, "worker", json_integer(i));
        json_object_set_new(w, "pid", json_integer(row->pid));
        json_object_set_new(w, "version", row->version
                                          ? json_integer(row->version)
                                          : json_null());
        json_object_set_new(w, "fallback", json_boolean(row->version == 0));
        json_object_set_new(w, "loaded_at",
                            ngx_http_certsync_time(row->loaded_at));
        json_array_append_new(a, w);
    }

    json_object_set_new(c, "workers", a);

    if (cs_store_sync_state(mcf->store, cert->cc->name, &st) == CS_OK) {
        json_object_set_new(c, "last_sync",
                            json_string(cs_sync_result_name(st.result)));
        json_object_set_new(c, "last_sync_at", ngx_http_certsync_time(st.at));
        json_object_set_new(c, "last_success_at",
                            ngx_http_certsync_time(st.last_success));
        json_object_set_new(c, "last_error", st.error[0]
                                             ? json_string(st.error)
                                             : json_null());

    } else {
        /* a state.json refused by the store (a symlink, a FIFO): say so */
        json_object_set_new(c, "last_sync", json_string("unreadable"));
        json_object_set_new(c, "last_error", json_string(cs_error_last()));
    }

    return c;
}


static json_t *
ngx_http_certsync_status_json(ngx_http_certsync_main_conf_t *mcf)
{
    json_t                     *j, *s, *a;
    uint64_t                    next;
    ngx_uint_t                  i;
    ngx_http_certsync_shm_t    *sh;
    ngx_http_certsync_cert_t  **certp;

    j = json_object();
    if (j == NULL) {
        return NULL;
    }

    json_object_set_new(j, "pid", json_integer(ngx_pid));
    json_object_set_new(j, "config", mcf->cfg ? json_string(mcf->cfg->path)
                                              : json_null());

    s = json_object();
    sh = mcf->sh;

    json_object_set_new(s, "enabled", json_boolean(mcf->sync == 1));
    json_object_set_new(s, "interval_s",
                        json_integer(mcf->sync_interval / 1000));

    if (mcf->sync == 1 && sh) {
        next = sh->next_sync;
        json_object_set_new(s, "running_pid", sh->lock
                                              ? json_integer(sh->lock)
                                              : json_null());
        json_object_set_new(s, "next_at",
                            ngx_http_certsync_time((time_t) (next / 1000)));
        json_object_set_new(s, "failures_in_a_row",
                            json_integer(sh->failures));
        json_object_set_new(s, "last_run_at",
                            ngx_http_certsync_time(sh->last_end));
        json_object_set_new(s, "last_success_at",
                            ngx_http_certsync_time(sh->last_success));
        json_object_set_new(s, "last_installed",
                            json_integer(sh->last_installed));
        json_object_set_new(s, "last_failed", json_integer(sh->last_failed));
        json_object_set_new(s, "last_error", sh->last_error[0]
                                             ? json_string(sh->last_error)
                                             : json_null());
    }

    json_object_set_new(j, "sync", s);

    a = json_array();
    certp = mcf->certs.elts;

    for (i = 0; i < mcf->certs.nelts; i++) {
        json_array_append_new(a, ngx_http_certsync_cert_json(mcf, certp[i]));
    }

    json_object_set_new(j, "certificates", a);

    return j;
}


/* ---- response bodies in nginx buffers ---- */

static ngx_int_t
ngx_http_certsync_send(ngx_http_request_t *r, const char *type,
    ngx_http_certsync_body_t *body)
{
    ngx_int_t  rc;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = body->len;
    r->headers_out.content_type.data = (u_char *) type;
    r->headers_out.content_type.len = ngx_strlen(type);
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only
        || body->first == NULL)
    {
        return rc;
    }

    body->buf->last_buf = (r == r->main) ? 1 : 0;
    body->buf->last_in_chain = 1;

    return ngx_http_output_filter(r, body->first);
}


static void
ngx_http_certsync_body_init(ngx_http_certsync_body_t *body, ngx_pool_t *pool)
{
    ngx_memzero(body, sizeof(ngx_http_certsync_body_t));

    body->pool = pool;
    body->last = &body->first;
}


/* Append to the body; a full buffer is followed by a new one. */
static void
ngx_http_certsync_add(ngx_http_certsync_body_t *body, const void *data,
    size_t len)
{
    size_t        n;
    const u_char *p;
    ngx_chain_t  *cl;

    p = data;

    while (len && !body->failed) {

        if (body->buf == NULL || body->buf->last == body->buf->end) {
            cl = ngx_alloc_chain_link(body->pool);
            body->buf = ngx_create_temp_buf(body->pool, ngx_max(len, 4096));

            if (cl == NULL || body->buf == NULL) {
                body->failed = 1;
                return;
            }

            cl->buf = body->buf;
            cl->next = NULL;
            *body->last = cl;
            body->last = &cl->next;
        }

        n = ngx_min(len, (size_t) (body->buf->end - body->buf->last));
        body->buf->last = ngx_cpymem(body->buf->last, p, n);
        body->len += n;
        p += n;
        len -= n;
    }
}


/* ngx_sprintf() formats (%s, %d, %V, ...) into the body. */
static void
ngx_http_certsync_printf(ngx_http_certsync_body_t *body, const char *fmt, ...)
{
    u_char   *last;
    u_char    buf[1024];
    va_list   args;

    va_start(args, fmt);
    last = ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
    va_end(args);

    ngx_http_certsync_add(body, buf, last - buf);
}


/* jansson writes its JSON through this, piece by piece. */
static int
ngx_http_certsync_add_json(const char *buffer, size_t size, void *data)
{
    ngx_http_certsync_body_t *body = data;

    ngx_http_certsync_add(body, buffer, size);

    return body->failed ? -1 : 0;
}


/* ---- the status page for a person ---- */

static void
ngx_http_certsync_html_text(ngx_http_certsync_body_t *body, const char *s)
{
    size_t       n;
    const char  *esc;

    while (s && *s) {
        n = strcspn(s, "<>&\"");
        ngx_http_certsync_add(body, s, n);
        s += n;

        switch (*s) {
        case '<':
            esc = "&lt;";
            break;
        case '>':
            esc = "&gt;";
            break;
        case '&':
            esc = "&amp;";
            break;
        case '"':
            esc = "&quot;";
            break;
        default:
            return;
        }

        ngx_http_certsync_add(body, esc, ngx_strlen(esc));
        s++;
    }
}


static void
ngx_http_certsync_html_row(ngx_http_certsync_body_t *body, const char *key,
    json_t *v)
{
    size_t   i;
    json_t  *e;

    ngx_http_certsync_printf(body, "<tr><th>%s</th><td>", key);

    if (json_is_string(v)) {
        ngx_http_certsync_html_text(body, json_string_value(v));

    } else if (json_is_integer(v)) {
        ngx_http_certsync_printf(body, "%L", (int64_t) json_integer_value(v));

    } else if (json_is_array(v)) {
        json_array_foreach(v, i, e) {
            ngx_http_certsync_printf(body, "%s", i ? ", " : "");
            ngx_http_certsync_html_text(body, json_string_value(e));
        }

    } else {
        ngx_http_certsync_printf(body, "&mdash;");
    }

    ngx_http_certsync_printf(body, "</td></tr>\n");
}


static const char  ngx_http_certsync_html_head[] =
    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
    "<title>certsync: certificates of this nginx</title>\n<style>"
    "body{font-family:sans-serif;margin:2em;background:#f5f6f8}"
    ".card{background:#fff;border-radius:6px;padding:1em 1.5em;"
    "margin:0 0 1em;box-shadow:0 1px 3px #0002;max-width:60em}"
    ".badge{padding:.2em .6em;border-radius:1em;color:#fff;"
    "font-size:.8em;margin-left:.6em}"
    ".ok{background:#2a8}.warn{background:#d90}.bad{background:#c33}"
    "th{text-align:left;padding-right:1.5em;color:#555;font-weight:"
    "normal;vertical-align:top}td{font-family:monospace}"
    "</style></head><body>\n<h1>Certificates of this nginx</h1>\n";


/* The badge of a certificate: its state and its colour. */
static void
ngx_http_certsync_html_state(json_t *c, const char **state, const char **cls)
{
    long long  days;

    days = json_integer_value(json_object_get(c, "days_left"));

    if (json_is_true(json_object_get(c, "fallback"))) {
        *state = "fallback: no version yet";
        *cls = "bad";

    } else if (days < 0) {
        *state = "expired";
        *cls = "bad";

    } else if (json_is_string(json_object_get(c, "last_error"))) {
        *state = "last sync failed";
        *cls = "warn";

    } else if (days < 30) {
        *state = "expires soon";
        *cls = "warn";

    } else {
        *state = "ok";
        *cls = "ok";
    }
}


static void
ngx_http_certsync_html_worker(ngx_http_certsync_body_t *body, json_t *w)
{
    json_t  *v;

    v = json_object_get(w, "version");

    ngx_http_certsync_printf(body, "<tr><th>worker %L (pid %L)</th><td>",
                     (int64_t) json_integer_value(json_object_get(w, "worker")),
                     (int64_t) json_integer_value(json_object_get(w, "pid")));

    if (json_is_integer(v)) {
        ngx_http_certsync_printf(body, "v%L", (int64_t) json_integer_value(v));

    } else {
        ngx_http_certsync_printf(body, "fallback");
    }

    ngx_http_certsync_printf(body, ", loaded ");
    ngx_http_certsync_html_text(body,
                     json_string_value(json_object_get(w, "loaded_at")));
    ngx_http_certsync_printf(body, "</td></tr>\n");
}


/* A card per certificate (the console's card view). */
static void
ngx_http_certsync_html_cert(ngx_http_certsync_body_t *body, json_t *c)
{
    size_t       k;
    json_t      *w;
    const char  *state, *cls;

    static const char  *rows[][2] = {
        { "version served", "version" },
        { "version in the store", "store_version" },
        { "names", "names" },
        { "not after", "not_after" },
        { "days left", "days_left" },
        { "SHA-256", "fingerprint_sha256" },
        { "last sync", "last_sync" },
        { "last sync at", "last_sync_at" },
        { "last error", "last_error" },
    };

    ngx_http_certsync_html_state(c, &state, &cls);

    ngx_http_certsync_printf(body, "<div class=\"card\"><h2>");
    ngx_http_certsync_html_text(body,
                                json_string_value(json_object_get(c, "name")));
    ngx_http_certsync_printf(body, "<span class=\"badge %s\">%s</span></h2>\n"
                             "<table>\n", cls, state);

    for (k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
        ngx_http_certsync_html_row(body, rows[k][0],
                                   json_object_get(c, rows[k][1]));
    }

    json_array_foreach(json_object_get(c, "workers"), k, w) {
        ngx_http_certsync_html_worker(body, w);
    }

    ngx_http_certsync_printf(body, "</table></div>\n");
}


static void
ngx_http_certsync_status_html(ngx_http_certsync_body_t *body, json_t *j)
{
    size_t   i;
    json_t  *c, *sync;

    ngx_http_certsync_add(body, ngx_http_certsync_html_head,
                          sizeof(ngx_http_certsync_html_head) - 1);

    json_array_foreach(json_object_get(j, "certificates"), i, c) {
        ngx_http_certsync_html_cert(body, c);
    }

    sync = json_object_get(j, "sync");

    ngx_http_certsync_printf(body, "<div class=\"card\"><h2>Sync inside "
                             "nginx</h2><table>\n");
    c = json_string(json_is_true(json_object_get(sync, "enabled"))
                    ? "yes" : "no (certsync sync runs outside nginx)");
    ngx_http_certsync_html_row(body, "enabled", c);
    json_decref(c);
    ngx_http_certsync_html_row(body, "interval (s)",
                               json_object_get(sync, "interval_s"));
    ngx_http_certsync_html_row(body, "last run",
                               json_object_get(sync, "last_run_at"));
    ngx_http_certsync_html_row(body, "next run",
                               json_object_get(sync, "next_at"));
    ngx_http_certsync_html_row(body, "failures in a row",
                               json_object_get(sync, "failures_in_a_row"));
    ngx_http_certsync_html_row(body, "last error",
                               json_object_get(sync, "last_error"));
    ngx_http_certsync_printf(body, "</table></div>\n</body></html>");
}
