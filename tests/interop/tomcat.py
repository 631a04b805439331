"""A real Tomcat for interop tests: Debian's tomcat10 (10.1.x) started in a private
CATALINA_BASE, serving HTTPS on a loopback port from a keystore file we give it, with
the Manager app (tomcat10-admin) on a loopback HTTP port so tests can call
/manager/text/sslReload and watch Tomcat re-read the keystore without a restart.

Needs: apt-get install --no-install-recommends tomcat10 tomcat10-admin (the system
service is not used; nothing under /etc/tomcat10 or /var/lib/tomcat10 is touched).
Tomcat runs as the current user (root in the test container).

    with Tomcat(tmp_path / "tc", ks, "JKS", "pässword") as tc:
        assert tc.served_sha256() == fingerprint_of(cert)
        # ... replace ks in place ...
        status, body = tc.ssl_reload()   # (200, "OK - Reloaded TLS configuration for all TLS virtual hosts\n")

Measured here (10.1.60, OpenJDK 17): start() to first TLS handshake ~2.2-2.8 s,
sslReload ~30-180 ms. A keystore Tomcat cannot load (garbage, wrong password, missing)
makes sslReload answer HTTP 500 with an HTML error page (not "FAIL - ...") and the old
certificate stays served. OpenJDK 17 cannot open a PKCS12 whose password is not ASCII
("Password is not ASCII"); JKS works with any password.
"""
import base64
import hashlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

try:
    import pytest
except ImportError:  # usable without pytest too (e.g. from a script)
    pytest = None

CATALINA_HOME = Path(os.environ.get("CATALINA_HOME", "/usr/share/tomcat10"))
MANAGER_DOCBASE = Path("/usr/share/tomcat10-admin/manager")
# Pristine copies of the package's conf files (world-readable); /etc/tomcat10 as fallback.
_CONF_SOURCES = (CATALINA_HOME / "etc", Path("/etc/tomcat10"))


def available():
    """True when tomcat10 and tomcat10-admin are installed."""
    return (CATALINA_HOME / "bin" / "catalina.sh").exists() and (
        MANAGER_DOCBASE / "WEB-INF" / "web.xml").exists()


if pytest:
    requires_tomcat = pytest.mark.skipif(
        not available(), reason="needs the tomcat10 and tomcat10-admin packages")


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_java_home():
    """$JAVA_HOME if it holds bin/java, else Debian's OpenJDK 17, else the java on PATH."""
    env = os.environ.get("JAVA_HOME")
    if env and (Path(env) / "bin" / "java").exists():
        return env
    deb = Path("/usr/lib/jvm/java-17-openjdk-amd64")
    if (deb / "bin" / "java").exists():
        return str(deb)
    java = shutil.which("java")
    if not java:
        raise RuntimeError("no Java found (set JAVA_HOME)")
    return str(Path(os.path.realpath(java)).parent.parent)


def xml_attr(value):
    """Escape a string for a double-quoted XML attribute (the file is written as UTF-8).

    Note: Tomcat's digester also expands ${name} in attribute values when a system
    property of that name exists; there is no escape for it, so a password holding
    ${java.home} and the like cannot be given in server.xml (use password_file)."""
    value = str(value)
    for a, b in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"),
                 ("\t", "&#9;"), ("\n", "&#10;"), ("\r", "&#13;")):
        value = value.replace(a, b)
    return value


def sha256_of_der(der):
    return hashlib.sha256(der).hexdigest()


_LOGGING = """\
handlers = java.util.logging.ConsoleHandler
.handlers = java.util.logging.ConsoleHandler
java.util.logging.ConsoleHandler.level = FINE
java.util.logging.ConsoleHandler.formatter = org.apache.juli.OneLineFormatter
java.util.logging.ConsoleHandler.encoding = UTF-8
"""


class Tomcat:
    """One Tomcat JVM with its own CATALINA_BASE under `base`.

    keystore_password is put in server.xml (certificateKeystorePassword); or give
    password_file to use certificateKeystorePasswordFile instead (supported by 10.1.60).
    """

    def __init__(self, base, keystore, keystore_type="PKCS12", keystore_password="changeit",
                 key_alias=None, https_port=None, http_port=None, shutdown_port=-1,
                 manager_user="certsync", manager_password="manager-pw",
                 password_file=None, java_home=None, start_timeout=60.0, user=None):
        if keystore_type not in ("JKS", "PKCS12"):
            raise ValueError("keystore_type must be JKS or PKCS12")
        self.base = Path(base)
        self.keystore = Path(keystore).resolve()
        self.keystore_type = keystore_type
        self.keystore_password = keystore_password
        self.password_file = Path(password_file).resolve() if password_file else None
        self.key_alias = key_alias
        self.https_port = https_port or free_port()
        self.http_port = http_port or free_port()
        self.shutdown_port = shutdown_port
        self.manager_user = manager_user
        self.manager_password = manager_password
        self.java_home = java_home or find_java_home()
        self.start_timeout = start_timeout
        self.user = user  # run the JVM as this user (its CATALINA_BASE is chowned to it)
        self.proc = None
        self.start_seconds = None
        self._out = None

    # ---- CATALINA_BASE -------------------------------------------------------------
    def _conf_file(self, name):
        for d in _CONF_SOURCES:
            if (d / name).exists():
                return d / name
        raise FileNotFoundError(f"{name} not found in {_CONF_SOURCES}")

    def server_xml(self):
        cert = [f'certificateKeystoreFile="{xml_attr(self.keystore)}"',
                f'certificateKeystoreType="{self.keystore_type}"']
        if self.password_file:
            cert.append(f'certificateKeystorePasswordFile="{xml_attr(self.password_file)}"')
        else:
            cert.append(f'certificateKeystorePassword="{xml_attr(self.keystore_password)}"')
        if self.key_alias:
            cert.append(f'certificateKeyAlias="{xml_attr(self.key_alias)}"')
        cert = "\n                         ".join(cert)
        return f"""<?xml version="1.0" encoding="UTF-8"?>
<Server port="{self.shutdown_port}" shutdown="SHUTDOWN">
  <Listener className="org.apache.catalina.startup.VersionLoggerListener" />
  <Listener className="org.apache.catalina.core.JreMemoryLeakPreventionListener" />
  <Listener className="org.apache.catalina.mbeans.GlobalResourcesLifecycleListener" />
  <Listener className="org.apache.catalina.core.ThreadLocalLeakPreventionListener" />
  <GlobalNamingResources>
    <Resource name="UserDatabase" auth="Container"
              type="org.apache.catalina.UserDatabase"
              factory="org.apache.catalina.users.MemoryUserDatabaseFactory"
              pathname="conf/tomcat-users.xml" />
  </GlobalNamingResources>
  <Service name="Catalina">
    <Connector port="{self.http_port}" address="127.0.0.1" protocol="HTTP/1.1"
               connectionTimeout="20000" maxThreads="10" />
    <Connector port="{self.https_port}" address="127.0.0.1"
               protocol="org.apache.coyote.http11.Http11NioProtocol"
               SSLEnabled="true" scheme="https" secure="true" maxThreads="10">
      <SSLHostConfig>
        <Certificate {cert} />
      </SSLHostConfig>
    </Connector>
    <Engine name="Catalina" defaultHost="localhost">
      <Realm className="org.apache.catalina.realm.LockOutRealm">
        <Realm className="org.apache.catalina.realm.UserDatabaseRealm"
               resourceName="UserDatabase"/>
      </Realm>
      <Host name="localhost" appBase="webapps" unpackWARs="true" autoDeploy="false">
      </Host>
    </Engine>
  </Service>
</Server>
"""

    def tomcat_users_xml(self):
        return f"""<?xml version="1.0" encoding="UTF-8"?>
<tomcat-users xmlns="http://tomcat.apache.org/xml" version="1.0">
  <role rolename="manager-script"/>
  <role rolename="manager-gui"/>
  <user username="{xml_attr(self.manager_user)}" password="{xml_attr(self.manager_password)}" roles="manager-script"/>
  <user username="gui-only" password="gui-only-pw" roles="manager-gui"/>
</tomcat-users>
"""

    def write_base(self):
        b = self.base
        for d in ("conf/Catalina/localhost", "logs", "temp", "work", "webapps/ROOT", "lib"):
            (b / d).mkdir(parents=True, exist_ok=True)
        for name in ("web.xml", "context.xml", "catalina.properties", "jaspic-providers.xml"):
            shutil.copyfile(self._conf_file(name), b / "conf" / name)
        (b / "conf" / "logging.properties").write_text(_LOGGING, encoding="utf-8")
        (b / "conf" / "server.xml").write_text(self.server_xml(), encoding="utf-8")
        (b / "conf" / "tomcat-users.xml").write_text(self.tomcat_users_xml(), encoding="utf-8")
        (b / "conf" / "Catalina" / "localhost" / "manager.xml").write_text(
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<Context docBase="{xml_attr(MANAGER_DOCBASE)}"'
            ' antiResourceLocking="false" privileged="true" />\n', encoding="utf-8")
        (b / "webapps" / "ROOT" / "index.html").write_text("certsync interop\n")

    # ---- lifecycle -----------------------------------------------------------------
    def start(self):
        if not available():
            raise RuntimeError("tomcat10 / tomcat10-admin are not installed")
        self.write_base()
        env = dict(os.environ, CATALINA_HOME=str(CATALINA_HOME), CATALINA_BASE=str(self.base),
                   CATALINA_TMPDIR=str(self.base / "temp"), JAVA_HOME=self.java_home,
                   CATALINA_PID="", LANG="C.UTF-8",
                   CATALINA_OPTS="-Xms64m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1"
                                 " -Djava.security.egd=file:/dev/./urandom"
                                 # a connector that cannot init (bad keystore) ends the JVM
                                 " -Dorg.apache.catalina.startup.EXIT_ON_INIT_FAILURE=true"
                                 " -Dfile.encoding=UTF-8")
        env.pop("JRE_HOME", None)
        env.pop("JAVA_OPTS", None)
        self._out = open(self.base / "logs" / "catalina.out", "ab")
        as_user = {}
        if self.user:
            import pwd
            pw = pwd.getpwnam(self.user)
            for d, _, files in os.walk(self.base):
                for f in [d, *(os.path.join(d, n) for n in files)]:
                    os.chown(f, pw.pw_uid, pw.pw_gid)
            as_user = dict(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
            env["HOME"] = str(self.base)
        t0 = time.monotonic()
        # catalina.sh run ends in `exec java ...`, so this PID is the JVM's.
        self.proc = subprocess.Popen([str(CATALINA_HOME / "bin" / "catalina.sh"), "run"],
                                     cwd=self.base, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self._out, stderr=subprocess.STDOUT,
                                     start_new_session=True, **as_user)
        try:
            self._wait_ready(t0)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - t0
        return self

    def _wait_ready(self, t0):
        last = None
        while time.monotonic() - t0 < self.start_timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Tomcat exited with {self.proc.returncode} during start\n"
                                   + self.log_tail())
            try:
                self.served_cert_der(timeout=2)
                return
            except (OSError, ssl.SSLError) as e:
                last = e
                time.sleep(0.2)
        raise RuntimeError(f"Tomcat's HTTPS port {self.https_port} did not complete a TLS "
                           f"handshake within {self.start_timeout}s (last error: {last!r})\n"
                           + self.log_tail())

    def log_tail(self, n=50):
        out = []
        for f in sorted((self.base / "logs").glob("*")):
            try:
                lines = f.read_text(encoding="utf-8", errors="replace").splitlines()[-n:]
            except OSError:
                continue
            out.append(f"--- {f} (last {len(lines)} lines) ---\n" + "\n".join(lines))
        return "\n".join(out)

    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=20):
        """SIGTERM (Tomcat's shutdown hook stops cleanly), SIGKILL after `timeout` s."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self._out:
            self._out.close()
            self._out = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # ---- probes --------------------------------------------------------------------
    def served_cert_der(self, timeout=5, server_name="localhost"):
        """DER of the leaf the HTTPS port serves to a new connection (no verification)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", self.https_port), timeout=timeout) as s:
            with ctx.wrap_socket(s, server_hostname=server_name) as t:
                return t.getpeercert(binary_form=True)

    def served_sha256(self, **kw):
        """Lower-case hex SHA-256 of the served leaf (no colons)."""
        return sha256_of_der(self.served_cert_der(**kw))

    @property
    def reload_url(self):
        return f"http://127.0.0.1:{self.http_port}/manager/text/sslReload"

    def manager_get(self, path, user=None, password=None, timeout=30):
        """GET http://127.0.0.1:HTTP_PORT/path with basic auth -> (status, body).
        Connection errors (Tomcat down) are raised as OSError / urllib.error.URLError."""
        user = self.manager_user if user is None else user
        password = self.manager_password if password is None else password
        req = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}")
        cred = base64.b64encode(f"{user}:{password}".encode("utf-8")).decode("ascii")
        req.add_header("Authorization", "Basic " + cred)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read().decode("utf-8", errors="replace")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8", errors="replace")

    def ssl_reload(self, user=None, password=None, tls_host_name=None):
        """-> (status, body). 200 "OK - Reloaded TLS configuration for all TLS virtual hosts\n";
        200 "FAIL - Failed to reload TLS configuration\n" for an unknown tlsHostName; 500 HTML
        when the keystore cannot be loaded; 401 bad credentials; 403 role is not manager-script."""
        path = "/manager/text/sslReload"
        if tls_host_name:
            path += "?tlsHostName=" + urllib.request.quote(tls_host_name)
        return self.manager_get(path, user, password)


if pytest:
    @pytest.fixture
    def tomcat_factory(tmp_path):
        """tomcat_factory(keystore, type, password, **kw) -> a started Tomcat, stopped at teardown.
        Import it into a test module (`from tomcat import tomcat_factory`) to use it."""
        started = []

        def make(keystore, keystore_type="PKCS12", keystore_password="changeit", **kw):
            tc = Tomcat(tmp_path / f"tomcat{len(started)}", keystore, keystore_type,
                        keystore_password, **kw)
            started.append(tc)
            return tc.start()

        yield make
        for tc in started:
            tc.stop()
