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

/* Run cmd and wait for it (killed after timeout_s); non-zero exit is an error. */
cs_rc cs_hook_run(const char *cmd, const char *name, unsigned version, const char *version_dir,
                  const char *config_path, int timeout_s);

#endif
