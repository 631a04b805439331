#include "cs_test.h"

#include "cs_fs.h"

#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void cs_test_chain_make(cs_test_chain *c, cs_key_type leaf_type, const char *const *names,
                        size_t n_names, int from_days, int to_days)
{
    time_t now = time(NULL);
    cs_cert_spec root = {"certsync test root", NULL, 0, 1, now - 86400 * 400, now + 86400 * 3650};
    cs_cert_spec inter = {
        "certsync test intermediate", NULL, 0, 1, now - 86400 * 400, now + 86400 * 1800};
    cs_cert_spec leaf = {
        names && n_names ? names[0] : "leaf", names, n_names, 0, now + (time_t)from_days * 86400,
        now + (time_t)to_days * 86400};

    memset(c, 0, sizeof(*c));
    assert_int_equal(cs_key_generate(CS_KEY_EC256, &c->root_key), CS_OK);
    assert_int_equal(cs_key_generate(CS_KEY_EC256, &c->int_key), CS_OK);
    assert_int_equal(cs_key_generate(leaf_type, &c->leaf_key), CS_OK);
    assert_int_equal(cs_cert_issue(&root, c->root_key, NULL, c->root_key, &c->root), CS_OK);
    assert_int_equal(cs_cert_issue(&inter, c->int_key, c->root, c->root_key, &c->inter), CS_OK);
    assert_int_equal(cs_cert_issue(&leaf, c->leaf_key, c->inter, c->int_key, &c->leaf), CS_OK);
    {
        STACK_OF(X509) *is = sk_X509_new_null();

        sk_X509_push(is, c->inter);
        assert_int_equal(cs_bundle_new(c->leaf, is, c->leaf_key, &c->bundle), CS_OK);
        sk_X509_free(is);
    }
}

void cs_test_chain_free(cs_test_chain *c)
{
    cs_bundle_free(c->bundle);
    X509_free(c->root);
    X509_free(c->inter);
    X509_free(c->leaf);
    EVP_PKEY_free(c->root_key);
    EVP_PKEY_free(c->int_key);
    EVP_PKEY_free(c->leaf_key);
    memset(c, 0, sizeof(*c));
}

static char *made[256];
static int n_made;

/* Scratch directories go away when the test binary exits normally. */
static void remove_made(void)
{
    while (n_made > 0) {
        char *d = made[--n_made];

        cs_fs_remove_tree(d);
        free(d);
    }
}

char *cs_test_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char tmpl[4096];
    char *d;

    snprintf(tmpl, sizeof(tmpl), "%s/cs-%s-XXXXXX", base, tag);
    d = mkdtemp(tmpl);
    assert_non_null(d);
    if (n_made == 0)
        atexit(remove_made);
    if (n_made < 256 && getenv("CS_TEST_KEEP") == NULL)
        made[n_made++] = strdup(d);
    return strdup(d);
}

void cs_test_write_certs(const char *path, X509 *x, ...)
{
    FILE *f = fopen(path, "w");
    va_list ap;

    assert_non_null(f);
    va_start(ap, x);
    for (; x != NULL; x = va_arg(ap, X509 *))
        assert_true(PEM_write_X509(f, x));
    va_end(ap);
    fclose(f);
}

void cs_test_write_key(const char *path, EVP_PKEY *k)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_true(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL));
    fclose(f);
}

void cs_test_write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

const char *cs_test_path(const char *dir, const char *name)
{
    static char bufs[8][4096];
    static int i;
    char *b = bufs[i++ % 8];

    snprintf(b, 4096, "%s/%s", dir, name);
    return b;
}
