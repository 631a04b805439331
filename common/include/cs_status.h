/*
 * certsync: the one status document, the same JSON for `certsync status
 * --json`, nginx's certsync_status and Apache's certsync-status (mod_md's
 * md_status_get_json). The core fills what the store knows; a server adds
 * what only it knows (what each process serves, its sync schedule) under the
 * one key CS_STATUS_SERVER_KEY, in the document and in each certificate, and
 * changes nothing else. The schema is the table in README.md ("Status").
 *
 * No key, password or credential is ever part of it.
 */
#ifndef CS_STATUS_H
#define CS_STATUS_H

#include <time.h>

#include <jansson.h>

#include "cs_config.h"
#include "cs_error.h"
#include "cs_store.h"

#define CS_STATUS_SERVER_KEY "server"

/*
 * The status of the managed certificate name (a new JSON object, owned by
 * the caller): its current version's metadata, the fallback state and the
 * last sync. A store that cannot be read is shown in the object
 * (error_current, last_sync "unreadable"), not returned as an error; now is
 * the time days_left counts from (0: the current time). CS_ENOMEM only.
 */
cs_rc cs_status_cert(cs_store *s, const char *name, time_t now, json_t **out);

/*
 * {"config": c's path, "store": the store's path, "certificates": [one
 * cs_status_cert per [cert] of c, in its order]} (a new object, owned by the
 * caller). CS_ENOMEM only.
 */
cs_rc cs_status_document(const cs_config *c, cs_store *s, time_t now, json_t **out);

/* A time as the document writes it: ISO 8601 UTC, or null for 0 (never); owned. */
json_t *cs_status_time(time_t t);

#endif
