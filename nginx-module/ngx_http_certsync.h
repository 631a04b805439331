/*
 * ngx_http_certsync_module: what its files share (a private header, as
 * src/http/v2/ngx_http_v2.h is to ngx_http_v2_module).
 *
 *   ngx_http_certsync_module.c    directives, configuration, process start
 *   ngx_http_certsync_ssl.c       versions into SSL contexts and key slots
 *   ngx_http_certsync_watch.c     noticing a new version, and the swap
 *   ngx_http_certsync_sync.c      the sync in nginx's thread pool
 *   ngx_http_certsync_handlers.c  validation answers and the status page
 *
 * ngx_stream_certsync_module (ngx_stream_certsync_module.c) is built from the
 * same ssl and watch files: a main conf, servers, certificates and a watcher
 * of its own, swapped by the same code.
 */

#ifndef _NGX_HTTP_CERTSYNC_H_INCLUDED_
#define _NGX_HTTP_CERTSYNC_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#if (NGX_THREADS)
#include <ngx_thread_pool.h>
#endif

#include "cs_bundle.h"
#include "cs_config.h"
#include "cs_crypt.h"
#include "cs_error.h"
#include "cs_store.h"


#if !(NGX_HTTP_SSL)
#error ngx_http_certsync_module needs nginx configured --with-http_ssl_module
#endif

#if OPENSSL_VERSION_NUMBER < 0x10101000L
#error ngx_http_certsync_module needs OpenSSL 1.1.1 or newer
#endif


/*
 * ms between two looks at a `current` that inotify does not watch (no
 * inotify, or no directory yet), and the default of certsync_watch_interval,
 * the safety net under inotify
 */
#define NGX_HTTP_CERTSYNC_POLL           250
#define NGX_HTTP_CERTSYNC_WATCH          1000
/* ms between two looks at the sync schedule */
#define NGX_HTTP_CERTSYNC_TICK           1000
/* the first sync within this many ms of the start */
#define NGX_HTTP_CERTSYNC_FIRST_SYNC     5000
#define NGX_HTTP_CERTSYNC_VERSION      "0.1"
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
    char                          *dir;       /* <store>/certs/<name> */
    ngx_array_t                    uses;      /* of ngx_http_certsync_use_t * */

    /* what this process serves; changed by the watch */
    cs_bundle                     *bundle;    /* NULL: the fallback */
    unsigned                       version;
    char                           fingerprint[65];
    time_t                         not_after;
    char                         **names;
    time_t                         loaded_at;
    char                           fallback_reason[256];

    /* the last new version this process refused (cs_serve_check) */
    unsigned                       refused_version;
    time_t                         refused_at;       /* 0: none */
    char                           refused_reason[512];

    /* `current` as seen by the last look */
    cs_store_stamp                 seen;
    /* the OCSP staple beside the version served, as seen by the last look */
    cs_store_stamp                 staple_seen;
    u_char                        *staple;    /* its OCSP staple (DER), or NULL */
    size_t                         staple_len;
    time_t                         staple_until;   /* its nextUpdate */
    unsigned                       look_failed:1;
    unsigned                       watch_failed:1;
    int                            wd;        /* inotify watch of dir, or -1 */
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
    ngx_uint_t                     runs;
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
    u_char                        *sync_file; /* where "certsync_sync on" is */
    ngx_uint_t                     sync_line;
    ngx_msec_t                     sync_interval;
    ngx_msec_t                     watch_interval;
    ngx_str_t                      pool_name;
#if (NGX_THREADS)
    ngx_thread_pool_t             *pool;
    ngx_thread_task_t             *task;
#endif
    ngx_array_t                    certs;     /* of cert_t * */
    ngx_array_t                    servers;   /* of srv_conf_t * */
    ngx_array_t                    status_locs; /* of core loc_conf_t * */
    ngx_uint_t                     declared;  /* certsync_certificate seen */
    ngx_uint_t                     validation;
    ngx_uint_t                     nworkers;
    ngx_http_certsync_shm_t       *sh;
    EVP_PKEY                      *fallback_key[NGX_HTTP_CERTSYNC_SLOTS];
    X509                          *retired[NGX_HTTP_CERTSYNC_SLOTS];
    ngx_connection_t              *inotify;   /* NULL: the timer alone */
    ngx_event_t                    watch;
    ngx_event_t                    tick;
    unsigned                       syncing:1;
    /* the main conf of the front (http or stream) in an older cycle */
    void                        *(*old_conf)(ngx_cycle_t *cycle);
} ngx_http_certsync_main_conf_t;


/* ngx_http_certsync_ssl.c */
ngx_int_t ngx_http_certsync_load_config(ngx_conf_t *cf,
    ngx_http_certsync_main_conf_t *mcf);
char *ngx_http_certsync_declare(ngx_conf_t *cf,
    ngx_http_certsync_srv_conf_t *cscf, ngx_str_t *name);
ngx_int_t ngx_http_certsync_add_server(ngx_conf_t *cf,
    ngx_http_certsync_main_conf_t *mcf, ngx_http_certsync_srv_conf_t *conf,
    SSL_CTX *ctx);
char *ngx_http_certsync_config(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_http_certsync_main_conf_t *ngx_http_certsync_main_conf_new(ngx_conf_t *cf,
    void *(*old_conf)(ngx_cycle_t *cycle));
void ngx_http_certsync_cleanup(void *data);
ngx_http_certsync_cert_t *ngx_http_certsync_get_cert(ngx_conf_t *cf,
    ngx_http_certsync_main_conf_t *mcf, ngx_http_certsync_decl_t *decl);
ngx_int_t ngx_http_certsync_install_first(ngx_conf_t *cf,
    ngx_http_certsync_main_conf_t *mcf, ngx_http_certsync_use_t *use);
ngx_int_t ngx_http_certsync_session_context(ngx_conf_t *cf,
    ngx_http_certsync_srv_conf_t *cscf);
ngx_int_t ngx_http_certsync_load(ngx_http_certsync_main_conf_t *mcf,
    ngx_http_certsync_cert_t *cert, unsigned *version, cs_bundle **out,
    ngx_uint_t *expired);
ngx_int_t ngx_http_certsync_use_bundle(ngx_http_certsync_main_conf_t *mcf,
    ngx_http_certsync_use_t *use, cs_bundle *b, ngx_log_t *log);
void ngx_http_certsync_served(ngx_http_certsync_main_conf_t *mcf,
    ngx_http_certsync_cert_t *cert, cs_bundle *b, unsigned version);
void ngx_http_certsync_record(ngx_http_certsync_main_conf_t *mcf,
    ngx_http_certsync_cert_t *cert);
ngx_int_t ngx_http_certsync_stapling(ngx_conf_t *cf,
    ngx_http_certsync_main_conf_t *mcf);
void ngx_http_certsync_staple(ngx_http_certsync_main_conf_t *mcf,
    ngx_http_certsync_cert_t *cert, ngx_log_t *log);
ngx_int_t ngx_http_certsync_staple_init(ngx_conf_t *cf,
    ngx_http_certsync_cert_t *cert);

/* ngx_http_certsync_alpn.c */
ngx_int_t ngx_http_certsync_alpn_setup(ngx_conf_t *cf,
    ngx_http_certsync_main_conf_t *mcf, ngx_http_certsync_srv_conf_t *conf);

/* ngx_http_certsync_watch.c */
ngx_int_t ngx_http_certsync_watch_init(ngx_cycle_t *cycle,
    ngx_http_certsync_main_conf_t *mcf);
void ngx_http_certsync_watch_exit(ngx_http_certsync_main_conf_t *mcf);
void ngx_http_certsync_look(ngx_http_certsync_main_conf_t *mcf,
    ngx_http_certsync_cert_t *cert, ngx_log_t *log);
void ngx_http_certsync_staple_look(ngx_http_certsync_main_conf_t *mcf,
    ngx_http_certsync_cert_t *cert, ngx_log_t *log);

/* ngx_http_certsync_sync.c */
ngx_int_t ngx_http_certsync_sync_check(ngx_conf_t *cf,
    ngx_http_certsync_main_conf_t *mcf);
#if (NGX_THREADS)
ngx_int_t ngx_http_certsync_sync_init(ngx_cycle_t *cycle,
    ngx_http_certsync_main_conf_t *mcf);
#endif

/* ngx_http_certsync_handlers.c */
ngx_int_t ngx_http_certsync_post_read_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_certsync_status_handler(ngx_http_request_t *r);


extern ngx_module_t  ngx_http_certsync_module;


#endif /* _NGX_HTTP_CERTSYNC_H_INCLUDED_ */
