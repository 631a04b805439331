"""An on-change command is delivered at least once: a failure stays pending in the
store, `certsync status` and `status --check` show it, metrics count it, and every
following `certsync sync` runs it again until it succeeds."""
import json
import time

from prometheus_client.parser import text_string_to_metric_families

from conftest import certsync


def hook_pending_metric(conf):
    text = certsync("--config", conf, "metrics").stdout
    for fam in text_string_to_metric_families(text):
        if fam.name == "certsync_hook_pending":
            return {s.labels["name"]: s.value for s in fam.samples}
    raise AssertionError("no certsync_hook_pending in:\n" + text)


def test_a_hook_that_fails_twice_is_run_at_each_sync_until_it_succeeds(tmp_path):
    runs = tmp_path / "runs"
    hook = tmp_path / "reload-app"
    # fails twice (as a reload with a wrong password would), then succeeds
    hook.write_text("#!/bin/sh\n"
                    f"echo \"v$CERTSYNC_VERSION\" >> {runs}\n"
                    f"[ $(wc -l < {runs}) -ge 3 ] && exit 0\n"
                    "echo 'reload: Tomcat answered HTTP 401' >&2\n"
                    "exit 4\n")
    hook.chmod(0o755)
    conf = tmp_path / "certsync.conf"
    conf.write_text(f"[store]\npath = {tmp_path}/store\n[cert app]\ndomain = app.test\n"
                    f"on-change = {hook} --password-file /etc/secret-file\n")
    checks = []
    for n in (1, 2, 3):
        r = certsync("--config", conf, "sync", check=False)
        assert runs.read_text().splitlines() == ["v1"] * n
        if n < 3:
            assert r.returncode == 1
            assert "exited with status 4: reload: Tomcat answered HTTP 401" in r.stderr
            assert "stays pending" in r.stderr and "runs again at the next sync" in r.stderr
            st = json.loads(certsync("--config", conf, "status", "--json").stdout)[0]
            h = st["hook_pending"]
            assert h["command"] == "reload-app"          # never its arguments
            assert (h["version"], h["exit_status"], h["attempts"]) == (1, 4, n)
            assert h["error"] == "reload: Tomcat answered HTTP 401"
            assert h["since"].endswith("Z") and h["next_attempt"] > h["since"]
            text = certsync("--config", conf, "status").stdout
            assert "on-change    PENDING: 'reload-app' for v1 failed" in text
            assert "reload: Tomcat answered HTTP 401" in text
            assert hook_pending_metric(conf) == {"app": 1}
            # a dry run says the pending hook would run again, and does not run it
            d = certsync("--config", conf, "sync", "--dry-run")
            assert "app: not due" in d.stdout
            assert f"its pending on-change would run again as root: {hook}" in d.stdout
            assert runs.read_text().splitlines() == ["v1"] * n
        else:
            assert r.returncode == 0, r.stderr
            assert "ran again for v1 and succeeded" in r.stdout
        c = certsync("--config", conf, "status", "--check", check=False)
        checks.append(c.returncode)
        if n < 3:
            assert "CRITICAL app: on-change 'reload-app' for v1 failed (exit status 4" in c.stdout
            assert "secret" not in c.stdout
    assert checks == [2, 2, 0]
    assert json.loads(certsync("--config", conf, "status", "--json").stdout)[0][
        "hook_pending"] is None
    assert hook_pending_metric(conf) == {"app": 0}
    # delivered: the next sync does not run it again
    certsync("--config", conf, "sync")
    assert len(runs.read_text().splitlines()) == 3


def test_a_hook_removed_from_the_config_is_no_longer_pending(tmp_path):
    conf = tmp_path / "certsync.conf"
    base = f"[store]\npath = {tmp_path}/store\n[cert app]\ndomain = app.test\n"
    conf.write_text(base + "on-change = /bin/false\n")
    assert certsync("--config", conf, "sync", check=False).returncode == 1
    assert certsync("--config", conf, "status", "--check", check=False).returncode == 2
    conf.write_text(base)
    certsync("--config", conf, "sync")
    assert certsync("--config", conf, "status", "--check", check=False).returncode == 0


def test_nginx_in_server_sync_runs_a_pending_hook_again_once_its_backoff_is_over(tmp_path):
    """The servers' in-process syncs (here nginx's, every second) go through the same core:
    inside the backoff they leave a pending hook alone, after it they run it again."""
    from nginx import Nginx
    from test_nginx import SHOP, http_conf, write_conf

    runs, ok = tmp_path / "runs", tmp_path / "ok"
    hook = tmp_path / "reload"
    hook.write_text(f"#!/bin/sh\necho run >> {runs}\n[ -e {ok} ] && exit 0\n"
                    "echo 'not yet' >&2\nexit 1\n")
    hook.chmod(0o755)
    conf = write_conf(tmp_path, {"shop": f"domain = shop.test www.shop.test\non-change = {hook}\n"})
    assert certsync("--config", conf, "sync", check=False).returncode == 1
    state = tmp_path / "store" / "certs" / "shop" / "state.json"
    pending = json.loads(state.read_text())["hook_pending"]
    assert pending["attempts"] == 1 and pending["next_attempt"] > pending["since"]
    sync = "certsync_sync on; certsync_sync_interval 1s;"
    with Nginx(tmp_path / "ngx", http_conf(conf, SHOP, sync=sync)) as ngx:
        time.sleep(3)                       # three in-server runs, all inside the backoff
        assert len(runs.read_text().splitlines()) == 1, ngx.log()
        ok.touch()
        t0 = time.time()
        while len(runs.read_text().splitlines()) < 2:
            assert time.time() - t0 < 15, ngx.log()
            # the backoff is over (as if a minute had passed); a sync may write it back meanwhile
            st = json.loads(state.read_text())
            if st.get("hook_pending"):
                st["hook_pending"]["next_attempt"] = "2000-01-01T00:00:00Z"
                state.write_text(json.dumps(st))
            time.sleep(0.3)
        t0 = time.time()
        while json.loads(certsync("--config", conf, "status", "--json").stdout)[0][
                "hook_pending"] is not None:
            assert time.time() - t0 < 10, ngx.log()
            time.sleep(0.2)
    assert len(runs.read_text().splitlines()) == 2
    assert certsync("--config", conf, "status", "--check", check=False).returncode == 0
