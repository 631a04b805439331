"""make install / make uninstall lay certsync out as Debian lays out its own packages, the
systemd units pass systemd-analyze, and the bash completion completes what an operator
types. Every install here goes into a DESTDIR: the machine's / is never touched."""
import grp
import os
import re
import shutil
import stat
from pathlib import Path

import pytest

from conftest import CERTSYNC, ROOT, run

# what `make install` adds on Debian 12 (nginx -V --modules-path, apxs -q LIBEXECDIR)
EXPECTED = {
    "usr/bin/certsync": 0o755,
    "usr/bin/certsync-tomcat": 0o755,
    "usr/share/bash-completion/completions/certsync": 0o644,
    "lib/systemd/system/certsync.service": 0o644,
    "lib/systemd/system/certsync.timer": 0o644,
    "usr/share/man/man8/certsync.8": 0o644,
    "usr/share/man/man5/certsync.conf.5": 0o644,
    "usr/share/man/man8/certsync-tomcat.8": 0o644,
    "usr/share/man/man8/certsync-nginx.8": 0o644,
    "usr/share/man/man8/certsync-apache.8": 0o644,
    "usr/lib/nginx/modules/ngx_http_certsync_module.so": 0o644,
    "usr/lib/nginx/modules/ngx_stream_certsync_module.so": 0o644,
    "usr/share/nginx/modules-available/mod-http-certsync.conf": 0o644,
    "usr/lib/apache2/modules/mod_certsync.so": 0o644,
    "etc/apache2/mods-available/certsync.load": 0o644,
    "etc/certsync/certsync.conf": 0o644,
    "usr/share/certsync/install-manifest": 0o644,
}
NGINX_LINK = "etc/nginx/modules-enabled/50-mod-http-certsync.conf"
STORE = "var/lib/certsync"


def make(target, dest, check=True):
    return run("make", "-C", ROOT, "--no-print-directory", target, f"DESTDIR={dest}", check=check)


def tree(d: Path):
    return sorted(str(p.relative_to(d)) for p in d.rglob("*") if not p.is_dir() or p.is_symlink())


@pytest.fixture
def installed(tmp_path):
    dest = tmp_path / "root"
    make("install", dest)
    return dest


def test_install_lays_out_debian_paths_with_their_modes(installed):
    assert tree(installed) == sorted([*EXPECTED, NGINX_LINK])
    for rel, mode in EXPECTED.items():
        st = (installed / rel).lstat()
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == mode, rel
    for rel, source in (("lib/systemd/system/certsync.service", "build/systemd/certsync.service"),
                        ("lib/systemd/system/certsync.timer", "build/systemd/certsync.timer"),
                        ("usr/share/bash-completion/completions/certsync", "build/completion/certsync.bash"),
                        ("etc/certsync/certsync.conf", "build/certsync.conf")):
        assert (installed / rel).read_bytes() == (ROOT / source).read_bytes(), rel
    conf = (installed / "etc/certsync/certsync.conf").stat()
    assert (conf.st_uid, conf.st_gid) == (0, 0)
    # enabled as libnginx-mod-* packages do: a link to the snippet at its real path
    assert os.readlink(installed / NGINX_LINK) == "/usr/share/nginx/modules-available/mod-http-certsync.conf"
    assert (installed / "usr/share/nginx/modules-available/mod-http-certsync.conf").read_text() == \
        "load_module modules/ngx_http_certsync_module.so;\n"
    load = (installed / "etc/apache2/mods-available/certsync.load").read_text()
    assert load == "# Depends: ssl\nLoadModule certsync_module /usr/lib/apache2/modules/mod_certsync.so\n"
    store = (installed / STORE).stat()
    assert stat.S_IMODE(store.st_mode) == 0o750
    assert (store.st_uid, store.st_gid) == (0, grp.getgrnam("www-data").gr_gid)


def test_uninstall_leaves_nothing(installed):
    make("uninstall", installed)
    assert list(installed.iterdir()) == []


def test_install_keeps_the_operators_config_and_uninstall_keeps_it_and_the_store(tmp_path):
    dest = tmp_path / "root"
    mine = dest / "etc/certsync/certsync.conf"
    mine.parent.mkdir(parents=True)
    mine.write_text("[store]\npath = /srv/certsync\n")
    make("install", dest)
    assert mine.read_text() == "[store]\npath = /srv/certsync\n"
    (dest / STORE / "certs").mkdir()
    make("uninstall", dest)
    assert mine.read_text() == "[store]\npath = /srv/certsync\n"
    assert (dest / STORE / "certs").is_dir()
    assert sorted(tree(dest)) == ["etc/certsync/certsync.conf"]


def test_uninstall_keeps_an_example_config_the_operator_edited(installed):
    conf = installed / "etc/certsync/certsync.conf"
    conf.write_text(conf.read_text().replace("domain = localhost", "domain = localhost.localdomain"))
    r = make("uninstall", installed)
    assert "kept" in r.stdout and "certsync.conf" in r.stdout
    assert tree(installed) == ["etc/certsync/certsync.conf"]


def test_example_config_works_as_is(installed):
    """The shipped config, with only its store moved into DESTDIR, issues and shows a
    certificate from the local CA into the store directory install created."""
    conf = installed / "etc/certsync/certsync.conf"
    conf.write_text(conf.read_text().replace("/var/lib/certsync", str(installed / STORE)))
    run(installed / "usr/bin/certsync", "--config", conf, "sync")
    r = run(installed / "usr/bin/certsync", "--config", conf, "status")
    assert re.search(r"^localhost\n  current +v1\n", r.stdout, re.M), r.stdout
    assert "names        localhost" in r.stdout


def test_installed_modules_load_the_debian_way(installed, tmp_path):
    """nginx loads the module through modules-enabled; a2enmod certsync enables it with
    mod_ssl."""
    prefix = tmp_path / "nginx"
    (prefix / "logs").mkdir(parents=True)
    (prefix / "modules").symlink_to(installed / "usr/lib/nginx/modules")
    # what nginx's "include /etc/nginx/modules-enabled/*.conf;" reads, its links resolved
    # inside DESTDIR
    enabled = [installed / os.readlink(p).lstrip("/")
               for p in sorted((installed / "etc/nginx/modules-enabled").glob("*.conf"))]
    (prefix / "nginx.conf").write_text(
        "".join(f"include {p};\n" for p in enabled) +
        f"pid {prefix}/nginx.pid;\nerror_log stderr;\nevents {{}}\n"
        "http { certsync_watch_interval 5s; }\n")
    r = run("/usr/sbin/nginx", "-t", "-p", prefix, "-c", prefix / "nginx.conf", check=False)
    # nginx knows certsync's directives only with the module loaded
    assert r.returncode == 0 and "test is successful" in r.stderr, r.stderr

    confdir = tmp_path / "apache2"
    shutil.copytree("/etc/apache2", confdir, symlinks=True)
    for f in confdir.glob("mods-enabled/*"):
        f.unlink()
    shutil.copy(installed / "etc/apache2/mods-available/certsync.load", confdir / "mods-available")
    env = dict(os.environ, APACHE_CONFDIR=str(confdir), APACHE_STATE_DIRECTORY=str(tmp_path / "state"))
    run("/usr/sbin/a2enmod", "-q", "certsync", env=env)
    enabled = {p.name for p in (confdir / "mods-enabled").iterdir()}
    assert {"certsync.load", "ssl.load", "ssl.conf"} <= enabled, enabled


def test_systemd_units_verify(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is missing (apt-get install systemd)")
    units = [ROOT / "build/systemd/certsync.service", ROOT / "build/systemd/certsync.timer"]
    # verify checks that ExecStart is executable: point it at the built binary (the line
    # itself is asserted below); --root would hide the system's own units
    check = tmp_path / "units"
    check.mkdir()
    for u in units:
        (check / u.name).write_text(u.read_text().replace(
            "ExecStart=/usr/bin/certsync", f"ExecStart={CERTSYNC}"))
    r = run("systemd-analyze", "verify", "--man=no", *sorted(check.iterdir()), check=False)
    if "Failed to initialize manager" in r.stderr or "Failed to setup working directory" in r.stderr:
        pytest.skip(f"systemd-analyze cannot run in this container: {r.stderr.strip()}")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    service = units[0].read_text()
    for line in ("Type=oneshot", "ExecStart=/usr/bin/certsync sync", "ProtectSystem=strict",
                 "ReadWritePaths=/var/lib/certsync", "ProtectHome=read-only", "PrivateTmp=yes",
                 "NoNewPrivileges=yes",
                 "CapabilityBoundingSet=CAP_CHOWN CAP_FOWNER CAP_DAC_OVERRIDE CAP_SETUID CAP_SETGID"):
        assert line in service.splitlines(), line
    timer = units[1].read_text().splitlines()
    assert "Persistent=true" in timer and "RandomizedDelaySec=12h" in timer
    r = run("systemd-analyze", "calendar", "--iterations=2",
            next(l.split("=", 1)[1] for l in timer if l.startswith("OnCalendar=")))
    # twice a day: the next two elapses are 12 hours apart
    hours = [int(h) for h in re.findall(r"(?:Next elapse|Iter. #2): \S+ \S+ (\d\d):00:00", r.stdout)]
    assert len(hours) == 2 and (hours[1] - hours[0]) % 24 == 12, r.stdout


def test_cron_example_runs_sync_twice_a_day():
    entry = [l for l in (ROOT / "build/cron/certsync").read_text().splitlines()
             if l and not l.startswith("#") and "=" not in l.split()[0]]
    assert len(entry) == 1
    minute, hour, _, _, _, user, *cmd = entry[0].split()
    assert len(hour.split(",")) == 2 and user == "root" and cmd[-2:] == ["/usr/bin/certsync", "sync"]


def complete(line, env_extra=None):
    """What bash offers for LINE<TAB> with the installed completion sourced."""
    words = line.split(" ")
    script = (f"source {ROOT}/build/completion/certsync.bash\n"
              f"COMP_WORDS=({' '.join(repr(w) for w in words)})\n"
              f"COMP_CWORD={len(words) - 1}\n_certsync\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n")
    env = dict(os.environ, PATH=f"{Path(CERTSYNC).parent}:"
                                f"{os.environ['PATH']}", **(env_extra or {}))
    r = run("bash", "--norc", "-c", script, env=env)
    return [c for c in r.stdout.splitlines() if c]


def test_completion_of_commands_options_names_and_formats(tmp_path):
    conf = tmp_path / "certsync.conf"
    conf.write_text("[store]\npath = /tmp/x\n\n[cert shop]\nprovider = local\n"
                    "[cert  blog.example ]\n ; [cert commented]\n[provider local]\ntype = local-ca\n")
    assert complete("certsync sy") == ["sync"]
    assert complete("certsync convert --for") == ["--format"]
    assert complete(f"certsync --config {conf} status ") == ["shop", "blog.example"]
    assert complete("certsync status ", {"CERTSYNC_CONFIG": str(conf)}) == ["shop", "blog.example"]
    assert complete("certsync convert --format p") == ["pem", "pfx"]
    assert complete("certsync fetch --layout ") == ["nginx", "apache", "tomcat", "iis", "jks"]
    assert "--force" in complete("certsync sync --")


def test_completion_lists_every_command_and_format_the_help_names():
    """The commands come from `certsync --help`; the static format and layout lists are
    the ones convert's and fetch's help name."""
    offered = complete("certsync ")
    for cmd in ("sync", "status", "import", "rollback", "convert", "fetch", "apply", "aliyun"):
        assert cmd in offered
    cli = CERTSYNC
    helptext = " ".join(run(cli, "convert", "--help").stdout.split())
    formats = complete("certsync convert --format ")
    assert f"--format FORMAT {', '.join(formats[:-1])} or {formats[-1]} (above)" in helptext
    helptext = " ".join(run(cli, "fetch", "--help").stdout.split())
    assert "nginx, apache, tomcat, iis (NAME.pfx + pfx-password.txt) or jks" in helptext
