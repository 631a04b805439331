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
