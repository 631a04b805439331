#include "cs_crypt.h"

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <string.h>

static const struct {
    const char *name;
    const char *alias;
    cs_key_type type;
} key_types[] = {
    {"rsa2048", "rsa", CS_KEY_RSA2048}, {"rsa3072", NULL, CS_KEY_RSA3072},
    {"rsa4096", NULL, CS_KEY_RSA4096},  {"ec256", "p256", CS_KEY_EC256},
    {"ec384", "p384", CS_KEY_EC384},
};

cs_rc cs_key_type_parse(const char *s, cs_key_type *out)
{
    size_t i;

    for (i = 0; i < sizeof(key_types) / sizeof(key_types[0]); i++)
        if (strcmp(s, key_types[i].name) == 0 ||
            (key_types[i].alias && strcmp(s, key_types[i].alias) == 0)) {
            *out = key_types[i].type;
            return CS_OK;
        }
    return cs_error_set(CS_EINVAL,
                        "unknown key type '%s'; use rsa2048, rsa3072, rsa4096, ec256 or ec384", s);
}

const char *cs_key_type_name(cs_key_type t)
{
    size_t i;

    for (i = 0; i < sizeof(key_types) / sizeof(key_types[0]); i++)
        if (key_types[i].type == t)
            return key_types[i].name;
    return "?";
}

cs_rc cs_key_generate(cs_key_type type, EVP_PKEY **out)
{
    EVP_PKEY *k = NULL;

    switch (type) {
    case CS_KEY_RSA2048:
        k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
        break;
    case CS_KEY_RSA3072:
        k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
        break;
    case CS_KEY_RSA4096:
        k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
        break;
    case CS_KEY_EC256:
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        break;
    case CS_KEY_EC384:
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
        break;
    }
    if (k == NULL)
        return cs_error_set(CS_ERR, "cannot generate a %s key: %s", cs_key_type_name(type),
                            cs_error_openssl());
    *out = k;
    return CS_OK;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx(&ctx, issuer ? issuer : cert, cert, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL)
        return 0;
    ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

static int add_sans(X509 *cert, const char *const *names, size_t n)
{
    GENERAL_NAMES *gens = GENERAL_NAMES_new();
    size_t i;
    int ok = gens != NULL;

    /* a name that cannot be added fails the certificate: never one with a SAN missing */
    for (i = 0; ok && i < n; i++) {
        GENERAL_NAME *g = GENERAL_NAME_new();
        ASN1_IA5STRING *s = ASN1_IA5STRING_new();

        ok = g && s && ASN1_STRING_set(s, names[i], (int)strlen(names[i]));
        if (ok)
            GENERAL_NAME_set0_value(g, GEN_DNS, s);
        else
            ASN1_IA5STRING_free(s);
        if (!ok || sk_GENERAL_NAME_push(gens, g) <= 0) {
            GENERAL_NAME_free(g);
            ok = 0;
        }
    }
    ok = ok && X509_add1_ext_i2d(cert, NID_subject_alt_name, gens, 0, 0) == 1;
    GENERAL_NAMES_free(gens);
    return ok;
}

cs_rc cs_cert_issue(const cs_cert_spec *spec, EVP_PKEY *pubkey, X509 *issuer, EVP_PKEY *issuer_key,
                    X509 **out)
{
    unsigned char serial[16];
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    BIGNUM *bn = NULL;
    int ok;

    /* a serial that is not random would repeat across issues: no certificate then */
    if (RAND_bytes(serial, sizeof(serial)) == 1) {
        serial[0] &= 0x7f; /* positive, 127 random bits */
        bn = BN_bin2bn(serial, sizeof(serial), NULL);
    }
    ok = x && name && bn && X509_set_version(x, 2) &&
         BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) &&
         X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                    (const unsigned char *)spec->common_name, -1, -1, 0) &&
         X509_set_subject_name(x, name) &&
         X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) &&
         X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, (time_t *)&spec->not_before) &&
         X509_time_adj_ex(X509_getm_notAfter(x), 0, 0, (time_t *)&spec->not_after) &&
         X509_set_pubkey(x, pubkey) && add_ext(x, issuer, NID_subject_key_identifier, "hash") &&
         add_ext(x, issuer, NID_authority_key_identifier, "keyid:always");
    if (ok && spec->is_ca)
        ok = add_ext(x, issuer, NID_basic_constraints, "critical,CA:TRUE") &&
             add_ext(x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
    else if (ok)
        ok = add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE") &&
             add_ext(x, issuer, NID_key_usage, "critical,digitalSignature,keyEncipherment") &&
             add_ext(x, issuer, NID_ext_key_usage, "serverAuth");
    if (ok && spec->n_names > 0)
        ok = add_sans(x, spec->names, spec->n_names);
    if (ok)
        ok = X509_sign(x, issuer_key, EVP_sha256()) > 0;
    BN_free(bn);
    X509_NAME_free(name);
    if (!ok) {
        X509_free(x);
        return cs_error_set(CS_ERR, "cannot issue a certificate for '%s': %s", spec->common_name,
                            cs_error_openssl());
    }
    *out = x;
    return CS_OK;
}
