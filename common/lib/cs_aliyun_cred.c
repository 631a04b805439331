#include "cs_aliyun_cred.h"

#include <errno.h>
#include <ini.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cs_fs.h"
#include "cs_http.h"
#include "cs_time.h"

#define IMDS_DEFAULT "http://100.100.100.200"

static void wipe(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

void cs_aliyun_cred_clear(cs_aliyun_cred *c)
{
    free(c->id);
    wipe(c->secret);
    wipe(c->token);
    memset(c, 0, sizeof(*c));
}

static cs_rc set(cs_aliyun_cred *c, const char *id, const char *secret, const char *token,
                 const char *source)
{
    c->id = strdup(id);
    c->secret = strdup(secret);
    c->token = token && *token ? strdup(token) : NULL;
    snprintf(c->source, sizeof(c->source), "%s", source);
    if (c->id == NULL || c->secret == NULL || (token && *token && c->token == NULL)) {
        cs_aliyun_cred_clear(c);
        return cs_error_set(CS_ENOMEM, "out of memory copying the %s credentials", source);
    }
    return CS_OK;
}

static int env_true(const char *name)
{
    const char *v = getenv(name);

    return v && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

static const char *home(void)
{
    return getenv("HOME") ? getenv("HOME") : "/root";
}

/* ---- INI files: ~/.alibabacloud/credentials and certsync's own file ---- */

typedef struct {
    const char *want_section; /* "default", or "" for a file without sections */
    char *id, *secret, *token, *type;
    int oom; /* a value could not be copied */
} ini_cred;

static int cred_ini_handler(void *user, const char *section, const char *name, const char *value)
{
    ini_cred *c = user;
    char **slot = NULL;

    if (strcmp(section, c->want_section) != 0 && !(section[0] == '\0'))
        return 1;
    if (strcmp(name, "access_key_id") == 0)
        slot = &c->id;
    else if (strcmp(name, "access_key_secret") == 0)
        slot = &c->secret;
    else if (strcmp(name, "security_token") == 0)
        slot = &c->token;
    else if (strcmp(name, "type") == 0)
        slot = &c->type;
    if (slot) {
        wipe(*slot);
        *slot = strdup(value);
        c->oom |= *slot == NULL;
    }
    return 1;
}

static cs_rc from_ini(const char *path, const char *section, cs_aliyun_cred *out,
                      const char *source)
{
    ini_cred c = {section, NULL, NULL, NULL, NULL, 0};
    cs_rc rc;
    int r = ini_parse(path, cred_ini_handler, &c);

    if (r < 0)
        rc = cs_error_set(CS_ENOTFOUND, "cannot read the credentials file '%s'", path);
    else if (c.oom)
        rc = cs_error_set(CS_ENOMEM, "out of memory reading the credentials file '%s'", path);
    else if (r > 0)
        rc = cs_error_set(CS_ECONFIG, "%s:%d: syntax error in the credentials file", path, r);
    else if (c.type && strcmp(c.type, "access_key") != 0 && strcmp(c.type, "sts") != 0)
        rc = cs_error_set(CS_ECONFIG, "%s: [%s] type = %s is not supported; use access_key or sts",
                          path, section, c.type);
    else if (!c.id || !c.secret || !*c.id || !*c.secret)
        rc = cs_error_set(CS_ECONFIG, "%s: access_key_id and access_key_secret are needed", path);
    else
        rc = set(out, c.id, c.secret, c.token, source);
    free(c.id);
    wipe(c.secret);
    wipe(c.token);
    free(c.type);
    return rc;
}

/* ---- instance metadata (ECS RAM role) ---- */

static cs_rc imds_get(const char *url, const char *token, const char *method, char **body)
{
    cs_http_request req = {0};
    cs_http_response resp;
    cs_kv h;
    cs_rc rc;

    cs_kv_init(&h);
    if (strcmp(method, "PUT") == 0)
        rc = cs_kv_set(&h, "X-aliyun-ecs-metadata-token-ttl-seconds", "21600");
    else
        rc = token ? cs_kv_set(&h, "X-aliyun-ecs-metadata-token", token) : CS_OK;
    if (rc != CS_OK)
        return rc;
    req.method = method;
    req.url = url;
    req.headers = &h;
    req.connect_timeout_ms = 1000;
    req.timeout_ms = 1000;
    req.allow_http = 1;
    rc = cs_http_perform(&req, &resp);
    cs_kv_clear(&h);
    if (rc != CS_OK)
        return rc;
    if (resp.transport_error || resp.too_large || resp.status != 200) {
        rc = cs_error_set(CS_ENOTFOUND, "the instance metadata service at %s %s", url,
                          resp.transport_error ? resp.error
                          : resp.too_large     ? "answered more than 8 MiB"
                                               : "did not answer 200");
        cs_http_response_clear(&resp);
        return rc;
    }
    *body = strdup(resp.body);
    cs_http_response_clear(&resp);
    return *body ? CS_OK : cs_error_set(CS_ENOMEM, "out of memory");
}

/* The role's Expiration; 0 (none known) when absent or not in the ISO form. */
static time_t parse_utc(const char *s)
{
    time_t t = 0;

    if (s != NULL)
        cs_time_parse_iso(s, &t);
    return t;
}

static cs_rc from_ecs_role(const char *base, const char *role_hint, cs_aliyun_cred *out)
{
    char url[1024], *token = NULL, *role = NULL, *body = NULL;
    json_t *j = NULL;
    cs_rc rc;

    snprintf(url, sizeof(url), "%s/latest/api/token", base);
    /* IMDSv2 when offered; tokenless otherwise unless that is disabled */
    if (imds_get(url, NULL, "PUT", &token) != CS_OK) {
        if (env_true("ALIBABA_CLOUD_IMDSV1_DISABLED"))
            return cs_error_prefix("ECS RAM role (IMDSv1 disabled)");
        token = NULL;
    }
    if (role_hint && *role_hint) {
        if ((role = strdup(role_hint)) == NULL) {
            rc = cs_error_set(CS_ENOMEM, "out of memory");
            goto done;
        }
    } else {
        snprintf(url, sizeof(url), "%s/latest/meta-data/ram/security-credentials/", base);
        if ((rc = imds_get(url, token, "GET", &role)) != CS_OK)
            goto done;
        role[strcspn(role, "\r\n ")] = '\0';
    }
    snprintf(url, sizeof(url), "%s/latest/meta-data/ram/security-credentials/%s", base, role);
    if ((rc = imds_get(url, token, "GET", &body)) != CS_OK)
        goto done;
    j = json_loads(body, 0, NULL);
    if (j == NULL || strcmp(json_string_value(json_object_get(j, "Code")) ?: "", "Success") != 0 ||
        !json_is_string(json_object_get(j, "AccessKeyId")) ||
        !json_is_string(json_object_get(j, "AccessKeySecret"))) {
        rc = cs_error_set(CS_EPROVIDER,
                          "the instance metadata service gave no credentials for the role '%s'",
                          role);
        goto done;
    }
    {
        char src[96];

        snprintf(src, sizeof(src), "ECS RAM role %s", role);
        rc = set(out, json_string_value(json_object_get(j, "AccessKeyId")),
                 json_string_value(json_object_get(j, "AccessKeySecret")),
                 json_string_value(json_object_get(j, "SecurityToken")), src);
        out->expires = parse_utc(json_string_value(json_object_get(j, "Expiration")));
    }
done:
    if (body)
        wipe(body);
    json_decref(j);
    wipe(token);
    free(role);
    return rc;
}

/* ---- aliyun CLI profile ---- */

static cs_rc from_cli_profile(const char *imds, cs_aliyun_cred *out)
{
    char path[4096], src[160];
    const char *want, *mode;
    json_t *j, *profiles, *p, *found = NULL;
    size_t i;
    cs_rc rc = CS_ENOTFOUND;

    snprintf(path, sizeof(path), "%s/.aliyun/config.json", home());
    j = json_load_file(path, 0, NULL);
    if (j == NULL)
        return CS_ENOTFOUND;
    want = getenv("ALIBABA_CLOUD_PROFILE");
    if (want == NULL || *want == '\0')
        want = json_string_value(json_object_get(j, "current"));
    profiles = json_object_get(j, "profiles");
    json_array_foreach(profiles, i, p)
    {
        if (want && strcmp(json_string_value(json_object_get(p, "name")) ?: "", want) == 0)
            found = p;
    }
    if (found == NULL) {
        /* want may point into j: the message is made before j goes */
        rc = cs_error_set(CS_ECONFIG,
                          "%s has no profile '%s'; name one of its profiles in \"current\" or "
                          "ALIBABA_CLOUD_PROFILE",
                          path, want ? want : "(no \"current\")");
        json_decref(j);
        return rc;
    }
    mode = json_string_value(json_object_get(found, "mode")) ?: "AK";
    snprintf(src, sizeof(src), "aliyun CLI profile '%.40s' (%.90s)", want, path);
    if (strcmp(mode, "AK") == 0 || strcmp(mode, "StsToken") == 0) {
        const char *id = json_string_value(json_object_get(found, "access_key_id"));
        const char *sec = json_string_value(json_object_get(found, "access_key_secret"));

        if (id && sec && *id && *sec)
            rc = set(out, id, sec, json_string_value(json_object_get(found, "sts_token")), src);
        else
            rc = cs_error_set(CS_ECONFIG, "%s: profile '%s' has no access_key_id/secret", path,
                              want);
    } else if (strcmp(mode, "EcsRamRole") == 0) {
        rc = from_ecs_role(imds, json_string_value(json_object_get(found, "ram_role_name")), out);
    } else {
        rc = cs_error_set(CS_ECONFIG,
                          "%s: profile '%s' has mode %s, which certsync does not support; use AK, "
                          "StsToken or EcsRamRole",
                          path, want, mode);
    }
    json_decref(j);
    return rc;
}

static cs_rc from_file(const char *path, cs_aliyun_cred *out)
{
    struct stat st;
    char src[160];

    if (stat(path, &st) < 0)
        return cs_error_set(CS_ENOTFOUND, "cannot read the credentials file '%s': %s", path,
                            strerror(errno));
    if (st.st_mode & 077)
        return cs_error_set(CS_ECONFIG,
                            "the credentials file '%s' can be read by group or others (mode "
                            "%04o); chmod 600 it",
                            path, (unsigned)(st.st_mode & 07777));
    snprintf(src, sizeof(src), "file %.150s", path);
    return from_ini(path, "default", out, src);
}

cs_rc cs_aliyun_cred_resolve(const char *setting, const char *metadata_url, cs_aliyun_cred *out)
{
    const char *id = getenv("ALIBABA_CLOUD_ACCESS_KEY_ID");
    const char *secret = getenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET");
    const char *imds = metadata_url ? metadata_url : IMDS_DEFAULT;
    char path[4096], tried[1024];
    cs_rc rc;

    memset(out, 0, sizeof(*out));
    if (setting && strcmp(setting, "default") != 0)
        return from_file(setting, out);
    if (id && *id && secret && *secret)
        return set(out, id, secret, getenv("ALIBABA_CLOUD_SECURITY_TOKEN"),
                   "environment (ALIBABA_CLOUD_ACCESS_KEY_ID)");
    if (!env_true("ALIBABA_CLOUD_CLI_PROFILE_DISABLED")) {
        rc = from_cli_profile(imds, out);
        if (rc != CS_ENOTFOUND)
            return rc;
    }
    if (getenv("ALIBABA_CLOUD_CREDENTIALS_FILE") && *getenv("ALIBABA_CLOUD_CREDENTIALS_FILE"))
        snprintf(path, sizeof(path), "%s", getenv("ALIBABA_CLOUD_CREDENTIALS_FILE"));
    else
        snprintf(path, sizeof(path), "%s/.alibabacloud/credentials", home());
    if (access(path, R_OK) == 0) {
        char src[160];

        snprintf(src, sizeof(src), "%.140s [default]", path);
        return from_ini(path, "default", out, src);
    }
    if (!env_true("ALIBABA_CLOUD_ECS_METADATA_DISABLED")) {
        rc = from_ecs_role(imds, getenv("ALIBABA_CLOUD_ECS_METADATA"), out);
        if (rc == CS_OK)
            return rc;
        snprintf(tried, sizeof(tried), "%s", cs_error_last());
    } else {
        snprintf(tried, sizeof(tried), "ECS RAM role disabled");
    }
    return cs_error_set(CS_ECONFIG,
                        "no Alibaba Cloud credentials found: set ALIBABA_CLOUD_ACCESS_KEY_ID and "
                        "ALIBABA_CLOUD_ACCESS_KEY_SECRET, configure the aliyun CLI, write %s, "
                        "or name a file with credentials = PATH (last tried: %s)",
                        path, tried);
}
