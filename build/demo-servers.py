#!/usr/bin/env python3
"""Demo step: Debian's real nginx (ngx_http_certsync_module) and Apache (mod_certsync)
serve the managed certificate "demo" of the demo store by name, and a rotation reaches
both with no reload and no new processes. Usage: demo-servers.py CONFIG CERTSYNC"""
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "interop"))
import apache  # noqa: E402
import nginx  # noqa: E402

conf, certsync = sys.argv[1:3]


def store_fp():
    out = subprocess.run([certsync, "--config", conf, "status", "--json", "demo"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)[0]["fingerprint_sha256"]


def show(*args):
    print("$", " ".join(str(a) for a in args), flush=True)
    print(subprocess.run([str(a) for a in args], check=True, capture_output=True,
                         text=True).stdout, end="", flush=True)


work = Path(tempfile.mkdtemp(prefix="certsync-demo-servers-"))
work.chmod(0o755)
ngx_conf = f"""
    certsync_config {conf};
    server {{
        listen 127.0.0.1:{{port_tls}} ssl;
        server_name demo.localhost;
        certsync_certificate demo;
        location / {{ return 200 "nginx\\n"; }}
    }}
"""
ap_port = apache.free_port()
ap_body = f"""
Listen 127.0.0.1:{ap_port} https
<VirtualHost 127.0.0.1:{ap_port}>
    ServerName demo.localhost
    SSLEngine on
    CertSyncCertificate demo
</VirtualHost>
"""
ngx = nginx.Nginx(work / "nginx", ngx_conf, ports=("tls",))
ap = apache.Apache(apache.workdir(), ap_body, preamble=f"CertSyncConfig {conf}")
with ngx, ap:
    n_port = ngx.port("tls")
    pids = (ngx.master_pid, ngx.worker_pids(), ap.pid(), ap.child_pids())
    print(f"nginx  https://demo.localhost:{n_port}/ serves "
          f"{nginx.served_sha256(n_port, 'demo.localhost')}")
    print(f"Apache https://demo.localhost:{ap_port}/ serves "
          f"{apache.served_sha256(ap_port, 'demo.localhost')}")
    before = store_fp()
    print(f"store current is                          {before}")
    show(certsync, "--config", conf, "sync", "--force", "demo")
    want, t0 = store_fp(), time.monotonic()
    assert want != before, "the forced sync installed no new version (held? see status)"
    while (nginx.served_sha256(n_port, "demo.localhost") != want or
           apache.served_sha256(ap_port, "demo.localhost") != want):
        assert time.monotonic() - t0 < 5, "the servers did not pick up the new version"
        time.sleep(0.05)
    print(f"both serve {want} after {time.monotonic() - t0:.2f} s")
    same = pids == (ngx.master_pid, ngx.worker_pids(), ap.pid(), ap.child_pids())
    print(f"no reload, no new processes: {'yes' if same else 'NO'} "
          f"(nginx master {pids[0]}, Apache parent {pids[2]})")
