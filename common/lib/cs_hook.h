/*
 * certsync: the on-change command of a managed certificate (certbot's
 * deploy-hook habit): run after a new version became current, so that
 * servers without a module reload, or a Tomcat keystore is regenerated.
 *
 * The command is split into words here (whitespace; '...' and "..." quote)
 * and executed directly: no shell ever sees it. It gets CERTSYNC_NAME,
 * CERTSYNC_VERSION, CERTSYNC_DIR (the version's directory) and
 * CERTSYNC_CONFIG in its environment.
 */
#ifndef CS_HOOK_H
#define CS_HOOK_H

#include "cs_error.h"

/* Split cmd into a NULL-terminated malloc'd argv (free with cs_strv_free). */
cs_rc cs_argv_split(const char *cmd, char ***argv);

/* How many lines of the command's stderr status keeps. */
#define CS_HOOK_TAIL_LINES 5

/* What became of one run. */
typedef struct {
    char command[128]; /* argv[0]'s base name: never its arguments (they may hold a secret) */
    int exit_status;   /* as $? in a shell: 128+N after signal N, 127 not run, -1 unknown */
    char tail[1024];   /* the last lines of its stderr, trimmed (also passed on to ours) */
} cs_hook_result;

/*
 * Run cmd and wait for it (killed after timeout_s); non-zero exit is an
 * error that quotes the end of its stderr. res (may be NULL) says what became of it.
 */
cs_rc cs_hook_run(const char *cmd, const char *name, unsigned version, const char *version_dir,
                  const char *config_path, int timeout_s, cs_hook_result *res);

/*
 * The same for any command: args (NULL-terminated, or NULL) appended to its
 * words, vars ("NAME=value") added to the minimal environment; what names it
 * in errors ("[cert shop] dns hook").
 */
cs_rc cs_hook_exec(const char *cmd, const char *const *args, const char *const *vars,
                   const char *what, int timeout_s, cs_hook_result *res);

#endif
