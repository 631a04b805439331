/*
 * certsync: deploying a certificate of the service to the operator's cloud
 * products (CDN and DCDN domains, CLB/ALB/NLB listeners, WAF, OSS, ... and
 * other clouds' resources) through the service's deployment jobs, as the
 * console's "deploy" does: ListCloudResources, ListContact,
 * CreateDeploymentJob, UpdateDeploymentJobStatus, DescribeDeploymentJob,
 * ListWorkerResource, ... (API 2020-04-07). A job starts in "editing";
 * "pending" starts it; it goes through "scheduling" (a schedule time) and
 * "processing" to "success" or "error"; each resource is one worker with the
 * same states, plus rollback, rollback_success and rollback_error.
 *
 * A resource is named as an operator knows it: PRODUCT:DOMAIN
 * (cdn:www.example.com), PRODUCT:INSTANCE[:PORT] or PRODUCT:LISTENER for
 * load balancers (slb:lb-xxxx:443, alb:lsn-xxxx), or the service's resource
 * id (digits). The answers' rows are the service's JSON objects (borrowed
 * from or owned by the caller as each function says).
 */
#ifndef CS_DEPLOY_H
#define CS_DEPLOY_H

#include <jansson.h>
#include <time.h>

#include "cs_aliyun.h"
#include "cs_error.h"
#include "cs_store.h"

/* "cdn, dcdn, slb, alb, ...": the products a resource argument may name. */
const char *cs_deploy_products(void);

/* The service's CloudProduct and CloudName of a product argument ("cdn"), or CS_EINVAL. */
cs_rc cs_deploy_product(const char *arg, const char **product, const char **cloud);

/*
 * Every resource that can take a certificate (ListCloudResources, all pages):
 * product NULL for all, keyword the service's fuzzy match on domain or
 * instance id, cloud NULL for aliyun ("Tencent", "Huawei", "Aws": resources
 * reached through each of the account's ListCloudAccess entries). *rows owned.
 */
cs_rc cs_deploy_resources(cs_aliyun *c, const char *product, const char *keyword, const char *cloud,
                          json_t **rows);

/*
 * A `deploy =` value: resources separated by spaces, each a resource id or
 * PRODUCT:VALUE of a known product (checked without asking the service).
 */
cs_rc cs_deploy_targets_check(const char *value);

/* How an operator names the resource of a ListCloudResources row: cdn:www.example.com. */
void cs_deploy_label(const json_t *row, char *buf, size_t size);

/* The one resource an argument names (its ListCloudResources row, owned), or why not. */
cs_rc cs_deploy_resolve(cs_aliyun *c, const char *arg, json_t **row);

/* The contact id a job names: configured (digits) if given, else the account's first. */
cs_rc cs_deploy_contact(cs_aliyun *c, const char *configured, char *id, size_t size);

/*
 * Create a job deploying the certificate cert_id to the resources (rows of
 * ListCloudResources) and start it (status pending; at schedule when not 0):
 * *job gets its id. A job that cannot be started is deleted again.
 */
cs_rc cs_deploy_start(cs_aliyun *c, const char *name, const char *cert_id, const json_t *resources,
                      const char *contact, time_t schedule, char *job, size_t size);

/* Called while a job is followed, at each look (status: the job's). */
typedef void (*cs_deploy_progress)(const char *job, const char *status, void *arg);

/*
 * Follow the job until it ends (success, error, or taken back to editing) or
 * timeout_s passes (CS_EPROVIDER naming the job, which goes on): *status gets
 * its last status and *workers (owned) the rows of ListWorkerResource.
 */
cs_rc cs_deploy_follow(cs_aliyun *c, const char *job, int timeout_s, cs_deploy_progress progress,
                       void *arg, char *status, size_t size, json_t **workers);

/* Every worker of a job (ListWorkerResource, all pages); *rows owned. */
cs_rc cs_deploy_workers(cs_aliyun *c, const char *job, json_t **rows);

/* Every job of the account (ListDeploymentJob, all pages); *rows owned. */
cs_rc cs_deploy_jobs(cs_aliyun *c, json_t **rows);

/* A worker's status the service reports: "success", "error", "processing", ... */
int cs_deploy_worker_failed(const json_t *worker);

/*
 * A sync's last step for a [cert] with `deploy =`: its current version (a
 * certificate of the service: meta.json remote_id) goes to every resource
 * that has not had it from certsync yet, in one job that is followed to its
 * end (at most deploy-wait, default CS_DEPLOY_FOLLOW_S; a job still running then is followed by
 * the next sync, never made twice). A resource that already serves it is
 * marked done without a job. The result of each resource is kept in
 * state.json ("deploy"); a failed one stays pending and every following sync
 * deploys it again (backoff: in-server syncs wait 1 min after the first
 * failure, doubling, at most 1 h). *said tells what was deployed ("" when
 * nothing was due). No API call is made when nothing is due.
 */
#define CS_DEPLOY_FOLLOW_S 900
cs_rc cs_deploy_cert(cs_sync_session *sess, cs_store *s, const cs_cert_conf *cc, int backoff,
                     char *said, size_t size);

/*
 * For `sync --dry-run` (no call, nothing written): what the deployment step of
 * a sync would do for cc, due: the sync would install a new version; *buf ""
 * when it would do nothing.
 */
void cs_deploy_plan(cs_store *s, const cs_cert_conf *cc, int due, char *buf, size_t size);

/*
 * For status (README "Status"): *deployments, one object per resource of the
 * last deployment ({resource, resource_id, certificate, status, job, worker,
 * at, error}), and *pending, null or {certificate, version, resources,
 * error, since, attempts, next_attempt, job}. Both new references.
 */
cs_rc cs_deploy_status(cs_store *s, const char *name, json_t **deployments, json_t **pending);

#endif
