"""OCSP stapling that follows every swap: a real responder (`openssl ocsp`) answers for
certificates whose AIA points at it, the local CA answers for its own; `certsync sync` and
`certsync ocsp` keep the staple beside each version, and nginx and Apache hand it to
`openssl s_client -status` from memory, before and after swaps, with the same processes."""
import datetime
import json
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

    def start(self):
        self.proc = subprocess.Popen(
            ["openssl", "ocsp", "-index", self.index, "-port", str(self.port), "-rsigner",
             self.inter, "-rkey", self.inter_key, "-CA", self.inter, "-ndays", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                import socket
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("openssl ocsp did not come up")

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
    pem = out[out.find("-----BEGIN CERTIFICATE-----"):out.find("-----END CERTIFICATE-----") + 25]
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
