/*
 * ACME Renewal Information (RFC 9773): the certificate's id is the RFC's own
 * example, the suggested window is read from RFC 3339 times, a time is picked
 * inside it, and a kept suggestion decides whether a renewal is due with no
 * request at all. (Debian 12's pebble 2.4 offers no renewalInfo: these unit
 * tests are what covers the window computation.)
 */
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cs_acme.h"
#include "cs_fs.h"
#include "cs_test.h"

/* RFC 9773 4.1: AKI keyIdentifier 69:88:5B:..:D4 and serial 0x0087654321. */
static X509 *rfc9773_cert(void)
{
    static const unsigned char kid[] = {0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3,
                                        0x7B, 0x84, 0x7B, 0xA0, 0xAE, 0x2C, 0xDE, 0x01, 0xC8, 0xD4};
    X509 *x = X509_new();
    EVP_PKEY *key = NULL;
    AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
    BIGNUM *bn = NULL;

    assert_int_equal(cs_key_generate(CS_KEY_EC256, &key), CS_OK);
    BN_hex2bn(&bn, "87654321");
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    akid->keyid = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(akid->keyid, kid, sizeof(kid));
    X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0, 0);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
                               (const unsigned char *)"ari.test", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    AUTHORITY_KEYID_free(akid);
    BN_free(bn);
    EVP_PKEY_free(key);
    return x;
}

static void the_certificate_id_is_rfc9773s_example(void **state)
{
    X509 *x = rfc9773_cert(), *bare = X509_new();
    char *id = NULL;
    (void)state;

    assert_int_equal(cs_acme_ari_cert_id(x, &id), CS_OK);
    assert_string_equal(id, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
    free(id);
    assert_int_equal(cs_acme_ari_cert_id(bare, &id), CS_EINVAL); /* no AKI: no id */
    X509_free(x);
    X509_free(bare);
}

static void rfc3339_times_with_fractions_and_offsets(void **state)
{
    time_t t = 0, z;
    (void)state;

    assert_int_equal(cs_acme_rfc3339("2025-01-02T04:00:00Z", &z), CS_OK);
    assert_int_equal(z, 1735790400);
    assert_int_equal(cs_acme_rfc3339("2025-01-02T04:00:00.123456Z", &t), CS_OK);
    assert_int_equal(t, z);
    assert_int_equal(cs_acme_rfc3339("2025-01-02T12:00:00+08:00", &t), CS_OK);
    assert_int_equal(t, z);
    assert_int_equal(cs_acme_rfc3339("2025-01-01T23:00:00-05:00", &t), CS_OK);
    assert_int_equal(t, z);
    assert_int_equal(cs_acme_rfc3339("2025-01-02T04:00:00", &t), CS_EINVAL); /* no zone */
    assert_int_equal(cs_acme_rfc3339("2025-01-02 04:00", &t), CS_EINVAL);
    assert_int_equal(cs_acme_rfc3339(NULL, &t), CS_EINVAL);
}

static void the_suggested_window_is_read_and_a_time_picked_inside_it(void **state)
{
    static const char ok[] = "{\"suggestedWindow\":{\"start\":\"2025-01-02T04:00:00Z\","
                             "\"end\":\"2025-01-03T04:00:00Z\"},"
                             "\"explanationURL\":\"https://acme.example.com/docs/ari\"}";
    static const char reversed[] = "{\"suggestedWindow\":{\"start\":\"2025-01-03T04:00:00Z\","
                                   "\"end\":\"2025-01-02T04:00:00Z\"}}";
    cs_acme_window w;
    (void)state;

    assert_int_equal(cs_acme_ari_window(ok, strlen(ok), &w), CS_OK);
    assert_int_equal(w.start, 1735790400);
    assert_int_equal(w.end, 1735790400 + 86400);
    assert_int_equal(cs_acme_ari_pick(&w, 0.0), w.start);
    assert_int_equal(cs_acme_ari_pick(&w, 0.5), w.start + 43200);
    assert_true(cs_acme_ari_pick(&w, 0.999999) < w.end);
    assert_int_equal(cs_acme_ari_pick(&w, 1.5), w.start); /* out of range: the start */
    assert_int_equal(cs_acme_ari_window(reversed, strlen(reversed), &w), CS_EPROVIDER);
    assert_int_equal(cs_acme_ari_window("{}", 2, &w), CS_EPROVIDER);
    assert_non_null(strstr(cs_error_last(), "no valid suggestedWindow"));
}

/* A suggestion kept in the store (recheck in the future) decides without asking the CA. */
static void a_kept_suggestion_decides_without_a_request(void **state)
{
    char *dir = cs_test_tmpdir("acme-ari"), reason[256] = "", text[512];
    cs_provider_conf pv = {0};
    X509 *x = rfc9773_cert();
    time_t now = 1735790400;
    cs_store *s;
    cs_acme *a;
    int afd;
    (void)state;

    pv.name = "ca";
    pv.directory = "https://127.0.0.1:9/unreachable"; /* any request would fail */
    assert_int_equal(cs_store_open(dir, NULL, &s), CS_OK);
    assert_int_equal(cs_acme_new(&pv, s, &a), CS_OK);
    assert_int_equal(cs_acme_area(a, &afd), CS_OK);
    static const long chosen[] = {1735790400 - 60, 1735790400 + 3600, -1};
    static const int due[] = {1, 0, 0};
    for (size_t i = 0; i < 3; i++) {
        snprintf(text, sizeof(text),
                 "{\"id\":\"aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE\",\"start\":%ld,\"end\":%ld,"
                 "\"chosen\":%ld,\"recheck\":%ld}",
                 (long)now - 3600, (long)now + 86400, chosen[i], (long)now + 600);
        assert_int_equal(
            cs_fs_write_at(afd, "ari-shop.json", text, strlen(text), 0600, (gid_t)-1, 0), CS_OK);
        reason[0] = '\0';
        assert_int_equal(cs_acme_ari_due(a, "shop", x, now, reason, sizeof(reason)), due[i]);
        if (due[i])
            assert_string_equal(reason, "the CA suggests renewing from 2025-01-02T03:00:00Z (ARI)");
    }
    /* kept for another certificate (the id differs): not used; the CA is asked, which fails */
    snprintf(text, sizeof(text),
             "{\"id\":\"other.AIdlQyE\",\"start\":0,\"end\":1,\"chosen\":0,\"recheck\":%ld}",
             (long)now + 600);
    cs_fs_write_at(afd, "ari-shop.json", text, strlen(text), 0600, (gid_t)-1, 0);
    assert_int_equal(cs_acme_ari_due(a, "shop", x, now, reason, sizeof(reason)), 0);
    close(afd);
    cs_acme_free(a);
    cs_store_free(s);
    X509_free(x);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_certificate_id_is_rfc9773s_example),
        cmocka_unit_test(rfc3339_times_with_fractions_and_offsets),
        cmocka_unit_test(the_suggested_window_is_read_and_a_time_picked_inside_it),
        cmocka_unit_test(a_kept_suggestion_decides_without_a_request),
    };

    return cmocka_run_group_tests_name("acme_ari", tests, NULL, NULL);
}
