/*
 * ngx_stream_certsync_module: certsync_certificate in stream{} servers
 * ("listen ... ssl": TLS for TCP proxies and mail). The certificates are
 * loaded, checked, put into the server's SSL_CTX and swapped on a new
 * version by the code of ngx_http_certsync_module (ngx_http_certsync_ssl.c,
 * ngx_http_certsync_watch.c), compiled into this module too: its own main
 * conf, certificates and watcher (inotify and the stat check) in every
 * worker. No sync, validation, status or stapling here: those are http's.
 */


#include "ngx_http_certsync.h"

#include <ngx_stream.h>


#if !(NGX_STREAM_SSL)
#error ngx_stream_certsync_module needs nginx configured --with-stream_ssl_module
#endif


static void *ngx_stream_certsync_create_main_conf(ngx_conf_t *cf);
static char *ngx_stream_certsync_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_stream_certsync_create_srv_conf(ngx_conf_t *cf);
static char *ngx_stream_certsync_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);
static void *ngx_stream_certsync_old_conf(ngx_cycle_t *old);
static ngx_int_t ngx_stream_certsync_init_process(ngx_cycle_t *cycle);
static void ngx_stream_certsync_exit_process(ngx_cycle_t *cycle);
static char *ngx_stream_certsync_certificate(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);


/*
 * the stream directives have the names of the http ones; nginx tells them
 * apart by the block they are in (as ssl_certificate)
 */
static ngx_command_t  ngx_stream_certsync_commands[] = {

    { ngx_string("certsync_config"),
      NGX_STREAM_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_certsync_config,
      NGX_STREAM_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("certsync_certificate"),
      NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_stream_certsync_certificate,
      NGX_STREAM_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("certsync_watch_interval"),
      NGX_STREAM_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_STREAM_MAIN_CONF_OFFSET,
      offsetof(ngx_http_certsync_main_conf_t, watch_interval),
      NULL },

      ngx_null_command
};


static ngx_stream_module_t  ngx_stream_certsync_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_stream_certsync_create_main_conf,  /* create main configuration */
    ngx_stream_certsync_init_main_conf,    /* init main configuration */

    ngx_stream_certsync_create_srv_conf,   /* create server configuration */
    ngx_stream_certsync_merge_srv_conf     /* merge server configuration */
};


ngx_module_t  ngx_stream_certsync_module = {
    NGX_MODULE_V1,
    &ngx_stream_certsync_module_ctx,       /* module context */
    ngx_stream_certsync_commands,          /* module directives */
    NGX_STREAM_MODULE,                     /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_stream_certsync_init_process,      /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_stream_certsync_exit_process,      /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_stream_certsync_create_main_conf(ngx_conf_t *cf)
{
    return ngx_http_certsync_main_conf_new(cf, ngx_stream_certsync_old_conf);
}


static char *
ngx_stream_certsync_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_certsync_main_conf_t *mcf = conf;

    ngx_conf_init_msec_value(mcf->watch_interval, NGX_HTTP_CERTSYNC_WATCH);

    if (mcf->watch_interval < NGX_HTTP_CERTSYNC_POLL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"certsync_watch_interval\" in stream{} must be at "
                      "least %ums", NGX_HTTP_CERTSYNC_POLL);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void *
ngx_stream_certsync_create_srv_conf(ngx_conf_t *cf)
{
    /* set by ngx_pcalloc(): decls = NULL, uses = { 0 }, sscf = NULL */

    return ngx_pcalloc(cf->pool, sizeof(ngx_http_certsync_srv_conf_t));
}


/*
 * Runs after ngx_stream_ssl_module's merge (it precedes us in the module
 * list), which has created the server's SSL_CTX with no certificate.
 */
static char *
ngx_stream_certsync_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_certsync_srv_conf_t *conf = child;

    ngx_stream_ssl_conf_t          *sslcf;
    ngx_http_certsync_decl_t       *decl;
    ngx_http_certsync_main_conf_t  *mcf;

    if (conf->decls == NULL) {
        return NGX_CONF_OK;
    }

    mcf = ngx_stream_conf_get_module_main_conf(cf, ngx_stream_certsync_module);
    sslcf = ngx_stream_conf_get_module_srv_conf(cf, ngx_stream_ssl_module);
    decl = conf->decls->elts;

    if (sslcf->certificates->nelts) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"certsync_certificate\" in %V:%ui cannot be combined "
                      "with \"ssl_certificate\" in the same server; remove "
                      "one of them", &decl[0].file, decl[0].line);
        return NGX_CONF_ERROR;
    }

    if (sslcf->ssl.ctx == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"certsync_certificate\" in %V:%ui: the server has no "
                      "\"listen ... ssl\"; add \"ssl\" to its listen",
                      &decl[0].file, decl[0].line);
        return NGX_CONF_ERROR;
    }

    if (mcf->cfg == NULL) {
        /* no certsync_config: the default file, like the certsync command */
        ngx_str_set(&mcf->config, CS_DEFAULT_CONFIG);

        if (ngx_http_certsync_load_config(cf, mcf) != NGX_OK) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "certsync: no \"certsync_config\" in stream{}, and "
                          "the default %s cannot be used: %s",
                          CS_DEFAULT_CONFIG, cs_error_last());
            return NGX_CONF_ERROR;
        }
    }

    if (ngx_http_certsync_add_server(cf, mcf, conf, sslcf->ssl.ctx)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* Our main conf in the cycle before a reload, or NULL. */
static void *
ngx_stream_certsync_old_conf(ngx_cycle_t *old)
{
    if (ngx_stream_module.index >= old->modules_n
        || old->conf_ctx[ngx_stream_module.index] == NULL)
    {
        return NULL;
    }

    return ngx_stream_cycle_get_module_main_conf(old,
                                                 ngx_stream_certsync_module);
}


static ngx_int_t
ngx_stream_certsync_init_process(ngx_cycle_t *cycle)
{
    ngx_http_certsync_main_conf_t  *mcf;

    if (cycle->conf_ctx[ngx_stream_module.index] == NULL) {
        return NGX_OK;
    }

    mcf = ngx_stream_cycle_get_module_main_conf(cycle,
                                                ngx_stream_certsync_module);

    if (mcf == NULL || mcf->certs.nelts == 0
        || (ngx_process != NGX_PROCESS_WORKER
            && ngx_process != NGX_PROCESS_SINGLE))
    {
        return NGX_OK;
    }

    return ngx_http_certsync_watch_init(cycle, mcf);
}


static void
ngx_stream_certsync_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_certsync_main_conf_t  *mcf;

    if (cycle->conf_ctx[ngx_stream_module.index] == NULL) {
        return;
    }

    mcf = ngx_stream_cycle_get_module_main_conf(cycle,
                                                ngx_stream_certsync_module);

    if (mcf) {
        ngx_http_certsync_watch_exit(mcf);
    }
}


/* ---- directives ---- */

static char *
ngx_stream_certsync_certificate(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_certsync_srv_conf_t *cscf = conf;

    char                   *rv;
    ngx_str_t              *value;
    ngx_stream_ssl_conf_t  *sslcf;

    value = cf->args->elts;

    rv = ngx_http_certsync_declare(cf, cscf, &value[1]);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    sslcf = ngx_stream_conf_get_module_srv_conf(cf, ngx_stream_ssl_module);

    /*
     * Empty lists of certificates and keys: ngx_stream_ssl_module creates
     * the SSL_CTX for "listen ... ssl" and loads no file; an ssl_certificate
     * in the same server adds to them, which our merge refuses.
     */
    if (sslcf->certificates == NGX_CONF_UNSET_PTR) {
        sslcf->certificates = ngx_array_create(cf->pool, 1, sizeof(ngx_str_t));
        if (sslcf->certificates == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (sslcf->certificate_keys == NGX_CONF_UNSET_PTR) {
        sslcf->certificate_keys = ngx_array_create(cf->pool, 1,
                                                   sizeof(ngx_str_t));
        if (sslcf->certificate_keys == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}
