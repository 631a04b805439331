#include "cs_aliyun.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
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
#include "cs_time.h"

struct cs_aliyun {
    char *endpoint; /* https://host[:port] */
    char *host;     /* host[:port] as sent in Host */
    char *ca_file;
    char *trust_file;
    char *credentials;
    char *metadata_url;
    int v1;
    long timeout_ms;
    int retries;
    const char *version; /* the product's API version (a static string) */
    cs_aliyun_cred cred;
    size_t answer_bytes; /* size of the last answer */
    char last_code[128];
};

/*
 * The official SDK's endpoint map (@alicloud/cas20200407 3.0.0, endpointRule "regional"):
 * these regions use the central endpoint cas.aliyuncs.com; every other region
 * cas.REGION.aliyuncs.com. tests/interop/test_sdk_conformance.py compares it with the SDK.
 */
static const char *const central[] = {"ap-northeast-2-pop",
                                      "ap-southeast-3",
                                      "ap-southeast-5",
                                      "cn-beijing",
                                      "cn-beijing-finance-1",
                                      "cn-beijing-finance-pop",
                                      "cn-beijing-gov-1",
                                      "cn-beijing-nu16-b01",
                                      "cn-chengdu",
                                      "cn-edge-1",
                                      "cn-fujian",
                                      "cn-haidian-cm12-c01",
                                      "cn-hangzhou",
                                      "cn-hangzhou-bj-b01",
                                      "cn-hangzhou-finance",
                                      "cn-hangzhou-internal-prod-1",
                                      "cn-hangzhou-internal-test-1",
                                      "cn-hangzhou-internal-test-2",
                                      "cn-hangzhou-internal-test-3",
                                      "cn-hangzhou-test-306",
                                      "cn-hongkong",
                                      "cn-hongkong-finance-pop",
                                      "cn-huhehaote",
                                      "cn-huhehaote-nebula-1",
                                      "cn-north-2-gov-1",
                                      "cn-qingdao",
                                      "cn-qingdao-nebula",
                                      "cn-shanghai",
                                      "cn-shanghai-et15-b01",
                                      "cn-shanghai-et2-b01",
                                      "cn-shanghai-finance-1",
                                      "cn-shanghai-inner",
                                      "cn-shanghai-internal-test-1",
                                      "cn-shenzhen",
                                      "cn-shenzhen-finance-1",
                                      "cn-shenzhen-inner",
                                      "cn-shenzhen-st4-d01",
                                      "cn-shenzhen-su18-b01",
                                      "cn-wuhan",
                                      "cn-wulanchabu",
                                      "cn-yushanfang",
                                      "cn-zhangbei",
                                      "cn-zhangbei-na61-b01",
                                      "cn-zhangjiakou",
                                      "cn-zhangjiakou-na62-a01",
                                      "cn-zhengzhou-nebula-1",
                                      "eu-west-1",
                                      "eu-west-1-oxs",
                                      "rus-west-1-pop",
                                      "us-east-1",
                                      "us-west-1",
                                      NULL};

cs_rc cs_aliyun_region_host(const char *region, char *host, size_t size)
{
    size_t i;

    if (*region == '\0' || strlen(region) > 64 ||
        strspn(region, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(region))
        return cs_error_set(CS_ECONFIG,
                            "region '%s' is not a region id (lower-case letters, digits and '-', "
                            "e.g. cn-hangzhou)",
                            region);
    for (i = 0; central[i]; i++)
        if (strcmp(region, central[i]) == 0) {
            snprintf(host, size, "cas.aliyuncs.com");
            return CS_OK;
        }
    snprintf(host, size, "cas.%s.aliyuncs.com", region);
    return CS_OK;
}

cs_rc cs_aliyun_new(const cs_aliyun_opts *o, cs_aliyun **out)
{
    cs_aliyun *c = calloc(1, sizeof(*c));
    const char *region = o->region ? o->region : "cn-hangzhou";
    char url[512], host[128];

    if (c == NULL)
        return cs_error_set(CS_ENOMEM, "out of memory");
    if (o->endpoint) {
        snprintf(url, sizeof(url), "%s", o->endpoint);
        url[strcspn(url, "?#")] = '\0';
        if (url[strlen(url) - 1] == '/')
            url[strlen(url) - 1] = '\0';
    } else if (cs_aliyun_region_host(region, host, sizeof(host)) == CS_OK) {
        snprintf(url, sizeof(url), "https://%s", host);
    } else {
        free(c);
        return cs_error_code();
    }
    if (strncmp(url, "https://", 8) != 0 || strchr(url + 8, '/')) {
        free(c);
        return cs_error_set(CS_ECONFIG, "the endpoint '%s' must be https://HOST[:PORT]", url);
    }
    c->endpoint = strdup(url);
    c->host = strdup(url + 8);
    c->ca_file = o->ca_file ? strdup(o->ca_file) : NULL;
    c->trust_file = o->trust_file ? strdup(o->trust_file) : NULL;
    c->credentials = strdup(o->credentials ? o->credentials : "default");
    c->metadata_url = o->metadata_url ? strdup(o->metadata_url) : NULL;
    if (!c->endpoint || !c->host || (o->ca_file && !c->ca_file) ||
        (o->trust_file && !c->trust_file) || !c->credentials ||
        (o->metadata_url && !c->metadata_url)) {
        cs_aliyun_free(c);
        return cs_error_set(CS_ENOMEM, "out of memory");
    }
    c->v1 = o->signature_v1;
    c->version = o->version ? o->version : CS_CAS_VERSION;
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
    o.trust_file = pv->trust_file;
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
    free(c->trust_file);
    free(c->credentials);
    free(c->metadata_url);
    free(c);
}

const char *cs_aliyun_endpoint(const cs_aliyun *c)
{
    return c->endpoint;
}

cs_rc cs_aliyun_verify_trust(const cs_aliyun *c, const cs_bundle *b, const char *origin)
{
    /* key, links and dates first: their messages say more than "not trusted" */
    if (cs_bundle_validate(b, NULL, 0, time(NULL), origin) != CS_OK)
        return cs_error_code();
    return cs_bundle_verify_trust(b, c->trust_file, origin);
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

static int overflows(const char *digits, size_t n)
{
    char num[32];

    if (n < 19)
        return 0;
    snprintf(num, sizeof(num), "%.*s", (int)(n < 31 ? n : 31), digits);
    errno = 0;
    return strtoll(num, NULL, 10) && errno == ERANGE;
}

/*
 * Copy of text where every integer literal outside strings that overflows
 * 64 bits gets "e0" appended, so that jansson reads it as a real.
 */
static int num_char(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch != '\0' && strchr(".eE+-", ch) != NULL);
}

static char *reals_for_huge_integers(const char *text, size_t len, size_t *out_len)
{
    char *out = malloc(len + len / 2 + 3), *o = out;
    size_t i = 0, j, int_end;
    int in_str = 0;

    if (out == NULL)
        return NULL;
    while (i < len) {
        char ch = text[i];

        if (in_str || (ch != '-' && (ch < '0' || ch > '9'))) {
            if (ch == '"')
                in_str = !in_str;
            else if (in_str && ch == '\\' && i + 1 < len)
                *o++ = text[i++];
            *o++ = text[i++];
            continue;
        }
        /* a number, copied whole: its integer part, then any fraction or exponent */
        for (j = i + 1; j < len && text[j] >= '0' && text[j] <= '9'; j++)
            ;
        int_end = j;
        while (j < len && num_char(text[j]))
            j++;
        memcpy(o, text + i, j - i);
        o += j - i;
        if (j == int_end && overflows(text + i, j - i)) {
            *o++ = 'e';
            *o++ = '0';
        }
        i = j;
    }
    *out_len = (size_t)(o - out);
    return out;
}

json_t *cs_json_parse(const char *text, size_t len)
{
    json_error_t err;
    json_t *j = json_loadb(text, len, 0, &err);
    char *copy;
    size_t n;

    /* one huge number the client never reads must not fail a whole answer */
    if (j != NULL || json_error_code(&err) != json_error_numeric_overflow)
        return j;
    copy = reals_for_huge_integers(text, len, &n);
    if (copy == NULL)
        return NULL;
    j = json_loadb(copy, n, 0, NULL);
    OPENSSL_cleanse(copy, n);
    free(copy);
    return j;
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

static void now_iso(char out[CS_TIME_ISO_SIZE])
{
    cs_time_iso(time(NULL), out);
}

/*
 * v3 actions whose parameters go in a form body rather than the URL, which
 * proxies and servers log: a private key, contact details.
 */
static const char *const form_actions[] = {"UploadUserCertificate", "CreateCertificateRequest",
                                           NULL};

static int in_form_body(const char *action)
{
    size_t i;

    for (i = 0; form_actions[i]; i++)
        if (strcmp(action, form_actions[i]) == 0)
            return 1;
    return 0;
}

/* Set each pair whose value is not NULL; out of memory leaves kv partly set. */
static cs_rc set_rows(cs_kv *kv, const char *rows[][2], size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (rows[i][1] && cs_kv_set(kv, rows[i][0], rows[i][1]) != CS_OK)
            return cs_error_code();
    return CS_OK;
}

/*
 * v3: the parameters in the query as the official SDK sends them, or in a
 * form body (its SHA-256 and content-type signed) for form_actions.
 */
static cs_rc build_v3(cs_aliyun *c, const char *action, const cs_kv *params, cs_kv *headers,
                      char **url, char **body)
{
    char date[32], n[33], hash[65], *q;
    cs_signature sig;
    cs_kv none;
    int form = in_form_body(action) && params->n > 0;
    const char *tok = c->cred.token;
    const char *rows[][2] = {{"host", c->host},
                             {"content-type", form ? "application/x-www-form-urlencoded" : NULL},
                             {"x-acs-action", action},
                             {"x-acs-version", c->version},
                             {"x-acs-date", date},
                             {"x-acs-signature-nonce", n},
                             {"x-acs-content-sha256", hash},
                             {"x-acs-accesskey-id", tok ? c->cred.id : NULL},
                             {"x-acs-security-token", tok}};
    cs_rc rc;

    q = cs_canonical_query(params);
    if (q == NULL)
        return cs_error_set(CS_ENOMEM, "out of memory");
    now_iso(date);
    nonce(n);
    cs_sha256_hex(form ? q : "", form ? strlen(q) : 0, hash);
    cs_kv_init(&none);
    if (set_rows(headers, rows, sizeof(rows) / sizeof(rows[0])) != CS_OK ||
        cs_sign_v3("POST", form ? &none : params, headers, c->cred.id, c->cred.secret, &sig) !=
            CS_OK) {
        OPENSSL_cleanse(q, strlen(q));
        free(q);
        return cs_error_code();
    }
    rc = cs_kv_set(headers, "Authorization", sig.authorization);
    cs_signature_clear(&sig);
    if (rc != CS_OK ||
        asprintf(url, "%s/%s%s", c->endpoint, q[0] && !form ? "?" : "", form ? "" : q) < 0) {
        OPENSSL_cleanse(q, strlen(q));
        free(q);
        return cs_error_set(CS_ENOMEM, "out of memory");
    }
    if (form)
        *body = q;
    else
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
    const char *rows[][2] = {{"Action", action},
                             {"Version", c->version},
                             {"Format", "JSON"},
                             {"AccessKeyId", c->cred.id},
                             {"SignatureMethod", "HMAC-SHA1"},
                             {"SignatureVersion", "1.0"},
                             {"SignatureNonce", n},
                             {"Timestamp", date},
                             {"SecurityToken", c->cred.token}};

    now_iso(date);
    nonce(n);
    cs_kv_init(&all);
    rc = CS_OK;
    for (i = 0; i < params->n && rc == CS_OK; i++)
        rc = cs_kv_set(&all, params->names[i], params->values[i]);
    if (rc == CS_OK)
        rc = set_rows(&all, rows, sizeof(rows) / sizeof(rows[0]));
    if (rc == CS_OK)
        rc = cs_kv_set(headers, "Content-Type", "application/x-www-form-urlencoded");
    if (rc == CS_OK)
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
        if (rc == CS_OK && (url = strdup(c->endpoint)) == NULL)
            rc = cs_error_set(CS_ENOMEM, "out of memory");
    } else {
        rc = build_v3(c, action, params, &headers, &url, &body);
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
    req.env_proxy = 1;
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
    c->answer_bytes = resp.len;
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
    if (params && params->failed)
        return cs_error_set(CS_ENOMEM, "%s: out of memory building its parameters", action);
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

/*
 * A hostile or broken service could page forever: the list stops at a short
 * page, and more than CS_LIST_MAX entries or CS_LIST_MAX_BYTES of answers is
 * an error (a real account holds far fewer certificates).
 */
#define CS_LIST_PAGE 50
#define CS_LIST_MAX 10000
#define CS_LIST_MAX_BYTES (32 * 1024 * 1024)

static cs_rc list_page(cs_aliyun *c, const char *order_type, const char *status,
                       const char *keyword, int p, json_t **page)
{
    char num[32], size[16];
    const char *rows[][2] = {{"CurrentPage", num},
                             {"ShowSize", size},
                             {"OrderType", order_type},
                             {"Status", status},
                             {"Keyword", keyword}};
    cs_kv q;
    cs_rc rc;

    cs_kv_init(&q);
    snprintf(num, sizeof(num), "%d", p);
    snprintf(size, sizeof(size), "%d", CS_LIST_PAGE);
    rc = set_rows(&q, rows, sizeof(rows) / sizeof(rows[0]));
    if (rc == CS_OK)
        rc = cs_aliyun_call(c, "ListUserCertificateOrder", &q, page);
    cs_kv_clear(&q);
    return rc;
}

cs_rc cs_aliyun_list(cs_aliyun *c, const char *order_type, const char *status, const char *keyword,
                     json_t **entries)
{
    json_t *all = json_array(), *page;
    size_t bytes = 0;
    long long total;
    int p, more;
    cs_rc rc = CS_OK;

    if (all == NULL)
        return cs_error_set(CS_ENOMEM, "out of memory listing certificates");
    for (p = 1;; p++) {
        rc = list_page(c, order_type, status, keyword, p, &page);
        if (rc != CS_OK)
            break;
        bytes += c->answer_bytes;
        total = json_integer_value(json_object_get(page, "TotalCount"));
        more = cs_aliyun_list_page(page, all);
        json_decref(page);
        if (more < 0) {
            rc = cs_error_set(CS_ENOMEM, "out of memory collecting ListUserCertificateOrder pages");
            break;
        }
        if (json_array_size(all) > CS_LIST_MAX || bytes > CS_LIST_MAX_BYTES) {
            rc = cs_error_set(CS_EPROVIDER,
                              "ListUserCertificateOrder at %s: the list holds more than %d "
                              "entries or %d MiB (%zu entries, %zu KiB read by page %d, "
                              "TotalCount %lld); certsync stops there. Delete unused "
                              "certificates, or check that the endpoint is the service",
                              c->endpoint, CS_LIST_MAX, CS_LIST_MAX_BYTES >> 20,
                              json_array_size(all), bytes >> 10, p, total);
            break;
        }
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

/* Does the certificate name pattern (maybe "*.x"), plen bytes, cover the configured name? */
static int covers(const char *pattern, size_t plen, const char *name)
{
    const char *dot;

    if (plen == strlen(name) && strncasecmp(pattern, name, plen) == 0)
        return 1;
    if (plen < 3 || strncmp(pattern, "*.", 2) != 0 || strncmp(name, "*.", 2) == 0)
        return 0;
    dot = strchr(name, '.');
    return dot && dot != name && strlen(dot + 1) == plen - 2 &&
           strncasecmp(dot + 1, pattern + 2, plen - 2) == 0;
}

/* Does a name of the comma or space separated list cover name? Lists may be long (SANs). */
static int list_covers(const char *list, const char *name)
{
    const char *p = list ? list : "";
    size_t n;

    while (*p) {
        p += strspn(p, ", ");
        n = strcspn(p, ", ");
        if (n > 0 && covers(p, n, name))
            return 1;
        p += n;
    }
    return 0;
}

static int entry_covers(json_t *e, const char *const *domains, size_t n_domains)
{
    const char *cn = json_string_value(json_object_get(e, "CommonName"));
    const char *sans = json_string_value(json_object_get(e, "Sans"));
    size_t i;

    for (i = 0; i < n_domains; i++)
        if (!list_covers(cn, domains[i]) && !list_covers(sans, domains[i]))
            return 0;
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

/*
 * A one-line English hint for the service's common codes: its messages often come in Chinese
 * only ("证书订单状态错误。"). Shown beside the code and the message, never instead.
 */
static const struct {
    const char *action, *code, *hint; /* action NULL: any */
} hints[] = {
    {"DeleteUserCertificate", "*",
     "only expired or uploaded certificates can be deleted; an issued one is revoked with "
     "`certsync revoke ORDER`"},
    {"RenewCertificateOrderForPackageRequest", "OrderStateError",
     "only an order that expires soon (\"expiring soon\" in `certsync list`) can be renewed"},
    {"DeleteCertificateRequest", "OrderStateError",
     "only a failed or withdrawn order can be deleted: withdraw the order first (`certsync "
     "withdraw ORDER`)"},
    {NULL, "OrderStateError",
     "the order's state does not allow this (see `certsync list`): withdraw the order first, "
     "or wait until it is issued"},
    {NULL, "NotFound",
     "no such certificate or order in this account and region: check the id with `certsync "
     "list` and the provider's region"},
    {NULL, "NotFoundOrder",
     "no such order in this account and region: check the order id with `certsync list`"},
    {NULL, "InvalidAccessKeyId.NotFound",
     "the service does not know this access key id: check the provider's credentials"},
    {NULL, "InvalidAccessKeyId.Inactive",
     "the access key is disabled: enable it in the RAM console or use another"},
    {NULL, "SignatureDoesNotMatch",
     "the access key secret is wrong, or something altered the request; `certsync aliyun "
     "sign` shows what certsync signs"},
    {NULL, "InvalidTimeStamp.Expired",
     "this machine's clock is more than 15 minutes off: synchronise it (NTP)"},
    {NULL, "InvalidSecurityToken.Expired", "the STS token has expired: refresh the credentials"},
    {NULL, "Forbidden.RAM",
     "the RAM user or role lacks the permission: grant yundun-cert:<action> (e.g. the "
     "policy AliyunYundunCertFullAccess)"},
    {NULL, "NoPermission",
     "the RAM user or role lacks the permission: grant yundun-cert:<action> (e.g. the "
     "policy AliyunYundunCertFullAccess)"},
    {NULL, "Throttling.User", "the service is throttling this account: try again later"},
    {NULL, "Throttling.Api", "the service is throttling this action: try again later"},
    {NULL, "NotFoundPackage",
     "the account has no package of this product: buy one, or choose another --product"},
    {NULL, "NotRemainCount",
     "the product's quota is used up (`certsync quota`): delete failed orders or buy more"},
    {NULL, "ParamRepeat", "the name is taken: choose another, or `certsync upload --replace`"},
    {NULL, "InvalidSource.Content.Malformed",
     "the certificate or key is not PEM the service accepts (certificates, then a "
     "traditional \"BEGIN RSA/EC PRIVATE KEY\")"},
    {NULL, "CertificateChainNotMatch",
     "the key does not belong to the certificate, or the chain is out of order"},
};

const char *cs_aliyun_hint(const char *action, const char *code)
{
    size_t i;

    for (i = 0; i < sizeof(hints) / sizeof(hints[0]); i++)
        if ((hints[i].action == NULL || strcmp(hints[i].action, action) == 0) &&
            (strcmp(hints[i].code, "*") == 0 ? strcmp(code, "NotFound") != 0
                                             : strcmp(hints[i].code, code) == 0))
            return hints[i].hint;
    return NULL;
}

cs_rc cs_aliyun_answer(const char *action, const char *endpoint, const cs_http_response *resp,
                       char *code_out, size_t code_size, json_t **out, int *retry)
{
    json_t *j;
    cs_rc rc;

    *retry = 0;
    code_out[0] = '\0';
    if (resp->too_large)
        return cs_error_set(CS_EPROVIDER,
                            "%s at %s: the answer is over %d MiB (HTTP %ld, RequestId %s); "
                            "certsync reads no answer that large, report it to the service",
                            action, endpoint, CS_HTTP_MAX_BODY >> 20, resp->status,
                            resp->request_id[0] ? resp->request_id : "none");
    if (resp->transport_error) {
        *retry = 1;
        return cs_error_set(CS_EPROVIDER, "%s: cannot reach %s: %s%s", action, endpoint,
                            resp->error, resp->timed_out ? " (timed out)" : "");
    }
    j = cs_json_parse(resp->body, resp->len);
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
        const char *hint = cs_aliyun_hint(action, code);

        rc = cs_error_set(CS_EPROVIDER, "%s at %s failed: %s: %s (HTTP %ld, RequestId %s)%s%s",
                          action, endpoint, code, msg ? msg : "", resp->status, rid ? rid : "none",
                          hint ? "; " : "", hint ? hint : "");
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

    /* a short page ends the list, whatever TotalCount says */
    if (json_is_array(list) && json_array_extend(all, list) != 0)
        return -1;
    return json_array_size(list) >= CS_LIST_PAGE && (long long)json_array_size(all) < total;
}

/*
 * The key as the service's upload documentation shows it: traditional PEM ("BEGIN RSA
 * PRIVATE KEY", "BEGIN EC PRIVATE KEY"), which it asks PKCS#8 keys to be converted to.
 */
static cs_rc traditional_key(const cs_bundle *b, char **out, size_t *len)
{
    char *pkcs8 = NULL, *data;
    size_t n = 0;
    EVP_PKEY *k = NULL;
    BIO *in = NULL, *mem = NULL;
    long got;
    cs_rc rc = CS_OK;

    if (cs_bundle_pem_key(b, &pkcs8, &n) != CS_OK)
        return cs_error_code();
    if ((in = BIO_new_mem_buf(pkcs8, (int)n)) != NULL &&
        (k = PEM_read_bio_PrivateKey(in, NULL, NULL, NULL)) != NULL &&
        (mem = BIO_new(BIO_s_secmem())) != NULL &&
        PEM_write_bio_PrivateKey_traditional(mem, k, NULL, NULL, 0, NULL, NULL) == 1 &&
        (got = BIO_get_mem_data(mem, &data)) > 0 && (*out = malloc((size_t)got + 1)) != NULL) {
        memcpy(*out, data, (size_t)got);
        (*out)[got] = '\0';
        *len = (size_t)got;
    } else {
        rc = cs_error_set(CS_EBADCERT, "cannot write the private key in traditional PEM form");
    }
    OPENSSL_cleanse(pkcs8, n);
    free(pkcs8);
    BIO_free(in);
    BIO_free(mem); /* a secure-heap BIO: cleansed */
    EVP_PKEY_free(k);
    return rc;
}

cs_rc cs_aliyun_upload(cs_aliyun *c, const char *name, const cs_bundle *b, char *id, size_t size)
{
    char *cert = NULL, *chain = NULL, *key = NULL, *full = NULL;
    size_t cl, chl, kl = 0;
    json_t *r;
    cs_kv q;
    cs_rc rc;

    if ((rc = cs_bundle_pem_leaf(b, &cert, &cl)) == CS_OK &&
        (rc = cs_bundle_pem_issuers(b, &chain, &chl)) == CS_OK &&
        (rc = traditional_key(b, &key, &kl)) == CS_OK && asprintf(&full, "%s%s", cert, chain) < 0)
        rc = cs_error_set(CS_ENOMEM, "out of memory");
    if (rc == CS_OK) {
        cs_kv_init(&q);
        cs_kv_set(&q, "Name", name);
        cs_kv_set(&q, "Cert", full);
        cs_kv_set(&q, "Key", key);
        rc = cs_aliyun_call(c, "UploadUserCertificate", &q, &r);
        if (rc == CS_OK) {
            cs_json_id(json_object_get(r, "CertId"), id, size);
            json_decref(r);
        }
        cs_kv_clear(&q);
    }
    if (key)
        OPENSSL_cleanse(key, kl);
    free(cert);
    free(chain);
    free(key);
    free(full);
    return rc;
}

int cs_aliyun_name_taken(const cs_aliyun *c)
{
    const char *code = c->last_code;

    return strstr(cs_error_last(), "already exists") != NULL || strcmp(code, "NameRepeat") == 0 ||
           strcmp(code, "ParamRepeat") == 0 || strcmp(code, "NameExist") == 0;
}
