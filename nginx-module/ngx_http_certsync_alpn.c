/*
 * ngx_http_certsync_module: ACME's tls-alpn-01 (RFC 8737) answered in the
 * handshake. When an acme provider of certsync.conf has challenge =
 * tls-alpn-01, the managed servers' contexts get three callbacks: the client
 * hello marks a connection that offers only ALPN "acme-tls/1"; the
 * certificate callback (after the SNI switch) gives such a connection the
 * validation certificate the sync left in the store for its name
 * (challenges/<name>/acme-tls-alpn/validation.pem); the ALPN callback selects
 * "acme-tls/1" for it, and for every other connection chooses as nginx's own
 * does (h2 where enabled, else http/1.1, http/1.0, http/0.9), which it
 * replaces. Without such a provider nothing here is installed.
 */


#include "ngx_http_certsync.h"


#define NGX_HTTP_CERTSYNC_ACME_TLS_1     "\x0a" "acme-tls/1"
#define NGX_HTTP_CERTSYNC_ALPN_PROTOS    "\x08http/1.1\x08http/1.0\x08http/0.9"


static int ngx_http_certsync_alpn_hello(ngx_ssl_conn_t *ssl_conn, int *al,
    void *arg);
static int ngx_http_certsync_alpn_cert(ngx_ssl_conn_t *ssl_conn, void *arg);
static int ngx_http_certsync_alpn_select(ngx_ssl_conn_t *ssl_conn,
    const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg);


static int  ngx_http_certsync_alpn_index = -1;


ngx_int_t
ngx_http_certsync_alpn_setup(ngx_conf_t *cf,
    ngx_http_certsync_main_conf_t *mcf, ngx_http_certsync_srv_conf_t *conf)
{
    size_t                    i;
    ngx_uint_t                wanted;
    SSL_CTX                  *ctx;
    const cs_provider_conf   *pv;

    wanted = 0;

    for (i = 0; i < mcf->cfg->n_providers; i++) {
        pv = &mcf->cfg->providers[i];
        wanted |= pv->type == CS_PROVIDER_ACME
                  && pv->challenge == CS_ACME_TLSALPN01;
    }

    if (!wanted) {
        return NGX_OK;
    }

    if (ngx_http_certsync_alpn_index == -1) {
        ngx_http_certsync_alpn_index = SSL_get_ex_new_index(0, NULL, NULL,
                                                            NULL, NULL);
        if (ngx_http_certsync_alpn_index == -1) {
            ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0,
                          "certsync: SSL_get_ex_new_index() failed");
            return NGX_ERROR;
        }
    }

    ctx = conf->sscf->ssl.ctx;

    SSL_CTX_set_client_hello_cb(ctx, ngx_http_certsync_alpn_hello, NULL);
    SSL_CTX_set_cert_cb(ctx, ngx_http_certsync_alpn_cert, mcf);
    SSL_CTX_set_alpn_select_cb(ctx, ngx_http_certsync_alpn_select, NULL);

    return NGX_OK;
}


/* the validation offers "acme-tls/1" and nothing else (RFC 8737 3) */
static int
ngx_http_certsync_alpn_hello(ngx_ssl_conn_t *ssl_conn, int *al, void *arg)
{
    size_t                len;
    const unsigned char  *p;

    if (SSL_client_hello_get0_ext(ssl_conn,
                                  TLSEXT_TYPE_application_layer_protocol_negotiation,
                                  &p, &len)
        && len == 2 + sizeof(NGX_HTTP_CERTSYNC_ACME_TLS_1) - 1
        && ngx_memcmp(p + 2, NGX_HTTP_CERTSYNC_ACME_TLS_1, len - 2) == 0)
    {
        SSL_set_ex_data(ssl_conn, ngx_http_certsync_alpn_index, (void *) 1);
    }

    return SSL_CLIENT_HELLO_SUCCESS;
}


/* the validation certificate for the SNI name, from the store */
static int
ngx_http_certsync_alpn_cert(ngx_ssl_conn_t *ssl_conn, void *arg)
{
    ngx_http_certsync_main_conf_t *mcf = arg;

    int                ok;
    BIO               *bio;
    X509              *x;
    char              *pem;
    size_t             len;
    EVP_PKEY          *key;
    const char        *name;
    ngx_connection_t  *c;

    if (SSL_get_ex_data(ssl_conn, ngx_http_certsync_alpn_index) == NULL) {
        return 1;
    }

    c = ngx_ssl_get_connection(ssl_conn);
    name = SSL_get_servername(ssl_conn, TLSEXT_NAMETYPE_host_name);

    if (name == NULL
        || cs_store_read_challenge(mcf->store, name, "acme-tls-alpn",
                                   "validation.pem",
                                   NGX_HTTP_CERTSYNC_MAX_FILE, &pem, &len)
           != CS_OK)
    {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "certsync: no tls-alpn-01 answer for \"%s\" in the "
                      "store: %s", name ? name : "(no SNI)",
                      name ? cs_error_last() : "the client sent no name");
        cs_error_clear();
        return 0;
    }

    bio = BIO_new_mem_buf(pem, (int) len);
    x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    OPENSSL_cleanse(pem, len);
    free(pem);

    /* only this certificate: not the served one of another key type */
    SSL_certs_clear(ssl_conn);

    ok = x && key && SSL_use_certificate(ssl_conn, x) == 1
         && SSL_use_PrivateKey(ssl_conn, key) == 1;

    X509_free(x);
    EVP_PKEY_free(key);

    if (ok) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "certsync: answering tls-alpn-01 for \"%s\" from the store",
                      name);
    } else {
        ngx_ssl_error(NGX_LOG_ERR, c->log, 0,
                      "certsync: the tls-alpn-01 answer for \"%s\" in the store "
                      "does not load", name);
    }

    return ok;
}


static int
ngx_http_certsync_alpn_select(ngx_ssl_conn_t *ssl_conn,
    const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
    unsigned int            srvlen;
    unsigned char          *srv;
#if (NGX_HTTP_V2)
    ngx_connection_t       *c;
    ngx_http_connection_t  *hc;
#endif

    if (SSL_get_ex_data(ssl_conn, ngx_http_certsync_alpn_index) != NULL) {
        srv = (unsigned char *) NGX_HTTP_CERTSYNC_ACME_TLS_1;
        srvlen = sizeof(NGX_HTTP_CERTSYNC_ACME_TLS_1) - 1;

    } else {

        /* as ngx_http_ssl_alpn_select() */
#if (NGX_HTTP_V2)
        c = ngx_ssl_get_connection(ssl_conn);
        hc = c->data;

        if (hc->addr_conf->http2) {
            srv = (unsigned char *) NGX_HTTP_V2_ALPN_PROTO
                                    NGX_HTTP_CERTSYNC_ALPN_PROTOS;
            srvlen = sizeof(NGX_HTTP_V2_ALPN_PROTO
                            NGX_HTTP_CERTSYNC_ALPN_PROTOS) - 1;
        } else
#endif
        {
            srv = (unsigned char *) NGX_HTTP_CERTSYNC_ALPN_PROTOS;
            srvlen = sizeof(NGX_HTTP_CERTSYNC_ALPN_PROTOS) - 1;
        }
    }

    if (SSL_select_next_proto((unsigned char **) out, outlen, srv, srvlen,
                              in, inlen)
        != OPENSSL_NPN_NEGOTIATED)
    {
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }

    return SSL_TLSEXT_ERR_OK;
}
