"""ngx_stream_certsync_module in Debian's real nginx (with Debian's libnginx-mod-stream):
a stream{} server with "listen ... ssl" and certsync_certificate serves the store's current
version to openssl s_client, and a new version reaches the same processes with no reload."""
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import Chain, certsync
from nginx import ROOT, Nginx, available, free_port, s_client
from test_nginx import SHOP as HTTP_SHOP, http_conf, store_sha256, wait_served, write_conf

STREAM = Path("/usr/lib/nginx/modules/ngx_stream_module.so")   # libnginx-mod-stream
MODULE = ROOT / "out" / "ngx_stream_certsync_module.so"


@pytest.fixture(autouse=True)
def need_stream():
    assert available() and STREAM.exists() and MODULE.exists(), (
        "nginx, libnginx-mod-stream or out/ngx_stream_certsync_module.so is missing: "
        "run build/install-deps.sh and make modules")


def stream_nginx(tmp_path, conf, server, http=""):
    """nginx with a stream{} block; server: the inside of its server{}; http: the inside
    of http{} (then with the ports "tls" and "http" of tests/interop/nginx.py)."""
    port = free_port()
    main = f"""load_module {STREAM};
load_module {MODULE};
stream {{
    certsync_config {conf};
    server {{
        listen 127.0.0.1:{port} ssl;
        {server}
    }}
}}
"""
    ports = ("tls", "http") if http else ()
    return Nginx(tmp_path / "ngx", http, ports=ports, main_conf=main), port


SHOP = 'certsync_certificate shop;\n        return "hello\\n";'


def wait_listening(port, within=10.0):
    t0 = time.time()
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            assert time.time() - t0 < within, f"nothing listens on {port}"
            time.sleep(0.05)


def served(port):
    """(sha256 of the certificate, what the server said) over a new s_client connection."""
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
                        "-servername", "shop.test", "-quiet", "-no_ign_eof"],
                       input="", capture_output=True, text=True, timeout=20)
    fp, _ = s_client(port, "shop.test")
    return fp, r.stdout


def test_a_stream_server_serves_the_stores_version_and_swaps_it_with_the_same_processes(
        tmp_path):
    conf = write_conf(tmp_path)
    certsync("--config", conf, "sync")
    ngx, port = stream_nginx(tmp_path, conf, SHOP)
    t = ngx.test_config()
    assert t.returncode == 0, t.stderr
    with ngx:
        wait_listening(port)
        master, workers = ngx.master_pid, ngx.worker_pids()
        assert len(workers) == 2
        fp, said = served(port)
        assert fp == store_sha256(conf)
        assert said == "hello\n"

        for i in range(5):
            new = Chain(tmp_path / f"pki{i}", names=("shop.test", "www.shop.test"),
                        tag=f"s{i}")
            certsync("--config", conf, "import", "shop", "--cert", new.leaf, "--key",
                     new.key, "--chain", new.inter)
            assert store_sha256(conf) == new.sha256()
            t0, ok = time.time(), 0
            while ok < 6:     # new connections in a row, so that both workers answered
                ok = ok + 1 if s_client(port, "shop.test")[0] == new.sha256() else 0
                assert time.time() - t0 < 5, f"swap {i + 1}: v{i + 2} not served within 5s"

        assert ngx.master_pid == master and ngx.worker_pids() == workers, "no new processes"
        assert "reconfiguring" not in ngx.log()
        log = ngx.log()
        assert log.count('"shop" v6 is served now (was v5)') == 2, log


def test_stream_directive_mistakes_fail_nginx_t_and_say_why(tmp_path):
    conf = write_conf(tmp_path)
    certsync("--config", conf, "sync")

    static = Chain(tmp_path / "pki", names=("shop.test",))
    ngx, _ = stream_nginx(tmp_path / "a", conf,
                          f"certsync_certificate shop;\n        ssl_certificate {static.leaf};\n"
                          f"        ssl_certificate_key {static.key};\n        return \"x\";")
    t = ngx.test_config()
    assert t.returncode != 0
    assert 'cannot be combined with "ssl_certificate"' in t.stderr

    ngx, _ = stream_nginx(tmp_path / "b", conf, 'certsync_certificate nosuch;\n return "x";')
    t = ngx.test_config()
    assert t.returncode != 0
    assert 'names "nosuch", which' in t.stderr and "[cert nosuch]" in t.stderr


def test_a_stream_server_without_a_version_serves_a_fallback_until_one_is_imported(tmp_path):
    conf = write_conf(tmp_path)   # nothing synced: no version yet
    ngx, port = stream_nginx(tmp_path, conf, SHOP)
    with ngx:
        wait_listening(port)
        fp, text = s_client(port, "shop.test")
        assert fp is not None and "shop.test" in text
        new = Chain(tmp_path / "pki", names=("shop.test", "www.shop.test"))
        certsync("--config", conf, "import", "shop", "--cert", new.leaf, "--key", new.key,
                 "--chain", new.inter)
        t0 = time.time()
        while s_client(port, "shop.test")[0] != new.sha256():
            assert time.time() - t0 < 5, "the imported version is not served"


def test_with_the_http_module_loaded_too_both_serve_and_swap_the_same_certificate(tmp_path):
    conf = write_conf(tmp_path)
    certsync("--config", conf, "sync")
    ngx, port = stream_nginx(tmp_path, conf, SHOP, http=http_conf(conf, HTTP_SHOP))
    with ngx:
        wait_listening(port)
        workers = ngx.worker_pids()
        assert s_client(port, "shop.test")[0] == store_sha256(conf)
        new = Chain(tmp_path / "pki", names=("shop.test", "www.shop.test"))
        certsync("--config", conf, "import", "shop", "--cert", new.leaf, "--key", new.key,
                 "--chain", new.inter)
        wait_served(ngx.port("tls"), new.sha256(), within=2.0)     # http
        t0 = time.time()
        while s_client(port, "shop.test")[0] != new.sha256():       # stream
            assert time.time() - t0 < 5, "the stream server did not swap"
        assert ngx.worker_pids() == workers
        # each module's own watcher swapped it: two lines per worker
        assert ngx.log().count('"shop" v2 is served now (was v1)') == 4, ngx.log()


def test_a_reload_keeps_serving_and_the_new_workers_swap(tmp_path):
    conf = write_conf(tmp_path)
    certsync("--config", conf, "sync")
    ngx, port = stream_nginx(tmp_path, conf, SHOP)
    with ngx:
        wait_listening(port)
        old_workers = ngx.worker_pids()
        ngx.proc.send_signal(signal.SIGHUP)
        t0 = time.time()
        while set(ngx.worker_pids()) & set(old_workers) or len(ngx.worker_pids()) != 2:
            assert time.time() - t0 < 10, "the reload did not replace the workers"
            time.sleep(0.05)
        assert s_client(port, "shop.test")[0] == store_sha256(conf)
        new = Chain(tmp_path / "pki", names=("shop.test", "www.shop.test"))
        certsync("--config", conf, "import", "shop", "--cert", new.leaf, "--key", new.key,
                 "--chain", new.inter)
        t0, ok = time.time(), 0
        while ok < 6:
            ok = ok + 1 if s_client(port, "shop.test")[0] == new.sha256() else 0
            assert time.time() - t0 < 5, "the new workers did not swap"


def test_a_reload_with_an_unreadable_version_keeps_what_the_stream_server_served(tmp_path):
    conf = write_conf(tmp_path)
    certsync("--config", conf, "sync")
    served_before = store_sha256(conf)
    ngx, port = stream_nginx(tmp_path, conf, SHOP)
    with ngx:
        wait_listening(port)
        # the store refuses a symlinked key: the reload must keep v1 from the old cycle
        v1 = tmp_path / "store" / "certs" / "shop" / "v1"
        (tmp_path / "key.pem").write_bytes((v1 / "privkey.pem").read_bytes())
        (v1 / "privkey.pem").unlink()
        (v1 / "privkey.pem").symlink_to(tmp_path / "key.pem")
        ngx.proc.send_signal(signal.SIGHUP)
        t0 = time.time()
        while "which nginx served before the reload" not in ngx.log():
            assert time.time() - t0 < 10, ngx.log()
            time.sleep(0.05)
        assert "keeping v1, which nginx served before the reload" in ngx.log()
        for _ in range(6):
            assert s_client(port, "shop.test")[0] == served_before
        assert ngx.proc.poll() is None
