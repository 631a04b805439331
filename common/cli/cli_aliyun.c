/*
 * certsync CLI: the certificate service's lifecycle (aliyun-cas): list, show,
 * fetch, upload, delete, apply, withdraw, revoke, renew, quota, aliyun sign.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_service.h"
#include "cs_alidns.h"
#include "cs_aliyun.h"
#include "cs_apply.h"
#include "cs_bundle.h"
#include "cs_challenge.h"
#include "cs_fs.h"
#include "cs_output.h"
#include "cs_password.h"
#include "cs_sync.h"
#include "cs_time.h"

/* What every command here shares: config, store, the provider's client. */
typedef cli_service ctx;

static int call(ctx *x, const char *action, cs_kv *q, json_t **out)
{
    cs_rc rc = cs_aliyun_call(x->client, action, q, out);

    cs_kv_clear(q);
    if (rc != CS_OK)
        cli_fail(x->cmd);
    return rc == CS_OK;
}

static void print_json(json_t *j)
{
    cli_json_normalize(j);
    json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("\n");
}

static const char *jstr(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));

    return v ? v : "";
}

/* A service string for a person's eyes: its control characters escaped. */
static const char *jtxt(json_t *o, const char *k)
{
    return cli_safe(jstr(o, k));
}

/* A JSON string of s; bytes that are not UTF-8 are shown escaped. */
static json_t *jtext(const char *s)
{
    json_t *j = json_string(s);

    return j ? j : json_string(cli_safe(s));
}

/* fetch and upload --json: one object on one line, built (and escaped) by jansson */
static void print_one(json_t *j)
{
    json_dumpf(j, stdout, JSON_PRESERVE_ORDER);
    printf("\n");
    json_decref(j);
}

static int digits(const char *s)
{
    if (*s == '\0' || strlen(s) > 19)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* The console's words for an order's or certificate's state. */
static const char *status_words(const char *st)
{
    static const struct {
        const char *code, *words;
    } map[] = {
        {"PAYED", "paid"},      {"CHECKING", "pending verification"}, {"CHECKED_FAIL", "failed"},
        {"ISSUED", "issued"},   {"WILLEXPIRED", "expiring soon"},     {"EXPIRED", "expired"},
        {"REVOKED", "revoked"}, {"NOTACTIVATED", "not activated"},    {NULL, NULL}};
    int i;

    for (i = 0; map[i].code; i++)
        if (strcmp(map[i].code, st) == 0)
            return map[i].words;
    return cs_apply_words(st); /* an order's state: domain_verify, process, ... */
}

static const char *cert_status(json_t *e)
{
    char soon[16];
    time_t t = time(NULL) + 30L * 86400;
    struct tm tm;

    if (json_is_true(json_object_get(e, "Expired")))
        return "expired";
    gmtime_r(&t, &tm);
    strftime(soon, sizeof(soon), "%Y-%m-%d", &tm);
    return strcmp(jstr(e, "EndDate"), soon) <= 0 ? "expiring soon" : "issued";
}

/* The rows every command here has. */
#define OPT_PROVIDER(T)                                                                            \
    CLI_OPT_VALUE(T, provider, "provider", "NAME",                                                 \
                  "the [provider NAME] to use (default: the config's one\naliyun-cas provider)")
#define OPT_JSON(T, help_) CLI_OPT_SWITCH(T, json, "json", help_)

/* ---- list ---- */

typedef struct {
    const char *provider, *keyword;
    int json;
} list_args;

static const cli_opt list_opts[] = {
    OPT_PROVIDER(list_args),
    CLI_OPT_VALUE(list_args, keyword, "keyword", "TEXT",
                  "only entries whose domain (or resource id) holds TEXT;\n"
                  "the service matches no names"),
    OPT_JSON(list_args, "one JSON object {certificates, orders} instead of tables"),
    CLI_OPT_CONFIG,
    CLI_OPT_HELP,
    CLI_OPT_END};

static const char list_about[] =
    "Certificates (issued and uploaded) and orders of the account, with their status in the\n"
    "console's words: paid, pending verification, in review, issued, expiring soon, expired,\n"
    "revoked, failed.\n";

/* Does the comma-separated list hold name (n bytes)? */
static int listed(const char *list, const char *name, size_t n)
{
    const char *p = list;

    while (*p) {
        size_t len = strcspn(p, ",");

        if (len == n && strncasecmp(p, name, n) == 0)
            return 1;
        p += len + (p[len] == ',');
    }
    return 0;
}

/* The common name, then the Sans that are not it, each once, comma-separated. */
static json_t *domains_of(json_t *e)
{
    const char *cn = jstr(e, "CommonName"), *p = jstr(e, "Sans");
    size_t cap = strlen(cn) + strlen(p) + 2, used;
    char *out = calloc(1, cap);
    json_t *j;

    if (out == NULL)
        return NULL;
    snprintf(out, cap, "%s", cn);
    while (*p) {
        size_t len = strcspn(p, ",");

        used = strlen(out);
        if (len && !listed(out, p, len))
            snprintf(out + used, cap - used, "%s%.*s", used ? "," : "", (int)len, p);
        p += len + (p[len] == ',');
    }
    j = jtext(out);
    free(out);
    return j;
}

/* The end of an order's certificate (CertEndTime, ms) in UTC; "" when it has none. */
static const char *order_end(json_t *e, char buf[CS_TIME_ISO_SIZE])
{
    json_t *v = json_object_get(e, "CertEndTime");

    if (!json_is_integer(v))
        return "";
    return cs_time_iso((time_t)(json_integer_value(v) / 1000), buf);
}

static void list_text(json_t *certs, json_t *orders)
{
    char id[32], end[CS_TIME_ISO_SIZE];
    json_t *e;
    size_t i;

    /* the list's EndDate is the service's calendar date (UTC+8): `show ID` has the time */
    printf("%-20s %-24s %-11s %-14s %s\n", "CERTIFICATE", "NAME", "END (+8)", "STATUS", "DOMAINS");
    json_array_foreach(certs, i, e)
    {
        cs_json_id(json_object_get(e, "CertificateId"), id, sizeof(id));
        printf("%-20s %-24s %-11s %-14s %s\n", cli_safe(id), jtxt(e, "Name"), jtxt(e, "EndDate"),
               jtxt(e, "status"), jtxt(e, "domains"));
    }
    printf("\n%-20s %-28s %-22s %-20s %s\n", "ORDER", "DOMAIN", "PRODUCT", "STATUS", "NOT AFTER");
    json_array_foreach(orders, i, e)
    {
        cs_json_id(json_object_get(e, "OrderId"), id, sizeof(id));
        printf("%-20s %-28s %-22s %-20s %s\n", cli_safe(id), jtxt(e, "Domain"),
               jtxt(e, "ProductCode"), jtxt(e, "status"), order_end(e, end));
    }
}

/* Valid (issued, expiring) and expired certificates: an empty Status lists valid ones only. */
static cs_rc list_certs(ctx *x, const char *keyword, json_t **certs)
{
    json_t *expired = NULL;

    if (cs_aliyun_list(x->client, "CERT", NULL, keyword, certs) != CS_OK)
        return cs_error_code();
    if (cs_aliyun_list(x->client, "CERT", "EXPIRED", keyword, &expired) != CS_OK) {
        json_decref(*certs);
        return cs_error_code();
    }
    if (json_array_extend(*certs, expired) != 0) {
        json_decref(*certs);
        json_decref(expired);
        return cs_error_set(CS_ENOMEM, "out of memory listing certificates");
    }
    json_decref(expired);
    return CS_OK;
}

static int cmd_list(const cli_command *self, int argc, char **argv)
{
    list_args a = {0};
    json_t *certs = NULL, *orders = NULL, *e;
    int first, rc = cli_parse(&self->spec, argc, argv, &a, &first);
    size_t i;
    ctx x;

    if (rc != CLI_CONTINUE || (rc = cli_service_open(&x, "list", a.provider)) != EXIT_SUCCESS)
        return rc;
    rc = EXIT_FAILURE;
    if (list_certs(&x, a.keyword, &certs) != CS_OK ||
        cs_aliyun_list(x.client, "CPACK", NULL, a.keyword, &orders) != CS_OK) {
        cli_fail("list");
        goto done;
    }
    json_array_foreach(certs, i, e)
    {
        json_object_set_new(e, "status", json_string(cert_status(e)));
        json_object_set_new(e, "domains", domains_of(e));
    }
    json_array_foreach(orders, i, e)
        json_object_set_new(e, "status", json_string(status_words(jstr(e, "Status"))));
    if (a.json) {
        json_t *all = json_pack("{sOsO}", "certificates", certs, "orders", orders);

        print_json(all);
        json_decref(all);
    } else {
        list_text(certs, orders);
    }
    rc = EXIT_SUCCESS;
done:
    json_decref(certs);
    json_decref(orders);
    cli_service_close(&x);
    return rc;
}

/* ---- show ---- */

typedef struct {
    const char *provider;
    int json;
} show_args;

static const cli_opt show_opts[] = {OPT_PROVIDER(show_args),
                                    OPT_JSON(show_args, "the service's answer as JSON (no key)"),
                                    CLI_OPT_CONFIG, CLI_OPT_HELP, CLI_OPT_END};

static const char show_about[] =
    "Names, validity, issuer, fingerprints and chain. The private key is never asked for\n"
    "(CertFilter=true).\n";

static void show_text(json_t *d)
{
    cli_json_normalize(d); /* ids, UTC times, lower-case fingerprints: as status prints them */
    printf("certificate  %s\nname         %s\ncommon name  %s\nnames        %s\n"
           "valid        %s .. %s%s\nissuer       %s\nserial       %s\nsha256       %s\n"
           "sha1         %s\n",
           jtxt(d, "Id"), jtxt(d, "Name"), jtxt(d, "Common"), jtxt(d, "Sans"), jtxt(d, "NotBefore"),
           jtxt(d, "NotAfter"), json_is_true(json_object_get(d, "Expired")) ? " (expired)" : "",
           jtxt(d, "Issuer"), jtxt(d, "SerialNo"), jtxt(d, "Sha2"), jtxt(d, "Fingerprint"));
}

static int cmd_show(const cli_command *self, int argc, char **argv)
{
    show_args a = {0};
    int first, rc = cli_parse(&self->spec, argc, argv, &a, &first);
    json_t *d;
    cs_kv q;
    ctx x;

    if (rc != CLI_CONTINUE)
        return rc;
    if (first + 1 != argc || !digits(argv[first]))
        return cli_usage(&self->spec, "give one certificate ID (digits)");
    if ((rc = cli_service_open(&x, "show", a.provider)) != EXIT_SUCCESS)
        return rc;
    cs_kv_init(&q);
    cs_kv_set(&q, "CertId", argv[first]);
    cs_kv_set(&q, "CertFilter", "true");
    rc = EXIT_FAILURE;
    if (call(&x, "GetUserCertificateDetail", &q, &d)) {
        json_object_del(d, "Key");
        json_object_del(d, "EncryptPrivateKey");
        json_object_del(d, "SignPrivateKey");
        if (a.json)
            print_json(d);
        else
            show_text(d);
        json_decref(d);
        rc = EXIT_SUCCESS;
    }
    cli_service_close(&x);
    return rc;
}

/* ---- fetch ---- */

static int one_json; /* fetch and upload: one JSON object on stdout */

typedef struct {
    const char *domain, *into, *layout, *out, *provider;
    int json;
} fetch_args;

static const cli_opt fetch_opts[] = {
    CLI_OPT_VALUE(fetch_args, domain, "domain", "DOMAIN",
                  "instead of ID: the newest issued, unexpired certificate\ncovering DOMAIN"),
    CLI_OPT_VALUE(fetch_args, into, "into", "NAME",
                  "install it as a new version of the managed certificate\n"
                  "NAME (validated first; the formats of [cert NAME] are\nwritten)"),
    CLI_OPT_VALUE(fetch_args, layout, "layout", "LAYOUT",
                  "with --out: write it as the console's download zip lays\n"
                  "it out for a server: nginx, apache, tomcat, iis\n"
                  "(NAME.pfx + pfx-password.txt) or jks (NAME.jks +\n"
                  "jks-password.txt); NAME is the certificate's id (\"cert\"\n"
                  "if the service's id is not digits only)"),
    CLI_OPT_VALUE(fetch_args, out, "out", "DIR", "the directory of --layout"),
    OPT_PROVIDER(fetch_args),
    OPT_JSON(fetch_args, "print what was done as one JSON object"),
    CLI_OPT_CONFIG,
    CLI_OPT_HELP,
    CLI_OPT_END};

static const char fetch_about[] =
    "By ID, or the newest issued certificate for --domain; into the store (--into NAME), or\n"
    "as a server's files (--layout LAYOUT --out DIR).\n";

static int write_layout(const char *layout, const char *dir, const char *id, const char *name,
                        cs_bundle *b)
{
    unsigned fmt;
    char *pw = NULL;
    cs_output_opts o = {name, name, CS_P12_MODERN, NULL, NULL, NULL};
    cs_rc rc;

    if (cs_format_parse(layout, &fmt) != CS_OK || fmt == CS_FMT_PEM)
        return cli_usage_error("fetch", "--layout: '%s' is not a layout; use a format but pem: %s",
                               cli_safe(layout), cs_format_names());
    if ((fmt & (CS_FMT_PFX | CS_FMT_JKS)) && cs_password_generate(&pw) != CS_OK)
        return cli_fail("fetch");
    o.pfx_password = o.jks_password = pw;
    rc = cs_fs_mkdirs(dir, 0700);
    if (rc == CS_OK)
        rc = cs_output_write(dir, b, fmt, &o);
    cs_password_free(pw);
    if (rc != CS_OK)
        return cli_fail("fetch");
    if (one_json)
        print_one(json_pack("{s:o, s:s, s:o, s:o}", "certificate", jtext(id), "layout", layout,
                            "out", jtext(dir), "files", jtext(name)));
    else
        printf("wrote the %s layout of certificate %s into %s (files %s.*)\n", layout, cli_safe(id),
               cli_safe(dir), name);
    return EXIT_SUCCESS;
}

/* The usage checks of fetch; CLI_CONTINUE when they pass. */
static int fetch_check(const cli_cmd *spec, const fetch_args *a, int nargs, char **args)
{
    if ((nargs > 0) == (a->domain != NULL) || nargs > 1 || (nargs == 1 && !digits(args[0])))
        return cli_usage(spec, "give one certificate ID or --domain DOMAIN");
    if ((a->into != NULL) == (a->layout != NULL) || (a->layout && !a->out) ||
        (a->out && !a->layout))
        return cli_usage(spec, "give --into NAME, or --layout LAYOUT with --out DIR");
    if (a->into && !cs_name_valid(a->into))
        return cli_usage(spec, "'%s' is not a certificate name", a->into);
    return CLI_CONTINUE;
}

/* The id of the newest issued, unexpired certificate for domain; 0 when there is none. */
static int fetch_pick(ctx *x, const char *domain, char *id, size_t size)
{
    json_t *certs, *best;

    if (cs_aliyun_list(x->client, "CERT", NULL, NULL, &certs) != CS_OK) {
        cli_fail("fetch");
        return 0;
    }
    best = cs_aliyun_pick(certs, NULL, &domain, 1);
    if (best)
        cs_json_id(json_object_get(best, "CertificateId"), id, size);
    json_decref(certs);
    if (!id[0])
        fprintf(stderr, "certsync fetch: no issued, unexpired certificate for %s at %s\n", domain,
                cs_aliyun_endpoint(x->client));
    return id[0] != '\0';
}

/* Certificate id with its key and chain from the service, validated (and trusted for the store). */
static int fetch_bundle(ctx *x, const char *id, int trust, cs_bundle **b)
{
    if (cs_aliyun_fetch(x->client, id, trust, b) != CS_OK) {
        cli_fail("fetch");
        return 0;
    }
    return 1;
}

static int fetch_install(ctx *x, const char *into, const char *id, cs_bundle *b)
{
    const cs_cert_conf *cc = cs_config_cert(x->c, into);
    cs_install_opts o = cs_install_opts_for(cc, "aliyun-cas", id);
    unsigned v;

    if (cs_store_install(x->s, into, b, &o, &v) != CS_OK)
        return cli_fail("fetch");
    if (one_json)
        print_one(json_pack("{s:o, s:s, s:i}", "certificate", jtext(id), "name", into, "version",
                            (int)v));
    else
        printf("%s: installed v%u (certificate %s)\n", into, v, cli_safe(id));
    return cs_sync_notify(x->c, x->s, cc, v) == CS_OK ? EXIT_SUCCESS : cli_fail("fetch");
}

static int cmd_fetch(const cli_command *self, int argc, char **argv)
{
    fetch_args a = {0};
    int first, rc = cli_parse(&self->spec, argc, argv, &a, &first);
    char id[32] = "";
    cs_bundle *b = NULL;
    ctx x;

    if (rc != CLI_CONTINUE ||
        (rc = fetch_check(&self->spec, &a, argc - first, argv + first)) != CLI_CONTINUE ||
        (rc = cli_service_open(&x, "fetch", a.provider)) != EXIT_SUCCESS)
        return rc;
    one_json = a.json;
    rc = EXIT_FAILURE;
    if (a.domain ? fetch_pick(&x, a.domain, id, sizeof(id))
                 : snprintf(id, sizeof(id), "%s", argv[first]) > 0) {
        if (fetch_bundle(&x, id, !a.layout, &b))
            /* the id came from the service: digits only may name a file */
            rc = a.layout ? write_layout(a.layout, a.out, id, cs_safe_file_name(id, 1, "cert"), b)
                          : fetch_install(&x, a.into, id, b);
    }
    cs_bundle_free(b);
    cli_service_close(&x);
    return rc;
}

/* ---- upload ---- */

typedef struct {
    const char *cert, *key, *chain, *provider;
    int replace, json;
} upload_args;

static const cli_opt upload_opts[] = {
    CLI_OPT_VALUE(upload_args, cert, "cert", "FILE",
                  "the certificate to upload (default: the store's current\nNAME)"),
    CLI_OPT_VALUE(upload_args, key, "key", "FILE", "its private key (with --cert)"),
    CLI_OPT_VALUE(upload_args, chain, "chain", "FILE", "intermediate certificates, in any order"),
    CLI_OPT_SWITCH(upload_args, replace, "replace",
                   "replace earlier uploads: upload as NAME (as\n"
                   "NAME-YYYYMMDDHHMMSS while NAME is taken), then delete the\n"
                   "uploads named NAME or NAME-YYYYMMDDHHMMSS, expired ones too"),
    OPT_PROVIDER(upload_args),
    OPT_JSON(upload_args, "print the new certificate's id and name as one JSON\nobject"),
    CLI_OPT_CONFIG,
    CLI_OPT_HELP,
    CLI_OPT_END};

static const char upload_about[] =
    "Into the service under the name NAME: --cert and --key, or else the store's current\n"
    "version of the managed certificate NAME.\n";

static int upload_once(ctx *x, const char *name, cs_bundle *b, char *id, size_t size)
{
    return cs_aliyun_upload(x->client, name, b, id, size) == CS_OK;
}

static int name_exists_error(const cs_aliyun *client)
{
    return cs_aliyun_name_taken(client);
}

/* NAME itself, or NAME-YYYYMMDDHHMMSS as an earlier --replace named it. */
static int upload_of(const char *entry, const char *name)
{
    size_t n = strlen(name) > 49 ? 49 : strlen(name), i;

    if (strcmp(entry, name) == 0)
        return 1;
    if (strncmp(entry, name, n) != 0 || entry[n] != '-' || strlen(entry + n + 1) != 14)
        return 0;
    for (i = n + 1; entry[i]; i++)
        if (entry[i] < '0' || entry[i] > '9')
            return 0;
    return 1;
}

/*
 * The uploads named after name, valid and expired. Keyword matches a domain or a resource
 * id, not a name (the SDK's documentation): every upload is listed, the names filtered here.
 */
static int uploads_named(ctx *x, const char *name, json_t **out)
{
    json_t *valid = NULL, *expired = NULL, *e;
    size_t i;

    if (cs_aliyun_list(x->client, "UPLOAD", NULL, NULL, &valid) != CS_OK ||
        cs_aliyun_list(x->client, "UPLOAD", "EXPIRED", NULL, &expired) != CS_OK ||
        json_array_extend(valid, expired) != 0 || (*out = json_array()) == NULL) {
        json_decref(valid);
        json_decref(expired);
        return 0;
    }
    json_array_foreach(valid, i, e)
    {
        if (upload_of(jstr(e, "Name"), name))
            json_array_append(*out, e);
    }
    json_decref(valid);
    json_decref(expired);
    return 1;
}

/* Delete the uploads in olds but the fresh one; 0 if one failed. */
static int upload_delete_old(ctx *x, json_t *olds, const char *fresh_id)
{
    char old[32];
    json_t *e, *r;
    int ok = 1;
    size_t i;
    cs_kv q;

    json_array_foreach(olds, i, e)
    {
        cs_json_id(json_object_get(e, "CertificateId"), old, sizeof(old));
        if (old[0] == '\0' || strcmp(old, fresh_id) == 0)
            continue;
        cs_kv_init(&q);
        cs_kv_set(&q, "CertId", old);
        if (call(x, "DeleteUserCertificate", &q, &r)) {
            fprintf(one_json ? stderr : stdout, "deleted the old certificate %s (name %s)\n",
                    cli_safe(old), jtxt(e, "Name"));
            json_decref(r);
        } else {
            ok = 0;
        }
    }
    return ok;
}

static void upload_said(const char *name, const char *id, const char *as, int replaced)
{
    if (one_json)
        print_one(json_pack("{s:o, s:o, s:b}", "certificate", jtext(id), "name", jtext(as),
                            "replaced", replaced));
    else if (strcmp(name, as) != 0)
        printf("uploaded %s as certificate %s (name %s)\n", cli_safe(name), cli_safe(id),
               cli_safe(as));
    else
        printf("uploaded %s as certificate %s\n", cli_safe(name), cli_safe(id));
}

/*
 * --replace: the uploads named NAME (or NAME-YYYYMMDDHHMMSS) are listed first; b goes up as
 * NAME, or NAME-YYYYMMDDHHMMSS while NAME is taken; then the listed ones are deleted.
 */
static int upload_replace(ctx *x, const char *name, cs_bundle *b)
{
    json_t *olds = NULL;
    char fresh[128], id[32] = "";
    const char *as = name;
    time_t t = time(NULL);
    struct tm tm;
    int ok;

    if (!uploads_named(x, name, &olds))
        return cli_fail("upload");
    ok = upload_once(x, name, b, id, sizeof(id));
    if (!ok && name_exists_error(x->client)) {
        cs_error_clear();
        gmtime_r(&t, &tm);
        snprintf(fresh, sizeof(fresh), "%.49s-%04d%02d%02d%02d%02d%02d", name, tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        as = fresh;
        ok = upload_once(x, fresh, b, id, sizeof(id));
    }
    if (!ok) {
        json_decref(olds);
        return cli_fail("upload");
    }
    upload_said(name, id, as, json_array_size(olds) > 0);
    ok = upload_delete_old(x, olds, id);
    json_decref(olds);
    return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* Upload b as name; a name the service has already: --replace, or say so. */
static int upload_run(ctx *x, const char *name, cs_bundle *b, int replace)
{
    char id[32] = "";

    if (replace)
        return upload_replace(x, name, b);
    if (upload_once(x, name, b, id, sizeof(id))) {
        upload_said(name, id, name, 0);
        return EXIT_SUCCESS;
    }
    if (!name_exists_error(x->client))
        return cli_fail("upload");
    fprintf(stderr,
            "certsync upload: a certificate named '%s' already exists in the service; use "
            "--replace to upload under a fresh name and delete the old one\n",
            name);
    return EXIT_FAILURE;
}

static int cmd_upload(const cli_command *self, int argc, char **argv)
{
    upload_args a = {0};
    int first, rc = cli_parse(&self->spec, argc, argv, &a, &first);
    cs_bundle *b = NULL;
    const char *name;
    ctx x;

    if (rc != CLI_CONTINUE)
        return rc;
    if (first + 1 != argc)
        return cli_usage(&self->spec, "give one NAME");
    name = argv[first];
    if ((a.cert != NULL) != (a.key != NULL))
        return cli_usage(&self->spec, "give both --cert and --key, or neither");
    if (strlen(name) > 64)
        return cli_usage(&self->spec, "the service allows names of at most 64 characters");
    if ((rc = cli_service_open(&x, "upload", a.provider)) != EXIT_SUCCESS)
        return rc;
    one_json = a.json;
    if ((a.cert ? cs_bundle_load_files(a.cert, a.key, a.chain, NULL, &b)
                : cs_store_load(x.s, name, 0, &b)) != CS_OK ||
        cs_bundle_validate(b, NULL, 0, time(NULL), a.cert ? a.cert : name) != CS_OK)
        rc = cli_fail("upload");
    else
        rc = upload_run(&x, name, b, a.replace);
    cs_bundle_free(b);
    cli_service_close(&x);
    return rc;
}

/* ---- one id, one service action: delete, delete-order, withdraw, revoke, renew ---- */

typedef struct {
    const char *provider;
    int yes, json;
} id_args;

static const cli_opt id_opts[] = {
    OPT_PROVIDER(id_args),
    CLI_OPT_SWITCH(id_args, yes, "yes", "do not ask for confirmation (revoke and delete ask)"),
    OPT_JSON(id_args, "print the service's answer as JSON"),
    CLI_OPT_CONFIG,
    CLI_OPT_HELP,
    CLI_OPT_END};

/* The row data of an id command: the service's action; confirm: ask before it. */
typedef struct {
    const char *action;
    int confirm;
    int revokes; /* the store marks the versions that hold the order's certificate */
} id_action;

/* "revoke ORDER 123? ... Type yes:"; 0 when not confirmed (a usage error without a terminal). */
static int id_confirmed(const cli_cmd *spec, const char *id, int *rc)
{
    char answer[16] = "";

    if (!isatty(0)) {
        *rc = cli_usage(spec, "this cannot be undone; confirm with --yes");
        return 0;
    }
    printf("%s %s %s? This cannot be undone. Type yes: ", spec->name, spec->args, id);
    fflush(stdout);
    if (fgets(answer, sizeof(answer), stdin) == NULL || strcmp(answer, "yes\n") != 0) {
        fprintf(stderr, "certsync %s: not confirmed; nothing done\n", spec->name);
        *rc = EXIT_FAILURE;
        return 0;
    }
    return 1;
}

static void id_done(const cli_cmd *spec, const char *id, json_t *r, int as_json)
{
    char nid[32];

    if (as_json) {
        print_json(r);
        return;
    }
    cs_json_id(json_object_get(r, "OrderId"), nid, sizeof(nid));
    printf("%s: done (%s %s, RequestId %s)", spec->name, spec->args, id, jtxt(r, "RequestId"));
    if (nid[0])
        printf("; the new order is %s, paid and waiting for an application: submit it in the "
               "console, then `certsync apply --domain DOMAIN --order %s --wait`",
               cli_safe(nid), cli_safe(nid));
    printf("\n");
}

/* The leaf of pem: its lower-case SHA-256 and the name the list's Keyword matches. */
static int leaf_of(const char *pem, char sha[65], char *name, size_t size)
{
    BIO *in = BIO_new_mem_buf(pem, -1);
    X509 *x = in ? PEM_read_bio_X509(in, NULL, NULL, NULL) : NULL;
    unsigned char md[32];
    unsigned n = 0, i;

    BIO_free(in);
    if (x == NULL || X509_digest(x, EVP_sha256(), md, &n) != 1 || n != 32 ||
        X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, name, (int)size) <= 0) {
        X509_free(x);
        return 0;
    }
    for (i = 0; i < n; i++)
        snprintf(sha + 2 * i, 3, "%02x", md[i]);
    X509_free(x);
    return 1;
}

/*
 * The certificate id of an issued certificate, found in the certificate list: the SDK's
 * DescribeCertificateState has no CertId. Listed by the domain (what Keyword matches), the
 * entry whose Sha2 is the leaf's. "" if none is found.
 */
static void cert_id_of_pem(ctx *x, const char *pem, char *id, size_t size)
{
    char sha[65], cn[256];
    json_t *certs = NULL, *e;
    size_t i;

    id[0] = '\0';
    if (!leaf_of(pem, sha, cn, sizeof(cn)))
        return;
    if (cs_aliyun_list(x->client, "CERT", NULL, cn[0] == '*' ? cn + 2 : cn, &certs) != CS_OK) {
        cs_error_clear();
        return;
    }
    json_array_foreach(certs, i, e)
    {
        if (strcasecmp(jstr(e, "Sha2"), sha) == 0) {
            cs_json_id(json_object_get(e, "CertificateId"), id, size);
            break;
        }
    }
    json_decref(certs);
}

/* The certificate id of an issued order; "" when it has none or the service does not say. */
static void order_cert_id(ctx *x, const char *order, char *id, size_t size)
{
    const char *key;
    json_t *r;
    cs_kv q;

    id[0] = '\0';
    cs_kv_init(&q);
    cs_kv_set(&q, "OrderId", order);
    if (cs_aliyun_call(x->client, "DescribeCertificateState", &q, &r) != CS_OK) {
        cs_kv_clear(&q);
        cs_error_clear();
        return;
    }
    cs_kv_clear(&q);
    if (strcmp(jtxt(r, "Type"), "certificate") == 0) {
        cs_json_id(json_object_get(r, "CertId"), id, size);
        if (id[0] == '\0')
            cert_id_of_pem(x, jstr(r, "Certificate"), id, size);
    }
    /* the answer of an issued order carries its key: wiped before it is freed */
    if ((key = json_string_value(json_object_get(r, "PrivateKey"))) != NULL)
        OPENSSL_cleanse((void *)key, strlen(key));
    json_decref(r);
}

/* Each stored version of name whose meta.json remote_id is cert_id is marked revoked. */
static void mark_revoked_versions(ctx *x, const char *name, const char *cert_id)
{
    cs_cert_info info;
    unsigned *v;
    size_t n, i;

    if (cs_store_versions(x->s, name, &v, &n) != CS_OK) {
        cs_error_clear();
        return;
    }
    for (i = 0; i < n; i++) {
        if (cs_store_info(x->s, name, v[i], &info) != CS_OK) {
            cs_error_clear();
            continue;
        }
        if (strcmp(info.remote_id, cert_id) == 0) {
            if (cs_store_mark_revoked(x->s, name, info.fingerprint) == CS_OK)
                printf("%s: v%u holds the revoked certificate %s; `certsync rollback` refuses "
                       "it\n",
                       name, v[i], cert_id);
            else
                fprintf(stderr, "certsync revoke: %s v%u holds it, but cannot be marked: %s\n",
                        name, v[i], cli_safe(cs_error_last()));
        }
        cs_cert_info_clear(&info);
    }
    free(v);
}

/* After revoke: the store remembers which of its versions the service revoked. */
static void record_revocation(ctx *x, const char *cert_id)
{
    size_t k;

    if (cert_id[0] == '\0')
        return;
    for (k = 0; k < x->c->n_certs; k++)
        mark_revoked_versions(x, x->c->certs[k].name, cert_id);
}

static int cmd_id_action(const cli_command *self, int argc, char **argv)
{
    const cli_cmd *spec = &self->spec;
    const id_action *act = self->data;
    char cert_id[32] = "";
    id_args a = {0};
    int first, rc = cli_parse(spec, argc, argv, &a, &first);
    json_t *r;
    cs_kv q;
    ctx x;

    if (rc != CLI_CONTINUE)
        return rc;
    if (first + 1 != argc || !digits(argv[first]))
        return cli_usage(spec, "give one %s (digits)", spec->args);
    if (act->confirm && !a.yes && !id_confirmed(spec, argv[first], &rc))
        return rc;
    if ((rc = cli_service_open(&x, spec->name, a.provider)) != EXIT_SUCCESS)
        return rc;
    rc = EXIT_FAILURE;
    if (act->revokes)
        order_cert_id(&x, argv[first], cert_id, sizeof(cert_id));
    cs_kv_init(&q);
    cs_kv_set(&q, strcmp(spec->args, "ORDER") == 0 ? "OrderId" : "CertId", argv[first]);
    if (call(&x, act->action, &q, &r)) {
        id_done(spec, argv[first], r, a.json);
        json_decref(r);
        record_revocation(&x, cert_id);
        rc = EXIT_SUCCESS;
    }
    cli_service_close(&x);
    return rc;
}

/* ---- quota ---- */

typedef struct {
    const char *product, *provider;
    int json;
} quota_args;

static const cli_opt quota_opts[] = {CLI_OPT_VALUE(quota_args, product, "product", "CODE",
                                                   "the product (default digicert-free-1-free)"),
                                     OPT_PROVIDER(quota_args),
                                     OPT_JSON(quota_args, "print the service's answer as JSON"),
                                     CLI_OPT_CONFIG,
                                     CLI_OPT_HELP,
                                     CLI_OPT_END};

static int cmd_quota(const cli_command *self, int argc, char **argv)
{
    quota_args a = {.product = "digicert-free-1-free"};
    int first, rc = cli_parse(&self->spec, argc, argv, &a, &first);
    json_t *r;
    cs_kv q;
    ctx x;

    if (rc != CLI_CONTINUE || (rc = cli_service_open(&x, "quota", a.provider)) != EXIT_SUCCESS)
        return rc;
    rc = EXIT_FAILURE;
    cs_kv_init(&q);
    cs_kv_set(&q, "ProductCode", a.product);
    if (call(&x, "DescribePackageState", &q, &r)) {
        if (a.json)
            print_json(r);
        else
            printf("%s: %lld in all, %lld used, %lld issued\n", a.product,
                   (long long)json_integer_value(json_object_get(r, "TotalCount")),
                   (long long)json_integer_value(json_object_get(r, "UsedCount")),
                   (long long)json_integer_value(json_object_get(r, "IssuedCount")));
        json_decref(r);
        rc = EXIT_SUCCESS;
    }
    cli_service_close(&x);
    return rc;
}

/* ---- apply ---- */

typedef struct {
    const char *domain, *validate, *product, *into, *webroot, *order, *poll, *timeout, *provider;
    const char *username, *phone, *email, *connect_to, *dns;
    int wait, json, check;
} apply_args;

static const cli_opt apply_opts[] = {
    CLI_OPT_NEEDED(apply_args, domain, "domain", "DOMAIN", "the name to apply for"),
    CLI_OPT_VALUE(apply_args, validate, "validate", "file|dns",
                  "how the service validates the domain (required without\n--order)"),
    CLI_OPT_VALUE(apply_args, product, "product", "CODE", "default digicert-free-1-free"),
    CLI_OPT_SWITCH(apply_args, wait, "wait",
                   "poll the order until it is issued, then install it into\n"
                   "--into NAME; fails when the review fails or after\n--timeout"),
    CLI_OPT_VALUE(apply_args, into, "into", "NAME",
                  "where --wait installs it (default: the [cert] whose\ndomain list holds DOMAIN)"),
    CLI_OPT_VALUE(apply_args, webroot, "webroot", "DIR",
                  "also write DIR/.well-known/pki-validation/fileauth.txt\n"
                  "(never through a symbolic link below DIR)"),
    CLI_OPT_VALUE(apply_args, dns, "dns", "alidns",
                  "with --validate dns: publish the record in Alibaba Cloud\n"
                  "DNS (the provider's credentials; alidns-endpoint), and\n"
                  "with --wait remove it once the certificate is issued"),
    CLI_OPT_VALUE(apply_args, order, "order", "ORDER",
                  "do not apply again: continue with the existing order"),
    CLI_OPT_VALUE(apply_args, poll, "poll", "SECONDS", "how often --wait asks (default 10)"),
    CLI_OPT_VALUE(apply_args, timeout, "timeout", "SECONDS",
                  "how long --wait waits (default 3600)"),
    OPT_PROVIDER(apply_args),
    CLI_OPT_VALUE(apply_args, username, "username", "NAME",
                  "with --phone and --email: apply with\n"
                  "CreateCertificateRequest (DV products, a CSR made by the\n"
                  "service) and these contact details"),
    CLI_OPT_VALUE(apply_args, phone, "phone", "PHONE", "the contact's phone (with --username)"),
    CLI_OPT_VALUE(apply_args, email, "email", "EMAIL", "the contact's email (with --username)"),
    OPT_JSON(apply_args, "print the order and its state as JSON lines instead of\ntext"),
    CLI_OPT_SWITCH(apply_args, check, "check",
                   "order nothing: write a test file where FILE validation\n"
                   "is answered (the store's challenges, and --webroot),\n"
                   "fetch http://DOMAIN/.well-known/pki-validation/fileauth.txt\n"
                   "as the service would and say whether the server answers\n"
                   "it (exit 0) or not (exit 1)"),
    CLI_OPT_VALUE(apply_args, connect_to, "connect-to", "HOST:PORT",
                  "with --check: fetch from HOST:PORT instead of where\n"
                  "DOMAIN resolves (port 80), with the same URL and Host, as\n"
                  "curl --connect-to (the server before DNS points at it, or\n"
                  "127.0.0.1:PORT on the server itself)"),
    CLI_OPT_CONFIG,
    CLI_OPT_HELP,
    CLI_OPT_END};

static const char apply_about[] =
    "CreateCertificateForPackageRequest, then exactly what must be published for the domain\n"
    "validation: the DNS record, or the file's URL path and content. For FILE validation the\n"
    "content is also put into the store's challenge area\n"
    "(<store>/challenges/DOMAIN/pki-validation/fileauth.txt, DOMAIN lower-cased), where the\n"
    "certsync server modules answer it, and under --webroot.\n"
    "\n"
    "Before spending a certificate of the quota, `certsync apply --check --domain DOMAIN\n"
    "--validate file` writes a test file there, fetches it over plain HTTP as the service\n"
    "will, and says whether the server answers it; nothing is ordered and no credentials are\n"
    "used. The store's previous validation file for DOMAIN (an order's) is put back after the\n"
    "check; under --webroot the test file stays until apply writes the order's.\n";

/* apply --json keeps stdout for JSON; the sentences for people go to stderr */
static FILE *human;

/*
 * Below the webroot (the operator's path) the web server's worker user can often write: every
 * step is entered through a descriptor, never through a symlink it planted, and the file is
 * replaced by a rename in the last directory, so a symlink at its name is replaced, not followed.
 */
static cs_rc write_webroot(const char *webroot, const char *content, char *path, size_t size)
{
    static const char *const steps[] = {".well-known", "pki-validation"};
    int fd, next;
    size_t i;
    cs_rc rc;

    snprintf(path, size, "%s", webroot);
    if ((fd = open(webroot, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return cs_error_set(CS_EIO, "--webroot '%s': %s", webroot, strerror(errno));
    for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        rc = cs_fs_dir_enterat(fd, steps[i], 0755, &next);
        close(fd);
        if (rc == CS_EPERM)
            return cs_error_set(rc,
                                "'%s/%s' is a symbolic link or not a directory: refused (nothing "
                                "is written through a link in a webroot); remove it",
                                path, steps[i]);
        if (rc != CS_OK)
            return cs_error_prefix("--webroot '%s'", webroot);
        fd = next;
        strncat(path, "/", size - strlen(path) - 1);
        strncat(path, steps[i], size - strlen(path) - 1);
    }
    rc = cs_fs_write_at(fd, "fileauth.txt", content, strlen(content), 0644, (gid_t)-1, CS_FS_SYNC);
    close(fd);
    strncat(path, "/fileauth.txt", size - strlen(path) - 1);
    return rc == CS_OK ? CS_OK : cs_error_prefix("--webroot '%s'", webroot);
}

/* The file goes into the store's challenge area, and under --webroot when given. */
static int write_challenge(cs_apply *ap, cs_store *s, const char *content, const char *webroot)
{
    char path[4200];
    cs_rc rc = cs_apply_publish(ap, s);

    if (rc == CS_OK && webroot &&
        (rc = write_webroot(webroot, content, path, sizeof(path))) == CS_OK)
        fprintf(human, "  written to %s\n", path);
    if (rc != CS_OK)
        cli_fail("apply");
    return rc == CS_OK;
}

static const cs_cert_conf *cert_for_domain(const cs_config *c, const char *domain)
{
    size_t i, k;

    for (i = 0; i < c->n_certs; i++)
        for (k = 0; k < c->certs[i].n_domains; k++)
            if (strcasecmp(c->certs[i].domains[k], domain) == 0)
                return &c->certs[i];
    return NULL;
}

/* An apply run: its options, client, the order and where it goes. */
typedef struct {
    apply_args a;
    ctx x;
    cs_apply *ap;
    const char *into;
    long poll_s, timeout_s;
    char dns_name[256], dns_value[256]; /* published by --dns alidns, removed once issued */
} apply_job;

static int install_issued(apply_job *j, const char *id)
{
    const cs_cert_conf *cc = cs_config_cert(j->x.c, j->into);
    cs_install_opts o = cs_install_opts_for(cc, "aliyun-cas", id[0] ? id : NULL);
    cs_bundle *b = NULL;
    unsigned v;
    int ok = 0;

    if (cs_apply_bundle(j->ap, &b) == CS_OK &&
        cs_store_install(j->x.s, j->into, b, &o, &v) == CS_OK) {
        fprintf(human, "%s: installed v%u (certificate %s)\n", j->into, v, cli_safe(id));
        ok = cs_sync_notify(j->x.c, j->x.s, cc, v) == CS_OK || !cli_fail("apply");
    } else {
        cli_fail("apply");
    }
    cs_bundle_free(b);
    return ok;
}

/* The usage checks of apply; CLI_CONTINUE when they pass. */
static int apply_check(const cli_cmd *spec, apply_job *j)
{
    const apply_args *a = &j->a;

    j->poll_s = a->poll ? atol(a->poll) : 10;
    j->timeout_s = a->timeout ? atol(a->timeout) : 3600;
    if (!a->order &&
        (!a->validate || (strcasecmp(a->validate, "file") && strcasecmp(a->validate, "dns"))))
        return cli_usage(spec, "give --validate file or --validate dns");
    if (a->order && !digits(a->order))
        return cli_usage(spec, "--order: '%s' is not an order id", a->order);
    if (j->poll_s < 1 || j->timeout_s < 1)
        return cli_usage(spec, "--poll and --timeout take seconds (at least 1)");
    if ((a->username || a->phone || a->email) && !(a->username && a->phone && a->email))
        return cli_usage(spec, "give --username, --phone and --email together");
    if (a->check && (a->order || strcasecmp(a->validate, "file") != 0))
        return cli_usage(spec, "--check checks FILE validation: give --validate file (and no "
                               "--order); for DNS, look the record up with dig");
    if (a->check && (a->wait || a->into || a->username))
        return cli_usage(spec, "--check orders nothing: --wait, --into and --username do not "
                               "go with it");
    if (a->connect_to && !a->check)
        return cli_usage(spec, "--connect-to goes with --check");
    if (a->dns && (strcmp(a->dns, "alidns") != 0 || a->check ||
                   (a->validate && strcasecmp(a->validate, "dns") != 0)))
        return cli_usage(spec, "--dns alidns publishes a DNS validation: give --validate dns");
    return CLI_CONTINUE;
}

/* --wait without --into: the [cert] whose domain list holds the domain. */
static int apply_target(apply_job *j)
{
    const cs_cert_conf *cc;

    j->into = j->a.into;
    if (!j->a.wait || j->into)
        return 1;
    cc = cert_for_domain(j->x.c, j->a.domain);
    if (cc == NULL) {
        fprintf(stderr,
                "certsync apply: no [cert NAME] lists %s in its domain; give --into "
                "NAME to say where the certificate goes\n",
                j->a.domain);
        return 0;
    }
    j->into = cc->name;
    return 1;
}

/* Apply for the certificate (a new order), or go on with --order. */
static int apply_start(apply_job *j)
{
    const apply_args *a = &j->a;
    cs_apply_request req = {.domain = a->domain,
                            .product = a->product,
                            .username = a->username,
                            .phone = a->phone,
                            .email = a->email,
                            .order = a->order};

    req.validate =
        a->validate && strcasecmp(a->validate, "dns") == 0 ? CS_APPLY_DNS : CS_APPLY_FILE;
    if (cs_apply_start(j->x.client, &req, &j->ap) != CS_OK) {
        cli_fail("apply");
        return 0;
    }
    if (!a->order)
        fprintf(human, "applied for %s: order %s (%s)\n", a->domain, cs_apply_order(j->ap),
                a->product);
    return 1;
}

/* apply --json: the order's state as one line, without the key */
static void apply_json_line(apply_job *j)
{
    char *line = cs_apply_json(j->ap);

    if (line == NULL) {
        fprintf(stderr, "certsync apply: out of memory\n");
        return;
    }
    printf("%s\n", line);
    fflush(stdout);
    free(line);
}

/* --dns alidns: the validation's TXT record added (add) or removed in Alibaba Cloud DNS. */
static int alidns_record(apply_job *j, const char *name, const char *value, int add)
{
    cs_alidns *d = NULL;
    cs_rc rc = cs_alidns_new(j->x.pv, &d);

    if (rc == CS_OK)
        rc = add ? cs_alidns_txt_add(d, name, value) : cs_alidns_txt_remove(d, name, value);
    cs_alidns_free(d);
    if (rc != CS_OK) {
        cli_fail("apply");
        return 0;
    }
    fprintf(human, "%s Alibaba Cloud DNS: %s TXT %s\n", add ? "published in" : "removed from",
            cli_safe(name), cli_safe(value));
    if (add) {
        snprintf(j->dns_name, sizeof(j->dns_name), "%s", name);
        snprintf(j->dns_value, sizeof(j->dns_value), "%s", value);
    }
    return 1;
}

/* The order waits for validation: print (and write) what to publish, once. */
static int apply_publish(apply_job *j, const cs_apply_state *st)
{
    const char *domain = j->a.domain;

    if (!st->validation.fresh)
        return 1;
    if (st->validation.kind == CS_APPLY_DNS && j->a.dns)
        return alidns_record(j, st->validation.record_domain ?: "",
                             st->validation.record_value ?: "", 1);
    if (st->validation.kind == CS_APPLY_DNS) {
        fprintf(human, "publish this DNS record for %s:\n  %s  %s  %s\n", domain,
                cli_safe(st->validation.record_domain), cli_safe(st->validation.record_type),
                cli_safe(st->validation.record_value));
        return 1;
    }
    fprintf(human, "publish this file for %s:\n  URL path  %s\n  content   %s\n", domain,
            cli_safe(st->validation.uri), cli_safe(st->validation.content));
    if (!write_challenge(j->ap, j->x.s, st->validation.content, j->a.webroot))
        return 0;
    fprintf(human, "  the certsync modules answer it from the store's challenge area\n");
    return 1;
}

/* The id of the issued certificate: the answer's CertId, else found in the list. */
static void issued_id(apply_job *j, const cs_apply_state *st, char *id, size_t size)
{
    char *line;
    json_t *a;

    snprintf(id, size, "%s", st->cert_id);
    if (id[0] || (line = cs_apply_json(j->ap)) == NULL) /* the answer without its key */
        return;
    a = json_loads(line, 0, NULL);
    free(line);
    cert_id_of_pem(&j->x, jstr(a, "Certificate"), id, size);
    json_decref(a);
}

/* The order is issued: install it into --into, or say how. */
static int apply_issued(apply_job *j, const cs_apply_state *st)
{
    char id[32];

    if (j->dns_name[0])
        alidns_record(j, j->dns_name, j->dns_value, 0); /* a failure is said, the rest goes on */
    issued_id(j, st, id, sizeof(id));
    if (id[0] == '\0')
        fprintf(stderr,
                "certsync apply: order %s is issued, but its certificate is not (yet) in the "
                "service's certificate list, so its id is not known: the next sync may install "
                "it once more\n",
                cs_apply_order(j->ap));
    fprintf(human, "order %s is issued: certificate %s\n", cs_apply_order(j->ap), cli_safe(id));
    if (j->into)
        return install_issued(j, id) ? EXIT_SUCCESS : EXIT_FAILURE;
    fprintf(human, "install it with `certsync fetch %s --into NAME`\n", cli_safe(id));
    return EXIT_SUCCESS;
}

/* One look at the order: an exit code when apply is done, else CLI_CONTINUE to wait on. */
static int apply_step(apply_job *j, time_t start)
{
    const char *o = cs_apply_order(j->ap), *d = j->a.domain;
    cs_apply_state st;

    if (cs_apply_step(j->ap, &st) != CS_OK)
        return cli_fail("apply");
    if (j->a.json)
        apply_json_line(j);
    if (st.phase == CS_APPLY_PENDING && !apply_publish(j, &st))
        return EXIT_FAILURE;
    if (st.phase == CS_APPLY_ISSUED)
        return apply_issued(j, &st);
    if (strcmp(st.type, "payed") == 0) {
        fprintf(stderr,
                "certsync apply: order %s is paid and waits for an application (a renewal's new "
                "order, or a withdrawn one), which the API cannot submit: submit it in the "
                "console, then run `certsync apply --domain %s --order %s --wait`; or delete it "
                "with `certsync delete-order %s` and apply anew\n",
                o, d, o, o);
        return EXIT_FAILURE;
    }
    if (st.phase == CS_APPLY_FAILED) {
        fprintf(stderr,
                "certsync apply: %s; check the published record or file, then `certsync "
                "delete-order %s` and apply again\n",
                st.reason, o);
        return EXIT_FAILURE;
    }
    if (!j->a.wait) {
        fprintf(
            human,
            "order %s is %s; run `certsync apply --domain %s --order %s --wait` to wait for it\n",
            o, cli_safe(st.words), d, o);
        return EXIT_SUCCESS;
    }
    if (time(NULL) - start >= j->timeout_s) {
        fprintf(stderr,
                "certsync apply: order %s is still %s after %ld s; run `certsync apply --domain "
                "%s --order %s --wait` to go on waiting\n",
                o, cli_safe(st.words), j->timeout_s, d, o);
        return EXIT_FAILURE;
    }
    return CLI_CONTINUE;
}

/* The store's validation file for domain before the check, to be put back after it. */
static char *previous_answer(cs_store *s, const char *domain)
{
    char host[256], *data = NULL;
    size_t i, len;

    for (i = 0; domain[i] && i < sizeof(host) - 1; i++)
        host[i] = (char)tolower((unsigned char)domain[i]);
    host[i] = '\0';
    if (cs_store_read_challenge(s, host, "pki-validation", "fileauth.txt", 4096, &data, &len) !=
        CS_OK)
        cs_error_clear();
    return data;
}

/* apply --check: does the server answer FILE validation for the domain? Nothing is ordered. */
static int apply_check_only(const apply_args *a)
{
    unsigned char rnd[16];
    char probe[64], *previous;
    cs_config *c;
    cs_store *s;
    int ok;

    if (cli_open_all("apply", &c, &s) != EXIT_SUCCESS)
        return EXIT_FAILURE;
    RAND_bytes(rnd, sizeof(rnd));
    snprintf(probe, sizeof(probe), "certsync-check-");
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(probe + strlen(probe), sizeof(probe) - strlen(probe), "%02x", rnd[i]);
    previous = previous_answer(s, a->domain);
    ok = cs_store_write_challenge(s, a->domain, "pki-validation", "fileauth.txt", probe) == CS_OK;
    if (ok && a->webroot) {
        char path[4200];

        ok = write_webroot(a->webroot, probe, path, sizeof(path)) == CS_OK;
    }
    if (!ok)
        cli_fail("apply");
    else if ((ok = cs_apply_check_answer(a->domain, a->connect_to, probe) == CS_OK))
        printf("apply --check: http://%s%s%s%s answers the FILE validation: the service can "
               "validate %s; nothing was ordered\n",
               a->domain, CS_CHALLENGE_PKI_PATH, a->connect_to ? " through " : "",
               a->connect_to ? a->connect_to : "", a->domain);
    else
        fprintf(stderr, "certsync apply --check: %s; nothing was ordered\n",
                cli_safe(cs_error_last()));
    if (previous &&
        cs_store_write_challenge(s, a->domain, "pki-validation", "fileauth.txt", previous) != CS_OK)
        cli_fail("apply");
    free(previous);
    cs_store_free(s);
    cs_config_free(c);
    return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}

static int cmd_apply(const cli_command *self, int argc, char **argv)
{
    apply_job j = {.a.product = "digicert-free-1-free"};
    int first, rc = cli_parse(&self->spec, argc, argv, &j.a, &first);
    time_t start;

    if (rc != CLI_CONTINUE || (rc = apply_check(&self->spec, &j)) != CLI_CONTINUE)
        return rc;
    if (j.a.check)
        return apply_check_only(&j.a);
    human = j.a.json ? stderr : stdout;
    if ((rc = cli_service_open(&j.x, "apply", j.a.provider)) != EXIT_SUCCESS)
        return rc;
    rc = EXIT_FAILURE;
    if (apply_target(&j) && apply_start(&j))
        for (start = time(NULL); (rc = apply_step(&j, start)) == CLI_CONTINUE;)
            sleep((unsigned)j.poll_s);
    cs_apply_free(j.ap); /* wipes the key of the last answer */
    cli_service_close(&j.x);
    return rc;
}

/* ---- aliyun sign ---- */

typedef struct {
    const char *ver, *method, *host, *action, *api, *date, *nonce, *id, *secret_file;
    const char *body_file, *ctype, *token_file;
    cs_kv params;
} sign_args;

/* --param NAME=VALUE, repeatable */
static cs_rc parse_param(const char *arg, void *field)
{
    const char *eq = strchr(arg, '=');
    char *name;
    cs_rc rc;

    if (eq == NULL || eq == arg)
        return cs_error_set(CS_EINVAL, "--param takes NAME=VALUE");
    if ((name = strndup(arg, (size_t)(eq - arg))) == NULL)
        return cs_error_set(CS_ENOMEM, "out of memory");
    rc = cs_kv_set(field, name, eq + 1);
    free(name);
    return rc;
}

#define SIGN_NEEDED(f, name_, value_, help_) CLI_OPT_NEEDED(sign_args, f, name_, value_, help_)

static const cli_opt sign_opts[] = {
    SIGN_NEEDED(ver, "signature-version", "v1|v3", "v3: ACS3-HMAC-SHA256; v1: HMAC-SHA1"),
    SIGN_NEEDED(method, "method", "GET|POST", "the HTTP method"),
    SIGN_NEEDED(host, "host", "HOST", "the endpoint's host, e.g. cas.aliyuncs.com"),
    SIGN_NEEDED(action, "action", "ACTION", "the API action, e.g. ListUserCertificateOrder"),
    SIGN_NEEDED(api, "api-version", "VERSION", "the API version, e.g. 2020-04-07"),
    SIGN_NEEDED(date, "date", "ISO8601", "the request's time, as sent (x-acs-date, Timestamp)"),
    SIGN_NEEDED(nonce, "nonce", "NONCE", "the request's nonce, as sent"),
    SIGN_NEEDED(id, "access-key-id", "ID", "the AccessKey id"),
    SIGN_NEEDED(secret_file, "secret-file", "FILE", "the AccessKey secret (first line)"),
    CLI_OPT_CALL(sign_args, params, "param", "NAME=VALUE",
                 "a query parameter, repeatable; for v1 it also overrides\n"
                 "the common parameters (Format, Version, ...)",
                 parse_param),
    CLI_OPT_VALUE(sign_args, body_file, "body-file", "FILE", "the request body (v3)"),
    CLI_OPT_VALUE(sign_args, ctype, "content-type", "TYPE", "the body's type (with --body-file)"),
    CLI_OPT_VALUE(sign_args, token_file, "security-token-file", "FILE",
                  "an STS security token (first line)"),
    CLI_OPT_HELP,
    CLI_OPT_END};

static const cli_cmd sign_spec = {
    .prog = "certsync",
    .name = "aliyun sign",
    .summary = "compute a request signature the way certsync sends it",
    .about =
        "To compare with a SignatureDoesNotMatch answer (whose message ends with the service's\n"
        "string to sign). Prints the canonical request (v3) or the canonicalized query (v1), the\n"
        "string to sign, and as its last line the signature alone. Nothing is sent. Secrets come\n"
        "from files only.\n",
    .opts = sign_opts};

static int read_secret(const char *path, char **out)
{
    if (cs_password_read(path, out) != CS_OK) {
        cli_fail("aliyun sign");
        return 0;
    }
    return 1;
}

static cs_rc sign_v1(const sign_args *a, const char *secret, const char *token)
{
    cs_signature sig;
    cs_kv all;
    cs_rc r;

    cs_kv_init(&all);
    cs_kv_set(&all, "Action", a->action);
    cs_kv_set(&all, "Version", a->api);
    cs_kv_set(&all, "Format", "JSON");
    cs_kv_set(&all, "AccessKeyId", a->id);
    cs_kv_set(&all, "SignatureMethod", "HMAC-SHA1");
    cs_kv_set(&all, "SignatureVersion", "1.0");
    cs_kv_set(&all, "SignatureNonce", a->nonce);
    cs_kv_set(&all, "Timestamp", a->date);
    if (token)
        cs_kv_set(&all, "SecurityToken", token);
    for (size_t i = 0; i < a->params.n; i++)
        cs_kv_set(&all, a->params.names[i], a->params.values[i]);
    r = cs_sign_v1(a->method, &all, secret, &sig);
    cs_kv_clear(&all);
    if (r == CS_OK) {
        printf("canonicalized query:\n%s\n\nstring to sign:\n%s\n\n%s\n", sig.canonical,
               sig.string_to_sign, sig.signature);
        cs_signature_clear(&sig);
    }
    return r;
}

static cs_rc sign_v3(const sign_args *a, const char *secret, const char *token, const char *body,
                     size_t body_len)
{
    cs_signature sig;
    cs_kv headers;
    char hash[65];
    cs_rc r;

    cs_kv_init(&headers);
    cs_sha256_hex(body ? body : "", body_len, hash);
    cs_kv_set(&headers, "host", a->host);
    cs_kv_set(&headers, "x-acs-action", a->action);
    cs_kv_set(&headers, "x-acs-version", a->api);
    cs_kv_set(&headers, "x-acs-date", a->date);
    cs_kv_set(&headers, "x-acs-signature-nonce", a->nonce);
    cs_kv_set(&headers, "x-acs-content-sha256", hash);
    if (a->ctype)
        cs_kv_set(&headers, "content-type", a->ctype);
    if (token) {
        cs_kv_set(&headers, "x-acs-accesskey-id", a->id);
        cs_kv_set(&headers, "x-acs-security-token", token);
    }
    r = cs_sign_v3(a->method, &a->params, &headers, a->id, secret, &sig);
    cs_kv_clear(&headers);
    if (r == CS_OK) {
        printf("canonical request:\n%s\n\nstring to sign:\n%s\n\nAuthorization: %s\n\n%s\n",
               sig.canonical, sig.string_to_sign, sig.authorization, sig.signature);
        cs_signature_clear(&sig);
    }
    return r;
}

/* Read the secrets and the body, sign; the exit code. */
static int sign_run(const sign_args *a)
{
    char *secret = NULL, *token = NULL, *body = NULL;
    size_t body_len = 0;
    int rc = EXIT_FAILURE;

    if (!read_secret(a->secret_file, &secret) ||
        (a->token_file && !read_secret(a->token_file, &token)))
        goto done;
    if (a->body_file && cs_fs_read(a->body_file, 1 << 20, &body, &body_len) != CS_OK) {
        cli_fail("aliyun sign");
        goto done;
    }
    if ((strcmp(a->ver, "v1") == 0 ? sign_v1(a, secret, token)
                                   : sign_v3(a, secret, token, body, body_len)) != CS_OK)
        cli_fail("aliyun sign");
    else
        rc = EXIT_SUCCESS;
done:
    cs_password_free(secret);
    cs_password_free(token);
    free(body);
    return rc;
}

static int cmd_aliyun_sign(int argc, char **argv)
{
    sign_args a = {0};
    int first, rc;

    cs_kv_init(&a.params);
    rc = cli_parse(&sign_spec, argc, argv, &a, &first);
    if (rc == CLI_CONTINUE && strcmp(a.ver, "v1") != 0 && strcmp(a.ver, "v3") != 0)
        rc = cli_usage(&sign_spec, "--signature-version: '%s' is not v1 or v3", a.ver);
    if (rc == CLI_CONTINUE && a.body_file && !a.ctype)
        rc = cli_usage(&sign_spec, "--body-file needs --content-type TYPE");
    if (rc == CLI_CONTINUE)
        rc = sign_run(&a);
    cs_kv_clear(&a.params);
    return rc;
}

/* aliyun endpoint REGION...: the host each region's calls go to (the SDK's endpoint map). */
static int cmd_aliyun_endpoint(const cli_command *self, int argc, char **argv)
{
    char host[128];
    int i;

    if (argc < 2)
        return cli_usage(&self->spec, "aliyun endpoint: give one or more region ids");
    for (i = 1; i < argc; i++) {
        if (cs_aliyun_region_host(argv[i], host, sizeof(host)) != CS_OK)
            return cli_usage(&self->spec, "aliyun endpoint: %s", cs_error_last());
        printf("%s https://%s\n", argv[i], host);
    }
    return EXIT_SUCCESS;
}

static int cmd_aliyun(const cli_command *self, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "sign") == 0)
        return cmd_aliyun_sign(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "endpoint") == 0)
        return cmd_aliyun_endpoint(self, argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0)) {
        cli_help(&sign_spec, stdout);
        printf("\ncertsync aliyun endpoint REGION...\n  the endpoint each region's calls go to "
               "(a [provider] without endpoint =)\n");
        return EXIT_SUCCESS;
    }
    return cli_usage(&self->spec, "the aliyun commands are: sign, endpoint");
}

/* ---- the table ---- */

#define ID_COMMAND(name_, arg, summary_, about_, action_, confirm_, revokes_)                      \
    {                                                                                              \
        .spec = {.prog = "certsync",                                                               \
                 .name = name_,                                                                    \
                 .args = arg,                                                                      \
                 .summary = summary_,                                                              \
                 .about = about_,                                                                  \
                 .opts = id_opts},                                                                 \
        .run = cmd_id_action, .data = &(const id_action)                                           \
        {                                                                                          \
            action_, confirm_, revokes_                                                            \
        }                                                                                          \
    }

const cli_command cli_aliyun_commands[] = {
    CLI_COMMAND("list", NULL, "certificates and orders with their status", list_about, list_opts,
                cmd_list),
    CLI_COMMAND("show", "ID", "one certificate's details (never its key)", show_about, show_opts,
                cmd_show),
    CLI_COMMAND("fetch", "[ID]", "download with key: into the store, or a console-style layout",
                fetch_about, fetch_opts, cmd_fetch),
    CLI_COMMAND("upload", "NAME", "upload a certificate (default: the store's current NAME)",
                upload_about, upload_opts, cmd_upload),
    ID_COMMAND("delete", "ID", "delete an uploaded or expired certificate",
               "DeleteUserCertificate: the service deletes uploaded and expired certificates\n"
               "only; an issued, valid one is revoked with `certsync revoke ORDER`. Asks for\n"
               "confirmation unless --yes. An order is deleted with `certsync delete-order`\n"
               "(withdraw it first).\n",
               "DeleteUserCertificate", 1, 0),
    CLI_COMMAND("apply", NULL, "apply, print the validation to publish, --wait to install",
                apply_about, apply_opts, cmd_apply),
    ID_COMMAND("withdraw", "ORDER", "withdraw an application",
               "An order that waits for validation or is in review (CancelOrderRequest); it goes\n"
               "back to \"paid\" (pending application). `certsync delete-order ORDER` then\n"
               "deletes it and returns its quota.\n",
               "CancelOrderRequest", 0, 0),
    ID_COMMAND("delete-order", "ORDER", "delete a failed or withdrawn order",
               "DeleteCertificateRequest; its quota is returned.\n", "DeleteCertificateRequest", 0,
               0),
    ID_COMMAND(
        "revoke", "ORDER", "revoke an issued certificate",
        "The certificate of an issued order (CancelCertificateForPackageRequest); a pending\n"
        "order is cancelled and its quota returned. Asks for confirmation unless --yes.\n"
        "Versions in the store that hold the revoked certificate (meta.json remote_id) are\n"
        "marked revoked in their state.json: `certsync rollback` refuses them without --force.\n",
        "CancelCertificateForPackageRequest", 1, 1),
    ID_COMMAND("renew", "ORDER", "renew an order that expires soon",
               "An order that expires soon (\"expiring soon\" in `certsync list`;\n"
               "RenewCertificateOrderForPackageRequest): the service renews no other. Prints the\n"
               "new order, which is paid and waits for an application: the API cannot submit\n"
               "it, submit it in the console; then `certsync apply --domain DOMAIN --order NEW\n"
               "--wait` follows it through validation, and `certsync sync` installs it for\n"
               "certificates selected by domain.\n",
               "RenewCertificateOrderForPackageRequest", 0, 0),
    CLI_COMMAND("quota", NULL, "remaining quota of a product",
                "How many certificates of a product the account may still apply for\n"
                "(DescribePackageState).\n",
                quota_opts, cmd_quota),
    CLI_COMMAND("aliyun", "sign|endpoint ...",
                "how a request is signed (SignatureDoesNotMatch aid); a region's endpoint", NULL,
                NULL, cmd_aliyun),
    CLI_COMMAND_END};
