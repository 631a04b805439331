#include "cs_localca.h"

#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
#include <unistd.h>

#include "cs_crypt.h"
#include "cs_fs.h"

#define PATH_SZ 4096

static cs_rc save_pem(const char *dir, const char *file, X509 *x, EVP_PKEY *k)
{
    char path[PATH_SZ], *p;
    BIO *bio = BIO_new(BIO_s_mem());
    long n;
    cs_rc rc;

    if (bio == NULL || (x && !PEM_write_bio_X509(bio, x)) ||
        (k && !PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL))) {
        BIO_free(bio);
        return cs_error_set(CS_ERR, "cannot encode the local CA: %s", cs_error_openssl());
    }
    n = BIO_get_mem_data(bio, &p);
    rc = cs_fs_join(path, sizeof(path), dir, file);
    if (rc == CS_OK)
        rc = cs_fs_write_atomic(path, p, (size_t)n, k ? 0600 : 0644);
    OPENSSL_cleanse(p, (size_t)n);
    BIO_free(bio);
    return rc;
}

static cs_rc load_pair(const char *dir, const char *cert, const char *key, X509 **x, EVP_PKEY **k)
{
    char cpath[PATH_SZ], kpath[PATH_SZ];
    FILE *f;

    if (cs_fs_join(cpath, sizeof(cpath), dir, cert) != CS_OK ||
        cs_fs_join(kpath, sizeof(kpath), dir, key) != CS_OK)
        return cs_error_code();
    f = fopen(cpath, "r");
    *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    f = fopen(kpath, "r");
    *k = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    if (*x == NULL || *k == NULL) {
        X509_free(*x);
        EVP_PKEY_free(*k);
        return cs_error_set(CS_EIO,
                            "the local CA in '%s' is damaged ('%s' or '%s' unreadable); move "
                            "the directory away to create a new CA",
                            dir, cert, key);
    }
    return CS_OK;
}

static cs_rc create_ca(const char *dir, long lifetime)
{
    time_t now = time(NULL);
    cs_cert_spec root = {"certsync local root CA", NULL, 0, 1, now - 3600, now + lifetime};
    cs_cert_spec inter = {"certsync local issuing CA", NULL, 0, 1, now - 3600, now + lifetime};
    EVP_PKEY *rk = NULL, *ik = NULL;
    X509 *rc_ = NULL, *ic = NULL;
    cs_rc rc;

    rc = cs_key_generate(CS_KEY_EC256, &rk);
    if (rc == CS_OK)
        rc = cs_key_generate(CS_KEY_EC256, &ik);
    if (rc == CS_OK)
        rc = cs_cert_issue(&root, rk, NULL, rk, &rc_);
    if (rc == CS_OK)
        rc = cs_cert_issue(&inter, ik, rc_, rk, &ic);
    /* keys first: a cert without its key on disk would look like a damaged CA */
    if (rc == CS_OK)
        rc = save_pem(dir, "root.key", NULL, rk);
    if (rc == CS_OK)
        rc = save_pem(dir, "issuer.key", NULL, ik);
    if (rc == CS_OK)
        rc = save_pem(dir, "issuer.pem", ic, NULL);
    if (rc == CS_OK)
        rc = save_pem(dir, "root.pem", rc_, NULL);
    EVP_PKEY_free(rk);
    EVP_PKEY_free(ik);
    X509_free(rc_);
    X509_free(ic);
    return rc;
}

cs_rc cs_localca_ensure(cs_store *s, long ca_lifetime)
{
    char dir[PATH_SZ], path[PATH_SZ];
    int fd;
    cs_rc rc = CS_OK;

    if (cs_store_area(s, "local-ca", dir, sizeof(dir)) != CS_OK ||
        cs_fs_join(path, sizeof(path), dir, ".lock") != CS_OK)
        return cs_error_code();
    fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX) < 0) {
        int e = errno;
        struct passwd pwd, *pw = NULL;
        char buf[4096];

        /* _r: the servers sync on a thread of their own */
        getpwuid_r(geteuid(), &pwd, buf, sizeof(buf), &pw);

        if (fd >= 0)
            close(fd);
        /* a server's in-process sync runs as its worker user: say who was refused */
        return cs_error_set(CS_EIO,
                            "cannot lock the local CA's '%s' as user %s (uid %ld): %s; the local "
                            "CA belongs to the store's owner: renew as that user (`certsync "
                            "sync` as root drops to [store] owner) or as root",
                            path, pw ? pw->pw_name : "?", (long)geteuid(), strerror(e));
    }
    /* root.pem is written last, so its presence means the CA is complete */
    if (cs_fs_join(path, sizeof(path), dir, "root.pem") == CS_OK && access(path, F_OK) != 0)
        rc = create_ca(dir, ca_lifetime > 0 ? ca_lifetime : 10L * 365 * 86400);
    close(fd);
    return rc;
}

cs_rc cs_localca_issue(cs_store *s, const cs_cert_conf *cc, long ca_lifetime, cs_bundle **out)
{
    char dir[PATH_SZ];
    time_t now = time(NULL);
    cs_cert_spec leaf = {cc->domains[0], (const char *const *)cc->domains,
                         cc->n_domains,  0,
                         now - 60,       now + cc->lifetime};
    STACK_OF(X509) *chain = NULL;
    EVP_PKEY *ik = NULL, *key = NULL;
    X509 *ic = NULL, *x = NULL;
    cs_rc rc;

    rc = cs_localca_ensure(s, ca_lifetime);
    if (rc == CS_OK)
        rc = cs_store_area(s, "local-ca", dir, sizeof(dir));
    if (rc == CS_OK)
        rc = load_pair(dir, "issuer.pem", "issuer.key", &ic, &ik);
    if (rc == CS_OK)
        rc = cs_key_generate(cc->key_type, &key);
    if (rc == CS_OK) {
        /* a leaf never outlives its issuer */
        time_t ca_end;
        struct tm tm;

        if (ASN1_TIME_to_tm(X509_get0_notAfter(ic), &tm) == 1 &&
            (ca_end = timegm(&tm)) < leaf.not_after)
            leaf.not_after = ca_end;
        rc = cs_cert_issue(&leaf, key, ic, ik, &x);
    }
    if (rc == CS_OK) {
        chain = sk_X509_new_null();
        if (chain == NULL || sk_X509_push(chain, ic) <= 0)
            rc = cs_error_set(CS_ENOMEM, "out of memory building the chain of '%s'",
                              leaf.common_name);
        else
            rc = cs_bundle_new(x, chain, key, out);
        sk_X509_free(chain);
    }
    X509_free(x);
    X509_free(ic);
    EVP_PKEY_free(ik);
    EVP_PKEY_free(key);
    if (rc != CS_OK)
        cs_error_prefix("local CA, issuing for '%s'", cc->name);
    return rc;
}

/* The basic response for id: good or revoked now, valid until next, signed by ic/ik. */
static OCSP_BASICRESP *ocsp_basic(OCSP_CERTID *id, int revoked, time_t now, X509 *ic, EVP_PKEY *ik)
{
    OCSP_BASICRESP *bs = OCSP_BASICRESP_new();
    ASN1_TIME *thisupd = ASN1_TIME_set(NULL, now - 60);
    ASN1_TIME *nextupd = ASN1_TIME_set(NULL, now + CS_LOCALCA_OCSP_VALIDITY);
    ASN1_TIME *revtime = revoked ? ASN1_TIME_set(NULL, now - 60) : NULL;
    int ok = bs && thisupd && nextupd && (!revoked || revtime);

    ok = ok && OCSP_basic_add1_status(bs, id,
                                      revoked ? V_OCSP_CERTSTATUS_REVOKED : V_OCSP_CERTSTATUS_GOOD,
                                      revoked ? OCSP_REVOKED_STATUS_UNSPECIFIED : 0, revtime,
                                      thisupd, nextupd) != NULL;
    ok = ok && OCSP_basic_sign(bs, ic, ik, EVP_sha256(), NULL, OCSP_NOCERTS | OCSP_RESPID_KEY) == 1;
    ASN1_TIME_free(thisupd);
    ASN1_TIME_free(nextupd);
    ASN1_TIME_free(revtime);
    if (!ok) {
        OCSP_BASICRESP_free(bs);
        return NULL;
    }
    return bs;
}

static cs_rc ocsp_encode(OCSP_BASICRESP *bs, char **der, size_t *len)
{
    OCSP_RESPONSE *resp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
    unsigned char *p = NULL;
    int n = resp ? i2d_OCSP_RESPONSE(resp, &p) : -1;

    OCSP_RESPONSE_free(resp);
    if (n <= 0)
        return cs_error_set(CS_ERR, "cannot encode an OCSP answer: %s", cs_error_openssl());
    *der = malloc((size_t)n);
    if (*der)
        memcpy(*der, p, (size_t)n);
    OPENSSL_free(p);
    *len = (size_t)n;
    return *der ? CS_OK : cs_error_set(CS_ENOMEM, "out of memory");
}

cs_rc cs_localca_ocsp(cs_store *s, const cs_bundle *b, int revoked, time_t now, char **der,
                      size_t *len)
{
    char dir[PATH_SZ];
    EVP_PKEY *ik = NULL;
    X509 *ic = NULL, *leaf = cs_bundle_leaf(b);
    OCSP_CERTID *id = NULL;
    OCSP_BASICRESP *bs = NULL;
    cs_rc rc;

    *der = NULL;
    *len = 0;
    rc = cs_store_area(s, "local-ca", dir, sizeof(dir));
    if (rc == CS_OK)
        rc = load_pair(dir, "issuer.pem", "issuer.key", &ic, &ik);
    if (rc == CS_OK && (X509_check_issued(ic, leaf) != X509_V_OK || X509_verify(leaf, ik) != 1))
        rc = cs_error_set(CS_EBADCERT,
                          "the local CA in '%s' did not issue this certificate (was the CA "
                          "made anew?): it cannot answer OCSP for it; `certsync sync --force` "
                          "issues one it can",
                          dir);
    if (rc == CS_OK && (id = OCSP_cert_to_id(EVP_sha1(), leaf, ic)) == NULL)
        rc = cs_error_set(CS_ENOMEM, "out of memory");
    if (rc == CS_OK && (bs = ocsp_basic(id, revoked, now, ic, ik)) == NULL)
        rc =
            cs_error_set(CS_ERR, "the local CA cannot sign an OCSP answer: %s", cs_error_openssl());
    if (rc == CS_OK)
        rc = ocsp_encode(bs, der, len);
    OCSP_BASICRESP_free(bs);
    OCSP_CERTID_free(id);
    X509_free(ic);
    EVP_PKEY_free(ik);
    return rc;
}
