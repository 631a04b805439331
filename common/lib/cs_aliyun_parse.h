/*
 * certsync: reading the service's answers, apart from sending requests.
 *
 * Private to libcertsync (not in common/include): cs_aliyun.c calls these for
 * every answer, and the fuzz targets (tests/fuzz) feed them bytes directly.
 */
#ifndef CS_ALIYUN_PARSE_H
#define CS_ALIYUN_PARSE_H

#include <jansson.h>
#include <stddef.h>

#include "cs_error.h"
#include "cs_http.h"

/*
 * One HTTP answer to action at endpoint: the JSON object on success, else an
 * error that keeps the service's Code (also copied to code), Message and
 * RequestId. *retry says whether another attempt may help.
 */
cs_rc cs_aliyun_answer(const char *action, const char *endpoint, const cs_http_response *resp,
                       char *code, size_t code_size, json_t **out, int *retry);

/*
 * Append the CertificateOrderList of one ListUserCertificateOrder page to all;
 * 1 when another page is to be asked for, -1 when out of memory.
 */
int cs_aliyun_list_page(json_t *page, json_t *all);

#endif
