/*
 * certsync (internal): a provider is where issued certificates come from.
 *
 * Each is one table of operations, as mod_md's md_proto_t is: the sync core
 * calls them and names no provider. Adding one is a new cs_provider_*.c file
 * with its table, plus a row in cs_provider.c.
 */
#ifndef CS_PROVIDER_H
#define CS_PROVIDER_H

#include <stddef.h>

#include "cs_config.h"
#include "cs_store.h"

/* What one obtain call says besides the bundle. */
typedef struct {
    char remote_id[32]; /* the certificate's id in the service ("" if none) */
    char reason[256];   /* why a new one was obtained, or why none was */
} cs_provider_result;

/* What an obtain call would do (a dry run): nothing is written, nothing spent. */
typedef struct {
    int due;          /* obtain would return a new certificate */
    char reason[256]; /* why it is due, or why not */
    char calls[512];  /* what the provider would be asked (or would do itself) */
} cs_provider_plan;

typedef struct {
    const char *type;    /* `type =` in [provider NAME], and meta.json's provider */
    cs_provider_type id; /* the configuration's enum value */
    /* State kept for one sync session (e.g. a client and its list); may be NULL. */
    cs_rc (*open)(const cs_provider_conf *pv, void **state);
    void (*close)(void *state);
    /*
     * A new certificate for cc when one is due (or force): *b is owned by the
     * caller. CS_OK with *b NULL: nothing new; res->reason says why.
     */
    cs_rc (*obtain)(void *state, cs_store *s, const cs_cert_conf *cc, int force, cs_bundle **b,
                    cs_provider_result *res);
    /*
     * What obtain would do, doing nothing that writes, orders or spends: read-only
     * questions to the provider at most (a list). s is NULL when the store does not exist.
     */
    cs_rc (*plan)(void *state, cs_store *s, const cs_cert_conf *cc, int force,
                  cs_provider_plan *out);
} cs_provider_ops;

extern const cs_provider_ops cs_provider_local_ca;
extern const cs_provider_ops cs_provider_aliyun_cas;
extern const cs_provider_ops cs_provider_acme;

/* The provider whose `type =` is name; NULL for none. */
const cs_provider_ops *cs_provider_named(const char *name);

/* "local-ca, aliyun-cas": the known types, for errors. */
const char *cs_provider_types(void);

/* The operations of a provider type; NULL for none. */
const cs_provider_ops *cs_provider_ops_of(cs_provider_type id);

/*
 * Is a new certificate due for cc by its current version alone (none, does
 * not load or validate, inside renew-before, or force)? reason says why.
 */
int cs_provider_due(cs_store *s, const cs_cert_conf *cc, int force, char *reason, size_t size);

/* The state a sync session keeps for pv, opened on first use. */
typedef struct cs_sync_session cs_sync_session;
cs_rc cs_sync_provider_state(cs_sync_session *sess, const cs_provider_conf *pv, void **state);

#endif
