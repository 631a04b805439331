"""The man pages (doc/*.scd, `make man`) document every command and option the programs'
--help list, every key the config parser knows, every nginx and Apache directive the
modules declare, and render without a warning. A new option, key or directive without
its documentation fails here."""
import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, run

MAN = ROOT / "out" / "man"
PAGES = ("certsync.8", "certsync.conf.5", "certsync-tomcat.8", "certsync-nginx.8",
         "certsync-apache.8")


@pytest.fixture(scope="module", autouse=True)
def pages():
    run("make", "-C", ROOT, "--no-print-directory", "man")


def rendered(page):
    """The page as man shows it, on lines long enough that nothing is wrapped or hyphenated."""
    env = dict(os.environ, MANWIDTH="250", MANROFFOPT="-rHY=0", MAN_KEEP_FORMATTING="")
    return run("man", "-l", MAN / page, env=env).stdout


def section(text, heading, level=0):
    """The lines under a heading (level 0: a section, 3: a subsection of certsync(8))."""
    lines = text.split("\n")
    start = lines.index(" " * level + heading) + 1
    end = next((i for i in range(start, len(lines))
                if re.match(r"^ {0,%d}\S" % level, lines[i])), len(lines))
    return "\n".join(lines[start:end])


def terms(text):
    """The words of a term list's terms: lines indented as a term (7 spaces) whose next
    line is indented as its definition (11)."""
    lines = text.split("\n")
    found = set()
    for term, definition in zip(lines, lines[1:]):
        if re.match(r"^ {7}\S", term) and re.match(r"^ {11}\S", definition):
            found |= set(re.findall(r"-{0,2}[A-Za-z0-9][\w-]*", term))
    return found


def help_options(*argv):
    out = run(*argv).stdout
    opts = out[out.index("\nOptions:\n"):]
    return set(re.findall(r"^  (?:-\w, )?(--[a-z0-9-]+)", opts, re.M))


def cli_commands():
    out = run(ROOT / "out/certsync", "--help").stdout
    names = []
    for block in re.split(r"\n(?=\S)", out):
        if block.startswith("Commands:") or block.startswith("The certificate service"):
            names += re.findall(r"^  ([a-z][a-z-]*)", block, re.M)
    return names


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_without_warnings(page):
    env = dict(os.environ, MANWIDTH="80")
    r = subprocess.run(["man", "--warnings", "-l", MAN / page], capture_output=True, text=True,
                       env=env)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert "NAME" in r.stdout and "SEE ALSO" in r.stdout


def test_certsync_8_has_every_command_and_each_of_its_options():
    text = rendered("certsync.8")
    commands = cli_commands()
    assert {"sync", "status", "rollback", "convert", "fetch", "apply", "aliyun"} <= set(commands)
    for cmd in commands:
        sub = section(section(text, "COMMANDS"), cmd.upper(), level=3)
        assert f"certsync {cmd}" in sub, cmd
        documented = terms(sub)
        for opt in help_options(ROOT / "out/certsync", "help", cmd):
            assert opt in documented, f"certsync {cmd} {opt} is not in certsync(8)"
    assert help_options(ROOT / "out/certsync", "--help") <= terms(section(text, "OPTIONS"))


def test_certsync_tomcat_8_has_every_option():
    documented = terms(section(rendered("certsync-tomcat.8"), "OPTIONS"))
    opts = help_options(ROOT / "out/certsync-tomcat", "--help")
    assert {"--cert", "--keystore", "--reload-url"} <= opts
    assert opts <= documented, opts - documented


def config_keys():
    """{section: keys} from the parser's tables (common/lib/cs_config.c)."""
    src = (ROOT / "common/lib/cs_config.c").read_text()
    tables = {}
    for name, body in re.findall(r"static const conf_key (\w+)_keys\[\] = \{(.*?)\n\};", src, re.S):
        tables[name] = re.findall(r'KEY\("([a-z-]+)"', body)
    assert set(tables) == {"store", "provider", "cert"}, tables.keys()
    return tables


def test_certsync_conf_5_and_the_readme_have_every_key_of_the_parser():
    text = rendered("certsync.conf.5")
    readme = (ROOT / "README.md").read_text()
    heading = {"store": "[store]", "provider": "[provider NAME]", "cert": "[cert NAME]"}
    for name, keys in config_keys().items():
        documented = terms(section(text, heading[name]))
        assert set(keys) <= documented, f"[{name}]: {set(keys) - documented} not in certsync.conf(5)"
        for key in keys:
            assert re.search(rf"^\| (`[a-z-]+`, )*`{key}`", readme, re.M), f"{key} is not in README.md"


def nginx_directives():
    names = []
    for c in sorted((ROOT / "nginx-module").glob("*.c")):
        for body in re.findall(r"static ngx_command_t\s+\w+\[\]\s*=\s*\{(.*?)\n\};", c.read_text(), re.S):
            names += re.findall(r'\{\s*ngx_string\("(\w+)"\)', body)
    return names


def apache_directives():
    names = []
    for c in sorted((ROOT / "apache-module").glob("*.c")):
        for body in re.findall(r"command_rec\s+\w+\[\]\s*=\s*\{(.*?)\n\};", c.read_text(), re.S):
            names += re.findall(r'AP_INIT_\w+\("(\w+)"', body)
    return names


def test_certsync_nginx_8_has_every_directive_of_the_module():
    names = nginx_directives()
    assert {"certsync_certificate", "certsync_config", "certsync_status"} <= set(names)
    documented = terms(section(rendered("certsync-nginx.8"), "DIRECTIVES"))
    assert set(names) <= documented, set(names) - documented
    readme = (ROOT / "nginx-module/README.md").read_text()
    for name in names:
        assert f"\n### {name}\n" in readme, name


def test_certsync_apache_8_has_every_directive_of_the_module():
    names = apache_directives()
    assert {"CertSyncCertificate", "CertSyncConfig", "CertSyncSync"} <= set(names)
    documented = terms(section(rendered("certsync-apache.8"), "DIRECTIVES"))
    assert set(names) <= documented, set(names) - documented
    readme = (ROOT / "apache-module/README.md").read_text()
    for name in names:
        assert f"| `{name}" in readme, name
