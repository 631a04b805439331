#!/usr/bin/env python3
"""Demo step: Debian's real Tomcat serves the certificate of the demo store, and a new
version reaches it with no restart. Usage: demo-tomcat.py CONFIG CERTSYNC CERTSYNC_TOMCAT"""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "interop"))
from tomcat import Tomcat  # noqa: E402

conf, certsync, helper = sys.argv[1:4]
work = Path(tempfile.mkdtemp(prefix="certsync-demo-tomcat-"))
ks = work / "demo.jks"
creds = work / "manager.cred"
creds.write_text("certsync:manager-pw\n")
creds.chmod(0o600)


def show(*args):
    print("$", " ".join(str(a) for a in args), flush=True)
    out = subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True)
    print(out.stdout, end="", flush=True)


def fingerprint():
    out = subprocess.run([certsync, "--config", conf, "status", "--json", "demo"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)[0]["fingerprint_sha256"]


show(helper, "--config", conf, "--cert", "demo", "--keystore", ks, "--type", "jks")
with Tomcat(work / "base", ks, "JKS", password_file=Path(str(ks) + ".password"),
            key_alias="demo") as tc:
    print(f"Tomcat 10.1 (pid {tc.pid()}) serves https://localhost:{tc.https_port}/ "
          f"with sha256 {tc.served_sha256()} (store: {fingerprint()})")
    before = fingerprint()
    show(certsync, "--config", conf, "sync", "--force", "demo")
    assert fingerprint() != before, "the forced sync installed no new version (held? see status)"
    show(helper, "--config", conf, "--cert", "demo", "--keystore", ks, "--type", "jks",
         "--reload-url", tc.reload_url, "--manager-credentials", creds)
    print(f"Tomcat (pid {tc.pid()}, not restarted) now serves sha256 {tc.served_sha256()} "
          f"(store: {fingerprint()})")
    assert tc.served_sha256() == fingerprint(), "Tomcat does not serve the store's version"
