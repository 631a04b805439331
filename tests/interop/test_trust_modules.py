"""The trust boundary seen from the servers: the web server's worker user (www-data) is
assumed compromised. Each attack is staged as that user (`runuser -u www-data`) in a store
it owns ([store] owner = www-data), then the root side runs (Apache's parent, nginx's
master, `nginx -t`, a reload) and the test checks what a client is served and that nothing
outside the store was touched: a key only root can read is never served, a FIFO hangs
nothing, and the validation answer follows the writer's host rule."""
import json
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

import apache
import nginx
from apache import Apache, free_port, request, served_subject, wait_until, workdir
from conftest import Chain, certsync
from nginx import Nginx, s_client

NAMES = ("shop.example.com", "www.shop.example.com")
STEP = 20  # seconds any server step may take; a FIFO that blocks would take forever

pytestmark = [
    pytest.mark.skipif(not apache.available() or not apache.module_path().exists(),
                       reason="needs apache2 and out/mod_certsync.so"),
    pytest.mark.skipif(not nginx.available(), reason="needs nginx and the nginx module"),
]


class World:
    """A world-traversable root: certsync.conf, the store, a root-only secret outside it."""

    def __init__(self, root):
        self.root = root
        self.store = root / "store"
        self.conf = root / "certsync.conf"
        self.cdir = self.store / "certs" / "shop"
        self.write_conf("group = www-data")
        self.a = Chain(root / "pki", names=NAMES, tag="a")
        # what the worker would love to serve: a certificate whose key only root reads
        secret = root / "secret"
        self.secret = Chain(secret, names=NAMES, tag="secret")
        self.secret_version = secret / "version"
        self.secret_version.mkdir()
        shutil.copy(self.secret.fullchain, self.secret_version / "fullchain.pem")
        shutil.copy(self.secret.key, self.secret_version / "privkey.pem")
        for key in (self.secret.key, self.secret_version / "privkey.pem"):
            key.chmod(0o600)
        secret.chmod(0o755)
        self.secret_version.chmod(0o755)
        self.before = self.outside()

    def write_conf(self, store_line):
        self.conf.write_text(f"[store]\npath = {self.store}\n{store_line}\n\n"
                             f"[cert shop]\ndomain = {' '.join(NAMES)}\n")

    def certsync(self, *args, check=True):
        return certsync("--config", self.conf, *args, check=check)

    def hand_to_worker(self):
        """The store becomes www-data's: [store] owner = www-data, chown -R."""
        self.write_conf("owner = www-data")
        subprocess.run(["chown", "-R", "www-data:www-data", self.store], check=True)

    def import_as_worker(self, chain):
        """`certsync import` of chain into the worker's store (the import drops to www-data,
        so the files it reads are copied where that user can read them)."""
        good = self.root / "good"
        good.mkdir(exist_ok=True)
        shutil.copy(chain.fullchain, good / "fullchain.pem")
        shutil.copy(chain.key, good / "privkey.pem")
        subprocess.run(["chown", "-R", "www-data:www-data", good], check=True)
        self.certsync("import", "shop", "--cert", good / "fullchain.pem",
                      "--key", good / "privkey.pem")

    @staticmethod
    def as_worker(*cmd):
        subprocess.run(["runuser", "-u", "www-data", "--", *map(str, cmd)], check=True,
                       timeout=STEP)

    def outside(self):
        """(path, mode, uid, size, mtime) of everything under the root but the store and the
        servers' own directories: what no root process of ours may touch."""
        seen = []
        for top in (self.root / "secret", self.root / "pki"):
            for p in sorted(top.rglob("*")):
                st = p.lstat()
                seen.append((str(p), st.st_mode, st.st_uid, st.st_size, st.st_mtime_ns))
        return seen

    def assert_outside_untouched(self):
        assert self.outside() == self.before


@pytest.fixture
def world():
    root = workdir("certsync-trust-")
    yield World(root)
    apache.cleanup(root)


def vhost(port, http_port=None):
    text = f"""
Listen 127.0.0.1:{port} https
<VirtualHost 127.0.0.1:{port}>
    ServerName shop.example.com
    ServerAlias www.shop.example.com
    SSLEngine on
    CertSyncCertificate shop
</VirtualHost>
"""
    if http_port:
        text += f"""
Listen 127.0.0.1:{http_port}
<VirtualHost 127.0.0.1:{http_port}>
    ServerName shop.example.com
</VirtualHost>
"""
    return text


def apache_server(w, body, **kw):
    return Apache(w.root / "httpd", body, preamble=f"CertSyncConfig {w.conf}", **kw)


def ngx_conf(conf):
    return f"""
    certsync_config {conf};
    server {{
        listen 127.0.0.1:{{port_tls}} ssl;
        server_name shop.example.com www.shop.example.com;
        certsync_certificate shop;
        location / {{ return 200 "ok\\n"; }}
    }}
    server {{
        listen 127.0.0.1:{{port_http}};
        certsync_validation on;
        location = /certsync/status {{ certsync_status; }}
        location / {{ return 404; }}
    }}
"""


def nginx_server(w, conf=None):
    return Nginx(w.root / "nginx", ngx_conf(conf or w.conf), user="www-data")


def nginx_t(ngx):
    """`nginx -t` within STEP seconds (subprocess.TimeoutExpired if it hangs)."""
    return subprocess.run([nginx.NGINX, "-t", "-p", str(ngx.prefix), "-c", str(ngx.conf)],
                          capture_output=True, text=True, timeout=STEP)


def curl(port, path, host, https=False):
    """(HTTP status, body) with curl --max-time: a hanging answer fails the test."""
    scheme = "https" if https else "http"
    r = subprocess.run(["curl", "-sk", "--max-time", "5", "-o", "-", "-w", "\n%{http_code}",
                        "--resolve", f"{host}:{port}:127.0.0.1", f"{scheme}://{host}:{port}{path}"],
                       capture_output=True, text=True, timeout=STEP)
    assert r.returncode == 0, f"curl {path} for {host}: exit {r.returncode} {r.stderr}"
    body, _, code = r.stdout.rpartition("\n")
    return int(code), body


def tls_answer(port, host="shop.example.com"):
    """(HTTP status, Retry-After) of a GET / over TLS (the certificate is not checked)."""
    r = subprocess.run(["curl", "-sk", "--max-time", "5", "-o", "/dev/null", "-D", "-",
                        "--resolve", f"{host}:{port}:127.0.0.1", f"https://{host}:{port}/"],
                       capture_output=True, text=True, timeout=STEP)
    assert r.returncode == 0, f"curl https://{host}:{port}/: exit {r.returncode} {r.stderr}"
    lines = r.stdout.splitlines()
    headers = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
    headers = {k.strip().lower(): v.strip() for k, v in headers.items()}
    return int(lines[0].split()[1]), headers.get("retry-after")


def served(port):
    fp, text = s_client(port, "shop.example.com")
    assert fp, f"no certificate served on {port}: {text}"
    return fp, text


# ---- item 5: a symlink to a root-only key is never loaded nor served ----

ATTACKS = {
    # the worker links the version's key (and chain) to root-only files
    "privkey": lambda w, v1: w.as_worker("ln", "-sfn", w.secret.key, v1 / "privkey.pem"),
    "pair": lambda w, v1: (w.as_worker("ln", "-sfn", w.secret.fullchain, v1 / "fullchain.pem"),
                           w.as_worker("ln", "-sfn", w.secret.key, v1 / "privkey.pem")),
    # the whole version directory becomes a symlink to a root-only pair
    "version": lambda w, v1: (w.as_worker("mv", v1, v1.parent / "v1.old"),
                              w.as_worker("ln", "-s", w.secret_version, v1)),
}
REFUSED = {"privkey": "'privkey.pem' is a symbolic link",
           "pair": "'fullchain.pem' is a symbolic link",
           "version": "'v1' is a symbolic link"}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_version_linked_to_a_root_only_key_is_never_served(world, attack):
    w = world
    w.certsync("import", "shop", "--cert", w.a.fullchain, "--key", w.a.key)
    w.hand_to_worker()
    ATTACKS[attack](w, w.cdir / "v1")

    # Apache: the parent refuses the version and serves the self-signed fallback
    port = free_port()
    with apache_server(w, vhost(port)) as ap:
        fp, text = served(port)
        assert fp != w.secret.sha256() and fp != w.a.sha256()
        assert "certsync fallback for shop" in text, text
        assert REFUSED[attack] in ap.log() and "refused" in ap.log()
        # what mod_ssl loaded is the parent's own fallback, nothing of the secret
        run = w.root / "httpd" / "run" / "certsync" / "shop"
        assert sorted(p.name for p in run.iterdir()) == ["fallback.key", "fallback.pem"]
        assert w.secret.key.read_bytes() not in (run / "fallback.key").read_bytes()

    # nginx, the same rule: a version the store refuses to read is no usable version, so
    # `nginx -t` passes, naming the refused entry, and nginx starts on the fallback + 503
    ngx = nginx_server(w)
    r = nginx_t(ngx)
    assert r.returncode == 0, r.stderr
    assert REFUSED[attack] in r.stderr and "certsync_certificate \"shop\"" in r.stderr, r.stderr
    with ngx:
        assert_fallback_503(w, ngx.port("tls"))
        assert REFUSED[attack] in ngx.log() and "refused" in ngx.log()
        # a readable version made current replaces the fallback, without a reload
        w.import_as_worker(w.a)
        assert wait_until(lambda: served(ngx.port("tls"))[0] == w.a.sha256(), STEP)[0]
    w.assert_outside_untouched()


def assert_fallback_503(w, port):
    """The self-signed fallback is served, nothing of the secret, and 503 + Retry-After."""
    fp, text = served(port)
    assert fp != w.secret.sha256() and fp != w.a.sha256()
    assert "certsync fallback for shop" in text, text
    assert tls_answer(port) == (503, "60")


def test_nginx_reload_with_a_planted_symlink_keeps_serving_the_good_version(world):
    w = world
    w.certsync("import", "shop", "--cert", w.a.fullchain, "--key", w.a.key)
    w.hand_to_worker()
    with nginx_server(w) as ngx:
        assert served(ngx.port("tls"))[0] == w.a.sha256()
        ATTACKS["pair"](w, w.cdir / "v1")
        ngx.proc.send_signal(1)  # SIGHUP: the master reads the configuration again
        assert wait_until(lambda: REFUSED["pair"] in ngx.log(), STEP)[0], ngx.log()
        # the reload goes through (no worker can block it) and keeps what was served
        assert "keeping v1, which nginx served before the reload" in ngx.log(), ngx.log()
        for _ in range(6):
            assert served(ngx.port("tls"))[0] == w.a.sha256()
        assert ngx.proc.poll() is None
    w.assert_outside_untouched()


# ---- the Apache parent never writes into the store ----

def test_apache_fallback_is_written_in_the_runtime_directory_not_the_store(world):
    w = world
    w.store.mkdir(mode=0o750)
    w.hand_to_worker()
    # the worker plants store/fallback -> a directory of root's; old versions wrote there
    target = w.root / "secret" / "planted"
    target.mkdir()
    w.before = w.outside()
    w.as_worker("ln", "-s", target, w.store / "fallback")
    port = free_port()
    with apache_server(w, vhost(port)) as ap:
        assert "certsync fallback for shop" in served_subject(port)
        assert request(port, "/")[0] == 503
        run = w.root / "httpd" / "run" / "certsync"
        for d in (run, run / "shop"):
            st = d.lstat()
            assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700
            assert st.st_uid == 0
        for f in ("fallback.pem", "fallback.key"):
            st = (run / "shop" / f).lstat()
            assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600, f
        fallback = (run / "shop" / "fallback.pem").read_text()
        assert list(target.iterdir()) == []
        assert (w.store / "fallback").is_symlink()
    # a restart reuses the same fallback (it is not near its end)
    with apache_server(w, vhost(port)) as ap:
        assert (run / "shop" / "fallback.pem").read_text() == fallback
        assert "certsync fallback for shop" in served_subject(port), ap.log()
    assert list(target.iterdir()) == []


# ---- item 6: a FIFO planted in the store hangs nothing ----

def plant_fifo(path):
    """A FIFO of the store's user (www-data) where a file is expected."""
    if path.exists() or path.is_symlink():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path, 0o640)
    os.chown(path, 33, 33)


def fifo_world(w):
    """v1 served; a challenge and state.json are FIFOs; v2 (fullchain.pem a FIFO) is made."""
    w.certsync("import", "shop", "--cert", w.a.fullchain, "--key", w.a.key)
    pki = w.store / "challenges" / "shop.example.com" / "pki-validation"
    pki.mkdir(parents=True)
    for d in (w.store / "challenges", pki.parent, pki):
        d.chmod(0o750)
    w.hand_to_worker()
    plant_fifo(pki / "fileauth.txt")
    plant_fifo(w.cdir / "state.json")
    v2 = w.cdir / "v2"
    w.as_worker("cp", "-a", w.cdir / "v1", v2)
    plant_fifo(v2 / "fullchain.pem")


def switch_to_v2(w):
    """The worker moves `current` onto v2, as a writer would (a new link, renamed)."""
    w.as_worker("ln", "-sfn", "v2", w.cdir / "current.tmp-worker")
    w.as_worker("mv", "-T", w.cdir / "current.tmp-worker", w.cdir / "current")


def test_fifos_planted_in_the_store_hang_no_nginx_step(world):
    w = world
    fifo_world(w)
    with nginx_server(w) as ngx:
        tls, http = ngx.port("tls"), ngx.port("http")
        # a worker answering the challenge: a quick 404, with the reason in the log
        code, _ = curl(http, "/.well-known/pki-validation/fileauth.txt", "shop.example.com")
        assert code == 404
        assert "'fileauth.txt' is not a regular file: refused" in ngx.log()
        code, body = curl(http, "/certsync/status", "localhost")
        shop = next(c for c in json.loads(body)["certificates"] if c["name"] == "shop")
        assert (code, shop["last_sync"]) == (200, "unreadable")
        assert "'state.json' is not a regular file: refused" in shop["last_error"]
        # a worker's swap watcher meets v2's FIFO: it keeps v1
        switch_to_v2(w)
        assert wait_until(lambda: "'fullchain.pem' is not a regular file" in ngx.log(),
                          STEP)[0], ngx.log()
        assert served(tls)[0] == w.a.sha256()
        # a reload: the master refuses v2, the workers keep serving v1
        seen = len(ngx.log())
        ngx.proc.send_signal(1)
        assert wait_until(lambda: "'fullchain.pem' is not a regular file: refused" in
                          ngx.log()[seen:], STEP)[0], ngx.log()
        assert served(tls)[0] == w.a.sha256()
        assert curl(tls, "/", "shop.example.com", https=True) == (200, "ok\n")
    # `nginx -t` passes and a fresh start serves the fallback + 503, both saying which
    # file was refused (as Apache does)
    r = nginx_t(ngx)
    assert r.returncode == 0, r.stderr
    assert "'fullchain.pem' is not a regular file: refused" in r.stderr, r.stderr
    with nginx_server(w) as fresh:
        assert_fallback_503(w, fresh.port("tls"))
        assert "'fullchain.pem' is not a regular file: refused" in fresh.log()
    w.assert_outside_untouched()


def test_fifos_planted_in_the_store_hang_no_apache_step(world):
    w = world
    fifo_world(w)
    port, http_port = free_port(), free_port()
    with apache_server(w, vhost(port, http_port)) as ap:
        code, _ = curl(http_port, "/.well-known/pki-validation/fileauth.txt", "shop.example.com")
        assert code == 404
        assert "'fileauth.txt' is not a regular file: refused" in ap.log()
        last = ap.certsync_status()["certificates"][0]
        assert last["last_sync"] == "unreadable"
        assert "'state.json' is not a regular file: refused" in last["last_error"]
        switch_to_v2(w)

        def refused():
            c = ap.certsync_status()["certificates"][0]
            return c if (c["server"]["refused"] or {}).get("version") == 2 else None
        cert, _ = wait_until(refused, STEP)
        assert cert, ap.log()
        assert "'fullchain.pem' is not a regular file" in cert["server"]["refused"]["reason"]
        assert served(port)[0] == w.a.sha256()
    # a start with `current` on v2: within the step, on the fallback, saying why
    t0 = time.monotonic()
    with apache_server(w, vhost(port)) as ap:
        assert time.monotonic() - t0 < STEP
        assert "certsync fallback for shop" in served(port)[1]
        assert "'fullchain.pem' is not a regular file: refused" in ap.log()
    w.assert_outside_untouched()


# ---- item 21: one host rule with the writer ----

LONG_HOST = "a" * 60 + "." + "b" * 34 + ".example"  # 103 characters, labels under 64


def challenge_world(w):
    """Root's store (group www-data) with answers for LONG_HOST and shop.example.com."""
    assert len(LONG_HOST) > 100
    w.certsync("import", "shop", "--cert", w.a.fullchain, "--key", w.a.key)
    answers = {LONG_HOST: "long-host-answer\n", "shop.example.com": "shop-answer\n"}
    for host, text in answers.items():
        d = w.store / "challenges" / host / "pki-validation"
        d.mkdir(parents=True)
        (d / "fileauth.txt").write_text(text)
    subprocess.run(["chown", "-R", "root:www-data", w.store / "challenges"], check=True)
    subprocess.run(["chmod", "-R", "u=rwX,g=rX,o=", w.store / "challenges"], check=True)
    return answers


def test_long_and_mixed_case_hosts_are_answered_by_both_modules(world):
    w = world
    answers = challenge_world(w)
    path = "/.well-known/pki-validation/fileauth.txt"
    port, http_port = free_port(), free_port()
    with apache_server(w, vhost(port, http_port)):
        assert curl(http_port, path, LONG_HOST) == (200, answers[LONG_HOST])
        assert curl(http_port, path, "Shop.Example.COM") == (200, answers["shop.example.com"])
        assert curl(http_port, path, "other.example.com")[0] == 404
    with nginx_server(w) as ngx:
        http = ngx.port("http")
        assert curl(http, path, LONG_HOST) == (200, answers[LONG_HOST])
        assert curl(http, path, "Shop.Example.COM") == (200, answers["shop.example.com"])
        assert curl(http, path, "other.example.com")[0] == 404
