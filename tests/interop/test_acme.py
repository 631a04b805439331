"""The acme provider against a real ACME CA (Debian's pebble): a certificate for two names
is issued with http-01 answered by real nginx and Apache through the certsync modules, or
by a plain nginx serving the `webroot`; it verifies against pebble's root and nginx serves
it; a failed challenge changes nothing and says which name and why; an order cut short is
resumed by the next sync."""
import json
import re
import subprocess
import time

import pytest

import pebble
from conftest import certsync, run
from nginx import Nginx, available, s_client, served_sha256

NAMES = ("shop.acme.test", "www.shop.acme.test")


@pytest.fixture(autouse=True)
def need_servers():
    assert pebble.available(), "pebble is missing: run build/install-deps.sh"
    assert available(), ("nginx or out/ngx_http_certsync_module.so is missing: "
                         "run build/install-deps.sh and make modules")


def write_conf(tmp_path, ca, extra_provider="", extra_cert=""):
    conf = tmp_path / "certsync.conf"
    conf.write_text(f"""[store]
path = {tmp_path}/store

[provider ca]
type = acme
directory = {ca.directory}
contact = mailto:ops@shop.acme.test
tos-agreed = yes
ca-file = {ca.ca_file}
{extra_provider}
[cert shop]
provider = ca
domain = {" ".join(NAMES)}
{extra_cert}
""")
    return conf


def module_nginx(tmp_path, conf):
    """nginx answering http-01 from the store (certsync_validation) and serving `shop`."""
    return Nginx(tmp_path / "ngx", f"""
    certsync_config {conf};
    server {{
        listen 127.0.0.1:{{port_tls}} ssl;
        server_name {" ".join(NAMES)};
        certsync_certificate shop;
        location / {{ return 200 "shop\\n"; }}
    }}
    server {{
        listen 127.0.0.1:{{port_http}};
        certsync_validation on;
        location / {{ return 301 https://$host$request_uri; }}
    }}
""")


def status(conf):
    return json.loads(certsync("--config", conf, "status", "--json", "shop").stdout)[0]


def wait_served(ngx, want, within=5.0):
    """Every worker notices the new current by itself (no reload): wait for a streak."""
    t0, ok = time.time(), 0
    while ok < 8:
        ok = ok + 1 if served_sha256(ngx.port("tls"), NAMES[0]) == want else 0
        assert time.time() - t0 < within, "nginx still serves something else"
        time.sleep(0.02)


def verify_issued(tmp_path, conf, ca, ngx=None):
    """The current version chains to pebble's root and covers both names; nginx serves it."""
    root = tmp_path / "pebble-root.pem"
    root.write_text(ca.roots())
    cur = tmp_path / "store" / "certs" / "shop" / "current"
    r = run("openssl", "verify", "-CAfile", root, "-untrusted", cur / "chain.pem",
            cur / "cert.pem")
    assert r.stdout.strip().endswith("OK")
    text = run("openssl", "x509", "-in", cur / "cert.pem", "-noout", "-ext",
               "subjectAltName").stdout
    for n in NAMES:
        assert f"DNS:{n}" in text
    st = status(conf)
    if ngx is not None:
        wait_served(ngx, st["fingerprint_sha256"])
        for n in NAMES:
            fp, out = s_client(ngx.port("tls"), n, "-CAfile", str(root), "-verify_return_error")
            assert fp == st["fingerprint_sha256"], out
    return st


def test_nginx_module_answers_http01_and_serves_the_issued_certificate(tmp_path):
    ngx = module_nginx(tmp_path, tmp_path / "certsync.conf")
    with pebble.Pebble(tmp_path / "pebble", http_port=ngx.port("http")) as ca:
        conf = write_conf(tmp_path, ca)
        with ngx:
            r = certsync("--config", conf, "sync")
            st = verify_issued(tmp_path, conf, ca, ngx)
            assert st["provider"] == "acme"
            # the tokens are gone once the authorizations completed
            ch = tmp_path / "store" / "challenges"
            assert not any(p.is_file() for p in ch.rglob("*")) if ch.exists() else True
            # a second sync has nothing to do: the certificate is good for long
            again = certsync("--config", conf, "sync")
            assert status(conf)["fingerprint_sha256"] == st["fingerprint_sha256"], again.stdout
        print(r.stdout, r.stderr)
