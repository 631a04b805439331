/*
 * Applying for a certificate: place the order, then one DescribeCertificateState
 * per step, read into a cs_apply_state. The driver prints and waits.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_aliyun.h"
#include "cs_apply.h"
#include "cs_apply_map.h"
#include "cs_challenge.h"
#include "cs_escape.h"
#include "cs_http.h"

#define DEFAULT_PRODUCT "digicert-free-1-free"

struct cs_apply {
    cs_aliyun *client; /* borrowed */
    char *domain;
    char order[32];
    json_t *answer; /* the last DescribeCertificateState answer */
    char *seen;     /* the validation data a step last called fresh */
};

/* The service's states of an order, their console words and what they mean here. */
static const struct {
    const char *type, *words;
    cs_apply_phase phase;
} states[] = {{"domain_verify", "pending verification", CS_APPLY_PENDING},
              {"process", "in review", CS_APPLY_REVIEW},
              {"certificate", "issued", CS_APPLY_ISSUED},
              {"verify_fail", "failed", CS_APPLY_FAILED},
              {"payed", "paid", CS_APPLY_OTHER}};

#define N_STATES (sizeof(states) / sizeof(states[0]))

const char *cs_apply_words(const char *type)
{
    size_t i;

    for (i = 0; i < N_STATES; i++)
        if (strcmp(states[i].type, type) == 0)
            return states[i].words;
    return type;
}

static cs_apply_phase phase_of(const char *type)
{
    size_t i;

    for (i = 0; i < N_STATES; i++)
        if (strcmp(states[i].type, type) == 0)
            return states[i].phase;
    return CS_APPLY_OTHER;
}

/* Order ids are int64 in the service: digits only, so one can name nothing else. */
static int is_id(const char *s)
{
    size_t n = strspn(s, "0123456789");

    return n > 0 && n <= 19 && s[n] == '\0';
}

static const char *text(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));

    return v ? v : "";
}

cs_rc cs_apply_order_request(const cs_apply_request *req, cs_kv *q, const char **action)
{
    const char *rows[][2] = {{"Domain", req->domain},
                             {"ValidateType", req->validate == CS_APPLY_DNS ? "DNS" : "FILE"},
                             {"ProductCode", req->product ? req->product : DEFAULT_PRODUCT},
                             {"Username", req->username},
                             {"Phone", req->phone},
                             {"Email", req->email}};
    size_t i;

    cs_kv_init(q);
    if ((req->username || req->phone || req->email) && !(req->username && req->phone && req->email))
        return cs_error_set(CS_EINVAL,
                            "apply for %s: give the contact's username, phone and "
                            "email together, or none of them",
                            req->domain);
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        if (rows[i][1] && cs_kv_set(q, rows[i][0], rows[i][1]) != CS_OK) {
            cs_kv_clear(q);
            return cs_error_code();
        }
    *action = req->username ? "CreateCertificateRequest" : "CreateCertificateForPackageRequest";
    return CS_OK;
}

static cs_rc map_validation(json_t *answer, const char *order, cs_apply_state *out)
{
    int dns = strcmp(text(answer, "ValidateType"), "DNS") == 0;

    out->validation.kind = dns ? CS_APPLY_DNS : CS_APPLY_FILE;
    out->validation.uri = text(answer, "Uri");
    out->validation.content = text(answer, "Content");
    out->validation.record_domain = text(answer, "RecordDomain");
    out->validation.record_type = text(answer, "RecordType");
    out->validation.record_value = text(answer, "RecordValue");
    if (!dns && *out->validation.content == '\0')
        return cs_error_set(CS_EPROVIDER,
                            "DescribeCertificateState of order %s: FILE validation "
                            "without a Content to publish; ask the service",
                            order);
    if (dns && (*out->validation.record_domain == '\0' || *out->validation.record_value == '\0'))
        return cs_error_set(CS_EPROVIDER,
                            "DescribeCertificateState of order %s: DNS validation "
                            "without a RecordDomain or RecordValue; ask the service",
                            order);
    return CS_OK;
}

cs_rc cs_apply_map(json_t *answer, const char *order, cs_apply_state *out)
{
    const char *type = text(answer, "Type");

    memset(out, 0, sizeof(*out));
    if (*type == '\0')
        return cs_error_set(CS_EPROVIDER,
                            "DescribeCertificateState of order %s: the answer has no Type", order);
    out->type = type;
    out->words = cs_apply_words(type);
    out->phase = phase_of(type);
    if (out->phase == CS_APPLY_PENDING)
        return map_validation(answer, order, out);
    if (out->phase == CS_APPLY_ISSUED)
        cs_json_id(json_object_get(answer, "CertId"), out->cert_id, sizeof(out->cert_id));
    if (out->phase == CS_APPLY_FAILED)
        snprintf(out->reason, sizeof(out->reason), "order %s failed review", order);
    return CS_OK;
}

json_t *cs_apply_line(json_t *answer, const char *order)
{
    json_t *line = json_object(), *v;
    const char *k;
    int bad = line == NULL;

    /* a shallow copy: the key is neither shown nor duplicated */
    json_object_foreach(answer, k, v)
    {
        if (!bad && strcmp(k, "PrivateKey") != 0)
            bad = json_object_set(line, k, v) != 0;
    }
    if (bad || json_object_set_new(line, "OrderId", json_string(order)) != 0 ||
        json_object_set_new(line, "status", json_string(cs_apply_words(text(answer, "Type"))))) {
        json_decref(line);
        return NULL;
    }
    return line;
}

/* The last answer is dropped, its private key wiped first. */
static void forget(cs_apply *ap)
{
    const char *key = json_string_value(json_object_get(ap->answer, "PrivateKey"));

    if (key)
        OPENSSL_cleanse((void *)key, strlen(key));
    json_decref(ap->answer);
    ap->answer = NULL;
}

static cs_rc place_order(cs_apply *ap, const cs_apply_request *req)
{
    const char *action;
    char shown[64];
    json_t *r;
    cs_kv q;
    cs_rc rc;

    if (cs_apply_order_request(req, &q, &action) != CS_OK)
        return cs_error_code();
    rc = cs_aliyun_call(ap->client, action, &q, &r);
    cs_kv_clear(&q);
    if (rc != CS_OK)
        return rc;
    cs_json_id(json_object_get(r, "OrderId"), ap->order, sizeof(ap->order));
    json_decref(r);
    if (!is_id(ap->order))
        return cs_error_set(CS_EPROVIDER, "the service answered the order id '%s', not a number",
                            cs_escape(ap->order, shown, sizeof(shown)));
    return CS_OK;
}

cs_rc cs_apply_start(cs_aliyun *client, const cs_apply_request *req, cs_apply **out)
{
    cs_apply *ap;
    char shown[64];
    cs_rc rc = CS_OK;

    *out = NULL;
    if (req->domain == NULL || *req->domain == '\0')
        return cs_error_set(CS_EINVAL, "apply: no domain to apply for");
    if (req->order && !is_id(req->order))
        return cs_error_set(CS_EINVAL, "'%s' is not an order id (digits)",
                            cs_escape(req->order, shown, sizeof(shown)));
    if ((ap = calloc(1, sizeof(*ap))) == NULL || (ap->domain = strdup(req->domain)) == NULL) {
        free(ap);
        return cs_error_set(CS_ENOMEM, "out of memory");
    }
    ap->client = client;
    if (req->order)
        snprintf(ap->order, sizeof(ap->order), "%s", req->order);
    else
        rc = place_order(ap, req);
    if (rc != CS_OK) {
        cs_apply_free(ap);
        return rc;
    }
    *out = ap;
    return CS_OK;
}

const char *cs_apply_order(const cs_apply *ap)
{
    return ap->order;
}

int cs_apply_fresh(cs_apply *ap, const cs_apply_state *st)
{
    const char *data =
        st->validation.kind == CS_APPLY_DNS ? st->validation.record_value : st->validation.content;

    if (ap->seen && strcmp(ap->seen, data) == 0)
        return 0;
    free(ap->seen);
    ap->seen = strdup(data); /* when out of memory the next step publishes again: harmless */
    return 1;
}

cs_rc cs_apply_step(cs_apply *ap, cs_apply_state *state)
{
    json_t *r;
    cs_kv q;
    cs_rc rc;

    memset(state, 0, sizeof(*state));
    cs_kv_init(&q);
    if (cs_kv_set(&q, "OrderId", ap->order) != CS_OK)
        return cs_error_code();
    rc = cs_aliyun_call(ap->client, "DescribeCertificateState", &q, &r);
    cs_kv_clear(&q);
    if (rc != CS_OK)
        return rc;
    forget(ap);
    ap->answer = r;
    if (cs_apply_map(r, ap->order, state) != CS_OK)
        return cs_error_code();
    if (state->phase == CS_APPLY_PENDING)
        state->validation.fresh = cs_apply_fresh(ap, state);
    return CS_OK;
}

/* The last step's state, when it was phase (and the answer is whole). */
static int last_was(cs_apply *ap, cs_apply_phase phase, cs_apply_state *st)
{
    if (ap->answer == NULL || cs_apply_map(ap->answer, ap->order, st) != CS_OK) {
        cs_error_clear();
        return 0;
    }
    return st->phase == phase;
}

cs_rc cs_apply_publish(cs_apply *ap, cs_store *s)
{
    cs_apply_state st;

    if (!last_was(ap, CS_APPLY_PENDING, &st) || st.validation.kind != CS_APPLY_FILE)
        return cs_error_set(CS_EINVAL,
                            "order %s: no validation file to publish (its last state "
                            "is not a FILE validation)",
                            ap->order);
    return cs_store_write_challenge(s, ap->domain, "pki-validation", "fileauth.txt",
                                    st.validation.content);
}

cs_rc cs_apply_bundle(cs_apply *ap, cs_bundle **out)
{
    const char *cert, *key;
    char origin[200];
    cs_apply_state st;
    cs_rc rc;

    *out = NULL;
    if (!last_was(ap, CS_APPLY_ISSUED, &st))
        return cs_error_set(CS_EINVAL, "order %s is not issued (its last state)", ap->order);
    cert = text(ap->answer, "Certificate");
    key = text(ap->answer, "PrivateKey");
    snprintf(origin, sizeof(origin), "certificate of order %s (DescribeCertificateState)",
             ap->order);
    rc = cs_bundle_load_pem(cert, strlen(cert), key, strlen(key), origin, out);
    if (rc == CS_OK && (rc = cs_aliyun_verify_trust(ap->client, *out, origin)) != CS_OK) {
        cs_bundle_free(*out);
        *out = NULL;
    }
    OPENSSL_cleanse((void *)key, strlen(key));
    return rc;
}

char *cs_apply_json(const cs_apply *ap)
{
    json_t *line = ap->answer ? cs_apply_line(ap->answer, ap->order) : NULL;
    char *s = line ? json_dumps(line, JSON_COMPACT) : NULL;

    json_decref(line);
    return s;
}

void cs_apply_free(cs_apply *ap)
{
    if (ap == NULL)
        return;
    forget(ap);
    free(ap->seen);
    free(ap->domain);
    free(ap);
}

/* The body without the line end a server or an editor may add. */
static size_t trimmed(const char *s, size_t n)
{
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        n--;
    return n;
}

cs_rc cs_apply_check_answer(const char *domain, const char *connect_to, const char *expected)
{
    static const char fix[] =
        "turn on validation answers in the server that answers it on port 80 (nginx: "
        "certsync_validation on; Apache: CertSyncValidation on), or give --webroot its "
        "document root";
    char url[400], via[300] = "";
    cs_http_request req = {.method = "GET",
                           .url = url,
                           .connect_timeout_ms = 10000,
                           .timeout_ms = 20000,
                           .allow_http = 1,
                           .connect_to = connect_to};
    cs_http_response resp;
    size_t n = strlen(expected);
    cs_rc rc;

    snprintf(url, sizeof(url), "http://%s" CS_CHALLENGE_PKI_PATH, domain);
    if (connect_to)
        snprintf(via, sizeof(via), " (through %s)", connect_to);
    if (cs_http_perform(&req, &resp) != CS_OK)
        return cs_error_code();
    if (resp.transport_error)
        rc = cs_error_set(CS_ENOTFOUND,
                          "%s%s: no answer (%s); the service fetches this URL: %s must resolve "
                          "to the server and its port 80 be open",
                          url, via, resp.error, domain);
    else if (resp.status != 200)
        rc = cs_error_set(CS_ENOTFOUND, "%s%s answered HTTP %ld, not the file; %s", url, via,
                          resp.status, fix);
    else if (trimmed(resp.body, resp.len) != trimmed(expected, n) ||
             memcmp(resp.body, expected, trimmed(expected, n)) != 0)
        rc = cs_error_set(CS_ENOTFOUND,
                          "%s%s answered HTTP 200 with other content (%zu bytes) than the file "
                          "just written: another server, virtual host or static file answers "
                          "it; %s",
                          url, via, resp.len, fix);
    else
        rc = CS_OK;
    cs_http_response_clear(&resp);
    return rc;
}
