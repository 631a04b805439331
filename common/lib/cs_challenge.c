/* certsync: a validation request mapped to its store file (see cs_challenge.h). */
#include <string.h>

#include "cs_challenge.h"
#include "cs_store.h"

#define PKI_LEN (sizeof(CS_CHALLENGE_PKI_PATH) - 1)
#define ACME_LEN (sizeof(CS_CHALLENGE_ACME_PREFIX) - 1)

int cs_challenge_token_valid(const char *token, size_t len)
{
    size_t i;

    if (len == 0 || len > CS_CHALLENGE_TOKEN_MAX)
        return 0;
    for (i = 0; i < len; i++) {
        char ch = token[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return 0;
    }
    return 1;
}

/* host lower-cased into out->host, then the writer's rule */
static int host_take(const char *host, size_t len, cs_challenge *out)
{
    size_t i;

    if (host == NULL || len == 0 || len >= sizeof(out->host) || memchr(host, '\0', len))
        return 0;
    for (i = 0; i < len; i++)
        out->host[i] = (host[i] >= 'A' && host[i] <= 'Z') ? host[i] - 'A' + 'a' : host[i];
    out->host[len] = '\0';
    return cs_challenge_host_valid(out->host);
}

cs_challenge_verdict cs_challenge_map(const char *host, size_t host_len, const char *path,
                                      size_t path_len, cs_challenge *out)
{
    const char *kind, *file;
    size_t file_len;

    if (path == NULL)
        return CS_CHALLENGE_NOT_OURS;
    if (path_len == PKI_LEN && memcmp(path, CS_CHALLENGE_PKI_PATH, PKI_LEN) == 0) {
        kind = "pki-validation";
        file = "fileauth.txt";
        file_len = strlen(file);
    } else if (path_len >= ACME_LEN && memcmp(path, CS_CHALLENGE_ACME_PREFIX, ACME_LEN) == 0) {
        kind = "acme-challenge";
        file = path + ACME_LEN;
        file_len = path_len - ACME_LEN;
        if (!cs_challenge_token_valid(file, file_len))
            return CS_CHALLENGE_REFUSED;
    } else {
        return CS_CHALLENGE_NOT_OURS;
    }
    if (!host_take(host, host_len, out))
        return CS_CHALLENGE_REFUSED;
    out->kind = kind;
    memcpy(out->file, file, file_len);
    out->file[file_len] = '\0';
    return CS_CHALLENGE_ANSWER;
}
