"""The deployment jobs of the cas emulator: cloud resources that can take a certificate
(CDN and DCDN domains, CLB/ALB/NLB listeners, WAF, OSS, ...), contacts, deployment jobs and
their worker tasks, as the service's API documentation and the official SDK's models describe
them (README.md next to this file, "Deployment jobs").

cas_emulator.py calls register() with itself: the actions join its ACTIONS table, the
control endpoints its /_control/, and reset() runs with its reset.
"""
import time

E = None  # the cas_emulator module (its ApiError, parameter helpers, CA)

JOB_ID_START = 88880001        # below 2**53: the official JavaScript SDK reads them as doubles
RESOURCE_ID_START = 2356001
WORKER_ID_START = 22487001
CONTACT_ID_START = 519580
ACCESS_ID_START = 888
USER_ID = 1666884372152785     # the account (the SDK's example)

# a job's states (the SDK: pending, editing, scheduling, processing, error, success)
JOB_FINAL = {"success", "error"}
# UpdateDeploymentJobStatus: "pending", "scheduling" start an editing job; "editing" takes
# back one that has not begun to run
START_STATES = {"pending", "scheduling"}
CLOUDS = {"aliyun", "Tencent", "Huawei", "Aws"}
LISTENER_PRODUCTS = {"SLB", "ALB", "NLB", "GA"}


def err_not_found(what):
    return E.ApiError("NotFound", "The resource not found. Check the input parameters. (%s)" % what,
                      400)


def err_job_state(job, wanted):
    return E.ApiError("JobStatusError",
                      "The deployment job %d is %s: it cannot become %s." % (job.id, job.status, wanted),
                      400)


class Resource:
    def __init__(self, rid, product, domain, cloud="aliyun", instance=None, listener=None,
                 port=None, region="cn-hangzhou", access=None):
        self.id, self.product, self.domain, self.cloud = rid, product, domain, cloud
        self.instance, self.listener, self.port, self.region = instance, listener, port, region
        self.access = access
        self.cert_id = None
        self.created = self.modified = time.time()
        self.deployed = []   # (job id, worker id, cert id) of every worker that succeeded

    def row(self, emu):
        r = {"Id": self.id, "UserId": USER_ID, "CloudName": self.cloud, "CloudProduct": self.product,
             "CloudRegion": self.region, "RegionId": self.region, "Domain": self.domain or "",
             "EnableHttps": 1, "Status": "online", "UseSsl": 1,
             "GmtCreate": str(int(self.created * 1000)), "GmtModified": str(int(self.modified * 1000))}
        if self.product in LISTENER_PRODUCTS:
            r.update({"InstanceId": self.instance or "", "ListenerId": self.listener or "",
                      "ListenerPort": str(self.port or ""), "DefaultResource": 1})
        if self.access is not None:
            r["CloudAccessId"] = str(self.access)
        c = emu.certs.get(self.cert_id) if self.cert_id else None
        if c is not None:
            f = c.common_fields()
            r.update({"CertId": c.id, "CertName": c.name, "CertStartTime": str(f["nb_ms"]),
                      "CertEndTime": str(f["na_ms"])})
        return r


class Worker:
    def __init__(self, wid, job, resource, cert_id):
        self.id, self.job, self.resource, self.cert_id = wid, job, resource, cert_id
        self.status = "editing"
        self.original_cert = resource.cert_id   # ResourceCertId: what it served before
        self.fail = False
        self.created = self.modified = time.time()
        self.rollback_at = None


class Job:
    def __init__(self, jid, name, job_type, cert_ids, resources, contacts, schedule_ms):
        self.id, self.name, self.job_type = jid, name, job_type
        self.cert_ids, self.resources, self.contacts = cert_ids, resources, contacts
        self.schedule_ms = schedule_ms
        self.status = "editing"
        self.created = self.modified = time.time()
        self.started = self.ended = None
        self.run_at = None        # when it leaves pending/scheduling for processing
        self.deleted = False
        self.workers = []


def reset(emu):
    emu.resources = {}
    emu.contacts = {}
    emu.jobs = {}
    emu.accesses = {}
    emu.deploy_faults = {}   # resource id -> failures left (0: until cleared)
    emu.next_job_id = JOB_ID_START
    emu.next_resource_id = RESOURCE_ID_START
    emu.next_worker_id = WORKER_ID_START
    emu.next_contact_id = CONTACT_ID_START
    emu.next_access_id = ACCESS_ID_START
    emu.deploy_step = 0.3
    # every account has its owner as an alert contact until the test removes it
    add_contact(emu, "owner", "owner@example.com")


def add_contact(emu, name, email):
    cid = emu.next_contact_id
    emu.next_contact_id += 1
    emu.contacts[cid] = {"ContactId": cid, "Name": name, "Email": email, "EmailStatus": 1,
                         "Mobile": "139****0000", "MobileStatus": 1, "Webhooks": "[]"}
    return cid


# ---------------------------------------------------------------- progression

def _covers(names, domain):
    domain = (domain or "").lower()
    for n in names:
        n = n.lower()
        if n == domain or (n.startswith("*.") and "." in domain and domain.split(".", 1)[1] == n[2:]):
            return True
    return False


def _worker_fails(emu, w):
    """A fault the test asked for, or what the documentation says fails: the certificate must
    cover the resource's domain (CDN, DCDN, OSS, WAF ... bind a certificate to a domain)."""
    left = emu.deploy_faults.get(w.resource.id)
    if left is not None:
        if left == 1:
            del emu.deploy_faults[w.resource.id]
        elif left > 1:
            emu.deploy_faults[w.resource.id] = left - 1
        return True
    c = emu.certs.get(w.cert_id)
    if c is None:
        return True
    return bool(w.resource.domain) and not _covers(E.cert_dns_names(c.leaf), w.resource.domain)


def advance(emu, job, now=None):
    """pending/scheduling -> processing at the schedule (or a step after the start) ->
    each worker success or error a step later; the job ends success when every worker
    succeeded, else error. A rollback worker ends a step after it was asked for."""
    now = now or time.time()
    step = emu.deploy_step
    if job.status in START_STATES and now >= job.run_at:
        job.status = "processing"
        job.modified = now
        for w in job.workers:
            w.status, w.modified = "processing", now
    if job.status == "processing" and now >= job.run_at + step:
        for w in job.workers:
            if w.status != "processing":
                continue
            w.fail = _worker_fails(emu, w)
            w.status, w.modified = ("error" if w.fail else "success"), now
            if not w.fail:
                w.resource.cert_id = w.cert_id
                w.resource.modified = now
                w.resource.deployed.append((job.id, w.id, w.cert_id))
        job.status = "error" if any(w.status == "error" for w in job.workers) else "success"
        job.ended = job.modified = now
    for w in job.workers:
        if w.status == "rollback" and now >= w.rollback_at + step:
            w.status, w.modified = "rollback_success", now
            w.resource.cert_id = w.original_cert
            w.resource.modified = now


def _job(emu, p):
    jid = E.p_int(p, "JobId", required=True)
    job = emu.jobs.get(jid)
    if job is None:
        raise err_not_found("JobId %d" % jid)
    advance(emu, job)
    return job


def _page(p, rows, default_size):
    page = E.p_int(p, "CurrentPage", default=1, minimum=1)
    size = E.p_int(p, "ShowSize", default=default_size, minimum=1)
    return page, size, rows[(page - 1) * size:page * size]


def _ms(t):
    return str(int(t * 1000)) if t else ""


# ---------------------------------------------------------------- actions

def act_list_resources(emu, p):
    cloud = E.p_str(p, "CloudName") or "aliyun"
    product = E.p_str(p, "CloudProduct")
    keyword = (E.p_str(p, "Keyword") or "").lower()
    secret = E.p_str(p, "SecretId")
    if cloud not in CLOUDS:
        raise E.invalid("CloudName")
    with emu.lock:
        rows = [r for r in sorted(emu.resources.values(), key=lambda r: -r.id)
                if r.cloud == cloud and (not product or r.product == product)
                and (not keyword or keyword in (r.domain or "").lower()
                     or keyword in (r.instance or "").lower())
                and (not secret or str(r.access) == secret)]
        page, size, shown = _page(p, rows, 20)
        return {"Total": len(rows), "CurrentPage": page, "ShowSize": size,
                "Data": [r.row(emu) for r in shown]}


def act_list_contact(emu, p):
    keyword = E.p_str(p, "Keyword")
    with emu.lock:
        rows = [c for _, c in sorted(emu.contacts.items())
                if not keyword or keyword.lower() in (c["Name"] + c["Email"]).lower()]
        page, size, shown = _page(p, rows, 20)
        out = {"TotalCount": len(rows), "CurrentPage": page, "ShowSize": size,
               "ContactList": [dict(c) for c in shown]}
        if keyword:
            out["Keyword"] = keyword
        return out


def _id_list(p, name):
    raw = E.p_str(p, name, required=True)
    out = []
    for part in raw.split(","):
        part = part.strip()
        if not E.INT_RE.match(part):
            raise E.invalid(name)
        out.append(int(part))
    return out


def act_create_job(emu, p):
    name = E.p_str(p, "Name", required=True)
    job_type = E.p_str(p, "JobType", required=True)
    if job_type not in ("user", "cloud"):
        raise E.invalid("JobType")
    cert_ids = _id_list(p, "CertIds")
    resource_ids = _id_list(p, "ResourceIds")
    contact_ids = _id_list(p, "ContactIds")
    schedule = E.p_int(p, "ScheduleTime", minimum=0)
    with emu.lock:
        for cid in cert_ids:
            if cid not in emu.certs:
                raise err_not_found("CertIds %d" % cid)
        for rid in resource_ids:
            r = emu.resources.get(rid)
            if r is None:
                raise err_not_found("ResourceIds %d" % rid)
            # a "user" job deploys to this account's cloud services, a "cloud" job to others'
            if (r.cloud == "aliyun") != (job_type == "user"):
                raise E.invalid("JobType")
        for cid in contact_ids:
            if cid not in emu.contacts:
                raise err_not_found("ContactIds %d" % cid)
        job = Job(emu.next_job_id, name, job_type, cert_ids,
                  [emu.resources[r] for r in resource_ids], contact_ids, schedule)
        emu.next_job_id += 1
        for cid in cert_ids:
            for r in job.resources:
                job.workers.append(Worker(emu.next_worker_id, job, r, cid))
                emu.next_worker_id += 1
        emu.jobs[job.id] = job
    return {"JobId": job.id}


def act_update_job_status(emu, p):
    status = E.p_str(p, "Status", required=True)
    if status not in START_STATES | {"editing"}:
        raise E.invalid("Status")
    with emu.lock:
        job = _job(emu, p)
        now = time.time()
        if status in START_STATES:
            if job.status != "editing" or job.deleted:
                raise err_job_state(job, status)
            at = job.schedule_ms / 1000.0 if job.schedule_ms else 0
            job.status = "scheduling" if at > now else "pending"
            job.run_at = max(now + emu.deploy_step, at)
            job.started = now
        else:
            # taken back before it ran: its workers never start
            if job.status not in START_STATES:
                raise err_job_state(job, status)
            job.status, job.run_at = "editing", None
        job.modified = now
        for w in job.workers:
            w.status, w.modified = job.status, now
    return {"Data": []}


def act_delete_job(emu, p):
    with emu.lock:
        job = _job(emu, p)
        if job.status not in ("editing", "success", "error") or job.deleted:
            raise err_job_state(job, "deleted")
        job.deleted = True
        job.modified = time.time()
    return {}


def _job_row(job):
    products = sorted({r.product for r in job.resources})
    return {"Id": job.id, "UserId": USER_ID, "InstanceId": "cas-job-user-%06x" % job.id,
            "Name": job.name, "JobType": job.job_type, "Status": job.status,
            "Del": 1 if job.deleted else 0,
            "Rollback": 1 if any(w.status.startswith("rollback") for w in job.workers) else 0,
            "ProductName": ",".join(products), "CertType": "buy",
            "CertDomain": ",".join(sorted({r.domain for r in job.resources if r.domain})),
            "GmtCreate": _ms(job.created), "GmtModified": _ms(job.modified),
            "ScheduleTime": str(job.schedule_ms) if job.schedule_ms else "",
            "StartTime": _ms(job.started), "EndTime": _ms(job.ended)}


def act_describe_job(emu, p):
    with emu.lock:
        job = _job(emu, p)
        row = _job_row(job)
        row["Config"] = '{"shareCertIds":[],"certIds":[%s]}' % ",".join(map(str, job.cert_ids))
        row["CasContacts"] = [{"Id": str(c), "Name": emu.contacts[c]["Name"],
                               "Email": emu.contacts[c]["Email"],
                               "Mobile": emu.contacts[c]["Mobile"]}
                              for c in job.contacts if c in emu.contacts]
        return row


def act_describe_job_status(emu, p):
    with emu.lock:
        job = _job(emu, p)
        ws = job.workers
        per = {}
        for w in ws:
            per[w.resource.product] = per.get(w.resource.product, 0) + 1
        done = [w for w in ws if w.status in ("success", "error") or w.status.startswith("rollback")]
        return {"WorkerCount": len(ws), "MatchWorkerCount": len(ws),
                "SuccessCount": sum(1 for w in ws if w.status in ("success",) or
                                    w.status.startswith("rollback")),
                "FailedCount": sum(1 for w in ws if w.status == "error"),
                "RollbackCount": sum(1 for w in ws if w.status.startswith("rollback")),
                "RollbackSuccessCount": sum(1 for w in ws if w.status == "rollback_success"),
                "RollbackFailedCount": sum(1 for w in ws if w.status == "rollback_error"),
                "CertCount": len(job.cert_ids), "ResourceCount": len(emu.resources),
                "CostCount": len(done), "UseCount": len(done), "BuyCount": 500,
                "ProductWorkerCount": [{"ProductName": k, "Count": v} for k, v in sorted(per.items())]}


def act_list_jobs(emu, p):
    status = E.p_str(p, "Status")
    job_type = E.p_str(p, "JobType")
    with emu.lock:
        rows = []
        for job in sorted(emu.jobs.values(), key=lambda j: -j.id):
            advance(emu, job)
            if job.deleted or (status and job.status != status) or (job_type and job.job_type != job_type):
                continue
            rows.append(job)
        page, size, shown = _page(p, rows, 50)
        return {"Total": len(rows), "CurrentPage": page, "ShowSize": size,
                "Data": [_job_row(j) for j in shown]}


def act_list_job_resources(emu, p):
    with emu.lock:
        job = _job(emu, p)
        return {"Data": [r.row(emu) for r in job.resources]}


def _worker_row(emu, w):
    c = emu.certs.get(w.cert_id)
    r = w.resource
    row = {"Id": w.id, "JobId": w.job.id, "UserId": USER_ID, "Status": w.status,
           "CertId": w.cert_id, "CertName": c.name if c else "",
           "CertDomain": c.common_fields()["common"] if c else "",
           "CertInstanceId": "cas-ivauto-%06x" % w.cert_id if c else "",
           "CloudProduct": r.product, "RegionId": r.region, "ResourceId": r.id,
           "ResourceDomain": r.domain or "", "ResourceCertId": w.original_cert or 0,
           "GmtCreate": _ms(w.created), "GmtModified": _ms(w.modified)}
    if r.cloud != "aliyun":
        row.update({"CloudName": r.cloud, "CloudRegion": r.region})
    if r.product in LISTENER_PRODUCTS:
        row.update({"InstanceId": r.instance or "", "ListenerId": r.listener or "",
                    "Port": int(r.port or 0), "DefaultResource": True})
    return row


def act_list_workers(emu, p):
    status = E.p_str(p, "Status")
    product = E.p_str(p, "CloudProduct")
    with emu.lock:
        job = _job(emu, p)
        rows = [w for w in job.workers if (not status or w.status == status)
                and (not product or w.resource.product == product)]
        page, size, shown = _page(p, rows, 50)
        return {"Total": len(rows), "CurrentPage": page, "ShowSize": size,
                "Data": [_worker_row(emu, w) for w in shown]}


def act_update_worker(emu, p):
    status = E.p_str(p, "Status", required=True)
    wid = E.p_int(p, "WorkerId", required=True)
    if status != "rollback":
        raise E.invalid("Status")
    with emu.lock:
        job = _job(emu, p)
        w = next((w for w in job.workers if w.id == wid), None)
        if w is None:
            raise err_not_found("WorkerId %d" % wid)
        if w.status != "success":
            raise E.ApiError("JobStatusError", "The worker %d is %s: only a worker that succeeded "
                             "can be rolled back." % (w.id, w.status), 400)
        w.status, w.rollback_at = "rollback", time.time()
        w.modified = w.rollback_at
    return {"Data": []}


def act_list_cloud_access(emu, p):
    cloud = E.p_str(p, "CloudName")
    secret = E.p_str(p, "SecretId")
    with emu.lock:
        rows = [a for _, a in sorted(emu.accesses.items())
                if (not cloud or a["CloudName"] == cloud) and (not secret or a["SecretId"] == secret)]
        page, size, shown = _page(p, rows, 20)
        return {"TotalCount": len(rows), "CurrentPage": page, "ShowSize": size,
                "CloudAccessList": [dict(a) for a in shown]}


ACTIONS = {
    "ListCloudResources": act_list_resources,
    "ListContact": act_list_contact,
    "CreateDeploymentJob": act_create_job,
    "UpdateDeploymentJobStatus": act_update_job_status,
    "DescribeDeploymentJob": act_describe_job,
    "DescribeDeploymentJobStatus": act_describe_job_status,
    "ListDeploymentJob": act_list_jobs,
    "ListDeploymentJobResource": act_list_job_resources,
    "ListWorkerResource": act_list_workers,
    "UpdateWorkerResourceStatus": act_update_worker,
    "DeleteDeploymentJob": act_delete_job,
    "ListCloudAccess": act_list_cloud_access,
}

LOGGABLE = {"JobId", "JobType", "CertIds", "ResourceIds", "ContactIds", "ScheduleTime",
            "CloudName", "CloudProduct", "WorkerId", "SecretId"}


# ---------------------------------------------------------------- control endpoints

def ctl_add_resource(emu, p):
    product = p.get("product", "CDN")
    cloud = p.get("cloud", "aliyun")
    if cloud not in CLOUDS:
        raise ValueError("cloud must be one of " + ",".join(sorted(CLOUDS)))
    with emu.lock:
        r = Resource(emu.next_resource_id, product, p.get("domain") or None, cloud,
                     p.get("instance") or None, p.get("listener") or None,
                     p.get("port") or None, p.get("region", "cn-hangzhou"),
                     int(p["access"]) if p.get("access") else None)
        emu.next_resource_id += 1
        if p.get("cert_id"):
            if int(p["cert_id"]) not in emu.certs:
                raise E.ApiError("NotFound", "no such certificate", 404)
            r.cert_id = int(p["cert_id"])
        emu.resources[r.id] = r
    return {"ok": True, "Id": r.id}


def ctl_deploy_fault(emu, p):
    rid = int(p.get("resource_id", "0"))
    if rid not in emu.resources:
        raise E.ApiError("NotFound", "no such resource", 404)
    emu.deploy_faults[rid] = int(p.get("count", "1"))
    return {"ok": True, "resource_id": rid, "count": emu.deploy_faults[rid]}


def ctl_contact(emu, p):
    with emu.lock:
        if p.get("clear") in ("1", "true"):
            emu.contacts.clear()
            return {"ok": True}
        return {"ok": True, "ContactId": add_contact(emu, p.get("name", "ops"),
                                                     p.get("email", "ops@example.com"))}


def ctl_add_cloud_access(emu, p):
    with emu.lock:
        aid = emu.next_access_id
        emu.next_access_id += 1
        emu.accesses[aid] = {"AccessId": aid, "CloudName": p.get("cloud", "Tencent"),
                             "SecretId": p.get("secret_id", "AKIDexample%d" % aid),
                             "ServiceStatus": "normal"}
    return {"ok": True, "AccessId": aid}


def ctl_deploy_speed(emu, p):
    """The time each step takes; a job waiting to run starts at most one new step from now."""
    with emu.lock:
        emu.deploy_step = float(p.get("step", "0.3"))
        now = time.time()
        for job in emu.jobs.values():
            if job.status in START_STATES and not (job.schedule_ms and job.schedule_ms / 1000.0 > now):
                job.run_at = min(job.run_at, now + emu.deploy_step)
    return {"ok": True, "step": emu.deploy_step}


CONTROLS = {"add-resource": ctl_add_resource, "deploy-fault": ctl_deploy_fault,
            "contact": ctl_contact, "add-cloud-access": ctl_add_cloud_access,
            "deploy-speed": ctl_deploy_speed}


def dump(emu):
    with emu.lock:
        for job in emu.jobs.values():
            advance(emu, job)
        return {"resources": [dict(r.row(emu), deployed=[{"job": j, "worker": w, "cert": c}
                                                         for j, w, c in r.deployed])
                              for r in sorted(emu.resources.values(), key=lambda r: r.id)],
                "jobs": [dict(_job_row(j), workers=[_worker_row(emu, w) for w in j.workers])
                         for j in sorted(emu.jobs.values(), key=lambda j: j.id)],
                "contacts": sorted(emu.contacts)}


def register(module):
    global E
    E = module
    module.ACTIONS.update(ACTIONS)
    module.LOGGABLE_PARAMS |= LOGGABLE
