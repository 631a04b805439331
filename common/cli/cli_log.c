/* certsync CLI: stdout and stderr for cron and journald (see cli_log.h). */
#include "cli_log.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A stream whose lines go to fd, each with its syslog priority in front. */
typedef struct {
    int fd;
    int is_stderr; /* <3>, or <4> for a warning; stdout's lines are <6> */
    char line[4096];
    size_t len;
} journal_line;

static journal_line *streams[2];

static int priority_of(const journal_line *j)
{
    if (!j->is_stderr)
        return 6;
    return memmem(j->line, j->len, "warning:", 8) ? 4 : 3;
}

static void write_all(int fd, const char *p, size_t n)
{
    ssize_t w;

    while (n > 0 && (w = write(fd, p, n)) > 0) {
        p += w;
        n -= (size_t)w;
    }
}

/* One whole line (or as much as fits the buffer) to the journal, with its priority. */
static void flush_line(journal_line *j)
{
    char prefix[4] = {'<', (char)('0' + priority_of(j)), '>', '\0'};

    if (j->len == 0)
        return;
    write_all(j->fd, prefix, 3);
    write_all(j->fd, j->line, j->len);
    j->len = 0;
}

static ssize_t journal_write(void *cookie, const char *buf, size_t size)
{
    journal_line *j = cookie;
    size_t i;

    for (i = 0; i < size; i++) {
        j->line[j->len++] = buf[i];
        if (buf[i] == '\n' || j->len == sizeof(j->line))
            flush_line(j);
    }
    return (ssize_t)size;
}

/* A last line without its newline still reaches the journal. */
static void flush_at_exit(void)
{
    for (size_t i = 0; i < 2; i++)
        if (streams[i])
            flush_line(streams[i]);
}

/* fd is the stream JOURNAL_STREAM names ("DEV:INO", systemd.exec(5)). */
static int is_journal(int fd)
{
    const char *env = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    char end;

    if (env == NULL || sscanf(env, "%llu:%llu%c", &dev, &ino, &end) != 2 || fstat(fd, &st) < 0)
        return 0;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

/* Replace *fp (fd's stream) by one that prefixes each line; unbuffered: the lines are ours. */
static void wrap(FILE **fp, int fd, int is_stderr, journal_line **slot)
{
    cookie_io_functions_t io = {.write = journal_write};
    journal_line *j = calloc(1, sizeof(*j));
    FILE *f;

    if (j == NULL)
        return;
    j->fd = fd;
    j->is_stderr = is_stderr;
    if ((f = fopencookie(j, "w", io)) == NULL) {
        free(j);
        return;
    }
    setvbuf(f, NULL, _IONBF, 0);
    fflush(*fp);
    *fp = f;
    *slot = j;
}

void cli_log_init(void)
{
    if (is_journal(STDOUT_FILENO))
        wrap(&stdout, STDOUT_FILENO, 0, &streams[0]);
    if (is_journal(STDERR_FILENO))
        wrap(&stderr, STDERR_FILENO, 1, &streams[1]);
    if (streams[0] || streams[1])
        atexit(flush_at_exit);
}

void cli_log_quiet(void)
{
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

    fflush(stdout);
    /* fd 1 itself: on-change commands inherit it, their chatter is silenced too */
    if (null >= 0) {
        dup2(null, STDOUT_FILENO);
        close(null);
    }
}

/* Commands whose output is the answer: a global --quiet does not silence it. */
static const char *const answering[] = {"status", "metrics", "list", "show", "quota", "aliyun"};
static int quiet_wanted, command_started;

void cli_log_command(const char *name)
{
    size_t i;

    command_started = 1;
    for (i = 0; i < sizeof(answering) / sizeof(answering[0]); i++)
        if (strcmp(name, answering[i]) == 0)
            return;
    if (quiet_wanted)
        cli_log_quiet();
}

cs_rc cli_set_quiet(const char *unused, void *field)
{
    (void)unused;
    (void)field;
    /* before the command: decided by cli_log_command; a command's own --quiet: now */
    if (command_started)
        cli_log_quiet();
    else
        quiet_wanted = 1;
    return CS_OK;
}
