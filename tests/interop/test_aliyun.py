"""aliyun-cas: the client, the sync and every lifecycle command against the emulator of
the service (tests/emulator), the only stand-in in the suite."""
import functools
import http.server
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, certsync, keytool, run
from tomcat import free_port

EMULATOR = ROOT / "tests" / "emulator" / "cas_emulator.py"
KEY_ID, SECRET = "LTAI5tCertsyncTest", "s3cr3t-Emulator-Key-Do-Not-Log"
STS_ID, STS_SECRET, STS_TOKEN = "STS.certsync", "sts-secret-value-123", "sts-token-abc/+="


class Emu:
    def __init__(self, d: Path, validate_port: int):
        self.dir = d
        self.metadata_port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable if sys.executable.startswith("/usr/bin") else "/usr/bin/python3",
             EMULATOR, "--state-dir", d, "--access-key", f"{KEY_ID}:{SECRET}",
             "--sts", f"{STS_ID}:{STS_SECRET}:{STS_TOKEN}",
             "--validate-host", f"127.0.0.1:{validate_port}",
             "--metadata-port", str(self.metadata_port), "--quiet"],
            stdout=subprocess.DEVNULL, stderr=open(d / "emulator.log", "w"))
        for _ in range(200):
            if (d / "port").exists() and (d / "port").read_text().strip():
                break
            assert self.proc.poll() is None, (d / "emulator.log").read_text()
            time.sleep(0.05)
        self.port = int((d / "port").read_text())
        self.ca = d / "ca.pem"
        self.ctx = ssl.create_default_context(cafile=str(self.ca))

    def ctl(self, what, **params):
        url = f"https://127.0.0.1:{self.port}/_control/{what}?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, context=self.ctx, timeout=10) as r:
            return json.loads(r.read())

    def actions(self):
        return [r.get("action") for r in self.ctl("requests")["requests"]]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)


@pytest.fixture(scope="module")
def webroot(tmp_path_factory):
    """Plain HTTP on loopback serving a webroot: where FILE validation is answered."""
    root = tmp_path_factory.mktemp("webroot")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield root, srv.server_address[1]
    srv.shutdown()


@pytest.fixture(scope="module")
def emu_module(tmp_path_factory, webroot):
    e = Emu(tmp_path_factory.mktemp("emulator"), webroot[1])
    yield e
    e.stop()


@pytest.fixture
def emu(emu_module):
    emu_module.ctl("reset")
    emu_module.ctl("clear", requests="1")
    return emu_module


@pytest.fixture
def cas(tmp_path, emu):
    """A certsync.conf whose aliyun provider is the emulator; returns a small helper."""
    cred = tmp_path / "cas.cred"
    cred.write_text(f"access_key_id = {KEY_ID}\naccess_key_secret = {SECRET}\n")
    cred.chmod(0o600)

    class Site:
        store = tmp_path / "store"
        conf = tmp_path / "certsync.conf"
        outputs = []

        def write(self, certs, provider_extra=""):
            self.conf.write_text(
                f"[store]\npath = {self.store}\n\n[provider ali]\ntype = aliyun-cas\n"
                f"endpoint = https://127.0.0.1:{emu.port}\nca-file = {emu.ca}\n"
                f"trust-file = {emu.ca}\n"
                f"credentials = {cred}\ntimeout = 2s\nretries = 1\n{provider_extra}\n{certs}")

        def cli(self, *args, check=True, env=None):
            r = run(os.environ.get("CERTSYNC", ROOT / "out" / "certsync"), "--config",
                    self.conf, *args, check=check, env=env)
            self.outputs.append(r.stdout + r.stderr)
            return r

        def status(self, name):
            return json.loads(self.cli("status", "--json", name).stdout)[0]

        def served(self, name):
            cert = self.store / "certs" / name / "current" / "cert.pem"
            out = run("openssl", "x509", "-in", cert, "-noout", "-fingerprint", "-sha256").stdout
            return out.strip().split("=", 1)[1].replace(":", "").lower()

    s = Site()
    yield s
    # secrets never reach a log, an error or status output
    everything = "\n".join(s.outputs)
    for secret in (SECRET, STS_SECRET, STS_TOKEN, "PRIVATE KEY"):
        assert secret not in everything, f"{secret!r} leaked into the output"


def sha2(emu, cert_id):
    for c in emu.ctl("state")["certificates"]:
        if str(c.get("id", c.get("CertificateId"))) == str(cert_id):
            return (c.get("sha2") or c.get("Sha2")).lower()
    raise AssertionError(f"certificate {cert_id} not in the emulator's state")


def test_sync_by_cert_id_and_an_unchanged_sync_costs_list_calls_only(cas, emu):
    cid = emu.ctl("add-cert", domain="shop.test,www.shop.test")["CertificateId"]
    assert cid > 2**53  # ids that a double would round
    cas.write(f"[cert shop]\nprovider = ali\ncert-id = {cid}\ndomain = shop.test\nformats = pfx jks\n")
    r = cas.cli("sync")
    assert f"shop: installed v1 (new: certificate {cid} of the service)" in r.stdout
    st = cas.status("shop")
    assert st["provider"] == "aliyun-cas" and st["fingerprint_sha256"] == cas.served("shop")
    assert st["fingerprint_sha256"] == sha2(emu, cid)
    meta = json.loads((cas.store / "certs/shop/current/meta.json").read_text())
    assert meta["remote_id"] == str(cid)
    emu.ctl("clear", requests="1")
    for _ in range(3):
        assert "shop: unchanged" in cas.cli("sync").stdout
    assert set(emu.actions()) == {"ListUserCertificateOrder"}


def test_a_renewal_in_the_service_reaches_a_domain_selected_cert(cas, emu):
    old = emu.ctl("add-cert", domain="app.test", days=20)["CertificateId"]
    cas.write("[cert app]\nprovider = ali\ndomain = app.test\n")
    cas.cli("sync")
    assert cas.status("app")["fingerprint_sha256"] == sha2(emu, old)
    new = emu.ctl("renew", cert_id=old)["CertificateId"]
    r = cas.cli("sync")
    assert f"app: installed v2 (new: certificate {new} of the service)" in r.stdout
    assert cas.served("app") == sha2(emu, new)


def test_wildcard_and_no_match(cas, emu):
    emu.ctl("add-cert", domain="*.wild.test")
    cas.write("[cert w]\nprovider = ali\ndomain = a.wild.test\n[cert none]\nprovider = ali\n"
              "domain = other.test\n")
    r = cas.cli("sync", check=False)
    assert "w: installed v1" in r.stdout
    assert "none: failed: [cert none] no issued, unexpired certificate" in r.stderr
    assert r.returncode == 1


def test_signature_v1_and_sts_from_the_instance_metadata(cas, emu, tmp_path):
    cid = emu.ctl("add-cert", domain="v1.test")["CertificateId"]
    cas.write(f"[cert v1]\nprovider = ali\ncert-id = {cid}\n", "signature-version = v1\n")
    assert "v1: installed v1" in cas.cli("sync").stdout
    # credentials = default, nothing in the environment or files: the ECS RAM role
    conf = cas.conf.read_text().replace(f"credentials = {tmp_path}/cas.cred",
                                        "credentials = default")
    conf = conf.replace("[provider ali]\n", "[provider ali]\nmetadata-endpoint = "
                        f"http://127.0.0.1:{emu.metadata_port}\n")
    cas.conf.write_text(conf)
    env = dict(os.environ, HOME=str(tmp_path), ALIBABA_CLOUD_ECS_METADATA_DISABLED="false")
    emu.ctl("clear", requests="1")
    r = cas.cli("sync", "--force", env=env)
    assert "v1: installed v2" in r.stdout
    reqs = emu.ctl("requests")["requests"]
    assert reqs and all(q.get("auth") in ("ok", True) for q in reqs), reqs
    assert any(q.get("sts") or q.get("security_token") for q in reqs), reqs


def test_a_wrong_secret_fails_at_once_with_the_service_words(cas, emu, tmp_path):
    cid = emu.ctl("add-cert", domain="x.test")["CertificateId"]
    bad = tmp_path / "bad.cred"
    bad.write_text(f"access_key_id = {KEY_ID}\naccess_key_secret = not-the-secret\n")
    bad.chmod(0o600)
    cas.write(f"[cert x]\nprovider = ali\ncert-id = {cid}\n")
    cas.conf.write_text(cas.conf.read_text().replace(str(tmp_path / "cas.cred"), str(bad)))
    emu.ctl("clear", requests="1")
    r = cas.cli("sync", check=False)
    assert r.returncode == 1
    assert "SignatureDoesNotMatch" in r.stderr and "RequestId" in r.stderr
    assert len(emu.actions()) == 1           # never retried


FAULTS = {
    # kind: (action, what the operator reads)
    "http500": ("ListUserCertificateOrder", "InternalError"),
    "http503": ("ListUserCertificateOrder", "ServiceUnavailable"),
    "throttling": ("ListUserCertificateOrder", "Throttling.User"),
    "delay": ("ListUserCertificateOrder", "timed out"),
    "truncated": ("ListUserCertificateOrder", "not a JSON object"),
    "badjson": ("GetUserCertificateDetail", "not a JSON object"),
    "keymismatch": ("GetUserCertificateDetail", "does not match"),
    "expired": ("GetUserCertificateDetail", "expired on"),
    "badchain": ("GetUserCertificateDetail", "does not link"),
}


@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_a_fault_changes_nothing_and_the_next_sync_recovers(cas, emu, kind):
    action, words = FAULTS[kind]
    old = emu.ctl("add-cert", domain="f.test")["CertificateId"]
    cas.write("[cert f]\nprovider = ali\ndomain = f.test\n")
    cas.cli("sync")
    before = cas.served("f")
    new = emu.ctl("renew", cert_id=old)["CertificateId"]
    emu.ctl("fault", action=action, kind=kind, count=0, seconds=5)
    r = cas.cli("sync", check=False)
    assert r.returncode == 1
    assert words in r.stderr, r.stderr
    assert cas.served("f") == before
    st = cas.status("f")
    assert st["version"] == 1 and st["last_sync"] == "failed" and words in st["last_error"]
    emu.ctl("clear")
    r = cas.cli("sync")
    assert "f: installed v2" in r.stdout
    assert cas.served("f") == sha2(emu, new)


def test_a_transient_fault_is_retried(cas, emu):
    cid = emu.ctl("add-cert", domain="t.test")["CertificateId"]
    cas.write(f"[cert t]\nprovider = ali\ncert-id = {cid}\n")
    emu.ctl("clear", requests="1")      # (clear also drops faults: set the fault after)
    emu.ctl("fault", action="ListUserCertificateOrder", kind="http503", count=1)
    assert "t: installed v1" in cas.cli("sync").stdout
    assert emu.actions().count("ListUserCertificateOrder") == 2


def test_list_show_and_fetch_layouts(cas, emu, tmp_path):
    cid = emu.ctl("add-cert", domain="l.test,www.l.test", name="shop-cert")["CertificateId"]
    cas.write("[cert l]\nprovider = ali\ndomain = l.test\n")
    table = cas.cli("list").stdout
    assert str(cid) in table and "shop-cert" in table and "issued" in table
    js = json.loads(cas.cli("list", "--json").stdout)
    assert any(str(c["CertificateId"]) == str(cid) and c["status"] == "issued"
               for c in js["certificates"])
    shown = cas.cli("show", str(cid)).stdout
    assert "l.test" in shown and sha2(emu, cid) in shown.lower()
    assert "Key" not in json.loads(cas.cli("show", str(cid), "--json").stdout)

    cas.cli("fetch", str(cid), "--layout", "nginx", "--out", tmp_path / "ng")
    assert sorted(p.name for p in (tmp_path / "ng").iterdir()) == [f"{cid}.key", f"{cid}.pem"]
    cas.cli("fetch", str(cid), "--layout", "apache", "--out", tmp_path / "ap")
    assert sorted(p.name for p in (tmp_path / "ap").iterdir()) == [
        f"{cid}.key", f"{cid}_chain.crt", f"{cid}_public.crt"]
    cas.cli("fetch", "--domain", "www.l.test", "--layout", "jks", "--out", tmp_path / "j")
    listing = run(keytool(), "-list", "-v", "-keystore", tmp_path / "j" / f"{cid}.jks",
                  "-storepass:file", tmp_path / "j" / "jks-password.txt").stdout
    assert "PrivateKeyEntry" in listing and "Certificate chain length: 2" in listing
    cas.cli("fetch", str(cid), "--layout", "tomcat", "--out", tmp_path / "tc")
    assert (tmp_path / "tc" / "pfx-password.txt").stat().st_mode & 0o777 == 0o600
    r = cas.cli("fetch", str(cid), "--into", "l")
    assert "l: installed v1" in r.stdout and cas.served("l") == sha2(emu, cid)


def uploads(emu):
    return {str(c.get("id", c.get("CertificateId"))): c.get("name", c.get("Name"))
            for c in emu.ctl("state")["certificates"]}


def test_upload_replace_and_delete(cas, emu, chain):
    cas.write("")
    r = cas.cli("upload", "mine", "--cert", chain.fullchain, "--key", chain.key)
    first = r.stdout.split("certificate ")[1].split()[0]
    r = cas.cli("upload", "mine", "--cert", chain.fullchain, "--key", chain.key, check=False)
    assert r.returncode == 1 and "already exists in the service; use --replace" in r.stderr
    r = cas.cli("upload", "mine", "--cert", chain.fullchain, "--key", chain.key, "--replace")
    assert f"deleted the old certificate {first} (name mine)" in r.stdout
    ids = list(uploads(emu))
    assert first not in ids and len(ids) == 1
    r = cas.cli("delete", ids[0], check=False)
    assert r.returncode == 2 and "confirm with --yes" in r.stderr   # no terminal: not confirmed
    r = cas.cli("delete", ids[0], "--yes")
    assert "delete: done" in r.stdout
    r = cas.cli("delete", ids[0], "--yes", check=False)
    assert r.returncode == 1 and "NotFound" in r.stderr and "check the id with" in r.stderr


def test_upload_replace_finds_old_uploads_by_name_expired_ones_too(cas, emu, chain):
    """The service's Keyword matches domains, not names (the emulator too): the old uploads are
    found by listing them all, valid and expired, and filtering names here."""
    cas.write("")
    old = cas.cli("upload", "site", "--cert", chain.fullchain,
                  "--key", chain.key).stdout.split("certificate ")[1].split()[0]
    emu.ctl("expire", cert_id=old)
    r = cas.cli("upload", "site", "--cert", chain.fullchain, "--key", chain.key, "--replace")
    assert f"deleted the old certificate {old} (name site)" in r.stdout
    # the name was taken: the new one went up as site-YYYYMMDDHHMMSS ...
    names = sorted(uploads(emu).values())
    assert len(names) == 1 and names[0].startswith("site-") and len(names[0]) == 19, names
    # ... and the one after it replaces that one under the plain name again
    r = cas.cli("upload", "site", "--cert", chain.fullchain, "--key", chain.key, "--replace")
    assert f"(name {names[0]})" in r.stdout and sorted(uploads(emu).values()) == ["site"]


def test_upload_names_of_64_characters_and_traditional_keys(cas, emu, chain):
    cas.write("")
    emu.ctl("clear", requests="1")
    cas.cli("upload", "n" * 64, "--cert", chain.fullchain, "--key", chain.key)
    r = cas.cli("upload", "n" * 65, "--cert", chain.fullchain, "--key", chain.key, check=False)
    assert r.returncode == 2 and "at most 64 characters" in r.stderr
    # the emulator refuses a PKCS#8 key, as the service's upload documentation asks
    assert [q["status"] for q in emu.ctl("requests")["requests"]] == [200]


def test_delete_refuses_an_issued_certificate_with_a_hint(cas, emu):
    issued = emu.ctl("add-cert", domain="keep.test", order="1")
    cas.write("")
    r = cas.cli("delete", str(issued["CertificateId"]), "--yes", check=False)
    assert r.returncode == 1
    assert "DeleteUserCertificate" in r.stderr and "证书状态错误" in r.stderr   # code and message
    assert "only expired or uploaded certificates can be deleted" in r.stderr  # and a hint
    assert "certsync revoke ORDER" in r.stderr


def test_apply_with_file_validation_waits_and_installs(cas, emu, webroot):
    root, _ = webroot
    cas.write("[cert site]\nprovider = ali\ndomain = site.test\n")
    r = cas.cli("apply", "--domain", "site.test", "--validate", "file", "--wait", "--poll", "1",
                "--timeout", "60", "--webroot", root)
    assert "publish this file for site.test" in r.stdout
    assert "/.well-known/pki-validation/fileauth.txt" in r.stdout
    assert "site: installed v1" in r.stdout
    assert (cas.store / "challenges/site.test/pki-validation/fileauth.txt").exists()
    assert cas.status("site")["names"] == ["site.test"]


def test_apply_dns_withdraw_delete_order_revoke_renew_quota(cas, emu):
    cas.write("")
    r = cas.cli("apply", "--domain", "dns.test", "--validate", "dns")
    assert "publish this DNS record for dns.test" in r.stdout and "TXT" in r.stdout
    order = r.stdout.split("order ")[1].split()[0]
    assert "pending verification" in cas.cli("list").stdout
    assert "withdraw: done" in cas.cli("withdraw", order).stdout
    assert "delete-order: done" in cas.cli("delete-order", order).stdout
    issued = emu.ctl("add-cert", domain="r.test", order="1")
    r = cas.cli("revoke", str(issued["OrderId"]), check=False)
    assert r.returncode == 2 and "--yes" in r.stderr       # no terminal, no confirmation
    r = cas.cli("delete-order", str(issued["OrderId"]), check=False)
    assert r.returncode == 1 and "OrderStateError: 证书订单状态错误。" in r.stderr
    assert "withdraw the order first" in r.stderr
    assert "revoke: done" in cas.cli("revoke", str(issued["OrderId"]), "--yes").stdout
    assert "revoked" in cas.cli("list").stdout
    assert "digicert-free-1-free:" in cas.cli("quota").stdout


def test_apply_dns_publishes_its_record_through_alidns_and_removes_it(cas, emu):
    """apply --validate dns --dns alidns: the record goes into Alibaba Cloud DNS (the emulator's
    Alidns actions, which the emulated service's DNS validation looks at), no manual step;
    with --wait it is removed once the certificate is issued and installed."""
    emu.ctl("alidns-domain", name="pub.test")
    cas.write("[cert pub]\nprovider = ali\ndomain = pub.test\n",
              provider_extra=f"alidns-endpoint = https://127.0.0.1:{emu.port}\n")
    r = cas.cli("apply", "--domain", "pub.test", "--validate", "dns", "--dns", "alidns",
                "--wait", "--poll", "1")
    m = re.search(r"published in Alibaba Cloud DNS: _dnsauth\.pub\.test TXT (\S+)", r.stdout)
    assert m, r.stdout + r.stderr
    assert f"removed from Alibaba Cloud DNS: _dnsauth.pub.test TXT {m.group(1)}" in r.stdout
    assert "pub: installed v1 (certificate " in r.stdout
    assert emu.ctl("alidns-records")["records"] == []
    acts = emu.actions()
    assert acts.count("AddDomainRecord") == 1 and acts.count("DeleteDomainRecord") == 1
    r = cas.cli("apply", "--domain", "pub.test", "--validate", "file", "--dns", "alidns",
                check=False)
    assert r.returncode == 2 and "--dns alidns publishes a DNS validation" in r.stderr


def test_renew_only_an_expiring_order_and_the_new_order_waits_for_an_application(cas, emu):
    cas.write("[cert s]\nprovider = ali\ndomain = s.test\n")
    fresh = emu.ctl("add-cert", domain="n.test", order="1")            # 90 days left
    r = cas.cli("renew", str(fresh["OrderId"]), check=False)
    assert r.returncode == 1 and "OrderStateError" in r.stderr
    assert "only an order that expires soon" in r.stderr
    soon = emu.ctl("add-cert", domain="s.test", order="1", days=20)
    r = cas.cli("renew", str(soon["OrderId"]))
    assert "renew: done" in r.stdout and "paid and waiting for an application" in r.stdout
    new = r.stdout.split("the new order is ")[1].split(",")[0]
    # a paid order is not waited on until --timeout: apply says what to do, at once
    t0 = time.monotonic()
    r = cas.cli("apply", "--domain", "s.test", "--order", new, "--wait", "--poll", "1",
                check=False)
    assert r.returncode == 1 and time.monotonic() - t0 < 10
    assert f"order {new} is paid and waits for an application" in r.stderr
    emu.ctl("submit-order", order_id=new)                    # what the console does
    r = cas.cli("apply", "--domain", "s.test", "--order", new)
    assert "publish this DNS record for s.test" in r.stdout
    emu.ctl("validate-dns", order_id=new)
    r = cas.cli("apply", "--domain", "s.test", "--order", new, "--wait", "--poll", "1")
    # no CertId in DescribeCertificateState (the SDK's model): the id is found in the list
    cid = r.stdout.split(f"order {new} is issued: certificate ")[1].split()[0]
    assert cid.isdigit() and "s: installed v1 (certificate " + cid in r.stdout
    meta = json.loads((cas.store / "certs/s/current/meta.json").read_text())
    assert meta["remote_id"] == cid and cas.served("s") == sha2(emu, cid)
    assert "s: unchanged" in cas.cli("sync").stdout         # not installed once more


def test_list_shows_expired_certificates_domains_once_and_ids_as_strings(cas, emu):
    a = emu.ctl("add-cert", domain="l.test,www.l.test", name="shop")["CertificateId"]
    old = emu.ctl("add-cert", domain="old.test", name="gone")["CertificateId"]
    emu.ctl("expire", cert_id=old)
    o = emu.ctl("add-cert", domain="o.test", order="1")
    cas.write("")
    lines = cas.cli("list").stdout.splitlines()
    row = next(l for l in lines if l.startswith(str(a)))
    assert row.split()[-1] == "l.test,www.l.test"          # each name once
    assert "expired" in next(l for l in lines if l.startswith(str(old)))
    orow = next(l for l in lines if l.startswith(str(o["OrderId"])))
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", orow), orow
    js = json.loads(cas.cli("list", "--json").stdout)
    assert {c["CertificateId"] for c in js["certificates"]} >= {str(a), str(old)}
    assert all(isinstance(c["CertificateId"], str) for c in js["certificates"])
    assert all(isinstance(x["OrderId"], str) and "CertificateId" not in x for x in js["orders"])
    assert all(c["Sha2"] == c["Sha2"].lower() for c in js["certificates"])
    shown = cas.cli("show", str(a)).stdout
    assert re.search(r"valid +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \.\. \d{4}-", shown), shown
    assert f"sha256       {sha2(emu, a)}" in shown          # lower-case, as status prints it
    d = json.loads(cas.cli("show", str(a), "--json").stdout)
    assert d["Id"] == str(a) and d["Sha2"] == sha2(emu, a) and d["NotAfter"].endswith("Z")
    soon = emu.ctl("add-cert", domain="soon.test", order="1", days=20)
    r = json.loads(cas.cli("renew", str(soon["OrderId"]), "--json").stdout)
    assert isinstance(r["OrderId"], str) and r["OrderId"].isdigit()
    assert isinstance(json.loads(cas.cli("fetch", str(a), "--into", "x", "--json").stdout)[
        "certificate"], str)


def test_aliyun_sign_prints_the_reference_vectors(tmp_path):
    sec = tmp_path / "secret"
    sec.write_text("testsecret\n")
    sec.chmod(0o600)
    r = certsync("aliyun", "sign", "--signature-version", "v1", "--method", "GET", "--host",
                 "cas.aliyuncs.com", "--action", "GetUserCertificateDetail", "--api-version",
                 "2020-04-07", "--date", "2016-02-23T12:46:24Z", "--nonce",
                 "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf", "--access-key-id", "testid",
                 "--secret-file", sec, "--param", "CertId=12345")
    assert r.stdout.splitlines()[-1] == "3R9P7wUVVT6AasdBkRH0SEU5HY8="
    assert "testsecret" not in r.stdout
    sec.write_text("YourAccessKeySecret\n")
    r = certsync("aliyun", "sign", "--signature-version", "v3", "--method", "POST", "--host",
                 "cas.aliyuncs.com", "--action", "ListUserCertificateOrder", "--api-version",
                 "2020-04-07", "--date", "2023-10-26T10:22:32Z", "--nonce",
                 "3156853299f313e23d1673dc12e1703d", "--access-key-id", "YourAccessKeyId",
                 "--secret-file", sec, "--param", "CurrentPage=1", "--param", "OrderType=CERT",
                 "--param", "ShowSize=50")
    assert r.stdout.splitlines()[-1] == \
        "d6ed77ee32f5fc631f3220115c818c40fba0efea6c75523e8071ed96ad89ad4e"


def test_apply_with_contact_details_uses_create_certificate_request(cas, emu, webroot):
    root, _ = webroot
    cas.write("")
    emu.ctl("clear", requests="1")
    r = cas.cli("apply", "--domain", "dv.test", "--validate", "file", "--username", "Ops",
                "--phone", "13800000000", "--email", "ops@example.com", "--webroot", root,
                "--wait", "--into", "dv", "--poll", "1", "--json")
    lines = [json.loads(l) for l in r.stdout.splitlines()]
    assert lines[0]["status"] == "pending verification" and lines[0]["ValidateType"] == "FILE"
    assert lines[-1]["status"] == "issued" and "PrivateKey" not in lines[-1]
    assert "dv: installed v1" in r.stderr
    assert "CreateCertificateRequest" in emu.actions()


def test_json_outputs_of_fetch_and_upload(cas, emu, chain, tmp_path):
    cid = emu.ctl("add-cert", domain="j.test")["CertificateId"]
    cas.write("")
    out = json.loads(cas.cli("fetch", str(cid), "--into", "j", "--json").stdout)
    assert out == {"certificate": str(cid), "name": "j", "version": 1}
    out = json.loads(cas.cli("upload", "up", "--cert", chain.fullchain, "--key", chain.key,
                             "--json").stdout)
    assert out["name"] == "up" and int(out["certificate"]) > 0


def test_a_skewed_clock_and_an_unknown_key_are_refused_clearly(cas, emu, tmp_path):
    cid = emu.ctl("add-cert", domain="c.test")["CertificateId"]
    cas.write(f"[cert c]\nprovider = ali\ncert-id = {cid}\n")
    emu.ctl("clock", offset=3600)             # the service's clock is an hour ahead
    r = cas.cli("sync", check=False)
    assert r.returncode == 1 and "InvalidTimeStamp.Expired" in r.stderr
    emu.ctl("clock", offset=0)
    other = tmp_path / "other.cred"
    other.write_text("access_key_id = LTAIunknown\naccess_key_secret = whatever\n")
    other.chmod(0o600)
    cas.conf.write_text(cas.conf.read_text().replace(str(tmp_path / "cas.cred"), str(other)))
    r = cas.cli("sync", check=False)
    assert r.returncode == 1 and "InvalidAccessKeyId.NotFound" in r.stderr


def test_many_unchanged_certificates_cost_the_list_pages_only(cas, emu):
    ids = [emu.ctl("add-cert", domain=f"p{i}.test", key="ec")["CertificateId"] for i in range(60)]
    cas.write("".join(f"[cert c{i}]\nprovider = ali\ncert-id = {cid}\n" for i, cid in
                      enumerate(ids)))
    r = cas.cli("sync")
    assert r.stdout.count(": installed v1") == 60
    emu.ctl("clear", requests="1")
    assert cas.cli("sync").stdout.count(": unchanged") == 60
    assert emu.actions() == ["ListUserCertificateOrder"] * 2     # 60 entries = 2 pages of 50


def test_fetch_by_domain_follows_the_same_name_rules_as_the_sync(cas, emu, tmp_path):
    old = emu.ctl("add-cert", domain="*.wc.test", days=20)["CertificateId"]
    new = emu.ctl("renew", cert_id=old)["CertificateId"]
    cas.write("")
    out = json.loads(cas.cli("fetch", "--domain", "shop.wc.test", "--layout", "nginx", "--out",
                             tmp_path / "wc", "--json").stdout)
    assert out["certificate"] == str(new)          # the newest, through the wildcard
    r = cas.cli("fetch", "--domain", "a.b.wc.test", "--layout", "nginx", "--out",
                tmp_path / "no", check=False)
    assert r.returncode == 1 and "no issued, unexpired certificate for a.b.wc.test" in r.stderr


# ---- security audit (issue 9): the CLI facing what the service sends ----------------------


def test_apply_for_a_mixed_case_domain_puts_the_challenge_where_servers_look(cas, emu):
    """Servers lower-case the Host before they look for the validation file."""
    cas.write("")
    r = cas.cli("apply", "--domain", "Mixed.Example.test", "--validate", "file")
    assert "publish this file for Mixed.Example.test" in r.stdout
    challenges = cas.store / "challenges"
    assert [p.name for p in challenges.iterdir()] == ["mixed.example.test"]
    token = (challenges / "mixed.example.test/pki-validation/fileauth.txt").read_text().strip()
    assert token and token in r.stdout


def files_under(d):
    return sorted(str(p.relative_to(d)) for p in Path(d).rglob("*") if p.is_file())


def test_fetch_names_no_file_after_a_certificate_id_that_is_not_a_number(cas, emu, tmp_path):
    """A hostile service answers the id "../../../PWN": the layout stays inside --out."""
    cid = emu.ctl("add-cert", domain="pwn.test")["CertificateId"]
    emu.ctl("forge-id", cert_id=cid, **{"as": "../../../PWN"})
    cas.write("")
    top = tmp_path / "t"
    out = top / "a" / "b" / "out"
    expect = {"nginx": ["cert.key", "cert.pem"],
              "apache": ["cert.key", "cert_chain.crt", "cert_public.crt"],
              "tomcat": ["cert.pfx", "pfx-password.txt"],
              "jks": ["cert.jks", "jks-password.txt"]}
    for layout, files in expect.items():
        r = cas.cli("fetch", "--domain", "pwn.test", "--layout", layout, "--out", out / layout)
        assert "certificate ../../../PWN" in r.stdout and "(files cert.*)" in r.stdout
        assert files_under(out / layout) == files
    assert files_under(top) == sorted(f"a/b/out/{l}/{f}" for l, fs in expect.items() for f in fs)
    assert not list(tmp_path.rglob("*PWN*"))


def test_fetch_and_upload_json_stays_json_whatever_the_service_says(cas, emu, chain, tmp_path):
    cid = emu.ctl("add-cert", domain="inj.test")["CertificateId"]
    evil = '1", "layout": "x"}, {"o": "{\\'  # ids are kept to 31 bytes
    emu.ctl("forge-id", cert_id=cid, **{"as": evil})
    cas.write("")
    r = cas.cli("fetch", "--domain", "inj.test", "--layout", "nginx", "--out", tmp_path / "o",
                "--json")
    out = json.loads(r.stdout)
    assert out == {"certificate": evil, "layout": "nginx", "out": str(tmp_path / "o"),
                   "files": "cert"}
    r = cas.cli("fetch", "--domain", "inj.test", "--into", "inj", "--json")
    assert json.loads(r.stdout) == {"certificate": evil, "name": "inj", "version": 1}
    name = 'up"}{"x'
    out = json.loads(cas.cli("upload", name, "--cert", chain.fullchain, "--key", chain.key,
                             "--json").stdout)
    assert out["name"] == name and int(out["certificate"]) > 0


FORGED = "\n[installed] shop v9\x1b[2J\x1b]0;owned\x07"


def assert_inert(text):
    """What a terminal would obey or a reader would take for a line of ours."""
    assert "\x1b" not in text and "\x07" not in text, repr(text)
    assert not any(l.startswith("[installed]") for l in text.splitlines()), repr(text)


def test_control_characters_from_the_service_reach_no_terminal_and_no_state(cas, emu):
    cid = emu.ctl("add-cert", domain="ctl.test", name="n" + FORGED)["CertificateId"]
    evil = emu.ctl("add-cert", domain="ok.test,evil" + FORGED.lower().replace("]0;", "]0x")
                   + ".test")["CertificateId"]
    cas.write(f"[cert shop]\nprovider = ali\ncert-id = {evil}\ndomain = other.test\n")
    for args in (["list"], ["show", str(cid)], ["show", str(evil)]):
        r = cas.cli(*args)
        assert_inert(r.stdout + r.stderr)
    assert "n\\x0a[installed] shop v9\\x1b[2J" in cas.cli("list").stdout

    # the sync's error quotes the names of the certificate the service sent
    r = cas.cli("sync", check=False)
    assert r.returncode == 1 and "does not cover the name 'other.test'" in r.stderr
    assert_inert(r.stdout + r.stderr)
    assert "evil\\x0a[installed] shop v9\\x1b[2j" in r.stderr
    state = json.loads((cas.store / "certs" / "shop" / "state.json").read_text())
    assert_inert(json.dumps(state, ensure_ascii=False).replace("\\n", "\n"))
    assert_inert(str(state))
    assert "\n" not in cas.status("shop")["last_error"]
    assert_inert(cas.cli("status").stdout)


def self_signed(d: Path, name: str):
    d.mkdir(parents=True, exist_ok=True)
    run("openssl", "req", "-x509", "-nodes", "-newkey", "ec", "-pkeyopt",
        "ec_paramgen_curve:P-256", "-keyout", d / "self.key", "-out", d / "self.pem",
        "-subj", f"/CN={name}", "-days", "365", "-addext", f"subjectAltName=DNS:{name}")
    return d / "self.pem", d / "self.key"


@pytest.mark.parametrize("kind", ["self-signed", "another CA"])
def test_a_service_certificate_that_no_trusted_root_issued_is_refused(cas, emu, chain, tmp_path,
                                                                      kind):
    good = emu.ctl("add-cert", domain="shop.example.com", days=20)["CertificateId"]
    cas.write("[cert shop]\nprovider = ali\ndomain = shop.example.com\n")
    cas.cli("sync")
    assert cas.served("shop") == sha2(emu, good)
    # someone uploads a certificate for the name that lasts longer: `domain =` picks it
    cert, key = self_signed(tmp_path / "ss", "shop.example.com") if kind == "self-signed" \
        else (chain.fullchain, chain.key)
    r = cas.cli("upload", "foreign", "--cert", cert, "--key", key)
    bad = r.stdout.split("certificate ")[1].split()[0]
    r = cas.cli("sync", check=False)
    assert r.returncode == 1
    assert f"certificate {bad} from GetUserCertificateDetail" in r.stderr, r.stderr
    assert "the chain is not trusted" in r.stderr and f"trust-file {emu.ca}" in r.stderr
    if kind == "self-signed":
        assert "self-signed certificate" in r.stderr
    assert cas.served("shop") == sha2(emu, good)
    st = cas.status("shop")
    assert st["version"] == 1 and "not trusted" in st["last_error"]
    # fetch --into installs nothing untrusted either
    r = cas.cli("fetch", bad, "--into", "shop", check=False)
    assert r.returncode == 1 and "not trusted" in r.stderr
    assert cas.served("shop") == sha2(emu, good)
    # without trust-file, the system's roots: the emulator's CA is not among them
    cas.conf.write_text(cas.conf.read_text().replace(f"trust-file = {emu.ca}\n", ""))
    r = cas.cli("sync", "--force", check=False)
    assert r.returncode == 1 and "against the system's trusted roots" in r.stderr


def test_a_list_that_never_ends_stops_the_sync_with_a_clear_error(cas, emu):
    cid = emu.ctl("add-cert", domain="e.test")["CertificateId"]
    cas.write(f"[cert e]\nprovider = ali\ncert-id = {cid}\n")
    emu.ctl("clear", requests="1")
    emu.ctl("fault", action="ListUserCertificateOrder", kind="endless", count=0)
    t0 = time.monotonic()
    r = cas.cli("sync", check=False)
    took = time.monotonic() - t0
    assert r.returncode == 1
    assert "e: failed: ListUserCertificateOrder at https://127.0.0.1:" in r.stderr, r.stderr
    assert "the list holds more than 10000 entries" in r.stderr
    assert "(10050 entries" in r.stderr and "TotalCount 1000000000000" in r.stderr
    calls = emu.actions().count("ListUserCertificateOrder")
    assert calls == 201, calls                 # 10,000 entries in pages of 50, and one more
    assert took < 120
    assert "the list holds more than" in cas.status("e")["last_error"]


def test_a_short_page_ends_the_list_whatever_total_count_says(cas, emu):
    cid = emu.ctl("add-cert", domain="h.test")["CertificateId"]
    cas.write(f"[cert h]\nprovider = ali\ncert-id = {cid}\n")
    emu.ctl("clear", requests="1")
    emu.ctl("fault", action="ListUserCertificateOrder", kind="hugetotal", count=0)
    assert "h: installed v1" in cas.cli("sync").stdout
    assert emu.actions() == ["ListUserCertificateOrder", "GetUserCertificateDetail"]


def test_an_integer_past_64_bits_in_an_answer_is_harmless(cas, emu):
    cid = emu.ctl("add-cert", domain="b.test")["CertificateId"]
    cas.write(f"[cert b]\nprovider = ali\ncert-id = {cid}\n")
    for action in ("ListUserCertificateOrder", "GetUserCertificateDetail"):
        emu.ctl("fault", action=action, kind="bigint", count=0)
    r = cas.cli("sync")
    assert f"b: installed v1 (new: certificate {cid} of the service)" in r.stdout
    assert json.loads((cas.store / "certs/b/current/meta.json").read_text())["remote_id"] \
        == str(cid)
    assert any(q.get("fault") == "bigint" for q in emu.ctl("requests")["requests"])


def test_an_answer_over_8_mib_is_named_with_its_action_and_request_id(cas, emu):
    cid = emu.ctl("add-cert", domain="o.test")["CertificateId"]
    cas.write(f"[cert o]\nprovider = ali\ncert-id = {cid}\n")
    emu.ctl("clear", requests="1")
    emu.ctl("fault", action="GetUserCertificateDetail", kind="oversize", count=0)
    r = cas.cli("sync", check=False)
    assert r.returncode == 1
    rid = [q for q in emu.ctl("requests")["requests"]
           if q["action"] == "GetUserCertificateDetail"][0]["request_id"]
    assert f"GetUserCertificateDetail at https://127.0.0.1:{emu.port}: the answer is over 8 MiB " \
           f"(HTTP 200, RequestId {rid})" in r.stderr, r.stderr
    assert "Failure writing output" not in r.stderr
    assert emu.actions().count("GetUserCertificateDetail") == 1     # not retried


@pytest.mark.parametrize("version", ["v3", "v1"])
def test_an_upload_sends_the_private_key_in_a_signed_body_never_in_the_url(cas, emu, chain,
                                                                           version):
    cas.write("", f"signature-version = {version}\n")
    emu.ctl("clear", requests="1")
    r = cas.cli("upload", "body", "--cert", chain.fullchain, "--key", chain.key)
    assert "uploaded" in r.stdout or "certificate" in r.stdout
    cas.cli("list")
    reqs = emu.ctl("requests")["requests"]
    up = [q for q in reqs if q["action"] == "UploadUserCertificate"]
    assert len(up) == 1 and up[0]["auth"] == "ok" and up[0]["status"] == 200, up
    assert up[0]["query_names"] == [], up[0]            # nothing in the URL
    assert up[0]["params"]["Key"].endswith(" chars>")   # the key arrived, in the body
    assert up[0]["content_type"] == "application/x-www-form-urlencoded"
    if version == "v3":
        # a call without a body carries no (unsigned) Content-Type at all
        lists = [q for q in reqs if q["action"] == "ListUserCertificateOrder"]
        assert lists and all(q["content_type"] is None for q in lists), lists
        assert "OrderType" in lists[0]["query_names"]


class ProxyTrap:
    """A listening socket posing as an HTTP proxy: records the first line of what reaches it."""

    def __init__(self):
        import socket
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.seen = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(5)
            try:
                self.seen.append(conn.recv(4096).split(b"\r\n")[0].decode("latin-1"))
            except OSError:
                self.seen.append("(connected)")
            conn.close()

    def env(self, **more):
        e = dict(os.environ, **more)
        for v in ("http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
            e[v] = self.url
        for v in ("no_proxy", "NO_PROXY"):
            e.pop(v, None)
        return e


def test_proxy_variables_reach_only_the_service_and_never_loopback_or_metadata(cas, emu,
                                                                                 tmp_path):
    trap = ProxyTrap()
    cid = emu.ctl("add-cert", domain="px.test")["CertificateId"]
    cas.write(f"[cert px]\nprovider = ali\ncert-id = {cid}\n")
    # the STS credentials come from the metadata service (plain HTTP: a proxy would see them)
    conf = cas.conf.read_text().replace(f"credentials = {tmp_path}/cas.cred",
                                        "credentials = default")
    cas.conf.write_text(conf.replace("[provider ali]\n", "[provider ali]\nmetadata-endpoint = "
                                     f"http://127.0.0.1:{emu.metadata_port}\n"))
    env = trap.env(HOME=str(tmp_path), ALIBABA_CLOUD_ECS_METADATA_DISABLED="false")
    r = cas.cli("sync", env=env)
    assert "px: installed v1" in r.stdout
    assert any(q.get("sts") for q in emu.ctl("requests")["requests"])
    assert trap.seen == [], trap.seen
    # a service endpoint that is not loopback goes through the environment's proxy
    cas.conf.write_text(cas.conf.read_text().replace(f"https://127.0.0.1:{emu.port}",
                                                     "https://cas.proxy-check.test"))
    r = cas.cli("sync", "--force", env=env, check=False)
    assert r.returncode == 1
    assert trap.seen and trap.seen[0] == "CONNECT cas.proxy-check.test:443 HTTP/1.1", trap.seen


def test_certsync_tomcat_sends_manager_credentials_past_any_proxy(conf, tmp_path):
    path, store = conf
    certsync("--config", path, "sync", "shop")
    trap = ProxyTrap()
    hits = []

    class Manager(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append((self.path, self.headers.get("Authorization", "")))
            body = b"OK - Reloaded TLS configuration for all TLS virtual hosts\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Manager)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    creds = tmp_path / "manager.cred"
    creds.write_text("deployer:manager-pass-not-for-proxies\n")
    creds.chmod(0o600)
    try:
        r = run(os.environ.get("CERTSYNC_TOMCAT", ROOT / "out" / "certsync-tomcat"), "--config",
                path, "--cert", "shop", "--keystore", tmp_path / "shop.jks", "--type", "jks",
                "--reload-url", f"http://127.0.0.1:{srv.server_address[1]}/manager/text/sslReload",
                "--manager-credentials", creds, env=trap.env(), check=False)
    finally:
        srv.shutdown()
    assert r.returncode == 0, r.stdout + r.stderr
    assert hits and hits[0][0].startswith("/manager/text/sslReload")
    assert hits[0][1].startswith("Basic ")
    assert trap.seen == [], trap.seen
