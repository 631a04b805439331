"""The official SDK of the certificates service (npm @alicloud/cas20200407, pinned in
tests/sdk/package-lock.json, `make sdk-deps`) as the reference client: the closest thing to
the real service we can run. The emulator must accept what the SDK sends and answer what the
SDK's models can hold; certsync must send only what the SDK's models know, signed as the SDK
signs. A test here fails when the emulator, certsync and the SDK disagree."""
import datetime
import json
import os
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import ROOT
from test_aliyun import (KEY_ID, SECRET, STS_ID, STS_SECRET, STS_TOKEN, cas, emu,  # noqa: F401
                         emu_module, webroot)

SDK = ROOT / "tests" / "sdk"
CERTSYNC = os.environ.get("CERTSYNC", ROOT / "out" / "certsync")
HARNESS = SDK / "conformance.js"

# the deployment jobs (common/lib/cs_deploy.c, common/cli/cli_deploy.c)
DEPLOY_ACTIONS = ["ListCloudResources", "ListContact", "CreateDeploymentJob",
                  "UpdateDeploymentJobStatus", "DescribeDeploymentJob",
                  "DescribeDeploymentJobStatus", "ListDeploymentJob", "ListDeploymentJobResource",
                  "ListWorkerResource", "UpdateWorkerResourceStatus", "DeleteDeploymentJob",
                  "ListCloudAccess"]
# every action certsync sends (common/lib, common/cli)
ACTIONS = ["ListUserCertificateOrder", "GetUserCertificateDetail", "UploadUserCertificate",
           "DeleteUserCertificate", "CreateCertificateForPackageRequest",
           "CreateCertificateRequest", "CreateCertificateWithCsrRequest",
           "DescribeCertificateState", "CancelOrderRequest", "CancelCertificateForPackageRequest",
           "DeleteCertificateRequest", "RenewCertificateOrderForPackageRequest",
           "DescribePackageState"] + DEPLOY_ACTIONS
# the common parameters of the RPC signature v1 (not in the actions' request models)
V1_COMMON = {"Action", "Version", "Format", "AccessKeyId", "SignatureMethod", "SignatureVersion",
             "SignatureNonce", "Timestamp", "SecurityToken", "Signature"}


def sdk(job):
    assert (SDK / "node_modules" / "@alicloud" / "cas20200407").is_dir(), \
        "the SDK is not installed: run `make sdk-deps` (npm ci in tests/sdk)"
    r = subprocess.run(["node", HARNESS], input=json.dumps(job), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_the_pinned_sdk_is_the_one_installed():
    lock = json.loads((SDK / "package-lock.json").read_text())
    pinned = lock["packages"]["node_modules/@alicloud/cas20200407"]["version"]
    installed = json.loads((SDK / "node_modules/@alicloud/cas20200407/package.json").read_text())
    assert pinned == installed["version"] == "3.0.0"


def leaf_and_key(d: Path, ca_dir: Path):
    """A certificate the emulator's CA did not issue (uploads need none), with an EC key in
    the traditional PEM form the service's upload documentation shows."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sdk.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=60))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("sdk.test")]), False)
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    kpem = key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption()).decode()
    return pem, kpem


def csr_for(domain):
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)]))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), False)
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture
def small_ids(emu):
    # the SDK reads ids as JavaScript numbers (doubles): ids past 2**53 cannot reach it intact
    emu.ctl("id-base", cert=100001, order=500001)
    return emu


@pytest.mark.parametrize("signature", ["v3", "v1"])
@pytest.mark.parametrize("key", ["access key", "STS token"])
def test_every_action_through_the_sdk_is_accepted_and_fits_its_model(small_ids, tmp_path,
                                                                      signature, key):
    emu = small_ids
    issued = emu.ctl("add-cert", domain="issued.test", order="1")
    expiring = emu.ctl("add-cert", domain="soon.test", order="1", days=20)
    to_revoke = emu.ctl("add-cert", domain="revoke.test", order="1")
    cert, kpem = leaf_and_key(tmp_path, emu.dir)
    dep = emu.ctl("add-cert", domain="dep.test")
    resource = emu.ctl("add-resource", product="CDN", domain="dep.test")["Id"]
    contact = emu.ctl("state")["deployment"]["contacts"][0]
    emu.ctl("add-cloud-access", cloud="Tencent")
    emu.ctl("deploy-speed", step="0")     # a started job has ended at the next look
    calls = [
        ("ListUserCertificateOrder", {"OrderType": "CERT", "CurrentPage": 1, "ShowSize": 50}),
        ("ListUserCertificateOrder", {"OrderType": "UPLOAD", "Status": "EXPIRED"}),
        ("ListUserCertificateOrder", {"OrderType": "CPACK", "Keyword": "issued.test"}),
        ("GetUserCertificateDetail", {"CertId": issued["CertificateId"]}),
        ("GetUserCertificateDetail", {"CertId": issued["CertificateId"], "CertFilter": True}),
        ("UploadUserCertificate", {"Name": "n" * 64, "Cert": cert, "Key": kpem}),   # 7
        ("DeleteUserCertificate", {"CertId": "$5.CertId"}),
        ("CreateCertificateForPackageRequest", {"Domain": "pkg.test", "ValidateType": "DNS"}),
        ("DescribeCertificateState", {"OrderId": "$7.OrderId"}),
        ("CancelOrderRequest", {"OrderId": "$7.OrderId"}),
        ("DeleteCertificateRequest", {"OrderId": "$7.OrderId"}),
        ("CreateCertificateRequest", {"Domain": "dv.test", "Username": "Ops",
                                      "Phone": "13800000000", "Email": "ops@example.com",
                                      "ValidateType": "DNS"}),
        ("CancelCertificateForPackageRequest", {"OrderId": "$11.OrderId"}),
        ("CreateCertificateWithCsrRequest", {"Csr": csr_for("csr.test"), "Username": "Ops",
                                             "Phone": "13800000000", "Email": "ops@example.com",
                                             "ValidateType": "DNS"}),
        ("DescribeCertificateState", {"OrderId": issued["OrderId"]}),
        ("RenewCertificateOrderForPackageRequest", {"OrderId": expiring["OrderId"]}),
        ("DescribeCertificateState", {"OrderId": "$15.OrderId"}),
        ("CancelCertificateForPackageRequest", {"OrderId": to_revoke["OrderId"]}),
        ("DescribePackageState", {"ProductCode": "digicert-free-1-free"}),
        # 19: the deployment jobs, from a resource to a rolled back worker
        ("ListCloudResources", {"CloudProduct": "CDN", "Keyword": "dep.test", "CurrentPage": 1,
                                "ShowSize": 20}),
        ("ListContact", {"CurrentPage": 1, "ShowSize": 20}),
        ("CreateDeploymentJob", {"Name": "sdk", "JobType": "user", "CertIds": dep["CertificateId"],
                                 "ResourceIds": resource, "ContactIds": contact}),
        ("UpdateDeploymentJobStatus", {"JobId": "$21.JobId", "Status": "pending"}),
        ("DescribeDeploymentJob", {"JobId": "$21.JobId"}),
        ("DescribeDeploymentJobStatus", {"JobId": "$21.JobId"}),
        ("ListDeploymentJob", {"JobType": "user", "CurrentPage": 1, "ShowSize": 50}),
        ("ListDeploymentJobResource", {"JobId": "$21.JobId"}),
        ("ListWorkerResource", {"JobId": "$21.JobId", "CurrentPage": 1, "ShowSize": 50}),
        ("UpdateWorkerResourceStatus", {"JobId": "$21.JobId", "WorkerId": 22487001,
                                        "Status": "rollback"}),
        ("ListCloudAccess", {"CloudName": "Tencent", "CurrentPage": 1, "ShowSize": 20}),
        ("DeleteDeploymentJob", {"JobId": "$21.JobId"}),
    ]
    cred = {"id": KEY_ID, "secret": SECRET} if key == "access key" else \
        {"id": STS_ID, "secret": STS_SECRET, "token": STS_TOKEN}
    emu.ctl("clear", requests="1")
    out = sdk({"mode": "call", "port": emu.port, "ca": str(emu.ca), "key": cred,
               "signature": signature,
               "calls": [{"action": a, "params": p} for a, p in calls]})
    assert {c["action"] for c in out} == set(ACTIONS)
    for (action, params), r in zip(calls, out):
        assert r["ok"], f"{action} {params}: the emulator refused the SDK: {r['code']} {r['message']}"
        assert r["unknown_params"] == [], f"{action}: not in the SDK's request model"
        assert r["violations"] == [], f"{action}: answer does not fit the SDK's model: {r['violations']}"
    reqs = emu.ctl("requests")["requests"]
    assert len(reqs) == len(calls) and all(q["sig"] == signature for q in reqs)
    assert all(q["sts"] == (key == "STS token") for q in reqs)
    # what the strict emulator answers, as the SDK documents it
    assert out[14]["body"]["Type"] == "certificate" and "CertId" not in out[14]["body"]
    assert out[16]["body"]["Type"] == "payed"          # a renewal waits for an application
    assert all("CertificateId" not in o for o in out[2]["body"]["CertificateOrderList"])
    # the deployment: created in editing, started, ended with the resource on the certificate
    assert out[19]["body"]["Data"][0]["Id"] == resource
    assert out[23]["body"]["Status"] == "success" and out[24]["body"]["SuccessCount"] == 1
    assert out[26]["body"]["Data"][0]["CertId"] == dep["CertificateId"]
    assert out[27]["body"]["Data"][0]["Status"] == "success"
    assert out[29]["body"]["CloudAccessList"][0]["CloudName"] == "Tencent"


def test_the_emulator_refuses_what_the_documentation_refuses_through_the_sdk(small_ids, tmp_path):
    emu = small_ids
    fresh = emu.ctl("add-cert", domain="fresh.test", order="1")          # 90 days left
    cert, kpem = leaf_and_key(tmp_path, emu.dir)
    pkcs8 = serialization.load_pem_private_key(kpem.encode(), None).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    out = sdk({"mode": "call", "port": emu.port, "ca": str(emu.ca),
               "key": {"id": KEY_ID, "secret": SECRET}, "signature": "v3",
               "calls": [
                   {"action": "RenewCertificateOrderForPackageRequest",
                    "params": {"OrderId": fresh["OrderId"]}},
                   {"action": "DeleteUserCertificate", "params": {"CertId": fresh["CertificateId"]}},
                   {"action": "UploadUserCertificate",
                    "params": {"Name": "n" * 65, "Cert": cert, "Key": kpem}},
                   {"action": "UploadUserCertificate",
                    "params": {"Name": "pkcs8", "Cert": cert, "Key": pkcs8}},
                   {"action": "ListUserCertificateOrder",
                    "params": {"OrderType": "CERT", "Keyword": "cert-"}},   # a name, not a domain
               ]})
    assert [r["code"] for r in out[:4]] == ["OrderStateError", "CertificateStatusError",
                                            "InvalidParameter", "InvalidSource.Content.Malformed"]
    assert out[4]["ok"] and out[4]["body"]["CertificateOrderList"] == []


def test_sdk_models_are_read_from_the_sdk():
    models = sdk({"mode": "models", "actions": ACTIONS})
    # a few facts the issue relies on, read from the SDK rather than written by hand
    assert "CertId" not in models["DescribeCertificateState"]["response"]
    assert "Keyword" in models["ListUserCertificateOrder"]["request"]
    assert models["DeleteUserCertificate"]["request"] == ["CertId"]


def certsync_session(cas, emu, chain, tmp_path):
    """Every lifecycle command certsync has, against the emulator."""
    issued = emu.ctl("add-cert", domain="rq.test", order="1")
    expiring = emu.ctl("add-cert", domain="soon.test", order="1", days=20)
    revoke = emu.ctl("add-cert", domain="rv.test", order="1")
    cas.write(f"[cert rq]\nprovider = ali\ncert-id = {issued['CertificateId']}\n"
              "[cert soon]\nprovider = ali\ndomain = soon.test\n", cas.extra)
    cas.cli("sync")
    cas.cli("list")
    cas.cli("show", str(issued["CertificateId"]))
    cas.cli("fetch", str(issued["CertificateId"]), "--layout", "nginx", "--out", tmp_path / "n")
    cas.cli("upload", "up", "--cert", chain.fullchain, "--key", chain.key)
    cas.cli("upload", "up", "--cert", chain.fullchain, "--key", chain.key, "--replace")
    r = cas.cli("apply", "--domain", "ap.test", "--validate", "dns")
    order = r.stdout.split("order ")[1].split()[0]
    cas.cli("withdraw", order)
    cas.cli("delete-order", order)
    cas.cli("renew", str(expiring["OrderId"]))
    cas.cli("revoke", str(revoke["OrderId"]), "--yes")
    cas.cli("quota")
    deployment_session(cas, emu)


def deployment_session(cas, emu):
    """Every deployment command, against the emulator."""
    dep = str(emu.ctl("add-cert", domain="dep.test")["CertificateId"])
    emu.ctl("add-resource", product="CDN", domain="dep.test")
    emu.ctl("add-cloud-access", cloud="Tencent")
    emu.ctl("deploy-speed", step="0.1")
    cas.cli("resources")
    cas.cli("resources", "--cloud", "Tencent")
    job = json.loads(cas.cli("deploy", dep, "--to", "cdn:dep.test", "--wait", "--json").stdout)["job"]
    cas.cli("deployments")
    cas.cli("deployment", job)
    cas.cli("deployment", "rollback", job)
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    r = cas.cli("deploy", dep, "--to", "cdn:dep.test", "--schedule",
                later.strftime("%Y-%m-%dT%H:%M:%SZ"), "--json")
    job = json.loads(r.stdout)["job"]
    cas.cli("deployment", "cancel", job)
    cas.cli("deployment", "delete", job)


@pytest.mark.parametrize("signature", ["v3", "v1"])
def test_every_request_certsync_sends_uses_the_sdks_names_and_signs_what_it_signs(
        cas, emu, chain, tmp_path, signature):
    cas.extra = f"signature-version = {signature}\n"
    emu.ctl("clear", requests="1")
    certsync_session(cas, emu, chain, tmp_path)
    reqs = emu.ctl("requests")["requests"]
    assert all(q["auth"] == "ok" and q["sig"] == signature for q in reqs), \
        [(q["action"], q["auth"]) for q in reqs if q["auth"] != "ok"]
    models = sdk({"mode": "models", "actions": sorted({q["action"] for q in reqs})})
    assert set(models) >= {"ListUserCertificateOrder", "GetUserCertificateDetail",
                           "UploadUserCertificate", "DeleteUserCertificate",
                           "CreateCertificateForPackageRequest", "DescribeCertificateState",
                           "CancelOrderRequest", "DeleteCertificateRequest",
                           "RenewCertificateOrderForPackageRequest",
                           "CancelCertificateForPackageRequest", "DescribePackageState"}
    assert set(models) >= set(DEPLOY_ACTIONS), set(DEPLOY_ACTIONS) - set(models)
    for q in reqs:
        known = set(models[q["action"]]["request"]) | (V1_COMMON if signature == "v1" else set())
        assert set(q["param_names"]) <= known, \
            f"{q['action']} sends {sorted(set(q['param_names']) - known)}, not in the SDK's model"
        if signature == "v3":
            would = sdk({"mode": "signed",
                         "headers": {h: "x" for h in q["header_names"]}})["signed"]
            assert set(would) <= set(q["signed_headers"]), \
                f"{q['action']}: the SDK would sign {sorted(set(would) - set(q['signed_headers']))}"
            if q["content_type"] is not None:
                assert "content-type" in q["signed_headers"]


def test_region_endpoints_are_the_sdks():
    others = ["ap-southeast-1", "ap-southeast-2", "ap-northeast-1", "eu-central-1", "ap-south-1",
              "me-east-1", "us-east-2", "cn-hongkong", "ap-southeast-3", "ap-southeast-5"]
    ref = sdk({"mode": "endpoints", "regions": others})
    regions = sorted(set(ref["map"]) | set(others))
    ref = sdk({"mode": "endpoints", "regions": regions})["endpoints"]
    r = subprocess.run([str(CERTSYNC), "aliyun", "endpoint", *regions], capture_output=True,
                       text=True, check=True)
    ours = dict(line.split() for line in r.stdout.splitlines())
    assert ours == {reg: "https://" + host for reg, host in ref.items()}
    # the ones the issue names: the SDK sends them to the central endpoint
    assert ours["cn-hongkong"] == ours["ap-southeast-3"] == "https://cas.aliyuncs.com"
    assert ours["ap-southeast-1"] == "https://cas.ap-southeast-1.aliyuncs.com"


def signed_v3_post(emu, content_type, sign_it):
    """A v3 ListUserCertificateOrder with an empty body, Content-Type sent and signed or not."""
    import hashlib
    import http.client
    import ssl
    import sys
    import time
    import uuid
    sys.path.insert(0, str(ROOT / "tests" / "emulator"))
    import cas_emulator as ce
    empty = hashlib.sha256(b"").hexdigest()
    h = {"host": f"127.0.0.1:{emu.port}", "x-acs-action": "ListUserCertificateOrder",
         "x-acs-version": "2020-04-07", "x-acs-signature-nonce": uuid.uuid4().hex,
         "x-acs-date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
         "x-acs-content-sha256": empty}
    if content_type:
        h["content-type"] = content_type
    names = sorted(n for n in h if n != "content-type" or sign_it)
    q = [("OrderType", "CERT")]
    sig = ce.v3_signature(SECRET, ce.v3_string_to_sign(
        ce.v3_canonical_request("POST", "/", q, h, names, empty)))
    h["authorization"] = (f"ACS3-HMAC-SHA256 Credential={KEY_ID},"
                          f"SignedHeaders={';'.join(names)},Signature={sig}")
    conn = http.client.HTTPSConnection("127.0.0.1", emu.port,
                                       context=ssl.create_default_context(cafile=str(emu.ca)))
    conn.request("POST", "/?OrderType=CERT", body=b"", headers=h)
    r = conn.getresponse()
    return r.status, json.loads(r.read())


def test_the_emulator_refuses_an_unsigned_content_type_as_the_signing_rules_say(emu):
    status, body = signed_v3_post(emu, "application/x-www-form-urlencoded", sign_it=False)
    assert status == 400 and body["Code"] == "IncompleteSignature"
    assert "content-type" in body["Message"]
    assert signed_v3_post(emu, "application/x-www-form-urlencoded", sign_it=True)[0] == 200
    assert signed_v3_post(emu, None, sign_it=False)[0] == 200


def test_list_rows_carry_only_the_fields_the_sdk_documents_for_their_order_type(small_ids,
                                                                                 tmp_path):
    """The SDK's model documents each row field as "returned only if OrderType is set to
    CERT or UPLOAD" or "... CPACK or BUY" (read from its client.d.ts)."""
    emu = small_ids
    emu.ctl("add-cert", domain="rows.test", order="1")
    emu.ctl("add-cert", domain="up.test", upload="1")
    only = sdk({"mode": "conditions",
                "model": "ListUserCertificateOrderResponseBodyCertificateOrderList"})
    assert only["CertificateId"] == ["CERT", "UPLOAD"] and only["OrderId"] == ["CPACK", "BUY"]
    kinds = ["CERT", "UPLOAD", "CPACK"]
    out = sdk({"mode": "call", "port": emu.port, "ca": str(emu.ca),
               "key": {"id": KEY_ID, "secret": SECRET}, "signature": "v3",
               "calls": [{"action": "ListUserCertificateOrder", "params": {"OrderType": k}}
                         for k in kinds]})
    for kind, r in zip(kinds, out):
        rows = r["body"]["CertificateOrderList"]
        assert r["ok"] and rows, (kind, r)
        for row in rows:
            wrong = sorted(f for f in row if f in only and kind not in only[f])
            assert wrong == [], f"OrderType {kind}: the SDK documents {wrong} for {only[wrong[0]]}"


def test_the_emulator_refuses_deployments_as_the_documentation_says_through_the_sdk(small_ids):
    """A job is created in editing and runs only once started; what is running or done cannot
    be started again or taken back; only a worker that succeeded is rolled back."""
    emu = small_ids
    dep = emu.ctl("add-cert", domain="dep.test")["CertificateId"]
    resource = emu.ctl("add-resource", product="CDN", domain="dep.test")["Id"]
    contact = emu.ctl("state")["deployment"]["contacts"][0]
    emu.ctl("deploy-speed", step="0")
    create = {"Name": "sdk", "JobType": "user", "CertIds": dep, "ResourceIds": resource,
              "ContactIds": contact}
    out = sdk({"mode": "call", "port": emu.port, "ca": str(emu.ca),
               "key": {"id": KEY_ID, "secret": SECRET}, "signature": "v3",
               "calls": [
                   {"action": "CreateDeploymentJob",
                    "params": {k: v for k, v in create.items() if k != "ContactIds"}},
                   {"action": "CreateDeploymentJob", "params": dict(create, ResourceIds=1)},
                   {"action": "CreateDeploymentJob", "params": dict(create, JobType="cloud")},
                   {"action": "CreateDeploymentJob", "params": create},                # 3
                   {"action": "DescribeDeploymentJob", "params": {"JobId": "$3.JobId"}},
                   {"action": "UpdateWorkerResourceStatus",
                    "params": {"JobId": "$3.JobId", "WorkerId": 22487001, "Status": "rollback"}},
                   {"action": "UpdateDeploymentJobStatus",
                    "params": {"JobId": "$3.JobId", "Status": "pending"}},
                   {"action": "DescribeDeploymentJob", "params": {"JobId": "$3.JobId"}},  # 7
                   {"action": "UpdateDeploymentJobStatus",
                    "params": {"JobId": "$3.JobId", "Status": "pending"}},
                   {"action": "UpdateDeploymentJobStatus",
                    "params": {"JobId": "$3.JobId", "Status": "editing"}},
                   {"action": "ListWorkerResource", "params": {"JobId": 1}},
               ]})
    assert [r["code"] for r in out] == [
        "MissingContactIds", "NotFound", "InvalidParameter", None, None, "JobStatusError", None,
        None, "JobStatusError", "JobStatusError", "NotFound"]
    assert out[4]["body"]["Status"] == "editing"          # created: it waits to be started
    assert out[7]["body"]["Status"] == "success"
    assert all(r["violations"] == [] for r in out)
