/*
 * certsync: PKCS#12 (PFX) writer over OpenSSL.
 *
 * modern: what OpenSSL 3's `pkcs12 -export` writes: key and certificates
 *         under PBES2 (PBKDF2 hmacWithSHA256, AES-256-CBC), SHA-256 MAC,
 *         2048 iterations.
 * legacy: PBE-SHA1-3DES for key and certificates, SHA-1 MAC, 2048
 *         iterations, for older Java and Windows.
 * The key and leaf carry the alias as friendly name; the chain follows.
 */
#ifndef CS_PKCS12_H
#define CS_PKCS12_H

#include <stddef.h>

#include "cs_bundle.h"
#include "cs_error.h"

typedef enum { CS_P12_MODERN, CS_P12_LEGACY } cs_p12_profile;

cs_rc cs_p12_profile_parse(const char *s, cs_p12_profile *out);

cs_rc cs_pkcs12_write(const cs_bundle *b, const char *alias, const char *password,
                      cs_p12_profile profile, unsigned char **out, size_t *out_len);

#endif
