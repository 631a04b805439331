/*
 * mod_certsync: what the glue files share. The module is split like mod_md:
 *
 *   mod_certsync.c         directives, mod_ssl hooks, challenge answers, 503
 *   mod_certsync_swap.c    the version each process serves, swapped with no restart
 *   mod_certsync_drive.c   the sync, run by mod_watchdog in one process
 *   mod_certsync_status.c  the certsync-status handler (JSON, HTML)
 *   mod_certsync_alpn.c    ACME tls-alpn-01 answered in the handshake
 *
 * Everything certificate-related is done by libcertsync (cs_*.h); this is glue.
 */
#ifndef MOD_CERTSYNC_H
#define MOD_CERTSYNC_H

#include <pthread.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/ssl.h>

#include "apr_time.h"
#include "httpd.h"
#include "http_config.h"
#include "http_ssl.h"

#include "cs_config.h"
#include "cs_store.h"

#define CERTSYNC_VERSION "0.1"

extern module AP_MODULE_DECLARE_DATA certsync_module;

/*
 * One parsed version as a process serves it. Reference-counted: the slot
 * holds one reference, each handshake holds one while it copies the objects
 * into its SSL; the last release frees it.
 */
typedef struct {
    int refs;
    X509 *leaf;
    STACK_OF(X509) * chain;
    EVP_PKEY *key;
    unsigned version; /* 0: the self-signed fallback */
    char fingerprint[65];
    time_t not_after;
    time_t since;           /* when this process started serving it */
    unsigned char sha1[20]; /* mod_ssl's id of the leaf (ssl_ocsp_get_resp_hook) */
    unsigned char *staple;  /* the OCSP staple loaded with it (DER), or NULL */
    size_t staple_len;
    time_t staple_until; /* its nextUpdate: not handed out from then on */
} certsync_served;

/* A managed certificate as this server uses it: one per name, shared by vhosts. */
typedef struct {
    const char *name;
    const cs_cert_conf *cc;
    const char *dir;                  /* <store>/certs/<name> */
    const char *link;                 /* <store>/certs/<name>/current */
    const char *runtime;              /* <runtime dir>/certsync/<name>, the parent's */
    const char *cert_file, *key_file; /* what mod_ssl loads at start, in runtime */
    const char *start_reason;   /* why the fallback was served at start (NULL: a version was) */
    apr_array_header_t *vhosts; /* const char *, for status and logs */
    const char *decl_file;      /* the first CertSyncCertificate naming it, for messages */
    int decl_line;

    pthread_rwlock_t lock; /* guards cur and the rejected_* fields */
    certsync_served *cur;
    int serving_fallback;       /* cur->version == 0, read without the lock per request */
    cs_store_stamp seen;        /* `current` at the last look (cs_store_current_changed) */
    cs_store_stamp staple_seen; /* the served version's staple at the last look */
    unsigned rejected_version;
    char rejected_reason[1024];
    time_t rejected_at;

    int watch;             /* inotify watch of dir, -1 when none */
    int restart_requested; /* parent: CertSyncGracefulOnChange already signalled */
} certsync_slot;

/* The sync's progress, in shared memory so that every process can show it. */
typedef struct {
    char name[72];
    int result; /* cs_sync_result */
    unsigned version;
    char reason[256];
} certsync_shared_cert;

typedef struct {
    unsigned seq; /* odd while written (a seqlock: readers retry) */
    pid_t pid;    /* the process whose watchdog thread runs the sync */
    apr_time_t last_start, last_end, next_run;
    unsigned runs, failures; /* failures: consecutive runs with an error */
    char last_error[512];
    unsigned n_certs;
    certsync_shared_cert certs[]; /* one per slot, same order */
} certsync_shared;

/* The module's state for one configuration generation (allocated from pconf). */
typedef struct {
    server_rec *s;
    const char *config_path;
    cs_config *cfg;
    cs_store *store;           /* read-only use after post_config; the sync opens its own */
    apr_array_header_t *slots; /* certsync_slot * */
    int sync;
    apr_interval_time_t sync_interval;
    int graceful_on_change;
    int hot_capable; /* mod_ssl is loaded: it hands us each SSL_CTX */
    certsync_shared *shared;
    size_t shared_size;
} certsync_mod;

/* Per server (vhost) configuration; the global directives live in the base server's. */
typedef struct {
    const char *cert_name;
    const char *cert_file; /* where CertSyncCertificate was written */
    int cert_line;
    int inherited;  /* cert_name comes from the main server */
    int validation; /* -1: unset */
    certsync_slot *slot;
    /* a second CertSyncCertificate, of the other key type (RSA + ECDSA), or NULL */
    const char *cert_name2;
    int cert_line2;
    /* slot and the second one's: what the certificate callback installs in a handshake */
    certsync_slot *pair[2];
    int ssl_seen; /* mod_ssl asked for this vhost's certificate files */
    int hot;      /* mod_ssl handed us this vhost's SSL_CTX */

    const char *config_path; /* CertSyncConfig */
    int sync;                /* CertSyncSync, -1: unset */
    const char *sync_file;   /* where CertSyncSync was written */
    int sync_line;
    apr_interval_time_t sync_interval;
    int graceful_on_change;
} certsync_srv_conf;

extern certsync_mod *certsync_g;

/* mod_certsync_swap.c */
apr_status_t certsync_slot_prepare(certsync_mod *m, certsync_slot *slot, apr_pool_t *p);
int certsync_cert_cb(SSL *ssl, void *arg);
int certsync_link_changed(certsync_slot *slot);
void certsync_slot_check(server_rec *s, certsync_slot *slot);
certsync_served *certsync_served_acquire(certsync_slot *slot);
void certsync_served_release(certsync_served *o);
int certsync_version_loads(certsync_slot *slot, unsigned *version, char *why, size_t size);
int certsync_version_servable(certsync_mod *m, certsync_slot *slot, char *why, size_t size);
apr_status_t certsync_watch_start(apr_pool_t *pchild, server_rec *s);
certsync_served *certsync_served_by_id(certsync_slot *const *pair, const char *id, size_t id_len);
void certsync_served_staple(const certsync_served *o, ap_ssl_ocsp_copy_resp *cb, void *userdata);

/* mod_certsync_drive.c */
apr_status_t certsync_drive_init(certsync_mod *m, apr_pool_t *pconf, server_rec *s);
void certsync_shared_read(const certsync_mod *m, certsync_shared *copy);
int certsync_sync_check(const certsync_mod *m, const certsync_srv_conf *base);

/* mod_certsync_alpn.c */
int certsync_alpn_wanted(const cs_config *cfg);
int certsync_alpn_cert(SSL *ssl, int *done);
int certsync_alpn_check(server_rec *s, const certsync_srv_conf *sc);
void certsync_alpn_register_hooks(void);

/* mod_certsync_status.c */
int certsync_status_handler(request_rec *r);

#endif
