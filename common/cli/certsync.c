/*
 * certsync: the command-line tool over libcertsync.
 *
 * Exit codes: 0 success, 1 failure, 2 usage error.
 */
#include <errno.h>
#include <stdarg.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <pwd.h>
#include <unistd.h>

#include "cs_bundle.h"
#include "cs_config.h"
#include "cs_deploy.h"
#include "cs_escape.h"
#include "cs_fs.h"
#include "cs_output.h"
#include "cs_owner.h"
#include "cs_password.h"
#include "cs_status.h"
#include "cs_store.h"
#include "cs_ocsp.h"
#include "cs_sync.h"
#include "cs_sync_plan.h"
#include "cs_time.h"
#include "cli.h"
#include "cli_log.h"

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

cs_rc cli_set_config(const char *arg, void *unused)
{
    (void)unused;
    cli_config_path = arg;
    return CS_OK;
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

typedef struct {
    const char *cert, *key, *chain, *format, *out, *alias, *pwfile, *kpwfile, *passin, *config;
    cs_p12_profile profile;
} convert_args;

static cs_rc parse_profile(const char *arg, void *field)
{
    return cs_p12_profile_parse(arg, field);
}

static const cli_opt convert_opts[] = {
    CLI_OPT_NEEDED(convert_args, cert, "cert", "FILE", "the certificate (PEM or DER)"),
    CLI_OPT_NEEDED(convert_args, key, "key", "FILE", "its private key"),
    CLI_OPT_VALUE(convert_args, chain, "chain", "FILE", "intermediate certificates, in any order"),
    CLI_OPT_NEEDED(convert_args, format, "format", "FORMAT",
                   "pem, pfx, jks, nginx, apache, tomcat or iis (above)"),
    CLI_OPT_NEEDED(convert_args, out, "out", "PATH", "where to write (above)"),
    CLI_OPT_CALL(convert_args, profile, "profile", "modern|legacy",
                 "PKCS#12 encryption: modern (AES-256-CBC, PBKDF2, SHA-256\n"
                 "MAC; default) or legacy (3DES, SHA-1 MAC; old Java and\n"
                 "Windows)",
                 parse_profile),
    CLI_OPT_VALUE(convert_args, alias, "alias", "NAME",
                  "alias in PKCS#12/JKS (lower-cased in JKS)"),
    CLI_OPT_VALUE(convert_args, pwfile, "password-file", "FILE",
                  "keystore password (first line); without it a random\n"
                  "password is generated and written 0600 to OUT.password\n"
                  "(pfx, jks) or pfx-password.txt (tomcat, iis)"),
    CLI_OPT_VALUE(convert_args, kpwfile, "key-password-file", "FILE",
                  "JKS key-entry password (default: the keystore password)"),
    CLI_OPT_VALUE(convert_args, passin, "passin-file", "FILE",
                  "password of an encrypted input key"),
    CLI_OPT_VALUE(convert_args, config, "config", "FILE", "accepted as by every command; not read"),
    CLI_OPT_HELP,
    CLI_OPT_END};

static const char convert_about[] =
    "Needs no store or config. The input is validated first (key matches, chain links,\n"
    "dates); the chain may be in the certificate file, in --chain, or both, in any order.\n"
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
    "'..') is replaced by \"cert\". Passwords are never taken from the command line.\n";

typedef struct {
    convert_args a;
    unsigned fmt;
    cs_bundle *b;
    char *password, *kpassword;
    int generated;
    char name[256];
} convert_job;

/* --alias, else the first DNS name ('*' as the console writes it: '_'), else "cert" */
static void convert_name(convert_job *j)
{
    size_t n;
    char **names;

    if (j->a.alias) {
        snprintf(j->name, sizeof(j->name), "%s", j->a.alias);
        return;
    }
    names = cs_bundle_names(j->b, &n);
    snprintf(j->name, sizeof(j->name), "%s", n ? names[0] : "cert");
    cs_strv_free(names);
    if (j->name[0] == '*')
        j->name[0] = '_';
}

/* The keystore password (from --password-file, else a new one) and the JKS key password. */
static cs_rc convert_passwords(convert_job *j)
{
    j->generated = j->a.pwfile == NULL;
    if ((j->a.pwfile ? cs_password_read(j->a.pwfile, &j->password)
                     : cs_password_generate(&j->password)) != CS_OK)
        return CS_ERR;
    return j->a.kpwfile ? cs_password_read(j->a.kpwfile, &j->kpassword) : CS_OK;
}

/* pfx, jks: one keystore file at --out, a generated password beside it */
static cs_rc convert_keystore(convert_job *j)
{
    int isjks = j->fmt == CS_FMT_JKS;
    char pwpath[4200];

    if ((isjks ? cs_output_jks_file(j->a.out, j->b, j->name, j->password, j->kpassword)
               : cs_output_pfx_file(j->a.out, j->b, j->name, j->password, j->a.profile)) != CS_OK)
        return CS_ERR;
    if (j->generated) {
        snprintf(pwpath, sizeof(pwpath), "%s.password", j->a.out);
        if (cs_password_write(pwpath, j->password) != CS_OK)
            return CS_ERR;
    }
    printf("wrote %s (%s, alias %s)", j->a.out,
           isjks                           ? "JKS"
           : j->a.profile == CS_P12_MODERN ? "PKCS#12 modern"
                                           : "PKCS#12 legacy",
           cli_safe(j->name));
    if (j->generated)
        printf("; password in %s (0600)", pwpath);
    printf("\n");
    return CS_OK;
}

/* pem and the server layouts: files named after the certificate in the directory --out */
static cs_rc convert_layout(convert_job *j)
{
    /* the name comes from the certificate: it must not lead out of --out */
    cs_output_opts o = {
        cs_safe_file_name(j->name, 0, "cert"), j->name, j->a.profile, j->password, NULL, NULL};

    if (cs_fs_mkdirs(j->a.out, 0700) != CS_OK ||
        cs_output_write(j->a.out, j->b, j->fmt, &o) != CS_OK)
        return CS_ERR;
    printf("wrote %s layout into %s\n", j->a.format, j->a.out);
    return CS_OK;
}

static cs_rc convert_run(convert_job *j)
{
    const convert_args *a = &j->a;

    if (cs_bundle_load_files(a->cert, a->key, a->chain, a->passin, &j->b) != CS_OK ||
        cs_bundle_validate(j->b, NULL, 0, time(NULL), a->cert) != CS_OK)
        return CS_ERR;
    convert_name(j);
    if ((j->fmt & (CS_FMT_PFX | CS_FMT_JKS)) && convert_passwords(j) != CS_OK)
        return CS_ERR;
    if (j->fmt == CS_FMT_JKS ||
        (j->fmt == CS_FMT_PFX && strcmp(a->format, "tomcat") != 0 && strcmp(a->format, "iis") != 0))
        return convert_keystore(j);
    return convert_layout(j);
}

static int cmd_convert(const cli_command *self, int argc, char **argv)
{
    convert_job j = {.a.profile = CS_P12_MODERN};
    int first, rc = cli_parse(&self->spec, argc, argv, &j.a, &first);

    if (rc != CLI_CONTINUE)
        return rc;
    if (cs_format_parse(j.a.format, &j.fmt) != CS_OK)
        return cli_usage(&self->spec, "%s", cs_error_last());
    rc = convert_run(&j) == CS_OK ? EXIT_SUCCESS : cli_fail("convert");
    cs_password_free(j.password);
    cs_password_free(j.kpassword);
    cs_bundle_free(j.b);
    return rc;
}

/* ---- import ---- */

typedef struct {
    const char *cert, *key, *chain, *passin;
} import_args;

static const cli_opt import_opts[] = {
    CLI_OPT_NEEDED(import_args, cert, "cert", "FILE", "the certificate (PEM or DER)"),
    CLI_OPT_NEEDED(import_args, key, "key", "FILE", "its private key"),
    CLI_OPT_VALUE(import_args, chain, "chain", "FILE", "intermediate certificates, in any order"),
    CLI_OPT_VALUE(import_args, passin, "passin-file", "FILE", "password of an encrypted input key"),
    CLI_OPT_CONFIG,
    CLI_OPT_HELP,
    CLI_OPT_END};

static const char import_about[] =
    "It is validated first (key matches, chain links, dates, and the names of [cert NAME] in\n"
    "the config are covered); if it fails nothing in the store changes. The formats,\n"
    "PKCS#12 profile, alias and password of [cert NAME] are used.\n";

static int import_install(cs_config *c, cs_store *s, const char *name, const import_args *a)
{
    const cs_cert_conf *cc = cs_config_cert(c, name);
    cs_install_opts o = cs_install_opts_for(cc, "import", NULL);
    cs_bundle *b = NULL;
    int rc = EXIT_FAILURE;
    unsigned version;
    char fp[65];

    if (cc == NULL)
        fprintf(stderr,
                "certsync import: warning: '%s' is not declared in %s; servers can refer to it "
                "once a [cert %s] section exists\n",
                name, c->path, name);
    if (cs_bundle_load_files(a->cert, a->key, a->chain, a->passin, &b) == CS_OK &&
        cs_store_install(s, name, b, &o, &version) == CS_OK) {
        cs_bundle_fingerprint(b, fp);
        printf("%s: installed v%u (sha256 %s)\n", name, version, fp);
        rc = EXIT_SUCCESS;
        if (cs_sync_notify(c, s, cc, version) != CS_OK)
            rc = cli_fail("import");
    } else {
        cli_fail("import");
    }
    cs_bundle_free(b);
    return rc;
}

static int cmd_import(const cli_command *self, int argc, char **argv)
{
    import_args a = {0};
    cs_config *c = NULL;
    cs_store *s = NULL;
    int first, rc = cli_parse(&self->spec, argc, argv, &a, &first);

    if (rc != CLI_CONTINUE)
        return rc;
    if (first + 1 != argc)
        return cli_usage(&self->spec, "give exactly one certificate NAME");
    if (!cs_name_valid(argv[first]))
        return cli_usage(&self->spec, "'%s' is not a certificate name", argv[first]);
    if ((rc = cli_open_all("import", &c, &s)) != EXIT_SUCCESS)
        return rc;
    rc = import_install(c, s, argv[first], &a);
    cs_store_free(s);
    cs_config_free(c);
    return rc;
}

/* ---- sync ---- */

typedef struct {
    int force, dry_run;
} sync_args;

static const cli_opt sync_opts[] = {
    CLI_OPT_SWITCH(sync_args, force, "force",
                   "issue or fetch a new certificate even if the current one\nis still good"),
    CLI_OPT_SWITCH(sync_args, dry_run, "dry-run",
                   "say what a sync would do (which names are due and why,\n"
                   "what each provider would be asked, which on-change\n"
                   "commands would run) and change nothing"),
    CLI_OPT_QUIET,
    CLI_OPT_CONFIG,
    CLI_OPT_HELP,
    CLI_OPT_END};

static const char sync_about[] =
    "Ask each managed certificate's provider (all of them without NAME) whether a new\n"
    "certificate is due, and install it as the new current version when it is. For the\n"
    "local CA a certificate is due when there is none, when it expires within renew-before,\n"
    "or when it no longer covers the configured names. A failure leaves what is served as\n"
    "it was, and is shown by `certsync status`. Run it from cron or a systemd timer.\n"
    "\n"
    "With --dry-run nothing is written, locked, issued, ordered or spent: the store stays\n"
    "byte for byte as it was. A provider is asked read-only questions at most (aliyun-cas:\n"
    "the certificate list), so the answer is what a sync would find now. Exit 1 when a\n"
    "sync would fail.\n"
    "\n"
    "An on-change command that failed stays pending (certsync status) and each sync runs it\n"
    "again for the current version until it succeeds (the servers' in-process syncs: after\n"
    "a backoff of 1 min, doubling, at most 1 h). --quiet prints only warnings and errors;\n"
    "under systemd each line carries its syslog priority (<3> error, <4> warning, <6> info).\n";

/* names[0..n): each a [cert NAME] of c */
static int sync_names_known(const cs_config *c, char **names, int n)
{
    for (int i = 0; i < n; i++)
        if (cs_config_cert(c, names[i]) == NULL) {
            fprintf(stderr, "certsync sync: no [cert %s] in %s\n", names[i], c->path);
            return 0;
        }
    return 1;
}

/* What the staple refresh after a sync did: a failure or a revocation goes to stderr. */
static void sync_ocsp_line(const char *name, const cs_sync_outcome *out)
{
    if (out->ocsp[0])
        fprintf(out->ocsp_failed ? stderr : stdout, "%s: %s\n", name, cli_safe(out->ocsp));
}

/* Sync one certificate and say what happened; returns 0 when it failed. */
static int sync_one(cs_sync_session *sess, cs_store *s, const cs_cert_conf *cc, int force)
{
    cs_sync_outcome out;

    if (cs_sync_cert(sess, s, cc, force, &out) != CS_OK) {
        if (out.result == CS_SYNC_INSTALLED)
            printf("%s: installed v%u (%s)\n", cc->name, out.version, cli_safe(out.reason));
        if (out.deployed[0])
            printf("%s: deployed: %s\n", cc->name, cli_safe(out.deployed));
        fprintf(stderr, "%s: failed: %s\n", cc->name, cli_safe(cs_error_last()));
        sync_ocsp_line(cc->name, &out);
        return 0;
    }
    if (out.result == CS_SYNC_INSTALLED)
        printf("%s: installed v%u (%s)\n", cc->name, out.version, cli_safe(out.reason));
    else if (out.held)
        printf("%s: %s\n", cc->name, cli_safe(out.reason));
    else
        printf("%s: unchanged (%s)\n", cc->name, cli_safe(out.reason));
    if (out.hook_retried == HOOK_DELIVERED)
        printf("%s: the on-change that failed before ran again for v%u and succeeded\n", cc->name,
               out.version);
    if (out.deployed[0])
        printf("%s: deployed: %s\n", cc->name, cli_safe(out.deployed));
    sync_ocsp_line(cc->name, &out);
    return 1;
}

static int sync_wanted(const char *name, char **names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return 1;
    return n == 0;
}

/* Say what a sync of cc would do; returns 0 when the sync would fail. */
static int plan_one(cs_sync_session *sess, cs_store *s, const cs_cert_conf *cc, int force,
                    int *changes)
{
    struct passwd *pw = getpwuid(geteuid());
    char deploy[1024];
    cs_sync_plan p;

    if (cs_sync_plan_cert(sess, s, cc, force, &p) != CS_OK) {
        printf("%s: a sync would fail: %s\n", cc->name, cli_safe(cs_error_last()));
        return 0;
    }
    if (p.held) {
        printf("%s: unchanged: %s\n", cc->name, cli_safe(p.reason));
        return 1;
    }
    printf("%s: %s (%s)\n  provider: %s\n", cc->name, p.due ? "due" : "not due", cli_safe(p.reason),
           cli_safe(p.calls));
    if (!p.due && p.hook_pending)
        printf("  its pending on-change would run again as %s: %s\n",
               pw ? pw->pw_name : "this user", cli_safe(p.hook));
    cs_deploy_plan(s, cc, p.due, deploy, sizeof(deploy));
    if (deploy[0])
        printf("  deploy: %s\n", cli_safe(deploy));
    if (!p.due)
        return 1;
    ++*changes;
    if (p.version)
        printf("  a new version would become current, replacing v%u\n", p.version);
    else
        printf("  its first version would become current\n");
    if (p.hook[0])
        printf("  on-change would run as %s: %s\n", pw ? pw->pw_name : "this user",
               cli_safe(p.hook));
    return 1;
}

/* sync --dry-run: a store that does not exist yet is not made (a sync would make it). */
static int sync_dry_run(char **names, int n, int force)
{
    int failed = 0, changes = 0;
    cs_sync_session *sess;
    cs_config *c;
    cs_store *s = NULL;

    if (cs_config_load(cli_config_file(), &c) != CS_OK)
        return cli_fail("sync");
    if (!sync_names_known(c, names, n)) {
        cs_config_free(c);
        return EXIT_FAILURE;
    }
    if (access(c->store_path, F_OK) != 0)
        printf("the store %s does not exist yet: a sync would create it\n", c->store_path);
    else if (cs_owner_become(c) != CS_OK || cs_store_open_config(c, &s) != CS_OK) {
        cs_config_free(c);
        return cli_fail("sync");
    }
    sess = cs_sync_session_new(c);
    for (size_t k = 0; k < c->n_certs; k++)
        if (sync_wanted(c->certs[k].name, names, n))
            failed += !plan_one(sess, s, &c->certs[k], force, &changes);
    cs_sync_session_free(sess);
    printf("dry run: %d certificate(s) would change, %d would fail; nothing was changed\n", changes,
           failed);
    cs_store_free(s);
    cs_config_free(c);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

static int cmd_sync(const cli_command *self, int argc, char **argv)
{
    sync_args a = {0};
    int first, failed = 0, rc = cli_parse(&self->spec, argc, argv, &a, &first);
    cs_sync_session *sess;
    cs_config *c;
    cs_store *s;

    if (rc == CLI_CONTINUE && a.dry_run)
        return sync_dry_run(argv + first, argc - first, a.force);
    if (rc != CLI_CONTINUE || (rc = cli_open_all("sync", &c, &s)) != EXIT_SUCCESS)
        return rc;
    if (!sync_names_known(c, argv + first, argc - first)) {
        cs_store_free(s);
        cs_config_free(c);
        return EXIT_FAILURE;
    }
    if (c->n_certs == 0)
        printf("no [cert NAME] sections in %s; nothing to sync\n", c->path);
    sess = cs_sync_session_new(c);
    /* run by a person, cron or a timer at its own pace: a pending on-change runs every time */
    cs_sync_session_set_backoff(sess, 0);
    for (size_t k = 0; k < c->n_certs; k++)
        if (sync_wanted(c->certs[k].name, argv + first, argc - first))
            failed += !sync_one(sess, s, &c->certs[k], a.force);
    cs_sync_session_free(sess);
    cs_store_free(s);
    cs_config_free(c);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* ---- ocsp ---- */

static const char ocsp_about[] =
    "Fetch the OCSP staple of each managed certificate's current version (all of them\n"
    "without NAME) now, whether or not it is due: from the responder its certificate\n"
    "names, or signed by the local CA for the certificates it issued. `certsync sync`\n"
    "does the same when a staple is due (at about half its validity). A staple that is\n"
    "still valid stays when the responder fails; a 'revoked' answer removes it.\n";

static int cmd_ocsp(const cli_command *self, int argc, char **argv)
{
    int first, failed = 0, rc = cli_parse(&self->spec, argc, argv, NULL, &first);
    char note[1280];
    cs_config *c;
    cs_store *s;

    if (rc != CLI_CONTINUE || (rc = cli_open_all("ocsp", &c, &s)) != EXIT_SUCCESS)
        return rc;
    if (!sync_names_known(c, argv + first, argc - first))
        failed = 1;
    for (size_t k = 0; !failed && k < c->n_certs; k++) {
        if (!sync_wanted(c->certs[k].name, argv + first, argc - first))
            continue;
        if (cs_ocsp_refresh(s, c->certs[k].name, 1, 0, note, sizeof(note)) != CS_OK) {
            fprintf(stderr, "%s: %s\n", c->certs[k].name, cli_safe(cs_error_last()));
            failed++;
        } else {
            printf("%s: %s\n", c->certs[k].name, cli_safe(note));
        }
    }
    cs_store_free(s);
    cs_config_free(c);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* ---- status ---- */

typedef struct {
    int json, check;
} status_args;

static const cli_opt status_opts[] = {
    CLI_OPT_SWITCH(status_args, json, "json",
                   "one JSON document (an array of objects) instead of the\ntext view"),
    CLI_OPT_SWITCH(status_args, check, "check",
                   "one line per problem, and exit like a monitoring plugin:\n"
                   "0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (NAME... allowed)"),
    CLI_OPT_CONFIG, CLI_OPT_HELP, CLI_OPT_END};

static const char status_about[] =
    "For each managed certificate (or NAME): current version, SHA-256 fingerprint, names,\n"
    "expiry and days left, and the result of the last sync with its error.\n"
    "\n"
    "A failed on-change command is shown as PENDING with its exit status and the last lines\n"
    "of its stderr until a sync runs it again with success.\n"
    "\n"
    "With --check (for Nagios, Icinga, monit or a cron mail): CRITICAL when a name has no\n"
    "version, its version has expired or expires within 7 days, or its on-change command\n"
    "failed and is pending; WARNING inside its renew-before or when its last sync failed;\n"
    "UNKNOWN when the config or the store cannot be read. The lines go to stdout;\n"
    "\"OK certsync: ...\" when there is no problem.\n";

/* The core's status document of one certificate (README.md, "Status"); NULL when out of memory. */
static json_t *status_json(cs_store *s, const char *name)
{
    json_t *j = NULL;

    cs_status_cert(s, name, 0, &j);
    return j;
}

/* A string of the status document, escaped: meta.json may hold anything its writer put there. */
static const char *field(json_t *j, const char *key)
{
    const char *v = json_string_value(json_object_get(j, key));

    return cli_safe(v ? v : "-");
}

/* Each line of text (a command's stderr), escaped, the first after label, the others under it. */
static void print_lines(const char *label, const char *text)
{
    const char *p = text ? text : "-";
    char line[1024];
    size_t n;

    for (; *p; p += n + (p[n] == '\n')) {
        n = strcspn(p, "\n");
        snprintf(line, sizeof(line), "%.*s", (int)n, p);
        printf("%*s%s\n", (int)strlen(label), p == text ? label : "", cli_safe(line));
    }
}

/* A failed on-change that the next sync runs again. */
static void status_hook(json_t *h)
{
    printf("  on-change    PENDING: '%s' for v%lld failed %lld time(s) since %s (exit status "
           "%lld); next in-server try after %s; `certsync sync` runs it again\n",
           field(h, "command"), (long long)json_integer_value(json_object_get(h, "version")),
           (long long)json_integer_value(json_object_get(h, "attempts")), field(h, "since"),
           (long long)json_integer_value(json_object_get(h, "exit_status")),
           field(h, "next_attempt"));
    print_lines("  hook error   ", json_string_value(json_object_get(h, "error")));
}

/* The OCSP staple's lines (none without OCSP state). */
static void status_ocsp_text(json_t *o)
{
    if (!json_is_object(o))
        return;
    printf("  ocsp         %s, this update %s, next update %s\n", field(o, "status"),
           field(o, "this_update"), field(o, "next_update"));
    if (json_is_string(json_object_get(o, "last_error")))
        printf("  ocsp error   %s\n", field(o, "last_error"));
}

static void status_text(json_t *j)
{
    json_t *names = json_object_get(j, "names"), *v;
    size_t i;

    printf("%s\n", field(j, "name"));
    if (json_is_integer(json_object_get(j, "version"))) {
        printf("  current      v%lld\n",
               (long long)json_integer_value(json_object_get(j, "version")));
        printf("  sha256       %s\n", field(j, "fingerprint_sha256"));
        printf("  names       ");
        json_array_foreach(names, i, v) printf(" %s", cli_safe(json_string_value(v)));
        printf("\n  not after    %s (%lld days left)\n", field(j, "not_after"),
               (long long)json_integer_value(json_object_get(j, "days_left")));
        printf("  provider     %s\n", field(j, "provider"));
    } else {
        printf("  current      none: %s\n", field(j, "error_current"));
    }
    printf("  last sync    %s", field(j, "last_sync"));
    if (json_is_string(json_object_get(j, "last_sync_at")))
        printf(" at %s", field(j, "last_sync_at"));
    printf("\n");
    if (json_is_string(json_object_get(j, "last_error")))
        printf("  last error   %s\n", field(j, "last_error"));
    if (json_is_object(json_object_get(j, "held")))
        printf(
            "  held         at v%lld since %s (rollback); `certsync release %s` resumes "
            "syncing\n",
            (long long)json_integer_value(json_object_get(json_object_get(j, "held"), "version")),
            field(json_object_get(j, "held"), "since"), field(j, "name"));
    if (json_is_object(json_object_get(j, "hook_pending")))
        status_hook(json_object_get(j, "hook_pending"));
    status_ocsp_text(json_object_get(j, "ocsp"));
}

/* The status of NAME, or of every [cert] without it, appended to all. */
static int status_collect(const cs_config *c, cs_store *s, const char *name, json_t *all)
{
    unsigned ver;

    if (name == NULL) {
        for (size_t k = 0; k < c->n_certs; k++)
            json_array_append_new(all, status_json(s, c->certs[k].name));
        return EXIT_SUCCESS;
    }
    if (cs_config_cert(c, name) == NULL && cs_store_current(s, name, &ver) != CS_OK) {
        fprintf(stderr, "certsync status: no [cert %s] in %s and nothing in the store\n", name,
                c->path);
        return EXIT_FAILURE;
    }
    json_array_append_new(all, status_json(s, name));
    return EXIT_SUCCESS;
}

/* --check: an UNKNOWN line on stdout, where a monitoring system reads it */
static int check_unknown(const char *what)
{
    printf("UNKNOWN certsync: %s\n", cli_safe(cs_error_last()[0] ? cs_error_last() : what));
    return CS_CHECK_UNKNOWN;
}

/* The problems of one [cert] NAME, printed; returns its worst level. */
static cs_check_level check_one(const cs_config *c, cs_store *s, const char *name)
{
    const cs_cert_conf *cert = cs_config_cert(c, name);
    json_t *j, *problems, *line;
    cs_check_level level;
    size_t k;

    if (cert == NULL) {
        printf("UNKNOWN %s: no [cert %s] in %s\n", cli_safe(name), cli_safe(name), c->path);
        return CS_CHECK_UNKNOWN;
    }
    if ((problems = json_array()) == NULL || cs_status_cert(s, name, 0, &j) != CS_OK) {
        json_decref(problems);
        return check_unknown("out of memory");
    }
    level = cs_status_check(j, cert->renew_before, 0, problems);
    json_array_foreach(problems, k, line) printf("%s\n", cli_safe(json_string_value(line)));
    json_decref(problems);
    json_decref(j);
    return level;
}

/* status --check [NAME...]: exits 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN */
static int status_check(int n, char **names)
{
    cs_check_level worst = CS_CHECK_OK, level;
    size_t count = 0;
    cs_config *c;
    cs_store *s;

    if (cs_config_load(cli_config_file(), &c) != CS_OK)
        return check_unknown("cannot read the config");
    if (cs_owner_become(c) != CS_OK || cs_store_open_config(c, &s) != CS_OK) {
        cs_config_free(c);
        return check_unknown("cannot open the store");
    }
    for (size_t k = 0; n ? k < (size_t)n : k < c->n_certs; k++, count++) {
        level = check_one(c, s, n ? names[k] : c->certs[k].name);
        worst = level > worst ? level : worst;
    }
    if (worst == CS_CHECK_OK)
        printf("OK certsync: %zu certificate(s) current and valid for more than their "
               "renew-before\n",
               count);
    cs_store_free(s);
    cs_config_free(c);
    return worst;
}

static int cmd_status(const cli_command *self, int argc, char **argv)
{
    status_args a = {0};
    int first, rc = cli_parse(&self->spec, argc, argv, &a, &first);
    json_t *all, *v;
    cs_config *c;
    cs_store *s;
    size_t k;

    if (rc != CLI_CONTINUE)
        return rc;
    if (a.check && a.json)
        return cli_usage(&self->spec, "--check and --json do not go together");
    if (a.check)
        return status_check(argc - first, argv + first);
    if (argc - first > 1)
        return cli_usage(&self->spec, "give at most one NAME (or use --check)");
    if ((rc = cli_open_all("status", &c, &s)) != EXIT_SUCCESS)
        return rc;
    all = json_array();
    rc = status_collect(c, s, first < argc ? argv[first] : NULL, all);
    if (rc == EXIT_SUCCESS && a.json) {
        json_dumpf(all, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("\n");
    } else if (rc == EXIT_SUCCESS) {
        json_array_foreach(all, k, v) status_text(v);
    }
    json_decref(all);
    cs_store_free(s);
    cs_config_free(c);
    return rc;
}

/* ---- metrics ---- */

static const char metrics_about[] =
    "Every managed certificate in the Prometheus text format, for node_exporter's textfile\n"
    "collector: certsync_cert_version, certsync_cert_not_after_seconds,\n"
    "certsync_sync_last_run_seconds, certsync_sync_last_success_seconds,\n"
    "certsync_sync_consecutive_failures and certsync_hook_pending (1 while a failed\n"
    "on-change command waits to run again), each labelled with the certificate's name.\n"
    "Write it next to the collector's directory and rename it into place, e.g.\n"
    "  certsync metrics > /var/lib/prometheus/node-exporter/certsync.prom.$$ &&\n"
    "  mv /var/lib/prometheus/node-exporter/certsync.prom.$$ "
    "/var/lib/prometheus/node-exporter/certsync.prom\n";

static int cmd_metrics(const cli_command *self, int argc, char **argv)
{
    int first, rc = cli_parse(&self->spec, argc, argv, NULL, &first);
    json_t *doc = NULL;
    char *text = NULL;
    cs_config *c;
    cs_store *s;

    if (rc != CLI_CONTINUE)
        return rc;
    if (first < argc)
        return cli_usage(&self->spec, "takes no NAME: it shows every [cert]");
    if ((rc = cli_open_all("metrics", &c, &s)) != EXIT_SUCCESS)
        return rc;
    if (cs_status_document(c, s, 0, &doc) != CS_OK || cs_status_metrics(doc, &text) != CS_OK)
        rc = cli_fail("metrics");
    else
        fputs(text, stdout);
    free(text);
    json_decref(doc);
    cs_store_free(s);
    cs_config_free(c);
    return rc;
}

/* ---- rollback, release ---- */

typedef struct {
    int force;
} rollback_args;

static const cli_opt rollback_opts[] = {
    CLI_OPT_SWITCH(rollback_args, force, "force",
                   "roll back even to a version whose certificate was\nrevoked (certsync revoke)"),
    CLI_OPT_CONFIG, CLI_OPT_HELP, CLI_OPT_END};

static const cli_opt config_only_opts[] = {CLI_OPT_CONFIG, CLI_OPT_HELP, CLI_OPT_END};

static const char rollback_about[] =
    "The newest older version of NAME that still validates becomes the current one, and NAME\n"
    "is held there: `certsync sync` (and the servers' in-process syncs) leave it alone until\n"
    "`certsync release NAME`. A version whose certificate `certsync revoke` revoked is\n"
    "refused unless --force. Servers with the certsync module pick it up within a second.\n";

static const char release_about[] =
    "Ends the hold a rollback put on NAME: the next sync installs a new version when one is\n"
    "due (or at once with `certsync sync --force NAME`).\n";

static int rollback_run(cs_config *c, cs_store *s, const char *name, int force)
{
    unsigned from = 0, to;
    int lock;
    cs_rc r;

    /* "was" is what the rollback replaced: read under the lock it takes (the lock nests) */
    if (cs_store_lock(s, name, 60, &lock) != CS_OK)
        return cli_fail("rollback");
    if (cs_store_current(s, name, &from) != CS_OK)
        from = 0;
    r = cs_store_rollback(s, name, force, &to);
    cs_store_unlock(s, lock);
    if (r != CS_OK)
        return cli_fail("rollback");
    printf("%s: current is now v%u (was v%u), held there; `certsync release %s` resumes syncing\n",
           name, to, from, name);
    if (cs_sync_notify(c, s, cs_config_cert(c, name), to) != CS_OK)
        return cli_fail("rollback");
    return EXIT_SUCCESS;
}

static int release_run(cs_store *s, const char *name)
{
    cs_sync_state st;
    char since[32];
    int lock;

    if (cs_store_lock(s, name, 60, &lock) != CS_OK)
        return cli_fail("release");
    if (cs_store_sync_state(s, name, &st) != CS_OK ||
        (st.held && cs_store_hold(s, name, 0) != CS_OK)) {
        cs_store_unlock(s, lock);
        return cli_fail("release");
    }
    cs_store_unlock(s, lock);
    if (st.held == 0)
        printf("%s: not held; nothing to release\n", name);
    else
        printf("%s: released (was held at v%u since %s); the next sync renews it when due\n", name,
               st.held, cs_time_iso(st.held_since, since));
    return EXIT_SUCCESS;
}

/* rollback and release: one NAME, known to the config or the store */
static int cmd_hold(const cli_command *self, int argc, char **argv)
{
    rollback_args a = {0};
    int first, rc = cli_parse(&self->spec, argc, argv, &a, &first);
    const char *cmd = self->spec.name;
    unsigned ver;
    cs_config *c;
    cs_store *s;

    if (rc != CLI_CONTINUE)
        return rc;
    if (first + 1 != argc)
        return cli_usage(&self->spec, "give exactly one certificate NAME");
    if ((rc = cli_open_all(cmd, &c, &s)) != EXIT_SUCCESS)
        return rc;
    if (cs_config_cert(c, argv[first]) == NULL && cs_store_current(s, argv[first], &ver) != CS_OK) {
        fprintf(stderr, "certsync %s: no [cert %s] in %s and nothing in the store\n", cmd,
                cli_safe(argv[first]), c->path);
        rc = EXIT_FAILURE;
    } else if (strcmp(cmd, "rollback") == 0) {
        rc = rollback_run(c, s, argv[first], a.force);
    } else {
        rc = release_run(s, argv[first]);
    }
    cs_store_free(s);
    cs_config_free(c);
    return rc;
}

/* ---- main ---- */

static const cli_command store_commands[] = {
    CLI_COMMAND("sync", "[NAME...]", "get due certificates from their providers and install them",
                sync_about, sync_opts, cmd_sync),
    CLI_COMMAND("ocsp", "[NAME...]", "fetch the OCSP staples of the current versions now",
                ocsp_about, config_only_opts, cmd_ocsp),
    CLI_COMMAND("status", "[NAME...]", "current version, fingerprint, expiry, last sync and error",
                status_about, status_opts, cmd_status),
    CLI_COMMAND("metrics", NULL, "every certificate's expiry and last sync for Prometheus",
                metrics_about, config_only_opts, cmd_metrics),
    CLI_COMMAND("import", "NAME", "install a certificate you have as a new version of NAME",
                import_about, import_opts, cmd_import),
    CLI_COMMAND("rollback", "NAME", "make the previous good version current and hold it there",
                rollback_about, rollback_opts, cmd_hold),
    CLI_COMMAND("release", "NAME", "end a rollback's hold: sync renews NAME again", release_about,
                config_only_opts, cmd_hold),
    CLI_COMMAND("convert", NULL,
                "convert a certificate + key to PEM, PKCS#12, JKS or a server layout",
                convert_about, convert_opts, cmd_convert),
    CLI_COMMAND_END};

static void list_commands(const cli_command *cmds, FILE *out)
{
    char label[64];

    for (; cmds->run; cmds++) {
        snprintf(label, sizeof(label), "%s%s%s", cmds->spec.name, cmds->spec.args ? " " : "",
                 cmds->spec.args ? cmds->spec.args : "");
        fprintf(out, "  %-20s%s%s\n", label, strlen(label) > 19 ? "\n                      " : "",
                cmds->spec.summary);
    }
}

static void main_commands(FILE *out)
{
    fputs("\nCommands:\n", out);
    list_commands(store_commands, out);
    fputs("\nThe certificate service (a [provider] with type = aliyun-cas):\n", out);
    list_commands(cli_aliyun_commands, out);
    fputs("\nThe certificate service's deployment jobs (to CDN, load balancers, WAF, OSS, ...):\n",
          out);
    list_commands(cli_deploy_commands, out);
    fputs("\nEach command has --help (or: certsync help COMMAND).\n"
          "Exit codes: 0 success, 1 failure, 2 usage error.\n",
          out);
}

typedef struct {
    int version;
} main_args;

static const cli_opt main_opts[] = {
    CLI_OPT_CONFIG,
    CLI_OPT_QUIET,
    CLI_OPT_SWITCH(main_args, version, "version", "print the version and exit"),
    {.name = "help", .short_name = 'h', .kind = CLI_HELP, .help = "show this help and exit"},
    CLI_OPT_END};

static const cli_cmd main_spec = {
    .prog = "certsync",
    .args = "COMMAND [ARGS]",
    .summary = "keep the TLS certificates of web servers in step with a certificate service",
    .opts = main_opts,
    .stop_at_arg = 1,
    .more_help = main_commands};

/* A core file would hold private keys and the AccessKey secret: none is written. */
static void no_core_dumps(void)
{
    struct rlimit zero = {0, 0};

    prctl(PR_SET_DUMPABLE, 0);
    setrlimit(RLIMIT_CORE, &zero);
}

static const cli_command *find_command(const char *name)
{
    const cli_command *lists[] = {store_commands, cli_acme_commands, cli_aliyun_commands,
                                  cli_deploy_commands},
                      *k;

    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
        for (k = lists[i]; k->run; k++)
            if (strcmp(k->spec.name, name) == 0)
                return k;
    return NULL;
}

/* certsync help [COMMAND] */
static int help_of(int argc, char **argv)
{
    const cli_command *k = argc > 1 ? find_command(argv[1]) : NULL;
    char *sub[] = {argv[1], (char *)"--help", NULL};

    if (k)
        return k->run(k, 2, sub);
    cli_help(&main_spec, stdout);
    return EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
    main_args a = {0};
    const cli_command *k;
    int first, rc;

    no_core_dumps();
    umask(077);
    cli_log_init();
    if ((rc = cli_parse(&main_spec, argc, argv, &a, &first)) != CLI_CONTINUE)
        return rc;
    if (a.version) {
        printf("certsync " CS_VERSION "\n");
        return EXIT_SUCCESS;
    }
    if (first >= argc) {
        cli_help(&main_spec, stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[first], "help") == 0)
        return help_of(argc - first, argv + first);
    if ((k = find_command(argv[first])) != NULL) {
        cli_log_command(k->spec.name);
        return k->run(k, argc - first, argv + first);
    }
    fprintf(stderr, "certsync: unknown command '%s'\n", argv[first]);
    cli_help(&main_spec, stderr);
    return EXIT_USAGE;
}
