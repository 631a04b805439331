/*
 * certsync: run as the store's user.
 *
 * A store that server workers write themselves (in-server sync) belongs to
 * their user ([store] owner). A root process that works on such a store
 * becomes that user first, for good: whatever the workers planted in it is
 * then opened with the workers' rights, never with root's.
 */
#ifndef CS_OWNER_H
#define CS_OWNER_H

#include "cs_config.h"
#include "cs_error.h"

/*
 * When running as root and [store] owner names a user: create the store
 * directory for that user if it is missing, then drop to its uid, gid and
 * groups (setresgid, setresuid: no way back). Nothing to do otherwise.
 */
cs_rc cs_owner_become(const cs_config *c);

#endif
