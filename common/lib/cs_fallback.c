/* certsync: the self-signed fallback certificate (see cs_fallback.h). */
#include <stdio.h>

#include "cs_fallback.h"

cs_key_type cs_fallback_key_type(cs_key_type key_type)
{
    switch (key_type) {
    case CS_KEY_RSA2048:
    case CS_KEY_RSA3072:
    case CS_KEY_RSA4096:
        return CS_KEY_RSA2048; /* made at every start: the quickest RSA that clients accept */
    default:
        return CS_KEY_EC256;
    }
}

cs_rc cs_fallback_issue(const cs_fallback_spec *spec, cs_bundle **out)
{
    char cn[65]; /* X.509's upper bound for a CN */
    const char *only[1] = {spec->name};
    cs_cert_spec cert = {0};
    EVP_PKEY *key = spec->key;
    time_t now = spec->now ? spec->now : time(NULL);
    X509 *x = NULL;
    cs_rc rc = CS_OK;

    *out = NULL;
    if (spec->name == NULL || spec->name[0] == '\0')
        return cs_error_set(CS_EINVAL, "a fallback certificate needs the certificate's name");
    snprintf(cn, sizeof(cn), "certsync fallback for %s", spec->name);
    cert.common_name = cn;
    cert.names = spec->n_names ? spec->names : only;
    cert.n_names = spec->n_names ? spec->n_names : 1;
    cert.not_before = now - 3600;
    cert.not_after = now + CS_FALLBACK_DAYS * 86400L;
    if (key == NULL)
        rc = cs_key_generate(cs_fallback_key_type(spec->key_type), &key);
    if (rc == CS_OK)
        rc = cs_cert_issue(&cert, key, NULL, key, &x);
    if (rc == CS_OK)
        rc = cs_bundle_new(x, NULL, key, out);
    X509_free(x);
    if (key != spec->key)
        EVP_PKEY_free(key);
    if (rc != CS_OK)
        return cs_error_prefix("the fallback certificate for '%s'", spec->name);
    return CS_OK;
}
