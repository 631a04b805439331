/*
 * bench_convert: certsync's in-process conversions against the commands a
 * user runs today, in one run.
 *
 *   PEM -> PKCS#12  ours: load PEM files, cs_pkcs12_write (modern), write the file
 *                   baseline: openssl pkcs12 -export (OpenSSL 3 defaults are our
 *                   modern profile: PBKDF2, AES-256-CBC, SHA-256 MAC, 2048 iterations)
 *   PEM -> JKS      ours: load PEM files, cs_jks_write, write the file
 *                   baseline: keytool -importkeystore from the PKCS#12 (the step
 *                   after openssl; the user's whole job is slower still)
 *
 * Our timings include reading the password file and writing the output the
 * way certsync does (temp file, fsync, rename, fsync of the directory); the
 * baselines do not fsync. Not a test: it prints ratios and exits 0 unless a
 * step fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/pem.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cs_bundle.h"
#include "cs_crypt.h"
#include "cs_fs.h"
#include "cs_jks.h"
#include "cs_password.h"
#include "cs_pkcs12.h"

#define OURS_RUNS 200
#define OPENSSL_RUNS 30
#define KEYTOOL_RUNS 5
#define ALIAS "shop"
#define BENCH_PW "bench-password-1234\n"

extern char **environ;

typedef struct {
    char dir[4096];
    char chain[4200], key[4200], pw[4200], log[4200];
    char our_p12[4200], our_jks[4200], their_p12[4200], their_jks[4200];
} bench_files;

typedef struct {
    const char *job;
    double ours_ms, base_ms, target;
} bench_row;

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int fail(const char *what)
{
    fprintf(stderr, "bench_convert: %s: %s\n", what, cs_error_last());
    return -1;
}

static void set_paths(bench_files *f)
{
    snprintf(f->chain, sizeof(f->chain), "%s/fullchain.pem", f->dir);
    snprintf(f->key, sizeof(f->key), "%s/privkey.pem", f->dir);
    snprintf(f->pw, sizeof(f->pw), "%s/password.txt", f->dir);
    snprintf(f->log, sizeof(f->log), "%s/baseline.log", f->dir);
    snprintf(f->our_p12, sizeof(f->our_p12), "%s/ours.p12", f->dir);
    snprintf(f->our_jks, sizeof(f->our_jks), "%s/ours.jks", f->dir);
    snprintf(f->their_p12, sizeof(f->their_p12), "%s/openssl.p12", f->dir);
    snprintf(f->their_jks, sizeof(f->their_jks), "%s/keytool.jks", f->dir);
}

static int write_pem(const char *path, X509 *leaf, X509 *inter, EVP_PKEY *key)
{
    FILE *out = fopen(path, "w");
    int ok;

    if (out == NULL) {
        fprintf(stderr, "bench_convert: cannot create %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (key != NULL)
        ok = PEM_write_PrivateKey(out, key, NULL, NULL, 0, NULL, NULL);
    else
        ok = PEM_write_X509(out, leaf) && PEM_write_X509(out, inter);
    if (fclose(out) != 0 || !ok) {
        fprintf(stderr, "bench_convert: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

/* An RSA-2048 intermediate (self-signed, it stands for the CA) and an RSA-2048 leaf. */
static int make_inputs(const bench_files *f)
{
    static const char *const names[] = {"shop.example.com"};
    time_t now = time(NULL);
    cs_cert_spec ca = {"bench intermediate", NULL, 0, 1, now - 86400, now + 86400 * 365};
    cs_cert_spec ls = {names[0], names, 1, 0, now - 86400, now + 86400 * 90};
    EVP_PKEY *ca_key = NULL, *leaf_key = NULL;
    X509 *inter = NULL, *leaf = NULL;
    int rc = -1;

    if (cs_key_generate(CS_KEY_RSA2048, &ca_key) != CS_OK ||
        cs_key_generate(CS_KEY_RSA2048, &leaf_key) != CS_OK)
        rc = fail("generating RSA keys");
    else if (cs_cert_issue(&ca, ca_key, NULL, ca_key, &inter) != CS_OK ||
             cs_cert_issue(&ls, leaf_key, inter, ca_key, &leaf) != CS_OK)
        rc = fail("issuing the certificates");
    else if (write_pem(f->chain, leaf, inter, NULL) == 0 &&
             write_pem(f->key, NULL, NULL, leaf_key) == 0 &&
             cs_fs_write_new(f->pw, BENCH_PW, strlen(BENCH_PW), 0600) == CS_OK)
        rc = 0;
    X509_free(leaf);
    X509_free(inter);
    EVP_PKEY_free(leaf_key);
    EVP_PKEY_free(ca_key);
    return rc;
}

/* One conversion the way `certsync convert` does it; format is "pfx" or "jks". */
static int convert_once(const bench_files *f, int jks)
{
    unsigned char *out = NULL;
    char *pw = NULL;
    cs_bundle *b = NULL;
    size_t len = 0;
    cs_rc rc;

    rc = cs_bundle_load_files(f->chain, f->key, NULL, NULL, &b);
    if (rc == CS_OK)
        rc = cs_password_read(f->pw, &pw);
    if (rc == CS_OK && jks)
        rc = cs_jks_write(b, ALIAS, pw, pw, 0, &out, &len);
    else if (rc == CS_OK)
        rc = cs_pkcs12_write(b, ALIAS, pw, CS_P12_MODERN, &out, &len);
    if (rc == CS_OK)
        rc = cs_fs_write_atomic(jks ? f->our_jks : f->our_p12, out, len, 0600);
    free(out);
    cs_password_free(pw);
    cs_bundle_free(b);
    return rc == CS_OK ? 0 : fail(jks ? "PEM -> JKS" : "PEM -> PKCS#12");
}

static double time_ours(const bench_files *f, int jks, int runs)
{
    double t0;
    int i;

    if (convert_once(f, jks) != 0) /* warm-up, and a check that it works */
        return -1;
    t0 = now_ms();
    for (i = 0; i < runs; i++)
        if (convert_once(f, jks) != 0)
            return -1;
    return (now_ms() - t0) / runs;
}

/* Run argv without a shell; stdout and stderr go to the log, shown if it fails. */
static int run_tool(const bench_files *f, char *const argv[])
{
    posix_spawn_file_actions_t fa;
    char line[512];
    FILE *log;
    pid_t pid;
    int st, err;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, f->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    err = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (err != 0) {
        fprintf(stderr, "bench_convert: cannot run %s: %s; install it or fix PATH\n", argv[0],
                strerror(err));
        return -1;
    }
    if (waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    fprintf(stderr, "bench_convert: %s failed; its output:\n", argv[0]);
    if ((log = fopen(f->log, "r")) != NULL) {
        while (fgets(line, sizeof(line), log))
            fprintf(stderr, "  %s", line);
        fclose(log);
    }
    return -1;
}

static int openssl_once(const bench_files *f)
{
    char passout[4300];
    char *argv[] = {"openssl",
                    "pkcs12",
                    "-export",
                    "-in",
                    (char *)f->chain,
                    "-inkey",
                    (char *)f->key,
                    "-out",
                    (char *)f->their_p12,
                    "-passout",
                    passout,
                    "-name",
                    ALIAS,
                    NULL};

    snprintf(passout, sizeof(passout), "file:%s", f->pw);
    return run_tool(f, argv);
}

/* keytool refuses to overwrite an alias, so each run starts without the JKS. */
static int keytool_once(const bench_files *f)
{
    char *argv[] = {"keytool",
                    "-importkeystore",
                    "-srckeystore",
                    (char *)f->their_p12,
                    "-srcstoretype",
                    "PKCS12",
                    "-srcstorepass:file",
                    (char *)f->pw,
                    "-destkeystore",
                    (char *)f->their_jks,
                    "-deststoretype",
                    "JKS",
                    "-deststorepass:file",
                    (char *)f->pw,
                    "-noprompt",
                    NULL};

    unlink(f->their_jks);
    return run_tool(f, argv);
}

static double time_tool(const bench_files *f, int (*once)(const bench_files *), int runs)
{
    double t0;
    int i;

    if (once(f) != 0) /* warm-up: page cache, and a check that the command works */
        return -1;
    t0 = now_ms();
    for (i = 0; i < runs; i++)
        if (once(f) != 0)
            return -1;
    return (now_ms() - t0) / runs;
}

static int print_table(const bench_row *rows, int n)
{
    int i;

    printf("%-26s %12s %15s %9s %8s  %s\n", "job", "ours ms/op", "baseline ms/op", "ratio",
           "target", "result");
    for (i = 0; i < n; i++) {
        double ratio = rows[i].base_ms / rows[i].ours_ms;

        printf("%-26s %12.3f %15.3f %8.1fx %6.0fx  %s\n", rows[i].job, rows[i].ours_ms,
               rows[i].base_ms, ratio, rows[i].target, ratio >= rows[i].target ? "PASS" : "FAIL");
    }
    return 0;
}

static int run_all(bench_files *f)
{
    bench_row rows[2] = {{"PEM -> PKCS#12 (modern)", 0, 0, 3}, {"PEM -> JKS", 0, 0, 100}};

    printf("inputs: RSA-2048 leaf + RSA-2048 intermediate in %s\n", f->dir);
    printf("runs: ours %d each, openssl pkcs12 -export %d, keytool -importkeystore %d\n", OURS_RUNS,
           OPENSSL_RUNS, KEYTOOL_RUNS);
    fflush(stdout);
    if ((rows[0].ours_ms = time_ours(f, 0, OURS_RUNS)) < 0 ||
        (rows[0].base_ms = time_tool(f, openssl_once, OPENSSL_RUNS)) < 0 ||
        (rows[1].ours_ms = time_ours(f, 1, OURS_RUNS)) < 0 ||
        (rows[1].base_ms = time_tool(f, keytool_once, KEYTOOL_RUNS)) < 0)
        return -1;
    return print_table(rows, 2);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    bench_files f;
    int rc;

    memset(&f, 0, sizeof(f));
    snprintf(f.dir, sizeof(f.dir), "%s/certsync-bench-XXXXXX", tmp);
    if (mkdtemp(f.dir) == NULL) {
        fprintf(stderr, "bench_convert: cannot create a directory under %s: %s\n", tmp,
                strerror(errno));
        return 1;
    }
    set_paths(&f);
    rc = make_inputs(&f) == 0 ? run_all(&f) : -1;
    cs_fs_remove_tree(f.dir);
    return rc == 0 ? 0 : 1;
}
