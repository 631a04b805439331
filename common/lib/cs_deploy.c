/* certsync: the service's deployment jobs (see cs_deploy.h). */
#include "cs_deploy.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/*
 * The products of the service's CloudProduct lists (the SDK's ListCloudResources
 * documentation) as an operator types them; listener: named by instance or listener
 * and port rather than by a domain.
 */
static const struct {
    const char *arg, *product, *cloud;
    int listener;
} products[] = {
    {"cdn", "CDN", "aliyun", 0},
    {"dcdn", "DCDN", "aliyun", 0},
    {"slb", "SLB", "aliyun", 1},
    {"clb", "SLB", "aliyun", 1},
    {"alb", "ALB", "aliyun", 1},
    {"nlb", "NLB", "aliyun", 1},
    {"ga", "GA", "aliyun", 1},
    {"waf", "WAF", "aliyun", 0},
    {"oss", "OSS", "aliyun", 0},
    {"ddos", "DDOS", "aliyun", 0},
    {"live", "LIVE", "aliyun", 0},
    {"vod", "VOD", "aliyun", 0},
    {"apigateway", "APIGateway", "aliyun", 0},
    {"fc", "FC", "aliyun", 0},
    {"mse", "MSE", "aliyun", 0},
    {"sae", "SAE", "aliyun", 0},
    {"cr", "CR", "aliyun", 0},
    {"webhosting", "webHosting", "aliyun", 0},
    {"tencentcdn", "TencentCDN", "Tencent", 0},
    {"tencentclb", "TencentCLB", "Tencent", 1},
    {"tencentwaf", "TencentWAF", "Tencent", 0},
    {"huaweicdn", "HuaweiCDN", "Huawei", 0},
    {"awscloudfront", "AwsCloudFront", "Aws", 0},
    {"awsclb", "AwsCLB", "Aws", 1},
    {"awsalb", "AwsALB", "Aws", 1},
    {"awsnlb", "AwsNLB", "Aws", 1},
};

#define N_PRODUCTS (sizeof(products) / sizeof(products[0]))

/* A hostile or broken service must not page forever (as cs_aliyun_list). */
#define DEPLOY_PAGE 50
#define DEPLOY_MAX 10000

const char *cs_deploy_products(void)
{
    static char list[512];
    size_t i, n = 0;

    if (list[0])
        return list;
    for (i = 0; i < N_PRODUCTS && n < sizeof(list); i++)
        n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", i ? ", " : "", products[i].arg);
    return list;
}

cs_rc cs_deploy_product(const char *arg, const char **product, const char **cloud)
{
    size_t i;

    for (i = 0; i < N_PRODUCTS; i++)
        if (strcasecmp(arg, products[i].arg) == 0 || strcmp(arg, products[i].product) == 0) {
            *product = products[i].product;
            *cloud = products[i].cloud;
            return CS_OK;
        }
    return cs_error_set(CS_EINVAL, "unknown product '%s'; known products: %s", arg,
                        cs_deploy_products());
}

static int is_listener(const char *product)
{
    size_t i;

    for (i = 0; i < N_PRODUCTS; i++)
        if (strcmp(product, products[i].product) == 0)
            return products[i].listener;
    return 0;
}

static const char *arg_of(const char *product)
{
    size_t i;

    for (i = 0; i < N_PRODUCTS; i++)
        if (strcmp(product, products[i].product) == 0)
            return products[i].arg;
    return product;
}

static const char *str(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));

    return v ? v : "";
}

static int digits(const char *s)
{
    if (*s == '\0' || strlen(s) > 19)
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

/* Every page of a list action: rows under list_key, the total under total_key. */
static cs_rc list_all(cs_aliyun *c, const char *action, const cs_kv *base, const char *list_key,
                      const char *total_key, json_t **rows)
{
    json_t *all = json_array(), *page, *list;
    char num[16], size[16];
    long long total;
    size_t i;
    int p;
    cs_rc rc = CS_OK;

    if (all == NULL)
        return cs_error_set(CS_ENOMEM, "out of memory");
    snprintf(size, sizeof(size), "%d", DEPLOY_PAGE);
    for (p = 1; rc == CS_OK; p++) {
        cs_kv q;

        cs_kv_init(&q);
        for (i = 0; base && i < base->n; i++)
            cs_kv_set(&q, base->names[i], base->values[i]);
        snprintf(num, sizeof(num), "%d", p);
        cs_kv_set(&q, "CurrentPage", num);
        cs_kv_set(&q, "ShowSize", size);
        rc = cs_aliyun_call(c, action, &q, &page);
        cs_kv_clear(&q);
        if (rc != CS_OK)
            break;
        list = json_object_get(page, list_key);
        total = json_integer_value(json_object_get(page, total_key));
        if (json_is_array(list) && json_array_extend(all, list) != 0)
            rc = cs_error_set(CS_ENOMEM, "out of memory reading %s", action);
        else if (json_array_size(all) > DEPLOY_MAX)
            rc = cs_error_set(CS_EPROVIDER,
                              "%s at %s: more than %d entries; certsync stops there: check that "
                              "the endpoint is the service",
                              action, cs_aliyun_endpoint(c), DEPLOY_MAX);
        /* a short page ends the list, whatever the total says */
        if (rc == CS_OK &&
            (json_array_size(list) < DEPLOY_PAGE || (long long)json_array_size(all) >= total)) {
            json_decref(page);
            break;
        }
        json_decref(page);
    }
    if (rc != CS_OK) {
        json_decref(all);
        return rc;
    }
    *rows = all;
    return CS_OK;
}

/* The access ids of another cloud the account holds (ListCloudAccess). */
static cs_rc cloud_accesses(cs_aliyun *c, const char *cloud, json_t **rows)
{
    cs_kv q;
    cs_rc rc;

    cs_kv_init(&q);
    cs_kv_set(&q, "CloudName", cloud);
    rc = list_all(c, "ListCloudAccess", &q, "CloudAccessList", "TotalCount", rows);
    cs_kv_clear(&q);
    return rc;
}

static cs_rc resources_of(cs_aliyun *c, const char *product, const char *keyword, const char *cloud,
                          const char *secret, json_t **rows)
{
    cs_kv q;
    cs_rc rc;

    cs_kv_init(&q);
    cs_kv_set(&q, "CloudName", cloud);
    if (product)
        cs_kv_set(&q, "CloudProduct", product);
    if (keyword && *keyword)
        cs_kv_set(&q, "Keyword", keyword);
    if (secret)
        cs_kv_set(&q, "SecretId", secret);
    rc = list_all(c, "ListCloudResources", &q, "Data", "Total", rows);
    cs_kv_clear(&q);
    return rc;
}

cs_rc cs_deploy_resources(cs_aliyun *c, const char *product, const char *keyword, const char *cloud,
                          json_t **rows)
{
    json_t *access, *a, *part;
    size_t i;
    cs_rc rc = CS_OK;

    if (cloud == NULL || strcmp(cloud, "aliyun") == 0)
        return resources_of(c, product, keyword, "aliyun", NULL, rows);
    /* another cloud's resources are listed per access the account keeps for it */
    if (cloud_accesses(c, cloud, &access) != CS_OK)
        return cs_error_code();
    if ((*rows = json_array()) == NULL)
        rc = cs_error_set(CS_ENOMEM, "out of memory");
    json_array_foreach(access, i, a)
    {
        if (rc != CS_OK)
            break;
        /* ListCloudResources' SecretId is the access's id (the SDK's example: 21) */
        char id[32];

        cs_json_id(json_object_get(a, "AccessId"), id, sizeof(id));
        rc = resources_of(c, product, keyword, cloud, id, &part);
        if (rc == CS_OK) {
            json_array_extend(*rows, part);
            json_decref(part);
        }
    }
    json_decref(access);
    if (rc != CS_OK) {
        json_decref(*rows);
        *rows = NULL;
    }
    return rc;
}

cs_rc cs_deploy_targets_check(const char *value)
{
    char word[256], prod[64];
    const char *p = value, *product, *cloud;
    size_t n;

    for (;;) {
        p += strspn(p, " \t,");
        if (*p == '\0')
            return CS_OK;
        n = strcspn(p, " \t,");
        snprintf(word, sizeof(word), "%.*s", (int)n, p);
        p += n;
        if (digits(word))
            continue;
        if (strchr(word, ':') == NULL || strchr(word, ':')[1] == '\0')
            return cs_error_set(CS_EINVAL,
                                "'%s' is not PRODUCT:DOMAIN (cdn:www.example.com), "
                                "PRODUCT:INSTANCE[:PORT] (slb:lb-xxxx:443) or a resource id",
                                word);
        snprintf(prod, sizeof(prod), "%.*s", (int)strcspn(word, ":"), word);
        if (cs_deploy_product(prod, &product, &cloud) != CS_OK)
            return cs_error_prefix("'%s'", word);
    }
}

void cs_deploy_label(const json_t *row, char *buf, size_t size)
{
    const char *product = str(row, "CloudProduct"), *port = str(row, "ListenerPort");
    char id[32];

    if (is_listener(product) && *str(row, "InstanceId"))
        snprintf(buf, size, "%s:%s%s%s", arg_of(product), str(row, "InstanceId"), *port ? ":" : "",
                 port);
    else if (*str(row, "Domain"))
        snprintf(buf, size, "%s:%s", arg_of(product), str(row, "Domain"));
    else {
        cs_json_id(json_object_get(row, "Id"), id, sizeof(id));
        snprintf(buf, size, "%s", id);
    }
}

/* Does the row match the argument's value (a domain, an instance or listener) and port? */
static int row_matches(const json_t *row, const char *value, const char *port)
{
    const char *lsn = str(row, "ListenerId");
    size_t n = strcspn(lsn, "@");

    if (port && strcmp(str(row, "ListenerPort"), port) != 0)
        return 0;
    if (!is_listener(str(row, "CloudProduct")))
        return strcasecmp(str(row, "Domain"), value) == 0;
    return strcmp(str(row, "InstanceId"), value) == 0 ||
           (n == strlen(value) && strncmp(lsn, value, n) == 0) || strcmp(lsn, value) == 0;
}

/* The one row of rows that matches, or the error naming what there is. */
static cs_rc one_of(json_t *rows, const char *arg, const char *value, const char *port,
                    const char *product, json_t **row)
{
    char names[1024] = "", label[256], id[32];
    size_t i, n = 0, used = 0;
    json_t *r, *found = NULL;

    json_array_foreach(rows, i, r)
    {
        if (!row_matches(r, value, port))
            continue;
        found = r;
        cs_deploy_label(r, label, sizeof(label));
        cs_json_id(json_object_get(r, "Id"), id, sizeof(id));
        if (used < sizeof(names))
            used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s (%s)", n ? ", " : "",
                                     label, id);
        n++;
    }
    if (n == 1) {
        *row = json_incref(found);
        return CS_OK;
    }
    if (n > 1)
        return cs_error_set(CS_EINVAL,
                            "resource '%s' names %zu resources: %s; give the one you mean by its "
                            "id (`certsync resources --product %s`)",
                            arg, n, names, arg_of(product));
    return cs_error_set(CS_ENOTFOUND,
                        "resource '%s': the service lists no %s resource %s%s%s that can take a "
                        "certificate; see `certsync resources --product %s` (HTTPS must be on in "
                        "the product's console first)",
                        arg, product, value, port ? " port " : "", port ? port : "",
                        arg_of(product));
}

/* A resource id: looked for in this account's resources, then other clouds'. */
static cs_rc resolve_id(cs_aliyun *c, const char *arg, json_t **row)
{
    static const char *const clouds[] = {"aliyun", "Tencent", "Huawei", "Aws"};
    char id[32];
    json_t *rows, *r;
    size_t i, k;

    for (k = 0; k < sizeof(clouds) / sizeof(clouds[0]); k++) {
        if (cs_deploy_resources(c, NULL, NULL, clouds[k], &rows) != CS_OK)
            return cs_error_code();
        json_array_foreach(rows, i, r)
        {
            cs_json_id(json_object_get(r, "Id"), id, sizeof(id));
            if (strcmp(id, arg) == 0) {
                *row = json_incref(r);
                json_decref(rows);
                return CS_OK;
            }
        }
        json_decref(rows);
    }
    return cs_error_set(CS_ENOTFOUND,
                        "resource %s: the service lists no resource with this id; see `certsync "
                        "resources`",
                        arg);
}

cs_rc cs_deploy_resolve(cs_aliyun *c, const char *arg, json_t **row)
{
    char buf[256], *value, *port;
    const char *product, *cloud;
    json_t *rows;
    cs_rc rc;

    if (digits(arg))
        return resolve_id(c, arg, row);
    snprintf(buf, sizeof(buf), "%s", arg);
    value = strchr(buf, ':');
    if (value == NULL || value[1] == '\0')
        return cs_error_set(CS_EINVAL,
                            "resource '%s' is not PRODUCT:DOMAIN (cdn:www.example.com), "
                            "PRODUCT:INSTANCE[:PORT] (slb:lb-xxxx:443) or the service's resource "
                            "id",
                            arg);
    *value++ = '\0';
    if (cs_deploy_product(buf, &product, &cloud) != CS_OK)
        return cs_error_prefix("resource '%s'", arg);
    port = is_listener(product) ? strchr(value, ':') : NULL;
    if (port)
        *port++ = '\0';
    rc = cs_deploy_resources(c, product, is_listener(product) ? NULL : value, cloud, &rows);
    if (rc != CS_OK)
        return rc;
    rc = one_of(rows, arg, value, port, product, row);
    json_decref(rows);
    return rc;
}

cs_rc cs_deploy_contact(cs_aliyun *c, const char *configured, char *id, size_t size)
{
    json_t *rows;

    if (configured && *configured) {
        if (!digits(configured))
            return cs_error_set(CS_EINVAL, "contact '%s' is not a contact id (digits)", configured);
        snprintf(id, size, "%s", configured);
        return CS_OK;
    }
    if (list_all(c, "ListContact", NULL, "ContactList", "TotalCount", &rows) != CS_OK)
        return cs_error_code();
    cs_json_id(json_object_get(json_array_get(rows, 0), "ContactId"), id, size);
    json_decref(rows);
    if (*id == '\0')
        return cs_error_set(CS_ENOTFOUND,
                            "the account has no contact, and a deployment job needs one: add one "
                            "in the console (Certificate Management Service > Contacts), or name "
                            "one with deploy-contact in the [provider]");
    return CS_OK;
}

/* "1,2,3": the ids of rows; *job_type "user" (this account's products) or "cloud". */
static cs_rc id_list(const json_t *rows, char *buf, size_t size, const char **job_type)
{
    size_t i, n = 0;
    json_t *r;
    char id[32];
    int others = 0, ours = 0;

    buf[0] = '\0';
    json_array_foreach(rows, i, r)
    {
        const char *cloud = str(r, "CloudName");

        cs_json_id(json_object_get(r, "Id"), id, sizeof(id));
        if (!digits(id))
            return cs_error_set(CS_EPROVIDER,
                                "the service gave a resource id '%s' that is not "
                                "a number",
                                id);
        n += (size_t)snprintf(buf + n, size > n ? size - n : 0, "%s%s", i ? "," : "", id);
        if (*cloud == '\0' || strcmp(cloud, "aliyun") == 0)
            ours = 1;
        else
            others = 1;
    }
    if (n >= size)
        return cs_error_set(CS_EINVAL, "too many resources for one job");
    if (ours && others)
        return cs_error_set(CS_EINVAL,
                            "a job deploys either to this account's products or to other "
                            "clouds': deploy to each in a job of its own");
    *job_type = others ? "cloud" : "user";
    return CS_OK;
}

static void delete_job(cs_aliyun *c, const char *job)
{
    json_t *r = NULL;
    cs_kv q;

    cs_kv_init(&q);
    cs_kv_set(&q, "JobId", job);
    if (cs_aliyun_call(c, "DeleteDeploymentJob", &q, &r) == CS_OK)
        json_decref(r);
    cs_kv_clear(&q);
}

cs_rc cs_deploy_start(cs_aliyun *c, const char *name, const char *cert_id, const json_t *resources,
                      const char *contact, time_t schedule, char *job, size_t size)
{
    char ids[4096], when[32];
    const char *job_type = "user";
    json_t *r = NULL;
    cs_kv q;
    cs_rc rc;

    if (id_list(resources, ids, sizeof(ids), &job_type) != CS_OK)
        return cs_error_code();
    cs_kv_init(&q);
    cs_kv_set(&q, "Name", name);
    cs_kv_set(&q, "JobType", job_type);
    cs_kv_set(&q, "CertIds", cert_id);
    cs_kv_set(&q, "ResourceIds", ids);
    cs_kv_set(&q, "ContactIds", contact);
    if (schedule) {
        snprintf(when, sizeof(when), "%lld000", (long long)schedule);
        cs_kv_set(&q, "ScheduleTime", when);
    }
    rc = cs_aliyun_call(c, "CreateDeploymentJob", &q, &r);
    cs_kv_clear(&q);
    if (rc != CS_OK)
        return rc;
    cs_json_id(json_object_get(r, "JobId"), job, size);
    json_decref(r);
    if (!digits(job))
        return cs_error_set(CS_EPROVIDER, "CreateDeploymentJob at %s answered no JobId",
                            cs_aliyun_endpoint(c));
    /* created jobs wait in "editing" until asked to run */
    cs_kv_init(&q);
    cs_kv_set(&q, "JobId", job);
    cs_kv_set(&q, "Status", "pending");
    rc = cs_aliyun_call(c, "UpdateDeploymentJobStatus", &q, &r);
    cs_kv_clear(&q);
    if (rc != CS_OK) {
        delete_job(c, job);
        return cs_error_prefix("deployment job %s was created but could not be started, and "
                               "was deleted",
                               job);
    }
    json_decref(r);
    return CS_OK;
}

cs_rc cs_deploy_workers(cs_aliyun *c, const char *job, json_t **rows)
{
    cs_kv q;
    cs_rc rc;

    cs_kv_init(&q);
    cs_kv_set(&q, "JobId", job);
    rc = list_all(c, "ListWorkerResource", &q, "Data", "Total", rows);
    cs_kv_clear(&q);
    return rc;
}

cs_rc cs_deploy_jobs(cs_aliyun *c, json_t **rows)
{
    return list_all(c, "ListDeploymentJob", NULL, "Data", "Total", rows);
}

static int job_over(const char *status)
{
    return strcmp(status, "success") == 0 || strcmp(status, "error") == 0 ||
           strcmp(status, "editing") == 0;
}

static cs_rc job_status(cs_aliyun *c, const char *job, char *status, size_t size)
{
    json_t *r = NULL;
    cs_kv q;
    cs_rc rc;

    cs_kv_init(&q);
    cs_kv_set(&q, "JobId", job);
    rc = cs_aliyun_call(c, "DescribeDeploymentJob", &q, &r);
    cs_kv_clear(&q);
    if (rc != CS_OK)
        return rc;
    snprintf(status, size, "%s", str(r, "Status"));
    json_decref(r);
    return CS_OK;
}

cs_rc cs_deploy_follow(cs_aliyun *c, const char *job, int timeout_s, cs_deploy_progress progress,
                       void *arg, char *status, size_t size, json_t **workers)
{
    time_t end = time(NULL) + timeout_s;
    long wait_ms = 500;

    *workers = NULL;
    for (;;) {
        if (job_status(c, job, status, size) != CS_OK)
            return cs_error_code();
        if (progress)
            progress(job, status, arg);
        if (job_over(status))
            break;
        if (time(NULL) + wait_ms / 1000 > end)
            return cs_error_set(CS_EPROVIDER,
                                "deployment job %s is still %s after %d s; it goes on in the "
                                "service: `certsync deployment %s` shows how it ends",
                                job, status, timeout_s, job);
        /* 0.5 s, 1 s, 2 s ... at most 30 s between looks */
        usleep((useconds_t)wait_ms * 1000);
        wait_ms = wait_ms < 15000 ? wait_ms * 2 : 30000;
    }
    return cs_deploy_workers(c, job, workers);
}

int cs_deploy_worker_failed(const json_t *worker)
{
    const char *s = str(worker, "Status");

    return strcmp(s, "error") == 0 || strcmp(s, "rollback_error") == 0;
}
