#include "cs_store.h"

#include <dirent.h>
#include <errno.h>
#include <ctype.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cs_config.h"
#include "cs_fs.h"
#include "cs_output.h"
#include "cs_password.h"
#include "cs_time.h"

struct cs_store {
    char *path;
    int root_fd;        /* the store directory, opened once and verified */
    uid_t owner;        /* the store's user: everything read must belong to it */
    gid_t gid;          /* group of what workers read, (gid_t)-1 to leave it */
    char lock_name[72]; /* the lock this handle holds, taken again by nesting */
    int lock_fd;
    int lock_depth;
    unsigned keep;
};

#define PATH_SZ 4096
#define DIR_MODE 0750     /* directories on the way to what workers serve */
#define SERVED_MODE 0640  /* certificates and keys workers serve: group-readable */
#define PRIVATE_MODE 0600 /* PFX, JKS and their passwords, the lock */

static cs_rc check_name(const char *name)
{
    if (!cs_name_valid(name))
        return cs_error_set(CS_EINVAL,
                            "'%s' is not a certificate name (letters, digits, '.', '_', '-'; "
                            "at most 64)",
                            name);
    return CS_OK;
}

static cs_rc cert_dir(const cs_store *s, const char *name, char *buf, size_t size)
{
    if (check_name(name) != CS_OK)
        return cs_error_code();
    if ((size_t)snprintf(buf, size, "%s/certs/%s", s->path, name) >= size)
        return cs_error_set(CS_EINVAL, "store path too long");
    return CS_OK;
}

/*
 * Only the store's user writes it: a root process never writes into a tree
 * that another user (a web server's workers) can change under it.
 */
static const char *user_name(uid_t uid, char *buf, size_t size)
{
    struct passwd pwd, *pw = NULL;
    char tmp[1024];

    getpwuid_r(uid, &pwd, tmp, sizeof(tmp), &pw);
    if (pw)
        snprintf(buf, size, "%s", pw->pw_name);
    else
        snprintf(buf, size, "%ld", (long)uid);
    return buf;
}

static cs_rc not_ours(const char *path, uid_t owner)
{
    char who[256], me[256];

    user_name(owner, who, sizeof(who));
    user_name(geteuid(), me, sizeof(me));
    return cs_error_set(CS_EPERM,
                        "the store '%s' belongs to %s (uid %ld), and only the store's user writes "
                        "it, not %s: set [store] owner = %s so that root drops to that user, or "
                        "move the store aside and let %s make a new one (do not chown it back: "
                        "it may hold what %s planted)",
                        path, who, (long)owner, me, who, me, who);
}

static cs_rc writable(const cs_store *s)
{
    return geteuid() == s->owner ? CS_OK : not_ours(s->path, s->owner);
}

/* certs/<name>, verified; created (writers only) when create is set. */
static cs_rc cert_open(const cs_store *s, const char *name, int create, int *fd)
{
    int certs;
    cs_rc rc;

    if (check_name(name) != CS_OK || (create && writable(s) != CS_OK))
        return cs_error_code();
    rc = create ? cs_fs_dir_makeat(s->root_fd, "certs", DIR_MODE, s->gid, s->owner, &certs)
                : cs_fs_dir_openat(s->root_fd, "certs", s->owner, &certs);
    if (rc == CS_OK) {
        rc = create ? cs_fs_dir_makeat(certs, name, DIR_MODE, s->gid, s->owner, fd)
                    : cs_fs_dir_openat(certs, name, s->owner, fd);
        close(certs);
    }
    if (rc == CS_ENOTFOUND)
        return cs_error_set(CS_ENOTFOUND, "'%s' has no current version in the store '%s'", name,
                            s->path);
    if (rc != CS_OK)
        return cs_error_prefix("store '%s/certs/%s'", s->path, name);
    return CS_OK;
}

/* Create the store directory; a new one goes to the configured owner. */
static cs_rc create_root(const char *path, const cs_store_opts *opts)
{
    int fd;

    if (mkdir(path, DIR_MODE) < 0) {
        if (errno == EEXIST)
            return CS_OK;
        if (errno != ENOENT || cs_fs_mkdirs(path, DIR_MODE) != CS_OK)
            return cs_error_set(CS_EIO, "cannot create the store '%s': %s", path, strerror(errno));
    }
    if (cs_fs_dir_open(path, geteuid(), &fd) != CS_OK)
        return cs_error_code();
    if (opts && opts->uid != (uid_t)-1 && geteuid() == 0 && fchown(fd, opts->uid, opts->gid) < 0) {
        close(fd);
        return cs_error_set(CS_EIO, "cannot give the store '%s' to uid %ld: %s", path,
                            (long)opts->uid, strerror(errno));
    }
    close(fd);
    return CS_OK;
}

cs_rc cs_store_open(const char *path, const cs_store_opts *opts, cs_store **out)
{
    struct stat st;
    cs_store *s;
    int fd;

    if (path == NULL || path[0] != '/')
        return cs_error_set(CS_EINVAL, "the store path '%s' must be absolute",
                            path ? path : "(none)");
    if (create_root(path, opts) != CS_OK || cs_fs_dir_open(path, (uid_t)-1, &fd) != CS_OK)
        return cs_error_prefix("opening the store");
    fstat(fd, &st);
    if (opts && opts->uid != (uid_t)-1 && st.st_uid != opts->uid) {
        close(fd);
        return not_ours(path, st.st_uid);
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL || (s->path = strdup(path)) == NULL) {
        free(s);
        close(fd);
        return cs_error_set(CS_ENOMEM, "out of memory");
    }
    s->root_fd = fd;
    s->owner = st.st_uid;
    s->gid = opts ? opts->gid : (gid_t)-1;
    s->lock_fd = -1;
    s->keep = opts && opts->keep ? opts->keep : 3;
    /* the writer keeps the top of the store traversable by the workers' group */
    if (geteuid() == s->owner) {
        if (s->gid != (gid_t)-1)
            (void)fchown(fd, (uid_t)-1, s->gid);
        (void)fchmod(fd, DIR_MODE);
    }
    *out = s;
    return CS_OK;
}

void cs_store_free(cs_store *s)
{
    if (s == NULL)
        return;
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    if (s->root_fd >= 0)
        close(s->root_fd);
    free(s->path);
    free(s);
}

const char *cs_store_path(const cs_store *s)
{
    return s->path;
}

uid_t cs_store_owner(const cs_store *s)
{
    return s->owner;
}

cs_rc cs_store_area(cs_store *s, const char *sub, char *buf, size_t size)
{
    int fd;

    if (writable(s) != CS_OK || cs_fs_join(buf, size, s->path, sub) != CS_OK)
        return cs_error_code();
    /* private to the store's user: the local CA's keys never reach a worker */
    if (cs_fs_dir_makeat(s->root_fd, sub, 0700, (gid_t)-1, s->owner, &fd) != CS_OK)
        return cs_error_prefix("store '%s'", s->path);
    close(fd);
    return CS_OK;
}

static int safe_component(const char *s)
{
    return s[0] && s[0] != '.' && strchr(s, '/') == NULL && strlen(s) <= 255;
}

int cs_challenge_host_valid(const char *host)
{
    size_t i, n = strlen(host), label = 0;

    if (n == 0 || n > 253)
        return 0;
    for (i = 0; i < n; i++) {
        char ch = host[i];

        if (ch == '.') {
            if (label == 0 || host[i - 1] == '-')
                return 0;
            label = 0;
            continue;
        }
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-') ||
            (ch == '-' && label == 0) || ++label > 63)
            return 0;
    }
    return label > 0 && host[n - 1] != '-';
}

/* challenges/<host>/<kind>, host lower-cased into lc; created by writers. */
static cs_rc challenge_dir(cs_store *s, const char *host, const char *kind, int create, char *lc,
                           int *fd)
{
    int a = -1, b = -1;
    size_t i;
    cs_rc rc;

    for (i = 0; host[i] && i < 254; i++)
        lc[i] = (char)tolower((unsigned char)host[i]);
    lc[i] = '\0';
    if (!cs_challenge_host_valid(lc) || !safe_component(kind))
        return cs_error_set(CS_EINVAL, "'%s' (%s) is not a host name of a validation answer", host,
                            kind);
    if (create && writable(s) != CS_OK)
        return cs_error_code();
    rc = create ? cs_fs_dir_makeat(s->root_fd, "challenges", DIR_MODE, s->gid, s->owner, &a)
                : cs_fs_dir_openat(s->root_fd, "challenges", s->owner, &a);
    if (rc == CS_OK)
        rc = create ? cs_fs_dir_makeat(a, lc, DIR_MODE, s->gid, s->owner, &b)
                    : cs_fs_dir_openat(a, lc, s->owner, &b);
    if (rc == CS_OK)
        rc = create ? cs_fs_dir_makeat(b, kind, DIR_MODE, s->gid, s->owner, fd)
                    : cs_fs_dir_openat(b, kind, s->owner, fd);
    if (a >= 0)
        close(a);
    if (b >= 0)
        close(b);
    if (rc != CS_OK && rc != CS_ENOTFOUND)
        return cs_error_prefix("store '%s'", s->path);
    return rc;
}

cs_rc cs_store_write_challenge(cs_store *s, const char *domain, const char *kind, const char *file,
                               const char *content)
{
    char lc[256];
    int fd;
    cs_rc rc;

    if (!safe_component(file))
        return cs_error_set(CS_EINVAL, "'%s' is not a challenge file name", file);
    if (challenge_dir(s, domain, kind, 1, lc, &fd) != CS_OK)
        return cs_error_code();
    rc = cs_fs_write_at(fd, file, content, strlen(content), SERVED_MODE, s->gid, CS_FS_SYNC);
    close(fd);
    return rc;
}

cs_rc cs_store_read_challenge(cs_store *s, const char *host, const char *kind, const char *file,
                              size_t max, char **data, size_t *len)
{
    char lc[256];
    int fd;
    cs_rc rc;

    if (!safe_component(file))
        return cs_error_set(CS_EINVAL, "'%s' is not a challenge file name", file);
    if (challenge_dir(s, host, kind, 0, lc, &fd) != CS_OK)
        return cs_error_code();
    rc = cs_fs_read_at(fd, file, max, s->owner, data, len);
    close(fd);
    return rc;
}

cs_rc cs_store_remove_challenge(cs_store *s, const char *domain, const char *kind, const char *file)
{
    char lc[256];
    int fd;
    cs_rc rc;

    if (!safe_component(file))
        return cs_error_set(CS_EINVAL, "'%s' is not a challenge file name", file);
    if (writable(s) != CS_OK)
        return cs_error_code();
    rc = challenge_dir(s, domain, kind, 0, lc, &fd);
    if (rc == CS_ENOTFOUND) {
        cs_error_clear();
        return CS_OK;
    }
    if (rc != CS_OK)
        return rc;
    rc = cs_fs_remove_at(fd, file);
    close(fd);
    return rc;
}

cs_rc cs_store_area_open(cs_store *s, const char *sub, int *fd)
{
    if (writable(s) != CS_OK)
        return cs_error_code();
    if (!safe_component(sub))
        return cs_error_set(CS_EINVAL, "'%s' is not a store area", sub);
    if (cs_fs_dir_makeat(s->root_fd, sub, 0700, (gid_t)-1, s->owner, fd) != CS_OK)
        return cs_error_prefix("store '%s'", s->path);
    return CS_OK;
}

cs_rc cs_store_current_link(const cs_store *s, const char *name, char *buf, size_t size)
{
    char dir[PATH_SZ];

    if (cert_dir(s, name, dir, sizeof(dir)) != CS_OK)
        return cs_error_code();
    return cs_fs_join(buf, size, dir, "current");
}

static int parse_version(const char *entry, unsigned *v)
{
    char *end;
    unsigned long n;

    if (entry[0] != 'v' || entry[1] < '1' || entry[1] > '9')
        return 0;
    n = strtoul(entry + 1, &end, 10);
    if (*end != '\0' || n > 0xffffffUL)
        return 0;
    *v = (unsigned)n;
    return 1;
}

/* Which version `current` names: the link is read, never followed. */
static cs_rc read_current(const cs_store *s, int cfd, const char *name, unsigned *version)
{
    char target[64];
    ssize_t n = readlinkat(cfd, "current", target, sizeof(target) - 1);

    if (n < 0) {
        if (errno == ENOENT)
            return cs_error_set(CS_ENOTFOUND, "'%s' has no current version in the store '%s'", name,
                                s->path);
        return cs_error_set(CS_EIO, "cannot read '%s/certs/%s/current': %s", s->path, name,
                            strerror(errno));
    }
    target[n] = '\0';
    if (!parse_version(target, version))
        return cs_error_set(CS_EIO, "'%s/certs/%s/current' points to '%s', which is not a version",
                            s->path, name, target);
    return CS_OK;
}

cs_rc cs_store_current(cs_store *s, const char *name, unsigned *version)
{
    int cfd;
    cs_rc rc;

    if (cert_open(s, name, 0, &cfd) != CS_OK)
        return cs_error_code();
    rc = read_current(s, cfd, name, version);
    close(cfd);
    return rc;
}

static int cmp_unsigned(const void *a, const void *b)
{
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;

    return x < y ? -1 : x > y;
}

/* The version numbers in the certificate directory cfd, ascending. */
static cs_rc list_versions(int cfd, unsigned **versions, size_t *n)
{
    struct dirent *de;
    unsigned *v = NULL, x;
    size_t count = 0, cap = 0;
    int fd = dup(cfd);
    DIR *d = fd < 0 ? NULL : fdopendir(fd); /* a dup shares the offset: rewound below */

    *versions = NULL;
    *n = 0;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return cs_error_set(CS_EIO, "cannot list a certificate directory: %s", strerror(errno));
    }
    rewinddir(d);
    while ((de = readdir(d)) != NULL) {
        if (!parse_version(de->d_name, &x))
            continue;
        if (count == cap) {
            unsigned *nv = realloc(v, (cap = cap ? cap * 2 : 8) * sizeof(*v));

            if (nv == NULL) {
                free(v);
                closedir(d);
                return cs_error_set(CS_ENOMEM, "out of memory");
            }
            v = nv;
        }
        v[count++] = x;
    }
    closedir(d);
    if (count > 1)
        qsort(v, count, sizeof(*v), cmp_unsigned);
    *versions = v;
    *n = count;
    return CS_OK;
}

cs_rc cs_store_versions(cs_store *s, const char *name, unsigned **versions, size_t *n)
{
    int cfd;
    cs_rc rc;

    *versions = NULL;
    *n = 0;
    rc = cert_open(s, name, 0, &cfd);
    if (rc != CS_OK)
        return rc == CS_ENOTFOUND ? (cs_error_clear(), CS_OK) : rc;
    rc = list_versions(cfd, versions, n);
    close(cfd);
    return rc;
}

cs_rc cs_store_version_dir(cs_store *s, const char *name, unsigned version, char *buf, size_t size)
{
    char dir[PATH_SZ];

    if (version == 0 && cs_store_current(s, name, &version) != CS_OK)
        return cs_error_code();
    if (cert_dir(s, name, dir, sizeof(dir)) != CS_OK)
        return cs_error_code();
    if ((size_t)snprintf(buf, size, "%s/v%u", dir, version) >= size)
        return cs_error_set(CS_EINVAL, "store path too long");
    return CS_OK;
}

/* Open version (0: current) of the certificate directory cfd, verified. */
static cs_rc version_open(const cs_store *s, int cfd, const char *name, unsigned *version, int *fd)
{
    char entry[32];

    if (*version == 0 && read_current(s, cfd, name, version) != CS_OK)
        return cs_error_code();
    snprintf(entry, sizeof(entry), "v%u", *version);
    if (cs_fs_dir_openat(cfd, entry, s->owner, fd) != CS_OK)
        return cs_error_prefix("store '%s/certs/%s'", s->path, name);
    return CS_OK;
}

/* Read a file of a version (0: current) with every check of the store. */
static cs_rc version_read(cs_store *s, const char *name, unsigned *version, const char *file,
                          size_t max, char **data, size_t *len)
{
    int cfd, vfd;
    cs_rc rc;

    if (cert_open(s, name, 0, &cfd) != CS_OK)
        return cs_error_code();
    rc = version_open(s, cfd, name, version, &vfd);
    close(cfd);
    if (rc != CS_OK)
        return rc;
    rc = cs_fs_read_at(vfd, file, max, s->owner, data, len);
    close(vfd);
    if (rc != CS_OK)
        return cs_error_prefix("store '%s/certs/%s/v%u'", s->path, name, *version);
    return CS_OK;
}

static void free_secret(char *data, size_t len)
{
    if (data) {
        OPENSSL_cleanse(data, len);
        free(data);
    }
}

cs_rc cs_store_load(cs_store *s, const char *name, unsigned version, cs_bundle **out)
{
    char *certs = NULL, *key = NULL, origin[PATH_SZ];
    size_t clen = 0, klen = 0;
    cs_rc rc;

    rc = version_read(s, name, &version, "fullchain.pem", CS_STORE_MAX_FILE, &certs, &clen);
    if (rc == CS_OK)
        rc = version_read(s, name, &version, "privkey.pem", CS_STORE_MAX_FILE, &key, &klen);
    if (rc == CS_OK) {
        snprintf(origin, sizeof(origin), "'%s/certs/%s/v%u'", s->path, name, version);
        rc = cs_bundle_load_pem(certs, clen, key, klen, origin, out);
    }
    free(certs);
    free_secret(key, klen);
    return rc;
}

/* ---- locking ---- */

cs_rc cs_store_lock(cs_store *s, const char *name, int timeout_s, int *fd)
{
    struct stat st;
    int f, cfd, waited;

    /* a sync holds the lock across its decision and the install it makes */
    if (s->lock_depth > 0 && strcmp(s->lock_name, name) == 0) {
        s->lock_depth++;
        *fd = -2;
        return CS_OK;
    }
    if (cert_open(s, name, 1, &cfd) != CS_OK)
        return cs_error_code();
    f = openat(cfd, ".lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, PRIVATE_MODE);
    close(cfd);
    if (f < 0)
        return cs_error_set(CS_EIO, "cannot open the lock '%s/certs/%s/.lock': %s", s->path, name,
                            strerror(errno));
    if (fstat(f, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != s->owner) {
        close(f);
        return cs_error_set(CS_EPERM,
                            "'%s/certs/%s/.lock' is not a regular file of the store's user: "
                            "refused; remove it",
                            s->path, name);
    }
    for (waited = 0; flock(f, LOCK_EX | LOCK_NB) < 0; waited++) {
        if (errno != EWOULDBLOCK || waited >= timeout_s * 10) {
            close(f);
            return cs_error_set(CS_ELOCKED,
                                "another certsync process holds the lock '%s/certs/%s/.lock'; "
                                "try again when it has finished",
                                s->path, name);
        }
        usleep(100000);
    }
    if (s->lock_depth == 0) {
        snprintf(s->lock_name, sizeof(s->lock_name), "%s", name);
        s->lock_fd = f;
        s->lock_depth = 1;
        *fd = -2;
        return CS_OK;
    }
    *fd = f;
    return CS_OK;
}

void cs_store_unlock(cs_store *s, int fd)
{
    if (fd == -2) {
        if (--s->lock_depth == 0) {
            close(s->lock_fd); /* closing drops the flock */
            s->lock_fd = -1;
            s->lock_name[0] = '\0';
        }
        return;
    }
    if (fd >= 0)
        close(fd);
}

/* ---- metadata ---- */

/* A time of meta.json or state.json; 0 when absent or not in our form. */
static time_t json_time(const json_t *v)
{
    time_t t = 0;

    if (json_is_string(v))
        cs_time_parse_iso(json_string_value(v), &t);
    return t;
}

/*
 * A JSON document as text, NULL when out of memory. Not json_dumps: jansson 2.14
 * ignores a failed write of an object key and goes on, leaving a hole in the text;
 * this buffer stays failed after its first failure, so the document fails whole.
 */
typedef struct {
    char *p;
    size_t len, cap;
    int failed;
} dump_buf;

static int dump_cb(const char *text, size_t n, void *data)
{
    dump_buf *b = data;
    char *p;

    if (!b->failed && b->len + n + 1 > b->cap) {
        p = realloc(b->p, 2 * (b->len + n + 1));
        b->failed = p == NULL;
        if (p) {
            b->p = p;
            b->cap = 2 * (b->len + n + 1);
        }
    }
    if (b->failed)
        return -1;
    memcpy(b->p + b->len, text, n);
    b->p[b->len += n] = '\0';
    return 0;
}

static char *dump_json(const json_t *j)
{
    dump_buf b = {0};

    if (j == NULL || json_dump_callback(j, dump_cb, &b, JSON_INDENT(2) | JSON_PRESERVE_ORDER) ||
        b.failed || b.p == NULL) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* The certificate's names and the formats written, as JSON arrays; NULL when out of memory. */
static json_t *meta_names(const cs_bundle *b)
{
    json_t *a = json_array();
    size_t n, i;
    char **have = cs_bundle_names(b, &n);

    if (have == NULL) {
        json_decref(a);
        return NULL;
    }
    for (i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_string(have[i])) != 0) {
            json_decref(a);
            a = NULL;
        }
    cs_strv_free(have);
    return a;
}

static json_t *meta_formats(unsigned formats)
{
    json_t *a = json_array();

    for (unsigned bit = 1; a && bit != 0 && bit <= formats; bit <<= 1)
        if ((bit & formats) && cs_format_name(bit) &&
            json_array_append_new(a, json_string(cs_format_name(bit))) != 0) {
            json_decref(a);
            a = NULL;
        }
    return a;
}

static cs_rc write_meta(const cs_store *s, int dir, const char *name, unsigned version,
                        const cs_bundle *b, const cs_install_opts *o)
{
    char fp[65], serial[80], nb[32], na[32], now[32];
    json_t *j = NULL, *names = meta_names(b), *formats = meta_formats(CS_FMT_PEM | o->formats);
    char *text = NULL;
    cs_rc rc;

    cs_bundle_fingerprint(b, fp);
    cs_bundle_serial(b, serial, sizeof(serial));
    cs_time_iso(cs_bundle_not_before(b), nb);
    cs_time_iso(cs_bundle_not_after(b), na);
    cs_time_iso(time(NULL), now);
    /* one builder, checked once: a meta.json is written whole or not at all */
    if (names && formats)
        j = json_pack("{s:s, s:I, s:s, s:s?, s:s, s:s, s:s, s:s, s:O, s:s, s:O}", "name", name,
                      "version", (json_int_t)version, "provider",
                      o->provider ? o->provider : "import", "remote_id", o->remote_id,
                      "fingerprint_sha256", fp, "serial", serial, "not_before", nb, "not_after", na,
                      "names", names, "fetched_at", now, "formats", formats);
    json_decref(names);
    json_decref(formats);
    text = dump_json(j);
    json_decref(j);
    if (text == NULL)
        return cs_error_set(CS_ENOMEM, "out of memory writing '%s/certs/%s/v%u/meta.json'", s->path,
                            name, version);
    rc = cs_fs_write_at(dir, "meta.json", text, strlen(text), SERVED_MODE, s->gid, CS_FS_SYNC);
    free(text);
    return rc;
}

static void copy_str(char *dst, size_t size, json_t *v)
{
    snprintf(dst, size, "%s", json_is_string(v) ? json_string_value(v) : "");
}

cs_rc cs_store_info(cs_store *s, const char *name, unsigned version, cs_cert_info *info)
{
    json_error_t jerr;
    json_t *j, *names, *v;
    size_t i, len;
    char *text;
    int oom;

    memset(info, 0, sizeof(*info));
    if (version_read(s, name, &version, "meta.json", CS_STORE_MAX_FILE, &text, &len) != CS_OK)
        return cs_error_code();
    j = json_loadb(text, len, 0, &jerr);
    free(text);
    if (j == NULL)
        return cs_error_set(CS_EIO, "cannot read '%s/certs/%s/v%u/meta.json': %s (line %d)",
                            s->path, name, version, jerr.text, jerr.line);
    info->version = version;
    copy_str(info->fingerprint, sizeof(info->fingerprint),
             json_object_get(j, "fingerprint_sha256"));
    copy_str(info->serial, sizeof(info->serial), json_object_get(j, "serial"));
    copy_str(info->provider, sizeof(info->provider), json_object_get(j, "provider"));
    copy_str(info->remote_id, sizeof(info->remote_id), json_object_get(j, "remote_id"));
    info->not_before = json_time(json_object_get(j, "not_before"));
    info->not_after = json_time(json_object_get(j, "not_after"));
    info->fetched_at = json_time(json_object_get(j, "fetched_at"));
    names = json_object_get(j, "names");
    info->names = calloc(json_array_size(names) + 1, sizeof(char *));
    oom = info->names == NULL;
    json_array_foreach(names, i, v)
    {
        if (!oom && json_is_string(v))
            oom = (info->names[info->n_names++] = strdup(json_string_value(v))) == NULL;
    }
    json_decref(j);
    if (oom) {
        cs_cert_info_clear(info);
        return cs_error_set(CS_ENOMEM, "out of memory reading '%s/certs/%s/v%u/meta.json'", s->path,
                            name, version);
    }
    return CS_OK;
}

void cs_cert_info_clear(cs_cert_info *info)
{
    cs_strv_free(info->names);
    memset(info, 0, sizeof(*info));
}

/* ---- sync state ---- */

const char *cs_sync_result_name(cs_sync_result r)
{
    switch (r) {
    case CS_SYNC_INSTALLED:
        return "installed";
    case CS_SYNC_UNCHANGED:
        return "unchanged";
    case CS_SYNC_FAILED:
        return "failed";
    default:
        return "never";
    }
}

static int fingerprint_listed(const json_t *list, const char *fingerprint)
{
    size_t i;
    json_t *v;

    json_array_foreach(list, i, v)
    {
        if (json_is_string(v) && strcasecmp(json_string_value(v), fingerprint) == 0)
            return 1;
    }
    return 0;
}

/*
 * state.json as an object: {} when never written, torn or foreign (status then
 * shows "never"); NULL with the error set when it cannot be read or memory is
 * short. A writer (replace) starts afresh from a file the store refuses (a
 * FIFO, another user's file): the write puts a file of ours in its place.
 */
static json_t *state_load(cs_store *s, int cfd, const char *name, int replace)
{
    json_t *j;
    char *text;
    size_t len;
    cs_rc rc = cs_fs_read_at(cfd, "state.json", CS_STORE_MAX_FILE, s->owner, &text, &len);

    if (rc == CS_ENOTFOUND || (rc != CS_OK && rc != CS_ENOMEM && replace)) {
        cs_error_clear();
        rc = CS_ENOTFOUND;
    } else if (rc != CS_OK) {
        cs_error_prefix("store '%s/certs/%s/state.json'", s->path, name);
        return NULL;
    }
    j = rc == CS_OK ? json_loadb(text, len, 0, NULL) : NULL;
    if (rc == CS_OK)
        free(text);
    if (!json_is_object(j)) {
        json_decref(j);
        j = json_object();
    }
    if (j == NULL)
        cs_error_set(CS_ENOMEM, "out of memory reading '%s/certs/%s/state.json'", s->path, name);
    return j;
}

/* Write state.json (group-readable: the modules' status pages show it; no secret is in it). */
static cs_rc state_save(cs_store *s, int cfd, const char *name, const json_t *j)
{
    char *text = dump_json(j);
    cs_rc rc;

    /* losing the last result in a crash is harmless: no fsync per certificate */
    rc = text ? cs_fs_write_at(cfd, "state.json", text, strlen(text), SERVED_MODE, s->gid, 0)
              : cs_error_set(CS_ENOMEM, "out of memory writing '%s/certs/%s/state.json'", s->path,
                             name);
    /* a full disk has no room for a temp copy, but the old file's blocks fit the new one */
    if (rc == CS_EIO &&
        cs_fs_overwrite_at(cfd, "state.json", text, strlen(text), s->owner) == CS_OK)
        rc = CS_OK;
    free(text);
    return rc;
}

/* Open the certificate's directory and its state (create: to write it); *cfd closed by the
   caller. */
static json_t *state_open(cs_store *s, const char *name, int create, int *cfd)
{
    json_t *j;

    if (cert_open(s, name, create, cfd) != CS_OK)
        return NULL;
    if ((j = state_load(s, *cfd, name, create)) == NULL)
        close(*cfd);
    return j;
}

static void hook_read(const json_t *h, cs_hook_pending *p)
{
    json_int_t v = json_integer_value(json_object_get(h, "version"));

    if (!json_is_object(h) || v <= 0 || v > UINT_MAX)
        return;
    p->version = (unsigned)v;
    copy_str(p->command, sizeof(p->command), json_object_get(h, "command"));
    p->exit_status = (int)json_integer_value(json_object_get(h, "exit_status"));
    copy_str(p->error, sizeof(p->error), json_object_get(h, "error"));
    p->since = json_time(json_object_get(h, "since"));
    p->attempts = (unsigned)json_integer_value(json_object_get(h, "attempts"));
    p->next_attempt = json_time(json_object_get(h, "next_attempt"));
}

static void state_read(json_t *j, cs_sync_state *st)
{
    const char *r = json_string_value(json_object_get(j, "result"));
    json_t *held = json_object_get(j, "held");

    st->result = r == NULL                     ? CS_SYNC_NONE
                 : strcmp(r, "installed") == 0 ? CS_SYNC_INSTALLED
                 : strcmp(r, "unchanged") == 0 ? CS_SYNC_UNCHANGED
                 : strcmp(r, "failed") == 0    ? CS_SYNC_FAILED
                                               : CS_SYNC_NONE;
    st->at = json_time(json_object_get(j, "at"));
    st->last_success = json_time(json_object_get(j, "last_success"));
    copy_str(st->error, sizeof(st->error), json_object_get(j, "error"));
    st->failures = (unsigned)json_integer_value(json_object_get(j, "failures"));
    if (json_integer_value(json_object_get(held, "version")) > 0 &&
        json_integer_value(json_object_get(held, "version")) <= UINT_MAX) {
        st->held = (unsigned)json_integer_value(json_object_get(held, "version"));
        st->held_since = json_time(json_object_get(held, "since"));
    }
    hook_read(json_object_get(j, "hook_pending"), &st->hook);
}

cs_rc cs_store_sync_state(cs_store *s, const char *name, cs_sync_state *st)
{
    json_t *j;
    int cfd;

    memset(st, 0, sizeof(*st));
    j = state_open(s, name, 0, &cfd);
    if (j == NULL && cs_error_code() == CS_ENOTFOUND) {
        cs_error_clear();
        return CS_OK; /* never synced */
    }
    if (j == NULL)
        return cs_error_code();
    close(cfd);
    state_read(j, st);
    json_decref(j);
    return CS_OK;
}

/* Set key to v (stolen), or remove it when v is NULL; 0 when memory is short. */
static int state_set(json_t *j, const char *key, json_t *v, int wanted)
{
    if (!wanted) {
        json_object_del(j, key);
        return 1;
    }
    return v != NULL && json_object_set_new(j, key, v) == 0;
}

cs_rc cs_store_record_sync(cs_store *s, const char *name, cs_sync_result result, const char *error)
{
    char now[32];
    json_int_t failures;
    json_t *j;
    int cfd, ok;
    cs_rc rc;

    if ((j = state_open(s, name, 1, &cfd)) == NULL)
        return cs_error_code();
    cs_time_iso(time(NULL), now);
    failures =
        result == CS_SYNC_FAILED ? json_integer_value(json_object_get(j, "failures")) + 1 : 0;
    /* the hold and the revoked list are kept; the last result replaced */
    ok = state_set(j, "result", json_string(cs_sync_result_name(result)), 1) &&
         state_set(j, "at", json_string(now), 1) &&
         (result == CS_SYNC_FAILED || state_set(j, "last_success", json_string(now), 1)) &&
         state_set(j, "error", error ? json_string(error) : NULL, error != NULL) &&
         state_set(j, "failures", json_integer(failures), 1);
    rc = ok ? state_save(s, cfd, name, j)
            : cs_error_set(CS_ENOMEM, "out of memory writing '%s/certs/%s/state.json'", s->path,
                           name);
    json_decref(j);
    close(cfd);
    return rc;
}

static json_t *hook_json(const cs_hook_pending *p)
{
    char since[32], next[32];

    cs_time_iso(p->since, since);
    cs_time_iso(p->next_attempt, next);
    return json_pack("{s:s, s:I, s:i, s:s, s:s, s:I, s:s}", "command", p->command, "version",
                     (json_int_t)p->version, "exit_status", p->exit_status, "error", p->error,
                     "since", since, "attempts", (json_int_t)p->attempts, "next_attempt", next);
}

/* Under the certificate's lock (it nests), as every writer of state.json. */
cs_rc cs_store_record_hook(cs_store *s, const char *name, const cs_hook_pending *pending)
{
    int want = pending != NULL && pending->version != 0, lock, cfd;
    json_t *j;
    cs_rc rc;

    if (cs_store_lock(s, name, 60, &lock) != CS_OK)
        return cs_error_code();
    if ((j = state_open(s, name, 1, &cfd)) == NULL) {
        cs_store_unlock(s, lock);
        return cs_error_code();
    }
    if (!want && json_object_get(j, "hook_pending") == NULL)
        rc = CS_OK; /* nothing was pending: nothing to write */
    else if (state_set(j, "hook_pending", want ? hook_json(pending) : NULL, want))
        rc = state_save(s, cfd, name, j);
    else
        rc = cs_error_set(CS_ENOMEM, "out of memory writing '%s/certs/%s/state.json'", s->path,
                          name);
    json_decref(j);
    close(cfd);
    cs_store_unlock(s, lock);
    return rc;
}

/* The keys of state.json the store writes itself: no other part of the core may. */
static int store_key(const char *key)
{
    static const char *const own[] = {"result", "at",      "last_success", "error", "failures",
                                      "held",   "revoked", "hook_pending", NULL};
    size_t i;

    for (i = 0; own[i]; i++)
        if (strcmp(key, own[i]) == 0)
            return 1;
    return 0;
}

cs_rc cs_store_state_get(cs_store *s, const char *name, const char *key, json_t **out)
{
    json_t *j;
    int cfd;

    *out = NULL;
    j = state_open(s, name, 0, &cfd);
    if (j == NULL && cs_error_code() == CS_ENOTFOUND) {
        cs_error_clear();
        return CS_OK; /* never synced */
    }
    if (j == NULL)
        return cs_error_code();
    close(cfd);
    if (json_object_get(j, key) && (*out = json_deep_copy(json_object_get(j, key))) == NULL) {
        json_decref(j);
        return cs_error_set(CS_ENOMEM, "out of memory reading '%s/certs/%s/state.json'", s->path,
                            name);
    }
    json_decref(j);
    return CS_OK;
}

cs_rc cs_store_state_put(cs_store *s, const char *name, const char *key, const json_t *value)
{
    int lock, cfd;
    json_t *j;
    cs_rc rc;

    if (store_key(key))
        return cs_error_set(CS_EINVAL, "state.json: '%s' is the store's own key", key);
    if (cs_store_lock(s, name, 60, &lock) != CS_OK)
        return cs_error_code();
    if ((j = state_open(s, name, 1, &cfd)) == NULL) {
        cs_store_unlock(s, lock);
        return cs_error_code();
    }
    if (state_set(j, key, value ? json_deep_copy(value) : NULL, value != NULL))
        rc = state_save(s, cfd, name, j);
    else
        rc = cs_error_set(CS_ENOMEM, "out of memory writing '%s/certs/%s/state.json'", s->path,
                          name);
    json_decref(j);
    close(cfd);
    cs_store_unlock(s, lock);
    return rc;
}

static cs_rc hold_locked(cs_store *s, const char *name, unsigned version)
{
    char now[32];
    json_t *j;
    int cfd, ok;
    cs_rc rc;

    if ((j = state_open(s, name, 1, &cfd)) == NULL)
        return cs_error_code();
    cs_time_iso(time(NULL), now);
    ok = state_set(j, "held",
                   version ? json_pack("{s:I, s:s}", "version", (json_int_t)version, "since", now)
                           : NULL,
                   version != 0);
    rc = ok ? state_save(s, cfd, name, j)
            : cs_error_set(CS_ENOMEM, "out of memory writing '%s/certs/%s/state.json'", s->path,
                           name);
    json_decref(j);
    close(cfd);
    return rc;
}

/* Under the certificate's lock (it nests): state.json is read, changed and written. */
cs_rc cs_store_hold(cs_store *s, const char *name, unsigned version)
{
    int lock;
    cs_rc rc;

    if (cs_store_lock(s, name, 60, &lock) != CS_OK)
        return cs_error_code();
    rc = hold_locked(s, name, version);
    cs_store_unlock(s, lock);
    return rc;
}

/* "revoked": the SHA-256 fingerprints of certificates of name the service revoked. */
static cs_rc mark_revoked_locked(cs_store *s, const char *name, const char *fingerprint)
{
    json_t *j, *list;
    int cfd;
    cs_rc rc = CS_OK;

    if ((j = state_open(s, name, 1, &cfd)) == NULL)
        return cs_error_code();
    list = json_object_get(j, "revoked");
    if (!json_is_array(list)) {
        list = json_array();
        if (list == NULL || json_object_set_new(j, "revoked", list) != 0)
            rc = cs_error_set(CS_ENOMEM, "out of memory");
    }
    if (rc == CS_OK && !fingerprint_listed(list, fingerprint))
        rc = json_array_append_new(list, json_string(fingerprint)) == 0
                 ? state_save(s, cfd, name, j)
                 : cs_error_set(CS_ENOMEM, "out of memory");
    json_decref(j);
    close(cfd);
    return rc;
}

cs_rc cs_store_mark_revoked(cs_store *s, const char *name, const char *fingerprint)
{
    int lock;
    cs_rc rc;

    if (cs_store_lock(s, name, 60, &lock) != CS_OK)
        return cs_error_code();
    rc = mark_revoked_locked(s, name, fingerprint);
    cs_store_unlock(s, lock);
    return rc;
}

cs_rc cs_store_revoked(cs_store *s, const char *name, const char *fingerprint, int *revoked)
{
    json_t *j;
    int cfd;

    *revoked = 0;
    j = state_open(s, name, 0, &cfd);
    if (j == NULL && cs_error_code() == CS_ENOTFOUND) {
        cs_error_clear();
        return CS_OK;
    }
    if (j == NULL)
        return cs_error_code();
    close(cfd);
    *revoked = fingerprint_listed(json_object_get(j, "revoked"), fingerprint);
    json_decref(j);
    return CS_OK;
}

/* ---- install ---- */

/* Left by a writer that died: temp version dirs and temp links. */
static void remove_leftovers(int cfd)
{
    struct dirent *de;
    int fd = dup(cfd);
    DIR *d = fd < 0 ? NULL : fdopendir(fd); /* a dup shares the offset: rewound below */

    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return;
    }
    rewinddir(d);
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, ".tmp-", 5) == 0 || strncmp(de->d_name, "current.tmp", 11) == 0)
            cs_fs_remove_at(cfd, de->d_name);
    closedir(d);
    cs_error_clear();
}

/* The PFX or JKS password: configured file, else the current version's, else new. */
static cs_rc pick_password(cs_store *s, const char *name, const char *file, const char *configured,
                           char **out)
{
    unsigned cur = 0;
    char *data;
    size_t len, n;

    if (configured)
        return cs_password_read(configured, out);
    /* read as every store file is: a planted symlink never leaks another file */
    if (version_read(s, name, &cur, file, 4096, &data, &len) == CS_OK) {
        n = strcspn(data, "\r\n");
        if (n > 0) {
            OPENSSL_cleanse(data + n, len - n);
            data[n] = '\0';
            *out = data;
            return CS_OK;
        }
        free_secret(data, len);
    }
    cs_error_clear();
    return cs_password_generate(out);
}

static cs_rc switch_current(int cfd, unsigned version)
{
    char tmp[64], target[32];

    snprintf(target, sizeof(target), "v%u", version);
    snprintf(tmp, sizeof(tmp), "current.tmp-%ld", (long)getpid());
    unlinkat(cfd, tmp, 0);
    if (symlinkat(target, cfd, tmp) < 0)
        return cs_error_set(CS_EIO, "cannot create the link '%s': %s", tmp, strerror(errno));
    /* rename(2) replaces the link in one step: readers see old or new */
    if (renameat(cfd, tmp, cfd, "current") < 0) {
        unlinkat(cfd, tmp, 0);
        return cs_error_set(CS_EIO, "cannot switch 'current' to %s: %s", target, strerror(errno));
    }
    if (fsync(cfd) < 0 && errno != EINVAL)
        return cs_error_set(CS_EIO, "cannot fsync a certificate directory: %s", strerror(errno));
    return CS_OK;
}

/*
 * Include snippets for servers that load no certsync module: they name the
 * stable `current` paths, so they are written once and never change. A
 * root-started server reads them as configuration, so they are written only
 * into a store that root owns: never where a worker user could edit them.
 */
static void write_include(cs_store *s, int cfd, const char *file, const char *text)
{
    char *have = NULL;
    size_t len;

    /* rewritten whenever it is not exactly ours: never trust what is there */
    if (cs_fs_read_at(cfd, file, 64 * 1024, s->owner, &have, &len) != CS_OK ||
        len != strlen(text) || memcmp(have, text, len) != 0)
        cs_fs_write_at(cfd, file, text, strlen(text), SERVED_MODE, s->gid, CS_FS_SYNC);
    free(have);
    cs_error_clear();
}

static void write_includes(cs_store *s, int cfd, const char *cdir)
{
    char text[2 * PATH_SZ + 256];

    if (s->owner != 0)
        return;
    snprintf(text, sizeof(text),
             "# certsync: the current version of this certificate; Include it in a "
             "<VirtualHost>\nSSLCertificateFile %s/current/fullchain.pem\n"
             "SSLCertificateKeyFile %s/current/privkey.pem\n",
             cdir, cdir);
    write_include(s, cfd, "apache.conf", text);
    snprintf(text, sizeof(text),
             "# certsync: the current version of this certificate; include it in a "
             "server {}\nssl_certificate %s/current/fullchain.pem;\n"
             "ssl_certificate_key %s/current/privkey.pem;\n",
             cdir, cdir);
    write_include(s, cfd, "nginx.conf", text);
}

/* Drop the oldest versions beyond keep; the current one always stays. */
/* What may sit beside a version as v<N>.<kind>: its OCSP staple and that staple's state. */
static const char *const aside_kinds[] = {"ocsp", "ocsp.json"};

static cs_rc aside_entry(const char *kind, unsigned version, char *buf, size_t size)
{
    for (size_t k = 0; k < sizeof(aside_kinds) / sizeof(aside_kinds[0]); k++)
        if (strcmp(kind, aside_kinds[k]) == 0) {
            snprintf(buf, size, "v%u.%s", version, kind);
            return CS_OK;
        }
    return cs_error_set(CS_EINVAL, "'%s' is not a file kept beside a version", kind);
}

cs_rc cs_store_save_aside(cs_store *s, const char *name, unsigned version, const char *kind,
                          const void *data, size_t len)
{
    char entry[48];
    struct stat st;
    int cfd, vfd;
    cs_rc rc;

    if (aside_entry(kind, version, entry, sizeof(entry)) != CS_OK || writable(s) != CS_OK ||
        cert_open(s, name, 0, &cfd) != CS_OK)
        return cs_error_code();
    rc = version_open(s, cfd, name, &version, &vfd);
    if (rc == CS_OK) {
        /* as readable as the version itself: its group, or nobody's ("group = none") */
        if (fstat(vfd, &st) == 0 && (st.st_mode & 0050) == 0050)
            rc = cs_fs_write_at(cfd, entry, data, len, SERVED_MODE, st.st_gid, CS_FS_SYNC);
        else
            rc = cs_fs_write_at(cfd, entry, data, len, PRIVATE_MODE, (gid_t)-1, CS_FS_SYNC);
        close(vfd);
    }
    close(cfd);
    if (rc != CS_OK)
        return cs_error_prefix("store '%s/certs/%s/%s'", s->path, name, entry);
    return CS_OK;
}

cs_rc cs_store_load_aside(cs_store *s, const char *name, unsigned version, const char *kind,
                          char **data, size_t *len)
{
    char entry[48];
    int cfd;
    cs_rc rc;

    *data = NULL;
    *len = 0;
    if (aside_entry(kind, version, entry, sizeof(entry)) != CS_OK ||
        cert_open(s, name, 0, &cfd) != CS_OK)
        return cs_error_code();
    rc = cs_fs_read_at(cfd, entry, CS_STORE_MAX_FILE, s->owner, data, len);
    close(cfd);
    if (rc != CS_OK && rc != CS_ENOTFOUND)
        return cs_error_prefix("store '%s/certs/%s'", s->path, name);
    return rc;
}

cs_rc cs_store_drop_aside(cs_store *s, const char *name, unsigned version, const char *kind)
{
    char entry[48];
    int cfd;

    if (aside_entry(kind, version, entry, sizeof(entry)) != CS_OK || writable(s) != CS_OK ||
        cert_open(s, name, 0, &cfd) != CS_OK)
        return cs_error_code();
    if (unlinkat(cfd, entry, 0) < 0 && errno != ENOENT) {
        int err = errno;

        close(cfd);
        return cs_error_set(CS_EIO, "cannot remove '%s/certs/%s/%s': %s", s->path, name, entry,
                            strerror(err));
    }
    close(cfd);
    return CS_OK;
}

cs_rc cs_store_aside_changed(const cs_store *s, const char *name, unsigned version,
                             const char *kind, cs_store_stamp *last, int *changed)
{
    char entry[48];
    struct stat st;
    cs_store_stamp now = {0};
    int cfd;

    *changed = 0;
    if (aside_entry(kind, version, entry, sizeof(entry)) != CS_OK)
        return cs_error_code();
    /* from the certificate's verified directory, never by path (SPEC.md "Trust boundary") */
    if (cert_open(s, name, 0, &cfd) == CS_OK) {
        if (fstatat(cfd, entry, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            now.linked = 1;
            now.dev = st.st_dev;
            now.ino = st.st_ino;
            now.ctime = st.st_ctim;
        }
        close(cfd);
    }
    cs_error_clear();
    *changed = now.linked != last->linked || now.dev != last->dev || now.ino != last->ino ||
               now.ctime.tv_sec != last->ctime.tv_sec || now.ctime.tv_nsec != last->ctime.tv_nsec;
    *last = now;
    return CS_OK;
}

static void prune(cs_store *s, int cfd, unsigned current)
{
    unsigned *v;
    size_t n, i, kept = 0;
    char entry[32];

    if (list_versions(cfd, &v, &n) != CS_OK)
        return;
    for (i = n; i-- > 0;) {
        if (v[i] == current || kept + 1 < s->keep) {
            if (v[i] != current)
                kept++;
            continue;
        }
        snprintf(entry, sizeof(entry), "v%u", v[i]);
        cs_fs_remove_at(cfd, entry);
        for (size_t k = 0; k < sizeof(aside_kinds) / sizeof(aside_kinds[0]); k++) {
            snprintf(entry, sizeof(entry), "v%u.%s", v[i], aside_kinds[k]);
            unlinkat(cfd, entry, 0);
        }
    }
    free(v);
    cs_error_clear();
}

/* PFX, JKS and their passwords stay private; what a server serves is group-readable. */
static int private_file(const char *file)
{
    size_t n = strlen(file);

    return (n > 4 && (strcmp(file + n - 4, ".pfx") == 0 || strcmp(file + n - 4, ".jks") == 0)) ||
           (n > 13 && strcmp(file + n - 13, "-password.txt") == 0);
}

/*
 * The group that reads a version: the certificate's own group, "none" for
 * nobody (a certificate no web server serves, e.g. Tomcat's), else the store's.
 */
static cs_rc version_group(const cs_store *s, const cs_install_opts *o, gid_t *gid, int *open)
{
    struct group grp, *gr = NULL;
    char buf[16384];

    *gid = s->gid;
    *open = 1;
    if (o->group == NULL)
        return CS_OK;
    if (strcmp(o->group, "none") == 0) {
        *gid = (gid_t)-1;
        *open = 0;
        return CS_OK;
    }
    if (getgrnam_r(o->group, &grp, buf, sizeof(buf), &gr) != 0 || gr == NULL)
        return cs_error_set(CS_ECONFIG, "group: no group '%s' on this machine", o->group);
    *gid = gr->gr_gid;
    return CS_OK;
}

static cs_rc set_modes(const cs_store *s, int vfd, const cs_install_opts *o)
{
    struct dirent *de;
    gid_t gid;
    int open;
    int fd = dup(vfd);
    DIR *d = fd < 0 ? NULL : fdopendir(fd); /* a dup shares the offset: rewound below */
    cs_rc rc = version_group(s, o, &gid, &open);

    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return cs_error_set(CS_EIO, "cannot list a new version: %s", strerror(errno));
    }
    rewinddir(d);
    while (rc == CS_OK && (de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            rc = !open || private_file(de->d_name)
                     ? cs_fs_set_mode_at(vfd, de->d_name, PRIVATE_MODE, (gid_t)-1)
                     : cs_fs_set_mode_at(vfd, de->d_name, SERVED_MODE, gid);
    closedir(d);
    if (rc == CS_OK && ((gid != (gid_t)-1 && fchown(vfd, (uid_t)-1, gid) < 0) ||
                        fchmod(vfd, open ? DIR_MODE : 0700) < 0 || fsync(vfd) < 0))
        rc = cs_error_set(CS_EIO, "cannot finish a new version: %s", strerror(errno));
    return rc;
}

static cs_rc write_version(cs_store *s, const char *name, const char *tmp, int tfd,
                           unsigned version, const cs_bundle *b, const cs_install_opts *o)
{
    char *pfx_pw = NULL, *jks_pw = NULL;
    cs_output_opts out = {0};
    cs_rc rc = CS_OK;

    out.name = name;
    out.alias = o->alias ? o->alias : name;
    out.profile = o->profile;
    if (o->formats & CS_FMT_PFX)
        rc = pick_password(s, name, "pfx-password.txt", o->password_file, &pfx_pw);
    if (rc == CS_OK && (o->formats & CS_FMT_JKS))
        rc = pick_password(s, name, "jks-password.txt", o->password_file, &jks_pw);
    out.pfx_password = pfx_pw;
    out.jks_password = jks_pw;
    /* tmp is a directory this process just made in a verified one: only we write it */
    if (rc == CS_OK)
        rc = cs_output_write(tmp, b, CS_FMT_PEM | CS_FMT_NGINX | CS_FMT_APACHE | o->formats, &out);
    if (rc == CS_OK)
        rc = write_meta(s, tfd, name, version, b, o);
    if (rc == CS_OK)
        rc = set_modes(s, tfd, o);
    cs_password_free(pfx_pw);
    cs_password_free(jks_pw);
    return rc;
}

/* Read back what was written: the disk copy is what servers will load. */
static cs_rc verify_written(cs_store *s, const char *name, unsigned version,
                            const cs_install_opts *o)
{
    cs_bundle *b;
    cs_rc rc;

    rc = cs_store_load(s, name, version, &b);
    if (rc == CS_OK) {
        rc = cs_bundle_validate(b, o->names, o->n_names, time(NULL), "the written version");
        cs_bundle_free(b);
    }
    return rc;
}

static unsigned next_version(int cfd)
{
    unsigned *v, next = 1;
    size_t n;

    if (list_versions(cfd, &v, &n) == CS_OK && n > 0)
        next = v[n - 1] + 1;
    if (n > 0)
        free(v);
    cs_error_clear();
    return next;
}

/* Write version next as tmp, then rename it into place (lock held). */
static cs_rc add_version(cs_store *s, const char *name, int cfd, unsigned next, const cs_bundle *b,
                         const cs_install_opts *o)
{
    char tmp[64], final[32], tpath[PATH_SZ];
    int tfd;
    cs_rc rc;

    snprintf(tmp, sizeof(tmp), ".tmp-v%u-%ld", next, (long)getpid());
    snprintf(final, sizeof(final), "v%u", next);
    if ((size_t)snprintf(tpath, sizeof(tpath), "%s/certs/%s/%s", s->path, name, tmp) >=
        sizeof(tpath))
        return cs_error_set(CS_EINVAL, "store path too long");
    if (mkdirat(cfd, tmp, 0700) < 0)
        return cs_error_set(CS_EIO, "cannot create '%s': %s", tpath, strerror(errno));
    rc = cs_fs_dir_openat(cfd, tmp, s->owner, &tfd);
    if (rc == CS_OK) {
        rc = write_version(s, name, tpath, tfd, next, b, o);
        close(tfd);
    }
    if (rc == CS_OK && renameat(cfd, tmp, cfd, final) < 0)
        rc = cs_error_set(CS_EIO, "cannot rename '%s' to v%u: %s", tpath, next, strerror(errno));
    if (rc == CS_OK && fsync(cfd) < 0 && errno != EINVAL)
        rc = cs_error_set(CS_EIO, "cannot fsync '%s/certs/%s': %s", s->path, name, strerror(errno));
    if (rc != CS_OK)
        cs_fs_remove_at(cfd, tmp);
    return rc;
}

cs_rc cs_store_install(cs_store *s, const char *name, const cs_bundle *b, const cs_install_opts *o,
                       unsigned *version)
{
    char cdir[PATH_SZ], origin[200];
    unsigned next;
    int lock, cfd;
    cs_rc rc;

    snprintf(origin, sizeof(origin), "new version of '%s'", name);
    if (cert_dir(s, name, cdir, sizeof(cdir)) != CS_OK)
        return cs_error_code();
    if (cs_bundle_validate(b, o->names, o->n_names, time(NULL), origin) != CS_OK)
        return cs_error_code();
    if (cs_store_lock(s, name, 60, &lock) != CS_OK)
        return cs_error_code();
    if (cert_open(s, name, 1, &cfd) != CS_OK) {
        cs_store_unlock(s, lock);
        return cs_error_code();
    }
    remove_leftovers(cfd);
    next = next_version(cfd);
    rc = add_version(s, name, cfd, next, b, o);
    if (rc == CS_OK && (rc = verify_written(s, name, next, o)) != CS_OK) {
        char final[32];

        snprintf(final, sizeof(final), "v%u", next);
        cs_fs_remove_at(cfd, final);
    }
    if (rc == CS_OK && o->before_switch) {
        o->before_switch(s, name, next, b, o);
        cs_error_clear();
    }
    if (rc == CS_OK)
        rc = switch_current(cfd, next);
    if (rc == CS_OK) {
        write_includes(s, cfd, cdir);
        prune(s, cfd, next);
    }
    close(cfd);
    cs_store_unlock(s, lock);
    if (rc != CS_OK)
        return cs_error_prefix("installing a new version of '%s' (current left as it was)", name);
    if (version)
        *version = next;
    return CS_OK;
}

/* An older version fit to be current again: it loads, validates and was not revoked. */
static cs_rc rollback_candidate(cs_store *s, const char *name, unsigned v, int force)
{
    cs_cert_info info;
    cs_bundle *b;
    int revoked = 0;
    cs_rc rc;

    if (cs_store_load(s, name, v, &b) != CS_OK)
        return cs_error_code();
    rc = cs_bundle_validate(b, NULL, 0, time(NULL), "the older version");
    cs_bundle_free(b);
    if (rc != CS_OK)
        return cs_error_prefix("v%u", v);
    if (force || cs_store_info(s, name, v, &info) != CS_OK) {
        cs_error_clear();
        return CS_OK;
    }
    rc = cs_store_revoked(s, name, info.fingerprint, &revoked);
    cs_cert_info_clear(&info);
    if (rc == CS_OK && revoked)
        rc = cs_error_set(CS_EPERM,
                          "v%u of '%s' was revoked in the certificate service (certsync revoke): "
                          "clients may refuse it; give --force to make it current anyway",
                          v, name);
    return rc;
}

cs_rc cs_store_rollback(cs_store *s, const char *name, int force, unsigned *version)
{
    char reason[1024] = "";
    unsigned cur, *v;
    size_t n, i;
    int lock, cfd;
    cs_rc rc;

    if (cs_store_lock(s, name, 60, &lock) != CS_OK)
        return cs_error_code();
    if (cert_open(s, name, 1, &cfd) != CS_OK) {
        cs_store_unlock(s, lock);
        return cs_error_code();
    }
    rc = read_current(s, cfd, name, &cur);
    if (rc == CS_OK)
        rc = list_versions(cfd, &v, &n);
    if (rc != CS_OK) {
        close(cfd);
        cs_store_unlock(s, lock);
        return rc;
    }
    rc = cs_error_set(CS_ENOTFOUND,
                      "'%s' has no version older than v%u to roll back to (the store keeps %u)",
                      name, cur, s->keep);
    for (i = n; i-- > 0;) {
        if (v[i] >= cur)
            continue;
        rc = rollback_candidate(s, name, v[i], force);
        if (rc == CS_EPERM)
            break; /* revoked: refused, not passed over for an even older one */
        if (rc != CS_OK) {
            snprintf(reason, sizeof(reason), "%s", cs_error_last());
            rc = CS_ENOTFOUND;
            continue;
        }
        /* held first: a sync that comes between must not replace it */
        rc = cs_store_hold(s, name, v[i]);
        if (rc == CS_OK)
            rc = switch_current(cfd, v[i]);
        if (rc != CS_OK)
            cs_store_hold(s, name, 0);
        if (rc == CS_OK && version)
            *version = v[i];
        break;
    }
    free(v);
    close(cfd);
    cs_store_unlock(s, lock);
    if (rc == CS_ENOTFOUND && reason[0])
        cs_error_set(CS_ENOTFOUND, "no older version of '%s' is usable; the last one tried: %s",
                     name, reason);
    return rc;
}

cs_rc cs_store_current_changed(const cs_store *s, const char *name, cs_store_stamp *last,
                               int *changed)
{
    struct stat st;
    int cfd, r;

    *changed = 0;
    if (check_name(name) != CS_OK)
        return cs_error_code();
    /* from the certificate's verified directory, never by path (SPEC.md "Trust boundary") */
    if (cert_open(s, name, 0, &cfd) != CS_OK) {
        last->linked = 0;
        if (cs_error_code() == CS_ENOTFOUND) {
            cs_error_clear();
            return CS_OK;
        }
        return cs_error_set(CS_EIO, "cannot look at %s/certs/%s/current: %s", s->path, name,
                            cs_error_last());
    }
    r = fstatat(cfd, "current", &st, AT_SYMLINK_NOFOLLOW);
    close(cfd);
    if (r == -1) {
        last->linked = 0;
        if (errno == ENOENT)
            return CS_OK;
        return cs_error_set(CS_EIO, "cannot look at %s/certs/%s/current: %s", s->path, name,
                            strerror(errno));
    }
    *changed = !last->linked || st.st_dev != last->dev || st.st_ino != last->ino ||
               st.st_ctim.tv_sec != last->ctime.tv_sec || st.st_ctim.tv_nsec != last->ctime.tv_nsec;
    last->linked = 1;
    last->dev = st.st_dev;
    last->ino = st.st_ino;
    last->ctime = st.st_ctim;
    return CS_OK;
}
