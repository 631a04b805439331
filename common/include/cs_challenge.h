/*
 * certsync: which validation request a server answers, and from which store
 * file. One rule for nginx and Apache, shared with the writer
 * (cs_store_write_challenge):
 *
 *   GET|HEAD /.well-known/pki-validation/fileauth.txt  FILE validation
 *   GET|HEAD /.well-known/acme-challenge/TOKEN          ACME http-01
 *
 * answered from <store>/challenges/<host>/<kind>/<file> for the request's
 * host, lower-cased, under cs_challenge_host_valid (1-253 characters). A
 * server with validation on answers 404 when the host or token cannot be one
 * of ours or the store has no such file; any other method or path is not a
 * validation request and goes on as usual. The servers check the method.
 */
#ifndef CS_CHALLENGE_H
#define CS_CHALLENGE_H

#include <stddef.h>

#define CS_CHALLENGE_PKI_PATH "/.well-known/pki-validation/fileauth.txt"
#define CS_CHALLENGE_ACME_PREFIX "/.well-known/acme-challenge/"
#define CS_CHALLENGE_TOKEN_MAX 255

typedef enum {
    CS_CHALLENGE_NOT_OURS, /* not a validation path: serve the request as usual */
    CS_CHALLENGE_REFUSED,  /* a validation path whose host or token cannot be ours: 404 */
    CS_CHALLENGE_ANSWER,   /* read kind/file of host from the store (404 when absent) */
} cs_challenge_verdict;

typedef struct {
    const char *kind;                      /* "pki-validation" or "acme-challenge" */
    char host[254];                        /* lower-cased, valid under cs_challenge_host_valid */
    char file[CS_CHALLENGE_TOKEN_MAX + 1]; /* "fileauth.txt" or the token */
} cs_challenge;

/*
 * Map a request's host (the Host header or SNI name, without port) and path
 * (not decoded, without the query) to the answer it asks for. Lengths, so
 * that a server's own strings (ngx_str_t) need no copy; *out is filled only
 * for CS_CHALLENGE_ANSWER.
 */
cs_challenge_verdict cs_challenge_map(const char *host, size_t host_len, const char *path,
                                      size_t path_len, cs_challenge *out);

/* An ACME token: 1-255 of [A-Za-z0-9_-] (base64url; nothing that walks a path). */
int cs_challenge_token_valid(const char *token, size_t len);

#endif
