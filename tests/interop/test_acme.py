"""The acme provider against a real ACME CA (Debian's pebble): a certificate for two names
is issued with http-01 answered by real nginx and Apache through the certsync modules, or
by a plain nginx serving the `webroot`; it verifies against pebble's root and nginx serves
it; a failed challenge changes nothing and says which name and why; an order cut short is
resumed by the next sync."""
import json
import os
import re
import subprocess
import time
from pathlib import Path

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
            # a dry run first: due, the steps named, nothing asked of the CA or made in the store
            tree = lambda: sorted(str(p) for p in (tmp_path / "store").rglob("*"))
            before = tree()
            d = certsync("--config", conf, "sync", "--dry-run")
            assert "shop: due (no version yet)" in d.stdout, d.stdout
            assert f"the ACME CA {ca.directory}: the account" in d.stdout
            assert "an order for 2 name(s)" in d.stdout
            assert tree() == before
            assert "Added order" not in ca.log() and "There are now" not in ca.log()
            r = certsync("--config", conf, "sync")
            assert "shop: installed v1 (issued by the ACME CA" in r.stdout, r.stdout + r.stderr
            assert "Added order" in ca.log() and "There are now 1 accounts" in ca.log()
            st = verify_issued(tmp_path, conf, ca, ngx)
            assert st["provider"] == "acme"
            # both names were validated over http-01, from the store's answers...
            for n in NAMES:
                assert f"Attempting to validate w/ HTTP: http://{n}:" in ca.log()
            # ...which are gone once the authorizations completed
            ch = tmp_path / "store" / "challenges"
            assert sorted(p.name for p in ch.iterdir()) == sorted(NAMES)
            assert [p for p in ch.rglob("*") if p.is_file()] == []
            # a second sync has nothing to do: the certificate is good for long
            again = certsync("--config", conf, "sync")
            assert "shop: unchanged" in again.stdout
            assert status(conf)["fingerprint_sha256"] == st["fingerprint_sha256"]


def test_apache_module_answers_http01_and_serves_the_issued_certificate():
    import apache
    root = apache.workdir()
    try:
        http_port, https_port = apache.free_port(), apache.free_port()
        with pebble.Pebble(root / "pebble", http_port=http_port) as ca:
            conf = write_conf(root, ca)
            # the workers (www-data) read the store's challenge answers through its group
            conf.write_text(conf.read_text().replace("[store]\n", "[store]\ngroup = www-data\n"))
            vhosts = f"""
Listen 127.0.0.1:{https_port} https
<VirtualHost 127.0.0.1:{https_port}>
    ServerName {NAMES[0]}
    ServerAlias {NAMES[1]}
    SSLEngine on
    CertSyncCertificate shop
</VirtualHost>
Listen 127.0.0.1:{http_port}
<VirtualHost 127.0.0.1:{http_port}>
    ServerName {NAMES[0]}
    ServerAlias {NAMES[1]}
</VirtualHost>
"""
            with apache.Apache(root, vhosts, preamble=f"CertSyncConfig {conf}") as ap:
                r = certsync("--config", conf, "sync")
                assert "shop: installed v1" in r.stdout, r.stdout + r.stderr
                st = verify_issued(root, conf, ca)
                for n in NAMES:
                    assert re.search(r"answering /\.well-known/acme-challenge/\S+ for "
                                     + re.escape(n) + " from the store", ap.log()), ap.log()
                for n in NAMES:
                    ok, _ = apache.wait_until(
                        lambda n=n: apache.served_sha256(https_port, n) == st["fingerprint_sha256"],
                        3.0)
                    assert ok, ap.log()
                # a renewal: the same parent, children and generation serve it (no graceful)
                before = (ap.pid(), ap.child_pids(), ap.generation())
                r = certsync("--config", conf, "sync", "--force")
                assert "shop: installed v2" in r.stdout, r.stdout + r.stderr
                v2 = status(conf)["fingerprint_sha256"]
                assert v2 != st["fingerprint_sha256"]
                for n in NAMES:
                    ok, _ = apache.wait_until(
                        lambda n=n: apache.served_sha256(https_port, n) == v2, 3.0)
                    assert ok, ap.log()
                assert (ap.pid(), ap.child_pids(), ap.generation()) == before
    finally:
        apache.cleanup(root)


def test_webroot_served_by_a_plain_nginx(tmp_path):
    """No certsync module in this server: the tokens go to the `webroot` nginx serves."""
    webroot = tmp_path / "www"
    webroot.mkdir()
    ngx = Nginx(tmp_path / "ngx", f"""
    server {{
        listen 127.0.0.1:{{port_http}};
        root {webroot};
    }}
""", ports=("http",))
    with pebble.Pebble(tmp_path / "pebble", http_port=ngx.port("http")) as ca:
        conf = write_conf(tmp_path, ca, extra_provider=f"webroot = {webroot}\n")
        with ngx:
            r = certsync("--config", conf, "sync")
            assert "shop: installed v1" in r.stdout, r.stdout + r.stderr
            verify_issued(tmp_path, conf, ca)
            assert "Attempting to validate w/ HTTP" in ca.log()
        # removed after the authorizations completed; the directories stay for the next time
        assert list((webroot / ".well-known" / "acme-challenge").iterdir()) == []


def test_a_failed_challenge_changes_nothing_and_names_the_domain_and_why(tmp_path):
    ngx = module_nginx(tmp_path, tmp_path / "certsync.conf")
    # pebble reuses a valid authorization half the time: here the renewal must prove again
    with pebble.Pebble(tmp_path / "pebble", http_port=ngx.port("http"),
                       env={"PEBBLE_AUTHZREUSE": "0"}) as ca:
        conf = write_conf(tmp_path, ca)
        with ngx:
            certsync("--config", conf, "sync")
            before = status(conf)["fingerprint_sha256"]
        # nginx is down: pebble's validation finds nothing listening
        r = certsync("--config", conf, "sync", "--force", check=False)
        assert r.returncode != 0
        err = r.stdout + r.stderr
        assert re.search(r"the http-01 challenge for '(www\.)?shop\.acme\.test' failed: "
                         r"urn:ietf:params:acme:error:connection: .*(refused|connect)", err), err
        st = status(conf)
        assert st["fingerprint_sha256"] == before and st["version"] == 1
        assert "shop.acme.test' failed" in json.dumps(st)


@pytest.mark.parametrize("step", ["order", "authorizations", "finalize"])
def test_an_order_cut_short_is_resumed_by_the_next_sync(tmp_path, step):
    """A sync that dies after placing the order, after proving the names, or after
    finalizing (the CSR's key kept with the order) is resumed by the next: one order."""
    ngx = module_nginx(tmp_path, tmp_path / "certsync.conf")
    with pebble.Pebble(tmp_path / "pebble", http_port=ngx.port("http")) as ca:
        conf = write_conf(tmp_path, ca)
        with ngx:
            r = certsync("--config", conf, "sync", check=False,
                         env=dict(os.environ, CERTSYNC_ACME_STOP_AFTER=step))
            assert r.returncode != 0
            m = re.search(rf"stopped after the {step} step of order (\S+),", r.stdout + r.stderr)
            assert m, r.stdout + r.stderr
            assert "current" not in [p.name for p in (tmp_path / "store" / "certs" / "shop").iterdir()]
            state = tmp_path / "store" / "acme" / "ca" / "order-shop.json"
            assert json.loads(state.read_text())["url"] == m.group(1)
            assert oct(state.stat().st_mode & 0o777) == "0o600"
            if step == "finalize":
                key = state.with_suffix(".key")
                assert oct(key.stat().st_mode & 0o777) == "0o600"
                kept = run("openssl", "pkey", "-in", key, "-pubout").stdout
            r = certsync("--config", conf, "sync")
            assert "shop: installed v1" in r.stdout, r.stdout + r.stderr
            verify_issued(tmp_path, conf, ca, ngx)
            if step == "finalize":  # the certificate is for the key of the CSR sent before
                cur = tmp_path / "store" / "certs" / "shop" / "current" / "privkey.pem"
                assert run("openssl", "pkey", "-in", cur, "-pubout").stdout == kept
        # one order in pebble for both syncs, and the kept state is gone once issued
        assert len(re.findall(r'Added order "', ca.log())) == 1, ca.log()
        assert len(re.findall(r"Issued certificate serial", ca.log())) == 1, ca.log()
        assert not state.exists() and not state.with_suffix(".key").exists()
        key = tmp_path / "store" / "acme" / "ca" / "account.key"
        assert oct(key.stat().st_mode & 0o777) == "0o600"


def test_reuse_key_keeps_the_key_across_renewals(tmp_path):
    ngx = module_nginx(tmp_path, tmp_path / "certsync.conf")
    with pebble.Pebble(tmp_path / "pebble", http_port=ngx.port("http")) as ca:
        conf = write_conf(tmp_path, ca, extra_cert="reuse-key = yes\n")
        cur = tmp_path / "store" / "certs" / "shop" / "current"
        pub = lambda: run("openssl", "pkey", "-in", cur / "privkey.pem", "-pubout").stdout
        with ngx:
            certsync("--config", conf, "sync")
            first = pub()
            certsync("--config", conf, "sync", "--force")
            assert status(conf)["version"] == 2
            assert pub() == first
            # a new key-type cannot keep the key: one new key, then kept again
            conf.write_text(conf.read_text().replace("reuse-key = yes",
                                                     "reuse-key = yes\nkey-type = rsa2048"))
            certsync("--config", conf, "sync", "--force")
            rsa = pub()
            assert rsa != first and "rsaEncryption" in run(
                "openssl", "x509", "-in", cur / "cert.pem", "-noout", "-text").stdout
            certsync("--config", conf, "sync", "--force")
            assert pub() == rsa
            conf.write_text(conf.read_text().replace("reuse-key = yes", "reuse-key = no"))
            certsync("--config", conf, "sync", "--force")
            assert pub() != rsa


def test_terms_must_be_agreed_and_a_lost_account_url_is_found_again(tmp_path):
    ngx = module_nginx(tmp_path, tmp_path / "certsync.conf")
    with pebble.Pebble(tmp_path / "pebble", http_port=ngx.port("http")) as ca:
        conf = write_conf(tmp_path, ca)
        conf.write_text(conf.read_text().replace("tos-agreed = yes\n", ""))
        with ngx:
            r = certsync("--config", conf, "sync", check=False)
            assert r.returncode != 0
            assert re.search(r"ACME CA https://127\.0\.0\.1:\d+/dir has terms of service "
                             r"\(data:text/plain,\S+\): read them and set tos-agreed = yes in "
                             r"\[provider ca\]", r.stderr), r.stdout + r.stderr
            assert "There are now 1 accounts" not in ca.log()
            conf.write_text(conf.read_text().replace("type = acme\n", "type = acme\ntos-agreed = yes\n"))
            certsync("--config", conf, "sync")
            # the account URL is lost, its key is not: newAccount with onlyReturnExisting
            (tmp_path / "store" / "acme" / "ca" / "account.json").unlink()
            r = certsync("--config", conf, "sync", "--force")
            assert "shop: installed v2" in r.stdout, r.stdout + r.stderr
        assert len(re.findall(r"There are now \d+ accounts", ca.log())) == 1, ca.log()
        saved = json.loads((tmp_path / "store" / "acme" / "ca" / "account.json").read_text())
        assert saved["url"].startswith(f"https://127.0.0.1:{ca.port}/my-account/")


def test_refused_nonces_are_retried(tmp_path):
    """pebble refuses half of the good nonces here (5 % by default): each badNonce is
    retried with the fresh nonce of the refusal, and the issuance goes through."""
    ngx = module_nginx(tmp_path, tmp_path / "certsync.conf")
    with pebble.Pebble(tmp_path / "pebble", http_port=ngx.port("http"),
                       env={"PEBBLE_WFE_NONCEREJECT": "50"}) as ca:
        conf = write_conf(tmp_path, ca)
        with ngx:
            r = certsync("--config", conf, "sync")
            assert "shop: installed v1" in r.stdout, r.stdout + r.stderr
            verify_issued(tmp_path, conf, ca, ngx)
        # without the retry, one of the ~11 signed requests failing would fail the sync
        requests = int(re.search(r"\((\d+) requests\)", r.stdout).group(1))
        assert requests > 13, r.stdout  # 13 with no refusal and no extra poll


def test_a_ca_that_is_down_or_forgot_everything(tmp_path):
    """A sync while the CA is down fails, naming it, and keeps the order in progress; a CA
    that comes back without its accounts and orders (a test CA restarted, a staging reset)
    gets the account registered again and a new order."""
    ngx = module_nginx(tmp_path, tmp_path / "certsync.conf")
    ca = pebble.Pebble(tmp_path / "pebble", http_port=ngx.port("http"))
    state = tmp_path / "store" / "acme" / "ca" / "order-shop.json"
    with ca:
        conf = write_conf(tmp_path, ca)
        with ngx:
            r = certsync("--config", conf, "sync", check=False,
                         env=dict(os.environ, CERTSYNC_ACME_STOP_AFTER="order"))
            assert r.returncode != 0 and state.exists()
            ca.stop()
            r = certsync("--config", conf, "sync", check=False)
            assert r.returncode != 0
            assert f"GET {ca.directory} failed" in r.stderr, r.stderr
            assert state.exists()
            ca.restart()
            r = certsync("--config", conf, "sync")
            assert "shop: installed v1" in r.stdout, r.stdout + r.stderr
            verify_issued(tmp_path, conf, ca, ngx)
    assert not state.exists()
    log = ca.log().split("Starting Pebble ACME server")[-1]
    assert len(re.findall(r"There are now 1 accounts", log)) == 1
    assert len(re.findall(r'Added order "', log)) == 1


def test_the_cas_https_is_verified(tmp_path):
    """Without ca-file, pebble's test certificate is not trusted: nothing is sent, and the
    error says where a private CA's certificate goes."""
    with pebble.Pebble(tmp_path / "pebble", http_port=1) as ca:
        conf = write_conf(tmp_path, ca)
        conf.write_text(conf.read_text().replace(f"ca-file = {ca.ca_file}\n", ""))
        r = certsync("--config", conf, "sync", check=False)
        assert r.returncode != 0
        assert re.search(rf"ACME CA: GET {re.escape(ca.directory)} failed: .*certificate.*; "
                         r"a private CA's HTTPS certificate goes in ca-file", r.stderr), r.stderr
        assert ca.log().count("GET /dir") == 1  # the fixture's own readiness check
        assert "TLS handshake error" in ca.log()


EAB_KID = "kid-1"  # pebble's example external account binding
EAB_KEY = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"


def test_external_account_binding(tmp_path):
    """A CA that requires EAB: without it the error says which keys to set; a MAC key file
    others can read is refused before anything is sent; a wrong key is the CA's refusal;
    the right one registers the account and the certificate is issued."""
    ngx = module_nginx(tmp_path, tmp_path / "certsync.conf")
    with pebble.Pebble(tmp_path / "pebble", http_port=ngx.port("http"),
                       eab={EAB_KID: EAB_KEY}) as ca:
        conf = write_conf(tmp_path, ca)
        with ngx:
            r = certsync("--config", conf, "sync", check=False)
            assert r.returncode != 0
            assert (f"ACME CA {ca.directory} requires an external account binding: set eab-kid "
                    "and eab-hmac-file in [provider ca]") in r.stderr, r.stderr
            hmac = tmp_path / "eab.key"
            hmac.write_text(EAB_KEY + "\n")
            hmac.chmod(0o640)
            conf = write_conf(tmp_path, ca, extra_provider=f"eab-kid = {EAB_KID}\n"
                                                           f"eab-hmac-file = {hmac}\n")
            r = certsync("--config", conf, "sync", check=False)
            assert r.returncode != 0
            assert (f"eab-hmac-file '{hmac}' can be read by group or others (mode 0640): "
                    "refused, it is a secret; chmod 600 it") in r.stderr, r.stderr
            assert EAB_KEY not in r.stdout + r.stderr
            hmac.chmod(0o600)
            # a 0600 file of another user (one the workers could have swapped in) is refused
            import pwd
            www = pwd.getpwnam("www-data").pw_uid
            os.chown(hmac, www, -1)
            r = certsync("--config", conf, "sync", check=False)
            assert r.returncode != 0
            assert (f"eab-hmac-file '{hmac}' belongs to uid {www}: refused, a secret must "
                    "belong to root or to the user certsync runs as") in r.stderr, r.stderr
            os.chown(hmac, 0, -1)
            hmac.write_text(EAB_KEY[::-1] + "\n")  # a wrong MAC key: pebble refuses
            r = certsync("--config", conf, "sync", check=False)
            assert r.returncode != 0
            assert ("ACME CA: account: HTTP 403 urn:ietf:params:acme:error:unauthorized: "
                    "external account binding JWS verification error") in r.stderr, r.stderr
            assert "There are now 1 accounts" not in ca.log()
            hmac.write_text(EAB_KEY + "\n")
            r = certsync("--config", conf, "sync")
            assert "shop: installed v1" in r.stdout, r.stdout + r.stderr
            verify_issued(tmp_path, conf, ca, ngx)
            assert "There are now 1 accounts" in ca.log()
            assert EAB_KEY not in r.stdout + r.stderr


def test_revoke_an_acme_certificate(tmp_path):
    """`certsync revoke --name` revokes the current version at the CA with the account key;
    the store remembers it: the next sync replaces it, a rollback to it is refused."""
    ngx = module_nginx(tmp_path, tmp_path / "certsync.conf")
    with pebble.Pebble(tmp_path / "pebble", http_port=ngx.port("http")) as ca:
        conf = write_conf(tmp_path, ca)
        conf.write_text(conf.read_text() + "\n[cert local]\ndomain = local.test\n")
        with ngx:
            certsync("--config", conf, "sync", "shop")
            certsync("--config", conf, "sync", "--force", "shop")
            v2 = status(conf)
            assert v2["version"] == 2
            serial = v2["serial"]
            assert ca.cert_status(serial.lower())["Status"] == "Valid"
            r = certsync("--config", conf, "revoke", "--name", "shop", check=False)
            assert r.returncode == 2 and "confirm with --yes" in r.stderr, r.stderr
            r = certsync("--config", conf, "revoke", "--name", "local", "--yes", check=False)
            assert r.returncode == 1
            assert "[cert local] is not issued by an ACME CA" in r.stderr, r.stderr
            r = certsync("--config", conf, "revoke", "--name", "shop", "--reason",
                         "keyCompromise", "--yes")
            assert (f"revoke: done (shop v2, serial {serial}, at the ACME CA {ca.directory}); "
                    "`certsync rollback` refuses it and the next sync replaces it") in r.stdout
            st = ca.cert_status(serial.lower())
            assert st["Status"] == "Revoked" and st["Reason"] == 1, st
            state = json.loads((tmp_path / "store" / "certs" / "shop" / "state.json").read_text())
            assert state["revoked"] == [v2["fingerprint_sha256"]]
            # revoking it again: the CA says so, and nothing changes
            r = certsync("--config", conf, "revoke", "--name", "shop", "--yes", check=False)
            assert r.returncode == 1 and "alreadyRevoked" in r.stderr, r.stderr
            # the revoked current version is due: the next sync replaces it, nginx serves it
            r = certsync("--config", conf, "sync", "shop")
            assert "shop: installed v3" in r.stdout, r.stdout + r.stderr
            verify_issued(tmp_path, conf, ca, ngx)
            # a rollback would go back to the revoked v2: refused
            r = certsync("--config", conf, "rollback", "shop", check=False)
            assert r.returncode == 1 and "v2 of 'shop' was revoked" in r.stderr, r.stderr
            assert status(conf)["version"] == 3


# ---- dns-01: a wildcard through the Alidns emulator, and a hook ----

WILD = ("acme.test", "*.acme.test")


def dns_conf(tmp_path, ca, publisher, extra=""):
    conf = tmp_path / "certsync.conf"
    conf.write_text(f"""[store]
path = {tmp_path}/store

[provider ca]
type = acme
directory = {ca.directory}
tos-agreed = yes
ca-file = {tmp_path}/ca-bundle.pem
challenge = dns-01
dns = {publisher}
dns-resolver = 127.0.0.1:{ca.dns}
dns-wait = 20s
{extra}
[cert wild]
provider = ca
domain = {" ".join(WILD)}
""")
    (tmp_path / "ca-bundle.pem").write_text(ca.ca_file.read_text())
    return conf


def wild_nginx(tmp_path, conf):
    return Nginx(tmp_path / "ngx", f"""
    certsync_config {conf};
    server {{
        listen 127.0.0.1:{{port_tls}} ssl;
        server_name {" ".join(WILD)};
        certsync_certificate wild;
        location / {{ return 200 "wild\\n"; }}
    }}
""", ports=("tls",))


def check_wildcard_served(tmp_path, conf, ca, ngx):
    root = tmp_path / "pebble-root.pem"
    root.write_text(ca.roots())
    cur = tmp_path / "store" / "certs" / "wild" / "current"
    r = run("openssl", "verify", "-CAfile", root, "-untrusted", cur / "chain.pem", cur / "cert.pem")
    assert r.stdout.strip().endswith("OK")
    san = run("openssl", "x509", "-in", cur / "cert.pem", "-noout", "-ext", "subjectAltName").stdout
    assert "DNS:acme.test" in san and "DNS:*.acme.test" in san, san
    fp = json.loads(certsync("--config", conf, "status", "--json", "wild").stdout)[0][
        "fingerprint_sha256"]
    for sni in ("acme.test", "www.acme.test", "shop.acme.test"):
        got, out = s_client(ngx.port("tls"), sni, "-CAfile", str(root), "-verify_return_error")
        assert got == fp, out


def test_wildcard_with_dns01_through_alidns(tmp_path):
    """The TXT records go through the Alidns API (the emulator checks every signature),
    which forwards them to challtestsrv, where pebble really resolves them; the sync waits
    until the resolver answers them, and removes them afterwards."""
    from test_aliyun import Emu, KEY_ID, SECRET
    (tmp_path / "emu").mkdir()
    emu = Emu(tmp_path / "emu", 1)
    cred = tmp_path / "ali.cred"
    cred.write_text(f"access_key_id = {KEY_ID}\naccess_key_secret = {SECRET}\n")
    cred.chmod(0o600)
    try:
        with pebble.Pebble(tmp_path / "pebble", http_port=1) as ca:
            emu.ctl("alidns-forward", url=f"http://127.0.0.1:{ca.dns_mgmt}")
            conf = dns_conf(tmp_path, ca, "alidns",
                            f"endpoint = https://127.0.0.1:{emu.port}\ncredentials = {cred}\n")
            with open(tmp_path / "ca-bundle.pem", "a") as f:
                f.write(emu.ca.read_text())
            # the zone is not in the account yet: the error says so, nothing is left behind
            r = certsync("--config", conf, "sync", check=False)
            assert r.returncode != 0
            assert ("Alidns: no zone of the account holds _acme-challenge.acme.test "
                    "(InvalidDomainName.NoExist") in r.stderr, r.stderr
            emu.ctl("alidns-domain", name="acme.test")
            emu.ctl("clear", requests="1")
            # one 503 on the first record: retried like every call of the service
            emu.ctl("fault", action="AddDomainRecord", kind="http503", count="1")
            ngx = wild_nginx(tmp_path, conf)
            with ngx:
                r = certsync("--config", conf, "sync")
                assert "wild: installed v1 (issued by the ACME CA" in r.stdout, r.stdout + r.stderr
                check_wildcard_served(tmp_path, conf, ca, ngx)
            reqs = [q for q in emu.ctl("requests")["requests"]]
            acts = [q["action"] for q in reqs]
            assert acts.count("AddDomainRecord") == 3, acts  # two records, one retried
            assert acts.count("DeleteDomainRecord") == 2, acts
            assert all(q["auth"] == "ok" and q["sig"] == "v3" for q in reqs), reqs
            assert emu.ctl("alidns-records")["records"] == []
            # challtestsrv got both values through the emulator, and has none left
            dns_log = (tmp_path / "pebble" / "challtestsrv.log").read_text()
            assert len(set(re.findall(r'Added DNS-01 TXT challenge for Host '
                                      r'"_acme-challenge\.acme\.test\." - Value "(\S+)"',
                                      dns_log))) == 2, dns_log
            assert dns_log.strip().splitlines()[-1].endswith(
                'Removed DNS-01 TXT challenge for Host "_acme-challenge.acme.test."'), dns_log
            assert SECRET not in r.stdout + r.stderr
    finally:
        emu.stop()


def test_dns01_through_a_hook(tmp_path):
    """dns = /path/to/hook: run with add/remove and CERTSYNC_DOMAIN, CERTSYNC_TXT_NAME,
    CERTSYNC_TXT_VALUE (no shell); here it sets the record in challtestsrv."""
    # every order proves the names again (pebble reuses a valid authorization half the time)
    with pebble.Pebble(tmp_path / "pebble", http_port=1, env={"PEBBLE_AUTHZREUSE": "0"}) as ca:
        log = tmp_path / "hook.log"
        hook = tmp_path / "dns-hook"
        hook.write_text(f"""#!/bin/sh
echo "$1 $CERTSYNC_DOMAIN $CERTSYNC_TXT_NAME $CERTSYNC_TXT_VALUE" >> {log}
case "$1" in
add) curl -sf -d '{{"host":"'"$CERTSYNC_TXT_NAME"'.","value":"'"$CERTSYNC_TXT_VALUE"'"}}' \\
        http://127.0.0.1:{ca.dns_mgmt}/set-txt ;;
remove) curl -sf -d '{{"host":"'"$CERTSYNC_TXT_NAME"'."}}' \\
        http://127.0.0.1:{ca.dns_mgmt}/clear-txt ;;
*) echo "unknown verb $1" >&2; exit 2 ;;
esac
""")
        hook.chmod(0o755)
        conf = dns_conf(tmp_path, ca, hook)
        ngx = wild_nginx(tmp_path, conf)
        with ngx:
            r = certsync("--config", conf, "sync")
            assert "wild: installed v1" in r.stdout, r.stdout + r.stderr
            check_wildcard_served(tmp_path, conf, ca, ngx)
        lines = log.read_text().splitlines()
        adds = [l.split() for l in lines if l.startswith("add ")]
        removes = [l.split() for l in lines if l.startswith("remove ")]
        # one record per authorization (the name and its wildcard), each removed again
        assert len(adds) == 2 and len(removes) == 2, lines
        assert [a[1:3] for a in adds] == [["acme.test", "_acme-challenge.acme.test"]] * 2
        assert sorted(a[3] for a in adds) == sorted(r[3] for r in removes)
        assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", a[3]) for a in adds)
        # a hook that fails: the sync fails naming it and its stderr, current stays
        hook.write_text("#!/bin/sh\necho 'the DNS API said no' >&2\nexit 3\n")
        r = certsync("--config", conf, "sync", "--force", check=False)
        assert r.returncode != 0
        assert ("[provider ca] dns hook (add _acme-challenge.acme.test): 'dns-hook' exited with "
                "status 3: the DNS API said no") in r.stderr.replace(str(hook), "dns-hook"), r.stderr
        assert json.loads(certsync("--config", conf, "status", "--json", "wild").stdout)[0][
            "version"] == 1


# ---- renewals reach the servers with the same processes; the sync inside nginx ----

def test_a_renewal_is_swapped_into_nginx_with_the_same_processes(tmp_path):
    ngx = module_nginx(tmp_path, tmp_path / "certsync.conf")
    with pebble.Pebble(tmp_path / "pebble", http_port=ngx.port("http")) as ca:
        conf = write_conf(tmp_path, ca)
        with ngx:
            certsync("--config", conf, "sync")
            v1 = verify_issued(tmp_path, conf, ca, ngx)
            pids = (ngx.master_pid, ngx.worker_pids())
            r = certsync("--config", conf, "sync", "--force")
            assert "shop: installed v2 (issued by the ACME CA" in r.stdout, r.stdout + r.stderr
            v2 = verify_issued(tmp_path, conf, ca, ngx)  # waits until every worker serves it
            assert v2["fingerprint_sha256"] != v1["fingerprint_sha256"]
            assert (ngx.master_pid, ngx.worker_pids()) == pids  # no reload, no restart
            assert "reload" not in ngx.log().lower()


def test_nginx_in_server_sync_issues_from_acme_serving_the_fallback_until_then(tmp_path):
    """certsync_sync on: the sync inside nginx (a thread of its pool) drives the ACME order
    while the same nginx answers pebble's http-01 requests; the fallback is served until
    the first certificate is installed, and each renewal after it is swapped in."""
    conf = tmp_path / "certsync.conf"
    # a renew-before longer than pebble's certificates live: every run issues again
    ngx = Nginx(tmp_path / "ngx", f"""
    certsync_config {conf};
    certsync_sync on;
    certsync_sync_interval 1s;
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
    with pebble.Pebble(tmp_path / "pebble", http_port=ngx.port("http")) as ca:
        write_conf(tmp_path, ca, extra_cert="renew-before = 36500d\n")
        root = tmp_path / "pebble-root.pem"
        root.write_text(ca.roots())
        store = tmp_path / "store" / "certs" / "shop"
        with ngx:
            # the first requests get the fallback (or, if the sync was quick, v1)
            fp, text = s_client(ngx.port("tls"), NAMES[0])
            fallback = "CN = certsync fallback for shop" in text
            assert fallback or (store / "current").exists(), text
            t0 = time.time()
            while not (store / "current").exists() or status(conf)["version"] < 2:
                assert time.time() - t0 < 60, ngx.log() + ca.log()
                time.sleep(0.3)
            assert "certsync: the sync installed \"shop\" v1" in ngx.log(), ngx.log()
            assert "Attempting to validate w/ HTTP" in ca.log()
            pids = (ngx.master_pid, ngx.worker_pids())
            # what is served follows the store (a renewal may land while we look)
            for _ in range(100):
                want = status(conf)["fingerprint_sha256"]
                got, out = s_client(ngx.port("tls"), NAMES[1], "-CAfile", str(root),
                                    "-verify_return_error")
                if got == want:
                    break
                time.sleep(0.1)
            else:
                raise AssertionError("nginx does not serve what its sync installed")
            assert (ngx.master_pid, ngx.worker_pids()) == pids


def test_a_renewal_reaches_tomcat_through_certsync_tomcat_with_the_same_process(tmp_path):
    """Tomcat has no module: http-01 goes to a webroot (served here by Python's http.server
    on pebble's http port), certsync-tomcat writes the keystore and asks Tomcat's manager
    to re-read it; the renewal is served by the same Tomcat process."""
    import functools
    import http.server
    import threading
    from conftest import ROOT
    from tomcat import Tomcat, available as tomcat_available
    assert tomcat_available(), "tomcat10 and tomcat10-admin are missing: run build/install-deps.sh"
    helper = os.environ.get("CERTSYNC_TOMCAT", str(ROOT / "out" / "certsync-tomcat"))
    webroot = tmp_path / "www"
    webroot.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(webroot))
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    creds = tmp_path / "manager.cred"
    creds.write_text("certsync:manager-pw\n")
    creds.chmod(0o600)
    try:
        with pebble.Pebble(tmp_path / "pebble", http_port=srv.server_address[1]) as ca:
            conf = write_conf(tmp_path, ca, extra_provider=f"webroot = {webroot}\n",
                              extra_cert="key-type = rsa2048\n")
            certsync("--config", conf, "sync")
            ks = tmp_path / "shop.jks"
            tomcat_helper = lambda *a: run(helper, "--config", conf, "--cert", "shop",
                                           "--keystore", ks, "--type", "jks", *a)
            assert "shop: wrote v1" in tomcat_helper().stdout
            with Tomcat(tmp_path / "tc", ks, "JKS", password_file=Path(str(ks) + ".password"),
                        key_alias="shop") as tc:
                pid = tc.pid()
                assert tc.served_sha256() == status(conf)["fingerprint_sha256"]
                r = certsync("--config", conf, "sync", "--force")
                assert "shop: installed v2 (issued by the ACME CA" in r.stdout, r.stdout + r.stderr
                r = tomcat_helper("--reload-url", tc.reload_url, "--manager-credentials", creds)
                assert "shop: wrote v2" in r.stdout
                assert "Tomcat reloaded: OK - Reloaded TLS configuration" in r.stdout
                assert tc.served_sha256() == status(conf)["fingerprint_sha256"]
                assert tc.pid() == pid and tc.running()
    finally:
        srv.shutdown()


def test_preferred_chain_picks_an_alternate_chain(tmp_path):
    """pebble offers a second chain to another root (Link: rel="alternate"); with
    preferred-chain naming that root, its chain is installed; without, the default."""
    ngx = module_nginx(tmp_path, tmp_path / "certsync.conf")
    with pebble.Pebble(tmp_path / "pebble", http_port=ngx.port("http"),
                       env={"PEBBLE_ALTERNATE_ROOTS": "1"}) as ca:
        roots = [tmp_path / "root0.pem", tmp_path / "root1.pem"]
        for i, f in enumerate(roots):
            f.write_text(ca.roots(i))
        cn1 = run("openssl", "x509", "-in", roots[1], "-noout", "-subject",
                  "-nameopt", "multiline").stdout.split("commonName", 1)[1].split("=", 1)[1].strip()
        cur = tmp_path / "store" / "certs" / "shop" / "current"

        def verifies_with(root):
            r = run("openssl", "verify", "-CAfile", root, "-untrusted", cur / "chain.pem",
                    cur / "cert.pem", check=False)
            return r.returncode == 0

        conf = write_conf(tmp_path, ca)
        with ngx:
            certsync("--config", conf, "sync")
            assert verifies_with(roots[0]) and not verifies_with(roots[1])
            conf = write_conf(tmp_path, ca, extra_provider=f"preferred-chain = {cn1}\n")
            r = certsync("--config", conf, "sync", "--force")
            assert "shop: installed v2" in r.stdout, r.stdout + r.stderr
            assert verifies_with(roots[1]) and not verifies_with(roots[0])
            # a CA name no chain has: the default chain
            conf = write_conf(tmp_path, ca, extra_provider="preferred-chain = No Such CA\n")
            certsync("--config", conf, "sync", "--force")
            assert verifies_with(roots[0])


def test_tls_alpn01_answered_by_nginx_in_its_handshake(tmp_path):
    """challenge = tls-alpn-01: pebble connects to nginx's TLS port with ALPN acme-tls/1 and
    gets the validation certificate the sync left in the store, from the module's
    handshake callbacks; other clients keep getting the served certificate and http/1.1."""
    ngx = module_nginx(tmp_path, tmp_path / "certsync.conf")
    with pebble.Pebble(tmp_path / "pebble", http_port=1, tls_port=ngx.port("tls")) as ca:
        conf = write_conf(tmp_path, ca, extra_provider="challenge = tls-alpn-01\n")
        with ngx:
            r = certsync("--config", conf, "sync")
            assert "shop: installed v1" in r.stdout, r.stdout + r.stderr
            st = verify_issued(tmp_path, conf, ca, ngx)
            for n in NAMES:
                assert f'certsync: answering tls-alpn-01 for "{n}" from the store' in ngx.log()
            assert "Attempting to validate w/ HTTP" not in ca.log()
            # the answers are gone; an acme-tls/1 handshake now has nothing to get
            left = [p for p in (tmp_path / "store" / "challenges").rglob("*") if p.is_file()]
            assert left == []
            out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{ngx.port('tls')}",
                                  "-servername", NAMES[0], "-alpn", "acme-tls/1"],
                                 input="", capture_output=True, text=True, timeout=20)
            assert "BEGIN CERTIFICATE" not in out.stdout
            assert f'no tls-alpn-01 answer for "{NAMES[0]}" in the store' in ngx.log()
            # everyone else: the served certificate, with http/1.1 chosen as nginx would
            out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{ngx.port('tls')}",
                                  "-servername", NAMES[0], "-alpn", "h2,http/1.1"],
                                 input="", capture_output=True, text=True, timeout=20)
            assert "ALPN protocol: http/1.1" in out.stdout, out.stdout
            fp, _ = s_client(ngx.port("tls"), NAMES[0])
            assert fp == st["fingerprint_sha256"]


def alpn_vhost(https_port, protocols="Protocols http/1.1 acme-tls/1"):
    return f"""
Listen 127.0.0.1:{https_port} https
<VirtualHost 127.0.0.1:{https_port}>
    ServerName {NAMES[0]}
    ServerAlias {NAMES[1]}
    SSLEngine on
    {protocols}
    CertSyncCertificate shop
</VirtualHost>
"""


def alpn_handshake(port, alpn):
    return subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
                           "-servername", NAMES[0], "-alpn", alpn],
                          input="", capture_output=True, text=True, timeout=20)


@pytest.mark.parametrize("key_type", ["ec256", "rsa2048"])
def test_tls_alpn01_answered_by_apache(key_type):
    """challenge = tls-alpn-01 with Apache: pebble connects to Apache's https port with ALPN
    acme-tls/1; the module's protocol hooks select it and its ssl_answer_challenge hook gives
    mod_ssl the validation certificate the sync left in the store. The certificate is issued
    and Apache serves it, with the same processes; other clients keep http/1.1. With an RSA
    [cert] the served (fallback) RSA certificate must not be the one the CA gets either."""
    import apache
    root = apache.workdir()
    try:
        https_port = apache.free_port()
        with pebble.Pebble(root / "pebble", http_port=1, tls_port=https_port) as ca:
            conf = write_conf(root, ca, extra_provider="challenge = tls-alpn-01\n",
                              extra_cert=f"key-type = {key_type}\n")
            conf.write_text(conf.read_text().replace("[store]\n", "[store]\ngroup = www-data\n"))
            with apache.Apache(root, alpn_vhost(https_port),
                               preamble=f"CertSyncConfig {conf}") as ap:
                before = (ap.pid(), ap.child_pids(), ap.generation())
                r = certsync("--config", conf, "sync")
                assert "shop: installed v1" in r.stdout, r.stdout + r.stderr + ap.log()
                st = verify_issued(root, conf, ca)
                for n in NAMES:
                    assert f'certsync: answering tls-alpn-01 for "{n}" from the store' in ap.log()
                assert "Attempting to validate w/ HTTP" not in ca.log()
                for n in NAMES:
                    ok, _ = apache.wait_until(
                        lambda n=n: apache.served_sha256(https_port, n) == st["fingerprint_sha256"],
                        3.0)
                    assert ok, ap.log()
                assert (ap.pid(), ap.child_pids(), ap.generation()) == before
                # the answers are gone: an acme-tls/1 handshake now gets no certificate at all
                left = [p for p in (root / "store" / "challenges").rglob("*") if p.is_file()]
                assert left == []
                out = alpn_handshake(https_port, "acme-tls/1")
                assert "BEGIN CERTIFICATE" not in out.stdout, out.stdout
                assert f'no tls-alpn-01 answer for "{NAMES[0]}" in the store' in ap.log()
                # everyone else: the served certificate, with http/1.1
                out = alpn_handshake(https_port, "h2,http/1.1")
                assert "ALPN protocol: http/1.1" in out.stdout, out.stdout
                assert apache.served_sha256(https_port, NAMES[0]) == st["fingerprint_sha256"]
    finally:
        apache.cleanup(root)


def test_tls_alpn01_needs_acme_tls_1_in_apaches_protocols():
    """A vhost whose certificate is validated with tls-alpn-01 but whose Protocols leave out
    acme-tls/1 would never answer the CA: `apache2 -t` fails, naming the line and the fix."""
    import apache
    root = apache.workdir()
    try:
        https_port = apache.free_port()
        ca = pebble.Pebble(root / "pebble", http_port=1, tls_port=https_port)
        conf = write_conf(root, ca, extra_provider="challenge = tls-alpn-01\n")
        ap = apache.Apache(root, alpn_vhost(https_port, protocols="Protocols h2 http/1.1"),
                           preamble=f"CertSyncConfig {conf}")
        r = ap.configtest()
        out = r.stdout + r.stderr
        assert r.returncode != 0 and "Syntax OK" not in out
        assert f"{ap.conf}:{ap.line_of('CertSyncCertificate shop')}: CertSyncCertificate shop: " \
               "its provider 'ca' validates with tls-alpn-01" in out, out
        assert "`Protocols h2 http/1.1 acme-tls/1`" in out
        ok = apache.Apache(root, alpn_vhost(https_port), preamble=f"CertSyncConfig {conf}")
        r = ok.configtest()
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        apache.cleanup(root)


def test_apache_in_server_sync_issues_from_acme():
    """CertSyncSync on: Apache's sync (mod_watchdog's thread, as www-data, the store being
    www-data's) drives the ACME order while the same Apache answers pebble's http-01."""
    import apache
    root = apache.workdir()
    try:
        http_port, https_port = apache.free_port(), apache.free_port()
        with pebble.Pebble(root / "pebble", http_port=http_port) as ca:
            conf = write_conf(root, ca)
            conf.write_text(conf.read_text().replace("[store]\n", "[store]\nowner = www-data\n"))
            vhosts = f"""
Listen 127.0.0.1:{https_port} https
<VirtualHost 127.0.0.1:{https_port}>
    ServerName {NAMES[0]}
    ServerAlias {NAMES[1]}
    SSLEngine on
    CertSyncCertificate shop
</VirtualHost>
Listen 127.0.0.1:{http_port}
<VirtualHost 127.0.0.1:{http_port}>
    ServerName {NAMES[0]}
    ServerAlias {NAMES[1]}
</VirtualHost>
"""
            preamble = f"CertSyncConfig {conf}\nCertSyncSync on\nCertSyncSyncInterval 3s"
            with apache.Apache(root, vhosts, preamble=preamble) as ap:
                parent, generation = ap.pid(), ap.generation()

                def installed():
                    try:
                        return status(conf)["fingerprint_sha256"]
                    except Exception:
                        return None
                fp, _ = apache.wait_until(installed, 40, interval=0.3)
                assert fp, ap.log() + ca.log()
                assert "Attempting to validate w/ HTTP" in ca.log()
                for n in NAMES:
                    ok, _ = apache.wait_until(
                        lambda n=n: apache.served_sha256(https_port, n) == fp, 5.0)
                    assert ok, ap.log()
                assert (ap.pid(), ap.generation()) == (parent, generation)
            verify_issued(root, conf, ca)
            assert (root / "store" / "acme" / "ca" / "account.key").stat().st_uid != 0
    finally:
        apache.cleanup(root)
