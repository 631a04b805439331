#!/usr/bin/python3
"""Expand a man page source (scdoc) with what the programs' --help say, for scdoc(1).

    gen-man.py PAGE.scd CERTSYNC CERTSYNC_TOMCAT > PAGE.expanded.scd

A line "%options PROGRAM" becomes the options PROGRAM's --help lists (PROGRAM: certsync
or certsync-tomcat); "%commands" becomes one subsection per command `certsync --help`
names, rendered from `certsync help COMMAND`. The --help texts come from the option
tables the parsers use (common/cli/cli_opt.c), so the pages name every command and
option the programs take, in their words. Every other line is copied as it is.
"""
import re
import subprocess
import sys

OPTION = re.compile(r"^  (-\S.*?)(?:\s{2,}(\S.*))?$")


def esc(text):
    """scdoc's inline markup characters, taken literally."""
    return re.sub(r"([\\*_])", r"\\\1", text)


def helptext(*argv):
    r = subprocess.run(argv, capture_output=True, text=True, env={"LC_ALL": "C.UTF-8"})
    if r.returncode != 0 or not r.stdout:
        sys.exit(f"gen-man.py: {' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()}")
    return r.stdout


def blocks(text):
    """The help's paragraphs: lists of lines between blank lines."""
    out, cur = [], []
    for line in text.rstrip("\n").split("\n"):
        if line.strip():
            cur.append(line.rstrip())
        elif cur:
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


def options(lines):
    """'  --name ARG   text' entries with their continuation lines, as a term list."""
    out = []
    for line in lines:
        m = OPTION.match(line)
        if m:
            out += ["", f"*{esc(m.group(1))}*"]
            if m.group(2):
                out.append("\t" + esc(m.group(2)))
        elif out and line.startswith("      "):
            if out[-1].startswith("*"):
                out.append("\t" + esc(line.strip()))
            else:
                out[-1] += " " + esc(line.strip())
        else:
            out += ["", esc(line.strip())]
    return out


def literal(lines):
    return ["", "```", *lines, "```"]


def render(text):
    """One command's --help: its usage as a literal block, its prose as paragraphs, its
    options as a term list, any other indented table as a literal block."""
    out = []
    for block in blocks(text):
        if block[0].startswith("Usage:"):
            out += literal([l.replace("Usage: ", "", 1) if i == 0 else l[7:]
                            for i, l in enumerate(block)])
        elif block[0] == "Options:":
            out += options(block[1:])
        else:
            para, table = [], []
            for line in block + [""]:
                if line.startswith("  ") and line.strip():
                    if para:
                        out += ["", " ".join(esc(p.strip()) for p in para)]
                        para = []
                    table.append(line)
                else:
                    if table:
                        out += literal(table)
                        table = []
                    if line:
                        para.append(line)
            if para:
                out += ["", " ".join(esc(p.strip()) for p in para)]
    return out


def commands(certsync):
    """The commands `certsync --help` lists, in its order."""
    names, listing = [], False
    for line in helptext(certsync, "--help").split("\n"):
        if line.endswith(":") and not line.startswith(" "):
            listing = line.startswith("Commands") or line.startswith("The certificate service")
            continue
        m = re.match(r"^  ([a-z][a-z-]*)\b", line)
        if listing and m and m.group(1) not in names:
            names.append(m.group(1))
    if not names:
        sys.exit(f"gen-man.py: `{certsync} --help` lists no command")
    return names


def main():
    page, certsync, tomcat = sys.argv[1:4]
    programs = {"certsync": certsync, "certsync-tomcat": tomcat}
    out = []
    with open(page, encoding="utf-8") as f:
        for line in f.read().split("\n"):
            if line.startswith("%options "):
                blocks_ = blocks(helptext(programs[line.split()[1]], "--help"))
                opts = next(b for b in blocks_ if b[0] == "Options:")
                out += options(opts[1:])
            elif line == "%commands":
                for name in commands(certsync):
                    out += ["", f"## {name.upper()}"]
                    out += render(helptext(certsync, "help", name))
            else:
                out.append(line)
    sys.stdout.write("\n".join(out))


if __name__ == "__main__":
    main()
