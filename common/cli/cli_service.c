/* certsync CLI: the service commands' shared context and --json form (cli_service.h). */
#include "cli_service.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cs_time.h"

void cli_service_close(cli_service *x)
{
    cs_sync_session_free(x->sess);
    cs_store_free(x->s);
    cs_config_free(x->c);
}

int cli_service_open(cli_service *x, const char *cmd, const char *provider)
{
    size_t i, n = 0;
    int rc;

    memset(x, 0, sizeof(*x));
    x->cmd = cmd;
    if ((rc = cli_open_all(cmd, &x->c, &x->s)) != EXIT_SUCCESS)
        return rc;
    for (i = 0; i < x->c->n_providers; i++) {
        const cs_provider_conf *pv = &x->c->providers[i];

        if (pv->type != CS_PROVIDER_ALIYUN_CAS)
            continue;
        if (provider ? strcmp(pv->name, provider) == 0 : n++ == 0)
            x->pv = pv;
    }
    if (x->pv == NULL || (!provider && n > 1)) {
        fprintf(stderr, "certsync %s: %s\n", cmd,
                provider ? "no [provider NAME] of type aliyun-cas by that name in the config"
                : n ? "several aliyun-cas providers in the config; choose one with --provider NAME"
                    : "no [provider NAME] with type = aliyun-cas in the config");
        cli_service_close(x);
        return EXIT_FAILURE;
    }
    x->sess = cs_sync_session_new(x->c);
    if (cs_aliyun_of_session(x->sess, x->pv, &x->client) != CS_OK) {
        cli_fail(cmd);
        cli_service_close(x);
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}

time_t cli_ms_time(const json_t *v)
{
    const char *s = json_string_value(v);

    if (json_is_integer(v))
        return (time_t)(json_integer_value(v) / 1000);
    if (s == NULL || *s == '\0' || strspn(s, "0123456789") != strlen(s) || strlen(s) > 16)
        return 0;
    return (time_t)(strtoll(s, NULL, 10) / 1000);
}

static int is_one_of(const char *k, const char *const *set)
{
    for (; *set; set++)
        if (strcmp(k, *set) == 0)
            return 1;
    return 0;
}

static const char *const ids[] = {
    "Id",    "CertId",         "CertificateId", "OrderId",  "AliyunOrderId", "UserId", "ResourceId",
    "JobId", "ResourceCertId", "ContactId",     "AccessId", "WorkerId",      NULL};
static const char *const prints[] = {"Sha2", "CertSha2", "Fingerprint", NULL};
static const char *const ms[] = {
    "NotBefore",   "NotAfter",  "CertStartTime", "CertEndTime",  "BuyDate", "GmtCreate",
    "GmtModified", "StartTime", "EndTime",       "ScheduleTime", NULL};

/* One value of a millisecond key: an ISO time, null for "", else as the service sent it. */
static json_t *ms_value(const json_t *v)
{
    char buf[CS_TIME_ISO_SIZE];
    time_t t = cli_ms_time(v);

    if (t)
        return json_string(cs_time_iso(t, buf));
    if (json_is_string(v) && *json_string_value(v) == '\0')
        return json_null();
    return NULL;
}

void cli_json_normalize(json_t *j)
{
    char buf[160], *p;
    const char *k;
    json_t *v, *t;
    size_t i;

    if (json_is_array(j))
        json_array_foreach(j, i, v) cli_json_normalize(v);
    if (!json_is_object(j))
        return;
    json_object_foreach(j, k, v)
    {
        if (is_one_of(k, ids) && json_is_integer(v)) {
            cs_json_id(v, buf, sizeof(buf));
            json_object_set_new(j, k, json_string(buf));
        } else if (is_one_of(k, prints) && json_is_string(v)) {
            snprintf(buf, sizeof(buf), "%s", json_string_value(v));
            for (p = buf; *p; p++)
                *p = (char)tolower((unsigned char)*p);
            json_object_set_new(j, k, json_string(buf));
        } else if (is_one_of(k, ms) && (t = ms_value(v)) != NULL) {
            json_object_set_new(j, k, t);
        } else {
            cli_json_normalize(v);
        }
    }
}
