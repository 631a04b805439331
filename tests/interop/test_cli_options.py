"""What a user sees of the command line: --help lists every option a command takes, a
missing value or an unknown option is named with the command and where to read more."""
import os
import re

import pytest

from conftest import certsync, run

TOMCAT_HELPER = os.path.abspath(os.environ.get(
    "CERTSYNC_TOMCAT", os.path.join(os.path.dirname(__file__), "../../out/certsync-tomcat")))

ID_OPTIONS = {"--provider", "--yes", "--json", "--config", "--help"}

# Every option each command accepted before the option tables; none may go missing.
OPTIONS = {
    "convert": {"--cert", "--key", "--chain", "--format", "--out", "--profile", "--alias",
                "--password-file", "--key-password-file", "--passin-file", "--config", "--help"},
    "import": {"--cert", "--key", "--chain", "--passin-file", "--config", "--help"},
    "sync": {"--force", "--dry-run", "--quiet", "--config", "--help"},
    "ocsp": {"--config", "--help"},
    "status": {"--json", "--check", "--config", "--help"},
    "metrics": {"--config", "--help"},
    "rollback": {"--force", "--config", "--help"},
    "release": {"--config", "--help"},
    "list": {"--provider", "--keyword", "--json", "--config", "--help"},
    "show": {"--provider", "--json", "--config", "--help"},
    "fetch": {"--domain", "--into", "--layout", "--out", "--provider", "--json", "--config",
              "--help"},
    "upload": {"--cert", "--key", "--chain", "--replace", "--provider", "--json", "--config",
               "--help"},
    "delete": ID_OPTIONS,
    "delete-order": ID_OPTIONS,
    "withdraw": ID_OPTIONS,
    "revoke": ID_OPTIONS | {"--name", "--reason"},  # --name NAME: an ACME certificate
    "renew": ID_OPTIONS,
    "quota": {"--product", "--provider", "--json", "--config", "--help"},
    "apply": {"--domain", "--validate", "--product", "--wait", "--into", "--webroot", "--order",
              "--poll", "--timeout", "--provider", "--username", "--phone", "--email", "--json",
              "--dns",
              "--check", "--connect-to", "--config", "--help"},
    "resources": {"--provider", "--product", "--keyword", "--cloud", "--json", "--config",
                  "--help"},
    "deploy": {"--provider", "--name", "--to", "--schedule", "--contact", "--wait", "--timeout",
               "--json", "--config", "--help"},
    "deployments": {"--provider", "--json", "--config", "--help"},
    "deployment": {"--provider", "--resource", "--timeout", "--json", "--config", "--help"},
    "aliyun sign": {"--signature-version", "--method", "--host", "--action", "--api-version",
                    "--date", "--nonce", "--access-key-id", "--secret-file", "--param",
                    "--body-file", "--content-type", "--security-token-file", "--help"},
}
TOMCAT_OPTIONS = {"--config", "--cert", "--keystore", "--type", "--profile", "--alias",
                  "--password-file", "--reload-url", "--manager-credentials", "--tls-host-name",
                  "--ca-file", "--probe", "--group", "--tomcat-user", "--force", "--print-config",
                  "--wait-for-cert", "--help"}

OPTION_LINE = re.compile(r"^  (?:-\w, )?(--[a-z-]+)( \S+)?")


def options_section(help_text):
    """{--option: its value name or None} from the "Options:" section of a --help text."""
    section = help_text.split("\nOptions:\n", 1)[1]
    found = {}
    for line in section.splitlines():
        if not line.strip():
            break
        m = OPTION_LINE.match(line)
        if m:
            found[m.group(1)] = m.group(2).strip() if m.group(2) else None
    return found


def usage_lines(help_text):
    return help_text.split("\n\n", 1)[0]


@pytest.fixture
def no_config(tmp_path, monkeypatch):
    """No command may reach a real configuration or a service here."""
    monkeypatch.setenv("CERTSYNC_CONFIG", str(tmp_path / "absent.conf"))


@pytest.mark.parametrize("cmd", sorted(OPTIONS))
def test_help_lists_every_option_the_command_takes(cmd, no_config):
    r = certsync(*cmd.split(), "--help")
    assert r.stdout.startswith(f"Usage: certsync {cmd}")
    listed = options_section(r.stdout)
    assert set(listed) == OPTIONS[cmd]
    usage = usage_lines(r.stdout)
    for opt, value in listed.items():
        if opt != "--help":
            assert opt + (f" {value}" if value else "") in usage, (opt, usage)
        # and the parser knows every option the help shows
        arg = [f"{opt}=x"] if value else [opt]
        r = certsync(*cmd.split(), *arg, check=False) if opt != "--help" else r
        assert "unknown option" not in r.stderr and "takes no value" not in r.stderr, r.stderr


def test_the_five_id_commands_share_one_table(no_config):
    helps = {c: options_section(certsync(c, "--help").stdout)
             for c in ["delete", "delete-order", "withdraw", "revoke", "renew"]}
    revoke = helps.pop("revoke")  # and --name, --reason for an ACME certificate
    assert len({tuple(h.items()) for h in helps.values()}) == 1
    assert {k: v for k, v in revoke.items() if k not in ("--name", "--reason")} == helps["renew"]
    r = certsync("revoke", "--reason", "1", "5", check=False)
    assert r.returncode == 2 and "--reason goes with --name" in r.stderr
    r = certsync("withdraw", "12x", check=False)
    assert r.returncode == 2 and "certsync withdraw: give one ORDER (digits)" in r.stderr
    r = certsync("delete", check=False)
    assert r.returncode == 2 and "certsync delete: give one ID (digits)" in r.stderr


def test_main_help_lists_every_command():
    out = certsync("--help").stdout
    assert set(options_section(out)) == {"--config", "--quiet", "--version", "--help"}
    listed = {line.split()[0] for line in out.splitlines()
              if re.match(r"^  [a-z]", line) and not line.startswith("  -")}
    assert listed == {c.split()[0] for c in OPTIONS}
    assert certsync("-h").stdout == out
    assert certsync("help", "revoke").stdout == certsync("revoke", "--help").stdout


def test_tomcat_helper_help_lists_every_option():
    out = run(TOMCAT_HELPER, "--help").stdout
    assert set(options_section(out)) == TOMCAT_OPTIONS
    assert "Exit codes: 0 done" in out


@pytest.mark.parametrize("argv", [["status"], ["sync"], ["import", "shop"], ["revoke", "1"],
                                  ["list"], ["convert"]])
def test_config_without_a_value_says_that_it_needs_one(argv, no_config):
    r = certsync(*argv, "--config", check=False)
    assert r.returncode == 2
    assert r.stderr == (f"certsync {argv[0]}: --config needs a value: --config FILE\n"
                        f"Try 'certsync {argv[0]} --help'.\n")


def test_config_without_a_value_before_the_command():
    r = certsync("--config", check=False)
    assert r.returncode == 2
    assert r.stderr.startswith("certsync: --config needs a value: --config FILE\n")
    r = run(TOMCAT_HELPER, "--cert", "app", "--config", check=False)
    assert r.returncode == 2
    assert r.stderr.startswith("certsync-tomcat: --config needs a value: --config FILE\n")


@pytest.mark.parametrize("argv,word", [(["status", "--frobnicate"], "--frobnicate"),
                                       (["delete-order", "--force=1", "5"], "--force"),
                                       (["aliyun", "sign", "-x"], "-x")])
def test_an_unknown_option_names_the_command_and_its_help(argv, word, no_config):
    cmd = " ".join(a for a in argv if not a.startswith("-") and not a.isdigit())
    r = certsync(*argv, check=False)
    assert r.returncode == 2
    assert r.stderr == (f"certsync {cmd}: unknown option '{word}'\n"
                        f"Try 'certsync {cmd} --help'.\n")
    assert "=1" not in r.stderr          # the value given is not echoed


def test_a_switch_given_a_value_and_an_ambiguous_prefix_are_usage_errors(no_config):
    r = certsync("status", "--json=yes", check=False)
    assert r.returncode == 2 and r.stderr.startswith("certsync status: --json takes no value\n")
    r = certsync("convert", "--c", "x", check=False)
    assert r.returncode == 2
    assert r.stderr.startswith("certsync convert: '--c' is ambiguous (--cert, ...)")
    r = run(TOMCAT_HELPER, "--frob", check=False)
    assert r.returncode == 2 and r.stderr == ("certsync-tomcat: unknown option '--frob'\n"
                                              "Try 'certsync-tomcat --help'.\n")
