"""`certsync convert`: every output is read back by the program that will consume it."""
import re
import stat
from pathlib import Path

import pytest

from conftest import Chain, certsync, keytool, run

JAVA_DIR = Path(__file__).parent / "java"


@pytest.fixture(scope="session")
def loadkey(tmp_path_factory):
    """Compile the Java consumer once per run."""
    out = tmp_path_factory.mktemp("java")
    run("javac", "-d", out, JAVA_DIR / "LoadKey.java")
    return out


def java_load(loadkey, kind, path, store_pw, key_pw, alias):
    return run("java", "-cp", loadkey, "LoadKey", kind, path, store_pw, key_pw, alias).stdout


def keytool_list(path, storetype, pwfile):
    return run(keytool(), "-list", "-v", "-keystore", path, "-storetype", storetype,
               "-storepass:file", pwfile).stdout


@pytest.mark.parametrize("key", ["ec", "rsa"])
def test_jks_is_one_private_key_entry_with_the_full_chain(tmp_path, key, loadkey):
    c = Chain(tmp_path / "pki", key=key)
    out = tmp_path / "shop.jks"
    r = certsync("convert", "--cert", c.leaf, "--key", c.key, "--chain", c.inter,
                 "--format", "jks", "--alias", "Shop", "--out", out)
    pw = Path(str(out) + ".password")
    assert str(pw) in r.stdout
    assert stat.S_IMODE(pw.stat().st_mode) == 0o600
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    listing = keytool_list(out, "JKS", pw)
    assert "Keystore type: JKS" in listing
    assert "Your keystore contains 1 entry" in listing
    assert "Alias name: shop" in listing          # JKS aliases are lower-case
    assert "Entry type: PrivateKeyEntry" in listing
    assert "Certificate chain length: 2" in listing
    assert f"SHA256: {c.sha256(colons=True)}" in listing
    # Java recovers the key with the key password (here the store password)
    ok = java_load(loadkey, "JKS", out, pw, pw, "shop")
    assert ok.startswith("OK alias=shop chain=2")
    assert f"sha256={c.sha256()}" in ok


def test_jks_with_separate_non_ascii_store_and_key_passwords(tmp_path, chain, loadkey):
    store_pw, key_pw = tmp_path / "store.pw", tmp_path / "key.pw"
    store_pw.write_text("Läden-pass-é€\n", encoding="utf-8")
    key_pw.write_text("ключ-🔑-key\n", encoding="utf-8")
    out = tmp_path / "x.jks"
    certsync("convert", "--cert", chain.fullchain, "--key", chain.key, "--format", "jks",
             "--out", out, "--password-file", store_pw, "--key-password-file", key_pw)
    assert not Path(str(out) + ".password").exists()
    assert "PrivateKeyEntry" in keytool_list(out, "JKS", store_pw)
    ok = java_load(loadkey, "JKS", out, store_pw, key_pw, "shop.example.com")
    assert ok.startswith("OK alias=shop.example.com chain=2")
    # the store password does not open the key
    r = run("java", "-cp", loadkey, "LoadKey", "JKS", out, store_pw, store_pw, "shop.example.com",
            check=False)
    assert r.returncode != 0 and "Cannot recover key" in r.stderr


def test_pkcs12_modern_is_what_openssl3_writes(tmp_path, chain, loadkey):
    out = tmp_path / "shop.pfx"
    certsync("convert", "--cert", chain.fullchain, "--key", chain.key, "--format", "pfx",
             "--alias", "shop", "--out", out)
    pw = Path(str(out) + ".password")
    info = run("openssl", "pkcs12", "-info", "-noout", "-in", out, "-passin", f"file:{pw}").stderr
    assert "MAC: sha256, Iteration 2048" in info
    assert re.search(r"PBES2, PBKDF2, AES-256-CBC, Iteration 2048, PRF hmacWithSHA256", info)
    listing = keytool_list(out, "PKCS12", pw)
    assert "Your keystore contains 1 entry" in listing
    assert "Entry type: PrivateKeyEntry" in listing
    assert "Certificate chain length: 2" in listing
    assert f"SHA256: {chain.sha256(colons=True)}" in listing
    assert java_load(loadkey, "PKCS12", out, pw, pw, "shop").startswith("OK alias=shop chain=2")
    # the full chain and the friendly name, as openssl extracts them
    certs = run("openssl", "pkcs12", "-in", out, "-passin", f"file:{pw}", "-nokeys").stdout
    assert certs.count("BEGIN CERTIFICATE") == 2
    assert "friendlyName: shop" in certs


def test_pkcs12_legacy_is_3des_with_a_sha1_mac(tmp_path, chain, loadkey):
    out = tmp_path / "old.pfx"
    pw = tmp_path / "pw"
    pw.write_text("changeit\n")
    certsync("convert", "--cert", chain.leaf, "--key", chain.key, "--chain", chain.inter,
             "--format", "pfx", "--profile", "legacy", "--alias", "tomcat", "--out", out,
             "--password-file", pw)
    info = run("openssl", "pkcs12", "-info", "-noout", "-legacy", "-in", out,
               "-passin", f"file:{pw}").stderr
    assert "MAC: sha1, Iteration 2048" in info
    assert "pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048" in info
    listing = keytool_list(out, "PKCS12", pw)
    assert "Entry type: PrivateKeyEntry" in listing and "Certificate chain length: 2" in listing
    assert java_load(loadkey, "PKCS12", out, pw, pw, "tomcat").startswith("OK alias=tomcat chain=2")


def test_pem_set_and_console_layouts(tmp_path, chain):
    certsync("convert", "--cert", chain.fullchain, "--key", chain.key, "--format", "pem",
             "--out", tmp_path / "pem")
    pem = tmp_path / "pem"
    run("openssl", "verify", "-CAfile", chain.root, "-untrusted", pem / "chain.pem", pem / "cert.pem")
    assert (pem / "fullchain.pem").read_text() == (pem / "cert.pem").read_text() + (pem / "chain.pem").read_text()
    assert stat.S_IMODE((pem / "privkey.pem").stat().st_mode) == 0o600
    mod = run("openssl", "pkey", "-in", pem / "privkey.pem", "-pubout").stdout
    assert mod == run("openssl", "x509", "-in", pem / "cert.pem", "-noout", "-pubkey").stdout

    certsync("convert", "--cert", chain.fullchain, "--key", chain.key, "--format", "nginx",
             "--out", tmp_path / "nginx")
    assert sorted(p.name for p in (tmp_path / "nginx").iterdir()) == [
        "shop.example.com.key", "shop.example.com.pem"]
    certsync("convert", "--cert", chain.fullchain, "--key", chain.key, "--format", "apache",
             "--alias", "shop", "--out", tmp_path / "apache")
    assert sorted(p.name for p in (tmp_path / "apache").iterdir()) == [
        "shop.key", "shop_chain.crt", "shop_public.crt"]
    certsync("convert", "--cert", chain.fullchain, "--key", chain.key, "--format", "tomcat",
             "--alias", "shop", "--out", tmp_path / "tomcat")
    tom = tmp_path / "tomcat"
    assert sorted(p.name for p in tom.iterdir()) == ["pfx-password.txt", "shop.pfx"]
    assert "PrivateKeyEntry" in keytool_list(tom / "shop.pfx", "PKCS12", tom / "pfx-password.txt")


def test_an_encrypted_input_key_needs_its_password_file(tmp_path, chain):
    enc = tmp_path / "enc.key"
    pw = tmp_path / "in.pw"
    pw.write_text("input secret\n")
    run("openssl", "pkcs8", "-topk8", "-in", chain.key, "-out", enc, "-v2", "aes-256-cbc",
        "-passout", f"file:{pw}")
    r = certsync("convert", "--cert", chain.fullchain, "--key", enc, "--format", "pem",
                 "--out", tmp_path / "o", check=False)
    assert r.returncode == 1
    assert "encrypted private key" in r.stderr and str(enc) in r.stderr
    certsync("convert", "--cert", chain.fullchain, "--key", enc, "--format", "pem",
             "--out", tmp_path / "o", "--passin-file", pw)
    assert "input secret" not in (tmp_path / "o" / "privkey.pem").read_text()


def test_usage_errors_exit_2_and_help_exits_0():
    for cmd in ["convert", "import", "sync", "status", "rollback"]:
        r = certsync(cmd, "--help")
        assert r.stdout.startswith(f"Usage: certsync {cmd}")
    assert certsync("--help").stdout.startswith("Usage: certsync")
    r = certsync("convert", "--format", "pem", check=False)
    assert r.returncode == 2 and "--cert, --key, --format and --out are required" in r.stderr
    r = certsync("frobnicate", check=False)
    assert r.returncode == 2 and "unknown command 'frobnicate'" in r.stderr
    r = certsync("convert", "--cert", "a", "--key", "b", "--out", "c", "--format", "zip", check=False)
    assert r.returncode == 2 and "unknown format 'zip'" in r.stderr


@pytest.mark.parametrize("fmt,files", [
    ("nginx", ["cert.key", "cert.pem"]),
    ("apache", ["cert.key", "cert_chain.crt", "cert_public.crt"]),
    ("tomcat", ["cert.pfx", "pfx-password.txt"]),
])
def test_a_certificate_named_to_escape_out_writes_only_into_out(tmp_path, fmt, files):
    """The files are named after the leaf's first DNS name: DNS:../../../X must not make
    them land outside --out."""
    c = Chain(tmp_path / "pki", names=("x.example.com",), tag="t")
    # the same key, re-issued with a first DNS name that climbs out
    ext = tmp_path / "evil.ext"
    ext.write_text("subjectAltName=DNS:../../../X,DNS:x.example.com\n")
    run("openssl", "req", "-new", "-key", c.key, "-subj", "/CN=x.example.com", "-out",
        tmp_path / "evil.csr")
    run("openssl", "x509", "-req", "-in", tmp_path / "evil.csr", "-CA", c.inter, "-CAkey",
        c.inter_key, "-CAcreateserial", "-days", "30", "-extfile", ext, "-out", c.leaf)
    assert "DNS:../../../X" in run("openssl", "x509", "-in", c.leaf, "-noout", "-ext",
                                   "subjectAltName").stdout
    top = tmp_path / "t"
    out = top / "a" / "b" / "out"
    r = certsync("convert", "--cert", c.leaf, "--key", c.key, "--chain", c.inter,
                 "--format", fmt, "--out", out)
    assert f"wrote {fmt} layout into {out}" in r.stdout
    assert sorted(p.name for p in out.iterdir()) == files
    assert sorted(str(p.relative_to(top)) for p in top.rglob("*") if p.is_file()) == \
        [f"a/b/out/{f}" for f in files]
    assert not list(tmp_path.rglob("X*")) and not list(tmp_path.rglob("*X.*"))
    # a plain name still names the files, as the console does
    ok = Chain(tmp_path / "pki2", names=("*.shop.example.com",), tag="w")
    certsync("convert", "--cert", ok.leaf, "--key", ok.key, "--chain", ok.inter,
             "--format", fmt, "--out", tmp_path / "ok")
    assert any(p.name.startswith("_.shop.example.com") for p in (tmp_path / "ok").iterdir())
