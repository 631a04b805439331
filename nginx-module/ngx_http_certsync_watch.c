/*
 * ngx_http_certsync_module: how a worker learns of a new version, and the
 * swap. Every worker has an inotify descriptor in its event loop, watching
 * the directory of each certificate (<store>/certs/<name>/), where the store
 * switches `current` by rename(2): a switch is an IN_MOVED_TO (or IN_CREATE)
 * of "current". On it, the one change check of the core (an lstat) decides,
 * and a changed `current` is loaded, checked and swapped on the event loop,
 * between two handshakes. A timer backs inotify up: it looks at every
 * certificate every certsync_watch_interval, and every 250ms at those that
 * inotify does not watch (no inotify, or no directory yet: it adds the watch
 * once the directory exists).
 */


#include "ngx_http_certsync.h"

#include <sys/inotify.h>


#define NGX_HTTP_CERTSYNC_INOTIFY_MASK                                        \
    (IN_MOVED_TO|IN_CREATE|IN_DELETE|IN_DELETE_SELF|IN_MOVE_SELF|IN_ONLYDIR   \
     |IN_DONT_FOLLOW)


static void ngx_http_certsync_inotify_open(ngx_cycle_t *cycle,
    ngx_http_certsync_main_conf_t *mcf);
static ngx_uint_t ngx_http_certsync_inotify_add(
    ngx_http_certsync_main_conf_t *mcf, ngx_http_certsync_cert_t *cert,
    ngx_log_t *log);
static void ngx_http_certsync_inotify_handler(ngx_event_t *rev);
static void ngx_http_certsync_inotify_event(
    ngx_http_certsync_main_conf_t *mcf, struct inotify_event *ie,
    ngx_log_t *log);
static void ngx_http_certsync_watch_handler(ngx_event_t *ev);
static void ngx_http_certsync_watch_again(ngx_http_certsync_main_conf_t *mcf);
static void ngx_http_certsync_swap(ngx_http_certsync_main_conf_t *mcf,
    ngx_http_certsync_cert_t *cert, ngx_log_t *log);


ngx_int_t
ngx_http_certsync_watch_init(ngx_cycle_t *cycle,
    ngx_http_certsync_main_conf_t *mcf)
{
    ngx_uint_t                  i, n;
    ngx_http_certsync_cert_t  **certp;

    mcf->watch.handler = ngx_http_certsync_watch_handler;
    mcf->watch.data = mcf;
    mcf->watch.log = cycle->log;
    mcf->watch.cancelable = 1;

    ngx_http_certsync_inotify_open(cycle, mcf);

    certp = mcf->certs.elts;
    n = 0;

    for (i = 0; mcf->inotify && i < mcf->certs.nelts; i++) {
        n += ngx_http_certsync_inotify_add(mcf, certp[i], cycle->log);
    }

    ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                  "certsync: inotify watches %ui of %ui certificates; a "
                  "stat check looks at them every %Mms, and at the others "
                  "every %Mms", n, mcf->certs.nelts, mcf->watch_interval,
                  (ngx_msec_t) NGX_HTTP_CERTSYNC_POLL);

    /* the store may have moved on between the configuration and now */
    ngx_http_certsync_watch_handler(&mcf->watch);

    return NGX_OK;
}


/* Before the worker exits: nginx wants no descriptor of ours left open. */
void
ngx_http_certsync_watch_exit(ngx_http_certsync_main_conf_t *mcf)
{
    ngx_uint_t                  i;
    ngx_http_certsync_cert_t  **certp;

    if (mcf->inotify == NULL) {
        return;
    }

    ngx_close_connection(mcf->inotify);
    mcf->inotify = NULL;

    certp = mcf->certs.elts;

    for (i = 0; i < mcf->certs.nelts; i++) {
        certp[i]->wd = -1;
    }
}


/* An inotify descriptor read in the event loop, as nginx adds its channel. */
static void
ngx_http_certsync_inotify_open(ngx_cycle_t *cycle,
    ngx_http_certsync_main_conf_t *mcf)
{
    int                fd;
    ngx_int_t          rc;
    ngx_connection_t  *c;

    fd = inotify_init1(IN_NONBLOCK|IN_CLOEXEC);

    if (fd == -1) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, ngx_errno,
                      "certsync: inotify_init1() failed; `current` of every "
                      "certificate is looked at every %Mms instead "
                      "(fs.inotify.max_user_instances may be too low)",
                      (ngx_msec_t) NGX_HTTP_CERTSYNC_POLL);
        return;
    }

    c = ngx_get_connection(fd, cycle->log);
    if (c == NULL) {
        (void) close(fd);
        return;
    }

    c->data = mcf;
    c->read->handler = ngx_http_certsync_inotify_handler;
    c->read->log = cycle->log;
    c->write->log = cycle->log;

    if (ngx_add_conn && (ngx_event_flags & NGX_USE_EPOLL_EVENT) == 0) {
        rc = ngx_add_conn(c);

    } else {
        rc = ngx_add_event(c->read, NGX_READ_EVENT, 0);
    }

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "certsync: the inotify descriptor cannot join the "
                      "event loop; `current` is looked at every %Mms instead",
                      (ngx_msec_t) NGX_HTTP_CERTSYNC_POLL);
        ngx_close_connection(c);
        return;
    }

    mcf->inotify = c;
}


/* Watch cert's directory: 1 when watched (a missing one is added later). */
static ngx_uint_t
ngx_http_certsync_inotify_add(ngx_http_certsync_main_conf_t *mcf,
    ngx_http_certsync_cert_t *cert, ngx_log_t *log)
{
    int        wd;
    ngx_err_t  err;

    wd = inotify_add_watch(mcf->inotify->fd, cert->dir,
                           NGX_HTTP_CERTSYNC_INOTIFY_MASK);

    if (wd == -1) {
        err = ngx_errno;

        if (err != NGX_ENOENT && !cert->watch_failed) {
            ngx_log_error(NGX_LOG_WARN, log, err,
                          "certsync: inotify_add_watch(\"%s\") failed; "
                          "\"%V\" is looked at every %Mms instead", cert->dir,
                          &cert->name, (ngx_msec_t) NGX_HTTP_CERTSYNC_POLL);
        }

        cert->watch_failed = (err != NGX_ENOENT);
        return 0;
    }

    cert->wd = wd;
    cert->watch_failed = 0;

    return 1;
}


static void
ngx_http_certsync_inotify_handler(ngx_event_t *rev)
{
    u_char                          buf[4096]
                  __attribute__((aligned(__alignof__(struct inotify_event))));
    u_char                         *p;
    ssize_t                         n;
    ngx_err_t                       err;
    ngx_connection_t               *c;
    struct inotify_event           *ie;
    ngx_http_certsync_main_conf_t  *mcf;

    c = rev->data;
    mcf = c->data;

    for ( ;; ) {
        n = read(c->fd, buf, sizeof(buf));

        if (n == -1) {
            err = ngx_errno;

            if (err == NGX_EAGAIN) {
                return;
            }

            if (err == NGX_EINTR) {
                continue;
            }

            ngx_log_error(NGX_LOG_ERR, rev->log, err,
                          "certsync: read() of the inotify descriptor "
                          "failed; `current` is looked at every %Mms "
                          "instead", (ngx_msec_t) NGX_HTTP_CERTSYNC_POLL);
            ngx_http_certsync_watch_exit(mcf);
            ngx_http_certsync_watch_again(mcf);
            return;
        }

        for (p = buf; p < buf + n; p += sizeof(struct inotify_event) + ie->len)
        {
            ie = (struct inotify_event *) p;
            ngx_http_certsync_inotify_event(mcf, ie, rev->log);
        }
    }
}


static void
ngx_http_certsync_inotify_event(ngx_http_certsync_main_conf_t *mcf,
    struct inotify_event *ie, ngx_log_t *log)
{
    ngx_uint_t                  i;
    ngx_http_certsync_cert_t  **certp;

    certp = mcf->certs.elts;

    if (ie->mask & IN_Q_OVERFLOW) {
        /* events were lost: look at everything */
        for (i = 0; i < mcf->certs.nelts; i++) {
            ngx_http_certsync_look(mcf, certp[i], log);
        }

        return;
    }

    for (i = 0; i < mcf->certs.nelts; i++) {
        if (certp[i]->wd == ie->wd) {
            break;
        }
    }

    if (i == mcf->certs.nelts) {
        return;
    }

    if (ie->mask & IN_MOVE_SELF) {
        /* the directory is elsewhere now: IN_IGNORED follows */
        (void) inotify_rm_watch(mcf->inotify->fd, ie->wd);
        return;
    }

    if (ie->mask & IN_IGNORED) {
        /* the directory went away: looked at by the timer until it is back */
        certp[i]->wd = -1;
        ngx_http_certsync_look(mcf, certp[i], log);
        ngx_http_certsync_watch_again(mcf);
        return;
    }

    if ((ie->mask & (IN_MOVED_TO|IN_CREATE))
        && ie->len > 0 && ngx_strcmp(ie->name, "current") == 0)
    {
        ngx_http_certsync_look(mcf, certp[i], log);

    } else if ((ie->mask & (IN_MOVED_TO|IN_CREATE|IN_DELETE))
               && ie->len > 0 && ngx_strstr(ie->name, ".ocsp") != NULL)
    {
        /* a staple beside a version: the one served is looked at */
        ngx_http_certsync_staple_look(mcf, certp[i], log);
    }
}


/* The stat check: inotify's safety net, and the watch where it has none. */
static void
ngx_http_certsync_watch_handler(ngx_event_t *ev)
{
    ngx_uint_t                      i;
    ngx_http_certsync_cert_t      **certp;
    ngx_http_certsync_main_conf_t  *mcf;

    mcf = ev->data;
    certp = mcf->certs.elts;

    for (i = 0; i < mcf->certs.nelts; i++) {

        /* watched before the look, so that no switch falls in between */
        if (mcf->inotify && certp[i]->wd == -1
            && ngx_http_certsync_inotify_add(mcf, certp[i], ev->log))
        {
            ngx_log_error(NGX_LOG_NOTICE, ev->log, 0,
                          "certsync: inotify watches \"%V\" now (%s)",
                          &certp[i]->name, certp[i]->dir);
        }

        ngx_http_certsync_look(mcf, certp[i], ev->log);
        ngx_http_certsync_staple_look(mcf, certp[i], ev->log);
    }

    ngx_http_certsync_watch_again(mcf);
}


/* The next stat check: soon while a certificate has no inotify watch. */
static void
ngx_http_certsync_watch_again(ngx_http_certsync_main_conf_t *mcf)
{
    ngx_uint_t                  i;
    ngx_msec_t                  period;
    ngx_http_certsync_cert_t  **certp;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    period = mcf->watch_interval;
    certp = mcf->certs.elts;

    for (i = 0; i < mcf->certs.nelts; i++) {
        if (certp[i]->wd == -1) {
            period = ngx_min(period, NGX_HTTP_CERTSYNC_POLL);
            break;
        }
    }

    ngx_add_timer(&mcf->watch, period);
}


/* One look at `current` (the core's change check): a switch is swapped in. */
void
ngx_http_certsync_look(ngx_http_certsync_main_conf_t *mcf,
    ngx_http_certsync_cert_t *cert, ngx_log_t *log)
{
    int  changed;

    if (cs_store_current_changed(mcf->store, cert->cc->name, &cert->seen,
                                 &changed)
        != CS_OK)
    {
        if (!cert->look_failed) {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "certsync: \"%V\" stays as it is: %s", &cert->name,
                          cs_error_last());
        }

        cert->look_failed = 1;
        return;
    }

    cert->look_failed = 0;

    /* tried once per switch: a version that fails is not retried */
    if (changed) {
        ngx_http_certsync_swap(mcf, cert, log);
    }
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
        cert->refused_version = version;
        cert->refused_at = ngx_time();
        ngx_cpystrn((u_char *) cert->refused_reason,
                    (u_char *) cs_error_last(), sizeof(cert->refused_reason));
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
    cert->refused_at = 0;    /* history once something newer is served */

    ngx_log_error(NGX_LOG_NOTICE, log, 0,
                  "certsync: \"%V\" v%ud is served now (was %s), sha256 %s",
                  &cert->name, version, was, cert->fingerprint);
}


/*
 * One look at the staple beside the version served (one lstat()): a new
 * one, or none any more, is loaded onto the certificate. An expired one is
 * dropped here too, so that status shows it; the handshake never sends it.
 */
void
ngx_http_certsync_staple_look(ngx_http_certsync_main_conf_t *mcf,
    ngx_http_certsync_cert_t *cert, ngx_log_t *log)
{
    int             changed;
    cs_store_stamp  seen;

    if (cert->bundle == NULL) {
        return;
    }

    seen = cert->staple_seen;

    if (cs_store_aside_changed(mcf->store, cert->cc->name, cert->version,
                               "ocsp", &seen, &changed)
        != CS_OK)
    {
        return;
    }

    if (changed || (cert->staple_until && cert->staple_until <= ngx_time())) {
        ngx_http_certsync_staple(mcf, cert, log);
    }
}
