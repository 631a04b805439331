#include "cs_output.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_fs.h"
#include "cs_jks.h"
#include "cs_password.h"

cs_rc cs_format_parse(const char *s, unsigned *bit)
{
    if (strcmp(s, "pem") == 0)
        *bit = CS_FMT_PEM;
    else if (strcmp(s, "pfx") == 0 || strcmp(s, "pkcs12") == 0 || strcmp(s, "tomcat") == 0 ||
             strcmp(s, "iis") == 0)
        *bit = CS_FMT_PFX;
    else if (strcmp(s, "jks") == 0)
        *bit = CS_FMT_JKS;
    else if (strcmp(s, "nginx") == 0)
        *bit = CS_FMT_NGINX;
    else if (strcmp(s, "apache") == 0)
        *bit = CS_FMT_APACHE;
    else
        return cs_error_set(CS_EINVAL,
                            "unknown format '%s'; use pem, pfx, jks, nginx, apache, tomcat "
                            "or iis",
                            s);
    return CS_OK;
}

const char *cs_safe_file_name(const char *s, int id, const char *fallback)
{
    size_t i, n = s ? strlen(s) : 0;

    if (n == 0 || n > 64 || s[0] == '.' || strstr(s, "..") != NULL)
        return fallback;
    for (i = 0; i < n; i++) {
        char c = s[i];
        int digit = c >= '0' && c <= '9';
        int letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');

        if (id ? !digit : !(digit || letter || (c && strchr("._-", c))))
            return fallback;
    }
    return s;
}

static cs_rc put(const char *dir, const char *file, const void *data, size_t len, mode_t mode)
{
    char path[4096];

    if (cs_fs_join(path, sizeof(path), dir, file) != CS_OK)
        return cs_error_code();
    return cs_fs_write_atomic(path, data, len, mode);
}

static cs_rc put_named(const char *dir, const char *name, const char *suffix, const void *data,
                       size_t len, mode_t mode)
{
    char file[512];

    if (snprintf(file, sizeof(file), "%s%s", name, suffix) >= (int)sizeof(file))
        return cs_error_set(CS_EINVAL, "the name '%s' is too long", name);
    return put(dir, file, data, len, mode);
}

static cs_rc put_password(const char *dir, const char *file, const char *password)
{
    char path[4096];

    if (cs_fs_join(path, sizeof(path), dir, file) != CS_OK)
        return cs_error_code();
    return cs_password_write(path, password);
}

cs_rc cs_output_pfx_file(const char *path, const cs_bundle *b, const char *alias,
                         const char *password, cs_p12_profile profile)
{
    unsigned char *der;
    size_t len;
    cs_rc rc;

    rc = cs_pkcs12_write(b, alias, password, profile, &der, &len);
    if (rc != CS_OK)
        return rc;
    rc = cs_fs_write_atomic(path, der, len, 0600);
    OPENSSL_cleanse(der, len);
    free(der);
    return rc;
}

cs_rc cs_output_jks_file(const char *path, const cs_bundle *b, const char *alias,
                         const char *store_password, const char *key_password)
{
    unsigned char *data;
    size_t len;
    cs_rc rc;

    rc = cs_jks_write(b, alias, store_password, key_password ? key_password : store_password, 0,
                      &data, &len);
    if (rc != CS_OK)
        return rc;
    rc = cs_fs_write_atomic(path, data, len, 0600);
    free(data);
    return rc;
}

cs_rc cs_output_write(const char *dir, const cs_bundle *b, unsigned formats,
                      const cs_output_opts *o)
{
    char *leaf = NULL, *chain = NULL, *key = NULL, *full = NULL, path[4096], file[512];
    size_t leaf_len, chain_len, key_len;
    const char *alias = o->alias ? o->alias : o->name;
    cs_rc rc;

    if (o->name == NULL || o->name[0] == '\0' || o->name[0] == '.' || strchr(o->name, '/'))
        return cs_error_set(CS_EINVAL,
                            "'%s' cannot name a file in %s: a file name may not start with '.' "
                            "or hold '/'",
                            o->name ? o->name : "", dir);
    rc = cs_bundle_pem_leaf(b, &leaf, &leaf_len);
    if (rc == CS_OK)
        rc = cs_bundle_pem_issuers(b, &chain, &chain_len);
    if (rc == CS_OK)
        rc = cs_bundle_pem_key(b, &key, &key_len);
    if (rc == CS_OK && (full = malloc(leaf_len + chain_len + 1)) == NULL)
        rc = cs_error_set(CS_ENOMEM, "out of memory");
    if (rc == CS_OK) {
        memcpy(full, leaf, leaf_len);
        memcpy(full + leaf_len, chain, chain_len + 1);
    }
    if (rc == CS_OK && (formats & CS_FMT_PEM)) {
        if ((rc = put(dir, "fullchain.pem", full, leaf_len + chain_len, 0644)) == CS_OK &&
            (rc = put(dir, "cert.pem", leaf, leaf_len, 0644)) == CS_OK &&
            (rc = put(dir, "chain.pem", chain, chain_len, 0644)) == CS_OK)
            rc = put(dir, "privkey.pem", key, key_len, 0600);
    }
    if (rc == CS_OK && (formats & CS_FMT_NGINX))
        rc = put_named(dir, o->name, ".pem", full, leaf_len + chain_len, 0644);
    if (rc == CS_OK && (formats & CS_FMT_APACHE)) {
        if ((rc = put_named(dir, o->name, "_public.crt", leaf, leaf_len, 0644)) == CS_OK)
            rc = put_named(dir, o->name, "_chain.crt", chain, chain_len, 0644);
    }
    if (rc == CS_OK && (formats & (CS_FMT_NGINX | CS_FMT_APACHE)))
        rc = put_named(dir, o->name, ".key", key, key_len, 0600);
    if (rc == CS_OK && (formats & CS_FMT_PFX)) {
        snprintf(file, sizeof(file), "%s.pfx", o->name);
        if ((rc = cs_fs_join(path, sizeof(path), dir, file)) == CS_OK &&
            (rc = cs_output_pfx_file(path, b, alias, o->pfx_password, o->profile)) == CS_OK)
            rc = put_password(dir, "pfx-password.txt", o->pfx_password);
    }
    if (rc == CS_OK && (formats & CS_FMT_JKS)) {
        snprintf(file, sizeof(file), "%s.jks", o->name);
        if ((rc = cs_fs_join(path, sizeof(path), dir, file)) == CS_OK &&
            (rc = cs_output_jks_file(path, b, alias, o->jks_password, o->jks_key_password)) ==
                CS_OK)
            rc = put_password(dir, "jks-password.txt", o->jks_password);
    }
    if (key)
        OPENSSL_cleanse(key, key_len);
    free(leaf);
    free(chain);
    free(key);
    free(full);
    return rc;
}
