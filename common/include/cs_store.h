/*
 * certsync: the versioned store, the contract between the core and servers.
 *
 *   <store>/certs/<name>/v<N>/      one complete version: the PEM set,
 *                                   console-style files, PFX/JKS, meta.json
 *   <store>/certs/<name>/current    symlink to v<N>, switched by rename(2)
 *   <store>/certs/<name>/state.json last sync result and error, for status;
 *                                   a hold (rollback) and revoked fingerprints
 *   <store>/certs/<name>/.lock      writers hold an exclusive flock on it
 *   <store>/certs/<name>/apache.conf, nginx.conf   include snippets naming the
 *                                   stable current/fullchain.pem and privkey.pem
 *
 * A version is written into a temp directory, fsynced, renamed into place,
 * read back and validated, and only then does `current` move. A reader
 * resolves `current` once and sees one whole version. Servers notice a
 * change with cs_store_current_changed() (below): every switch puts a new
 * link there, compared by inode together with ctime (a file system may give
 * a freed inode number to the next link, so the inode alone can come back).
 */
#ifndef CS_STORE_H
#define CS_STORE_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include <jansson.h>

#include "cs_bundle.h"
#include "cs_error.h"
#include "cs_pkcs12.h"

/*
 * Threads: the calls that only read (current, versions, load, info,
 * sync_state, read_challenge, current_changed) may share one handle across
 * threads (it holds an immutable path and directory descriptor); lock,
 * unlock and the calls that write (install, rollback, record_sync,
 * write_challenge, area) keep the nested lock's state: one thread at a time.
 */
typedef struct cs_store cs_store;

typedef struct {
    unsigned keep; /* versions kept (current included); 0 means 3 */
    uid_t uid;     /* [store] owner: the store must belong to it, (uid_t)-1: any */
    gid_t gid;     /* group given to what workers read, (gid_t)-1 to leave it */
} cs_store_opts;

/*
 * Trust boundary. The store belongs to one user, the one that syncs (the
 * owner of the store directory). Only that user writes it: any other one,
 * root included, gets CS_EPERM from every call that writes. Every entry is
 * reached from the store's directory descriptor with openat(O_NOFOLLOW) and
 * must be a directory or regular file of that user (no symlink but `current`,
 * which is read, never followed; no FIFO; directories not writable by group
 * or others), so a web server's worker user can plant nothing that makes
 * a process of ours touch a file outside the store. Directories are 0750 and
 * what servers serve 0640, with the store's group ((gid)); PFX, JKS, their
 * passwords and the local CA stay 0600/0700.
 */

/* Largest store file read (a certificate chain, a key, meta.json). */
#define CS_STORE_MAX_FILE (1024 * 1024)

/* Open (and create, 0750) the store at path. */
cs_rc cs_store_open(const char *path, const cs_store_opts *opts, cs_store **out);
void cs_store_free(cs_store *s);
/* The store's directory (borrowed: valid while s lives). */
const char *cs_store_path(const cs_store *s);

/* The store's user: everything in it must belong to it. */
uid_t cs_store_owner(const cs_store *s);

typedef struct cs_install_opts cs_install_opts;

struct cs_install_opts {
    const char *provider;     /* "local-ca", "aliyun-cas", "import" */
    const char *remote_id;    /* the service's id, or NULL */
    const char *const *names; /* names the certificate must cover */
    size_t n_names;
    unsigned formats; /* CS_FMT_* beyond PEM (always written) */
    cs_p12_profile profile;
    const char *alias;         /* NULL: the certificate's name */
    const char *password_file; /* NULL: keep current's password, or generate */
    const char *group;         /* who reads it: NULL the store's group, "none" nobody */
    /*
     * Called with the new version written and checked, before `current` moves
     * to it (e.g. its OCSP staple, so that servers load both in one step); its
     * failure is its own business: the install goes on. NULL: none.
     */
    void (*before_switch)(cs_store *s, const char *name, unsigned version, const cs_bundle *b,
                          const cs_install_opts *o);
};

/*
 * Validate b, write it as a new version, and make it current. On any failure
 * current is untouched and the new version is removed. *version gets the
 * new number.
 */
cs_rc cs_store_install(cs_store *s, const char *name, const cs_bundle *b, const cs_install_opts *o,
                       unsigned *version);

/* The current version number; CS_ENOTFOUND when there is none. */
cs_rc cs_store_current(cs_store *s, const char *name, unsigned *version);

/* Every version on disk, ascending (malloc'd). */
cs_rc cs_store_versions(cs_store *s, const char *name, unsigned **versions, size_t *n);

/* <store>/certs/<name>/current, whose inode changes on every switch. */
cs_rc cs_store_current_link(const cs_store *s, const char *name, char *buf, size_t size);

/* Directory of a version (0 = current, resolved once). */
cs_rc cs_store_version_dir(cs_store *s, const char *name, unsigned version, char *buf, size_t size);

/* Load a version's fullchain.pem + privkey.pem (0 = current). */
cs_rc cs_store_load(cs_store *s, const char *name, unsigned version, cs_bundle **out);

/* What meta.json says of a version. */
typedef struct {
    unsigned version;
    char fingerprint[65];
    char serial[80];
    char provider[32];
    char remote_id[32];
    time_t not_before, not_after, fetched_at;
    char **names; /* NULL-terminated */
    size_t n_names;
} cs_cert_info;

cs_rc cs_store_info(cs_store *s, const char *name, unsigned version, cs_cert_info *info);
void cs_cert_info_clear(cs_cert_info *info);

/*
 * Make the newest older version that still validates current and hold it
 * there (cs_store_hold). A version whose certificate was marked revoked is
 * refused with CS_EPERM unless force.
 */
cs_rc cs_store_rollback(cs_store *s, const char *name, int force, unsigned *version);

/* The last sync of a certificate, kept for status. */
typedef enum { CS_SYNC_NONE, CS_SYNC_INSTALLED, CS_SYNC_UNCHANGED, CS_SYNC_FAILED } cs_sync_result;

/*
 * An on-change command that failed for the current version: every sync runs it
 * again until it succeeds (at least once delivery), and status shows it.
 */
typedef struct {
    unsigned version;    /* the version it last ran for (0: nothing is pending) */
    char command[128];   /* its program's base name, never its arguments */
    int exit_status;     /* as $? in a shell (128+N: signal N; 127: not run; -1: unknown) */
    char error[1024];    /* the last lines of its stderr */
    time_t since;        /* when it first failed */
    unsigned attempts;   /* runs that failed so far */
    time_t next_attempt; /* in-server syncs wait until then (backoff); `certsync sync` does not */
} cs_hook_pending;

typedef struct {
    cs_sync_result result;
    time_t at;           /* when the last sync ended */
    time_t last_success; /* when one last succeeded (0: never) */
    char error[1024];    /* the reason of the last failure */
    unsigned failures;   /* failed syncs since the last that succeeded */
    unsigned held;       /* held at this version (0: not held): sync leaves it alone */
    time_t held_since;
    cs_hook_pending hook; /* hook.version 0: no on-change is pending */
} cs_sync_state;

cs_rc cs_store_record_sync(cs_store *s, const char *name, cs_sync_result result, const char *error);
cs_rc cs_store_sync_state(cs_store *s, const char *name, cs_sync_state *st);

/* Record a pending on-change in state.json ("hook_pending"); NULL (or version 0) clears it. */
cs_rc cs_store_record_hook(cs_store *s, const char *name, const cs_hook_pending *pending);
const char *cs_sync_result_name(cs_sync_result r);

/*
 * A section of state.json that another part of the core keeps there (the
 * deployments' "deploy", cs_deploy.h), read and written through the store's
 * checks like the rest of it. get: a copy (owned; NULL when absent or when
 * nothing was synced yet). put: replaces it (value borrowed; NULL removes
 * it), under the certificate's lock (it nests). The keys the store itself
 * keeps (result, held, hook_pending, revoked, ...) are refused with CS_EINVAL.
 */
cs_rc cs_store_state_get(cs_store *s, const char *name, const char *key, json_t **out);
cs_rc cs_store_state_put(cs_store *s, const char *name, const char *key, const json_t *value);

/*
 * Hold name at version (a rollback does), so that sync leaves it alone until
 * released: version 0 releases. Kept in state.json with its time.
 */
cs_rc cs_store_hold(cs_store *s, const char *name, unsigned version);

/*
 * The service revoked the certificate whose SHA-256 fingerprint (hex) this
 * is: a rollback refuses a version of name that holds it.
 */
cs_rc cs_store_mark_revoked(cs_store *s, const char *name, const char *fingerprint);
cs_rc cs_store_revoked(cs_store *s, const char *name, const char *fingerprint, int *revoked);

/*
 * Exclusive per-certificate writer lock (waits up to timeout_s). Taking it
 * again through the same handle nests. Released by cs_store_unlock.
 */
cs_rc cs_store_lock(cs_store *s, const char *name, int timeout_s, int *token);
void cs_store_unlock(cs_store *s, int token);

/*
 * The FILE validation content (kind "pki-validation", file "fileauth.txt")
 * or an ACME http-01 token (kind "acme-challenge", file TOKEN) for domain,
 * at <store>/challenges/<domain>/<kind>/<file> (domain lower-cased), readable
 * by the store's group (the server workers that answer it).
 */
cs_rc cs_store_write_challenge(cs_store *s, const char *domain, const char *kind, const char *file,
                               const char *content);

/*
 * The one host-name rule of validation answers, shared by the writer and the
 * servers: 1-253 characters, labels of 1-63 of [a-z0-9-] (lower case: the
 * servers lower-case the Host header, and so does the writer).
 */
int cs_challenge_host_valid(const char *host);

/* Read a validation answer written by cs_store_write_challenge (no symlink, no FIFO). */
cs_rc cs_store_read_challenge(cs_store *s, const char *host, const char *kind, const char *file,
                              size_t max, char **data, size_t *len);

/* Remove an answer written by cs_store_write_challenge (CS_OK when it is not there). */
cs_rc cs_store_remove_challenge(cs_store *s, const char *domain, const char *kind,
                                const char *file);

/*
 * <store>/<sub>, created 0700 and private to the store's user, as a verified
 * directory descriptor (*fd, the caller closes it): read and write its files
 * with cs_fs_read_at / cs_fs_write_at, never by path (e.g. "acme").
 */
cs_rc cs_store_area_open(cs_store *s, const char *sub, int *fd);

/* <store>/<sub> created 0700, private to the store's user (e.g. "local-ca"). */
cs_rc cs_store_area(cs_store *s, const char *sub, char *buf, size_t size);

/*
 * What one look at a certificate's `current` saw. Every switch puts a new
 * link there; the inode is compared together with the ctime, since a file
 * system may give a freed inode number to the next link.
 */
typedef struct {
    int linked; /* `current` was there */
    dev_t dev;
    ino_t ino;
    struct timespec ctime;
} cs_store_stamp;

/*
 * The one change check of `current` for servers (one lstat(), no read, no
 * parsing): *changed is 1 when `current` is there and is not what *last
 * describes (a zeroed *last: never looked). *last then describes this look.
 * No `current` (no version yet) is CS_OK, *changed 0, last->linked 0. When
 * it cannot be looked at: CS_EIO and last->linked 0, so that the next look
 * that works counts as a change.
 */
cs_rc cs_store_current_changed(const cs_store *s, const char *name, cs_store_stamp *last,
                               int *changed);

/*
 * Files kept beside a version, <store>/certs/<name>/v<N>.<kind>: "ocsp" (its
 * OCSP staple, DER) and "ocsp.json" (that staple's state). Written atomically,
 * as readable as the version (0640 with its group: servers read the staple;
 * 0600 for a "group = none" version), removed with the version (a number,
 * never 0). load: CS_ENOTFOUND when there is none.
 */
cs_rc cs_store_save_aside(cs_store *s, const char *name, unsigned version, const char *kind,
                          const void *data, size_t len);
cs_rc cs_store_load_aside(cs_store *s, const char *name, unsigned version, const char *kind,
                          char **data, size_t *len);
cs_rc cs_store_drop_aside(cs_store *s, const char *name, unsigned version, const char *kind);

/* The change check of one such file (one lstat(), as cs_store_current_changed). */
cs_rc cs_store_aside_changed(const cs_store *s, const char *name, unsigned version,
                             const char *kind, cs_store_stamp *last, int *changed);

#endif
