/*
 * certsync: the self-signed certificate a server serves for a name that has
 * no usable version yet (mod_md's fallback). It is made in memory; the server
 * answers 503 with Retry-After to everything but validation answers and
 * status while it serves it.
 *
 *   subject  CN=certsync fallback for NAME (cut to 64 characters)
 *   names    the given DNS names; none given: NAME
 *   key      EC P-256; RSA 2048 when an RSA key type is asked for
 *   validity an hour ago to CS_FALLBACK_DAYS from now
 */
#ifndef CS_FALLBACK_H
#define CS_FALLBACK_H

#include <stddef.h>
#include <time.h>

#include "cs_bundle.h"
#include "cs_crypt.h"
#include "cs_error.h"

#define CS_FALLBACK_DAYS 30

typedef struct {
    const char *name;         /* the managed certificate's name */
    const char *const *names; /* DNS names (SANs) */
    size_t n_names;
    cs_key_type key_type; /* RSA*: RSA 2048; anything else: EC P-256 */
    EVP_PKEY *key;        /* a key of that type to reuse (borrowed); NULL: a new one */
    time_t now;           /* 0: the current time */
} cs_fallback_spec;

/* The key type a fallback for key_type gets: CS_KEY_RSA2048 or CS_KEY_EC256. */
cs_key_type cs_fallback_key_type(cs_key_type key_type);

/* Issue the fallback for spec into *out (a leaf and its key, no chain). */
cs_rc cs_fallback_issue(const cs_fallback_spec *spec, cs_bundle **out);

#endif
