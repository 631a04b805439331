"""OCSP stapling that follows every swap: a real responder (`openssl ocsp`) answers for
certificates whose AIA points at it, the local CA answers for its own; `certsync sync` and
`certsync ocsp` keep the staple beside each version, and nginx and Apache hand it to
`openssl s_client -status` from memory, before and after swaps, with the same processes."""
import datetime
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import certsync, run
from nginx import Nginx, available as nginx_available, free_port


class OcspCA:
    """A root and an intermediate (openssl tool); leaves whose AIA names the responder, which
    is `openssl ocsp` on 127.0.0.1 over an index file the test edits (revocation)."""

    def __init__(self, d: Path):
        self.d = d
        d.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.index = d / "index.txt"
        self.index.write_text("")
        # every swap issues for the same subject
        (d / "index.txt.attr").write_text("unique_subject = no\n")
        self.root, self.root_key = d / "root.pem", d / "root.key"
        self.inter, self.inter_key = d / "inter.pem", d / "inter.key"
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
        run("openssl", "req", "-x509", "-nodes", *ec, "-keyout", self.root_key, "-out", self.root,
            "-subj", "/CN=ocsp test root", "-days", "3650",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        run("openssl", "req", "-new", "-nodes", *ec, "-keyout", self.inter_key, "-out",
            d / "inter.csr", "-subj", "/CN=ocsp test issuing CA")
        ext = d / "inter.ext"
        ext.write_text("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
                       "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
        run("openssl", "x509", "-req", "-in", d / "inter.csr", "-CA", self.root, "-CAkey",
            self.root_key, "-CAcreateserial", "-out", self.inter, "-days", "1800", "-extfile", ext)
        self.proc = None
        self.n = 0

    def touch(self):
        """openssl ocsp looks at the index only between two connections: a running responder
        is restarted so that the next answer is from the index as it is now."""
        if self.proc and self.proc.poll() is None:
            self.stop()
            self.start()

    def issue(self, names=("shop.test",), must_staple=False, key="ec"):
        """(cert, key, serial hex) of a new leaf whose AIA names the responder."""
        self.n += 1
        cert, keyf, csr = (self.d / f"leaf{self.n}.{x}" for x in ("pem", "key", "csr"))
        newkey = ["-newkey", "rsa:2048"] if key == "rsa" else \
            ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
        run("openssl", "req", "-new", "-nodes", *newkey, "-keyout", keyf, "-out", csr,
            "-subj", f"/CN={names[0]}")
        ext = self.d / f"leaf{self.n}.ext"
        ext.write_text("basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n"
                       "subjectAltName=" + ",".join(f"DNS:{n}" for n in names) + "\n"
                       f"authorityInfoAccess=OCSP;URI:http://127.0.0.1:{self.port}/\n" +
                       ("tlsfeature=status_request\n" if must_staple else ""))
        run("openssl", "x509", "-req", "-in", csr, "-CA", self.inter, "-CAkey", self.inter_key,
            "-CAcreateserial", "-out", cert, "-days", "90", "-extfile", ext)
        serial = run("openssl", "x509", "-in", cert, "-noout", "-serial").stdout.split("=")[1].strip()
        end = run("openssl", "x509", "-in", cert, "-noout", "-enddate").stdout.split("=")[1].strip()
        exp = datetime.datetime.strptime(end, "%b %d %H:%M:%S %Y %Z").strftime("%y%m%d%H%M%SZ")
        with self.index.open("a") as f:
            f.write(f"V\t{exp}\t\t{serial}\tunknown\t/CN={names[0]}\n")
        self.touch()
        return cert, keyf, serial

    def revoke(self, serial):
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%y%m%d%H%M%SZ")
        lines = []
        for ln in self.index.read_text().splitlines():
            f = ln.split("\t")
            if f[3] == serial:
                f[0], f[2] = "R", now
            lines.append("\t".join(f))
        self.index.write_text("\n".join(lines) + "\n")
        self.touch()

    def start(self):
        # no probe connection: the responder serves one connection at a time, and an empty
        # one would hold it up
        log = self.d / "responder.log"
        with open(log, "w") as out:
            self.proc = subprocess.Popen(
                ["openssl", "ocsp", "-index", self.index, "-port", str(self.port), "-rsigner",
                 self.inter, "-rkey", self.inter_key, "-CA", self.inter, "-ndays", "1"],
                stdout=out, stderr=subprocess.STDOUT)
        for _ in range(200):
            if "waiting for OCSP client connections" in log.read_text():
                return self
            time.sleep(0.05)
        raise AssertionError("openssl ocsp did not come up: " + log.read_text())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)


@pytest.fixture
def ca(tmp_path):
    c = OcspCA(tmp_path / "pki").start()
    yield c
    c.stop()


def write_conf(tmp_path, certs=None):
    certs = certs or {"shop": "domain = shop.test\n"}
    conf = tmp_path / "certsync.conf"
    conf.write_text(f"[store]\npath = {tmp_path}/store\n\n" +
                    "".join(f"[cert {n}]\n{body}\n" for n, body in certs.items()))
    return conf


def status_of(conf, name="shop"):
    return json.loads(certsync("--config", conf, "status", "--json", name).stdout)[0]


def import_leaf(conf, ca, cert, key, name="shop"):
    certsync("--config", conf, "import", name, "--cert", cert, "--key", key, "--chain", ca.inter)


def stapled(port, sni="shop.test", *args):
    """(serial of the certificate served, the staple's "Cert Status" and serial, or None)."""
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername",
                        sni, "-status", *args], input="", capture_output=True, text=True,
                       timeout=20)
    out = r.stdout
    # the staple may carry its signer's certificate: the served one follows "Server certificate"
    srv = out[out.find("Server certificate"):]
    pem = srv[srv.find("-----BEGIN CERTIFICATE-----"):srv.find("-----END CERTIFICATE-----") + 25]
    assert "BEGIN CERTIFICATE" in pem, out + r.stderr
    served = run("openssl", "x509", "-noout", "-serial", input=pem).stdout.split("=")[1].strip()
    if "OCSP response: no response sent" in out or "OCSP Response Status: successful" not in out:
        return served, None
    st = re.search(r"Cert Status: (\w+)", out).group(1)
    ser = re.search(r"Serial Number: ([0-9A-F]+)", out).group(1)
    return served, (st, ser)


def wait_stapled(port, serial, within=5.0, sni="shop.test", n=6):
    """Until n new connections in a row are served serial with a good staple for serial."""
    t0, ok, last = time.time(), 0, None
    while ok < n:
        last = stapled(port, sni)
        ok = ok + 1 if last == (serial, ("good", serial)) else 0
        assert time.time() - t0 < within, f"served {last}, wanted {serial} stapled good"
    return last


STAPLING = """
    certsync_config {conf};
    server {{
        listen 127.0.0.1:{{port_tls}} ssl;
        server_name shop.test;
        ssl_stapling on;
        certsync_certificate shop;
        location / {{ return 200 "ok\\n"; }}
    }}
"""


def nginx_for(tmp_path, conf):
    return Nginx(tmp_path / "ngx", STAPLING.format(conf=conf), ports=("tls",))


needs_nginx = pytest.mark.skipif(not nginx_available(), reason="nginx or the module is missing")


@needs_nginx
def test_the_local_ca_staples_its_own_certificates_in_nginx(tmp_path):
    conf = write_conf(tmp_path)
    out = certsync("--config", conf, "sync").stdout
    assert "OCSP staple of v1: good until" in out, out
    st = status_of(conf)
    assert st["ocsp"]["status"] == "good" and st["ocsp"]["last_error"] is None
    serial = st["serial"].upper() if "serial" in st else None
    with nginx_for(tmp_path, conf) as ngx:
        served, staple = stapled(ngx.port("tls"))
        assert staple == ("good", served), staple
        if serial:
            assert served.lstrip("0") == serial.replace(":", "").lstrip("0")
        # a new version (the local CA issues, the sync staples it) is stapled too
        certsync("--config", conf, "sync", "--force")
        v2 = status_of(conf)
        assert v2["version"] == 2 and v2["ocsp"]["status"] == "good"
        t0 = time.time()
        while stapled(ngx.port("tls"))[0] == served:
            assert time.time() - t0 < 5, "v2 was not served"
        new, staple = stapled(ngx.port("tls"))
        assert staple == ("good", new)


@needs_nginx
def test_nginx_staples_the_responders_answer_through_ten_swaps(tmp_path, ca):
    conf = write_conf(tmp_path)
    cert, key, serial = ca.issue()
    import_leaf(conf, ca, cert, key)
    assert status_of(conf)["ocsp"]["status"] == "good"
    with nginx_for(tmp_path, conf) as ngx:
        master, workers = ngx.master_pid, ngx.worker_pids()
        wait_stapled(ngx.port("tls"), serial)
        for i in range(10):
            cert, key, serial = ca.issue()
            import_leaf(conf, ca, cert, key)
            # the staple came with the version: the first connection that sees it has both
            t0 = time.time()
            while (got := stapled(ngx.port("tls")))[0] != serial:
                assert time.time() - t0 < 5, f"swap {i + 1}: still served {got}"
            assert got == (serial, ("good", serial)), f"swap {i + 1}: {got}"
            wait_stapled(ngx.port("tls"), serial, n=4)
        assert ngx.master_pid == master and ngx.worker_pids() == workers, "no new processes"
        assert status_of(conf)["version"] == 11


@needs_nginx
def test_a_must_staple_certificate_is_served_with_its_staple(tmp_path, ca):
    conf = write_conf(tmp_path)
    cert, key, serial = ca.issue(must_staple=True)
    assert "TLS Feature" in run("openssl", "x509", "-in", cert, "-noout", "-text").stdout
    import_leaf(conf, ca, cert, key)
    with nginx_for(tmp_path, conf) as ngx:
        wait_stapled(ngx.port("tls"), serial)
        # a client that insists on a valid staple (verified against the test root) gets one
        r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{ngx.port('tls')}",
                            "-servername", "shop.test", "-status", "-CAfile", ca.root,
                            "-verify_return_error"], input="", capture_output=True, text=True,
                           timeout=20)
        assert "Verify return code: 0 (ok)" in r.stdout, r.stdout + r.stderr
        assert "Cert Status: good" in r.stdout


@needs_nginx
def test_a_revoked_answer_is_critical_and_the_staple_is_withdrawn(tmp_path, ca):
    conf = write_conf(tmp_path)
    cert, key, serial = ca.issue()
    import_leaf(conf, ca, cert, key)
    with nginx_for(tmp_path, conf) as ngx:
        wait_stapled(ngx.port("tls"), serial)
        ca.revoke(serial)
        r = certsync("--config", conf, "ocsp", "shop", check=False)
        assert r.returncode == 1 and "REVOKED" in r.stderr, r.stdout + r.stderr
        assert not (tmp_path / "store/certs/shop/v1.ocsp").exists()
        chk = certsync("--config", conf, "status", "--check", check=False)
        assert chk.returncode == 2, chk.stdout
        assert "CRITICAL shop" in chk.stdout and "REVOKED" in chk.stdout
        assert status_of(conf)["ocsp"]["status"] == "revoked"
        t0 = time.time()
        while stapled(ngx.port("tls")) != (serial, None):
            assert time.time() - t0 < 5, "the revoked staple is still handed out"


@needs_nginx
def test_the_responder_down_keeps_the_last_good_staple(tmp_path, ca):
    conf = write_conf(tmp_path)
    cert, key, serial = ca.issue()
    import_leaf(conf, ca, cert, key)
    before = (tmp_path / "store/certs/shop/v1.ocsp").read_bytes()
    with nginx_for(tmp_path, conf) as ngx:
        wait_stapled(ngx.port("tls"), serial)
        ca.stop()
        r = certsync("--config", conf, "ocsp", "shop", check=False)
        assert r.returncode == 1 and f"127.0.0.1:{ca.port}" in r.stderr, r.stderr
        assert (tmp_path / "store/certs/shop/v1.ocsp").read_bytes() == before
        st = status_of(conf)["ocsp"]
        assert st["status"] == "good" and f"127.0.0.1:{ca.port}" in st["last_error"]
        text = certsync("--config", conf, "status", "shop").stdout
        assert re.search(r"ocsp +good, this update \S+, next update \S+", text), text
        assert re.search(rf"ocsp error +OCSP responder http://127.0.0.1:{ca.port}/", text), text
        # still valid: no warning yet, and the staple is still handed out
        assert certsync("--config", conf, "status", "--check", check=False).returncode == 0
        wait_stapled(ngx.port("tls"), serial)
        # the next sync waits for its retry time instead of hammering the responder
        out = certsync("--config", conf, "sync").stdout
        assert "next try at" in out, out
        metrics = certsync("--config", conf, "metrics").stdout
        assert re.search(r'certsync_ocsp_next_update_seconds\{name="shop"\} \d+', metrics)


def test_a_certificate_without_a_responder_has_no_staple(tmp_path):
    from conftest import Chain
    conf = write_conf(tmp_path)
    ch = Chain(tmp_path / "plain", names=("shop.test",))
    certsync("--config", conf, "import", "shop", "--cert", ch.leaf, "--key", ch.key,
             "--chain", ch.inter)
    out = certsync("--config", conf, "sync").stdout
    assert "no OCSP responder in v1" in out
    assert status_of(conf)["ocsp"] is None
    assert not (tmp_path / "store/certs/shop/v1.ocsp").exists()


# ---- Apache: mod_ssl's OCSP hooks ----

import apache as apache_helpers  # noqa: E402

needs_apache = pytest.mark.skipif(
    not (apache_helpers.available() and apache_helpers.module_path().exists()),
    reason="needs Debian's apache2 and out/mod_certsync.so")


@pytest.fixture
def aroot():
    root = apache_helpers.workdir("certsync-ocsp-")
    yield root
    apache_helpers.cleanup(root)


def apache_conf(root, certs=None):
    """certsync.conf whose store the workers (www-data) read through their group."""
    certs = certs or {"shop": "domain = shop.test\n"}
    conf = root / "certsync.conf"
    conf.write_text(f"[store]\npath = {root}/store\ngroup = www-data\n\n" +
                    "".join(f"[cert {n}]\n{body}\n" for n, body in certs.items()))
    return conf


def stapling_apache(root, conf, port, names=("shop",)):
    lines = "\n".join(f"    CertSyncCertificate {n}" for n in names)
    body = f"""
Listen 127.0.0.1:{port} https
<VirtualHost 127.0.0.1:{port}>
    ServerName shop.test
    SSLEngine on
{lines}
</VirtualHost>
"""
    pre = (f"CertSyncConfig {conf}\nSSLUseStapling on\n"
           f'SSLStaplingCache "shmcb:{root}/run/ocsp(128000)"')
    return apache_helpers.Apache(root, body, preamble=pre)


@needs_apache
def test_apache_staples_the_local_ca_certificate_and_follows_a_swap(aroot):
    conf = apache_conf(aroot)
    certsync("--config", conf, "sync")
    port = free_port()
    with stapling_apache(aroot, conf, port) as ap:
        served, staple = stapled(port)
        assert staple == ("good", served), ap.log()
        certsync("--config", conf, "sync", "--force")
        t0 = time.time()
        while (got := stapled(port))[0] == served:
            assert time.time() - t0 < 5, "v2 was not served"
        assert got[1] == ("good", got[0]), got


@needs_apache
def test_apache_staples_the_responders_answer_through_ten_swaps(aroot):
    ca = OcspCA(aroot / "pki").start()
    try:
        conf = apache_conf(aroot)
        cert, key, serial = ca.issue()
        import_leaf(conf, ca, cert, key)
        port = free_port()
        with stapling_apache(aroot, conf, port) as ap:
            parent, children = ap.pid(), ap.child_pids()
            wait_stapled(port, serial)
            for i in range(10):
                cert, key, serial = ca.issue()
                import_leaf(conf, ca, cert, key)
                t0 = time.time()
                while (got := stapled(port))[0] != serial:
                    assert time.time() - t0 < 5, f"swap {i + 1}: still served {got}"
                assert got == (serial, ("good", serial)), f"swap {i + 1}: {got}"
                wait_stapled(port, serial, n=4)
            assert (ap.pid(), ap.child_pids()) == (parent, children), "no restart"
            assert ap.restarts_in_log() == []
            # the responder down: the last good staple stays; revoked: it goes
            ca.stop()
            assert certsync("--config", conf, "ocsp", check=False).returncode == 1
            wait_stapled(port, serial, n=4)
            ca.start()
            ca.revoke(serial)
            r = certsync("--config", conf, "ocsp", check=False)
            assert "REVOKED" in r.stderr, r.stdout + r.stderr
            t0 = time.time()
            while stapled(port) != (serial, None):
                assert time.time() - t0 < 5, "the revoked staple is still handed out"
    finally:
        ca.stop()


def test_a_responder_down_at_install_is_a_warning_and_retried_later(tmp_path, ca):
    conf = write_conf(tmp_path)
    cert, key, serial = ca.issue()
    ca.stop()
    import_leaf(conf, ca, cert, key)  # installed all the same, without a staple
    assert status_of(conf)["version"] == 1
    assert not (tmp_path / "store/certs/shop/v1.ocsp").exists()
    chk = certsync("--config", conf, "status", "--check", check=False)
    assert chk.returncode == 1, chk.stdout
    assert "WARNING shop: no valid OCSP staple (none fetched yet): OCSP responder" in chk.stdout
    # the responder back: `certsync ocsp` does not wait for the retry time
    ca.start()
    out = certsync("--config", conf, "ocsp", "shop").stdout
    assert "OCSP staple of v1: good until" in out
    assert certsync("--config", conf, "status", "--check", check=False).returncode == 0


def test_an_unknown_answer_is_an_error_and_keeps_the_good_staple(tmp_path, ca):
    conf = write_conf(tmp_path)
    cert, key, serial = ca.issue()
    import_leaf(conf, ca, cert, key)
    before = (tmp_path / "store/certs/shop/v1.ocsp").read_bytes()
    # the responder forgets the certificate: it answers "unknown"
    ca.index.write_text("".join(ln + "\n" for ln in ca.index.read_text().splitlines()
                                if serial not in ln))
    ca.touch()
    r = certsync("--config", conf, "ocsp", "shop", check=False)
    assert r.returncode == 1 and "does not know v1 (status 'unknown')" in r.stderr, r.stderr
    assert (tmp_path / "store/certs/shop/v1.ocsp").read_bytes() == before
    st = status_of(conf)["ocsp"]
    assert st["status"] == "good" and "does not know" in st["last_error"]
