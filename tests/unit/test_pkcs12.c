/* PKCS#12 profiles and the console-style layouts. */
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cs_fs.h"
#include "cs_output.h"
#include "cs_pkcs12.h"
#include "cs_test.h"

static const char *const names[] = {"shop.example.com"};

/* The encryption algorithm of the first encrypted bag set (the certificates). */
static int cert_bag_nid(PKCS12 *p12, int *prf_nid)
{
    STACK_OF(PKCS7) *safes = PKCS12_unpack_authsafes(p12);
    int nid = NID_undef;

    *prf_nid = NID_undef;
    for (int i = 0; i < sk_PKCS7_num(safes); i++) {
        PKCS7 *p7 = sk_PKCS7_value(safes, i);

        if (OBJ_obj2nid(p7->type) == NID_pkcs7_encrypted) {
            X509_ALGOR *alg = p7->d.encrypted->enc_data->algorithm;

            nid = OBJ_obj2nid(alg->algorithm);
            if (nid == NID_pbes2) {
                PBE2PARAM *pbe2 =
                    ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM), alg->parameter);
                PBKDF2PARAM *kdf = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM),
                                                             pbe2->keyfunc->parameter);

                nid = OBJ_obj2nid(pbe2->encryption->algorithm);
                *prf_nid = kdf->prf ? OBJ_obj2nid(kdf->prf->algorithm) : NID_hmacWithSHA1;
                PBKDF2PARAM_free(kdf);
                PBE2PARAM_free(pbe2);
            }
        }
    }
    sk_PKCS7_pop_free(safes, PKCS7_free);
    return nid;
}

static void check_profile(cs_p12_profile profile, int want_cipher, int want_prf, int want_mac)
{
    cs_test_chain c;
    unsigned char *der;
    const unsigned char *p;
    size_t len;
    PKCS12 *p12;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    STACK_OF(X509) *ca = NULL;
    const X509_ALGOR *macalg;
    const ASN1_OBJECT *macobj;
    const ASN1_INTEGER *iter;
    int prf;
    unsigned char *fn;

    cs_test_chain_make(&c, CS_KEY_RSA2048, names, 1, -1, 90);
    assert_int_equal(cs_pkcs12_write(c.bundle, "shop", "pässword", profile, &der, &len), CS_OK);
    p = der;
    p12 = d2i_PKCS12(NULL, &p, (long)len);
    assert_non_null(p12);
    assert_int_equal(PKCS12_verify_mac(p12, "wrong", -1), 0);
    assert_int_equal(PKCS12_verify_mac(p12, "pässword", -1), 1);
    PKCS12_get0_mac(NULL, &macalg, NULL, &iter, p12);
    X509_ALGOR_get0(&macobj, NULL, NULL, macalg);
    assert_int_equal(OBJ_obj2nid(macobj), want_mac);
    assert_int_equal(ASN1_INTEGER_get(iter), 2048);
    assert_int_equal(cert_bag_nid(p12, &prf), want_cipher);
    assert_int_equal(prf, want_prf);
    assert_int_equal(PKCS12_parse(p12, "pässword", &key, &cert, &ca), 1);
    assert_int_equal(X509_cmp(cert, c.leaf), 0);
    assert_int_equal(sk_X509_num(ca), 1);
    assert_int_equal(X509_cmp(sk_X509_value(ca, 0), c.inter), 0);
    assert_true(cs_key_matches_cert(key, c.leaf));
    fn = X509_alias_get0(cert, NULL);
    assert_non_null(fn);
    assert_memory_equal(fn, "shop", 4);
    EVP_PKEY_free(key);
    X509_free(cert);
    sk_X509_pop_free(ca, X509_free);
    PKCS12_free(p12);
    free(der);
    cs_test_chain_free(&c);
}

static void modern_is_aes256_pbkdf2_sha256(void **state)
{
    (void)state;
    check_profile(CS_P12_MODERN, NID_aes_256_cbc, NID_hmacWithSHA256, NID_sha256);
}

static void legacy_is_3des_sha1(void **state)
{
    (void)state;
    check_profile(CS_P12_LEGACY, NID_pbe_WithSHA1And3_Key_TripleDES_CBC, NID_undef, NID_sha1);
}

static void an_empty_password_is_refused(void **state)
{
    cs_test_chain c;
    unsigned char *der;
    size_t len;
    (void)state;

    cs_test_chain_make(&c, CS_KEY_EC256, names, 1, -1, 90);
    assert_int_equal(cs_pkcs12_write(c.bundle, "a", "", CS_P12_MODERN, &der, &len), CS_EPASSWORD);
    cs_test_chain_free(&c);
}

static mode_t mode_of(const char *path)
{
    struct stat st;

    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 0777;
}

static void console_layouts_match_the_download_zips(void **state)
{
    char *d = cs_test_tmpdir("layout"), *data, *leaf;
    cs_output_opts o = {"shop", "shop", CS_P12_MODERN, "pw1234", "pw5678", NULL};
    cs_test_chain c;
    size_t len, leaf_len;
    (void)state;

    cs_test_chain_make(&c, CS_KEY_EC256, names, 1, -1, 90);
    assert_int_equal(cs_output_write(d, c.bundle, CS_FMT_NGINX | CS_FMT_APACHE | CS_FMT_PFX, &o),
                     CS_OK);
    /* nginx: leaf then chain in <name>.pem */
    assert_int_equal(cs_fs_read(cs_test_path(d, "shop.pem"), 100000, &data, &len), CS_OK);
    assert_int_equal(cs_bundle_pem_leaf(c.bundle, &leaf, &leaf_len), CS_OK);
    assert_memory_equal(data, leaf, leaf_len);
    assert_non_null(strstr(data + leaf_len, "BEGIN CERTIFICATE"));
    free(data);
    /* apache: leaf alone in _public.crt, chain in _chain.crt */
    assert_int_equal(cs_fs_read(cs_test_path(d, "shop_public.crt"), 100000, &data, &len), CS_OK);
    assert_int_equal(len, leaf_len);
    free(data);
    free(leaf);
    assert_int_equal(access(cs_test_path(d, "shop_chain.crt"), R_OK), 0);
    assert_int_equal(mode_of(cs_test_path(d, "shop.key")), 0600);
    assert_int_equal(mode_of(cs_test_path(d, "shop.pfx")), 0600);
    assert_int_equal(mode_of(cs_test_path(d, "pfx-password.txt")), 0600);
    assert_int_equal(cs_fs_read(cs_test_path(d, "pfx-password.txt"), 100, &data, &len), CS_OK);
    assert_string_equal(data, "pw1234\n");
    free(data);
    assert_int_equal(access(cs_test_path(d, "fullchain.pem"), F_OK), -1);
    cs_test_chain_free(&c);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(modern_is_aes256_pbkdf2_sha256),
        cmocka_unit_test(legacy_is_3des_sha1),
        cmocka_unit_test(an_empty_password_is_refused),
        cmocka_unit_test(console_layouts_match_the_download_zips),
    };

    return cmocka_run_group_tests_name("pkcs12", tests, NULL, NULL);
}
