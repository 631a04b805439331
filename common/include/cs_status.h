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

/* How a monitoring plugin exits: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. */
typedef enum {
    CS_CHECK_OK = 0,
    CS_CHECK_WARNING = 1,
    CS_CHECK_CRITICAL = 2,
    CS_CHECK_UNKNOWN = 3
} cs_check_level;

/* A current version that expires within this many days is CRITICAL. */
#define CS_CHECK_CRITICAL_DAYS 7

/* "OK", "WARNING", "CRITICAL", "UNKNOWN". */
const char *cs_check_level_name(cs_check_level level);

/*
 * The health of one certificate of the status document (a cs_status_cert
 * object), judged as `certsync status --check` does (README.md, "Monitoring"):
 * CRITICAL for no version, expired or expiring within CS_CHECK_CRITICAL_DAYS;
 * WARNING inside renew_before (seconds) or when the last sync failed; UNKNOWN
 * when the store could not be read. Appends one line per problem ("CRITICAL
 * shop: ...", with what to do) to problems (an array of strings) and returns
 * the worst level; CS_CHECK_OK appends nothing. now: 0 for the current time.
 */
cs_check_level cs_status_check(const json_t *cert, long renew_before, time_t now, json_t *problems);

/*
 * The Prometheus text exposition format (version 0.0.4) of a status document
 * (cs_status_document, with or without a server's fields), for node_exporter's
 * textfile collector and the modules' ?format=prometheus: per certificate its
 * version, not-after, last sync, last success and failures in a row, and the
 * version each process serves when a server added it. *out is a new string,
 * owned by the caller. CS_ENOMEM only.
 */
cs_rc cs_status_metrics(const json_t *doc, char **out);

/* A time as the document writes it: ISO 8601 UTC, or null for 0 (never); owned. */
json_t *cs_status_time(time_t t);

#endif
