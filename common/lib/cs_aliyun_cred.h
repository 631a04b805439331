/*
 * certsync: Alibaba Cloud credentials, found the way the official SDKs find
 * them (reference §5), or read from a file named in certsync.conf.
 *
 * `credentials = default` tries, in order:
 *   1. ALIBABA_CLOUD_ACCESS_KEY_ID / _SECRET (+ ALIBABA_CLOUD_SECURITY_TOKEN)
 *   2. the aliyun CLI profile ~/.aliyun/config.json (modes AK, StsToken,
 *      EcsRamRole; ALIBABA_CLOUD_PROFILE picks one, else "current";
 *      ALIBABA_CLOUD_CLI_PROFILE_DISABLED=true skips it)
 *   3. ~/.alibabacloud/credentials (or ALIBABA_CLOUD_CREDENTIALS_FILE), [default]
 *   4. the ECS RAM role from the instance metadata service (token first, then
 *      the role name and its STS credentials; ALIBABA_CLOUD_ECS_METADATA
 *      names the role, ALIBABA_CLOUD_ECS_METADATA_DISABLED=true skips it)
 * `credentials = /path/file` reads access_key_id, access_key_secret and
 * optionally security_token from that file, which must not be readable by
 * group or others.
 */
#ifndef CS_ALIYUN_CRED_H
#define CS_ALIYUN_CRED_H

#include <time.h>

#include "cs_error.h"

typedef struct {
    char *id;
    char *secret;
    char *token;    /* STS token or NULL */
    time_t expires; /* 0: does not expire */
    char source[96];
} cs_aliyun_cred;

/* setting: "default" or an absolute path; metadata_url: IMDS base URL. */
cs_rc cs_aliyun_cred_resolve(const char *setting, const char *metadata_url, cs_aliyun_cred *out);
void cs_aliyun_cred_clear(cs_aliyun_cred *c);

#endif
