/*
 * certsync: the status page for a person, rendered from the one status
 * document (cs_status_document, with a server's fields or without), so that
 * nginx's and Apache's ?format=html are the same page (mod_md_status.c only
 * renders md_status_get_json; so do our modules).
 *
 * A card per certificate: its state, days left as a bar against its lifetime
 * (not_before..not_after), the version in the store and the one each process
 * serves, the last sync and its error, a pending on-change command
 * ("hook_pending") and a rollback's hold; then the server's own sync. Every
 * string of the document is HTML-escaped (names come from certificates and
 * messages from the service).
 */
#ifndef CS_STATUS_HTML_H
#define CS_STATUS_HTML_H

#include <time.h>

#include <jansson.h>

#include "cs_error.h"

/*
 * The page (a complete HTML document, UTF-8) of doc; title names who answers
 * ("nginx", "Apache"). now: the time the bars count from (0: the current
 * time). *out is a new NUL-terminated string owned by the caller (free()).
 * CS_ENOMEM only.
 */
cs_rc cs_status_html(const json_t *doc, const char *title, time_t now, char **out);

#endif
