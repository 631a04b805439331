/*
 * Fuzz target: loading a certificate bundle (cs_bundle.c), as `certsync
 * import`/`convert` read the operator's files and the sync reads the Cert and
 * Key of a GetUserCertificateDetail answer.
 *
 * Input: CERTS [SEP KEY [SEP CHAIN [SEP PASSWORD]]] with SEP = "\n--8<--\n".
 * Each part may be PEM or DER. CERTS and KEY go through cs_bundle_load_pem;
 * when a CHAIN part is present the parts are also loaded as files
 * (cs_bundle_load_files, through memfds), with the key password file when
 * PASSWORD is present. A bundle that loads is validated, described and
 * written back to PEM, and that PEM must load to the same certificate.
 */
#include <openssl/x509.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cs_bundle.h"
#include "fuzz_util.h"

static const char *const names[] = {"shop.example.com", "*.example.com"};

static int fd_cert = -1, fd_key, fd_chain, fd_pass;

/* Reload what the bundle writes: it must be the same leaf with the same key. */
static void check_round_trip(const cs_bundle *b)
{
    char *leaf = NULL, *issuers = NULL, *key = NULL, *certs, fp[65], fp2[65];
    size_t leaf_len, issuers_len, key_len;
    cs_bundle *again = NULL;

    if (cs_bundle_pem_leaf(b, &leaf, &leaf_len) != CS_OK ||
        cs_bundle_pem_issuers(b, &issuers, &issuers_len) != CS_OK ||
        cs_bundle_pem_key(b, &key, &key_len) != CS_OK)
        fuzz_fail("a loaded bundle cannot be written as PEM: %s", cs_error_last());
    certs = malloc(leaf_len + issuers_len + 1);
    if (certs == NULL)
        fuzz_fail("out of memory");
    memcpy(certs, leaf, leaf_len);
    memcpy(certs + leaf_len, issuers, issuers_len + 1);
    if (cs_bundle_load_pem(certs, leaf_len + issuers_len, key, key_len, "round trip", &again) !=
        CS_OK)
        fuzz_fail("the PEM written from a loaded bundle does not load: %s", cs_error_last());
    cs_bundle_fingerprint(b, fp);
    cs_bundle_fingerprint(again, fp2);
    if (strcmp(fp, fp2) != 0)
        fuzz_fail("the reloaded leaf differs: %s, was %s", fp2, fp);
    cs_bundle_free(again);
    free(certs);
    free(leaf);
    free(issuers);
    free(key);
}

static void use(cs_bundle *b)
{
    char fp[65], serial[128];
    size_t n;
    char **v;

    cs_bundle_validate(b, names, 2, time(NULL), "fuzz");
    cs_bundle_fingerprint(b, fp);
    cs_bundle_serial(b, serial, sizeof(serial));
    (void)cs_bundle_not_before(b);
    (void)cs_bundle_not_after(b);
    v = cs_bundle_names(b, &n);
    cs_strv_free(v);
    check_round_trip(b);
    cs_bundle_free(b);
}

static void load_as_files(char **parts, size_t *lens, size_t n)
{
    char cert_path[64], key_path[64], chain_path[64], pass_path[64];
    cs_bundle *b = NULL;
    cs_rc rc;

    fuzz_fd_set(fd_cert, parts[0], lens[0]);
    fuzz_fd_set(fd_key, parts[1], lens[1]);
    fuzz_fd_set(fd_chain, parts[2], lens[2]);
    if (n > 3)
        fuzz_fd_set(fd_pass, parts[3], lens[3]);
    rc = cs_bundle_load_files(fuzz_fd_path(fd_cert, cert_path, sizeof(cert_path)),
                              fuzz_fd_path(fd_key, key_path, sizeof(key_path)),
                              fuzz_fd_path(fd_chain, chain_path, sizeof(chain_path)),
                              n > 3 ? fuzz_fd_path(fd_pass, pass_path, sizeof(pass_path)) : NULL,
                              &b);
    fuzz_note("cs_bundle_load_files", rc);
    if (rc == CS_OK)
        use(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *parts[4];
    size_t lens[4], n;
    cs_bundle *b = NULL;
    cs_rc rc;

    if (fd_cert < 0) {
        fd_cert = fuzz_memfd("cert");
        fd_key = fuzz_memfd("key");
        fd_chain = fuzz_memfd("chain");
        fd_pass = fuzz_memfd("password");
    }
    n = fuzz_split(data, size, parts, lens, 4);
    rc = cs_bundle_load_pem(parts[0], lens[0], n > 1 ? parts[1] : "", n > 1 ? lens[1] : 0,
                            "fuzz input", &b);
    fuzz_note("cs_bundle_load_pem", rc);
    if (rc == CS_OK)
        use(b);
    if (n > 2)
        load_as_files(parts, lens, n);
    fuzz_parts_free(parts, n);
    cs_error_clear();
    return 0;
}
