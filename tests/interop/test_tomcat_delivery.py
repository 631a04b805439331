"""certsync-tomcat and a real Tomcat 10.1: a reload that failed is not forgotten (the next
sync, with no --force, makes Tomcat serve the store's current version), --probe reloads
whenever Tomcat serves something else, and the --print-config flow with --group gives
files that Tomcat, running as the user tomcat, can read."""
import json
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from conftest import certsync
from test_tomcat import TOMCAT_HELPER, helper, need_tomcat, site, store_sha256  # noqa: F401
from tomcat import Tomcat, free_port

import grp
import pwd


def check(conf):
    return certsync("--config", conf, "status", "--check", check=False)


def test_a_wrong_manager_password_then_a_fixed_one_ends_with_tomcat_serving_current(
        tmp_path, site):
    conf, creds = site
    creds.write_text("certsync:not-the-pw-4711\n")
    ks = tmp_path / "app.jks"
    helper(conf, "--keystore", ks, "--type", "jks")
    http_port = free_port()
    conf.write_text(conf.read_text() + (
        f"on-change = {TOMCAT_HELPER} --cert app --keystore {ks} --type jks\n"
        f"    --reload-url http://127.0.0.1:{http_port}/manager/text/sslReload\n"
        f"    --manager-credentials {creds}\n"))
    with Tomcat(tmp_path / "tc", ks, "JKS", password_file=Path(str(ks) + ".password"),
                key_alias="app", http_port=http_port) as tc:
        v1 = tc.served_sha256()
        r = certsync("--config", conf, "sync", "--force", check=False)
        assert r.returncode == 1
        assert "rejected the user" in r.stderr and "stays pending" in r.stderr
        assert "not-the-pw-4711" not in r.stderr
        v2 = store_sha256(conf)
        assert v2 != v1 and tc.served_sha256() == v1
        c = check(conf)
        assert c.returncode == 2 and "on-change 'certsync-tomcat' for v2 failed (exit status 3" \
            in c.stdout
        assert Path(str(ks) + ".reload-pending").exists()

        creds.write_text("certsync:manager-pw\n")       # the operator fixes the password
        r = certsync("--config", conf, "sync")            # no --force
        assert "app: unchanged" in r.stdout
        assert "holds v2, but the last reload failed: reloading" in r.stdout
        assert "Tomcat reloaded: OK" in r.stdout
        assert "ran again for v2 and succeeded" in r.stdout
        assert tc.served_sha256() == v2
        assert check(conf).returncode == 0
        assert not Path(str(ks) + ".reload-pending").exists()
        st = json.loads(certsync("--config", conf, "status", "--json").stdout)[0]
        assert st["hook_pending"] is None
        # delivered: the next sync leaves Tomcat alone
        r = certsync("--config", conf, "sync")
        assert "Tomcat reloaded" not in r.stdout


def test_probe_reloads_when_tomcat_serves_another_certificate(tmp_path, site):
    conf, creds = site
    ks = tmp_path / "app.jks"
    helper(conf, "--keystore", ks, "--type", "jks")
    with Tomcat(tmp_path / "tc", ks, "JKS", password_file=Path(str(ks) + ".password"),
                key_alias="app") as tc:
        v1 = tc.served_sha256()
        certsync("--config", conf, "sync", "--force")
        v2 = store_sha256(conf)
        # the keystore on disk gets v2, but nobody told Tomcat
        assert "app: wrote v2" in helper(conf, "--keystore", ks, "--type", "jks").stdout
        assert tc.served_sha256() == v1
        probe = f"127.0.0.1:{tc.https_port}"
        args = ("--keystore", ks, "--type", "jks", "--reload-url", tc.reload_url,
                "--manager-credentials", creds, "--probe", probe)
        r = helper(conf, *args)
        assert f"holds v2, but Tomcat serves sha256 {v1[:16]}..., not the current one" in r.stdout
        assert f"Tomcat serves v2 at {probe}" in r.stdout
        assert tc.served_sha256() == v2
        r = helper(conf, *args)
        assert "already holds v2" in r.stdout and "and Tomcat serves it" in r.stdout
        assert "no reload" in r.stdout
        # a probe that cannot connect says so, and changes nothing
        r = helper(conf, *args[:-1], f"127.0.0.1:{free_port()}", check=False)
        assert r.returncode == 0 and "cannot connect to Tomcat's connector" in r.stderr
        assert "already holds v2" in r.stdout and "Tomcat reloaded" not in r.stdout
    # Tomcat down, a reload pending: a run without --reload-url (systemd's ExecStartPre,
    # before Tomcat starts and loads the keystore) is not failed by it
    Path(str(ks) + ".reload-pending").write_text("x\n")
    r = helper(conf, "--keystore", ks, "--type", "jks")
    assert "already holds v2" in r.stdout
    r = helper(conf, "--keystore", ks, "--type", "jks", "--probe", "nocolon", check=False)
    assert r.returncode == 2 and "is not HOST:PORT" in r.stderr


@pytest.fixture
def shared_dir():
    """A directory (0755) Tomcat's user can reach, as /etc/tomcat10 is."""
    d = Path(tempfile.mkdtemp(prefix="certsync-tomcat-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def print_config_attrs(xml):
    return dict(re.findall(r'(certificate\w+)="([^"]*)"', xml))


def test_tomcat_as_user_tomcat_starts_on_the_print_config_flow(shared_dir, tmp_path):
    tomcat = pwd.getpwnam("tomcat")
    conf = tmp_path / "certsync.conf"
    conf.write_text(f"[store]\npath = {tmp_path}/store\n[cert app]\ndomain = localhost\n")
    certsync("--config", conf, "sync")
    ks = shared_dir / "app.jks"
    base = ["--config", conf, "--cert", "app", "--keystore", ks, "--type", "jks"]
    # as tomcat-helper/README.md says: print the config with --group, then write the keystore
    r = run_helper(*base, "--group", "tomcat", "--print-config")
    attrs = print_config_attrs(r.stdout)
    pwfile = Path(attrs["certificateKeystorePasswordFile"])
    assert "warning" not in r.stderr
    r = run_helper(*base)
    assert "app: wrote v1" in r.stdout and "warning" not in r.stderr
    for f in (ks, pwfile):
        st = f.stat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o640, 0, tomcat.pw_gid), f
    with Tomcat(shared_dir / "tc", attrs["certificateKeystoreFile"], "JKS", password_file=pwfile,
                key_alias=attrs["certificateKeyAlias"], user="tomcat") as tc:
        assert pwd.getpwuid(os.stat(f"/proc/{tc.pid()}").st_uid).pw_name == "tomcat"
        assert tc.served_sha256() == store_sha256(conf)


def test_a_password_file_tomcat_cannot_read_is_warned_about_and_fixed_by_the_keystore(
        shared_dir, tmp_path):
    conf = tmp_path / "certsync.conf"
    conf.write_text(f"[store]\npath = {tmp_path}/store\n[cert app]\ndomain = localhost\n")
    certsync("--config", conf, "sync")
    ks = shared_dir / "app.jks"
    base = ["--config", conf, "--cert", "app", "--keystore", ks, "--type", "jks"]
    r = run_helper(*base, "--print-config")             # no --group: root:root 0600
    pwfile = Path(str(ks) + ".password")
    assert stat.S_IMODE(pwfile.stat().st_mode) == 0o600
    assert (f"warning: Tomcat's user 'tomcat' cannot read '{pwfile}' (root:root 0600)"
            in r.stderr)
    assert "--group tomcat" in r.stderr
    r = run_helper(*base)
    assert f"cannot read '{ks}' (root:root 0600)" in r.stderr
    # the operator makes the keystore root:tomcat 0640, as the README says
    tomcat_gid = grp.getgrnam("tomcat").gr_gid
    os.chown(ks, 0, tomcat_gid)
    ks.chmod(0o640)
    # the password file is still root:root 0600: Tomcat cannot start, as the warning said
    with pytest.raises(RuntimeError,
                       match=r"(?s)Tomcat exited.*app\.jks\.password \(Permission denied\)"):
        Tomcat(shared_dir / "tc", ks, "JKS", password_file=pwfile, key_alias="app",
               user="tomcat", start_timeout=40).start()
    # the next run gives the password file the keystore's group and mode
    r = run_helper(*base)
    assert f"{pwfile} is now mode 0640" in r.stderr and "warning" not in r.stderr
    st = pwfile.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o640, 0, tomcat_gid)
    with Tomcat(shared_dir / "tc2", ks, "JKS", password_file=pwfile, key_alias="app",
                user="tomcat") as tc:
        assert tc.served_sha256() == store_sha256(conf)
    # --tomcat-user names another user; an unknown one is said so
    r = run_helper(*base, "--tomcat-user", "nobody")
    assert "warning: Tomcat's user 'nobody' cannot read" in r.stderr
    r = run_helper(*base, "--group", "no-such-group", check=False)
    assert r.returncode == 2 and "no group 'no-such-group'" in r.stderr


def run_helper(*args, check=True):
    from conftest import run
    return run(TOMCAT_HELPER, *args, check=check)
