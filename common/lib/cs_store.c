#include "cs_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cs_config.h"
#include "cs_fs.h"
#include "cs_output.h"
#include "cs_password.h"

struct cs_store {
    char *path;
    char lock_name[72]; /* the lock this handle holds, taken again by nesting */
    int lock_fd;
    int lock_depth;
    unsigned keep;
    uid_t uid;
    gid_t gid;
};

#define PATH_SZ 4096

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

static void own(const cs_store *s, const char *path)
{
    if (s->uid != (uid_t)-1 && geteuid() == 0)
        (void)lchown(path, s->uid, s->gid);
}

/* chown a freshly written tree so that server workers can read it without root */
static void own_tree(const cs_store *s, const char *dir)
{
    char child[PATH_SZ];
    struct dirent *de;
    DIR *d;

    if (s->uid == (uid_t)-1 || geteuid() != 0)
        return;
    own(s, dir);
    d = opendir(dir);
    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.' && cs_fs_join(child, sizeof(child), dir, de->d_name) == CS_OK)
            own(s, child);
    closedir(d);
}

cs_rc cs_store_open(const char *path, const cs_store_opts *opts, cs_store **out)
{
    char sub[PATH_SZ];
    cs_store *s;

    if (path == NULL || path[0] != '/')
        return cs_error_set(CS_EINVAL, "the store path '%s' must be absolute",
                            path ? path : "(none)");
    if (cs_fs_mkdirs(path, 0700) != CS_OK || cs_fs_join(sub, sizeof(sub), path, "certs") != CS_OK ||
        cs_fs_mkdirs(sub, 0700) != CS_OK)
        return cs_error_prefix("opening the store");
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return cs_error_set(CS_ENOMEM, "out of memory");
    s->path = strdup(path);
    s->lock_fd = -1;
    s->keep = opts && opts->keep ? opts->keep : 3;
    s->uid = opts ? opts->uid : (uid_t)-1;
    s->gid = opts ? opts->gid : (gid_t)-1;
    own(s, path);
    own(s, sub);
    *out = s;
    return CS_OK;
}

void cs_store_free(cs_store *s)
{
    if (s == NULL)
        return;
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    free(s->path);
    free(s);
}

const char *cs_store_path(const cs_store *s)
{
    return s->path;
}

cs_rc cs_store_area(cs_store *s, const char *sub, char *buf, size_t size)
{
    if (cs_fs_join(buf, size, s->path, sub) != CS_OK || cs_fs_mkdirs(buf, 0700) != CS_OK)
        return cs_error_code();
    own(s, buf);
    return CS_OK;
}

static int safe_component(const char *s)
{
    return s[0] && s[0] != '.' && strchr(s, '/') == NULL && strlen(s) <= 255;
}

cs_rc cs_store_write_challenge(cs_store *s, const char *domain, const char *kind, const char *file,
                               const char *content)
{
    char area[PATH_SZ], dir[PATH_SZ], path[PATH_SZ];
    cs_rc rc;

    if (!safe_component(domain) || !safe_component(kind) || !safe_component(file))
        return cs_error_set(CS_EINVAL, "'%s/%s/%s' is not a challenge name", domain, kind, file);
    if (cs_store_area(s, "challenges", area, sizeof(area)) != CS_OK)
        return cs_error_code();
    if ((size_t)snprintf(dir, sizeof(dir), "%s/%s/%s", area, domain, kind) >= sizeof(dir) ||
        (size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
        return cs_error_set(CS_EINVAL, "challenge path too long");
    rc = cs_fs_mkdirs(dir, 0755);
    if (rc == CS_OK)
        rc = cs_fs_write_atomic(path, content, strlen(content), 0644);
    if (rc != CS_OK)
        return rc;
    /* the umask may have narrowed what mkdir made; workers must read it */
    own(s, path);
    chmod(dir, 0755);
    own(s, dir);
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", area, domain) < sizeof(path)) {
        chmod(path, 0755);
        own(s, path);
    }
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

cs_rc cs_store_current(cs_store *s, const char *name, unsigned *version)
{
    char link[PATH_SZ], target[64];
    ssize_t n;

    if (cs_store_current_link(s, name, link, sizeof(link)) != CS_OK)
        return cs_error_code();
    n = readlink(link, target, sizeof(target) - 1);
    if (n < 0) {
        if (errno == ENOENT)
            return cs_error_set(CS_ENOTFOUND, "'%s' has no current version in the store '%s'", name,
                                s->path);
        return cs_error_set(CS_EIO, "cannot read '%s': %s", link, strerror(errno));
    }
    target[n] = '\0';
    if (!parse_version(target, version))
        return cs_error_set(CS_EIO, "'%s' points to '%s', which is not a version", link, target);
    return CS_OK;
}

static int cmp_unsigned(const void *a, const void *b)
{
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;

    return x < y ? -1 : x > y;
}

cs_rc cs_store_versions(cs_store *s, const char *name, unsigned **versions, size_t *n)
{
    char dir[PATH_SZ];
    struct dirent *de;
    unsigned *v = NULL, x;
    size_t count = 0, cap = 0;
    DIR *d;

    *versions = NULL;
    *n = 0;
    if (cert_dir(s, name, dir, sizeof(dir)) != CS_OK)
        return cs_error_code();
    d = opendir(dir);
    if (d == NULL)
        return errno == ENOENT ? CS_OK
                               : cs_error_set(CS_EIO, "cannot list '%s': %s", dir, strerror(errno));
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

cs_rc cs_store_load(cs_store *s, const char *name, unsigned version, cs_bundle **out)
{
    char dir[PATH_SZ], cert[PATH_SZ], key[PATH_SZ];

    if (cs_store_version_dir(s, name, version, dir, sizeof(dir)) != CS_OK ||
        cs_fs_join(cert, sizeof(cert), dir, "fullchain.pem") != CS_OK ||
        cs_fs_join(key, sizeof(key), dir, "privkey.pem") != CS_OK)
        return cs_error_code();
    return cs_bundle_load_files(out, cert, key, NULL, NULL);
}

/* ---- locking ---- */

cs_rc cs_store_lock(cs_store *s, const char *name, int timeout_s, int *fd)
{
    char dir[PATH_SZ], path[PATH_SZ];
    int f, waited;

    /* a sync holds the lock across its decision and the install it makes */
    if (s->lock_depth > 0 && strcmp(s->lock_name, name) == 0) {
        s->lock_depth++;
        *fd = -2;
        return CS_OK;
    }
    if (cert_dir(s, name, dir, sizeof(dir)) != CS_OK || cs_fs_mkdirs(dir, 0700) != CS_OK ||
        cs_fs_join(path, sizeof(path), dir, ".lock") != CS_OK)
        return cs_error_code();
    own(s, dir);
    f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (f < 0)
        return cs_error_set(CS_EIO, "cannot open the lock '%s': %s", path, strerror(errno));
    own(s, path);
    for (waited = 0; flock(f, LOCK_EX | LOCK_NB) < 0; waited++) {
        if (errno != EWOULDBLOCK || waited >= timeout_s * 10) {
            close(f);
            return cs_error_set(CS_ELOCKED,
                                "another certsync process holds the lock '%s'; try again when "
                                "it has finished",
                                path);
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

static void iso_time(time_t t, char *buf, size_t size)
{
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static time_t parse_iso(const char *s)
{
    struct tm tm;

    memset(&tm, 0, sizeof(tm));
    if (s == NULL || strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm) == NULL)
        return 0;
    return timegm(&tm);
}

static cs_rc write_meta(const char *dir, const char *name, unsigned version, const cs_bundle *b,
                        const cs_install_opts *o)
{
    char fp[65], serial[80], t[32], path[PATH_SZ];
    json_t *j = json_object(), *names = json_array(), *formats = json_array();
    char **have;
    size_t n, i;
    char *text;
    cs_rc rc;

    cs_bundle_fingerprint(b, fp);
    cs_bundle_serial(b, serial, sizeof(serial));
    have = cs_bundle_names(b, &n);
    for (i = 0; have && i < n; i++)
        json_array_append_new(names, json_string(have[i]));
    cs_strv_free(have);
    json_array_append_new(formats, json_string("pem"));
    if (o->formats & CS_FMT_PFX)
        json_array_append_new(formats, json_string("pfx"));
    if (o->formats & CS_FMT_JKS)
        json_array_append_new(formats, json_string("jks"));
    json_object_set_new(j, "name", json_string(name));
    json_object_set_new(j, "version", json_integer(version));
    json_object_set_new(j, "provider", json_string(o->provider ? o->provider : "import"));
    json_object_set_new(j, "remote_id", o->remote_id ? json_string(o->remote_id) : json_null());
    json_object_set_new(j, "fingerprint_sha256", json_string(fp));
    json_object_set_new(j, "serial", json_string(serial));
    iso_time(cs_bundle_not_before(b), t, sizeof(t));
    json_object_set_new(j, "not_before", json_string(t));
    iso_time(cs_bundle_not_after(b), t, sizeof(t));
    json_object_set_new(j, "not_after", json_string(t));
    json_object_set_new(j, "names", names);
    iso_time(time(NULL), t, sizeof(t));
    json_object_set_new(j, "fetched_at", json_string(t));
    json_object_set_new(j, "formats", formats);
    text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (text == NULL)
        return cs_error_set(CS_ENOMEM, "out of memory");
    rc = cs_fs_join(path, sizeof(path), dir, "meta.json");
    if (rc == CS_OK)
        rc = cs_fs_write_new(path, text, strlen(text), 0644);
    free(text);
    return rc;
}

static void copy_str(char *dst, size_t size, json_t *v)
{
    snprintf(dst, size, "%s", json_is_string(v) ? json_string_value(v) : "");
}

cs_rc cs_store_info(cs_store *s, const char *name, unsigned version, cs_cert_info *info)
{
    char dir[PATH_SZ], path[PATH_SZ];
    json_error_t jerr;
    json_t *j, *names, *v;
    size_t i;

    memset(info, 0, sizeof(*info));
    if (version == 0 && cs_store_current(s, name, &version) != CS_OK)
        return cs_error_code();
    if (cs_store_version_dir(s, name, version, dir, sizeof(dir)) != CS_OK ||
        cs_fs_join(path, sizeof(path), dir, "meta.json") != CS_OK)
        return cs_error_code();
    j = json_load_file(path, 0, &jerr);
    if (j == NULL)
        return cs_error_set(CS_EIO, "cannot read '%s': %s (line %d)", path, jerr.text, jerr.line);
    info->version = version;
    copy_str(info->fingerprint, sizeof(info->fingerprint),
             json_object_get(j, "fingerprint_sha256"));
    copy_str(info->serial, sizeof(info->serial), json_object_get(j, "serial"));
    copy_str(info->provider, sizeof(info->provider), json_object_get(j, "provider"));
    copy_str(info->remote_id, sizeof(info->remote_id), json_object_get(j, "remote_id"));
    info->not_before = parse_iso(json_string_value(json_object_get(j, "not_before")));
    info->not_after = parse_iso(json_string_value(json_object_get(j, "not_after")));
    info->fetched_at = parse_iso(json_string_value(json_object_get(j, "fetched_at")));
    names = json_object_get(j, "names");
    info->names = calloc(json_array_size(names) + 1, sizeof(char *));
    json_array_foreach(names, i, v)
    {
        if (json_is_string(v))
            info->names[info->n_names++] = strdup(json_string_value(v));
    }
    json_decref(j);
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

cs_rc cs_store_sync_state(cs_store *s, const char *name, cs_sync_state *st)
{
    char dir[PATH_SZ], path[PATH_SZ];
    const char *r;
    json_t *j;

    memset(st, 0, sizeof(*st));
    if (cert_dir(s, name, dir, sizeof(dir)) != CS_OK ||
        cs_fs_join(path, sizeof(path), dir, "state.json") != CS_OK)
        return cs_error_code();
    j = json_load_file(path, 0, NULL);
    if (j == NULL)
        return CS_OK; /* never synced */
    r = json_string_value(json_object_get(j, "result"));
    st->result = r == NULL                     ? CS_SYNC_NONE
                 : strcmp(r, "installed") == 0 ? CS_SYNC_INSTALLED
                 : strcmp(r, "unchanged") == 0 ? CS_SYNC_UNCHANGED
                 : strcmp(r, "failed") == 0    ? CS_SYNC_FAILED
                                               : CS_SYNC_NONE;
    st->at = parse_iso(json_string_value(json_object_get(j, "at")));
    st->last_success = parse_iso(json_string_value(json_object_get(j, "last_success")));
    copy_str(st->error, sizeof(st->error), json_object_get(j, "error"));
    json_decref(j);
    return CS_OK;
}

cs_rc cs_store_record_sync(cs_store *s, const char *name, cs_sync_result result, const char *error)
{
    char dir[PATH_SZ], path[PATH_SZ], t[32];
    cs_sync_state old;
    json_t *j;
    char *text;
    cs_rc rc;

    if (cert_dir(s, name, dir, sizeof(dir)) != CS_OK || cs_fs_mkdirs(dir, 0700) != CS_OK ||
        cs_fs_join(path, sizeof(path), dir, "state.json") != CS_OK)
        return cs_error_code();
    cs_store_sync_state(s, name, &old);
    j = json_object();
    json_object_set_new(j, "result", json_string(cs_sync_result_name(result)));
    iso_time(time(NULL), t, sizeof(t));
    json_object_set_new(j, "at", json_string(t));
    if (result != CS_SYNC_FAILED) {
        json_object_set_new(j, "last_success", json_string(t));
    } else if (old.last_success) {
        iso_time(old.last_success, t, sizeof(t));
        json_object_set_new(j, "last_success", json_string(t));
    }
    json_object_set_new(j, "error", error ? json_string(error) : json_null());
    text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (text == NULL)
        return cs_error_set(CS_ENOMEM, "out of memory");
    /* losing the last result in a crash is harmless: no fsync per certificate */
    rc = cs_fs_replace(path, text, strlen(text), 0644);
    free(text);
    if (rc == CS_OK)
        own(s, path);
    return rc;
}

/* ---- install ---- */

/* Left by a writer that died: temp version dirs and temp links. */
static void remove_leftovers(const char *dir)
{
    char path[PATH_SZ];
    struct dirent *de;
    DIR *d = opendir(dir);

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, ".tmp-", 5) == 0 || strncmp(de->d_name, "current.tmp", 11) == 0)
            if (cs_fs_join(path, sizeof(path), dir, de->d_name) == CS_OK)
                cs_fs_remove_tree(path);
    closedir(d);
}

/* The PFX or JKS password: configured file, else the current version's, else new. */
static cs_rc pick_password(cs_store *s, const char *name, const char *file, const char *configured,
                           char **out)
{
    char dir[PATH_SZ], path[PATH_SZ];

    if (configured)
        return cs_password_read(configured, out);
    if (cs_store_version_dir(s, name, 0, dir, sizeof(dir)) == CS_OK &&
        cs_fs_join(path, sizeof(path), dir, file) == CS_OK && access(path, R_OK) == 0 &&
        cs_password_read(path, out) == CS_OK)
        return CS_OK;
    cs_error_clear();
    return cs_password_generate(out);
}

static cs_rc switch_current(const char *cdir, unsigned version)
{
    char tmp[PATH_SZ], link[PATH_SZ], target[32];

    snprintf(target, sizeof(target), "v%u", version);
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s/current.tmp-%ld", cdir, (long)getpid()) >=
            sizeof(tmp) ||
        cs_fs_join(link, sizeof(link), cdir, "current") != CS_OK)
        return cs_error_set(CS_EINVAL, "store path too long");
    unlink(tmp);
    if (symlink(target, tmp) < 0)
        return cs_error_set(CS_EIO, "cannot create '%s': %s", tmp, strerror(errno));
    /* rename(2) replaces the link in one step: readers see old or new */
    if (rename(tmp, link) < 0) {
        unlink(tmp);
        return cs_error_set(CS_EIO, "cannot switch '%s': %s", link, strerror(errno));
    }
    return cs_fs_sync_dir(cdir);
}

/*
 * Include snippets for servers that load no certsync module: they name the
 * stable `current` paths, so they are written once and never change.
 */
static void write_include(cs_store *s, const char *cdir, const char *file, const char *text)
{
    char path[PATH_SZ];

    if (cs_fs_join(path, sizeof(path), cdir, file) == CS_OK && access(path, F_OK) != 0 &&
        cs_fs_write_atomic(path, text, strlen(text), 0644) == CS_OK)
        own(s, path);
    cs_error_clear();
}

static void write_includes(cs_store *s, const char *cdir)
{
    char text[2 * PATH_SZ + 256];

    snprintf(text, sizeof(text),
             "# certsync: the current version of this certificate; Include it in a "
             "<VirtualHost>\nSSLCertificateFile %s/current/fullchain.pem\n"
             "SSLCertificateKeyFile %s/current/privkey.pem\n",
             cdir, cdir);
    write_include(s, cdir, "apache.conf", text);
    snprintf(text, sizeof(text),
             "# certsync: the current version of this certificate; include it in a "
             "server {}\nssl_certificate %s/current/fullchain.pem;\n"
             "ssl_certificate_key %s/current/privkey.pem;\n",
             cdir, cdir);
    write_include(s, cdir, "nginx.conf", text);
}

/* Drop the oldest versions beyond keep; the current one always stays. */
static void prune(cs_store *s, const char *name, const char *cdir, unsigned current)
{
    unsigned *v;
    size_t n, i, kept = 0;
    char path[PATH_SZ];

    if (cs_store_versions(s, name, &v, &n) != CS_OK)
        return;
    for (i = n; i-- > 0;) {
        if (v[i] == current || kept + 1 < s->keep) {
            if (v[i] != current)
                kept++;
            continue;
        }
        if ((size_t)snprintf(path, sizeof(path), "%s/v%u", cdir, v[i]) < sizeof(path))
            cs_fs_remove_tree(path);
    }
    free(v);
    cs_error_clear();
}

static cs_rc write_version(cs_store *s, const char *name, const char *tmp, unsigned version,
                           const cs_bundle *b, const cs_install_opts *o)
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
    if (rc == CS_OK)
        rc = cs_output_write(tmp, b, CS_FMT_PEM | CS_FMT_NGINX | CS_FMT_APACHE | o->formats, &out);
    if (rc == CS_OK)
        rc = write_meta(tmp, name, version, b, o);
    if (rc == CS_OK)
        rc = cs_fs_sync_dir(tmp);
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

cs_rc cs_store_install(cs_store *s, const char *name, const cs_bundle *b, const cs_install_opts *o,
                       unsigned *version)
{
    char cdir[PATH_SZ], tmp[PATH_SZ], final[PATH_SZ], origin[200];
    unsigned *v, next = 1, cur = 0;
    size_t n;
    int lock;
    cs_rc rc;

    snprintf(origin, sizeof(origin), "new version of '%s'", name);
    if (cert_dir(s, name, cdir, sizeof(cdir)) != CS_OK)
        return cs_error_code();
    if (cs_bundle_validate(b, o->names, o->n_names, time(NULL), origin) != CS_OK)
        return cs_error_code();
    if (cs_store_lock(s, name, 60, &lock) != CS_OK)
        return cs_error_code();
    remove_leftovers(cdir);
    rc = cs_store_versions(s, name, &v, &n);
    if (rc == CS_OK) {
        if (n > 0)
            next = v[n - 1] + 1;
        free(v);
    }
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s/.tmp-v%u-%ld", cdir, next, (long)getpid()) >=
            sizeof(tmp) ||
        (size_t)snprintf(final, sizeof(final), "%s/v%u", cdir, next) >= sizeof(final))
        rc = cs_error_set(CS_EINVAL, "store path too long");
    if (rc == CS_OK && mkdir(tmp, 0700) < 0)
        rc = cs_error_set(CS_EIO, "cannot create '%s': %s", tmp, strerror(errno));
    if (rc == CS_OK)
        rc = write_version(s, name, tmp, next, b, o);
    if (rc == CS_OK) {
        own_tree(s, tmp);
        if (rename(tmp, final) < 0)
            rc =
                cs_error_set(CS_EIO, "cannot rename '%s' to '%s': %s", tmp, final, strerror(errno));
        else
            rc = cs_fs_sync_dir(cdir);
    }
    if (rc == CS_OK && (rc = verify_written(s, name, next, o)) != CS_OK)
        cs_fs_remove_tree(final);
    if (rc == CS_OK)
        rc = switch_current(cdir, next);
    if (rc != CS_OK) {
        cs_error_prefix("installing a new version of '%s' (current left as it was)", name);
        cs_fs_remove_tree(tmp);
        cs_store_unlock(s, lock);
        return rc;
    }
    (void)cur;
    write_includes(s, cdir);
    prune(s, name, cdir, next);
    cs_store_unlock(s, lock);
    if (version)
        *version = next;
    return CS_OK;
}

cs_rc cs_store_rollback(cs_store *s, const char *name, unsigned *version)
{
    char cdir[PATH_SZ], reason[1024] = "";
    unsigned cur, *v;
    size_t n, i;
    int lock;
    cs_rc rc;

    if (cert_dir(s, name, cdir, sizeof(cdir)) != CS_OK ||
        cs_store_lock(s, name, 60, &lock) != CS_OK)
        return cs_error_code();
    rc = cs_store_current(s, name, &cur);
    if (rc == CS_OK)
        rc = cs_store_versions(s, name, &v, &n);
    if (rc != CS_OK) {
        cs_store_unlock(s, lock);
        return rc;
    }
    rc = cs_error_set(CS_ENOTFOUND,
                      "'%s' has no version older than v%u to roll back to (the store keeps %u)",
                      name, cur, s->keep);
    for (i = n; i-- > 0;) {
        cs_bundle *b;

        if (v[i] >= cur)
            continue;
        if (cs_store_load(s, name, v[i], &b) != CS_OK) {
            snprintf(reason, sizeof(reason), "%s", cs_error_last());
            continue;
        }
        rc = cs_bundle_validate(b, NULL, 0, time(NULL), "the older version");
        cs_bundle_free(b);
        if (rc != CS_OK) {
            snprintf(reason, sizeof(reason), "v%u: %s", v[i], cs_error_last());
            continue;
        }
        rc = switch_current(cdir, v[i]);
        if (rc == CS_OK && version)
            *version = v[i];
        break;
    }
    free(v);
    cs_store_unlock(s, lock);
    if (rc == CS_ENOTFOUND && reason[0])
        cs_error_set(CS_ENOTFOUND, "no older version of '%s' is usable; the last one tried: %s",
                     name, reason);
    return rc;
}
