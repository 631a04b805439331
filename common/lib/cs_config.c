#include "cs_config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_output.h"
#include "cs_provider.h"

/* Parser state: inih calls us per key; the reader counts lines for errors. */
typedef struct {
    cs_config *c;
    FILE *f;
    int line;       /* line of the text inih is handling */
    int partial;    /* the last chunk did not end a line */
    int too_long;   /* a line longer than inih's buffer */
    int continued;  /* the line starts with blanks: it continues a value */
    char err[1536]; /* first error */
    char section[256];
    char keys[64][40]; /* keys seen in the current section, for duplicates */
    int key_lines[64];
    int n_keys;
} parse_ctx;

static char *reader(char *buf, int size, void *stream)
{
    parse_ctx *p = stream;
    char *r = fgets(buf, size, p->f);
    size_t n;

    if (r == NULL)
        return NULL;
    if (!p->partial) {
        p->line++;
        p->continued = buf[0] == ' ' || buf[0] == '\t';
    }
    n = strlen(buf);
    p->partial = n > 0 && buf[n - 1] != '\n' && !feof(p->f);
    if (p->partial && !p->too_long)
        p->too_long = p->line;
    return r;
}

static void fail(parse_ctx *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(parse_ctx *p, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    if (p->err[0])
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(p->err, sizeof(p->err), "%s:%d: %s", p->c->path, p->line, msg);
}

int cs_name_valid(const char *name)
{
    size_t i, n = strlen(name);

    if (n == 0 || n > 64 || name[0] == '.')
        return 0;
    for (i = 0; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && !strchr("._-", name[i]))
            return 0;
    return 1;
}

static int domain_valid(const char *d)
{
    size_t i, n = strlen(d), label = 0;

    if (strncmp(d, "*.", 2) == 0)
        d += 2, n -= 2;
    if (n == 0 || n > 253)
        return 0;
    for (i = 0; i < n; i++) {
        if (d[i] == '.') {
            if (label == 0)
                return 0;
            label = 0;
            continue;
        }
        if (!isalnum((unsigned char)d[i]) && d[i] != '-')
            return 0;
        if (++label > 63)
            return 0;
    }
    return label > 0;
}

cs_rc cs_duration_parse(const char *s, long *seconds)
{
    char *end;
    long v, mul = 1;

    errno = 0;
    v = strtol(s, &end, 10);
    if (end == s || errno || v < 0)
        return cs_error_set(CS_EINVAL, "'%s' is not a duration; write e.g. 30d, 12h, 15m or 45s",
                            s);
    switch (*end) {
    case 'd':
        mul = 86400;
        end++;
        break;
    case 'h':
        mul = 3600;
        end++;
        break;
    case 'm':
        mul = 60;
        end++;
        break;
    case 's':
        end++;
        break;
    case '\0':
        break;
    default:
        end = (char *)"x";
        break;
    }
    if (*end != '\0' || v > 100L * 365 * 86400 / mul)
        return cs_error_set(CS_EINVAL, "'%s' is not a duration; write e.g. 30d, 12h, 15m or 45s",
                            s);
    *seconds = v * mul;
    return CS_OK;
}

static int dup_value(parse_ctx *p, char **slot, const char *value)
{
    free(*slot);
    *slot = strdup(value);
    if (*slot == NULL)
        fail(p, "out of memory");
    return *slot != NULL;
}

static int parse_duration_key(parse_ctx *p, const char *key, const char *value, long *out)
{
    if (cs_duration_parse(value, out) != CS_OK) {
        fail(p, "[%s] %s: %s", p->section, key, cs_error_last());
        return 0;
    }
    return 1;
}

static void store_key(parse_ctx *p, const char *key, const char *value)
{
    cs_config *c = p->c;
    char *end;
    long v;

    if (strcmp(key, "path") == 0) {
        if (value[0] != '/')
            fail(p, "[store] path: '%s' is not an absolute path", value);
        else
            dup_value(p, &c->store_path, value);
    } else if (strcmp(key, "keep") == 0) {
        v = strtol(value, &end, 10);
        if (*value == '\0' || *end != '\0' || v < 1 || v > 1000)
            fail(p, "[store] keep: '%s' is not a number of versions from 1 to 1000", value);
        else
            c->keep = (unsigned)v;
    } else if (strcmp(key, "owner") == 0) {
        dup_value(p, &c->owner, value);
    } else if (strcmp(key, "group") == 0) {
        dup_value(p, &c->group, value);
    } else {
        fail(p, "[store]: unknown key '%s'; known keys: path, keep, owner, group", key);
    }
}

static void provider_key(parse_ctx *p, cs_provider_conf *pv, const char *key, const char *value)
{
    if (strcmp(key, "type") == 0) {
        const cs_provider_ops *ops = cs_provider_named(value);

        if (ops)
            pv->type = ops->id;
        else
            fail(p, "[%s] type: unknown provider type '%s'; known types: %s", p->section, value,
                 cs_provider_types());
    } else if (strcmp(key, "ca-lifetime") == 0) {
        parse_duration_key(p, key, value, &pv->ca_lifetime);
    } else if (strcmp(key, "region") == 0) {
        dup_value(p, &pv->region, value);
    } else if (strcmp(key, "credentials") == 0) {
        if (strcmp(value, "default") != 0 && value[0] != '/')
            fail(p, "[%s] credentials: '%s' is neither 'default' nor an absolute path", p->section,
                 value);
        else
            dup_value(p, &pv->credentials, value);
    } else if (strcmp(key, "endpoint") == 0) {
        if (strncmp(value, "https://", 8) != 0)
            fail(p, "[%s] endpoint: '%s' must start with https://", p->section, value);
        else
            dup_value(p, &pv->endpoint, value);
    } else if (strcmp(key, "ca-file") == 0) {
        dup_value(p, &pv->ca_file, value);
    } else if (strcmp(key, "trust-file") == 0) {
        if (value[0] != '/')
            fail(p, "[%s] trust-file: '%s' is not an absolute path", p->section, value);
        else
            dup_value(p, &pv->trust_file, value);
    } else if (strcmp(key, "signature-version") == 0) {
        if (strcmp(value, "v3") != 0 && strcmp(value, "v1") != 0)
            fail(p, "[%s] signature-version: '%s' is not v3 or v1", p->section, value);
        else
            dup_value(p, &pv->signature_version, value);
    } else if (strcmp(key, "metadata-endpoint") == 0) {
        if (strncmp(value, "http://", 7) != 0 && strncmp(value, "https://", 8) != 0)
            fail(p, "[%s] metadata-endpoint: '%s' is not an http:// URL", p->section, value);
        else
            dup_value(p, &pv->metadata_endpoint, value);
    } else if (strcmp(key, "timeout") == 0) {
        if (parse_duration_key(p, key, value, &pv->timeout) && pv->timeout < 1)
            fail(p, "[%s] timeout: '%s' is less than a second", p->section, value);
    } else if (strcmp(key, "retries") == 0) {
        char *end;
        long v = strtol(value, &end, 10);

        if (*value == '\0' || *end != '\0' || v < 0 || v > 10)
            fail(p, "[%s] retries: '%s' is not a number from 0 to 10", p->section, value);
        else
            pv->retries = (int)v;
    } else {
        fail(p,
             "[%s]: unknown key '%s'; known keys: type, ca-lifetime (local-ca); region, "
             "credentials, endpoint, ca-file, trust-file, signature-version, metadata-endpoint, "
             "timeout, "
             "retries (aliyun-cas)",
             p->section, key);
    }
}

static void add_domains(parse_ctx *p, cs_cert_conf *cc, const char *value)
{
    char *copy = strdup(value), *tok, *save = NULL;

    for (tok = strtok_r(copy, " \t,", &save); tok; tok = strtok_r(NULL, " \t,", &save)) {
        char **nd;

        for (char *q = tok; *q; q++)
            *q = (char)tolower((unsigned char)*q);
        if (!domain_valid(tok)) {
            fail(p, "[%s] domain: '%s' is not a DNS name (a wildcard is '*.' + a name)", p->section,
                 tok);
            break;
        }
        nd = realloc(cc->domains, (cc->n_domains + 2) * sizeof(char *));
        if (nd == NULL) {
            fail(p, "out of memory");
            break;
        }
        cc->domains = nd;
        cc->domains[cc->n_domains++] = strdup(tok);
        cc->domains[cc->n_domains] = NULL;
    }
    free(copy);
}

static void cert_key(parse_ctx *p, cs_cert_conf *cc, const char *key, const char *value)
{
    if (strcmp(key, "provider") == 0) {
        dup_value(p, &cc->provider_name, value);
    } else if (strcmp(key, "cert-id") == 0) {
        const char *q = value;

        while (isdigit((unsigned char)*q))
            q++;
        if (*value == '\0' || *q != '\0' || strlen(value) > 19)
            fail(p, "[%s] cert-id: '%s' is not a certificate id (digits only)", p->section, value);
        else
            dup_value(p, &cc->cert_id, value);
    } else if (strcmp(key, "domain") == 0) {
        add_domains(p, cc, value);
    } else if (strcmp(key, "formats") == 0) {
        char *copy = strdup(value), *tok, *save = NULL;
        unsigned bit;

        cc->formats = CS_FMT_PEM;
        for (tok = strtok_r(copy, " \t,", &save); tok; tok = strtok_r(NULL, " \t,", &save)) {
            if (cs_format_parse(tok, &bit) != CS_OK) {
                fail(p, "[%s] formats: %s", p->section, cs_error_last());
                break;
            }
            cc->formats |= bit;
        }
        free(copy);
    } else if (strcmp(key, "renew-before") == 0) {
        parse_duration_key(p, key, value, &cc->renew_before);
    } else if (strcmp(key, "lifetime") == 0) {
        parse_duration_key(p, key, value, &cc->lifetime);
    } else if (strcmp(key, "key-type") == 0) {
        if (cs_key_type_parse(value, &cc->key_type) != CS_OK)
            fail(p, "[%s] key-type: %s", p->section, cs_error_last());
    } else if (strcmp(key, "pfx-profile") == 0) {
        if (cs_p12_profile_parse(value, &cc->pfx_profile) != CS_OK)
            fail(p, "[%s] pfx-profile: %s", p->section, cs_error_last());
    } else if (strcmp(key, "alias") == 0) {
        dup_value(p, &cc->alias, value);
    } else if (strcmp(key, "password-file") == 0) {
        if (value[0] != '/')
            fail(p, "[%s] password-file: '%s' is not an absolute path", p->section, value);
        else
            dup_value(p, &cc->password_file, value);
    } else if (strcmp(key, "on-change") == 0) {
        /* a long command may go on over indented continuation lines */
        if (cc->on_change) {
            char *joined;

            if (asprintf(&joined, "%s %s", cc->on_change, value) < 0) {
                fail(p, "out of memory");
                return;
            }
            free(cc->on_change);
            cc->on_change = joined;
        } else if (value[0] != '/') {
            fail(p, "[%s] on-change: '%s' must start with the program's absolute path", p->section,
                 value);
        } else {
            dup_value(p, &cc->on_change, value);
        }
    } else {
        fail(p,
             "[%s]: unknown key '%s'; known keys: provider, cert-id, domain, formats, "
             "renew-before, key-type, lifetime, pfx-profile, alias, password-file, on-change",
             p->section, key);
    }
}

/* Each new section starts its own table of keys, for duplicate detection. */
static void enter_section(parse_ctx *p, const char *section)
{
    if (strcmp(p->section, section) == 0)
        return;
    snprintf(p->section, sizeof(p->section), "%s", section);
    p->n_keys = 0;
}

static int seen_key(parse_ctx *p, const char *key)
{
    int i;

    for (i = 0; i < p->n_keys; i++)
        if (strcmp(p->keys[i], key) == 0) {
            if (p->continued && (strcmp(key, "domain") == 0 || strcmp(key, "on-change") == 0))
                return 0; /* these may go on over indented continuation lines */
            fail(p, "[%s] %s: given twice (first on line %d)", p->section, key, p->key_lines[i]);
            return 1;
        }
    if (p->n_keys < 64) {
        snprintf(p->keys[p->n_keys], sizeof(p->keys[0]), "%s", key);
        p->key_lines[p->n_keys++] = p->line;
    }
    return 0;
}

static cs_provider_conf *find_provider(cs_config *c, const char *name)
{
    size_t i;

    for (i = 0; i < c->n_providers; i++)
        if (strcmp(c->providers[i].name, name) == 0)
            return &c->providers[i];
    return NULL;
}

static cs_cert_conf *find_cert(cs_config *c, const char *name)
{
    size_t i;

    for (i = 0; i < c->n_certs; i++)
        if (strcmp(c->certs[i].name, name) == 0)
            return &c->certs[i];
    return NULL;
}

/* Called for "[provider NAME]" and "[cert NAME]" the first time each is seen. */
static void *open_section(parse_ctx *p, const char *kind, const char *name)
{
    cs_config *c = p->c;

    if (!cs_name_valid(name)) {
        fail(p, "[%s %s]: '%s' is not a valid name (letters, digits, '.', '_', '-'; at most 64)",
             kind, name, name);
        return NULL;
    }
    if (strcmp(kind, "provider") == 0) {
        cs_provider_conf *n = find_provider(c, name), *arr;

        if (n)
            return n;
        arr = realloc(c->providers, (c->n_providers + 1) * sizeof(*arr));
        if (arr == NULL)
            return NULL;
        c->providers = arr;
        n = &arr[c->n_providers++];
        memset(n, 0, sizeof(*n));
        n->name = strdup(name);
        n->line = p->line;
        n->type = (cs_provider_type)-1;
        n->ca_lifetime = 10L * 365 * 86400;
        n->retries = 3;
        return n;
    } else {
        cs_cert_conf *n = find_cert(c, name), *arr;

        if (n)
            return n;
        arr = realloc(c->certs, (c->n_certs + 1) * sizeof(*arr));
        if (arr == NULL)
            return NULL;
        c->certs = arr;
        n = &arr[c->n_certs++];
        memset(n, 0, sizeof(*n));
        n->name = strdup(name);
        n->line = p->line;
        n->formats = CS_FMT_PEM;
        n->renew_before = 30L * 86400;
        n->lifetime = 90L * 86400;
        n->key_type = CS_KEY_EC256;
        n->pfx_profile = CS_P12_MODERN;
        return n;
    }
}

static int handler(void *user, const char *section, const char *key, const char *value)
{
    parse_ctx *p = user;
    char kind[32] = "", name[200] = "", extra[8] = "";
    int n;

    if (p->err[0])
        return 1;
    enter_section(p, section);
    if (section[0] == '\0') {
        fail(p,
             "key '%s' is outside any section; put it under [store], [provider NAME] or "
             "[cert NAME]",
             key);
        return 0;
    }
    if (seen_key(p, key))
        return 0;
    n = sscanf(section, "%31s %199s %7s", kind, name, extra);
    if (strcmp(kind, "store") == 0 && n == 1) {
        store_key(p, key, value);
    } else if ((strcmp(kind, "provider") == 0 || strcmp(kind, "cert") == 0) && n == 2) {
        void *s = open_section(p, kind, name);

        if (s && kind[0] == 'p')
            provider_key(p, s, key, value);
        else if (s)
            cert_key(p, s, key, value);
    } else {
        fail(p, "unknown section [%s]; use [store], [provider NAME] or [cert NAME]", section);
    }
    return p->err[0] ? 0 : 1;
}

/* Checks that need the whole file: references, required keys. */
static cs_rc check_all(cs_config *c)
{
    size_t i;

    for (i = 0; i < c->n_providers; i++) {
        cs_provider_conf *pv = &c->providers[i];

        if ((int)pv->type == -1)
            return cs_error_set(CS_ECONFIG,
                                "%s:%d: [provider %s]: the key 'type' is missing; set type = "
                                "local-ca or type = aliyun-cas",
                                c->path, pv->line, pv->name);
    }
    for (i = 0; i < c->n_certs; i++) {
        cs_cert_conf *cc = &c->certs[i];

        if (cc->provider_name) {
            cc->provider = find_provider(c, cc->provider_name);
            if (cc->provider == NULL)
                return cs_error_set(CS_ECONFIG,
                                    "%s:%d: [cert %s] provider: no [provider %s] section in "
                                    "this file",
                                    c->path, cc->line, cc->name, cc->provider_name);
        }
        if ((cc->provider == NULL || cc->provider->type == CS_PROVIDER_LOCAL_CA) &&
            cc->n_domains == 0)
            return cs_error_set(CS_ECONFIG,
                                "%s:%d: [cert %s]: the key 'domain' is missing; the local CA "
                                "needs the names to issue for",
                                c->path, cc->line, cc->name);
        if (cc->provider && cc->provider->type == CS_PROVIDER_ALIYUN_CAS && !cc->cert_id &&
            cc->n_domains == 0)
            return cs_error_set(CS_ECONFIG,
                                "%s:%d: [cert %s]: set cert-id or domain to say which "
                                "certificate of the service this is",
                                c->path, cc->line, cc->name);
    }
    return CS_OK;
}

cs_rc cs_config_load(const char *path, cs_config **out)
{
    parse_ctx *p;
    cs_config *c;
    int r;

    c = calloc(1, sizeof(*c));
    p = calloc(1, sizeof(*p));
    if (c == NULL || p == NULL) {
        free(c);
        free(p);
        return cs_error_set(CS_ENOMEM, "out of memory");
    }
    c->path = strdup(path);
    c->keep = 3;
    p->c = c;
    p->f = fopen(path, "r");
    if (p->f == NULL) {
        cs_error_set(errno == ENOENT ? CS_ENOTFOUND : CS_ECONFIG,
                     "cannot open the configuration '%s': %s; give another with --config", path,
                     strerror(errno));
        free(p);
        cs_config_free(c);
        return cs_error_code();
    }
    r = ini_parse_stream(reader, p, handler, p);
    fclose(p->f);
    if (p->err[0] == '\0' && p->too_long)
        snprintf(p->err, sizeof(p->err), "%s:%d: the line is too long (at most 199 characters)",
                 path, p->too_long);
    if (p->err[0] == '\0' && r > 0)
        snprintf(p->err, sizeof(p->err),
                 "%s:%d: syntax error: expected '[section]' or 'key = value'", path, r);
    if (p->err[0]) {
        cs_error_set(CS_ECONFIG, "%s", p->err);
        free(p);
        cs_config_free(c);
        return CS_ECONFIG;
    }
    free(p);
    if (c->store_path == NULL)
        c->store_path = strdup(CS_DEFAULT_STORE);
    if (check_all(c) != CS_OK) {
        cs_config_free(c);
        return CS_ECONFIG;
    }
    *out = c;
    return CS_OK;
}

void cs_config_free(cs_config *c)
{
    size_t i;

    if (c == NULL)
        return;
    for (i = 0; i < c->n_providers; i++) {
        cs_provider_conf *pv = &c->providers[i];

        free(pv->name);
        free(pv->region);
        free(pv->credentials);
        free(pv->endpoint);
        free(pv->ca_file);
        free(pv->trust_file);
        free(pv->signature_version);
        free(pv->metadata_endpoint);
    }
    for (i = 0; i < c->n_certs; i++) {
        cs_cert_conf *cc = &c->certs[i];

        free(cc->name);
        free(cc->provider_name);
        free(cc->cert_id);
        for (size_t j = 0; j < cc->n_domains; j++)
            free(cc->domains[j]);
        free(cc->domains);
        free(cc->alias);
        free(cc->password_file);
        free(cc->on_change);
    }
    free(c->providers);
    free(c->certs);
    free(c->path);
    free(c->store_path);
    free(c->owner);
    free(c->group);
    free(c);
}

const cs_cert_conf *cs_config_cert(const cs_config *c, const char *name)
{
    return find_cert((cs_config *)c, name);
}
