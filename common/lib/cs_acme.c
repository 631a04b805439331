/*
 * The ACME protocol over libcurl: the directory, nonces, signed POSTs whose
 * errors are the CA's problem documents, and the account (RFC 8555 7.1-7.3).
 */
#include "cs_acme.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cs_fs.h"

#define ACME_NONCE_RETRIES 10  /* badNonce is normal (pebble rejects 5 % on purpose) */
#define ACME_TIMEOUT_MS 30000L /* per request */

struct cs_acme {
    const cs_provider_conf *pv;
    cs_store *s;
    json_t *dir;          /* the directory */
    EVP_PKEY *key;        /* the account key */
    char *kid;            /* the account URL */
    char nonce[128];      /* the newest Replay-Nonce, "" when used */
    unsigned requests;    /* sent through this handle */
    int registered_again; /* once per handle, after the CA said accountDoesNotExist */
};

cs_rc cs_acme_new(const cs_provider_conf *pv, cs_store *s, cs_acme **out)
{
    cs_acme *a = calloc(1, sizeof(*a));

    if (a == NULL)
        return cs_error_set(CS_ENOMEM, "out of memory");
    a->pv = pv;
    a->s = s;
    *out = a;
    return CS_OK;
}

void cs_acme_free(cs_acme *a)
{
    if (a == NULL)
        return;
    json_decref(a->dir);
    EVP_PKEY_free(a->key);
    free(a->kid);
    free(a);
}

EVP_PKEY *cs_acme_account_key(const cs_acme *a)
{
    return a->key;
}

const char *cs_acme_resource(const cs_acme *a, const char *name)
{
    return json_string_value(json_object_get(a->dir, name));
}

const cs_provider_conf *cs_acme_provider(const cs_acme *a)
{
    return a->pv;
}

cs_store *cs_acme_store(const cs_acme *a)
{
    return a->s;
}

unsigned cs_acme_requests(const cs_acme *a)
{
    return a->requests;
}

long cs_acme_retry_after(const char *header, long dflt)
{
    char *end;
    long v;
    time_t t;

    if (header == NULL || header[0] == '\0')
        return dflt;
    v = strtol(header, &end, 10);
    if (end != header && *end == '\0')
        return v < 0 ? dflt : v;
    t = curl_getdate(header, NULL);
    if (t == (time_t)-1)
        return dflt;
    return t > time(NULL) ? (long)(t - time(NULL)) : 0;
}

static cs_rc perform(cs_acme *a, const char *method, const char *url, const char *body,
                     cs_http_response *resp)
{
    static const char *const names[] = {"Content-Type", "User-Agent"};
    static const char *const values[] = {"application/jose+json", "certsync"};
    /* the Content-Type of a JWS only on a body */
    cs_kv hdrs = {(char **)names + !body, (char **)values + !body, body ? 2 : 1, 0};
    cs_http_request req = {0};

    req.method = method;
    req.url = url;
    req.headers = &hdrs;
    req.body = body;
    req.body_len = body ? strlen(body) : 0;
    req.ca_file = a->pv->ca_file;
    req.connect_timeout_ms = 10000;
    req.timeout_ms = ACME_TIMEOUT_MS;
    req.env_proxy = 1;
    a->requests++;
    if (cs_http_perform(&req, resp) != CS_OK)
        return cs_error_code();
    if (resp->replay_nonce[0])
        snprintf(a->nonce, sizeof(a->nonce), "%s", resp->replay_nonce);
    if (resp->transport_error)
        return cs_error_set(CS_EPROVIDER, "ACME CA: %s %s failed: %s; %s", method, url, resp->error,
                            strstr(resp->error, "certificate") || strstr(resp->error, "SSL")
                                ? "a private CA's HTTPS certificate goes in ca-file"
                                : "check the directory URL and that the CA is reachable");
    if (resp->too_large)
        return cs_error_set(CS_EPROVIDER, "ACME CA: the answer of %s is too large", url);
    return CS_OK;
}

static int is_json(const cs_http_response *r)
{
    return strncasecmp(r->content_type, "application/json", 16) == 0 ||
           strncasecmp(r->content_type, "application/problem+json", 24) == 0;
}

/* The problem document as a sentence: type, detail and the subproblems' identifiers. */
static cs_rc problem(const char *what, const char *url, const cs_http_response *r, json_t *j)
{
    const char *type = json_string_value(json_object_get(j, "type"));
    const char *detail = json_string_value(json_object_get(j, "detail"));
    char sub[512] = "", wait[96] = "";
    size_t i, n = 0;
    json_t *sp;

    json_array_foreach(json_object_get(j, "subproblems"), i, sp)
    {
        const char *id =
            json_string_value(json_object_get(json_object_get(sp, "identifier"), "value"));
        const char *d = json_string_value(json_object_get(sp, "detail"));

        if (n < sizeof(sub))
            n += (size_t)snprintf(sub + n, sizeof(sub) - n, "; '%s': %s", id ? id : "?",
                                  d ? d : "?");
    }
    if (type == NULL)
        return cs_error_set(CS_EPROVIDER,
                            "ACME CA: %s: %s answered HTTP %ld with no problem document", what, url,
                            r->status);
    if (r->status == 429 || r->retry_after[0])
        snprintf(wait, sizeof(wait), " (the CA asks to wait %ld seconds before trying again)",
                 cs_acme_retry_after(r->retry_after, 0));
    return cs_error_set(CS_EPROVIDER, "ACME CA: %s: HTTP %ld %s: %s%s%s", what, r->status, type,
                        detail ? detail : "(no detail)", sub, wait);
}

static cs_rc get_nonce(cs_acme *a)
{
    const char *url = cs_acme_resource(a, "newNonce");
    cs_http_response r;
    cs_rc rc;

    if (a->nonce[0])
        return CS_OK;
    if (url == NULL)
        return cs_error_set(CS_EPROVIDER, "ACME CA: the directory %s has no newNonce",
                            a->pv->directory);
    rc = perform(a, "GET", url, NULL, &r);
    if (rc == CS_OK && a->nonce[0] == '\0')
        rc = cs_error_set(CS_EPROVIDER, "ACME CA: %s answered HTTP %ld without a Replay-Nonce", url,
                          r.status);
    cs_http_response_clear(&r);
    return rc;
}

static int problem_is(json_t *j, const char *type)
{
    const char *t = json_string_value(json_object_get(j, "type"));

    return t && strncmp(t, "urn:ietf:params:acme:error:", 27) == 0 && strcmp(t + 27, type) == 0;
}

enum { RETRY_NONE, RETRY_NONCE, RETRY_ACCOUNT };

/* One signed POST; *retry says why it is worth another (a refused nonce, a forgotten account). */
static cs_rc post_once(cs_acme *a, const char *url, const char *payload, json_t **json,
                       cs_http_response *resp, int *retry)
{
    char *body = NULL, nonce[128];

    *retry = 0;
    if (get_nonce(a) != CS_OK)
        return cs_error_code();
    snprintf(nonce, sizeof(nonce), "%s", a->nonce);
    a->nonce[0] = '\0'; /* a nonce is good once */
    if (cs_acme_jws(a->key, a->kid, nonce, url, payload, &body) != CS_OK)
        return cs_error_code();
    if (perform(a, "POST", url, body, resp) != CS_OK) {
        free(body);
        return cs_error_code();
    }
    free(body);
    *json = is_json(resp) ? json_loadb(resp->body, resp->len, 0, NULL) : NULL;
    if (resp->status == 400 && problem_is(*json, "badNonce"))
        *retry = RETRY_NONCE;
    else if (resp->status >= 400 && a->kid && !a->registered_again &&
             problem_is(*json, "accountDoesNotExist"))
        *retry = RETRY_ACCOUNT;
    return CS_OK;
}

static cs_rc account(cs_acme *a, int dir);

/* The CA forgot the account (a test CA restarted, a staging reset): register the key again. */
static cs_rc register_again(cs_acme *a)
{
    int dir;
    cs_rc rc;

    a->registered_again = 1;
    free(a->kid);
    a->kid = NULL;
    if (cs_acme_area(a, &dir) != CS_OK)
        return cs_error_code();
    cs_fs_remove_at(dir, "account.json");
    rc = account(a, dir);
    close(dir);
    return rc;
}

cs_rc cs_acme_post(cs_acme *a, const char *url, const char *payload, const char *what,
                   json_t **json, cs_http_response *resp)
{
    int attempt, retry = RETRY_NONE;
    cs_rc rc;

    for (attempt = 0; attempt <= ACME_NONCE_RETRIES; attempt++) {
        *json = NULL;
        rc = post_once(a, url, payload, json, resp, &retry);
        if (rc != CS_OK || retry == RETRY_NONE)
            break;
        json_decref(*json);
        *json = NULL;
        cs_http_response_clear(resp);
        if (retry == RETRY_ACCOUNT && (rc = register_again(a)) != CS_OK)
            return cs_error_prefix("ACME CA: %s: the CA no longer knows the account", what);
    }
    if (rc == CS_OK && resp->status >= 300) {
        long status = resp->status;

        rc = problem(what, url, resp, *json);
        json_decref(*json);
        *json = NULL;
        cs_http_response_clear(resp);
        resp->status = status; /* kept: the caller may tell "gone" from "try later" */
    } else if (rc == CS_OK && *json == NULL && is_json(resp)) {
        rc = cs_error_set(CS_EPROVIDER, "ACME CA: %s: the answer of %s is not valid JSON", what,
                          url);
        cs_http_response_clear(resp);
    }
    return rc;
}

static cs_rc load_directory(cs_acme *a)
{
    cs_http_response r;
    cs_rc rc;

    rc = perform(a, "GET", a->pv->directory, NULL, &r);
    if (rc == CS_OK && r.status != 200)
        rc = cs_error_set(CS_EPROVIDER,
                          "ACME CA: the directory %s answered HTTP %ld; check [provider %s] "
                          "directory",
                          a->pv->directory, r.status, a->pv->name);
    if (rc == CS_OK && ((a->dir = json_loadb(r.body, r.len, 0, NULL)) == NULL ||
                        !cs_acme_resource(a, "newAccount") || !cs_acme_resource(a, "newOrder")))
        rc = cs_error_set(CS_EPROVIDER,
                          "ACME CA: %s is not an ACME directory (no newAccount and newOrder)",
                          a->pv->directory);
    cs_http_response_clear(&r);
    return rc;
}

/* ---- the account: account.key (0600) and account.json {directory, url} ---- */

static cs_rc load_key(int dir, cs_store *s, EVP_PKEY **key)
{
    char *pem = NULL;
    size_t len;
    BIO *bio;
    cs_rc rc = cs_fs_read_at(dir, "account.key", 64 * 1024, cs_store_owner(s), &pem, &len);

    if (rc != CS_OK)
        return rc;
    bio = BIO_new_mem_buf(pem, (int)len);
    *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    OPENSSL_cleanse(pem, len);
    free(pem);
    if (*key == NULL)
        return cs_error_set(CS_EIO,
                            "the ACME account key 'account.key' does not load; move it away to "
                            "register a new account");
    return CS_OK;
}

static cs_rc save_key(int dir, EVP_PKEY *key)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *p;
    long n;
    cs_rc rc;

    if (bio == NULL || !PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)) {
        BIO_free(bio);
        return cs_error_set(CS_ERR, "cannot encode the ACME account key: %s", cs_error_openssl());
    }
    n = BIO_get_mem_data(bio, &p);
    rc = cs_fs_write_at(dir, "account.key", p, (size_t)n, 0600, (gid_t)-1, CS_FS_SYNC);
    OPENSSL_cleanse(p, (size_t)n);
    BIO_free(bio);
    return rc;
}

cs_rc cs_acme_area(cs_acme *a, int *fd)
{
    int top;
    cs_rc rc;

    if (cs_store_area_open(a->s, "acme", &top) != CS_OK)
        return cs_error_code();
    rc = cs_fs_dir_makeat(top, a->pv->name, 0700, (gid_t)-1, cs_store_owner(a->s), fd);
    close(top);
    return rc == CS_OK ? CS_OK : cs_error_prefix("the ACME state of [provider %s]", a->pv->name);
}

/* The account URL kept for this directory; NULL when none. */
static char *saved_account(int dir, cs_acme *a)
{
    char *text = NULL, *url = NULL;
    size_t len;
    json_t *j;

    if (cs_fs_read_at(dir, "account.json", 64 * 1024, cs_store_owner(a->s), &text, &len) != CS_OK) {
        cs_error_clear();
        return NULL;
    }
    j = json_loadb(text, len, 0, NULL);
    if (j && json_is_string(json_object_get(j, "url")) &&
        strcmp(json_string_value(json_object_get(j, "directory")) ?: "", a->pv->directory) == 0)
        url = strdup(json_string_value(json_object_get(j, "url")));
    json_decref(j);
    free(text);
    return url;
}

static cs_rc save_account(int dir, cs_acme *a)
{
    json_t *j = json_pack("{s:s,s:s}", "directory", a->pv->directory, "url", a->kid);
    char *text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
    cs_rc rc;

    json_decref(j);
    if (text == NULL)
        return cs_error_set(CS_ENOMEM, "out of memory");
    rc = cs_fs_write_at(dir, "account.json", text, strlen(text), 0600, (gid_t)-1, CS_FS_SYNC);
    free(text);
    return rc;
}

static cs_rc check_terms(cs_acme *a)
{
    const char *tos =
        json_string_value(json_object_get(json_object_get(a->dir, "meta"), "termsOfService"));

    if (tos && !a->pv->tos_agreed)
        return cs_error_set(CS_ECONFIG,
                            "ACME CA %s has terms of service (%s): read them and set tos-agreed "
                            "= yes in [provider %s]",
                            a->pv->directory, tos, a->pv->name);
    return CS_OK;
}

/* The EAB MAC key: a secret, refused when the group or others may read it. */
static cs_rc read_eab_key(const char *path, unsigned char *mac, size_t size, size_t *len)
{
    char text[1024];
    struct stat st;
    ssize_t n;
    long got;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

    if (fd < 0)
        return cs_error_set(CS_ECONFIG, "cannot read eab-hmac-file '%s': %s", path,
                            strerror(errno));
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return cs_error_set(CS_ECONFIG, "eab-hmac-file '%s' is not a regular file", path);
    }
    if (st.st_uid != 0 && st.st_uid != geteuid()) {
        close(fd);
        return cs_error_set(CS_ECONFIG,
                            "eab-hmac-file '%s' belongs to uid %u: refused, a secret must belong "
                            "to root or to the user certsync runs as (uid %u); chown it",
                            path, (unsigned)st.st_uid, (unsigned)geteuid());
    }
    if (st.st_mode & 077) {
        close(fd);
        return cs_error_set(CS_ECONFIG,
                            "eab-hmac-file '%s' can be read by group or others (mode %04o): "
                            "refused, it is a secret; chmod 600 it",
                            path, (unsigned)(st.st_mode & 07777));
    }
    n = read(fd, text, sizeof(text) - 1);
    close(fd);
    text[n > 0 ? n : 0] = '\0';
    text[strcspn(text, " \t\r\n")] = '\0';
    got = text[0] ? cs_acme_b64url_decode(text, mac, size) : -1;
    OPENSSL_cleanse(text, sizeof(text));
    if (got < 16)
        return cs_error_set(CS_ECONFIG,
                            "eab-hmac-file '%s' does not hold a base64url MAC key of at least 16 "
                            "bytes on its first line (the key the CA gave with eab-kid)",
                            path);
    *len = (size_t)got;
    return CS_OK;
}

/* externalAccountBinding, when configured; a CA that requires one and has none is named. */
static cs_rc add_eab(cs_acme *a, json_t *req)
{
    unsigned char mac[512];
    size_t len = 0;
    json_t *eab = NULL;
    cs_rc rc;

    if (a->pv->eab_kid == NULL) {
        if (json_is_true(
                json_object_get(json_object_get(a->dir, "meta"), "externalAccountRequired")))
            return cs_error_set(CS_ECONFIG,
                                "ACME CA %s requires an external account binding: set eab-kid "
                                "and eab-hmac-file in [provider %s] to the key id and MAC key "
                                "the CA gives",
                                a->pv->directory, a->pv->name);
        return CS_OK;
    }
    rc = read_eab_key(a->pv->eab_hmac_file, mac, sizeof(mac), &len);
    if (rc == CS_OK)
        rc = cs_acme_eab(a->key, a->pv->eab_kid, mac, len, cs_acme_resource(a, "newAccount"), &eab);
    OPENSSL_cleanse(mac, sizeof(mac));
    if (rc == CS_OK)
        json_object_set_new(req, "externalAccountBinding", eab);
    return rc;
}

/* newAccount: with only_existing, look the key's account up (RFC 8555 7.3.1). */
static cs_rc new_account(cs_acme *a, int only_existing, int *missing)
{
    json_t *req = json_object(), *contact = json_array(), *ans = NULL;
    cs_http_response r;
    char *payload;
    size_t i;
    cs_rc rc;

    *missing = 0;
    for (i = 0; i < a->pv->n_contact; i++)
        json_array_append_new(contact, json_string(a->pv->contact[i]));
    if (only_existing)
        json_object_set_new(req, "onlyReturnExisting", json_true());
    else {
        json_object_set_new(req, "termsOfServiceAgreed", json_boolean(a->pv->tos_agreed));
        json_object_set(req, "contact", contact);
    }
    json_decref(contact);
    if (!only_existing && add_eab(a, req) != CS_OK) {
        json_decref(req);
        return cs_error_code();
    }
    payload = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    rc = payload ? cs_acme_post(a, cs_acme_resource(a, "newAccount"), payload, "account", &ans, &r)
                 : cs_error_set(CS_ENOMEM, "out of memory");
    free(payload);
    if (rc != CS_OK && only_existing && strstr(cs_error_last(), "accountDoesNotExist")) {
        cs_error_clear();
        *missing = 1;
        return CS_OK;
    }
    if (rc == CS_OK && r.location[0] == '\0')
        rc = cs_error_set(CS_EPROVIDER, "ACME CA: newAccount answered with no Location");
    if (rc == CS_OK && (a->kid = strdup(r.location)) == NULL)
        rc = cs_error_set(CS_ENOMEM, "out of memory");
    json_decref(ans);
    cs_http_response_clear(&r);
    return rc;
}

/* Find the account of our key, or register it; the URL is kept in the store. */
static cs_rc account(cs_acme *a, int dir)
{
    int missing = 0;
    cs_rc rc = a->key ? CS_OK : load_key(dir, a->s, &a->key); /* loaded: registering again */

    if (rc == CS_ENOTFOUND) {
        cs_error_clear();
        rc = cs_key_generate(a->pv->account_key_type, &a->key);
        if (rc == CS_OK)
            rc = save_key(dir, a->key);
        missing = 1; /* a new key has no account yet */
    } else if (rc == CS_OK && (a->kid = saved_account(dir, a)) != NULL) {
        return CS_OK;
    } else if (rc == CS_OK) {
        rc = new_account(a, 1, &missing); /* a key whose URL was lost */
    }
    if (rc == CS_OK && missing)
        rc = check_terms(a) == CS_OK ? new_account(a, 0, &missing) : cs_error_code();
    if (rc == CS_OK)
        rc = save_account(dir, a);
    return rc;
}

cs_rc cs_acme_get(cs_acme *a, const char *url, cs_http_response *resp)
{
    return perform(a, "GET", url, NULL, resp);
}

cs_rc cs_acme_directory(cs_acme *a)
{
    return a->dir ? CS_OK : load_directory(a);
}

cs_rc cs_acme_ready(cs_acme *a)
{
    int dir;
    cs_rc rc;

    if (a->kid)
        return CS_OK;
    if (a->dir == NULL && load_directory(a) != CS_OK)
        return cs_error_code();
    if (cs_acme_area(a, &dir) != CS_OK)
        return cs_error_code();
    rc = account(a, dir);
    close(dir);
    return rc == CS_OK ? CS_OK : cs_error_prefix("[provider %s]", a->pv->name);
}

cs_rc cs_acme_revoke(cs_acme *a, X509 *leaf, int reason)
{
    unsigned char *der = NULL;
    int len = i2d_X509(leaf, &der);
    char *b64 = len > 0 ? cs_acme_b64url(der, (size_t)len) : NULL, *payload = NULL;
    const char *url;
    cs_http_response r;
    json_t *ans = NULL, *req;
    cs_rc rc = cs_acme_ready(a);

    OPENSSL_free(der);
    url = cs_acme_resource(a, "revokeCert");
    req = json_pack("{s:s?}", "certificate", b64);
    if (rc == CS_OK && url == NULL)
        rc = cs_error_set(CS_EPROVIDER, "ACME CA: the directory %s offers no revokeCert",
                          a->pv->directory);
    if (rc == CS_OK && reason >= 0)
        json_object_set_new(req, "reason", json_integer(reason));
    if (rc == CS_OK && (b64 == NULL || (payload = json_dumps(req, JSON_COMPACT)) == NULL))
        rc = cs_error_set(CS_ENOMEM, "cannot encode the certificate to revoke");
    if (rc == CS_OK && (rc = cs_acme_post(a, url, payload, "revocation", &ans, &r)) == CS_OK)
        cs_http_response_clear(&r);
    json_decref(ans);
    json_decref(req);
    free(payload);
    free(b64);
    return rc;
}
