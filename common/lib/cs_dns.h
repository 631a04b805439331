/*
 * certsync (internal): is a TXT record visible yet? Asked over UDP of the
 * zone's authoritative servers (found through the system's resolver), or of
 * one server the configuration names (dns-resolver). Used by dns-01 before
 * the CA is told to look.
 */
#ifndef CS_DNS_H
#define CS_DNS_H

#include <stddef.h>

#include "cs_error.h"

/* A query for name's TXT records with the id; its length, or -1 when name does not fit. */
int cs_dns_txt_query(const char *name, unsigned id, unsigned char *buf, size_t size);

/*
 * An answer to that query (id): 1 when a TXT record carries value, 0 when
 * not (no such name, no record, other values), -1 when it is not an answer to it.
 */
int cs_dns_answer_has(const unsigned char *msg, size_t len, unsigned id, const char *value);

/* Asks server ("IP" or "IP:PORT", IPv4 or [IPv6]:PORT) once; *seen 1 when it carries it. */
cs_rc cs_dns_txt_seen(const char *server, const char *name, const char *value, int *seen);

/*
 * Wait until every server carries name = value (server: one "IP[:PORT]", or
 * NULL for the authoritative servers of name's zone), at most wait_s seconds.
 */
cs_rc cs_dns_wait_txt(const char *server, const char *name, const char *value, long wait_s);

#endif
