"""certsync under cron and systemd: --quiet prints only warnings and errors, and when
stderr is the journal (JOURNAL_STREAM names its device:inode) each line carries its
syslog priority, as sd-daemon(3) describes: <3> errors, <4> warnings, <6> the rest."""
import os
import subprocess

from conftest import CERTSYNC, certsync, chain  # noqa: F401 (chain is a fixture)


def run_into(log, *args, journal=None):
    """certsync ARGS with stdout and stderr appended to the file log, as systemd would
    connect them to the journal; JOURNAL_STREAM is journal's dev:ino when given."""
    env = dict(os.environ)
    env.pop("JOURNAL_STREAM", None)
    if journal is not None:
        st = os.stat(journal)
        env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
    with open(log, "ab") as f:
        r = subprocess.run([CERTSYNC, *map(str, args)], stdout=f, stderr=f, env=env)
    return r.returncode


def site(tmp_path):
    conf = tmp_path / "certsync.conf"
    conf.write_text(f"[store]\npath = {tmp_path}/store\n"
                    "[cert good]\ndomain = good.test\n"
                    "[cert bad]\ndomain = bad.test\non-change = /bin/false\n")
    return conf


def test_lines_carry_their_priority_when_stderr_is_the_journal(tmp_path, chain):
    conf = site(tmp_path)
    log = tmp_path / "journal"
    log.write_bytes(b"")
    assert run_into(log, "--config", conf, "sync", journal=log) == 1
    # a warning: a name the config does not declare
    assert run_into(log, "--config", conf, "import", "other", "--cert", chain.fullchain,
                    "--key", chain.key, journal=log) == 0
    lines = log.read_text().splitlines()
    assert "<6>good: installed v1 (no version yet)" in lines
    assert "<6>bad: installed v1 (no version yet)" in lines
    assert any(l.startswith("<3>bad: failed: v1 is current, but [cert bad] on-change:")
               for l in lines), lines
    assert any(l.startswith("<4>certsync import: warning: 'other' is not declared")
               for l in lines), lines
    assert any(l.startswith("<6>other: installed v1") for l in lines), lines
    assert all(l[:3] in ("<3>", "<4>", "<6>") for l in lines), lines


def test_no_prefix_when_journal_stream_names_another_file(tmp_path):
    conf = site(tmp_path)
    log, other = tmp_path / "log", tmp_path / "other"
    other.write_text("")
    assert run_into(log, "--config", conf, "sync", "good", journal=other) == 0
    lines = log.read_text().splitlines()
    assert lines[0] == "good: installed v1 (no version yet)"
    assert all(not l.startswith("<") for l in lines), lines
    # a malformed JOURNAL_STREAM is no journal either
    env = dict(os.environ, JOURNAL_STREAM="garbage")
    r = subprocess.run([CERTSYNC, "--config", conf, "sync", "good"], capture_output=True,
                       text=True, env=env)
    assert r.stdout.startswith("good: unchanged (")


def test_quiet_prints_only_errors(tmp_path):
    conf = site(tmp_path)
    certsync("--config", conf, "sync", "good")
    for args in (["sync", "--quiet"], ["--quiet", "sync"], ["-q", "sync"]):
        r = certsync("--config", conf, *args, check=False)
        assert r.returncode == 1
        assert r.stdout == ""                      # no "unchanged", no "installed"
        assert "bad: failed:" in r.stderr and "/bin/false" in r.stderr
    # all good: nothing at all, for cron to mail
    r = certsync("--config", conf, "sync", "--quiet", "good")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    # an on-change command's own chatter is silenced too
    hook = tmp_path / "hook"
    hook.write_text("#!/bin/sh\necho reloaded\n")
    hook.chmod(0o755)
    conf.write_text(conf.read_text().replace("/bin/false", str(hook)))
    r = certsync("--config", conf, "sync", "--quiet", "--force", "bad")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    r = certsync("--config", conf, "sync", "--force", "bad")
    assert "reloaded" in r.stdout and "bad: installed v" in r.stdout


def test_quiet_keeps_the_answer_of_status_and_metrics(tmp_path):
    """A global --quiet (say, in a wrapper) silences chatter, not the answer asked for."""
    conf = site(tmp_path)
    certsync("--config", conf, "sync", "good")
    r = certsync("--quiet", "--config", conf, "status", "good")
    assert "good" in r.stdout and "v1" in r.stdout
    r = certsync("-q", "--config", conf, "metrics")
    assert 'certsync_cert_version{name="good"} 1' in r.stdout


def test_the_tomcat_helper_speaks_to_the_journal_too(tmp_path):
    """certsync-tomcat as systemd's ExecStartPre: its lines carry priorities as well."""
    from test_tomcat import TOMCAT_HELPER
    conf = site(tmp_path)
    certsync("--config", conf, "sync", "good")
    log = tmp_path / "journal"
    log.write_bytes(b"")
    st = os.stat(log)
    env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
    with open(log, "ab") as f:
        # tmp_path is not reachable for the user tomcat: a warning
        r = subprocess.run([TOMCAT_HELPER, "--config", conf, "--cert", "good", "--keystore",
                            tmp_path / "good.jks", "--type", "jks", "--tomcat-user", "nobody"],
                           stdout=f, stderr=f, env=env)
        assert r.returncode == 0
        r = subprocess.run([TOMCAT_HELPER, "--config", conf, "--cert", "none", "--keystore",
                            tmp_path / "none.jks", "--type", "jks"], stdout=f, stderr=f, env=env)
        assert r.returncode == 1
    lines = log.read_text().splitlines()
    assert any(l.startswith("<6>good: wrote v1") for l in lines), lines
    assert any(l.startswith("<4>certsync-tomcat: warning: Tomcat's user 'nobody'")
               for l in lines), lines
    assert any(l.startswith("<3>certsync-tomcat: ") and "none" in l for l in lines), lines
    assert all(l[:3] in ("<3>", "<4>", "<6>") for l in lines), lines
