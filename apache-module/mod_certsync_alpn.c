/*
 * mod_certsync: ACME's tls-alpn-01 (RFC 8737) answered in Apache's handshake,
 * through the hooks httpd gives for it (as mod_md does):
 *
 *   protocol_propose  a TLS connection to a vhost with a CertSyncCertificate
 *                     that offers ALPN "acme-tls/1" gets it proposed (httpd
 *                     selects it only where the vhost's `Protocols` lists it)
 *   protocol_switch   mod_ssl's ALPN callback switches to it: the connection
 *                     is marked (conn_config)
 *   protocol_get      says so to httpd and to mod_ssl
 *   ssl_answer_challenge  mod_ssl then asks for the certificate of such a
 *                     connection: the validation certificate (and its
 *                     throwaway key) the sync left for the SNI name in
 *                     <store>/challenges/<name>/acme-tls-alpn/validation.pem
 *
 * Installed only when a provider of certsync.conf has challenge = tls-alpn-01.
 *
 * The answer is read when the CA's handshake asks for it, through the store's
 * one API (openat, O_NOFOLLOW, fstat checks), not cached by the watcher: the
 * sync tells the CA to look as soon as it has written the file (there is no
 * "ready" step for tls-alpn-01), so a watcher that looks once a second would
 * lose that race and the CA does not ask twice; and a cache for a name would
 * have to be read again on a miss anyway. Only a handshake that negotiated
 * acme-tls/1 reads (one small file, in the worker thread that runs the
 * handshake, like an http-01 answer); every other handshake pays nothing.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "apr_strings.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_ssl.h"

#include "mod_certsync.h"

#define ACME_TLS_1 "acme-tls/1"
#define ALPN_KIND "acme-tls-alpn"
#define ALPN_FILE "validation.pem"
#define ALPN_MAX (64 * 1024)

/* conn_config: switched to acme-tls/1, then answered (distinct pointers, one protocol name) */
static const char acme_tls_1[] = ACME_TLS_1;
static const char answered[] = ACME_TLS_1;

/* A provider of certsync.conf validates with tls-alpn-01. */
int certsync_alpn_wanted(const cs_config *cfg)
{
    size_t i;

    for (i = 0; cfg && i < cfg->n_providers; i++)
        if (cfg->providers[i].type == CS_PROVIDER_ACME &&
            cfg->providers[i].challenge == CS_ACME_TLSALPN01)
            return 1;
    return 0;
}

/* A TLS connection to a vhost that serves a certsync certificate, with tls-alpn-01 in use. */
static int ours(conn_rec *c, server_rec *s)
{
    const certsync_srv_conf *sc;

    if (certsync_g == NULL || !certsync_alpn_wanted(certsync_g->cfg) || !ap_ssl_conn_is_ssl(c))
        return 0;
    sc = ap_get_module_config((s ? s : c->base_server)->module_config, &certsync_module);
    return sc != NULL && sc->slot != NULL;
}

static int alpn_propose(conn_rec *c, request_rec *r, server_rec *s,
                        const apr_array_header_t *offers, apr_array_header_t *proposals)
{
    if (r != NULL || offers == NULL || !ap_array_str_contains(offers, ACME_TLS_1) || !ours(c, s))
        return DECLINED;
    APR_ARRAY_PUSH(proposals, const char *) = acme_tls_1;
    return OK;
}

static int alpn_switch(conn_rec *c, request_rec *r, server_rec *s, const char *protocol)
{
    if (r != NULL || strcmp(protocol, ACME_TLS_1) != 0 || !ours(c, s))
        return DECLINED;
    ap_set_module_config(c->conn_config, &certsync_module, (void *)acme_tls_1);
    return OK;
}

static const char *alpn_get(const conn_rec *c)
{
    return ap_get_module_config(c->conn_config, &certsync_module);
}

/*
 * The certificate callback of a connection: 1 when it is not acme-tls/1 (serve
 * as usual). For acme-tls/1 (TLS 1.3 runs ALPN, and so mod_ssl's answer,
 * before this callback): keep the validation certificate mod_ssl set and
 * nothing else, so that no served certificate of another key type is picked;
 * fail the handshake when the store had no answer, as nginx does.
 */
int certsync_alpn_cert(SSL *ssl, int *done)
{
    conn_rec *c = SSL_get_app_data(ssl);
    const char *p = c ? alpn_get(c) : NULL;
    X509 *x;
    EVP_PKEY *key;
    int ok;

    *done = p != NULL;
    if (p != answered)
        return p == NULL;
    x = SSL_get_certificate(ssl);
    key = SSL_get_privatekey(ssl);
    if (x == NULL || key == NULL || !X509_up_ref(x) || !EVP_PKEY_up_ref(key))
        return 0;
    SSL_certs_clear(ssl);
    ok = SSL_use_certificate(ssl, x) == 1 && SSL_use_PrivateKey(ssl, key) == 1;
    X509_free(x);
    EVP_PKEY_free(key);
    return ok;
}

static apr_status_t cleanse(void *data)
{
    OPENSSL_cleanse(data, strlen(data));
    return APR_SUCCESS;
}

/* The validation certificate and key for the SNI name, from the store, in c->pool. */
static int alpn_answer(conn_rec *c, const char *server_name, const char **pcert_pem,
                       const char **pkey_pem)
{
    char host[254], *pem, *copy;
    size_t i, len;

    if (alpn_get(c) == NULL)
        return DECLINED;
    len = server_name ? strlen(server_name) : 0;
    for (i = 0; i < len && i < sizeof(host) - 1; i++)
        host[i] = (char)tolower((unsigned char)server_name[i]);
    host[i] = '\0';
    if (len == 0 || len >= sizeof(host) || !cs_challenge_host_valid(host)) {
        ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, c,
                      "certsync: no tls-alpn-01 answer: the client sent %s",
                      len ? "a name that cannot be one of ours" : "no name (SNI)");
        return DECLINED;
    }
    if (cs_store_read_challenge(certsync_g->store, host, ALPN_KIND, ALPN_FILE, ALPN_MAX, &pem,
                                &len) != CS_OK) {
        ap_log_cerror(APLOG_MARK, cs_error_code() == CS_ENOTFOUND ? APLOG_INFO : APLOG_WARNING, 0,
                      c, "certsync: no tls-alpn-01 answer for \"%s\" in the store: %s", host,
                      cs_error_last());
        cs_error_clear();
        return DECLINED;
    }
    copy = apr_pstrmemdup(c->pool, pem, len);
    OPENSSL_cleanse(pem, len);
    free(pem);
    apr_pool_cleanup_register(c->pool, copy, cleanse, apr_pool_cleanup_null);
    *pcert_pem = copy;
    *pkey_pem = NULL; /* the key follows the certificate in the same PEM */
    ap_set_module_config(c->conn_config, &certsync_module, (void *)answered);
    ap_log_cerror(APLOG_MARK, APLOG_INFO, 0, c,
                  "certsync: answering tls-alpn-01 for \"%s\" from the store", host);
    return OK;
}

/*
 * At the configuration check (`apachectl -t` too): a vhost serving a certificate of a tls-alpn-01
 * provider whose `Protocols` does not list acme-tls/1 would never select it, and every validation
 * would fail at the CA. Fails the configuration check.
 */
int certsync_alpn_check(server_rec *s, const certsync_srv_conf *sc)
{
    const core_server_config *core = ap_get_core_module_config(s->module_config);
    const cs_provider_conf *pv;

    if (sc->slot == NULL || (pv = sc->slot->cc->provider) == NULL || pv->type != CS_PROVIDER_ACME ||
        pv->challenge != CS_ACME_TLSALPN01 || ap_array_str_contains(core->protocols, ACME_TLS_1))
        return OK;
    ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, NULL,
                 "mod_certsync: %s:%d: CertSyncCertificate %s: its provider '%s' validates with "
                 "tls-alpn-01, but this virtual host (%s) does not allow the acme-tls/1 "
                 "protocol: add it to the host's Protocols (e.g. `Protocols http/1.1 acme-tls/1`, "
                 "or `Protocols h2 http/1.1 acme-tls/1`)",
                 sc->cert_file, sc->cert_line, sc->cert_name, pv->name,
                 s->server_hostname ? s->server_hostname : "(no ServerName)");
    return HTTP_INTERNAL_SERVER_ERROR;
}

void certsync_alpn_register_hooks(void)
{
    ap_hook_protocol_propose(alpn_propose, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_protocol_switch(alpn_switch, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_protocol_get(alpn_get, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_ssl_answer_challenge(alpn_answer, NULL, NULL, APR_HOOK_MIDDLE);
}
