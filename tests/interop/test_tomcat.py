"""certsync-tomcat against Debian's real Tomcat 10.1: the keystore we write is what
Tomcat serves, and a new version reaches it through the Manager with no restart."""
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from conftest import certsync, run
from tomcat import Tomcat, available, free_port

TOMCAT_HELPER = os.path.abspath(os.environ.get(
    "CERTSYNC_TOMCAT", Path(__file__).resolve().parents[2] / "out" / "certsync-tomcat"))


@pytest.fixture(autouse=True)
def need_tomcat():
    assert available(), "tomcat10 and tomcat10-admin are missing: run build/install-deps.sh"


@pytest.fixture
def site(tmp_path):
    """A store with one local-CA certificate 'app' for localhost, and a manager login."""
    conf = tmp_path / "certsync.conf"
    conf.write_text(f"[store]\npath = {tmp_path}/store\n[cert app]\ndomain = localhost app.test\n"
                    "key-type = rsa2048\n")
    certsync("--config", conf, "sync")
    creds = tmp_path / "manager.cred"
    creds.write_text("certsync:manager-pw\n")
    creds.chmod(0o600)
    return conf, creds


def helper(conf, *args, check=True):
    return run(TOMCAT_HELPER, "--config", conf, "--cert", "app", *args, check=check)


def store_sha256(conf, name="app"):
    import json
    return json.loads(certsync("--config", conf, "status", "--json", name).stdout)[0][
        "fingerprint_sha256"]


@pytest.mark.parametrize("kind,profile", [("jks", None), ("pkcs12", "modern"),
                                          ("pkcs12", "legacy")])
def test_tomcat_starts_with_the_keystore_we_wrote(tmp_path, site, kind, profile):
    conf, _ = site
    ks = tmp_path / f"app.{kind}"
    r = helper(conf, "--keystore", ks, "--type", kind, *(["--profile", profile] if profile else []))
    assert "app: wrote v1" in r.stdout
    pwfile = Path(str(ks) + ".password")
    assert stat.S_IMODE(ks.stat().st_mode) == 0o600
    assert stat.S_IMODE(pwfile.stat().st_mode) == 0o600
    with Tomcat(tmp_path / "tc", ks, "JKS" if kind == "jks" else "PKCS12",
                password_file=pwfile, key_alias="app") as tc:
        assert tc.served_sha256() == store_sha256(conf)
    cfg = helper(conf, "--keystore", ks, "--type", kind, "--print-config").stdout
    assert f'certificateKeystoreFile="{ks}"' in cfg
    assert f'certificateKeystorePasswordFile="{pwfile}"' in cfg
    assert 'certificateKeyAlias="app"' in cfg


def test_a_new_version_reaches_tomcat_without_a_restart(tmp_path, site):
    conf, creds = site
    ks = tmp_path / "app.jks"
    helper(conf, "--keystore", ks, "--type", "jks")
    with Tomcat(tmp_path / "tc", ks, "JKS", password_file=Path(str(ks) + ".password"),
                key_alias="app") as tc:
        pid, old = tc.pid(), tc.served_sha256()
        certsync("--config", conf, "sync", "--force")
        new = store_sha256(conf)
        assert new != old
        t0 = time.monotonic()
        r = helper(conf, "--keystore", ks, "--type", "jks", "--reload-url", tc.reload_url,
                   "--manager-credentials", creds)
        assert "app: wrote v2" in r.stdout
        assert "Tomcat reloaded: OK - Reloaded TLS configuration" in r.stdout
        assert tc.served_sha256() == new
        print(f"new store version -> served by Tomcat: {time.monotonic() - t0:.3f} s")
        assert tc.pid() == pid and tc.running()
        assert Path(str(ks) + ".bak").exists()

        # an unchanged store: nothing rewritten, no reload asked for
        mtime = ks.stat().st_mtime_ns
        r = helper(conf, "--keystore", ks, "--type", "jks", "--reload-url", tc.reload_url,
                   "--manager-credentials", creds)
        assert "already holds v2" in r.stdout and "no reload" in r.stdout
        assert ks.stat().st_mtime_ns == mtime

        # reload failures: the new keystore is on disk, exit code 3 says the reload failed
        bad = tmp_path / "bad.cred"
        bad.write_text("certsync:wrong\n")
        bad.chmod(0o600)
        failures = [
            (tc.reload_url, bad, "rejected the user", "HTTP 401"),
            (f"http://127.0.0.1:{tc.http_port}/nope", creds, "is not Tomcat's manager text API",
             "HTTP 404"),
        ]
        for url, cred, why, detail in failures:
            certsync("--config", conf, "sync", "--force")
            r = helper(conf, "--keystore", ks, "--type", "jks", "--reload-url", url,
                       "--manager-credentials", cred, check=False)
            assert r.returncode == 3, r.stderr
            assert why in r.stderr and detail in r.stderr
            assert "the keystore on disk is the new one" in r.stderr
            assert "wrong" not in r.stderr           # no secret in the error
        # a credentials file others can read: refused before anything is written
        loose = tmp_path / "loose.cred"
        loose.write_text("certsync:manager-pw\n")
        loose.chmod(0o644)
        certsync("--config", conf, "sync", "--force")
        mtime = ks.stat().st_mtime_ns
        r = helper(conf, "--keystore", ks, "--type", "jks", "--reload-url", tc.reload_url,
                   "--manager-credentials", loose, check=False)
        assert r.returncode == 1 and "chmod 600" in r.stderr and "nothing written" in r.stderr
        assert ks.stat().st_mtime_ns == mtime
        url = tc.reload_url
    # Tomcat down
    r = helper(conf, "--keystore", ks, "--type", "jks", "--reload-url", url,
               "--manager-credentials", creds, check=False)
    assert r.returncode == 3 and "is Tomcat running?" in r.stderr


def test_sync_runs_the_helper_as_its_on_change_step(tmp_path, site):
    conf, creds = site
    ks = tmp_path / "app.jks"
    helper(conf, "--keystore", ks, "--type", "jks")
    http_port = free_port()
    hook = (f"{TOMCAT_HELPER} --cert app --keystore {ks} --type jks\n"
            f"    --reload-url http://127.0.0.1:{http_port}/manager/text/sslReload\n"
            f"    --manager-credentials {creds}\n")
    conf.write_text(conf.read_text() + "on-change = " + hook)
    with Tomcat(tmp_path / "tc", ks, "JKS", password_file=Path(str(ks) + ".password"),
                key_alias="app", http_port=http_port) as tc:
        pid = tc.pid()
        r = certsync("--config", conf, "sync", "--force")
        assert "app: installed v2" in r.stdout and "Tomcat reloaded: OK" in r.stdout
        assert tc.served_sha256() == store_sha256(conf)
        assert tc.pid() == pid


def test_non_ascii_passwords_work_with_jks_and_are_refused_for_pkcs12(tmp_path, site):
    conf, _ = site
    pw = tmp_path / "pw"
    pw.write_text("Kennwört-€-密码\n", encoding="utf-8")
    ks = tmp_path / "app.jks"
    helper(conf, "--keystore", ks, "--type", "jks", "--password-file", pw)
    with Tomcat(tmp_path / "tc", ks, "JKS", keystore_password="Kennwört-€-密码",
                key_alias="app") as tc:
        assert tc.served_sha256() == store_sha256(conf)
    r = helper(conf, "--keystore", tmp_path / "app.p12", "--type", "pkcs12", "--password-file",
               pw, check=False)
    assert r.returncode == 1 and "non-ASCII" in r.stderr
    assert not (tmp_path / "app.p12").exists()


def test_wait_for_cert_and_usage(tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text(f"[store]\npath = {tmp_path}/store\n[cert app]\ndomain = localhost\n")
    t0 = time.monotonic()
    r = helper(conf, "--keystore", tmp_path / "k.jks", "--type", "jks", "--wait-for-cert", "2",
               check=False)
    assert r.returncode == 1 and "no current version" in r.stderr
    assert time.monotonic() - t0 >= 2
    assert not (tmp_path / "k.jks").exists()
    r = run(TOMCAT_HELPER, "--cert", "app", check=False)
    assert r.returncode == 2 and "--keystore and --type are required" in r.stderr
    assert run(TOMCAT_HELPER, "--help").stdout.startswith("Usage: certsync-tomcat")


def dead_pid():
    p = subprocess.Popen(["/bin/true"])
    p.wait()
    return p.pid


def test_a_killed_run_leaves_no_key_copy_behind(tmp_path, site):
    """A run killed between writing KEYSTORE.tmp-PID and the rename leaves a copy of the key
    beside the keystore; the next run removes it (only ours, only dead runs', no symlinks)."""
    conf, _ = site
    ks = tmp_path / "app.p12"
    stale = tmp_path / f"app.p12.tmp-{dead_pid()}"
    stale_bak = tmp_path / f"app.p12.bak.tmp-{dead_pid()}"
    live = tmp_path / f"app.p12.tmp-{os.getpid()}"          # a run still writing
    target = tmp_path / "elsewhere"
    link = tmp_path / f"app.p12.tmp-{dead_pid()}1"
    other = tmp_path / "app.p12.tmp-12x"
    for f in (stale, stale_bak, live, target, other):
        f.write_text("a key\n")
    link.symlink_to(target)
    r = helper(conf, "--keystore", ks, "--type", "pkcs12")
    assert "app: wrote v1" in r.stdout
    assert not stale.exists() and not stale_bak.exists()
    assert f"removed '{stale}', left by a run that was killed" in r.stderr
    assert live.exists() and other.exists() and link.is_symlink() and target.exists()
    assert sorted(p.name for p in tmp_path.glob("app.p12*")) == sorted(
        ["app.p12", "app.p12.password", live.name, link.name, other.name])


def test_the_helper_writes_no_core_file(tmp_path, site):
    """It holds the keystore password and the key: no core file may carry them."""
    conf, _ = site
    p = subprocess.Popen([TOMCAT_HELPER, "--config", conf, "--cert", "later", "--keystore",
                          tmp_path / "later.p12", "--type", "pkcs12", "--wait-for-cert", "30"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(0.5)  # past exec and main()'s first lines: it waits for the certificate
        assert p.poll() is None, p.communicate()
        line = [l for l in Path(f"/proc/{p.pid}/limits").read_text().splitlines()
                if l.startswith("Max core file size")][0]
        assert p.poll() is None
        assert line.split()[4:6] == ["0", "0"], line
    finally:
        p.kill()
        p.wait()
