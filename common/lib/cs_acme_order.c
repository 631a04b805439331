/*
 * One ACME issuance (RFC 8555 7.4-7.5): an order, its authorizations proven
 * with a challenge, finalize with a CSR, the certificate downloaded. The
 * order in progress is kept in <store>/acme/<provider>/order-<cert>.json
 * (with the key of its CSR in order-<cert>.key, 0600) so that a sync that
 * dies between order and certificate is resumed by the next one.
 */
#include "cs_acme.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cs_challenge.h"
#include "cs_crypt.h"
#include "cs_fs.h"

#define POLL_LIMIT_S 300 /* an authorization or order still pending after this fails */

/* Clean-up calls may fail and set an error of their own: the one being reported stays. */
typedef struct {
    cs_rc code;
    char msg[1024];
} saved_error;

static void error_save(saved_error *e)
{
    e->code = cs_error_code();
    snprintf(e->msg, sizeof(e->msg), "%s", cs_error_last());
}

static void error_restore(const saved_error *e)
{
    if (e->code != CS_OK)
        cs_error_set(e->code, "%s", e->msg);
    else
        cs_error_clear();
}

/* ---- challenges: one row per type; dns-01 and tls-alpn-01 slot in here ---- */

typedef struct {
    const char *type;
    cs_acme_challenge id;
    cs_rc (*publish)(cs_acme *a, const char *domain, const char *token, const char *keyauthz);
    void (*withdraw)(cs_acme *a, const char *domain, const char *token);
    /* NULL, or wait until every published answer can be seen (DNS propagation) */
    cs_rc (*ready)(cs_acme *a, const char *domain, const char *token);
    const char *hint[2]; /* what to check when the CA refused: before and after the name */
} challenge_ops;

/* WEBROOT/.well-known/acme-challenge, entered without following a link (workers write there). */
static cs_rc webroot_dir(const char *webroot, int *fd)
{
    static const char *const steps[] = {".well-known", "acme-challenge"};
    int cur, next;
    size_t i;

    if ((cur = open(webroot, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return cs_error_set(CS_EIO, "webroot '%s': %s", webroot, strerror(errno));
    for (i = 0; i < 2; i++) {
        cs_rc rc = cs_fs_dir_enterat(cur, steps[i], 0755, &next);

        close(cur);
        if (rc != CS_OK)
            return cs_error_prefix("webroot '%s'", webroot);
        cur = next;
    }
    *fd = cur;
    return CS_OK;
}

static cs_rc http01_publish(cs_acme *a, const char *domain, const char *token, const char *ka)
{
    const char *webroot = cs_acme_provider(a)->webroot;
    int fd;
    cs_rc rc;

    if (cs_store_write_challenge(cs_acme_store(a), domain, "acme-challenge", token, ka) != CS_OK)
        return cs_error_code();
    if (webroot == NULL)
        return CS_OK;
    if (webroot_dir(webroot, &fd) != CS_OK)
        return cs_error_code();
    rc = cs_fs_write_at(fd, token, ka, strlen(ka), 0644, (gid_t)-1, CS_FS_SYNC);
    close(fd);
    return rc == CS_OK ? CS_OK : cs_error_prefix("webroot '%s'", webroot);
}

static void http01_withdraw(cs_acme *a, const char *domain, const char *token)
{
    const char *webroot = cs_acme_provider(a)->webroot;
    saved_error e;
    int fd;

    error_save(&e);
    cs_store_remove_challenge(cs_acme_store(a), domain, "acme-challenge", token);
    /* only the file: what a worker may have put at its name is not ours to walk */
    if (webroot && webroot_dir(webroot, &fd) == CS_OK) {
        unlinkat(fd, token, 0);
        close(fd);
    }
    error_restore(&e);
}

static void dns01_withdraw(cs_acme *a, const char *domain, const char *token)
{
    saved_error e;

    error_save(&e);
    cs_acme_dns01_withdraw(a, domain, token);
    error_restore(&e);
}

static void alpn_withdraw(cs_acme *a, const char *domain, const char *token)
{
    saved_error e;

    error_save(&e);
    cs_acme_alpn_withdraw(a, domain, token);
    error_restore(&e);
}

static const challenge_ops challenges[] = {
    {"http-01",
     CS_ACME_HTTP01,
     http01_publish,
     http01_withdraw,
     NULL,
     {"check that http://", "/.well-known/acme-challenge/ reaches a server answering from this "
                            "store (certsync_validation, CertSyncValidation) or the webroot"}},
    {"dns-01",
     CS_ACME_DNS01,
     cs_acme_dns01_publish,
     dns01_withdraw,
     cs_acme_dns01_ready,
     {"check that the TXT record _acme-challenge.", " is published where the CA resolves it"}},
    {"tls-alpn-01",
     CS_ACME_TLSALPN01,
     cs_acme_alpn_publish,
     alpn_withdraw,
     NULL,
     {"check that port 443 of ",
      " reaches nginx serving a certsync_certificate, or Apache serving a CertSyncCertificate "
      "with acme-tls/1 in its Protocols (their modules answer tls-alpn-01 in the handshake)"}},
};

static const challenge_ops *challenge_of(cs_acme_challenge id)
{
    size_t i;

    for (i = 0; i < sizeof(challenges) / sizeof(challenges[0]); i++)
        if (challenges[i].id == id)
            return &challenges[i];
    return NULL;
}

/* ---- the order kept in the store ---- */

static void state_file(char *buf, size_t size, const cs_cert_conf *cc, const char *ext)
{
    snprintf(buf, size, "order-%s.%s", cc->name, ext);
}

static json_t *state_load(cs_acme *a, int dir, const cs_cert_conf *cc)
{
    char file[96], *text = NULL;
    size_t len;
    json_t *j;

    state_file(file, sizeof(file), cc, "json");
    if (cs_fs_read_at(dir, file, 64 * 1024, cs_store_owner(cs_acme_store(a)), &text, &len) !=
        CS_OK) {
        cs_error_clear();
        return NULL;
    }
    j = json_loadb(text, len, 0, NULL);
    free(text);
    return json_is_string(json_object_get(j, "url")) ? j : (json_decref(j), NULL);
}

static cs_rc state_save(cs_acme *a, int dir, const cs_cert_conf *cc, const char *url)
{
    json_t *names = json_array(), *j;
    char file[96], *text;
    size_t i;
    cs_rc rc;

    for (i = 0; i < cc->n_domains; i++)
        json_array_append_new(names, json_string(cc->domains[i]));
    j = json_pack("{s:s,s:s,s:o,s:I}", "directory", cs_acme_provider(a)->directory, "url", url,
                  "names", names, "created", (json_int_t)time(NULL));
    text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
    json_decref(j);
    if (text == NULL)
        return cs_error_set(CS_ENOMEM, "out of memory");
    state_file(file, sizeof(file), cc, "json");
    rc = cs_fs_write_at(dir, file, text, strlen(text), 0600, (gid_t)-1, CS_FS_SYNC);
    free(text);
    return rc;
}

static void state_drop(int dir, const cs_cert_conf *cc)
{
    char file[96];
    saved_error e;

    error_save(&e);
    state_file(file, sizeof(file), cc, "json");
    cs_fs_remove_at(dir, file);
    state_file(file, sizeof(file), cc, "key");
    cs_fs_remove_at(dir, file);
    error_restore(&e);
}

/* The kept order is for exactly cc's names, from the CA configured now. */
static int same_order(cs_acme *a, json_t *st, const cs_cert_conf *cc)
{
    json_t *names = json_object_get(st, "names"), *v;
    const char *dir = json_string_value(json_object_get(st, "directory"));
    size_t i, j;

    if (dir == NULL || strcmp(dir, cs_acme_provider(a)->directory) != 0 ||
        json_array_size(names) != cc->n_domains)
        return 0;
    for (i = 0; i < cc->n_domains; i++) {
        int found = 0;

        json_array_foreach(names, j, v) found |=
            json_is_string(v) && strcmp(json_string_value(v), cc->domains[i]) == 0;
        if (!found)
            return 0;
    }
    return 1;
}

int cs_acme_order_pending(cs_acme *a, const cs_cert_conf *cc)
{
    json_t *st;
    int dir;

    if (cs_acme_area(a, &dir) != CS_OK) {
        cs_error_clear();
        return 0;
    }
    st = state_load(a, dir, cc);
    close(dir);
    json_decref(st);
    return st != NULL;
}

/*
 * CERTSYNC_ACME_STOP_AFTER=order|authorizations|finalize: a documented debugging aid that
 * stops a sync there, as a crash would, to test resumption.
 */
static cs_rc stop_after(const char *step, const char *url)
{
    const char *want = getenv("CERTSYNC_ACME_STOP_AFTER");

    if (want && strcmp(want, step) == 0)
        return cs_error_set(CS_EPROVIDER,
                            "stopped after the %s step of order %s, as CERTSYNC_ACME_STOP_AFTER "
                            "asks; the next sync resumes the order",
                            step, url);
    return CS_OK;
}

/* ---- polling ---- */

static void pause_for(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/*
 * POST-as-GET url until its status leaves "pending"/"processing", first after first_ms,
 * then as Retry-After says, else backing off from 250 ms to 4 s.
 */
static cs_rc poll(cs_acme *a, const char *url, const char *what, long first_ms, json_t **out)
{
    time_t end = time(NULL) + POLL_LIMIT_S;
    long wait_ms = 250;
    cs_http_response r;

    pause_for(first_ms);
    for (;;) {
        const char *status;
        long ra;

        if (cs_acme_post(a, url, NULL, what, out, &r) != CS_OK)
            return cs_error_code();
        status = json_string_value(json_object_get(*out, "status"));
        ra = cs_acme_retry_after(r.retry_after, -1);
        cs_http_response_clear(&r);
        if (status == NULL || (strcmp(status, "pending") != 0 && strcmp(status, "processing") != 0))
            return CS_OK;
        json_decref(*out);
        *out = NULL;
        if (time(NULL) >= end)
            return cs_error_set(CS_EPROVIDER,
                                "ACME CA: %s is still %s after %d seconds; the next sync tries "
                                "again",
                                what, status, POLL_LIMIT_S);
        pause_for(ra >= 0 ? (ra > 60 ? 60000 : ra * 1000) : wait_ms);
        if (wait_ms < 4000)
            wait_ms *= 2;
    }
}

/* ---- authorizations ---- */

/* A name being proven: the answer published for it, to poll and then withdraw. */
typedef struct {
    const char *url; /* the authorization (borrowed from the order) */
    char *domain;
    char *token; /* set once published: it is withdrawn at the end */
    char *curl;  /* the challenge's URL, to announce it */
} proof;

static json_t *pick_challenge(json_t *authz, const char *type)
{
    json_t *c;
    size_t i;

    json_array_foreach(json_object_get(authz, "challenges"), i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "type")) ?: "", type) == 0)
            return c;
    }
    return NULL;
}

/* Why an authorization failed: its challenge's problem document, and what to check. */
static cs_rc authz_failed(const char *domain, json_t *authz, const challenge_ops *ops)
{
    json_t *c = pick_challenge(authz, ops->type), *err = json_object_get(c, "error");
    const char *t = json_string_value(json_object_get(err, "type"));
    const char *d = json_string_value(json_object_get(err, "detail"));

    return cs_error_set(CS_EPROVIDER, "ACME CA: the %s challenge for '%s' failed: %s: %s; %s%s%s",
                        ops->type, domain, t ? t : "(no problem type)", d ? d : "(no detail)",
                        ops->hint[0], strncmp(domain, "*.", 2) ? domain : domain + 2, ops->hint[1]);
}

/* Publish the answer for a pending authorization and tell the CA it is there. */
/* Publish the answer for a pending authorization (announced to the CA later). */
static cs_rc respond(cs_acme *a, const challenge_ops *ops, json_t *authz, proof *p)
{
    json_t *c = pick_challenge(authz, ops->type);
    const char *token = json_string_value(json_object_get(c, "token"));
    const char *curl = json_string_value(json_object_get(c, "url"));
    char *ka = NULL;
    cs_rc rc;

    if (c == NULL || token == NULL || curl == NULL)
        return cs_error_set(CS_EPROVIDER,
                            "ACME CA: the authorization of '%s' offers no %s challenge", p->domain,
                            ops->type);
    if (!cs_challenge_token_valid(token, strlen(token)))
        return cs_error_set(CS_EPROVIDER, "ACME CA: the %s token for '%s' is not base64url",
                            ops->type, p->domain);
    rc = cs_acme_key_authorization(token, cs_acme_account_key(a), &ka);
    if (rc == CS_OK && ((p->token = strdup(token)) == NULL || (p->curl = strdup(curl)) == NULL))
        rc = cs_error_set(CS_ENOMEM, "out of memory");
    if (rc == CS_OK)
        rc = ops->publish(a, p->domain, token, ka);
    free(ka);
    return rc;
}

/* The answer can be seen (ready): tell the CA to look (RFC 8555 7.5.1). */
static cs_rc announce(cs_acme *a, const challenge_ops *ops, proof *p)
{
    json_t *ans = NULL;
    char what[320];
    cs_http_response r;
    cs_rc rc = ops->ready ? ops->ready(a, p->domain, p->token) : CS_OK;

    snprintf(what, sizeof(what), "challenge of '%s'", p->domain);
    if (rc == CS_OK && (rc = cs_acme_post(a, p->curl, "{}", what, &ans, &r)) == CS_OK)
        cs_http_response_clear(&r);
    json_decref(ans);
    return rc;
}

/* Look at one authorization: valid already (reused), or answer its challenge. */
static int asked_for(const cs_cert_conf *cc, const char *domain)
{
    size_t i;

    for (i = 0; i < cc->n_domains; i++)
        if (strcmp(cc->domains[i], domain) == 0)
            return 1;
    return 0;
}

static cs_rc start(cs_acme *a, const challenge_ops *ops, const cs_cert_conf *cc, proof *p,
                   int *started)
{
    json_t *authz = NULL;
    const char *domain, *status;
    char wild[300];
    cs_http_response r;
    cs_rc rc;

    *started = 0;
    if (cs_acme_post(a, p->url, NULL, "authorization", &authz, &r) != CS_OK)
        return cs_error_code();
    cs_http_response_clear(&r);
    domain = json_string_value(json_object_get(json_object_get(authz, "identifier"), "value"));
    status = json_string_value(json_object_get(authz, "status"));
    /* a wildcard's authorization names the base domain, with "wildcard": true (RFC 8555 7.1.4) */
    if (domain && json_is_true(json_object_get(authz, "wildcard")) &&
        snprintf(wild, sizeof(wild), "*.%s", domain) < (int)sizeof(wild))
        domain = wild;
    if (domain == NULL || status == NULL)
        rc = cs_error_set(CS_EPROVIDER, "ACME CA: the authorization %s has no identifier or status",
                          p->url);
    else if (!asked_for(cc, domain))
        rc = cs_error_set(CS_EPROVIDER,
                          "ACME CA: the order asks to prove '%s', which [cert %s] does not name",
                          domain, cc->name);
    else if ((p->domain = strdup(domain)) == NULL)
        rc = cs_error_set(CS_ENOMEM, "out of memory");
    else if (strcmp(status, "valid") == 0)
        rc = CS_OK;
    else if (strcmp(status, "pending") == 0 && (rc = respond(a, ops, authz, p)) == CS_OK)
        *started = 1;
    else if (strcmp(status, "pending") != 0)
        rc = authz_failed(p->domain, authz, ops);
    json_decref(authz);
    return rc;
}

/* Wait for the CA's verdict on one answered authorization. */
static cs_rc finish(cs_acme *a, const challenge_ops *ops, proof *p, long first_ms)
{
    json_t *done = NULL;
    char what[320];
    cs_rc rc;

    snprintf(what, sizeof(what), "authorization of '%s'", p->domain);
    rc = poll(a, p->url, what, first_ms, &done);
    if (rc == CS_OK && strcmp(json_string_value(json_object_get(done, "status")) ?: "", "valid"))
        rc = authz_failed(p->domain, done, ops);
    json_decref(done);
    return rc;
}

/*
 * Every answer is published and announced first, then the verdicts are
 * awaited: the CA validates the names in parallel. The answers are withdrawn
 * whatever happened.
 */
static cs_rc authorize_all(cs_acme *a, const cs_cert_conf *cc, json_t *order)
{
    const challenge_ops *ops = challenge_of(cs_acme_provider(a)->challenge);
    json_t *urls = json_object_get(order, "authorizations"), *u;
    size_t i, n = json_array_size(urls);
    proof *p = calloc(n ? n : 1, sizeof(*p));
    int *started = calloc(n ? n : 1, sizeof(int));
    saved_error e;
    long first_ms = 150;
    cs_rc rc = p && started ? CS_OK : cs_error_set(CS_ENOMEM, "out of memory");

    json_array_foreach(urls, i, u)
    {
        if (rc == CS_OK && !json_is_string(u))
            rc = cs_error_set(CS_EPROVIDER, "ACME CA: an order lists a non-URL authorization");
        if (rc == CS_OK) {
            p[i].url = json_string_value(u);
            rc = start(a, ops, cc, &p[i], &started[i]);
        }
    }
    /* every answer is out before the first wait for one to be seen (DNS propagates them all) */
    for (i = 0; i < n && rc == CS_OK; i++)
        if (started[i])
            rc = announce(a, ops, &p[i]);
    /* a CA validates in about the time of a request or two: the first look waits that long */
    for (i = 0; i < n && rc == CS_OK; i++)
        if (started[i]) {
            rc = finish(a, ops, &p[i], first_ms);
            first_ms = 0;
        }
    error_save(&e);
    for (i = 0; p && i < n; i++) {
        if (p[i].token)
            ops->withdraw(a, p[i].domain, p[i].token);
        free(p[i].domain);
        free(p[i].token);
        free(p[i].curl);
    }
    error_restore(&e);
    free(p);
    free(started);
    return rc;
}

/* ---- finalize ---- */

static cs_rc key_pem(EVP_PKEY *key, char **pem, size_t *len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *p;
    long n;

    if (bio == NULL || !PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) ||
        (n = BIO_get_mem_data(bio, &p)) <= 0 || (*pem = malloc((size_t)n + 1)) == NULL) {
        BIO_free(bio);
        return cs_error_set(CS_ERR, "cannot encode the certificate key: %s", cs_error_openssl());
    }
    memcpy(*pem, p, (size_t)n);
    (*pem)[n] = '\0';
    *len = (size_t)n;
    OPENSSL_cleanse(p, (size_t)n);
    BIO_free(bio);
    return CS_OK;
}

/* key is of type t (a changed key-type makes reuse-key take a new key once). */
static int key_is(EVP_PKEY *key, cs_key_type t)
{
    static const struct {
        cs_key_type t;
        const char *kind;
        int bits;
    } kinds[] = {{CS_KEY_RSA2048, "RSA", 2048},
                 {CS_KEY_RSA3072, "RSA", 3072},
                 {CS_KEY_RSA4096, "RSA", 4096},
                 {CS_KEY_EC256, "EC", 256},
                 {CS_KEY_EC384, "EC", 384}};
    size_t i;

    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (kinds[i].t == t)
            return EVP_PKEY_is_a(key, kinds[i].kind) && EVP_PKEY_get_bits(key) == kinds[i].bits;
    return 0;
}

/* The key of the CSR: kept from a resumed order, the current version's (reuse-key), or new. */
static cs_rc cert_key(cs_acme *a, int dir, const cs_cert_conf *cc, char **pem, size_t *len)
{
    char file[96];
    cs_bundle *cur = NULL;
    EVP_PKEY *key = NULL;
    cs_rc rc;

    state_file(file, sizeof(file), cc, "key");
    if (cs_fs_read_at(dir, file, 64 * 1024, cs_store_owner(cs_acme_store(a)), pem, len) == CS_OK)
        return CS_OK;
    cs_error_clear();
    if (cc->reuse_key && cs_store_load(cs_acme_store(a), cc->name, 0, &cur) == CS_OK) {
        if (key_is(cs_bundle_key(cur), cc->key_type)) {
            key = cs_bundle_key(cur);
            EVP_PKEY_up_ref(key);
        }
        cs_bundle_free(cur);
    }
    cs_error_clear();
    rc = key ? CS_OK : cs_key_generate(cc->key_type, &key);
    if (rc == CS_OK)
        rc = key_pem(key, pem, len);
    EVP_PKEY_free(key);
    if (rc == CS_OK &&
        (rc = cs_fs_write_at(dir, file, *pem, *len, 0600, (gid_t)-1, CS_FS_SYNC)) != CS_OK) {
        OPENSSL_cleanse(*pem, *len);
        free(*pem);
    }
    return rc;
}

static char *csr_b64(const cs_cert_conf *cc, EVP_PKEY *key)
{
    X509_REQ *req = X509_REQ_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *ext = NULL;
    char *san = NULL, *out = NULL;
    unsigned char *der = NULL;
    size_t i, n = 0;
    int len;

    for (i = 0; i < cc->n_domains; i++)
        n += strlen(cc->domains[i]) + 6;
    if ((san = calloc(1, n + 1)) != NULL)
        for (i = 0; i < cc->n_domains; i++)
            sprintf(san + strlen(san), "%sDNS:%s", i ? "," : "", cc->domains[i]);
    /* the names are in the SAN; a CN holds at most 64 characters (RFC 5280), else none */
    if (req && exts && san && X509_REQ_set_version(req, 0) &&
        (strlen(cc->domains[0]) > 64 ||
         X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_UTF8,
                                    (const unsigned char *)cc->domains[0], -1, -1, 0)) &&
        (ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san)) &&
        sk_X509_EXTENSION_push(exts, ext) && X509_REQ_add_extensions(req, exts) &&
        X509_REQ_set_pubkey(req, key) && X509_REQ_sign(req, key, EVP_sha256()) &&
        (len = i2d_X509_REQ(req, &der)) > 0)
        out = cs_acme_b64url(der, (size_t)len);
    OPENSSL_free(der);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    free(san);
    return out;
}

/* POST the CSR to the order's finalize URL; *ans is the order as the CA answers it. */
static cs_rc finalize(cs_acme *a, json_t *order, EVP_PKEY *key, const cs_cert_conf *cc,
                      json_t **ans)
{
    const char *url = json_string_value(json_object_get(order, "finalize"));
    char *csr = csr_b64(cc, key), *payload = NULL;
    cs_http_response r;
    cs_rc rc;

    *ans = NULL;
    if (url == NULL || csr == NULL || asprintf(&payload, "{\"csr\":\"%s\"}", csr) < 0)
        rc = cs_error_set(CS_ERR, "cannot make the CSR for '%s': %s", cc->name,
                          url ? cs_error_openssl() : "the order has no finalize URL");
    else if ((rc = cs_acme_post(a, url, payload, "finalize", ans, &r)) == CS_OK)
        cs_http_response_clear(&r);
    if (rc == CS_OK && *ans == NULL)
        rc = cs_error_set(CS_EPROVIDER, "ACME CA: finalize answered with no order");
    free(payload);
    free(csr);
    return rc;
}

/* ---- the order ---- */

/* The ARI id of the current version, which a renewal replaces (RFC 9773 5); NULL: none. */
static char *replaces(cs_acme *a, const cs_cert_conf *cc)
{
    cs_bundle *cur = NULL;
    char *id = NULL;

    if (cs_acme_resource(a, "renewalInfo") == NULL ||
        cs_store_load(cs_acme_store(a), cc->name, 0, &cur) != CS_OK ||
        cs_acme_ari_cert_id(cs_bundle_leaf(cur), &id) != CS_OK)
        cs_error_clear();
    cs_bundle_free(cur);
    return id;
}

static cs_rc post_order(cs_acme *a, const cs_cert_conf *cc, const char *old, json_t **order,
                        cs_http_response *r)
{
    json_t *ids = json_array(), *req;
    char *payload;
    size_t i;
    cs_rc rc;

    for (i = 0; i < cc->n_domains; i++)
        json_array_append_new(ids, json_pack("{s:s,s:s}", "type", "dns", "value", cc->domains[i]));
    req = json_pack("{s:o}", "identifiers", ids);
    if (req && old)
        json_object_set_new(req, "replaces", json_string(old));
    payload = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (payload == NULL)
        return cs_error_set(CS_ENOMEM, "out of memory");
    rc = cs_acme_post(a, cs_acme_resource(a, "newOrder"), payload, "new order", order, r);
    free(payload);
    return rc;
}

static cs_rc new_order(cs_acme *a, const cs_cert_conf *cc, char **url, json_t **order)
{
    char *old = replaces(a, cc);
    cs_http_response r;
    cs_rc rc = post_order(a, cc, old, order, &r);

    /* a CA that will not have it replaced (replaced already, another account's): a plain order */
    if (rc == CS_EPROVIDER && old && r.status >= 400 && r.status < 500 && r.status != 429)
        rc = post_order(a, cc, NULL, order, &r);
    free(old);
    if (rc == CS_OK && (r.location[0] == '\0' || *order == NULL))
        rc = cs_error_set(CS_EPROVIDER, "ACME CA: newOrder answered with no Location or order");
    if (rc == CS_OK && (*url = strdup(r.location)) == NULL)
        rc = cs_error_set(CS_ENOMEM, "out of memory");
    cs_http_response_clear(&r);
    return rc;
}

/*
 * The kept order, when there is one for cc's names and the CA still has it
 * usable; else *url stays NULL and the kept state is dropped. A CA that does
 * not answer (or answers 5xx or 429) fails the sync and keeps the state.
 */
static cs_rc resume_order(cs_acme *a, int dir, const cs_cert_conf *cc, char **url, json_t **order)
{
    json_t *st = state_load(a, dir, cc);
    const char *kept = json_string_value(json_object_get(st, "url")), *status;
    cs_http_response r = {0};
    cs_rc rc = CS_OK;
    long answered;

    if (st && same_order(a, st, cc)) {
        rc = cs_acme_post(a, kept, NULL, "the kept order", order, &r);
        status = json_string_value(json_object_get(*order, "status"));
        if (rc == CS_OK && status && strcmp(status, "invalid") != 0 &&
            (*url = strdup(kept)) == NULL)
            rc = cs_error_set(CS_ENOMEM, "out of memory");
        answered = r.status;
        cs_http_response_clear(&r);
        if (rc != CS_OK && (answered == 0 || answered == 429 || answered >= 500)) {
            json_decref(st);
            return rc;
        }
    }
    if (*url == NULL) {
        json_decref(*order);
        *order = NULL;
        if (st)
            state_drop(dir, cc);
    }
    cs_error_clear();
    json_decref(st);
    return CS_OK;
}

/* POST-as-GET a certificate URL; r keeps the chain and its Link headers. */
static cs_rc fetch_chain(cs_acme *a, const char *url, cs_http_response *r)
{
    json_t *none = NULL;
    cs_rc rc = cs_acme_post(a, url, NULL, "certificate download", &none, r);

    json_decref(none);
    return rc;
}

/* With preferred-chain, the first offered chain from that CA, else r stays the default. */
static void prefer_chain(cs_acme *a, cs_http_response *r)
{
    const char *want = cs_acme_provider(a)->preferred_chain;
    char urls[8][1024];
    size_t n, i;

    if (want == NULL || cs_acme_chain_from(r->body, r->len, want))
        return;
    n = cs_acme_alternates(r->links, urls, 8);
    for (i = 0; i < n; i++) {
        cs_http_response alt;

        if (fetch_chain(a, urls[i], &alt) != CS_OK) {
            cs_error_clear(); /* the default chain is good too */
            continue;
        }
        if (cs_acme_chain_from(alt.body, alt.len, want)) {
            cs_http_response_clear(r);
            *r = alt;
            return;
        }
        cs_http_response_clear(&alt);
    }
}

static cs_rc download(cs_acme *a, json_t *order, const char *kpem, size_t klen, cs_bundle **b)
{
    const char *url = json_string_value(json_object_get(order, "certificate"));
    cs_http_response r;
    cs_rc rc;

    if (url == NULL)
        return cs_error_set(CS_EPROVIDER, "ACME CA: a valid order has no certificate URL");
    rc = fetch_chain(a, url, &r);
    if (rc == CS_OK) {
        prefer_chain(a, &r);
        rc = cs_bundle_load_pem(r.body, r.len, kpem, klen, "the certificate from the ACME CA", b);
    }
    cs_http_response_clear(&r);
    return rc;
}

static const char *status_of(json_t *order)
{
    return json_string_value(json_object_get(order, "status")) ?: "?";
}

static cs_rc order_failed(json_t *order, const char *url)
{
    json_t *err = json_object_get(order, "error");
    const char *t = json_string_value(json_object_get(err, "type"));
    const char *d = json_string_value(json_object_get(err, "detail"));

    return cs_error_set(CS_EPROVIDER, "ACME CA: the order %s is %s: %s: %s", url, status_of(order),
                        t ? t : "(no problem type)", d ? d : "(no detail)");
}

static EVP_PKEY *parse_key(const char *pem, size_t len)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *k = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;

    BIO_free(bio);
    return k;
}

/* A finalized order's CSR key must be the one kept with it: none is made up. */
static cs_rc kept_key(cs_acme *a, int dir, const cs_cert_conf *cc, char **pem, size_t *len)
{
    char file[96];

    state_file(file, sizeof(file), cc, "key");
    if (cs_fs_read_at(dir, file, 64 * 1024, cs_store_owner(cs_acme_store(a)), pem, len) == CS_OK)
        return CS_OK;
    return cs_error_set(CS_EPROVIDER,
                        "the order of '%s' was finalized but the key of its CSR is gone; the "
                        "next sync places a new order",
                        cc->name);
}

static cs_rc finalize_with_key(cs_acme *a, int dir, const cs_cert_conf *cc, const char *url,
                               json_t **order, char **kpem, size_t *klen)
{
    json_t *ans = NULL, *again = NULL;
    EVP_PKEY *key;
    cs_rc rc = cert_key(a, dir, cc, kpem, klen);

    if (rc != CS_OK)
        return rc;
    if ((key = parse_key(*kpem, *klen)) == NULL)
        return cs_error_set(CS_EIO, "the kept key of the order of '%s' does not load", cc->name);
    rc = finalize(a, *order, key, cc, &ans);
    /* finalized at once after the last authorization: the CA may not have caught up */
    if (rc == CS_EPROVIDER && strstr(cs_error_last(), "orderNotReady") &&
        poll(a, url, "order", 500, &again) == CS_OK && strcmp(status_of(again), "ready") == 0)
        rc = finalize(a, again, key, cc, &ans);
    EVP_PKEY_free(key);
    json_decref(again);
    if (rc != CS_OK)
        return rc;
    json_decref(*order);
    *order = ans;
    if ((rc = stop_after("finalize", url)) != CS_OK)
        return rc;
    if (strcmp(status_of(*order), "processing") != 0)
        return CS_OK;
    json_decref(*order);
    *order = NULL;
    return poll(a, url, "order", 100, order);
}

/* Authorize (pending), finalize (ready), wait (processing) and download (valid). */
static cs_rc complete(cs_acme *a, int dir, const cs_cert_conf *cc, const char *url, json_t **order,
                      cs_bundle **b)
{
    char *kpem = NULL;
    size_t klen = 0;
    cs_rc rc = CS_OK;

    if (strcmp(status_of(*order), "pending") == 0) {
        rc = authorize_all(a, cc, *order);
        if (rc == CS_OK)
            rc = stop_after("authorizations", url);
        /* every authorization is valid: the order is ready (RFC 8555 7.1.6), finalize now */
        if (rc == CS_OK)
            json_object_set_new(*order, "status", json_string("ready"));
    }
    if (rc == CS_OK && strcmp(status_of(*order), "ready") == 0)
        rc = finalize_with_key(a, dir, cc, url, order, &kpem, &klen);
    else if (rc == CS_OK && (strcmp(status_of(*order), "processing") == 0 ||
                             strcmp(status_of(*order), "valid") == 0)) {
        rc = kept_key(a, dir, cc, &kpem, &klen);
        if (rc == CS_OK && strcmp(status_of(*order), "processing") == 0) {
            json_decref(*order);
            *order = NULL;
            rc = poll(a, url, "order", 0, order);
        }
    }
    if (rc == CS_OK && strcmp(status_of(*order), "valid") != 0)
        rc = order_failed(*order, url);
    if (rc == CS_OK)
        rc = download(a, *order, kpem, klen, b);
    if (kpem) {
        OPENSSL_cleanse(kpem, klen);
        free(kpem);
    }
    return rc;
}

cs_rc cs_acme_issue(cs_acme *a, const cs_cert_conf *cc, cs_bundle **b)
{
    char *url = NULL;
    json_t *order = NULL;
    int dir;
    cs_rc rc;

    *b = NULL;
    if (cs_acme_ready(a) != CS_OK || cs_acme_area(a, &dir) != CS_OK)
        return cs_error_code();
    rc = resume_order(a, dir, cc, &url, &order);
    if (rc == CS_OK && url == NULL) {
        rc = new_order(a, cc, &url, &order);
        if (rc == CS_OK)
            rc = state_save(a, dir, cc, url);
        if (rc == CS_OK)
            rc = stop_after("order", url);
    }
    if (rc == CS_OK)
        rc = complete(a, dir, cc, url, &order, b);
    /* an order that failed for good is forgotten; one cut short is resumed next time */
    if (rc == CS_OK || (order && strcmp(status_of(order), "invalid") == 0))
        state_drop(dir, cc);
    close(dir);
    json_decref(order);
    free(url);
    return rc == CS_OK ? CS_OK : cs_error_prefix("[cert %s]", cc->name);
}
