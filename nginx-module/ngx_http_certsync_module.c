/*
 * ngx_http_certsync_module: nginx serves certsync's managed certificates by
 * name, and every worker swaps in a new version without a reload.
 *
 *   certsync_config          the shared certsync.conf (http)
 *   certsync_certificate     serve a managed certificate (server; RSA + ECDSA)
 *   certsync_watch_interval  the stat check under inotify (http)
 *   certsync_sync            run the core's sync in nginx's thread pool (http)
 *   certsync_validation      answer FILE validation and ACME http-01 (server)
 *   certsync_status          JSON / HTML status of what is served (location)
 *
 * At configuration time the current version of each certificate is loaded
 * into its servers' SSL_CTX (so `nginx -t` checks it); with no version yet a
 * self-signed fallback for the server's names is served. At run time every
 * worker learns of a switch of `current` from inotify in its event loop (a
 * stat timer backs it up), loads and checks the new version once, and puts
 * it into its own SSL_CTXs. SSL_new() copies the context's certificate, so
 * handshakes under way keep theirs; the handshake path itself is untouched.
 *
 * This file: the directives, the configuration, the start of a worker.
 */


#include "ngx_http_certsync.h"

#include "cs_sync.h"            /* cs_store_open_config() */


static void *ngx_http_certsync_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_certsync_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_certsync_create_srv_conf(ngx_conf_t *cf);
static char *ngx_http_certsync_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_certsync_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_certsync_init_zone(ngx_shm_zone_t *zone, void *data);
static ngx_int_t ngx_http_certsync_init_process(ngx_cycle_t *cycle);
static void ngx_http_certsync_exit_process(ngx_cycle_t *cycle);
static void *ngx_http_certsync_old_conf(ngx_cycle_t *old);

static char *ngx_http_certsync_certificate(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_certsync_sync(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_certsync_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


static ngx_conf_enum_t  ngx_http_certsync_flag[] = {
    { ngx_string("off"), 0 },
    { ngx_string("on"), 1 },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_certsync_commands[] = {

    { ngx_string("certsync_config"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_certsync_config,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("certsync_certificate"),
      NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_certsync_certificate,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("certsync_watch_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_certsync_main_conf_t, watch_interval),
      NULL },

    { ngx_string("certsync_sync"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_certsync_sync,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("certsync_sync_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_certsync_main_conf_t, sync_interval),
      NULL },

    { ngx_string("certsync_validation"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_certsync_srv_conf_t, validation),
      NULL },

    { ngx_string("certsync_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_certsync_status,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_certsync_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_certsync_postconfiguration,   /* postconfiguration */

    ngx_http_certsync_create_main_conf,    /* create main configuration */
    ngx_http_certsync_init_main_conf,      /* init main configuration */

    ngx_http_certsync_create_srv_conf,     /* create server configuration */
    ngx_http_certsync_merge_srv_conf,      /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_certsync_module = {
    NGX_MODULE_V1,
    &ngx_http_certsync_module_ctx,         /* module context */
    ngx_http_certsync_commands,            /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_certsync_init_process,        /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_certsync_exit_process,        /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/* ---- configuration ---- */

static void *
ngx_http_certsync_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_certsync_main_conf_t  *mcf;

    mcf = ngx_http_certsync_main_conf_new(cf, ngx_http_certsync_old_conf);
    if (mcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     mcf->config = { 0, NULL };
     *     mcf->cfg = NULL;
     *     mcf->store = NULL;
     *     mcf->sh = NULL;
     */

    mcf->sync = NGX_CONF_UNSET;
    mcf->sync_interval = NGX_CONF_UNSET_MSEC;

    if (ngx_array_init(&mcf->status_locs, cf->pool, 1,
                       sizeof(ngx_http_core_loc_conf_t *))
        != NGX_OK)
    {
        return NULL;
    }

    return mcf;
}


/* Our main conf in the cycle before a reload, or NULL. */
static void *
ngx_http_certsync_old_conf(ngx_cycle_t *old)
{
    if (old->conf_ctx[ngx_http_module.index] == NULL) {
        return NULL;
    }

    return ngx_http_cycle_get_module_main_conf(old, ngx_http_certsync_module);
}


static char *
ngx_http_certsync_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_certsync_main_conf_t *mcf = conf;

    ngx_conf_init_value(mcf->sync, 0);
    ngx_conf_init_msec_value(mcf->sync_interval, 3600000);
    ngx_conf_init_msec_value(mcf->watch_interval, NGX_HTTP_CERTSYNC_WATCH);

    if (mcf->sync_interval < 1000) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"certsync_sync_interval\" must be at least 1s");
        return NGX_CONF_ERROR;
    }

    if (mcf->watch_interval < NGX_HTTP_CERTSYNC_POLL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"certsync_watch_interval\" must be at least %ums",
                      NGX_HTTP_CERTSYNC_POLL);
        return NGX_CONF_ERROR;
    }

    if (mcf->cfg == NULL && (mcf->declared || mcf->sync)) {
        /* no certsync_config: the default file, like the certsync command */
        ngx_str_set(&mcf->config, CS_DEFAULT_CONFIG);

        if (ngx_http_certsync_load_config(cf, mcf) != NGX_OK) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "certsync: no \"certsync_config\" in http{}, and "
                          "the default %s cannot be used: %s",
                          CS_DEFAULT_CONFIG, cs_error_last());
            return NGX_CONF_ERROR;
        }
    }

    if (mcf->sync && ngx_http_certsync_sync_check(cf, mcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_certsync_create_srv_conf(ngx_conf_t *cf)
{
    ngx_http_certsync_srv_conf_t  *cscf;

    cscf = ngx_pcalloc(cf->pool, sizeof(ngx_http_certsync_srv_conf_t));
    if (cscf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     cscf->decls = NULL;
     *     cscf->uses = { 0 };
     *     cscf->rejecting = 0;
     */

    cscf->validation = NGX_CONF_UNSET;

    return cscf;
}


/*
 * This runs after ngx_http_ssl_module's merge (a dynamic module comes after
 * the static ones), so the server's SSL_CTX exists: ssl_reject_handshake,
 * set by certsync_certificate, made the ssl module create it without an
 * ssl_certificate. The certificates go into it here.
 */
static char *
ngx_http_certsync_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_certsync_srv_conf_t *prev = parent;
    ngx_http_certsync_srv_conf_t *conf = child;

    ngx_http_certsync_decl_t        *decl;
    ngx_http_certsync_main_conf_t   *mcf;

    ngx_conf_merge_value(conf->validation, prev->validation, 0);

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_certsync_module);

    if (conf->validation) {
        mcf->validation = 1;
    }

    if (conf->decls == NULL) {
        return NGX_CONF_OK;
    }

    conf->sscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_ssl_module);
    conf->cscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_core_module);
    decl = conf->decls->elts;

    if (conf->sscf->certificates) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"certsync_certificate\" in %V:%ui cannot be combined "
                      "with \"ssl_certificate\" (given in this server or "
                      "inherited from http{}); remove one of them",
                      &decl[0].file, decl[0].line);
        return NGX_CONF_ERROR;
    }

    if (conf->sscf->ssl.ctx == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"certsync_certificate\" in %V:%ui: the server has no "
                      "SSL context", &decl[0].file, decl[0].line);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_certsync_add_server(cf, mcf, conf, conf->sscf->ssl.ctx)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_certsync_alpn_setup(cf, mcf, conf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_certsync_postconfiguration(ngx_conf_t *cf)
{
    size_t                          size;
    ngx_str_t                       name;
    ngx_uint_t                      i;
    ngx_core_conf_t                *ccf;
    ngx_shm_zone_t                 *zone;
    ngx_http_handler_pt            *h;
    ngx_http_core_main_conf_t      *cmcf;
    ngx_http_certsync_srv_conf_t  **srvp;
    ngx_http_certsync_main_conf_t  *mcf;

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_certsync_module);

    /*
     * ngx_http_ssl_module's postconfiguration (which wants a certificate or
     * ssl_reject_handshake for every "listen ... ssl") has run: the servers
     * that have their certificates now from us accept handshakes again.
     */

    srvp = mcf->servers.elts;

    for (i = 0; i < mcf->servers.nelts; i++) {
        if (srvp[i]->rejecting) {
            srvp[i]->sscf->reject_handshake = 0;
        }
    }

    if (mcf->validation
        && mcf->store == NULL
        && ngx_http_certsync_load_config(cf, mcf) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"certsync_validation\" needs the store of "
                      "certsync.conf: %s", cs_error_last());
        return NGX_ERROR;
    }

    if (mcf->validation || mcf->certs.nelts) {
        cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

        /* before the rewrite phases: a "return 301" must not hide it */
        h = ngx_array_push(&cmcf->phases[NGX_HTTP_POST_READ_PHASE].handlers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        *h = ngx_http_certsync_post_read_handler;
    }

    if (mcf->certs.nelts == 0) {
        return NGX_OK;
    }

    /* after ngx_http_ssl_module's postconfiguration, which sets its own */
    if (ngx_http_certsync_stapling(cf, mcf) != NGX_OK) {
        return NGX_ERROR;
    }

    /*
     * The status zone has a row per worker; worker_processes may still be
     * unset here (it is resolved after the whole file is read).
     */

    ccf = (ngx_core_conf_t *) ngx_get_conf(cf->cycle->conf_ctx,
                                           ngx_core_module);

    mcf->nworkers = ngx_max((ngx_uint_t) ngx_ncpu, 1);

    if (ccf->worker_processes != NGX_CONF_UNSET
        && (ngx_uint_t) ccf->worker_processes > mcf->nworkers)
    {
        mcf->nworkers = ccf->worker_processes;
    }

    size = offsetof(ngx_http_certsync_shm_t, served)
           + mcf->certs.nelts * mcf->nworkers
             * sizeof(ngx_http_certsync_served_t);
    size = ngx_align(size, ngx_pagesize) + 8 * ngx_pagesize;

    ngx_str_set(&name, "certsync");

    zone = ngx_shared_memory_add(cf, &name, size, &ngx_http_certsync_module);
    if (zone == NULL) {
        return NGX_ERROR;
    }

    zone->init = ngx_http_certsync_init_zone;
    zone->data = mcf;

    /*
     * a new zone in every cycle: workers of the previous one may still be
     * finishing and write their own rows and lock
     */
    zone->noreuse = 1;

    return NGX_OK;
}


static ngx_int_t
ngx_http_certsync_init_zone(ngx_shm_zone_t *zone, void *data)
{
    size_t                          size;
    uint64_t                        now, first;
    ngx_time_t                     *tp;
    ngx_slab_pool_t                *shpool;
    ngx_http_certsync_shm_t        *sh;
    ngx_http_certsync_main_conf_t  *mcf;

    mcf = zone->data;
    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    size = offsetof(ngx_http_certsync_shm_t, served)
           + mcf->certs.nelts * mcf->nworkers
             * sizeof(ngx_http_certsync_served_t);

    sh = ngx_slab_calloc(shpool, size);
    if (sh == NULL) {
        return NGX_ERROR;
    }

    sh->ncerts = mcf->certs.nelts;
    sh->nworkers = mcf->nworkers;

    /* the first sync soon after start, at a random moment */
    tp = ngx_timeofday();
    now = (uint64_t) tp->sec * 1000 + tp->msec;
    first = ngx_min(mcf->sync_interval, NGX_HTTP_CERTSYNC_FIRST_SYNC);
    sh->next_sync = now + (uint64_t) ngx_random() % (first + 1);

    shpool->data = sh;
    mcf->sh = sh;

    return NGX_OK;
}


static ngx_int_t
ngx_http_certsync_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                      i;
    ngx_http_certsync_cert_t      **certp;
    ngx_http_certsync_main_conf_t  *mcf;

    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_certsync_module);

    if (mcf == NULL || mcf->certs.nelts == 0 || mcf->sh == NULL) {
        return NGX_OK;
    }

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    if (ngx_worker >= mcf->nworkers) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "certsync: worker %ui is beyond the %ui rows of the "
                      "status zone; put \"worker_processes\" before http{} "
                      "to size it", ngx_worker, mcf->nworkers);
    }

    certp = mcf->certs.elts;

    for (i = 0; i < mcf->certs.nelts; i++) {
        ngx_http_certsync_record(mcf, certp[i]);
    }

    if (ngx_http_certsync_watch_init(cycle, mcf) != NGX_OK) {
        return NGX_ERROR;
    }

#if (NGX_THREADS)

    if (mcf->sync && ngx_http_certsync_sync_init(cycle, mcf) != NGX_OK) {
        return NGX_ERROR;
    }

#endif

    return NGX_OK;
}


static void
ngx_http_certsync_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_certsync_main_conf_t  *mcf;

    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_certsync_module);

    if (mcf) {
        ngx_http_certsync_watch_exit(mcf);
    }
}


/* ---- directives ---- */

static char *
ngx_http_certsync_certificate(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_certsync_srv_conf_t *cscf = conf;

    char                           *rv;
    ngx_str_t                      *value;
    ngx_http_ssl_srv_conf_t        *sscf;
    ngx_http_certsync_main_conf_t  *mcf;

    value = cf->args->elts;
    rv = ngx_http_certsync_declare(cf, cscf, &value[1]);

    if (rv != NGX_CONF_OK) {
        return rv;
    }

    sscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_ssl_module);

    if (cscf->decls->nelts == 1) {
        if (sscf->reject_handshake != NGX_CONF_UNSET) {
            return "cannot be combined with \"ssl_reject_handshake\"";
        }

        /*
         * Makes ngx_http_ssl_module create the SSL_CTX with no
         * ssl_certificate and accept "listen ... ssl"; cleared again in
         * our postconfiguration, once the certificates are in.
         */
        sscf->reject_handshake = 1;
        cscf->rejecting = 1;
    }

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_certsync_module);
    mcf->declared = 1;

    return NGX_CONF_OK;
}


static char *
ngx_http_certsync_sync(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_certsync_main_conf_t *mcf = conf;

    ngx_str_t   *value;
    ngx_uint_t   i;

    if (mcf->sync != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 0; ngx_http_certsync_flag[i].name.len; i++) {
        if (ngx_strcmp(value[1].data, ngx_http_certsync_flag[i].name.data)
            == 0)
        {
            break;
        }
    }

    if (ngx_http_certsync_flag[i].name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\" in \"certsync_sync\", "
                           "it must be \"on\" or \"off\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    mcf->sync = ngx_http_certsync_flag[i].value;
    mcf->sync_file = cf->conf_file->file.name.data;
    mcf->sync_line = cf->conf_file->line;
    ngx_str_set(&mcf->pool_name, "default");

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "thread_pool=", 12) != 0
            || value[2].len == 12)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" in "
                               "\"certsync_sync\", it must be "
                               "\"thread_pool=NAME\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        mcf->pool_name.data = value[2].data + 12;
        mcf->pool_name.len = value[2].len - 12;
    }

    if (!mcf->sync) {
        return NGX_CONF_OK;
    }

#if (NGX_THREADS)

    /* the "default" pool exists once named; others need "thread_pool" */
    if (ngx_thread_pool_add(cf, &mcf->pool_name) == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;

#else

    return "needs nginx built --with-threads (the sync runs in its "
           "thread pool)";

#endif
}


static char *
ngx_http_certsync_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_certsync_main_conf_t *mcf = conf;

    ngx_http_core_loc_conf_t   *clcf, **locp;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_certsync_status_handler;

    /* answered even while a fallback makes the server answer 503 */
    locp = ngx_array_push(&mcf->status_locs);
    if (locp == NULL) {
        return NGX_CONF_ERROR;
    }

    *locp = clcf;

    return NGX_CONF_OK;
}
