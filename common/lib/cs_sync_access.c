/* certsync: can a server's worker user run the in-server sync? (see cs_sync_access.h) */
#include "cs_sync_access.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define REPORT_SIZE 8192

/* The problems found, one per line, each naming the path, the errno text and what to do. */
typedef struct {
    char text[REPORT_SIZE];
    size_t len;
    unsigned n;
    const char *user;
    const char *store;
} report;

static void problem(report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(report *r, const char *fmt, ...)
{
    va_list ap;
    int k;

    r->n++;
    if (r->len >= sizeof(r->text) - 1)
        return;
    va_start(ap, fmt);
    k = vsnprintf(r->text + r->len, sizeof(r->text) - r->len, fmt, ap);
    va_end(ap);
    if (k > 0)
        r->len += (size_t)k < sizeof(r->text) - r->len ? (size_t)k : sizeof(r->text) - r->len - 1;
    if (r->len < sizeof(r->text) - 1)
        r->text[r->len++] = '\n';
    r->text[r->len] = '\0';
}

/* Open path as the user would (flags: O_RDONLY or O_RDWR); errno of the failure, or 0. */
static int try_open(const char *path, int flags)
{
    int fd = open(path, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);

    if (fd < 0)
        return errno;
    close(fd);
    return 0;
}

static void readable(report *r, const char *path, const char *what, const char *fix)
{
    int e = try_open(path, O_RDONLY);

    if (e)
        problem(r, "cannot read %s '%s': %s; %s", what, path, strerror(e), fix);
}

/*
 * A directory of the store the sync writes: the user's own (the store writes only a store
 * of its own user) and searchable, readable, writable. 0: absent (nothing below it to check).
 */
static int store_dir(report *r, const char *path, uid_t uid)
{
    struct stat st;

    if (stat(path, &st) < 0) {
        if (errno != ENOENT)
            problem(r, "cannot reach the store directory '%s': %s; chown -R %s %s", path,
                    strerror(errno), r->user, r->store);
        return 0;
    }
    if (st.st_uid != uid) {
        problem(r,
                "cannot write the store directory '%s': it belongs to uid %ld, and a sync writes "
                "only a store of its own user (Permission denied); set `owner = %s` in [store] "
                "and chown -R %s %s, or leave syncing to `certsync sync` as root (sync off)",
                path, (long)st.st_uid, r->user, r->user, r->store);
        return 0;
    }
    if (access(path, R_OK | W_OK | X_OK) < 0) {
        problem(r, "cannot write the store directory '%s': %s; chmod u+rwx %s", path,
                strerror(errno), path);
        return 0;
    }
    return 1;
}

/* A file the sync rewrites or locks, when it exists. */
static void store_file(report *r, const char *dir, const char *name, const char *fix)
{
    char path[4096];
    int e;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    e = try_open(path, O_RDWR);
    if (e && e != ENOENT)
        problem(r, "cannot open '%s' for writing: %s; %s", path, strerror(e), fix);
}

static int uses_local_ca(const cs_config *c)
{
    size_t i;

    for (i = 0; i < c->n_certs; i++)
        if (c->certs[i].provider == NULL || c->certs[i].provider->type == CS_PROVIDER_LOCAL_CA)
            return 1;
    return 0;
}

/* The local CA: its lock is taken and its issuer key read at every issue. */
static void local_ca(report *r, const cs_config *c)
{
    char dir[4096], fix[8600], key[4200];
    int e;

    if (!uses_local_ca(c))
        return;
    snprintf(dir, sizeof(dir), "%s/local-ca", c->store_path);
    snprintf(fix, sizeof(fix),
             "local-CA renewal inside the server needs the CA's keys and lock owned by %s "
             "(chown -R %s %s), else renew with `certsync sync` as root (sync off)",
             r->user, r->user, dir);
    if (access(dir, F_OK) < 0 && errno == ENOENT)
        return; /* made by the first issue, in a store the user writes */
    if (access(dir, R_OK | W_OK | X_OK) < 0) {
        problem(r, "cannot use the local CA '%s': %s; %s", dir, strerror(errno), fix);
        return;
    }
    store_file(r, dir, ".lock", fix);
    snprintf(key, sizeof(key), "%s/issuer.key", dir);
    e = try_open(key, O_RDONLY);
    if (e && e != ENOENT)
        problem(r, "cannot read the local CA's key '%s': %s; %s", key, strerror(e), fix);
}

static void store(report *r, const cs_config *c, uid_t uid)
{
    char path[4096], fix[512];
    size_t i;

    snprintf(fix, sizeof(fix), "chown -R %s %s", r->user, c->store_path);
    if (access(c->store_path, F_OK) < 0 && errno == ENOENT) {
        char *parent = strdup(c->store_path), *slash = parent ? strrchr(parent, '/') : NULL;

        if (slash)
            *(slash == parent ? slash + 1 : slash) = '\0';
        if (parent && access(parent, W_OK | X_OK) < 0)
            problem(r,
                    "cannot create the store '%s' in '%s': %s; create it for %s (mkdir %s && %s)",
                    c->store_path, parent, strerror(errno), r->user, c->store_path, fix);
        free(parent);
        return;
    }
    if (!store_dir(r, c->store_path, uid))
        return;
    snprintf(path, sizeof(path), "%s/certs", c->store_path);
    if (store_dir(r, path, uid))
        for (i = 0; i < c->n_certs; i++) {
            snprintf(path, sizeof(path), "%s/certs/%s", c->store_path, c->certs[i].name);
            if (store_dir(r, path, uid)) {
                store_file(r, path, ".lock", fix);
                store_file(r, path, "state.json", fix);
            }
        }
    local_ca(r, c);
}

/* The on-change commands run as the user, from the sync. */
static void commands(report *r, const cs_config *c)
{
    char prog[4096];
    size_t i, n;

    for (i = 0; i < c->n_certs; i++) {
        const char *cmd = c->certs[i].on_change;

        if (cmd == NULL)
            continue;
        n = strcspn(cmd, " \t");
        snprintf(prog, sizeof(prog), "%.*s", (int)n, cmd);
        if (access(prog, X_OK) < 0)
            problem(r,
                    "cannot run [cert %s] on-change '%s': %s; the in-server sync runs on-change "
                    "commands as %s",
                    c->certs[i].name, prog, strerror(errno), r->user);
    }
}

static void check_all(report *r, const cs_config *c, uid_t uid)
{
    size_t i;
    char fix[512];

    snprintf(fix, sizeof(fix),
             "the sync reads it again at every run: let %s read it without letting it write "
             "(chgrp GROUP %s && chmod 0640 %s, root the owner)",
             r->user, c->path, c->path);
    readable(r, c->path, "certsync.conf", fix);
    for (i = 0; i < c->n_providers; i++) {
        const char *cred = c->providers[i].credentials;

        if (c->providers[i].type != CS_PROVIDER_ALIYUN_CAS || cred == NULL || cred[0] != '/')
            continue;
        snprintf(fix, sizeof(fix),
                 "the in-server sync reads the access keys as %s: chown %s %s (it stays 0600), "
                 "or leave syncing to `certsync sync` as root (sync off)",
                 r->user, r->user, cred);
        readable(r, cred, "the credentials file", fix);
    }
    store(r, c, uid);
    commands(r, c);
}

/* As root: a child becomes the user (groups, gid, uid) and reports through a pipe. */
static cs_rc check_as(report *r, const cs_config *c, uid_t uid, gid_t gid)
{
    int p[2], status;
    ssize_t k;
    pid_t pid;

    if (pipe(p) < 0 || (pid = fork()) < 0)
        return cs_error_set(CS_ERR, "cannot check the in-server sync's access as %s: %s", r->user,
                            strerror(errno));
    if (pid == 0) {
        close(p[0]);
        if (initgroups(r->user, gid) < 0 || setresgid(gid, gid, gid) < 0 ||
            setresuid(uid, uid, uid) < 0)
            problem(r, "cannot become %s to check: %s", r->user, strerror(errno));
        else
            check_all(r, c, uid);
        if (write(p[1], r->text, r->len) < 0)
            _exit(2);
        _exit(r->n ? 1 : 0);
    }
    close(p[1]);
    r->len = 0;
    while (r->len < sizeof(r->text) - 1 &&
           (k = read(p[0], r->text + r->len, sizeof(r->text) - 1 - r->len)) > 0)
        r->len += (size_t)k;
    r->text[r->len] = '\0';
    close(p[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    r->n = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
    if (r->n && r->len == 0)
        return cs_error_set(CS_ERR, "the access check as %s failed (status %d)", r->user, status);
    return CS_OK;
}

/* One message: every problem, "; and " between them. */
static cs_rc fail(report *r, uid_t uid)
{
    char msg[REPORT_SIZE + 256];
    size_t n = 0;
    const char *p = r->text, *nl;

    n = (size_t)snprintf(msg, sizeof(msg), "the in-server sync runs as user %s (uid %ld), who ",
                         r->user, (long)uid);
    for (; *p && n < sizeof(msg); p = *nl ? nl + 1 : nl) {
        nl = strchr(p, '\n');
        if (nl == NULL)
            nl = p + strlen(p);
        n += (size_t)snprintf(msg + n, sizeof(msg) - n, "%s%.*s", p == r->text ? "" : "; and ",
                              (int)(nl - p), p);
    }
    return cs_error_set(CS_EPERM, "%s", msg);
}

cs_rc cs_sync_access_check(const cs_config *c, const char *user, uid_t uid, gid_t gid)
{
    report *r = calloc(1, sizeof(*r));
    cs_rc rc;

    if (r == NULL)
        return cs_error_set(CS_ENOMEM, "out of memory");
    r->user = user;
    r->store = c->store_path;
    if (geteuid() == 0 && uid != 0)
        rc = check_as(r, c, uid, gid);
    else {
        check_all(r, c, uid);
        rc = CS_OK;
    }
    if (rc == CS_OK && r->n)
        rc = fail(r, uid);
    free(r);
    return rc;
}
