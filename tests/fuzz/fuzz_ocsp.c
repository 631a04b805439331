/*
 * Fuzz target: an OCSP responder's answer (cs_ocsp.c), which comes from the
 * network (any responder a certificate's AIA names) and, stored, is read
 * again by every server process.
 *
 * Input: RESPONSE [SEP CHAIN] with SEP = "\n--8<--\n": the DER response and
 * the PEM certificates it is checked for (the leaf first, then its issuers;
 * the seed corpus pairs real responses with their chains, so the signature
 * and status checks are reached). It goes through cs_ocsp_check at two
 * times; an answer that passes must be inside its validity at that time.
 */
#include <openssl/pem.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cs_bundle.h"
#include "cs_crypt.h"
#include "cs_ocsp.h"
#include "fuzz_util.h"

static EVP_PKEY *key;

/* The leaf and issuers of pem as a bundle (the key is any: cs_ocsp_check never uses it). */
static cs_bundle *chain_bundle(const char *pem, size_t len)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    STACK_OF(X509) *issuers = sk_X509_new_null();
    X509 *leaf = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL, *x;
    cs_bundle *b = NULL;

    while (leaf && issuers && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
        if (sk_X509_push(issuers, x) <= 0)
            X509_free(x);
    if (leaf && issuers && cs_bundle_new(leaf, issuers, key, &b) != CS_OK)
        b = NULL;
    X509_free(leaf);
    sk_X509_pop_free(issuers, X509_free);
    BIO_free(bio);
    return b;
}

static void check_at(const char *der, size_t len, const cs_bundle *b, time_t now)
{
    cs_ocsp_response r;

    if (cs_ocsp_check(der, len, b, now, &r) != CS_OK) {
        if (cs_error_last()[0] == '\0')
            fuzz_fail("cs_ocsp_check refused an answer without saying why");
        return;
    }
    if (r.next_update <= now || r.this_update > now + 300)
        fuzz_fail("cs_ocsp_check accepted an answer outside its validity");
    if (r.status != CS_OCSP_GOOD && r.status != CS_OCSP_REVOKED && r.status != CS_OCSP_UNKNOWN)
        fuzz_fail("cs_ocsp_check gave a status that does not exist");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *parts[2];
    size_t lens[2], n;
    cs_bundle *b;

    if (key == NULL && cs_key_generate(CS_KEY_EC256, &key) != CS_OK)
        fuzz_fail("cannot make a key");
    n = fuzz_split(data, size, parts, lens, 2);
    b = n == 2 ? chain_bundle(parts[1], lens[1]) : NULL;
    if (b) {
        check_at(parts[0], lens[0], b, time(NULL));
        check_at(parts[0], lens[0], b, time(NULL) + 400L * 86400);
    }
    cs_bundle_free(b);
    fuzz_parts_free(parts, n);
    return 0;
}
