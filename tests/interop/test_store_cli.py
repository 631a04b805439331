"""The store through the CLI: import, sync, status, rollback, and bad inputs that must
change nothing."""
import calendar
import json
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path

import pytest

from conftest import CERTSYNC, Chain, certsync, keytool, run
from test_aliyun import cas, emu, emu_module, sha2, webroot  # noqa: F401 (fixtures)


def status(conf, name=None):
    args = ["--config", conf, "status", "--json"] + ([name] if name else [])
    return {s["name"]: s for s in json.loads(certsync(*args).stdout)}


def snapshot(store, name):
    """What a server would see: the current target and every version's files."""
    d = Path(store) / "certs" / name
    if not d.exists():
        return None
    cur = os.readlink(d / "current") if (d / "current").is_symlink() else None
    files = sorted(str(p.relative_to(d)) for p in d.rglob("*")
                   if p.name not in ("state.json", ".lock"))
    return cur, files


def served_fingerprint(store, name):
    cert = Path(store) / "certs" / name / "current" / "cert.pem"
    out = run("openssl", "x509", "-in", cert, "-noout", "-fingerprint", "-sha256").stdout
    return out.strip().split("=", 1)[1].replace(":", "").lower()


def test_the_local_ca_issues_rotates_and_rolls_back(conf):
    path, store = conf
    r = certsync("--config", path, "sync")
    assert "shop: installed v1 (no version yet)" in r.stdout
    assert "demo: installed v1 (no version yet)" in r.stdout
    st = status(path)
    assert st["shop"]["version"] == 1
    assert st["shop"]["names"] == ["shop.example.com", "www.shop.example.com"]
    assert 88 <= st["shop"]["days_left"] <= 90
    assert st["shop"]["last_sync"] == "installed"
    assert st["shop"]["fingerprint_sha256"] == served_fingerprint(store, "shop")
    v1 = st["shop"]["fingerprint_sha256"]

    # the issued chain verifies against the local CA's root with openssl
    cur = store / "certs" / "shop" / "current"
    run("openssl", "verify", "-CAfile", store / "local-ca" / "root.pem", "-untrusted",
        cur / "chain.pem", "-verify_hostname", "www.shop.example.com", cur / "cert.pem")
    # what servers serve: their group reads it; the PFX, JKS and passwords stay private
    for f in ["privkey.pem", "shop.key"]:
        assert stat.S_IMODE((cur / f).stat().st_mode) == 0o640, f
    for f in ["shop.pfx", "pfx-password.txt", "shop.jks", "jks-password.txt"]:
        assert stat.S_IMODE((cur / f).stat().st_mode) == 0o600, f
    assert stat.S_IMODE((store / "local-ca" / "root.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((store / "local-ca").stat().st_mode) == 0o700
    assert stat.S_IMODE((store / "certs" / "shop").stat().st_mode) == 0o750
    listing = run(keytool(), "-list", "-v", "-keystore", cur / "shop.jks", "-storetype", "JKS",
                  "-storepass:file", cur / "jks-password.txt").stdout
    assert "Entry type: PrivateKeyEntry" in listing and "Certificate chain length: 2" in listing
    meta = json.loads((cur / "meta.json").read_text())
    assert meta["fingerprint_sha256"] == v1 and meta["provider"] == "local-ca"
    # include snippets for servers without a module, on the stable paths
    d = store / "certs" / "shop"
    assert f"ssl_certificate {d}/current/fullchain.pem;" in (d / "nginx.conf").read_text()
    assert f"SSLCertificateKeyFile {d}/current/privkey.pem" in (d / "apache.conf").read_text()

    r = certsync("--config", path, "sync")
    assert "shop: unchanged (v1 is good for" in r.stdout
    r = certsync("--config", path, "sync", "shop", "--force")
    assert "shop: installed v2 (forced" in r.stdout and "demo" not in r.stdout
    v2 = served_fingerprint(store, "shop")
    assert v2 != v1
    assert status(path, "shop")["shop"]["version"] == 2

    r = certsync("--config", path, "rollback", "shop")
    assert "shop: current is now v1 (was v2)" in r.stdout
    assert served_fingerprint(store, "shop") == v1
    text = certsync("--config", path, "status").stdout
    assert "shop\n  current      v1" in text and "last sync    installed" in text


def test_retention_keeps_three_versions(conf):
    path, store = conf
    for _ in range(5):
        certsync("--config", path, "sync", "demo", "--force")
    entries = sorted(p.name for p in (store / "certs" / "demo").iterdir() if p.name.startswith("v"))
    assert [e for e in entries if "." not in e] == ["v3", "v4", "v5"]
    # each kept version's OCSP staple (the local CA's) and its state go with it
    assert [e for e in entries if "." in e] == [f"v{n}.{k}" for n in (3, 4, 5)
                                                for k in ("ocsp", "ocsp.json")]


def test_import_installs_a_validated_version(conf, chain):
    path, store = conf
    r = certsync("--config", path, "import", "shop", "--cert", chain.leaf, "--key", chain.key,
                 "--chain", chain.inter)
    assert f"shop: installed v1 (sha256 {chain.sha256()})" in r.stdout
    assert served_fingerprint(store, "shop") == chain.sha256()
    assert status(path, "shop")["shop"]["provider"] == "import"


BAD = {
    "mismatched key": lambda c, o, t: ["--cert", c.leaf, "--key", o.key, "--chain", c.inter],
    "chain that does not link": lambda c, o, t: ["--cert", c.leaf, "--key", c.key, "--chain", o.inter],
    "truncated PEM": lambda c, o, t: ["--cert", t, "--key", c.key],
    "missing file": lambda c, o, t: ["--cert", c.leaf.parent / "absent.pem", "--key", c.key],
    "a directory, not a file": lambda c, o, t: ["--cert", c.leaf.parent, "--key", c.key],
}
WHY = {
    "mismatched key": "does not match",
    "chain that does not link": "does not link",
    "truncated PEM": "truncated",
    "missing file": "absent.pem",
    "a directory, not a file": "not a regular file",
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_refused_and_changes_nothing(conf, tmp_path, case):
    path, store = conf
    good = Chain(tmp_path / "good", tag="g")
    other = Chain(tmp_path / "other", tag="o")
    trunc = tmp_path / "trunc.pem"
    trunc.write_text(good.fullchain.read_text()[:-200])
    certsync("--config", path, "import", "shop", "--cert", good.fullchain, "--key", good.key)
    before = snapshot(store, "shop")
    r = certsync("--config", path, "import", "shop", *BAD[case](good, other, trunc), check=False)
    assert r.returncode == 1
    assert r.stderr.startswith("certsync import: ")
    assert WHY[case] in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1          # one clear sentence
    assert snapshot(store, "shop") == before
    assert served_fingerprint(store, "shop") == good.sha256()


def test_an_expired_certificate_is_refused(conf, tmp_path):
    path, store = conf
    old = Chain(tmp_path / "old", start="20200101000000Z", end="20200401000000Z", tag="x")
    r = certsync("--config", path, "import", "shop", "--cert", old.fullchain, "--key", old.key,
                 check=False)
    assert r.returncode == 1 and "expired on 2020-04-01" in r.stderr
    assert snapshot(store, "shop") is None or snapshot(store, "shop")[0] is None


def test_a_certificate_that_misses_a_configured_name_is_refused(conf, tmp_path):
    path, store = conf
    narrow = Chain(tmp_path / "narrow", names=("shop.example.com",), tag="n")
    r = certsync("--config", path, "import", "shop", "--cert", narrow.fullchain, "--key",
                 narrow.key, check=False)
    assert r.returncode == 1
    assert "does not cover the name 'www.shop.example.com'" in r.stderr


def test_wrong_or_missing_password_files(conf, chain, tmp_path):
    path, store = conf
    enc, pw, bad = tmp_path / "enc.key", tmp_path / "pw", tmp_path / "bad"
    pw.write_text("right\n")
    bad.write_text("wrong\n")
    run("openssl", "pkcs8", "-topk8", "-in", chain.key, "-out", enc, "-passout", f"file:{pw}")
    for extra, why in [([], "encrypted private key"),
                       (["--passin-file", bad], "password is wrong"),
                       (["--passin-file", tmp_path / "nope"], "nope")]:
        r = certsync("--config", path, "import", "shop", "--cert", chain.fullchain, "--key", enc,
                     *extra, check=False)
        assert r.returncode == 1 and why in r.stderr, r.stderr
        assert snapshot(store, "shop") is None or snapshot(store, "shop")[0] is None
    certsync("--config", path, "import", "shop", "--cert", chain.fullchain, "--key", enc,
             "--passin-file", pw)


def test_config_errors_name_file_and_line(tmp_path):
    bad = tmp_path / "bad.conf"
    bad.write_text("[store]\npath = /tmp/x\n[cert a]\ndomain = a.test\nformat = pem\n")
    r = certsync("--config", bad, "sync", check=False)
    assert r.returncode == 1
    assert f"{bad}:5: [cert a]: unknown key 'format'" in r.stderr
    r = certsync("--config", tmp_path / "missing.conf", "status", check=False)
    assert r.returncode == 1 and "missing.conf" in r.stderr


def test_a_failed_sync_is_shown_by_status(tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text(f"[store]\npath = {tmp_path}/store\n[provider ali]\ntype = aliyun-cas\n"
                    "endpoint = https://127.0.0.1:9\ncredentials = /nonexistent/cred\n"
                    "[cert shop]\nprovider = ali\ncert-id = 123\n")
    r = certsync("--config", conf, "sync", check=False)
    assert r.returncode == 1 and "shop: failed:" in r.stderr
    st = status(conf, "shop")["shop"]
    assert st["version"] is None and st["last_sync"] == "failed"
    assert "cannot read the credentials file '/nonexistent/cred'" in st["last_error"]


def test_on_change_runs_after_each_change_of_current(tmp_path):
    log = tmp_path / "hook.log"
    hook = tmp_path / "reload-server"
    hook.write_text(f"#!/bin/sh\necho \"$1 $CERTSYNC_NAME v$CERTSYNC_VERSION\" >> {log}\n")
    hook.chmod(0o755)
    conf = tmp_path / "c.conf"
    conf.write_text(f"[store]\npath = {tmp_path}/store\n[cert web]\ndomain = web.test\n"
                    f"on-change = {hook} 'graceful'\n")
    certsync("--config", conf, "sync")
    certsync("--config", conf, "sync")                 # unchanged: no hook
    certsync("--config", conf, "sync", "--force")
    certsync("--config", conf, "rollback", "web")
    assert log.read_text().splitlines() == ["graceful web v1", "graceful web v2", "graceful web v1"]
    certsync("--config", conf, "release", "web")      # the rollback held it

    hook.write_text("#!/bin/sh\nexit 4\n")
    r = certsync("--config", conf, "sync", "--force", check=False)
    assert r.returncode == 1
    assert "web: installed v3" in r.stdout
    assert "v3 is current, but [cert web] on-change" in r.stderr and "status 4" in r.stderr
    st = json.loads(certsync("--config", conf, "status", "--json").stdout)[0]
    assert st["version"] == 3 and "status 4" in st["last_error"]


def test_certsync_leaves_no_core_and_its_memory_to_no_one(tmp_path):
    """A core file (or a same-user process reading /proc) would get the AccessKey secret:
    certsync sets its core limit to 0 and makes itself non-dumpable. The on-change command
    it starts looks at its parent, as any process of the same user could."""
    d = Path(tempfile.mkdtemp(prefix="certsync-dump-"))
    d.chmod(0o755)
    seen = d / "seen"
    hook = d / "hook"
    hook.write_text("#!/bin/sh\n"
                    f"grep 'Max core file size' /proc/$PPID/limits > {seen}\n"
                    f"if cat /proc/$PPID/environ >/dev/null 2>&1; then echo environ readable >> {seen}\n"
                    f"else echo environ unreadable >> {seen}; fi\n")
    hook.chmod(0o755)
    conf = d / "c.conf"
    conf.write_text(f"[store]\npath = {d}/store\n[cert web]\ndomain = web.test\non-change = {hook}\n")
    # as another user than root, whom /proc permissions do not stop
    drop = (["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
            if os.geteuid() == 0 else [])
    if drop:
        os.chown(d, 65534, 65534)
    try:
        run(*drop, CERTSYNC, "--config", conf, "sync",
            env={**os.environ, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "dump-me"})
        lines = seen.read_text().splitlines()
        assert lines[0].split()[4:6] == ["0", "0"], lines   # soft and hard limit
        assert lines[1] == "environ unreadable"
    finally:
        shutil.rmtree(d)


@pytest.fixture
def small_disk():
    """A 200 KiB tmpfs (root only), so that the disk really fills up."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    d = Path(tempfile.mkdtemp(prefix="certsync-full-"))
    run("mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", d)
    try:
        yield d
    finally:
        run("umount", d)
        d.rmdir()


def fill(d, leave=0):
    """Fill d up, then free `leave` bytes."""
    if leave:
        (d / "reserve").write_bytes(b"r" * leave)
    try:
        with open(d / "filler", "ab") as f:
            while True:
                f.write(b"f" * 1024)
                f.flush()
    except OSError:
        pass
    if leave:
        (d / "reserve").unlink()


def test_a_full_disk_fails_the_sync_and_says_so(small_disk, tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text(f"[store]\npath = {small_disk}/store\n[cert web]\ndomain = web.test\n"
                    "formats = pem pfx jks\n")
    certsync("--config", conf, "sync")
    before = snapshot(small_disk / "store", "web")
    fill(small_disk, leave=4096)          # room for state.json, not for a version
    r = certsync("--config", conf, "sync", "--force", check=False)
    assert r.returncode == 1
    assert "web: failed: " in r.stderr and "No space left on device" in r.stderr
    st = status(conf, "web")["web"]
    assert st["version"] == 1 and st["last_sync"] == "failed"
    assert "No space left on device" in st["last_error"]
    assert snapshot(small_disk / "store", "web") == before

    # no room even for a temp copy of state.json: it is rewritten in place, status shows it
    fill(small_disk)
    r = certsync("--config", conf, "sync", "--force", check=False)
    assert r.returncode == 1
    assert "status cannot show this failure" not in r.stderr, r.stderr
    st = status(conf, "web")["web"]
    assert st["last_sync"] == "failed" and "No space left on device" in st["last_error"]
    assert snapshot(small_disk / "store", "web") == before


def test_rollback_reports_the_version_it_replaced_when_another_writer_went_first(conf):
    """rollback waits for the certificate's lock; what it says it replaced is what was
    current once it held the lock, not what it saw before waiting."""
    import fcntl
    import subprocess
    import time
    path, store = conf
    for _ in range(3):
        certsync("--config", path, "sync", "demo", "--force")
    d = store / "certs" / "demo"

    def point_current_at(v):
        (d / "current.new").symlink_to(v)
        os.rename(d / "current.new", d / "current")

    point_current_at("v2")
    with open(d / ".lock", "a") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)           # a writer is installing
        p = subprocess.Popen([CERTSYNC, "--config", path, "rollback", "demo"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)
        point_current_at("v3")                   # ... and makes its version current
        fcntl.flock(lk, fcntl.LOCK_UN)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    assert out == ("demo: current is now v2 (was v3), held there; `certsync release demo` "
                   "resumes syncing\n")


# ---- health for people and machines: status --check and metrics ----

def check(conf, *names):
    return certsync("--config", conf, "status", "--check", *names, check=False)


def aliyun_conf(tmp_path):
    """[cert shop] from a service that cannot be reached: every sync of it fails."""
    conf = tmp_path / "c.conf"
    conf.write_text(f"[store]\npath = {tmp_path}/store\n[provider ali]\ntype = aliyun-cas\n"
                    "endpoint = https://127.0.0.1:9\ncredentials = /nonexistent/cred\n"
                    "[cert shop]\nprovider = ali\ncert-id = 123\nrenew-before = 30d\n")
    return conf


def utc(seconds_from_now):
    return time.strftime("%Y%m%d%H%M%SZ", time.gmtime(time.time() + seconds_from_now))


def test_status_check_is_ok_only_for_a_current_valid_version(conf):
    path, _ = conf
    r = check(path)
    assert r.returncode == 2, r.stdout
    assert ("CRITICAL shop: no version yet (servers serve the fallback): run `certsync sync shop`"
            in r.stdout)
    assert "CRITICAL demo: no version yet" in r.stdout
    certsync("--config", path, "sync")
    r = check(path)
    assert r.returncode == 0 and r.stdout.startswith("OK certsync: 2 certificate(s)"), r.stdout
    r = check(path, "shop", "nosuch")
    assert r.returncode == 3 and f"UNKNOWN nosuch: no [cert nosuch] in {path}" in r.stdout


@pytest.mark.parametrize("days,code,words", [
    (20, 1, "WARNING shop: v1 expires at "),
    (20, 1, "inside renew-before (30 days): the next `certsync sync` renews it"),
    (3, 2, "CRITICAL shop: v1 expires at "),
])
def test_status_check_warns_inside_renew_before_and_is_critical_a_week_before(
        tmp_path, days, code, words):
    conf = aliyun_conf(tmp_path)
    short = Chain(tmp_path / "pki", days=days)
    certsync("--config", conf, "import", "shop", "--cert", short.fullchain, "--key", short.key)
    r = check(conf)
    assert r.returncode == code and words in r.stdout, r.stdout
    assert len(r.stdout.splitlines()) == 1


def test_status_check_is_critical_once_the_current_version_expired(tmp_path):
    conf = aliyun_conf(tmp_path)
    brief = Chain(tmp_path / "pki", start=utc(-3600), end=utc(3))
    certsync("--config", conf, "import", "shop", "--cert", brief.fullchain, "--key", brief.key)
    time.sleep(4)
    r = check(conf, "shop")
    assert r.returncode == 2 and "CRITICAL shop: v1 expired at " in r.stdout, r.stdout


def test_status_check_warns_when_the_last_sync_failed_while_current_is_good(tmp_path):
    conf = aliyun_conf(tmp_path)
    good = Chain(tmp_path / "pki", days=90)
    certsync("--config", conf, "import", "shop", "--cert", good.fullchain, "--key", good.key)
    assert check(conf).returncode == 0
    for _ in range(2):
        certsync("--config", conf, "sync", check=False)
    r = check(conf)
    assert r.returncode == 1, r.stdout
    assert "WARNING shop: the last sync failed at " in r.stdout
    assert "(2 in a row): " in r.stdout and "/nonexistent/cred" in r.stdout


def test_status_check_is_unknown_when_config_or_store_cannot_be_read(tmp_path):
    r = check(tmp_path / "missing.conf")
    assert r.returncode == 3 and r.stdout.startswith("UNKNOWN certsync: ") and "missing.conf" in r.stdout
    conf = aliyun_conf(tmp_path)
    good = Chain(tmp_path / "pki", days=90)
    certsync("--config", conf, "import", "shop", "--cert", good.fullchain, "--key", good.key)
    os.mkfifo(tmp_path / "store" / "certs" / "shop" / "state.json")
    r = check(conf)
    assert r.returncode == 3 and "UNKNOWN shop: cannot read the last sync: " in r.stdout, r.stdout


def metric_samples(text):
    """Every sample of a Prometheus text exposition, parsed by the reference client's parser."""
    from prometheus_client.parser import text_string_to_metric_families
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_metrics_are_read_by_a_prometheus_parser(tmp_path):
    conf = aliyun_conf(tmp_path)
    good = Chain(tmp_path / "pki", days=90)
    certsync("--config", conf, "import", "shop", "--cert", good.fullchain, "--key", good.key)
    certsync("--config", conf, "sync", check=False)
    text = certsync("--config", conf, "metrics").stdout
    m = metric_samples(text)
    shop = (("name", "shop"),)
    not_after = run("openssl", "x509", "-in", good.leaf, "-noout", "-enddate").stdout
    want = calendar.timegm(time.strptime(not_after.strip().split("=", 1)[1], "%b %d %H:%M:%S %Y GMT"))
    assert m[("certsync_cert_not_after_seconds", shop)] == want
    assert m[("certsync_cert_version", shop)] == 1
    assert m[("certsync_sync_consecutive_failures", shop)] == 1
    assert m[("certsync_sync_last_success_seconds", shop)] == 0  # never: import is no sync
    assert abs(m[("certsync_sync_last_run_seconds", shop)] - time.time()) < 60
    assert "# TYPE certsync_cert_version gauge" in text


def test_a_rollback_holds_across_syncs_until_released(conf):
    path, store = conf
    certsync("--config", path, "sync", "shop")
    v1 = served_fingerprint(store, "shop")
    certsync("--config", path, "sync", "shop", "--force")
    r = certsync("--config", path, "rollback", "shop")
    assert "shop: current is now v1 (was v2), held there" in r.stdout
    assert served_fingerprint(store, "shop") == v1
    held = status(path, "shop")["shop"]["held"]
    assert held["version"] == 1 and held["since"].endswith("Z")

    # two syncs, one of them forced: both leave it alone, say so and succeed
    for extra in ([], ["--force"]):
        r = certsync("--config", path, "sync", *extra)
        assert r.returncode == 0
        assert (f"shop: held at v1 since {held['since']}; `certsync release shop` resumes"
                in r.stdout), r.stdout
        assert "demo: installed" in r.stdout or "demo: unchanged" in r.stdout
        assert served_fingerprint(store, "shop") == v1
        assert status(path, "shop")["shop"]["version"] == 1
    text = certsync("--config", path, "status", "shop").stdout
    assert f"  held         at v1 since {held['since']} (rollback); `certsync release shop`" in text

    r = certsync("--config", path, "release", "shop")
    assert f"shop: released (was held at v1 since {held['since']})" in r.stdout
    assert status(path, "shop")["shop"]["held"] is None
    assert "held" not in certsync("--config", path, "status", "shop").stdout
    assert "shop: unchanged (v1 is good for" in certsync("--config", path, "sync", "shop").stdout
    assert "shop: installed v3 (forced" in certsync("--config", path, "sync", "shop",
                                                      "--force").stdout
    assert "shop: not held" in certsync("--config", path, "release", "shop").stdout
    r = certsync("--config", path, "release", "nosuch", check=False)
    assert r.returncode == 1 and "no [cert nosuch]" in r.stderr


def test_rollback_refuses_a_version_the_service_revoked_unless_forced(cas, emu):
    first = emu.ctl("add-cert", domain="rv.test", order="1", days=20)
    cas.write("[cert rv]\nprovider = ali\ndomain = rv.test\n")
    assert "rv: installed v1" in cas.cli("sync").stdout
    renewed = emu.ctl("renew", cert_id=first["CertificateId"])["CertificateId"]
    assert "rv: installed v2" in cas.cli("sync").stdout

    r = cas.cli("revoke", str(first["OrderId"]), "--yes")
    assert "revoke: done" in r.stdout
    assert (f"rv: v1 holds the revoked certificate {first['CertificateId']}; `certsync rollback` "
            "refuses it") in r.stdout
    state = json.loads((cas.store / "certs/rv/state.json").read_text())
    assert state["revoked"] == [sha2(emu, first["CertificateId"])]

    r = cas.cli("rollback", "rv", check=False)
    assert r.returncode == 1
    assert "v1 of 'rv' was revoked in the certificate service" in r.stderr and "--force" in r.stderr
    st = cas.status("rv")
    assert st["version"] == 2 and st["held"] is None
    assert cas.served("rv") == sha2(emu, renewed)

    r = cas.cli("rollback", "rv", "--force")
    assert "rv: current is now v1 (was v2), held there" in r.stdout
    assert cas.status("rv")["held"]["version"] == 1
    assert cas.served("rv") == sha2(emu, first["CertificateId"])
