/* The store: the contract between the core and the servers. */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cs_fs.h"
#include "cs_output.h"
#include "cs_store.h"
#include "cs_test.h"

static const char *const names[] = {"shop.example.com"};

static cs_install_opts opts(void)
{
    cs_install_opts o = {0};

    o.provider = "import";
    o.names = names;
    o.n_names = 1;
    return o;
}

static mode_t mode_of(const char *path)
{
    struct stat st;

    assert_int_equal(lstat(path, &st), 0);
    return st.st_mode & 07777;
}

static void a_version_is_complete_private_and_current(void **state)
{
    char *root = cs_test_tmpdir("store"), dir[4096], link[4096];
    cs_install_opts o = opts();
    cs_test_chain c;
    cs_store *s;
    cs_cert_info info;
    unsigned v, cur;
    struct stat before, after;
    char fp[65];
    const char *files[] = {"fullchain.pem", "cert.pem", "chain.pem",       "privkey.pem",
                           "shop.pem",      "shop.key", "shop_public.crt", "shop_chain.crt",
                           "meta.json",     NULL};
    (void)state;

    cs_test_chain_make(&c, CS_KEY_EC256, names, 1, -1, 90);
    assert_int_equal(cs_store_open(root, NULL, &s), CS_OK);
    assert_int_equal(cs_store_current(s, "shop", &cur), CS_ENOTFOUND);
    assert_int_equal(cs_store_install(s, "shop", c.bundle, &o, &v), CS_OK);
    assert_int_equal(v, 1);
    assert_int_equal(cs_store_current(s, "shop", &cur), CS_OK);
    assert_int_equal(cur, 1);
    assert_int_equal(cs_store_version_dir(s, "shop", 0, dir, sizeof(dir)), CS_OK);
    for (int i = 0; files[i]; i++)
        assert_int_equal(access(cs_test_path(dir, files[i]), R_OK), 0);
    assert_int_equal(mode_of(dir), 0750);
    assert_int_equal(mode_of(root), 0750);
    assert_int_equal(mode_of(cs_test_path(dir, "privkey.pem")), 0640);
    assert_int_equal(mode_of(cs_test_path(dir, "shop.key")), 0640);
    /* metadata */
    assert_int_equal(cs_store_info(s, "shop", 0, &info), CS_OK);
    cs_bundle_fingerprint(c.bundle, fp);
    assert_string_equal(info.fingerprint, fp);
    assert_string_equal(info.provider, "import");
    assert_int_equal(info.n_names, 1);
    assert_string_equal(info.names[0], "shop.example.com");
    assert_true(info.not_after > time(NULL) + 89 * 86400);
    assert_true(info.fetched_at >= time(NULL) - 60);
    cs_cert_info_clear(&info);
    /* readers notice a switch by the link's inode */
    assert_int_equal(cs_store_current_link(s, "shop", link, sizeof(link)), CS_OK);
    assert_int_equal(lstat(link, &before), 0);
    assert_int_equal(cs_store_install(s, "shop", c.bundle, &o, &v), CS_OK);
    assert_int_equal(v, 2);
    assert_int_equal(lstat(link, &after), 0);
    assert_true(before.st_ino != after.st_ino);
    cs_store_free(s);
    cs_test_chain_free(&c);
    free(root);
}

static void pfx_and_jks_passwords_stay_across_versions(void **state)
{
    char *root = cs_test_tmpdir("store"), d1[4096], d2[4096];
    cs_install_opts o = opts();
    cs_test_chain c;
    cs_store *s;
    char *p1, *p2;
    (void)state;

    cs_test_chain_make(&c, CS_KEY_EC256, names, 1, -1, 90);
    o.formats = CS_FMT_PFX | CS_FMT_JKS;
    assert_int_equal(cs_store_open(root, NULL, &s), CS_OK);
    assert_int_equal(cs_store_install(s, "shop", c.bundle, &o, NULL), CS_OK);
    assert_int_equal(cs_store_version_dir(s, "shop", 1, d1, sizeof(d1)), CS_OK);
    assert_int_equal(cs_store_install(s, "shop", c.bundle, &o, NULL), CS_OK);
    assert_int_equal(cs_store_version_dir(s, "shop", 2, d2, sizeof(d2)), CS_OK);
    assert_int_equal(mode_of(cs_test_path(d2, "shop.pfx")), 0600);
    assert_int_equal(mode_of(cs_test_path(d2, "shop.jks")), 0600);
    assert_int_equal(mode_of(cs_test_path(d2, "pfx-password.txt")), 0600);
    assert_int_equal(mode_of(cs_test_path(d2, "jks-password.txt")), 0600);
    assert_int_equal(cs_fs_read(cs_test_path(d1, "pfx-password.txt"), 100, &p1, NULL), CS_OK);
    assert_int_equal(cs_fs_read(cs_test_path(d2, "pfx-password.txt"), 100, &p2, NULL), CS_OK);
    assert_true(strlen(p1) >= 23); /* 22 base62 chars carry 128 bits */
    assert_string_equal(p1, p2);
    free(p1);
    free(p2);
    cs_store_free(s);
    cs_test_chain_free(&c);
    free(root);
}

static void a_bad_certificate_never_becomes_current(void **state)
{
    char *root = cs_test_tmpdir("store");
    cs_install_opts o = opts();
    cs_test_chain good, expired, other;
    const char *const wrong_names[] = {"other.example.org"};
    cs_bundle *mismatch;
    cs_store *s;
    unsigned cur, *v;
    size_t n;
    (void)state;

    cs_test_chain_make(&good, CS_KEY_EC256, names, 1, -1, 90);
    cs_test_chain_make(&expired, CS_KEY_EC256, names, 1, -100, -1);
    cs_test_chain_make(&other, CS_KEY_EC256, wrong_names, 1, -1, 90);
    assert_int_equal(cs_bundle_new(good.leaf, NULL, other.leaf_key, &mismatch), CS_OK);
    assert_int_equal(cs_store_open(root, NULL, &s), CS_OK);
    assert_int_equal(cs_store_install(s, "shop", good.bundle, &o, NULL), CS_OK);

    assert_int_equal(cs_store_install(s, "shop", expired.bundle, &o, NULL), CS_EBADCERT);
    assert_non_null(strstr(cs_error_last(), "expired"));
    assert_int_equal(cs_store_install(s, "shop", mismatch, &o, NULL), CS_EBADCERT);
    assert_non_null(strstr(cs_error_last(), "does not match"));
    assert_int_equal(cs_store_install(s, "shop", other.bundle, &o, NULL), CS_EBADCERT);
    assert_non_null(strstr(cs_error_last(), "shop.example.com"));

    assert_int_equal(cs_store_current(s, "shop", &cur), CS_OK);
    assert_int_equal(cur, 1);
    assert_int_equal(cs_store_versions(s, "shop", &v, &n), CS_OK);
    assert_int_equal(n, 1);
    free(v);
    cs_bundle_free(mismatch);
    cs_store_free(s);
    cs_test_chain_free(&good);
    cs_test_chain_free(&expired);
    cs_test_chain_free(&other);
    free(root);
}

static void retention_keeps_n_and_rollback_goes_back(void **state)
{
    char *root = cs_test_tmpdir("store");
    cs_install_opts o = opts();
    cs_store_opts so = {3, (uid_t)-1, (gid_t)-1};
    cs_test_chain c;
    cs_store *s;
    unsigned cur, *v, to;
    size_t n;
    (void)state;

    cs_test_chain_make(&c, CS_KEY_EC256, names, 1, -1, 90);
    assert_int_equal(cs_store_open(root, &so, &s), CS_OK);
    for (int i = 0; i < 5; i++)
        assert_int_equal(cs_store_install(s, "shop", c.bundle, &o, NULL), CS_OK);
    assert_int_equal(cs_store_versions(s, "shop", &v, &n), CS_OK);
    assert_int_equal(n, 3);
    assert_int_equal(v[0], 3);
    assert_int_equal(v[2], 5);
    free(v);
    assert_int_equal(cs_store_rollback(s, "shop", 0, &to), CS_OK);
    assert_int_equal(to, 4);
    assert_int_equal(cs_store_current(s, "shop", &cur), CS_OK);
    assert_int_equal(cur, 4);
    assert_int_equal(cs_store_rollback(s, "shop", 0, &to), CS_OK);
    assert_int_equal(to, 3);
    assert_int_equal(cs_store_rollback(s, "shop", 0, &to), CS_ENOTFOUND);
    assert_non_null(strstr(cs_error_last(), "no version older than v3"));
    /* a new install after a rollback gets a fresh number, and v3 stays (current) */
    assert_int_equal(cs_store_install(s, "shop", c.bundle, &o, &to), CS_OK);
    assert_int_equal(to, 6);
    cs_store_free(s);
    cs_test_chain_free(&c);
    free(root);
}

static void sync_state_is_kept_for_status(void **state)
{
    char *root = cs_test_tmpdir("store");
    cs_sync_state st;
    cs_store *s;
    (void)state;

    assert_int_equal(cs_store_open(root, NULL, &s), CS_OK);
    assert_int_equal(cs_store_sync_state(s, "shop", &st), CS_OK);
    assert_int_equal(st.result, CS_SYNC_NONE);
    assert_int_equal(cs_store_record_sync(s, "shop", CS_SYNC_INSTALLED, NULL), CS_OK);
    assert_int_equal(cs_store_record_sync(s, "shop", CS_SYNC_FAILED, "the service said no"), CS_OK);
    assert_int_equal(cs_store_sync_state(s, "shop", &st), CS_OK);
    assert_int_equal(st.result, CS_SYNC_FAILED);
    assert_string_equal(st.error, "the service said no");
    assert_true(st.last_success > 0);
    cs_store_free(s);
    free(root);
}

/* jansson's allocator, failing only the allocation after `budget` others (-1: none) */
static long budget = -1;

static void *tight_malloc(size_t n)
{
    if (budget-- == 0)
        return NULL;
    return malloc(n);
}

static void with_budget(long n)
{
    budget = n;
    json_set_alloc_funcs(tight_malloc, free);
}

/* out of memory at any point of the JSON: an error, never a meta.json or state.json with holes */
static void out_of_memory_never_writes_half_a_document(void **state)
{
    char *root = cs_test_tmpdir("store"), fp[65];
    cs_install_opts o = opts();
    cs_test_chain c;
    cs_cert_info info;
    cs_sync_state st;
    cs_store *s;
    unsigned v, cur;
    cs_rc rc = CS_ERR;
    long n;
    (void)state;

    cs_test_chain_make(&c, CS_KEY_EC256, names, 1, -1, 90);
    assert_int_equal(cs_store_open(root, NULL, &s), CS_OK);
    for (n = 0; n < 1000 && rc != CS_OK; n++) {
        with_budget(n);
        rc = cs_store_install(s, "shop", c.bundle, &o, &v);
        with_budget(-1);
        if (rc != CS_OK)
            assert_int_equal(cs_store_current(s, "shop", &cur), CS_ENOTFOUND);
    }
    assert_int_equal(rc, CS_OK);
    assert_true(n > 1); /* some attempts did fail */
    rc = cs_store_info(s, "shop", 0, &info);
    assert_int_equal(rc, CS_OK);
    cs_bundle_fingerprint(c.bundle, fp);
    assert_string_equal(info.fingerprint, fp);
    assert_int_equal(info.n_names, 1);
    assert_true(info.not_after > time(NULL));
    cs_cert_info_clear(&info);
    for (rc = CS_ERR, n = 0; n < 1000 && rc != CS_OK; n++) {
        with_budget(n);
        rc = cs_store_record_sync(s, "shop", CS_SYNC_INSTALLED, NULL);
        with_budget(-1);
        if (rc != CS_OK)
            assert_int_equal(rc, CS_ENOMEM);
    }
    assert_int_equal(rc, CS_OK);
    assert_true(n > 1);
    assert_int_equal(cs_store_sync_state(s, "shop", &st), CS_OK);
    assert_int_equal(st.result, CS_SYNC_INSTALLED);
    assert_true(st.at > 0 && st.last_success == st.at);
    cs_store_free(s);
    cs_test_chain_free(&c);
    free(root);
}

static void names_that_escape_the_store_are_refused(void **state)
{
    char *root = cs_test_tmpdir("store");
    cs_install_opts o = opts();
    cs_test_chain c;
    cs_store *s;
    (void)state;

    cs_test_chain_make(&c, CS_KEY_EC256, names, 1, -1, 90);
    assert_int_equal(cs_store_open(root, NULL, &s), CS_OK);
    assert_int_equal(cs_store_install(s, "../evil", c.bundle, &o, NULL), CS_EINVAL);
    assert_int_equal(cs_store_install(s, ".hidden", c.bundle, &o, NULL), CS_EINVAL);
    cs_store_free(s);
    cs_test_chain_free(&c);
    free(root);
}

/*
 * A writer killed at any instant leaves current pointing at a complete,
 * valid version: SIGKILL a process installing in a loop at many random
 * moments and check every time.
 */
static void a_crash_at_any_instant_leaves_a_valid_current(void **state)
{
    char *root = cs_test_tmpdir("crash");
    cs_install_opts o = opts();
    cs_test_chain a, b;
    char fa[65], fb[65];
    cs_store *s;
    int rounds = getenv("CS_CRASH_ROUNDS") ? atoi(getenv("CS_CRASH_ROUNDS")) : 150;
    int completed_after = 0, window_us;
    (void)state;

    o.formats = CS_FMT_PFX | CS_FMT_JKS;
    cs_test_chain_make(&a, CS_KEY_EC256, names, 1, -1, 90);
    cs_test_chain_make(&b, CS_KEY_RSA2048, names, 1, -1, 90);
    cs_bundle_fingerprint(a.bundle, fa);
    cs_bundle_fingerprint(b.bundle, fb);
    assert_int_equal(cs_store_open(root, NULL, &s), CS_OK);
    /* kill anywhere within about two installs, however slow this build is */
    {
        struct timespec t0, t1;

        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(cs_store_install(s, "shop", a.bundle, &o, NULL), CS_OK);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        window_us = (int)((t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000);
        window_us = window_us * 2 + 1000;
    }
    srand((unsigned)time(NULL));
    for (int r = 0; r < rounds; r++) {
        pid_t pid = fork();
        cs_bundle *cur;
        cs_cert_info info;
        char fp[65];
        unsigned v;

        assert_true(pid >= 0);
        if (pid == 0) {
            for (int i = 0;; i++)
                if (cs_store_install(s, "shop", i % 2 ? a.bundle : b.bundle, &o, NULL) != CS_OK)
                    _exit(3);
        }
        usleep((useconds_t)(rand() % window_us));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);

        assert_int_equal(cs_store_current(s, "shop", &v), CS_OK);
        if (cs_store_load(s, "shop", 0, &cur) != CS_OK)
            fail_msg("round %d: current v%u does not load: %s", r, v, cs_error_last());
        assert_int_equal(cs_bundle_validate(cur, names, 1, time(NULL), "current"), CS_OK);
        cs_bundle_fingerprint(cur, fp);
        assert_true(strcmp(fp, fa) == 0 || strcmp(fp, fb) == 0);
        assert_int_equal(cs_store_info(s, "shop", 0, &info), CS_OK);
        assert_string_equal(info.fingerprint, fp);
        cs_cert_info_clear(&info);
        cs_bundle_free(cur);
        if (v > 2)
            completed_after++;
    }
    /* the killed writers' leftovers do not stop the next one */
    assert_int_equal(cs_store_install(s, "shop", a.bundle, &o, NULL), CS_OK);
    assert_true(completed_after > 0);
    cs_store_free(s);
    cs_test_chain_free(&a);
    cs_test_chain_free(&b);
    free(root);
}

static void a_hold_and_the_revoked_list_outlive_every_sync_record(void **state)
{
    char *root = cs_test_tmpdir("store");
    cs_install_opts o = opts();
    cs_store_opts so = {3, (uid_t)-1, (gid_t)-1};
    cs_test_chain c1, c2;
    cs_cert_info info;
    cs_sync_state st;
    cs_store *s;
    unsigned to;
    int revoked;
    (void)state;

    cs_test_chain_make(&c1, CS_KEY_EC256, names, 1, -1, 90);
    cs_test_chain_make(&c2, CS_KEY_EC256, names, 1, -1, 90);
    assert_int_equal(cs_store_open(root, &so, &s), CS_OK);
    assert_int_equal(cs_store_install(s, "shop", c1.bundle, &o, NULL), CS_OK);
    assert_int_equal(cs_store_install(s, "shop", c2.bundle, &o, NULL), CS_OK);
    assert_int_equal(cs_store_info(s, "shop", 1, &info), CS_OK);
    assert_int_equal(cs_store_mark_revoked(s, "shop", info.fingerprint), CS_OK);
    assert_int_equal(cs_store_record_sync(s, "shop", CS_SYNC_FAILED, "boom"), CS_OK);
    assert_int_equal(cs_store_revoked(s, "shop", info.fingerprint, &revoked), CS_OK);
    assert_true(revoked);

    /* v1 holds a revoked certificate: refused, nothing moves, nothing is held */
    assert_int_equal(cs_store_rollback(s, "shop", 0, &to), CS_EPERM);
    assert_non_null(strstr(cs_error_last(), "v1 of 'shop' was revoked"));
    assert_int_equal(cs_store_current(s, "shop", &to), CS_OK);
    assert_int_equal(to, 2);
    assert_int_equal(cs_store_sync_state(s, "shop", &st), CS_OK);
    assert_int_equal(st.held, 0);

    assert_int_equal(cs_store_rollback(s, "shop", 1, &to), CS_OK);
    assert_int_equal(to, 1);
    assert_int_equal(cs_store_record_sync(s, "shop", CS_SYNC_UNCHANGED, NULL), CS_OK);
    assert_int_equal(cs_store_sync_state(s, "shop", &st), CS_OK);
    assert_int_equal(st.held, 1);
    assert_true(st.held_since > 0 && st.last_success > 0 && st.error[0] == '\0');
    assert_int_equal(cs_store_hold(s, "shop", 0), CS_OK);
    assert_int_equal(cs_store_sync_state(s, "shop", &st), CS_OK);
    assert_int_equal(st.held, 0);
    assert_int_equal(cs_store_revoked(s, "shop", info.fingerprint, &revoked), CS_OK);
    assert_true(revoked);
    cs_cert_info_clear(&info);
    cs_store_free(s);
    cs_test_chain_free(&c1);
    cs_test_chain_free(&c2);
    free(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_version_is_complete_private_and_current),
        cmocka_unit_test(a_hold_and_the_revoked_list_outlive_every_sync_record),
        cmocka_unit_test(pfx_and_jks_passwords_stay_across_versions),
        cmocka_unit_test(a_bad_certificate_never_becomes_current),
        cmocka_unit_test(retention_keeps_n_and_rollback_goes_back),
        cmocka_unit_test(sync_state_is_kept_for_status),
        cmocka_unit_test(out_of_memory_never_writes_half_a_document),
        cmocka_unit_test(names_that_escape_the_store_are_refused),
        cmocka_unit_test(a_crash_at_any_instant_leaves_a_valid_current),
    };

    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
