/*
 * ngx_http_certsync_module: nginx serves certsync's managed certificates by
 * name, and every worker swaps in a new version without a reload.
 *
 *   certsync_config         the shared certsync.conf (http)
 *   certsync_certificate    serve a managed certificate (server; RSA + ECDSA)
 *   certsync_sync           run the core's sync in nginx's thread pool (http)
 *   certsync_validation     answer FILE validation and ACME http-01 (server)
 *   certsync_status         JSON / HTML status of what is served (location)
 *
 * At configuration time the current version of each certificate is loaded
 * into its servers' SSL_CTX (so `nginx -t` checks it); with no version yet a
 * self-signed fallback for the server's names is served. At run time a timer
 * in every worker lstat()s each certificate's `current` link; when its inode
 * changes the new version is loaded and checked once, on the timer, and put
 * into the worker's own SSL_CTXs. SSL_new() copies the context's certificate,
 * so handshakes under way keep theirs; the handshake path itself is untouched.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#if (NGX_THREADS)
#include <ngx_thread_pool.h>
#endif

#include <jansson.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include "cs_bundle.h"
#include "cs_config.h"
#include "cs_crypt.h"
#include "cs_error.h"
#include "cs_store.h"
#include "cs_sync.h"


#if !(NGX_HTTP_SSL)
#error ngx_http_certsync_module needs nginx configured --with-http_ssl_module
#endif

#if OPENSSL_VERSION_NUMBER < 0x10101000L
#error ngx_http_certsync_module needs OpenSSL 1.1.1 or newer
#endif


/* ms between two looks at `current`, and at the sync schedule */
#define NGX_HTTP_CERTSYNC_WATCH          250
#define NGX_HTTP_CERTSYNC_TICK           1000
/* the first sync within this many ms of the start */
#define NGX_HTTP_CERTSYNC_FIRST_SYNC     5000
/* retry after a failed sync in so many ms, doubling up to the max */
#define NGX_HTTP_CERTSYNC_BACKOFF_MIN    5000
#define NGX_HTTP_CERTSYNC_BACKOFF_MAX    3600000
#define NGX_HTTP_CERTSYNC_FALLBACK_DAYS  30
#define NGX_HTTP_CERTSYNC_MAX_FILE       65536    /* a validation file */

/* the key slots of an SSL_CTX this module fills */
#define NGX_HTTP_CERTSYNC_SLOT_NONE      0
#define NGX_HTTP_CERTSYNC_SLOT_RSA       1
#define NGX_HTTP_CERTSYNC_SLOT_EC        2
#define NGX_HTTP_CERTSYNC_SLOT_OTHER     3
#define NGX_HTTP_CERTSYNC_SLOTS          4


typedef struct ngx_http_certsync_cert_s      ngx_http_certsync_cert_t;
typedef struct ngx_http_certsync_srv_conf_s  ngx_http_certsync_srv_conf_t;


/* a certsync_certificate directive, kept for messages */
typedef struct {
    ngx_str_t                      name;      /* NUL-terminated */
    ngx_str_t                      file;
    ngx_uint_t                     line;
} ngx_http_certsync_decl_t;


/* one managed certificate in one server's SSL_CTX */
typedef struct {
    ngx_http_certsync_cert_t      *cert;
    ngx_http_certsync_srv_conf_t  *srv;
    ngx_http_certsync_decl_t      *decl;
    SSL_CTX                       *ctx;
    cs_bundle                     *fallback;  /* self-signed, server's names */
    ngx_uint_t                     slot;      /* key slot it fills in ctx */
} ngx_http_certsync_use_t;


/* one managed certificate, shared by the servers that name it */
struct ngx_http_certsync_cert_s {
    ngx_str_t                      name;      /* NUL-terminated */
    const cs_cert_conf            *cc;
    ngx_uint_t                     index;     /* row in the status zone */
    char                          *link;      /* <store>/certs/<name>/current */
    ngx_array_t                    uses;      /* of ngx_http_certsync_use_t * */

    /* what this process serves; changed by the watch timer */
    cs_bundle                     *bundle;    /* NULL: the fallback */
    unsigned                       version;
    char                           fingerprint[65];
    time_t                         not_after;
    char                         **names;
    time_t                         loaded_at;

    /* `current` as seen by the last look */
    unsigned                       linked:1;
    unsigned                       lstat_failed:1;
    dev_t                          dev;
    ino_t                          ino;
    struct timespec                ctime;
};


struct ngx_http_certsync_srv_conf_s {
    ngx_array_t                   *decls;     /* of ngx_http_certsync_decl_t */
    ngx_array_t                    uses;      /* of ngx_http_certsync_use_t */
    ngx_flag_t                     validation;
    ngx_http_ssl_srv_conf_t       *sscf;
    ngx_http_core_srv_conf_t      *cscf;
    unsigned                       rejecting:1;  /* we set reject_handshake */
};


/* what one worker serves of one certificate (status zone) */
typedef struct {
    ngx_pid_t                      pid;
    uint32_t                       version;   /* 0: the fallback */
    time_t                         loaded_at;
} ngx_http_certsync_served_t;


typedef struct {
    ngx_atomic_t                   lock;      /* pid that syncs; 0: none */
    uint64_t                       next_sync; /* ms since the epoch */
    ngx_uint_t                     failures;  /* failed runs in a row */
    time_t                         last_start;
    time_t                         last_end;
    time_t                         last_success;
    ngx_uint_t                     last_installed;
    ngx_uint_t                     last_failed;
    char                           last_error[1024];
    ngx_uint_t                     ncerts;
    ngx_uint_t                     nworkers;
    ngx_http_certsync_served_t     served[1]; /* ncerts x nworkers */
} ngx_http_certsync_shm_t;


typedef struct {
    ngx_str_t                      config;    /* certsync_config, full path */
    cs_config                     *cfg;
    cs_store                      *store;
    ngx_flag_t                     sync;
    ngx_msec_t                     sync_interval;
    ngx_str_t                      pool_name;
#if (NGX_THREADS)
    ngx_thread_pool_t             *pool;
    ngx_thread_task_t             *task;
#endif
    ngx_array_t                    certs;     /* of cert_t * */
    ngx_array_t                    servers;   /* of srv_conf_t * */
    ngx_uint_t                     declared;  /* certsync_certificate seen */
    ngx_uint_t                     validation;
    ngx_uint_t                     nworkers;
    ngx_http_certsync_shm_t       *sh;
    EVP_PKEY                      *fallback_key[NGX_HTTP_CERTSYNC_SLOTS];
    X509                          *retired[NGX_HTTP_CERTSYNC_SLOTS];
    ngx_event_t                    watch;
    ngx_event_t                    tick;
    unsigned                       syncing:1;
} ngx_http_certsync_main_conf_t;


/* one run of the sync in a thread; filled there, read on the event loop */
typedef struct {
    ngx_http_certsync_main_conf_t *mcf;
    ngx_uint_t                     installed;
    ngx_uint_t                     failed;
    char                           summary[512];
    char                           error[1024];
} ngx_http_certsync_run_t;


static void *ngx_http_certsync_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_certsync_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_certsync_create_srv_conf(ngx_conf_t *cf);
static char *ngx_http_certsync_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_certsync_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_certsync_init_process(ngx_cycle_t *cycle);

static char *ngx_http_certsync_config(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_certsync_certificate(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_certsync_sync(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_certsync_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

static ngx_int_t ngx_http_certsync_load_config(ngx_conf_t *cf,
    ngx_http_certsync_main_conf_t *mcf);
static void ngx_http_certsync_cleanup(void *data);
static ngx_http_certsync_cert_t *ngx_http_certsync_get_cert(ngx_conf_t *cf,
    ngx_http_certsync_main_conf_t *mcf, ngx_http_certsync_decl_t *decl);
static ngx_int_t ngx_http_certsync_install_first(ngx_conf_t *cf,
    ngx_http_certsync_main_conf_t *mcf, ngx_http_certsync_use_t *use);
static cs_bundle *ngx_http_certsync_fallback(ngx_conf_t *cf,
    ngx_http_certsync_main_conf_t *mcf, ngx_http_certsync_use_t *use);
static ngx_int_t ngx_http_certsync_session_context(ngx_conf_t *cf,
    ngx_http_certsync_srv_conf_t *cscf);
static ngx_int_t ngx_http_certsync_init_zone(ngx_shm_zone_t *zone, void *data);

static ngx_uint_t ngx_http_certsync_slot(EVP_PKEY *key);
static const char *ngx_http_certsync_slot_name(ngx_uint_t slot);
static ngx_int_t ngx_http_certsync_use_bundle(
    ngx_http_certsync_main_conf_t *mcf, ngx_http_certsync_use_t *use,
    cs_bundle *b, ngx_log_t *log);
static ngx_int_t ngx_http_certsync_check(ngx_http_certsync_cert_t *cert,
    cs_bundle *b, unsigned version, ngx_uint_t *expired);
static ngx_int_t ngx_http_certsync_load(ngx_http_certsync_main_conf_t *mcf,
    ngx_http_certsync_cert_t *cert, unsigned *version, cs_bundle **out,
    ngx_uint_t *expired);
static void ngx_http_certsync_served(ngx_http_certsync_main_conf_t *mcf,
    ngx_http_certsync_cert_t *cert, cs_bundle *b, unsigned version);
static void ngx_http_certsync_record(ngx_http_certsync_main_conf_t *mcf,
    ngx_http_certsync_cert_t *cert);

static void ngx_http_certsync_watch(ngx_event_t *ev);
static void ngx_http_certsync_look(ngx_http_certsync_main_conf_t *mcf,
    ngx_http_certsync_cert_t *cert, ngx_log_t *log);
static void ngx_http_certsync_swap(ngx_http_certsync_main_conf_t *mcf,
    ngx_http_certsync_cert_t *cert, ngx_log_t *log);

#if (NGX_THREADS)
static void ngx_http_certsync_tick(ngx_event_t *ev);
static ngx_uint_t ngx_http_certsync_trylock(ngx_http_certsync_shm_t *sh,
    ngx_log_t *log);
static void ngx_http_certsync_sync_thread(void *data, ngx_log_t *log);
static void ngx_http_certsync_sync_done(ngx_event_t *ev);
#endif

static ngx_int_t ngx_http_certsync_validation_handler(ngx_http_request_t *r);
static ngx_uint_t ngx_http_certsync_token(ngx_str_t *t);
static ngx_int_t ngx_http_certsync_status_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_certsync_send(ngx_http_request_t *r,
    ngx_uint_t status, const char *type, u_char *data, size_t len);
static json_t *ngx_http_certsync_status_json(
    ngx_http_certsync_main_conf_t *mcf);
static char *ngx_http_certsync_status_html(json_t *j, size_t *len);


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
      0,
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
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


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


/* ---- configuration ---- */

static void *
ngx_http_certsync_create_main_conf(ngx_conf_t *cf)
{
    ngx_pool_cleanup_t             *cln;
    ngx_http_certsync_main_conf_t  *mcf;

    mcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_certsync_main_conf_t));
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


static char *
ngx_http_certsync_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_certsync_main_conf_t *mcf = conf;

    ngx_conf_init_value(mcf->sync, 0);
    ngx_conf_init_msec_value(mcf->sync_interval, 3600000);

    if (mcf->sync_interval < 1000) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"certsync_sync_interval\" must be at least 1s");
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

    ngx_uint_t                       i;
    ngx_http_certsync_use_t         *use, **usep;
    ngx_http_certsync_decl_t        *decl;
    ngx_http_certsync_cert_t        *cert;
    ngx_http_certsync_srv_conf_t   **srvp;
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

    if (ngx_array_init(&conf->uses, cf->pool, conf->decls->nelts,
                       sizeof(ngx_http_certsync_use_t))
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < conf->decls->nelts; i++) {

        cert = ngx_http_certsync_get_cert(cf, mcf, &decl[i]);
        if (cert == NULL) {
            return NGX_CONF_ERROR;
        }

        use = ngx_array_push(&conf->uses);
        if (use == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(use, sizeof(ngx_http_certsync_use_t));
        use->cert = cert;
        use->srv = conf;
        use->decl = &decl[i];
        use->ctx = conf->sscf->ssl.ctx;

        /* conf->uses never grows beyond its first allocation */
        usep = ngx_array_push(&cert->uses);
        if (usep == NULL) {
            return NGX_CONF_ERROR;
        }

        *usep = use;
    }

    use = conf->uses.elts;

    for (i = 0; i < conf->uses.nelts; i++) {
        if (ngx_http_certsync_install_first(cf, mcf, &use[i]) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    if (ngx_http_certsync_session_context(cf, conf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    srvp = ngx_array_push(&mcf->servers);
    if (srvp == NULL) {
        return NGX_CONF_ERROR;
    }

    *srvp = conf;

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

    if (mcf->validation) {
        if (mcf->store == NULL
            && ngx_http_certsync_load_config(cf, mcf) != NGX_OK)
        {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"certsync_validation\" needs the store of "
                          "certsync.conf: %s", cs_error_last());
            return NGX_ERROR;
        }

        cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

        /* before the rewrite phases: a "return 301" must not hide it */
        h = ngx_array_push(&cmcf->phases[NGX_HTTP_POST_READ_PHASE].handlers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        *h = ngx_http_certsync_validation_handler;
    }

    if (mcf->certs.nelts == 0) {
        return NGX_OK;
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

    mcf->watch.handler = ngx_http_certsync_watch;
    mcf->watch.data = mcf;
    mcf->watch.log = cycle->log;
    mcf->watch.cancelable = 1;

    /* the store may have moved on between the configuration and now */
    ngx_http_certsync_watch(&mcf->watch);

#if (NGX_THREADS)

    if (mcf->sync) {
        mcf->task = ngx_thread_task_alloc(cycle->pool,
                                          sizeof(ngx_http_certsync_run_t));
        if (mcf->task == NULL) {
            return NGX_ERROR;
        }

        mcf->pool = ngx_thread_pool_get(cycle, &mcf->pool_name);
        if (mcf->pool == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "certsync: thread pool \"%V\" not found",
                          &mcf->pool_name);
            return NGX_ERROR;
        }

        mcf->tick.handler = ngx_http_certsync_tick;
        mcf->tick.data = mcf;
        mcf->tick.log = cycle->log;
        mcf->tick.cancelable = 1;

        ngx_add_timer(&mcf->tick, NGX_HTTP_CERTSYNC_TICK);
    }

#endif

    return NGX_OK;
}


static void
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


/* ---- directives ---- */

static char *
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


static ngx_int_t
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


static char *
ngx_http_certsync_certificate(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_certsync_srv_conf_t *cscf = conf;

    ngx_str_t                      *value;
    ngx_uint_t                      i;
    ngx_http_ssl_srv_conf_t        *sscf;
    ngx_http_certsync_decl_t       *decl;
    ngx_http_certsync_main_conf_t  *mcf;

    value = cf->args->elts;

    if (!cs_name_valid((char *) value[1].data)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"certsync_certificate\" wants the name of a "
                           "[cert NAME] in certsync.conf (letters, digits, "
                           "'.', '_', '-'), not \"%V\"", &value[1]);
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
        if (ngx_strcmp(decl[i].name.data, value[1].data) == 0) {
            return "names this certificate twice";
        }
    }

    if (cscf->decls->nelts == 2) {
        return "is given more than twice; a server takes two "
               "certificates at most, one RSA and one ECDSA";
    }

    sscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_ssl_module);

    if (cscf->decls->nelts == 0) {
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

    decl = ngx_array_push(cscf->decls);
    if (decl == NULL) {
        return NGX_CONF_ERROR;
    }

    decl->name = value[1];
    decl->file = cf->conf_file->file.name;
    decl->line = cf->conf_file->line;

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
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_certsync_status_handler;

    return NGX_CONF_OK;
}


/* ---- configuration time: certificates into SSL contexts ---- */

static ngx_http_certsync_cert_t *
ngx_http_certsync_get_cert(ngx_conf_t *cf, ngx_http_certsync_main_conf_t *mcf,
    ngx_http_certsync_decl_t *decl)
{
    char                       link[4096];
    size_t                     len;
    unsigned                   version;
    cs_bundle                 *b;
    ngx_uint_t                 i, expired;
    struct stat                st;
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

    len = ngx_strlen(link) + 1;

    cert->link = ngx_pnalloc(cf->pool, len);
    if (cert->link == NULL) {
        return NULL;
    }

    ngx_memcpy(cert->link, link, len);

    /* what the workers compare with at their first look */
    if (lstat(cert->link, &st) == 0) {
        cert->linked = 1;
        cert->dev = st.st_dev;
        cert->ino = st.st_ino;
        cert->ctime = st.st_ctim;
    }

    if (!cert->linked) {
        ngx_log_error(NGX_LOG_ERR, cf->log, 0,
                      "certsync: \"%V\" has no version in the store %s yet; "
                      "serving a self-signed fallback for its servers' names "
                      "until `certsync sync` or `certsync import` installs "
                      "one", &decl->name, cs_store_path(mcf->store));

    } else if (ngx_http_certsync_load(mcf, cert, &version, &b, &expired)
               != NGX_OK)
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "certsync_certificate \"%V\" in %V:%ui: the current "
                      "version cannot be served: %s (`certsync rollback %V` "
                      "makes the previous one current)",
                      &decl->name, &decl->file, decl->line, cs_error_last(),
                      &decl->name);
        return NULL;

    } else {
        if (expired) {
            ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                          "certsync: \"%V\" v%ud expired; serving it until "
                          "a valid version is installed", &decl->name,
                          version);
        }

        ngx_http_certsync_served(mcf, cert, b, version);
    }

    cert->loaded_at = ngx_time();

    certp = ngx_array_push(&mcf->certs);
    if (certp == NULL) {
        return NULL;
    }

    *certp = cert;

    return cert;
}


static ngx_int_t
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


/* A self-signed certificate for the server's names (mod_md does the same). */
static cs_bundle *
ngx_http_certsync_fallback(ngx_conf_t *cf, ngx_http_certsync_main_conf_t *mcf,
    ngx_http_certsync_use_t *use)
{
    X509                      *x509;
    time_t                     now;
    u_char                    *p;
    cs_bundle                 *b;
    ngx_str_t                 *n;
    ngx_uint_t                 i, k, slot, nnames;
    cs_cert_spec               spec;
    const char               **names;
    ngx_http_server_name_t    *sn;
    ngx_http_certsync_use_t   *sib;
    ngx_http_core_srv_conf_t  *cscf;

    cscf = use->srv->cscf;
    sn = cscf->server_names.elts;

    names = ngx_pcalloc(cf->pool, (cscf->server_names.nelts * 2
                                   + use->cert->cc->n_domains + 2)
                                  * sizeof(char *));
    if (names == NULL) {
        return NULL;
    }

    nnames = 0;

    for (i = 0; i < cscf->server_names.nelts; i++) {
        n = &sn[i].name;

#if (NGX_PCRE)
        if (sn[i].regex) {
            continue;
        }
#endif

        if (n->len == 0 || ngx_strlchr(n->data, n->data + n->len, '.') == NULL)
        {
            continue;   /* "", "_", "localhost"-like catch-alls */
        }

        p = ngx_pnalloc(cf->pool, n->len + 2);
        if (p == NULL) {
            return NULL;
        }

        if (n->data[0] == '.') {
            /* ".example.com" is example.com and *.example.com */
            ngx_cpystrn(p, n->data + 1, n->len);
            names[nnames++] = (char *) p;

            p = ngx_pnalloc(cf->pool, n->len + 2);
            if (p == NULL) {
                return NULL;
            }

            *p = '*';
            ngx_cpystrn(p + 1, n->data, n->len + 1);

        } else {
            ngx_cpystrn(p, n->data, n->len + 1);
        }

        names[nnames++] = (char *) p;
    }

    for (k = 0; nnames == 0 && k < use->cert->cc->n_domains; k++) {
        names[nnames++] = use->cert->cc->domains[k];
    }

    if (nnames == 0) {
        names[nnames++] = (char *) use->cert->name.data;
    }

    /* the configured key type, unless the other certificate has that slot */
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

    if (mcf->fallback_key[slot] == NULL
        && cs_key_generate(slot == NGX_HTTP_CERTSYNC_SLOT_RSA
                           ? CS_KEY_RSA2048 : CS_KEY_EC256,
                           &mcf->fallback_key[slot])
           != CS_OK)
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "certsync: the fallback key for \"%V\": %s",
                      &use->cert->name, cs_error_last());
        return NULL;
    }

    now = ngx_time();

    spec.common_name = names[0];
    spec.names = names;
    spec.n_names = nnames;
    spec.is_ca = 0;
    spec.not_before = now - 3600;
    spec.not_after = now + NGX_HTTP_CERTSYNC_FALLBACK_DAYS * 86400;

    if (cs_cert_issue(&spec, mcf->fallback_key[slot], NULL,
                      mcf->fallback_key[slot], &x509)
        != CS_OK)
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "certsync: the fallback certificate for \"%V\": %s",
                      &use->cert->name, cs_error_last());
        return NULL;
    }

    if (cs_bundle_new(&b, x509, NULL, mcf->fallback_key[slot]) != CS_OK) {
        X509_free(x509);
        return NULL;
    }

    X509_free(x509);

    return b;
}


/*
 * nginx derives the session id context from the certificates it loaded;
 * here it saw none, so two servers would share one. Ours names what the
 * server serves, so that a session never resumes on another server.
 */
static ngx_int_t
ngx_http_certsync_session_context(ngx_conf_t *cf,
    ngx_http_certsync_srv_conf_t *cscf)
{
    int                       n, k;
    unsigned int              len;
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

    for (i = 0; i < cscf->uses.nelts; i++) {
        if (EVP_DigestUpdate(md, use[i].cert->name.data,
                             use[i].cert->name.len + 1)
            == 0)
        {
            goto failed;
        }
    }

    list = SSL_CTX_get_client_CA_list(cscf->sscf->ssl.ctx);
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
        || SSL_CTX_set_session_id_context(cscf->sscf->ssl.ctx, buf, len) == 0)
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
static ngx_int_t
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


static ngx_int_t
ngx_http_certsync_check(ngx_http_certsync_cert_t *cert, cs_bundle *b,
    unsigned version, ngx_uint_t *expired)
{
    char                 origin[160];
    time_t               now, not_after;
    const char *const   *names;

    now = time(NULL);
    not_after = cs_bundle_not_after(b);
    names = (const char *const *) cert->cc->domains;

    ngx_snprintf((u_char *) origin, sizeof(origin) - 1, "\"%V\" v%ud%Z",
                 &cert->name, version);

    if (cs_bundle_validate(b, names, cert->cc->n_domains, now, origin)
        == CS_OK)
    {
        return NGX_OK;
    }

    if (now <= not_after
        || cs_bundle_validate(b, names, cert->cc->n_domains, not_after - 1,
                              origin)
           != CS_OK)
    {
        return NGX_ERROR;
    }

    if (cert->bundle && cs_bundle_not_after(cert->bundle) > not_after) {
        cs_error_set(CS_EBADCERT, "%s expired, and the one served is newer",
                     origin);
        return NGX_ERROR;
    }

    *expired = 1;

    return NGX_OK;
}


/* Remember b as what this process serves of cert (b is taken over). */
static void
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

    ngx_http_certsync_record(mcf, cert);
}


/* This worker's row of the status zone. */
static void
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
static ngx_int_t
ngx_http_certsync_use_bundle(ngx_http_certsync_main_conf_t *mcf,
    ngx_http_certsync_use_t *use, cs_bundle *b, ngx_log_t *log)
{
    BIO                      *bio;
    ngx_uint_t                i, slot;
    const char               *pem;
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
        /* the key type changed: the old slot must not be offered any more */
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

    use->slot = slot;

    return NGX_OK;
}


/* ---- run time: the watch ---- */

static void
ngx_http_certsync_watch(ngx_event_t *ev)
{
    ngx_uint_t                      i;
    ngx_http_certsync_cert_t      **certp;
    ngx_http_certsync_main_conf_t  *mcf;

    mcf = ev->data;
    certp = mcf->certs.elts;

    for (i = 0; i < mcf->certs.nelts; i++) {
        ngx_http_certsync_look(mcf, certp[i], ev->log);
    }

    if (!ngx_exiting && !ngx_quit && !ngx_terminate) {
        ngx_add_timer(ev, NGX_HTTP_CERTSYNC_WATCH);
    }
}


/* One lstat() of `current`: its inode changes at every switch. */
static void
ngx_http_certsync_look(ngx_http_certsync_main_conf_t *mcf,
    ngx_http_certsync_cert_t *cert, ngx_log_t *log)
{
    ngx_err_t    err;
    struct stat  st;

    if (lstat(cert->link, &st) == -1) {
        err = ngx_errno;

        if (err != NGX_ENOENT && !cert->lstat_failed) {
            ngx_log_error(NGX_LOG_ERR, log, err,
                          "certsync: lstat(\"%s\") failed; \"%V\" stays as "
                          "it is", cert->link, &cert->name);
        }

        cert->lstat_failed = (err != NGX_ENOENT);
        cert->linked = 0;
        return;
    }

    cert->lstat_failed = 0;

    if (cert->linked
        && st.st_ino == cert->ino && st.st_dev == cert->dev
        && st.st_ctim.tv_sec == cert->ctime.tv_sec
        && st.st_ctim.tv_nsec == cert->ctime.tv_nsec)
    {
        return;
    }

    /* tried once per switch: a version that fails is not retried */
    cert->linked = 1;
    cert->dev = st.st_dev;
    cert->ino = st.st_ino;
    cert->ctime = st.st_ctim;

    ngx_http_certsync_swap(mcf, cert, log);
}


static void
ngx_http_certsync_swap(ngx_http_certsync_main_conf_t *mcf,
    ngx_http_certsync_cert_t *cert, ngx_log_t *log)
{
    u_char                     was[32];
    unsigned                   version;
    cs_bundle                 *b;
    ngx_uint_t                 i, n, expired;
    ngx_http_certsync_use_t  **usep;

    if (cert->bundle) {
        ngx_snprintf(was, sizeof(was), "v%ud%Z", cert->version);

    } else {
        ngx_cpystrn(was, (u_char *) "the fallback", sizeof(was));
    }

    version = 0;

    if (ngx_http_certsync_load(mcf, cert, &version, &b, &expired) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "certsync: \"%V\": the new current version is not "
                      "served: %s; %s stays", &cert->name, cs_error_last(),
                      was);
        return;
    }

    if (cert->bundle && version == cert->version) {
        cs_bundle_free(b);    /* `current` was rewritten, not switched */
        return;
    }

    usep = cert->uses.elts;
    n = 0;

    for (i = 0; i < cert->uses.nelts; i++) {
        if (ngx_http_certsync_use_bundle(mcf, usep[i], b, log) == NGX_OK) {
            n++;
        }
    }

    if (n == 0) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "certsync: \"%V\" v%ud is not served (see above); %s "
                      "stays", &cert->name, version, was);
        cs_bundle_free(b);
        return;
    }

    if (expired) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "certsync: \"%V\" v%ud expired; serving it until a "
                      "valid version is installed", &cert->name, version);
    }

    ngx_http_certsync_served(mcf, cert, b, version);

    ngx_log_error(NGX_LOG_NOTICE, log, 0,
                  "certsync: \"%V\" v%ud is served now (was %s), sha256 %s",
                  &cert->name, version, was, cert->fingerprint);
}


/* ---- run time: the sync in the thread pool ---- */

#if (NGX_THREADS)

static uint64_t
ngx_http_certsync_now_ms(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (uint64_t) tp->sec * 1000 + tp->msec;
}


static void
ngx_http_certsync_tick(ngx_event_t *ev)
{
    ngx_http_certsync_run_t        *run;
    ngx_http_certsync_shm_t        *sh;
    ngx_http_certsync_main_conf_t  *mcf;

    mcf = ev->data;
    sh = mcf->sh;

    if (!mcf->syncing
        && ngx_http_certsync_now_ms() >= sh->next_sync
        && ngx_http_certsync_trylock(sh, ev->log))
    {
        if (ngx_http_certsync_now_ms() < sh->next_sync) {
            /* another worker has just finished one */
            (void) ngx_atomic_cmp_set(&sh->lock, ngx_pid, 0);
            goto next;
        }

        run = mcf->task->ctx;
        ngx_memzero(run, sizeof(ngx_http_certsync_run_t));
        run->mcf = mcf;

        mcf->task->handler = ngx_http_certsync_sync_thread;
        mcf->task->event.handler = ngx_http_certsync_sync_done;
        mcf->task->event.data = mcf;
        mcf->task->event.log = ev->log;

        sh->last_start = ngx_time();

        if (ngx_thread_task_post(mcf->pool, mcf->task) != NGX_OK) {
            (void) ngx_atomic_cmp_set(&sh->lock, ngx_pid, 0);
            goto next;
        }

        mcf->syncing = 1;
    }

next:

    if (!ngx_exiting && !ngx_quit && !ngx_terminate) {
        ngx_add_timer(ev, NGX_HTTP_CERTSYNC_TICK);
    }
}


/*
 * One worker at a time runs the sync. The lock word holds the pid of the
 * holder; a holder that died (its thread cannot release) is replaced.
 */
static ngx_uint_t
ngx_http_certsync_trylock(ngx_http_certsync_shm_t *sh, ngx_log_t *log)
{
    ngx_atomic_uint_t  pid;

    pid = sh->lock;

    if (pid == 0) {
        return ngx_atomic_cmp_set(&sh->lock, 0, ngx_pid);
    }

    if (pid == (ngx_atomic_uint_t) ngx_pid) {
        return 0;
    }

    if (kill((ngx_pid_t) pid, 0) == -1 && ngx_errno == NGX_ESRCH
        && ngx_atomic_cmp_set(&sh->lock, pid, ngx_pid))
    {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "certsync: process %P died while it held the sync "
                      "lock; taking it over", (ngx_pid_t) pid);
        return 1;
    }

    return 0;
}


/* In a thread of the pool: blocking calls are fine here, nginx's are not. */
static void
ngx_http_certsync_sync_thread(void *data, ngx_log_t *log)
{
    ngx_http_certsync_run_t *run = data;

    size_t                          len;
    cs_store                       *s;
    ngx_uint_t                      i;
    cs_sync_outcome                 out;
    cs_sync_session                *sess;
    ngx_http_certsync_cert_t      **certp;
    ngx_http_certsync_main_conf_t  *mcf;

    mcf = run->mcf;
    certp = mcf->certs.elts;

    /* a handle of its own: the event loop reads the store meanwhile */
    if (cs_store_open_config(mcf->cfg, &s) != CS_OK) {
        run->failed = mcf->certs.nelts;
        snprintf(run->error, sizeof(run->error), "%s", cs_error_last());
        return;
    }

    sess = cs_sync_session_new(mcf->cfg);

    for (i = 0; i < mcf->certs.nelts; i++) {

        if (cs_sync_cert(sess, s, certp[i]->cc, 0, &out) != CS_OK) {
            if (run->failed++ == 0) {
                snprintf(run->error, sizeof(run->error), "\"%s\": %s",
                         certp[i]->cc->name, cs_error_last());
            }

            continue;
        }

        if (out.result == CS_SYNC_INSTALLED) {
            run->installed++;
            len = strlen(run->summary);
            snprintf(run->summary + len, sizeof(run->summary) - len,
                     "%s\"%s\" v%u", len ? ", " : "", certp[i]->cc->name,
                     out.version);
        }
    }

    cs_sync_session_free(sess);
    cs_store_free(s);
}


static void
ngx_http_certsync_sync_done(ngx_event_t *ev)
{
    uint64_t                        delay;
    ngx_uint_t                      i;
    ngx_http_certsync_run_t        *run;
    ngx_http_certsync_shm_t        *sh;
    ngx_http_certsync_cert_t      **certp;
    ngx_http_certsync_main_conf_t  *mcf;

    mcf = ev->data;
    sh = mcf->sh;
    run = mcf->task->ctx;

    mcf->syncing = 0;

    sh->last_end = ngx_time();
    sh->last_installed = run->installed;
    sh->last_failed = run->failed;
    ngx_cpystrn((u_char *) sh->last_error, (u_char *) run->error,
                sizeof(sh->last_error));

    if (run->failed) {
        sh->failures++;
        delay = (uint64_t) NGX_HTTP_CERTSYNC_BACKOFF_MIN
                << ngx_min(sh->failures - 1, 20);
        delay = ngx_min(delay, NGX_HTTP_CERTSYNC_BACKOFF_MAX);

        ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                      "certsync: the sync failed for %ui of %ui "
                      "certificates (%ui in a row), next attempt in %uLs: %s",
                      run->failed, mcf->certs.nelts, sh->failures,
                      delay / 1000, run->error);

    } else {
        sh->failures = 0;
        sh->last_success = sh->last_end;
        delay = mcf->sync_interval;
    }

    if (run->installed) {
        ngx_log_error(NGX_LOG_NOTICE, ev->log, 0,
                      "certsync: the sync installed %s", run->summary);
    }

    /* +-10% so that many servers do not ask the provider at one instant */
    delay = delay * 9 / 10 + (uint64_t) ngx_random() % (delay / 5 + 1);
    sh->next_sync = ngx_http_certsync_now_ms() + delay;

    (void) ngx_atomic_cmp_set(&sh->lock, ngx_pid, 0);

    /* this worker serves what it installed at once; the others within 250ms */
    certp = mcf->certs.elts;

    for (i = 0; i < mcf->certs.nelts; i++) {
        ngx_http_certsync_look(mcf, certp[i], ev->log);
    }
}

#endif


/* ---- requests: validation ---- */

/*
 * GET /.well-known/pki-validation/fileauth.txt and
 * GET /.well-known/acme-challenge/TOKEN for the request's Host, from
 * <store>/challenges/<host>/, where `certsync apply` puts them: read
 * through the store API (no symlink, no FIFO), under the writer's host
 * rule. A small file read, off the handshake path.
 */
static ngx_int_t
ngx_http_certsync_validation_handler(ngx_http_request_t *r)
{
    u_char                         *body;
    char                           *data, *host, *file;
    size_t                          len;
    ngx_str_t                       rest;
    ngx_int_t                       rc;
    ngx_uint_t                      i, level;
    const char                     *kind;
    ngx_http_certsync_srv_conf_t   *cscf;
    ngx_http_certsync_main_conf_t  *mcf;

    static ngx_str_t  pki = ngx_string("/.well-known/pki-validation/");
    static ngx_str_t  acme = ngx_string("/.well-known/acme-challenge/");

    cscf = ngx_http_get_module_srv_conf(r, ngx_http_certsync_module);

    if (!cscf->validation
        || !(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))
        || r != r->main)
    {
        return NGX_DECLINED;
    }

    if (r->uri.len > pki.len
        && ngx_strncmp(r->uri.data, pki.data, pki.len) == 0)
    {
        rest.data = r->uri.data + pki.len;
        rest.len = r->uri.len - pki.len;

        if (rest.len != sizeof("fileauth.txt") - 1
            || ngx_strncmp(rest.data, "fileauth.txt", rest.len) != 0)
        {
            return NGX_DECLINED;
        }

        kind = "pki-validation";

    } else if (r->uri.len > acme.len
               && ngx_strncmp(r->uri.data, acme.data, acme.len) == 0)
    {
        rest.data = r->uri.data + acme.len;
        rest.len = r->uri.len - acme.len;

        if (!ngx_http_certsync_token(&rest)) {
            return NGX_HTTP_NOT_FOUND;
        }

        kind = "acme-challenge";

    } else {
        return NGX_DECLINED;
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

    body = ngx_pnalloc(r->pool, len + 1);
    if (body == NULL) {
        free(data);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(body, data, len);
    free(data);

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "certsync: answered %s for \"%s\"", kind, host);

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_certsync_send(r, NGX_HTTP_OK, "text/plain", body, len);

    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
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


static ngx_int_t
ngx_http_certsync_send(ngx_http_request_t *r, ngx_uint_t status,
    const char *type, u_char *data, size_t len)
{
    ngx_buf_t    *b;
    ngx_int_t     rc;
    ngx_chain_t   out;

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;
    r->headers_out.content_type.data = (u_char *) type;
    r->headers_out.content_type.len = ngx_strlen(type);
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only || len == 0) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = data;
    b->last = data + len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/* ---- requests: status ---- */

static ngx_int_t
ngx_http_certsync_status_handler(ngx_http_request_t *r)
{
    char                           *s;
    u_char                         *body;
    size_t                          len;
    json_t                         *j;
    ngx_int_t                       rc;
    ngx_str_t                       format;
    ngx_uint_t                      html;
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

    if (html) {
        s = ngx_http_certsync_status_html(j, &len);

    } else {
        s = json_dumps(j, JSON_INDENT(2));
        len = s ? strlen(s) : 0;
    }

    json_decref(j);

    if (s == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body = ngx_pnalloc(r->pool, len + 1);
    if (body == NULL) {
        free(s);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(body, s, len);
    body[len++] = '\n';
    free(s);

    return ngx_http_certsync_send(r, NGX_HTTP_OK,
                                  html ? "text/html; charset=utf-8"
                                       : "application/json",
                                  body, len);
}


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


static void
ngx_http_certsync_html_text(FILE *f, const char *s)
{
    for ( /* void */ ; s && *s; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '&':
            fputs("&amp;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}


static void
ngx_http_certsync_html_row(FILE *f, const char *key, json_t *v)
{
    char    buf[32];
    size_t  i;
    json_t *e;

    fprintf(f, "<tr><th>%s</th><td>", key);

    if (json_is_string(v)) {
        ngx_http_certsync_html_text(f, json_string_value(v));

    } else if (json_is_integer(v)) {
        snprintf(buf, sizeof(buf), "%lld", (long long) json_integer_value(v));
        fputs(buf, f);

    } else if (json_is_array(v)) {
        json_array_foreach(v, i, e) {
            fputs(i ? ", " : "", f);
            ngx_http_certsync_html_text(f, json_string_value(e));
        }

    } else {
        fputs("&mdash;", f);
    }

    fputs("</td></tr>\n", f);
}


/* A card per certificate, for a person (the console's card view). */
static char *
ngx_http_certsync_status_html(json_t *j, size_t *len)
{
    FILE        *f;
    char        *out;
    size_t       i, k;
    json_t      *c, *w, *v, *sync, *err;
    long long    days;
    const char  *state, *cls;

    out = NULL;
    *len = 0;

    f = open_memstream(&out, len);
    if (f == NULL) {
        return NULL;
    }

    fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
          "<title>certsync: certificates of this nginx</title>\n<style>"
          "body{font-family:sans-serif;margin:2em;background:#f5f6f8}"
          ".card{background:#fff;border-radius:6px;padding:1em 1.5em;"
          "margin:0 0 1em;box-shadow:0 1px 3px #0002;max-width:60em}"
          ".badge{padding:.2em .6em;border-radius:1em;color:#fff;"
          "font-size:.8em;margin-left:.6em}"
          ".ok{background:#2a8}.warn{background:#d90}.bad{background:#c33}"
          "th{text-align:left;padding-right:1.5em;color:#555;font-weight:"
          "normal;vertical-align:top}td{font-family:monospace}"
          "</style></head><body>\n<h1>Certificates of this nginx</h1>\n", f);

    json_array_foreach(json_object_get(j, "certificates"), i, c) {
        days = json_integer_value(json_object_get(c, "days_left"));
        err = json_object_get(c, "last_error");

        if (json_is_true(json_object_get(c, "fallback"))) {
            state = "fallback: no version yet";
            cls = "bad";

        } else if (days < 0) {
            state = "expired";
            cls = "bad";

        } else if (json_is_string(err)) {
            state = "last sync failed";
            cls = "warn";

        } else if (days < 30) {
            state = "expires soon";
            cls = "warn";

        } else {
            state = "ok";
            cls = "ok";
        }

        fputs("<div class=\"card\"><h2>", f);
        ngx_http_certsync_html_text(f,
                            json_string_value(json_object_get(c, "name")));
        fprintf(f, "<span class=\"badge %s\">%s</span></h2>\n<table>\n",
                cls, state);

        ngx_http_certsync_html_row(f, "version served",
                                   json_object_get(c, "version"));
        ngx_http_certsync_html_row(f, "version in the store",
                                   json_object_get(c, "store_version"));
        ngx_http_certsync_html_row(f, "names", json_object_get(c, "names"));
        ngx_http_certsync_html_row(f, "not after",
                                   json_object_get(c, "not_after"));
        ngx_http_certsync_html_row(f, "days left",
                                   json_object_get(c, "days_left"));
        ngx_http_certsync_html_row(f, "SHA-256",
                                   json_object_get(c, "fingerprint_sha256"));
        ngx_http_certsync_html_row(f, "last sync",
                                   json_object_get(c, "last_sync"));
        ngx_http_certsync_html_row(f, "last sync at",
                                   json_object_get(c, "last_sync_at"));
        ngx_http_certsync_html_row(f, "last error", err);

        json_array_foreach(json_object_get(c, "workers"), k, w) {
            v = json_object_get(w, "version");

            fprintf(f, "<tr><th>worker %lld (pid %lld)</th><td>",
                    (long long) json_integer_value(json_object_get(w,
                                                                   "worker")),
                    (long long) json_integer_value(json_object_get(w, "pid")));

            if (json_is_integer(v)) {
                fprintf(f, "v%lld", (long long) json_integer_value(v));

            } else {
                fputs("fallback", f);
            }

            fputs(", loaded ", f);
            ngx_http_certsync_html_text(f,
                    json_string_value(json_object_get(w, "loaded_at")));
            fputs("</td></tr>\n", f);
        }

        fputs("</table></div>\n", f);
    }

    sync = json_object_get(j, "sync");

    fputs("<div class=\"card\"><h2>Sync inside nginx</h2><table>\n", f);
    c = json_string(json_is_true(json_object_get(sync, "enabled"))
                    ? "yes" : "no (certsync sync runs outside nginx)");
    ngx_http_certsync_html_row(f, "enabled", c);
    json_decref(c);
    ngx_http_certsync_html_row(f, "interval (s)",
                               json_object_get(sync, "interval_s"));
    ngx_http_certsync_html_row(f, "last run", json_object_get(sync,
                                                              "last_run_at"));
    ngx_http_certsync_html_row(f, "next run", json_object_get(sync, "next_at"));
    ngx_http_certsync_html_row(f, "failures in a row",
                               json_object_get(sync, "failures_in_a_row"));
    ngx_http_certsync_html_row(f, "last error",
                               json_object_get(sync, "last_error"));
    fputs("</table></div>\n</body></html>", f);

    if (fclose(f) != 0) {
        free(out);
        return NULL;
    }

    return out;
}
