#include "fuzz_util.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sys/stat.h>

#include "cs_error.h"
#include "cs_fs.h"

int fuzz_memfd(const char *name)
{
    int fd = memfd_create(name, MFD_CLOEXEC);

    if (fd < 0)
        fuzz_fail("memfd_create: %m");
    /* a memfd is 0777; configuration and secret files must not be writable by others */
    if (fchmod(fd, 0600) < 0)
        fuzz_fail("fchmod: %m");
    return fd;
}

const char *fuzz_fd_path(int fd, char *buf, size_t size)
{
    snprintf(buf, size, "/proc/self/fd/%d", fd);
    return buf;
}

void fuzz_fd_set(int fd, const void *data, size_t len)
{
    if (ftruncate(fd, 0) < 0 || (len > 0 && pwrite(fd, data, len, 0) != (ssize_t)len))
        fuzz_fail("writing the memfd: %m");
}

size_t fuzz_split(const uint8_t *data, size_t size, char **parts, size_t *lens, size_t max)
{
    const char *p = (const char *)data, *end = p + size, *s;
    size_t n = 0, seplen = strlen(FUZZ_SEP);

    while (n < max) {
        s = n + 1 < max ? memmem(p, (size_t)(end - p), FUZZ_SEP, seplen) : NULL;
        lens[n] = (size_t)((s ? s : end) - p);
        parts[n] = malloc(lens[n] + 1);
        if (parts[n] == NULL)
            fuzz_fail("out of memory");
        memcpy(parts[n], p, lens[n]);
        parts[n][lens[n]] = '\0';
        n++;
        if (s == NULL)
            break;
        p = s + seplen;
    }
    return n;
}

void fuzz_parts_free(char **parts, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(parts[i]);
}

static char tmpdir[64];

static void remove_tmpdir(void)
{
    if (tmpdir[0])
        cs_fs_remove_tree(tmpdir);
}

const char *fuzz_tmpdir(void)
{
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

    if (tmpdir[0])
        return tmpdir;
    snprintf(tmpdir, sizeof(tmpdir), "%.40s/cs-fuzz-XXXXXX", base);
    if (mkdtemp(tmpdir) == NULL)
        fuzz_fail("mkdtemp %s: %m", tmpdir);
    atexit(remove_tmpdir);
    return tmpdir;
}

void fuzz_note(const char *what, int rc)
{
    static int verbose = -1;

    if (verbose < 0)
        verbose = getenv("FUZZ_VERBOSE") && strcmp(getenv("FUZZ_VERBOSE"), "1") == 0;
    if (verbose)
        fprintf(stderr, "%s: %d %s\n", what, rc, rc ? cs_error_last() : "ok");
}

void fuzz_fail(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("certsync fuzz: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}
