"""Debian's pebble, a real ACME CA (RFC 8555), for interop tests, with
pebble-challtestsrv as the DNS its validation authority asks: every name resolves
to 127.0.0.1, so pebble's http-01 requests reach the server under test on http_port.

    with Pebble(tmp_path / "pebble", http_port=ngx.port("http")) as ca:
        ca.directory   # https://127.0.0.1:PORT/dir
        ca.ca_file     # the test-made certificate of pebble's own HTTPS (ca-file =)
        ca.roots()     # PEM of the root that issues, from the management interface

Everything binds 127.0.0.1; pebble's TLS certificate is made here with openssl; the
validation runs with no random sleep (PEBBLE_VA_NOSLEEP=1) and pebble keeps rejecting
5 % of good nonces (its default), which the client must survive.
"""
import json
import os
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

PEBBLE = "/usr/bin/pebble"
CHALLTESTSRV = "/usr/bin/pebble-challtestsrv"


def available():
    return Path(PEBBLE).exists() and Path(CHALLTESTSRV).exists()


def _free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Pebble:
    def __init__(self, d, http_port, tls_port=None, env=None, eab=None):
        self.d = Path(d)
        self.d.mkdir(parents=True, exist_ok=True)
        self.port, self.mgmt = _free_port(), _free_port()
        self.dns = _free_port(socket.SOCK_DGRAM)
        self.dns_mgmt = _free_port()
        self.http_port = http_port
        self.tls_port = tls_port or _free_port()
        self.ca_file = self.d / "pebble-tls.pem"
        self.key_file = self.d / "pebble-tls.key"
        self.log_file = self.d / "pebble.log"
        self.procs = []
        self.env = env or {}  # e.g. PEBBLE_AUTHZREUSE=0: every order proves control again
        self.eab = eab  # {kid: base64url MAC key}: external account binding required

    @property
    def directory(self):
        return f"https://127.0.0.1:{self.port}/dir"

    def _make_tls(self):
        subprocess.run(["openssl", "req", "-x509", "-nodes", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-keyout", self.key_file, "-out", self.ca_file,
                        "-subj", "/CN=pebble test TLS", "-days", "2",
                        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                       check=True, capture_output=True)

    def start(self):
        self._make_tls()
        cfg = self.d / "pebble-config.json"
        cfg.write_text(json.dumps({"pebble": {
            "listenAddress": f"127.0.0.1:{self.port}",
            "managementListenAddress": f"127.0.0.1:{self.mgmt}",
            "certificate": str(self.ca_file), "privateKey": str(self.key_file),
            "httpPort": self.http_port, "tlsPort": self.tls_port,
            "ocspResponderURL": "", "externalAccountBindingRequired": bool(self.eab),
            "externalAccountMACKeys": self.eab or {}}}))
        dns_log = open(self.d / "challtestsrv.log", "w")
        self.procs.append(subprocess.Popen(
            [CHALLTESTSRV, "-dns01", f"127.0.0.1:{self.dns}", "-http01", "", "-https01", "",
             "-tlsalpn01", "", "-management", f"127.0.0.1:{self.dns_mgmt}",
             "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""],
            stdout=dns_log, stderr=subprocess.STDOUT))
        env = dict(os.environ, PEBBLE_VA_NOSLEEP="1")
        env.pop("PEBBLE_WFE_NONCEREJECT", None)  # pebble's default 5 %, unless a test says
        env.update(self.env)
        log = open(self.log_file, "a")
        self.procs.append(subprocess.Popen(
            [PEBBLE, "-config", cfg, "-dnsserver", f"127.0.0.1:{self.dns}"],
            stdout=log, stderr=subprocess.STDOUT, env=env))
        self._wait()
        return self

    def restart(self):
        """A new pebble on the same ports: it has forgotten every account and order."""
        self.stop()
        self.procs = []
        return self.start()

    def _ctx(self):
        return ssl.create_default_context(cafile=str(self.ca_file))

    def _wait(self, timeout=20):
        t0 = time.time()
        while True:
            for p in self.procs:
                if p.poll() is not None:
                    raise AssertionError(f"{p.args[0]} exited {p.returncode}:\n{self.log()}")
            try:
                urllib.request.urlopen(self.directory, context=self._ctx(), timeout=2).read()
                return
            except OSError:
                if time.time() - t0 > timeout:
                    raise AssertionError(f"pebble did not come up:\n{self.log()}")
                time.sleep(0.1)

    def roots(self, i=0):
        """The root that issues (PEM), from pebble's management interface; i > 0: the
        roots of the alternate chains (PEBBLE_ALTERNATE_ROOTS)."""
        url = f"https://127.0.0.1:{self.mgmt}/roots/{i}"
        return urllib.request.urlopen(url, context=self._ctx(), timeout=10).read().decode()

    def cert_status(self, serial):
        """What pebble says of a certificate it issued ({"Status": "Valid"|"Revoked", ...})."""
        url = f"https://127.0.0.1:{self.mgmt}/cert-status-by-serial/{serial}"
        return json.loads(urllib.request.urlopen(url, context=self._ctx(), timeout=10).read())

    def log(self):
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
