/*
 * certsync: can a server's worker user run the in-server sync?
 *
 * certsync_sync on (nginx) and CertSyncSync on (Apache) run the core's sync in
 * the worker processes, as the worker user (nginx's `user`, Apache's User).
 * That user must read certsync.conf and the credentials files, own and write
 * the store, take the local CA's lock and read its keys, and run the on-change
 * commands. The modules ask this at configuration time, so that `nginx -t` and
 * `apachectl -t` fail with what is missing instead of a sync that fails every
 * hour in the error log.
 */
#ifndef CS_SYNC_ACCESS_H
#define CS_SYNC_ACCESS_H

#include <sys/types.h>

#include "cs_config.h"
#include "cs_error.h"

/*
 * Check, as user (uid, gid and the user's groups), everything an in-server
 * sync of c touches. Run as root, a child process becomes that user for the
 * check (the caller's rights never change); otherwise the check runs as the
 * caller. Nothing is created or written. CS_OK, or CS_EPERM with one message
 * that names, for each problem, the path, the errno text, the user and what
 * to do. Call it from a single-threaded process (a server's configuration
 * phase).
 */
cs_rc cs_sync_access_check(const cs_config *c, const char *user, uid_t uid, gid_t gid);

#endif
