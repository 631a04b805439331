"""Interop tests: every output of certsync is read back by its real consumer
(openssl, keytool, a Java program), and the CLI is driven as an operator would."""
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Tests never look for an ECS metadata service: its address is not on this machine.
os.environ["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"
for _v in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
           "ALIBABA_CLOUD_SECURITY_TOKEN", "ALIBABA_CLOUD_PROFILE"):
    os.environ.pop(_v, None)

CERTSYNC = os.environ.get("CERTSYNC", str(ROOT / "out" / "certsync"))


def run(*args, check=True, **kw):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{args} exited {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}")
    return r


def certsync(*args, check=True, **kw):
    return run(CERTSYNC, *args, check=check, **kw)


class Chain:
    """A root, an intermediate and a leaf made with the openssl tool (not with certsync)."""

    def __init__(self, d: Path, names=("shop.example.com", "www.shop.example.com"),
                 key="ec", days=90, start=None, end=None, tag="a"):
        self.d = d
        d.mkdir(parents=True, exist_ok=True)
        p = lambda n: d / f"{tag}-{n}"
        self.root, self.root_key = p("root.pem"), p("root.key")
        self.inter, self.inter_key = p("inter.pem"), p("inter.key")
        self.leaf, self.key = p("leaf.pem"), p("leaf.key")
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
        run("openssl", "req", "-x509", "-nodes", *ec, "-keyout", self.root_key, "-out", self.root,
            "-subj", f"/CN=interop root {tag}", "-days", "3650",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        run("openssl", "req", "-new", "-nodes", *ec, "-keyout", self.inter_key, "-out", p("inter.csr"),
            "-subj", f"/CN=interop intermediate {tag}")
        ext = p("inter.ext")
        ext.write_text("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
                       "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
        run("openssl", "x509", "-req", "-in", p("inter.csr"), "-CA", self.root, "-CAkey", self.root_key,
            "-CAcreateserial", "-out", self.inter, "-days", "1800", "-extfile", ext)
        newkey = ["-newkey", "rsa:2048"] if key == "rsa" else ec
        run("openssl", "req", "-new", "-nodes", *newkey, "-keyout", self.key, "-out", p("leaf.csr"),
            "-subj", f"/CN={names[0]}")
        lext = p("leaf.ext")
        lext.write_text("basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n"
                        "subjectAltName=" + ",".join(f"DNS:{n}" for n in names) + "\n"
                        "authorityKeyIdentifier=keyid\n")
        if start or end:
            # an explicit window (an expired leaf, say) needs `openssl ca`
            cadir = d / f"{tag}-ca"
            (cadir / "new").mkdir(parents=True)
            (cadir / "index.txt").write_text("")
            (cadir / "serial").write_text("1000\n")
            cnf = cadir / "ca.cnf"
            cnf.write_text(f"[ca]\ndefault_ca = d\n[d]\ndatabase = {cadir}/index.txt\n"
                           f"new_certs_dir = {cadir}/new\nserial = {cadir}/serial\n"
                           "default_md = sha256\npolicy = pol\nunique_subject = no\n"
                           "[pol]\ncommonName = supplied\n")
            run("openssl", "ca", "-batch", "-config", cnf, "-cert", self.inter, "-keyfile",
                self.inter_key, "-in", p("leaf.csr"), "-out", self.leaf, "-notext",
                "-startdate", start, "-enddate", end, "-extfile", lext)
        else:
            run("openssl", "x509", "-req", "-in", p("leaf.csr"), "-CA", self.inter, "-CAkey",
                self.inter_key, "-CAcreateserial", "-out", self.leaf, "-days", str(days),
                "-extfile", lext)
        self.fullchain = p("fullchain.pem")
        self.fullchain.write_text(self.leaf.read_text() + self.inter.read_text())

    def sha256(self, colons=False):
        out = run("openssl", "x509", "-in", self.leaf, "-noout", "-fingerprint", "-sha256").stdout
        fp = out.strip().split("=", 1)[1]
        return fp if colons else fp.replace(":", "").lower()


@pytest.fixture
def chain(tmp_path):
    return Chain(tmp_path / "pki")


@pytest.fixture
def conf(tmp_path):
    """A certsync.conf with a store in tmp_path; returns (path, store)."""
    store = tmp_path / "store"
    path = tmp_path / "certsync.conf"
    path.write_text(f"""[store]
path = {store}

[provider local]
type = local-ca

[cert shop]
provider = local
domain = shop.example.com www.shop.example.com
formats = pem pfx jks

[cert demo]
domain = demo.test
key-type = rsa2048
""")
    return path, store


def keytool():
    k = shutil.which("keytool")
    if not k:
        raise AssertionError("keytool is missing: run build/install-deps.sh")
    return k


# ---- the trust boundary: the web server's worker user, assumed compromised ----

WWW = pwd.getpwnam("www-data")


def as_www(*args, check=False):
    """Run a command as the worker user, as a compromised worker would."""
    return subprocess.run(["runuser", "-u", "www-data", "--", *map(str, args)],
                          capture_output=True, text=True, check=check, timeout=30)


@pytest.fixture
def base():
    """A scratch directory under /tmp with 0755: www-data must reach what it is given."""
    d = Path(tempfile.mkdtemp(prefix="certsync-trust-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)
