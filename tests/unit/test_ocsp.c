/* OCSP staples beside each version: the local CA answers, the checks refuse what is not ours. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cs_config.h"
#include "cs_localca.h"
#include "cs_ocsp.h"
#include "cs_status.h"
#include "cs_store.h"
#include "cs_sync.h"
#include "cs_test.h"

typedef struct {
    cs_config *c;
    cs_store *s;
    cs_sync_session *sess;
    char *dir;
} env;

static void setup_env(env *e)
{
    char conf[4096];

    e->dir = cs_test_tmpdir("ocsp");
    snprintf(conf, sizeof(conf), "[store]\npath = %s/store\n\n[cert web]\ndomain = web.test\n",
             e->dir);
    cs_test_write_text(cs_test_path(e->dir, "certsync.conf"), conf);
    assert_int_equal(cs_config_load(cs_test_path(e->dir, "certsync.conf"), &e->c), CS_OK);
    assert_int_equal(cs_store_open_config(e->c, &e->s), CS_OK);
    assert_non_null(e->sess = cs_sync_session_new(e->c));
}

static void teardown_env(env *e)
{
    cs_sync_session_free(e->sess);
    cs_store_free(e->s);
    cs_config_free(e->c);
    free(e->dir);
}

static json_t *ocsp_status(env *e)
{
    json_t *cert = NULL, *o;

    assert_int_equal(cs_status_cert(e->s, "web", 0, &cert), CS_OK);
    o = json_incref(json_object_get(cert, "ocsp"));
    json_decref(cert);
    return o;
}

static void a_sync_staples_the_local_ca_certificate_and_a_new_version_gets_its_own(void **state)
{
    env e;
    cs_sync_outcome out;
    cs_bundle *b1, *b2;
    unsigned char *der = NULL;
    size_t len;
    cs_ocsp_response r;
    struct stat st;
    json_t *o;
    (void)state;

    setup_env(&e);
    assert_int_equal(cs_sync_cert(e.sess, e.s, &e.c->certs[0], 0, &out), CS_OK);
    assert_false(out.ocsp_failed);
    assert_non_null(strstr(out.ocsp, "good until"));
    assert_int_equal(cs_store_load(e.s, "web", 1, &b1), CS_OK);
    assert_int_equal(cs_ocsp_load(e.s, "web", 1, b1, 0, &der, &len, &r), CS_OK);
    assert_int_equal(r.status, CS_OCSP_GOOD);
    assert_true(r.next_update > time(NULL) + 3 * 86400);
    free(der);
    /* as readable as the version: the store's rule for served files */
    assert_int_equal(stat(cs_test_path(e.dir, "store/certs/web/v1.ocsp"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    o = ocsp_status(&e);
    assert_string_equal(json_string_value(json_object_get(o, "status")), "good");
    assert_true(json_is_null(json_object_get(o, "last_error")));
    json_decref(o);

    /* the next sync does not ask again before half of the validity */
    assert_int_equal(cs_sync_cert(e.sess, e.s, &e.c->certs[0], 0, &out), CS_OK);
    assert_non_null(strstr(out.ocsp, "refreshed after"));

    /* a forced new version: its own staple, and v1's does not pass for it */
    assert_int_equal(cs_sync_cert(e.sess, e.s, &e.c->certs[0], 1, &out), CS_OK);
    assert_int_equal(out.version, 2);
    assert_int_equal(cs_store_load(e.s, "web", 2, &b2), CS_OK);
    assert_int_equal(cs_ocsp_load(e.s, "web", 2, b2, 0, &der, &len, &r), CS_OK);
    free(der);
    assert_int_equal(cs_ocsp_load(e.s, "web", 1, b2, 0, &der, &len, &r), CS_EBADCERT);
    assert_non_null(strstr(cs_error_last(), "not about this certificate"));
    /* an expired answer is never handed out */
    assert_int_equal(cs_ocsp_load(e.s, "web", 2, b2, time(NULL) + 5 * 86400, &der, &len, &r),
                     CS_EBADCERT);
    assert_non_null(strstr(cs_error_last(), "not now"));
    cs_bundle_free(b1);
    cs_bundle_free(b2);
    teardown_env(&e);
}

static void an_answer_signed_by_another_ca_is_refused(void **state)
{
    env e;
    cs_sync_outcome out;
    cs_test_chain other;
    cs_bundle *b, *forged;
    char *der;
    size_t len;
    cs_ocsp_response r;
    const char *names[] = {"web.test"};
    STACK_OF(X509) *chain = sk_X509_new_null();
    (void)state;

    setup_env(&e);
    assert_int_equal(cs_sync_cert(e.sess, e.s, &e.c->certs[0], 0, &out), CS_OK);
    assert_int_equal(cs_store_load(e.s, "web", 1, &b), CS_OK);
    assert_int_equal(cs_store_load_aside(e.s, "web", 1, "ocsp", &der, &len), CS_OK);
    /* the same leaf with an "issuer" of another CA: the signature cannot be chained to it */
    cs_test_chain_make(&other, CS_KEY_EC256, names, 1, -1, 30);
    sk_X509_push(chain, other.inter);
    assert_int_equal(cs_bundle_new(cs_bundle_leaf(b), chain, other.leaf_key, &forged), CS_OK);
    assert_int_equal(cs_ocsp_check(der, len, forged, 0, &r), CS_EBADCERT);
    assert_int_equal(cs_ocsp_check("garbage", 7, b, 0, &r), CS_EBADCERT);
    sk_X509_free(chain);
    free(der);
    cs_bundle_free(forged);
    cs_bundle_free(b);
    cs_test_chain_free(&other);
    teardown_env(&e);
}

static void a_revoked_answer_removes_the_staple_and_is_critical(void **state)
{
    env e;
    cs_sync_outcome out;
    cs_bundle *b;
    char fp[65], note[1280], *der;
    size_t len;
    json_t *cert = NULL, *problems = json_array();
    (void)state;

    setup_env(&e);
    assert_int_equal(cs_sync_cert(e.sess, e.s, &e.c->certs[0], 0, &out), CS_OK);
    assert_int_equal(cs_store_load(e.s, "web", 1, &b), CS_OK);
    cs_bundle_fingerprint(b, fp);
    assert_int_equal(cs_store_mark_revoked(e.s, "web", fp), CS_OK);
    assert_int_equal(cs_ocsp_refresh(e.s, "web", 1, 0, note, sizeof(note)), CS_EBADCERT);
    assert_non_null(strstr(note, "REVOKED"));
    assert_int_equal(cs_store_load_aside(e.s, "web", 1, "ocsp", &der, &len), CS_ENOTFOUND);
    assert_int_equal(cs_status_cert(e.s, "web", 0, &cert), CS_OK);
    assert_int_equal(cs_status_check(cert, 30 * 86400L, 0, problems), CS_CHECK_CRITICAL);
    assert_non_null(strstr(json_string_value(json_array_get(problems, 0)), "REVOKED"));
    /* a revoked current version is due: the next sync replaces it, and staples the new one */
    assert_int_equal(cs_sync_cert(e.sess, e.s, &e.c->certs[0], 0, &out), CS_OK);
    assert_int_equal(out.result, CS_SYNC_INSTALLED);
    assert_int_equal(out.version, 2);
    assert_null(strstr(out.ocsp, "revoked"));
    assert_int_equal(cs_store_load_aside(e.s, "web", 2, "ocsp", &der, &len), CS_OK);
    free(der);
    json_decref(cert);
    json_decref(problems);
    cs_bundle_free(b);
    teardown_env(&e);
}

static void only_known_files_sit_beside_a_version(void **state)
{
    env e;
    cs_sync_outcome out;
    (void)state;

    setup_env(&e);
    assert_int_equal(cs_sync_cert(e.sess, e.s, &e.c->certs[0], 0, &out), CS_OK);
    assert_int_equal(cs_store_save_aside(e.s, "web", 1, "../x", "a", 1), CS_EINVAL);
    assert_int_equal(cs_store_save_aside(e.s, "web", 1, "pem", "a", 1), CS_EINVAL);
    teardown_env(&e);
}

static void a_planted_staple_is_refused_and_replaced(void **state)
{
    env e;
    cs_sync_outcome out;
    cs_bundle *b;
    char *der, note[1280], link[4096];
    size_t len;
    unsigned char *staple;
    cs_ocsp_response r;
    (void)state;

    setup_env(&e);
    assert_int_equal(cs_sync_cert(e.sess, e.s, &e.c->certs[0], 0, &out), CS_OK);
    assert_int_equal(cs_store_load(e.s, "web", 1, &b), CS_OK);
    /* what a worker user could plant: a symlink in place of the staple */
    snprintf(link, sizeof(link), "%s/store/certs/web/v1.ocsp", e.dir);
    assert_int_equal(unlink(link), 0);
    assert_int_equal(symlink("/etc/passwd", link), 0);
    assert_int_not_equal(cs_store_load_aside(e.s, "web", 1, "ocsp", &der, &len), CS_OK);
    assert_int_not_equal(cs_ocsp_load(e.s, "web", 1, b, 0, &staple, &len, &r), CS_OK);
    /* the next refresh writes a real file over it */
    assert_int_equal(cs_ocsp_refresh(e.s, "web", 1, 0, note, sizeof(note)), CS_OK);
    assert_int_equal(cs_ocsp_load(e.s, "web", 1, b, 0, &staple, &len, &r), CS_OK);
    free(staple);
    cs_bundle_free(b);
    teardown_env(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_sync_staples_the_local_ca_certificate_and_a_new_version_gets_its_own),
        cmocka_unit_test(an_answer_signed_by_another_ca_is_refused),
        cmocka_unit_test(a_revoked_answer_removes_the_staple_and_is_critical),
        cmocka_unit_test(only_known_files_sit_beside_a_version),
        cmocka_unit_test(a_planted_staple_is_refused_and_replaced),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
