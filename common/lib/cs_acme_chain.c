/*
 * preferred-chain: a CA may offer other chains for the same certificate
 * (Link: <url>;rel="alternate", RFC 8555 7.4.2). The one whose topmost
 * certificate was issued by (or is) the named CA is installed; when none is,
 * the default chain is.
 */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cs_acme.h"

size_t cs_acme_alternates(const char *links, char urls[][1024], size_t max)
{
    const char *p = links;
    size_t n = 0;

    while (p && *p && n < max) {
        const char *lt = strchr(p, '<'), *gt = lt ? strchr(lt, '>') : NULL, *next;
        size_t plen;

        if (gt == NULL)
            break;
        /* the parameters run to the next link (a ", <" outside the URL) */
        next = strstr(gt, ", <");
        plen = next ? (size_t)(next - gt) : strlen(gt);
        if (memmem(gt, plen, "rel=\"alternate\"", 15) || memmem(gt, plen, "rel=alternate", 13)) {
            if ((size_t)(gt - lt - 1) < 1024) {
                snprintf(urls[n], 1024, "%.*s", (int)(gt - lt - 1), lt + 1);
                n++;
            }
        }
        p = next ? next + 2 : NULL;
    }
    return n;
}

static int cn_is(const X509_NAME *name, const char *want)
{
    char cn[256];

    return X509_NAME_get_text_by_NID((X509_NAME *)name, NID_commonName, cn, sizeof(cn)) > 0 &&
           strcasecmp(cn, want) == 0;
}

int cs_acme_chain_from(const char *pem, size_t len, const char *issuer_cn)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    X509 *x, *top = NULL;
    int match;

    while (bio && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        X509_free(top);
        top = x;
    }
    ERR_clear_error();
    BIO_free(bio);
    match = top && (cn_is(X509_get_issuer_name(top), issuer_cn) ||
                    cn_is(X509_get_subject_name(top), issuer_cn));
    X509_free(top);
    return match;
}
