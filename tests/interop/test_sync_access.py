"""In-server sync as the worker user (README "Who runs what"): with `certsync_sync on` (nginx)
or `CertSyncSync on` (Apache) the sync runs in the workers, as www-data. When www-data
cannot read what the sync needs, the config test fails at once, naming the directive's file
and line, the path, the errno text and the user, instead of a sync that fails every hour in
the error log; once the operator gives www-data what it needs, the config test passes."""
import os
import shutil

import pytest

import apache
import nginx
from apache import Apache, free_port, workdir
from conftest import WWW
from nginx import Nginx


@pytest.fixture
def world():
    """certsync.conf (root 0644) for a store www-data owns, an aliyun-cas provider whose
    credentials file is root's 0600 (never contacted: the config test only checks)."""
    root = workdir("certsync-access-")
    store, conf, creds = root / "store", root / "certsync.conf", root / "aliyun-credentials"
    store.mkdir(mode=0o750)
    os.chown(store, WWW.pw_uid, WWW.pw_gid)
    creds.write_text("access_key_id = LTAI000000000000\naccess_key_secret = not-a-secret\n")
    creds.chmod(0o600)
    conf.write_text(f"[store]\npath = {store}\nowner = www-data\n\n"
                    "[provider aliyun]\ntype = aliyun-cas\nendpoint = https://127.0.0.1:9\n"
                    f"credentials = {creds}\n\n"
                    "[cert shop]\nprovider = aliyun\ndomain = shop.example.com\n")
    yield root, conf, creds
    shutil.rmtree(root, ignore_errors=True)


def assert_names_the_problem(out, where, creds):
    assert where in out, out
    assert f"cannot read the credentials file '{creds}': Permission denied" in out, out
    assert "runs as user www-data (uid 33)" in out, out
    assert f"chown www-data {creds}" in out, out


@pytest.mark.skipif(not nginx.available(), reason="needs nginx and the nginx module")
def test_nginx_t_fails_when_www_data_cannot_read_the_credentials_file(world):
    root, conf, creds = world
    ngx = Nginx(root / "nginx", f"""
    certsync_config {conf};
    certsync_sync on;
    server {{ listen 127.0.0.1:{{port_http}}; location / {{ return 204; }} }}
""", ports=("http",), user="www-data")
    r = ngx.test_config()
    assert r.returncode != 0
    assert_names_the_problem(r.stderr, f"{ngx.conf}:{ngx.conf_line('certsync_sync on;')}: "
                             '"certsync_sync on": ', creds)

    # what the message says to do, done: the test passes
    os.chown(creds, WWW.pw_uid, WWW.pw_gid)
    r = ngx.test_config()
    assert r.returncode == 0, r.stderr

    # the same without in-server sync: root's `certsync sync` reads it, nothing to say
    os.chown(creds, 0, 0)
    ngx = Nginx(root / "nginx2", f"""
    certsync_config {conf};
    server {{ listen 127.0.0.1:{{port_http}}; location / {{ return 204; }} }}
""", ports=("http",), user="www-data")
    assert ngx.test_config().returncode == 0


@pytest.mark.skipif(not apache.available() or not apache.module_path().exists(),
                    reason="needs apache2 and out/mod_certsync.so")
def test_apachectl_t_fails_when_www_data_cannot_read_the_credentials_file(world):
    root, conf, creds = world
    ap = Apache(root / "httpd", f"Listen 127.0.0.1:{free_port()}\n",
                preamble=f"CertSyncConfig {conf}\nCertSyncSync on")
    r = ap.configtest()
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert_names_the_problem(out, f"{ap.conf}:{ap.line_of('CertSyncSync on')}: CertSyncSync on: ",
                             creds)

    os.chown(creds, WWW.pw_uid, WWW.pw_gid)
    r = ap.configtest()
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.skipif(not nginx.available(), reason="needs nginx and the nginx module")
def test_nginx_t_says_local_ca_renewal_needs_a_root_sync_when_the_ca_is_roots(world):
    """A store that root synced once before `owner = www-data` keeps a root-only local CA:
    the in-server sync could never take its lock."""
    root, conf, creds = world
    ca = root / "store" / "local-ca"
    ca.mkdir(mode=0o700)
    (ca / ".lock").write_text("")
    (ca / ".lock").chmod(0o600)
    conf.write_text(f"[store]\npath = {root / 'store'}\nowner = www-data\n\n"
                    "[cert dev]\ndomain = dev.example.com\n")
    ngx = Nginx(root / "nginx", f"""
    certsync_config {conf};
    certsync_sync on;
    server {{ listen 127.0.0.1:{{port_http}}; location / {{ return 204; }} }}
""", ports=("http",), user="www-data")
    r = ngx.test_config()
    assert r.returncode != 0
    assert f"cannot use the local CA '{ca}': Permission denied" in r.stderr, r.stderr
    assert "else renew with `certsync sync` as root" in r.stderr, r.stderr
    os.chown(ca, WWW.pw_uid, WWW.pw_gid)
    os.chown(ca / ".lock", WWW.pw_uid, WWW.pw_gid)
    assert ngx.test_config().returncode == 0
