/*
 * certsync: one HTTPS request over libcurl. TLS is always verified (the
 * system CA bundle, or ca_file); plain http:// only where the caller allows
 * it (the instance metadata service is plain HTTP by design).
 */
#ifndef CS_HTTP_H
#define CS_HTTP_H

#include <stddef.h>

#include "cs_aliyun_sign.h"
#include "cs_error.h"

typedef struct {
    const char *method; /* GET, POST, PUT */
    const char *url;
    const cs_kv *headers; /* "Name: value" pairs, names as given */
    const char *body;
    size_t body_len;
    const char *ca_file;
    long connect_timeout_ms;
    long timeout_ms;
    int allow_http;
    /*
     * 1: honour http_proxy/https_proxy/no_proxy of the environment, except for a
     * loopback host; 0: never use a proxy (the metadata service, local peers).
     */
    int env_proxy;
    /* "HOST:PORT": connect there, whatever the URL's host resolves to (curl's --connect-to) */
    const char *connect_to;
} cs_http_request;

/* Answers are read into memory up to this size; a larger one is cut off and reported. */
#define CS_HTTP_MAX_BODY (8 * 1024 * 1024)

typedef struct {
    long status;
    char *body; /* NUL-terminated, malloc'd */
    size_t len;
    int transport_error; /* no HTTP answer: refused, timeout, TLS, ... */
    int timed_out;
    int too_large;       /* the answer went past CS_HTTP_MAX_BODY; body is NULL */
    char error[256];     /* curl's reason when transport_error */
    char request_id[64]; /* the x-acs-request-id header, "" without one */
    /* headers ACME needs ("" without them) */
    char replay_nonce[128];
    char location[1024];
    char retry_after[64];
    char content_type[96];
    char links[2048]; /* every Link header's value, joined by ", " */
} cs_http_response;

/* Perform the request; CS_OK whenever an HTTP answer came back (any status). */
cs_rc cs_http_perform(const cs_http_request *req, cs_http_response *resp);
void cs_http_response_clear(cs_http_response *resp);

#endif
