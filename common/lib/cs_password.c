#include "cs_password.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "cs_fs.h"

cs_rc cs_password_read(const char *path, char **password)
{
    char *data;
    size_t len, n;
    cs_rc rc;

    rc = cs_fs_read(path, 4096, &data, &len);
    if (rc != CS_OK)
        return cs_error_prefix("password file");
    n = strcspn(data, "\r\n");
    if (n == 0) {
        OPENSSL_cleanse(data, len);
        free(data);
        return cs_error_set(
            CS_EPASSWORD, "password file '%s' is empty; put the password on its first line", path);
    }
    memset(data + n, 0, len - n);
    *password = data;
    return CS_OK;
}

cs_rc cs_password_generate(char **password)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char r;
    char *p = malloc(33);
    size_t i = 0;

    if (p == NULL)
        return cs_error_set(CS_ENOMEM, "out of memory");
    while (i < 32) {
        if (RAND_bytes(&r, 1) != 1) {
            free(p);
            return cs_error_set(CS_ERR, "the random generator failed");
        }
        /* 62 * 4 = 248: reject the tail so every character is equally likely */
        if (r < 248)
            p[i++] = alphabet[r % 62];
    }
    p[32] = '\0';
    *password = p;
    return CS_OK;
}

cs_rc cs_password_write(const char *path, const char *password)
{
    size_t n = strlen(password);
    char *buf = malloc(n + 2);
    cs_rc rc;

    if (buf == NULL)
        return cs_error_set(CS_ENOMEM, "out of memory");
    memcpy(buf, password, n);
    buf[n] = '\n';
    rc = cs_fs_write_atomic(path, buf, n + 1, 0600);
    OPENSSL_cleanse(buf, n + 1);
    free(buf);
    return rc;
}

void cs_password_free(char *password)
{
    if (password == NULL)
        return;
    OPENSSL_cleanse(password, strlen(password));
    free(password);
}
