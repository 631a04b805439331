/*
 * certsync: client of the Alibaba Cloud SSL Certificates Service (cas)
 * OpenAPI 2020-04-07, RPC style, signed with ACS3-HMAC-SHA256 (or v1).
 *
 * cs_aliyun_call() sends one action and returns the parsed JSON answer. An
 * answer that carries a "Code" is an error, whatever its HTTP status; the
 * message keeps the service's Code, Message and RequestId. 5xx, Throttling.*,
 * timeouts and connection errors are retried with exponential backoff and
 * jitter; authentication and parameter errors are not.
 */
#ifndef CS_ALIYUN_H
#define CS_ALIYUN_H

#include <jansson.h>

#include "cs_aliyun_sign.h"
#include "cs_bundle.h"
#include "cs_config.h"
#include "cs_error.h"

#define CS_CAS_VERSION "2020-04-07"

typedef struct cs_aliyun cs_aliyun;

typedef struct {
    const char *endpoint;     /* https://host[:port]; NULL: from region */
    const char *region;       /* default cn-hangzhou */
    const char *ca_file;      /* CA bundle for a private endpoint */
    const char *trust_file;   /* roots fetched certificates must chain to; NULL: system */
    const char *credentials;  /* "default" or a file */
    const char *metadata_url; /* instance metadata service base URL */
    int signature_v1;
    long timeout_ms;     /* per attempt; default 30000 */
    int retries;         /* extra attempts; default 3 */
    const char *version; /* another product's API version (static); NULL: cas's */
} cs_aliyun_opts;

cs_rc cs_aliyun_new(const cs_aliyun_opts *o, cs_aliyun **out);

/* The client of an aliyun-cas provider in a sync session (made once, borrowed). */
typedef struct cs_sync_session cs_sync_session;
cs_rc cs_aliyun_of_session(cs_sync_session *sess, const cs_provider_conf *pv, cs_aliyun **out);
cs_rc cs_aliyun_from_provider(const cs_provider_conf *pv, cs_aliyun **out);
void cs_aliyun_free(cs_aliyun *c);
/* The endpoint URL (borrowed: valid while c lives). */
const char *cs_aliyun_endpoint(const cs_aliyun *c);
/* A one-line English hint for an error code of an action, or NULL. */
const char *cs_aliyun_hint(const char *action, const char *code);
/* The service's host for a region, as the official SDK's endpoint map has it. */
cs_rc cs_aliyun_region_host(const char *region, char *host, size_t size);

/*
 * A certificate fetched from the service is installed only if its chain leads
 * to a trusted root (trust-file, else the system's): an account may hold
 * self-signed or foreign uploads that `domain =` would otherwise pick. The
 * bundle is validated (key, links, dates) first.
 */
cs_rc cs_aliyun_verify_trust(const cs_aliyun *c, const cs_bundle *b, const char *origin);

/*
 * The certificate id of the service with its key (GetUserCertificateDetail),
 * loaded and validated, and with trust set verified against trust-file (or
 * the system's roots): what the sync and `certsync fetch` both install.
 */
cs_rc cs_aliyun_fetch(cs_aliyun *c, const char *id, int trust, cs_bundle **out);

/*
 * Upload b as name (UploadUserCertificate): the leaf and its chain, the key as
 * traditional PEM as the service's upload documentation asks; *id gets the new
 * certificate's id. A name the service holds already fails with
 * cs_aliyun_name_taken() true (names are unique per account).
 */
cs_rc cs_aliyun_upload(cs_aliyun *c, const char *name, const cs_bundle *b, char *id, size_t size);
int cs_aliyun_name_taken(const cs_aliyun *c);

/* The service's error of the last failed call ("" when it was not a service error; borrowed). */
const char *cs_aliyun_last_code(const cs_aliyun *c);

cs_rc cs_aliyun_call(cs_aliyun *c, const char *action, const cs_kv *params, json_t **out);

/*
 * Every CERT entry of ListUserCertificateOrder (all pages), or orders for
 * CPACK/BUY. A short page ends the list; more than 10,000 entries or 32 MiB of
 * answers is an error (a hostile or broken endpoint must not grow memory).
 */
cs_rc cs_aliyun_list(cs_aliyun *c, const char *order_type, const char *status, const char *keyword,
                     json_t **entries);

/*
 * From ListUserCertificateOrder CERT entries: the one with cert_id, or (cert_id
 * NULL) the newest unexpired one whose names cover every domain (a wildcard
 * covers one label). NULL if none; the entry is borrowed from certs.
 */
json_t *cs_aliyun_pick(json_t *certs, const char *cert_id, const char *const *domains,
                       size_t n_domains);

/*
 * Parse an answer. An integer beyond 64 bits (in a field certsync may not even
 * read) is taken as a real instead of failing the whole answer; ids stay exact.
 * Owned: json_decref it.
 */
json_t *cs_json_parse(const char *text, size_t len);

/* A JSON integer or numeric string as text ("" if absent): ids exceed 2^53. */
void cs_json_id(json_t *v, char *buf, size_t size);

#endif
