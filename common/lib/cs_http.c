#include "cs_http.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void init_curl(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_data(char *data, size_t size, size_t n, void *user)
{
    cs_http_response *r = user;
    size_t add = size * n;
    char *nb;

    if (r->len + add > CS_HTTP_MAX_BODY) {
        r->too_large = 1;
        return 0; /* aborts the transfer */
    }
    nb = realloc(r->body, r->len + add + 1);
    if (nb == NULL)
        return 0;
    r->body = nb;
    memcpy(r->body + r->len, data, add);
    r->len += add;
    r->body[r->len] = '\0';
    return add;
}

/* The value of header name in the header line data, into buf. */
static void header_value(const char *data, size_t len, const char *name, char *buf, size_t size)
{
    size_t skip = strlen(name);

    if (len > skip && strncasecmp(data, name, skip) == 0) {
        while (skip < len && data[skip] == ' ')
            skip++;
        snprintf(buf, size, "%.*s", (int)(len - skip), data + skip);
        buf[strcspn(buf, "\r\n")] = '\0';
    }
}

static size_t on_header(char *data, size_t size, size_t n, void *user)
{
    cs_http_response *r = user;
    size_t len = size * n;

    header_value(data, len, "x-acs-request-id:", r->request_id, sizeof(r->request_id));
    header_value(data, len, "replay-nonce:", r->replay_nonce, sizeof(r->replay_nonce));
    header_value(data, len, "location:", r->location, sizeof(r->location));
    header_value(data, len, "retry-after:", r->retry_after, sizeof(r->retry_after));
    header_value(data, len, "content-type:", r->content_type, sizeof(r->content_type));
    if (len > 5 && strncasecmp(data, "link:", 5) == 0 && strlen(r->links) + 3 < sizeof(r->links)) {
        size_t had = strlen(r->links);

        /* several Link headers (ACME's alternate chains) make one list */
        header_value(data, len, "link:", r->links + had + (had ? 2 : 0),
                     sizeof(r->links) - had - (had ? 2 : 0));
        if (had && r->links[had + 2])
            memcpy(r->links + had, ", ", 2);
    }
    return len;
}

/* 127.0.0.0/8, ::1, localhost: a proxy could only leak what goes there. */
static int loopback_url(const char *url)
{
    CURLU *u = curl_url();
    char *host = NULL;
    int r = 1; /* when in doubt, no proxy */

    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        size_t n = strlen(host);

        r = strncmp(host, "127.", 4) == 0 || strcmp(host, "[::1]") == 0 ||
            strcasecmp(host, "localhost") == 0 ||
            (n > 10 && strcasecmp(host + n - 10, ".localhost") == 0);
    }
    curl_free(host);
    curl_url_cleanup(u);
    return r;
}

cs_rc cs_http_perform(const cs_http_request *req, cs_http_response *resp)
{
    struct curl_slist *hdrs = NULL, *connect_to = NULL;
    char errbuf[CURL_ERROR_SIZE] = "", line[8192];
    int has_type = 0;
    CURLcode cc;
    CURL *curl;
    size_t i;

    memset(resp, 0, sizeof(*resp));
    pthread_once(&curl_once, init_curl);
    curl = curl_easy_init();
    if (curl == NULL)
        return cs_error_set(CS_ENOMEM, "cannot set up an HTTP request");
    for (i = 0; req->headers && i < req->headers->n; i++) {
        snprintf(line, sizeof(line), "%s: %s", req->headers->names[i], req->headers->values[i]);
        hdrs = curl_slist_append(hdrs, line);
        has_type |= strcasecmp(req->headers->names[i], "content-type") == 0;
    }
    memset(line, 0, sizeof(line));
    /* curl adds these by itself otherwise (a form Content-Type on any POST, unsigned) */
    hdrs = curl_slist_append(hdrs, "Expect:");
    hdrs = curl_slist_append(hdrs, "Accept:");
    if (!has_type)
        hdrs = curl_slist_append(hdrs, "Content-Type:");
    curl_easy_setopt(curl, CURLOPT_URL, req->url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
    if (req->body) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    } else if (strcmp(req->method, "POST") == 0 || strcmp(req->method, "PUT") == 0) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, resp);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, req->connect_timeout_ms);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, req->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, req->allow_http ? "http,https" : "https");
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    if (req->ca_file)
        curl_easy_setopt(curl, CURLOPT_CAINFO, req->ca_file);
    if (!req->env_proxy || loopback_url(req->url))
        curl_easy_setopt(curl, CURLOPT_PROXY, "");
    if (req->connect_to) {
        snprintf(line, sizeof(line), "::%s", req->connect_to);
        connect_to = curl_slist_append(NULL, line);
        curl_easy_setopt(curl, CURLOPT_CONNECT_TO, connect_to);
    }
    cc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
    curl_easy_cleanup(curl);
    curl_slist_free_all(hdrs);
    curl_slist_free_all(connect_to);
    if (resp->too_large) {
        /* what was read is of no use, and may hold part of a key */
        if (resp->body)
            memset(resp->body, 0, resp->len);
        free(resp->body);
        resp->body = NULL;
        resp->len = 0;
        return CS_OK;
    }
    if (cc != CURLE_OK) {
        resp->transport_error = 1;
        resp->timed_out = cc == CURLE_OPERATION_TIMEDOUT;
        snprintf(resp->error, sizeof(resp->error), "%s",
                 errbuf[0] ? errbuf : curl_easy_strerror(cc));
        return CS_OK;
    }
    if (resp->body == NULL) {
        resp->body = calloc(1, 1);
        if (resp->body == NULL)
            return cs_error_set(CS_ENOMEM, "out of memory");
    }
    return CS_OK;
}

void cs_http_response_clear(cs_http_response *resp)
{
    if (resp->body) {
        /* answers can carry private keys */
        memset(resp->body, 0, resp->len);
        free(resp->body);
    }
    memset(resp, 0, sizeof(*resp));
}
