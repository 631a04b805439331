/*
 * Fuzz target: the JKS reader (cs_jks_read), which reads keystores that
 * keytool or another program wrote.
 *
 * Input: a JKS file; store and key password "changeit" (the corpus uses it).
 * A mutated keystore almost never keeps its keyed SHA-1, so after reading the
 * input as it is, the target reads it again with that hash recomputed over
 * the mutated body: the parts behind the hash check get fuzzed too. A
 * keystore that reads is written back with cs_jks_write, and that must read
 * to the same certificate and alias.
 */
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cs_jks.h"
#include "fuzz_util.h"

#define PASSWORD "changeit"
#define HASH_LEN 20

static void check_round_trip(const cs_bundle *b, const char *alias)
{
    unsigned char *out = NULL;
    size_t out_len;
    cs_bundle *again = NULL;
    char *alias2 = NULL, fp[65], fp2[65];

    /* the writer refuses an empty alias, as keytool does */
    if (alias[0] == '\0')
        return;
    if (cs_jks_write(b, alias, PASSWORD, PASSWORD, 1, &out, &out_len) != CS_OK)
        fuzz_fail("a keystore that reads cannot be written back: %s", cs_error_last());
    if (cs_jks_read(out, out_len, PASSWORD, PASSWORD, &again, &alias2) != CS_OK)
        fuzz_fail("the keystore we wrote does not read: %s", cs_error_last());
    cs_bundle_fingerprint(b, fp);
    cs_bundle_fingerprint(again, fp2);
    /* JKS lower-cases aliases (ASCII letters, as our writer does) */
    if (strcmp(fp, fp2) != 0 || strcasecmp(alias, alias2) != 0)
        fuzz_fail("the keystore we wrote reads as '%s' %s, was '%s' %s", alias2, fp2, alias, fp);
    cs_bundle_free(again);
    free(alias2);
    free(out);
}

static int read_one(const unsigned char *data, size_t len)
{
    cs_bundle *b = NULL;
    char *alias = NULL;
    cs_rc rc = cs_jks_read(data, len, PASSWORD, PASSWORD, &b, &alias);

    fuzz_note("cs_jks_read", rc);
    if (rc == CS_OK) {
        check_round_trip(b, alias);
        cs_bundle_free(b);
        free(alias);
    }
    return rc;
}

/* JKS's file hash: SHA-1 of the UTF-16BE password, "Mighty Aphrodite", the body. */
static void fix_hash(unsigned char *data, size_t len)
{
    unsigned char *pw;
    size_t pw_len;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    if (ctx == NULL || cs_jks_password_bytes(PASSWORD, &pw, &pw_len) != CS_OK)
        fuzz_fail("cannot set up the JKS hash");
    if (!EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) || !EVP_DigestUpdate(ctx, pw, pw_len) ||
        !EVP_DigestUpdate(ctx, "Mighty Aphrodite", 16) ||
        !EVP_DigestUpdate(ctx, data, len - HASH_LEN) ||
        !EVP_DigestFinal_ex(ctx, data + len - HASH_LEN, NULL))
        fuzz_fail("SHA-1 failed");
    EVP_MD_CTX_free(ctx);
    free(pw);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *copy;

    if (read_one(data, size) == CS_EPASSWORD && size >= HASH_LEN) {
        copy = malloc(size);
        if (copy == NULL)
            fuzz_fail("out of memory");
        memcpy(copy, data, size);
        fix_hash(copy, size);
        if (memcmp(copy + size - HASH_LEN, data + size - HASH_LEN, HASH_LEN) != 0)
            read_one(copy, size);
        free(copy);
    }
    cs_error_clear();
    return 0;
}
