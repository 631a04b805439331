/*
 * certsync: the one time format of files and status documents: ISO 8601 in
 * UTC, "2026-01-02T03:04:05Z" (meta.json, state.json, status JSON, the
 * service's timestamps).
 */
#ifndef CS_TIME_H
#define CS_TIME_H

#include <time.h>

#include "cs_error.h"

/* "YYYY-MM-DDTHH:MM:SSZ" and its NUL */
#define CS_TIME_ISO_SIZE 21

/* t as "%Y-%m-%dT%H:%M:%SZ" in UTC into buf (CS_TIME_ISO_SIZE bytes); returns buf. */
char *cs_time_iso(time_t t, char buf[CS_TIME_ISO_SIZE]);

/*
 * Parse exactly that form (nothing before or after it) into *t. CS_EINVAL
 * for anything else, NULL included; *t is then 0.
 */
cs_rc cs_time_parse_iso(const char *s, time_t *t);

#endif
