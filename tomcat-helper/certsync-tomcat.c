/*
 * certsync-tomcat: the keystore generation step for Tomcat, with live reload.
 *
 * Writes the managed certificate NAME from the store as a JKS or PKCS#12
 * keystore (atomically, previous one kept as PATH.bak), only when the store's
 * current version differs from what the keystore holds, then asks Tomcat to
 * re-read it through the Manager's text API (sslReload), so a renewal reaches
 * Tomcat with no restart. A reload that failed is remembered (PATH.reload-pending)
 * and asked for again by the next run; with --probe, so is one whenever Tomcat
 * serves another certificate than the store's current one.
 *
 * Exit codes: 0 done (written and reloaded, or already current), 1 failed and
 * nothing written, 2 usage error, 3 the reload failed (or, with --probe, Tomcat
 * still serves another certificate after it): the next run reloads again.
 */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pwd.h>
#include <openssl/pkcs12.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cs_bundle.h"
#include "cs_config.h"
#include "cs_fs.h"
#include "cs_jks.h"
#include "cs_password.h"
#include "cs_pkcs12.h"
#include "cs_store.h"
#include "cs_sync.h"
#include "cli_log.h"
#include "cli_opt.h"

#define EXIT_RELOAD_FAILED 3

typedef struct {
    const char *config, *cert, *keystore, *type, *alias, *password_file;
    const char *reload_url, *credentials, *tls_host, *ca_file, *probe, *group, *tomcat_user;
    cs_p12_profile profile;
    gid_t gid; /* --group's id ((gid_t)-1: none) */
    int force, print_config, wait_s, jks;
    /* the keystore's directory: every entry beside the keystore is reached through it */
    int dirfd, untrusted; /* untrusted: someone but root and us can write it */
    const char *base;     /* the keystore's file name in it */
} options;

static cs_rc parse_profile(const char *arg, void *field)
{
    return cs_p12_profile_parse(arg, field);
}

static cs_rc parse_seconds(const char *arg, void *field)
{
    char *end;
    long v = strtol(arg, &end, 10);

    if (*arg == '\0' || *end != '\0' || v < 0 || v > 86400 * 365)
        return cs_error_set(CS_EINVAL, "--wait-for-cert: '%s' is not a number of seconds", arg);
    *(int *)field = (int)v;
    return CS_OK;
}

static const cli_opt opts[] = {
    CLI_OPT_NEEDED(options, cert, "cert", "NAME", "the managed certificate ([cert NAME])"),
    CLI_OPT_NEEDED(options, keystore, "keystore", "PATH",
                   "the keystore Tomcat loads; written atomically (temp\n"
                   "file, fsync, rename), the previous one kept as\n"
                   "PATH.bak; owner and mode of an existing file are kept\n"
                   "(create it once as Tomcat needs it, e.g. root:tomcat\n"
                   "0640), a new one is 0600; PATH.tmp-PID files a killed\n"
                   "run left are removed; PATH and PATH.password must not\n"
                   "be symbolic links"),
    CLI_OPT_NEEDED(options, type, "type", "jks|pkcs12",
                   "keystore format (full chain, lower-case alias in JKS)"),
    CLI_OPT_CALL(options, profile, "profile", "modern|legacy",
                 "PKCS#12 profile: modern (default) or legacy (old Java)", parse_profile),
    CLI_OPT_VALUE(options, alias, "alias", "ALIAS", "key alias (default: NAME)"),
    CLI_OPT_VALUE(options, password_file, "password-file", "FILE",
                  "keystore password (first line); without it the password\n"
                  "in PATH.password is used, or a random one is generated\nthere (0600)"),
    CLI_OPT_VALUE(options, reload_url, "reload-url", "URL",
                  "Tomcat Manager text API, e.g.\n"
                  "http://127.0.0.1:8080/manager/text/sslReload"),
    CLI_OPT_VALUE(options, credentials, "manager-credentials", "FILE",
                  "'user:password' on one line, mode 0600 (role\nmanager-script)"),
    CLI_OPT_VALUE(options, tls_host, "tls-host-name", "NAME",
                  "reload only this SSLHostConfig (?tlsHostName=NAME)"),
    CLI_OPT_VALUE(options, ca_file, "ca-file", "FILE", "CA bundle to verify an https reload URL"),
    CLI_OPT_VALUE(options, probe, "probe", "HOST:PORT",
                  "Tomcat's HTTPS connector: with --reload-url, reload when\n"
                  "the certificate it serves there is not the store's\n"
                  "current one, even if the keystore already holds it"),
    CLI_OPT_VALUE(options, group, "group", "GROUP",
                  "a new keystore and PATH.password are GROUP-readable\n"
                  "(0640), e.g. tomcat; default: the existing keystore's\n"
                  "group and mode are given to PATH.password"),
    CLI_OPT_VALUE(options, tomcat_user, "tomcat-user", "USER",
                  "warn when USER (default: tomcat, if there is such a\n"
                  "user) cannot read the keystore or its password file"),
    CLI_OPT_SWITCH(options, force, "force",
                   "write and reload even if the keystore already holds the\n"
                   "current version (not needed after a failed reload: the\n"
                   "next run reloads again)"),
    CLI_OPT_CALL(options, wait_s, "wait-for-cert", "SECONDS",
                 "wait for a first version (systemd ExecStartPre before\nTomcat)", parse_seconds),
    CLI_OPT_SWITCH(options, print_config, "print-config",
                   "print the <SSLHostConfig> element for server.xml and exit\n"
                   "(the password file it names is generated first if it is\nmissing)"),
    CLI_OPT_VALUE(options, config, "config", "FILE",
                  "certsync.conf (default: $CERTSYNC_CONFIG, else\n" CS_DEFAULT_CONFIG ")"),
    CLI_OPT_HELP,
    CLI_OPT_END};

static void exit_codes(FILE *out)
{
    fputs("\nExit codes: 0 done (written and reloaded, or already current), 1 failed (nothing\n"
          "written), 2 usage error, 3 the reload failed, or with --probe Tomcat still serves\n"
          "another certificate after it (the next run reloads again).\n",
          out);
}

static const cli_cmd spec = {
    .prog = "certsync-tomcat",
    .summary = "write the managed certificate NAME as a Tomcat keystore, and make Tomcat "
               "re-read it",
    .about = "NAME's current version in the certsync store is written only when the keystore\n"
             "holds another one; Tomcat re-reads it through the Manager (sslReload), with no\n"
             "restart. A reload that failed is remembered (PATH.reload-pending) and asked for\n"
             "again by the next run, and with --probe a run reloads whenever Tomcat serves\n"
             "another certificate than the store's current one.\n",
    .opts = opts,
    .more_help = exit_codes};

/* CLI_CONTINUE when the options are good, else the exit code. */
static int parse_args(int argc, char **argv, options *o)
{
    int first, rc;

    memset(o, 0, sizeof(*o));
    o->profile = CS_P12_MODERN;
    o->dirfd = -1;
    if ((rc = cli_parse(&spec, argc, argv, o, &first)) != CLI_CONTINUE)
        return rc;
    if (strcmp(o->type, "jks") == 0)
        o->jks = 1;
    else if (strcmp(o->type, "pkcs12") != 0)
        return cli_usage(&spec, "--type: '%s' is not jks or pkcs12", o->type);
    if (o->reload_url && !o->credentials)
        return cli_usage(&spec, "%s", "--reload-url needs --manager-credentials FILE");
    if (!o->config)
        o->config = getenv("CERTSYNC_CONFIG") && *getenv("CERTSYNC_CONFIG")
                        ? getenv("CERTSYNC_CONFIG")
                        : CS_DEFAULT_CONFIG;
    if (!o->alias)
        o->alias = o->cert;
    o->gid = (gid_t)-1;
    if (o->group) {
        struct group *gr = getgrnam(o->group);

        if (gr == NULL)
            return cli_usage(&spec, "--group: no group '%s' on this machine", o->group);
        o->gid = gr->gr_gid;
    }
    if (o->probe && strrchr(o->probe, ':') == NULL)
        return cli_usage(&spec, "--probe: '%s' is not HOST:PORT (e.g. 127.0.0.1:8443)", o->probe);
    return CLI_CONTINUE;
}

/*
 * The keystore's directory, opened once. Debian's /etc/tomcat10/Catalina is root:tomcat 0775:
 * whoever may write it can plant what root then reads or writes through, so nothing there is
 * followed, and what decides the key's protection (the password file) must be root's.
 */
static cs_rc open_keystore_dir(options *o)
{
    char dir[4200], *slash;
    struct stat st;

    snprintf(dir, sizeof(dir), "%s", o->keystore);
    slash = strrchr(dir, '/');
    o->base = slash ? o->keystore + (slash - dir) + 1 : o->keystore;
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    if (*o->base == '\0')
        return cs_error_set(CS_EINVAL, "--keystore '%s' names a directory, not a file",
                            o->keystore);
    o->dirfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (o->dirfd < 0 || fstat(o->dirfd, &st) < 0)
        return cs_error_set(CS_EIO, "cannot open the keystore's directory '%s': %s",
                            slash ? dir : ".", strerror(errno));
    o->untrusted = (st.st_mode & (S_IWGRP | S_IWOTH)) || (st.st_uid != 0 && st.st_uid != geteuid());
    return CS_OK;
}

/* The existing keystore: a regular file (*have = 1), or none (*have = 0); a symlink is refused. */
static cs_rc keystore_stat(const options *o, struct stat *st, int *have)
{
    *have = 0;
    if (fstatat(o->dirfd, o->base, st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? CS_OK
                               : cs_error_set(CS_EIO, "cannot stat the keystore '%s': %s",
                                              o->keystore, strerror(errno));
    if (!S_ISREG(st->st_mode))
        return cs_error_set(CS_EPERM,
                            "the keystore '%s' is %s, not a regular file: refused (root would "
                            "write the key through it); remove it and run again, or give "
                            "--keystore the real file",
                            o->keystore, S_ISLNK(st->st_mode) ? "a symbolic link" : "special");
    *have = 1;
    return CS_OK;
}

/* Beside a keystore others can write to: the password file is ours, one link, no others' read. */
static cs_rc password_file_trusted(const options *o, const struct stat *st, const char *path)
{
    if (!o->untrusted)
        return CS_OK;
    if ((st->st_uid != 0 && st->st_uid != geteuid()) || (st->st_mode & (S_IWGRP | S_IRWXO)) ||
        st->st_nlink != 1)
        return cs_error_set(CS_EPERM,
                            "the password file '%s' (owner uid %ld, mode %04o, %ld links) is in "
                            "a directory that another user can write: refused, as whoever "
                            "planted it would know the keystore's password; chown root and "
                            "chmod 600 (or 640 for Tomcat's group) a file of your own there, or "
                            "remove it to have one generated",
                            path, (long)st->st_uid, (unsigned)(st->st_mode & 07777),
                            (long)st->st_nlink);
    return CS_OK;
}

/*
 * Who may read PATH.password: --group (0640), else the keystore's group and
 * mode (0640 root:tomcat when the keystore is so), else only us (0600).
 */
static int password_access(const options *o, gid_t *gid, mode_t *mode)
{
    struct stat ks;

    *gid = o->gid;
    *mode = o->gid != (gid_t)-1 ? 0640 : 0600;
    if (o->gid == (gid_t)-1 && fstatat(o->dirfd, o->base, &ks, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISREG(ks.st_mode)) {
        *gid = ks.st_gid;
        *mode = (ks.st_mode & 0640) | 0600;
    }
    return *gid != (gid_t)-1; /* 0: nothing to go by */
}

/* An existing PATH.password of ours gets that group and mode too (it may predate --group). */
static cs_rc password_share(const options *o, int fd, const struct stat *st, const char *path)
{
    gid_t gid;
    mode_t mode;

    if (!password_access(o, &gid, &mode) || (st->st_gid == gid && (st->st_mode & 07777) == mode))
        return CS_OK;
    if (st->st_uid != geteuid())
        return CS_OK; /* not ours to change: the warning below says who cannot read it */
    if ((gid != (gid_t)-1 && fchown(fd, (uid_t)-1, gid) < 0) || fchmod(fd, mode) < 0)
        return cs_error_set(CS_EIO, "cannot give '%s' the keystore's group and mode %04o: %s", path,
                            (unsigned)mode, strerror(errno));
    /* stderr: --print-config's stdout is the XML to paste */
    fprintf(stderr, "certsync-tomcat: %s is now mode %04o, group %ld (%s)\n", path, (unsigned)mode,
            (long)gid, o->group ? "--group" : "the keystore's");
    return CS_OK;
}

/* The first line of PATH.password, through the directory, never through a symlink. */
static cs_rc read_password_beside(const options *o, const char *name, const char *path, char **pw)
{
    char buf[4097];
    struct stat st;
    size_t got = 0, n;
    ssize_t r = 1;
    int fd;
    cs_rc rc;

    if (cs_fs_open_at(o->dirfd, name, (uid_t)-1, &fd) != CS_OK)
        return cs_error_prefix("password file '%s'", path);
    rc = fstat(fd, &st) < 0 ? cs_error_set(CS_EIO, "cannot stat '%s': %s", path, strerror(errno))
                            : password_file_trusted(o, &st, path);
    if (rc == CS_OK)
        rc = password_share(o, fd, &st, path);
    while (rc == CS_OK && r > 0 && got < sizeof(buf) - 1)
        if ((r = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
            got += (size_t)r;
    close(fd);
    if (rc == CS_OK && r < 0)
        rc = cs_error_set(CS_EIO, "cannot read '%s': %s", path, strerror(errno));
    buf[got] = '\0';
    n = strcspn(buf, "\r\n");
    if (rc == CS_OK && n == 0)
        rc = cs_error_set(CS_EPASSWORD,
                          "password file '%s' is empty; put the password on its first line", path);
    if (rc == CS_OK && (*pw = strndup(buf, n)) == NULL)
        rc = cs_error_set(CS_ENOMEM, "out of memory");
    OPENSSL_cleanse(buf, sizeof(buf));
    return rc;
}

/* A new random password in PATH.password, replacing by rename whatever is there. */
static cs_rc new_password_beside(const options *o, const char *name, char **pw)
{
    char line[64];
    gid_t gid;
    mode_t mode;
    cs_rc rc;

    if (cs_password_generate(pw) != CS_OK)
        return cs_error_code();
    snprintf(line, sizeof(line), "%s\n", *pw);
    password_access(o, &gid, &mode);
    rc = cs_fs_write_at(o->dirfd, name, line, strlen(line), mode, gid, CS_FS_SYNC);
    OPENSSL_cleanse(line, sizeof(line));
    return rc;
}

/* The keystore's password: given file, else PATH.password, else a new one there. */
static cs_rc keystore_password(const options *o, char **pw, char *pwpath, size_t size)
{
    char name[300];
    cs_rc rc;

    if (o->password_file) {
        snprintf(pwpath, size, "%s", o->password_file);
        return cs_password_read(o->password_file, pw);
    }
    if ((size_t)snprintf(pwpath, size, "%s.password", o->keystore) >= size ||
        (size_t)snprintf(name, sizeof(name), "%s.password", o->base) >= sizeof(name))
        return cs_error_set(CS_EINVAL, "keystore path too long");
    rc = read_password_beside(o, name, pwpath, pw);
    if (rc == CS_ENOTFOUND) {
        cs_error_clear();
        rc = new_password_beside(o, name, pw);
    }
    return rc;
}

/* The leaf fingerprint and alias of what the keystore holds now ("" if unreadable). */
static void keystore_holds(const options *o, const char *pw, char fp[65])
{
    unsigned char *data;
    size_t len;
    cs_bundle *b = NULL;
    char *alias = NULL;

    fp[0] = '\0';
    if (cs_fs_read_at(o->dirfd, o->base, 1 << 20, (uid_t)-1, (char **)&data, &len) != CS_OK)
        goto out;
    if (o->jks) {
        if (cs_jks_read(data, len, pw, pw, &b, &alias) == CS_OK && strcmp(alias, o->alias) != 0) {
            cs_bundle_free(b);
            b = NULL;
        }
    } else {
        const unsigned char *p = data;
        PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)len);
        EVP_PKEY *key = NULL;
        X509 *cert = NULL;
        STACK_OF(X509) *ca = NULL;

        if (p12 && PKCS12_parse(p12, pw, &key, &cert, &ca) == 1)
            cs_bundle_new(cert, ca, key, &b);
        EVP_PKEY_free(key);
        X509_free(cert);
        sk_X509_pop_free(ca, X509_free);
        PKCS12_free(p12);
    }
    if (b)
        cs_bundle_fingerprint(b, fp);
    cs_bundle_free(b);
    free(alias);
    free(data);
out:
    cs_error_clear();
}

/* NAME is PREFIX followed by digits only (a process id). */
static long tmp_pid(const char *name, const char *prefix)
{
    size_t n = strlen(prefix);
    const char *p = name + n;
    char *end;
    long pid;

    if (strncmp(name, prefix, n) != 0 || *p < '0' || *p > '9')
        return -1;
    pid = strtol(p, &end, 10);
    return *end == '\0' && pid > 0 ? pid : -1;
}

/*
 * A run killed mid-write leaves KEYSTORE.tmp-PID (or KEYSTORE.bak.tmp-PID)
 * holding the key: remove those of dead processes, if they are our regular
 * files (never through a symlink).
 */
static void remove_stale_temps(const options *o)
{
    char tmp[300], bak[300];
    struct dirent *e;
    int fd = dup(o->dirfd);
    DIR *d;

    snprintf(tmp, sizeof(tmp), "%s.tmp-", o->base);
    snprintf(bak, sizeof(bak), "%s.bak.tmp-", o->base);
    if (fd < 0 || lseek(fd, 0, SEEK_SET) < 0 || (d = fdopendir(fd)) == NULL) {
        if (fd >= 0)
            close(fd);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        long pid = tmp_pid(e->d_name, tmp);
        struct stat st;

        if (pid < 0)
            pid = tmp_pid(e->d_name, bak);
        if (pid < 0 || (kill((pid_t)pid, 0) == 0 || errno == EPERM) ||
            fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
            st.st_uid != geteuid())
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0)
            fprintf(stderr, "certsync-tomcat: removed '%.*s%s', left by a run that was killed\n",
                    (int)(o->base - o->keystore), o->keystore, e->d_name);
    }
    closedir(d);
}

/*
 * The group and mode of the keystore written: --group's (0640), else the old
 * keystore's, else those of PATH.password (--print-config --group made it), else 0600.
 */
static void keystore_access(const options *o, const struct stat *old, gid_t *gid, mode_t *mode)
{
    struct stat pws;
    char pwname[300];

    *mode = o->gid != (gid_t)-1 ? 0640 : old ? (old->st_mode & 0660) | 0600 : 0600;
    *gid = o->gid != (gid_t)-1 ? o->gid : old ? old->st_gid : (gid_t)-1;
    snprintf(pwname, sizeof(pwname), "%s.password", o->base);
    if (!old && o->gid == (gid_t)-1 && !o->password_file &&
        fstatat(o->dirfd, pwname, &pws, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(pws.st_mode) &&
        pws.st_uid == geteuid()) {
        *gid = pws.st_gid;
        *mode = (pws.st_mode & 0640) | 0600;
    }
}

/* The new keystore as the temp entry tmp of the directory, with the old one's owner and mode. */
static cs_rc write_temp(const options *o, const char *tmp, const unsigned char *data, size_t len,
                        const struct stat *old)
{
    mode_t mode;
    gid_t gid;
    const unsigned char *p = data;
    char where[4400];
    ssize_t n;
    cs_rc rc = CS_OK;
    int fd;

    keystore_access(o, old, &gid, &mode);
    snprintf(where, sizeof(where), "%.*s%s", (int)(o->base - o->keystore), o->keystore, tmp);
    unlinkat(o->dirfd, tmp, 0);
    fd = openat(o->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return cs_error_set(CS_EIO, "cannot create '%s': %s", where, strerror(errno));
    while (rc == CS_OK && len > 0) {
        n = write(fd, p, len);
        if (n < 0 && errno != EINTR)
            rc = cs_error_set(CS_EIO, "cannot write '%s': %s", where, strerror(errno));
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        }
    }
    /* on the descriptor: the entry is in a directory others may write */
    if (rc == CS_OK && old && geteuid() == 0 && fchown(fd, old->st_uid, gid) < 0)
        rc = cs_error_set(CS_EIO, "cannot chown '%s': %s", where, strerror(errno));
    if (rc == CS_OK && !old && gid != (gid_t)-1 && fchown(fd, (uid_t)-1, gid) < 0)
        rc = cs_error_set(CS_EIO, "cannot give '%s' the group %ld: %s", where, (long)gid,
                          strerror(errno));
    if (rc == CS_OK && (fchmod(fd, mode) < 0 || fsync(fd) < 0))
        rc = cs_error_set(CS_EIO, "cannot finish '%s': %s", where, strerror(errno));
    if (close(fd) < 0 && rc == CS_OK)
        rc = cs_error_set(CS_EIO, "cannot write '%s': %s", where, strerror(errno));
    return rc;
}

/* temp file, fsync, PATH -> PATH.bak, temp -> PATH, fsync dir; all through the directory */
static cs_rc install_keystore(const options *o, const unsigned char *data, size_t len)
{
    char tmp[300], bak[300], baktmp[300];
    struct stat st;
    int have_old;
    cs_rc rc;

    if (keystore_stat(o, &st, &have_old) != CS_OK)
        return cs_error_code();
    if ((size_t)snprintf(baktmp, sizeof(baktmp), "%s.bak.tmp-%ld", o->base, (long)getpid()) >=
        sizeof(baktmp))
        return cs_error_set(CS_EINVAL, "the keystore's name '%s' is too long", o->base);
    snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", o->base, (long)getpid());
    snprintf(bak, sizeof(bak), "%s.bak", o->base);
    rc = write_temp(o, tmp, data, len, have_old ? &st : NULL);
    if (rc == CS_OK && have_old) {
        unlinkat(o->dirfd, baktmp, 0);
        if (linkat(o->dirfd, o->base, o->dirfd, baktmp, 0) < 0 ||
            renameat(o->dirfd, baktmp, o->dirfd, bak) < 0)
            rc = cs_error_set(CS_EIO, "cannot keep the previous keystore as '%s.bak': %s",
                              o->keystore, strerror(errno));
    }
    if (rc == CS_OK && renameat(o->dirfd, tmp, o->dirfd, o->base) < 0)
        rc = cs_error_set(CS_EIO, "cannot rename '%s.tmp-%ld' to '%s': %s", o->keystore,
                          (long)getpid(), o->keystore, strerror(errno));
    if (rc != CS_OK) {
        unlinkat(o->dirfd, tmp, 0);
        unlinkat(o->dirfd, baktmp, 0);
        return rc;
    }
    if (fsync(o->dirfd) < 0 && errno != EINVAL)
        return cs_error_set(CS_EIO, "cannot fsync the directory of '%s': %s", o->keystore,
                            strerror(errno));
    return CS_OK;
}

/* user:password from a file only its owner can read */
static cs_rc read_credentials(const char *path, char **user, char **pass)
{
    struct stat st;
    char *line, *colon;

    if (stat(path, &st) < 0)
        return cs_error_set(CS_ENOTFOUND, "cannot read the manager credentials '%s': %s", path,
                            strerror(errno));
    if (st.st_mode & 077)
        return cs_error_set(CS_EPASSWORD,
                            "the manager credentials '%s' can be read by group or others (mode "
                            "%04o); chmod 600 it",
                            path, (unsigned)(st.st_mode & 07777));
    if (cs_password_read(path, &line) != CS_OK)
        return cs_error_code();
    colon = strchr(line, ':');
    if (colon == NULL || colon == line) {
        cs_password_free(line);
        return cs_error_set(
            CS_EPASSWORD, "the manager credentials '%s' are not 'user:password' on one line", path);
    }
    *colon = '\0';
    *user = strdup(line);
    *pass = strdup(colon + 1);
    OPENSSL_cleanse(colon + 1, strlen(colon + 1));
    cs_password_free(line);
    return CS_OK;
}

typedef struct {
    char buf[4096];
    size_t len;
} body;

static size_t on_body(char *data, size_t size, size_t n, void *user)
{
    body *b = user;
    size_t take = size * n;

    if (take > sizeof(b->buf) - 1 - b->len)
        take = sizeof(b->buf) - 1 - b->len;
    memcpy(b->buf + b->len, data, take);
    b->len += take;
    b->buf[b->len] = '\0';
    return size * n;
}

/* GET the manager URL; the first line of the answer is Tomcat's verdict. */
static cs_rc manager_get(const options *o, const char *url, const char *user, const char *pass,
                         char *line, size_t size)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    body b = {.len = 0};
    long status = 0;
    CURLcode cc;
    CURL *curl;
    cs_rc rc;

    curl = curl_easy_init();
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_USERNAME, user);
    curl_easy_setopt(curl, CURLOPT_PASSWORD, pass);
    curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    /* the Manager's Basic credentials never go through an http_proxy from the environment */
    curl_easy_setopt(curl, CURLOPT_PROXY, "");
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    if (o->ca_file)
        curl_easy_setopt(curl, CURLOPT_CAINFO, o->ca_file);
    cc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(curl);
    snprintf(line, size, "%.*s", (int)strcspn(b.buf, "\r\n"), b.buf);
    if (cc != CURLE_OK)
        rc = cs_error_set(CS_EPROVIDER, "cannot reach Tomcat at %s: %s; is Tomcat running?",
                          o->reload_url, errbuf[0] ? errbuf : curl_easy_strerror(cc));
    else if (status == 401)
        rc = cs_error_set(CS_EPASSWORD,
                          "Tomcat's manager at %s rejected the user in '%s' (HTTP 401); check "
                          "the user and password there and in tomcat-users.xml",
                          o->reload_url, o->credentials);
    else if (status == 403)
        rc = cs_error_set(CS_EPASSWORD,
                          "Tomcat's manager at %s refused the user in '%s' (HTTP 403); it needs "
                          "the role manager-script",
                          o->reload_url, o->credentials);
    else if (status == 500)
        rc = cs_error_set(CS_EPROVIDER,
                          "Tomcat answered HTTP 500 at %s: it could not load the keystore it "
                          "re-read and keeps serving the previous certificate; see its log "
                          "(catalina.out) for why",
                          o->reload_url);
    else if (status != 200 || (strncmp(line, "OK - ", 5) != 0 && strncmp(line, "FAIL - ", 7) != 0))
        rc = cs_error_set(CS_EPROVIDER,
                          "%s is not Tomcat's manager text API (HTTP %ld); use "
                          "http://HOST:PORT/manager/text/sslReload",
                          o->reload_url, status);
    else
        rc = CS_OK;
    return rc;
}

static cs_rc reload(const options *o, const char *user, const char *pass, char *line, size_t size)
{
    char url[4400];
    cs_rc rc;

    if (o->tls_host) {
        char *esc = curl_easy_escape(NULL, o->tls_host, 0);

        snprintf(url, sizeof(url), "%s%stlsHostName=%s", o->reload_url,
                 strchr(o->reload_url, '?') ? "&" : "?", esc);
        curl_free(esc);
    } else {
        snprintf(url, sizeof(url), "%s", o->reload_url);
    }
    rc = manager_get(o, url, user, pass, line, size);
    if (rc == CS_OK && strncmp(line, "OK - ", 5) != 0)
        rc = cs_error_set(CS_EPROVIDER, "Tomcat did not reload the keystore: %s", line);
    return rc;
}

static int ascii_only(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return 0;
    return 1;
}

static void print_config(const options *o, const char *pwpath)
{
    printf("<!-- in the HTTPS <Connector> of server.xml; certsync-tomcat --cert %s writes %s -->\n"
           "<SSLHostConfig hostName=\"%s\">\n"
           "    <Certificate certificateKeystoreFile=\"%s\"\n"
           "                 certificateKeystoreType=\"%s\"\n"
           "                 certificateKeyAlias=\"%s\"\n"
           "                 certificateKeystorePasswordFile=\"%s\" />\n"
           "</SSLHostConfig>\n"
           "<!-- certificateKeystorePasswordFile is read by current Tomcat releases (Debian 12's\n"
           "     10.1 has it); a Tomcat without it needs certificateKeystorePassword set to the\n"
           "     first line of %s -->\n",
           o->cert, o->keystore, o->tls_host ? o->tls_host : "_default_", o->keystore,
           o->jks ? "JKS" : "PKCS12", o->alias, pwpath, pwpath);
}

static int wait_for_cert(cs_store *s, const options *o)
{
    unsigned v;
    int i;

    for (i = 0; cs_store_current(s, o->cert, &v) != CS_OK; i++) {
        if (i >= o->wait_s) {
            fprintf(stderr, "certsync-tomcat: %s%s\n", cs_error_last(),
                    o->wait_s ? " (waited --wait-for-cert seconds)"
                              : "; run `certsync sync` first");
            return 0;
        }
        sleep(1);
    }
    return 1;
}

/* A core file would hold private keys and the AccessKey secret: none is written. */
static void no_core_dumps(void)
{
    struct rlimit zero = {0, 0};

    prctl(PR_SET_DUMPABLE, 0);
    setrlimit(RLIMIT_CORE, &zero);
}

/* The current version of the certificate, waited for with --wait-for-cert. */
static int load_current(cs_store *s, const options *o, cs_bundle **b, cs_cert_info *info)
{
    if (!wait_for_cert(s, o))
        return 0;
    if (cs_store_load(s, o->cert, 0, b) != CS_OK || cs_store_info(s, o->cert, 0, info) != CS_OK) {
        fprintf(stderr, "certsync-tomcat: %s\n", cs_error_last());
        return 0;
    }
    return 1;
}

/* Ask Tomcat to re-read the keystore: 0, or EXIT_RELOAD_FAILED. */
static int reload_step(const options *o, const char *user, const char *pass)
{
    char line[1024];

    if (reload(o, user, pass, line, sizeof(line)) == CS_OK) {
        printf("%s: Tomcat reloaded: %s\n", o->cert, line);
        return 0;
    }
    fprintf(stderr,
            "certsync-tomcat: %s\n"
            "certsync-tomcat: the keystore on disk is the new one; Tomcat still serves "
            "the old one until it re-reads it\n",
            cs_error_last());
    return EXIT_RELOAD_FAILED;
}

/* The connected socket to HOST:PORT (10 s at most), or -1 with the error set. */
static int probe_connect(const char *where)
{
    BIO *b = BIO_new_connect(where);
    int fd = -1;
    struct timeval tv = {10, 0};

    if (b && BIO_set_nbio(b, 1) == 1 && BIO_do_connect_retry(b, 10, -1) == 1 &&
        BIO_get_fd(b, &fd) >= 0) {
        /* the socket outlives the BIO: freeing it must neither shut it down nor close it */
        BIO_set_close(b, BIO_NOCLOSE);
        BIO_socket_nbio(fd, 0);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    } else {
        cs_error_set(CS_EPROVIDER, "cannot connect to Tomcat's connector at %s (--probe): %s",
                     where, ERR_reason_error_string(ERR_peek_last_error()));
        fd = -1;
    }
    BIO_free_all(b);
    ERR_clear_error();
    return fd;
}

/* SHA-256 (hex) of the leaf certificate Tomcat serves at --probe to a new connection. */
static cs_rc probe_served(const options *o, char fp[65])
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = ctx ? SSL_new(ctx) : NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0, i;
    X509 *leaf = NULL;
    int fd = ssl ? probe_connect(o->probe) : -1;
    cs_rc rc = CS_OK;

    /* only compared with the store's certificate: trust does not matter here */
    if (ssl && fd >= 0) {
        SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
        if (o->tls_host)
            SSL_set_tlsext_host_name(ssl, o->tls_host);
        SSL_set_fd(ssl, fd);
        if (SSL_connect(ssl) == 1)
            leaf = SSL_get1_peer_certificate(ssl);
    }
    if (fd >= 0 && (leaf == NULL || X509_digest(leaf, EVP_sha256(), md, &n) != 1))
        rc = cs_error_set(CS_EPROVIDER, "no TLS handshake with Tomcat's connector at %s (--probe)",
                          o->probe);
    else if (fd < 0)
        rc = ssl ? cs_error_code() : cs_error_set(CS_ENOMEM, "out of memory");
    for (i = 0; rc == CS_OK && i < n; i++)
        snprintf(fp + 2 * i, 3, "%02x", md[i]);
    X509_free(leaf);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    if (fd >= 0)
        close(fd);
    ERR_clear_error();
    return rc;
}

/* PATH.reload-pending: a reload failed, and the next run asks for it again. */
static void reload_pending_name(const options *o, char *name, size_t size)
{
    snprintf(name, size, "%s.reload-pending", o->base);
}

static int reload_pending(const options *o)
{
    char name[300];
    struct stat st;

    reload_pending_name(o, name, sizeof(name));
    return fstatat(o->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static void remember_reload(const options *o, const char *fp, int pending)
{
    char name[300], line[80];

    reload_pending_name(o, name, sizeof(name));
    snprintf(line, sizeof(line), "%s\n", fp);
    if (!pending)
        unlinkat(o->dirfd, name, 0);
    else if (cs_fs_write_at(o->dirfd, name, line, strlen(line), 0600, (gid_t)-1, 0) != CS_OK)
        fprintf(stderr,
                "certsync-tomcat: %s; the next run cannot know that a reload is due: "
                "give it --probe or --force\n",
                cs_error_last());
}

/* Why Tomcat must re-read the keystore though it holds the current version, or NULL. */
static const char *reload_due(const options *o, const char *fp, int *probe_failed)
{
    static char why[200];
    char served[65] = "";

    *probe_failed = 0;
    if (reload_pending(o))
        return "the last reload failed";
    if (o->probe == NULL)
        return NULL;
    if (probe_served(o, served) != CS_OK) {
        fprintf(stderr, "certsync-tomcat: %s\n", cs_error_last());
        *probe_failed = 1;
        return NULL;
    }
    if (strcmp(served, fp) == 0)
        return NULL;
    snprintf(why, sizeof(why), "Tomcat serves sha256 %.16s..., not the current one", served);
    return why;
}

/* After a reload, with --probe: Tomcat serves the current version now, or an error says so. */
static int reload_verified(const options *o, const char *fp, unsigned version)
{
    char served[65] = "";

    if (o->probe == NULL)
        return 0;
    if (probe_served(o, served) == CS_OK && strcmp(served, fp) == 0) {
        printf("%s: Tomcat serves v%u at %s\n", o->cert, version, o->probe);
        return 0;
    }
    fprintf(stderr,
            "certsync-tomcat: Tomcat reloaded, but serves %s%s at %s, not v%u (sha256 %s): is "
            "--keystore the file its connector loads, and --tls-host-name its SSLHostConfig?\n",
            served[0] ? "sha256 " : "", served[0] ? served : "nothing", o->probe, version, fp);
    return EXIT_RELOAD_FAILED;
}

/* Write the current version into the keystore unless it holds it, then reload Tomcat. */
/* The new keystore for b, written into place; 0, or EXIT_FAILURE (the error printed). */
static int write_step(const options *o, cs_bundle *b, const char *pw, const cs_cert_info *info,
                      const char *fp)
{
    unsigned char *data = NULL;
    size_t len = 0;
    cs_rc r;

    r = o->jks ? cs_jks_write(b, o->alias, pw, pw, 0, &data, &len)
               : cs_pkcs12_write(b, o->alias, pw, o->profile, &data, &len);
    if (r == CS_OK)
        r = install_keystore(o, data, len);
    if (data) {
        OPENSSL_cleanse(data, len);
        free(data);
    }
    if (r != CS_OK) {
        fprintf(stderr, "certsync-tomcat: %s; the keystore was not changed\n", cs_error_last());
        return EXIT_FAILURE;
    }
    printf("%s: wrote v%u (sha256 %s) to %s\n", o->cert, info->version, fp, o->keystore);
    return 0;
}

/*
 * Write the current version unless the keystore holds it; reload Tomcat when it was
 * written, when the last reload failed, or when --probe finds another certificate served.
 */
static int update(const options *o, cs_store *s, const char *pw, const char *user, const char *pass)
{
    char held[65], fp[65];
    const char *why = NULL;
    cs_bundle *b = NULL;
    cs_cert_info info;
    int rc = 0, write, probe_failed = 0;

    if (!load_current(s, o, &b, &info)) {
        cs_bundle_free(b);
        return EXIT_FAILURE;
    }
    cs_bundle_fingerprint(b, fp);
    keystore_holds(o, pw, held);
    write = o->force || strcmp(held, fp) != 0;
    /* without --reload-url (ExecStartPre before Tomcat starts) only the keystore matters */
    if (!write && o->reload_url)
        why = reload_due(o, fp, &probe_failed);
    if (!write && why == NULL) {
        printf("%s: %s already holds v%u (sha256 %s)%s; nothing written, no reload\n", o->cert,
               o->keystore, info.version, fp,
               o->probe && o->reload_url && !probe_failed ? " and Tomcat serves it" : "");
        goto done;
    }
    if (write && (rc = write_step(o, b, pw, &info, fp)) != 0)
        goto done;
    if (!write)
        printf("%s: %s holds v%u, but %s: reloading\n", o->cert, o->keystore, info.version, why);
    if (o->reload_url == NULL)
        goto done;
    rc = reload_step(o, user, pass);
    if (rc == 0)
        rc = reload_verified(o, fp, info.version);
    /* remembered: the next run reloads again, even with the keystore current on disk */
    remember_reload(o, fp, rc != 0);
done:
    cs_cert_info_clear(&info);
    cs_bundle_free(b);
    return rc;
}

/* st grants bit (4 read, 1 search) to the user pw with its groups. */
static int grants(const struct passwd *pw, const gid_t *groups, int n, const struct stat *st,
                  unsigned bit)
{
    int i;

    if (pw->pw_uid == 0)
        return 1;
    if (st->st_uid == pw->pw_uid)
        return ((st->st_mode >> 6) & bit) != 0;
    for (i = 0; i < n; i++)
        if (groups[i] == st->st_gid)
            return ((st->st_mode >> 3) & bit) != 0;
    return (st->st_mode & bit) != 0;
}

static void describe(const struct stat *st, char *out, size_t size)
{
    struct passwd *u = getpwuid(st->st_uid);
    struct group *g = getgrgid(st->st_gid);
    char uid[16], gid[16];

    snprintf(uid, sizeof(uid), "%ld", (long)st->st_uid);
    snprintf(gid, sizeof(gid), "%ld", (long)st->st_gid);
    snprintf(out, size, "%s:%s %04o", u ? u->pw_name : uid, g ? g->gr_name : gid,
             (unsigned)(st->st_mode & 07777));
}

/* Why pw cannot open path as Tomcat would (a directory above it, or the file), or 0. */
static int unreadable(const struct passwd *pw, const char *path, char *why, size_t size)
{
    gid_t groups[256];
    int n = 256;
    char walk[4200], *p, mode[160];
    struct stat st;

    if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) < 0)
        n = 0;
    snprintf(walk, sizeof(walk), "%s", path);
    for (p = walk; (p = strchr(p + 1, '/')) != NULL; *p = '/') {
        *p = '\0';
        if (stat(walk, &st) == 0 && !grants(pw, groups, n, &st, 1)) {
            describe(&st, mode, sizeof(mode));
            snprintf(why, size, "cannot enter the directory '%s' (%s)", walk, mode);
            return 2;
        }
    }
    if (stat(path, &st) < 0 || grants(pw, groups, n, &st, 4))
        return 0;
    describe(&st, mode, sizeof(mode));
    snprintf(why, size, "cannot read '%s' (%s)", path, mode);
    return 1;
}

/* A warning for each of the keystore and its password file that Tomcat's user cannot read. */
static void warn_unreadable(const options *o, const char *pwpath)
{
    const char *name = o->tomcat_user ? o->tomcat_user : "tomcat";
    const char *paths[] = {o->keystore, pwpath};
    struct passwd *pw = getpwnam(name);
    char why[4600];
    size_t i;

    if (pw == NULL) {
        if (o->tomcat_user)
            fprintf(stderr, "certsync-tomcat: warning: --tomcat-user: no user '%s' here\n", name);
        return;
    }
    for (i = 0; i < 2; i++) {
        int what = unreadable(pw, paths[i], why, sizeof(why));

        if (what == 1)
            fprintf(stderr,
                    "certsync-tomcat: warning: Tomcat's user '%s' %s: Tomcat will fail to load "
                    "it (FileNotFoundException: Permission denied); give --group %s (0640), or "
                    "chgrp and chmod it so that '%s' can read it\n",
                    name, why, name, name);
        else if (what == 2) {
            /* the keystore and its password file are in the same directory: said once */
            fprintf(stderr,
                    "certsync-tomcat: warning: Tomcat's user '%s' %s, above '%s': Tomcat will "
                    "fail to load the keystore; keep it where '%s' can reach it\n",
                    name, why, paths[i], name);
            break;
        }
    }
}

/* Config, store and keystore password; --print-config; the checks before anything is written. */
static int run(options *o)
{
    char *pw = NULL, *user = NULL, *pass = NULL, pwpath[4200];
    cs_config *c = NULL;
    cs_store *s = NULL;
    struct stat st;
    int rc = EXIT_FAILURE, have_old;

    if (cs_config_load(o->config, &c) != CS_OK || cs_store_open_config(c, &s) != CS_OK ||
        open_keystore_dir(o) != CS_OK || keystore_stat(o, &st, &have_old) != CS_OK ||
        keystore_password(o, &pw, pwpath, sizeof(pwpath)) != CS_OK) {
        fprintf(stderr, "certsync-tomcat: %s\n", cs_error_last());
        goto done;
    }
    if (o->print_config) {
        print_config(o, pwpath);
        warn_unreadable(o, pwpath);
        rc = 0;
        goto done;
    }
    remove_stale_temps(o);
    if (!o->jks && !ascii_only(pw)) {
        fprintf(stderr,
                "certsync-tomcat: the password in '%s' has non-ASCII characters, and Java 17 "
                "cannot open a PKCS#12 keystore with such a password; use --type jks or an "
                "ASCII password\n",
                pwpath);
        goto done;
    }
    /* credentials are checked before anything is written */
    if (o->reload_url && read_credentials(o->credentials, &user, &pass) != CS_OK)
        fprintf(stderr, "certsync-tomcat: %s; nothing written\n", cs_error_last());
    else
        rc = update(o, s, pw, user, pass);
    warn_unreadable(o, pwpath);
done:
    cs_password_free(pw);
    cs_password_free(pass);
    free(user);
    cs_store_free(s);
    cs_config_free(c);
    if (o->dirfd >= 0)
        close(o->dirfd);
    return rc;
}

int main(int argc, char **argv)
{
    options o;
    int rc;

    no_core_dumps();
    umask(077);
    /* a connector that closes during the --probe handshake is an error, not a death */
    signal(SIGPIPE, SIG_IGN);
    /* under systemd (ExecStartPre), lines carry their syslog priority as certsync's do */
    cli_log_init();
    if ((rc = parse_args(argc, argv, &o)) != CLI_CONTINUE)
        return rc;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = run(&o);
    curl_global_cleanup();
    return rc;
}
