/*
 * certsync: the one configuration file every component reads
 * (default /etc/certsync/certsync.conf). INI, read with inih:
 *
 *   [store]            path, keep, owner, group
 *   [provider NAME]    type = local-ca | aliyun-cas | acme, and the type's keys
 *   [cert NAME]        provider, cert-id, domain, formats, renew-before, ...
 *
 * Every error names the file, the line and the key. Unknown sections and
 * keys are errors: a typo must not silently change what is served.
 */
#ifndef CS_CONFIG_H
#define CS_CONFIG_H

#include <stddef.h>

#include "cs_crypt.h"
#include "cs_error.h"
#include "cs_pkcs12.h"

#define CS_DEFAULT_CONFIG "/etc/certsync/certsync.conf"
#define CS_DEFAULT_STORE "/var/lib/certsync"

typedef enum { CS_PROVIDER_LOCAL_CA, CS_PROVIDER_ALIYUN_CAS, CS_PROVIDER_ACME } cs_provider_type;

/* acme: how the CA checks that we control a name. */
typedef enum { CS_ACME_HTTP01, CS_ACME_DNS01, CS_ACME_TLSALPN01 } cs_acme_challenge;

typedef struct {
    char *name;
    int line;        /* of its first key */
    int header_line; /* of its [provider NAME] line */
    cs_provider_type type;
    /* local-ca */
    long ca_lifetime; /* seconds; default 10 years */
    /* aliyun-cas (read here; used by the aliyun-cas client) */
    char *region;
    char *credentials;
    char *endpoint;
    char *ca_file;    /* aliyun-cas and acme: PEM roots trusted for the service's HTTPS */
    char *trust_file; /* roots that issued certificates must chain to; NULL: the system's */
    char *signature_version;
    char *metadata_endpoint; /* ECS instance metadata base URL */
    long timeout;            /* seconds per request; 0: default 30 */
    int retries;             /* extra attempts; default 3 */
    char *alidns_endpoint;   /* apply --dns alidns: Alidns's URL; NULL: alidns.aliyuncs.com */
    /* acme (read here; used by cs_acme.c) */
    char *directory; /* the directory URL (names resolved at parse time) */
    char **contact;  /* NULL-terminated mailto: URLs */
    size_t n_contact;
    int tos_agreed;               /* tos-agreed = yes */
    cs_acme_challenge challenge;  /* default http-01 */
    char *webroot;                /* also write tokens under WEBROOT/.well-known/... */
    cs_key_type account_key_type; /* default ec256 */
    char *deploy_contact;  /* the contact id deployment jobs name; NULL: the account's first */
    char *eab_kid;         /* external account binding: the CA's key id */
    char *eab_hmac_file;   /* its MAC key (base64url), a 0600 file */
    char *dns;             /* dns-01: "alidns" or a hook's command */
    char *dns_resolver;    /* "IP[:PORT]" asked for the TXT; NULL: the authoritative */
    long dns_wait;         /* seconds the TXT may take to be visible; default 300 */
    char *preferred_chain; /* the CN of the CA whose chain is installed when offered */
} cs_provider_conf;

typedef struct {
    char *name;
    int line;                         /* of its first key */
    int header_line;                  /* of its [cert NAME] line */
    int renew_before_line;            /* 0: the default */
    int lifetime_line;                /* 0: the default */
    char *provider_name;              /* NULL: the embedded local CA */
    const cs_provider_conf *provider; /* resolved; NULL for the embedded local CA */
    char *cert_id;                    /* decimal, 64-bit */
    char **domains;                   /* NULL-terminated */
    size_t n_domains;
    unsigned formats;     /* CS_FMT_* bits; PEM always set */
    long renew_before;    /* seconds; default 30 days */
    cs_key_type key_type; /* local-ca, acme: key of issued certs */
    int reuse_key;        /* acme: a renewal keeps the current version's key */
    long lifetime;        /* local-ca: seconds; default 90 days */
    cs_p12_profile pfx_profile;
    char *alias;         /* PKCS#12/JKS alias; default the cert name */
    char *password_file; /* PFX/JKS password; default generated */
    char *on_change;     /* command run after a new version became current */
    char *group;         /* group that reads its versions; "none": no one; NULL: [store] group */
    char *deploy;        /* cloud resources a new certificate is deployed to (cs_deploy.h) */
    int deploy_line;
    long deploy_wait;     /* seconds a sync follows a deployment job; 0: CS_DEPLOY_FOLLOW_S */
    char *upload_to_name; /* an aliyun-cas provider each new version goes to */
    const cs_provider_conf *upload_to; /* resolved */
} cs_cert_conf;

typedef struct {
    char *path;
    char *store_path;
    unsigned keep; /* versions kept; default 3 */
    char *owner;   /* user that owns store files (chown when run as root) */
    char *group;
    cs_provider_conf *providers;
    size_t n_providers;
    cs_cert_conf *certs;
    size_t n_certs;
} cs_config;

cs_rc cs_config_load(const char *path, cs_config **out);
void cs_config_free(cs_config *c);

/* The [cert NAME] section, or NULL (borrowed: valid while c lives). */
const cs_cert_conf *cs_config_cert(const cs_config *c, const char *name);

/* "30d", "12h", "15m", "45s" (a bare number is seconds). */
cs_rc cs_duration_parse(const char *s, long *seconds);

/* A managed certificate name: letters, digits, '.', '_', '-'; 1-64; no leading '.'. */
int cs_name_valid(const char *name);

#endif
