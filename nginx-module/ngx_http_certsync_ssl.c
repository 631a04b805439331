/*
 * ngx_http_certsync_module: versions into SSL contexts. At configuration
 * time a certificate's current version (or a self-signed fallback) goes into
 * the SSL_CTX of each server that names it; at run time the watch puts each
 * new version into the same key slot. An SSL_CTX holds one certificate per
 * key type (slot); the http module never changes how nginx handshakes.
 */


#include "ngx_http_certsync.h"
#include "cs_sync.h"            /* cs_store_open_config() */

#include <openssl/pem.h>

#include "cs_fallback.h"
#include "cs_ocsp.h"
#include "cs_serve.h"


/* the status callback the server had before ours (nginx's own stapling) */
typedef struct {
    int                          (*prev)(SSL *ssl, void *arg);
    void                          *prev_arg;
} ngx_http_certsync_stapling_t;


static cs_bundle *ngx_http_certsync_fallback(ngx_conf_t *cf,
    ngx_http_certsync_main_conf_t *mcf, ngx_http_certsync_use_t *use);
static ngx_uint_t ngx_http_certsync_fallback_slot(
    ngx_http_certsync_use_t *use);
static ngx_uint_t ngx_http_certsync_slot(EVP_PKEY *key);
static const char *ngx_http_certsync_slot_name(ngx_uint_t slot);
static ngx_int_t ngx_http_certsync_check(ngx_http_certsync_cert_t *cert,
    const cs_bundle *b, unsigned version, ngx_uint_t *expired);
static ngx_int_t ngx_http_certsync_first_look(ngx_conf_t *cf,
    ngx_http_certsync_main_conf_t *mcf, ngx_http_certsync_cert_t *cert,
    ngx_http_certsync_decl_t *decl);
static void ngx_http_certsync_unreadable(ngx_conf_t *cf,
    ngx_http_certsync_main_conf_t *mcf, ngx_http_certsync_cert_t *cert,
    ngx_http_certsync_decl_t *decl);
static cs_bundle *ngx_http_certsync_kept(ngx_conf_t *cf,
    ngx_http_certsync_main_conf_t *mcf, ngx_http_certsync_cert_t *cert, unsigned *version);
static void ngx_http_certsync_retire(ngx_http_certsync_main_conf_t *mcf,
    ngx_http_certsync_use_t *use, ngx_uint_t slot, ngx_log_t *log);
static void ngx_http_certsync_staple_cleanup(void *data);
static int ngx_http_certsync_status_cb(SSL *ssl, void *arg);


static int  ngx_http_certsync_staple_index = -1;


/*
 * Certificates whose keys exist nowhere. Putting one into a key slot of an
 * SSL_CTX makes OpenSSL drop the slot's private key (it does not match), so
 * the slot is no longer offered: that is how a certificate whose key type
 * changed (EC fallback -> RSA, say) stops being served in its old slot.
 */
static const char  ngx_http_certsync_retired_rsa[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIDKzCCAhOgAwIBAgIUY6gCeQlfozusSFnPE9DcLKy350kwDQYJKoZIhvcNAQEL\n"
    "BQAwJDEiMCAGA1UEAwwZY2VydHN5bmMgcmV0aXJlZCBrZXkgc2xvdDAgFw0yNjEx\n"
    "MjgxMjM4MTVaGA8yMTI2MTEwNDEyMzgxNVowJDEiMCAGA1UEAwwZY2VydHN5bmMg\n"
    "cmV0aXJlZCBrZXkgc2xvdDCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEB\n"
    "ANEXsrcOYeI6T34ZXwTfGUuaxF8S9HCLcPLV49dkUqO0hW+AQwyVvArXmZ84Ot5n\n"
    "aj2cpaSr/DZfgfHWel4AmNzVxIuna8kOOQy0Ana0DGDaaONB2j6VCcfvAi5J9CsD\n"
    "qyUILFb1ZDYuMkheYgu7G1lVAq/9mybBa9EfOaO7oczSfeFBIGb72oRX12ixP25j\n"
    "dFpEQmla3xqjkRGhfU+i1P0FYkn3FJXUCUSdHpstnSzOHEm4yws12/ml1QgUWMGa\n"
    "xCj1SJyJ3MdjdtZMAyIAQrcIgJJ8v39luR0GejtBsBTcaJF83NkLvg3nKjmKpPTS\n"
    "t9U0x6nmlQSwZ/n15+zMtNMCAwEAAaNTMFEwHQYDVR0OBBYEFIN6SgdwQCD7Fr/9\n"
    "+WAwgV1MboEbMB8GA1UdIwQYMBaAFIN6SgdwQCD7Fr/9+WAwgV1MboEbMA8GA1Ud\n"
    "EwEB/wQFMAMBAf8wDQYJKoZIhvcNAQELBQADggEBAMlOcHHtQTscOACzY4WVlj7b\n"
    "Z5wcxOe6zY5PDh1qSitKBohZi7gk28xYkZNyQ8F4Mco28cxdVAzmI+kx+u62a7Xr\n"
    "p3vP1HOFE80Bcbwn8tsh6hMKUhgwuFnL3cuMPqbC2D6nUm/uz1yE2hcDSo2YUORz\n"
    "sAKUKqNvKf1/rhj97/bvtBmiJpSC55pyx7SymD/BCkmUsgnRwPkf9ao5YtcVMvw1\n"
    "QRvegi1tW1WDWjp5wXpd8BxijbaOiQWzJlM2+DRHOUmlSCzX+92f5Apiw9ZrWruc\n"
    "kmVEoWPCmnghUYXnreRr9GJiP9UkbmbghF1NqgrfNli99JINZbzG7NOA7TPVx1s=\n"
    "-----END CERTIFICATE-----\n";

static const char  ngx_http_certsync_retired_ec[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBnzCCAUWgAwIBAgIUG47AdnTDV6+o1sueuq4ZDEINvWgwCgYIKoZIzj0EAwIw\n"
    "JDEiMCAGA1UEAwwZY2VydHN5bmMgcmV0aXJlZCBrZXkgc2xvdDAgFw0yNjExMjgx\n"
    "MjM4MTVaGA8yMTI2MTEwNDEyMzgxNVowJDEiMCAGA1UEAwwZY2VydHN5bmMgcmV0\n"
    "aXJlZCBrZXkgc2xvdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABO7TdXNJnJEK\n"
    "rOF9WXzyLlrLnW8esU4lHC74FnhWbBvEhNY4iGfnit2Rtimehfa9Zhx4S51Fx0K3\n"
    "G8RZdpFVvwCjUzBRMB0GA1UdDgQWBBTzJhNb8crt8YuYh5Y5wdTQHR1ZmzAfBgNV\n"
    "HSMEGDAWgBTzJhNb8crt8YuYh5Y5wdTQHR1ZmzAPBgNVHRMBAf8EBTADAQH/MAoG\n"
    "CCqGSM49BAMCA0gAMEUCIQDNOzEguT90uiMPG4ZqF8aUs5bW/UDGHbwebfxH5Wuv\n"
    "FAIgAjvqxhN4mS4Wpgygy2b2zPvBIlCNQU2aOCQbRWy70ao=\n"
    "-----END CERTIFICATE-----\n";



/* ---- configuration time: certificates into SSL contexts ---- */

ngx_int_t
ngx_http_certsync_load_config(ngx_conf_t *cf,
    ngx_http_certsync_main_conf_t *mcf)
{
    u_char  *path;

    if (mcf->config.len == 0) {
        ngx_str_set(&mcf->config, CS_DEFAULT_CONFIG);
    }

    path = ngx_pnalloc(cf->pool, mcf->config.len + 1);
    if (path == NULL) {
        cs_error_set(CS_ENOMEM, "out of memory");
        return NGX_ERROR;
    }

    ngx_cpystrn(path, mcf->config.data, mcf->config.len + 1);

    if (cs_config_load((char *) path, &mcf->cfg) != CS_OK) {
        return NGX_ERROR;
    }

    if (cs_store_open_config(mcf->cfg, &mcf->store) != CS_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * A certsync_certificate directive of a server (http or stream): checked and
 * remembered; the certificate is looked up when the server is merged.
 */
char *
ngx_http_certsync_declare(ngx_conf_t *cf, ngx_http_certsync_srv_conf_t *cscf,
    ngx_str_t *name)
{
    ngx_uint_t                 i;
    ngx_http_certsync_decl_t  *decl;

    if (!cs_name_valid((char *) name->data)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"certsync_certificate\" wants the name of a "
                           "[cert NAME] in certsync.conf (letters, digits, "
                           "'.', '_', '-'), not \"%V\"", name);
        return NGX_CONF_ERROR;
    }

    if (cscf->decls == NULL) {
        cscf->decls = ngx_array_create(cf->pool, 2,
                                       sizeof(ngx_http_certsync_decl_t));
        if (cscf->decls == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    decl = cscf->decls->elts;

    for (i = 0; i < cscf->decls->nelts; i++) {
        if (ngx_strcmp(decl[i].name.data, name->data) == 0) {
            return "names this certificate twice";
        }
    }

    if (cscf->decls->nelts == 2) {
        return "is given more than twice; a server takes two "
               "certificates at most, one RSA and one ECDSA";
    }

    decl = ngx_array_push(cscf->decls);
    if (decl == NULL) {
        return NGX_CONF_ERROR;
    }

    decl->name = *name;
    decl->file = cf->conf_file->file.name;
    decl->line = cf->conf_file->line;

    return NGX_CONF_OK;
}


/*
 * The certificates a server declared, into its SSL_CTX ctx (that of
 * ngx_http_ssl_module or ngx_stream_ssl_module), and the server into the
 * list of the watch.
 */
ngx_int_t
ngx_http_certsync_add_server(ngx_conf_t *cf,
    ngx_http_certsync_main_conf_t *mcf, ngx_http_certsync_srv_conf_t *conf,
    SSL_CTX *ctx)
{
    ngx_uint_t                      i;
    ngx_http_certsync_use_t        *use, **usep;
    ngx_http_certsync_decl_t       *decl;
    ngx_http_certsync_cert_t       *cert;
    ngx_http_certsync_srv_conf_t  **srvp;

    decl = conf->decls->elts;

    if (ngx_array_init(&conf->uses, cf->pool, conf->decls->nelts,
                       sizeof(ngx_http_certsync_use_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < conf->decls->nelts; i++) {

        cert = ngx_http_certsync_get_cert(cf, mcf, &decl[i]);
        if (cert == NULL) {
            return NGX_ERROR;
        }

        use = ngx_array_push(&conf->uses);
        if (use == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(use, sizeof(ngx_http_certsync_use_t));
        use->cert = cert;
        use->srv = conf;
        use->decl = &decl[i];
        use->ctx = ctx;

        /* conf->uses never grows beyond its first allocation */
        usep = ngx_array_push(&cert->uses);
        if (usep == NULL) {
            return NGX_ERROR;
        }

        *usep = use;
    }

    use = conf->uses.elts;

    for (i = 0; i < conf->uses.nelts; i++) {
        if (ngx_http_certsync_install_first(cf, mcf, &use[i]) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (ngx_http_certsync_session_context(cf, conf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_certsync_session_context(cf, conf) != NGX_OK) {
        return NGX_ERROR;
    }

    srvp = ngx_array_push(&mcf->servers);
    if (srvp == NULL) {
        return NGX_ERROR;
    }

    *srvp = conf;

    return NGX_OK;
}


ngx_http_certsync_cert_t *
ngx_http_certsync_get_cert(ngx_conf_t *cf, ngx_http_certsync_main_conf_t *mcf,
    ngx_http_certsync_decl_t *decl)
{
    char                       link[4096];
    size_t                     len;
    ngx_uint_t                 i;
    const cs_cert_conf        *cc;
    ngx_http_certsync_cert_t  *cert, **certp;

    certp = mcf->certs.elts;

    for (i = 0; i < mcf->certs.nelts; i++) {
        if (ngx_strcmp(certp[i]->name.data, decl->name.data) == 0) {
            return certp[i];
        }
    }

    cc = cs_config_cert(mcf->cfg, (char *) decl->name.data);

    if (cc == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"certsync_certificate\" names \"%V\", which %s does "
                      "not declare (no [cert %V] section) in %V:%ui",
                      &decl->name, mcf->cfg->path, &decl->name,
                      &decl->file, decl->line);
        return NULL;
    }

    cert = ngx_pcalloc(cf->pool, sizeof(ngx_http_certsync_cert_t));
    if (cert == NULL) {
        return NULL;
    }

    cert->name = decl->name;
    cert->cc = cc;
    cert->index = mcf->certs.nelts;

    if (ngx_http_certsync_staple_init(cf, cert) != NGX_OK) {
        return NULL;
    }

    if (ngx_array_init(&cert->uses, cf->pool, 2,
                       sizeof(ngx_http_certsync_use_t *))
        != NGX_OK)
    {
        return NULL;
    }

    if (cs_store_current_link(mcf->store, cc->name, link, sizeof(link))
        != CS_OK)
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "certsync_certificate \"%V\" in %V:%ui: %s",
                      &decl->name, &decl->file, decl->line, cs_error_last());
        return NULL;
    }

    /* the directory that holds `current`, for the watch */
    len = ngx_strlen(link) - (sizeof("/current") - 1);

    cert->dir = ngx_pnalloc(cf->pool, len + 1);
    if (cert->dir == NULL) {
        return NULL;
    }

    ngx_cpystrn((u_char *) cert->dir, (u_char *) link, len + 1);
    cert->wd = -1;

    if (ngx_http_certsync_first_look(cf, mcf, cert, decl) != NGX_OK) {
        return NULL;
    }

    cert->loaded_at = ngx_time();

    certp = ngx_array_push(&mcf->certs);
    if (certp == NULL) {
        return NULL;
    }

    *certp = cert;

    return cert;
}


/*
 * The version the configuration starts with, and what the workers compare
 * `current` with at their first look. No version, or one the store refuses
 * to read: the fallback, later. One the policy refuses fails the config.
 */
static ngx_int_t
ngx_http_certsync_first_look(ngx_conf_t *cf,
    ngx_http_certsync_main_conf_t *mcf, ngx_http_certsync_cert_t *cert,
    ngx_http_certsync_decl_t *decl)
{
    int         changed;
    cs_rc       rc;
    unsigned    version;
    cs_bundle  *b;
    ngx_uint_t  expired;

    /* what the workers compare with at their first look */
    rc = cs_store_current_changed(mcf->store, cert->cc->name, &cert->seen, &changed);

    if (rc != CS_OK) {
        ngx_cpystrn((u_char *) cert->fallback_reason,
                    (u_char *) cs_error_last(), sizeof(cert->fallback_reason));
        ngx_log_error(NGX_LOG_ERR, cf->log, 0,
                      "certsync: \"%V\": %s; serving a self-signed fallback "
                      "and 503 until it can be read",
                      &decl->name, cs_error_last());

    } else if (!cert->seen.linked) {
        ngx_cpystrn((u_char *) cert->fallback_reason,
                    (u_char *) "no version yet", sizeof(cert->fallback_reason));
        ngx_log_error(NGX_LOG_ERR, cf->log, 0,
                      "certsync: \"%V\" has no version in the store %s yet; "
                      "serving a self-signed fallback and 503 until "
                      "`certsync sync` or `certsync import` installs one",
                      &decl->name, cs_store_path(mcf->store));

    } else if (ngx_http_certsync_load(mcf, cert, &version, &b, &expired)
               == NGX_OK)
    {
        if (expired) {
            ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                          "certsync: \"%V\" v%ud expired; serving it until "
                          "a valid version is installed", &decl->name,
                          version);
        }

        ngx_http_certsync_served(mcf, cert, b, version);

    } else if (cs_error_code() != CS_EBADCERT) {
        ngx_http_certsync_unreadable(cf, mcf, cert, decl);

    } else {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "certsync_certificate \"%V\" in %V:%ui: the current "
                      "version cannot be served: %s (`certsync rollback %V` "
                      "makes the previous one current)",
                      &decl->name, &decl->file, decl->line, cs_error_last(),
                      &decl->name);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The store refuses to read the current version (a symlink, a FIFO, a file
 * of a foreign owner: see "Trust boundary"). As in Apache, that is the case
 * of no usable version, so that the worker user cannot stop nginx from
 * (re)starting: a reload keeps the version the old configuration served,
 * a start serves the fallback and 503 until a readable version is current.
 */
static void
ngx_http_certsync_unreadable(ngx_conf_t *cf,
    ngx_http_certsync_main_conf_t *mcf, ngx_http_certsync_cert_t *cert,
    ngx_http_certsync_decl_t *decl)
{
    unsigned    version;
    cs_bundle  *b;
    ngx_uint_t  expired;

    ngx_cpystrn((u_char *) cert->fallback_reason,
                (u_char *) cs_error_last(), sizeof(cert->fallback_reason));

    b = ngx_http_certsync_kept(cf, mcf, cert, &version);

    if (b != NULL && ngx_http_certsync_check(cert, b, version, &expired)
                     == NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, cf->log, 0,
                      "certsync_certificate \"%V\" in %V:%ui: the store "
                      "refuses to read the current version: %s; keeping "
                      "v%ud, which nginx served before the reload",
                      &decl->name, &decl->file, decl->line,
                      cert->fallback_reason, version);
        ngx_http_certsync_served(mcf, cert, b, version);
        return;
    }

    cs_bundle_free(b);

    ngx_log_error(NGX_LOG_ERR, cf->log, 0,
                  "certsync_certificate \"%V\" in %V:%ui: the store refuses "
                  "to read the current version: %s; serving a self-signed "
                  "fallback and 503 until a readable version is current",
                  &decl->name, &decl->file, decl->line,
                  cert->fallback_reason);
}


/* A copy of what the configuration before a reload served of cert, or NULL. */
static cs_bundle *
ngx_http_certsync_kept(ngx_conf_t *cf, ngx_http_certsync_main_conf_t *mcf,
    ngx_http_certsync_cert_t *cert, unsigned *version)
{
    ngx_uint_t                      i;
    cs_bundle                      *b;
    ngx_cycle_t                    *old;
    ngx_http_certsync_cert_t      **certp;
    ngx_http_certsync_main_conf_t  *omcf;

    old = cf->cycle->old_cycle;

    if (old == NULL || ngx_is_init_cycle(old) || old->conf_ctx == NULL) {
        return NULL;
    }

    omcf = mcf->old_conf(old);
    if (omcf == NULL) {
        return NULL;
    }

    certp = omcf->certs.elts;

    for (i = 0; i < omcf->certs.nelts; i++) {
        if (certp[i]->bundle != NULL
            && ngx_strcmp(certp[i]->name.data, cert->name.data) == 0
            && cs_bundle_new(cs_bundle_leaf(certp[i]->bundle),
                             cs_bundle_issuers(certp[i]->bundle),
                             cs_bundle_key(certp[i]->bundle), &b)
               == CS_OK)
        {
            *version = certp[i]->version;
            return b;
        }
    }

    return NULL;
}


ngx_int_t
ngx_http_certsync_install_first(ngx_conf_t *cf,
    ngx_http_certsync_main_conf_t *mcf, ngx_http_certsync_use_t *use)
{
    ngx_http_certsync_cert_t  *cert;

    cert = use->cert;

    if (cert->bundle) {
        if (ngx_http_certsync_use_bundle(mcf, use, cert->bundle, cf->log)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "certsync_certificate \"%V\" in %V:%ui cannot be "
                          "served (see above)", &use->decl->name,
                          &use->decl->file, use->decl->line);
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    use->fallback = ngx_http_certsync_fallback(cf, mcf, use);
    if (use->fallback == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_certsync_use_bundle(mcf, use, use->fallback, cf->log)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* The configured key type, unless the other certificate has that slot. */
static ngx_uint_t
ngx_http_certsync_fallback_slot(ngx_http_certsync_use_t *use)
{
    ngx_uint_t                i, slot;
    ngx_http_certsync_use_t  *sib;

    switch (use->cert->cc->key_type) {
    case CS_KEY_RSA2048:
    case CS_KEY_RSA3072:
    case CS_KEY_RSA4096:
        slot = NGX_HTTP_CERTSYNC_SLOT_RSA;
        break;
    default:
        slot = NGX_HTTP_CERTSYNC_SLOT_EC;
    }

    sib = use->srv->uses.elts;

    for (i = 0; i < use->srv->uses.nelts; i++) {
        if (&sib[i] != use && sib[i].slot == slot) {
            slot = (slot == NGX_HTTP_CERTSYNC_SLOT_RSA)
                   ? NGX_HTTP_CERTSYNC_SLOT_EC : NGX_HTTP_CERTSYNC_SLOT_RSA;
        }
    }

    return slot;
}


/*
 * The core's self-signed fallback for the certificate's names (mod_md does
 * the same); the key of its slot is shared by every fallback of that type.
 */
static cs_bundle *
ngx_http_certsync_fallback(ngx_conf_t *cf, ngx_http_certsync_main_conf_t *mcf,
    ngx_http_certsync_use_t *use)
{
    cs_bundle         *b;
    ngx_uint_t         slot;
    cs_fallback_spec   spec;

    slot = ngx_http_certsync_fallback_slot(use);

    ngx_memzero(&spec, sizeof(cs_fallback_spec));
    spec.name = (char *) use->cert->name.data;
    spec.names = (const char *const *) use->cert->cc->domains;
    spec.n_names = use->cert->cc->n_domains;
    spec.key_type = (slot == NGX_HTTP_CERTSYNC_SLOT_RSA) ? CS_KEY_RSA2048
                                                         : CS_KEY_EC256;
    spec.key = mcf->fallback_key[slot];
    spec.now = ngx_time();

    if (cs_fallback_issue(&spec, &b) != CS_OK) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "certsync: the fallback certificate for \"%V\": %s",
                      &use->cert->name, cs_error_last());
        return NULL;
    }

    if (mcf->fallback_key[slot] == NULL) {
        mcf->fallback_key[slot] = cs_bundle_key(b);
        EVP_PKEY_up_ref(mcf->fallback_key[slot]);
    }

    return b;
}


/*
 * nginx derives the session id context from the certificates it loaded;
 * here it saw none, so two servers would share one. Ours names what the
 * server serves, so that a session never resumes on another server.
 */
ngx_int_t
ngx_http_certsync_session_context(ngx_conf_t *cf,
    ngx_http_certsync_srv_conf_t *cscf)
{
    int                       n, k;
    unsigned int              len;
    SSL_CTX                  *ctx;
    ngx_uint_t                i;
    EVP_MD_CTX               *md;
    X509_NAME                *name;
    STACK_OF(X509_NAME)      *list;
    ngx_http_certsync_use_t  *use;
    u_char                    buf[EVP_MAX_MD_SIZE];

    md = EVP_MD_CTX_new();
    if (md == NULL) {
        return NGX_ERROR;
    }

    if (EVP_DigestInit_ex(md, EVP_sha1(), NULL) == 0
        || EVP_DigestUpdate(md, "certsync", sizeof("certsync")) == 0)
    {
        goto failed;
    }

    use = cscf->uses.elts;
    ctx = use[0].ctx;

    for (i = 0; i < cscf->uses.nelts; i++) {
        if (EVP_DigestUpdate(md, use[i].cert->name.data,
                             use[i].cert->name.len + 1)
            == 0)
        {
            goto failed;
        }
    }

    list = SSL_CTX_get_client_CA_list(ctx);
    n = list ? sk_X509_NAME_num(list) : 0;

    for (k = 0; k < n; k++) {
        name = sk_X509_NAME_value(list, k);

        if (X509_NAME_digest(name, EVP_sha1(), buf, &len) == 0
            || EVP_DigestUpdate(md, buf, len) == 0)
        {
            goto failed;
        }
    }

    if (EVP_DigestFinal_ex(md, buf, &len) == 0
        || SSL_CTX_set_session_id_context(ctx, buf, len) == 0)
    {
        goto failed;
    }

    EVP_MD_CTX_free(md);

    return NGX_OK;

failed:

    ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0,
                  "certsync: setting the session id context failed");
    EVP_MD_CTX_free(md);

    return NGX_ERROR;
}


/* ---- loading and installing a version (configuration and the watch) ---- */

static ngx_uint_t
ngx_http_certsync_slot(EVP_PKEY *key)
{
    switch (EVP_PKEY_base_id(key)) {
    case EVP_PKEY_RSA:
        return NGX_HTTP_CERTSYNC_SLOT_RSA;
    case EVP_PKEY_EC:
        return NGX_HTTP_CERTSYNC_SLOT_EC;
    default:
        return NGX_HTTP_CERTSYNC_SLOT_OTHER;
    }
}


static const char *
ngx_http_certsync_slot_name(ngx_uint_t slot)
{
    static const char  *names[] = { "none", "RSA", "ECDSA", "other" };

    return names[slot];
}


/*
 * Load the current version and check it as the store does (key matches,
 * chain links, inside its validity, covers the configured names). An
 * expired version that is otherwise good is kept as a last resort.
 */
ngx_int_t
ngx_http_certsync_load(ngx_http_certsync_main_conf_t *mcf,
    ngx_http_certsync_cert_t *cert, unsigned *version, cs_bundle **out,
    ngx_uint_t *expired)
{
    cs_bundle  *b;

    *out = NULL;
    *expired = 0;

    if (cs_store_current(mcf->store, cert->cc->name, version) != CS_OK) {
        return NGX_ERROR;
    }

    if (cs_store_load(mcf->store, cert->cc->name, *version, &b) != CS_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_certsync_check(cert, b, *version, expired) != NGX_OK) {
        cs_bundle_free(b);
        return NGX_ERROR;
    }

    *out = b;

    return NGX_OK;
}


/*
 * The core's one policy (cs_serve_check): a version whose key, chain or
 * names fail is never served; an expired one that is otherwise good is,
 * with a warning, until a valid one exists.
 */
static ngx_int_t
ngx_http_certsync_check(ngx_http_certsync_cert_t *cert, const cs_bundle *b,
    unsigned version, ngx_uint_t *expired)
{
    char              origin[160];
    time_t            now;
    cs_serve_verdict  verdict;

    now = time(NULL);

    ngx_snprintf((u_char *) origin, sizeof(origin) - 1, "\"%V\" v%ud%Z",
                 &cert->name, version);

    if (cs_serve_check(b, cert->cc, now, origin, &verdict) != CS_OK) {
        return NGX_ERROR;
    }

    if (!cs_serve_replaces(verdict, b, cert->bundle, now)) {
        cs_error_set(CS_EBADCERT, "%s expired, and the version served is "
                     "valid or newer", origin);
        return NGX_ERROR;
    }

    *expired = (verdict == CS_SERVE_EXPIRED);

    return NGX_OK;
}


/* Remember b as what this process serves of cert (b is taken over). */
void
ngx_http_certsync_served(ngx_http_certsync_main_conf_t *mcf,
    ngx_http_certsync_cert_t *cert, cs_bundle *b, unsigned version)
{
    size_t  n;

    cs_bundle_free(cert->bundle);
    cs_strv_free(cert->names);

    cert->bundle = b;
    cert->version = version;
    cert->not_after = cs_bundle_not_after(b);
    cert->names = cs_bundle_names(b, &n);
    cert->loaded_at = ngx_time();
    cs_bundle_fingerprint(b, cert->fingerprint);

    /* the staple follows in the same step: no handshake falls in between */
    ngx_http_certsync_staple(mcf, cert, ngx_cycle->log);

    ngx_http_certsync_record(mcf, cert);
}


/* This worker's row of the status zone. */
void
ngx_http_certsync_record(ngx_http_certsync_main_conf_t *mcf,
    ngx_http_certsync_cert_t *cert)
{
    ngx_http_certsync_served_t  *row;

    if (mcf->sh == NULL || ngx_worker >= mcf->nworkers
        || (ngx_process != NGX_PROCESS_WORKER
            && ngx_process != NGX_PROCESS_SINGLE))
    {
        return;
    }

    row = &mcf->sh->served[cert->index * mcf->nworkers + ngx_worker];
    row->pid = ngx_pid;
    row->version = cert->bundle ? cert->version : 0;
    row->loaded_at = cert->loaded_at;
}


/*
 * Put b into one server's SSL_CTX: certificate, chain and key of its key
 * slot at once. An SSL_CTX holds one certificate per key type; the other
 * certificate of the server must not have that type already.
 */
ngx_int_t
ngx_http_certsync_use_bundle(ngx_http_certsync_main_conf_t *mcf,
    ngx_http_certsync_use_t *use, cs_bundle *b, ngx_log_t *log)
{
    ngx_uint_t                i, slot;
    ngx_http_certsync_use_t  *sib;

    slot = ngx_http_certsync_slot(cs_bundle_key(b));
    sib = use->srv->uses.elts;

    for (i = 0; i < use->srv->uses.nelts; i++) {
        if (&sib[i] != use && sib[i].slot == slot) {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "certsync: \"%V\" and \"%V\" are both %s "
                          "certificates of the server in %V:%ui; a server "
                          "takes one RSA and one ECDSA certificate",
                          &use->cert->name, &sib[i].cert->name,
                          ngx_http_certsync_slot_name(slot),
                          &use->decl->file, use->decl->line);
            return NGX_DECLINED;
        }
    }

    if (SSL_CTX_use_cert_and_key(use->ctx, cs_bundle_leaf(b), cs_bundle_key(b),
                                 cs_bundle_issuers(b), 1)
        != 1)
    {
        ngx_ssl_error(NGX_LOG_ERR, log, 0,
                      "certsync: SSL_CTX_use_cert_and_key(\"%V\") failed",
                      &use->cert->name);
        return NGX_ERROR;
    }

    if (use->slot != NGX_HTTP_CERTSYNC_SLOT_NONE && use->slot != slot
        && use->slot != NGX_HTTP_CERTSYNC_SLOT_OTHER)
    {
        ngx_http_certsync_retire(mcf, use, slot, log);
    }

    use->slot = slot;

    return NGX_OK;
}


/*
 * The key type changed: the old slot must not be offered any more. A
 * certificate whose key exists nowhere takes its place (and its key drops).
 */
static void
ngx_http_certsync_retire(ngx_http_certsync_main_conf_t *mcf,
    ngx_http_certsync_use_t *use, ngx_uint_t slot, ngx_log_t *log)
{
    BIO         *bio;
    const char  *pem;

    if (mcf->retired[use->slot] == NULL) {
        pem = (use->slot == NGX_HTTP_CERTSYNC_SLOT_RSA)
              ? ngx_http_certsync_retired_rsa
              : ngx_http_certsync_retired_ec;

        bio = BIO_new_mem_buf(pem, -1);
        if (bio) {
            mcf->retired[use->slot] = PEM_read_bio_X509(bio, NULL, NULL,
                                                        NULL);
            BIO_free(bio);
        }
    }

    if (mcf->retired[use->slot] == NULL
        || SSL_CTX_use_certificate(use->ctx, mcf->retired[use->slot]) != 1
        || SSL_CTX_clear_chain_certs(use->ctx) != 1)
    {
        ngx_ssl_error(NGX_LOG_ERR, log, 0,
                      "certsync: \"%V\" changed its key type from %s to "
                      "%s, and the %s certificate cannot be withdrawn; "
                      "it stays offered until nginx is reloaded",
                      &use->cert->name,
                      ngx_http_certsync_slot_name(use->slot),
                      ngx_http_certsync_slot_name(slot),
                      ngx_http_certsync_slot_name(use->slot));
    }
}


/* ---- OCSP stapling ---- */


/* One index per process, made on first use (first looks run before postconfiguration). */
static int
ngx_http_certsync_staple_index_get(void)
{
    if (ngx_http_certsync_staple_index == -1) {
        /*
         * no free callback: it would outlive this module after a reload
         * that drops it; the staple belongs to the certificate (cert_t)
         */
        ngx_http_certsync_staple_index = X509_get_ex_new_index(0, NULL, NULL,
                                                               NULL, NULL);
    }

    return ngx_http_certsync_staple_index;
}

/*
 * Every server with "ssl_stapling on" that takes a managed certificate
 * answers status requests from our callback: nginx's own stapling finds no
 * certificate there at configuration time (they come from the store), so
 * it would never staple them. The callback nginx set stays as the fallback
 * for a certificate of the server that is not ours (ssl_certificate).
 */
ngx_int_t
ngx_http_certsync_stapling(ngx_conf_t *cf, ngx_http_certsync_main_conf_t *mcf)
{
    ngx_uint_t                      i;
    ngx_http_certsync_srv_conf_t  **srvp;
    ngx_http_certsync_stapling_t   *st;

    if (ngx_http_certsync_staple_index_get() == -1) {
        ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0,
                      "certsync: X509_get_ex_new_index() failed");
        return NGX_ERROR;
    }

    srvp = mcf->servers.elts;

    for (i = 0; i < mcf->servers.nelts; i++) {
        if (!srvp[i]->sscf->stapling) {
            continue;
        }

        st = ngx_pcalloc(cf->pool, sizeof(ngx_http_certsync_stapling_t));
        if (st == NULL) {
            return NGX_ERROR;
        }

        SSL_CTX_get_tlsext_status_cb(srvp[i]->sscf->ssl.ctx, &st->prev);
        SSL_CTX_get_tlsext_status_arg(srvp[i]->sscf->ssl.ctx, &st->prev_arg);
        SSL_CTX_set_tlsext_status_cb(srvp[i]->sscf->ssl.ctx,
                                     ngx_http_certsync_status_cb);
        SSL_CTX_set_tlsext_status_arg(srvp[i]->sscf->ssl.ctx, st);
    }

    /* the workers' first looks at the staples compare with what is loaded now */
    return NGX_OK;
}


/*
 * Load the staple of the version cert serves (read and checked here, never
 * in a handshake) into cert, and point its leaf at cert. No staple, or one
 * that does not pass (expired, not for this certificate), drops the old one.
 */
void
ngx_http_certsync_staple(ngx_http_certsync_main_conf_t *mcf,
    ngx_http_certsync_cert_t *cert, ngx_log_t *log)
{
    int                changed;
    cs_rc              rc;
    size_t             len;
    u_char            *der;
    ngx_uint_t         had;
    cs_ocsp_response   r;

    if (ngx_http_certsync_staple_index_get() == -1 || cert->bundle == NULL) {
        return;
    }

    (void) cs_store_aside_changed(mcf->store, cert->cc->name, cert->version,
                                  "ocsp", &cert->staple_seen, &changed);

    rc = cs_ocsp_load(mcf->store, cert->cc->name, cert->version, cert->bundle,
                      0, &der, &len, &r);

    if (rc != CS_OK && rc != CS_ENOTFOUND) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "certsync: \"%V\" v%ud is served without an OCSP "
                      "staple: %s", &cert->name, cert->version,
                      cs_error_last());
    }

    had = (cert->staple != NULL);

    /* a handshake copies the staple: the old one can go at once */
    free(cert->staple);

    cert->staple = (rc == CS_OK) ? der : NULL;
    cert->staple_len = (rc == CS_OK) ? len : 0;
    cert->staple_until = (rc == CS_OK) ? r.next_update : 0;

    /* set even without a staple: a leaf kept over a reload points here now */
    if (X509_set_ex_data(cs_bundle_leaf(cert->bundle),
                         ngx_http_certsync_staple_index, cert)
        != 1)
    {
        ngx_ssl_error(NGX_LOG_WARN, log, 0,
                      "certsync: \"%V\": X509_set_ex_data() failed",
                      &cert->name);
    }

    if (cert->staple) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "certsync: \"%V\" v%ud: OCSP staple loaded, valid "
                      "until %T", &cert->name, cert->version,
                      cert->staple_until);

    } else if (had) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "certsync: \"%V\" v%ud: the OCSP staple is withdrawn",
                      &cert->name, cert->version);
    }
}


/* The cycle's end: the staple of a certificate goes with it. */
ngx_int_t
ngx_http_certsync_staple_init(ngx_conf_t *cf, ngx_http_certsync_cert_t *cert)
{
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_certsync_staple_cleanup;
    cln->data = cert;

    return NGX_OK;
}


static void
ngx_http_certsync_staple_cleanup(void *data)
{
    ngx_http_certsync_cert_t  *cert = data;

    free(cert->staple);
    cert->staple = NULL;
}


/*
 * A status request: the staple of the certificate this handshake uses,
 * from memory; not when the leaf is no longer the one served (a handshake
 * that began before a swap), nor when it expired (the client would refuse
 * it).
 */
static int
ngx_http_certsync_status_cb(SSL *ssl, void *arg)
{
    X509                          *x;
    u_char                        *p;
    ngx_http_certsync_cert_t      *cert;
    ngx_http_certsync_stapling_t  *stapling = arg;

    x = SSL_get_certificate(ssl);
    cert = x ? X509_get_ex_data(x, ngx_http_certsync_staple_index) : NULL;

    if (cert == NULL) {
        return stapling->prev ? stapling->prev(ssl, stapling->prev_arg)
                              : SSL_TLSEXT_ERR_NOACK;
    }

    if (cert->staple == NULL || cert->bundle == NULL
        || cs_bundle_leaf(cert->bundle) != x
        || cert->staple_until <= ngx_time())
    {
        return SSL_TLSEXT_ERR_NOACK;
    }

    /* OpenSSL frees what it is given */
    p = OPENSSL_malloc(cert->staple_len);
    if (p == NULL) {
        return SSL_TLSEXT_ERR_NOACK;
    }

    ngx_memcpy(p, cert->staple, cert->staple_len);

    if (SSL_set_tlsext_status_ocsp_resp(ssl, p, cert->staple_len) != 1) {
        OPENSSL_free(p);
        return SSL_TLSEXT_ERR_NOACK;
    }

    return SSL_TLSEXT_ERR_OK;
}


/* certsync_config FILE, in http{} or stream{}: read certsync.conf once. */
char *
ngx_http_certsync_config(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_certsync_main_conf_t *mcf = conf;

    ngx_str_t  *value;

    if (mcf->config.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    mcf->config = value[1];

    if (ngx_conf_full_name(cf->cycle, &mcf->config, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_certsync_load_config(cf, mcf) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"certsync_config\": %s", cs_error_last());
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * The main conf both modules start from: the certificate and server arrays,
 * the cleanup that frees what they load, and how to find the conf of the
 * cycle before a reload.
 */
ngx_http_certsync_main_conf_t *
ngx_http_certsync_main_conf_new(ngx_conf_t *cf,
    void *(*old_conf)(ngx_cycle_t *cycle))
{
    ngx_pool_cleanup_t             *cln;
    ngx_http_certsync_main_conf_t  *mcf;

    mcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_certsync_main_conf_t));
    if (mcf == NULL) {
        return NULL;
    }

    mcf->watch_interval = NGX_CONF_UNSET_MSEC;
    mcf->old_conf = old_conf;

    if (ngx_array_init(&mcf->certs, cf->pool, 4,
                       sizeof(ngx_http_certsync_cert_t *))
        != NGX_OK
        || ngx_array_init(&mcf->servers, cf->pool, 4,
                          sizeof(ngx_http_certsync_srv_conf_t *))
           != NGX_OK)
    {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_certsync_cleanup;
    cln->data = mcf;

    return mcf;
}


void
ngx_http_certsync_cleanup(void *data)
{
    ngx_http_certsync_main_conf_t *mcf = data;

    ngx_uint_t                  i, j, k;
    ngx_http_certsync_use_t   **usep;
    ngx_http_certsync_cert_t  **certp;

    certp = mcf->certs.elts;

    for (i = 0; i < mcf->certs.nelts; i++) {
        cs_bundle_free(certp[i]->bundle);
        cs_strv_free(certp[i]->names);

        usep = certp[i]->uses.elts;

        for (j = 0; j < certp[i]->uses.nelts; j++) {
            cs_bundle_free(usep[j]->fallback);
        }
    }

    for (k = 0; k < NGX_HTTP_CERTSYNC_SLOTS; k++) {
        EVP_PKEY_free(mcf->fallback_key[k]);
        X509_free(mcf->retired[k]);
    }

    cs_store_free(mcf->store);
    cs_config_free(mcf->cfg);
}
