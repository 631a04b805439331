/*
 * certsync: text from outside (a service's answer, a certificate's names)
 * made safe to print on a terminal or keep in a log or state file.
 *
 * Control characters (C0, DEL; C1 as UTF-8) and bytes that are not UTF-8
 * are written as \xNN (\u00NN for C1), so that such text can neither move
 * the cursor, change colours nor start a line of its own ("\n[installed] ...").
 * Printable UTF-8, including CJK, is kept as it is.
 */
#ifndef CS_ESCAPE_H
#define CS_ESCAPE_H

#include <stddef.h>

/* s escaped into buf (cut to fit, always terminated); returns buf. */
const char *cs_escape(const char *s, char *buf, size_t size);

/* s escaped, malloc'd; NULL when out of memory. */
char *cs_escape_dup(const char *s);

#endif
