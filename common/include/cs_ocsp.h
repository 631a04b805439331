/*
 * certsync: OCSP staples (RFC 6960) kept beside each version.
 *
 * A sync asks the responder its leaf names (AIA), or, for a version the
 * embedded local CA issued, has that CA sign the answer itself. A response is
 * kept only when it verifies against the certificate's issuer, is for this
 * certificate and is inside its thisUpdate/nextUpdate; it is stored beside the
 * version (cs_store_save_aside, "ocsp"), refreshed at about half its validity
 * (with jitter; failures back off), and the last good one stays until it
 * expires. A "revoked" answer removes the staple and is kept for status.
 * Servers read the staple when they load the version, never in a handshake.
 */
#ifndef CS_OCSP_H
#define CS_OCSP_H

#include <stddef.h>
#include <time.h>

#include <jansson.h>

#include "cs_bundle.h"
#include "cs_error.h"
#include "cs_store.h"

typedef enum { CS_OCSP_GOOD, CS_OCSP_REVOKED, CS_OCSP_UNKNOWN } cs_ocsp_cert_status;

typedef struct {
    cs_ocsp_cert_status status;
    time_t this_update, next_update;
} cs_ocsp_response;

/* "good", "revoked", "unknown". */
const char *cs_ocsp_status_name(cs_ocsp_cert_status st);

/* 1 when b's leaf names an OCSP responder (its first http URL goes to url). */
int cs_ocsp_responder(const cs_bundle *b, char *url, size_t size);

/*
 * Check a DER OCSP response for b's leaf at now: successful, signed by the
 * leaf's issuer (or a responder it delegated to), for this very certificate,
 * with a nextUpdate still ahead (now 0: the current time). CS_EBADCERT says
 * which check failed.
 */
cs_rc cs_ocsp_check(const void *der, size_t len, const cs_bundle *b, time_t now,
                    cs_ocsp_response *r);

/*
 * Refresh the staple of name's current version when it is due (none yet,
 * past the refresh time, or force), from its responder or the local CA.
 * CS_OK also when there is nothing to do (no responder, not due); note says
 * what happened. An error (responder failed, revoked) is also kept for
 * status in v<N>.ocsp.json; a staple that is still valid stays.
 */
cs_rc cs_ocsp_refresh(cs_store *s, const char *name, int force, time_t now, char *note,
                      size_t size);

/*
 * cs_install_opts.before_switch: staple a new version before it becomes
 * current (a failure is kept for status; the next sync tries again).
 */
void cs_ocsp_before_switch(cs_store *s, const char *name, unsigned version, const cs_bundle *b,
                           const cs_install_opts *o);

/*
 * For servers, when they load version of name (b): its staple, checked
 * (cs_ocsp_check) at now. CS_ENOTFOUND when there is none; *der is malloc'd.
 */
cs_rc cs_ocsp_load(cs_store *s, const char *name, unsigned version, const cs_bundle *b, time_t now,
                   unsigned char **der, size_t *len, cs_ocsp_response *r);

/*
 * The "ocsp" value of the status document for name's current version: null
 * when it has neither staple nor OCSP state, else {"status", "this_update",
 * "next_update", "refresh_at", "last_error"} (a new reference).
 */
json_t *cs_ocsp_status_json(cs_store *s, const char *name);

#endif
