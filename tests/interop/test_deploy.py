"""Deploying a certificate of the service to cloud products (CDN, load balancers, ...) through
its deployment jobs: certsync resources, deploy, deployments, deployment, against the
emulator (tests/emulator/cas_deploy.py)."""
import json
import re
import time

import pytest

import nginx

from test_aliyun import cas, emu, emu_module, webroot  # noqa: F401


def resources(cas, *args):
    return {r["resource"]: r for r in json.loads(cas.cli("resources", "--json", *args).stdout)}


def workers(emu, job):
    for j in emu.ctl("state")["deployment"]["jobs"]:
        if str(j["Id"]) == str(job):
            return j["workers"]
    raise AssertionError(f"no job {job} in the emulator")


@pytest.fixture
def cdn(cas, emu):
    """A certificate for www and img.example.com, two CDN domains serving an older one and
    an ALB listener."""
    old = emu.ctl("add-cert", domain="www.example.com,img.example.com", name="old")
    new = emu.ctl("add-cert", domain="www.example.com,img.example.com", name="new")
    www = emu.ctl("add-resource", product="CDN", domain="www.example.com",
                  cert_id=old["CertificateId"])["Id"]
    img = emu.ctl("add-resource", product="CDN", domain="img.example.com",
                  cert_id=old["CertificateId"])["Id"]
    alb = emu.ctl("add-resource", product="ALB", instance="alb-3k2xqy", listener="lsn-8vnz@443",
                  port="443")["Id"]
    emu.ctl("deploy-speed", step="0.2")
    cas.write("")
    return {"old": old["CertificateId"], "new": new["CertificateId"], "www": www, "img": img,
            "alb": alb}


def test_resources_lists_what_can_take_a_certificate_and_what_each_serves(cas, emu, cdn):
    r = resources(cas)
    assert set(r) == {"cdn:www.example.com", "cdn:img.example.com", "alb:alb-3k2xqy:443"}
    www = r["cdn:www.example.com"]
    # ids as strings, the service's millisecond times as UTC ISO-8601
    assert www["Id"] == str(cdn["www"]) and www["CertId"] == str(cdn["old"])
    assert www["CertName"] == "old" and www["CertEndTime"].endswith("Z")
    assert "CertId" not in r["alb:alb-3k2xqy:443"]   # it serves none yet
    assert set(resources(cas, "--product", "alb")) == {"alb:alb-3k2xqy:443"}
    assert set(resources(cas, "--keyword", "img")) == {"cdn:img.example.com"}
    text = cas.cli("resources").stdout
    assert "cdn:www.example.com" in text and "old" in text
    bad = cas.cli("resources", "--product", "ftp", check=False)
    assert bad.returncode == 2 and "unknown product 'ftp'; known products: cdn, dcdn" in bad.stderr


def test_deploy_wait_reaches_both_cdn_domains_and_resources_shows_it(cas, emu, cdn):
    r = cas.cli("deploy", str(cdn["new"]), "--to", "cdn:www.example.com", "cdn:img.example.com",
                "--wait")
    results = [line.split()[-1] for line in r.stdout.splitlines() if line.startswith("  ")]
    assert results == ["success", "success"], r.stdout
    assert r.stdout.strip().endswith(f": success: every resource got certificate {cdn['new']}")
    r = resources(cas)
    assert r["cdn:www.example.com"]["CertId"] == r["cdn:img.example.com"]["CertId"] == str(cdn["new"])
    # the job names one contact, the account's first, and both resources by id
    create = [q for q in emu.ctl("requests")["requests"] if q["action"] == "CreateDeploymentJob"]
    assert len(create) == 1 and create[0]["params"]["JobType"] == "user"
    assert create[0]["params"]["ResourceIds"] == f"{cdn['www']},{cdn['img']}"
    assert create[0]["params"]["ContactIds"] == str(emu.ctl("state")["deployment"]["contacts"][0])


def test_a_failing_resource_fails_wait_with_its_workers_status(cas, emu, cdn):
    emu.ctl("deploy-fault", resource_id=cdn["img"])
    r = cas.cli("deploy", str(cdn["new"]), "--to", f"cdn:www.example.com,{cdn['img']}", "--wait",
                check=False)
    assert r.returncode == 1, r.stdout + r.stderr
    lines = {line.split()[0]: line.split()[-1] for line in r.stdout.splitlines()
             if line.startswith("  ")}
    assert lines == {"cdn:www.example.com": "success", "cdn:img.example.com": "error"}
    assert ": error: 1 of 2 resource(s) failed; `certsync deployment" in r.stdout
    # a certificate that does not cover the domain fails there, as the service documents
    other = emu.ctl("add-cert", domain="other.test")["CertificateId"]
    r = cas.cli("deploy", str(other), "--to", "cdn:www.example.com", "--wait", "--json",
                check=False)
    out = json.loads(r.stdout)
    assert r.returncode == 1 and out["status"] == "error"
    assert [w["Status"] for w in out["workers"]] == ["error"]
    assert out["resources"][0]["resource"] == "cdn:www.example.com"


def test_deploy_without_wait_starts_the_job_and_deployment_follows_it(cas, emu, cdn):
    r = cas.cli("deploy", str(cdn["new"]), "--to", "alb:lsn-8vnz", "--json")
    out = json.loads(r.stdout)
    job = out["job"]
    assert isinstance(job, str) and out["status"] == "pending" and out["workers"] is None
    time.sleep(1)
    shown = json.loads(cas.cli("deployment", job, "--json").stdout)
    assert shown["job"]["Status"] == "success" and shown["job"]["Id"] == job
    assert shown["counts"]["SuccessCount"] == 1
    assert shown["workers"][0]["ResourceId"] == str(cdn["alb"])
    assert shown["resources"][0]["CertId"] == str(cdn["new"])
    assert job in cas.cli("deployments").stdout
    listed = json.loads(cas.cli("deployments", "--json").stdout)
    assert [j["Id"] for j in listed] == [job] and listed[0]["GmtCreate"].endswith("Z")
    text = cas.cli("deployment", job).stdout
    assert "alb:alb-3k2xqy:443" in text and "success" in text


def test_rollback_puts_back_what_each_resource_served(cas, emu, cdn):
    r = cas.cli("deploy", str(cdn["new"]), "--to", "cdn:www.example.com", "cdn:img.example.com",
                "--wait", "--json")
    job = json.loads(r.stdout)["job"]
    r = cas.cli("deployment", "rollback", job, "--resource", "cdn:img.example.com")
    assert "rollback_success" in r.stdout and "cdn:img.example.com" in r.stdout
    now = resources(cas)
    assert now["cdn:img.example.com"]["CertId"] == str(cdn["old"])
    assert now["cdn:www.example.com"]["CertId"] == str(cdn["new"])
    again = cas.cli("deployment", "rollback", job, "--resource", "cdn:img.example.com", check=False)
    assert again.returncode == 1 and "nothing to roll back" in again.stderr


def test_cancel_a_scheduled_job_then_delete_it(cas, emu, cdn):
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    r = cas.cli("deploy", str(cdn["new"]), "--to", "cdn:www.example.com", "--schedule", later,
                "--json")
    job = json.loads(r.stdout)["job"]
    create = [q for q in emu.ctl("requests")["requests"] if q["action"] == "CreateDeploymentJob"]
    assert int(create[-1]["params"]["ScheduleTime"]) // 1000 == int(
        time.mktime(time.strptime(later, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone)
    assert json.loads(cas.cli("deployment", job, "--json").stdout)["job"]["Status"] == "scheduling"
    # a scheduled job cannot be deleted before it is taken back
    r = cas.cli("deployment", "delete", job, check=False)
    assert r.returncode == 1 and "JobStatusError" in r.stderr
    assert "cancelled" in cas.cli("deployment", "cancel", job).stdout
    assert [w["Status"] for w in workers(emu, job)] == ["editing"]
    assert "deleted" in cas.cli("deployment", "delete", job).stdout
    assert json.loads(cas.cli("deployments", "--json").stdout) == []
    assert resources(cas)["cdn:www.example.com"]["CertId"] == str(cdn["old"])


def test_resource_arguments_that_name_nothing_or_too_much_say_so(cas, emu, cdn):
    emu.ctl("add-resource", product="ALB", instance="alb-3k2xqy", listener="lsn-9abc@80",
            port="80")
    r = cas.cli("deploy", str(cdn["new"]), "--to", "alb:alb-3k2xqy", check=False)
    assert r.returncode == 1 and "names 2 resources" in r.stderr
    assert "alb:alb-3k2xqy:443" in r.stderr and "alb:alb-3k2xqy:80" in r.stderr
    r = cas.cli("deploy", str(cdn["new"]), "--to", "cdn:shop.example.com", check=False)
    assert r.returncode == 1 and "lists no CDN resource shop.example.com" in r.stderr
    r = cas.cli("deploy", str(cdn["new"]), "--to", "ftp:x", check=False)
    assert r.returncode == 1 and "unknown product 'ftp'" in r.stderr
    assert cas.cli("deploy", str(cdn["new"]), check=False).returncode == 2   # --to is required
    assert not [q for q in emu.ctl("requests")["requests"] if q["action"] == "CreateDeploymentJob"]


def test_an_account_without_contacts_is_told_what_to_do(cas, emu, cdn):
    emu.ctl("contact", clear="1")
    r = cas.cli("deploy", str(cdn["new"]), "--to", "cdn:www.example.com", check=False)
    assert r.returncode == 1 and "the account has no contact" in r.stderr
    cid = emu.ctl("contact", name="ops")["ContactId"]
    cas.write("", provider_extra=f"deploy-contact = {cid}\n")
    cas.cli("deploy", str(cdn["new"]), "--to", "cdn:www.example.com")
    create = [q for q in emu.ctl("requests")["requests"] if q["action"] == "CreateDeploymentJob"]
    assert create[-1]["params"]["ContactIds"] == str(cid)
    assert "ListContact" not in [q["action"] for q in emu.ctl("requests")["requests"]][-3:]


def test_other_clouds_resources_come_through_their_cloud_access(cas, emu, cdn):
    access = emu.ctl("add-cloud-access", cloud="Tencent", secret_id="AKIDtencent1")["AccessId"]
    emu.ctl("add-resource", product="TencentCDN", cloud="Tencent", domain="www.example.com",
            access=access)
    r = resources(cas, "--cloud", "Tencent")
    assert set(r) == {"tencentcdn:www.example.com"}
    r = cas.cli("deploy", str(cdn["new"]), "--to", "tencentcdn:www.example.com", "--wait")
    create = [q for q in emu.ctl("requests")["requests"] if q["action"] == "CreateDeploymentJob"]
    assert create[-1]["params"]["JobType"] == "cloud"
    r = cas.cli("deploy", str(cdn["new"]), "--to", "tencentcdn:www.example.com",
                "cdn:www.example.com", check=False)
    assert r.returncode == 1 and "a job of its own" in r.stderr


# ---- deploy = in certsync.conf: every sync that brings a new certificate deploys it ----

def shop_conf(cas, extra=""):
    cas.write("[cert shop]\nprovider = ali\ndomain = www.example.com img.example.com\n"
              "deploy = cdn:www.example.com cdn:img.example.com\n" + extra)


def deployed_jobs(emu):
    return [q for q in emu.ctl("requests")["requests"] if q["action"] == "CreateDeploymentJob"]


@pytest.mark.skipif(not nginx.available(), reason="needs nginx and the nginx module")
def test_a_renewal_found_by_domain_reaches_nginx_and_both_cdn_domains(cas, emu, cdn, tmp_path):
    shop_conf(cas)
    first = cas.cli("sync")
    assert f"shop: deployed: cdn:www.example.com, cdn:img.example.com got certificate {cdn['new']}" \
        in first.stdout
    http = (f"certsync_config {cas.conf};\nserver {{ listen 127.0.0.1:{{port_tls}} ssl; "
            "server_name www.example.com; certsync_certificate shop; }\n")
    with nginx.Nginx(tmp_path / "ngx", http, ports=("tls",)) as ngx:
        # the service renews: a new id for the same names, found by domain
        renewed = emu.ctl("renew", cert_id=cdn["new"])["CertificateId"]
        emu.ctl("clear", requests="1")
        r = cas.cli("sync")
        assert "shop: installed v2" in r.stdout
        assert f"got certificate {renewed} (v2; deployment job" in r.stdout
        t0 = time.time()
        while nginx.served_sha256(ngx.port("tls"), "www.example.com") != cas.served("shop"):
            assert time.time() - t0 < 5, ngx.log()
            time.sleep(0.1)
    now = resources(cas)
    assert now["cdn:www.example.com"]["CertId"] == now["cdn:img.example.com"]["CertId"] == str(renewed)
    assert len(deployed_jobs(emu)) == 1
    st = cas.status("shop")
    assert st["deploy_pending"] is None
    assert {d["resource"]: (d["certificate"], d["status"]) for d in st["deployments"]} == {
        "cdn:www.example.com": (str(renewed), "success"),
        "cdn:img.example.com": (str(renewed), "success")}
    # nothing is deployed twice for the same certificate and resource: an unchanged sync asks
    # the service only for its list
    emu.ctl("clear", requests="1")
    cas.cli("sync")
    assert emu.actions() == ["ListUserCertificateOrder"]


def test_a_failing_resource_is_pending_with_the_services_word_and_retried(cas, emu, cdn):
    emu.ctl("deploy-fault", resource_id=cdn["img"])
    shop_conf(cas)
    r = cas.cli("sync", check=False)
    assert r.returncode == 1
    assert "shop: deployed: cdn:www.example.com got certificate" in r.stdout
    assert "failed for cdn:img.example.com: the service's worker" in r.stderr
    assert "ended in error (deployment job" in r.stderr and "next sync deploys it again" in r.stderr
    st = cas.status("shop")
    pending = st["deploy_pending"]
    assert pending["resources"] == ["cdn:img.example.com"] and pending["attempts"] == 1
    assert pending["certificate"] == str(cdn["new"]) and pending["version"] == 1
    rows = {d["resource"]: d for d in st["deployments"]}
    assert rows["cdn:img.example.com"]["status"] == "error"
    assert rows["cdn:www.example.com"]["status"] == "success"
    check = cas.cli("status", "--check", check=False)
    assert check.returncode == 2 and "CRITICAL shop: deploying certificate" in check.stdout
    assert 'certsync_deploy_pending{name="shop"} 1' in cas.cli("metrics").stdout
    # the next sync deploys again, to the resource that failed only
    emu.ctl("clear", requests="1")
    r = cas.cli("sync")
    assert "shop: deployed: cdn:img.example.com got certificate" in r.stdout
    job = deployed_jobs(emu)
    assert len(job) == 1 and job[0]["params"]["ResourceIds"] == str(cdn["img"])
    assert cas.status("shop")["deploy_pending"] is None
    assert cas.cli("status", "--check").returncode == 0
    assert 'certsync_deploy_pending{name="shop"} 0' in cas.cli("metrics").stdout
    assert {r["CertId"] for r in resources(cas).values() if r["resource"].startswith("cdn:")} == \
        {str(cdn["new"])}


def test_a_resource_already_serving_the_certificate_gets_no_job(cas, emu, cdn):
    emu.ctl("deploy-fault", resource_id=cdn["www"])     # would fail if it were deployed to
    cas.cli("deploy", str(cdn["new"]), "--to", "cdn:img.example.com", "cdn:www.example.com",
            "--wait", check=False)
    emu.ctl("deploy-fault", resource_id=cdn["www"], count="0")
    emu.ctl("clear", requests="1")
    cas.write("[cert shop]\nprovider = ali\ndomain = www.example.com\n"
              "deploy = cdn:img.example.com\n")
    r = cas.cli("sync")
    assert "deployed" not in r.stdout and deployed_jobs(emu) == []
    assert cas.status("shop")["deployments"][0]["status"] == "success"


def test_deploy_keys_are_checked_when_the_config_is_read(cas, emu, cdn):
    cas.write("[cert shop]\nprovider = ali\ndomain = www.example.com\ndeploy = ftp:x\n")
    r = cas.cli("status", check=False)
    assert r.returncode != 0 and "certsync.conf:" in r.stderr
    assert "[cert shop] deploy: 'ftp:x': unknown product 'ftp'" in r.stderr
    cas.write("[cert shop]\ndomain = www.example.com\ndeploy = cdn:www.example.com\n")
    r = cas.cli("status", check=False)
    assert r.returncode != 0 and "only a certificate of the service" in r.stderr


def test_wait_exits_1_when_the_job_outlives_timeout_and_says_how_to_follow_it(cas, emu, cdn):
    emu.ctl("deploy-speed", step="30")
    r = cas.cli("deploy", str(cdn["new"]), "--to", "cdn:www.example.com", "--wait", "--timeout",
                "1", check=False)
    assert r.returncode == 1
    job = re.search(r"deployment job (\d+)", r.stdout).group(1)
    assert f"deployment job {job} is still pending after 1 s" in r.stderr
    assert f"`certsync deployment {job}` shows how it ends" in r.stderr
    r = cas.cli("deploy", str(cdn["new"]), "--to", "cdn:www.example.com", "--timeout", "soon",
                check=False)
    assert r.returncode == 2 and "--timeout takes whole seconds" in r.stderr


def test_deploy_name_takes_the_stores_current_certificate(cas, emu, cdn):
    cas.write(f"[cert shop]\nprovider = ali\ncert-id = {cdn['new']}\n"
              "[cert local]\ndomain = local.test\n")
    cas.cli("sync")
    r = cas.cli("deploy", "--name", "shop", "--to", "cdn:img.example.com", "--wait")
    assert f"certificate {cdn['new']} to 1 resource(s)" in r.stdout
    assert resources(cas)["cdn:img.example.com"]["CertId"] == str(cdn["new"])
    r = cas.cli("deploy", "--name", "local", "--to", "cdn:img.example.com", check=False)
    assert r.returncode == 1
    assert "v1 came from local-ca, not from the service" in r.stderr
    assert "certsync upload local" in r.stderr


def test_upload_to_puts_a_local_ca_certificate_into_the_service_once_then_deploys_it(cas, emu,
                                                                                    cdn):
    cas.write("[cert site]\ndomain = www.example.com\nupload-to = ali\n"
              "deploy = cdn:www.example.com\n")
    r = cas.cli("sync")
    m = re.search(r"site: deployed: uploaded v1 to \[provider ali\] as certificate (\d+) "
                  r"\(name site-[0-9a-f]{12}\); cdn:www.example.com got certificate (\d+) ", r.stdout)
    assert m and m.group(1) == m.group(2), r.stdout
    assert resources(cas)["cdn:www.example.com"]["CertId"] == m.group(1)
    assert [q["action"] for q in emu.ctl("requests")["requests"]].count("UploadUserCertificate") == 1
    # nothing twice: an unchanged sync of the local CA asks the service nothing
    emu.ctl("clear", requests="1")
    assert "deployed" not in cas.cli("sync").stdout and emu.actions() == []
    # a new version is uploaded and deployed in its turn
    r = cas.cli("sync", "--force")
    assert "uploaded v2" in r.stdout and "cdn:www.example.com got certificate" in r.stdout
    assert resources(cas)["cdn:www.example.com"]["CertId"] != m.group(1)
    assert cas.status("site")["deploy_pending"] is None
    # without upload-to, a local CA's certificate cannot be deployed
    cas.write("[cert site]\ndomain = www.example.com\ndeploy = cdn:www.example.com\n")
    r = cas.cli("status", check=False)
    assert r.returncode != 0 and "set upload-to = PROVIDER" in r.stderr


def test_completion_offers_the_deployment_commands_and_the_products_the_help_names():
    from conftest import certsync
    from test_install import complete
    offered = complete("certsync ")
    assert {"resources", "deploy", "deployments", "deployment"} <= set(offered)
    assert complete("certsync deployment ") == ["cancel", "delete", "rollback"]
    products = complete("certsync resources --product ")
    helptext = " ".join(certsync("resources", "--help").stdout.split())
    assert "Products: " + ", ".join(products[:2]) in helptext
    for p in products:
        assert re.search(rf"\b{p}\b", helptext), p


def test_dry_run_says_what_the_deployment_step_would_do_and_does_nothing(cas, emu, cdn):
    shop_conf(cas)
    r = cas.cli("sync", "--dry-run")
    assert ("deploy: the new version would then be deployed to: cdn:www.example.com "
            "cdn:img.example.com") in r.stdout
    emu.ctl("deploy-fault", resource_id=cdn["img"])
    cas.cli("sync", check=False)
    state = (cas.store / "certs" / "shop" / "state.json").read_bytes()
    emu.ctl("clear", requests="1")
    r = cas.cli("sync", "--dry-run")
    assert (f"deploy: cdn:img.example.com: certificate {cdn['new']} would be deployed there again "
            "(pending)") in r.stdout
    assert emu.actions() == ["ListUserCertificateOrder"]
    assert (cas.store / "certs" / "shop" / "state.json").read_bytes() == state


def test_a_job_still_running_when_the_sync_stops_following_is_followed_not_made_again(cas, emu,
                                                                                     cdn):
    emu.ctl("deploy-speed", step="30")
    shop_conf(cas, "deploy-wait = 1s\n")
    r = cas.cli("sync", check=False)
    assert r.returncode == 1 and "is still pending after 1 s" in r.stderr
    pending = cas.status("shop")["deploy_pending"]
    assert pending["job"] and sorted(pending["resources"]) == ["cdn:img.example.com",
                                                               "cdn:www.example.com"]
    emu.ctl("deploy-speed", step="0.1")
    r = cas.cli("sync")
    assert f"deployment job {pending['job']})" in r.stdout
    assert len(deployed_jobs(emu)) == 1          # the second sync followed the first job
    assert cas.status("shop")["deploy_pending"] is None
