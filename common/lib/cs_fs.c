#include "cs_fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
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

cs_rc cs_fs_read(const char *path, size_t max, char **data, size_t *len)
{
    struct stat st;
    char *buf;
    size_t got = 0;
    ssize_t n;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cs_error_set(errno == ENOENT ? CS_ENOTFOUND : CS_EIO, "cannot open '%s': %s", path,
                            strerror(errno));
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return cs_error_set(CS_EIO, "'%s' is not a regular file", path);
    }
    if ((size_t)st.st_size > max) {
        close(fd);
        return cs_error_set(CS_EINVAL, "'%s' is %lld bytes, more than the %zu allowed", path,
                            (long long)st.st_size, max);
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        close(fd);
        return cs_error_set(CS_ENOMEM, "out of memory reading '%s'", path);
    }
    while (got < (size_t)st.st_size) {
        n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (got != (size_t)st.st_size) {
        free(buf);
        return cs_error_set(CS_EIO, "short read on '%s'", path);
    }
    buf[got] = '\0';
    *data = buf;
    if (len)
        *len = got;
    return CS_OK;
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
    char child[4096];
    struct dirent *de;
    struct stat st;
    DIR *d;

    if (lstat(path, &st) < 0)
        return errno == ENOENT
                   ? CS_OK
                   : cs_error_set(CS_EIO, "cannot stat '%s': %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode)) {
        if (unlink(path) < 0)
            return cs_error_set(CS_EIO, "cannot remove '%s': %s", path, strerror(errno));
        return CS_OK;
    }
    d = opendir(path);
    if (d == NULL)
        return cs_error_set(CS_EIO, "cannot open directory '%s': %s", path, strerror(errno));
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (cs_fs_join(child, sizeof(child), path, de->d_name) != CS_OK ||
            cs_fs_remove_tree(child) != CS_OK) {
            closedir(d);
            return cs_error_code();
        }
    }
    closedir(d);
    if (rmdir(path) < 0)
        return cs_error_set(CS_EIO, "cannot remove directory '%s': %s", path, strerror(errno));
    return CS_OK;
}
