"""ngx_http_certsync_module in Debian's real nginx: what a client is served is the store's
current version; a new version reaches every worker with no reload and no new process;
a bad one never does; validation requests and the status page are answered."""
import calendar
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import Chain, certsync, run
from nginx import Nginx, available, s_client, served_sha256
from test_aliyun import KEY_ID, SECRET, Emu, sha2  # the emulator of the certificate service

@pytest.fixture(autouse=True)
def need_nginx():
    assert available(), ("nginx or out/ngx_http_certsync_module.so is missing: "
                         "run build/install-deps.sh and make modules")


def write_conf(tmp_path, certs=None, extra=""):
    """certsync.conf with a local-CA store in tmp_path; certs: name -> [cert] body."""
    certs = certs or {"shop": "domain = shop.test www.shop.test\n"}
    conf = tmp_path / "certsync.conf"
    conf.write_text(f"[store]\npath = {tmp_path}/store\n{extra}\n" +
                    "".join(f"[cert {n}]\n{body}\n" for n, body in certs.items()))
    return conf


def store_status(conf, name="shop"):
    return json.loads(certsync("--config", conf, "status", "--json", name).stdout)[0]


def store_sha256(conf, name="shop"):
    return store_status(conf, name)["fingerprint_sha256"]


def http_conf(conf, servers, sync=""):
    return f"""
    certsync_config {conf};
    {sync}
    {servers}
    server {{
        listen 127.0.0.1:{{port_http}};
        certsync_validation on;
        location = /certsync/status {{ certsync_status; }}
        location / {{ return 301 https://$host$request_uri; }}
    }}
"""


SHOP = """
    server {
        listen 127.0.0.1:{port_tls} ssl reuseport;
        server_name shop.test www.shop.test;
        certsync_certificate shop;
        location / { return 200 "$pid\\n"; }
    }
"""


def tls_get(port, sni="shop.test"):
    """(sha256 served, pid of the worker that answered) over a new TLS connection."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=sni) as s:
            fp = hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()
            s.sendall(f"GET / HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(4096):
                data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    # a fallback answers 503 (during a swap from it, a connection may still get it)
    return fp, int(body.strip()) if head.split()[1] == b"200" else None


def tls_request(port, sni, path="/", method="GET"):
    """(status, headers, body) of one request over a new TLS connection (no verification)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=sni) as s:
            s.sendall(f"{method} {path} HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n"
                      .encode())
            data = b""
            while chunk := s.recv(4096):
                data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    return int(lines[0].split()[1]), headers, body.decode(errors="replace")


def wait_served(port, want, sni="shop.test", within=2.0, streak=40):
    """Seconds until `streak` new connections in a row were served `want`, and the worker
    pids that served them."""
    t0 = time.time()
    n, pids, last = 0, set(), None
    while n < streak:
        fp, pid = tls_get(port, sni)
        if fp == want:
            n += 1
            pids.add(pid)
        else:
            n, pids, last = 0, set(), fp
        assert time.time() - t0 < within + 5, f"still served {last} instead of {want}"
    return time.time() - t0, pids


def steady(check, n=6, within=5.0):
    """Wait until check() holds n times in a row (new connections reach every worker)."""
    t0, ok = time.time(), 0
    while ok < n:
        ok = ok + 1 if check() else 0
        assert time.time() - t0 < within, f"{check.__name__} did not hold within {within}s"


def status(ngx, query=""):
    code, body = ngx.get("/certsync/status" + query)
    assert code == 200, body
    return body if query else json.loads(body)


def cert_of(status_json, name):
    return next(c for c in status_json["certificates"] if c["name"] == name)


def sync_of(status_json):
    """The in-server sync's schedule: the "server" fields of the status document."""
    return status_json["server"]["sync"]


# ---- what is served ----

def test_nginx_serves_the_stores_current_version(tmp_path):
    conf = write_conf(tmp_path)
    certsync("--config", conf, "sync")
    ngx = Nginx(tmp_path / "ngx", http_conf(conf, SHOP))
    t = ngx.test_config()
    assert t.returncode == 0, t.stderr
    with ngx:
        assert served_sha256(ngx.port("tls"), "shop.test") == store_sha256(conf)
        # the whole chain is sent: leaf and the local CA's certificate
        out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{ngx.port('tls')}",
                              "-servername", "shop.test", "-showcerts"], input="",
                             capture_output=True, text=True, timeout=20).stdout
        assert out.count("-----BEGIN CERTIFICATE-----") == 2


def test_a_new_version_reaches_every_worker_without_reload(tmp_path):
    conf = write_conf(tmp_path)
    certsync("--config", conf, "sync")
    new = Chain(tmp_path / "pki", names=("shop.test", "www.shop.test"))
    with Nginx(tmp_path / "ngx", http_conf(conf, SHOP)) as ngx:
        master, workers = ngx.master_pid, ngx.worker_pids()
        assert len(workers) == 2
        old = store_sha256(conf)
        assert tls_get(ngx.port("tls"))[0] == old

        certsync("--config", conf, "import", "shop", "--cert", new.leaf, "--key", new.key,
                 "--chain", new.inter)
        assert store_sha256(conf) == new.sha256() != old
        took, pids = wait_served(ngx.port("tls"), new.sha256(), within=2.0)

        assert took < 2.0, f"the new version took {took:.2f}s to be served"
        assert pids == set(workers), "every worker answered with the new certificate"
        assert ngx.master_pid == master and ngx.worker_pids() == workers, "no new processes"
        assert "signal" not in ngx.log() and "reconfiguring" not in ngx.log()
        assert len(re.findall(r'"shop" v2 is served now \(was v1\)', ngx.log())) == 2


# the stat check an hour apart: whatever reaches the workers came through inotify
BY_INOTIFY = "certsync_watch_interval 1h;"


def wait_log(ngx, pattern, count=2, within=10.0):
    """Wait until the log holds pattern (a regex) count times (once per worker)."""
    t0 = time.time()
    while len(re.findall(pattern, ngx.log())) < count:
        assert time.time() - t0 < within, f"{pattern!r} x{count} not logged:\n{ngx.log()}"
        time.sleep(0.05)


def test_inotify_alone_brings_a_new_version_to_every_worker(tmp_path):
    conf = write_conf(tmp_path)
    certsync("--config", conf, "sync")
    new = Chain(tmp_path / "pki", names=("shop.test", "www.shop.test"))
    with Nginx(tmp_path / "ngx", http_conf(conf, SHOP, sync=BY_INOTIFY)) as ngx:
        pids = (ngx.master_pid, ngx.worker_pids())
        wait_log(ngx, r"certsync: inotify watches 1 of 1 certificates; a stat check looks "
                      r"at them every 3600000ms")
        certsync("--config", conf, "import", "shop", "--cert", new.leaf, "--key", new.key,
                 "--chain", new.inter)
        # well within the hour of the stat check
        _, served_by = wait_served(ngx.port("tls"), new.sha256(), within=5.0)
        assert served_by == set(pids[1]), "every worker serves the new version"
        wait_log(ngx, r'"shop" v2 is served now \(was v1\)')
        assert (ngx.master_pid, ngx.worker_pids()) == pids, "no reload, no new process"


def test_a_certificate_without_a_directory_is_watched_once_it_has_one(tmp_path):
    """No version yet: its directory is looked for every 250 ms, then inotify takes over."""
    conf = write_conf(tmp_path)
    with Nginx(tmp_path / "ngx", http_conf(conf, SHOP, sync=BY_INOTIFY)) as ngx:
        wait_log(ngx, r"certsync: inotify watches 0 of 1 certificates")
        certsync("--config", conf, "sync")
        wait_served(ngx.port("tls"), store_sha256(conf), within=5.0)
        wait_log(ngx, r'certsync: inotify watches "shop" now \(\S+/store/certs/shop\)')

        # from now on the stat check runs once an hour: the next version is inotify's
        new = Chain(tmp_path / "pki", names=("shop.test", "www.shop.test"))
        certsync("--config", conf, "import", "shop", "--cert", new.fullchain, "--key", new.key)
        wait_served(ngx.port("tls"), new.sha256(), within=5.0)
        wait_log(ngx, r'"shop" v2 is served now \(was v1\)')


def test_a_directory_moved_away_and_back_is_watched_again(tmp_path):
    conf = write_conf(tmp_path)
    certsync("--config", conf, "sync")
    old = store_sha256(conf)
    with Nginx(tmp_path / "ngx", http_conf(conf, SHOP, sync=BY_INOTIFY)) as ngx:
        wait_log(ngx, r"certsync: inotify watches 1 of 1 certificates")
        certs = tmp_path / "store" / "certs"
        os.rename(certs / "shop", certs / "shop.away")
        time.sleep(0.5)
        assert tls_get(ngx.port("tls"))[0] == old, "what is served stays"
        os.rename(certs / "shop.away", certs / "shop")
        wait_log(ngx, r'certsync: inotify watches "shop" now')
        assert tls_get(ngx.port("tls"))[0] == old

        new = Chain(tmp_path / "pki", names=("shop.test", "www.shop.test"))
        certsync("--config", conf, "import", "shop", "--cert", new.fullchain, "--key", new.key)
        wait_served(ngx.port("tls"), new.sha256(), within=5.0)
        wait_log(ngx, r'"shop" v2 is served now \(was v1\)')


def test_a_broken_version_is_not_served_and_the_log_says_why(tmp_path):
    conf = write_conf(tmp_path)
    certsync("--config", conf, "sync")
    with Nginx(tmp_path / "ngx", http_conf(conf, SHOP)) as ngx:
        good = store_sha256(conf)
        # v2 by hand, bypassing the store's checks: v1's certificate with a stranger's key
        cdir = tmp_path / "store" / "certs" / "shop"
        shutil.copytree(cdir / "v1", cdir / "v2")
        run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-out", cdir / "v2" / "privkey.pem")
        os.symlink("v2", cdir / "current.tmp")
        os.rename(cdir / "current.tmp", cdir / "current")

        time.sleep(1.5)
        seen = {tls_get(ngx.port("tls"))[0] for _ in range(20)}
        assert seen == {good}
        log = ngx.log()
        assert log.count('"shop": the new current version is not served') == 2, log
        assert "v1 stays" in log
        assert re.search(r"\[error\].*does not match|\[error\].*no certificate", log), log
        st = cert_of(status(ngx), "shop")
        assert all(w["version"] == 1 for w in st["server"]["workers"])
        # the same status as Apache's: the store says v2, this nginx refused it
        assert st["version"] == 2 and st["server"]["state"] == "new-version-refused"
        assert st["server"]["refused"]["version"] == 2 and st["server"]["refused"]["reason"]

        # and a good version after it is served as usual
        new = Chain(tmp_path / "pki", names=("shop.test", "www.shop.test"))
        certsync("--config", conf, "import", "shop", "--cert", new.fullchain, "--key", new.key)
        wait_served(ngx.port("tls"), new.sha256())


def test_nginx_t_checks_the_current_version(tmp_path):
    conf = write_conf(tmp_path)
    certsync("--config", conf, "sync")
    ngx = Nginx(tmp_path / "ngx", http_conf(conf, SHOP))
    assert ngx.test_config().returncode == 0
    key = tmp_path / "store" / "certs" / "shop" / "v1" / "privkey.pem"
    run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-out", key)
    t = ngx.test_config()
    assert t.returncode != 0
    line = ngx.conf_line("certsync_certificate shop;")
    assert f'certsync_certificate "shop" in {ngx.conf}:{line}' in t.stderr, t.stderr
    assert "rollback" in t.stderr


def test_no_version_yet_serves_a_self_signed_fallback(tmp_path):
    conf = write_conf(tmp_path)
    with Nginx(tmp_path / "ngx", http_conf(conf, SHOP)) as ngx:
        fp, text = s_client(ngx.port("tls"), "shop.test")
        assert fp is not None, text
        assert "Subject: CN = certsync fallback for shop" in text
        assert "Issuer: CN = certsync fallback for shop" in text
        assert "DNS:shop.test, DNS:www.shop.test" in text
        assert re.search(r'\[error\].*certsync: "shop" has no version in the store .* yet; '
                         r'serving a self-signed fallback and 503', ngx.log())
        # every request gets 503 + Retry-After (mod_md's rule), so monitoring sees it
        code, headers, _ = tls_request(ngx.port("tls"), "shop.test")
        assert (code, headers.get("retry-after")) == (503, "60"), headers
        assert tls_request(ngx.port("tls"), "shop.test", "/x", method="HEAD")[0] == 503
        st = cert_of(status(ngx), "shop")
        assert st["fallback"] is True and st["version"] is None
        assert st["server"]["state"] == "fallback"
        assert st["server"]["served"]["fallback"] is True
        assert st["server"]["served"]["fingerprint_sha256"] == fp

        # the first version replaces it in every worker, still without a reload
        certsync("--config", conf, "sync")
        wait_served(ngx.port("tls"), store_sha256(conf))


def test_an_undeclared_name_fails_nginx_t_with_file_and_line(tmp_path):
    conf = write_conf(tmp_path)
    ngx = Nginx(tmp_path / "ngx", http_conf(conf, SHOP.replace("certsync_certificate shop;",
                                                               "certsync_certificate shoe;")))
    t = ngx.test_config()
    assert t.returncode != 0
    line = ngx.conf_line("certsync_certificate shoe;")
    assert f'"certsync_certificate" names "shoe", which {conf} does not declare' in t.stderr
    assert f"in {ngx.conf}:{line}" in t.stderr, t.stderr


def test_directive_mistakes_name_the_directive(tmp_path):
    conf = write_conf(tmp_path)
    certsync("--config", conf, "sync")
    v1 = tmp_path / "store" / "certs" / "shop" / "v1"
    cases = {
        "certsync_certificate shop; certsync_certificate shop;": "names this certificate twice",
        "certsync_certificate 'a/b';": '"certsync_certificate" wants the name of a [cert NAME]',
        f"certsync_certificate shop; ssl_certificate {v1}/fullchain.pem; "
        f"ssl_certificate_key {v1}/privkey.pem;":
            "cannot be combined with \"ssl_certificate\"",
    }
    for i, (directives, msg) in enumerate(cases.items()):
        servers = SHOP.replace("certsync_certificate shop;", directives)
        t = Nginx(tmp_path / f"ngx{i}", http_conf(conf, servers)).test_config()
        assert t.returncode != 0 and msg in t.stderr, t.stderr
    t = Nginx(tmp_path / "ngxs", http_conf(conf, SHOP, sync="certsync_sync maybe;")).test_config()
    assert 'invalid value "maybe" in "certsync_sync"' in t.stderr


def test_two_managed_certificates_on_one_port_by_sni(tmp_path):
    conf = write_conf(tmp_path, {"shop": "domain = shop.test\n", "blog": "domain = blog.test\n"})
    certsync("--config", conf, "sync")
    servers = SHOP + """
    server {
        listen 127.0.0.1:{port_tls} ssl;
        server_name blog.test;
        certsync_certificate blog;
        location / { return 200 "$pid\\n"; }
    }
"""
    with Nginx(tmp_path / "ngx", http_conf(conf, servers)) as ngx:
        shop, blog = store_sha256(conf, "shop"), store_sha256(conf, "blog")
        assert shop != blog
        assert served_sha256(ngx.port("tls"), "shop.test") == shop
        assert served_sha256(ngx.port("tls"), "blog.test") == blog
        # a new blog version changes blog.test only
        new = Chain(tmp_path / "pki", names=("blog.test",))
        certsync("--config", conf, "import", "blog", "--cert", new.fullchain, "--key", new.key)
        wait_served(ngx.port("tls"), new.sha256(), sni="blog.test")
        assert served_sha256(ngx.port("tls"), "shop.test") == shop


def test_rsa_and_ecdsa_on_one_server_by_client_algorithms(tmp_path):
    conf = write_conf(tmp_path, {"shop-rsa": "domain = shop.test\nkey-type = rsa2048\n",
                                 "shop-ec": "domain = shop.test\nkey-type = ec256\n"})
    certsync("--config", conf, "sync")
    servers = SHOP.replace("certsync_certificate shop;",
                           "certsync_certificate shop-rsa; certsync_certificate shop-ec;")
    with Nginx(tmp_path / "ngx", http_conf(conf, servers)) as ngx:
        rsa, ec = store_sha256(conf, "shop-rsa"), store_sha256(conf, "shop-ec")
        port = ngx.port("tls")
        assert s_client(port, "shop.test", "-sigalgs", "RSA-PSS+SHA256:RSA+SHA256")[0] == rsa
        assert s_client(port, "shop.test", "-sigalgs", "ECDSA+SHA256")[0] == ec
        assert s_client(port, "shop.test", "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256")[0] \
            == rsa
        assert s_client(port, "shop.test", "-tls1_2", "-cipher",
                        "ECDHE-ECDSA-AES128-GCM-SHA256")[0] == ec

        # a new RSA version leaves the ECDSA one in its slot
        new = Chain(tmp_path / "pki", names=("shop.test",), key="rsa")
        certsync("--config", conf, "import", "shop-rsa", "--cert", new.fullchain, "--key", new.key)
        def rsa_is_new():
            return s_client(port, "shop.test", "-sigalgs", "RSA+SHA256")[0] == new.sha256()

        steady(rsa_is_new)
        assert s_client(port, "shop.test", "-sigalgs", "ECDSA+SHA256")[0] == ec


def test_a_key_type_change_withdraws_the_old_slot(tmp_path):
    """The fallback was ECDSA; the first real version is RSA: no client gets the fallback."""
    conf = write_conf(tmp_path, {"shop": "domain = shop.test\n"})
    with Nginx(tmp_path / "ngx", http_conf(conf, SHOP)) as ngx:
        port = ngx.port("tls")
        fallback, _ = s_client(port, "shop.test", "-sigalgs", "ECDSA+SHA256")
        assert fallback is not None
        new = Chain(tmp_path / "pki", names=("shop.test",), key="rsa")
        certsync("--config", conf, "import", "shop", "--cert", new.fullchain, "--key", new.key)
        def rsa_served():
            return s_client(port, "shop.test", "-sigalgs", "ECDSA+SHA256:RSA-PSS+SHA256")[0] \
                == new.sha256()

        steady(rsa_served)
        for _ in range(6):
            fp, out = s_client(port, "shop.test", "-sigalgs", "ECDSA+SHA256")
            assert fp is None, "the ECDSA fallback is no longer offered"


# ---- status and validation ----

def test_status_reflects_versions_workers_and_sync(tmp_path):
    conf = write_conf(tmp_path)
    certsync("--config", conf, "sync")
    with Nginx(tmp_path / "ngx", http_conf(conf, SHOP)) as ngx:
        st, store = cert_of(status(ngx), "shop"), store_status(conf)
        assert st["version"] == store["version"] == 1
        assert st["fingerprint_sha256"] == store["fingerprint_sha256"]
        assert st["names"] == ["shop.test", "www.shop.test"]
        assert st["not_after"] == store["not_after"] and st["days_left"] == store["days_left"]
        assert st["last_sync"] == "installed" and st["last_error"] is None
        t0 = time.time()    # a worker writes its row once it has started
        while sorted(w["pid"] for w in st["server"]["workers"]) != ngx.worker_pids():
            assert time.time() - t0 < 2, st["server"]["workers"]
            time.sleep(0.05)
            st = cert_of(status(ngx), "shop")

        new = Chain(tmp_path / "pki", names=("shop.test", "www.shop.test"))
        certsync("--config", conf, "import", "shop", "--cert", new.fullchain, "--key", new.key)
        wait_served(ngx.port("tls"), new.sha256())
        st = cert_of(status(ngx), "shop")
        assert st["version"] == st["server"]["served"]["version"] == 2
        assert st["fingerprint_sha256"] == st["server"]["served"]["fingerprint_sha256"] \
            == new.sha256()
        assert [w["version"] for w in st["server"]["workers"]] == [2, 2]
        assert st["server"]["state"] == "ok" and st["server"]["refused"] is None

        page = status(ngx, "?format=html")
        assert "<span>shop</span>" in page and new.sha256() in page and "<b>v2</b>" in page


def test_status_serves_prometheus_metrics_per_worker_and_refuses_an_unknown_format(tmp_path):
    from prometheus_client.parser import text_string_to_metric_families
    conf = write_conf(tmp_path)
    certsync("--config", conf, "sync")
    with Nginx(tmp_path / "ngx", http_conf(conf, SHOP)) as ngx:
        def metrics():
            return {(s.name, tuple(sorted(s.labels.items()))): s.value
                    for f in text_string_to_metric_families(status(ngx, "?format=prometheus"))
                    for s in f.samples}

        def served():
            return {dict(k[1])["pid"]: v for k, v in metrics().items()
                    if k[0] == "certsync_served_version"}

        t0 = time.time()    # a worker writes its row once it has started
        while sorted(int(p) for p in served()) != ngx.worker_pids():
            assert time.time() - t0 < 2, served()
            time.sleep(0.05)
        m = metrics()
        assert m[("certsync_cert_version", (("name", "shop"),))] == 1
        assert m[("certsync_sync_consecutive_failures", (("name", "shop"),))] == 0
        assert m[("certsync_cert_not_after_seconds", (("name", "shop"),))] == \
            calendar.timegm(time.strptime(store_status(conf)["not_after"], "%Y-%m-%dT%H:%M:%SZ"))
        assert set(served().values()) == {1}
        # the same metrics as `certsync metrics`, plus what each worker serves
        cli = certsync("--config", conf, "metrics").stdout
        assert {k for k in m if k[0] != "certsync_served_version"} == \
            {(s.name, tuple(sorted(s.labels.items())))
             for f in text_string_to_metric_families(cli) for s in f.samples}

        as_json = json.loads(status(ngx, "?format=json"))
        assert cert_of(as_json, "shop")["version"] == 1 and set(as_json) == set(status(ngx))
        code, body = ngx.get("/certsync/status?format=xml")
        assert code == 400, body


def test_file_validation_and_acme_tokens_are_answered_from_the_store(tmp_path):
    conf = write_conf(tmp_path)
    certsync("--config", conf, "sync")
    ch = tmp_path / "store" / "challenges"
    (ch / "shop.test" / "pki-validation").mkdir(parents=True)
    (ch / "shop.test" / "pki-validation" / "fileauth.txt").write_text("2026112800000abc\nshop\n")
    (ch / "shop.test" / "acme-challenge").mkdir()
    (ch / "shop.test" / "acme-challenge" / "tok_EN-1").write_text("tok_EN-1.thumb")
    with Nginx(tmp_path / "ngx", http_conf(conf, SHOP)) as ngx:
        # answered before the server's "return 301" to https
        assert ngx.get("/.well-known/pki-validation/fileauth.txt", host="shop.test") == \
            (200, "2026112800000abc\nshop\n")
        assert ngx.get("/.well-known/acme-challenge/tok_EN-1", host="shop.test") == \
            (200, "tok_EN-1.thumb")
        assert ngx.get("/.well-known/pki-validation/fileauth.txt", host="blog.test")[0] == 404
        assert ngx.get("/.well-known/acme-challenge/nope", host="shop.test")[0] == 404
        # nginx resolves "..": what is left is not a validation path, nothing leaves the store
        assert ngx.get("/.well-known/acme-challenge/..%2f..%2fx", host="shop.test")[0] == 301
        assert ngx.get("/.well-known/acme-challenge/a.b", host="shop.test")[0] == 404
        # a new content is answered at once
        (ch / "shop.test" / "pki-validation" / "fileauth.txt").write_text("second")
        assert ngx.get("/.well-known/pki-validation/fileauth.txt", host="shop.test") == \
            (200, "second")


# ---- under load ----

def test_fifty_swaps_under_wrk_load_fail_no_request(tmp_path):
    wrk = shutil.which("wrk")
    assert wrk, "wrk is missing: run build/install-deps.sh"
    conf = write_conf(tmp_path)
    certsync("--config", conf, "sync")
    chains = [Chain(tmp_path / "pki", names=("shop.test", "www.shop.test"), tag=t) for t in "ab"]
    # every request a full handshake with the certificate of the moment: no resumption
    full = SHOP.replace("certsync_certificate shop;", "certsync_certificate shop; "
                        "ssl_session_tickets off; ssl_session_cache off;")
    with Nginx(tmp_path / "ngx", http_conf(conf, full)) as ngx:
        pids = ngx.worker_pids()
        out = {}

        def load():
            out["r"] = subprocess.run(
                [wrk, "-t2", "-c20", "-d20s", "-H", "Connection: close",
                 f"https://127.0.0.1:{ngx.port('tls')}/"], capture_output=True, text=True)
            out["end"] = time.time()

        # two versions in the store; a swap is the store's own switch of `current` (symlink
        # + rename), so that no certsync process competes with nginx and wrk for the CPUs
        versions = []
        for c in chains:
            r = certsync("--config", conf, "import", "shop", "--cert", c.fullchain, "--key", c.key)
            versions.append(re.search(r"installed (v\d+)", r.stdout).group(1))
        cdir = tmp_path / "store" / "certs" / "shop"
        t = threading.Thread(target=load)
        t.start()
        time.sleep(1.0)
        for i in range(50):
            os.symlink(versions[i % 2], cdir / "current.test")
            os.rename(cdir / "current.test", cdir / "current")
            time.sleep(0.3)
        swapped = time.time()
        t.join()
        r = out["r"]
        assert swapped < out["end"], "the swaps outlasted the load; give wrk more time"
        assert r.returncode == 0, r.stderr
        requests = int(re.search(r"(\d+) requests in", r.stdout).group(1))
        assert requests > 1000, r.stdout
        assert "Non-2xx" not in r.stdout and "Socket errors" not in r.stdout, r.stdout
        assert ngx.worker_pids() == pids
        assert served_sha256(ngx.port("tls"), "shop.test") == chains[1].sha256()
        swaps = len(re.findall(r'"shop" v\d+ is served now', ngx.log()))
        # a worker whose timer comes late may skip a version; most are seen by both
        assert swaps >= 2 * 35, f"only {swaps} swaps were seen by the workers"


# ---- the sync inside nginx ----

def test_in_process_sync_installs_and_serves_new_versions(tmp_path):
    # renew-before a second short of the lifetime: every second brings a version
    conf = write_conf(tmp_path, {"shop": "domain = shop.test www.shop.test\n"
                                         "lifetime = 1d\nrenew-before = 86399s\n"})
    sync = "certsync_sync on; certsync_sync_interval 1s;"
    with Nginx(tmp_path / "ngx", http_conf(conf, SHOP, sync=sync)) as ngx:
        t0 = time.time()
        while store_status(conf).get("version") in (None, 1, 2):
            assert time.time() - t0 < 15, ngx.log()
            time.sleep(0.2)
        # what is served follows the store (it may move on while we look)
        for _ in range(50):
            before = store_sha256(conf)
            if served_sha256(ngx.port("tls"), "shop.test") == before == store_sha256(conf):
                break
            time.sleep(0.1)
        else:
            raise AssertionError("nginx does not serve the version its sync installed")
        st = status(ngx)
        assert sync_of(st)["enabled"] is True and sync_of(st)["failures_in_a_row"] == 0
        assert sync_of(st)["last_success_at"] is not None and sync_of(st)["last_error"] is None
        assert cert_of(st, "shop")["last_sync"] == "installed"
        assert "certsync: the sync installed \"shop\" v" in ngx.log()


def test_a_failing_sync_changes_nothing_served_and_backs_off(tmp_path):
    conf = write_conf(tmp_path, {"shop": "domain = shop.test www.shop.test\n",
                                 "remote": "provider = cas\ndomain = shop.test\n"},
                      extra="[provider cas]\ntype = aliyun-cas\nregion = cn-hangzhou\n"
                            "endpoint = https://127.0.0.1:9\n")
    certsync("--config", conf, "sync", "shop")
    servers = SHOP + """
    server {
        listen 127.0.0.1:{port_tls} ssl;
        server_name remote.test;
        certsync_certificate remote;
    }
"""
    # the one schedule (cs_retry_delay_ms) never waits longer than the interval after a
    # failure: 30 s here, so the first retry comes after 5 s
    sync = "certsync_sync on; certsync_sync_interval 30s;"
    with Nginx(tmp_path / "ngx", http_conf(conf, servers, sync=sync)) as ngx:
        good = store_sha256(conf)
        t0 = time.time()
        while sync_of(status(ngx))["failures_in_a_row"] < 1:
            assert time.time() - t0 < 10, ngx.log()
            time.sleep(0.2)
        st = sync_of(status(ngx))
        assert st["last_failed"] == 1 and "remote" in st["last_error"]
        assert re.search(r"\[error\].*certsync: the sync failed for 1 of 2 certificates "
                         r"\(1 in a row\), next attempt in [45]s", ngx.log()), ngx.log()
        # backoff: 5 s (+-10%) after the first failure, not the 30 s interval
        time.sleep(3)
        assert sync_of(status(ngx))["failures_in_a_row"] == 1
        assert served_sha256(ngx.port("tls"), "shop.test") == good
        assert cert_of(status(ngx), "remote")["last_error"]


def test_the_sync_lock_is_taken_over_when_its_holder_dies(tmp_path):
    """One worker at a time syncs; a worker killed in the middle of it does not leave the
    lock held for ever."""
    hang = socket.socket()          # a provider that accepts and never answers
    hang.bind(("127.0.0.1", 0))
    hang.listen(64)
    cred = tmp_path / "cas.cred"
    cred.write_text("access_key_id = LTAIdeadbeef\naccess_key_secret = not-a-secret\n")
    cred.chmod(0o600)
    conf = write_conf(tmp_path, {"remote": "provider = cas\ndomain = remote.test\n"},
                      extra=f"[provider cas]\ntype = aliyun-cas\nregion = cn-hangzhou\n"
                            f"endpoint = https://127.0.0.1:{hang.getsockname()[1]}\n"
                            f"credentials = {cred}\ntimeout = 4s\nretries = 0\n")
    servers = SHOP.replace("shop.test www.shop.test", "remote.test").replace(
        "certsync_certificate shop;", "certsync_certificate remote;")
    sync = "certsync_sync on; certsync_sync_interval 1s;"
    try:
        with Nginx(tmp_path / "ngx", http_conf(conf, servers, sync=sync)) as ngx:
            t0 = time.time()
            while (holder := sync_of(status(ngx))["pid"]) is None:
                assert time.time() - t0 < 10, ngx.log()
                time.sleep(0.1)
            assert holder in ngx.worker_pids()
            # the other worker waits: one connection to the provider, not two
            time.sleep(1.5)
            hang.settimeout(0.2)
            held = []
            try:
                while True:
                    held.append(hang.accept()[0])
            except socket.timeout:
                pass
            assert len(held) == 1, f"{len(held)} syncs ran at once"
            os.kill(holder, signal.SIGKILL)
            t0 = time.time()
            while f"process {holder} died while it held the sync lock; taking it over" \
                    not in ngx.log():
                assert time.time() - t0 < 15, ngx.log()
                time.sleep(0.2)
            running = sync_of(status(ngx))["pid"]
            assert running != holder and running in ngx.worker_pids()
            assert len(ngx.worker_pids()) == 2 and holder not in ngx.worker_pids()
    finally:
        hang.close()


# ---- end to end with the emulator of the certificate service ----

def cas_conf(tmp_path, emu, certs):
    cred = tmp_path / "cas.cred"
    cred.write_text(f"access_key_id = {KEY_ID}\naccess_key_secret = {SECRET}\n")
    cred.chmod(0o600)
    return write_conf(tmp_path, certs, extra=(
        f"[provider ali]\ntype = aliyun-cas\nendpoint = https://127.0.0.1:{emu.port}\n"
        f"ca-file = {emu.ca}\ntrust-file = {emu.ca}\ncredentials = {cred}\ntimeout = 2s\n"
        "retries = 1\n"))


SITE = """
    server {
        listen 127.0.0.1:{port_tls} ssl reuseport;
        server_name site.test;
        certsync_certificate site;
        location / { return 200 "$pid\\n"; }
    }
"""


def test_apply_is_validated_through_nginx_and_served_without_reload(tmp_path):
    """certsync apply --validate file --wait: the service fetches fileauth.txt from this
    nginx, issues, certsync installs, every worker serves it."""
    conf = tmp_path / "certsync.conf"
    ngx = Nginx(tmp_path / "ngx", http_conf(conf, SITE))
    (tmp_path / "emu").mkdir()
    emu = Emu(tmp_path / "emu", ngx.port("http"))   # validates against nginx's port 80
    try:
        cas_conf(tmp_path, emu, {"site": "provider = ali\ndomain = site.test\n"})
        with ngx:
            pids = (ngx.master_pid, ngx.worker_pids())
            assert cert_of(status(ngx), "site")["fallback"] is True
            r = certsync("--config", conf, "apply", "--domain", "site.test", "--validate", "file",
                         "--wait", "--poll", "1", "--timeout", "60")
            assert "site: installed v1" in r.stdout, r.stdout + r.stderr
            assert 'certsync: answered pki-validation for "site.test"' in ngx.log()
            wait_served(ngx.port("tls"), store_sha256(conf, "site"), sni="site.test")
            assert (ngx.master_pid, ngx.worker_pids()) == pids
    finally:
        emu.stop()


def test_in_process_sync_picks_up_a_renewal_in_the_service(tmp_path):
    (tmp_path / "emu").mkdir()
    emu = Emu(tmp_path / "emu", 9)   # no validation in this test
    try:
        old = emu.ctl("add-cert", domain="shop.test,www.shop.test", days=20)["CertificateId"]
        conf = cas_conf(tmp_path, emu, {"shop": "provider = ali\ndomain = shop.test\n"})
        certsync("--config", conf, "sync")
        sync = "certsync_sync on; certsync_sync_interval 1s;"
        with Nginx(tmp_path / "ngx", http_conf(conf, SHOP, sync=sync)) as ngx:
            pids = ngx.worker_pids()
            assert served_sha256(ngx.port("tls"), "shop.test") == sha2(emu, old)
            new = emu.ctl("renew", cert_id=old)["CertificateId"]
            took, _ = wait_served(ngx.port("tls"), sha2(emu, new), within=5.0)
            assert took < 5.0
            assert ngx.worker_pids() == pids
            st = cert_of(status(ngx), "shop")
            assert st["version"] == 2 and st["last_sync"] in ("installed", "unchanged")
            assert "certsync: the sync installed \"shop\" v2" in ngx.log()
            assert SECRET not in ngx.log()
    finally:
        emu.stop()


def test_the_in_server_sync_reads_certsync_conf_again_on_each_run(tmp_path):
    """A [cert] fixed in certsync.conf takes effect at the next run, without a reload."""
    conf = write_conf(tmp_path, {"remote": "provider = cas\ndomain = remote.test\n"},
                      extra="[provider cas]\ntype = aliyun-cas\nregion = cn-hangzhou\n"
                            "endpoint = https://127.0.0.1:9\n")
    servers = SHOP.replace("shop.test www.shop.test", "remote.test").replace(
        "certsync_certificate shop;", "certsync_certificate remote;")
    sync = "certsync_sync on; certsync_sync_interval 30s;"
    with Nginx(tmp_path / "ngx", http_conf(conf, servers, sync=sync)) as ngx:
        t0 = time.time()
        while sync_of(status(ngx))["failures_in_a_row"] < 1:
            assert time.time() - t0 < 10, ngx.log()
            time.sleep(0.2)
        # the operator switches the name to the local CA: the next run (5 s) issues it
        write_conf(tmp_path, {"remote": "domain = remote.test\n"})
        t0 = time.time()
        while store_status(conf, "remote").get("version") is None:
            assert time.time() - t0 < 15, ngx.log()
            time.sleep(0.2)
        wait_served(ngx.port("tls"), store_sha256(conf, "remote"), sni="remote.test")
        assert sync_of(status(ngx))["failures_in_a_row"] == 0
