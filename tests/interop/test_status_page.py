"""The status page for a person (README "Status page"): nginx's certsync_status and Apache's
certsync-status answer ?format=html with the core's one page (cs_status_html), loaded here in
a real browser (Debian's headless chromium), its rendered text checked, and a screenshot kept
in out/artifacts/ for a person to look at."""
import html.parser
import json
import shutil
import subprocess
import tempfile

import pytest

import apache
import nginx
from apache import Apache, free_port, workdir
from conftest import ROOT, certsync
from nginx import Nginx

CHROMIUM = shutil.which("chromium")
ARTIFACTS = ROOT / "out" / "artifacts"
STATUS = "/certsync/status"

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (build/install-deps.sh)"),
    pytest.mark.skipif(not apache.available() or not apache.module_path().exists(),
                       reason="needs apache2 and out/mod_certsync.so"),
    pytest.mark.skipif(not nginx.available(), reason="needs nginx and the nginx module"),
]


def browser(url, *what):
    """Run headless chromium once on url with the given output flags; its stdout."""
    with tempfile.TemporaryDirectory(prefix="certsync-chromium-") as profile:
        r = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                            "--disable-quic", "--no-first-run", "--disable-background-networking",
                            "--disable-component-update", "--disable-sync",
                            f"--user-data-dir={profile}", "--window-size=1280,1000",
                            "--hide-scrollbars", *what, url],
                           capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


class _Text(html.parser.HTMLParser):
    """The text a person reads: the DOM's text nodes outside <style>, <script> and <title>."""

    def __init__(self):
        super().__init__()
        self.parts, self.skip = [], 0

    def handle_starttag(self, tag, attrs):
        self.skip += tag in ("style", "script", "title")

    def handle_endtag(self, tag):
        self.skip -= tag in ("style", "script", "title")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def rendered(url, screenshot):
    """(text of the rendered page, its DOM), and a screenshot kept at screenshot."""
    dom = browser(url, "--dump-dom")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot.unlink(missing_ok=True)
    browser(url, f"--screenshot={screenshot}")
    assert screenshot.stat().st_size > 10000, f"{screenshot}: an empty screenshot?"
    p = _Text()
    p.feed(dom)
    return " ".join(" ".join(p.parts).split()), dom


@pytest.fixture
def world():
    root = workdir("certsync-page-")
    store, conf = root / "store", root / "certsync.conf"
    conf.write_text(f"[store]\npath = {store}\ngroup = www-data\n\n"
                    "[cert shop]\ndomain = shop.example.com www.shop.example.com\n\n"
                    "[cert blog]\ndomain = blog.example.com\n")
    certsync("--config", conf, "sync", "shop")
    yield root, conf
    apache.cleanup(root)


def cli_status(conf, name):
    return next(c for c in json.loads(certsync("--config", conf, "status", "--json").stdout)
                if c["name"] == name)


def check_page(text, dom, shop, server_words):
    assert "Certificates of this " + server_words in text
    # a card per certificate: shop with its names, days left of its lifetime, version
    assert "shop.example.com, www.shop.example.com" in text
    # whole days: a second later than the CLI's answer may be one day fewer
    assert any(f"{d} days left of 90 (until {shop['not_after'][:10]})" in text
               for d in (shop["days_left"], shop["days_left"] - 1)), text
    assert "version in the store v1" in text
    assert "last sync installed" in text
    assert shop["fingerprint_sha256"] in text
    # blog was never synced: the fallback, said in words
    assert "blog no version yet" in text and "no certificate no version yet" in text
    # the bar is as long as the part of the lifetime left (89 or 90 of 90 days)
    assert 'class="fill ok" style="width:' in dom


def test_nginx_status_page_in_a_browser(world):
    root, conf = world
    shop = cli_status(conf, "shop")
    ngx = Nginx(root / "nginx", f"""
    certsync_config {conf};
    server {{
        listen 127.0.0.1:{{port_tls}} ssl;
        server_name shop.example.com;
        certsync_certificate shop;
    }}
    server {{
        listen 127.0.0.1:{{port_http}};
        location = {STATUS} {{ certsync_status; }}
    }}
""", user="www-data")
    with ngx:
        url = f"http://127.0.0.1:{ngx.port('http')}{STATUS}?format=html"
        text, dom = rendered(url, ARTIFACTS / "status-nginx.png")
        check_page(text, dom, shop, "nginx")
        # the version each worker serves
        for w in range(2):
            assert f"worker {w} (pid " in text, text
        assert text.count(" v1 since ") == 2, text
        assert "sync inside the server off" in text


def test_apache_status_page_in_a_browser(world):
    root, conf = world
    shop = cli_status(conf, "shop")
    tls = free_port()
    body = f"""
Listen 127.0.0.1:{tls} https
<VirtualHost 127.0.0.1:{tls}>
    ServerName shop.example.com
    SSLEngine on
    CertSyncCertificate shop
</VirtualHost>
"""
    with Apache(root / "httpd", body, preamble=f"CertSyncConfig {conf}") as ap:
        url = f"http://127.0.0.1:{ap.status_port}/certsync-status?format=html"
        text, dom = rendered(url, ARTIFACTS / "status-apache.png")
        check_page(text, dom, shop, "Apache")
        assert "this process (pid " in text and " v1 since " in text, text
        assert "virtual hosts" in text
