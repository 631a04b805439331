#include "cs_fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

cs_rc cs_fs_join(char *buf, size_t size, const char *a, const char *b)
{
    int n = snprintf(buf, size, "%s/%s", a, b);

    if (n < 0 || (size_t)n >= size)
        return cs_error_set(CS_EINVAL, "path '%s/%s' is too long", a, b);
    return CS_OK;
}

/* Read the whole regular file fd (taken over and closed) into a NUL-terminated buffer. */
static cs_rc read_whole(int fd, const char *name, size_t max, char **data, size_t *len)
{
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    ssize_t n;
    cs_rc rc = CS_OK;

    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        rc = cs_error_set(CS_EIO, "'%s' is not a regular file", name);
    else if ((size_t)st.st_size > max)
        rc = cs_error_set(CS_EINVAL, "'%s' is %lld bytes, more than the %zu allowed", name,
                          (long long)st.st_size, max);
    else if ((buf = malloc((size_t)st.st_size + 1)) == NULL)
        rc = cs_error_set(CS_ENOMEM, "out of memory reading '%s'", name);
    while (rc == CS_OK && got < (size_t)st.st_size) {
        n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            rc = cs_error_set(CS_EIO, "short read on '%s'", name);
        else
            got += (size_t)n;
    }
    close(fd);
    if (rc != CS_OK) {
        free(buf);
        return rc;
    }
    buf[got] = '\0';
    *data = buf;
    if (len)
        *len = got;
    return CS_OK;
}

cs_rc cs_fs_read(const char *path, size_t max, char **data, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

    if (fd < 0)
        return cs_error_set(errno == ENOENT ? CS_ENOTFOUND : CS_EIO, "cannot open '%s': %s", path,
                            strerror(errno));
    return read_whole(fd, path, max, data, len);
}

static cs_rc write_all_sync(int fd, const char *path, const void *data, size_t len)
{
    const char *p = data;
    ssize_t n;

    while (len > 0) {
        n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return cs_error_set(CS_EIO, "cannot write '%s': %s", path, strerror(errno));
        p += n;
        len -= (size_t)n;
    }
    if (fsync(fd) < 0)
        return cs_error_set(CS_EIO, "cannot fsync '%s': %s", path, strerror(errno));
    return CS_OK;
}

cs_rc cs_fs_write_new(const char *path, const void *data, size_t len, mode_t mode)
{
    cs_rc rc;
    int fd;

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return cs_error_set(CS_EIO, "cannot create '%s': %s", path, strerror(errno));
    /* The umask may have narrowed the mode; secrets must be exactly 0600. */
    if (fchmod(fd, mode) < 0) {
        close(fd);
        return cs_error_set(CS_EIO, "cannot chmod '%s': %s", path, strerror(errno));
    }
    rc = write_all_sync(fd, path, data, len);
    if (close(fd) < 0 && rc == CS_OK)
        rc = cs_error_set(CS_EIO, "cannot close '%s': %s", path, strerror(errno));
    return rc;
}

cs_rc cs_fs_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0)
        return cs_error_set(CS_EIO, "cannot open directory '%s': %s", dir, strerror(errno));
    if (fsync(fd) < 0 && errno != EINVAL) {
        close(fd);
        return cs_error_set(CS_EIO, "cannot fsync directory '%s': %s", dir, strerror(errno));
    }
    close(fd);
    return CS_OK;
}

static cs_rc write_plain(const char *path, const void *data, size_t len, mode_t mode)
{
    const char *p = data;
    ssize_t n;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);

    if (fd < 0)
        return cs_error_set(CS_EIO, "cannot create '%s': %s", path, strerror(errno));
    while (len > 0) {
        n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            close(fd);
            return cs_error_set(CS_EIO, "cannot write '%s': %s", path, strerror(errno));
        }
        p += n;
        len -= (size_t)n;
    }
    if (fchmod(fd, mode) < 0 || close(fd) < 0)
        return cs_error_set(CS_EIO, "cannot finish '%s': %s", path, strerror(errno));
    return CS_OK;
}

cs_rc cs_fs_replace(const char *path, const void *data, size_t len, mode_t mode)
{
    char tmp[4096];
    cs_rc rc;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", path, (long)getpid()) >= (int)sizeof(tmp))
        return cs_error_set(CS_EINVAL, "path '%s' is too long", path);
    unlink(tmp);
    rc = write_plain(tmp, data, len, mode);
    if (rc == CS_OK && rename(tmp, path) < 0)
        rc = cs_error_set(CS_EIO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
    if (rc != CS_OK)
        unlink(tmp);
    return rc;
}

cs_rc cs_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    char tmp[4096], dir[4096];
    cs_rc rc;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", path, (long)getpid()) >= (int)sizeof(tmp))
        return cs_error_set(CS_EINVAL, "path '%s' is too long", path);
    unlink(tmp);
    rc = cs_fs_write_new(tmp, data, len, mode);
    if (rc != CS_OK) {
        unlink(tmp);
        return rc;
    }
    if (rename(tmp, path) < 0) {
        rc = cs_error_set(CS_EIO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        unlink(tmp);
        return rc;
    }
    snprintf(dir, sizeof(dir), "%s", path);
    return cs_fs_sync_dir(dirname(dir));
}

cs_rc cs_fs_mkdirs(const char *path, mode_t mode)
{
    char buf[4096];
    size_t i, n = strlen(path);

    if (n == 0 || n >= sizeof(buf))
        return cs_error_set(CS_EINVAL, "bad directory path '%s'", path);
    memcpy(buf, path, n + 1);
    for (i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        buf[i] = '\0';
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
            return cs_error_set(CS_EIO, "cannot create directory '%s': %s", buf, strerror(errno));
        buf[i] = i == n ? '\0' : '/';
    }
    return CS_OK;
}

cs_rc cs_fs_remove_tree(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    int dfd;
    cs_rc rc;

    if (slash == NULL)
        return cs_fs_remove_at(AT_FDCWD, path);
    if ((size_t)(slash - path) >= sizeof(dir))
        return cs_error_set(CS_EINVAL, "path '%s' is too long", path);
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = '\0';
    dfd = open(dir[0] ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return errno == ENOENT ? CS_OK
                               : cs_error_set(CS_EIO, "cannot open '%s': %s", dir, strerror(errno));
    rc = cs_fs_remove_at(dfd, slash + 1);
    close(dfd);
    return rc;
}

/* ---- store files, relative to verified directory descriptors ---- */

static const char *user_name(uid_t uid, char *buf, size_t size)
{
    struct passwd pwd, *pw = NULL;
    char tmp[1024];

    getpwuid_r(uid, &pwd, tmp, sizeof(tmp), &pw);
    snprintf(buf, size, "%s", pw ? pw->pw_name : "?");
    return buf;
}

static cs_rc check_owner(const struct stat *st, const char *name, uid_t owner)
{
    char a[256], b[256];

    if (owner != (uid_t)-1 && st->st_uid != owner)
        return cs_error_set(CS_EPERM,
                            "'%s' belongs to %s (uid %ld), not to the store's user %s (uid %ld): "
                            "refused; remove it, or chown it if it is yours",
                            name, user_name(st->st_uid, a, sizeof(a)), (long)st->st_uid,
                            user_name(owner, b, sizeof(b)), (long)owner);
    return CS_OK;
}

static cs_rc check_dir(int fd, const char *name, uid_t owner)
{
    struct stat st;

    if (fstat(fd, &st) < 0)
        return cs_error_set(CS_EIO, "cannot stat '%s': %s", name, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return cs_error_set(CS_EPERM, "'%s' is not a directory", name);
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return cs_error_set(CS_EPERM,
                            "'%s' is writable by its group or by others (mode %04o): refused; "
                            "chmod go-w it",
                            name, (unsigned)(st.st_mode & 07777));
    return check_owner(&st, name, owner);
}

static cs_rc open_error(const char *name, int err, const char *what)
{
    if (err == ENOENT)
        return cs_error_set(CS_ENOTFOUND, "'%s' does not exist", name);
    if (err == ELOOP || err == ENOTDIR)
        return cs_error_set(CS_EPERM, "'%s' is a symbolic link or not a %s: refused", name, what);
    return cs_error_set(CS_EIO, "cannot open '%s': %s", name, strerror(err));
}

cs_rc cs_fs_dir_openat(int dirfd, const char *name, uid_t owner, int *fd)
{
    int f = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    if (f < 0)
        return open_error(name, errno, "directory");
    if (check_dir(f, name, owner) != CS_OK) {
        close(f);
        return cs_error_code();
    }
    *fd = f;
    return CS_OK;
}

cs_rc cs_fs_dir_open(const char *path, uid_t owner, int *fd)
{
    return cs_fs_dir_openat(AT_FDCWD, path, owner, fd);
}

cs_rc cs_fs_dir_makeat(int dirfd, const char *name, mode_t mode, gid_t gid, uid_t owner, int *fd)
{
    int created = mkdirat(dirfd, name, 0700) == 0;

    if (!created && errno != EEXIST)
        return cs_error_set(CS_EIO, "cannot create directory '%s': %s", name, strerror(errno));
    if (cs_fs_dir_openat(dirfd, name, owner, fd) != CS_OK)
        return cs_error_code();
    /* on the descriptor: the entry may have been swapped since mkdirat */
    if ((created && gid != (gid_t)-1 && fchown(*fd, (uid_t)-1, gid) < 0) || fchmod(*fd, mode) < 0) {
        cs_error_set(CS_EIO, "cannot set the mode of '%s': %s", name, strerror(errno));
        close(*fd);
        return CS_EIO;
    }
    return CS_OK;
}

cs_rc cs_fs_open_at(int dirfd, const char *name, uid_t owner, int *fd)
{
    struct stat st;
    int f = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);

    if (f < 0)
        return open_error(name, errno, "file");
    if (fstat(f, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(f);
        return cs_error_set(CS_EPERM, "'%s' is not a regular file: refused", name);
    }
    if (check_owner(&st, name, owner) != CS_OK) {
        close(f);
        return cs_error_code();
    }
    *fd = f;
    return CS_OK;
}

cs_rc cs_fs_read_at(int dirfd, const char *name, size_t max, uid_t owner, char **data, size_t *len)
{
    int fd;

    if (cs_fs_open_at(dirfd, name, owner, &fd) != CS_OK)
        return cs_error_code();
    return read_whole(fd, name, max, data, len);
}

cs_rc cs_fs_write_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
                     gid_t gid, int flags)
{
    const char *p = data;
    char tmp[300];
    ssize_t n;
    int fd;
    cs_rc rc = CS_OK;

    if ((size_t)snprintf(tmp, sizeof(tmp), ".%s.tmp-%ld", name, (long)getpid()) >= sizeof(tmp))
        return cs_error_set(CS_EINVAL, "file name '%s' is too long", name);
    unlinkat(dirfd, tmp, 0);
    fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return cs_error_set(CS_EIO, "cannot create '%s': %s", tmp, strerror(errno));
    for (; len > 0 && rc == CS_OK; p += n, len -= (size_t)n) {
        n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            n = 0;
        else if (n < 0)
            rc = cs_error_set(CS_EIO, "cannot write '%s': %s", name, strerror(errno));
    }
    if (rc == CS_OK &&
        ((gid != (gid_t)-1 && fchown(fd, (uid_t)-1, gid) < 0) || fchmod(fd, mode) < 0))
        rc = cs_error_set(CS_EIO, "cannot set the mode of '%s': %s", name, strerror(errno));
    if (rc == CS_OK && (flags & CS_FS_SYNC) && fsync(fd) < 0)
        rc = cs_error_set(CS_EIO, "cannot fsync '%s': %s", name, strerror(errno));
    if (close(fd) < 0 && rc == CS_OK)
        rc = cs_error_set(CS_EIO, "cannot write '%s': %s", name, strerror(errno));
    if (rc == CS_OK && renameat(dirfd, tmp, dirfd, name) < 0)
        rc = cs_error_set(CS_EIO, "cannot rename '%s' to '%s': %s", tmp, name, strerror(errno));
    if (rc != CS_OK) {
        unlinkat(dirfd, tmp, 0);
        return rc;
    }
    if ((flags & CS_FS_SYNC) && fsync(dirfd) < 0 && errno != EINVAL)
        return cs_error_set(CS_EIO, "cannot fsync the directory of '%s': %s", name,
                            strerror(errno));
    return CS_OK;
}

cs_rc cs_fs_overwrite_at(int dirfd, const char *name, const void *data, size_t len, uid_t owner)
{
    struct stat st;
    int fd = openat(dirfd, name, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    cs_rc rc = CS_OK;

    if (fd < 0)
        return open_error(name, errno, "file");
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        rc = cs_error_set(CS_EPERM, "'%s' is not a regular file: refused", name);
    else if ((rc = check_owner(&st, name, owner)) == CS_OK &&
             (ftruncate(fd, 0) < 0 || pwrite(fd, data, len, 0) != (ssize_t)len))
        rc = cs_error_set(CS_EIO, "cannot rewrite '%s': %s", name, strerror(errno));
    close(fd);
    return rc;
}

cs_rc cs_fs_set_mode_at(int dirfd, const char *name, mode_t mode, gid_t gid)
{
    struct stat st;
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    cs_rc rc = CS_OK;

    if (fd < 0)
        return open_error(name, errno, "file");
    if (fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)))
        rc = cs_error_set(CS_EPERM, "'%s' is not a regular file or directory: refused", name);
    else if ((gid != (gid_t)-1 && fchown(fd, (uid_t)-1, gid) < 0) || fchmod(fd, mode) < 0)
        rc = cs_error_set(CS_EIO, "cannot set the mode of '%s': %s", name, strerror(errno));
    close(fd);
    return rc;
}

/* Empty the directory fd (taken over and closed): entries are never followed. */
static cs_rc empty_dir(int fd, const char *name)
{
    struct dirent *de;
    DIR *d = fdopendir(fd);
    cs_rc rc = CS_OK;

    if (d == NULL) {
        close(fd);
        return cs_error_set(CS_EIO, "cannot list '%s': %s", name, strerror(errno));
    }
    while (rc == CS_OK && (de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            rc = cs_fs_remove_at(dirfd(d), de->d_name);
    closedir(d);
    return rc;
}

cs_rc cs_fs_remove_at(int dirfd, const char *name)
{
    int fd;

    if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
        return CS_OK;
    if (errno != EISDIR && errno != EPERM)
        return cs_error_set(CS_EIO, "cannot remove '%s': %s", name, strerror(errno));
    /* a directory: O_NOFOLLOW, so a symlink swapped in now is never entered */
    fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? CS_OK : open_error(name, errno, "directory");
    if (empty_dir(fd, name) != CS_OK)
        return cs_error_code();
    if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        return cs_error_set(CS_EIO, "cannot remove directory '%s': %s", name, strerror(errno));
    return CS_OK;
}

cs_rc cs_fs_dir_enterat(int dirfd, const char *name, mode_t mode, int *fd)
{
    int f;

    if (mkdirat(dirfd, name, mode) < 0 && errno != EEXIST)
        return cs_error_set(CS_EIO, "cannot create directory '%s': %s", name, strerror(errno));
    f = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (f < 0)
        return open_error(name, errno, "directory");
    *fd = f;
    return CS_OK;
}
