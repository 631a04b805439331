"""Trust boundary of the root-run commands that write beside a web server: the worker user
(www-data) is assumed compromised. Each test stages an attack as that user in a directory it
may write (a webroot, a keystore's directory), runs the root side, and asserts that nothing
happened outside what that command means to write."""
import os
import stat
import subprocess

import pytest

from conftest import ROOT, WWW, as_www, certsync
from test_aliyun import cas, emu, emu_module, webroot  # noqa: F401 (fixtures)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="stages attacks as www-data: needs root")

TOMCAT_HELPER = os.path.abspath(os.environ.get("CERTSYNC_TOMCAT",
                                               ROOT / "out" / "certsync-tomcat"))


def www_dir(path):
    path.mkdir()
    os.chown(path, WWW.pw_uid, WWW.pw_gid)
    return path


def victim(base):
    """A root-only directory holding a file of the name the attacker aims at."""
    d = base / "victim"
    d.mkdir(mode=0o700)
    (d / "fileauth.txt").write_text("ORIGINAL\n")
    return d


# ---- F1: apply --webroot, where the worker user can write --------------------------------

PLANTS = {
    "pki-validation is a link": "mkdir -p {web}/.well-known && "
                                "ln -s {victim} {web}/.well-known/pki-validation",
    ".well-known is a link": "ln -s {victim} {web}/.well-known",
}


@pytest.mark.parametrize("plant", PLANTS)
def test_apply_webroot_never_writes_through_a_directory_link_the_worker_planted(
        cas, emu, base, plant):
    web, target = www_dir(base / "web"), victim(base)
    as_www("sh", "-c", PLANTS[plant].format(web=web, victim=target), check=True)
    cas.write("[cert site]\nprovider = ali\ndomain = site.test\n")
    r = cas.cli("apply", "--domain", "site.test", "--validate", "file", "--webroot", web,
                check=False)
    assert r.returncode == 1
    assert "is a symbolic link or not a directory: refused" in r.stderr
    assert "remove it" in r.stderr
    # nothing was created or replaced in the root-only directory
    assert sorted(p.name for p in target.iterdir()) == ["fileauth.txt"]
    assert (target / "fileauth.txt").read_text() == "ORIGINAL\n"
    # the store's challenge area still has it: the certsync modules can answer
    assert (cas.store / "challenges/site.test/pki-validation/fileauth.txt").exists()


def test_apply_webroot_replaces_a_file_link_instead_of_writing_through_it(cas, emu, base):
    web, target = www_dir(base / "web"), victim(base)
    as_www("sh", "-c", f"mkdir -p {web}/.well-known/pki-validation && "
           f"ln -s {target}/fileauth.txt {web}/.well-known/pki-validation/fileauth.txt",
           check=True)
    cas.write("[cert site]\nprovider = ali\ndomain = site.test\n")
    r = cas.cli("apply", "--domain", "site.test", "--validate", "file", "--webroot", web)
    published = web / ".well-known/pki-validation/fileauth.txt"
    assert f"written to {published}" in r.stderr + r.stdout
    assert not published.is_symlink() and published.stat().st_uid == 0
    token = (cas.store / "challenges/site.test/pki-validation/fileauth.txt").read_text()
    assert published.read_text() == token
    assert (target / "fileauth.txt").read_text() == "ORIGINAL\n"


# ---- F5: certsync-tomcat, in a keystore directory others can write ------------------------

@pytest.fixture
def store(base):
    conf = base / "certsync.conf"
    conf.write_text(f"[store]\npath = {base}/store\ngroup = www-data\n[cert a]\ndomain = a.test\n")
    certsync("--config", conf, "sync")
    return conf


def tomcat(conf, keystore, *extra):
    return subprocess.run([TOMCAT_HELPER, "--config", str(conf), "--cert", "a", "--keystore",
                           str(keystore), "--type", "pkcs12", *extra],
                          capture_output=True, text=True, timeout=60)


def www_gets_the_key(files, password="knownpw"):
    """What the attacker tries afterwards: open any keystore there with its password."""
    for f in files:
        r = as_www("openssl", "pkcs12", "-in", f, "-passin", f"pass:{password}", "-nocerts",
                   "-nodes")
        if r.returncode == 0 and "PRIVATE KEY" in r.stdout:
            return True
    return False


def listing(d):
    return sorted((p.name, p.is_symlink(), p.lstat().st_uid) for p in d.iterdir())


def test_tomcat_refuses_a_keystore_and_password_the_worker_linked_to_its_own_files(base, store):
    tcw = www_dir(base / "tcw")
    as_www("sh", "-c", f"cd {tcw} && echo junk > mine && chmod 660 mine && "
           "echo knownpw > mypw && ln -s mine ks.p12 && ln -s mypw ks.p12.password", check=True)
    before = listing(tcw)
    r = tomcat(store, tcw / "ks.p12")
    assert r.returncode == 1
    assert f"the keystore '{tcw}/ks.p12' is a symbolic link" in r.stderr
    assert "remove it" in r.stderr
    assert listing(tcw) == before
    assert (tcw / "mine").read_text() == "junk\n"
    assert not www_gets_the_key(tcw.iterdir())


def test_tomcat_refuses_a_password_file_the_worker_planted(base, store):
    """Without links: its own keystore file (whose owner would be kept) and its password."""
    tcw = www_dir(base / "tcw")
    as_www("sh", "-c", f"cd {tcw} && echo junk > ks.p12 && chmod 660 ks.p12 && "
           "echo knownpw > ks.p12.password", check=True)
    r = tomcat(store, tcw / "ks.p12")
    assert r.returncode == 1
    assert f"the password file '{tcw}/ks.p12.password'" in r.stderr
    assert "another user can write: refused" in r.stderr
    assert (tcw / "ks.p12").read_text() == "junk\n"
    assert not www_gets_the_key(tcw.iterdir())


def test_tomcat_in_a_directory_others_write_keeps_its_password_to_root(base, store):
    tcw = www_dir(base / "tcw")
    r = tomcat(store, tcw / "ks.p12")
    assert r.returncode == 0, r.stderr
    pw = tcw / "ks.p12.password"
    assert pw.stat().st_uid == 0 and stat.S_IMODE(pw.stat().st_mode) == 0o600
    assert as_www("cat", pw).returncode != 0
    assert (tcw / "ks.p12").stat().st_uid == 0
    # the next run reads the password it generated, and finds the keystore current
    r = tomcat(store, tcw / "ks.p12")
    assert r.returncode == 0 and "already holds v1" in r.stdout, r.stderr


def test_tomcat_keeps_the_owner_and_mode_of_a_keystore_the_operator_made(base, store):
    tc = base / "tc"
    tc.mkdir(mode=0o755)
    ks = tc / "ks.p12"
    ks.write_text("the operator's old keystore\n")
    os.chown(ks, 0, WWW.pw_gid)
    ks.chmod(0o640)
    r = tomcat(store, ks)
    assert r.returncode == 0, r.stderr
    st = ks.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, WWW.pw_gid, 0o640)
    assert (tc / "ks.p12.bak").read_text() == "the operator's old keystore\n"
