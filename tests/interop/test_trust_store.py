"""Trust boundary of the store: the web server's worker user (www-data) is assumed
compromised. Each test stages an attack as that user, then runs the root side (the
CLI as root) and asserts that nothing happened outside the store."""
import os
import stat
import subprocess
from pathlib import Path

import pytest

from conftest import WWW, as_www, certsync

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="stages attacks as www-data: needs root")


def write_conf(base, model):
    store = base / "store"
    conf = base / "certsync.conf"
    conf.write_text(f"""[store]
path = {store}
{model}

[provider local]
type = local-ca

[cert shop]
provider = local
domain = shop.example.com
formats = pem pfx
""")
    return conf, store


def root_only(base):
    """A directory and a secret only root may touch: what the attacker is after."""
    secret_dir = base / "root-only"
    secret_dir.mkdir(mode=0o700)
    secret = secret_dir / "secret.txt"
    secret.write_text("root's secret\n")
    secret.chmod(0o600)
    return secret_dir, secret


def sync(conf, *extra):
    return certsync("--config", conf, "sync", *extra, check=False, timeout=60)


def tree(d):
    return sorted((str(p.relative_to(d)), p.stat().st_mode, p.stat().st_uid)
                  for p in Path(d).rglob("*"))


# ---- the recommended model: root owns the store, workers read through a group ----

def test_group_model_workers_read_what_they_serve_and_nothing_else(base):
    conf, store = write_conf(base, "group = www-data")
    r = sync(conf)
    assert r.returncode == 0, r.stderr
    cur = store / "certs" / "shop" / "current"
    # what nginx and Apache serve: readable by the worker, not writable
    assert as_www("cat", cur / "fullchain.pem").returncode == 0
    assert as_www("cat", cur / "privkey.pem").returncode == 0
    for private in (cur / "pfx-password.txt", cur / "shop.pfx", store / "local-ca" / "root.key",
                    store / "local-ca" / "issuer.key"):
        assert as_www("cat", private).returncode != 0, private
    # nothing in the store is writable by the worker: it can plant nothing
    for d in (store, store / "certs", store / "certs" / "shop", store / "local-ca"):
        r = as_www("touch", d / "planted")
        assert r.returncode != 0 and not (d / "planted").exists(), d
    # item 8: the local CA's trust anchor cannot be replaced by the worker
    assert as_www("cp", "/dev/null", store / "local-ca" / "root.pem").returncode != 0
    assert stat.S_IMODE((store / "local-ca").stat().st_mode) == 0o700
    assert (store / "local-ca").stat().st_uid == 0
    # item 1: the include snippet that Apache's root parent reads is root's alone
    inc = store / "certs" / "shop" / "apache.conf"
    assert inc.stat().st_uid == 0 and not inc.stat().st_mode & 0o022
    assert as_www("sh", "-c", f"echo 'Define X' >> {inc}").returncode != 0


def test_a_store_owned_by_the_worker_is_refused_to_root_without_owner(base):
    """A store left to www-data (the old advice) is not written by root: a root sync
    would otherwise follow whatever the worker planted."""
    conf, store = write_conf(base, "group = www-data")
    assert sync(conf).returncode == 0
    subprocess.run(["chown", "-R", "www-data:www-data", store], check=True)
    before = tree(store)
    r = sync(conf, "--force")
    assert r.returncode == 1
    assert "belongs to www-data" in r.stderr and "owner = www-data" in r.stderr
    assert tree(store) == before


# ---- the in-server sync model: the worker owns the store, root drops to it ----

def owner_store(base):
    conf, store = write_conf(base, "owner = www-data")
    r = sync(conf)
    assert r.returncode == 0, r.stderr
    assert (store / "certs" / "shop" / "current" / "fullchain.pem").stat().st_uid == WWW.pw_uid
    # no configuration snippet where the worker could edit it
    assert not (store / "certs" / "shop" / "apache.conf").exists()
    return conf, store


def test_item1_symlinked_certificate_dir_writes_nothing_elsewhere(base):
    conf, store = owner_store(base)
    target = base / "conf-enabled"  # stands for Apache's conf-enabled
    target.mkdir(mode=0o755)
    before = tree(target)
    shop = store / "certs" / "shop"
    assert as_www("mv", shop, store / "certs" / "shop.old").returncode == 0
    assert as_www("ln", "-s", target, shop).returncode == 0
    r = sync(conf, "--force")
    assert r.returncode == 1
    assert "symbolic link" in r.stderr and "shop" in r.stderr
    assert tree(target) == before  # no apache.conf, state.json, .lock, vN, key


def test_item2_password_symlink_does_not_copy_a_root_file(base):
    conf, store = owner_store(base)
    _, secret = root_only(base)
    cur = store / "certs" / "shop" / "current"
    assert as_www("rm", cur / "pfx-password.txt").returncode == 0
    assert as_www("ln", "-s", secret, cur / "pfx-password.txt").returncode == 0
    r = sync(conf, "--force")
    assert r.returncode == 0, r.stderr
    new = (store / "certs" / "shop" / "current" / "pfx-password.txt").read_text()
    assert "root's secret" not in new and len(new.strip()) == 32


def test_item4_tree_removal_never_follows_a_swapped_symlink(base):
    conf, store = owner_store(base)
    secret_dir, secret = root_only(base)
    (secret_dir / "sub").mkdir()
    (secret_dir / "sub" / "file").write_text("x")
    shop = store / "certs" / "shop"
    # a leftover temp version (as a crashed writer leaves) that is in fact a symlink
    assert as_www("ln", "-s", secret_dir, shop / ".tmp-v9-1").returncode == 0
    assert as_www("mkdir", shop / ".tmp-v8-1").returncode == 0
    assert as_www("ln", "-s", secret_dir, shop / ".tmp-v8-1" / "link").returncode == 0
    r = sync(conf, "--force")
    assert r.returncode == 0, r.stderr
    assert secret.read_text() == "root's secret\n"
    assert (secret_dir / "sub" / "file").exists()
    assert not (shop / ".tmp-v9-1").is_symlink() and not (shop / ".tmp-v8-1").exists()


def test_item6_a_fifo_in_the_store_hangs_nothing(base):
    conf, store = owner_store(base)
    shop = store / "certs" / "shop"
    cur = shop / "current"
    for f in (cur / "fullchain.pem", shop / "state.json"):
        assert as_www("rm", "-f", f).returncode == 0
        assert as_www("mkfifo", f).returncode == 0
    # each of these would block forever on open(2) of a FIFO
    certsync("--config", conf, "status", check=False, timeout=20)
    r = sync(conf)
    assert r.returncode == 0, r.stderr  # the version that does not load is replaced
    assert "installed v2" in r.stdout
    assert stat.S_ISREG((shop / "current" / "fullchain.pem").lstat().st_mode)


def test_item7_lock_symlink_creates_nothing(base):
    conf, store = owner_store(base)
    secret_dir, _ = root_only(base)
    nologin = secret_dir / "nologin"  # stands for /etc/nologin
    lock = store / "certs" / "shop" / ".lock"
    assert as_www("rm", "-f", lock).returncode == 0
    assert as_www("ln", "-s", nologin, lock).returncode == 0
    r = sync(conf, "--force")
    assert r.returncode == 1 and ".lock" in r.stderr
    assert not nologin.exists()


def test_item8_local_ca_is_private_in_every_model(base):
    conf, store = owner_store(base)
    assert stat.S_IMODE((store / "local-ca").stat().st_mode) == 0o700
    for f in ("root.key", "issuer.key"):
        assert stat.S_IMODE((store / "local-ca" / f).stat().st_mode) == 0o600


# ---- item 3: the validation answer that `apply` writes ----

from test_aliyun import cas, emu, emu_module, webroot  # noqa: E402,F401  (fixtures)


def test_item3_apply_never_chmods_through_a_planted_challenge_dir(cas, emu, webroot, base):
    """An older store left challenges/ to www-data, which swapped a host's directory
    for a symlink to a root-only one: apply refuses it and changes nothing there."""
    secret_dir, secret = root_only(base)
    cas.write("[cert site]\nprovider = ali\ndomain = site.test\n")
    chal = cas.store / "challenges"
    chal.mkdir(parents=True)
    os.chown(chal, WWW.pw_uid, WWW.pw_gid)
    os.symlink(secret_dir, chal / "site.test")
    os.lchown(chal / "site.test", WWW.pw_uid, WWW.pw_gid)
    r = cas.cli("apply", "--domain", "Site.Test", "--validate", "file", check=False)
    assert r.returncode == 1
    assert "challenges" in r.stderr and "www-data" in r.stderr
    assert stat.S_IMODE(secret_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert sorted(p.name for p in secret_dir.iterdir()) == ["secret.txt"]


def test_item3_apply_writes_the_answer_for_the_workers_group_only(cas, emu, webroot):
    root, _ = webroot
    cas.write("[cert site]\nprovider = ali\ndomain = site.test\n")
    conf = cas.conf.read_text().replace("[store]\n", "[store]\ngroup = www-data\n", 1)
    cas.conf.write_text(conf)
    r = cas.cli("apply", "--domain", "Site.Test", "--validate", "file", "--webroot", root)
    assert r.returncode == 0, r.stderr
    answer = cas.store / "challenges" / "site.test" / "pki-validation" / "fileauth.txt"
    st = answer.stat()
    assert st.st_uid == 0 and st.st_gid == WWW.pw_gid and stat.S_IMODE(st.st_mode) == 0o640
    for d in (answer.parent, answer.parent.parent, cas.store / "challenges"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o750 and d.stat().st_uid == 0


# ---- found by a review after the audit ----

def test_include_snippets_planted_by_the_worker_are_rewritten_by_root(base):
    """A store that was the workers' (owner model) and is then given back to root keeps
    nothing they wrote as server configuration: the snippets are root's own again."""
    conf, store = owner_store(base)
    inc = store / "certs" / "shop" / "apache.conf"
    evil = 'ErrorLog "|/bin/sh -c id>/tmp/pwned"\n'
    assert as_www("sh", "-c", f"printf '{evil}' > {inc}").returncode == 0
    r = sync(conf, "--force")
    assert r.returncode == 0, r.stderr  # the owner model writes no snippet, nor reads one
    # the documented way out of the owner model is a new store; an operator who chowns
    # the old one back anyway still gets root's snippets
    subprocess.run(["chown", "-R", "root:root", store], check=True)
    conf.write_text(conf.read_text().replace("owner = www-data", "group = www-data"))
    r = sync(conf, "--force")
    assert r.returncode == 0, r.stderr
    text = inc.read_text()
    assert "ErrorLog" not in text and "SSLCertificateFile" in text
    assert inc.stat().st_uid == 0


def test_status_escapes_what_the_worker_wrote_into_meta_json(base):
    conf, store = owner_store(base)
    meta = store / "certs" / "shop" / "current" / "meta.json"
    forged = meta.read_text().replace('"local-ca"', '"local-ca\\u001b]2;PWNED\\u0007\\u001b[2J"')
    subprocess.run(["runuser", "-u", "www-data", "--", "tee", str(meta)], input=forged,
                   text=True, capture_output=True, check=True)
    r = certsync("--config", conf, "status", check=False, timeout=20)
    assert "\x1b" not in r.stdout + r.stderr and "\x07" not in r.stdout + r.stderr
    assert "\\x1b" in r.stdout


def test_a_certificate_no_web_server_serves_is_not_readable_by_the_workers(base):
    """`group = none` in a [cert]: a Tomcat-only certificate's key stays root's alone."""
    conf, store = write_conf(base, "group = www-data")
    conf.write_text(conf.read_text() + "\n[cert tomcatonly]\nprovider = local\n"
                    "domain = t.example.com\nformats = jks\ngroup = none\n")
    r = sync(conf)
    assert r.returncode == 0, r.stderr
    cur = store / "certs" / "tomcatonly" / "current"
    assert as_www("head", "-1", cur / "privkey.pem").returncode != 0
    assert as_www("ls", cur).returncode != 0
    assert stat.S_IMODE(cur.stat().st_mode) == 0o700
    assert stat.S_IMODE((cur / "privkey.pem").stat().st_mode) == 0o600
    # the other certificate is still served through the group
    assert as_www("head", "-1", store / "certs" / "shop" / "current" / "privkey.pem").returncode == 0
