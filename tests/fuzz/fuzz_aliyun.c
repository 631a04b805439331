/*
 * Fuzz target: the certificate service's JSON answers (cs_aliyun.c), which
 * come from the network.
 *
 * Input: the body of an HTTP 200 answer. It goes through cs_aliyun_answer
 * (what every call does with an answer: JSON object, error Code/Message/
 * RequestId), then is read as a ListUserCertificateOrder page
 * (cs_aliyun_list_page, cs_aliyun_pick by id and by names, cs_json_id) and
 * as a GetUserCertificateDetail answer (Cert and Key to cs_bundle_load_pem,
 * as the sync's fetch_detail does). A refused answer must say which action
 * and which endpoint.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cs_aliyun.h"
#include "cs_aliyun_parse.h"
#include "cs_bundle.h"
#include "fuzz_util.h"

#define ACTION "ListUserCertificateOrder"
#define ENDPOINT "https://cas.example.test"

static const char *const one[] = {"shop.example.com"};
static const char *const two[] = {"*.example.com", "example.com"};

static void read_list(json_t *page)
{
    json_t *all = json_array(), *e;
    char id[32];
    size_t i;

    if (all == NULL)
        fuzz_fail("out of memory");
    /* the same page twice: a second page of the same account */
    if (cs_aliyun_list_page(page, all))
        cs_aliyun_list_page(page, all);
    json_array_foreach(all, i, e) cs_json_id(json_object_get(e, "CertificateId"), id, sizeof(id));
    e = cs_aliyun_pick(all, "14223350", NULL, 0);
    if (e && (cs_json_id(json_object_get(e, "CertificateId"), id, sizeof(id)),
              strcmp(id, "14223350") != 0))
        fuzz_fail("cs_aliyun_pick by id 14223350 picked %s", id);
    cs_aliyun_pick(all, NULL, one, 1);
    cs_aliyun_pick(all, NULL, two, 2);
    json_decref(all);
}

static void read_detail(json_t *d)
{
    const char *cert = json_string_value(json_object_get(d, "Cert"));
    const char *key = json_string_value(json_object_get(d, "Key"));
    cs_bundle *b = NULL;
    cs_rc rc;

    if (cert == NULL || *cert == '\0' || key == NULL || *key == '\0')
        return;
    rc = cs_bundle_load_pem(cert, strlen(cert), key, strlen(key), "fuzz detail", &b);
    fuzz_note("detail: cs_bundle_load_pem", rc);
    cs_bundle_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cs_http_response resp;
    char code[128];
    json_t *j = NULL;
    int retry;
    cs_rc rc;

    memset(&resp, 0, sizeof(resp));
    resp.status = 200;
    resp.len = size;
    resp.body = malloc(size + 1);
    if (resp.body == NULL)
        fuzz_fail("out of memory");
    memcpy(resp.body, data, size);
    resp.body[size] = '\0';
    rc = cs_aliyun_answer(ACTION, ENDPOINT, &resp, code, sizeof(code), &j, &retry);
    fuzz_note("cs_aliyun_answer", rc);
    if (rc == CS_OK) {
        read_list(j);
        read_detail(j);
        json_decref(j);
    } else if (strstr(cs_error_last(), ACTION " at " ENDPOINT) == NULL) {
        fuzz_fail("a refused answer does not name the action and the endpoint: %s",
                  cs_error_last());
    }
    free(resp.body);
    cs_error_clear();
    return 0;
}
