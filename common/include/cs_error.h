/*
 * certsync: result codes and the last error message.
 *
 * Every cs_ function that can fail returns a cs_rc. When it is not CS_OK the
 * human sentence that says what failed, where, and what to do is kept in a
 * per-thread buffer, read with cs_error_last() (libgit2's git_error_last()).
 * The library never prints and never exits.
 */
#ifndef CS_ERROR_H
#define CS_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CS_OK = 0,
    CS_ERR = -1,       /* anything not listed below */
    CS_EINVAL = -2,    /* bad argument or input data */
    CS_EIO = -3,       /* a file could not be read or written */
    CS_ENOTFOUND = -4, /* no such certificate, version or file */
    CS_EBADCERT = -5,  /* a certificate, chain or key failed validation */
    CS_EPASSWORD = -6, /* a password is missing, empty or wrong */
    CS_ECONFIG = -7,   /* certsync.conf is wrong */
    CS_ELOCKED = -8,   /* another writer holds the store lock */
    CS_ENOMEM = -9,
    CS_EPROVIDER = -10, /* the certificate provider failed */
    CS_EPERM = -11,     /* a store entry is not what the store wrote (symlink, owner, type) */
} cs_rc;

/*
 * The message of the last failure in this thread ("" when there is none);
 * borrowed: valid until the next cs_ call of this thread.
 */
const char *cs_error_last(void);

/* The code of the last failure in this thread (CS_OK when there is none). */
cs_rc cs_error_code(void);

/* Set the last error; returns code so callers can `return cs_error_set(...)`. */
cs_rc cs_error_set(cs_rc code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefix the current message with more context ("importing 'shop': ..."). */
cs_rc cs_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Forget the last error. */
void cs_error_clear(void);

/* A short OpenSSL reason for the newest queued error (queue is cleared). */
const char *cs_error_openssl(void);

#ifdef __cplusplus
}
#endif
#endif
