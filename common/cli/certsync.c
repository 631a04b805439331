/*
 * certsync: the command-line tool over libcertsync.
 *
 * Exit codes: 0 success, 1 failure, 2 usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cs_bundle.h"
#include "cs_config.h"
#include "cs_escape.h"
#include "cs_fs.h"
#include "cs_output.h"
#include "cs_owner.h"
#include "cs_password.h"
#include "cs_status.h"
#include "cs_store.h"
#include "cs_sync.h"
#include "cli.h"

#define CS_VERSION "0.1.0"

const char *cli_config_path;

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "certsync %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'certsync %s --help'.\n", cmd);
    return EXIT_USAGE;
}

const char *cli_safe(const char *s)
{
    static char *ring[16];
    static unsigned next;
    char **slot = &ring[next++ % 16];

    free(*slot);
    *slot = cs_escape_dup(s);
    return *slot ? *slot : "(out of memory)";
}

int cli_fail(const char *cmd)
{
    fprintf(stderr, "certsync %s: %s\n", cmd, cli_safe(cs_error_last()));
    return EXIT_FAILURE;
}

const char *cli_config_file(void)
{
    if (cli_config_path)
        return cli_config_path;
    if (getenv("CERTSYNC_CONFIG") && getenv("CERTSYNC_CONFIG")[0])
        return getenv("CERTSYNC_CONFIG");
    return CS_DEFAULT_CONFIG;
}

int cli_open_all(const char *cmd, cs_config **c, cs_store **s)
{
    if (cs_config_load(cli_config_file(), c) != CS_OK)
        return cli_fail(cmd);
    /* a store the workers own is worked on with their rights only */
    if (cs_owner_become(*c) != CS_OK || cs_store_open_config(*c, s) != CS_OK) {
        cs_config_free(*c);
        return cli_fail(cmd);
    }
    return EXIT_SUCCESS;
}

/* ---- convert ---- */

static const char convert_help[] =
    "Usage: certsync convert --cert FILE --key FILE [--chain FILE] --format FORMAT --out PATH\n"
    "                        [--profile modern|legacy] [--alias NAME] [--password-file FILE]\n"
    "                        [--key-password-file FILE] [--passin-file FILE]\n"
    "\n"
    "Convert a certificate and its key to what a server reads. Needs no store or config.\n"
    "The input is validated first (key matches, chain links, dates); the chain may be in the\n"
    "certificate file, in --chain, or both, in any order.\n"
    "\n"
    "Formats and what --out names:\n"
    "  pem      a directory: fullchain.pem, cert.pem, chain.pem, privkey.pem\n"
    "  pfx      a file: PKCS#12 with the full chain (alias = friendly name)\n"
    "  jks      a file: Java KeyStore, one PrivateKeyEntry with the full chain\n"
    "  nginx    a directory: NAME.pem (certificate + chain), NAME.key\n"
    "  apache   a directory: NAME_public.crt, NAME_chain.crt, NAME.key\n"
    "  tomcat   a directory: NAME.pfx, pfx-password.txt      (iis: the same)\n"
    "NAME is --alias, or else the certificate's first DNS name (a leading '*' becomes '_');\n"
    "a NAME that is not a plain file name ([A-Za-z0-9._-], at most 64, no leading '.', no\n"
    "'..') is replaced by \"cert\".\n"
    "\n"
    "Options:\n"
    "  --profile modern|legacy  PKCS#12 encryption: modern (AES-256-CBC, PBKDF2, SHA-256 MAC;\n"
    "                           default) or legacy (3DES, SHA-1 MAC; old Java and Windows)\n"
    "  --alias NAME             alias in PKCS#12/JKS (lower-cased in JKS)\n"
    "  --password-file FILE     keystore password (first line); without it a random password\n"
    "                           is generated and written 0600 to OUT.password (pfx, jks) or\n"
    "                           pfx-password.txt (tomcat, iis)\n"
    "  --key-password-file FILE JKS key-entry password (default: the keystore password)\n"
    "  --passin-file FILE       password of an encrypted input key\n"
    "Passwords are never taken from the command line.\n";

static int cmd_convert(int argc, char **argv)
{
    static const struct option opts[] = {{"cert", 1, 0, 'c'},
                                         {"key", 1, 0, 'k'},
                                         {"chain", 1, 0, 'C'},
                                         {"format", 1, 0, 'f'},
                                         {"out", 1, 0, 'o'},
                                         {"profile", 1, 0, 'p'},
                                         {"alias", 1, 0, 'a'},
                                         {"password-file", 1, 0, 'P'},
                                         {"key-password-file", 1, 0, 'K'},
                                         {"passin-file", 1, 0, 'i'},
                                         {"config", 1, 0, 'G'},
                                         {"help", 0, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *cert = NULL, *key = NULL, *chain = NULL, *format = NULL, *out = NULL, *alias = NULL,
               *pwfile = NULL, *kpwfile = NULL, *passin = NULL;
    cs_p12_profile profile = CS_P12_MODERN;
    char *password = NULL, *kpassword = NULL, pwpath[4200], name[256];
    const char *file_name;
    int opt, generated = 0, rc = EXIT_FAILURE;
    unsigned fmt;
    cs_bundle *b = NULL;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            cert = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'C':
            chain = optarg;
            break;
        case 'f':
            format = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'a':
            alias = optarg;
            break;
        case 'P':
            pwfile = optarg;
            break;
        case 'K':
            kpwfile = optarg;
            break;
        case 'i':
            passin = optarg;
            break;
        case 'G':
            cli_config_path = optarg;
            break;
        case 'p':
            if (cs_p12_profile_parse(optarg, &profile) != CS_OK)
                return cli_usage_error("convert", "%s", cs_error_last());
            break;
        case 'h':
            fputs(convert_help, stdout);
            return EXIT_SUCCESS;
        default:
            return cli_usage_error("convert", "unknown option");
        }
    }
    if (optind < argc)
        return cli_usage_error("convert", "unexpected argument '%s'", argv[optind]);
    if (!cert || !key || !format || !out)
        return cli_usage_error("convert", "--cert, --key, --format and --out are required");
    if (cs_format_parse(format, &fmt) != CS_OK)
        return cli_usage_error("convert", "%s", cs_error_last());
    if (cs_bundle_load_files(&b, cert, key, chain, passin) != CS_OK ||
        cs_bundle_validate(b, NULL, 0, time(NULL), cert) != CS_OK)
        goto done;
    if (alias) {
        snprintf(name, sizeof(name), "%s", alias);
    } else {
        size_t n;
        char **names = cs_bundle_names(b, &n);

        snprintf(name, sizeof(name), "%s", n ? names[0] : "cert");
        cs_strv_free(names);
        if (name[0] == '*')
            name[0] = '_'; /* the console names wildcard files this way too */
    }
    /* the name comes from the certificate: it must not lead out of --out */
    file_name = cs_safe_file_name(name, 0, "cert");
    if (fmt & (CS_FMT_PFX | CS_FMT_JKS)) {
        if (pwfile) {
            if (cs_password_read(pwfile, &password) != CS_OK)
                goto done;
        } else {
            if (cs_password_generate(&password) != CS_OK)
                goto done;
            generated = 1;
        }
        if (kpwfile && cs_password_read(kpwfile, &kpassword) != CS_OK)
            goto done;
    }
    if (fmt == CS_FMT_JKS ||
        (fmt == CS_FMT_PFX && strcmp(format, "tomcat") != 0 && strcmp(format, "iis") != 0)) {
        int isjks = fmt == CS_FMT_JKS;

        if ((isjks ? cs_output_jks_file(out, b, name, password, kpassword)
                   : cs_output_pfx_file(out, b, name, password, profile)) != CS_OK)
            goto done;
        if (generated) {
            snprintf(pwpath, sizeof(pwpath), "%s.password", out);
            if (cs_password_write(pwpath, password) != CS_OK)
                goto done;
        }
        printf("wrote %s (%s, alias %s)", out,
               isjks                      ? "JKS"
               : profile == CS_P12_MODERN ? "PKCS#12 modern"
                                          : "PKCS#12 legacy",
               cli_safe(name));
        if (generated)
            printf("; password in %s (0600)", pwpath);
        printf("\n");
    } else {
        cs_output_opts o = {file_name, name, profile, password, NULL, NULL};

        if (cs_fs_mkdirs(out, 0700) != CS_OK || cs_output_write(out, b, fmt, &o) != CS_OK)
            goto done;
        printf("wrote %s layout into %s\n", format, out);
    }
    rc = EXIT_SUCCESS;
done:
    if (rc != EXIT_SUCCESS)
        cli_fail("convert");
    cs_password_free(password);
    cs_password_free(kpassword);
    cs_bundle_free(b);
    return rc;
}

/* ---- import ---- */

static const char import_help[] =
    "Usage: certsync import NAME --cert FILE --key FILE [--chain FILE] [--passin-file FILE]\n"
    "                        [--config FILE]\n"
    "\n"
    "Install a certificate you already have as a new version of the managed certificate NAME.\n"
    "It is validated first (key matches, chain links, dates, and the names of [cert NAME] in\n"
    "the config are covered); if it fails nothing in the store changes. The formats,\n"
    "PKCS#12 profile, alias and password of [cert NAME] are used.\n";

static int cmd_import(int argc, char **argv)
{
    static const struct option opts[] = {{"cert", 1, 0, 'c'},   {"key", 1, 0, 'k'},
                                         {"chain", 1, 0, 'C'},  {"passin-file", 1, 0, 'i'},
                                         {"config", 1, 0, 'G'}, {"help", 0, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *cert = NULL, *key = NULL, *chain = NULL, *passin = NULL, *name;
    const cs_cert_conf *cc;
    cs_install_opts o;
    cs_config *c = NULL;
    cs_store *s = NULL;
    cs_bundle *b = NULL;
    unsigned version;
    int opt, rc;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            cert = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'C':
            chain = optarg;
            break;
        case 'i':
            passin = optarg;
            break;
        case 'G':
            cli_config_path = optarg;
            break;
        case 'h':
            fputs(import_help, stdout);
            return EXIT_SUCCESS;
        default:
            return cli_usage_error("import", "unknown option");
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error("import", "give exactly one certificate NAME");
    name = argv[optind];
    if (!cert || !key)
        return cli_usage_error("import", "--cert and --key are required");
    if (!cs_name_valid(name))
        return cli_usage_error("import", "'%s' is not a certificate name", name);
    if ((rc = cli_open_all("import", &c, &s)) != EXIT_SUCCESS)
        return rc;
    cc = cs_config_cert(c, name);
    if (cc == NULL)
        fprintf(stderr,
                "certsync import: warning: '%s' is not declared in %s; servers can refer to it "
                "once a [cert %s] section exists\n",
                name, c->path, name);
    o = cs_install_opts_for(cc, "import", NULL);
    rc = EXIT_FAILURE;
    if (cs_bundle_load_files(&b, cert, key, chain, passin) == CS_OK &&
        cs_store_install(s, name, b, &o, &version) == CS_OK) {
        char fp[65];

        cs_bundle_fingerprint(b, fp);
        printf("%s: installed v%u (sha256 %s)\n", name, version, fp);
        rc = EXIT_SUCCESS;
        if (cs_sync_notify(c, s, cc, version) != CS_OK)
            rc = cli_fail("import");
    } else {
        cli_fail("import");
    }
    cs_bundle_free(b);
    cs_store_free(s);
    cs_config_free(c);
    return rc;
}

/* ---- sync ---- */

static const char sync_help[] =
    "Usage: certsync sync [NAME...] [--force] [--config FILE]\n"
    "\n"
    "Ask each managed certificate's provider (all of them without NAME) whether a new\n"
    "certificate is due, and install it as the new current version when it is. For the\n"
    "local CA a certificate is due when there is none, when it expires within renew-before,\n"
    "or when it no longer covers the configured names. A failure leaves what is served as\n"
    "it was, and is shown by `certsync status`. Run it from cron or a systemd timer.\n"
    "\n"
    "  --force   issue or fetch a new certificate even if the current one is still good\n";

static int cmd_sync(int argc, char **argv)
{
    static const struct option opts[] = {
        {"force", 0, 0, 'f'}, {"config", 1, 0, 'G'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int opt, force = 0, rc, failed = 0, i;
    cs_sync_session *sess;
    cs_config *c;
    cs_store *s;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'f':
            force = 1;
            break;
        case 'G':
            cli_config_path = optarg;
            break;
        case 'h':
            fputs(sync_help, stdout);
            return EXIT_SUCCESS;
        default:
            return cli_usage_error("sync", "unknown option");
        }
    }
    if ((rc = cli_open_all("sync", &c, &s)) != EXIT_SUCCESS)
        return rc;
    for (i = optind; i < argc; i++)
        if (cs_config_cert(c, argv[i]) == NULL) {
            fprintf(stderr, "certsync sync: no [cert %s] in %s\n", argv[i], c->path);
            cs_store_free(s);
            cs_config_free(c);
            return EXIT_FAILURE;
        }
    if (c->n_certs == 0)
        printf("no [cert NAME] sections in %s; nothing to sync\n", c->path);
    sess = cs_sync_session_new(c);
    for (size_t k = 0; k < c->n_certs; k++) {
        const cs_cert_conf *cc = &c->certs[k];
        cs_sync_outcome out;
        int wanted = optind == argc;

        for (i = optind; i < argc && !wanted; i++)
            wanted = strcmp(argv[i], cc->name) == 0;
        if (!wanted)
            continue;
        if (cs_sync_cert(sess, s, cc, force, &out) != CS_OK) {
            if (out.result == CS_SYNC_INSTALLED)
                printf("%s: installed v%u (%s)\n", cc->name, out.version, cli_safe(out.reason));
            fprintf(stderr, "%s: failed: %s\n", cc->name, cli_safe(cs_error_last()));
            failed++;
        } else if (out.result == CS_SYNC_INSTALLED) {
            printf("%s: installed v%u (%s)\n", cc->name, out.version, cli_safe(out.reason));
        } else {
            printf("%s: unchanged (%s)\n", cc->name, cli_safe(out.reason));
        }
    }
    cs_sync_session_free(sess);
    cs_store_free(s);
    cs_config_free(c);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* ---- status ---- */

static const char status_help[] =
    "Usage: certsync status [NAME] [--json] [--config FILE]\n"
    "\n"
    "Show each managed certificate: current version, SHA-256 fingerprint, names, expiry and\n"
    "days left, and the result of the last sync with its error.\n"
    "\n"
    "  --json    one JSON document (an array of objects) instead of the text view\n";

/* The core's status document of one certificate (README.md, "Status"); NULL when out of memory. */
static json_t *status_json(cs_store *s, const char *name)
{
    json_t *j = NULL;

    cs_status_cert(s, name, 0, &j);
    return j;
}

static void status_text(json_t *j)
{
    json_t *names = json_object_get(j, "names"), *v;
    size_t i;

    printf("%s\n", json_string_value(json_object_get(j, "name")));
    if (json_is_integer(json_object_get(j, "version"))) {
        printf("  current      v%lld\n",
               (long long)json_integer_value(json_object_get(j, "version")));
        printf("  sha256       %s\n", json_string_value(json_object_get(j, "fingerprint_sha256")));
        printf("  names       ");
        json_array_foreach(names, i, v) printf(" %s", cli_safe(json_string_value(v)));
        printf("\n  not after    %s (%lld days left)\n",
               json_string_value(json_object_get(j, "not_after")),
               (long long)json_integer_value(json_object_get(j, "days_left")));
        printf("  provider     %s\n", json_string_value(json_object_get(j, "provider")));
    } else {
        printf("  current      none: %s\n",
               cli_safe(json_string_value(json_object_get(j, "error_current"))));
    }
    printf("  last sync    %s", json_string_value(json_object_get(j, "last_sync")));
    if (json_is_string(json_object_get(j, "last_sync_at")))
        printf(" at %s", json_string_value(json_object_get(j, "last_sync_at")));
    printf("\n");
    if (json_is_string(json_object_get(j, "last_error")))
        printf("  last error   %s\n",
               cli_safe(json_string_value(json_object_get(j, "last_error"))));
}

static int cmd_status(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", 0, 0, 'j'}, {"config", 1, 0, 'G'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int opt, as_json = 0, rc;
    json_t *all = json_array(), *v;
    cs_config *c;
    cs_store *s;
    size_t k;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'j':
            as_json = 1;
            break;
        case 'G':
            cli_config_path = optarg;
            break;
        case 'h':
            fputs(status_help, stdout);
            json_decref(all);
            return EXIT_SUCCESS;
        default:
            json_decref(all);
            return cli_usage_error("status", "unknown option");
        }
    }
    if (argc - optind > 1) {
        json_decref(all);
        return cli_usage_error("status", "give at most one NAME");
    }
    if ((rc = cli_open_all("status", &c, &s)) != EXIT_SUCCESS) {
        json_decref(all);
        return rc;
    }
    if (optind < argc) {
        if (cs_config_cert(c, argv[optind]) == NULL) {
            unsigned ver;

            if (cs_store_current(s, argv[optind], &ver) != CS_OK) {
                fprintf(stderr, "certsync status: no [cert %s] in %s and nothing in the store\n",
                        argv[optind], c->path);
                rc = EXIT_FAILURE;
            }
        }
        if (rc == EXIT_SUCCESS)
            json_array_append_new(all, status_json(s, argv[optind]));
    } else {
        for (k = 0; k < c->n_certs; k++)
            json_array_append_new(all, status_json(s, c->certs[k].name));
    }
    if (rc == EXIT_SUCCESS) {
        if (as_json) {
            json_dumpf(all, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
            printf("\n");
        } else {
            json_array_foreach(all, k, v) status_text(v);
        }
    }
    json_decref(all);
    cs_store_free(s);
    cs_config_free(c);
    return rc;
}

/* ---- rollback ---- */

static const char rollback_help[] =
    "Usage: certsync rollback NAME [--config FILE]\n"
    "\n"
    "Make the newest older version of NAME that still validates the current one. Servers\n"
    "with the certsync module pick it up within a second.\n";

static int cmd_rollback(int argc, char **argv)
{
    static const struct option opts[] = {{"config", 1, 0, 'G'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    unsigned from = 0, to;
    cs_config *c;
    cs_store *s;
    int opt, rc, lock;
    cs_rc r;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'G':
            cli_config_path = optarg;
            break;
        case 'h':
            fputs(rollback_help, stdout);
            return EXIT_SUCCESS;
        default:
            return cli_usage_error("rollback", "unknown option");
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error("rollback", "give exactly one certificate NAME");
    if ((rc = cli_open_all("rollback", &c, &s)) != EXIT_SUCCESS)
        return rc;
    /* "was" is what the rollback replaced: read under the lock it takes (the lock nests) */
    if (cs_store_lock(s, argv[optind], 60, &lock) != CS_OK) {
        rc = cli_fail("rollback");
        goto done;
    }
    if (cs_store_current(s, argv[optind], &from) != CS_OK)
        from = 0;
    r = cs_store_rollback(s, argv[optind], &to);
    cs_store_unlock(s, lock);
    if (r == CS_OK) {
        printf("%s: current is now v%u (was v%u)\n", argv[optind], to, from);
        if (cs_sync_notify(c, s, cs_config_cert(c, argv[optind]), to) != CS_OK)
            rc = cli_fail("rollback");
    } else {
        rc = cli_fail("rollback");
    }
done:
    cs_store_free(s);
    cs_config_free(c);
    return rc;
}

/* ---- main ---- */

static const char main_help[] =
    "Usage: certsync [--config FILE] COMMAND [ARGS]\n"
    "\n"
    "Keep the TLS certificates of web servers in step with a certificate service.\n"
    "\n"
    "Commands:\n"
    "  sync [NAME...]      get due certificates from their providers and install them\n"
    "  status [NAME]       current version, fingerprint, expiry, last sync and error\n"
    "  import NAME ...     install a certificate you have as a new version of NAME\n"
    "  rollback NAME       make the previous good version current again\n"
    "  convert ...         convert a certificate + key to PEM, PKCS#12, JKS or a server layout\n"
    "\n"
    "The certificate service (a [provider] with type = aliyun-cas):\n"
    "  list                certificates and orders with their status\n"
    "  show ID             one certificate's details (never its key)\n"
    "  fetch ID|--domain D download with key: into the store, or a console-style layout\n"
    "  upload NAME         upload a certificate (default: the store's current NAME)\n"
    "  delete ID           delete a certificate from the service\n"
    "  apply --domain D    apply, print the validation to publish, --wait to install\n"
    "  withdraw ORDER      withdraw an application\n"
    "  delete-order ORDER  delete a failed or withdrawn order\n"
    "  revoke ORDER        revoke an issued certificate\n"
    "  renew ORDER         renew an issued order\n"
    "  quota               remaining quota of a product\n"
    "  aliyun sign ...     show how a request is signed (SignatureDoesNotMatch aid)\n"
    "\n"
    "Each command has --help. The configuration is --config FILE, else $CERTSYNC_CONFIG,\n"
    "else " CS_DEFAULT_CONFIG ".\n"
    "Exit codes: 0 success, 1 failure, 2 usage error.\n";

/* A core file would hold private keys and the AccessKey secret: none is written. */
static void no_core_dumps(void)
{
    struct rlimit zero = {0, 0};

    prctl(PR_SET_DUMPABLE, 0);
    setrlimit(RLIMIT_CORE, &zero);
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {{"convert", cmd_convert},
                {"import", cmd_import},
                {"sync", cmd_sync},
                {"status", cmd_status},
                {"rollback", cmd_rollback},
                {"list", cmd_list},
                {"show", cmd_show},
                {"fetch", cmd_fetch},
                {"upload", cmd_upload},
                {"delete", cmd_delete},
                {"delete-order", cmd_delete_order},
                {"apply", cmd_apply},
                {"withdraw", cmd_withdraw},
                {"revoke", cmd_revoke},
                {"renew", cmd_renew},
                {"quota", cmd_quota},
                {"aliyun", cmd_aliyun},
                {NULL, NULL}};
    int i = 1, k;

    no_core_dumps();
    umask(077);
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            cli_config_path = argv[i + 1];
            i += 2;
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            cli_config_path = argv[i++] + 9;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(main_help, stdout);
            return EXIT_SUCCESS;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("certsync " CS_VERSION "\n");
            return EXIT_SUCCESS;
        } else {
            fprintf(stderr, "certsync: unknown option '%s'\n%s", argv[i], main_help);
            return EXIT_USAGE;
        }
    }
    if (i >= argc) {
        fputs(main_help, stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[i], "help") == 0) {
        if (i + 1 < argc) {
            char *sub[] = {argv[i + 1], (char *)"--help", NULL};

            for (k = 0; cmds[k].name; k++)
                if (strcmp(cmds[k].name, argv[i + 1]) == 0)
                    return cmds[k].fn(2, sub);
        }
        fputs(main_help, stdout);
        return EXIT_SUCCESS;
    }
    for (k = 0; cmds[k].name; k++)
        if (strcmp(cmds[k].name, argv[i]) == 0) {
            optind = 1;
            return cmds[k].fn(argc - i, argv + i);
        }
    fprintf(stderr, "certsync: unknown command '%s'\n%s", argv[i], main_help);
    return EXIT_USAGE;
}
