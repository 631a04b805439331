"""Dry runs change nothing (README "Dry runs"): `certsync sync --dry-run` says which names are
due and why, what each provider would be asked and which on-change commands would run, and
leaves the store byte for byte as it was (contents, modes, owners, mtimes, links); `certsync
apply --check` says whether a real nginx answers the FILE validation before anything is
ordered in the service (the emulator's state shows no order)."""
import hashlib
import os
from pathlib import Path

import pytest

import nginx
from conftest import certsync
from nginx import Nginx
from test_aliyun import Emu, cas, emu, emu_module, sha2, webroot  # noqa: F401 (fixtures)


def tree_digest(root: Path):
    """Everything a change would touch: each entry's path, type, mode, owner, size, mtime,
    and the content of files and links."""
    h = hashlib.sha256()
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for name in [""] + sorted(dirs + files):
            p = Path(d) / name
            st = p.lstat()
            h.update(f"{p.relative_to(root)}|{st.st_mode}|{st.st_uid}|{st.st_gid}|{st.st_size}|"
                     f"{st.st_mtime_ns}\n".encode())
            if p.is_symlink():
                h.update(os.readlink(p).encode())
            elif p.is_file():
                h.update(p.read_bytes())
    return h.hexdigest()


def test_sync_dry_run_says_what_would_change_and_changes_nothing(tmp_path):
    store, conf, marker = tmp_path / "store", tmp_path / "certsync.conf", tmp_path / "hook-ran"

    def write(shop_names):
        conf.write_text(
            f"[store]\npath = {store}\n\n"
            f"[cert shop]\ndomain = {shop_names}\non-change = /usr/bin/touch {marker}\n\n"
            "[cert kept]\ndomain = kept.example.com\n\n"
            "[cert held]\ndomain = held.example.com\n\n"
            "[cert blog]\ndomain = blog.example.com\n")

    write("shop.example.com")
    for name in ("shop", "kept", "held"):
        certsync("--config", conf, "sync", name)
    certsync("--config", conf, "sync", "--force", "held")
    certsync("--config", conf, "rollback", "held")
    marker.unlink()
    # shop must now also cover www: its current version no longer does, so it is due
    write("shop.example.com www.shop.example.com")
    before = tree_digest(store)

    r = certsync("--config", conf, "sync", "--dry-run")
    out = r.stdout
    assert "shop: due (" in out and "www.shop.example.com" in out.split("shop: due (")[1]
    assert "the local CA would issue a new 90-day certificate in this process (no remote call)" \
        in out
    assert "a new version would become current, replacing v1" in out
    assert f"on-change would run as root: /usr/bin/touch {marker}" in out
    assert "kept: not due (v1 is good for" in out
    assert "held: unchanged: held at v1 since" in out and "`certsync release held` resumes" in out
    assert "blog: due (no version yet)" in out and "its first version would become current" in out
    assert "dry run: 2 certificate(s) would change, 0 would fail; nothing was changed" in out

    assert tree_digest(store) == before, "the dry run changed the store"
    assert not marker.exists(), "the dry run ran an on-change command"

    # the same without --dry-run changes it: the digest sees a change
    certsync("--config", conf, "sync")
    assert tree_digest(store) != before and marker.exists()


def test_sync_dry_run_of_a_missing_store_creates_nothing(tmp_path):
    conf = tmp_path / "certsync.conf"
    conf.write_text(f"[store]\npath = {tmp_path / 'store'}\n\n[cert a]\ndomain = a.example.com\n")
    r = certsync("--config", conf, "sync", "--dry-run")
    assert f"the store {tmp_path / 'store'} does not exist yet: a sync would create it" in r.stdout
    assert "the local CA would be created (local-ca/)" in r.stdout
    assert not (tmp_path / "store").exists()


def test_sync_dry_run_asks_the_service_its_list_only(cas, emu):
    cid = emu.ctl("add-cert", domain="shop.test")["CertificateId"]
    cas.write("[cert shop]\nprovider = ali\ndomain = shop.test\non-change = /bin/true\n")
    cas.cli("sync")
    new = emu.ctl("renew", cert_id=cid)["CertificateId"]
    emu.ctl("clear", requests="1")
    before = tree_digest(cas.store)

    r = cas.cli("sync", "--dry-run")
    assert f"shop: due (new: certificate {new} of the service)" in r.stdout
    assert "ListUserCertificateOrder (read-only, asked now), then GetUserCertificateDetail " \
        f"CertId={new}" in r.stdout
    assert "on-change would run as root: /bin/true" in r.stdout
    assert emu.actions() == ["ListUserCertificateOrder"]
    assert tree_digest(cas.store) == before
    assert cas.served("shop") == sha2(emu, cid)


# ---- apply --check ----

def validation_nginx(prefix, conf, validation):
    return Nginx(prefix, f"""
    certsync_config {conf};
    server {{
        listen 127.0.0.1:{{port_http}};
        server_name site.test;
        certsync_validation {validation};
    }}
""", ports=("http",))


@pytest.mark.skipif(not nginx.available(), reason="needs nginx and the nginx module")
def test_apply_check_fetches_the_validation_file_from_nginx_and_orders_nothing(cas, emu,
                                                                              tmp_path):
    cas.write("[cert site]\nprovider = ali\ndomain = site.test\n")
    # an order's validation file already there is put back after the check
    answer = cas.store / "challenges" / "site.test" / "pki-validation" / "fileauth.txt"
    with validation_nginx(tmp_path / "ngx-on", cas.conf, "on") as ngx:
        port = ngx.port("http")
        r = cas.cli("apply", "--check", "--domain", "Site.test", "--validate", "file",
                    "--connect-to", f"127.0.0.1:{port}")
        assert r.returncode == 0
        assert (f"apply --check: http://Site.test/.well-known/pki-validation/fileauth.txt "
                f"through 127.0.0.1:{port} answers the FILE validation") in r.stdout
        assert "nothing was ordered" in r.stdout
        probe = answer.read_text()
        assert probe.startswith("certsync-check-")

        answer.write_text("the order's content\n")
        assert cas.cli("apply", "--check", "--domain", "site.test", "--validate", "file",
                       "--connect-to", f"127.0.0.1:{port}").returncode == 0
        assert answer.read_text() == "the order's content\n"

    with validation_nginx(tmp_path / "ngx-off", cas.conf, "off") as ngx:
        port = ngx.port("http")
        r = cas.cli("apply", "--check", "--domain", "site.test", "--validate", "file",
                    "--connect-to", f"127.0.0.1:{port}", check=False)
        assert r.returncode == 1
        assert (f"http://site.test/.well-known/pki-validation/fileauth.txt (through "
                f"127.0.0.1:{port}) answered HTTP 404, not the file; turn on validation answers "
                "in the server that answers it on port 80 (nginx: certsync_validation on") \
            in r.stderr, r.stderr

    r = cas.cli("apply", "--check", "--domain", "site.test", "--validate", "file",
                "--connect-to", f"127.0.0.1:{port}", check=False)
    assert r.returncode == 1 and "no answer (" in r.stderr

    # nothing reached the service, and no order exists there
    assert emu.actions() == []
    assert emu.ctl("state")["orders"] == []


def test_apply_check_is_for_file_validation_only(cas, emu):
    cas.write("[cert site]\nprovider = ali\ndomain = site.test\n")
    r = cas.cli("apply", "--check", "--domain", "site.test", "--validate", "dns", check=False)
    assert r.returncode == 2 and "--check checks FILE validation" in r.stderr
    r = cas.cli("apply", "--domain", "site.test", "--validate", "file", "--connect-to",
                "127.0.0.1:80", check=False)
    assert r.returncode == 2 and "--connect-to goes with --check" in r.stderr
    assert emu.actions() == []
