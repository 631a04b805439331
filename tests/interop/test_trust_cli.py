"""Trust boundary of the root-run commands that write beside a web server: the worker user
(www-data) is assumed compromised. Each test stages an attack as that user in a directory it
may write (a webroot, a keystore's directory), runs the root side, and asserts that nothing
happened outside what that command means to write."""
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from test_aliyun import cas, emu, emu_module, webroot  # noqa: F401 (fixtures)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="stages attacks as www-data: needs root")

WWW = pwd.getpwnam("www-data")


def as_www(*args, check=False):
    """Run a command as the worker user, as a compromised worker would."""
    return subprocess.run(["runuser", "-u", "www-data", "--", *map(str, args)],
                          capture_output=True, text=True, check=check, timeout=30)


@pytest.fixture
def base():
    # under /tmp with 0755: www-data must reach the directories it is given
    d = Path(tempfile.mkdtemp(prefix="certsync-trust-cli-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


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
