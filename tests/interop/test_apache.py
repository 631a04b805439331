"""mod_certsync in Debian's real Apache httpd (event MPM, 2 processes x 8 threads, mod_ssl):
what it serves, how a new version reaches every process with no restart, what it refuses,
what it does before a first certificate exists, and the plain mod_ssl route for servers
that load no module."""
import json
import os
import re
import shutil
import subprocess
import threading
import time

import pytest

from apache import (Apache, available, cleanup, free_port, module_path, request,
                    served_chain_count, served_sha256, served_subject, wait_until, workdir)
from conftest import Chain, certsync

pytestmark = [
    pytest.mark.skipif(not available(), reason="needs Debian's apache2 (apache-module/deps.txt)"),
    pytest.mark.skipif(not module_path().exists(),
                       reason=f"{module_path()} is not built (make modules)"),
]

NAMES = ("shop.example.com", "www.shop.example.com")


def give_to_store(path):
    """What a test writes into the store by hand, as the store's writer (root) would:
    root-owned, readable by the workers' group."""
    subprocess.run(["chown", "-R", "root:www-data", path], check=True)
    subprocess.run(["chmod", "-R", "u=rwX,g=rX,o=", path], check=True)


class Setup:
    """A world-traversable temp root with a certsync.conf whose store root writes and the
    workers read through their group ([store] group = www-data); with owner, a store of
    that user (the server's own sync writes it)."""

    def __init__(self, root, extra="", owner=None):
        self.root = root
        self.store = root / "store"
        self.conf = root / "certsync.conf"
        self.conf.write_text(f"""[store]
path = {self.store}
{f"owner = {owner}" if owner else "group = www-data"}

[cert shop]
domain = {' '.join(NAMES)}
{extra}""")
        self.pki = root / "pki"

    def certsync(self, *args, check=True):
        return certsync("--config", self.conf, *args, check=check)

    def status(self, name="shop"):
        entries = json.loads(self.certsync("status", "--json").stdout)
        return next(e for e in entries if e["name"] == name)

    def chain(self, tag):
        return Chain(self.pki, names=NAMES, tag=tag)

    def import_chain(self, ch, name="shop"):
        self.certsync("import", name, "--cert", ch.fullchain, "--key", ch.key)


@pytest.fixture
def setup():
    root = workdir()
    yield Setup(root)
    cleanup(root)


def managed_vhost(port, name="shop", extra=""):
    return f"""
Listen 127.0.0.1:{port} https
<VirtualHost 127.0.0.1:{port}>
    ServerName shop.example.com
    ServerAlias www.shop.example.com
    SSLEngine on
    CertSyncCertificate {name}
{extra}
</VirtualHost>
"""


def served_by_all(port, fingerprint, probes=16):
    """Every one of `probes` fresh handshakes (spread over both children) gets fingerprint."""
    return all(served_sha256(port) == fingerprint for _ in range(probes))


def test_served_certificate_is_the_store_current_with_its_chain(setup):
    a = setup.chain("a")
    setup.import_chain(a)
    port = free_port()
    with Apache(setup.root, managed_vhost(port), preamble=f"CertSyncConfig {setup.conf}") as ap:
        fp = setup.status()["fingerprint_sha256"]
        assert fp == a.sha256()
        assert served_by_all(port, fp)
        assert served_chain_count(port) == 2  # leaf + intermediate: SSL_set1_chain
        assert request(port, "/index.html")[0] == 200
        assert "SSLCertificateFile" not in ap.conf.read_text()


def test_new_version_is_served_within_2s_by_every_process_without_restart(setup):
    setup.import_chain(setup.chain("a"))
    b = setup.chain("b")
    port = free_port()
    with Apache(setup.root, managed_vhost(port), preamble=f"CertSyncConfig {setup.conf}") as ap:
        parent, children, generation = ap.pid(), ap.child_pids(), ap.generation()
        assert len(children) == 2
        setup.import_chain(b)
        fp = setup.status()["fingerprint_sha256"]
        assert fp == b.sha256()
        _, waited = wait_until(lambda: served_sha256(port) == fp, 2.0)
        assert waited < 2.0, f"v2 not served after 2 s\n{ap.log()}"
        assert served_by_all(port, fp, probes=24)
        # the same processes, the same configuration generation, no restart in the log
        assert (ap.pid(), ap.child_pids(), ap.generation()) == (parent, children, generation)
        assert ap.restarts_in_log() == []
        # each child parsed the new version itself, once
        swaps = re.findall(r"'shop': now serving v2 .* in process (\d+)", ap.log())
        assert sorted(int(p) for p in swaps) == children


def test_broken_version_switched_in_by_hand_is_not_served(setup):
    a, b = setup.chain("a"), setup.chain("b")
    setup.import_chain(a)
    port = free_port()
    with Apache(setup.root, managed_vhost(port), preamble=f"CertSyncConfig {setup.conf}") as ap:
        assert served_sha256(port) == a.sha256()
        # v9: b's certificate with a's key, made by hand; `current` moved onto it by hand
        cdir = setup.store / "certs" / "shop"
        bad = cdir / "v9"
        shutil.copytree(cdir / "current", bad, symlinks=False)
        shutil.copy(b.fullchain, bad / "fullchain.pem")
        shutil.copy(a.key, bad / "privkey.pem")
        give_to_store(bad)
        tmp = cdir / "current.tmp-hand"
        os.symlink("v9", tmp)
        os.rename(tmp, cdir / "current")

        def refused():
            c = ap.certsync_status()["certificates"][0]
            return c if c["server"]["refused"] else None
        cert, _ = wait_until(refused, 3.0)
        assert cert, f"the module did not look at v9\n{ap.log()}"
        assert cert["server"]["refused"]["version"] == 9
        assert cert["server"]["state"] == "new-version-refused"
        assert cert["server"]["served"]["fingerprint_sha256"] == a.sha256()
        assert cert["version"] == 9  # what the store says is current
        time.sleep(1.2)  # past the once-a-second check of both children
        assert served_by_all(port, a.sha256())
        assert "not serving the new current version v9" in ap.log()
        assert request(port, "/index.html")[0] == 200

        # v10: a pair that loads (its key matches) but expired last year: not served either
        old = Chain(setup.pki, names=NAMES, tag="expired", start="20240101000000Z",
                    end="20250101000000Z")
        expired = cdir / "v10"
        shutil.copytree(bad, expired)
        shutil.copy(old.fullchain, expired / "fullchain.pem")
        shutil.copy(old.key, expired / "privkey.pem")
        give_to_store(expired)
        os.symlink("v10", tmp)
        os.rename(tmp, cdir / "current")
        cert, _ = wait_until(lambda: (lambda c: c if (c["server"]["refused"] or {}).get("version") == 10
                                      else None)(ap.certsync_status()["certificates"][0]), 3.0)
        assert cert, ap.log()
        time.sleep(1.2)
        assert served_by_all(port, a.sha256())
        assert "not serving the new current version v10" in ap.log()


def test_no_version_yet_serves_a_fallback_with_503_then_the_first_one_without_restart(setup):
    port = free_port()
    with Apache(setup.root, managed_vhost(port), preamble=f"CertSyncConfig {setup.conf}") as ap:
        assert "certsync fallback for shop" in served_subject(port)
        status, body, headers = request(port, "/index.html")
        assert status == 503
        assert headers.get("Retry-After") == "60"
        assert "'shop' has no usable version" in ap.log()
        assert "503" in ap.log() and "no current version" in ap.log()
        c = ap.certsync_status()["certificates"][0]
        assert c["state"] == c["server"]["state"] == "fallback" and c["fallback"]
        assert "no current version" in c["server"]["fallback_reason"]

        parent, generation = ap.pid(), ap.generation()
        a = setup.chain("a")
        setup.import_chain(a)
        assert wait_until(lambda: served_sha256(port) == a.sha256(), 2.0)[0], ap.log()
        assert wait_until(lambda: served_by_all(port, a.sha256()), 2.0)[0]
        assert request(port, "/index.html")[0] == 200
        assert (ap.pid(), ap.generation()) == (parent, generation)


def test_undeclared_name_fails_configtest_naming_file_and_line(setup):
    port = free_port()
    ap = Apache(setup.root, managed_vhost(port, name="nope"),
                preamble=f"CertSyncConfig {setup.conf}")
    r = ap.configtest()
    line = ap.line_of("CertSyncCertificate nope")
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert f"{ap.conf}:{line}: CertSyncCertificate nope" in out, out
    assert "no [cert nope] section" in out and "declares: shop" in out
    assert "Syntax OK" not in out

    good = Apache(setup.root, managed_vhost(port), preamble=f"CertSyncConfig {setup.conf}")
    r = good.configtest()
    assert r.returncode == 0 and "Syntax OK" in r.stdout + r.stderr


def hand_made_current(setup, version, chain, key):
    """A version made by hand from chain's certificates and key, and `current` moved onto it
    (the store itself never lets such a version become current)."""
    cdir = setup.store / "certs" / "shop"
    v = cdir / f"v{version}"
    shutil.copytree(cdir / "current", v, symlinks=False)
    shutil.copy(chain.fullchain, v / "fullchain.pem")
    shutil.copy(key, v / "privkey.pem")
    give_to_store(v)
    os.symlink(f"v{version}", cdir / "current.tmp-hand")
    os.rename(cdir / "current.tmp-hand", cdir / "current")


def test_a_current_version_that_fails_its_checks_fails_configtest_with_file_and_line(setup):
    """The one policy: a version whose key, chain or names fail is never served, and the
    configuration test says which CertSyncCertificate names it (nginx -t does the same)."""
    port = free_port()
    a, b = setup.chain("a"), setup.chain("b")
    setup.import_chain(a)
    hand_made_current(setup, 9, b, a.key)
    ap = Apache(setup.root, managed_vhost(port), preamble=f"CertSyncConfig {setup.conf}")
    r = ap.configtest()
    out = r.stdout + r.stderr
    line = ap.line_of("CertSyncCertificate shop")
    assert r.returncode != 0 and "Syntax OK" not in out
    assert f"{ap.conf}:{line}: CertSyncCertificate shop: the current version cannot be " \
        "served" in out, out
    assert "does not match" in out and "certsync rollback shop" in out


def test_an_expired_but_good_current_version_is_served_with_a_warning(setup):
    port = free_port()
    # valid for a few seconds: installed while valid, expired when Apache starts (its CAs
    # are valid all along, so only time is wrong with it)
    utc = lambda t: time.strftime("%Y%m%d%H%M%SZ", time.gmtime(t))
    old = Chain(setup.pki, names=NAMES, tag="short", start=utc(time.time() - 60),
                end=utc(time.time() + 3))
    setup.import_chain(old)
    time.sleep(4)
    with Apache(setup.root, managed_vhost(port), preamble=f"CertSyncConfig {setup.conf}") as ap:
        assert served_sha256(port) == old.sha256()
        assert re.search(r"warn.*'shop': v1 of 'shop' expired; it is served until a valid "
                         r"version is installed", ap.log()), ap.log()
        assert request(port, "/index.html")[0] == 200


def test_bad_directive_values_are_refused_with_the_directive_named(setup):
    port = free_port()
    for preamble, expected in ((f"CertSyncConfig {setup.conf}\nCertSyncSyncInterval 5x",
                                "CertSyncSyncInterval: '5x' is not a duration"),
                               (f"CertSyncConfig {setup.root}/missing.conf",
                                f"{setup.root}/missing.conf")):
        r = Apache(setup.root, managed_vhost(port), preamble=preamble).configtest()
        assert r.returncode != 0 and expected in r.stdout + r.stderr, r.stderr
    r = Apache(setup.root, managed_vhost(port, name="a/b"),
               preamble=f"CertSyncConfig {setup.conf}").configtest()
    assert r.returncode != 0 and "'a/b' is not a certificate name" in r.stderr


def test_status_handler_json_and_html(setup):
    a = setup.chain("a")
    setup.import_chain(a)
    port = free_port()
    with Apache(setup.root, managed_vhost(port), preamble=f"CertSyncConfig {setup.conf}") as ap:
        st = ap.certsync_status()
        assert st["server"]["module"].startswith("mod_certsync/")
        assert st["store"] == str(setup.store) and st["config"] == str(setup.conf)
        (c,) = st["certificates"]
        assert c["name"] == "shop" and c["state"] == "ok" and c["server"]["state"] == "ok"
        assert c["server"]["served"]["fingerprint_sha256"] == a.sha256() == c["fingerprint_sha256"]
        assert c["server"]["served"]["version"] == c["version"] == 1
        assert c["last_sync"] == "never"
        assert c["server"]["include"]["SSLCertificateFile"].endswith(
            "/certs/shop/current/fullchain.pem")
        # one schema: the CLI's document, plus this server's fields under "server"
        (cli,) = json.loads(setup.certsync("status", "--json").stdout)
        assert set(c) - {"server"} == set(cli)
        assert {k: c[k] for k in cli if k != "days_left"} == \
            {k: v for k, v in cli.items() if k != "days_left"}
        html = ap.certsync_status("html")
        assert "<span>shop</span>" in html and a.sha256() in html and "<b>v1</b>" in html


def test_status_handler_prometheus_metrics_and_an_unknown_format(setup):
    from prometheus_client.parser import text_string_to_metric_families
    setup.import_chain(setup.chain("a"))
    port = free_port()
    with Apache(setup.root, managed_vhost(port), preamble=f"CertSyncConfig {setup.conf}") as ap:
        text = ap.certsync_status("prometheus")
        m = {(s.name, tuple(sorted(s.labels.items()))): s.value
             for f in text_string_to_metric_families(text) for s in f.samples}
        assert m[("certsync_cert_version", (("name", "shop"),))] == 1
        assert m[("certsync_sync_last_success_seconds", (("name", "shop"),))] == 0  # never synced
        assert m[("certsync_sync_consecutive_failures", (("name", "shop"),))] == 0
        (pid,) = [dict(k[1])["pid"] for k in m if k[0] == "certsync_served_version"]
        assert m[("certsync_served_version", (("name", "shop"), ("pid", pid)))] == 1
        # the same metrics as `certsync metrics`, plus what the answering process serves
        cli = setup.certsync("metrics").stdout
        assert {k for k in m if k[0] != "certsync_served_version"} == \
            {(s.name, tuple(sorted(s.labels.items())))
             for f in text_string_to_metric_families(cli) for s in f.samples}
        assert json.loads(ap.certsync_status("json"))["certificates"][0]["version"] == 1
        status, body, _ = request(ap.status_port, "/certsync-status?format=xml", host="status.test",
                                  https=False)
        assert status == 400, body


def test_file_validation_and_acme_challenge_answered_from_the_store(setup):
    setup.import_chain(setup.chain("a"))
    content = "2026112800000012345abcdef\ncertsync-test\n"
    challenges = setup.store / "challenges"
    pki = challenges / "shop.example.com" / "pki-validation"
    acme = challenges / "shop.example.com" / "acme-challenge"
    pki.mkdir(parents=True)
    acme.mkdir(parents=True)
    (pki / "fileauth.txt").write_text(content)
    (acme / "tok_EN-1").write_text("tok_EN-1.thumbprint")
    long_host = ".".join(["a" * 63, "b" * 63, "c" * 63, "example0"])  # 200 characters
    assert len(long_host) == 200
    (challenges / long_host / "pki-validation").mkdir(parents=True)
    (challenges / long_host / "pki-validation" / "fileauth.txt").write_text("long\n")
    give_to_store(challenges)
    http_port, https_port = free_port(), free_port()
    body = managed_vhost(https_port) + f"""
Listen 127.0.0.1:{http_port}
<VirtualHost 127.0.0.1:{http_port}>
    ServerName shop.example.com
</VirtualHost>
"""
    with Apache(setup.root, body, preamble=f"CertSyncConfig {setup.conf}") as ap:
        path = "/.well-known/pki-validation/fileauth.txt"
        status, text, headers = request(http_port, path, https=False)
        assert (status, text) == (200, content)
        assert headers["Content-Type"].startswith("text/plain")
        assert request(https_port, path)[:2] == (200, content)
        assert request(http_port, "/.well-known/acme-challenge/tok_EN-1", https=False)[:2] == \
            (200, "tok_EN-1.thumbprint")
        # another host, an unknown token, a path trick: not answered from the store
        assert request(http_port, path, host="other.example.com", https=False)[0] == 404
        assert request(http_port, "/.well-known/acme-challenge/nope", https=False)[0] == 404
        assert request(http_port, "/.well-known/acme-challenge/..%2fpki-validation%2ffileauth.txt",
                       https=False)[0] in (400, 404)
        assert "answering /.well-known/pki-validation/fileauth.txt" in ap.log()
        # HEAD: the same headers, no body
        status, text, headers = request(http_port, path, https=False, method="HEAD")
        assert (status, text) == (200, "") and headers["Content-Length"] == str(len(content))
        # the writer's host rule: a 200-character host name is answered
        assert request(http_port, path, host=long_host.upper(), https=False)[:2] == (200, "long\n")
        # validation is on here: a token the store does not hold is 404, even if a webroot has it
        webroot = ap.root / "htdocs" / ".well-known" / "acme-challenge"
        webroot.mkdir(parents=True)
        (webroot / "webroot-tok").write_text("from the webroot\n")
        assert request(http_port, "/.well-known/acme-challenge/webroot-tok", https=False)[0] == 404
        assert request(http_port, "/.well-known/acme-challenge/webroot-tok", https=False,
                       method="HEAD")[0] == 404
        assert "404: no acme-challenge answer for shop.example.com" in ap.log()


def test_validation_off_leaves_the_path_to_others(setup):
    setup.import_chain(setup.chain("a"))
    pki = setup.store / "challenges" / "shop.example.com" / "pki-validation"
    pki.mkdir(parents=True)
    (pki / "fileauth.txt").write_text("x\n")
    give_to_store(setup.store / "challenges")
    http_port = free_port()
    body = f"""
Listen 127.0.0.1:{http_port}
<VirtualHost 127.0.0.1:{http_port}>
    ServerName shop.example.com
    CertSyncValidation off
</VirtualHost>
"""
    with Apache(setup.root, body, preamble=f"CertSyncConfig {setup.conf}") as ap:
        assert request(http_port, "/.well-known/pki-validation/fileauth.txt", https=False)[0] == 404
        # off: the path is the webroot's
        webroot = ap.root / "htdocs" / ".well-known" / "acme-challenge"
        webroot.mkdir(parents=True)
        (webroot / "webroot-tok").write_text("from the webroot\n")
        assert request(http_port, "/.well-known/acme-challenge/webroot-tok", https=False)[:2] == \
            (200, "from the webroot\n")


def test_plain_mod_ssl_vhost_on_the_stable_paths_with_an_on_change_graceful():
    """A server that loads no module: it includes the snippet the store generates
    (SSLCertificateFile on `current`), and certsync's on-change runs `apache2 -k graceful`
    after each change of current."""
    root = workdir()
    try:
        store, conf = root / "store", root / "certsync.conf"
        reload = root / "reload.sh"
        reload.write_text(f"#!/bin/sh\nexec /usr/sbin/apache2 -d {root} -f {root}/httpd.conf "
                          f"-k graceful\n")
        reload.chmod(0o755)
        conf.write_text(f"""[store]
path = {store}
group = www-data

[cert plain]
domain = {' '.join(NAMES)}
""")
        pki = root / "pki"
        a, b = Chain(pki, names=NAMES, tag="a"), Chain(pki, names=NAMES, tag="b")
        certsync("--config", conf, "import", "plain", "--cert", a.fullchain, "--key", a.key)
        # the server runs from here on: each change of current reloads it
        conf.write_text(conf.read_text() + f"on-change = {reload}\n")
        current = store / "certs" / "plain" / "current"
        port = free_port()
        body = f"""
Listen 127.0.0.1:{port} https
<VirtualHost 127.0.0.1:{port}>
    ServerName shop.example.com
    SSLEngine on
    Include {store}/certs/plain/apache.conf
</VirtualHost>
"""
        assert f"SSLCertificateFile {current}/fullchain.pem" in \
            (store / "certs" / "plain" / "apache.conf").read_text()
        with Apache(root, body, load_certsync=False) as ap:
            assert served_sha256(port) == a.sha256()
            generation = ap.generation()
            certsync("--config", conf, "import", "plain", "--cert", b.fullchain, "--key", b.key)
            assert wait_until(lambda: served_sha256(port) == b.sha256(), 10)[0], ap.log()
            # that one is a restart, by design
            assert wait_until(lambda: (ap.generation() or 0) > generation, 5)[0]
    finally:
        cleanup(root)


def wrk(url, seconds, connections=16):
    return subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
                           "-H", "Connection: close", url],
                          capture_output=True, text=True, timeout=seconds + 60)


def wrk_failures(out):
    """(requests, failed) from wrk's report: socket errors and non-2xx/3xx answers."""
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    failed = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        failed += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        failed += int(m.group(1))
    return reqs, failed


@pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk")
def test_fifty_swaps_under_load_fail_no_request(setup):
    a, b = setup.chain("a"), setup.chain("b")
    setup.import_chain(a)
    port = free_port()
    with Apache(setup.root, managed_vhost(port), preamble=f"CertSyncConfig {setup.conf}",
                log_level="notice") as ap:
        parent, children = ap.pid(), ap.child_pids()
        result = {}
        load = threading.Thread(target=lambda: result.update(
            r=wrk(f"https://127.0.0.1:{port}/index.html", 12)))
        load.start()
        time.sleep(1)
        for i in range(50):
            setup.import_chain(b if i % 2 == 0 else a)
            time.sleep(0.1)
        load.join()
        out = result["r"].stdout
        reqs, failed = wrk_failures(out)
        assert reqs > 500, out
        assert failed == 0, out
        last = a.sha256()  # the 50th import (i = 49) was a
        assert setup.status()["fingerprint_sha256"] == last
        assert wait_until(lambda: served_by_all(port, last), 2.0)[0]
        assert (ap.pid(), ap.child_pids()) == (parent, children)
        assert ap.restarts_in_log() == []
        assert len(re.findall(r"now serving v51 ", ap.log())) == 2


def test_sync_in_the_server_installs_the_first_version_and_shows_failures(setup):
    """CertSyncSync on: mod_watchdog's one thread syncs; the local CA issues 'shop'; a
    certificate whose provider fails is retried with backoff and shown in status. The sync
    runs in a child, as www-data: the store is www-data's ([store] owner)."""
    setup.conf.write_text(setup.conf.read_text().replace("group = www-data", "owner = www-data")
                          + """
[provider cloud]
type = aliyun-cas
credentials = default
retries = 0
timeout = 2s

[cert broken]
provider = cloud
domain = broken.example.com
""")
    port, port2 = free_port(), free_port()
    preamble = f"CertSyncConfig {setup.conf}\nCertSyncSync on\nCertSyncSyncInterval 3s"
    body = managed_vhost(port) + managed_vhost(port2, name="broken")
    with Apache(setup.root, body, preamble=preamble) as ap:
        parent, generation = ap.pid(), ap.generation()

        def installed():
            try:
                return setup.status()["fingerprint_sha256"]
            except (AssertionError, StopIteration, KeyError, json.JSONDecodeError):
                return None
        fp, _ = wait_until(installed, 20, interval=0.2)
        assert fp, ap.log()
        assert wait_until(lambda: served_by_all(port, fp), 3)[0], ap.log()
        # 16 handshakes need not reach every thread's child: one still on the fallback
        # answers 503 until its next look at the store (at most the watch interval)
        assert wait_until(lambda: all(request(port, "/index.html")[0] == 200
                                      for _ in range(8)), 3)[0], ap.log()
        assert (ap.pid(), ap.generation()) == (parent, generation)

        st, _ = wait_until(lambda: (lambda s: s if s["server"]["sync"]["failures_in_a_row"] >= 2 else None)(
            ap.certsync_status()), 25, interval=0.5)
        assert st, ap.log()
        sync = st["server"]["sync"]
        assert sync["enabled"] and sync["runs"] >= 2 and sync["next_run"]
        broken = next(c for c in st["certificates"] if c["name"] == "broken")
        assert broken["server"]["sync"]["result"] == "failed" and broken["server"]["sync"]["reason"]
        assert broken["server"]["state"] == broken["state"] == "fallback"
        assert "certsync: sync failed for 1 of 2 certificate(s)" in ap.log()
        assert request(port2, "/index.html", host="broken.example.com")[0] == 503
        shop = next(c for c in st["certificates"] if c["name"] == "shop")
        assert shop["server"]["served"]["fingerprint_sha256"] == fp


def test_graceful_on_change_restarts_the_server_by_itself(setup):
    """CertSyncGracefulOnChange on: the parent restarts gracefully after a change (for
    servers whose SSL module cannot hand over its SSL_CTX)."""
    setup.import_chain(setup.chain("a"))
    b = setup.chain("b")
    port = free_port()
    preamble = f"CertSyncConfig {setup.conf}\nCertSyncGracefulOnChange on"
    with Apache(setup.root, managed_vhost(port), preamble=preamble) as ap:
        generation = ap.generation()
        setup.import_chain(b)
        # the MPM runs the parent's monitor hook every 10 s
        assert wait_until(lambda: (ap.generation() or 0) > generation, 15, interval=0.2)[0], \
            ap.log()
        assert "restarting gracefully (CertSyncGracefulOnChange on)" in ap.log()
        assert served_by_all(port, b.sha256())


def test_a_store_the_workers_cannot_read_is_reported(setup):
    setup.conf.write_text(setup.conf.read_text().replace("group = www-data\n", ""))
    setup.import_chain(setup.chain("a"))
    port = free_port()
    with Apache(setup.root, managed_vhost(port), preamble=f"CertSyncConfig {setup.conf}") as ap:
        assert wait_until(lambda: "cannot read" in ap.log(), 3)[0], ap.log()
        assert "[store] group" in ap.log()


class EmulatedService:
    """The cas emulator (tests/emulator) validating FILE requests against http_port, and
    certsync.conf's [provider ali] + [cert site] pointing at it."""

    def __init__(self, setup, http_port):
        from test_aliyun import KEY_ID, SECRET, Emu
        self.secret = SECRET
        d = setup.root / "emulator"
        d.mkdir()
        self.emu = Emu(d, http_port)
        cred = setup.root / "cas.cred"
        cred.write_text(f"access_key_id = {KEY_ID}\naccess_key_secret = {SECRET}\n")
        cred.chmod(0o600)
        setup.conf.write_text(setup.conf.read_text() + f"""
[provider ali]
type = aliyun-cas
endpoint = https://127.0.0.1:{self.emu.port}
ca-file = {self.emu.ca}
trust-file = {self.emu.ca}
credentials = {cred}
timeout = 2s

[cert site]
provider = ali
domain = site.test
""")

    def stop(self):
        self.emu.stop()


def site_vhosts(http_port, https_port):
    return f"""
Listen 127.0.0.1:{https_port} https
<VirtualHost 127.0.0.1:{https_port}>
    ServerName site.test
    SSLEngine on
    CertSyncCertificate site
</VirtualHost>
Listen 127.0.0.1:{http_port}
<VirtualHost 127.0.0.1:{http_port}>
    ServerName site.test
</VirtualHost>
"""


def test_certsync_apply_leaves_the_challenge_readable_by_the_workers(setup):
    http_port, https_port = free_port(), free_port()
    svc = EmulatedService(setup, http_port)
    try:
        with Apache(setup.root, site_vhosts(http_port, https_port),
                    preamble=f"CertSyncConfig {setup.conf}"):
            setup.certsync("apply", "--domain", "site.test", "--validate", "file")
            assert request(http_port, "/.well-known/pki-validation/fileauth.txt",
                           host="site.test", https=False)[0] == 200
    finally:
        svc.stop()


def test_file_validation_end_to_end_with_the_service_emulator(setup):
    """`certsync apply --validate file`: the emulated service fetches fileauth.txt from this
    Apache, which answers it from the store; the issued certificate is then served with no
    restart, where a self-signed fallback and 503s were before."""
    http_port, https_port = free_port(), free_port()
    svc = EmulatedService(setup, http_port)
    try:
        with Apache(setup.root, site_vhosts(http_port, https_port),
                    preamble=f"CertSyncConfig {setup.conf}") as ap:
            assert request(https_port, "/index.html", host="site.test")[0] == 503
            r = setup.certsync("apply", "--domain", "site.test", "--validate", "file")
            order = re.search(r"order (\d+)", r.stdout).group(1)
            r = setup.certsync("apply", "--domain", "site.test", "--order", order, "--wait",
                               "--poll", "1", "--timeout", "30")
            assert "site: installed v1" in r.stdout, r.stdout + r.stderr
            assert "answering /.well-known/pki-validation/fileauth.txt for site.test" in ap.log()
            fp = setup.status("site")["fingerprint_sha256"]
            assert wait_until(lambda: served_sha256(https_port, "site.test") == fp, 2.0)[0], \
                ap.log()
            assert request(https_port, "/index.html", host="site.test")[0] == 200
            assert svc.secret not in ap.log()
    finally:
        svc.stop()


def s_client_sha256(port, *args):
    """SHA-256 of the certificate `openssl s_client ARGS` is served, or None."""
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername",
                        "shop.example.com", *args], input="", capture_output=True, text=True,
                       timeout=20)
    if "-----BEGIN CERTIFICATE-----" not in r.stdout:
        return None
    pem = r.stdout[r.stdout.find("-----BEGIN CERTIFICATE-----"):]
    out = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256"], input=pem,
                         capture_output=True, text=True, check=True).stdout
    return out.strip().split("=", 1)[1].replace(":", "").lower()


RSA_ONLY = ("-sigalgs", "RSA-PSS+SHA256:RSA+SHA256")
EC_ONLY = ("-sigalgs", "ECDSA+SHA256")


def test_an_rsa_and_an_ecdsa_certificate_per_vhost_each_to_its_clients_both_swapped():
    root = workdir()
    try:
        s = Setup(root)
        s.conf.write_text(f"""[store]
path = {s.store}
group = www-data

[cert shop-rsa]
domain = {' '.join(NAMES)}
key-type = rsa2048

[cert shop-ec]
domain = {' '.join(NAMES)}
key-type = ec256
""")
        s.certsync("sync")
        port = free_port()
        vhost = managed_vhost(port, name="shop-rsa", extra="    CertSyncCertificate shop-ec")
        with Apache(root, vhost, preamble=f"CertSyncConfig {s.conf}") as ap:
            parent, children = ap.pid(), ap.child_pids()
            for _ in range(3):
                rsa, ec = s.status("shop-rsa")["fingerprint_sha256"], \
                    s.status("shop-ec")["fingerprint_sha256"]
                ok, _ = wait_until(lambda: s_client_sha256(port, *RSA_ONLY) == rsa and
                                   s_client_sha256(port, *EC_ONLY) == ec, 5.0)
                assert ok, ap.log()
                for _ in range(4):  # both children
                    assert s_client_sha256(port, *RSA_ONLY) == rsa
                    assert s_client_sha256(port, *EC_ONLY) == ec
                    assert s_client_sha256(port, "-tls1_2", "-cipher",
                                           "ECDHE-RSA-AES128-GCM-SHA256") == rsa
                    assert s_client_sha256(port, "-tls1_2", "-cipher",
                                           "ECDHE-ECDSA-AES128-GCM-SHA256") == ec
                s.certsync("sync", "--force")  # a new version of each
            assert (ap.pid(), ap.child_pids()) == (parent, children)
            assert ap.restarts_in_log() == []
    finally:
        cleanup(root)


def test_two_certificates_of_one_key_type_or_three_fail_configtest_with_the_line(setup):
    setup.conf.write_text(setup.conf.read_text() + "\n[cert other]\ndomain = other.test\n")
    port = free_port()
    ap = Apache(setup.root, managed_vhost(port, extra="    CertSyncCertificate other"),
                preamble=f"CertSyncConfig {setup.conf}")
    r = ap.configtest()
    assert r.returncode != 0
    line = ap.line_of("CertSyncCertificate other")
    assert f":{line}: CertSyncCertificate other: 'shop' " in r.stderr, r.stderr
    assert "one RSA and one ECDSA" in r.stderr
    ap = Apache(setup.root, managed_vhost(port, extra="    CertSyncCertificate other\n"
                                                      "    CertSyncCertificate third"),
                preamble=f"CertSyncConfig {setup.conf}")
    r = ap.configtest()
    assert r.returncode != 0 and "two at most" in r.stderr, r.stderr
