/* Shared helpers for the unit tests: make keys, chains and scratch dirs. */
#ifndef CS_TEST_H
#define CS_TEST_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "cs_bundle.h"
#include "cs_crypt.h"

typedef struct {
    EVP_PKEY *root_key, *int_key, *leaf_key;
    X509 *root, *inter, *leaf;
    cs_bundle *bundle; /* leaf + intermediate + leaf key */
} cs_test_chain;

/*
 * A root CA, an intermediate and a leaf for names, valid from now+from_days
 * to now+to_days (negative for the past).
 */
void cs_test_chain_make(cs_test_chain *c, cs_key_type leaf_type, const char *const *names,
                        size_t n_names, int from_days, int to_days);
void cs_test_chain_free(cs_test_chain *c);

/* A fresh empty directory under $TMPDIR; returns a static-lifetime string. */
char *cs_test_tmpdir(const char *tag);

/* Write PEM of x (and more certs, NULL-terminated) to path. */
void cs_test_write_certs(const char *path, X509 *x, ...);
void cs_test_write_key(const char *path, EVP_PKEY *k);
void cs_test_write_text(const char *path, const char *text);

/* path = dir/name in a static rotating buffer */
const char *cs_test_path(const char *dir, const char *name);

#endif
