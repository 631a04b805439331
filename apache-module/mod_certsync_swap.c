/*
 * mod_certsync: the version each process serves, swapped with no restart.
 *
 * mod_ssl hands us each vhost's SSL_CTX (ssl_init_server); we install a
 * certificate callback there. The callback gives every handshake the
 * process's current version: parsed objects (leaf, chain, key) behind a
 * reference-counted pointer, swapped under a lock. A watcher thread per
 * process notices a change of <store>/certs/<name>/current (inotify, and an
 * look once a second in case inotify misses it: cs_store_current_changed),
 * parses the new version once, checks it under the core's policy
 * (cs_serve_check) and swaps it in. A version the policy refuses is logged
 * and shown in status; the one served stays.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apr_strings.h"
#include "apr_thread_proc.h"
#include "httpd.h"
#include "http_log.h"
#include "http_main.h"
#include "http_config.h"

#include "cs_bundle.h"
#include "cs_fallback.h"
#include "cs_fs.h"
#include "cs_ocsp.h"
#include "cs_serve.h"
#include "cs_store.h"

#include "mod_certsync.h"

APLOG_USE_MODULE(certsync);

/* ---- served objects ---- */

static certsync_served *served_new(const cs_bundle *b, unsigned version)
{
    certsync_served *o = calloc(1, sizeof(*o));
    STACK_OF(X509) *issuers = cs_bundle_issuers(b);

    if (o == NULL)
        return NULL;
    o->refs = 1;
    o->leaf = cs_bundle_leaf(b);
    X509_up_ref(o->leaf);
    o->key = cs_bundle_key(b);
    EVP_PKEY_up_ref(o->key);
    o->chain = issuers ? X509_chain_up_ref(issuers) : sk_X509_new_null();
    o->version = version;
    o->not_after = cs_bundle_not_after(b);
    o->since = time(NULL);
    cs_bundle_fingerprint(b, o->fingerprint);
    X509_digest(o->leaf, EVP_sha1(), o->sha1, NULL);
    return o;
}

/*
 * Load the staple of slot's version (read and checked here, never in a
 * handshake) into o. No staple, or one that fails the checks, leaves none.
 */
static void served_staple(certsync_served *o, certsync_slot *slot, const cs_bundle *b)
{
    cs_ocsp_response r;
    int changed;
    cs_rc rc;

    cs_store_aside_changed(certsync_g->store, slot->name, o->version, "ocsp", &slot->staple_seen,
                           &changed);
    if (o->version == 0)
        return;
    rc = cs_ocsp_load(certsync_g->store, slot->name, o->version, b, 0, &o->staple, &o->staple_len,
                      &r);
    if (rc == CS_OK)
        o->staple_until = r.next_update;
    else if (rc != CS_ENOTFOUND)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, certsync_g->s,
                     "certsync: '%s': v%u is served without an OCSP staple: %s", slot->name,
                     o->version, cs_error_last());
}

certsync_served *certsync_served_acquire(certsync_slot *slot)
{
    certsync_served *o;

    pthread_rwlock_rdlock(&slot->lock);
    o = slot->cur;
    if (o)
        __atomic_add_fetch(&o->refs, 1, __ATOMIC_RELAXED);
    pthread_rwlock_unlock(&slot->lock);
    return o;
}

void certsync_served_release(certsync_served *o)
{
    if (o == NULL || __atomic_sub_fetch(&o->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    X509_free(o->leaf);
    sk_X509_pop_free(o->chain, X509_free);
    EVP_PKEY_free(o->key);
    free(o->staple);
    free(o);
}

static void slot_swap(certsync_slot *slot, certsync_served *o, int newer)
{
    certsync_served *old;

    pthread_rwlock_wrlock(&slot->lock);
    old = slot->cur;
    slot->cur = o;
    if (newer) {
        slot->rejected_version = 0; /* a rejection is history once something newer is served */
        slot->rejected_reason[0] = '\0';
    }
    __atomic_store_n(&slot->serving_fallback, o->version == 0, __ATOMIC_RELEASE);
    pthread_rwlock_unlock(&slot->lock);
    /* handshakes that still hold the old one keep it until they are done */
    certsync_served_release(old);
}

static void slot_install(certsync_slot *slot, certsync_served *o)
{
    slot_swap(slot, o, 1);
}

static void slot_reject(certsync_slot *slot, unsigned version, const char *why)
{
    pthread_rwlock_wrlock(&slot->lock);
    slot->rejected_version = version;
    snprintf(slot->rejected_reason, sizeof(slot->rejected_reason), "%s", why);
    slot->rejected_at = time(NULL);
    pthread_rwlock_unlock(&slot->lock);
}

/*
 * The certificate callback: runs once per full handshake, after mod_ssl has
 * picked the vhost's SSL_CTX by SNI. Copies the cached objects into the SSL
 * (up-refs, no parsing). Clearing first drops what mod_ssl loaded at start,
 * so that an old certificate of another key type is never offered.
 */
int certsync_cert_cb(SSL *ssl, void *arg)
{
    certsync_slot **pair = arg;
    certsync_served *o[2] = {NULL, NULL};
    int i, ok = 1, done;

    ok = certsync_alpn_cert(ssl, &done); /* an ACME tls-alpn-01 handshake: its own answer */
    if (done)
        return ok;
    for (i = 0; i < 2 && pair[i]; i++)
        o[i] = certsync_served_acquire(pair[i]);
    if (o[0] == NULL && o[1] == NULL)
        return 1; /* nothing parsed: keep what mod_ssl configured */
    SSL_certs_clear(ssl);
    /* one per key type: OpenSSL then picks the one the client's signature algorithms take */
    for (i = 0; i < 2 && ok; i++) {
        if (o[i] == NULL)
            continue;
        ok = SSL_use_certificate(ssl, o[i]->leaf) == 1 && SSL_use_PrivateKey(ssl, o[i]->key) == 1 &&
             SSL_set1_chain(ssl, o[i]->chain) == 1;
        if (!ok)
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, ap_server_conf,
                         "certsync: '%s': cannot set v%u on a TLS connection: %s", pair[i]->name,
                         o[i]->version, cs_error_openssl());
    }
    certsync_served_release(o[0]);
    certsync_served_release(o[1]);
    return ok;
}

/* ---- loading a version ---- */

/*
 * 1 when `current` is not what the slot last looked at (the core's one
 * check, cs_store_current_changed: inode and ctime), and remember it.
 */
int certsync_link_changed(certsync_slot *slot)
{
    int changed = 0;

    if (cs_store_current_changed(certsync_g->store, slot->name, &slot->seen, &changed) != CS_OK)
        return 0; /* not readable now: the next look that works counts as a change */
    return changed;
}

/*
 * Load version (0: current) of the slot through the store API and decide
 * under the core's one policy (cs_serve_check): key, chain or names failing
 * is an error; an expired but otherwise good version loads, with the
 * warning in *warn (when given).
 */
static cs_rc load_bundle(certsync_mod *m, certsync_slot *slot, unsigned *version, cs_bundle **out,
                         cs_serve_verdict *verdict, char *why, size_t size)
{
    char origin[160];

    *out = NULL;
    *verdict = CS_SERVE_REFUSED;
    if (*version == 0 && cs_store_current(m->store, slot->name, version) != CS_OK) {
        snprintf(why, size, "%s", cs_error_last());
        return cs_error_code();
    }
    if (cs_store_load(m->store, slot->name, *version, out) != CS_OK) {
        snprintf(why, size, "v%u does not load: %s", *version, cs_error_last());
        return cs_error_code();
    }
    snprintf(origin, sizeof(origin), "v%u of '%s'", *version, slot->name);
    if (cs_serve_check(*out, slot->cc, 0, origin, verdict) != CS_OK) {
        snprintf(why, size, "%s", cs_error_last());
        cs_bundle_free(*out);
        *out = NULL;
        return CS_EBADCERT;
    }
    if (*verdict == CS_SERVE_EXPIRED)
        snprintf(why, size, "%s", cs_error_last());
    return CS_OK;
}

/* Whether a version checked as v replaces what the slot serves (cs_serve_replaces). */
static int replaces(certsync_slot *slot, cs_serve_verdict v, const cs_bundle *b)
{
    certsync_served *cur = certsync_served_acquire(slot);
    cs_bundle *served = NULL;
    int yes;

    if (cur && cur->version)
        cs_bundle_new(cur->leaf, cur->chain, cur->key, &served);
    yes = cs_serve_replaces(v, b, served, 0);
    cs_bundle_free(served);
    certsync_served_release(cur);
    return yes;
}

/* The same, parsed into what a process serves; an expired one only replaces the fallback. */
static cs_rc load_version(certsync_mod *m, certsync_slot *slot, unsigned *version,
                          certsync_served **out, char *why, size_t size)
{
    cs_serve_verdict v;
    cs_bundle *b;

    *out = NULL;
    if (load_bundle(m, slot, version, &b, &v, why, size) != CS_OK)
        return cs_error_code();
    if (!replaces(slot, v, b)) {
        snprintf(why, size, "v%u expired, and the version served is valid or newer", *version);
        cs_bundle_free(b);
        return CS_EBADCERT;
    }
    if (v == CS_SERVE_EXPIRED)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, m->s, "certsync: '%s': %s", slot->name, why);
    *out = served_new(b, *version);
    if (*out)
        served_staple(*out, slot, b);
    cs_bundle_free(b);
    if (*out == NULL) {
        snprintf(why, size, "out of memory");
        return CS_ENOMEM;
    }
    return CS_OK;
}

int certsync_version_loads(certsync_slot *slot, unsigned *version, char *why, size_t size)
{
    cs_serve_verdict v;
    cs_bundle *b;

    *version = 0;
    if (load_bundle(certsync_g, slot, version, &b, &v, why, size) != CS_OK)
        return 0;
    cs_bundle_free(b);
    return 1;
}

/*
 * For the configuration test (apache2 -t too): 0 when the current version
 * exists and the policy refuses it (key, chain or names: *why says why). No
 * version, or one the store refuses to read (a planted symlink or FIFO, see
 * "Trust boundary"), is the fallback's case: a worker user must not be able
 * to stop the server from starting.
 */
int certsync_version_servable(certsync_mod *m, certsync_slot *slot, char *why, size_t size)
{
    cs_serve_verdict v;
    unsigned version = 0;
    cs_bundle *b;

    if (load_bundle(m, slot, &version, &b, &v, why, size) == CS_OK) {
        cs_bundle_free(b);
        return 1;
    }
    return cs_error_code() != CS_EBADCERT;
}

/* ---- what mod_ssl loads at start: files only the parent writes ---- */

/*
 * mod_ssl reads certificate files by path, as root. It is never handed a
 * store path (the workers' user may plant a symlink or a FIFO there): the
 * parent copies what it loaded through the store API, or the fallback, into
 * <runtime dir>/certsync/<name>/, a directory of its own user, mode 0700.
 */
static cs_rc runtime_dir(certsync_slot *slot, apr_pool_t *p, int *fd)
{
    const char *top = ap_runtime_dir_relative(p, "");
    int rfd, cfd;
    cs_rc rc;

    if (top == NULL)
        return cs_error_set(CS_EINVAL, "no runtime directory (DefaultRuntimeDir)");
    if (cs_fs_dir_open(top, geteuid(), &rfd) != CS_OK)
        return cs_error_prefix("the runtime directory '%s' (DefaultRuntimeDir)", top);
    rc = cs_fs_dir_makeat(rfd, "certsync", 0700, (gid_t)-1, geteuid(), &cfd);
    close(rfd);
    if (rc == CS_OK) {
        rc = cs_fs_dir_makeat(cfd, slot->name, 0700, (gid_t)-1, geteuid(), fd);
        close(cfd);
    }
    if (rc != CS_OK)
        return cs_error_prefix("'%s/certsync/%s'", top, slot->name);
    slot->runtime = apr_pstrcat(p, top, "/certsync/", slot->name, NULL);
    return CS_OK;
}

/* Write b's chain and key as cert and key in dirfd (0600: mod_ssl reads them as root). */
static cs_rc write_pair(int dirfd, const cs_bundle *b, const char *cert, const char *key)
{
    char *leaf = NULL, *issuers = NULL, *pem = NULL;
    size_t leaf_len = 0, issuers_len = 0, len = 0;
    cs_rc rc;

    /* key first: a cert file without its key would be unusable */
    rc = cs_bundle_pem_key(b, &pem, &len);
    if (rc == CS_OK) {
        rc = cs_fs_write_at(dirfd, key, pem, len, 0600, (gid_t)-1, CS_FS_SYNC);
        OPENSSL_cleanse(pem, len);
        free(pem);
    }
    if (rc == CS_OK && (rc = cs_bundle_pem_leaf(b, &leaf, &leaf_len)) == CS_OK &&
        (rc = cs_bundle_pem_issuers(b, &issuers, &issuers_len)) == CS_OK) {
        pem = malloc(leaf_len + issuers_len + 1);
        if (pem == NULL) {
            rc = cs_error_set(CS_ENOMEM, "out of memory");
        } else {
            memcpy(pem, leaf, leaf_len);
            memcpy(pem + leaf_len, issuers, issuers_len);
            rc = cs_fs_write_at(dirfd, cert, pem, leaf_len + issuers_len, 0600, (gid_t)-1,
                                CS_FS_SYNC);
            free(pem);
        }
    }
    free(leaf);
    free(issuers);
    return rc;
}

/* Read the pair cert + key of dirfd (the parent's own files, no symlink, no FIFO). */
static cs_rc read_pair(int dirfd, const char *origin, const char *cert, const char *key,
                       cs_bundle **out)
{
    char *certs = NULL, *pem = NULL;
    size_t clen = 0, klen = 0;
    cs_rc rc;

    rc = cs_fs_read_at(dirfd, cert, CS_STORE_MAX_FILE, geteuid(), &certs, &clen);
    if (rc == CS_OK)
        rc = cs_fs_read_at(dirfd, key, CS_STORE_MAX_FILE, geteuid(), &pem, &klen);
    if (rc == CS_OK)
        rc = cs_bundle_load_pem(certs, clen, pem, klen, origin, out);
    free(certs);
    if (pem) {
        OPENSSL_cleanse(pem, klen);
        free(pem);
    }
    return rc;
}

static cs_rc make_fallback(certsync_slot *slot, cs_bundle **out)
{
    cs_fallback_spec spec = {.name = slot->name,
                             .names = (const char *const *)slot->cc->domains,
                             .n_names = slot->cc->n_domains,
                             .key_type = slot->cc->key_type};

    return cs_fallback_issue(&spec, out);
}

/* fallback.pem + fallback.key of the runtime directory, made again when it nears its end. */
static cs_rc load_fallback(certsync_slot *slot, int dirfd, cs_bundle **out)
{
    *out = NULL;
    if (read_pair(dirfd, "the fallback", "fallback.pem", "fallback.key", out) == CS_OK &&
        cs_bundle_not_after(*out) > time(NULL) + 86400)
        return CS_OK;
    cs_bundle_free(*out);
    *out = NULL;
    if (make_fallback(slot, out) != CS_OK ||
        write_pair(dirfd, *out, "fallback.pem", "fallback.key") != CS_OK) {
        cs_bundle_free(*out);
        *out = NULL;
        return cs_error_code();
    }
    return CS_OK;
}

/*
 * What the slot serves at start (*out) and the files mod_ssl loads for it:
 * a copy of b, which the parent loaded through the store API, or with no b
 * the fallback.
 */
static apr_status_t prepare_files(certsync_mod *m, certsync_slot *slot, apr_pool_t *p, cs_bundle *b,
                                  unsigned version, certsync_served **out)
{
    const char *cert = b ? "served.pem" : "fallback.pem", *key = b ? "served.key" : "fallback.key";
    cs_bundle *fb = NULL;
    int fd;
    cs_rc rc;

    if (runtime_dir(slot, p, &fd) != CS_OK) {
        rc = cs_error_code();
    } else {
        rc = b ? write_pair(fd, b, cert, key) : load_fallback(slot, fd, &fb);
        if (rc == CS_OK && b == NULL) {
            /* the key of a version no longer served does not linger */
            cs_fs_remove_at(fd, "served.pem");
            cs_fs_remove_at(fd, "served.key");
        }
        close(fd);
    }
    if (rc != CS_OK) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, m->s,
                     "certsync: '%s': cannot write the %s for mod_ssl: %s", slot->name,
                     b ? "certificate files" : "self-signed fallback certificate", cs_error_last());
        return APR_EGENERAL;
    }
    slot->cert_file = apr_pstrcat(p, slot->runtime, "/", cert, NULL);
    slot->key_file = apr_pstrcat(p, slot->runtime, "/", key, NULL);
    *out = b ? served_new(b, version) : served_new(fb, 0);
    if (*out && b)
        served_staple(*out, slot, b);
    cs_bundle_free(fb);
    return *out ? APR_SUCCESS : APR_ENOMEM;
}

/*
 * At start, in the parent: what the slot serves until the store changes.
 * The current version if it loads (validation problems are logged: mod_ssl
 * would serve an expired file too); else the fallback, with the reason.
 */
apr_status_t certsync_slot_prepare(certsync_mod *m, certsync_slot *slot, apr_pool_t *p)
{
    char why[1024] = "";
    certsync_served *o = NULL;
    cs_bundle *b = NULL;
    cs_serve_verdict v;
    unsigned version = 0;
    apr_status_t rv;
    int changed;

    if (pthread_rwlock_init(&slot->lock, NULL) != 0)
        return APR_EGENERAL;
    slot->watch = -1;
    cs_store_current_changed(m->store, slot->name, &slot->seen, &changed);
    if (load_bundle(m, slot, &version, &b, &v, why, sizeof(why)) != CS_OK) {
        if (cs_error_code() == CS_EBADCERT) {
            /* the configuration test refused it already; the store moved since */
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, m->s,
                         "certsync: '%s': the current version cannot be served: %s "
                         "(`certsync rollback %s` makes the previous one current)",
                         slot->name, why, slot->name);
            return APR_EGENERAL;
        }
        slot->start_reason = apr_pstrdup(p, why);
    } else if (v == CS_SERVE_EXPIRED) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, m->s, "certsync: '%s': %s", slot->name, why);
    }
    rv = prepare_files(m, slot, p, b, version, &o);
    cs_bundle_free(b);
    if (rv == APR_SUCCESS)
        slot_install(slot, o);
    return rv;
}

/*
 * In a child: when `current` changed, parse the new version once and serve
 * it if it validates. Called by the watcher thread only (and once by
 * child_init before any connection is accepted).
 */
static void version_check(server_rec *s, certsync_slot *slot)
{
    char why[1024], which[16] = "?", was[32];
    certsync_served *o, *cur;
    unsigned version = 0, served;

    if (!certsync_link_changed(slot))
        return;
    if (!slot->seen.linked)
        return; /* no current (yet, or removed by hand): keep serving what we have */
    cur = certsync_served_acquire(slot);
    served = cur ? cur->version : 0;
    certsync_served_release(cur);
    if (cs_store_current(certsync_g->store, slot->name, &version) == CS_OK && version == served)
        return;
    version = 0;
    if (load_version(certsync_g, slot, &version, &o, why, sizeof(why)) != CS_OK) {
        if (version)
            snprintf(which, sizeof(which), "v%u", version);
        if (served)
            snprintf(was, sizeof(was), "v%u", served);
        else
            snprintf(was, sizeof(was), "the self-signed fallback");
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s,
                     "certsync: '%s': not serving the new current version %s: %s; still serving "
                     "%s",
                     slot->name, which, why, was);
        slot_reject(slot, version, why);
        return;
    }
    slot_install(slot, o);
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s,
                 "certsync: '%s': now serving v%u (sha256 %s) in process %ld, no restart",
                 slot->name, version, o->fingerprint, (long)getpid());
}

/*
 * The staple beside the version served changed (one lstat()), or the one in
 * memory expired: the same objects with the staple as it is now, swapped in.
 */
static void staple_check(server_rec *s, certsync_slot *slot)
{
    certsync_served *cur = certsync_served_acquire(slot), *o = NULL;
    cs_store_stamp seen = slot->staple_seen;
    cs_bundle *b = NULL;
    int changed = 0;

    if (cur && cur->version)
        cs_store_aside_changed(certsync_g->store, slot->name, cur->version, "ocsp", &seen,
                               &changed);
    if (cur && cur->version && (changed || (cur->staple && cur->staple_until <= time(NULL))) &&
        cs_bundle_new(cur->leaf, cur->chain, cur->key, &b) == CS_OK &&
        (o = served_new(b, cur->version)) != NULL) {
        o->since = cur->since;
        served_staple(o, slot, b);
        slot_swap(slot, o, 0);
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s,
                     "certsync: '%s': v%u %s an OCSP staple now in process %ld", slot->name,
                     o->version, o->staple ? "has" : "has no", (long)getpid());
    }
    cs_bundle_free(b);
    certsync_served_release(cur);
}

void certsync_slot_check(server_rec *s, certsync_slot *slot)
{
    version_check(s, slot);
    staple_check(s, slot);
}

/* ---- OCSP stapling: mod_ssl asks by the SHA-1 of the certificate it serves ---- */

/*
 * What pair (a vhost's certificates) serves with this id (the SHA-1 of the
 * leaf), with a reference; NULL: not ours.
 */
certsync_served *certsync_served_by_id(certsync_slot *const *pair, const char *id, size_t id_len)
{
    int i;

    for (i = 0; i < 2 && pair[i] && id_len == 20; i++) {
        certsync_served *o = certsync_served_acquire(pair[i]);

        if (o && memcmp(o->sha1, id, 20) == 0)
            return o;
        certsync_served_release(o);
    }
    return NULL;
}

/*
 * The staple loaded with o, from memory (no file, no parsing), through
 * mod_ssl's copy callback; an expired one is not sent (NULL, 0).
 */
void certsync_served_staple(const certsync_served *o, ap_ssl_ocsp_copy_resp *cb, void *userdata)
{
    if (o->staple && o->staple_until > time(NULL))
        cb(o->staple, o->staple_len, userdata);
    else
        cb(NULL, 0, userdata);
}

/* ---- the watcher thread ---- */

typedef struct {
    server_rec *s;
    apr_thread_t *thread;
    int inotify_fd, wake_fd;
    int stop;
} watcher;

static void watch_dirs(watcher *w)
{
    const uint32_t mask =
        IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;
    int i;

    if (w->inotify_fd < 0)
        return;
    for (i = 0; i < certsync_g->slots->nelts; i++) {
        certsync_slot *slot = APR_ARRAY_IDX(certsync_g->slots, i, certsync_slot *);

        if (slot->watch < 0) /* retried every second until the directory exists */
            slot->watch = inotify_add_watch(w->inotify_fd, slot->dir, mask);
    }
}

static void drain_events(watcher *w)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    const struct inotify_event *ev;
    ssize_t n;
    char *q;
    int i;

    while ((n = read(w->inotify_fd, buf, sizeof(buf))) > 0) {
        for (q = buf; q < buf + n; q += sizeof(*ev) + ev->len) {
            ev = (const struct inotify_event *)q;
            if (!(ev->mask & IN_IGNORED))
                continue;
            for (i = 0; i < certsync_g->slots->nelts; i++) {
                certsync_slot *slot = APR_ARRAY_IDX(certsync_g->slots, i, certsync_slot *);

                if (slot->watch == ev->wd)
                    slot->watch = -1;
            }
        }
    }
}

static void *APR_THREAD_FUNC watch_main(apr_thread_t *thread, void *data)
{
    watcher *w = data;
    struct pollfd fds[2];
    uint64_t v;
    int i;

    while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
        watch_dirs(w);
        fds[0].fd = w->wake_fd;
        fds[0].events = POLLIN;
        fds[1].fd = w->inotify_fd;
        fds[1].events = POLLIN;
        /* an event wakes us at once; without one, look anyway once a second */
        if (poll(fds, w->inotify_fd >= 0 ? 2 : 1, 1000) > 0) {
            if (fds[0].revents && read(w->wake_fd, &v, sizeof(v)) < 0)
                continue;
            if (w->inotify_fd >= 0 && fds[1].revents)
                drain_events(w);
        }
        if (__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE))
            break;
        for (i = 0; i < certsync_g->slots->nelts; i++)
            certsync_slot_check(w->s, APR_ARRAY_IDX(certsync_g->slots, i, certsync_slot *));
    }
    apr_thread_exit(thread, APR_SUCCESS);
    return NULL;
}

static apr_status_t watch_stop(void *data)
{
    watcher *w = data;
    uint64_t one = 1;
    apr_status_t rv;

    __atomic_store_n(&w->stop, 1, __ATOMIC_RELEASE);
    if (write(w->wake_fd, &one, sizeof(one)) < 0)
        ap_log_error(APLOG_MARK, APLOG_DEBUG, errno, w->s, "certsync: waking the watcher");
    apr_thread_join(&rv, w->thread);
    if (w->inotify_fd >= 0)
        close(w->inotify_fd);
    close(w->wake_fd);
    return APR_SUCCESS;
}

/* child_init: catch up with the store before the first connection, then watch it. */
apr_status_t certsync_watch_start(apr_pool_t *pchild, server_rec *s)
{
    watcher *w;
    apr_status_t rv;
    int i;

    for (i = 0; i < certsync_g->slots->nelts; i++) {
        certsync_slot *slot = APR_ARRAY_IDX(certsync_g->slots, i, certsync_slot *);

        /* the children run unprivileged: a store they cannot read hides every change */
        if (access(slot->dir, R_OK | X_OK) != 0 && errno != ENOENT)
            ap_log_error(APLOG_MARK, APLOG_ERR, errno, s,
                         "certsync: '%s': this process (uid %ld) cannot read %s, so it will "
                         "not see new versions; let the workers' group read the store "
                         "([store] group = www-data, say, in %s, then certsync sync or "
                         "import)",
                         slot->name, (long)geteuid(), slot->dir, certsync_g->config_path);
        certsync_slot_check(s, slot);
    }
    w = apr_pcalloc(pchild, sizeof(*w));
    w->s = s;
    w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->wake_fd < 0)
        return errno;
    w->inotify_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (w->inotify_fd < 0)
        ap_log_error(APLOG_MARK, APLOG_WARNING, errno, s,
                     "certsync: no inotify; a new version is noticed within a second instead");
    rv = apr_thread_create(&w->thread, NULL, watch_main, w, pchild);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s,
                     "certsync: cannot start the watcher thread; new versions are not served "
                     "until a restart");
        if (w->inotify_fd >= 0)
            close(w->inotify_fd);
        close(w->wake_fd);
        return rv;
    }
    apr_pool_pre_cleanup_register(pchild, w, watch_stop);
    return APR_SUCCESS;
}
