#include "cs_ocsp.h"

#include <openssl/ocsp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cs_escape.h"
#include "cs_http.h"
#include "cs_localca.h"
#include "cs_status.h"
#include "cs_time.h"

/* A response may be dated this far ahead of our clock (the responder's clock runs fast). */
#define CS_OCSP_SKEW 300
/* First retry after a failure, doubled per failure up to the cap. */
#define CS_OCSP_RETRY_MIN 60
#define CS_OCSP_RETRY_MAX 3600
#define CS_OCSP_TIMEOUT_MS 15000L

static const char *const status_names[] = {"good", "revoked", "unknown"};

const char *cs_ocsp_status_name(cs_ocsp_cert_status st)
{
    return st <= CS_OCSP_UNKNOWN ? status_names[st] : "unknown";
}

static int status_parse(const char *text, cs_ocsp_cert_status *st)
{
    for (int i = 0; text && i <= CS_OCSP_UNKNOWN; i++)
        if (strcmp(text, status_names[i]) == 0) {
            *st = (cs_ocsp_cert_status)i;
            return 1;
        }
    return 0;
}

int cs_ocsp_responder(const cs_bundle *b, char *url, size_t size)
{
    STACK_OF(OPENSSL_STRING) *urls = X509_get1_ocsp(cs_bundle_leaf(b));
    int found = 0;

    for (int i = 0; urls && !found && i < sk_OPENSSL_STRING_num(urls); i++) {
        const char *u = sk_OPENSSL_STRING_value(urls, i);

        if (strncasecmp(u, "http://", 7) == 0 || strncasecmp(u, "https://", 8) == 0)
            found = (size_t)snprintf(url, size, "%s", u) < size;
    }
    X509_email_free(urls);
    return found;
}

/* The leaf's issuer among the chain. */
static X509 *issuer_of(const cs_bundle *b)
{
    STACK_OF(X509) *chain = cs_bundle_issuers(b);
    X509 *leaf = cs_bundle_leaf(b);

    for (int i = 0; chain && i < sk_X509_num(chain); i++)
        if (X509_check_issued(sk_X509_value(chain, i), leaf) == X509_V_OK)
            return sk_X509_value(chain, i);
    return NULL;
}

static cs_rc cert_id(const cs_bundle *b, OCSP_CERTID **id)
{
    X509 *issuer = issuer_of(b);

    *id = NULL;
    if (issuer == NULL)
        return cs_error_set(CS_EBADCERT,
                            "the chain holds no issuer of the certificate: an OCSP answer "
                            "cannot be checked without it");
    *id = OCSP_cert_to_id(EVP_sha1(), cs_bundle_leaf(b), issuer);
    return *id ? CS_OK : cs_error_set(CS_ENOMEM, "out of memory making an OCSP certificate id");
}

static time_t asn1_time(const ASN1_GENERALIZEDTIME *t)
{
    struct tm tm;

    return t && ASN1_TIME_to_tm(t, &tm) == 1 ? timegm(&tm) : 0;
}

/* Signed by the leaf's issuer, or by a responder the issuer delegated to (chain as given). */
static cs_rc verify_signer(OCSP_BASICRESP *bs, const cs_bundle *b)
{
    X509_STORE *store = X509_STORE_new();
    int ok;

    /* the issuer is the anchor: the answer must come from whoever vouches for this leaf */
    ok = store && X509_STORE_add_cert(store, issuer_of(b)) == 1 &&
         X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN) == 1 &&
         OCSP_basic_verify(bs, cs_bundle_issuers(b), store, 0) > 0;
    X509_STORE_free(store);
    if (!ok)
        return cs_error_set(CS_EBADCERT,
                            "the OCSP answer is not signed by the certificate's issuer or a "
                            "responder it delegated to: %s",
                            cs_error_openssl());
    return CS_OK;
}

static cs_rc find_status(OCSP_BASICRESP *bs, const cs_bundle *b, time_t now, cs_ocsp_response *r)
{
    ASN1_GENERALIZEDTIME *rev, *thisupd, *nextupd;
    OCSP_CERTID *id;
    int status, reason;
    cs_rc rc = cert_id(b, &id);

    if (rc != CS_OK)
        return rc;
    if (OCSP_resp_find_status(bs, id, &status, &reason, &rev, &thisupd, &nextupd) != 1)
        rc = cs_error_set(CS_EBADCERT, "the OCSP answer is not about this certificate");
    OCSP_CERTID_free(id);
    if (rc != CS_OK)
        return rc;
    r->this_update = asn1_time(thisupd);
    r->next_update = asn1_time(nextupd);
    r->status = status == V_OCSP_CERTSTATUS_GOOD      ? CS_OCSP_GOOD
                : status == V_OCSP_CERTSTATUS_REVOKED ? CS_OCSP_REVOKED
                                                      : CS_OCSP_UNKNOWN;
    if (r->next_update == 0)
        return cs_error_set(CS_EBADCERT,
                            "the OCSP answer has no nextUpdate, so nobody can tell when it "
                            "expires; it is not stapled");
    if (r->this_update > now + CS_OCSP_SKEW || r->next_update <= now) {
        char a[CS_TIME_ISO_SIZE], z[CS_TIME_ISO_SIZE];

        return cs_error_set(CS_EBADCERT,
                            "the OCSP answer is valid from %s to %s, not now (check the clock "
                            "of this machine and of the responder)",
                            cs_time_iso(r->this_update, a), cs_time_iso(r->next_update, z));
    }
    return CS_OK;
}

cs_rc cs_ocsp_check(const void *der, size_t len, const cs_bundle *b, time_t now,
                    cs_ocsp_response *r)
{
    const unsigned char *p = der;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
    OCSP_BASICRESP *bs = NULL;
    int st;
    cs_rc rc = CS_OK;

    memset(r, 0, sizeof(*r));
    now = now ? now : time(NULL);
    if (resp == NULL)
        return cs_error_set(CS_EBADCERT, "not an OCSP response (%zu bytes)", len);
    st = OCSP_response_status(resp);
    if (st != OCSP_RESPONSE_STATUS_SUCCESSFUL)
        rc = cs_error_set(CS_EBADCERT, "the OCSP responder answered '%s' (%d)",
                          OCSP_response_status_str(st), st);
    else if ((bs = OCSP_response_get1_basic(resp)) == NULL)
        rc = cs_error_set(CS_EBADCERT, "the OCSP response holds no basic response");
    if (rc == CS_OK)
        rc = verify_signer(bs, b);
    if (rc == CS_OK)
        rc = find_status(bs, b, now, r);
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    return rc;
}

/* ---- asking a responder ---- */

static cs_rc request_der(const cs_bundle *b, unsigned char **der, int *len)
{
    OCSP_REQUEST *req = OCSP_REQUEST_new();
    OCSP_CERTID *id = NULL;
    cs_rc rc = req ? cert_id(b, &id) : cs_error_set(CS_ENOMEM, "out of memory");

    *der = NULL;
    if (rc == CS_OK && OCSP_request_add0_id(req, id) == NULL) {
        OCSP_CERTID_free(id);
        rc = cs_error_set(CS_ENOMEM, "out of memory making an OCSP request");
    }
    if (rc == CS_OK && (*len = i2d_OCSP_REQUEST(req, der)) <= 0)
        rc = cs_error_set(CS_ENOMEM, "cannot encode an OCSP request: %s", cs_error_openssl());
    OCSP_REQUEST_free(req);
    return rc;
}

/* RFC 6960 A.1: POST the DER request; the answer is the DER response. */
static cs_rc fetch(const char *url, const cs_bundle *b, char **der, size_t *len)
{
    static const char *const names[] = {"Content-Type", "Accept"};
    static const char *const values[] = {"application/ocsp-request", "application/ocsp-response"};
    cs_kv headers = {(char **)names, (char **)values, 2, 0};
    cs_http_request req = {0};
    cs_http_response resp = {0};
    unsigned char *body = NULL;
    int blen = 0;
    cs_rc rc = request_der(b, &body, &blen);

    if (rc != CS_OK)
        return rc;
    req.method = "POST";
    req.url = url;
    req.headers = &headers;
    req.body = (const char *)body;
    req.body_len = (size_t)blen;
    req.connect_timeout_ms = 5000;
    req.timeout_ms = CS_OCSP_TIMEOUT_MS;
    req.allow_http = 1; /* OCSP is plain HTTP by design: the answer is signed */
    req.env_proxy = 1;
    rc = cs_http_perform(&req, &resp);
    OPENSSL_free(body);
    if (rc != CS_OK)
        return cs_error_prefix("OCSP responder %s", url);
    if (resp.transport_error)
        rc = cs_error_set(CS_EPROVIDER, "OCSP responder %s: %s", url, resp.error);
    else if (resp.status != 200)
        rc = cs_error_set(CS_EPROVIDER, "OCSP responder %s answered HTTP %ld", url, resp.status);
    else if (resp.body == NULL || resp.len == 0)
        rc = cs_error_set(CS_EPROVIDER, "OCSP responder %s sent an empty answer", url);
    if (rc == CS_OK) {
        *der = resp.body;
        *len = resp.len;
        resp.body = NULL;
    }
    cs_http_response_clear(&resp);
    return rc;
}

/* ---- the state beside a version ---- */

typedef struct {
    int known; /* a state was read */
    int has_status;
    cs_ocsp_cert_status status;
    time_t this_update, next_update, refresh_at, retry_at, checked_at;
    unsigned failures;
    char last_error[1024];
} ocsp_state;

static time_t json_time(const json_t *j, const char *key)
{
    time_t t = 0;

    cs_time_parse_iso(json_string_value(json_object_get(j, key)), &t);
    return t;
}

static void state_read(cs_store *s, const char *name, unsigned version, ocsp_state *st)
{
    char *text = NULL;
    size_t len;
    json_t *j = NULL;
    const char *err;

    memset(st, 0, sizeof(*st));
    if (cs_store_load_aside(s, name, version, "ocsp.json", &text, &len) == CS_OK)
        j = json_loadb(text, len, 0, NULL);
    free(text);
    cs_error_clear();
    if (!json_is_object(j)) {
        json_decref(j);
        return;
    }
    st->known = 1;
    st->has_status = status_parse(json_string_value(json_object_get(j, "status")), &st->status);
    st->this_update = json_time(j, "this_update");
    st->next_update = json_time(j, "next_update");
    st->refresh_at = json_time(j, "refresh_at");
    st->retry_at = json_time(j, "retry_at");
    st->checked_at = json_time(j, "checked_at");
    st->failures = (unsigned)json_integer_value(json_object_get(j, "failures"));
    err = json_string_value(json_object_get(j, "last_error"));
    snprintf(st->last_error, sizeof(st->last_error), "%s", err ? err : "");
    json_decref(j);
}

static json_t *state_json(const ocsp_state *st)
{
    json_t *j = json_object();

    json_object_set_new(
        j, "status", st->has_status ? json_string(cs_ocsp_status_name(st->status)) : json_null());
    json_object_set_new(j, "this_update", cs_status_time(st->this_update));
    json_object_set_new(j, "next_update", cs_status_time(st->next_update));
    json_object_set_new(j, "refresh_at", cs_status_time(st->refresh_at));
    json_object_set_new(j, "retry_at", cs_status_time(st->retry_at));
    json_object_set_new(j, "checked_at", cs_status_time(st->checked_at));
    json_object_set_new(j, "failures", json_integer(st->failures));
    json_object_set_new(j, "last_error",
                        st->last_error[0] ? json_string(st->last_error) : json_null());
    return j;
}

static cs_rc state_write(cs_store *s, const char *name, unsigned version, const ocsp_state *st)
{
    json_t *j = state_json(st);
    char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    cs_rc rc = text ? cs_store_save_aside(s, name, version, "ocsp.json", text, strlen(text))
                    : cs_error_set(CS_ENOMEM, "out of memory");

    free(text);
    json_decref(j);
    return rc;
}

/* A random share of span in [-span/10, span/10]: many servers do not ask at the same second. */
static long jitter(long span)
{
    unsigned int r = 0;

    if (span < 10 || RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
        return 0;
    return (long)(r % (unsigned)(span / 5 + 1)) - span / 10;
}

/* ---- refresh ---- */

typedef struct {
    cs_store *s;
    const char *name;
    unsigned version;
    cs_bundle *b;
    int local_ca;
    char url[1024];
    time_t now;
} refresh_ctx;

static cs_rc obtain(const refresh_ctx *x, char **der, size_t *len)
{
    if (x->local_ca) {
        char fp[65];
        int revoked = 0;

        cs_bundle_fingerprint(x->b, fp);
        if (cs_store_revoked(x->s, x->name, fp, &revoked) != CS_OK)
            return cs_error_code();
        return cs_localca_ocsp(x->s, x->b, revoked, x->now, der, len);
    }
    return fetch(x->url, x->b, der, len);
}

/* Keep the stored staple only while it is still good for this certificate. */
static void keep_if_valid(const refresh_ctx *x)
{
    unsigned char *der = NULL;
    size_t len = 0;
    cs_ocsp_response r;

    if (cs_ocsp_load(x->s, x->name, x->version, x->b, x->now, &der, &len, &r) == CS_EBADCERT)
        cs_store_drop_aside(x->s, x->name, x->version, "ocsp");
    free(der);
}

static cs_rc failed(const refresh_ctx *x, ocsp_state *st, cs_rc rc, char *note, size_t size)
{
    long delay = CS_OCSP_RETRY_MIN;
    char msg[1024];

    cs_escape(cs_error_last(), msg, sizeof(msg));
    for (unsigned i = 0; i < st->failures && delay < CS_OCSP_RETRY_MAX; i++)
        delay *= 2;
    delay = delay > CS_OCSP_RETRY_MAX ? CS_OCSP_RETRY_MAX : delay;
    st->failures++;
    st->retry_at = x->now + delay + jitter(delay);
    st->checked_at = x->now;
    snprintf(st->last_error, sizeof(st->last_error), "%s", msg);
    keep_if_valid(x);
    state_write(x->s, x->name, x->version, st);
    snprintf(note, size, "OCSP failed (v%u): %s", x->version, msg);
    return cs_error_set(rc, "OCSP staple of v%u: %s", x->version, msg);
}

static cs_rc answered(const refresh_ctx *x, ocsp_state *st, const char *der, size_t len,
                      const cs_ocsp_response *r, char *note, size_t size)
{
    char until[CS_TIME_ISO_SIZE];
    long half = (long)(r->next_update - r->this_update) / 2;

    if (r->status == CS_OCSP_UNKNOWN) {
        /* an error like any other: the state keeps describing the staple still served */
        cs_error_set(CS_EPROVIDER, "the OCSP responder does not know v%u (status 'unknown')",
                     x->version);
        return failed(x, st, CS_EPROVIDER, note, size);
    }
    st->has_status = 1;
    st->status = r->status;
    st->this_update = r->this_update;
    st->next_update = r->next_update;
    st->checked_at = x->now;
    if (r->status == CS_OCSP_REVOKED) {
        /* never staple it; say so loudly until a new version replaces this one */
        cs_store_drop_aside(x->s, x->name, x->version, "ocsp");
        st->refresh_at = x->now + CS_OCSP_RETRY_MAX;
        snprintf(st->last_error, sizeof(st->last_error),
                 "the OCSP responder says v%u is REVOKED: the staple is removed; replace the "
                 "certificate (`certsync sync --force %s`)",
                 x->version, x->name);
        state_write(x->s, x->name, x->version, st);
        snprintf(note, size, "%s", st->last_error);
        return cs_error_set(CS_EBADCERT, "%s", st->last_error);
    }
    if (cs_store_save_aside(x->s, x->name, x->version, "ocsp", der, len) != CS_OK)
        return failed(x, st, cs_error_code(), note, size);
    st->refresh_at = r->this_update + half + jitter(half);
    st->failures = 0;
    st->retry_at = 0;
    st->last_error[0] = '\0';
    snprintf(note, size, "OCSP staple of v%u: good until %s", x->version,
             cs_time_iso(r->next_update, until));
    return state_write(x->s, x->name, x->version, st);
}

static int due(const refresh_ctx *x, const ocsp_state *st, int force, char *note, size_t size)
{
    char at[CS_TIME_ISO_SIZE];
    char *der = NULL;
    size_t len;
    int stored = cs_store_load_aside(x->s, x->name, x->version, "ocsp", &der, &len) == CS_OK;

    free(der);
    cs_error_clear();
    if (force)
        return 1;
    if (st->failures && x->now < st->retry_at) {
        snprintf(note, size, "OCSP: next try at %s after %u failure(s)",
                 cs_time_iso(st->retry_at, at), st->failures);
        return 0;
    }
    if (stored && x->now < st->refresh_at) {
        char until[CS_TIME_ISO_SIZE];

        snprintf(note, size, "OCSP staple of v%u: good until %s, refreshed after %s", x->version,
                 cs_time_iso(st->next_update, until), cs_time_iso(st->refresh_at, at));
        return 0;
    }
    if (!stored && st->has_status && st->status == CS_OCSP_REVOKED && x->now < st->refresh_at) {
        snprintf(note, size, "v%u is revoked (OCSP)", x->version);
        return 0;
    }
    return 1;
}

/* Ask for x's version (bundle and source known) when due, and keep the answer. */
static cs_rc refresh_version(refresh_ctx *x, int force, char *note, size_t size)
{
    ocsp_state st;
    cs_ocsp_response r;
    char *der = NULL;
    size_t len = 0;
    cs_rc rc;

    if (!x->local_ca && !cs_ocsp_responder(x->b, x->url, sizeof(x->url))) {
        snprintf(note, size, "no OCSP responder in v%u", x->version);
        return CS_OK;
    }
    state_read(x->s, x->name, x->version, &st);
    if (!due(x, &st, force, note, size))
        return CS_OK;
    rc = obtain(x, &der, &len);
    if (rc == CS_OK)
        rc = cs_ocsp_check(der, len, x->b, x->now, &r);
    rc = rc == CS_OK ? answered(x, &st, der, len, &r, note, size) : failed(x, &st, rc, note, size);
    free(der);
    return rc;
}

static cs_rc refresh_locked(refresh_ctx *x, int force, char *note, size_t size)
{
    cs_cert_info info = {0};

    if (cs_store_current(x->s, x->name, &x->version) != CS_OK ||
        cs_store_load(x->s, x->name, x->version, &x->b) != CS_OK ||
        cs_store_info(x->s, x->name, x->version, &info) != CS_OK)
        return cs_error_code();
    x->local_ca = strcmp(info.provider, "local-ca") == 0;
    cs_cert_info_clear(&info);
    return refresh_version(x, force, note, size);
}

void cs_ocsp_before_switch(cs_store *s, const char *name, unsigned version, const cs_bundle *b,
                           const cs_install_opts *o)
{
    refresh_ctx x = {s, name, version, (cs_bundle *)b, 0, "", time(NULL)};
    char note[1280];

    x.local_ca = o->provider && strcmp(o->provider, "local-ca") == 0;
    refresh_version(&x, 1, note, sizeof(note));
}

cs_rc cs_ocsp_refresh(cs_store *s, const char *name, int force, time_t now, char *note, size_t size)
{
    refresh_ctx x = {s, name, 0, NULL, 0, "", now ? now : time(NULL)};
    int lock;
    cs_rc rc;

    note[0] = '\0';
    if ((rc = cs_store_lock(s, name, 60, &lock)) != CS_OK)
        return rc;
    rc = refresh_locked(&x, force, note, size);
    cs_store_unlock(s, lock);
    cs_bundle_free(x.b);
    return rc;
}

cs_rc cs_ocsp_load(cs_store *s, const char *name, unsigned version, const cs_bundle *b, time_t now,
                   unsigned char **der, size_t *len, cs_ocsp_response *r)
{
    char *data = NULL;
    cs_rc rc = cs_store_load_aside(s, name, version, "ocsp", &data, len);

    *der = NULL;
    if (rc == CS_OK)
        rc = cs_ocsp_check(data, *len, b, now, r);
    if (rc == CS_OK && r->status != CS_OCSP_GOOD)
        rc = cs_error_set(CS_EBADCERT, "the stored OCSP answer says '%s'",
                          cs_ocsp_status_name(r->status));
    if (rc != CS_OK) {
        free(data);
        return rc == CS_ENOTFOUND ? rc : cs_error_prefix("OCSP staple of '%s' v%u", name, version);
    }
    *der = (unsigned char *)data;
    return CS_OK;
}

json_t *cs_ocsp_status_json(cs_store *s, const char *name)
{
    unsigned version;
    ocsp_state st;
    json_t *j;

    if (cs_store_current(s, name, &version) != CS_OK) {
        cs_error_clear();
        return json_null();
    }
    state_read(s, name, version, &st);
    if (!st.known)
        return json_null();
    j = json_object();
    json_object_set_new(j, "status",
                        st.has_status ? json_string(cs_ocsp_status_name(st.status)) : json_null());
    json_object_set_new(j, "this_update", cs_status_time(st.this_update));
    json_object_set_new(j, "next_update", cs_status_time(st.next_update));
    json_object_set_new(j, "refresh_at", cs_status_time(st.refresh_at));
    json_object_set_new(j, "last_error",
                        st.last_error[0] ? json_string(st.last_error) : json_null());
    return j;
}
