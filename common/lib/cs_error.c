#include "cs_error.h"

#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* One buffer per thread: Apache handshakes on many threads at once. */
static __thread char last_msg[2048];
static __thread cs_rc last_code;
static __thread char ossl_msg[256];

const char *cs_error_last(void)
{
    return last_msg;
}

cs_rc cs_error_code(void)
{
    return last_code;
}

cs_rc cs_error_set(cs_rc code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(last_msg, sizeof(last_msg), fmt, ap);
    va_end(ap);
    last_code = code;
    return code;
}

cs_rc cs_error_prefix(const char *fmt, ...)
{
    char prefix[512], old[sizeof(last_msg)];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, last_msg, sizeof(old));
    /* a message cut at the end is still better than none */
    if (snprintf(last_msg, sizeof(last_msg), "%s: %s", prefix, old) < 0)
        last_msg[0] = '\0';
    return last_code;
}

void cs_error_clear(void)
{
    last_msg[0] = '\0';
    last_code = CS_OK;
}

const char *cs_error_openssl(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *reason;

    if (e == 0) {
        snprintf(ossl_msg, sizeof(ossl_msg), "unknown OpenSSL error");
    } else {
        reason = ERR_reason_error_string(e);
        snprintf(ossl_msg, sizeof(ossl_msg), "%s", reason ? reason : "unknown OpenSSL error");
    }
    ERR_clear_error();
    return ossl_msg;
}
