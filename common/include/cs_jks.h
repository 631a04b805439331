/*
 * certsync: Java KeyStore (JKS) writer, and a reader for our own tests.
 *
 * Format: ../shared/reference/jks-format.md (JavaKeyStore.java, KeyProtector.java).
 * The keystore holds one PrivateKeyEntry: the key protected with key_password,
 * the full chain (leaf first), the alias lower-cased as Java's JKS does, and
 * the file's keyed SHA-1 over store_password. Passwords are UTF-8 here and
 * become UTF-16BE like Java's chars.
 */
#ifndef CS_JKS_H
#define CS_JKS_H

#include <stddef.h>
#include <stdint.h>

#include "cs_bundle.h"
#include "cs_error.h"

/* Encode to a malloc'd buffer. created_ms: the entry date (0 = now). */
cs_rc cs_jks_write(const cs_bundle *b, const char *alias, const char *store_password,
                   const char *key_password, int64_t created_ms, unsigned char **out,
                   size_t *out_len);

/* Java's password bytes: UTF-8 to UTF-16BE (surrogate pairs past the BMP). */
cs_rc cs_jks_password_bytes(const char *utf8, unsigned char **out, size_t *out_len);

/*
 * Read a JKS with one or more entries; returns the first PrivateKeyEntry as a
 * bundle (key recovered with key_password) and its alias. The file hash is
 * checked with store_password; a mismatch is CS_EPASSWORD ("tampered with, or
 * password was incorrect", as Java says).
 */
cs_rc cs_jks_read(const unsigned char *data, size_t len, const char *store_password,
                  const char *key_password, cs_bundle **out, char **alias);

#endif
