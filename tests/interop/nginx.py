"""A real nginx for interop tests: Debian's /usr/sbin/nginx started in a private prefix
(conf, logs, pid and temp paths all inside it), in the foreground as a child of the test,
master + worker_processes workers, on loopback ports, with out/ngx_http_certsync_module.so
loaded. Nothing under /etc/nginx or /var/lib/nginx is used.

    with Nginx(tmp_path / "ngx", http_conf) as ngx:     # http_conf: the inside of http{}
        assert served_sha256(ngx.port("tls"), "shop.test") == ...

Workers run as `user` (root by default; the trust tests run them as www-data, with the
prefix and the store in a world-traversable directory). `ports` are picked free before the
config is written; refer to them in the http block
as {port_NAME}, e.g. "listen 127.0.0.1:{port_tls} ssl;".

Needs: apt-get install nginx (and the module built: make modules).
"""
import hashlib
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NGINX = os.environ.get("NGINX", "/usr/sbin/nginx")
MODULE = Path(os.environ.get("CERTSYNC_NGINX_MODULE", ROOT / "out" / "ngx_http_certsync_module.so"))


def available():
    return Path(NGINX).exists() and MODULE.exists()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def served_der(port, server_name=None, timeout=5):
    """DER of the certificate served on 127.0.0.1:port to a new connection with this SNI."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name) as s:
            return s.getpeercert(binary_form=True)


def served_sha256(port, server_name=None, **kw):
    return hashlib.sha256(served_der(port, server_name, **kw)).hexdigest()


def s_client(port, server_name, *args):
    """(sha256, certificate text) of what `openssl s_client ARGS` is served, or (None, output)."""
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
                        "-servername", server_name, *args],
                       input="", capture_output=True, text=True, timeout=20)
    pem = r.stdout[r.stdout.find("-----BEGIN CERTIFICATE-----"):]
    if "-----BEGIN CERTIFICATE-----" not in r.stdout:
        return None, r.stdout + r.stderr
    x = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-text"],
                       input=pem, capture_output=True, text=True, check=True)
    fp = x.stdout.splitlines()[0].split("=", 1)[1].replace(":", "").lower()
    return fp, x.stdout


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kw):
        return None


class Nginx:
    def __init__(self, prefix, http_conf, ports=("tls", "http"), workers=2, main_conf="",
                 module=MODULE, log_level="info", user="root"):
        self.prefix = Path(prefix)
        self.prefix.mkdir(parents=True, exist_ok=True)
        (self.prefix / "logs").mkdir(exist_ok=True)
        self.ports = {name: free_port() for name in ports}
        self.conf = self.prefix / "nginx.conf"
        self.error_log = self.prefix / "logs" / "error.log"
        self.stderr_log = self.prefix / "logs" / "stderr.log"
        self.pid_file = self.prefix / "logs" / "nginx.pid"
        self.proc = None
        p = self.prefix
        temps = "".join(f"{k}_temp_path {p}/{k}_temp;\n    "
                        for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        body = http_conf
        for k, v in self.ports.items():
            body = body.replace("{port_%s}" % k, str(v))
        # nginx clears its workers' environment: the certsync core's variables go through
        self.conf.write_text(f"""load_module {module};
env ALIBABA_CLOUD_ECS_METADATA_DISABLED;
user {user};
worker_processes {workers};
pid {self.pid_file};
error_log {self.error_log} {log_level};
{main_conf}
events {{ worker_connections 1024; }}

http {{
    access_log off;
    {temps}
{body}
}}
""")

    def port(self, name):
        return self.ports[name]

    def test_config(self):
        """`nginx -t`: the CompletedProcess (its stderr holds nginx's messages)."""
        return subprocess.run([NGINX, "-t", "-p", str(self.prefix), "-c", str(self.conf)],
                              capture_output=True, text=True, timeout=60)

    def conf_line(self, needle):
        """1-based line of the config that holds needle."""
        for i, line in enumerate(self.conf.read_text().splitlines(), 1):
            if needle in line:
                return i
        raise AssertionError(f"{needle!r} is not in {self.conf}")

    def start(self, timeout=15):
        err = open(self.stderr_log, "w")
        self.proc = subprocess.Popen([NGINX, "-p", str(self.prefix), "-c", str(self.conf),
                                      "-g", "daemon off; master_process on;"],
                                     stdout=err, stderr=subprocess.STDOUT)
        err.close()
        t0 = time.time()
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"nginx exited {self.proc.returncode}:\n{self.log()}")
            if all(self._listening(p) for p in self.ports.values()) and \
                    len(self.worker_pids()) == self.workers_wanted():
                return self
            if time.time() - t0 > timeout:
                raise AssertionError(f"nginx did not come up:\n{self.log()}")
            time.sleep(0.05)

    def workers_wanted(self):
        for line in self.conf.read_text().splitlines():
            if line.startswith("worker_processes"):
                return int(line.split()[1].rstrip(";"))
        return 1

    @staticmethod
    def _listening(port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False

    @property
    def master_pid(self):
        return self.proc.pid

    def worker_pids(self):
        """pids of the master's children (the workers), sorted."""
        kids = []
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == self.proc.pid:
                kids.append(int(d.name))
        return sorted(kids)

    def log(self):
        """Everything nginx logged: startup messages (stderr) and the error_log."""
        out = ""
        for f in (self.stderr_log, self.error_log):
            if f.exists():
                out += f.read_text(errors="replace")
        return out

    def get(self, path, port=None, host="localhost", scheme="http"):
        """(status, body) of a GET on the plain-HTTP port; redirects are not followed."""
        port = port or self.ports["http"]
        req = urllib.request.Request(f"{scheme}://127.0.0.1:{port}{path}", headers={"Host": host})
        try:
            with urllib.request.build_opener(_NoRedirect).open(req, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")

    def stop(self, timeout=20):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
