#include "cs_hook.h"

#include <errno.h>
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
 * LC_ALL and TZ when set, and the CERTSYNC_* variables of this version.
 */
static char **hook_env(const char *name, unsigned version, const char *dir, const char *config)
{
    const char *path = getenv("PATH");
    char **env = calloc(9, sizeof(char *));
    size_t n = 0, i;
    int bad;

    if (env == NULL)
        return NULL;
    bad = env_add(env, &n, "PATH=%s", path && *path ? path : CS_HOOK_PATH);
    for (i = 0; hook_passed[i] && !bad; i++)
        if (getenv(hook_passed[i]))
            bad = env_add(env, &n, "%s=%s", hook_passed[i], getenv(hook_passed[i]));
    if (bad || env_add(env, &n, "CERTSYNC_NAME=%s", name) ||
        env_add(env, &n, "CERTSYNC_VERSION=%u", version) ||
        env_add(env, &n, "CERTSYNC_DIR=%s", dir) ||
        env_add(env, &n, "CERTSYNC_CONFIG=%s", config ? config : "")) {
        cs_strv_free(env);
        return NULL;
    }
    return env;
}

cs_rc cs_hook_run(const char *cmd, const char *name, unsigned version, const char *version_dir,
                  const char *config_path, int timeout_s)
{
    char **argv, **env;
    pid_t pid;
    int status, err, waited;
    cs_rc rc = CS_OK;

    if (cs_argv_split(cmd, &argv) != CS_OK)
        return cs_error_prefix("[cert %s] on-change", name);
    env = hook_env(name, version, version_dir, config_path);
    if (env == NULL) {
        cs_strv_free(argv);
        return cs_error_set(CS_ENOMEM, "[cert %s] on-change: out of memory", name);
    }
    err = posix_spawn(&pid, argv[0], NULL, NULL, argv, env);
    if (err != 0) {
        rc = cs_error_set(CS_ERR, "[cert %s] on-change: cannot run '%s': %s; give the full path",
                          name, argv[0], strerror(err));
        goto done;
    }
    for (waited = 0;; waited++) {
        pid_t r = waitpid(pid, &status, WNOHANG);

        if (r == pid)
            break;
        if (r < 0) {
            /* the host process (an nginx worker) reaped it itself: the exit status is gone */
            if (errno == ECHILD)
                goto done;
            rc = cs_error_set(CS_ERR, "[cert %s] on-change: cannot wait for '%s': %s", name,
                              argv[0], strerror(errno));
            goto done;
        }
        if (waited >= timeout_s * 20) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            rc = cs_error_set(CS_ERR, "[cert %s] on-change: '%s' did not finish within %d s", name,
                              argv[0], timeout_s);
            goto done;
        }
        usleep(50000);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        rc = cs_error_set(CS_ERR, "[cert %s] on-change: '%s' exited with status %d", name, argv[0],
                          WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        rc = cs_error_set(CS_ERR, "[cert %s] on-change: '%s' was killed by signal %d", name,
                          argv[0], WTERMSIG(status));
done:
    cs_strv_free(argv);
    cs_strv_free(env);
    return rc;
}
