/*
 * mod_certsync: the sync inside the server. mod_watchdog runs one thread for
 * the whole server (a singleton: one child holds its mutex); each run asks
 * the core to sync every certificate this server serves, on the core's
 * schedule (cs_retry.h: the interval with jitter, 5 s doubling after
 * failures). A failed sync changes nothing that is served. The progress lives in shared memory so
 * that the status handler of any process can show it. New versions reach the other processes
 * through the store (their watcher threads), not from here.
 */
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "apr_shm.h"
#include "httpd.h"
#include "apr_strings.h"
#include "http_log.h"
#include "mod_watchdog.h"

#include "cs_retry.h"
#include "cs_sync.h"
#include "cs_sync_access.h"
#include "unixd.h"

#include "mod_certsync.h"

APLOG_USE_MODULE(certsync);

#define WATCHDOG_NAME "_certsync_sync_"

static APR_OPTIONAL_FN_TYPE(ap_watchdog_get_instance) * wd_get_instance;
static APR_OPTIONAL_FN_TYPE(ap_watchdog_register_callback) * wd_register_callback;

typedef struct {
    certsync_mod *m;
    server_rec *s;
    ap_watchdog_t *wd;
} drive_ctx;

/*
 * CertSyncSync on runs the sync in a child, as User: that user must be able to do all of it,
 * or `apachectl -t` fails here with the directive's file and line (cs_sync_access_check).
 */
int certsync_sync_check(const certsync_mod *m, const certsync_srv_conf *base)
{
    uid_t uid = ap_unixd_config.user_id;
    gid_t gid = ap_unixd_config.group_id;
    const char *user = ap_unixd_config.user_name;

    if (geteuid() != 0) {
        /* no User switch: the children are this process's user */
        uid = geteuid();
        gid = getegid();
        user = ap_unixd_config.user_name ? ap_unixd_config.user_name : "(this user)";
    }
    if (cs_sync_access_check(m->cfg, user, uid, gid) == CS_OK)
        return OK;
    ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, NULL,
                 "mod_certsync: %s:%d: CertSyncSync on: %s; or turn it off and run `certsync "
                 "sync` as root from its timer",
                 base->sync_file, base->sync_line, cs_error_last());
    return HTTP_INTERNAL_SERVER_ERROR;
}

/* ---- shared state (a seqlock: one writer, readers in any process retry) ---- */

static void shared_begin(certsync_shared *sh)
{
    __atomic_add_fetch(&sh->seq, 1, __ATOMIC_ACQ_REL);
}

static void shared_end(certsync_shared *sh)
{
    __atomic_add_fetch(&sh->seq, 1, __ATOMIC_RELEASE);
}

void certsync_shared_read(const certsync_mod *m, certsync_shared *copy)
{
    unsigned before;

    for (;;) {
        before = __atomic_load_n(&m->shared->seq, __ATOMIC_ACQUIRE);
        if (before & 1) {
            sched_yield();
            continue;
        }
        memcpy(copy, m->shared, m->shared_size);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&m->shared->seq, __ATOMIC_ACQUIRE) == before)
            return;
    }
}

/* ---- schedule ---- */

/* The core's one schedule (cs_retry.h), in APR time */
static apr_interval_time_t next_delay(const certsync_mod *m, unsigned failures)
{
    uint32_t rnd = 0;

    apr_generate_random_bytes((unsigned char *)&rnd, sizeof(rnd));
    return apr_time_from_msec(cs_retry_delay_ms(failures, apr_time_as_msec(m->sync_interval), rnd));
}

/* ---- one run ---- */

static void record_cert(certsync_shared *sh, int i, cs_sync_result result, unsigned version,
                        const char *reason)
{
    shared_begin(sh);
    sh->certs[i].result = result;
    sh->certs[i].version = version;
    snprintf(sh->certs[i].reason, sizeof(sh->certs[i].reason), "%s", reason ? reason : "");
    shared_end(sh);
}

static int sync_one(drive_ctx *d, cs_sync_session *sess, cs_store *st, const cs_config *c, int i,
                    char *err, size_t size)
{
    certsync_slot *slot = APR_ARRAY_IDX(d->m->slots, i, certsync_slot *);
    const cs_cert_conf *cc = cs_config_cert(c, slot->name);
    cs_sync_outcome out;
    cs_rc rc;

    memset(&out, 0, sizeof(out));
    if (cc == NULL) {
        snprintf(err, size, "'%s': %s no longer has a [cert %s] section", slot->name, c->path,
                 slot->name);
        record_cert(d->m->shared, i, CS_SYNC_FAILED, 0, err);
        return 0;
    }
    rc = cs_sync_cert(sess, st, cc, 0, &out);
    if (rc != CS_OK && out.result != CS_SYNC_INSTALLED) {
        snprintf(err, size, "'%s': %s", slot->name, cs_error_last());
        record_cert(d->m->shared, i, CS_SYNC_FAILED, out.version, cs_error_last());
        return 0;
    }
    if (out.result == CS_SYNC_INSTALLED) {
        /* installed; an on-change command that failed is reported, not retried */
        const char *hook_error = rc != CS_OK ? cs_error_last() : NULL;

        ap_log_error(APLOG_MARK, hook_error ? APLOG_ERR : APLOG_NOTICE, 0, d->s,
                     "certsync: sync: '%s': installed v%u (%s)%s%s", slot->name, out.version,
                     out.reason, hook_error ? "; on-change failed: " : "",
                     hook_error ? hook_error : "");
        record_cert(d->m->shared, i, out.result, out.version, hook_error ? hook_error : out.reason);
    } else {
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, d->s, "certsync: sync: '%s': %s (%s)", slot->name,
                     cs_sync_result_name(out.result), out.reason);
        record_cert(d->m->shared, i, out.result, out.version, out.reason);
    }
    return 1;
}

static void run_sync(drive_ctx *d)
{
    certsync_mod *m = d->m;
    certsync_shared *sh = m->shared;
    char err[512] = "", first[512] = "";
    cs_sync_session *sess = NULL;
    cs_store *st = NULL;
    cs_config *c = NULL;
    unsigned failed = 0;
    apr_interval_time_t wait;
    int i;

    shared_begin(sh);
    sh->pid = getpid();
    sh->last_start = apr_time_now();
    shared_end(sh);

    /* read certsync.conf again: credentials or provider settings may have changed */
    if (cs_config_load(m->config_path, &c) != CS_OK || cs_store_open_config(c, &st) != CS_OK ||
        (sess = cs_sync_session_new(c)) == NULL) {
        snprintf(first, sizeof(first), "%s",
                 cs_error_last()[0] ? cs_error_last() : "out of memory");
        failed = m->slots->nelts;
        for (i = 0; i < m->slots->nelts; i++)
            record_cert(sh, i, CS_SYNC_FAILED, 0, first);
    } else {
        for (i = 0; i < m->slots->nelts; i++) {
            if (!sync_one(d, sess, st, c, i, err, sizeof(err))) {
                if (!failed++)
                    snprintf(first, sizeof(first), "%s", err);
            }
        }
    }
    cs_sync_session_free(sess);
    cs_store_free(st);
    cs_config_free(c);

    shared_begin(sh);
    sh->runs++;
    sh->last_end = apr_time_now();
    sh->failures = failed ? sh->failures + 1 : 0;
    snprintf(sh->last_error, sizeof(sh->last_error), "%s", first);
    wait = next_delay(m, sh->failures);
    sh->next_run = sh->last_end + wait;
    shared_end(sh);
    if (failed)
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, d->s,
                     "certsync: sync failed for %u of %d certificate(s) (%u run(s) in a row): "
                     "%s; nothing served changed; next try in %" APR_TIME_T_FMT
                     " s (the sync runs as user %s, uid %ld)",
                     failed, m->slots->nelts, sh->failures, first, apr_time_sec(wait),
                     ap_unixd_config.user_name, (long)geteuid());
}

static apr_status_t drive_cb(int state, void *baton, apr_pool_t *ptemp)
{
    drive_ctx *d = baton;
    certsync_shared *sh = d->m->shared;

    (void)ptemp;
    switch (state) {
    case AP_WATCHDOG_STATE_STARTING:
        shared_begin(sh);
        sh->pid = getpid();
        shared_end(sh);
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, d->s,
                     "certsync: sync watchdog running in process %ld", (long)getpid());
        break;
    case AP_WATCHDOG_STATE_RUNNING:
        /* called every second; the schedule is kept in shared memory so that it
         * survives the watchdog moving to another child */
        if (apr_time_now() >= __atomic_load_n(&sh->next_run, __ATOMIC_ACQUIRE))
            run_sync(d);
        break;
    default:
        break;
    }
    return APR_SUCCESS;
}

/* post_config (after mod_ssl, before mod_watchdog): shared state, and the watchdog. */
apr_status_t certsync_drive_init(certsync_mod *m, apr_pool_t *pconf, server_rec *s)
{
    apr_shm_t *shm;
    drive_ctx *d;
    apr_status_t rv;
    int i;

    m->shared_size = sizeof(certsync_shared) + m->slots->nelts * sizeof(certsync_shared_cert);
    rv = apr_shm_create(&shm, m->shared_size, NULL, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, "certsync: cannot create shared memory");
        return rv;
    }
    m->shared = apr_shm_baseaddr_get(shm);
    memset(m->shared, 0, m->shared_size);
    m->shared->n_certs = m->slots->nelts;
    for (i = 0; i < m->slots->nelts; i++)
        snprintf(m->shared->certs[i].name, sizeof(m->shared->certs[i].name), "%s",
                 APR_ARRAY_IDX(m->slots, i, certsync_slot *)->name);
    if (!m->sync || m->slots->nelts == 0)
        return APR_SUCCESS;

    wd_get_instance = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_get_instance);
    wd_register_callback = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_register_callback);
    if (!wd_get_instance || !wd_register_callback) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                     "certsync: CertSyncSync on needs mod_watchdog: add "
                     "'LoadModule watchdog_module .../mod_watchdog.so' (or CertSyncSync off and "
                     "run 'certsync sync' from cron)");
        return APR_EGENERAL;
    }
    d = apr_pcalloc(pconf, sizeof(*d));
    d->m = m;
    d->s = s;
    rv = wd_get_instance(&d->wd, WATCHDOG_NAME, 0, 1, pconf);
    if (rv == APR_SUCCESS)
        rv = wd_register_callback(d->wd, apr_time_from_sec(1), d, drive_cb);
    if (rv != APR_SUCCESS)
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, "certsync: cannot register the sync watchdog");
    return rv;
}
