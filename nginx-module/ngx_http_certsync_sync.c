/*
 * ngx_http_certsync_module: the sync inside nginx (certsync_sync on). A
 * timer in every worker looks at the schedule in the shared zone; the worker
 * that takes the lock runs the core's sync as a task of nginx's thread pool,
 * the only code of this module outside the event loop, and the result comes
 * back to the event loop, which schedules the next run (backoff after a
 * failure) and looks at `current` at once.
 */


#include "ngx_http_certsync.h"

#include <pwd.h>

#include "cs_sync_access.h"


/*
 * "certsync_sync on" runs the sync in the workers, as nginx's "user": that
 * user must be able to do all of it, or "nginx -t" fails here, naming the
 * directive's file and line and what the user lacks (cs_sync_access_check).
 */
ngx_int_t
ngx_http_certsync_sync_check(ngx_conf_t *cf,
    ngx_http_certsync_main_conf_t *mcf)
{
    uid_t             uid;
    gid_t             gid;
    const char       *user;
    struct passwd    *pw;
    ngx_core_conf_t  *ccf;

    ccf = (ngx_core_conf_t *) ngx_get_conf(cf->cycle->conf_ctx,
                                           ngx_core_module);

    if (geteuid() != 0) {
        /* nginx switches no user: the workers are this process's user */
        uid = geteuid();
        gid = getegid();
        pw = getpwuid(uid);
        user = pw ? pw->pw_name : "(this user)";

    } else if (ccf->user != (ngx_uid_t) NGX_CONF_UNSET_UINT) {
        uid = ccf->user;
        gid = ccf->group;
        user = ccf->username;

    } else {
        /* no "user" (yet): the one nginx was built with, as it will pick */
        pw = getpwnam(NGX_USER);
        if (pw == NULL) {
            return NGX_OK; /* nginx itself fails on it */
        }

        uid = pw->pw_uid;
        gid = pw->pw_gid;
        user = NGX_USER;
    }

    if (cs_sync_access_check(mcf->cfg, user, uid, gid) == CS_OK) {
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                  "%s:%ui: \"certsync_sync on\": %s; or turn it off and run "
                  "\"certsync sync\" as root from its timer",
                  mcf->sync_file, mcf->sync_line, cs_error_last());

    return NGX_ERROR;
}


#if (NGX_THREADS)

#include "cs_retry.h"
#include "cs_sync.h"


/* one run of the sync in a thread; filled there, read on the event loop */
typedef struct {
    ngx_http_certsync_main_conf_t *mcf;
    ngx_uint_t                     installed;
    ngx_uint_t                     failed;
    char                           summary[512];
    char                           error[1024];
} ngx_http_certsync_run_t;


static uint64_t ngx_http_certsync_now_ms(void);
static void ngx_http_certsync_tick(ngx_event_t *ev);
static ngx_uint_t ngx_http_certsync_trylock(ngx_http_certsync_shm_t *sh,
    ngx_log_t *log);
static void ngx_http_certsync_sync_thread(void *data, ngx_log_t *log);
static void ngx_http_certsync_sync_certs(ngx_http_certsync_run_t *run,
    cs_config *cfg, cs_store *s);
static void ngx_http_certsync_sync_done(ngx_event_t *ev);


ngx_int_t
ngx_http_certsync_sync_init(ngx_cycle_t *cycle,
    ngx_http_certsync_main_conf_t *mcf)
{
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

    return NGX_OK;
}


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


/*
 * In a thread of the pool: blocking calls are fine here, nginx's are not.
 * certsync.conf is read again on every run (a new provider key, cert-id or
 * domain takes effect without a reload, as in Apache); the names served are
 * the ones nginx was configured with.
 */
static void
ngx_http_certsync_sync_thread(void *data, ngx_log_t *log)
{
    ngx_http_certsync_run_t *run = data;

    cs_store                       *s;
    cs_config                      *cfg;
    ngx_http_certsync_main_conf_t  *mcf;

    mcf = run->mcf;

    if (cs_config_load(mcf->cfg->path, &cfg) != CS_OK) {
        run->failed = mcf->certs.nelts;
        snprintf(run->error, sizeof(run->error), "%s", cs_error_last());
        return;
    }

    /* a handle of its own: the event loop reads the store meanwhile */
    if (cs_store_open_config(cfg, &s) != CS_OK) {
        run->failed = mcf->certs.nelts;
        snprintf(run->error, sizeof(run->error), "%s", cs_error_last());
        cs_config_free(cfg);
        return;
    }

    ngx_http_certsync_sync_certs(run, cfg, s);

    cs_store_free(s);
    cs_config_free(cfg);
}


/* Every certificate nginx serves, under the configuration just read. */
static void
ngx_http_certsync_sync_certs(ngx_http_certsync_run_t *run, cs_config *cfg,
    cs_store *s)
{
    size_t                      len;
    ngx_uint_t                  i;
    const char                 *name;
    cs_sync_outcome             out;
    cs_sync_session            *sess;
    const cs_cert_conf         *cc;
    ngx_http_certsync_cert_t  **certp;

    certp = run->mcf->certs.elts;
    sess = cs_sync_session_new(cfg);

    for (i = 0; i < run->mcf->certs.nelts; i++) {
        name = (char *) certp[i]->name.data;
        cc = cs_config_cert(cfg, name);

        if (cc == NULL) {
            cs_error_set(CS_ECONFIG, "%s no longer declares [cert %s]; "
                         "nginx serves what it has until a reload",
                         cfg->path, name);

        } else if (cs_sync_cert(sess, s, cc, 0, &out) == CS_OK) {
            if (out.result == CS_SYNC_INSTALLED) {
                run->installed++;
                len = strlen(run->summary);
                snprintf(run->summary + len, sizeof(run->summary) - len,
                         "%s\"%s\" v%u", len ? ", " : "", name, out.version);
            }

            continue;
        }

        if (run->failed++ == 0) {
            snprintf(run->error, sizeof(run->error), "\"%s\": %s", name,
                     cs_error_last());
        }
    }

    cs_sync_session_free(sess);
}


static void
ngx_http_certsync_sync_done(ngx_event_t *ev)
{
    uint64_t                        delay;
    ngx_uint_t                      i;
    ngx_core_conf_t                *ccf;
    ngx_http_certsync_run_t        *run;
    ngx_http_certsync_shm_t        *sh;
    ngx_http_certsync_cert_t      **certp;
    ngx_http_certsync_main_conf_t  *mcf;

    mcf = ev->data;
    sh = mcf->sh;
    run = mcf->task->ctx;
    ccf = (ngx_core_conf_t *) ngx_get_conf(ngx_cycle->conf_ctx,
                                           ngx_core_module);

    mcf->syncing = 0;

    sh->last_end = ngx_time();
    sh->last_installed = run->installed;
    sh->last_failed = run->failed;
    ngx_cpystrn((u_char *) sh->last_error, (u_char *) run->error,
                sizeof(sh->last_error));

    sh->runs++;
    sh->failures = run->failed ? sh->failures + 1 : 0;

    /* the core's one schedule: the interval, or 5 s doubling; +-10 % */
    delay = cs_retry_delay_ms(sh->failures, mcf->sync_interval,
                              (uint32_t) ngx_random());

    if (run->failed) {

        ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                      "certsync: the sync failed for %ui of %ui "
                      "certificates (%ui in a row), next attempt in %uLs: %s "
                      "(the sync runs as user %s, uid %d)",
                      run->failed, mcf->certs.nelts, sh->failures,
                      delay / 1000, run->error,
                      ccf->username ? ccf->username : "(nginx's)",
                      (int) geteuid());

    } else {
        sh->last_success = sh->last_end;
    }

    if (run->installed) {
        ngx_log_error(NGX_LOG_NOTICE, ev->log, 0,
                      "certsync: the sync installed %s", run->summary);
    }

    sh->next_sync = ngx_http_certsync_now_ms() + delay;

    (void) ngx_atomic_cmp_set(&sh->lock, ngx_pid, 0);

    /* this worker serves what it installed at once; the others on inotify */
    certp = mcf->certs.elts;

    for (i = 0; i < mcf->certs.nelts; i++) {
        ngx_http_certsync_look(mcf, certp[i], ev->log);
    }
}

#endif /* NGX_THREADS */
