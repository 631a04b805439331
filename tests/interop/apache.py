"""A real Apache httpd for interop tests: Debian's apache2 (2.4, event MPM, mod_ssl) started
by the test with its own ServerRoot and httpd.conf in a temp dir, on loopback ports, with
2 child processes of 8 threads each. Nothing under /etc/apache2 is used or touched.

Workers run as www-data (Debian's apache2 refuses to run them as root), so the temp dir
is world-traversable and the certsync store, written by root, is read by the workers
through `[store] group = www-data` in certsync.conf.

    root = workdir()
    with Apache(root, body=f'''
            Listen 127.0.0.1:{port} https
            <VirtualHost 127.0.0.1:{port}>
                SSLEngine on
                CertSyncCertificate shop
            </VirtualHost>''', preamble=f"CertSyncConfig {conf}") as ap:
        assert served_sha256(port) == ...

Needs: apt-get install apache2 (apache-module/deps.txt). The module under test is
$CERTSYNC_APACHE_MODULE, else mod_certsync.so next to $CERTSYNC (out/).
"""
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

APACHE2 = "/usr/sbin/apache2"
MODULES = Path("/usr/lib/apache2/modules")
ROOT = Path(__file__).resolve().parents[2]

# mpm_event first. Debian's apache2 has mod_unixd, mod_log_config and mod_watchdog built in.
BASE_MODULES = ("mpm_event", "authz_core", "authz_host", "mime", "dir", "ssl", "socache_shmcb",
                "status")


def module_path():
    env = os.environ.get("CERTSYNC_APACHE_MODULE")
    if env:
        return Path(env)
    cli = os.environ.get("CERTSYNC")
    return (Path(cli).resolve().parent if cli else ROOT / "out") / "mod_certsync.so"


def available():
    return Path(APACHE2).exists() and (MODULES / "mod_ssl.so").exists()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def workdir(prefix="certsync-apache-"):
    """A temp dir that www-data can traverse (pytest's tmp_path is 0700 root)."""
    d = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    d.chmod(0o755)
    return d


def client_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def served_der(port, sni="shop.example.com", timeout=5):
    """DER of the leaf a fresh TLS handshake gets (a new context: no session reuse)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        with client_context().wrap_socket(s, server_hostname=sni) as t:
            return t.getpeercert(binary_form=True)


def served_sha256(port, sni="shop.example.com"):
    return hashlib.sha256(served_der(port, sni)).hexdigest()


def served_chain_count(port, sni="shop.example.com"):
    """Certificates the server sends (leaf + chain), read with openssl s_client."""
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", sni,
                        "-showcerts"], input="", capture_output=True, text=True, timeout=20)
    return r.stdout.count("-----BEGIN CERTIFICATE-----")


def served_subject(port, sni="shop.example.com"):
    pem = ssl.DER_cert_to_PEM_cert(served_der(port, sni))
    r = subprocess.run(["openssl", "x509", "-noout", "-subject", "-issuer"], input=pem,
                       capture_output=True, text=True, check=True)
    return r.stdout


def wait_until(pred, timeout, interval=0.05):
    """pred() until truthy; returns (value, seconds waited) or (None, timeout)."""
    start = time.monotonic()
    while True:
        v = pred()
        if v:
            return v, time.monotonic() - start
        if time.monotonic() - start > timeout:
            return None, timeout
        time.sleep(interval)


def request(port, path="/", host="shop.example.com", https=True, method="GET", timeout=10):
    """(status, body, headers) of one request on a new connection."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    if https:
        # a TLS socket with SNI = the host asked for; http.client uses a preset sock as is
        raw = socket.create_connection(("127.0.0.1", port), timeout)
        c.sock = client_context().wrap_socket(raw, server_hostname=host)
    try:
        c.request(method, path, headers={"Host": host, "Connection": "close"})
        r = c.getresponse()
        return r.status, r.read().decode("utf-8", "replace"), dict(r.getheaders())
    finally:
        c.close()


class Apache:
    """One httpd: `with Apache(root, body) as ap:` writes root/httpd.conf, starts, stops.

    body: the vhosts (and Listen lines); preamble: global lines written after the
    LoadModule lines (CertSyncConfig, ...). status_port: an HTTP port with
    /server-status and /certsync-status (made here)."""

    def __init__(self, root, body, preamble="", load_certsync=True, status_port=None,
                 log_level="info ssl:warn", extra_modules=(), access_log=True):
        self.root = Path(root)
        self.conf = self.root / "httpd.conf"
        self.body = body
        self.preamble = preamble
        self.load_certsync = load_certsync
        self.status_port = status_port or free_port()
        self.log_level = log_level
        self.extra_modules = extra_modules
        self.access_log = access_log
        self.error_log = self.root / "logs" / "error.log"
        self.pid_file = self.root / "run" / "httpd.pid"

    # ---- configuration ----

    def config_text(self):
        r = self.root
        mods = [f"LoadModule {m}_module {MODULES}/mod_{m}.so"
                for m in (*BASE_MODULES, *self.extra_modules)]
        if self.load_certsync:
            mods.append(f"LoadModule certsync_module {module_path()}")
        status = "SetHandler certsync-status" if self.load_certsync else "Require all denied"
        return "\n".join(mods) + f"""
ServerRoot "{r}"
ServerName localhost
DefaultRuntimeDir "{r}/run"
PidFile "{r}/run/httpd.pid"
ErrorLog "{r}/logs/error.log"
LogLevel {self.log_level}
LogFormat "%h %t \\"%r\\" %>s %b pid=%P" simple
{f'CustomLog "{r}/logs/access.log" simple' if self.access_log else ""}
User www-data
Group www-data
StartServers 2
ServerLimit 2
ThreadLimit 8
ThreadsPerChild 8
MaxRequestWorkers 16
MinSpareThreads 8
MaxSpareThreads 16
MaxConnectionsPerChild 0
TypesConfig /etc/mime.types
DocumentRoot "{r}/htdocs"
<Directory "{r}/htdocs">
    Require all granted
</Directory>
SSLSessionCache "shmcb:{r}/run/ssl_scache(512000)"
ExtendedStatus on
{self.preamble}

Listen 127.0.0.1:{self.status_port}
<VirtualHost 127.0.0.1:{self.status_port}>
    ServerName status.test
    <Location /server-status>
        SetHandler server-status
    </Location>
    <Location /certsync-status>
        {status}
    </Location>
</VirtualHost>

{self.body}
"""

    def write(self):
        for d in ("logs", "run", "htdocs"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        (self.root / "htdocs" / "index.html").write_text("hello from apache\n")
        self.conf.write_text(self.config_text())
        return self.conf

    def line_of(self, text):
        """1-based line of the first httpd.conf line that contains text."""
        for i, line in enumerate(self.conf.read_text().splitlines(), 1):
            if text in line:
                return i
        raise AssertionError(f"{text!r} is not in {self.conf}")

    # ---- process ----

    def ctl(self, *args, check=True):
        r = subprocess.run([APACHE2, "-d", str(self.root), "-f", str(self.conf), *args],
                           capture_output=True, text=True, timeout=60)
        if check and r.returncode != 0:
            raise AssertionError(f"apache2 {' '.join(args)} exited {r.returncode}\n"
                                 f"stdout: {r.stdout}\nstderr: {r.stderr}\n"
                                 f"error log:\n{self.log()}")
        return r

    def configtest(self):
        self.write()
        return self.ctl("-t", check=False)

    def start(self, timeout=20):
        self.write()
        self.ctl("-k", "start")
        ok, _ = wait_until(lambda: self.pid_file.exists() and self._accepting(), timeout)
        if not ok:
            raise AssertionError(f"apache2 did not come up in {timeout} s\n{self.log()}")
        # both children up (the scoreboard shows 2 processes)
        wait_until(lambda: len(self.child_pids()) >= 2, 10)
        return self

    def _accepting(self):
        try:
            socket.create_connection(("127.0.0.1", self.status_port), 0.5).close()
            return True
        except OSError:
            return False

    def pid(self):
        return int(self.pid_file.read_text().split()[0])

    def child_pids(self):
        try:
            out = subprocess.run(["pgrep", "-P", str(self.pid())], capture_output=True,
                                 text=True).stdout
        except (OSError, ValueError):
            return []
        return sorted(int(p) for p in out.split())

    def graceful(self):
        self.ctl("-k", "graceful")

    def stop(self, timeout=20):
        if not self.pid_file.exists():
            return
        pid = self.pid()
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return

        def gone():
            try:
                os.kill(pid, 0)
                return False
            except ProcessLookupError:
                return True
        if not wait_until(gone, timeout)[0]:
            os.kill(pid, signal.SIGKILL)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- observation ----

    def log(self):
        return self.error_log.read_text(errors="replace") if self.error_log.exists() else ""

    def server_status(self):
        """/server-status?auto as a dict (ParentServerConfigGeneration, ServerUptime, ...)."""
        status, body, _ = request(self.status_port, "/server-status?auto", host="status.test",
                                  https=False)
        assert status == 200, body
        return dict(line.split(": ", 1) for line in body.splitlines() if ": " in line)

    def generation(self):
        """The parent's configuration generation; None while a restart drops connections."""
        try:
            return int(self.server_status()["ParentServerConfigGeneration"])
        except (OSError, http.client.HTTPException):
            return None

    def restarts_in_log(self):
        """Restart signals the parent logged, and generations after the first start."""
        log = self.log()
        found = re.findall(r"(?:SIGUSR1|SIGHUP|SIGWINCH) received[^\n]*", log)
        found += re.findall(r"resuming normal operations", log)[1:]
        return found

    def certsync_status(self, fmt=None):
        path = "/certsync-status" + (f"?format={fmt}" if fmt else "")
        status, body, headers = request(self.status_port, path, host="status.test", https=False)
        assert status == 200, body
        return body if fmt else json.loads(body)


def cleanup(root):
    shutil.rmtree(root, ignore_errors=True)
