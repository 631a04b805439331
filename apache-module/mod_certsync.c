/*
 * mod_certsync: Apache httpd serves the certificates that certsync keeps in
 * its store, and a new version with no restart.
 *
 *   CertSyncConfig /etc/certsync/certsync.conf
 *   <VirtualHost *:443>
 *       SSLEngine on
 *       CertSyncCertificate shop
 *   </VirtualHost>
 *
 * The certificate reaches mod_ssl through the ssl_add_cert_files hook (so no
 * SSLCertificateFile is needed) and, once the server runs, through a
 * certificate callback installed on each vhost's SSL_CTX (mod_certsync_swap.c).
 * This file: directives, the mod_ssl hooks, the answers to certificate
 * validation requests, and the 503 while only the self-signed fallback exists.
 */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "apr_hash.h"
#include "apr_hooks.h"
#include "apr_optional_hooks.h"
#include "apr_strings.h"
#include "ap_mpm.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "http_ssl.h"
#include "mod_ssl.h"
#include "mpm_common.h"

#include "cs_challenge.h"
#include "cs_serve.h"
#include "cs_sync.h"

#include "mod_certsync.h"

/*
 * mod_ssl_openssl.h (upstream httpd; not in Debian's apache2-dev) declares
 * this optional hook; Debian's mod_ssl.so runs it for each SSL-enabled
 * server with its SSL_CTX, after the certificates are loaded.
 */
APR_DECLARE_EXTERNAL_HOOK(ssl, SSL, int, init_server,
                          (server_rec * s, apr_pool_t *p, int is_proxy, SSL_CTX *ctx))

#define DEFAULT_SYNC_INTERVAL apr_time_from_sec(3600)
#define CHALLENGE_MAX 65536

certsync_mod *certsync_g;

static certsync_srv_conf *srv_conf(server_rec *s)
{
    return ap_get_module_config(s->module_config, &certsync_module);
}

static const char *vhost_id(apr_pool_t *p, server_rec *s)
{
    return apr_psprintf(p, "%s:%u", s->server_hostname ? s->server_hostname : "*",
                        s->addrs ? s->addrs->host_port : s->port);
}

/* ---- configuration ---- */

static void *create_srv_conf(apr_pool_t *p, server_rec *s)
{
    certsync_srv_conf *sc = apr_pcalloc(p, sizeof(*sc));

    (void)s;
    sc->validation = -1;
    sc->sync = -1;
    sc->sync_interval = -1;
    sc->graceful_on_change = -1;
    return sc;
}

static void *merge_srv_conf(apr_pool_t *p, void *basev, void *addv)
{
    const certsync_srv_conf *base = basev, *add = addv;
    certsync_srv_conf *sc = apr_pcalloc(p, sizeof(*sc));

    /* a CertSyncCertificate of the main server applies to vhosts, like SSLCertificateFile */
    sc->cert_name = add->cert_name ? add->cert_name : base->cert_name;
    sc->cert_file = add->cert_name ? add->cert_file : base->cert_file;
    sc->cert_line = add->cert_name ? add->cert_line : base->cert_line;
    sc->cert_name2 = add->cert_name ? add->cert_name2 : base->cert_name2;
    sc->cert_line2 = add->cert_name ? add->cert_line2 : base->cert_line2;
    sc->inherited = add->cert_name == NULL && base->cert_name != NULL;
    sc->validation = add->validation != -1 ? add->validation : base->validation;
    /* global only: always the main server's */
    sc->config_path = base->config_path;
    sc->sync = base->sync;
    sc->sync_interval = base->sync_interval;
    sc->graceful_on_change = base->graceful_on_change;
    return sc;
}

static const char *set_config(cmd_parms *cmd, void *dc, const char *arg)
{
    certsync_srv_conf *sc = srv_conf(cmd->server);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void)dc;
    if (err)
        return err;
    sc->config_path = ap_server_root_relative(cmd->pool, arg);
    if (sc->config_path == NULL)
        return apr_psprintf(cmd->pool, "CertSyncConfig: '%s' is not a valid path", arg);
    return NULL;
}

static const char *set_certificate(cmd_parms *cmd, void *dc, const char *arg)
{
    certsync_srv_conf *sc = srv_conf(cmd->server);

    (void)dc;
    if (!cs_name_valid(arg))
        return apr_psprintf(cmd->pool,
                            "CertSyncCertificate: '%s' is not a certificate name (the NAME of a "
                            "[cert NAME] section: letters, digits, '.', '_', '-', at most 64)",
                            arg);
    if (sc->cert_name2)
        return apr_psprintf(cmd->pool,
                            "CertSyncCertificate: this server already serves '%s' (line %d) and "
                            "'%s' (line %d); a virtual host takes two at most, one RSA and one "
                            "ECDSA",
                            sc->cert_name, sc->cert_line, sc->cert_name2, sc->cert_line2);
    if (sc->cert_name && strcmp(sc->cert_name, arg) == 0)
        return apr_psprintf(cmd->pool, "CertSyncCertificate: '%s' is given twice (line %d)", arg,
                            sc->cert_line);
    if (sc->cert_name) {
        /* the other key type: a client is served the one its signature algorithms take */
        sc->cert_name2 = arg;
        sc->cert_line2 = cmd->directive->line_num;
        return NULL;
    }
    sc->cert_name = arg;
    sc->cert_file = cmd->directive->filename;
    sc->cert_line = cmd->directive->line_num;
    return NULL;
}

static const char *set_sync(cmd_parms *cmd, void *dc, int flag)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void)dc;
    if (err)
        return err;
    srv_conf(cmd->server)->sync = flag;
    srv_conf(cmd->server)->sync_file = cmd->directive->filename;
    srv_conf(cmd->server)->sync_line = cmd->directive->line_num;
    return NULL;
}

static const char *set_sync_interval(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    long seconds;

    (void)dc;
    if (err)
        return err;
    if (cs_duration_parse(arg, &seconds) != CS_OK || seconds < 1)
        return apr_psprintf(cmd->pool,
                            "CertSyncSyncInterval: '%s' is not a duration of at least 1 s; "
                            "write e.g. 12h, 30m or 45s",
                            arg);
    srv_conf(cmd->server)->sync_interval = apr_time_from_sec(seconds);
    return NULL;
}

static const char *set_validation(cmd_parms *cmd, void *dc, int flag)
{
    (void)dc;
    srv_conf(cmd->server)->validation = flag;
    return NULL;
}

static const char *set_graceful(cmd_parms *cmd, void *dc, int flag)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void)dc;
    if (err)
        return err;
    srv_conf(cmd->server)->graceful_on_change = flag;
    return NULL;
}

static const command_rec certsync_cmds[] = {
    AP_INIT_TAKE1("CertSyncConfig", set_config, NULL, RSRC_CONF,
                  "certsync.conf to read (default " CS_DEFAULT_CONFIG ")"),
    AP_INIT_TAKE1("CertSyncCertificate", set_certificate, NULL, RSRC_CONF,
                  "the [cert NAME] of certsync.conf this server serves"),
    AP_INIT_FLAG("CertSyncSync", set_sync, NULL, RSRC_CONF,
                 "on: the server syncs its certificates itself (mod_watchdog)"),
    AP_INIT_TAKE1("CertSyncSyncInterval", set_sync_interval, NULL, RSRC_CONF,
                  "time between two syncs, e.g. 1h (default), 30m"),
    AP_INIT_FLAG("CertSyncValidation", set_validation, NULL, RSRC_CONF,
                 "on (default): answer FILE validation and ACME http-01 from the store"),
    AP_INIT_FLAG("CertSyncGracefulOnChange", set_graceful, NULL, RSRC_CONF,
                 "on: restart gracefully when a new version becomes current"),
    {NULL},
};

/* ---- startup ---- */

static apr_status_t mod_cleanup(void *data)
{
    certsync_mod *m = data;
    int i;

    for (i = 0; m->slots && i < m->slots->nelts; i++) {
        certsync_slot *slot = APR_ARRAY_IDX(m->slots, i, certsync_slot *);

        if (slot->cur) {
            certsync_served_release(slot->cur);
            pthread_rwlock_destroy(&slot->lock);
        }
    }
    cs_store_free(m->store);
    cs_config_free(m->cfg);
    if (certsync_g == m)
        certsync_g = NULL;
    return APR_SUCCESS;
}

static const char *declared_names(apr_pool_t *p, const cs_config *c)
{
    const char *list = NULL;
    size_t i;

    for (i = 0; i < c->n_certs; i++)
        list = list ? apr_pstrcat(p, list, ", ", c->certs[i].name, NULL) : c->certs[i].name;
    return list ? list : "none";
}

static certsync_slot *slot_new(certsync_mod *m, apr_pool_t *p, const cs_cert_conf *cc)
{
    certsync_slot *slot = apr_pcalloc(p, sizeof(*slot));

    slot->name = cc->name;
    slot->cc = cc;
    slot->dir = apr_pstrcat(p, m->cfg->store_path, "/certs/", cc->name, NULL);
    slot->link = apr_pstrcat(p, slot->dir, "/current", NULL);
    slot->vhosts = apr_array_make(p, 2, sizeof(const char *));
    slot->watch = -1;
    APR_ARRAY_PUSH(m->slots, certsync_slot *) = slot;
    return slot;
}

/*
 * The core's loading policy at the configuration test (`apache2 -t` too): a
 * current version whose key, chain or names fail fails it, with the file and
 * line of the CertSyncCertificate that names it.
 */
static int check_versions(certsync_mod *m, server_rec *s)
{
    char why[1024];
    int i, errors = 0;

    if (cs_store_open_config(m->cfg, &m->store) != CS_OK) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, NULL,
                     "mod_certsync: cannot open the store: %s", cs_error_last());
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    for (i = 0; i < m->slots->nelts; i++) {
        certsync_slot *slot = APR_ARRAY_IDX(m->slots, i, certsync_slot *);

        if (certsync_version_servable(m, slot, why, sizeof(why)))
            continue;
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, NULL,
                     "mod_certsync: %s:%d: CertSyncCertificate %s: the current version cannot "
                     "be served: %s (`certsync rollback %s` makes the previous one current)",
                     slot->decl_file, slot->decl_line, slot->name, why, slot->name);
        errors++;
    }
    (void)s;
    return errors ? HTTP_INTERNAL_SERVER_ERROR : OK;
}

/*
 * check_config runs for `apachectl -t` too: certsync.conf is read here, and a
 * name that it does not declare fails the check with the file and line.
 */
/* The slot of a CertSyncCertificate NAME of vhost v, made on first use; NULL when unknown. */
static certsync_slot *map_slot(certsync_mod *m, apr_hash_t *seen, apr_pool_t *pconf,
                               apr_pool_t *ptemp, server_rec *v, const char *name, int line,
                               int *errors)
{
    certsync_srv_conf *sc = srv_conf(v);
    certsync_slot *slot = apr_hash_get(seen, name, APR_HASH_KEY_STRING);
    const cs_cert_conf *cc;

    if (slot == NULL) {
        cc = cs_config_cert(m->cfg, name);
        if (cc == NULL) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, NULL,
                         "mod_certsync: %s:%d: CertSyncCertificate %s: %s has no [cert %s] "
                         "section (it declares: %s)",
                         sc->cert_file, line, name, m->config_path, name,
                         declared_names(ptemp, m->cfg));
            (*errors)++;
            slot = apr_pcalloc(ptemp, sizeof(*slot)); /* report each name once */
        } else {
            slot = slot_new(m, pconf, cc);
            slot->decl_file = sc->cert_file;
            slot->decl_line = line;
        }
        apr_hash_set(seen, name, APR_HASH_KEY_STRING, slot);
    }
    if (slot->name == NULL)
        return NULL;
    APR_ARRAY_PUSH(slot->vhosts, const char *) = vhost_id(pconf, v);
    return slot;
}

static int is_rsa(cs_key_type t)
{
    return t == CS_KEY_RSA2048 || t == CS_KEY_RSA3072 || t == CS_KEY_RSA4096;
}

/* An SSL_CTX holds one certificate per key type: the two of a vhost must differ. */
static int key_types_differ(const certsync_mod *m, const certsync_srv_conf *sc)
{
    if (is_rsa(sc->pair[0]->cc->key_type) != is_rsa(sc->pair[1]->cc->key_type))
        return 1;
    ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, NULL,
                 "mod_certsync: %s:%d: CertSyncCertificate %s: '%s' (line %d) has the same key "
                 "type (%s); a virtual host takes one RSA and one ECDSA certificate: set "
                 "key-type in the [cert %s] section of %s",
                 sc->cert_file, sc->cert_line2, sc->cert_name2, sc->cert_name, sc->cert_line,
                 is_rsa(sc->pair[0]->cc->key_type) ? "RSA" : "ECDSA", sc->cert_name2,
                 m->config_path);
    return 0;
}

static int certsync_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                                 server_rec *s)
{
    certsync_srv_conf *base = srv_conf(s);
    apr_hash_t *seen = apr_hash_make(ptemp);
    certsync_mod *m;
    server_rec *v;
    int used = 0, errors = 0;

    (void)plog;
    certsync_g = NULL;
    for (v = s; v; v = v->next)
        used |= srv_conf(v)->cert_name != NULL;
    if (!used && base->config_path == NULL)
        return OK; /* loaded, not used */

    m = apr_pcalloc(pconf, sizeof(*m));
    m->s = s;
    m->config_path = base->config_path ? base->config_path : CS_DEFAULT_CONFIG;
    m->slots = apr_array_make(pconf, 4, sizeof(certsync_slot *));
    if (cs_config_load(m->config_path, &m->cfg) != CS_OK) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, NULL, "mod_certsync: %s%s",
                     cs_error_last(), base->config_path ? "" : " (set CertSyncConfig PATH)");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    apr_pool_cleanup_register(pconf, m, mod_cleanup, apr_pool_cleanup_null);

    for (v = s; v; v = v->next) {
        certsync_srv_conf *sc = srv_conf(v);

        if (sc->cert_name == NULL)
            continue;
        sc->slot = sc->pair[0] =
            map_slot(m, seen, pconf, ptemp, v, sc->cert_name, sc->cert_line, &errors);
        if (sc->cert_name2)
            sc->pair[1] =
                map_slot(m, seen, pconf, ptemp, v, sc->cert_name2, sc->cert_line2, &errors);
        if (sc->pair[0] && sc->pair[1] && !key_types_differ(m, sc))
            errors++;
        if (sc->slot == NULL)
            sc->pair[1] = NULL;
        else if (!sc->inherited && certsync_alpn_check(v, sc) != OK)
            errors++;
    }
    if (errors || check_versions(m, s) != OK)
        return HTTP_INTERNAL_SERVER_ERROR;
    m->sync = base->sync == 1;
    if (m->sync && certsync_sync_check(m, base) != OK)
        return HTTP_INTERNAL_SERVER_ERROR;
    m->sync_interval = base->sync_interval > 0 ? base->sync_interval : DEFAULT_SYNC_INTERVAL;
    m->graceful_on_change = base->graceful_on_change == 1;
    certsync_g = m;
    return OK;
}

static const char *vhost_list(apr_pool_t *p, const certsync_slot *slot)
{
    return slot->vhosts->nelts ? apr_array_pstrcat(p, slot->vhosts, ' ') : "no virtual host";
}

/* Before mod_ssl loads certificates: open the store, parse what each name serves. */
static int certsync_post_config_before_ssl(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                                           server_rec *s)
{
    certsync_mod *m = certsync_g;
    int i;

    (void)plog;
    if (m == NULL)
        return OK;
    /* the store was opened by the configuration check */
    m->hot_capable = ap_find_linked_module("mod_ssl.c") != NULL;
    for (i = 0; i < m->slots->nelts; i++) {
        certsync_slot *slot = APR_ARRAY_IDX(m->slots, i, certsync_slot *);

        if (certsync_slot_prepare(m, slot, pconf) != APR_SUCCESS)
            return HTTP_INTERNAL_SERVER_ERROR;
        if (slot->start_reason)
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                         "certsync: '%s' has no usable version (%s); %s serve(s) a self-signed "
                         "fallback and answer(s) 503 until one is installed (%s)",
                         slot->name, slot->start_reason, vhost_list(ptemp, slot),
                         m->sync ? "CertSyncSync is on"
                                 : "certsync sync or import, or CertSyncSync on");
        else
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, "certsync: '%s': serving v%u (sha256 %s)",
                         slot->name, slot->cur->version, slot->cur->fingerprint);
    }
    return OK;
}

/* After mod_ssl: did it hand us every vhost's SSL_CTX? Then the sync watchdog. */
static int certsync_post_config_after_ssl(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                                          server_rec *s)
{
    certsync_mod *m = certsync_g;
    server_rec *v;

    (void)plog;
    (void)ptemp;
    if (m == NULL)
        return OK;
    for (v = s; v; v = v->next) {
        certsync_srv_conf *sc = srv_conf(v);

        if (sc->slot == NULL || (sc->inherited && !sc->ssl_seen))
            continue; /* inherited from the main server into a vhost without SSL */
        if (!sc->ssl_seen)
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, v,
                         "certsync: %s:%d: CertSyncCertificate %s: mod_ssl asked for no "
                         "certificate for %s (is SSLEngine on there, and mod_ssl loaded?)",
                         sc->cert_file, sc->cert_line, sc->cert_name, vhost_id(ptemp, v));
        else if (!sc->hot)
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, v,
                         "certsync: %s: mod_ssl did not hand over its SSL_CTX (no ssl_init_server "
                         "hook): a new version of '%s' is served only after a restart%s",
                         vhost_id(ptemp, v), sc->cert_name,
                         m->graceful_on_change ? "; CertSyncGracefulOnChange on does it"
                                               : "; CertSyncGracefulOnChange on makes the server "
                                                 "restart gracefully by itself");
    }
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG)
        return OK; /* the first of the two startup passes: no watchdog yet */
    return certsync_drive_init(m, pconf, s) == APR_SUCCESS ? OK : HTTP_INTERNAL_SERVER_ERROR;
}

/* ---- mod_ssl hooks ---- */

static int certsync_add_cert_files(server_rec *s, apr_pool_t *p, apr_array_header_t *cert_files,
                                   apr_array_header_t *key_files)
{
    certsync_srv_conf *sc = srv_conf(s);
    certsync_slot *slot = sc->slot;

    if (certsync_g == NULL || slot == NULL)
        return DECLINED;
    sc->ssl_seen = 1;
    if (slot->start_reason == NULL && cert_files->nelts > 0)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "certsync: %s has SSLCertificateFile too; only '%s' is served", vhost_id(p, s),
                     slot->name);
    /*
     * The parent's copies in the runtime directory, never a store path: the
     * store is the workers' to read, and mod_ssl opens by path, as root.
     * With no version yet and mod_ssl's SSL_CTX hook, the certificate
     * callback will serve the first version as soon as it exists, so the
     * fallback is handed as a regular certificate and this module answers
     * 503 meanwhile (mod_ssl's own 503 for fallbacks lasts until a restart).
     */
    if (slot->start_reason == NULL || certsync_g->hot_capable) {
        for (int i = 0; i < 2 && sc->pair[i]; i++) {
            APR_ARRAY_PUSH(cert_files, const char *) = sc->pair[i]->cert_file;
            APR_ARRAY_PUSH(key_files, const char *) = sc->pair[i]->key_file;
        }
        return DONE;
    }
    return DECLINED;
}

/* Without mod_ssl's SSL_CTX hook: the SSL module answers 503 until a restart. */
static int certsync_add_fallback_cert_files(server_rec *s, apr_pool_t *p,
                                            apr_array_header_t *cert_files,
                                            apr_array_header_t *key_files)
{
    certsync_srv_conf *sc = srv_conf(s);

    (void)p;
    if (certsync_g == NULL || sc->slot == NULL || sc->slot->start_reason == NULL)
        return DECLINED;
    for (int i = 0; i < 2 && sc->pair[i]; i++) {
        APR_ARRAY_PUSH(cert_files, const char *) = sc->pair[i]->cert_file;
        APR_ARRAY_PUSH(key_files, const char *) = sc->pair[i]->key_file;
    }
    return DONE;
}

static int certsync_init_server(server_rec *s, apr_pool_t *p, int is_proxy, SSL_CTX *ctx)
{
    certsync_srv_conf *sc = srv_conf(s);

    (void)p;
    if (is_proxy || certsync_g == NULL || sc->slot == NULL)
        return DECLINED;
    SSL_CTX_set_cert_cb(ctx, certsync_cert_cb, sc->pair);
    sc->hot = 1;
    return OK;
}

/*
 * OCSP stapling (SSLUseStapling on): mod_ssl asks by the SHA-1 of the leaf
 * for the server the connection's SNI chose; that vhost's certificates are
 * the only ones its handshakes can use. At start (prime) the certificates
 * we serve are ours to staple: mod_ssl fetches nothing for them.
 */
static int certsync_ocsp_prime(server_rec *s, apr_pool_t *p, const char *id, apr_size_t id_len,
                               const char *pem)
{
    certsync_served *o =
        certsync_g ? certsync_served_by_id(srv_conf(s)->pair, id, (size_t)id_len) : NULL;

    (void)p;
    (void)pem;
    certsync_served_release(o);
    return o ? OK : DECLINED;
}

static int certsync_ocsp_get_resp(server_rec *s, conn_rec *c, const char *id, apr_size_t id_len,
                                  ap_ssl_ocsp_copy_resp *cb, void *userdata)
{
    certsync_served *o =
        certsync_g ? certsync_served_by_id(srv_conf(s)->pair, id, (size_t)id_len) : NULL;

    (void)c;
    if (o == NULL)
        return DECLINED;
    certsync_served_staple(o, cb, userdata);
    certsync_served_release(o);
    return OK;
}

/* ---- requests ---- */

static void send_answer(request_rec *r, const char *data, size_t len)
{
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);

    r->status = HTTP_OK;
    ap_set_content_type(r, "text/plain");
    ap_set_content_length(r, len);
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    /* for HEAD (r->header_only) the HTTP header filter drops the body, Content-Length stays */
    apr_brigade_write(bb, NULL, NULL, data, len);
    ap_pass_brigade(r->output_filters, bb);
}

/*
 * GET or HEAD of /.well-known/pki-validation/fileauth.txt or
 * /.well-known/acme-challenge/TOKEN: mapped by the core's one rule
 * (cs_challenge_map) and read through the store API (no symlink, no FIFO).
 * Validation is on here: a request the store has no answer for gets 404.
 */
static int answer_challenge(request_rec *r, certsync_mod *m)
{
    const char *path = r->parsed_uri.path, *host = r->hostname;
    cs_challenge_verdict verdict = CS_CHALLENGE_NOT_OURS;
    cs_challenge ch;
    char *data;
    size_t len;

    if (r->method_number == M_GET) /* and HEAD */
        verdict = cs_challenge_map(host, host ? strlen(host) : 0, path, strlen(path), &ch);
    if (verdict == CS_CHALLENGE_NOT_OURS)
        return DECLINED;
    if (verdict == CS_CHALLENGE_REFUSED) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "certsync: 404: %s for host '%s' cannot be a validation answer", path,
                      host ? host : "(none)");
        return HTTP_NOT_FOUND;
    }
    if (cs_store_read_challenge(m->store, ch.host, ch.kind, ch.file, CHALLENGE_MAX, &data, &len) !=
        CS_OK) {
        ap_log_rerror(APLOG_MARK, cs_error_code() == CS_ENOTFOUND ? APLOG_INFO : APLOG_WARNING, 0,
                      r, "certsync: 404: no %s answer for %s: %s", ch.kind, ch.host,
                      cs_error_last());
        return HTTP_NOT_FOUND;
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "certsync: answering %s for %s from the store",
                  path, ch.host);
    send_answer(r, data, len);
    free(data);
    return DONE;
}

/* Is this vhost's TLS serving the self-signed fallback? */
static int serves_fallback(const certsync_srv_conf *sc)
{
    int i, fallback = 1;

    /* with two certificates, one real one is enough to answer */
    for (i = 0; i < 2 && sc->pair[i]; i++)
        fallback &= sc->hot ? __atomic_load_n(&sc->pair[i]->serving_fallback, __ATOMIC_ACQUIRE)
                            : sc->pair[i]->start_reason != NULL; /* what mod_ssl loaded */
    return fallback;
}

static int certsync_post_read_request(request_rec *r)
{
    certsync_mod *m = certsync_g;
    certsync_srv_conf *sc;

    if (m == NULL)
        return DECLINED;
    sc = srv_conf(r->server);
    if (sc->validation != 0 && r->parsed_uri.path)
        return answer_challenge(r, m); /* the answer, 404, or DECLINED */
    return DECLINED;
}

/*
 * After the location walk, so that the certsync-status handler is known:
 * everything else on a vhost that serves the fallback gets 503.
 */
static int certsync_fixups(request_rec *r)
{
    certsync_mod *m = certsync_g;
    certsync_srv_conf *sc;

    if (m == NULL || r->main || r->prev)
        return DECLINED;
    sc = srv_conf(r->server);
    if (sc->slot == NULL || !serves_fallback(sc) || !ap_ssl_conn_is_ssl(r->connection))
        return DECLINED;
    if (r->handler && strcmp(r->handler, "certsync-status") == 0)
        return DECLINED; /* status is answered meanwhile */
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                  "certsync: 503: '%s' has no certificate yet (%s); serving the self-signed "
                  "fallback",
                  sc->slot->name, sc->slot->start_reason);
    apr_table_setn(r->err_headers_out, "Retry-After", apr_itoa(r->pool, CS_SERVE_RETRY_AFTER_S));
    return HTTP_SERVICE_UNAVAILABLE;
}

/* ---- processes ---- */

static void certsync_child_init(apr_pool_t *pchild, server_rec *s)
{
    if (certsync_g && certsync_g->slots->nelts > 0)
        certsync_watch_start(pchild, s);
}

/*
 * CertSyncGracefulOnChange: the parent (root) looks at `current` when the MPM
 * runs its monitor hook (every 10 s) and, when a new version validates,
 * restarts gracefully. For servers where mod_ssl cannot hand over its
 * SSL_CTX; the children run unprivileged and could not signal the parent.
 */
static int certsync_monitor(apr_pool_t *p, server_rec *s)
{
    certsync_mod *m = certsync_g;
    char why[1024];
    unsigned version;
    int i;

    (void)p;
    if (m == NULL || !m->graceful_on_change)
        return DECLINED;
    for (i = 0; i < m->slots->nelts; i++) {
        certsync_slot *slot = APR_ARRAY_IDX(m->slots, i, certsync_slot *);

        if (slot->restart_requested || !certsync_link_changed(slot) || !slot->seen.linked)
            continue;
        if (!certsync_version_loads(slot, &version, why, sizeof(why))) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                         "certsync: '%s': the new current version is not usable (%s); no restart",
                         slot->name, why);
            continue;
        }
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                     "certsync: '%s': v%u is current; restarting gracefully "
                     "(CertSyncGracefulOnChange on)",
                     slot->name, version);
        slot->restart_requested = 1;
        kill(getpid(), AP_SIG_GRACEFUL);
        return OK;
    }
    return DECLINED;
}

static void register_hooks(apr_pool_t *p)
{
    static const char *const mod_ssl[] = {"mod_ssl.c", NULL};
    static const char *const mod_wd[] = {"mod_watchdog.c", NULL};

    (void)p;
    ap_hook_check_config(certsync_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(certsync_post_config_before_ssl, NULL, mod_ssl, APR_HOOK_MIDDLE);
    ap_hook_post_config(certsync_post_config_after_ssl, mod_ssl, mod_wd, APR_HOOK_LAST);
    ap_hook_child_init(certsync_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_monitor(certsync_monitor, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_read_request(certsync_post_read_request, mod_ssl, NULL, APR_HOOK_MIDDLE);
    ap_hook_fixups(certsync_fixups, NULL, NULL, APR_HOOK_REALLY_FIRST);
    ap_hook_handler(certsync_status_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_ssl_add_cert_files(certsync_add_cert_files, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_ssl_add_fallback_cert_files(certsync_add_fallback_cert_files, NULL, NULL,
                                        APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ssl, init_server, certsync_init_server, NULL, NULL, APR_HOOK_MIDDLE);
    /* before mod_md's: the certificates we serve are ours to staple */
    ap_hook_ssl_ocsp_prime_hook(certsync_ocsp_prime, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_ssl_ocsp_get_resp_hook(certsync_ocsp_get_resp, NULL, NULL, APR_HOOK_FIRST);
    certsync_alpn_register_hooks();
}

AP_DECLARE_MODULE(certsync) = {
    STANDARD20_MODULE_STUFF,
    NULL, /* per-directory config */
    NULL,
    create_srv_conf,
    merge_srv_conf,
    certsync_cmds,
    register_hooks,
    AP_MODULE_FLAG_ALWAYS_MERGE,
};
