/*
 * certsync CLI: deploying certificates of the service to cloud products
 * through its deployment jobs: resources, deploy, deployments, deployment.
 */
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_service.h"
#include "cs_aliyun.h"
#include "cs_deploy.h"
#include "cs_store.h"
#include "cs_sync.h"
#include "cs_time.h"

/* The config, the store and the client of the one aliyun-cas provider (or --provider). */
typedef cli_service ctx;

static const char *jstr(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));

    return v ? v : "";
}

static const char *jid(const json_t *o, const char *k, char buf[32])
{
    cs_json_id(json_object_get(o, k), buf, 32);
    return buf;
}

static void print_json(json_t *j)
{
    cli_json_normalize(j);
    json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("\n");
}

/* Each row gets "resource": how an operator names it (cdn:www.example.com). */
static void add_labels(json_t *rows)
{
    char label[256];
    json_t *r;
    size_t i;

    json_array_foreach(rows, i, r)
    {
        cs_deploy_label(r, label, sizeof(label));
        json_object_set_new(r, "resource", json_string(cli_safe(label)));
    }
}

#define OPT_PROVIDER(T)                                                                            \
    CLI_OPT_VALUE(T, provider, "provider", "NAME",                                                 \
                  "the [provider NAME] to use (default: the config's one\naliyun-cas provider)")

/* ---- resources ---- */

typedef struct {
    const char *provider, *product, *keyword, *cloud;
    int json;
} resources_args;

static const cli_opt resources_opts[] = {
    OPT_PROVIDER(resources_args),
    CLI_OPT_VALUE(resources_args, product, "product", "PRODUCT",
                  "only this product's: cdn, dcdn, slb, alb, nlb, ga, waf,\noss, ... (see below)"),
    CLI_OPT_VALUE(resources_args, keyword, "keyword", "TEXT",
                  "only resources whose domain or instance id holds TEXT"),
    CLI_OPT_VALUE(resources_args, cloud, "cloud", "NAME",
                  "another cloud's resources (Tencent, Huawei, Aws), through\nthe account's "
                  "cloud accesses (ListCloudAccess)"),
    CLI_OPT_SWITCH(resources_args, json, "json",
                   "the service's rows as JSON, each with "
                   "\"resource\""),
    CLI_OPT_CONFIG,
    CLI_OPT_HELP,
    CLI_OPT_END};

static const char resources_about[] =
    "The cloud resources that can take a certificate (ListCloudResources) and the\n"
    "certificate each serves now, with its expiry. RESOURCE is how `certsync deploy --to`\n"
    "and `deploy =` in certsync.conf name it: PRODUCT:DOMAIN (cdn:www.example.com),\n"
    "PRODUCT:INSTANCE:PORT for load balancers (slb:lb-xxxx:443; alb:lsn-xxxx names a\n"
    "listener), or the resource's ID. A product's resources appear once HTTPS is on in\n"
    "its console. Products: cdn, dcdn, slb (clb), alb, nlb, ga, waf, oss, ddos, live,\n"
    "vod, apigateway, fc, mse, sae, cr, webhosting; other clouds': tencentcdn, tencentclb,\n"
    "tencentwaf, huaweicdn, awscloudfront, awsclb, awsalb, awsnlb.\n";

static void resources_text(json_t *rows)
{
    char id[32], cid[32], end[CS_TIME_ISO_SIZE];
    json_t *r;
    size_t i;

    printf("%-36s %-12s %-16s %-24s %s\n", "RESOURCE", "ID", "CERTIFICATE", "CERT NAME",
           "NOT AFTER");
    json_array_foreach(rows, i, r)
    {
        time_t t = cli_ms_time(json_object_get(r, "CertEndTime"));

        printf("%-36s %-12s %-16s %-24s %s\n", jstr(r, "resource"), cli_safe(jid(r, "Id", id)),
               *jid(r, "CertId", cid) ? cli_safe(cid) : "-",
               *jstr(r, "CertName") ? cli_safe(jstr(r, "CertName")) : "-",
               t ? cs_time_iso(t, end) : "-");
    }
}

static int cmd_resources(const cli_command *self, int argc, char **argv)
{
    resources_args a = {0};
    const char *product = NULL, *cloud = NULL;
    int first, rc = cli_parse(&self->spec, argc, argv, &a, &first);
    json_t *rows;
    ctx x;

    if (rc != CLI_CONTINUE)
        return rc;
    if (first != argc)
        return cli_usage(&self->spec, "takes no arguments");
    if (a.product && cs_deploy_product(a.product, &product, &cloud) != CS_OK)
        return cli_usage(&self->spec, "--product: %s", cs_error_last());
    if ((rc = cli_service_open(&x, "resources", a.provider)) != EXIT_SUCCESS)
        return rc;
    rc = EXIT_FAILURE;
    if (cs_deploy_resources(x.client, product, a.keyword, a.cloud ? a.cloud : cloud, &rows) ==
        CS_OK) {
        add_labels(rows);
        if (a.json)
            print_json(rows);
        else
            resources_text(rows);
        json_decref(rows);
        rc = EXIT_SUCCESS;
    } else {
        cli_fail("resources");
    }
    cli_service_close(&x);
    return rc;
}

/* ---- deploy ---- */

typedef struct {
    const char *provider, *name, *schedule, *contact, *timeout;
    json_t *to;
    int wait, json;
} deploy_args;

/* --to RESOURCE, repeatable; each may hold several, separated by commas */
static cs_rc parse_to(const char *arg, void *field)
{
    json_t **to = field;
    char *copy = strdup(arg), *tok, *save = NULL;

    if (copy == NULL || (*to == NULL && (*to = json_array()) == NULL)) {
        free(copy);
        return cs_error_set(CS_ENOMEM, "out of memory");
    }
    for (tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save))
        json_array_append_new(*to, json_string(tok));
    free(copy);
    return CS_OK;
}

static const cli_opt deploy_opts[] = {
    OPT_PROVIDER(deploy_args),
    CLI_OPT_VALUE(deploy_args, name, "name", "NAME",
                  "instead of ID: the certificate of the store's current\nNAME (its id in the "
                  "service, meta.json remote_id)"),
    {.name = "to",
     .kind = CLI_CALL,
     .value = "RESOURCE",
     .help = "where to deploy (repeatable; more RESOURCEs may follow\nas arguments): "
             "cdn:www.example.com, slb:lb-xxxx:443,\nor a resource ID (`certsync resources`)",
     .offset = offsetof(deploy_args, to),
     .flags = CLI_REQUIRED,
     .parse = parse_to},
    CLI_OPT_VALUE(deploy_args, schedule, "schedule", "TIME",
                  "run the job at TIME (UTC, 2026-12-01T03:00:00Z) instead\nof now"),
    CLI_OPT_VALUE(deploy_args, contact, "contact", "ID",
                  "the contact the service notifies (default: deploy-contact\nof the [provider], "
                  "else the account's first, ListContact)"),
    CLI_OPT_SWITCH(deploy_args, wait, "wait",
                   "follow the job to its end and print each resource's result;\nexit 1 when any "
                   "failed"),
    CLI_OPT_VALUE(deploy_args, timeout, "timeout", "SECONDS",
                  "how long --wait follows (default 1800)"),
    CLI_OPT_SWITCH(deploy_args, json, "json", "one JSON object: the job, its status and workers"),
    CLI_OPT_CONFIG,
    CLI_OPT_HELP,
    CLI_OPT_END};

static const char deploy_about[] =
    "Creates a deployment job for the certificate ID of the service (or the current version\n"
    "of the managed certificate NAME) to each RESOURCE (CreateDeploymentJob) and starts it\n"
    "(UpdateDeploymentJobStatus pending). The job runs in the service; with --wait certsync\n"
    "follows it (DescribeDeploymentJob, ListWorkerResource) and prints every resource's\n"
    "result: success, or error when the service could not deploy there (a certificate that\n"
    "does not cover the resource's domain, a product that refused it). Exit codes: 0 the job\n"
    "was started (with --wait: every resource succeeded), 1 it could not be created, or with\n"
    "--wait a resource failed or the job was still running at --timeout. The service does\n"
    "not deploy to ECS instances this way: certsync's modules and certsync-tomcat install on\n"
    "servers. An uploaded certificate may need the account's deployment quota.\n";

static cs_rc schedule_time(const char *arg, time_t *t)
{
    if (cs_time_parse_iso(arg, t) != CS_OK)
        return cs_error_set(CS_EINVAL,
                            "--schedule '%s' is not a UTC time such as "
                            "2026-12-01T03:00:00Z",
                            arg);
    if (*t <= time(NULL))
        return cs_error_set(CS_EINVAL, "--schedule %s is not in the future", arg);
    return CS_OK;
}

static int seconds_valid(const char *s)
{
    return *s && strlen(s) < 9 && strspn(s, "0123456789") == strlen(s) && atoi(s) > 0;
}

/* The service's id of the store's current NAME, or why it has none. */
static cs_rc cert_of_name(ctx *x, const char *name, char *id, size_t size)
{
    cs_cert_info info;
    int ours;

    if (cs_store_info(x->s, name, 0, &info) != CS_OK)
        return cs_error_prefix("--name %s", name);
    ours = strcmp(info.provider, "aliyun-cas") == 0 && info.remote_id[0];
    snprintf(id, size, "%s", info.remote_id);
    if (!ours)
        cs_error_set(CS_EINVAL,
                     "--name %s: v%u came from %s, not from the service, so it has no id "
                     "there: upload it first (`certsync upload %s`) and deploy that id",
                     name, info.version, info.provider, name);
    cs_cert_info_clear(&info);
    return ours ? CS_OK : CS_EINVAL;
}

/* Every RESOURCE argument resolved to its row (owned array). */
static cs_rc resolve_all(ctx *x, const json_t *args, json_t **rows)
{
    json_t *a, *row;
    size_t i;

    if ((*rows = json_array()) == NULL)
        return cs_error_set(CS_ENOMEM, "out of memory");
    json_array_foreach(args, i, a)
    {
        if (cs_deploy_resolve(x->client, json_string_value(a), &row) != CS_OK) {
            json_decref(*rows);
            return cs_error_code();
        }
        json_array_append_new(*rows, row);
    }
    return CS_OK;
}

/* Does a worker deploy to this resource row? */
static int worker_of(const json_t *w, const json_t *row)
{
    char a[32], b[32];

    return strcmp(jid(w, "ResourceId", a), jid(row, "Id", b)) == 0;
}

static int print_results(const json_t *rows, const json_t *workers)
{
    char label[256], id[32], wid[32];
    int failed = 0;
    json_t *r, *w;
    size_t i, k;

    json_array_foreach(rows, i, r)
    {
        cs_deploy_label(r, label, sizeof(label));
        json_array_foreach(workers, k, w)
        {
            if (!worker_of(w, r))
                continue;
            failed += cs_deploy_worker_failed(w);
            printf("  %-36s resource %-10s worker %-10s %s\n", cli_safe(label),
                   cli_safe(jid(r, "Id", id)), cli_safe(jid(w, "Id", wid)),
                   cli_safe(jstr(w, "Status")));
        }
    }
    return failed;
}

static void deploy_json(const char *job, const char *cert, const char *status, json_t *rows,
                        json_t *workers)
{
    json_t *o = json_pack("{s:s, s:s, s:s?}", "job", job, "certificate", cert, "status", status);

    add_labels(rows);
    json_object_set(o, "resources", rows);
    json_object_set(o, "workers", workers ? workers : json_null());
    cli_json_normalize(o);
    json_dumpf(o, stdout, JSON_PRESERVE_ORDER);
    printf("\n");
    json_decref(o);
}

/* --wait: each change of the job's status, as it happens (not with --json) */
typedef struct {
    char last[32];
    int json;
} watch;

static void progress(const char *job, const char *status, void *arg)
{
    watch *w = arg;

    if (strcmp(w->last, status) == 0)
        return;
    snprintf(w->last, sizeof(w->last), "%s", status);
    if (!w->json) {
        printf("deployment job %s: %s\n", job, cli_safe(status));
        fflush(stdout);
    }
}

static void said_how_it_ended(const char *job, const char *cert, const char *status, int failed,
                              size_t n)
{
    if (strcmp(status, "editing") == 0)
        printf("deployment job %s: taken back to editing before it ran (deployment cancel): "
               "nothing was deployed\n",
               job);
    else if (failed || strcmp(status, "success") != 0)
        printf("deployment job %s: %s: %d of %zu resource(s) failed; `certsync deployment %s` "
               "shows the workers, the product's console why\n",
               job, cli_safe(status), failed, n, job);
    else
        printf("deployment job %s: %s: every resource got certificate %s\n", job, cli_safe(status),
               cert);
}

static int deploy_run(ctx *x, const deploy_args *a, const char *cert, time_t when, json_t *rows)
{
    char contact[32], job[32], name[128], status[32] = "";
    watch w = {"", a->json};
    json_t *workers = NULL;
    int failed, timeout = a->timeout ? atoi(a->timeout) : 1800;

    snprintf(name, sizeof(name), "certsync %s", a->name ? a->name : cert);
    if (cs_deploy_contact(x->client, a->contact ? a->contact : x->pv->deploy_contact, contact,
                          sizeof(contact)) != CS_OK ||
        cs_deploy_start(x->client, name, cert, rows, contact, when, job, sizeof(job)) != CS_OK)
        return cli_fail("deploy");
    if (!a->json)
        printf("deployment job %s: certificate %s to %zu resource(s), %s\n", job, cert,
               json_array_size(rows), when ? "scheduled" : "started");
    if (!a->wait) {
        if (a->json)
            deploy_json(job, cert, when ? "scheduling" : "pending", rows, NULL);
        return EXIT_SUCCESS;
    }
    if (cs_deploy_follow(x->client, job, timeout > 0 ? timeout : 1800, progress, &w, status,
                         sizeof(status), &workers) != CS_OK)
        return cli_fail("deploy");
    failed = a->json ? 0 : print_results(rows, workers);
    if (a->json) {
        for (size_t i = 0; i < json_array_size(workers); i++)
            failed += cs_deploy_worker_failed(json_array_get(workers, i));
        deploy_json(job, cert, status, rows, workers);
    } else {
        said_how_it_ended(job, cert, status, failed, json_array_size(rows));
    }
    json_decref(workers);
    return failed || strcmp(status, "success") != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

static int cmd_deploy(const cli_command *self, int argc, char **argv)
{
    deploy_args a = {0};
    char cert[32] = "";
    time_t when = 0;
    json_t *rows = NULL;
    int first, rc = cli_parse(&self->spec, argc, argv, &a, &first);
    ctx x;

    if (rc != CLI_CONTINUE) {
        json_decref(a.to);
        return rc;
    }
    if (!a.name && first < argc)
        snprintf(cert, sizeof(cert), "%.31s", argv[first++]);
    for (; first < argc; first++)
        parse_to(argv[first], &a.to);
    rc = EXIT_USAGE;
    if (!a.name && (cert[0] == '\0' || strspn(cert, "0123456789") != strlen(cert)))
        cli_usage(&self->spec, "give the certificate's ID (digits) or --name NAME");
    else if (a.timeout && !seconds_valid(a.timeout))
        cli_usage(&self->spec, "--timeout takes whole seconds (1 or more)");
    else if (a.schedule && schedule_time(a.schedule, &when) != CS_OK)
        cli_usage(&self->spec, "%s", cs_error_last());
    else if ((rc = cli_service_open(&x, "deploy", a.provider)) == EXIT_SUCCESS) {
        if ((a.name && cert_of_name(&x, a.name, cert, sizeof(cert)) != CS_OK) ||
            resolve_all(&x, a.to, &rows) != CS_OK)
            rc = cli_fail("deploy");
        else
            rc = deploy_run(&x, &a, cert, when, rows);
        json_decref(rows);
        cli_service_close(&x);
    }
    json_decref(a.to);
    return rc;
}

/* ---- deployments ---- */

typedef struct {
    const char *provider;
    int json;
} jobs_args;

static const cli_opt jobs_opts[] = {
    OPT_PROVIDER(jobs_args), CLI_OPT_SWITCH(jobs_args, json, "json", "the service's rows as JSON"),
    CLI_OPT_CONFIG, CLI_OPT_HELP, CLI_OPT_END};

static void jobs_text(json_t *rows)
{
    char id[32], at[CS_TIME_ISO_SIZE];
    json_t *r;
    size_t i;

    printf("%-12s %-11s %-21s %-12s %-30s %s\n", "JOB", "STATUS", "CREATED", "PRODUCTS", "NAME",
           "DOMAINS");
    json_array_foreach(rows, i, r)
    {
        time_t t = cli_ms_time(json_object_get(r, "GmtCreate"));

        printf("%-12s %-11s %-21s %-12s %-30s %s\n", cli_safe(jid(r, "Id", id)),
               cli_safe(jstr(r, "Status")), t ? cs_time_iso(t, at) : "-",
               cli_safe(jstr(r, "ProductName")), cli_safe(jstr(r, "Name")),
               cli_safe(jstr(r, "CertDomain")));
    }
}

static int cmd_deployments(const cli_command *self, int argc, char **argv)
{
    jobs_args a = {0};
    int first, rc = cli_parse(&self->spec, argc, argv, &a, &first);
    json_t *rows;
    ctx x;

    if (rc != CLI_CONTINUE)
        return rc;
    if (first != argc)
        return cli_usage(&self->spec, "takes no arguments");
    if ((rc = cli_service_open(&x, "deployments", a.provider)) != EXIT_SUCCESS)
        return rc;
    rc = EXIT_FAILURE;
    if (cs_deploy_jobs(x.client, &rows) == CS_OK) {
        if (a.json)
            print_json(rows);
        else
            jobs_text(rows);
        json_decref(rows);
        rc = EXIT_SUCCESS;
    } else {
        cli_fail("deployments");
    }
    cli_service_close(&x);
    return rc;
}

/* ---- deployment JOB | cancel | delete | rollback ---- */

typedef struct {
    const char *provider, *resource, *timeout;
    int json;
} job_args;

static const cli_opt job_opts[] = {
    OPT_PROVIDER(job_args),
    CLI_OPT_VALUE(job_args, resource, "resource", "RESOURCE",
                  "rollback: only this resource's worker (as --to names it)"),
    CLI_OPT_VALUE(job_args, timeout, "timeout", "SECONDS",
                  "rollback: how long to follow it (default 600)"),
    CLI_OPT_SWITCH(job_args, json, "json",
                   "JOB: the job, its counts, workers and resources as JSON"),
    CLI_OPT_CONFIG,
    CLI_OPT_HELP,
    CLI_OPT_END};

static const char job_about[] =
    "deployment JOB: the job (DescribeDeploymentJob), its counts\n"
    "(DescribeDeploymentJobStatus), each worker with its status (ListWorkerResource: editing,\n"
    "pending, scheduling, processing, success, error, rollback, rollback_success,\n"
    "rollback_error) and the certificate each resource serves now\n"
    "(ListDeploymentJobResource).\n"
    "deployment cancel JOB: takes back a job that has not begun to run (pending or\n"
    "scheduled) to editing: it does not run (UpdateDeploymentJobStatus editing).\n"
    "deployment delete JOB: deletes a job that is not running (DeleteDeploymentJob).\n"
    "deployment rollback JOB [--resource RESOURCE]: puts back on each resource (or one) the\n"
    "certificate it served before the job (UpdateWorkerResourceStatus rollback) and follows\n"
    "it; exit 1 when a rollback failed.\n";

static cs_rc call_job(ctx *x, const char *action, const char *job, const char *k2, const char *v2,
                      json_t **out)
{
    cs_kv q;
    cs_rc rc;

    cs_kv_init(&q);
    cs_kv_set(&q, "JobId", job);
    if (k2)
        cs_kv_set(&q, k2, v2);
    rc = cs_aliyun_call(x->client, action, &q, out);
    cs_kv_clear(&q);
    return rc;
}

/* A worker as a resource row (ListWorkerResource's names), for its label. */
static void worker_label(const json_t *w, char *buf, size_t size)
{
    json_t *row = json_pack("{s:s, s:s, s:s, s:O?}", "CloudProduct", jstr(w, "CloudProduct"),
                            "Domain", jstr(w, "ResourceDomain"), "InstanceId",
                            jstr(w, "InstanceId"), "Id", json_object_get(w, "ResourceId"));
    char port[32];

    if (row && json_is_integer(json_object_get(w, "Port")) &&
        json_integer_value(json_object_get(w, "Port")) > 0) {
        snprintf(port, sizeof(port), "%lld",
                 (long long)json_integer_value(json_object_get(w, "Port")));
        json_object_set_new(row, "ListenerPort", json_string(port));
    }
    cs_deploy_label(row ? row : w, buf, size);
    json_decref(row);
}

static void job_text(json_t *d, json_t *counts, json_t *workers, json_t *resources)
{
    char id[32], a[32], cert[32], label[256], t1[CS_TIME_ISO_SIZE];
    json_t *w, *r;
    size_t i, k;

    printf("job          %s  %s\nstatus       %s\n", cli_safe(jid(d, "Id", id)),
           cli_safe(jstr(d, "Name")), cli_safe(jstr(d, "Status")));
    if (cli_ms_time(json_object_get(d, "ScheduleTime")))
        printf("scheduled    %s\n",
               cs_time_iso(cli_ms_time(json_object_get(d, "ScheduleTime")), t1));
    printf("workers      %lld: %lld success, %lld failed, %lld rolled back\n",
           (long long)json_integer_value(json_object_get(counts, "WorkerCount")),
           (long long)json_integer_value(json_object_get(counts, "SuccessCount")),
           (long long)json_integer_value(json_object_get(counts, "FailedCount")),
           (long long)json_integer_value(json_object_get(counts, "RollbackSuccessCount")));
    json_array_foreach(workers, i, w)
    {
        const char *now = "";

        worker_label(w, label, sizeof(label));
        json_array_foreach(resources, k, r)
        {
            if (strcmp(jid(r, "Id", a), jid(w, "ResourceId", id)) == 0)
                now = jstr(r, "CertName");
        }
        printf("  %-36s worker %-10s %-17s certificate %s (the resource serves %s now)\n",
               cli_safe(label), cli_safe(jid(w, "Id", id)), cli_safe(jstr(w, "Status")),
               cli_safe(jid(w, "CertId", cert)), *now ? cli_safe(now) : "none");
    }
}

static int job_show(ctx *x, const char *job, int as_json)
{
    json_t *d = NULL, *counts = NULL, *workers = NULL, *res = NULL;
    int rc = EXIT_FAILURE;

    if (call_job(x, "DescribeDeploymentJob", job, NULL, NULL, &d) == CS_OK &&
        call_job(x, "DescribeDeploymentJobStatus", job, NULL, NULL, &counts) == CS_OK &&
        cs_deploy_workers(x->client, job, &workers) == CS_OK &&
        call_job(x, "ListDeploymentJobResource", job, NULL, NULL, &res) == CS_OK) {
        json_t *rows = json_object_get(res, "Data");

        add_labels(rows);
        if (as_json) {
            json_t *o = json_pack("{s:O, s:O, s:O, s:O}", "job", d, "counts", counts, "workers",
                                  workers, "resources", rows);

            json_object_del(json_object_get(o, "job"), "RequestId");
            json_object_del(json_object_get(o, "counts"), "RequestId");
            print_json(o);
            json_decref(o);
        } else {
            job_text(d, counts, workers, rows);
        }
        rc = EXIT_SUCCESS;
    } else {
        cli_fail("deployment");
    }
    json_decref(d);
    json_decref(counts);
    json_decref(workers);
    json_decref(res);
    return rc;
}

/* Does the worker deploy to what --resource names (a label or a resource id)? */
static int worker_named(const json_t *w, const char *resource)
{
    char label[256], id[32];

    if (resource == NULL)
        return 1;
    worker_label(w, label, sizeof(label));
    return strcasecmp(label, resource) == 0 || strcmp(jid(w, "ResourceId", id), resource) == 0;
}

static int asked_for(const json_t *asked, const char *worker)
{
    json_t *v;
    size_t i;

    json_array_foreach(asked, i, v) if (strcmp(json_string_value(v), worker) == 0) return 1;
    return 0;
}

/* The workers asked to roll back, followed until none is in "rollback"; 1 if one failed. */
static int rollback_wait(ctx *x, const char *job, int timeout, const json_t *asked)
{
    time_t end = time(NULL) + timeout;
    json_t *workers = NULL, *w;
    char label[256], id[32], was[32];
    size_t i;
    int busy = 1, failed = 0;

    while (busy) {
        json_decref(workers);
        if (cs_deploy_workers(x->client, job, &workers) != CS_OK)
            return cli_fail("deployment rollback");
        busy = 0;
        json_array_foreach(workers, i, w) busy |= strcmp(jstr(w, "Status"), "rollback") == 0;
        if (busy && time(NULL) >= end) {
            json_decref(workers);
            fprintf(stderr,
                    "certsync deployment rollback: job %s is still rolling back after %d s; "
                    "`certsync deployment %s` shows how it ends\n",
                    job, timeout, job);
            return EXIT_FAILURE;
        }
        if (busy)
            usleep(500000);
    }
    json_array_foreach(workers, i, w)
    {
        if (!asked_for(asked, jid(w, "Id", id)))
            continue;
        worker_label(w, label, sizeof(label));
        failed += strcmp(jstr(w, "Status"), "rollback_success") != 0;
        printf("  %-36s worker %-10s %s (certificate %s again)\n", cli_safe(label), cli_safe(id),
               cli_safe(jstr(w, "Status")), cli_safe(jid(w, "ResourceCertId", was)));
    }
    json_decref(workers);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

static cs_rc rollback_worker(ctx *x, const char *job, const char *worker)
{
    json_t *r = NULL;
    cs_kv q;
    cs_rc rc;

    cs_kv_init(&q);
    cs_kv_set(&q, "JobId", job);
    cs_kv_set(&q, "WorkerId", worker);
    cs_kv_set(&q, "Status", "rollback");
    rc = cs_aliyun_call(x->client, "UpdateWorkerResourceStatus", &q, &r);
    cs_kv_clear(&q);
    json_decref(r);
    return rc;
}

static int job_rollback(ctx *x, const char *job, const job_args *a)
{
    json_t *workers, *w, *asked = json_array();
    char id[32];
    size_t i;
    int rc;

    if (cs_deploy_workers(x->client, job, &workers) != CS_OK)
        return cli_fail("deployment rollback");
    json_array_foreach(workers, i, w)
    {
        if (strcmp(jstr(w, "Status"), "success") != 0 || !worker_named(w, a->resource))
            continue;
        if (rollback_worker(x, job, jid(w, "Id", id)) != CS_OK) {
            json_decref(workers);
            json_decref(asked);
            return cli_fail("deployment rollback");
        }
        json_array_append_new(asked, json_string(id));
    }
    json_decref(workers);
    if (json_array_size(asked) == 0) {
        json_decref(asked);
        fprintf(stderr,
                "certsync deployment rollback: job %s has no worker%s%s that succeeded, so "
                "nothing to roll back (`certsync deployment %s`)\n",
                job, a->resource ? " for " : "", a->resource ? cli_safe(a->resource) : "", job);
        return EXIT_FAILURE;
    }
    printf("deployment job %s: rolling back %zu resource(s)\n", job, json_array_size(asked));
    rc = rollback_wait(x, job, a->timeout ? atoi(a->timeout) : 600, asked);
    json_decref(asked);
    return rc;
}

static int job_change(ctx *x, const char *verb, const char *job)
{
    json_t *r = NULL;
    cs_rc rc = strcmp(verb, "cancel") == 0
                   ? call_job(x, "UpdateDeploymentJobStatus", job, "Status", "editing", &r)
                   : call_job(x, "DeleteDeploymentJob", job, NULL, NULL, &r);

    if (rc != CS_OK)
        return cli_fail(strcmp(verb, "cancel") == 0 ? "deployment cancel" : "deployment delete");
    json_decref(r);
    printf("deployment job %s: %s\n", job,
           strcmp(verb, "cancel") == 0 ? "cancelled (back to editing; it does not run)"
                                       : "deleted");
    return EXIT_SUCCESS;
}

static int cmd_deployment(const cli_command *self, int argc, char **argv)
{
    job_args a = {0};
    int first, rc = cli_parse(&self->spec, argc, argv, &a, &first);
    const char *verb = NULL, *job;
    ctx x;

    if (rc != CLI_CONTINUE)
        return rc;
    if (first < argc && (strcmp(argv[first], "cancel") == 0 || strcmp(argv[first], "delete") == 0 ||
                         strcmp(argv[first], "rollback") == 0))
        verb = argv[first++];
    if (first + 1 != argc || strspn(argv[first], "0123456789") != strlen(argv[first]) ||
        strlen(argv[first]) > 19)
        return cli_usage(&self->spec, "give one job ID (digits), after cancel, delete or "
                                      "rollback if you mean one of them");
    job = argv[first];
    if ((a.resource || a.timeout) && (verb == NULL || strcmp(verb, "rollback") != 0))
        return cli_usage(&self->spec, "--resource and --timeout go with rollback");
    if (a.timeout && !seconds_valid(a.timeout))
        return cli_usage(&self->spec, "--timeout takes whole seconds (1 or more)");
    if ((rc = cli_service_open(&x, "deployment", a.provider)) != EXIT_SUCCESS)
        return rc;
    if (verb == NULL)
        rc = job_show(&x, job, a.json);
    else if (strcmp(verb, "rollback") == 0)
        rc = job_rollback(&x, job, &a);
    else
        rc = job_change(&x, verb, job);
    cli_service_close(&x);
    return rc;
}

const cli_command cli_deploy_commands[] = {
    CLI_COMMAND("resources", NULL,
                "cloud resources that can take a certificate, with what each serves",
                resources_about, resources_opts, cmd_resources),
    CLI_COMMAND("deploy", "[ID]", "deploy a certificate of the service to cloud resources",
                deploy_about, deploy_opts, cmd_deploy),
    CLI_COMMAND("deployments", NULL, "the account's deployment jobs",
                "Every deployment job of the account (ListDeploymentJob), newest first.\n",
                jobs_opts, cmd_deployments),
    CLI_COMMAND("deployment", "[cancel|delete|rollback] JOB",
                "one job's workers; cancel, delete or roll it back", job_about, job_opts,
                cmd_deployment),
    CLI_COMMAND_END};
