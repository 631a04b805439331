#include "cs_config.h"

#include <ctype.h>
#include <stddef.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "cs_deploy.h"
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
    int header;     /* line of the last '[section]' header read */
    int entered;    /* header of the section the handler is in */
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
        if (!p->continued && buf[strspn(buf, "\xef\xbb\xbf")] == '[')
            p->header = p->line;
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
        return cs_error_set(CS_EINVAL,
                            "'%s' has no unit; write %sd, %sh, %sm or %ss (days, hours, minutes "
                            "or seconds)",
                            s, s, s, s, s);
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

/*
 * Keys are declared in tables, one per section, as nginx declares its
 * directives: the name, the provider type the key is for (NULL: any), the
 * setter and the field it sets. "Known keys" in errors come from the tables.
 */
typedef void (*conf_set)(parse_ctx *p, const char *key, const char *value, void *field);

typedef struct {
    const char *name;
    const char *type; /* provider keys: the provider type they belong to */
    conf_set set;
    size_t offset; /* of the field in the section's struct */
} conf_key;

static void set_string(parse_ctx *p, const char *key, const char *value, void *field)
{
    (void)key;
    dup_value(p, field, value);
}

static void set_path(parse_ctx *p, const char *key, const char *value, void *field)
{
    if (value[0] != '/')
        fail(p, "[%s] %s: '%s' is not an absolute path", p->section, key, value);
    else
        dup_value(p, field, value);
}

static void set_duration(parse_ctx *p, const char *key, const char *value, void *field)
{
    parse_duration_key(p, key, value, field);
}

static void set_timeout(parse_ctx *p, const char *key, const char *value, void *field)
{
    if (parse_duration_key(p, key, value, field) && *(long *)field < 1)
        fail(p, "[%s] %s: '%s' is less than a second", p->section, key, value);
}

/* A whole number from lo to hi. */
static int number(parse_ctx *p, const char *key, const char *value, long lo, long hi,
                  const char *what, long *out)
{
    char *end;
    long v = strtol(value, &end, 10);

    if (*value == '\0' || *end != '\0' || v < lo || v > hi) {
        fail(p, "[%s] %s: '%s' is not a number of %s from %ld to %ld", p->section, key, value, what,
             lo, hi);
        return 0;
    }
    *out = v;
    return 1;
}

static void set_keep(parse_ctx *p, const char *key, const char *value, void *field)
{
    long v;

    if (number(p, key, value, 1, 1000, "versions", &v))
        *(unsigned *)field = (unsigned)v;
}

static void set_retries(parse_ctx *p, const char *key, const char *value, void *field)
{
    long v;

    if (number(p, key, value, 0, 10, "attempts", &v))
        *(int *)field = (int)v;
}

static void set_provider_type(parse_ctx *p, const char *key, const char *value, void *field)
{
    const cs_provider_ops *ops = cs_provider_named(value);

    if (ops)
        *(cs_provider_type *)field = ops->id;
    else
        fail(p, "[%s] %s: unknown provider type '%s'; known types: %s", p->section, key, value,
             cs_provider_types());
}

static void set_credentials(parse_ctx *p, const char *key, const char *value, void *field)
{
    if (strcmp(value, "default") != 0 && value[0] != '/')
        fail(p, "[%s] %s: '%s' is neither 'default' nor an absolute path", p->section, key, value);
    else
        dup_value(p, field, value);
}

static void set_url(parse_ctx *p, const char *key, const char *value, void *field, int http)
{
    if (strncmp(value, "https://", 8) != 0 && !(http && strncmp(value, "http://", 7) == 0))
        fail(p, "[%s] %s: '%s' must start with https://%s", p->section, key, value,
             http ? " or http://" : "");
    else
        dup_value(p, field, value);
}

static void set_https(parse_ctx *p, const char *key, const char *value, void *field)
{
    set_url(p, key, value, field, 0);
}

static void set_http(parse_ctx *p, const char *key, const char *value, void *field)
{
    set_url(p, key, value, field, 1);
}

static void set_signature(parse_ctx *p, const char *key, const char *value, void *field)
{
    if (strcmp(value, "v3") != 0 && strcmp(value, "v1") != 0)
        fail(p, "[%s] %s: '%s' is not v3 or v1", p->section, key, value);
    else
        dup_value(p, field, value);
}

static void set_domains(parse_ctx *p, const char *key, const char *value, void *field)
{
    cs_cert_conf *cc = (cs_cert_conf *)((char *)field - offsetof(cs_cert_conf, domains));
    char *copy = strdup(value), *tok, *save = NULL;

    (void)key;
    if (copy == NULL)
        fail(p, "out of memory");
    for (tok = copy ? strtok_r(copy, " \t,", &save) : NULL; tok;
         tok = strtok_r(NULL, " \t,", &save)) {
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
        if ((cc->domains[cc->n_domains] = strdup(tok)) == NULL) {
            fail(p, "out of memory");
            break;
        }
        cc->domains[++cc->n_domains] = NULL;
    }
    free(copy);
}

static void set_cert_id(parse_ctx *p, const char *key, const char *value, void *field)
{
    const char *q = value;

    while (isdigit((unsigned char)*q))
        q++;
    if (*value == '\0' || *q != '\0' || strlen(value) > 19)
        fail(p, "[%s] %s: '%s' is not a certificate id (digits only)", p->section, key, value);
    else
        dup_value(p, field, value);
}

static void set_formats(parse_ctx *p, const char *key, const char *value, void *field)
{
    char *copy = strdup(value), *tok, *save = NULL;
    unsigned *formats = field, bit;

    *formats = CS_FMT_PEM;
    if (copy == NULL)
        fail(p, "out of memory");
    for (tok = copy ? strtok_r(copy, " \t,", &save) : NULL; tok;
         tok = strtok_r(NULL, " \t,", &save)) {
        if (cs_format_parse(tok, &bit) != CS_OK) {
            fail(p, "[%s] %s: %s", p->section, key, cs_error_last());
            break;
        }
        *formats |= bit;
    }
    free(copy);
}

static void set_key_type(parse_ctx *p, const char *key, const char *value, void *field)
{
    if (cs_key_type_parse(value, field) != CS_OK)
        fail(p, "[%s] %s: %s", p->section, key, cs_error_last());
}

static void set_pfx_profile(parse_ctx *p, const char *key, const char *value, void *field)
{
    if (cs_p12_profile_parse(value, field) != CS_OK)
        fail(p, "[%s] %s: %s", p->section, key, cs_error_last());
}

/* A long command may go on over indented continuation lines. */
static void set_command(parse_ctx *p, const char *key, const char *value, void *field)
{
    char **cmd = field, *joined;

    if (*cmd) {
        if (asprintf(&joined, "%s %s", *cmd, value) < 0) {
            fail(p, "out of memory");
            return;
        }
        free(*cmd);
        *cmd = joined;
    } else if (value[0] != '/') {
        fail(p, "[%s] %s: '%s' must start with the program's absolute path", p->section, key,
             value);
    } else {
        dup_value(p, cmd, value);
    }
}

/* acme: a directory URL, or the name of a well-known CA's production directory. */
static const struct {
    const char *name, *url;
} acme_directories[] = {
    {"letsencrypt", "https://acme-v02.api.letsencrypt.org/directory"},
    {"letsencrypt-staging", "https://acme-staging-v02.api.letsencrypt.org/directory"},
    {"zerossl", "https://acme.zerossl.com/v2/DV90"},
    {"google", "https://dv.acme-v02.api.pki.goog/directory"},
};

static void set_acme_directory(parse_ctx *p, const char *key, const char *value, void *field)
{
    size_t i;

    for (i = 0; i < sizeof(acme_directories) / sizeof(acme_directories[0]); i++)
        if (strcmp(value, acme_directories[i].name) == 0) {
            dup_value(p, field, acme_directories[i].url);
            return;
        }
    if (strncmp(value, "https://", 8) != 0)
        fail(p,
             "[%s] %s: '%s' is neither an https:// URL nor one of letsencrypt, "
             "letsencrypt-staging, zerossl, google",
             p->section, key, value);
    else
        dup_value(p, field, value);
}

static void set_contact(parse_ctx *p, const char *key, const char *value, void *field)
{
    cs_provider_conf *pv =
        (cs_provider_conf *)((char *)field - offsetof(cs_provider_conf, contact));
    char *copy = strdup(value), *tok, *save = NULL;

    if (copy == NULL)
        fail(p, "out of memory");
    for (tok = copy ? strtok_r(copy, " \t,", &save) : NULL; tok;
         tok = strtok_r(NULL, " \t,", &save)) {
        char **nc;

        if (strncmp(tok, "mailto:", 7) != 0 || strchr(tok + 7, '@') == NULL) {
            fail(p, "[%s] %s: '%s' is not a mailto: address (write mailto:you@example.com)",
                 p->section, key, tok);
            break;
        }
        nc = realloc(pv->contact, (pv->n_contact + 2) * sizeof(char *));
        if (nc == NULL || (nc[pv->n_contact] = strdup(tok)) == NULL) {
            if (nc)
                pv->contact = nc;
            fail(p, "out of memory");
            break;
        }
        pv->contact = nc;
        pv->contact[++pv->n_contact] = NULL;
    }
    free(copy);
}

static void set_yes_no(parse_ctx *p, const char *key, const char *value, void *field)
{
    if (strcmp(value, "yes") == 0)
        *(int *)field = 1;
    else if (strcmp(value, "no") == 0)
        *(int *)field = 0;
    else
        fail(p, "[%s] %s: '%s' is not yes or no", p->section, key, value);
}

static void set_acme_challenge(parse_ctx *p, const char *key, const char *value, void *field)
{
    if (strcmp(value, "http-01") == 0)
        *(cs_acme_challenge *)field = CS_ACME_HTTP01;
    else if (strcmp(value, "dns-01") == 0)
        *(cs_acme_challenge *)field = CS_ACME_DNS01;
    else if (strcmp(value, "tls-alpn-01") == 0)
        *(cs_acme_challenge *)field = CS_ACME_TLSALPN01;
    else
        fail(p, "[%s] %s: unknown challenge '%s'; use http-01, dns-01 or tls-alpn-01", p->section,
             key, value);
}

/* dns-01's publisher: alidns, or a hook run with add/remove (no shell). */
static void set_acme_dns(parse_ctx *p, const char *key, const char *value, void *field)
{
    if (strcmp(value, "alidns") == 0)
        dup_value(p, field, value);
    else
        set_command(p, key, value, field);
}

/* deploy = cdn:www.example.com alb:lsn-xxxx ...: each word a resource (cs_deploy.h). */
static void set_deploy(parse_ctx *p, const char *key, const char *value, void *field)
{
    cs_cert_conf *cc = (cs_cert_conf *)((char *)field - offsetof(cs_cert_conf, deploy));

    if (cs_deploy_targets_check(value) != CS_OK)
        fail(p, "[%s] %s: %s", p->section, key, cs_error_last());
    else
        dup_value(p, field, value);
    cc->deploy_line = p->line;
}

#define KEY(name, type, set, st, field)                                                            \
    {                                                                                              \
        name, type, set, offsetof(st, field)                                                       \
    }

static const conf_key store_keys[] = {
    KEY("path", NULL, set_path, cs_config, store_path),
    KEY("keep", NULL, set_keep, cs_config, keep),
    KEY("owner", NULL, set_string, cs_config, owner),
    KEY("group", NULL, set_string, cs_config, group),
    {NULL, NULL, NULL, 0},
};

static const conf_key provider_keys[] = {
    KEY("type", NULL, set_provider_type, cs_provider_conf, type),
    KEY("ca-lifetime", "local-ca", set_duration, cs_provider_conf, ca_lifetime),
    KEY("region", "aliyun-cas", set_string, cs_provider_conf, region),
    KEY("credentials", "aliyun-cas", set_credentials, cs_provider_conf, credentials),
    KEY("endpoint", "aliyun-cas", set_https, cs_provider_conf, endpoint),
    KEY("ca-file", "aliyun-cas", set_string, cs_provider_conf, ca_file),
    KEY("trust-file", "aliyun-cas", set_path, cs_provider_conf, trust_file),
    KEY("signature-version", "aliyun-cas", set_signature, cs_provider_conf, signature_version),
    KEY("metadata-endpoint", "aliyun-cas", set_http, cs_provider_conf, metadata_endpoint),
    KEY("timeout", "aliyun-cas", set_timeout, cs_provider_conf, timeout),
    KEY("retries", "aliyun-cas", set_retries, cs_provider_conf, retries),
    KEY("alidns-endpoint", "aliyun-cas", set_https, cs_provider_conf, alidns_endpoint),
    KEY("deploy-contact", "aliyun-cas", set_cert_id, cs_provider_conf, deploy_contact),
    KEY("directory", "acme", set_acme_directory, cs_provider_conf, directory),
    KEY("contact", "acme", set_contact, cs_provider_conf, contact),
    /* acme's too: the first row parses it, this one lists it under acme in "known keys" */
    KEY("ca-file", "acme", set_string, cs_provider_conf, ca_file),
    KEY("tos-agreed", "acme", set_yes_no, cs_provider_conf, tos_agreed),
    KEY("challenge", "acme", set_acme_challenge, cs_provider_conf, challenge),
    KEY("webroot", "acme", set_path, cs_provider_conf, webroot),
    KEY("account-key-type", "acme", set_key_type, cs_provider_conf, account_key_type),
    KEY("eab-kid", "acme", set_string, cs_provider_conf, eab_kid),
    KEY("eab-hmac-file", "acme", set_path, cs_provider_conf, eab_hmac_file),
    KEY("dns", "acme", set_acme_dns, cs_provider_conf, dns),
    KEY("dns-resolver", "acme", set_string, cs_provider_conf, dns_resolver),
    KEY("dns-wait", "acme", set_duration, cs_provider_conf, dns_wait),
    KEY("preferred-chain", "acme", set_string, cs_provider_conf, preferred_chain),
    /* with dns = alidns: as for aliyun-cas (listed under acme too) */
    KEY("credentials", "acme", set_credentials, cs_provider_conf, credentials),
    KEY("endpoint", "acme", set_https, cs_provider_conf, endpoint),
    {NULL, NULL, NULL, 0},
};

static const conf_key cert_keys[] = {
    KEY("provider", NULL, set_string, cs_cert_conf, provider_name),
    KEY("cert-id", NULL, set_cert_id, cs_cert_conf, cert_id),
    KEY("domain", NULL, set_domains, cs_cert_conf, domains),
    KEY("formats", NULL, set_formats, cs_cert_conf, formats),
    KEY("renew-before", NULL, set_duration, cs_cert_conf, renew_before),
    KEY("key-type", NULL, set_key_type, cs_cert_conf, key_type),
    KEY("lifetime", NULL, set_duration, cs_cert_conf, lifetime),
    KEY("pfx-profile", NULL, set_pfx_profile, cs_cert_conf, pfx_profile),
    KEY("alias", NULL, set_string, cs_cert_conf, alias),
    KEY("password-file", NULL, set_path, cs_cert_conf, password_file),
    KEY("on-change", NULL, set_command, cs_cert_conf, on_change),
    KEY("group", NULL, set_string, cs_cert_conf, group),
    KEY("reuse-key", NULL, set_yes_no, cs_cert_conf, reuse_key),
    KEY("deploy", NULL, set_deploy, cs_cert_conf, deploy),
    KEY("upload-to", NULL, set_string, cs_cert_conf, upload_to_name),
    KEY("deploy-wait", NULL, set_duration, cs_cert_conf, deploy_wait),
    {NULL, NULL, NULL, 0},
};

/* "a, b (local-ca); c, d (aliyun-cas)": the keys of a table, grouped by provider type. */
static void known_keys(const conf_key *keys, char *buf, size_t size)
{
    size_t i, n = 0;

    buf[0] = '\0';
    for (i = 0; keys[i].name && n < size; i++) {
        const char *sep = i == 0 ? "" : keys[i - 1].type != keys[i].type ? "; " : ", ";

        n += (size_t)snprintf(buf + n, size - n, "%s%s", sep, keys[i].name);
        if (keys[i].type && (keys[i + 1].name == NULL || keys[i + 1].type != keys[i].type) &&
            n < size)
            n += (size_t)snprintf(buf + n, size - n, " (%s)", keys[i].type);
    }
}

static void set_key(parse_ctx *p, const conf_key *keys, void *obj, const char *key,
                    const char *value)
{
    char known[512];
    size_t i;

    for (i = 0; keys[i].name; i++)
        if (strcmp(keys[i].name, key) == 0) {
            keys[i].set(p, key, value, (char *)obj + keys[i].offset);
            return;
        }
    known_keys(keys, known, sizeof(known));
    fail(p, "[%s]: unknown key '%s'; known keys: %s", p->section, key, known);
}

/* The lines of renew-before and lifetime, for the check that pairs them. */
static void set_cert_key(parse_ctx *p, cs_cert_conf *cc, const char *key, const char *value)
{
    set_key(p, cert_keys, cc, key, value);
    if (strcmp(key, "renew-before") == 0)
        cc->renew_before_line = p->line;
    else if (strcmp(key, "lifetime") == 0)
        cc->lifetime_line = p->line;
}

/* Each new section starts its own table of keys, for duplicate detection. */
static int enter_section(parse_ctx *p, const char *section)
{
    if (strcmp(p->section, section) == 0 && p->entered == p->header)
        return 0;
    snprintf(p->section, sizeof(p->section), "%s", section);
    p->entered = p->header;
    p->n_keys = 0;
    return 1;
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

/* A second [cert a] would merge into the first without a word: refuse it. */
static void *again(parse_ctx *p, const char *kind, const char *name, int first)
{
    fail(p, "[%s %s]: the section is given twice (lines %d and %d); merge them into one", kind,
         name, first, p->header);
    return NULL;
}

/* Called for "[provider NAME]" and "[cert NAME]" at each of their keys; fresh: the first. */
static void *open_section(parse_ctx *p, const char *kind, const char *name, int fresh)
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
            return fresh ? again(p, kind, name, n->header_line) : n;
        arr = realloc(c->providers, (c->n_providers + 1) * sizeof(*arr));
        if (arr == NULL) {
            fail(p, "out of memory");
            return NULL;
        }
        c->providers = arr;
        n = &arr[c->n_providers++];
        memset(n, 0, sizeof(*n));
        if ((n->name = strdup(name)) == NULL)
            fail(p, "out of memory");
        n->line = p->line;
        n->header_line = p->header;
        n->type = (cs_provider_type)-1;
        n->ca_lifetime = 10L * 365 * 86400;
        n->retries = 3;
        n->account_key_type = CS_KEY_EC256;
        n->dns_wait = 300;
        return n;
    } else {
        cs_cert_conf *n = find_cert(c, name), *arr;

        if (n)
            return fresh ? again(p, kind, name, n->header_line) : n;
        arr = realloc(c->certs, (c->n_certs + 1) * sizeof(*arr));
        if (arr == NULL) {
            fail(p, "out of memory");
            return NULL;
        }
        c->certs = arr;
        n = &arr[c->n_certs++];
        memset(n, 0, sizeof(*n));
        if ((n->name = strdup(name)) == NULL)
            fail(p, "out of memory");
        n->line = p->line;
        n->header_line = p->header;
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
    int n, fresh;

    if (p->err[0])
        return 1;
    fresh = enter_section(p, section);
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
        set_key(p, store_keys, p->c, key, value);
    } else if ((strcmp(kind, "provider") == 0 || strcmp(kind, "cert") == 0) && n == 2) {
        void *s = open_section(p, kind, name, fresh);

        if (s && kind[0] == 'p')
            set_key(p, provider_keys, s, key, value);
        else if (s)
            set_cert_key(p, s, key, value);
    } else {
        fail(p, "unknown section [%s]; use [store], [provider NAME] or [cert NAME]", section);
    }
    return p->err[0] ? 0 : 1;
}

/* "30d", "12h", "90s": a duration as an operator writes it. */
static void duration_text(long s, char *buf, size_t size)
{
    if (s % 86400 == 0)
        snprintf(buf, size, "%ldd", s / 86400);
    else if (s % 3600 == 0)
        snprintf(buf, size, "%ldh", s / 3600);
    else if (s % 60 == 0)
        snprintf(buf, size, "%ldm", s / 60);
    else
        snprintf(buf, size, "%lds", s);
}

static void key_origin(int line, char *buf, size_t size)
{
    if (line)
        snprintf(buf, size, "line %d", line);
    else
        snprintf(buf, size, "the default");
}

/*
 * The local CA issues for lifetime; a renew-before as long would find every
 * new certificate due and reissue it at each sync.
 */
static cs_rc check_renewal_window(const cs_config *c, cs_cert_conf *cc)
{
    char rb[32], lt[32], rb_at[32], lt_at[32];

    if (cc->provider && cc->provider->type != CS_PROVIDER_LOCAL_CA)
        return CS_OK;
    /* a lifetime shorter than the default notice: the default is a third of it */
    if (cc->renew_before_line == 0 && cc->renew_before >= cc->lifetime)
        cc->renew_before = cc->lifetime / 3;
    if (cc->renew_before < cc->lifetime)
        return CS_OK;
    duration_text(cc->renew_before, rb, sizeof(rb));
    duration_text(cc->lifetime, lt, sizeof(lt));
    key_origin(cc->renew_before_line, rb_at, sizeof(rb_at));
    key_origin(cc->lifetime_line, lt_at, sizeof(lt_at));
    return cs_error_set(CS_ECONFIG,
                        "%s:%d: [cert %s]: renew-before = %s (%s) is not shorter than lifetime "
                        "= %s (%s): every new certificate would be due at once and reissued at "
                        "each sync; make renew-before shorter than lifetime",
                        c->path,
                        cc->renew_before_line > cc->lifetime_line ? cc->renew_before_line
                                                                  : cc->lifetime_line,
                        cc->name, rb, rb_at, lt, lt_at);
}

/* upload-to names an aliyun-cas provider; deploy needs a certificate of the service. */
static cs_rc check_deploy(cs_config *c, cs_cert_conf *cc)
{
    if (cc->upload_to_name) {
        cc->upload_to = find_provider(c, cc->upload_to_name);
        if (cc->upload_to == NULL || cc->upload_to->type != CS_PROVIDER_ALIYUN_CAS)
            return cs_error_set(CS_ECONFIG,
                                "%s:%d: [cert %s] upload-to: '%s' is no [provider NAME] of type "
                                "aliyun-cas in this file",
                                c->path, cc->line, cc->name, cc->upload_to_name);
    }
    if (cc->deploy && !cc->upload_to &&
        (cc->provider == NULL || cc->provider->type != CS_PROVIDER_ALIYUN_CAS))
        return cs_error_set(CS_ECONFIG,
                            "%s:%d: [cert %s] deploy: only a certificate of the service can be "
                            "deployed to its cloud products: set upload-to = PROVIDER (an "
                            "aliyun-cas provider) to upload each new version first",
                            c->path, cc->deploy_line, cc->name);
    return CS_OK;
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
                                "local-ca, type = aliyun-cas or type = acme",
                                c->path, pv->line, pv->name);
        if (pv->type == CS_PROVIDER_ACME && pv->directory == NULL)
            return cs_error_set(CS_ECONFIG,
                                "%s:%d: [provider %s]: the key 'directory' is missing; set the "
                                "CA's directory URL or one of letsencrypt, letsencrypt-staging, "
                                "zerossl, google",
                                c->path, pv->line, pv->name);
        if (pv->type == CS_PROVIDER_ACME && pv->challenge == CS_ACME_DNS01 && pv->dns == NULL)
            return cs_error_set(CS_ECONFIG,
                                "%s:%d: [provider %s]: challenge = dns-01 needs the key 'dns': "
                                "alidns (Alibaba Cloud DNS), or the absolute path of a hook "
                                "that adds and removes the TXT record",
                                c->path, pv->line, pv->name);
        if (!pv->eab_kid != !pv->eab_hmac_file)
            return cs_error_set(CS_ECONFIG,
                                "%s:%d: [provider %s]: eab-kid and eab-hmac-file go together: "
                                "set both from the CA's external account binding, or neither",
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
        if (cc->provider && cc->provider->type == CS_PROVIDER_ACME && cc->n_domains == 0)
            return cs_error_set(CS_ECONFIG,
                                "%s:%d: [cert %s]: the key 'domain' is missing; the ACME CA "
                                "needs the names to issue for",
                                c->path, cc->line, cc->name);
        if (cc->provider && cc->provider->type == CS_PROVIDER_ACME &&
            cc->provider->challenge != CS_ACME_DNS01)
            for (size_t j = 0; j < cc->n_domains; j++)
                if (strncmp(cc->domains[j], "*.", 2) == 0)
                    return cs_error_set(CS_ECONFIG,
                                        "%s:%d: [cert %s] domain: '%s' is a wildcard, which "
                                        "%s cannot validate; set challenge = dns-01 in "
                                        "[provider %s]",
                                        c->path, cc->line, cc->name, cc->domains[j],
                                        cc->provider->challenge == CS_ACME_HTTP01 ? "http-01"
                                                                                  : "tls-alpn-01",
                                        cc->provider->name);
        if (check_renewal_window(c, cc) != CS_OK)
            return CS_ECONFIG;
        if (check_deploy(c, cc) != CS_OK)
            return CS_ECONFIG;
    }
    return CS_OK;
}

/*
 * Root runs the on-change commands this file names, and the servers' root
 * phases read it: root trusts only a file that no other user can change.
 */
static cs_rc config_trusted(const char *path, FILE *f)
{
    struct stat st;

    if (geteuid() != 0)
        return CS_OK;
    if (fstat(fileno(f), &st) < 0)
        return cs_error_set(CS_ECONFIG, "cannot stat the configuration '%s': %s", path,
                            strerror(errno));
    if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)))
        return cs_error_set(CS_ECONFIG,
                            "the configuration '%s' belongs to uid %ld with mode %04o: root runs "
                            "the commands it names, so it must be root's and not writable by "
                            "group or others (chown root '%s'; chmod go-w '%s')",
                            path, (long)st.st_uid, (unsigned)(st.st_mode & 07777), path, path);
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
    if ((c->path = strdup(path)) == NULL) {
        free(p);
        cs_config_free(c);
        return cs_error_set(CS_ENOMEM, "out of memory loading '%s'", path);
    }
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
    if (config_trusted(path, p->f) != CS_OK) {
        fclose(p->f);
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
    if (c->store_path == NULL && (c->store_path = strdup(CS_DEFAULT_STORE)) == NULL) {
        cs_config_free(c);
        return cs_error_set(CS_ENOMEM, "out of memory loading '%s'", path);
    }
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
        free(pv->directory);
        cs_strv_free(pv->contact);
        free(pv->webroot);
        free(pv->deploy_contact);
        free(pv->eab_kid);
        free(pv->eab_hmac_file);
        free(pv->dns);
        free(pv->dns_resolver);
        free(pv->preferred_chain);
        free(pv->alidns_endpoint);
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
        free(cc->group);
        free(cc->deploy);
        free(cc->upload_to_name);
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
