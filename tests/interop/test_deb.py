"""The Debian packages (`make deb`): lintian finds no error; installed with dpkg on this
machine they leave the system's nginx and Apache config tests passing, the system's
nginx and apache2 binaries load the packaged modules the Debian way (modules-enabled,
a2enmod) and serve the certificate the packaged config gets from the local CA; the
installed systemd units verify; `dpkg --purge` leaves none of the packages' files.

This installs into the machine's / (root only): the packages are purged at the end, even
when a test fails, and what their maintainer scripts enabled in Apache (mod_ssl with
mod_certsync) is disabled again. It refuses to run when certsync is installed already.
$CERTSYNC_DEBS: a directory with the built packages (else they are built here)."""
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

import apache
import nginx
from conftest import ROOT, run

PACKAGES = ("certsync", "libnginx-mod-http-certsync", "libnginx-mod-stream-certsync",
            "libapache2-mod-certsync")
# what each package installs (directories aside)
FILES = {
    "certsync": {
        "/usr/bin/certsync", "/usr/bin/certsync-tomcat", "/etc/certsync/certsync.conf",
        "/lib/systemd/system/certsync.service", "/lib/systemd/system/certsync.timer",
        "/usr/share/bash-completion/completions/certsync",
        "/usr/share/man/man8/certsync.8.gz", "/usr/share/man/man5/certsync.conf.5.gz",
        "/usr/share/man/man8/certsync-tomcat.8.gz",
        "/usr/share/doc/certsync/README.md.gz", "/usr/share/doc/certsync/examples/certsync",
        "/usr/share/doc/certsync/changelog.gz", "/usr/share/doc/certsync/copyright",
    },
    "libnginx-mod-http-certsync": {
        "/usr/lib/nginx/modules/ngx_http_certsync_module.so",
        "/usr/share/nginx/modules-available/mod-http-certsync.conf",
        "/usr/share/man/man8/certsync-nginx.8.gz",
        "/usr/share/doc/libnginx-mod-http-certsync/changelog.gz",
        "/usr/share/doc/libnginx-mod-http-certsync/copyright",
    },
    "libnginx-mod-stream-certsync": {
        "/usr/lib/nginx/modules/ngx_stream_certsync_module.so",
        "/usr/share/nginx/modules-available/mod-stream-certsync.conf",
        "/usr/share/doc/libnginx-mod-stream-certsync/changelog.gz",
        "/usr/share/doc/libnginx-mod-stream-certsync/copyright",
    },
    "libapache2-mod-certsync": {
        "/usr/lib/apache2/modules/mod_certsync.so", "/etc/apache2/mods-available/certsync.load",
        "/usr/share/man/man8/certsync-apache.8.gz",
        "/usr/share/doc/libapache2-mod-certsync/changelog.gz",
        "/usr/share/doc/libapache2-mod-certsync/copyright",
    },
}
# made by the maintainer scripts, not in dpkg -L: gone after purge too
MADE_ON_INSTALL = ("/etc/nginx/modules-enabled/50-mod-http-certsync.conf",
                   "/etc/nginx/modules-enabled/70-mod-stream-certsync.conf",
                   "/etc/apache2/mods-enabled/certsync.load",
                   "/etc/systemd/system/timers.target.wants/certsync.timer")
# Apache's enabled modules and a2enmod's records: restored after the purge
APACHE_STATE = (Path("/etc/apache2/mods-enabled"), Path("/var/lib/apache2"))

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="installs packages: needs root"),
    pytest.mark.skipif(shutil.which("dpkg-buildpackage") is None or shutil.which("lintian") is None,
                       reason="dpkg-dev, debhelper and lintian are missing (make deps)"),
    pytest.mark.skipif(not (Path(nginx.NGINX).exists() and Path(apache.APACHE2).exists()),
                       reason="nginx and apache2 are missing (make deps)"),
]


def installed_version(pkg):
    r = run("dpkg-query", "-W", "-f=${Status} ${Version}", pkg, check=False)
    return r.stdout if r.returncode == 0 and "install ok installed" in r.stdout else None


@pytest.fixture(scope="module")
def debs(tmp_path_factory):
    """{package: .deb} built by make deb (no unit tests: make test-unit runs them)."""
    d = os.environ.get("CERTSYNC_DEBS")
    if d:
        out = Path(d)
    else:
        o = tmp_path_factory.mktemp("deb")
        run("make", "-C", ROOT, "--no-print-directory", "deb", f"O={o}",
            env=dict(os.environ, DEB_BUILD_OPTIONS="nocheck"), timeout=1200)
        out = o / "deb"
    found = {p: sorted(out.glob(f"{p}_*.deb")) for p in PACKAGES}
    assert all(len(v) == 1 for v in found.values()), found
    return {p: v[0] for p, v in found.items()}


def snapshot():
    return {p for d in APACHE_STATE if d.exists() for p in [d, *d.rglob("*")]}


def purge():
    return run("dpkg", "--purge", *PACKAGES, check=False)


@pytest.fixture(scope="module")
def installed(debs):
    """dpkg -i of the three; yields {package: dpkg -L}; purges whatever happens."""
    for p in PACKAGES:
        if installed_version(p):
            pytest.skip(f"{p} is installed on this machine ({installed_version(p)}): "
                        "this test would remove it")
    before = snapshot()
    try:
        r = run("dpkg", "-i", *debs.values(), check=False, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        assert r.returncode == 0, r.stdout + r.stderr
        yield {p: run("dpkg", "-L", p).stdout.split("\n")[:-1] for p in PACKAGES}
    finally:
        purge()
        for p in sorted(snapshot() - before, key=lambda p: len(p.parts), reverse=True):
            if p.is_symlink() or p.is_file():
                p.unlink()
            elif p.is_dir():
                p.rmdir()


def test_lintian_reports_no_error(debs):
    r = run("lintian", "--fail-on", "error", *debs.values(), check=False)
    errors = [l for l in r.stdout.splitlines() if l.startswith("E:")]
    assert r.returncode == 0 and errors == [], r.stdout + r.stderr


def test_packages_depend_on_what_their_server_was_built_with(debs):
    fields = {p: run("dpkg-deb", "-f", deb, "Depends").stdout.strip() for p, deb in debs.items()}
    # as Debian's own libnginx-mod-* do: the ABI of the nginx-dev the module was built on
    abi = re.search(r"^nginx:abi=(\S+)$",
                    Path("/usr/share/nginx/src/debian/libnginx-mod.abisubstvars").read_text(), re.M)
    assert abi.group(1) in fields["libnginx-mod-http-certsync"].split(", ")
    assert abi.group(1) in fields["libnginx-mod-stream-certsync"].split(", ")
    assert "libnginx-mod-stream" in fields["libnginx-mod-stream-certsync"].split(", ")
    assert "apache2-api-20120211" in fields["libapache2-mod-certsync"].split(", ")


def test_files_installed(installed):
    for pkg, paths in installed.items():
        files = {p for p in paths if not Path(p).is_dir()}
        assert files == FILES[pkg], (pkg, files ^ FILES[pkg])
    conffiles = run("dpkg-query", "-W", "-f=${Conffiles}", "certsync").stdout
    assert "/etc/certsync/certsync.conf" in conffiles
    store = Path("/var/lib/certsync")
    assert store.is_dir() and oct(store.stat().st_mode & 0o777) == "0o750"
    assert run("stat", "-c", "%U:%G", store).stdout.strip() == "root:www-data"
    # enabled on install, as Debian's module packages and certbot's timer are
    assert os.readlink("/etc/nginx/modules-enabled/50-mod-http-certsync.conf") == \
        "/usr/share/nginx/modules-available/mod-http-certsync.conf"
    # after libnginx-mod-stream's 50-mod-stream.conf: the stream module loads first
    assert os.readlink("/etc/nginx/modules-enabled/70-mod-stream-certsync.conf") == \
        "/usr/share/nginx/modules-available/mod-stream-certsync.conf"
    assert Path("/usr/share/nginx/modules-available/mod-stream-certsync.conf").read_text() == \
        "load_module modules/ngx_stream_certsync_module.so;\n"
    enabled = {p.name for p in Path("/etc/apache2/mods-enabled").iterdir()}
    assert {"certsync.load", "ssl.load", "ssl.conf"} <= enabled, enabled
    assert Path("/etc/systemd/system/timers.target.wants/certsync.timer").is_symlink()


def test_system_config_tests_pass(installed):
    r = run(nginx.NGINX, "-t", check=False)
    assert r.returncode == 0 and "test is successful" in r.stderr, r.stderr
    r = run("/usr/sbin/apache2ctl", "configtest", check=False)
    assert r.returncode == 0 and "Syntax OK" in r.stderr, r.stderr


def s_client(port):
    """(served certificate's SHA-256, s_client's verdict against the local CA)."""
    fp, text = nginx.s_client(port, "localhost", "-CAfile", "/var/lib/certsync/local-ca/root.pem",
                              "-verify_hostname", "localhost")
    return fp, text


def verified(port):
    r = run("openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
            "-CAfile", "/var/lib/certsync/local-ca/root.pem", "-verify_hostname", "localhost",
            "-verify_return_error", input="", check=False, timeout=20)
    return r.returncode == 0 and "Verify return code: 0 (ok)" in r.stdout


@pytest.fixture(scope="module")
def synced(installed):
    """certsync sync with the packaged config: the local CA issues `localhost`."""
    run("/usr/bin/certsync", "sync")
    cert = Path("/var/lib/certsync/certs/localhost/current/cert.pem")
    x = run("openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", cert)
    return x.stdout.strip().split("=", 1)[1].replace(":", "").lower()


def test_nginx_loads_the_packaged_module_through_modules_enabled_and_serves(synced):
    prefix = apache.workdir("certsync-deb-nginx-")
    try:
        # the snippet loads modules/NAME.so, relative to nginx's prefix: Debian's
        # /usr/share/nginx/modules is a link to /usr/lib/nginx/modules, so is this one
        (prefix / "modules").symlink_to("/usr/lib/nginx/modules")
        ngx = nginx.Nginx(prefix, "server { listen 127.0.0.1:{port_tls} ssl;\n"
                                  "    server_name localhost;\n"
                                  "    certsync_certificate localhost; }\n",
                          ports=("tls",), workers=1, module="MODULES", user="www-data")
        # certsync_config is left out: the module reads /etc/certsync/certsync.conf
        ngx.conf.write_text(ngx.conf.read_text().replace(
            "load_module MODULES;", "include /etc/nginx/modules-enabled/*.conf;", 1))
        r = ngx.test_config()
        assert r.returncode == 0, r.stderr
        with ngx:
            fp, text = s_client(ngx.port("tls"))
            assert fp == synced, text
            assert verified(ngx.port("tls"))
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


def test_nginx_loads_the_packaged_stream_module_after_libnginx_mod_stream_and_serves(synced):
    prefix = apache.workdir("certsync-deb-nginx-stream-")
    port = nginx.free_port()
    try:
        (prefix / "modules").symlink_to("/usr/lib/nginx/modules")
        # 50-mod-stream.conf (libnginx-mod-stream), then 70-mod-stream-certsync.conf
        ngx = nginx.Nginx(prefix, "", ports=(), workers=1, module="MODULES", user="www-data",
                          main_conf="stream { server { listen 127.0.0.1:%d ssl;\n"
                                    "    certsync_certificate localhost;\n"
                                    "    return \"hello\\n\"; } }\n" % port)
        ngx.conf.write_text(ngx.conf.read_text().replace(
            "load_module MODULES;", "include /etc/nginx/modules-enabled/*.conf;", 1))
        r = ngx.test_config()
        assert r.returncode == 0, r.stderr
        with ngx:
            t0 = time.time()
            while not verified(port):
                assert time.time() - t0 < 10, s_client(port)[1]
                time.sleep(0.1)
            assert s_client(port)[0] == synced
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


def test_apache_loads_the_packaged_module_enabled_by_a2enmod_and_serves(synced):
    root = apache.workdir("certsync-deb-apache-")
    port = apache.free_port()
    try:
        # what a2enmod certsync enabled (the package's postinst ran it) is included as
        # Debian's apache2.conf includes mods-enabled/*.load; mod_ssl is loaded above it
        ap = apache.Apache(root, load_certsync=False,
                           preamble="Include /etc/apache2/mods-enabled/certsync.load",
                           body=f"Listen 127.0.0.1:{port} https\n"
                                f"<VirtualHost 127.0.0.1:{port}>\n    ServerName localhost\n"
                                "    SSLEngine on\n    CertSyncCertificate localhost\n"
                                "</VirtualHost>\n")
        r = ap.configtest()
        assert r.returncode == 0, r.stderr
        with ap:
            fp, text = s_client(port)
            assert fp == synced, text
            assert verified(port)
    finally:
        apache.cleanup(root)


def test_installed_units_verify(installed):
    r = run("systemd-analyze", "verify", "--man=no", "/lib/systemd/system/certsync.service",
            "/lib/systemd/system/certsync.timer", check=False)
    if "Failed to initialize manager" in r.stderr or "Failed to setup working directory" in r.stderr:
        pytest.skip(f"systemd-analyze cannot run in this container: {r.stderr.strip()}")
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_installed_man_pages_render_without_warnings(installed):
    pages = [p for files in installed.values() for p in files if "/man/man" in p and p.endswith(".gz")]
    assert len(pages) == 5
    for page in pages:
        r = subprocess.run(["man", "--warnings", "-l", page], capture_output=True, text=True,
                           env=dict(os.environ, MANWIDTH="80"))
        assert r.returncode == 0 and r.stderr == "" and "SEE ALSO" in r.stdout, (page, r.stderr)


def test_purge_leaves_none_of_their_files(installed, synced):
    assert Path("/var/lib/certsync/certs/localhost/current").exists()
    r = purge()
    assert r.returncode == 0, r.stdout + r.stderr
    left = []
    for path in sorted({p for files in installed.values() for p in files} | set(MADE_ON_INSTALL)):
        if path in ("/", "/.") or not os.path.lexists(path):
            continue
        # a directory other packages own too (/usr/share/man/man8) stays, and so do the
        # links of merged /usr (/lib -> usr/lib)
        if os.path.isdir(path) and (os.path.islink(path) or
                                    run("dpkg-query", "-S", path, check=False).returncode == 0):
            continue
        left.append(path)
    assert left == [], left
    for pkg in PACKAGES:
        assert installed_version(pkg) is None
    assert not Path("/var/lib/certsync").exists() and not Path("/etc/certsync").exists()
