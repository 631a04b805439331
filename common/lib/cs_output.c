#include "cs_output.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_fs.h"
#include "cs_jks.h"
#include "cs_password.h"

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

/* What every format's writer is given: the bundle's parts, encoded once. */
typedef struct {
    const char *dir;
    const cs_bundle *b;
    const cs_output_opts *o;
    const char *alias;
    char *leaf, *chain, *key, *full;
    size_t leaf_len, chain_len, key_len;
} parts;

static cs_rc write_pem(const parts *p)
{
    cs_rc rc;

    if ((rc = put(p->dir, "fullchain.pem", p->full, p->leaf_len + p->chain_len, 0644)) == CS_OK &&
        (rc = put(p->dir, "cert.pem", p->leaf, p->leaf_len, 0644)) == CS_OK &&
        (rc = put(p->dir, "chain.pem", p->chain, p->chain_len, 0644)) == CS_OK)
        rc = put(p->dir, "privkey.pem", p->key, p->key_len, 0600);
    return rc;
}

static cs_rc write_nginx(const parts *p)
{
    cs_rc rc = put_named(p->dir, p->o->name, ".pem", p->full, p->leaf_len + p->chain_len, 0644);

    return rc == CS_OK ? put_named(p->dir, p->o->name, ".key", p->key, p->key_len, 0600) : rc;
}

static cs_rc write_apache(const parts *p)
{
    cs_rc rc;

    if ((rc = put_named(p->dir, p->o->name, "_public.crt", p->leaf, p->leaf_len, 0644)) == CS_OK &&
        (rc = put_named(p->dir, p->o->name, "_chain.crt", p->chain, p->chain_len, 0644)) == CS_OK)
        rc = put_named(p->dir, p->o->name, ".key", p->key, p->key_len, 0600);
    return rc;
}

/* dir/<name><suffix>, for the single-file writers. */
static cs_rc named_path(const parts *p, const char *suffix, char *path, size_t size)
{
    char file[512];

    if (snprintf(file, sizeof(file), "%s%s", p->o->name, suffix) >= (int)sizeof(file))
        return cs_error_set(CS_EINVAL, "the name '%s' is too long", p->o->name);
    return cs_fs_join(path, size, p->dir, file);
}

static cs_rc write_pfx(const parts *p)
{
    char path[4096];
    cs_rc rc;

    if ((rc = named_path(p, ".pfx", path, sizeof(path))) == CS_OK &&
        (rc = cs_output_pfx_file(path, p->b, p->alias, p->o->pfx_password, p->o->profile)) == CS_OK)
        rc = put_password(p->dir, "pfx-password.txt", p->o->pfx_password);
    return rc;
}

static cs_rc write_jks(const parts *p)
{
    char path[4096];
    cs_rc rc;

    if ((rc = named_path(p, ".jks", path, sizeof(path))) == CS_OK &&
        (rc = cs_output_jks_file(path, p->b, p->alias, p->o->jks_password,
                                 p->o->jks_key_password)) == CS_OK)
        rc = put_password(p->dir, "jks-password.txt", p->o->jks_password);
    return rc;
}

/* The formats: a new one is a row here plus its writer. */
static const struct {
    const char *name;
    const char *more; /* other words for it, space separated */
    unsigned bit;
    const char *files; /* what it writes (NAME: the certificate's name) */
    cs_rc (*write)(const parts *p);
} formats[] = {
    {"pem", "", CS_FMT_PEM, "fullchain.pem cert.pem chain.pem privkey.pem", write_pem},
    {"pfx", "pkcs12 tomcat iis", CS_FMT_PFX, "NAME.pfx pfx-password.txt", write_pfx},
    {"jks", "", CS_FMT_JKS, "NAME.jks jks-password.txt", write_jks},
    {"nginx", "", CS_FMT_NGINX, "NAME.pem NAME.key", write_nginx},
    {"apache", "", CS_FMT_APACHE, "NAME_public.crt NAME_chain.crt NAME.key", write_apache},
};

#define N_FORMATS (sizeof(formats) / sizeof(formats[0]))

/* word is one of the space-separated words of list */
static int among(const char *word, const char *list)
{
    size_t n = strlen(word);

    for (const char *w = list; (w = strstr(w, word)) != NULL; w += n)
        if ((w == list || w[-1] == ' ') && (w[n] == ' ' || w[n] == '\0'))
            return 1;
    return 0;
}

const char *cs_format_names(void)
{
    static char list[256];
    size_t i, n = 0;

    if (list[0] == '\0')
        for (i = 0; i < N_FORMATS && n < sizeof(list); i++)
            n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s%s%s%s", i ? ", " : "",
                                  formats[i].name, formats[i].more[0] ? " (or " : "",
                                  formats[i].more, formats[i].more[0] ? ")" : "");
    return list;
}

cs_rc cs_format_parse(const char *s, unsigned *bit)
{
    size_t i;

    for (i = 0; i < N_FORMATS; i++)
        if (strcmp(s, formats[i].name) == 0 || among(s, formats[i].more)) {
            *bit = formats[i].bit;
            return CS_OK;
        }
    return cs_error_set(CS_EINVAL, "unknown format '%s'; known formats: %s", s, cs_format_names());
}

const char *cs_format_name(unsigned bit)
{
    size_t i;

    for (i = 0; i < N_FORMATS; i++)
        if (formats[i].bit == bit)
            return formats[i].name;
    return NULL;
}

const char *cs_format_files(unsigned bit)
{
    size_t i;

    for (i = 0; i < N_FORMATS; i++)
        if (formats[i].bit == bit)
            return formats[i].files;
    return NULL;
}

static cs_rc encode(parts *p)
{
    cs_rc rc = cs_bundle_pem_leaf(p->b, &p->leaf, &p->leaf_len);

    if (rc == CS_OK)
        rc = cs_bundle_pem_issuers(p->b, &p->chain, &p->chain_len);
    if (rc == CS_OK)
        rc = cs_bundle_pem_key(p->b, &p->key, &p->key_len);
    if (rc == CS_OK && (p->full = malloc(p->leaf_len + p->chain_len + 1)) == NULL)
        rc = cs_error_set(CS_ENOMEM, "out of memory");
    if (rc == CS_OK) {
        memcpy(p->full, p->leaf, p->leaf_len);
        memcpy(p->full + p->leaf_len, p->chain, p->chain_len + 1);
    }
    return rc;
}

cs_rc cs_output_write(const char *dir, const cs_bundle *b, unsigned wanted, const cs_output_opts *o)
{
    parts p = {dir, b, o, o->alias ? o->alias : o->name, NULL, NULL, NULL, NULL, 0, 0, 0};
    size_t i;
    cs_rc rc;

    if (o->name == NULL || o->name[0] == '\0' || o->name[0] == '.' || strchr(o->name, '/'))
        return cs_error_set(CS_EINVAL,
                            "'%s' cannot name a file in %s: a file name may not start with '.' "
                            "or hold '/'",
                            o->name ? o->name : "", dir);
    rc = encode(&p);
    for (i = 0; rc == CS_OK && i < N_FORMATS; i++)
        if (wanted & formats[i].bit)
            rc = formats[i].write(&p);
    if (p.key)
        OPENSSL_cleanse(p.key, p.key_len);
    free(p.leaf);
    free(p.chain);
    free(p.key);
    free(p.full);
    return rc;
}
