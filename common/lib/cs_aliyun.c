#include "cs_aliyun.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cs_aliyun_cred.h"
#include "cs_aliyun_parse.h"
#include "cs_http.h"

struct cs_aliyun {
    char *endpoint; /* https://host[:port] */
    char *host;     /* host[:port] as sent in Host */
    char *ca_file;
    char *credentials;
    char *metadata_url;
    int v1;
    long timeout_ms;
    int retries;
    cs_aliyun_cred cred;
    char last_code[128];
};

/* Regions with their own endpoint (reference §1); others use the central one. */
static const char *const regional[] = {
    "cn-hongkong",    "ap-northeast-1", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3",
    "ap-southeast-5", "eu-central-1",   "ap-south-1",     "me-east-1",      NULL};

cs_rc cs_aliyun_new(const cs_aliyun_opts *o, cs_aliyun **out)
{
    cs_aliyun *c = calloc(1, sizeof(*c));
    const char *region = o->region ? o->region : "cn-hangzhou";
    char url[512];
    size_t i;

    if (c == NULL)
        return cs_error_set(CS_ENOMEM, "out of memory");
    if (o->endpoint) {
        snprintf(url, sizeof(url), "%s", o->endpoint);
        url[strcspn(url, "?#")] = '\0';
        if (url[strlen(url) - 1] == '/')
            url[strlen(url) - 1] = '\0';
    } else {
        snprintf(url, sizeof(url), "https://cas.aliyuncs.com");
        for (i = 0; regional[i]; i++)
            if (strcmp(region, regional[i]) == 0)
                snprintf(url, sizeof(url), "https://cas.%s.aliyuncs.com", region);
    }
    if (strncmp(url, "https://", 8) != 0 || strchr(url + 8, '/')) {
        free(c);
        return cs_error_set(CS_ECONFIG, "the endpoint '%s' must be https://HOST[:PORT]", url);
    }
    c->endpoint = strdup(url);
    c->host = strdup(url + 8);
    c->ca_file = o->ca_file ? strdup(o->ca_file) : NULL;
    c->credentials = strdup(o->credentials ? o->credentials : "default");
    c->metadata_url = o->metadata_url ? strdup(o->metadata_url) : NULL;
    c->v1 = o->signature_v1;
    c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 30000;
    c->retries = o->retries >= 0 ? o->retries : 3;
    *out = c;
    return CS_OK;
}

cs_rc cs_aliyun_from_provider(const cs_provider_conf *pv, cs_aliyun **out)
{
    cs_aliyun_opts o = {0};

    o.endpoint = pv->endpoint;
    o.region = pv->region;
    o.ca_file = pv->ca_file;
    o.credentials = pv->credentials;
    o.metadata_url = pv->metadata_endpoint;
    o.signature_v1 = pv->signature_version && strcmp(pv->signature_version, "v1") == 0;
    o.timeout_ms = pv->timeout > 0 ? pv->timeout * 1000 : 0;
    o.retries = pv->retries;
    return cs_aliyun_new(&o, out);
}

void cs_aliyun_free(cs_aliyun *c)
{
    if (c == NULL)
        return;
    cs_aliyun_cred_clear(&c->cred);
    free(c->endpoint);
    free(c->host);
    free(c->ca_file);
    free(c->credentials);
    free(c->metadata_url);
    free(c);
}

const char *cs_aliyun_endpoint(const cs_aliyun *c)
{
    return c->endpoint;
}

const char *cs_aliyun_last_code(const cs_aliyun *c)
{
    return c->last_code;
}

void cs_json_id(json_t *v, char *buf, size_t size)
{
    if (json_is_integer(v))
        snprintf(buf, size, "%lld", (long long)json_integer_value(v));
    else if (json_is_string(v))
        snprintf(buf, size, "%s", json_string_value(v));
    else
        buf[0] = '\0';
}

/* STS credentials are fetched again five minutes before they expire. */
static cs_rc credentials(cs_aliyun *c)
{
    if (c->cred.id && (c->cred.expires == 0 || c->cred.expires - time(NULL) > 300))
        return CS_OK;
    cs_aliyun_cred_clear(&c->cred);
    return cs_aliyun_cred_resolve(c->credentials, c->metadata_url, &c->cred);
}

static void nonce(char out[33])
{
    unsigned char r[16];
    int i;

    RAND_bytes(r, sizeof(r));
    for (i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
}

static void now_iso(char out[32])
{
    time_t t = time(NULL);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* v3: everything in the query, empty body, as the official SDK sends it. */
static cs_rc build_v3(cs_aliyun *c, const char *action, const cs_kv *params, cs_kv *headers,
                      char **url)
{
    char date[32], n[33], *q;
    cs_signature sig;

    now_iso(date);
    nonce(n);
    cs_kv_set(headers, "host", c->host);
    cs_kv_set(headers, "x-acs-action", action);
    cs_kv_set(headers, "x-acs-version", CS_CAS_VERSION);
    cs_kv_set(headers, "x-acs-date", date);
    cs_kv_set(headers, "x-acs-signature-nonce", n);
    cs_kv_set(headers, "x-acs-content-sha256", EMPTY_SHA256);
    if (c->cred.token) {
        cs_kv_set(headers, "x-acs-accesskey-id", c->cred.id);
        cs_kv_set(headers, "x-acs-security-token", c->cred.token);
    }
    if (cs_sign_v3("POST", params, headers, c->cred.id, c->cred.secret, &sig) != CS_OK)
        return cs_error_code();
    cs_kv_set(headers, "Authorization", sig.authorization);
    cs_signature_clear(&sig);
    q = cs_canonical_query(params);
    if (q == NULL || asprintf(url, "%s/%s%s", c->endpoint, q[0] ? "?" : "", q) < 0) {
        free(q);
        return cs_error_set(CS_ENOMEM, "out of memory");
    }
    free(q);
    return CS_OK;
}

/* v1: the parameters, the common ones and the signature in a form body. */
static cs_rc build_v1(cs_aliyun *c, const char *action, const cs_kv *params, cs_kv *headers,
                      char **body)
{
    char date[32], n[33], *q, *esig;
    cs_signature sig;
    cs_kv all;
    size_t i;
    cs_rc rc;

    now_iso(date);
    nonce(n);
    cs_kv_init(&all);
    for (i = 0; i < params->n; i++)
        cs_kv_set(&all, params->names[i], params->values[i]);
    cs_kv_set(&all, "Action", action);
    cs_kv_set(&all, "Version", CS_CAS_VERSION);
    cs_kv_set(&all, "Format", "JSON");
    cs_kv_set(&all, "AccessKeyId", c->cred.id);
    cs_kv_set(&all, "SignatureMethod", "HMAC-SHA1");
    cs_kv_set(&all, "SignatureVersion", "1.0");
    cs_kv_set(&all, "SignatureNonce", n);
    cs_kv_set(&all, "Timestamp", date);
    if (c->cred.token)
        cs_kv_set(&all, "SecurityToken", c->cred.token);
    rc = cs_sign_v1("POST", &all, c->cred.secret, &sig);
    if (rc == CS_OK) {
        q = cs_canonical_query(&all);
        esig = cs_percent_encode(sig.signature);
        if (q == NULL || esig == NULL || asprintf(body, "%s&Signature=%s", q, esig) < 0)
            rc = cs_error_set(CS_ENOMEM, "out of memory");
        free(q);
        free(esig);
        cs_signature_clear(&sig);
    }
    cs_kv_clear(&all);
    cs_kv_set(headers, "Content-Type", "application/x-www-form-urlencoded");
    return rc;
}

static int retryable_code(const char *code)
{
    return strncmp(code, "Throttling", 10) == 0 || strcmp(code, "ServiceUnavailable") == 0 ||
           strcmp(code, "InternalError") == 0 || strcmp(code, "ServiceTimeout") == 0;
}

/* One attempt. *retry says whether another attempt may help. */
static cs_rc attempt(cs_aliyun *c, const char *action, const cs_kv *params, json_t **out,
                     int *retry)
{
    cs_http_request req = {0};
    cs_http_response resp;
    char *url = NULL, *body = NULL;
    cs_kv headers;
    cs_rc rc;

    *retry = 0;
    c->last_code[0] = '\0';
    if (credentials(c) != CS_OK)
        return cs_error_code();
    cs_kv_init(&headers);
    if (c->v1) {
        rc = build_v1(c, action, params, &headers, &body);
        url = strdup(c->endpoint);
    } else {
        rc = build_v3(c, action, params, &headers, &url);
    }
    if (rc != CS_OK) {
        cs_kv_clear(&headers);
        free(url);
        free(body);
        return rc;
    }
    req.method = "POST";
    req.url = url;
    req.headers = &headers;
    req.body = body;
    req.body_len = body ? strlen(body) : 0;
    req.ca_file = c->ca_file;
    req.connect_timeout_ms = c->timeout_ms < 10000 ? c->timeout_ms : 10000;
    req.timeout_ms = c->timeout_ms;
    rc = cs_http_perform(&req, &resp);
    cs_kv_clear(&headers);
    free(url);
    if (body) {
        memset(body, 0, strlen(body));
        free(body);
    }
    if (rc != CS_OK)
        return rc;
    rc = cs_aliyun_answer(action, c->endpoint, &resp, c->last_code, sizeof(c->last_code), out,
                          retry);
    cs_http_response_clear(&resp);
    return rc;
}

cs_rc cs_aliyun_call(cs_aliyun *c, const char *action, const cs_kv *params, json_t **out)
{
    cs_kv none;
    int retry, i;
    cs_rc rc;

    cs_kv_init(&none);
    for (i = 0;; i++) {
        rc = attempt(c, action, params ? params : &none, out, &retry);
        if (rc == CS_OK || !retry || i >= c->retries)
            break;
        {
            /* exponential backoff with jitter: 0.5 s, 1 s, 2 s ... each 50-100 % */
            unsigned char r;
            long base = 500L << (i < 6 ? i : 6);

            RAND_bytes(&r, 1);
            usleep((useconds_t)((base / 2 + base * r / 512) * 1000));
        }
    }
    if (rc != CS_OK && retry && i > 0)
        cs_error_prefix("after %d attempts", i + 1);
    return rc;
}

cs_rc cs_aliyun_list(cs_aliyun *c, const char *order_type, const char *status, const char *keyword,
                     json_t **entries)
{
    json_t *all = json_array(), *page;
    char num[32];
    int p, more;
    cs_kv q;
    cs_rc rc = CS_OK;

    for (p = 1; p < 10000; p++) {
        cs_kv_init(&q);
        snprintf(num, sizeof(num), "%d", p);
        cs_kv_set(&q, "CurrentPage", num);
        cs_kv_set(&q, "ShowSize", "50");
        cs_kv_set(&q, "OrderType", order_type);
        if (status)
            cs_kv_set(&q, "Status", status);
        if (keyword)
            cs_kv_set(&q, "Keyword", keyword);
        rc = cs_aliyun_call(c, "ListUserCertificateOrder", &q, &page);
        cs_kv_clear(&q);
        if (rc != CS_OK)
            break;
        more = cs_aliyun_list_page(page, all);
        json_decref(page);
        if (!more)
            break;
    }
    if (rc != CS_OK) {
        json_decref(all);
        return rc;
    }
    *entries = all;
    return CS_OK;
}

/* Does the certificate name pattern (maybe "*.x") cover the configured name? */
static int covers(const char *pattern, const char *name)
{
    const char *dot;

    if (strcasecmp(pattern, name) == 0)
        return 1;
    if (strncmp(pattern, "*.", 2) != 0 || strncmp(name, "*.", 2) == 0)
        return 0;
    dot = strchr(name, '.');
    return dot && dot != name && strcasecmp(dot + 1, pattern + 2) == 0;
}

static int entry_covers(json_t *e, const char *const *domains, size_t n_domains)
{
    char names[4096];
    size_t i;

    snprintf(names, sizeof(names), "%s,%s",
             json_string_value(json_object_get(e, "CommonName")) ?: "",
             json_string_value(json_object_get(e, "Sans")) ?: "");
    for (i = 0; i < n_domains; i++) {
        char copy[4096], *tok, *save = NULL;
        int ok = 0;

        snprintf(copy, sizeof(copy), "%s", names);
        for (tok = strtok_r(copy, ", ", &save); tok && !ok; tok = strtok_r(NULL, ", ", &save))
            ok = covers(tok, domains[i]);
        if (!ok)
            return 0;
    }
    return 1;
}

json_t *cs_aliyun_pick(json_t *certs, const char *cert_id, const char *const *domains,
                       size_t n_domains)
{
    json_t *e, *best = NULL;
    char id[32], today[16];
    time_t now = time(NULL);
    struct tm tm;
    size_t i;

    gmtime_r(&now, &tm);
    strftime(today, sizeof(today), "%Y-%m-%d", &tm);
    json_array_foreach(certs, i, e)
    {
        const char *end = json_string_value(json_object_get(e, "EndDate")) ?: "";

        cs_json_id(json_object_get(e, "CertificateId"), id, sizeof(id));
        if (cert_id) {
            if (strcmp(id, cert_id) == 0)
                return e;
            continue;
        }
        if (json_is_true(json_object_get(e, "Expired")) || strcmp(end, today) < 0 ||
            !entry_covers(e, domains, n_domains))
            continue;
        if (best == NULL) {
            best = e;
            continue;
        }
        {
            const char *bend = json_string_value(json_object_get(best, "EndDate")) ?: "";
            int c = strcmp(end, bend);

            if (c > 0 || (c == 0 && json_integer_value(json_object_get(e, "CertificateId")) >
                                        json_integer_value(json_object_get(best, "CertificateId"))))
                best = e;
        }
    }
    return best;
}

cs_rc cs_aliyun_answer(const char *action, const char *endpoint, const cs_http_response *resp,
                       char *code_out, size_t code_size, json_t **out, int *retry)
{
    json_t *j;
    cs_rc rc;

    *retry = 0;
    code_out[0] = '\0';
    if (resp->transport_error) {
        *retry = 1;
        return cs_error_set(CS_EPROVIDER, "%s: cannot reach %s: %s%s", action, endpoint,
                            resp->error, resp->timed_out ? " (timed out)" : "");
    }
    j = json_loadb(resp->body, resp->len, 0, NULL);
    if (!json_is_object(j)) {
        *retry = 1;
        json_decref(j);
        return cs_error_set(CS_EPROVIDER,
                            "%s at %s: the answer (HTTP %ld, %zu bytes) is not a JSON object; it "
                            "may have been cut off",
                            action, endpoint, resp->status, resp->len);
    }
    if (json_is_string(json_object_get(j, "Code"))) {
        const char *code = json_string_value(json_object_get(j, "Code"));
        const char *msg = json_string_value(json_object_get(j, "Message"));
        const char *rid = json_string_value(json_object_get(j, "RequestId"));

        snprintf(code_out, code_size, "%s", code);
        *retry = retryable_code(code) || resp->status >= 500;
        rc = cs_error_set(CS_EPROVIDER, "%s at %s failed: %s: %s (HTTP %ld, RequestId %s)", action,
                          endpoint, code, msg ? msg : "", resp->status, rid ? rid : "none");
        json_decref(j);
        return rc;
    }
    if (resp->status != 200) {
        *retry = resp->status >= 500;
        json_decref(j);
        return cs_error_set(CS_EPROVIDER, "%s at %s failed: HTTP %ld without an error code", action,
                            endpoint, resp->status);
    }
    *out = j;
    return CS_OK;
}

int cs_aliyun_list_page(json_t *page, json_t *all)
{
    json_t *list = json_object_get(page, "CertificateOrderList");
    long long total = json_integer_value(json_object_get(page, "TotalCount"));

    json_array_extend(all, list);
    return json_array_size(list) > 0 && (long long)json_array_size(all) < total;
}
