/*
 * tls-alpn-01 (RFC 8737): the CA connects to port 443 of the name with ALPN
 * "acme-tls/1" and expects a self-signed certificate for the name carrying
 * the critical acmeIdentifier extension (1.3.6.1.5.5.7.1.31) = SHA-256 of the
 * key authorization. The certificate and its throwaway key go into the
 * store's challenges/<name>/acme-tls-alpn/validation.pem, which the nginx
 * and Apache modules read in such a handshake (through cs_store_read_challenge).
 */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "cs_acme.h"

#define ALPN_KIND "acme-tls-alpn"
#define ALPN_FILE "validation.pem"
#define ACME_IDENTIFIER_OID "1.3.6.1.5.5.7.1.31"

/* The critical acmeIdentifier extension: DER OCTET STRING of the 32-byte digest. */
static int add_identifier(X509 *x, const char *ka)
{
    unsigned char md[32], der[34];
    ASN1_OBJECT *oid = OBJ_txt2obj(ACME_IDENTIFIER_OID, 1);
    ASN1_OCTET_STRING *val = ASN1_OCTET_STRING_new();
    X509_EXTENSION *ext = NULL;
    int ok;

    der[0] = 0x04; /* OCTET STRING, 32 bytes */
    der[1] = 32;
    ok = oid && val && EVP_Digest(ka, strlen(ka), md, NULL, EVP_sha256(), NULL) &&
         (memcpy(der + 2, md, 32), ASN1_OCTET_STRING_set(val, der, sizeof(der))) &&
         (ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 1, val)) != NULL &&
         X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    ASN1_OCTET_STRING_free(val);
    ASN1_OBJECT_free(oid);
    return ok;
}

static int add_san(X509 *x, const char *domain)
{
    char *san = NULL;
    X509_EXTENSION *ext = NULL;
    int ok = asprintf(&san, "DNS:%s", domain) > 0 &&
             (ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san)) != NULL &&
             X509_add_ext(x, ext, -1);

    X509_EXTENSION_free(ext);
    free(san);
    return ok;
}

static char *pem_of(X509 *x, EVP_PKEY *key)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *p, *out = NULL;
    long n;

    if (bio && PEM_write_bio_X509(bio, x) &&
        PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) &&
        (n = BIO_get_mem_data(bio, &p)) > 0 && (out = malloc((size_t)n + 1)) != NULL) {
        memcpy(out, p, (size_t)n);
        out[n] = '\0';
        OPENSSL_cleanse(p, (size_t)n);
    }
    BIO_free(bio);
    return out;
}

cs_rc cs_acme_alpn_cert(const char *domain, const char *ka, char **pem)
{
    X509 *x = X509_new();
    EVP_PKEY *key = NULL;
    int ok;

    *pem = NULL;
    ok = x && cs_key_generate(CS_KEY_EC256, &key) == CS_OK && X509_set_version(x, 2) &&
         ASN1_INTEGER_set(X509_get_serialNumber(x), 1) &&
         X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
                                    (const unsigned char *)"ACME tls-alpn-01", -1, -1, 0) &&
         X509_set_issuer_name(x, X509_get_subject_name(x)) &&
         X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
         X509_gmtime_adj(X509_getm_notAfter(x), 7 * 86400) && X509_set_pubkey(x, key) &&
         add_san(x, domain) && add_identifier(x, ka) && X509_sign(x, key, EVP_sha256()) &&
         (*pem = pem_of(x, key)) != NULL;
    X509_free(x);
    EVP_PKEY_free(key);
    if (!ok)
        return cs_error_set(CS_ERR, "cannot make the tls-alpn-01 certificate for '%s': %s", domain,
                            cs_error_openssl());
    return CS_OK;
}

cs_rc cs_acme_alpn_publish(cs_acme *a, const char *domain, const char *token, const char *ka)
{
    char *pem = NULL;
    cs_rc rc;

    (void)token;
    if (cs_acme_alpn_cert(domain, ka, &pem) != CS_OK)
        return cs_error_code();
    rc = cs_store_write_challenge(cs_acme_store(a), domain, ALPN_KIND, ALPN_FILE, pem);
    OPENSSL_cleanse(pem, strlen(pem));
    free(pem);
    return rc;
}

void cs_acme_alpn_withdraw(cs_acme *a, const char *domain, const char *token)
{
    (void)token;
    cs_store_remove_challenge(cs_acme_store(a), domain, ALPN_KIND, ALPN_FILE);
}
