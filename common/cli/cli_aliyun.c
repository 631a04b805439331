/*
 * certsync CLI: the certificate service's lifecycle (aliyun-cas): list, show,
 * fetch, upload, delete, apply, withdraw, revoke, renew, quota, aliyun sign.
 */
#include <ctype.h>
#include <getopt.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cs_aliyun.h"
#include "cs_bundle.h"
#include "cs_fs.h"
#include "cs_output.h"
#include "cs_password.h"
#include "cs_sync.h"

/* What every command here shares: config, store, the provider's client. */
typedef struct {
    const char *cmd;
    cs_config *c;
    cs_store *s;
    cs_sync_session *sess;
    cs_aliyun *client;
    const cs_provider_conf *pv;
} ctx;

static void ctx_free(ctx *x)
{
    cs_sync_session_free(x->sess);
    cs_store_free(x->s);
    cs_config_free(x->c);
}

/* --provider NAME, or the one aliyun-cas provider of the config. */
static int ctx_open(ctx *x, const char *cmd, const char *provider)
{
    size_t i, n = 0;
    int rc;

    memset(x, 0, sizeof(*x));
    x->cmd = cmd;
    if ((rc = cli_open_all(cmd, &x->c, &x->s)) != EXIT_SUCCESS)
        return rc;
    for (i = 0; i < x->c->n_providers; i++) {
        const cs_provider_conf *pv = &x->c->providers[i];

        if (pv->type != CS_PROVIDER_ALIYUN_CAS)
            continue;
        if (provider ? strcmp(pv->name, provider) == 0 : n++ == 0)
            x->pv = pv;
    }
    if (x->pv == NULL || (!provider && n > 1)) {
        fprintf(stderr, "certsync %s: %s\n", cmd,
                provider ? "no [provider NAME] of type aliyun-cas by that name in the config"
                : n ? "several aliyun-cas providers in the config; choose one with --provider NAME"
                    : "no [provider NAME] with type = aliyun-cas in the config");
        ctx_free(x);
        return EXIT_FAILURE;
    }
    x->sess = cs_sync_session_new(x->c);
    if (cs_aliyun_of_session(x->sess, x->pv, &x->client) != CS_OK) {
        cli_fail(cmd);
        ctx_free(x);
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}

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
    } map[] = {{"PAYED", "paid"},
               {"CHECKING", "pending verification"},
               {"CHECKED_FAIL", "failed"},
               {"ISSUED", "issued"},
               {"WILLEXPIRED", "expiring soon"},
               {"EXPIRED", "expired"},
               {"REVOKED", "revoked"},
               {"NOTACTIVATED", "not activated"},
               {"domain_verify", "pending verification"},
               {"process", "in review"},
               {"verify_fail", "failed"},
               {"certificate", "issued"},
               {"payed", "paid"},
               {NULL, NULL}};
    int i;

    for (i = 0; map[i].code; i++)
        if (strcmp(map[i].code, st) == 0)
            return map[i].words;
    return st;
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

/* ---- list ---- */

static const char list_help[] =
    "Usage: certsync list [--provider NAME] [--keyword TEXT] [--json] [--config FILE]\n"
    "\n"
    "List the certificates (issued and uploaded) and the orders of the account, with their\n"
    "status in the console's words: paid, pending verification, in review, issued,\n"
    "expiring soon, expired, revoked, failed.\n";

int cmd_list(int argc, char **argv)
{
    static const struct option opts[] = {{"provider", 1, 0, 'p'}, {"keyword", 1, 0, 'k'},
                                         {"json", 0, 0, 'j'},     {"config", 1, 0, 'G'},
                                         {"help", 0, 0, 'h'},     {0, 0, 0, 0}};
    const char *provider = NULL, *keyword = NULL;
    json_t *certs = NULL, *orders = NULL, *e;
    int opt, as_json = 0, rc;
    size_t i;
    ctx x;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'p':
            provider = optarg;
            break;
        case 'k':
            keyword = optarg;
            break;
        case 'j':
            as_json = 1;
            break;
        case 'G':
            cli_config_path = optarg;
            break;
        case 'h':
            fputs(list_help, stdout);
            return EXIT_SUCCESS;
        default:
            return cli_usage_error("list", "unknown option");
        }
    }
    if (optind < argc)
        return cli_usage_error("list", "unexpected argument '%s'", argv[optind]);
    if ((rc = ctx_open(&x, "list", provider)) != EXIT_SUCCESS)
        return rc;
    rc = EXIT_FAILURE;
    if (cs_aliyun_list(x.client, "CERT", NULL, keyword, &certs) != CS_OK ||
        cs_aliyun_list(x.client, "CPACK", NULL, keyword, &orders) != CS_OK) {
        cli_fail("list");
        goto done;
    }
    json_array_foreach(certs, i, e) json_object_set_new(e, "status", json_string(cert_status(e)));
    json_array_foreach(orders, i, e)
        json_object_set_new(e, "status", json_string(status_words(jstr(e, "Status"))));
    if (as_json) {
        json_t *all = json_pack("{sOsO}", "certificates", certs, "orders", orders);

        print_json(all);
        json_decref(all);
    } else {
        char id[32];

        printf("%-20s %-24s %-11s %-14s %s\n", "CERTIFICATE", "NAME", "NOT AFTER", "STATUS",
               "DOMAINS");
        json_array_foreach(certs, i, e)
        {
            cs_json_id(json_object_get(e, "CertificateId"), id, sizeof(id));
            printf("%-20s %-24s %-11s %-14s %s%s%s\n", cli_safe(id), jtxt(e, "Name"),
                   jtxt(e, "EndDate"), jtxt(e, "status"), jtxt(e, "CommonName"),
                   *jstr(e, "Sans") ? " " : "", jtxt(e, "Sans"));
        }
        printf("\n%-20s %-28s %-22s %-20s %s\n", "ORDER", "DOMAIN", "PRODUCT", "STATUS",
               "CERTIFICATE");
        json_array_foreach(orders, i, e)
        {
            char cid[32];

            cs_json_id(json_object_get(e, "OrderId"), id, sizeof(id));
            cs_json_id(json_object_get(e, "CertificateId"), cid, sizeof(cid));
            printf("%-20s %-28s %-22s %-20s %s\n", cli_safe(id), jtxt(e, "Domain"),
                   jtxt(e, "ProductCode"), jtxt(e, "status"), cli_safe(cid));
        }
    }
    rc = EXIT_SUCCESS;
done:
    json_decref(certs);
    json_decref(orders);
    ctx_free(&x);
    return rc;
}

/* ---- show ---- */

static const char show_help[] =
    "Usage: certsync show ID [--provider NAME] [--json] [--config FILE]\n"
    "\n"
    "Show one certificate of the service: names, validity, issuer, fingerprints and chain.\n"
    "The private key is never asked for (CertFilter=true).\n";

int cmd_show(int argc, char **argv)
{
    static const struct option opts[] = {{"provider", 1, 0, 'p'},
                                         {"json", 0, 0, 'j'},
                                         {"config", 1, 0, 'G'},
                                         {"help", 0, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *provider = NULL;
    int opt, as_json = 0, rc;
    json_t *d;
    cs_kv q;
    ctx x;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'p':
            provider = optarg;
            break;
        case 'j':
            as_json = 1;
            break;
        case 'G':
            cli_config_path = optarg;
            break;
        case 'h':
            fputs(show_help, stdout);
            return EXIT_SUCCESS;
        default:
            return cli_usage_error("show", "unknown option");
        }
    }
    if (optind + 1 != argc || !digits(argv[optind]))
        return cli_usage_error("show", "give one certificate ID (digits)");
    if ((rc = ctx_open(&x, "show", provider)) != EXIT_SUCCESS)
        return rc;
    cs_kv_init(&q);
    cs_kv_set(&q, "CertId", argv[optind]);
    cs_kv_set(&q, "CertFilter", "true");
    rc = EXIT_FAILURE;
    if (call(&x, "GetUserCertificateDetail", &q, &d)) {
        json_object_del(d, "Key");
        json_object_del(d, "EncryptPrivateKey");
        json_object_del(d, "SignPrivateKey");
        if (as_json) {
            print_json(d);
        } else {
            char id[32];

            cs_json_id(json_object_get(d, "Id"), id, sizeof(id));
            printf("certificate  %s\nname         %s\ncommon name  %s\nnames        %s\n"
                   "valid        %s .. %s%s\nissuer       %s\nserial       %s\nsha256       %s\n",
                   cli_safe(id), jtxt(d, "Name"), jtxt(d, "Common"), jtxt(d, "Sans"),
                   jtxt(d, "StartDate"), jtxt(d, "EndDate"),
                   json_is_true(json_object_get(d, "Expired")) ? " (expired)" : "",
                   jtxt(d, "Issuer"), jtxt(d, "SerialNo"), jtxt(d, "Sha2"));
        }
        json_decref(d);
        rc = EXIT_SUCCESS;
    }
    ctx_free(&x);
    return rc;
}

/* ---- fetch ---- */

static int one_json; /* fetch and upload: one JSON object on stdout */

static const char fetch_help[] =
    "Usage: certsync fetch ID | --domain DOMAIN [--into NAME | --layout LAYOUT --out DIR]\n"
    "                      [--provider NAME] [--config FILE]\n"
    "\n"
    "Download an issued certificate with its private key and chain. By id, or --domain: the\n"
    "newest issued, unexpired certificate covering DOMAIN.\n"
    "  --into NAME      install it as a new version of the managed certificate NAME (validated\n"
    "                   first; the formats of [cert NAME] are written)\n"
    "  --layout L --out DIR  write it as the console's download zip lays it out for a server:\n"
    "                   nginx, apache, tomcat, iis (NAME.pfx + pfx-password.txt) or jks\n"
    "                   (NAME.jks + jks-password.txt); NAME is the certificate's id\n"
    "                   (\"cert\" if the service's id is not digits only)\n"
    "  --json           print what was done as one JSON object\n";

static int write_layout(const char *layout, const char *dir, const char *id, const char *name,
                        cs_bundle *b)
{
    unsigned fmt;
    char *pw = NULL;
    cs_output_opts o = {name, name, CS_P12_MODERN, NULL, NULL, NULL};
    cs_rc rc;

    if (cs_format_parse(layout, &fmt) != CS_OK || fmt == CS_FMT_PEM)
        return cli_usage_error("fetch", "--layout: use nginx, apache, tomcat, iis or jks");
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

int cmd_fetch(int argc, char **argv)
{
    static const struct option opts[] = {
        {"domain", 1, 0, 'd'}, {"into", 1, 0, 'i'},     {"layout", 1, 0, 'l'},
        {"out", 1, 0, 'o'},    {"provider", 1, 0, 'p'}, {"config", 1, 0, 'G'},
        {"json", 0, 0, 'j'},   {"help", 0, 0, 'h'},     {0, 0, 0, 0}};
    const char *domain = NULL, *into = NULL, *layout = NULL, *out = NULL, *provider = NULL;
    char id[32] = "", origin[200];
    json_t *d = NULL;
    cs_bundle *b = NULL;
    int opt, rc;
    cs_kv q;
    ctx x;

    one_json = 0;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'j':
            one_json = 1;
            break;
        case 'd':
            domain = optarg;
            break;
        case 'i':
            into = optarg;
            break;
        case 'l':
            layout = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'p':
            provider = optarg;
            break;
        case 'G':
            cli_config_path = optarg;
            break;
        case 'h':
            fputs(fetch_help, stdout);
            return EXIT_SUCCESS;
        default:
            return cli_usage_error("fetch", "unknown option");
        }
    }
    if ((optind < argc) == (domain != NULL) || argc - optind > 1 ||
        (optind < argc && !digits(argv[optind])))
        return cli_usage_error("fetch", "give one certificate ID or --domain DOMAIN");
    if ((into != NULL) == (layout != NULL) || (layout && !out) || (out && !layout))
        return cli_usage_error("fetch", "give --into NAME, or --layout LAYOUT with --out DIR");
    if (into && !cs_name_valid(into))
        return cli_usage_error("fetch", "'%s' is not a certificate name", into);
    if ((rc = ctx_open(&x, "fetch", provider)) != EXIT_SUCCESS)
        return rc;
    rc = EXIT_FAILURE;
    if (domain) {
        json_t *certs, *best;

        if (cs_aliyun_list(x.client, "CERT", NULL, NULL, &certs) != CS_OK) {
            cli_fail("fetch");
            goto done;
        }
        best = cs_aliyun_pick(certs, NULL, &domain, 1);
        if (best)
            cs_json_id(json_object_get(best, "CertificateId"), id, sizeof(id));
        json_decref(certs);
        if (!id[0]) {
            fprintf(stderr, "certsync fetch: no issued, unexpired certificate for %s at %s\n",
                    domain, cs_aliyun_endpoint(x.client));
            goto done;
        }
    } else {
        snprintf(id, sizeof(id), "%s", argv[optind]);
    }
    cs_kv_init(&q);
    cs_kv_set(&q, "CertId", id);
    if (!call(&x, "GetUserCertificateDetail", &q, &d))
        goto done;
    snprintf(origin, sizeof(origin), "certificate %s from GetUserCertificateDetail (RequestId %s)",
             id, jstr(d, "RequestId"));
    if (!*jstr(d, "Key")) {
        fprintf(stderr,
                "certsync fetch: %s: the service holds no private key for it (its CSR was made "
                "elsewhere); use `certsync import` with your key\n",
                cli_safe(origin));
        goto done;
    }
    if (cs_bundle_load_pem(&b, jstr(d, "Cert"), strlen(jstr(d, "Cert")), jstr(d, "Key"),
                           strlen(jstr(d, "Key")), origin) != CS_OK ||
        cs_bundle_validate(b, NULL, 0, time(NULL), origin) != CS_OK ||
        (!layout && cs_aliyun_verify_trust(x.client, b, origin) != CS_OK)) {
        cli_fail("fetch");
        goto done;
    }
    if (layout) {
        /* the id came from the service: digits only may name a file */
        rc = write_layout(layout, out, id, cs_safe_file_name(id, 1, "cert"), b);
    } else {
        const cs_cert_conf *cc = cs_config_cert(x.c, into);
        cs_install_opts o = cs_install_opts_for(cc, "aliyun-cas", id);
        unsigned v;

        if (cs_store_install(x.s, into, b, &o, &v) != CS_OK) {
            cli_fail("fetch");
            goto done;
        }
        if (one_json)
            print_one(json_pack("{s:o, s:s, s:i}", "certificate", jtext(id), "name", into,
                                "version", (int)v));
        else
            printf("%s: installed v%u (certificate %s)\n", into, v, cli_safe(id));
        rc = cs_sync_notify(x.c, x.s, cc, v) == CS_OK ? EXIT_SUCCESS : cli_fail("fetch");
    }
done:
    if (d) {
        const char *k = jstr(d, "Key");

        OPENSSL_cleanse((void *)k, strlen(k));
        json_decref(d);
    }
    cs_bundle_free(b);
    ctx_free(&x);
    return rc;
}

/* ---- upload ---- */

static const char upload_help[] =
    "Usage: certsync upload NAME [--cert FILE --key FILE [--chain FILE]] [--replace]\n"
    "                       [--provider NAME] [--config FILE]\n"
    "\n"
    "Upload a certificate and its key into the service under the name NAME. Without --cert\n"
    "and --key, the store's current version of the managed certificate NAME is uploaded.\n"
    "  --replace   NAME exists in the service already: upload under a fresh name\n"
    "              (NAME-YYYYMMDDHHMMSS), then delete the certificates named NAME\n"
    "  --json      print the new certificate's id and name as one JSON object\n";

static int upload_once(ctx *x, const char *name, cs_bundle *b, char *id, size_t size)
{
    char *cert = NULL, *chain = NULL, *key = NULL, *full = NULL;
    size_t cl, chl, kl;
    json_t *r;
    cs_kv q;
    int ok = 0;

    if (cs_bundle_pem_leaf(b, &cert, &cl) != CS_OK ||
        cs_bundle_pem_issuers(b, &chain, &chl) != CS_OK ||
        cs_bundle_pem_key(b, &key, &kl) != CS_OK || asprintf(&full, "%s%s", cert, chain) < 0) {
        cli_fail("upload");
        goto done;
    }
    cs_kv_init(&q);
    cs_kv_set(&q, "Name", name);
    cs_kv_set(&q, "Cert", full);
    cs_kv_set(&q, "Key", key);
    if (cs_aliyun_call(x->client, "UploadUserCertificate", &q, &r) == CS_OK) {
        cs_json_id(json_object_get(r, "CertId"), id, size);
        json_decref(r);
        ok = 1;
    }
    cs_kv_clear(&q);
done:
    if (key)
        OPENSSL_cleanse(key, kl);
    free(cert);
    free(chain);
    free(key);
    free(full);
    return ok;
}

static int name_exists_error(const cs_aliyun *client)
{
    const char *code = cs_aliyun_last_code(client);

    return strstr(cs_error_last(), "already exists") != NULL || strcmp(code, "NameRepeat") == 0 ||
           strcmp(code, "ParamRepeat") == 0 || strcmp(code, "NameExist") == 0;
}

int cmd_upload(int argc, char **argv)
{
    static const struct option opts[] = {
        {"cert", 1, 0, 'c'},    {"key", 1, 0, 'k'},      {"chain", 1, 0, 'C'},
        {"replace", 0, 0, 'r'}, {"provider", 1, 0, 'p'}, {"config", 1, 0, 'G'},
        {"json", 0, 0, 'j'},    {"help", 0, 0, 'h'},     {0, 0, 0, 0}};
    const char *cert = NULL, *key = NULL, *chain = NULL, *provider = NULL, *name;
    int opt, replace = 0, rc;
    char id[32] = "";
    cs_bundle *b = NULL;
    ctx x;

    one_json = 0;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'j':
            one_json = 1;
            break;
        case 'c':
            cert = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'C':
            chain = optarg;
            break;
        case 'r':
            replace = 1;
            break;
        case 'p':
            provider = optarg;
            break;
        case 'G':
            cli_config_path = optarg;
            break;
        case 'h':
            fputs(upload_help, stdout);
            return EXIT_SUCCESS;
        default:
            return cli_usage_error("upload", "unknown option");
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error("upload", "give one NAME");
    name = argv[optind];
    if ((cert != NULL) != (key != NULL))
        return cli_usage_error("upload", "give both --cert and --key, or neither");
    if (strlen(name) > 63)
        return cli_usage_error("upload", "the service allows names of at most 63 characters");
    if ((rc = ctx_open(&x, "upload", provider)) != EXIT_SUCCESS)
        return rc;
    rc = EXIT_FAILURE;
    if ((cert ? cs_bundle_load_files(&b, cert, key, chain, NULL)
              : cs_store_load(x.s, name, 0, &b)) != CS_OK ||
        cs_bundle_validate(b, NULL, 0, time(NULL), cert ? cert : name) != CS_OK) {
        cli_fail("upload");
        goto done;
    }
    if (upload_once(&x, name, b, id, sizeof(id))) {
        if (one_json)
            print_one(json_pack("{s:o, s:o}", "certificate", jtext(id), "name", jtext(name)));
        else
            printf("uploaded %s as certificate %s\n", cli_safe(name), cli_safe(id));
        rc = EXIT_SUCCESS;
    } else if (!name_exists_error(x.client)) {
        cli_fail("upload");
    } else if (!replace) {
        fprintf(stderr,
                "certsync upload: a certificate named '%s' already exists in the service; use "
                "--replace to upload under a fresh name and delete the old one\n",
                name);
    } else {
        json_t *certs = NULL, *e;
        char fresh[80], old[32];
        time_t t = time(NULL);
        struct tm tm;
        size_t i;

        gmtime_r(&t, &tm);
        snprintf(fresh, sizeof(fresh), "%.47s-%04d%02d%02d%02d%02d%02d", name, tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        if (cs_aliyun_list(x.client, "UPLOAD", NULL, name, &certs) != CS_OK ||
            !upload_once(&x, fresh, b, id, sizeof(id))) {
            cli_fail("upload");
            json_decref(certs);
            goto done;
        }
        if (one_json)
            print_one(json_pack("{s:o, s:o, s:b}", "certificate", jtext(id), "name", jtext(fresh),
                                "replaced", 1));
        else
            printf("uploaded %s as certificate %s (name %s)\n", cli_safe(name), cli_safe(id),
                   cli_safe(fresh));
        rc = EXIT_SUCCESS;
        json_array_foreach(certs, i, e)
        {
            json_t *r;
            cs_kv q;

            if (strcmp(jstr(e, "Name"), name) != 0)
                continue;
            cs_json_id(json_object_get(e, "CertificateId"), old, sizeof(old));
            cs_kv_init(&q);
            cs_kv_set(&q, "CertId", old);
            if (call(&x, "DeleteUserCertificate", &q, &r)) {
                fprintf(one_json ? stderr : stdout, "deleted the old certificate %s (name %s)\n",
                        cli_safe(old), cli_safe(name));
                json_decref(r);
            } else {
                rc = EXIT_FAILURE;
            }
        }
        json_decref(certs);
    }
done:
    cs_bundle_free(b);
    ctx_free(&x);
    return rc;
}

/* ---- one-id actions: delete, withdraw, revoke, renew ---- */

static int simple(int argc, char **argv, const char *cmd, const char *help, const char *action,
                  const char *param, int confirm)
{
    static const struct option opts[] = {{"provider", 1, 0, 'p'}, {"yes", 0, 0, 'y'},
                                         {"json", 0, 0, 'j'},     {"config", 1, 0, 'G'},
                                         {"help", 0, 0, 'h'},     {0, 0, 0, 0}};
    const char *provider = NULL;
    int opt, yes = 0, as_json = 0, rc;
    json_t *r;
    cs_kv q;
    ctx x;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'p':
            provider = optarg;
            break;
        case 'y':
            yes = 1;
            break;
        case 'j':
            as_json = 1;
            break;
        case 'G':
            cli_config_path = optarg;
            break;
        case 'h':
            fputs(help, stdout);
            return EXIT_SUCCESS;
        default:
            return cli_usage_error(cmd, "unknown option");
        }
    }
    if (optind + 1 != argc || !digits(argv[optind]))
        return cli_usage_error(cmd, "give one %s (digits)", param);
    if (confirm && !yes) {
        char answer[16] = "";

        if (!isatty(0))
            return cli_usage_error(cmd, "this cannot be undone; confirm with --yes");
        printf("%s %s %s? This cannot be undone. Type yes: ", cmd, param, argv[optind]);
        fflush(stdout);
        if (fgets(answer, sizeof(answer), stdin) == NULL || strcmp(answer, "yes\n") != 0) {
            fprintf(stderr, "certsync %s: not confirmed; nothing done\n", cmd);
            return EXIT_FAILURE;
        }
    }
    if ((rc = ctx_open(&x, cmd, provider)) != EXIT_SUCCESS)
        return rc;
    rc = EXIT_FAILURE;
    cs_kv_init(&q);
    cs_kv_set(&q, strcmp(param, "ORDER") == 0 ? "OrderId" : "CertId", argv[optind]);
    if (call(&x, action, &q, &r)) {
        if (as_json) {
            print_json(r);
        } else {
            char nid[32];

            cs_json_id(json_object_get(r, "OrderId"), nid, sizeof(nid));
            printf("%s: done (%s %s, RequestId %s)", cmd, param, argv[optind],
                   jtxt(r, "RequestId"));
            if (nid[0])
                printf("; the new order is %s", cli_safe(nid));
            printf("\n");
        }
        json_decref(r);
        rc = EXIT_SUCCESS;
    }
    ctx_free(&x);
    return rc;
}

int cmd_delete(int argc, char **argv)
{
    static const char help[] =
        "Usage: certsync delete ID [--provider NAME] [--config FILE]\n"
        "\nDelete a certificate from the service (DeleteUserCertificate). To delete a failed\n"
        "or withdrawn order use `certsync withdraw` first, then `certsync delete-order`.\n";

    return simple(argc, argv, "delete", help, "DeleteUserCertificate", "ID", 0);
}

int cmd_withdraw(int argc, char **argv)
{
    static const char help[] =
        "Usage: certsync withdraw ORDER [--provider NAME] [--config FILE]\n"
        "\nWithdraw an application that waits for validation or is in review\n"
        "(CancelOrderRequest); the order goes back to \"paid\" and can be applied again.\n";

    return simple(argc, argv, "withdraw", help, "CancelOrderRequest", "ORDER", 0);
}

int cmd_revoke(int argc, char **argv)
{
    static const char help[] =
        "Usage: certsync revoke ORDER [--yes] [--provider NAME] [--config FILE]\n"
        "\nRevoke the certificate of an issued order (CancelCertificateForPackageRequest); a\n"
        "pending order is cancelled and its quota returned. Asks for confirmation unless --yes.\n";

    return simple(argc, argv, "revoke", help, "CancelCertificateForPackageRequest", "ORDER", 1);
}

int cmd_renew(int argc, char **argv)
{
    static const char help[] =
        "Usage: certsync renew ORDER [--json] [--provider NAME] [--config FILE]\n"
        "\nRenew an issued, still valid order (RenewCertificateOrderForPackageRequest); prints\n"
        "the new order, which then goes through validation like `certsync apply`. Once it is\n"
        "issued, `certsync sync` installs it for certificates selected by domain.\n";

    return simple(argc, argv, "renew", help, "RenewCertificateOrderForPackageRequest", "ORDER", 0);
}

int cmd_delete_order(int argc, char **argv)
{
    static const char help[] =
        "Usage: certsync delete-order ORDER [--provider NAME] [--config FILE]\n"
        "\nDelete an order that failed review or was withdrawn (DeleteCertificateRequest); its\n"
        "quota is returned.\n";

    return simple(argc, argv, "delete-order", help, "DeleteCertificateRequest", "ORDER", 0);
}

/* ---- quota ---- */

int cmd_quota(int argc, char **argv)
{
    static const struct option opts[] = {{"product", 1, 0, 'P'}, {"provider", 1, 0, 'p'},
                                         {"json", 0, 0, 'j'},    {"config", 1, 0, 'G'},
                                         {"help", 0, 0, 'h'},    {0, 0, 0, 0}};
    const char *product = "digicert-free-1-free", *provider = NULL;
    int opt, as_json = 0, rc;
    json_t *r;
    cs_kv q;
    ctx x;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'P':
            product = optarg;
            break;
        case 'p':
            provider = optarg;
            break;
        case 'j':
            as_json = 1;
            break;
        case 'G':
            cli_config_path = optarg;
            break;
        case 'h':
            printf("Usage: certsync quota [--product CODE] [--json] [--provider NAME]\n\n"
                   "How many certificates of a product (default digicert-free-1-free) the\n"
                   "account may still apply for (DescribePackageState).\n");
            return EXIT_SUCCESS;
        default:
            return cli_usage_error("quota", "unknown option");
        }
    }
    if ((rc = ctx_open(&x, "quota", provider)) != EXIT_SUCCESS)
        return rc;
    rc = EXIT_FAILURE;
    cs_kv_init(&q);
    cs_kv_set(&q, "ProductCode", product);
    if (call(&x, "DescribePackageState", &q, &r)) {
        if (as_json)
            print_json(r);
        else
            printf("%s: %lld in all, %lld used, %lld issued\n", product,
                   (long long)json_integer_value(json_object_get(r, "TotalCount")),
                   (long long)json_integer_value(json_object_get(r, "UsedCount")),
                   (long long)json_integer_value(json_object_get(r, "IssuedCount")));
        json_decref(r);
        rc = EXIT_SUCCESS;
    }
    ctx_free(&x);
    return rc;
}

/* ---- apply ---- */

static const char apply_help[] =
    "Usage: certsync apply --domain DOMAIN --validate file|dns [--product CODE] [--wait]\n"
    "                      [--into NAME] [--webroot DIR] [--order ORDER] [--poll SECONDS]\n"
    "                      [--timeout SECONDS] [--provider NAME] [--config FILE]\n"
    "\n"
    "Apply for a certificate (CreateCertificateForPackageRequest; default product\n"
    "digicert-free-1-free) and print exactly what must be published for the domain\n"
    "validation: the DNS record, or the file's URL path and content. For FILE validation the\n"
    "content is also put into the store's challenge area\n"
    "(<store>/challenges/DOMAIN/pki-validation/fileauth.txt, DOMAIN lower-cased), where the\n"
    "certsync server modules answer it, and into DIR/.well-known/pki-validation/fileauth.txt\n"
    "with --webroot.\n"
    "  --wait       poll the order (every --poll seconds, default 10) until it is issued,\n"
    "               then install it into --into NAME (default: the [cert] whose domain list\n"
    "               holds DOMAIN); fails when the review fails or after --timeout (3600 s)\n"
    "  --order N    do not apply again: continue with the existing order N\n"
    "  --username U --phone P --email E   apply with CreateCertificateRequest (DV products,\n"
    "               a CSR made by the service) and these contact details\n"
    "  --json       print the order and its state as JSON lines instead of text\n";

/* apply --json keeps stdout for JSON; the sentences for people go to stderr */
static FILE *human;

static int write_challenge(ctx *x, const char *domain, const char *content, const char *webroot)
{
    char path[4200], host[256];
    size_t i;
    cs_rc rc;

    /* servers look the challenge up by the Host they received, lower-cased */
    for (i = 0; domain[i] && i < sizeof(host) - 1; i++)
        host[i] = (char)tolower((unsigned char)domain[i]);
    host[i] = '\0';
    rc = cs_store_write_challenge(x->s, host, "pki-validation", "fileauth.txt", content);
    if (rc == CS_OK && webroot) {
        snprintf(path, sizeof(path), "%s/.well-known/pki-validation", webroot);
        rc = cs_fs_mkdirs(path, 0755);
        if (rc == CS_OK) {
            strncat(path, "/fileauth.txt", sizeof(path) - strlen(path) - 1);
            rc = cs_fs_write_atomic(path, content, strlen(content), 0644);
        }
        if (rc == CS_OK)
            fprintf(human, "  written to %s\n", path);
    }
    if (rc != CS_OK)
        cli_fail("apply");
    return rc == CS_OK;
}

static int state_of(ctx *x, const char *order, json_t **st)
{
    cs_kv q;

    cs_kv_init(&q);
    cs_kv_set(&q, "OrderId", order);
    return call(x, "DescribeCertificateState", &q, st);
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

static int install_issued(ctx *x, json_t *st, const char *order, const char *into)
{
    const char *cert = jstr(st, "Certificate"), *key = jstr(st, "PrivateKey");
    const cs_cert_conf *cc = cs_config_cert(x->c, into);
    cs_install_opts o;
    char origin[200], id[32];
    cs_bundle *b = NULL;
    unsigned v;
    int ok = 0;

    cs_json_id(json_object_get(st, "CertId"), id, sizeof(id));
    snprintf(origin, sizeof(origin), "certificate of order %s (DescribeCertificateState)", order);
    o = cs_install_opts_for(cc, "aliyun-cas", id[0] ? id : NULL);
    if (cs_bundle_load_pem(&b, cert, strlen(cert), key, strlen(key), origin) == CS_OK &&
        cs_aliyun_verify_trust(x->client, b, origin) == CS_OK &&
        cs_store_install(x->s, into, b, &o, &v) == CS_OK) {
        fprintf(human, "%s: installed v%u (certificate %s)\n", into, v, cli_safe(id));
        ok = cs_sync_notify(x->c, x->s, cc, v) == CS_OK || !cli_fail("apply");
    } else {
        cli_fail("apply");
    }
    OPENSSL_cleanse((void *)key, strlen(key));
    cs_bundle_free(b);
    return ok;
}

int cmd_apply(int argc, char **argv)
{
    static const struct option opts[] = {{"domain", 1, 0, 'd'},
                                         {"validate", 1, 0, 'v'},
                                         {"product", 1, 0, 'P'},
                                         {"wait", 0, 0, 'w'},
                                         {"into", 1, 0, 'i'},
                                         {"webroot", 1, 0, 'W'},
                                         {"order", 1, 0, 'o'},
                                         {"poll", 1, 0, 'l'},
                                         {"timeout", 1, 0, 't'},
                                         {"provider", 1, 0, 'p'},
                                         {"config", 1, 0, 'G'},
                                         {"help", 0, 0, 'h'},
                                         {"username", 1, 0, 'U'},
                                         {"phone", 1, 0, 'F'},
                                         {"email", 1, 0, 'E'},
                                         {"json", 0, 0, 'j'},
                                         {0, 0, 0, 0}};
    const char *domain = NULL, *validate = NULL, *product = "digicert-free-1-free", *into = NULL;
    const char *webroot = NULL, *provider = NULL, *user = NULL, *phone = NULL, *email = NULL;
    char order[32] = "";
    long poll_s = 10, timeout_s = 3600;
    int opt, wait = 0, rc, published = 0, as_json = 0;
    time_t start;
    json_t *r, *st = NULL;
    cs_kv q;
    ctx x;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'd':
            domain = optarg;
            break;
        case 'v':
            validate = optarg;
            break;
        case 'P':
            product = optarg;
            break;
        case 'w':
            wait = 1;
            break;
        case 'i':
            into = optarg;
            break;
        case 'W':
            webroot = optarg;
            break;
        case 'o':
            snprintf(order, sizeof(order), "%s", optarg);
            break;
        case 'l':
            poll_s = atol(optarg);
            break;
        case 't':
            timeout_s = atol(optarg);
            break;
        case 'p':
            provider = optarg;
            break;
        case 'G':
            cli_config_path = optarg;
            break;
        case 'U':
            user = optarg;
            break;
        case 'F':
            phone = optarg;
            break;
        case 'E':
            email = optarg;
            break;
        case 'j':
            as_json = 1;
            break;
        case 'h':
            fputs(apply_help, stdout);
            return EXIT_SUCCESS;
        default:
            return cli_usage_error("apply", "unknown option");
        }
    }
    if (!domain || optind < argc)
        return cli_usage_error("apply", "give --domain DOMAIN");
    if (!order[0] && (!validate || (strcasecmp(validate, "file") && strcasecmp(validate, "dns"))))
        return cli_usage_error("apply", "give --validate file or --validate dns");
    if (order[0] && !digits(order))
        return cli_usage_error("apply", "--order: '%s' is not an order id", order);
    if (poll_s < 1 || timeout_s < 1)
        return cli_usage_error("apply", "--poll and --timeout take seconds (at least 1)");
    if ((user || phone || email) && !(user && phone && email))
        return cli_usage_error("apply", "give --username, --phone and --email together");
    human = as_json ? stderr : stdout;
    if ((rc = ctx_open(&x, "apply", provider)) != EXIT_SUCCESS)
        return rc;
    rc = EXIT_FAILURE;
    if (wait && !into) {
        const cs_cert_conf *cc = cert_for_domain(x.c, domain);

        if (cc == NULL) {
            fprintf(stderr,
                    "certsync apply: no [cert NAME] lists %s in its domain; give --into "
                    "NAME to say where the certificate goes\n",
                    domain);
            goto done;
        }
        into = cc->name;
    }
    if (!order[0]) {
        char upper[8];

        snprintf(upper, sizeof(upper), "%s", strcasecmp(validate, "dns") == 0 ? "DNS" : "FILE");
        cs_kv_init(&q);
        cs_kv_set(&q, "Domain", domain);
        cs_kv_set(&q, "ValidateType", upper);
        cs_kv_set(&q, "ProductCode", product);
        if (user) {
            cs_kv_set(&q, "Username", user);
            cs_kv_set(&q, "Phone", phone);
            cs_kv_set(&q, "Email", email);
        }
        if (!call(&x, user ? "CreateCertificateRequest" : "CreateCertificateForPackageRequest", &q,
                  &r))
            goto done;
        cs_json_id(json_object_get(r, "OrderId"), order, sizeof(order));
        json_decref(r);
        if (!digits(order)) {
            fprintf(stderr,
                    "certsync apply: the service answered the order id '%s', not a number\n",
                    cli_safe(order));
            goto done;
        }
        fprintf(human, "applied for %s: order %s (%s)\n", domain, order, product);
    }
    for (start = time(NULL);;) {
        const char *type;

        json_decref(st);
        st = NULL;
        if (!state_of(&x, order, &st))
            goto done;
        type = jstr(st, "Type");
        if (as_json) {
            json_t *copy = json_deep_copy(st);

            json_object_del(copy, "PrivateKey");
            json_object_set_new(copy, "OrderId", json_string(order));
            json_object_set_new(copy, "status", json_string(status_words(type)));
            json_dumpf(copy, stdout, JSON_COMPACT);
            fputc('\n', stdout);
            fflush(stdout);
            json_decref(copy);
        }
        if (strcmp(type, "domain_verify") == 0 && !published) {
            published = 1;
            if (strcmp(jstr(st, "ValidateType"), "DNS") == 0) {
                fprintf(human, "publish this DNS record for %s:\n  %s  %s  %s\n", domain,
                        jtxt(st, "RecordDomain"), jtxt(st, "RecordType"), jtxt(st, "RecordValue"));
            } else {
                fprintf(human, "publish this file for %s:\n  URL path  %s\n  content   %s\n",
                        domain, jtxt(st, "Uri"), jtxt(st, "Content"));
                if (!write_challenge(&x, domain, jstr(st, "Content"), webroot))
                    goto done;
                fprintf(human,
                        "  the certsync modules answer it from the store's challenge area\n");
            }
        } else if (strcmp(type, "certificate") == 0) {
            char id[32];

            cs_json_id(json_object_get(st, "CertId"), id, sizeof(id));
            fprintf(human, "order %s is issued: certificate %s\n", order, cli_safe(id));
            if (!into) {
                fprintf(human, "install it with `certsync fetch %s --into NAME`\n", cli_safe(id));
                rc = EXIT_SUCCESS;
            } else {
                rc = install_issued(&x, st, order, into) ? EXIT_SUCCESS : EXIT_FAILURE;
            }
            goto done;
        } else if (strcmp(type, "verify_fail") == 0) {
            fprintf(stderr,
                    "certsync apply: order %s failed review; check the published "
                    "record or file, then `certsync delete-order %s` and apply again\n",
                    order, order);
            goto done;
        }
        if (!wait) {
            fprintf(human,
                    "order %s is %s; run `certsync apply --domain %s --order %s --wait` to wait "
                    "for it\n",
                    order, cli_safe(status_words(type)), domain, order);
            rc = EXIT_SUCCESS;
            goto done;
        }
        if (time(NULL) - start >= timeout_s) {
            fprintf(stderr,
                    "certsync apply: order %s is still %s after %ld s; run `certsync "
                    "apply --domain %s --order %s --wait` to go on waiting\n",
                    order, cli_safe(status_words(type)), timeout_s, domain, order);
            goto done;
        }
        sleep((unsigned)poll_s);
    }
done:
    if (st) {
        const char *k = jstr(st, "PrivateKey");

        OPENSSL_cleanse((void *)k, strlen(k));
        json_decref(st);
    }
    ctx_free(&x);
    return rc;
}

/* ---- aliyun sign ---- */

static const char sign_help[] =
    "Usage: certsync aliyun sign --signature-version v1|v3 --method GET|POST --host HOST\n"
    "         --action ACTION --api-version VERSION --date ISO8601 --nonce NONCE\n"
    "         --access-key-id ID --secret-file FILE [--param NAME=VALUE]...\n"
    "         [--body-file FILE --content-type TYPE] [--security-token-file FILE]\n"
    "\n"
    "Compute a request signature the way certsync sends it, to compare with a\n"
    "SignatureDoesNotMatch answer (whose message ends with the service's string to sign).\n"
    "Prints the canonical request (v3) or the canonicalized query (v1), the string to sign,\n"
    "and as its last line the signature alone. Nothing is sent. For v1, --param also\n"
    "overrides the common parameters (Format, Version, ...). Secrets come from files only.\n";

static int read_secret(const char *path, char **out)
{
    if (cs_password_read(path, out) != CS_OK) {
        cli_fail("aliyun sign");
        return 0;
    }
    return 1;
}

static int cmd_aliyun_sign(int argc, char **argv)
{
    static const struct option opts[] = {{"signature-version", 1, 0, 'V'},
                                         {"method", 1, 0, 'm'},
                                         {"host", 1, 0, 'H'},
                                         {"action", 1, 0, 'a'},
                                         {"api-version", 1, 0, 'v'},
                                         {"date", 1, 0, 'd'},
                                         {"nonce", 1, 0, 'n'},
                                         {"access-key-id", 1, 0, 'i'},
                                         {"secret-file", 1, 0, 's'},
                                         {"param", 1, 0, 'P'},
                                         {"body-file", 1, 0, 'b'},
                                         {"content-type", 1, 0, 'c'},
                                         {"security-token-file", 1, 0, 't'},
                                         {"help", 0, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *ver = NULL, *method = NULL, *host = NULL, *action = NULL, *api = NULL, *date = NULL,
               *nonce_ = NULL, *id = NULL, *secret_file = NULL, *body_file = NULL, *ctype = NULL,
               *token_file = NULL;
    char *secret = NULL, *token = NULL, *body = NULL;
    size_t body_len = 0;
    cs_kv params, headers;
    cs_signature sig;
    int opt, rc = EXIT_FAILURE;
    cs_rc r;

    cs_kv_init(&params);
    cs_kv_init(&headers);
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'V':
            ver = optarg;
            break;
        case 'm':
            method = optarg;
            break;
        case 'H':
            host = optarg;
            break;
        case 'a':
            action = optarg;
            break;
        case 'v':
            api = optarg;
            break;
        case 'd':
            date = optarg;
            break;
        case 'n':
            nonce_ = optarg;
            break;
        case 'i':
            id = optarg;
            break;
        case 's':
            secret_file = optarg;
            break;
        case 'b':
            body_file = optarg;
            break;
        case 'c':
            ctype = optarg;
            break;
        case 't':
            token_file = optarg;
            break;
        case 'P': {
            char *eq = strchr(optarg, '=');

            if (eq == NULL || eq == optarg) {
                cs_kv_clear(&params);
                return cli_usage_error("aliyun sign", "--param takes NAME=VALUE");
            }
            *eq = '\0';
            cs_kv_set(&params, optarg, eq + 1);
            *eq = '=';
            break;
        }
        case 'h':
            fputs(sign_help, stdout);
            cs_kv_clear(&params);
            return EXIT_SUCCESS;
        default:
            cs_kv_clear(&params);
            return cli_usage_error("aliyun sign", "unknown option");
        }
    }
    if (!ver || !method || !host || !action || !api || !date || !nonce_ || !id || !secret_file ||
        optind < argc || (strcmp(ver, "v1") && strcmp(ver, "v3")) || (body_file && !ctype)) {
        cs_kv_clear(&params);
        return cli_usage_error("aliyun sign",
                               "give --signature-version v1|v3, --method, --host, --action, "
                               "--api-version, --date, --nonce, --access-key-id and "
                               "--secret-file (and --content-type with --body-file)");
    }
    if (!read_secret(secret_file, &secret) || (token_file && !read_secret(token_file, &token)))
        goto done;
    if (body_file && cs_fs_read(body_file, 1 << 20, &body, &body_len) != CS_OK) {
        cli_fail("aliyun sign");
        goto done;
    }
    if (strcmp(ver, "v1") == 0) {
        cs_kv all;
        size_t i;

        cs_kv_init(&all);
        cs_kv_set(&all, "Action", action);
        cs_kv_set(&all, "Version", api);
        cs_kv_set(&all, "Format", "JSON");
        cs_kv_set(&all, "AccessKeyId", id);
        cs_kv_set(&all, "SignatureMethod", "HMAC-SHA1");
        cs_kv_set(&all, "SignatureVersion", "1.0");
        cs_kv_set(&all, "SignatureNonce", nonce_);
        cs_kv_set(&all, "Timestamp", date);
        if (token)
            cs_kv_set(&all, "SecurityToken", token);
        for (i = 0; i < params.n; i++)
            cs_kv_set(&all, params.names[i], params.values[i]);
        r = cs_sign_v1(method, &all, secret, &sig);
        cs_kv_clear(&all);
        if (r == CS_OK)
            printf("canonicalized query:\n%s\n\nstring to sign:\n%s\n\n%s\n", sig.canonical,
                   sig.string_to_sign, sig.signature);
    } else {
        char hash[65];

        cs_sha256_hex(body ? body : "", body_len, hash);
        cs_kv_set(&headers, "host", host);
        cs_kv_set(&headers, "x-acs-action", action);
        cs_kv_set(&headers, "x-acs-version", api);
        cs_kv_set(&headers, "x-acs-date", date);
        cs_kv_set(&headers, "x-acs-signature-nonce", nonce_);
        cs_kv_set(&headers, "x-acs-content-sha256", hash);
        if (ctype)
            cs_kv_set(&headers, "content-type", ctype);
        if (token) {
            cs_kv_set(&headers, "x-acs-accesskey-id", id);
            cs_kv_set(&headers, "x-acs-security-token", token);
        }
        r = cs_sign_v3(method, &params, &headers, id, secret, &sig);
        if (r == CS_OK)
            printf("canonical request:\n%s\n\nstring to sign:\n%s\n\nAuthorization: %s\n\n%s\n",
                   sig.canonical, sig.string_to_sign, sig.authorization, sig.signature);
    }
    if (r != CS_OK) {
        cli_fail("aliyun sign");
        goto done;
    }
    cs_signature_clear(&sig);
    rc = EXIT_SUCCESS;
done:
    cs_password_free(secret);
    cs_password_free(token);
    free(body);
    cs_kv_clear(&params);
    cs_kv_clear(&headers);
    return rc;
}

int cmd_aliyun(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "sign") == 0) {
        optind = 1;
        return cmd_aliyun_sign(argc - 1, argv + 1);
    }
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0)) {
        fputs(sign_help, stdout);
        return EXIT_SUCCESS;
    }
    return cli_usage_error("aliyun", "the aliyun commands are: sign");
}
