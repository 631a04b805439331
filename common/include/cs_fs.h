/*
 * certsync: file helpers that keep what is on disk whole.
 *
 * Writes go to a temp file in the same directory, are fsynced, renamed over
 * the target and the directory is fsynced, so a crash leaves the old file or
 * the new one, never a torn one.
 */
#ifndef CS_FS_H
#define CS_FS_H

#include <stddef.h>
#include <sys/types.h>

#include "cs_error.h"

/* Read a whole file (at most max bytes) into a NUL-terminated malloc'd buffer. */
cs_rc cs_fs_read(const char *path, size_t max, char **data, size_t *len);

/* Write a file atomically with the given mode (temp, fsync, rename, fsync dir). */
cs_rc cs_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/*
 * The same, atomic (readers see old or new) but not fsynced: for state that
 * may be lost in a crash without harm (the last sync's result).
 */
cs_rc cs_fs_replace(const char *path, const void *data, size_t len, mode_t mode);

/* Create path (not atomically) with mode, write all of data and fsync it. */
cs_rc cs_fs_write_new(const char *path, const void *data, size_t len, mode_t mode);

/* fsync a directory so that entries created or renamed in it are durable. */
cs_rc cs_fs_sync_dir(const char *dir);

/* mkdir -p with mode for every directory created; existing ones are kept. */
cs_rc cs_fs_mkdirs(const char *path, mode_t mode);

/* Remove a directory tree (used for versions past retention and temp dirs). */
cs_rc cs_fs_remove_tree(const char *path);

/* Join two path parts into buf; fails if it does not fit. */
cs_rc cs_fs_join(char *buf, size_t size, const char *a, const char *b);

#endif
