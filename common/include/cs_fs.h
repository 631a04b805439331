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

/*
 * Store files, opened as an attacker would hope they are not.
 *
 * The web server's worker user may plant symlinks, FIFOs or hard links in
 * anything it can write. These calls work relative to a directory descriptor
 * that was itself verified, never follow a symlink in the last component,
 * never block on a FIFO, and check with fstat() that what they opened is a
 * regular file (or directory) owned by the expected user. owner (uid_t)-1
 * skips the owner check.
 */

/* Open path (a directory, not a symlink, not writable by group or others). */
cs_rc cs_fs_dir_open(const char *path, uid_t owner, int *fd);

/* The same for the entry name of dirfd. */
cs_rc cs_fs_dir_openat(int dirfd, const char *name, uid_t owner, int *fd);

/*
 * Open (creating it with mode if missing) the directory name of dirfd; a new
 * one is given group gid ((gid_t)-1: leave it). An existing one must pass the
 * checks of cs_fs_dir_openat; its mode is set to mode.
 */
cs_rc cs_fs_dir_makeat(int dirfd, const char *name, mode_t mode, gid_t gid, uid_t owner, int *fd);

/* Read the regular file name of dirfd (at most max bytes), NUL-terminated. */
cs_rc cs_fs_read_at(int dirfd, const char *name, size_t max, uid_t owner, char **data, size_t *len);

/* Open the regular file name of dirfd for reading with the same checks. */
cs_rc cs_fs_open_at(int dirfd, const char *name, uid_t owner, int *fd);

enum {
    CS_FS_SYNC = 1, /* fsync the file and the directory: it must survive a crash */
};

/*
 * Replace name in dirfd atomically (a temp entry, then renameat) with mode
 * and group gid ((gid_t)-1: leave it), set on the descriptor.
 */
cs_rc cs_fs_write_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
                     gid_t gid, int flags);

/*
 * Rewrite the existing regular file name of dirfd in place (not atomic): for
 * small state when a full disk leaves no room for a temp copy.
 */
cs_rc cs_fs_overwrite_at(int dirfd, const char *name, const void *data, size_t len, uid_t owner);

/* Set mode and group of the entry name of dirfd, without following a symlink. */
cs_rc cs_fs_set_mode_at(int dirfd, const char *name, mode_t mode, gid_t gid);

/* Remove the entry name of dirfd and, if a directory, everything below it. */
cs_rc cs_fs_remove_at(int dirfd, const char *name);

/* Join two path parts into buf; fails if it does not fit. */
cs_rc cs_fs_join(char *buf, size_t size, const char *a, const char *b);

/*
 * Enter the directory name of dirfd, creating it with mode if missing, never
 * through a symlink (a webroot's .well-known: root writes where its worker
 * user can plant). No owner or mode check: webroots are often group-writable.
 */
cs_rc cs_fs_dir_enterat(int dirfd, const char *name, mode_t mode, int *fd);

#endif
