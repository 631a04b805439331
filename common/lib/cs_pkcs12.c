#include "cs_pkcs12.h"

#include <openssl/err.h>
#include <openssl/pkcs12.h>
#include <stdlib.h>
#include <string.h>

/* OpenSSL 3's `pkcs12 -export` default; both profiles use it. */
#define CS_P12_ITER 2048

cs_rc cs_p12_profile_parse(const char *s, cs_p12_profile *out)
{
    if (strcmp(s, "modern") == 0)
        *out = CS_P12_MODERN;
    else if (strcmp(s, "legacy") == 0)
        *out = CS_P12_LEGACY;
    else
        return cs_error_set(CS_EINVAL, "unknown PKCS#12 profile '%s'; use modern or legacy", s);
    return CS_OK;
}

cs_rc cs_pkcs12_write(const cs_bundle *b, const char *alias, const char *password,
                      cs_p12_profile profile, unsigned char **out, size_t *out_len)
{
    int pbe = profile == CS_P12_MODERN ? NID_aes_256_cbc : NID_pbe_WithSHA1And3_Key_TripleDES_CBC;
    const EVP_MD *mac = profile == CS_P12_MODERN ? EVP_sha256() : EVP_sha1();
    unsigned char *der = NULL;
    PKCS12 *p12;
    int n;

    if (password == NULL || password[0] == '\0')
        return cs_error_set(CS_EPASSWORD, "a PKCS#12 file needs a non-empty password");
    /* no MAC here (-1): it is added below with the profile's digest */
    p12 = PKCS12_create((char *)password, (char *)alias, cs_bundle_key(b), cs_bundle_leaf(b),
                        cs_bundle_issuers(b), pbe, pbe, CS_P12_ITER, -1, 0);
    if (p12 == NULL)
        return cs_error_set(CS_ERR, "cannot build the PKCS#12 file: %s", cs_error_openssl());
    if (PKCS12_set_mac(p12, password, -1, NULL, 0, CS_P12_ITER, mac) != 1) {
        PKCS12_free(p12);
        return cs_error_set(CS_ERR, "cannot add the PKCS#12 MAC: %s", cs_error_openssl());
    }
    n = i2d_PKCS12(p12, &der);
    PKCS12_free(p12);
    if (n <= 0)
        return cs_error_set(CS_ERR, "cannot encode the PKCS#12 file: %s", cs_error_openssl());
    /* hand out plain malloc'd memory like the other writers */
    *out = malloc((size_t)n);
    if (*out == NULL) {
        OPENSSL_free(der);
        return cs_error_set(CS_ENOMEM, "out of memory");
    }
    memcpy(*out, der, (size_t)n);
    OPENSSL_free(der);
    *out_len = (size_t)n;
    return CS_OK;
}
