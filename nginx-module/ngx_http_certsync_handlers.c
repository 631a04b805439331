/*
 * ngx_http_certsync_module: the requests it answers. Validation answers
 * (FILE validation, ACME http-01) come from the store's challenges; the
 * status page is what this nginx serves, as JSON, as HTML for a person or
 * as Prometheus metrics, built into nginx buffers.
 */


#include "ngx_http_certsync.h"

#include <jansson.h>

#include "cs_challenge.h"
#include "cs_serve.h"
#include "cs_status.h"
#include "cs_status_html.h"


/* a response body under construction: a chain of buffers from r->pool */
typedef struct {
    ngx_pool_t                    *pool;
    ngx_chain_t                   *first;
    ngx_chain_t                  **last;
    ngx_buf_t                     *buf;
    size_t                         len;
    ngx_uint_t                     failed;
} ngx_http_certsync_body_t;


static ngx_int_t ngx_http_certsync_validation(ngx_http_request_t *r);
static ngx_int_t ngx_http_certsync_unavailable(ngx_http_request_t *r,
    ngx_http_certsync_srv_conf_t *cscf);
static ngx_uint_t ngx_http_certsync_is_status(ngx_http_request_t *r);
static ngx_int_t ngx_http_certsync_send(ngx_http_request_t *r,
    const char *type, ngx_http_certsync_body_t *body);
static void ngx_http_certsync_body_init(ngx_http_certsync_body_t *body,
    ngx_pool_t *pool);
static void ngx_http_certsync_add(ngx_http_certsync_body_t *body,
    const void *data, size_t len);
static int ngx_http_certsync_add_json(const char *buffer, size_t size,
    void *data);
static json_t *ngx_http_certsync_status_json(
    ngx_http_certsync_main_conf_t *mcf);
static void ngx_http_certsync_status_html(ngx_http_certsync_body_t *body,
    json_t *j);
static void ngx_http_certsync_status_plain_json(ngx_http_certsync_body_t *body,
    json_t *j);
static void ngx_http_certsync_status_metrics(ngx_http_certsync_body_t *body,
    json_t *j);


/* the status page's ?format= values; the first is the default */
typedef struct {
    ngx_str_t                      name;
    const char                    *type;
    void                         (*render)(ngx_http_certsync_body_t *body,
                                           json_t *j);
} ngx_http_certsync_format_t;


static ngx_http_certsync_format_t  ngx_http_certsync_formats[] = {
    { ngx_string("json"), "application/json",
      ngx_http_certsync_status_plain_json },
    { ngx_string("html"), "text/html; charset=utf-8",
      ngx_http_certsync_status_html },
    { ngx_string("prometheus"), "text/plain; version=0.0.4; charset=utf-8",
      ngx_http_certsync_status_metrics },
    { ngx_null_string, NULL, NULL }
};


/* ---- validation answers, and the 503 of a fallback ---- */

/*
 * In the post-read phase, before a "return 301" of the server can hide it:
 * a validation request is answered (or 404), and a server that serves only
 * the self-signed fallback of a certificate answers 503 with Retry-After to
 * everything but validation answers and certsync_status locations.
 */
ngx_int_t
ngx_http_certsync_post_read_handler(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_http_certsync_srv_conf_t  *cscf;

    if (r != r->main) {
        return NGX_DECLINED;
    }

    cscf = ngx_http_get_module_srv_conf(r, ngx_http_certsync_module);

    if (cscf->validation && (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        rc = ngx_http_certsync_validation(r);
        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    return ngx_http_certsync_unavailable(r, cscf);
}


/*
 * GET|HEAD /.well-known/pki-validation/fileauth.txt and
 * /.well-known/acme-challenge/TOKEN, mapped by the core's one rule
 * (cs_challenge_map, on nginx's normalized URI: a "../" is resolved before,
 * so nothing leaves the store) and read through the store API (no symlink,
 * no FIFO). A small file read, off the handshake path.
 */
static ngx_int_t
ngx_http_certsync_validation(ngx_http_request_t *r)
{
    char                           *data;
    size_t                          len;
    ngx_int_t                       rc;
    ngx_uint_t                      level;
    cs_challenge                    ch;
    cs_challenge_verdict            verdict;
    ngx_http_certsync_body_t        body;
    ngx_http_certsync_main_conf_t  *mcf;

    verdict = cs_challenge_map((char *) r->headers_in.server.data,
                               r->headers_in.server.len, (char *) r->uri.data,
                               r->uri.len, &ch);

    if (verdict == CS_CHALLENGE_NOT_OURS) {
        return NGX_DECLINED;
    }

    if (verdict == CS_CHALLENGE_REFUSED) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "certsync: 404: \"%V\" for host \"%V\" cannot be a "
                      "validation answer", &r->uri, &r->headers_in.server);
        return NGX_HTTP_NOT_FOUND;
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_certsync_module);

    if (cs_store_read_challenge(mcf->store, ch.host, ch.kind, ch.file,
                                NGX_HTTP_CERTSYNC_MAX_FILE, &data, &len)
        != CS_OK)
    {
        level = (cs_error_code() == CS_ENOTFOUND) ? NGX_LOG_INFO
                                                  : NGX_LOG_ERR;
        ngx_log_error(level, r->connection->log, 0,
                      "certsync: 404: no %s answer for \"%s\": %s", ch.kind,
                      ch.host, cs_error_last());
        return NGX_HTTP_NOT_FOUND;
    }

    ngx_http_certsync_body_init(&body, r->pool);
    ngx_http_certsync_add(&body, data, len);
    free(data);

    if (body.failed) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "certsync: answered %s for \"%s\"", ch.kind, ch.host);

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_certsync_send(r, "text/plain", &body);

    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


/* 503 + Retry-After over TLS while a certificate of the server is a fallback. */
static ngx_int_t
ngx_http_certsync_unavailable(ngx_http_request_t *r,
    ngx_http_certsync_srv_conf_t *cscf)
{
    ngx_uint_t                 i;
    ngx_table_elt_t           *h;
    ngx_http_certsync_use_t   *use;

    if (r->connection->ssl == NULL || ngx_http_certsync_is_status(r)) {
        return NGX_DECLINED;
    }

    use = cscf->uses.elts;

    for (i = 0; i < cscf->uses.nelts; i++) {
        if (use[i].cert->bundle == NULL) {
            break;
        }
    }

    if (i == cscf->uses.nelts) {
        return NGX_DECLINED;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "certsync: 503: \"%V\" has no usable version yet (%s); "
                  "serving the self-signed fallback", &use[i].cert->name,
                  use[i].cert->fallback_reason);

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Retry-After");
    h->value.data = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    if (h->value.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->value.len = ngx_sprintf(h->value.data, "%d", CS_SERVE_RETRY_AFTER_S)
                   - h->value.data;

    return NGX_HTTP_SERVICE_UNAVAILABLE;
}


/* A request for a certsync_status location is answered even then. */
static ngx_uint_t
ngx_http_certsync_is_status(ngx_http_request_t *r)
{
    ngx_uint_t                      i;
    ngx_http_core_loc_conf_t      **loc;
    ngx_http_certsync_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_certsync_module);
    loc = mcf->status_locs.elts;

    for (i = 0; i < mcf->status_locs.nelts; i++) {
        if (loc[i]->exact_match ? (r->uri.len == loc[i]->name.len)
                                : (r->uri.len >= loc[i]->name.len))
        {
            if (ngx_strncmp(r->uri.data, loc[i]->name.data, loc[i]->name.len)
                == 0)
            {
                return 1;
            }
        }
    }

    return 0;
}


/* ---- the status page ---- */

ngx_int_t
ngx_http_certsync_status_handler(ngx_http_request_t *r)
{
    json_t                         *j;
    ngx_int_t                       rc;
    ngx_str_t                       arg;
    ngx_http_certsync_body_t        body;
    ngx_http_certsync_format_t     *f;
    ngx_http_certsync_main_conf_t  *mcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_certsync_module);

    f = ngx_http_certsync_formats;

    if (ngx_http_arg(r, (u_char *) "format", 6, &arg) == NGX_OK) {
        for ( /* void */ ; f->render; f++) {
            if (f->name.len == arg.len
                && ngx_strncmp(f->name.data, arg.data, arg.len) == 0)
            {
                break;
            }
        }

        if (f->render == NULL) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "certsync_status: unknown format \"%V\", "
                          "expected json, html or prometheus", &arg);
            return NGX_HTTP_BAD_REQUEST;
        }
    }

    j = ngx_http_certsync_status_json(mcf);
    if (j == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_certsync_body_init(&body, r->pool);

    f->render(&body, j);

    json_decref(j);

    if (body.failed) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_certsync_send(r, f->type, &body);
}


static void
ngx_http_certsync_status_plain_json(ngx_http_certsync_body_t *body, json_t *j)
{
    if (json_dump_callback(j, ngx_http_certsync_add_json, body,
                           JSON_INDENT(2))
        != 0)
    {
        body->failed = 1;
    }

    ngx_http_certsync_add(body, "\n", 1);
}


/* The core's metrics of the document, with what each worker serves. */
static void
ngx_http_certsync_status_metrics(ngx_http_certsync_body_t *body, json_t *j)
{
    char  *text;

    if (cs_status_metrics(j, &text) != CS_OK) {
        body->failed = 1;
        return;
    }

    ngx_http_certsync_add(body, text, ngx_strlen(text));

    free(text);
}


/* ---- the status document: the core's, with this nginx's fields ---- */

static json_t *
ngx_http_certsync_served_json(ngx_http_certsync_cert_t *cert)
{
    char                       fp[65];
    json_t                    *j;
    ngx_http_certsync_use_t  **usep;

    j = json_object();
    usep = cert->uses.elts;

    if (cert->bundle == NULL) {
        cs_bundle_fingerprint(usep[0]->fallback, fp);
    }

    json_object_set_new(j, "version", cert->bundle ? json_integer(cert->version)
                                                   : json_null());
    json_object_set_new(j, "fallback", json_boolean(cert->bundle == NULL));
    json_object_set_new(j, "fingerprint_sha256",
                        json_string(cert->bundle ? cert->fingerprint : fp));
    json_object_set_new(j, "not_after", cs_status_time(cert->bundle
                                        ? cert->not_after
                                        : cs_bundle_not_after(usep[0]->fallback)));
    json_object_set_new(j, "since", cs_status_time(cert->loaded_at));
    json_object_set_new(j, "pid", json_integer(ngx_pid));

    return j;
}


/* What every worker serves, from the status zone. */
static json_t *
ngx_http_certsync_workers_json(ngx_http_certsync_main_conf_t *mcf,
    ngx_http_certsync_cert_t *cert)
{
    json_t                      *a, *w;
    ngx_uint_t                   i;
    ngx_http_certsync_served_t  *row;

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
        json_object_set_new(w, "since", cs_status_time(row->loaded_at));
        json_array_append_new(a, w);
    }

    return a;
}


/* The per-process fields of one certificate, under its "server" key. */
static json_t *
ngx_http_certsync_cert_json(ngx_http_certsync_main_conf_t *mcf,
    ngx_http_certsync_cert_t *cert, json_t *c)
{
    json_t       *j, *refused;
    json_int_t    current;
    const char   *state;

    current = json_integer_value(json_object_get(c, "version"));

    refused = cert->refused_at
              ? json_pack("{s:o,s:s,s:o}", "version",
                          cert->refused_version
                          ? json_integer(cert->refused_version) : json_null(),
                          "reason", cert->refused_reason,
                          "at", cs_status_time(cert->refused_at))
              : json_null();

    state = cert->bundle == NULL ? "fallback"
            : cert->refused_at ? "new-version-refused"
            : (current && current != cert->version) ? "changing" : "ok";

    j = json_object();
    json_object_set_new(j, "state", json_string(state));
    json_object_set_new(j, "served", ngx_http_certsync_served_json(cert));
    json_object_set_new(j, "workers", ngx_http_certsync_workers_json(mcf, cert));
    json_object_set_new(j, "fallback_reason", cert->bundle
                                              ? json_null()
                                              : json_string(cert->fallback_reason));
    json_object_set_new(j, "refused", refused);

    return j;
}


static json_t *
ngx_http_certsync_sync_json(ngx_http_certsync_main_conf_t *mcf)
{
    json_t                   *s;
    ngx_http_certsync_shm_t  *sh;

    s = json_object();
    sh = mcf->sh;

    json_object_set_new(s, "enabled", json_boolean(mcf->sync == 1));
    json_object_set_new(s, "interval_s",
                        json_integer(mcf->sync_interval / 1000));

    if (mcf->sync != 1 || sh == NULL) {
        return s;
    }

    json_object_set_new(s, "pid", sh->lock ? json_integer(sh->lock)
                                           : json_null());
    json_object_set_new(s, "runs", json_integer(sh->runs));
    json_object_set_new(s, "failures_in_a_row", json_integer(sh->failures));
    json_object_set_new(s, "last_start", cs_status_time(sh->last_start));
    json_object_set_new(s, "last_end", cs_status_time(sh->last_end));
    json_object_set_new(s, "last_success_at", cs_status_time(sh->last_success));
    json_object_set_new(s, "next_run",
                        cs_status_time((time_t) (sh->next_sync / 1000)));
    json_object_set_new(s, "last_error", sh->last_error[0]
                                         ? json_string(sh->last_error)
                                         : json_null());
    json_object_set_new(s, "last_installed", json_integer(sh->last_installed));
    json_object_set_new(s, "last_failed", json_integer(sh->last_failed));

    return s;
}


static json_t *
ngx_http_certsync_server_json(ngx_http_certsync_main_conf_t *mcf)
{
    json_t  *j;

    j = json_object();
    json_object_set_new(j, "module", json_string("ngx_http_certsync_module/"
                                                 NGX_HTTP_CERTSYNC_VERSION));
    json_object_set_new(j, "pid", json_integer(ngx_pid));
    json_object_set_new(j, "workers", json_integer(mcf->nworkers));
    json_object_set_new(j, "sync", ngx_http_certsync_sync_json(mcf));

    return j;
}


/* cs_status_document (every [cert] of certsync.conf) and "server" fields. */
static json_t *
ngx_http_certsync_status_json(ngx_http_certsync_main_conf_t *mcf)
{
    size_t                      k;
    json_t                     *doc, *c;
    ngx_uint_t                  i;
    const char                 *name;
    ngx_http_certsync_cert_t  **certp;

    if (mcf->cfg == NULL || mcf->store == NULL
        || cs_status_document(mcf->cfg, mcf->store, 0, &doc) != CS_OK)
    {
        return NULL;
    }

    json_object_set_new(doc, CS_STATUS_SERVER_KEY,
                        ngx_http_certsync_server_json(mcf));

    certp = mcf->certs.elts;

    json_array_foreach(json_object_get(doc, "certificates"), k, c) {
        name = json_string_value(json_object_get(c, "name"));

        for (i = 0; i < mcf->certs.nelts; i++) {
            if (ngx_strcmp(certp[i]->name.data, name) == 0) {
                json_object_set_new(c, CS_STATUS_SERVER_KEY,
                                ngx_http_certsync_cert_json(mcf, certp[i], c));
            }
        }
    }

    return doc;
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


/* jansson writes its JSON through this, piece by piece. */
static int
ngx_http_certsync_add_json(const char *buffer, size_t size, void *data)
{
    ngx_http_certsync_body_t *body = data;

    ngx_http_certsync_add(body, buffer, size);

    return body->failed ? -1 : 0;
}


/* ---- the status page for a person: the core's page, as Apache's ---- */

static void
ngx_http_certsync_status_html(ngx_http_certsync_body_t *body, json_t *j)
{
    char  *page;

    if (cs_status_html(j, "nginx", 0, &page) != CS_OK) {
        body->failed = 1;
        return;
    }

    ngx_http_certsync_add(body, page, ngx_strlen(page));
    free(page);
}
