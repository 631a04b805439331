/*
 * certsync: revoking the current certificate of a name at the CA that issued
 * it (an acme provider: RFC 8555 7.6, signed by the account key). The store
 * remembers it, so a rollback refuses that version and the next sync replaces
 * it. aliyun-cas certificates are revoked by order (certsync revoke ORDER).
 */
#ifndef CS_REVOKE_H
#define CS_REVOKE_H

#include "cs_config.h"
#include "cs_store.h"

/* No reason code is sent (the CA records "unspecified"). */
#define CS_REVOKE_NO_REASON (-1)

/*
 * An RFC 5280 CRLReason a CA accepts from a subscriber: a number (0, 1, 3, 4,
 * 5) or its name (unspecified, keyCompromise, affiliationChanged, superseded,
 * cessationOfOperation).
 */
cs_rc cs_revoke_reason_parse(const char *text, int *code);

/* What was revoked. */
typedef struct {
    unsigned version;
    char serial[80];
    char fingerprint[65];
    char ca[256]; /* the directory URL */
} cs_revoke_result;

/* Revoke name's current certificate (reason: a code or CS_REVOKE_NO_REASON), mark it. */
cs_rc cs_revoke_current(const cs_config *c, cs_store *s, const char *name, int reason,
                        cs_revoke_result *out);

#endif
