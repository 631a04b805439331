"""One behaviour in every server (README "One behaviour in every server"): nginx and Apache
started side by side on one certsync.conf and one store, asked the same questions, give the
same answers. The store is root's and the workers (www-data, in both servers) read it
through `[store] group = www-data`.

- a name with no version yet: the core's self-signed fallback, and 503 + Retry-After for
  every request but validation answers and status;
- validation answers: GET and HEAD, FILE and ACME http-01, a 200-character host name, 404
  for an answer the store does not hold, identical status, body and content type;
- a broken version (key, chain or names) switched in by hand: both config tests fail
  naming the file and line of the directive, and neither running server swaps to it;
- an expired but otherwise good version: served by both, with a warning in each log;
- one status schema: nginx's certsync_status, Apache's certsync-status and
  `certsync status --json` have the same certificate keys; each server adds only
  "server"."""
import contextlib
import json
import re
import shutil
import subprocess
import time

import pytest

import apache
import nginx
from apache import Apache, free_port, request, served_sha256, workdir
from conftest import Chain, certsync, run
from nginx import Nginx, s_client

NAMES = ("shop.example.com", "www.shop.example.com")
HOST = NAMES[0]
FILEAUTH = "/.well-known/pki-validation/fileauth.txt"
TOKEN = "tok_EN-1"
LONG_HOST = ".".join(["a" * 63, "b" * 63, "c" * 63, "example0"])  # 200 characters
STATUS = "/certsync/status"
DOCUMENT_KEYS = {"config", "store", "certificates", "server"}


class Findings:
    """What each server does differently from the one behaviour, all of it in one failure
    (so a run says every gap of both servers, not only the first one met)."""

    def __init__(self):
        self.items = []

    def check(self, ok, what):
        if not ok:
            self.items.append(what)
        return ok

    def assert_none(self):
        assert not self.items, "\n".join(self.items)


pytestmark = [
    pytest.mark.skipif(not apache.available() or not apache.module_path().exists(),
                       reason="needs apache2 and out/mod_certsync.so"),
    pytest.mark.skipif(not nginx.available(), reason="needs nginx and the nginx module"),
]


class World:
    """A world-traversable root: certsync.conf, a store of root's read by group www-data."""

    def __init__(self, root):
        self.root = root
        self.store = root / "store"
        self.conf = root / "certsync.conf"
        self.cdir = self.store / "certs" / "shop"
        self.pki = root / "pki"
        self.conf.write_text(f"[store]\npath = {self.store}\ngroup = www-data\n\n"
                             f"[cert shop]\ndomain = {' '.join(NAMES)}\n")

    def certsync(self, *args, check=True):
        return certsync("--config", self.conf, *args, check=check)

    def cli_status(self):
        (entry,) = json.loads(self.certsync("status", "--json").stdout)
        return entry

    def chain(self, tag, names=NAMES, **kw):
        return Chain(self.pki, names=names, tag=tag, **kw)

    def import_chain(self, ch):
        self.certsync("import", "shop", "--cert", ch.fullchain, "--key", ch.key)

    def give_to_store(self, path):
        """What the test writes by hand, as the store's owner (root) writes: group www-data."""
        subprocess.run(["chown", "-R", "root:www-data", path], check=True)
        subprocess.run(["chmod", "-R", "u=rwX,g=rX,o=", path], check=True)

    def hand_version(self, n, leaf, chain_pems, key):
        """v<n> written by hand from v1 (bypassing the store's checks): leaf + chain_pems as
        fullchain.pem, key as privkey.pem, meta.json describing that leaf."""
        v = self.cdir / f"v{n}"
        shutil.copytree(self.cdir / "v1", v)
        cert, chain = leaf.read_text(), "".join(p.read_text() for p in chain_pems)
        for f, text in (("fullchain.pem", cert + chain), ("shop.pem", cert + chain),
                        ("cert.pem", cert), ("shop_public.crt", cert), ("chain.pem", chain),
                        ("shop_chain.crt", chain), ("privkey.pem", key.read_text()),
                        ("shop.key", key.read_text())):
            (v / f).write_text(text)
        meta = json.loads((v / "meta.json").read_text())
        meta.update(version=n, **leaf_facts(leaf))
        (v / "meta.json").write_text(json.dumps(meta, indent=2))
        self.give_to_store(v)
        return v

    def switch(self, n):
        """`current` moved onto v<n> as a writer moves it: a new link renamed over it."""
        tmp = self.cdir / "current.tmp-hand"
        tmp.symlink_to(f"v{n}")
        tmp.rename(self.cdir / "current")


def leaf_facts(leaf):
    """What meta.json says of a leaf: fingerprint, serial, dates, names."""
    out = run("openssl", "x509", "-in", leaf, "-noout", "-fingerprint", "-sha256", "-serial",
              "-dates", "-ext", "subjectAltName").stdout
    names = re.findall(r"DNS:([^,\s]+)", out)
    kv = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    iso = lambda d: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.strptime(d, "%b %d %H:%M:%S %Y GMT"))
    fp = next(v for k, v in kv.items() if "Fingerprint" in k)
    return {"fingerprint_sha256": fp.replace(":", "").lower(), "serial": kv["serial"],
            "not_before": iso(kv["notBefore"]), "not_after": iso(kv["notAfter"]),
            "names": names}


@pytest.fixture
def world():
    root = workdir("certsync-same-")
    yield World(root)
    apache.cleanup(root)


# ---- the two servers, configured alike ----

def ngx_conf(conf):
    return f"""
    certsync_config {conf};
    server {{
        listen 127.0.0.1:{{port_tls}} ssl;
        server_name {' '.join(NAMES)};
        certsync_certificate shop;
        certsync_validation on;
        location = {STATUS} {{ certsync_status; }}
        location / {{ return 200 "ok\\n"; }}
    }}
    server {{
        listen 127.0.0.1:{{port_http}};
        server_name {HOST};
        certsync_validation on;
        location = {STATUS} {{ certsync_status; }}
        location / {{ return 301 https://$host$request_uri; }}
    }}
"""


def apache_body(tls, http):
    status = f"<Location {STATUS}>\n        SetHandler certsync-status\n    </Location>"
    return f"""
Listen 127.0.0.1:{tls} https
<VirtualHost 127.0.0.1:{tls}>
    ServerName {HOST}
    ServerAlias {' '.join(NAMES[1:])}
    SSLEngine on
    CertSyncCertificate shop
    CertSyncValidation on
    {status}
</VirtualHost>

Listen 127.0.0.1:{http}
<VirtualHost 127.0.0.1:{http}>
    ServerName {HOST}
    CertSyncValidation on
    {status}
</VirtualHost>
"""


class Servers:
    """nginx and Apache on one certsync.conf; .tls and .http: {"nginx": port, "apache": port}."""

    def __init__(self, w):
        self.ngx = Nginx(w.root / "nginx", ngx_conf(w.conf), user="www-data")
        tls, http = free_port(), free_port()
        self.ap = Apache(w.root / "httpd", apache_body(tls, http),
                         preamble=f"CertSyncConfig {w.conf}")
        self.tls = {"nginx": self.ngx.port("tls"), "apache": tls}
        self.http = {"nginx": self.ngx.port("http"), "apache": http}

    def logs(self):
        return {"nginx": self.ngx.log(), "apache": self.ap.log()}

    def config_tests(self):
        """{"nginx": (exit code, output, file:line of the directive), "apache": ...}."""
        n, a = self.ngx.test_config(), self.ap.configtest()
        return {"nginx": (n.returncode, n.stdout + n.stderr,
                          f"{self.ngx.conf}:{self.ngx.conf_line('certsync_certificate shop;')}"),
                "apache": (a.returncode, a.stdout + a.stderr,
                           f"{self.ap.conf}:{self.ap.line_of('CertSyncCertificate shop')}")}


@contextlib.contextmanager
def both(w):
    s = Servers(w)
    with contextlib.ExitStack() as stack:
        stack.enter_context(s.ngx)
        stack.enter_context(s.ap)
        yield s


def ask(port, path, host=HOST, https=False, method="GET"):
    """(status, body, content type, Retry-After, Content-Length) of one request."""
    status, body, headers = request(port, path, host=host, https=https, method=method)
    return (status, body, headers.get("Content-Type"), headers.get("Retry-After"),
            headers.get("Content-Length"))


def answers(s, path, host=HOST, https=False, method="GET"):
    ports = s.tls if https else s.http
    return {srv: ask(port, path, host, https, method) for srv, port in ports.items()}


def status_document(s, srv, https=False):
    port = (s.tls if https else s.http)[srv]
    code, body = ask(port, STATUS, https=https)[:2]
    assert code == 200, f"{srv}: {STATUS} answered {code}: {body}"
    return json.loads(body)


def cert_entry(doc):
    return next(c for c in doc["certificates"] if c["name"] == "shop")


def subject_and_names(port):
    fp, text = s_client(port, HOST)
    assert fp, text
    subject = re.search(r"Subject: (.*)", text).group(1).strip()
    issuer = re.search(r"Issuer: (.*)", text).group(1).strip()
    sans = re.search(r"Subject Alternative Name:.*\n\s*(.*)", text).group(1).strip()
    return fp, subject, issuer, sans


def write_challenges(w):
    """FILE and ACME answers for HOST, and a FILE answer for the 200-character host."""
    assert len(LONG_HOST) == 200 and max(map(len, LONG_HOST.split("."))) == 63
    ch = w.store / "challenges"
    files = {ch / HOST / "pki-validation" / "fileauth.txt": "2026112800000012345abcdef\nshop\n",
             ch / HOST / "acme-challenge" / TOKEN: f"{TOKEN}.thumbprint",
             ch / LONG_HOST / "pki-validation" / "fileauth.txt": "long host answer\n"}
    for f, text in files.items():
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    w.give_to_store(ch)
    return files


# ---- a name with no version yet ----

def test_no_version_yet_both_serve_the_fallback_and_answer_503_with_retry_after(world):
    w = world
    files = write_challenges(w)
    f = Findings()
    with both(w) as s:
        # the core's fallback (README "The fallback certificate"): self-signed, the same
        # subject and names in both
        want_sans = ", ".join(f"DNS:{n}" for n in NAMES)
        for srv, port in s.tls.items():
            _, subject, issuer, sans = subject_and_names(port)
            f.check(subject == issuer == "CN = certsync fallback for shop",
                    f"{srv}: fallback subject {subject!r}, issuer {issuer!r}; "
                    "want 'CN = certsync fallback for shop' for both")
            f.check(sans == want_sans, f"{srv}: fallback names {sans!r}; want {want_sans!r}")

        # every request but validation answers and status: 503 with Retry-After
        for method in ("GET", "HEAD"):
            for path in ("/", "/index.html", "/some/page"):
                for srv, (code, _, _, retry, _) in answers(s, path, https=True,
                                                        method=method).items():
                    f.check(code == 503, f"{srv}: {method} {path} on the fallback: {code}, "
                                         "want 503")
                    f.check(retry is not None and retry.isdigit() and int(retry) > 0,
                            f"{srv}: {method} {path} on the fallback: Retry-After {retry!r}")

        # validation answers and status are answered meanwhile, on the same host
        fileauth = files[w.store / "challenges" / HOST / "pki-validation" / "fileauth.txt"]
        for method, body in (("GET", fileauth), ("HEAD", "")):
            for srv, got in answers(s, FILEAUTH, https=True, method=method).items():
                f.check(got[:2] == (200, body),
                        f"{srv}: {method} {FILEAUTH} on the fallback: {got[:2]}, want 200")
        for srv, port in s.tls.items():
            code, body = ask(port, STATUS, https=True)[:2]
            if f.check(code == 200, f"{srv}: {STATUS} on the fallback: {code}, want 200"):
                entry = cert_entry(json.loads(body))
                f.check((entry.get("state"), entry.get("fallback"), entry.get("version")) ==
                        ("fallback", True, None),
                        f"{srv}: status of the fallback: state {entry.get('state')!r}, "
                        f"fallback {entry.get('fallback')!r}, version {entry.get('version')!r}")
        # each error log says why (nginx logs it at error, Apache at warn: either will do)
        for srv, text in s.logs().items():
            f.check(re.search(r"\[(certsync:)?(warn|error)\].*shop.*no .*version.*fallback",
                              text) is not None,
                    f"{srv}: no line saying 'shop' has no version and gets the fallback:\n{text}")
    f.assert_none()


# ---- validation answers ----

def test_validation_answers_are_the_same_in_both(world):
    w = world
    w.import_chain(w.chain("a"))
    files = write_challenges(w)
    ch = w.store / "challenges"
    bodies = {(FILEAUTH, HOST): files[ch / HOST / "pki-validation" / "fileauth.txt"],
              (f"/.well-known/acme-challenge/{TOKEN}", HOST): f"{TOKEN}.thumbprint",
              (FILEAUTH, LONG_HOST): "long host answer\n"}
    # (path, host, what both must answer): 200 + the store's answer, or 404
    cases = [(FILEAUTH, HOST), (FILEAUTH, HOST.upper()),
             (f"/.well-known/acme-challenge/{TOKEN}", HOST),
             (FILEAUTH, LONG_HOST), (FILEAUTH, LONG_HOST.upper()),
             ("/.well-known/acme-challenge/nope", HOST),
             ("/.well-known/acme-challenge/webroot-tok", HOST),
             (FILEAUTH, "other.example.com")]
    f = Findings()
    with both(w) as s:
        # validation is on in both: a token the store does not hold is the module's 404,
        # not nginx's "return 301" nor a file of Apache's webroot
        webroot = s.ap.root / "htdocs" / ".well-known" / "acme-challenge"
        webroot.mkdir(parents=True)
        (webroot / "webroot-tok").write_text("from the webroot\n")
        for path, host in cases:
            body = bodies.get((path, host.lower()))
            code = 200 if body is not None else 404
            what = f"{path} for {host[:24]}{'...' if len(host) > 24 else ''}"
            get, head = answers(s, path, host), answers(s, path, host, method="HEAD")
            for srv in s.http:
                f.check(get[srv][0] == code, f"{srv}: GET {what}: {get[srv][0]}, want {code}")
                f.check(head[srv][0] == code, f"{srv}: HEAD {what}: {head[srv][0]}, want {code}")
                f.check(head[srv][1] == "", f"{srv}: HEAD {what} has a body")
                f.check(head[srv][2] == get[srv][2],
                        f"{srv}: {what}: HEAD type {head[srv][2]!r}, GET type {get[srv][2]!r}")
                if code == 200:
                    f.check(get[srv][1] == body, f"{srv}: GET {what}: body {get[srv][1]!r}")
                    f.check((get[srv][2] or "").startswith("text/plain"),
                            f"{srv}: GET {what}: content type {get[srv][2]!r}")
                    f.check(head[srv][4] == get[srv][4] == str(len(body.encode())),
                            f"{srv}: {what}: Content-Length HEAD {head[srv][4]!r}, "
                            f"GET {get[srv][4]!r}, want {len(body.encode())}")
            # the same answer from both: status, and for an answer body and content type
            # (a 404 page is each server's own)
            same = (lambda a: a[:3]) if code == 200 else (lambda a: a[0])
            f.check(same(get["nginx"]) == same(get["apache"]),
                    f"GET {what}: nginx {get['nginx'][:3]} != apache {get['apache'][:3]}")
            f.check(same(head["nginx"]) == same(head["apache"]),
                    f"HEAD {what}: nginx {head['nginx'][:3]} != apache {head['apache'][:3]}")
        # over TLS too, on the managed host
        got = answers(s, f"/.well-known/acme-challenge/{TOKEN}", https=True)
        f.check(got["nginx"][:3] == got["apache"][:3] and got["nginx"][0] == 200,
                f"GET of the ACME answer over TLS: {got}")
    f.assert_none()


# ---- one status schema ----

def test_status_documents_have_the_clis_keys(world):
    w = world
    a = w.chain("a")
    w.import_chain(a)
    f = Findings()
    with both(w) as s:
        cli = w.cli_status()
        f.check(cli["fingerprint_sha256"] == a.sha256() and cli["state"] == "ok", cli)
        for srv in s.http:
            doc = status_document(s, srv)
            f.check(set(doc) == DOCUMENT_KEYS,
                    f"{srv}: document keys {sorted(doc)}, want {sorted(DOCUMENT_KEYS)}")
            f.check((doc.get("config"), doc.get("store")) == (str(w.conf), str(w.store)),
                    f"{srv}: config {doc.get('config')!r}, store {doc.get('store')!r}")
            f.check(isinstance(doc.get("server"), dict), f"{srv}: no \"server\" object")
            entry = cert_entry(doc)
            f.check(set(entry) == set(cli) | {"server"},
                    f"{srv}: certificate keys missing {sorted(set(cli) - set(entry))}, "
                    f"extra {sorted(set(entry) - set(cli) - {'server'})}")
            f.check(isinstance(entry.get("server"), dict),
                    f"{srv}: the certificate has no \"server\" object")
            differ = {k: (entry.get(k), v) for k, v in cli.items()
                      if k != "days_left" and entry.get(k) != v}
            f.check(not differ, f"{srv}: values other than the CLI's (server, cli): {differ}")
    f.assert_none()


# ---- a broken version ----

def broken_key(w):
    b, a = w.chain("b"), w.chain("a2")
    return b.leaf, [b.inter], a.key      # b's certificate with another key


def broken_chain(w):
    b, c = w.chain("b"), w.chain("c")
    return b.leaf, [c.inter], b.key      # b's leaf, another CA's intermediate


def broken_names(w):
    o = w.chain("o", names=("other.example.com",))
    return o.leaf, [o.inter], o.key      # a good pair for a name shop does not cover


BROKEN = {"key": broken_key, "chain": broken_chain, "names": broken_names}


@pytest.mark.parametrize("broken", sorted(BROKEN))
def test_a_broken_version_fails_both_config_tests_and_is_never_swapped_in(world, broken):
    w = world
    a = w.chain("a")
    w.import_chain(a)
    leaf, chain, key = BROKEN[broken](w)
    w.hand_version(2, leaf, chain, key)
    f = Findings()
    with both(w) as s:
        for srv, port in s.tls.items():
            assert served_sha256(port, HOST) == a.sha256(), f"{srv} does not serve v1"
        seen = {srv: len(text) for srv, text in s.logs().items()}
        w.switch(2)
        time.sleep(1.5)  # past inotify and both servers' once-a-second check
        for srv, port in s.tls.items():
            fps = {served_sha256(port, HOST) for _ in range(12)}
            f.check(fps == {a.sha256()}, f"{srv}: swapped to the broken v2 ({broken})")
            f.check(request(port, "/", host=HOST)[0] == 200, f"{srv}: v1 no longer answers")
        for srv, text in s.logs().items():
            f.check(re.search(r"\[(certsync:)?error\].*v2", text[seen[srv]:]) is not None,
                    f"{srv}: no error-level line about v2:\n{text[seen[srv]:]}")
        tests = s.config_tests()
    for srv, (code, out, where) in tests.items():
        f.check(code != 0, f"{srv}: config test exits 0 with a broken current ({broken}): "
                           f"{out.strip()!r}")
        f.check(where in out, f"{srv}: config test does not name {where}: {out.strip()!r}")
        f.check("v2" in out, f"{srv}: config test does not name v2: {out.strip()!r}")
    f.assert_none()


# ---- an expired but otherwise good version ----

def expired_chain(d, tag="expired"):
    """root -> intermediate -> leaf for NAMES, the leaf valid in 2024 only; the CAs valid
    2023-2036, so the chain is good all through the leaf's window (made with `openssl ca`;
    conftest's Chain backdates only the leaf, and a leaf older than its issuer does not
    verify). Returns (leaf, intermediate, key, sha256 of the leaf)."""
    ca = d / f"{tag}-ca"
    (ca / "new").mkdir(parents=True)
    (ca / "index.txt").write_text("")
    (ca / "serial").write_text("2000\n")
    cnf = ca / "ca.cnf"
    cnf.write_text(f"[ca]\ndefault_ca = d\n[d]\ndatabase = {ca}/index.txt\n"
                   f"new_certs_dir = {ca}/new\nserial = {ca}/serial\ndefault_md = sha256\n"
                   "policy = pol\nunique_subject = no\n[pol]\ncommonName = supplied\n")
    ext = {"root": "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
                   "subjectKeyIdentifier=hash\n",
           "inter": "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
                    "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
           "leaf": "basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n"
                   "subjectAltName=" + ",".join(f"DNS:{n}" for n in NAMES) + "\n"
                   "authorityKeyIdentifier=keyid\n"}
    subj = {"root": f"/CN=interop root {tag}", "inter": f"/CN=interop intermediate {tag}",
            "leaf": f"/CN={NAMES[0]}"}
    issuer = {"root": [], "inter": ["-cert", ca / "root.pem", "-keyfile", ca / "root.key"],
              "leaf": ["-cert", ca / "inter.pem", "-keyfile", ca / "inter.key"]}
    dates = {"root": ("20230101000000Z", "20360101000000Z"),
             "inter": ("20230101000000Z", "20360101000000Z"),
             "leaf": ("20240101000000Z", "20250101000000Z")}
    for n in ("root", "inter", "leaf"):
        (ca / f"{n}.ext").write_text(ext[n])
        run("openssl", "req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-keyout", ca / f"{n}.key", "-out", ca / f"{n}.csr",
            "-subj", subj[n])
        sign = issuer[n] or ["-selfsign", "-keyfile", ca / "root.key"]
        run("openssl", "ca", "-batch", "-config", cnf, *sign, "-in", ca / f"{n}.csr",
            "-out", ca / f"{n}.pem", "-notext", "-startdate", dates[n][0],
            "-enddate", dates[n][1], "-extfile", ca / f"{n}.ext")
    fp = leaf_facts(ca / "leaf.pem")["fingerprint_sha256"]
    return ca / "leaf.pem", ca / "inter.pem", ca / "leaf.key", fp


def test_an_expired_but_good_version_is_served_by_both_with_a_warning(world):
    w = world
    w.import_chain(w.chain("a"))
    leaf, inter, key, fp = expired_chain(w.pki)
    w.hand_version(2, leaf, [inter], key)
    w.switch(2)
    shutil.rmtree(w.cdir / "v1")      # the expired version is the only one
    cli = w.cli_status()
    assert cli["state"] == "expired" and cli["fingerprint_sha256"] == fp, cli
    f = Findings()
    tests = Servers(w).config_tests()
    for srv, (code, out, _) in tests.items():
        f.check(code == 0, f"{srv}: config test refuses an expired but good version: "
                           f"{out.strip()!r}")
    with both(w) as s:
        for srv, port in s.tls.items():
            f.check(served_sha256(port, HOST) == fp, f"{srv}: does not serve the expired v2")
            f.check(request(port, "/", host=HOST)[0] == 200, f"{srv}: does not answer 200")
        for srv, text in s.logs().items():
            f.check(re.search(r"\[(certsync:)?warn\].*expired", text) is not None,
                    f"{srv}: no warn-level line about the expired version:\n{text}")
        for srv in s.http:
            entry = cert_entry(status_document(s, srv))
            f.check((entry.get("state"), entry.get("version")) == ("expired", 2),
                    f"{srv}: status state {entry.get('state')!r}, version "
                    f"{entry.get('version')!r}; want 'expired', 2")
    f.assert_none()
