"""The README's first command: `make demo` (build/demo.sh) runs the embedded default end to
end. It must show what it claims: a rotation reaching nginx, Apache and Tomcat with no
restart, after a rollback that holds until `certsync release`."""
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from conftest import CERTSYNC

ROOT = Path(__file__).resolve().parents[2]
TOMCAT_HELPER = os.environ.get("CERTSYNC_TOMCAT", str(ROOT / "out" / "certsync-tomcat"))


def test_the_demo_rotates_in_all_three_servers_with_no_restart():
    # where make demo puts it: directly under /tmp, which the servers' workers can traverse
    # (pytest's tmp_path is under a 0700 directory)
    demo = tempfile.mkdtemp(prefix="certsync-demo-test.", dir="/tmp")
    env = dict(os.environ, CERTSYNC_DEMO_DIR=demo)
    try:
        r = subprocess.run(["bash", str(ROOT / "build" / "demo.sh"), CERTSYNC, TOMCAT_HELPER],
                           capture_output=True, text=True, env=env, timeout=600)
    finally:
        shutil.rmtree(demo, ignore_errors=True)
    out = r.stdout
    assert r.returncode == 0, out[-3000:] + r.stderr[-3000:]
    assert "current is now v1 (was v2), held there" in out
    assert re.search(r"demo: held at v1 since \S+; `certsync release demo` resumes", out)
    assert "demo: released (was held at v1" in out
    # nginx and Apache: the forced sync after the release installs v3, served by both
    assert "demo: installed v3 (forced" in out, out[-3000:]
    assert "no reload, no new processes: yes" in out
    # Tomcat: hot-reloaded onto v4 by certsync-tomcat, the same process
    m = re.search(r"now serves sha256 ([0-9a-f]{64}) \(store: ([0-9a-f]{64})\)", out)
    assert m and m.group(1) == m.group(2), out[-3000:]
    assert "demo: installed v4 (forced" in out
