#include "cs_hook.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cs_bundle.h"

cs_rc cs_argv_split(const char *cmd, char ***argv)
{
    size_t n = 0, len = strlen(cmd);
    char **v = calloc(len / 2 + 2, sizeof(char *));
    char *word = malloc(len + 1);
    const char *p = cmd;

    if (v == NULL || word == NULL) {
        free(v);
        free(word);
        return cs_error_set(CS_ENOMEM, "out of memory");
    }
    while (*p) {
        size_t w = 0;
        char quote = 0;

        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            break;
        while (*p && (quote || (*p != ' ' && *p != '\t'))) {
            if (quote && *p == quote)
                quote = 0;
            else if (!quote && (*p == '\'' || *p == '"'))
                quote = *p;
            else
                word[w++] = *p;
            p++;
        }
        if (quote) {
            free(word);
            cs_strv_free(v);
            return cs_error_set(CS_EINVAL, "the command '%s' has an unclosed %c quote", cmd, quote);
        }
        /* a word lost would run the command with an argument missing */
        if ((v[n++] = strndup(word, w)) == NULL) {
            free(word);
            cs_strv_free(v);
            return cs_error_set(CS_ENOMEM, "out of memory splitting the command '%s'", cmd);
        }
    }
    free(word);
    if (n == 0) {
        free(v);
        return cs_error_set(CS_EINVAL, "the command is empty");
    }
    *argv = v;
    return CS_OK;
}

/* What a hook may see of ours: never the credentials. */
#define CS_HOOK_PATH "/usr/sbin:/usr/bin:/sbin:/bin"

static const char *const hook_passed[] = {"LANG", "LC_ALL", "TZ", NULL};

static int env_add(char **env, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int env_add(char **env, size_t *n, const char *fmt, ...)
{
    va_list ap;
    int r;

    va_start(ap, fmt);
    r = vasprintf(&env[*n], fmt, ap);
    va_end(ap);
    if (r < 0) {
        env[*n] = NULL;
        return -1;
    }
    (*n)++;
    return 0;
}

/*
 * A minimal environment: PATH (the caller's, else a safe default), LANG,
 * LC_ALL and TZ when set, and vars ("NAME=value", NULL-terminated).
 */
static char **hook_env(const char *const *vars)
{
    const char *path = getenv("PATH");
    size_t n = 0, i, nv = 0;
    char **env;
    int bad;

    while (vars && vars[nv])
        nv++;
    if ((env = calloc(nv + 5, sizeof(char *))) == NULL)
        return NULL;
    bad = env_add(env, &n, "PATH=%s", path && *path ? path : CS_HOOK_PATH);
    for (i = 0; hook_passed[i] && !bad; i++)
        if (getenv(hook_passed[i]))
            bad = env_add(env, &n, "%s=%s", hook_passed[i], getenv(hook_passed[i]));
    for (i = 0; i < nv && !bad; i++)
        bad = env_add(env, &n, "%s", vars[i]);
    if (bad) {
        cs_strv_free(env);
        return NULL;
    }
    return env;
}

/* What the hook wrote to stderr: passed on to ours, and its end kept for status. */
typedef struct {
    char buf[4096];
    size_t len;
} hook_stderr;

static void stderr_take(hook_stderr *e, int fd)
{
    char chunk[1024];
    ssize_t n;

    while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
        /* the server's error log (or the CLI's stderr, with its journal priority) shows all */
        fwrite(chunk, 1, (size_t)n, stderr);
        fflush(stderr);
        /* keep the end: drop the oldest bytes (a chunk is smaller than the buffer) */
        if (e->len + (size_t)n > sizeof(e->buf)) {
            size_t drop = e->len + (size_t)n - sizeof(e->buf);

            memmove(e->buf, e->buf + drop, e->len - drop);
            e->len -= drop;
        }
        memcpy(e->buf + e->len, chunk, (size_t)n);
        e->len += (size_t)n;
    }
}

/* The last CS_HOOK_TAIL_LINES lines of what the hook wrote, trimmed, control characters as '?'. */
static void stderr_tail(const hook_stderr *e, char *out, size_t size)
{
    size_t end = e->len, start, lines = 0, i, k = 0;

    while (end > 0 && isspace((unsigned char)e->buf[end - 1]))
        end--;
    for (start = end; start > 0; start--)
        if (e->buf[start - 1] == '\n' && ++lines == CS_HOOK_TAIL_LINES)
            break;
    while (start < end && isspace((unsigned char)e->buf[start]))
        start++;
    if (end - start >= size)
        start = end - (size - 1);
    for (i = start; i < end && k + 1 < size; i++) {
        unsigned char ch = (unsigned char)e->buf[i];

        out[k++] = ch == '\n' || ch >= 0x20 ? (ch == 0x7f ? '?' : (char)ch) : '?';
    }
    out[k] = '\0';
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Wait for pid (killed after timeout_s), passing its stderr on; *status its wait status. */
static cs_rc hook_wait(pid_t pid, int errfd, const char *what, const char *prog, int timeout_s,
                       int *status, hook_stderr *e)
{
    double deadline = now_s() + timeout_s;
    struct pollfd p = {errfd, POLLIN, 0};

    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);

        if (r == pid)
            break;
        if (r < 0) {
            /* the host process (an nginx worker) reaped it itself: the exit status is gone */
            if (errno == ECHILD) {
                *status = -1;
                break;
            }
            return cs_error_set(CS_ERR, "%s: cannot wait for '%s': %s", what, prog,
                                strerror(errno));
        }
        if (now_s() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, status, 0);
            stderr_take(e, errfd);
            return cs_error_set(CS_ERR, "%s: '%s' did not finish within %d s", what, prog,
                                timeout_s);
        }
        if (poll(&p, 1, 50) > 0)
            stderr_take(e, errfd);
    }
    stderr_take(e, errfd);
    return CS_OK;
}

/* posix_spawn with the hook's stderr into a pipe whose read end is *errfd (non-blocking). */
static int hook_spawn(pid_t *pid, char **argv, char **env, int *errfd)
{
    posix_spawn_file_actions_t fa;
    int p[2], err;

    if (pipe2(p, O_CLOEXEC) < 0)
        return errno;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], STDERR_FILENO);
    err = posix_spawn(pid, argv[0], &fa, NULL, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    if (err != 0) {
        close(p[0]);
        return err;
    }
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    *errfd = p[0];
    return 0;
}

/* The tail on one line, for an error message: its lines joined by " | ". */
static const char *one_line(const char *tail, char *buf, size_t size)
{
    size_t k = 0;

    for (; *tail && k + 4 < size; tail++)
        if (*tail == '\n')
            k += (size_t)snprintf(buf + k, size - k, " | ");
        else
            buf[k++] = *tail;
    buf[k] = '\0';
    return buf;
}

/* The exit status as a shell gives it ($?: 128+N after signal N), and its error. */
static cs_rc hook_verdict(int status, const char *what, const char *prog, cs_hook_result *res)
{
    char said[1200];

    if (status == -1)
        return CS_OK; /* reaped by the host: nothing is known, nothing is pending */
    res->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        return cs_error_set(CS_ERR, "%s: '%s' exited with status %d%s%s", what, prog,
                            WEXITSTATUS(status), res->tail[0] ? ": " : "",
                            one_line(res->tail, said, sizeof(said)));
    if (WIFSIGNALED(status))
        return cs_error_set(CS_ERR, "%s: '%s' was killed by signal %d%s%s", what, prog,
                            WTERMSIG(status), res->tail[0] ? ": " : "",
                            one_line(res->tail, said, sizeof(said)));
    return CS_OK;
}

/* cmd's words, then args (NULL-terminated, may be NULL). */
static cs_rc hook_argv(const char *cmd, const char *const *args, char ***argv)
{
    size_t n = 0, na = 0;
    char **v;

    if (cs_argv_split(cmd, argv) != CS_OK)
        return cs_error_code();
    while ((*argv)[n])
        n++;
    while (args && args[na])
        na++;
    if (na == 0)
        return CS_OK;
    if ((v = realloc(*argv, (n + na + 1) * sizeof(char *))) == NULL)
        return cs_error_set(CS_ENOMEM, "out of memory");
    *argv = v;
    for (size_t i = 0; i < na; i++)
        if ((v[n + i] = strdup(args[i])) == NULL) {
            v[n + i] = NULL;
            return cs_error_set(CS_ENOMEM, "out of memory");
        }
    v[n + na] = NULL;
    return CS_OK;
}

cs_rc cs_hook_exec(const char *cmd, const char *const *args, const char *const *vars,
                   const char *what, int timeout_s, cs_hook_result *res)
{
    cs_hook_result mine;
    hook_stderr *e = NULL;
    char **argv = NULL, **env = NULL;
    pid_t pid;
    int status = 0, err, errfd = -1;
    cs_rc rc;

    res = res ? res : &mine;
    memset(res, 0, sizeof(*res));
    res->exit_status = 127; /* as a shell says of a command it could not run */
    if (hook_argv(cmd, args, &argv) != CS_OK) {
        cs_strv_free(argv);
        return cs_error_prefix("%s", what);
    }
    snprintf(res->command, sizeof(res->command), "%s",
             strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0]);
    env = hook_env(vars);
    e = calloc(1, sizeof(*e));
    if (env == NULL || e == NULL) {
        rc = cs_error_set(CS_ENOMEM, "%s: out of memory", what);
        goto done;
    }
    if ((err = hook_spawn(&pid, argv, env, &errfd)) != 0) {
        rc = cs_error_set(CS_ERR, "%s: cannot run '%s': %s; give the full path", what, argv[0],
                          strerror(err));
        snprintf(res->tail, sizeof(res->tail), "cannot run '%s': %s", argv[0], strerror(err));
        goto done;
    }
    rc = hook_wait(pid, errfd, what, argv[0], timeout_s, &status, e);
    stderr_tail(e, res->tail, sizeof(res->tail));
    if (rc == CS_OK)
        rc = hook_verdict(status, what, argv[0], res);
    else if (WIFSIGNALED(status))
        res->exit_status = 128 + WTERMSIG(status);
    else
        res->exit_status = -1;
done:
    if (errfd >= 0)
        close(errfd);
    free(e);
    cs_strv_free(argv);
    cs_strv_free(env);
    return rc;
}

cs_rc cs_hook_run(const char *cmd, const char *name, unsigned version, const char *version_dir,
                  const char *config_path, int timeout_s, cs_hook_result *res)
{
    char *vars[5] = {NULL}, what[96];
    cs_rc rc;

    snprintf(what, sizeof(what), "[cert %s] on-change", name);
    if (asprintf(&vars[0], "CERTSYNC_NAME=%s", name) < 0 ||
        asprintf(&vars[1], "CERTSYNC_VERSION=%u", version) < 0 ||
        asprintf(&vars[2], "CERTSYNC_DIR=%s", version_dir) < 0 ||
        asprintf(&vars[3], "CERTSYNC_CONFIG=%s", config_path ? config_path : "") < 0) {
        for (size_t i = 0; i < 4; i++)
            free(vars[i]);
        return cs_error_set(CS_ENOMEM, "%s: out of memory", what);
    }
    rc = cs_hook_exec(cmd, NULL, (const char *const *)vars, what, timeout_s, res);
    for (size_t i = 0; i < 4; i++)
        free(vars[i]);
    return rc;
}
