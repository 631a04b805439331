#!/usr/bin/python3
"""Test-only emulator of the Alibaba Cloud SSL Certificates Service ("cas") OpenAPI 2020-04-07.

Serves the RPC API over HTTPS on 127.0.0.1 with signature v1 (HMAC-SHA1) and v3
(ACS3-HMAC-SHA256) verification, keeps certificates and orders in memory, issues real
X.509 certificates from its own CA, runs FILE validation against a local HTTP server,
offers fault injection through /_control/... and, optionally, an ECS metadata server that
hands out STS credentials the API accepts.

Usage: cas_emulator.py --state-dir DIR --access-key ID:SECRET [--sts ID:SECRET:TOKEN]
                       [--port N] [--validate-host HOST:PORT] [--metadata-port N]
       cas_emulator.py --self-test

Also importable: Emulator(...).start() / .stop(); see README.md next to this file.
Needs only the Python standard library and python3-cryptography (Debian 12: 38.x).
"""

import argparse
import base64
import datetime
import hashlib
import hmac
import http.client
import http.server
import ipaddress
import json
import os
import re
import secrets
import signal
import socket
import ssl
import string
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from xml.sax.saxutils import escape as xml_escape

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import alidns  # the Alibaba Cloud DNS actions, in their own module

API_VERSION = "2020-04-07"
HOST_ID = "cas.aliyuncs.com"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
TIMESTAMP_WINDOW = 15 * 60          # seconds of allowed clock skew
NONCE_TTL = 30 * 60                 # nonces are remembered this long, per access key
WILL_EXPIRE_DAYS = 30               # ISSUED -> WILLEXPIRED threshold
CERT_ID_START = 9007199254741001    # > 2**53 and odd: not representable as a double
ORDER_ID_START = 9007199254800001   # ditto, separate range from certificate ids
DEFAULT_PRODUCT = "digicert-free-1-free"
FILE_URI = "/.well-known/pki-validation/fileauth.txt"
CST = datetime.timezone(datetime.timedelta(hours=8))   # StartDate/EndDate are Beijing dates

PRODUCTS = {
    # code: (ProductName, CertType, RootBrand)
    "digicert-free-1-free": ("DigiCert DV SSL (free)", "FREE", "DigiCert"),
    "symantec-free-1-free": ("Symantec DV SSL (free)", "FREE", "Symantec"),
    "symantec-dv-1-starter": ("Symantec DV SSL", "DV", "Symantec"),
    "symantec-ov-1-personal": ("Symantec OV SSL", "OV", "Symantec"),
    "geotrust-dv-1-starter": ("GeoTrust DV SSL", "DV", "GeoTrust"),
    "geotrust-dv-w-starter": ("GeoTrust DV wildcard SSL", "DV", "GeoTrust"),
    "globalsign-dv-1-personal": ("GlobalSign DV SSL", "DV", "GlobalSign"),
    "globalsign-dv-w-advanced": ("GlobalSign DV wildcard SSL", "DV", "GlobalSign"),
    "cfca-ov-1-personal": ("CFCA OV SSL", "OV", "CFCA"),
}

CERT_LIST_STATUSES = {"ISSUED", "WILLEXPIRED", "EXPIRED"}
ORDER_ONLY_STATUSES = {"PAYED", "CHECKING", "CHECKED_FAIL", "NOTACTIVATED", "REVOKED"}
ORDER_TYPES = {"CPACK", "BUY", "UPLOAD", "CERT"}

FAULT_KINDS = {"http500", "http503", "throttling", "delay", "truncated", "badjson",
               "keymismatch", "expired", "badchain", "endless", "hugetotal", "bigint",
               "oversize"}
PRE_FAULTS = {"http500", "http503", "throttling", "delay"}
CONTENT_FAULTS = {"keymismatch", "expired", "badchain"}
WIRE_FAULTS = {"truncated", "badjson", "bigint", "oversize"}
LIST_FAULTS = {"endless", "hugetotal"}
OVERSIZE_BYTES = 9 * 1024 * 1024

# Request parameter values that may appear in the request log (never Cert/Key/secrets).
LOGGABLE_PARAMS = {"CertId", "OrderId", "OrderType", "Status", "Keyword", "CurrentPage",
                   "ShowSize", "Name", "Domain", "ValidateType", "ProductCode", "CertFilter",
                   "ClientToken"}
CLIENT_TOKEN_ACTIONS = {"UploadUserCertificate", "DeleteUserCertificate"}


# --------------------------------------------------------------------------------------
# Errors and small helpers

class ApiError(Exception):
    def __init__(self, code, message, status=400):
        super().__init__(code)
        self.code, self.message, self.status = code, message, status


def missing(param, shown=None):
    return ApiError("Missing" + param, "%s is mandatory for this action." % (shown or param), 400)


def invalid(param):
    return ApiError("InvalidParameter", "Specified parameter %s is not valid." % param, 400)


def err_not_found_cert():
    return ApiError("NotFound", "没有找到必要内容，请检查参数输入。", 400)


def err_not_found_order():
    return ApiError("NotFoundOrder", "没有找到证书订单。", 404)


def err_order_state():
    return ApiError("OrderStateError", "证书订单状态错误。", 403)


def new_request_id():
    return str(uuid.uuid4()).upper()


def error_body(request_id, code, message):
    return {
        "RequestId": request_id,
        "HostId": HOST_ID,
        "Code": code,
        "Message": message,
        "Recommend": "https://api.aliyun.com/troubleshoot?q=%s&product=cas&requestId=%s"
                     % (code, request_id),
    }


def pct(s):
    """RFC 3986 percent-encoding used by both signature versions."""
    if not isinstance(s, str):
        s = str(s)
    return urllib.parse.quote(s, safe="-_.~", encoding="utf-8")


def rand_token(n, alphabet=string.ascii_lowercase + string.digits):
    return "".join(secrets.choice(alphabet) for _ in range(n))


def ms(d):
    return int(utc(d).timestamp() * 1000)


def utc(d):
    return d.replace(tzinfo=datetime.timezone.utc) if d.tzinfo is None else d


def nvb(cert):
    """notBefore as an aware UTC datetime (cryptography 38 .. 4x)."""
    d = getattr(cert, "not_valid_before_utc", None)
    return d if d is not None else utc(cert.not_valid_before)


def nva(cert):
    d = getattr(cert, "not_valid_after_utc", None)
    return d if d is not None else utc(cert.not_valid_after)


def cst_date(d):
    return utc(d).astimezone(CST).strftime("%Y-%m-%d")


def iso_z(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


TS_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,3})?Z$")


def parse_timestamp(s):
    """Accepts YYYY-MM-DDThh:mm:ssZ (optionally with .sss); returns epoch seconds or None."""
    m = TS_RE.match(s or "")
    if not m:
        return None
    try:
        d = datetime.datetime(*[int(g) for g in m.groups()[:6]], tzinfo=datetime.timezone.utc)
    except ValueError:
        return None
    return d.timestamp()


# --------------------------------------------------------------------------------------
# Signatures (shared by the verifier and --self-test)

def v1_canonical_query(pairs):
    items = sorted((pct(k), pct(v)) for k, v in pairs if k != "Signature")
    return "&".join("%s=%s" % kv for kv in items)


def v1_string_to_sign(method, pairs):
    return method.upper() + "&" + pct("/") + "&" + pct(v1_canonical_query(pairs))


def v1_signature(secret, string_to_sign):
    mac = hmac.new((secret + "&").encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def v3_canonical_request(method, path, query_pairs, headers, signed_names, payload_hash):
    cq = "&".join("%s=%s" % kv for kv in sorted((pct(k), pct(v)) for k, v in query_pairs))
    ch = "".join("%s:%s\n" % (n, headers.get(n, "").strip()) for n in signed_names)
    return "\n".join([method.upper(), path, cq, ch, ";".join(signed_names), payload_hash])


def v3_string_to_sign(canonical_request):
    return "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()


def v3_signature(secret, string_to_sign):
    return hmac.new(secret.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


AUTH_RE = re.compile(r"^(\S+)\s+(.*)$")


def parse_v3_authorization(value):
    m = AUTH_RE.match(value.strip())
    if not m:
        return None
    algo, rest = m.group(1), m.group(2)
    fields = {}
    for part in rest.split(","):
        if "=" not in part:
            return None
        k, v = part.split("=", 1)
        fields[k.strip()] = v.strip()
    if not {"Credential", "SignedHeaders", "Signature"} <= set(fields):
        return None
    return algo, fields


# --------------------------------------------------------------------------------------
# Credentials

class Credential:
    def __init__(self, key_id, secret, token=None, expires=None, source="static"):
        self.id, self.secret, self.token = key_id, secret, token
        self.expires, self.source, self.disabled = expires, source, False

    def public(self):
        return {"AccessKeyId": self.id, "sts": self.token is not None, "source": self.source,
                "expires": iso_z(self.expires) if self.expires else None, "disabled": self.disabled}


# --------------------------------------------------------------------------------------
# X.509

def gen_key(kind="rsa"):
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def key_to_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption()).decode("ascii")


def cert_to_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def spki(pub):
    return pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def name_attr(name, oid):
    vals = name.get_attributes_for_oid(oid)
    return vals[0].value if vals else ""


def build_cert(subject, pub, issuer_cert, issuer_key, not_before, not_after, is_ca=False,
               pathlen=None, dns=(), ips=()):
    issuer_name = issuer_cert.subject if issuer_cert is not None else subject
    issuer_pub = issuer_cert.public_key() if issuer_cert is not None else pub
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name).public_key(pub)
         .serial_number(x509.random_serial_number()).not_valid_before(not_before)
         .not_valid_after(not_after)
         .add_extension(x509.BasicConstraints(ca=is_ca, path_length=pathlen), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_pub), critical=False))
    if is_ca:
        b = b.add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                          key_encipherment=False, data_encipherment=False,
                                          key_agreement=False, key_cert_sign=True, crl_sign=True,
                                          encipher_only=False, decipher_only=False), critical=True)
    else:
        b = b.add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                          key_encipherment=isinstance(pub, rsa.RSAPublicKey),
                                          data_encipherment=False, key_agreement=False,
                                          key_cert_sign=False, crl_sign=False, encipher_only=False,
                                          decipher_only=False), critical=True)
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                   ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    alt = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if alt:
        b = b.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def signed_by(cert, issuer):
    if cert.issuer != issuer.subject:
        return False
    pub = issuer.public_key()
    try:
        if isinstance(pub, rsa.RSAPublicKey):
            pub.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                       cert.signature_hash_algorithm)
        elif isinstance(pub, ec.EllipticCurvePublicKey):
            pub.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
        else:
            pub.verify(cert.signature, cert.tbs_certificate_bytes)
        return True
    except Exception:
        return False


PEM_CERT_RE = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.S)
PEM_KEY_RE = re.compile(r"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.*?-----END \1PRIVATE KEY-----", re.S)


def parse_cert_chain(text):
    """Every CERTIFICATE block of text, in order; raises ValueError if none or one is bad."""
    blocks = PEM_CERT_RE.findall(text or "")
    if not blocks:
        raise ValueError("no certificate")
    return [x509.load_pem_x509_certificate(b.encode("ascii")) for b in blocks]


def parse_private_key(text):
    m = PEM_KEY_RE.search(text or "")
    if not m:
        raise ValueError("no private key")
    return serialization.load_pem_private_key(m.group(0).encode("ascii"), password=None)


def cert_dns_names(cert):
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = san.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        names = []
    cn = name_attr(cert.subject, NameOID.COMMON_NAME)
    if not names and cn:
        names = [cn]
    return names


class CertAuthority:
    """Root -> intermediate ("issuing CA"); the root also signs the TLS server certificate."""

    def __init__(self, root_cert=None, root_key=None):
        now = datetime.datetime.now(datetime.timezone.utc)
        if root_cert is None:
            root_key = gen_key("rsa")
            subj = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                              x509.NameAttribute(NameOID.ORGANIZATION_NAME, "certsync-emulator"),
                              x509.NameAttribute(NameOID.COMMON_NAME, "certsync Emulator Root CA")])
            root_cert = build_cert(subj, root_key.public_key(), None, root_key,
                                   now - datetime.timedelta(days=1), now + datetime.timedelta(days=3650),
                                   is_ca=True, pathlen=1)
        self.root_cert, self.root_key = root_cert, root_key
        self.int_key = gen_key("rsa")
        self.int_subject = x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "certsync-emulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, "certsync Emulator DV TLS CA - G1")])
        self.int_cert = build_cert(self.int_subject, self.int_key.public_key(), root_cert, root_key,
                                   now - datetime.timedelta(days=1), now + datetime.timedelta(days=1825),
                                   is_ca=True, pathlen=0)
        # Same subject DN as the real intermediate, different key: names chain, signatures don't.
        rogue_key = gen_key("ec")
        self.rogue_int_cert = build_cert(self.int_subject, rogue_key.public_key(), root_cert, root_key,
                                         now - datetime.timedelta(days=1),
                                         now + datetime.timedelta(days=1825), is_ca=True, pathlen=0)

    @property
    def root_pem(self):
        return cert_to_pem(self.root_cert)

    @property
    def int_pem(self):
        return cert_to_pem(self.int_cert)

    def issue(self, domains, days=90, key_type="rsa", public_key=None, not_before=None):
        """Returns (chain_pem = leaf + intermediate, key_pem or '' when public_key given)."""
        key = None
        if public_key is None:
            key = gen_key(key_type)
            public_key = key.public_key()
        nb = not_before or (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1))
        na = nb + datetime.timedelta(days=days)
        subj = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domains[0])])
        leaf = build_cert(subj, public_key, self.int_cert, self.int_key, nb, na, dns=domains)
        return cert_to_pem(leaf) + self.int_pem, (key_to_pem(key) if key is not None else "")

    def server_cert(self, dns, ips):
        key = gen_key("ec")
        now = datetime.datetime.now(datetime.timezone.utc)
        subj = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cas-emulator")])
        cert = build_cert(subj, key.public_key(), self.root_cert, self.root_key,
                          now - datetime.timedelta(days=1), now + datetime.timedelta(days=825),
                          dns=dns, ips=ips)
        return cert_to_pem(cert), key_to_pem(key)


# --------------------------------------------------------------------------------------
# State records

class UserCert:
    def __init__(self, cid, name, pem, key_pem, upload, order_id=None, instance_id=None):
        self.id, self.name, self.key_pem, self.upload = cid, name, key_pem, upload
        self.order_id = order_id
        self.instance_id = instance_id or (("cas-upload-" if upload else "cas-ivauto-") + rand_token(6))
        self.revoked = False
        self.created = time.time()
        self.set_pem(pem)

    def set_pem(self, pem):
        self.pem = pem
        self._fields = None
        self.chain = parse_cert_chain(pem)
        self.leaf = self.chain[0]

    def status(self, now=None):
        now = now or datetime.datetime.now(datetime.timezone.utc)
        if self.revoked:
            return "REVOKED"
        na = nva(self.leaf)
        if na < now:
            return "EXPIRED"
        if na - now <= datetime.timedelta(days=WILL_EXPIRE_DAYS):
            return "WILLEXPIRED"
        return "ISSUED"

    def expired(self):
        return nva(self.leaf) < datetime.datetime.now(datetime.timezone.utc)

    def common_fields(self):
        if self._fields is None:
            self._fields = self._compute_fields()
        return self._fields

    def _compute_fields(self):
        leaf = self.leaf
        der = leaf.public_bytes(serialization.Encoding.DER)
        names = cert_dns_names(leaf)
        serial = "%x" % leaf.serial_number
        if len(serial) % 2:
            serial = "0" + serial
        issuer = name_attr(leaf.issuer, NameOID.ORGANIZATION_NAME) or name_attr(leaf.issuer, NameOID.COMMON_NAME)
        pub = leaf.public_key()
        return {
            "common": name_attr(leaf.subject, NameOID.COMMON_NAME) or (names[0] if names else ""),
            "sans": ",".join(names),
            "issuer": issuer,
            "fingerprint": hashlib.sha1(der).hexdigest().upper(),
            "sha2": hashlib.sha256(der).hexdigest().upper(),
            "serial": serial,
            "start": cst_date(nvb(leaf)),
            "end": cst_date(nva(leaf)),
            "nb_ms": ms(nvb(leaf)),
            "na_ms": ms(nva(leaf)),
            "org": name_attr(leaf.subject, NameOID.ORGANIZATION_NAME),
            "country": name_attr(leaf.subject, NameOID.COUNTRY_NAME),
            "province": name_attr(leaf.subject, NameOID.STATE_OR_PROVINCE_NAME),
            "city": name_attr(leaf.subject, NameOID.LOCALITY_NAME),
            "algorithm": "RSA" if isinstance(pub, rsa.RSAPublicKey) else "ECC",
        }


class Order:
    def __init__(self, oid, product, domains, validate_type, csr=None, key_type="rsa"):
        self.id, self.product, self.domains = oid, product, domains
        self.validate_type, self.csr, self.key_type = validate_type, csr, key_type
        self.state = "domain_verify"
        self.token = time.strftime("%Y%m%d%H%M%S", time.gmtime()) + rand_token(50)
        self.created = time.time()
        self.process_since = None
        self.process_seen = False      # a poll has answered "process" at least once
        self.cert_id = None
        self.cert_pem = self.key_pem = None
        self.cert_nb_ms = self.cert_na_ms = None
        self.instance_id = "cas-ivauto-" + rand_token(6)
        self.aliyun_order_id = int(time.time() * 1000) * 10 + secrets.randbelow(10)
        self.renewed_from = None
        self.last_validation = None


class Fault:
    def __init__(self, action, kind, count, seconds):
        self.action, self.kind, self.remaining, self.seconds = action, kind, count, seconds
        self.hits = 0

    def public(self):
        return {"action": self.action, "kind": self.kind,
                "remaining": self.remaining if self.remaining else "until-cleared",
                "seconds": self.seconds, "hits": self.hits}


class Response:
    def __init__(self, status, body, ctype="application/json;charset=utf-8", headers=None):
        self.status, self.body, self.ctype, self.headers = status, body, ctype, headers or []
        self.info = {}


# --------------------------------------------------------------------------------------
# XML rendering (v1 with Format=XML or no Format)

def to_xml(root, obj):
    def emit(name, v):
        if isinstance(v, dict):
            return "<%s>%s</%s>" % (name, "".join(emit(k, x) for k, x in v.items()), name)
        if isinstance(v, list):
            return "".join(emit(name, x) for x in v)
        if isinstance(v, bool):
            v = "true" if v else "false"
        return "<%s>%s</%s>" % (name, xml_escape(str(v)), name)
    return ("<?xml version='1.0' encoding='UTF-8'?>" + emit(root, obj)).encode("utf-8")


# --------------------------------------------------------------------------------------
# The emulator

class Emulator:
    def __init__(self, state_dir=None, port=0, access_keys=(), sts_keys=(),
                 validate_host="127.0.0.1:80", metadata_port=None, sts_ttl=3600,
                 role_name="certsync-emulator-role", key_type="rsa", quotas=None,
                 ca_cert_pem=None, ca_key_pem=None, quiet=False, log=None):
        self.state_dir = state_dir
        self.requested_port = port
        self.validate_host = validate_host
        self.metadata_port_req = metadata_port
        self.sts_ttl = sts_ttl
        self.role_name = role_name
        self.key_type = key_type
        self.quiet = quiet
        self._log = log or sys.stderr
        self.lock = threading.RLock()
        self.creds = {}
        for kid, secret in access_keys:
            self.creds[kid] = Credential(kid, secret)
        for kid, secret, token in sts_keys:
            self.creds[kid] = Credential(kid, secret, token, source="sts")
        self.quotas = {DEFAULT_PRODUCT: 20}
        self.quotas.update(quotas or {})
        if ca_cert_pem:
            self.ca = CertAuthority(x509.load_pem_x509_certificate(ca_cert_pem.encode()),
                                    serialization.load_pem_private_key(ca_key_pem.encode(), None))
        else:
            self.ca = CertAuthority()
        self.clock_offset = 0.0
        self._reset_state()
        self.imds_tokens = {}
        self.imds_token_issued = False
        self.imds_cred = None
        self.httpd = self.meta_httpd = None
        self.port = self.metadata_port = None
        self._threads = []

    def _reset_state(self):
        with self.lock:
            self.certs = {}
            self.orders = {}
            self.next_cert_id = CERT_ID_START
            self.next_order_id = ORDER_ID_START
            self.faults = []
            self.requests = []
            self.req_seq = 0
            self.nonces = {}
            self.client_tokens = {}
            self.forged_ids = {}  # cert id -> the string the lists show instead
            cas_deploy.reset(self)
            alidns.reset(self)

    # ---------------------------------------------------------------- logging
    def log(self, msg):
        if not self.quiet:
            try:
                self._log.write("cas-emulator: %s %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), msg))
                self._log.flush()
            except Exception:
                pass

    def record(self, entry):
        with self.lock:
            self.req_seq += 1
            entry["seq"] = self.req_seq
            entry["time"] = iso_z(time.time())
            self.requests.append(entry)
            if len(self.requests) > 10000:
                del self.requests[:1000]

    # ---------------------------------------------------------------- lifecycle
    def start(self):
        if self.state_dir:
            os.makedirs(self.state_dir, exist_ok=True)
        dns = ["localhost", "cas.aliyuncs.com"] + ["cas.%s.aliyuncs.com" % r for r in (
            "cn-hongkong", "ap-northeast-1", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3",
            "ap-southeast-5", "eu-central-1", "ap-south-1", "me-east-1")]
        cert_pem, key_pem = self.ca.server_cert(dns, ["127.0.0.1"])
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        fd, path = tempfile.mkstemp(prefix="cas-emu-tls-", suffix=".pem", dir=self.state_dir)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(cert_pem + key_pem)
            ctx.load_cert_chain(path)
        finally:
            os.unlink(path)
        self.httpd = _TLSServer(("127.0.0.1", self.requested_port), ApiHandler, ctx, self)
        self.port = self.httpd.server_address[1]
        if self.state_dir:
            self._write_file("ca.pem", self.ca.root_pem)
            self._write_file("issuing-ca.pem", self.ca.int_pem)
        if self.metadata_port_req is not None:
            self.meta_httpd = _PlainServer(("127.0.0.1", self.metadata_port_req), MetadataHandler, self)
            self.metadata_port = self.meta_httpd.server_address[1]
            t = threading.Thread(target=self.meta_httpd.serve_forever, daemon=True)
            t.start()
            self._threads.append(t)
            if self.state_dir:
                self._write_file("metadata-port", "%d\n" % self.metadata_port)
        t = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        t.start()
        self._threads.append(t)
        if self.state_dir:
            self._write_file("port", "%d\n" % self.port)
        self.log("listening on https://127.0.0.1:%d/%s" % (
            self.port, (" metadata on http://127.0.0.1:%d/" % self.metadata_port) if self.metadata_port else ""))
        return self

    def stop(self):
        for srv in (self.httpd, self.meta_httpd):
            if srv is not None:
                srv.shutdown()
                srv.server_close()
        for t in self._threads:
            t.join(timeout=5)

    def _write_file(self, name, content):
        path = os.path.join(self.state_dir, name)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(content)
        os.replace(tmp, path)

    @property
    def ca_pem_path(self):
        return os.path.join(self.state_dir, "ca.pem") if self.state_dir else None

    # ---------------------------------------------------------------- credentials
    def lookup_credential(self, key_id):
        with self.lock:
            return self.creds.get(key_id)

    def imds_credentials(self, force=False):
        with self.lock:
            now = time.time()
            c = self.imds_cred
            if force or c is None or c.expires - now < self.sts_ttl / 3.0:
                token_alphabet = string.ascii_letters + string.digits + "+/="
                c = Credential("STS.NT" + rand_token(20, string.ascii_letters + string.digits),
                               rand_token(40, string.ascii_letters + string.digits),
                               "CAIS" + rand_token(300, token_alphabet) + "==",
                               expires=now + self.sts_ttl, source="imds")
                c.last_updated = now
                self.creds[c.id] = c
                self.imds_cred = c
            return c

    # ---------------------------------------------------------------- API entry point
    def handle_api(self, method, target, headers, body, now=None):
        """headers: dict with lower-case names. Returns a Response."""
        rid = new_request_id()
        split = urllib.parse.urlsplit(target)
        query_pairs = urllib.parse.parse_qsl(split.query, keep_blank_values=True)
        body_pairs = []
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if body and ctype == "application/x-www-form-urlencoded":
            body_pairs = urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        params = {}
        for k, v in query_pairs + body_pairs:
            params.setdefault(k, v)
        info = {"method": method, "path": split.path, "action": None, "sig": None,
                "access_key_id": None, "sts": False, "auth": "n/a", "status": None,
                "code": None, "fault": None,
                # where the parameters came from: names in the URL, the body's type
                "query_names": sorted({k for k, _ in query_pairs}),
                "content_type": headers.get("content-type"),
                # the capture log: every header name received and, for v3, those signed
                "header_names": sorted(headers),
                "signed_headers": None,
                "param_names": sorted(k for k in params
                                      if k not in ("Signature", "SecurityToken", "AccessKeyId")),
                "params": {k: (params[k] if k in LOGGABLE_PARAMS else "<%d chars>" % len(params[k]))
                           for k in params if k not in ("Signature", "SecurityToken", "AccessKeyId")}}
        xml = False
        action = None
        try:
            if split.path != "/":
                raise ApiError("InvalidApi.NotFound",
                               "Specified api is not found, please check your url and method.", 404)
            if method not in ("GET", "POST"):
                raise ApiError("InvalidApi.NotFound",
                               "Specified api is not found, please check your url and method.", 404)
            authz = headers.get("authorization", "")
            if authz.startswith("ACS3-"):
                info["sig"] = "v3"
                action = self._auth_v3(method, split.path, query_pairs, headers, body, info, now)
            else:
                info["sig"] = "v1"
                fmt = params.get("Format")
                xml = fmt is None or fmt.upper() == "XML"
                action = self._auth_v1(method, query_pairs + body_pairs, params, info, now)
            info["auth"] = "ok"
            result = self.run_action(action, params, info)
            out = {"RequestId": rid}
            out.update(result)
            if xml:
                resp = Response(200, to_xml(action + "Response", out), "text/xml;charset=utf-8")
            else:
                resp = Response(200, json.dumps(out, ensure_ascii=False).encode("utf-8"))
        except ApiError as e:
            if info["auth"] == "n/a" and info["sig"]:
                info["auth"] = "fail:" + e.code
            info["code"] = e.code
            eb = error_body(rid, e.code, e.message)
            if xml:
                resp = Response(e.status, to_xml("Error", eb), "text/xml;charset=utf-8")
            else:
                resp = Response(e.status, json.dumps(eb, ensure_ascii=False).encode("utf-8"))
        if info["auth"] == "ok" and action:
            f = self.take_fault(action, WIRE_FAULTS)
            if f is not None:
                info["fault"] = (info["fault"] + "," if info["fault"] else "") + f.kind
                if f.kind == "truncated":
                    resp.body = resp.body[:len(resp.body) // 2]
                elif f.kind == "bigint" and resp.body.endswith(b"}"):
                    resp.body = resp.body[:-1] + b',"QuotaUsage":%d}' % (2 ** 70)
                elif f.kind == "oversize" and resp.body.endswith(b"}"):
                    resp.body = resp.body[:-1] + b',"Padding":"' + b"x" * OVERSIZE_BYTES + b'"}'
                else:
                    resp.body = b"<html><body><h1>200 OK</h1>This is not JSON.</body></html>"
        resp.headers.append(("x-acs-request-id", rid))
        info["status"] = resp.status
        info["request_id"] = rid
        self.record(info)
        resp.info = info
        return resp

    # ---------------------------------------------------------------- signature v1
    def _check_version_action(self, version, action, vname="Version", aname="Action"):
        if version == alidns.VERSION and action in alidns.ACTIONS:
            return
        if not version:
            raise missing("Version", vname)
        if version != API_VERSION:
            raise ApiError("InvalidVersion", "Specified parameter Version is not valid.", 400)
        if not action:
            raise missing("Action", aname)
        if action not in ACTIONS:
            raise ApiError("InvalidAction.NotFound",
                           "Specified api is not found, please check your url and method.", 404)

    def _check_timestamp(self, value, now, shown):
        if not value:
            raise missing("Timestamp", shown)
        ts = parse_timestamp(value)
        if ts is None:
            raise ApiError("InvalidTimeStamp.Format",
                           "Specified time stamp or date value is not well formatted.", 400)
        cur = (now if now is not None else time.time()) + self.clock_offset
        if abs(cur - ts) > TIMESTAMP_WINDOW:
            raise ApiError("InvalidTimeStamp.Expired",
                           "Specified time stamp or date value is expired.", 400)

    def _check_credential(self, key_id, token, info, now):
        cred = self.lookup_credential(key_id)
        if cred is None:
            raise ApiError("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404)
        if cred.disabled:
            raise ApiError("InvalidAccessKeyId.Inactive", "Specified access key is disabled.", 400)
        info["sts"] = cred.token is not None
        if cred.token is None:
            if token:
                raise ApiError("InvalidSecurityToken.Malformed", "Specified SecurityToken is malformed.", 400)
        else:
            if not token:
                raise missing("SecurityToken")
            if not hmac.compare_digest(token.encode("utf-8"), cred.token.encode("utf-8")):
                raise ApiError("InvalidSecurityToken.Malformed", "Specified SecurityToken is malformed.", 400)
            if cred.expires is not None and cred.expires < (now if now is not None else time.time()):
                raise ApiError("InvalidSecurityToken.Expired", "Specified SecurityToken is expired.", 400)
        return cred

    def _use_nonce(self, key_id, nonce, now):
        cur = now if now is not None else time.time()
        with self.lock:
            seen = self.nonces.setdefault(key_id, {})
            if len(seen) > 1000 or secrets.randbelow(50) == 0:
                for n in [n for n, t in seen.items() if cur - t > NONCE_TTL]:
                    del seen[n]
            t = seen.get(nonce)
            if t is not None and cur - t <= NONCE_TTL:
                raise ApiError("SignatureNonceUsed", "Specified signature nonce was used already.", 400)
            seen[nonce] = cur

    def _auth_v1(self, method, pairs, params, info, now):
        action = params.get("Action")
        info["action"] = action
        self._check_version_action(params.get("Version"), action)
        key_id = params.get("AccessKeyId")
        info["access_key_id"] = key_id
        if not key_id:
            raise missing("AccessKeyId")
        if not params.get("Signature"):
            raise missing("Signature")
        sm = params.get("SignatureMethod")
        if not sm:
            raise missing("SignatureMethod")
        if sm != "HMAC-SHA1":
            raise ApiError("InvalidSignatureMethod", "Specified signature method is not valid.", 400)
        sv = params.get("SignatureVersion")
        if not sv:
            raise missing("SignatureVersion")
        if sv != "1.0":
            raise ApiError("InvalidSignatureVersion", "Specified signature version is not valid.", 400)
        self._check_timestamp(params.get("Timestamp"), now, "Timestamp")
        nonce = params.get("SignatureNonce")
        if not nonce:
            raise missing("SignatureNonce")
        cred = self._check_credential(key_id, params.get("SecurityToken"), info, now)
        sts = v1_string_to_sign(method, pairs)
        expect = v1_signature(cred.secret, sts)
        if not hmac.compare_digest(expect.encode(), params["Signature"].encode("utf-8")):
            raise ApiError("SignatureDoesNotMatch",
                           "Specified signature is not matched with our calculation. "
                           "server string to sign is:" + sts, 400)
        self._use_nonce(key_id, nonce, now)
        return action

    # ---------------------------------------------------------------- signature v3
    def _auth_v3(self, method, path, query_pairs, headers, body, info, now):
        action = headers.get("x-acs-action")
        info["action"] = action
        parsed = parse_v3_authorization(headers.get("authorization", ""))
        if parsed is None:
            raise ApiError("IncompleteSignature",
                           "The request signature does not conform to Aliyun standards.", 400)
        algo, fields = parsed
        if algo != "ACS3-HMAC-SHA256":
            raise ApiError("InvalidSignatureMethod", "Specified signature method is not valid.", 400)
        self._check_version_action(headers.get("x-acs-version"), action, "x-acs-version", "x-acs-action")
        key_id = fields["Credential"]
        info["access_key_id"] = key_id
        self._check_timestamp(headers.get("x-acs-date"), now, "x-acs-date")
        nonce = headers.get("x-acs-signature-nonce")
        if not nonce:
            raise missing("SignatureNonce", "x-acs-signature-nonce")
        if "x-acs-content-sha256" not in headers:
            raise missing("ContentSha256", "x-acs-content-sha256")
        signed = [n.strip().lower() for n in fields["SignedHeaders"].split(";") if n.strip()]
        info["signed_headers"] = signed
        # the signing rules list content-type among the headers to sign: a Content-Type
        # the signature does not cover is refused, with or without a body
        need = {"host"} | {h for h in headers if h.startswith("x-acs-")}
        if "content-type" in headers:
            need.add("content-type")
        lacking = sorted(need - set(signed))
        if lacking:
            raise ApiError("IncompleteSignature",
                           "The request signature does not conform to Aliyun standards. "
                           "SignedHeaders lacks: " + ";".join(lacking), 400)
        if signed != sorted(signed):
            raise ApiError("IncompleteSignature",
                           "The request signature does not conform to Aliyun standards. "
                           "SignedHeaders must be sorted.", 400)
        cred = self._check_credential(key_id, headers.get("x-acs-security-token"), info, now)
        body_hash = hashlib.sha256(body or b"").hexdigest()
        view = dict(headers)
        view["x-acs-content-sha256"] = body_hash     # the service hashes what it received
        cr = v3_canonical_request(method, path, query_pairs, view, signed, body_hash)
        sts = v3_string_to_sign(cr)
        expect = v3_signature(cred.secret, sts)
        if not hmac.compare_digest(expect.encode(), fields["Signature"].encode("utf-8")):
            info["server_canonical_request"] = cr.replace(
                headers.get("x-acs-security-token", "\0") or "\0", "<redacted>")
            raise ApiError("SignatureDoesNotMatch",
                           "Specified signature is not matched with our calculation. "
                           "server string to sign is:" + sts, 400)
        self._use_nonce(key_id, nonce, now)
        return action

    # ---------------------------------------------------------------- faults
    def add_fault(self, action, kind, count, seconds):
        with self.lock:
            f = Fault(action, kind, count, seconds)
            self.faults.append(f)
            return f

    def take_fault(self, action, kinds, applicable=None):
        with self.lock:
            for f in self.faults:
                if f.kind in kinds and f.action in (action, "*") and (applicable is None or applicable(f)):
                    f.hits += 1
                    if f.remaining:
                        f.remaining -= 1
                        if f.remaining == 0:
                            self.faults.remove(f)
                    return f
        return None

    def run_action(self, action, params, info):
        f = self.take_fault(action, PRE_FAULTS)
        if f is not None:
            info["fault"] = f.kind
            if f.kind == "delay":
                time.sleep(f.seconds)
            elif f.kind == "http500":
                raise ApiError("InternalError", "The request processing has failed due to some "
                               "unknown error, exception or failure.", 500)
            elif f.kind == "http503":
                raise ApiError("ServiceUnavailable",
                               "The request has failed due to a temporary failure of the server.", 503)
            elif f.kind == "throttling":
                raise ApiError("Throttling.User", "Request was denied due to user flow control.", 400)
        token = params.get("ClientToken")
        if token and action in CLIENT_TOKEN_ACTIONS:
            with self.lock:
                hit = self.client_tokens.get((action, token))
                if hit is not None and time.time() - hit[0] < 86400:
                    return dict(hit[1])
        result = (ACTIONS.get(action) or alidns.ACTIONS[action])(self, params)
        result = self._list_faults(action, params, result, info)
        if token and action in CLIENT_TOKEN_ACTIONS:
            with self.lock:
                self.client_tokens[(action, token)] = (time.time(), dict(result))
        return self._content_faults(action, result, info)

    def _list_faults(self, action, params, result, info):
        """endless: every page is full of made-up entries; hugetotal: TotalCount 10^12."""
        if action != "ListUserCertificateOrder":
            return result
        f = self.take_fault(action, LIST_FAULTS)
        if f is None:
            return result
        info["fault"] = f.kind
        result = dict(result, TotalCount=10 ** 12)
        if f.kind == "endless":
            page, size = result["CurrentPage"], result["ShowSize"]
            day = cst_date(datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=60))
            result["CertificateOrderList"] = [
                {"CertificateId": 10 ** 15 + (page - 1) * size + i, "Name": "endless-%d" % i,
                 "CommonName": "endless-%d-%d.test" % (page, i), "Sans": "endless.test",
                 "EndDate": day, "Expired": False, "Upload": False}
                for i in range(size)]
        return result

    def _content_faults(self, action, result, info):
        if action == "GetUserCertificateDetail" and result.get("Cert"):
            ck, kk = "Cert", "Key"
        elif action == "DescribeCertificateState" and result.get("Type") == "certificate":
            ck, kk = "Certificate", "PrivateKey"
        else:
            return result
        f = self.take_fault(action, CONTENT_FAULTS,
                            applicable=lambda f: f.kind != "keymismatch" or bool(result.get(kk)))
        if f is None:
            return result
        info["fault"] = f.kind
        result = dict(result)
        chain = parse_cert_chain(result[ck])
        leaf = chain[0]
        if f.kind == "keymismatch":
            kind = "ec" if isinstance(leaf.public_key(), ec.EllipticCurvePublicKey) else "rsa"
            result[kk] = key_to_pem(gen_key(kind))
        elif f.kind == "expired":
            nb = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=91)
            kind = "ec" if isinstance(leaf.public_key(), ec.EllipticCurvePublicKey) else "rsa"
            pem, key = self.ca.issue(cert_dns_names(leaf), days=90, key_type=kind, not_before=nb)
            result[ck] = pem
            if result.get(kk):
                result[kk] = key
        elif f.kind == "badchain":
            result[ck] = cert_to_pem(leaf) + cert_to_pem(self.ca.rogue_int_cert)
        return result

    # ---------------------------------------------------------------- order progression
    def _advance(self, order):
        """process -> certificate once a poll has seen "process", or after about a second."""
        if order.state == "process" and (order.process_seen or time.time() - order.process_since >= 1.0):
            self._issue_for_order(order)

    def _issue_for_order(self, order):
        pub = None
        if order.csr:
            pub = x509.load_pem_x509_csr(order.csr.encode()).public_key()
        pem, key = self.ca.issue(order.domains, days=90, key_type=order.key_type, public_key=pub)
        c = self._store_cert(None, pem, key, upload=False, order_id=order.id)
        order.cert_id, order.cert_pem, order.key_pem = c.id, pem, key
        order.cert_nb_ms, order.cert_na_ms = ms(nvb(c.leaf)), ms(nva(c.leaf))
        order.state = "certificate"
        return c

    def _store_cert(self, name, pem, key_pem, upload, order_id=None):
        with self.lock:
            cid = self.next_cert_id
            self.next_cert_id += 2
            c = UserCert(cid, name or "cert-%d" % (cid % 100000000), pem, key_pem, upload, order_id)
            self.certs[cid] = c
            return c

    def _new_order(self, product, domains, validate_type, csr=None):
        with self.lock:
            total = self.quotas.get(product, 0)
            if total <= 0:
                raise ApiError("NotFoundPackage", "没有购买套餐包。", 404)
            used = sum(1 for o in self.orders.values() if o.product == product)
            if used >= total:
                raise ApiError("NotRemainCount", "套餐中不可用的证书数量。", 404)
            oid = self.next_order_id
            self.next_order_id += 2
            o = Order(oid, product, domains, validate_type, csr, self.key_type)
            self.orders[oid] = o
            return o

    def _get_order(self, params):
        oid = p_int(params, "OrderId", required=True)
        o = self.orders.get(oid)
        if o is None:
            raise err_not_found_order()
        return o

    def _file_validate(self, domains, token):
        host, _, port = self.validate_host.rpartition(":")
        if not host:
            host, port = self.validate_host, "80"
        for d in domains:
            try:
                conn = http.client.HTTPConnection(host, int(port), timeout=3)
                conn.request("GET", FILE_URI, headers={"Host": d, "User-Agent": "cas-emulator-validator"})
                r = conn.getresponse()
                data = r.read(65536)
                conn.close()
            except Exception as e:
                return "%s: fetch failed: %s" % (d, e)
            if r.status != 200:
                return "%s: HTTP %d" % (d, r.status)
            if data.decode("utf-8", "replace").strip() != token:
                return "%s: content mismatch" % d
        return None

    # ---------------------------------------------------------------- control endpoint
    def handle_control(self, method, target, body, headers):
        split = urllib.parse.urlsplit(target)
        params = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if body and ctype == "application/x-www-form-urlencoded":
            params.update(urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        what = split.path[len("/_control/"):].strip("/")
        try:
            out = self._control(what, params)
            status = 200
        except ApiError as e:
            out, status = {"error": e.code, "message": e.message}, e.status
        except (ValueError, KeyError) as e:
            out, status = {"error": "BadRequest", "message": str(e)}, 400
        return Response(status, json.dumps(out, ensure_ascii=False, indent=1).encode("utf-8"))

    def _control(self, what, p):
        def need_int(name):
            if name not in p or not re.fullmatch(r"-?\d+", p[name].strip()):
                raise ValueError("%s (integer) is required" % name)
            return int(p[name])

        def cert_of(name="cert_id"):
            c = self.certs.get(need_int(name))
            if c is None:
                raise ApiError("NotFound", "no such certificate", 404)
            return c

        if what == "fault":
            kind = p.get("kind", "")
            if kind not in FAULT_KINDS:
                raise ValueError("kind must be one of " + ",".join(sorted(FAULT_KINDS)))
            action = p.get("action") or "*"
            if action != "*" and action not in ACTIONS and action not in alidns.ACTIONS:
                raise ValueError("unknown action " + action)
            count = int(p.get("count", "1"))
            if count < 0:
                raise ValueError("count must be >= 0")
            f = self.add_fault(action, kind, count, float(p.get("seconds", "30")))
            return {"ok": True, "fault": f.public()}
        if what.startswith("alidns-"):
            return alidns.control(self, what, p) or {"error": "unknown " + what}
        if what == "clear":
            with self.lock:
                n = len(self.faults)
                self.faults = []
                if p.get("requests") in ("1", "true"):
                    self.requests = []
            return {"ok": True, "cleared_faults": n}
        if what == "reset":
            self._reset_state()
            return {"ok": True}
        if what == "add-cert":
            domains = [d.strip().lower() for d in p.get("domain", "").split(",") if d.strip()]
            if not domains:
                raise ValueError("domain is required")
            days = int(p.get("days", "90"))
            ago = int(p.get("start_days_ago", "0"))
            nb = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=ago, minutes=1)
            with self.lock:
                name = p.get("name") or None
                if name and any(c.name == name for c in self.certs.values()):
                    raise ApiError("ParamRepeat", "The certificate name already exists.", 400)
                pem, key = self.ca.issue(domains, days=days, key_type=p.get("key", self.key_type), not_before=nb)
                oid = None
                if p.get("order") in ("1", "true"):
                    o = self._new_order(p.get("product", DEFAULT_PRODUCT), domains, "DNS")
                    oid = o.id
                c = self._store_cert(name, pem, key, upload=p.get("upload") in ("1", "true"), order_id=oid)
                if oid:
                    o.cert_id, o.cert_pem, o.key_pem, o.state = c.id, pem, key, "certificate"
                    o.cert_nb_ms, o.cert_na_ms = ms(nvb(c.leaf)), ms(nva(c.leaf))
            return {"ok": True, "CertificateId": c.id, "Name": c.name, "OrderId": oid,
                    "NotAfter": ms(nva(c.leaf))}
        if what == "renew":
            with self.lock:
                old = cert_of()
                days = int(p.get("days", "90"))
                kind = "ec" if isinstance(old.leaf.public_key(), ec.EllipticCurvePublicKey) else "rsa"
                pem, key = self.ca.issue(cert_dns_names(old.leaf), days=days, key_type=kind)
                oid = None
                if old.order_id and old.order_id in self.orders:
                    prev = self.orders[old.order_id]
                    o = Order(self.next_order_id, prev.product, prev.domains, prev.validate_type)
                    self.next_order_id += 2
                    self.orders[o.id] = o
                    o.renewed_from = prev.id
                    oid = o.id
                c = self._store_cert(p.get("name") or None, pem, key, upload=False, order_id=oid)
                if oid:
                    o.cert_id, o.cert_pem, o.key_pem, o.state = c.id, pem, key, "certificate"
                    o.cert_nb_ms, o.cert_na_ms = ms(nvb(c.leaf)), ms(nva(c.leaf))
            return {"ok": True, "CertificateId": c.id, "OldCertificateId": old.id, "Name": c.name,
                    "OrderId": oid}
        if what == "expire":
            with self.lock:
                c = cert_of()
                nb = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=91)
                pub = c.leaf.public_key()
                pem, _ = self.ca.issue(cert_dns_names(c.leaf), days=90, public_key=pub, not_before=nb)
                c.set_pem(pem)
                o = self.orders.get(c.order_id) if c.order_id else None
                if o is not None and o.cert_id == c.id:
                    o.cert_pem = pem
                    o.cert_nb_ms, o.cert_na_ms = ms(nvb(c.leaf)), ms(nva(c.leaf))
            return {"ok": True, "CertificateId": c.id, "NotAfter": ms(nva(c.leaf))}
        if what == "forge-id":
            with self.lock:
                c = cert_of()
                self.forged_ids[c.id] = p.get("as", "")
            return {"ok": True, "CertificateId": c.id, "shown_as": self.forged_ids[c.id]}
        if what in ("validate-dns", "fail-order"):
            with self.lock:
                o = self.orders.get(need_int("order_id"))
                if o is None:
                    raise ApiError("NotFoundOrder", "no such order", 404)
                if o.state != "domain_verify":
                    raise ApiError("OrderStateError", "order is in state " + o.state, 409)
                if what == "validate-dns":
                    o.state, o.process_since, o.process_seen = "process", time.time(), False
                else:
                    o.state = "verify_fail"
            return {"ok": True, "OrderId": o.id, "state": o.state}
        if what == "id-base":
            # the official JavaScript SDK reads ids as doubles: its tests need ids below 2**53
            with self.lock:
                self.next_cert_id = need_int("cert")
                self.next_order_id = need_int("order")
            return {"ok": True}
        if what == "submit-order":
            with self.lock:
                o = self.orders.get(need_int("order_id"))
                if o is None:
                    raise ApiError("NotFoundOrder", "no such order", 404)
                if o.state != "payed":
                    raise ApiError("OrderStateError", "order is in state " + o.state, 409)
                o.state = "domain_verify"
            return {"ok": True, "OrderId": o.id, "state": o.state}
        if what == "requests":
            with self.lock:
                return {"requests": list(self.requests)}
        if what == "state":
            return self.dump_state()
        if what == "rotate-sts":
            c = self.imds_credentials(force=True)
            return {"ok": True, "AccessKeyId": c.id, "Expiration": iso_z(c.expires)}
        if what == "disable-key":
            c = self.lookup_credential(p.get("id", ""))
            if c is None:
                raise ApiError("NotFound", "no such key", 404)
            c.disabled = p.get("disabled", "1") in ("1", "true")
            return {"ok": True, "key": c.public()}
        if what == "add-key":
            kid, secret = p.get("id"), p.get("secret")
            if not kid or not secret:
                raise ValueError("id and secret are required")
            with self.lock:
                self.creds[kid] = Credential(kid, secret, p.get("token") or None,
                                             source="sts" if p.get("token") else "static")
            return {"ok": True}
        if what == "clock":
            self.clock_offset = float(p.get("offset", "0"))
            return {"ok": True, "offset": self.clock_offset}
        if what == "quota":
            product = p.get("product", DEFAULT_PRODUCT)
            with self.lock:
                self.quotas[product] = need_int("total")
            return {"ok": True, "product": product, "total": self.quotas[product]}
        if what in cas_deploy.CONTROLS:
            return cas_deploy.CONTROLS[what](self, p)
        raise ApiError("NotFound", "unknown control endpoint " + what, 404)

    def dump_state(self):
        with self.lock:
            for o in list(self.orders.values()):
                self._advance(o)
            certs = []
            for c in sorted(self.certs.values(), key=lambda c: c.id):
                f = c.common_fields()
                certs.append({"CertificateId": c.id, "Name": c.name, "CommonName": f["common"],
                              "Sans": f["sans"], "Upload": c.upload, "OrderId": c.order_id,
                              "Status": c.status(), "NotBefore": f["nb_ms"], "NotAfter": f["na_ms"],
                              "Fingerprint": f["fingerprint"], "Sha2": f["sha2"],
                              "SerialNo": f["serial"], "HasKey": bool(c.key_pem),
                              "ChainLength": len(c.chain)})
            orders = [{"OrderId": o.id, "state": o.state, "Domain": ",".join(o.domains),
                       "ValidateType": o.validate_type, "ProductCode": o.product,
                       "CertificateId": o.cert_id, "token": o.token, "renewed_from": o.renewed_from,
                       "last_validation": o.last_validation, "csr": bool(o.csr)}
                      for o in sorted(self.orders.values(), key=lambda o: o.id)]
            quotas = {pc: {"TotalCount": t, "UsedCount": sum(1 for o in self.orders.values() if o.product == pc)}
                      for pc, t in self.quotas.items()}
            return {"certificates": certs, "orders": orders, "quotas": quotas,
                    "faults": [f.public() for f in self.faults],
                    "keys": [c.public() for c in self.creds.values()],
                    "deployment": cas_deploy.dump(self),
                    "clock_offset": self.clock_offset, "port": self.port,
                    "metadata_port": self.metadata_port, "validate_host": self.validate_host}


# --------------------------------------------------------------------------------------
# Parameter helpers

INT_RE = re.compile(r"^-?\d+$")


def p_str(params, name, required=False):
    v = params.get(name)
    if v is None or v == "":
        if required:
            raise missing(name)
        return None
    return v


def p_int(params, name, required=False, default=None, minimum=None):
    s = p_str(params, name, required)
    if s is None:
        return default
    if not INT_RE.match(s):
        raise invalid(name)
    v = int(s)
    if not (-2 ** 63 <= v < 2 ** 63) or (minimum is not None and v < minimum):
        raise invalid(name)
    return v


def p_bool(params, name, default=False):
    s = p_str(params, name)
    if s is None:
        return default
    if s.lower() not in ("true", "false"):
        raise invalid(name)
    return s.lower() == "true"


LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def parse_domains(value, name="Domain"):
    domains = []
    for d in value.split(","):
        d = d.strip().lower().rstrip(".")
        if not d:
            continue
        labels = d[2:].split(".") if d.startswith("*.") else d.split(".")
        if len(labels) < 2 or not all(LABEL_RE.match(l) for l in labels) or labels[-1].isdigit():
            raise invalid(name)
        if d not in domains:
            domains.append(d)
    if not domains or len(domains) > 5:
        raise invalid(name)
    wild = sum(1 for d in domains if d.startswith("*."))
    if wild not in (0, len(domains)):
        raise invalid(name)
    return domains


def parse_csr(text):
    try:
        csr = x509.load_pem_x509_csr(text.strip().encode("ascii"))
        if not csr.is_signature_valid:
            raise ValueError
    except Exception:
        raise invalid("Csr")
    cn = name_attr(csr.subject, NameOID.COMMON_NAME)
    try:
        sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value \
            .get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        sans = []
    names = [n for n in [cn] + sans if n]
    if not names:
        raise invalid("Csr")
    return parse_domains(",".join(names), "Csr")


def domain_type(domains):
    wild = sum(1 for d in domains if d.startswith("*."))
    if len(domains) == 1:
        return "WILDCARD" if wild else "ONE"
    if wild == len(domains):
        return "M_WILDCARD"
    return "MULTIPLE" if wild == 0 else "MIX"


# --------------------------------------------------------------------------------------
# Actions

def _cert_row(emu, c, st):
    f = c.common_fields()
    return {"CertificateId": emu.forged_ids.get(c.id, c.id), "Name": c.name,
            "CommonName": f["common"], "Sans": f["sans"], "Issuer": f["issuer"],
            "Fingerprint": f["fingerprint"], "SerialNo": f["serial"], "Sha2": f["sha2"],
            "StartDate": f["start"], "EndDate": f["end"], "Expired": st == "EXPIRED",
            "Upload": c.upload, "OrgName": f["org"], "Country": f["country"],
            "Province": f["province"], "City": f["city"], "ResourceGroupId": "",
            "InstanceId": c.instance_id}   # no Algorithm: the SDK documents it for orders


def _order_row(o, st):
    """An order as the SDK's model documents it for CPACK/BUY: no CertificateId (the model
    says it is "returned only if OrderType is set to CERT or UPLOAD")."""
    pname, ctype, brand = PRODUCTS.get(o.product, (o.product, "DV", "DigiCert"))
    row = {"OrderId": o.id, "InstanceId": o.instance_id, "AliyunOrderId": o.aliyun_order_id,
           "PartnerOrderId": "", "ProductCode": o.product, "ProductName": pname,
           "Domain": ",".join(o.domains), "DomainType": domain_type(o.domains),
           "DomainCount": len(o.domains),
           "WildDomainCount": sum(1 for d in o.domains if d.startswith("*.")),
           "CertType": ctype, "Algorithm": "RSA" if o.key_type == "rsa" else "ECC",
           "RootBrand": brand, "SourceType": "cpack", "Status": st,
           "TrusteeStatus": "unTrustee", "BuyDate": int(o.created * 1000)}
    if o.cert_id is not None:
        row["CertStartTime"] = o.cert_nb_ms
        row["CertEndTime"] = o.cert_na_ms
    return row


def _cert_matches(emu, c, order_type, status, keyword):
    """Keyword is a fuzzy match on a domain or a resource id (the SDK's documentation),
    never on a certificate's name."""
    if order_type == "UPLOAD" and not c.upload:
        return None
    st = c.status()
    if status is None and st not in ("ISSUED", "WILLEXPIRED"):
        return None
    if status is not None and st != status:
        return None
    if keyword:
        f = c.common_fields()
        if not any(keyword in s.lower() for s in (f["common"], f["sans"], c.instance_id)):
            return None
    return st


def act_list(emu, p):
    order_type = p_str(p, "OrderType") or "CPACK"
    if order_type not in ORDER_TYPES:
        raise invalid("OrderType")
    status = p_str(p, "Status")
    if status is not None and status not in CERT_LIST_STATUSES | ORDER_ONLY_STATUSES:
        raise invalid("Status")
    keyword = (p_str(p, "Keyword") or "").lower()
    page = p_int(p, "CurrentPage", default=1, minimum=1)
    size = p_int(p, "ShowSize", default=50, minimum=1)
    start = (page - 1) * size
    rows, total = [], 0
    # one cheap pass to filter and count; rows are built for the page served only
    with emu.lock:
        if order_type in ("CERT", "UPLOAD"):
            for c in sorted(emu.certs.values(), key=lambda c: -c.id):
                st = _cert_matches(emu, c, order_type, status, keyword)
                if st is None:
                    continue
                if start <= total < start + size:
                    rows.append(_cert_row(emu, c, st))
                total += 1
        elif order_type == "CPACK":
            for o in sorted(emu.orders.values(), key=lambda o: -o.id):
                emu._advance(o)
                st = order_list_status(emu, o)
                if status is not None and st != status:
                    continue
                if keyword and not any(keyword in s.lower() for s in (",".join(o.domains),
                                                                       o.instance_id)):
                    continue
                if start <= total < start + size:
                    rows.append(_order_row(o, st))
                total += 1
        # BUY: the emulator has no purchased (non-package) orders.
    return {"CertificateOrderList": rows, "CurrentPage": page, "ShowSize": size,
            "TotalCount": total}


def order_list_status(emu, o):
    if o.state == "payed":
        return "PAYED"
    if o.state in ("domain_verify", "process"):
        return "CHECKING"
    if o.state == "verify_fail":
        return "CHECKED_FAIL"
    if o.state == "revoked":
        return "REVOKED"
    now = time.time() * 1000
    if o.cert_na_ms < now:
        return "EXPIRED"
    if o.cert_na_ms - now <= WILL_EXPIRE_DAYS * 86400 * 1000:
        return "WILLEXPIRED"
    return "ISSUED"


def act_detail(emu, p):
    forged = {v: k for k, v in emu.forged_ids.items()}
    cid = forged.get(p.get("CertId")) or p_int(p, "CertId", required=True)
    cert_filter = p_bool(p, "CertFilter")
    with emu.lock:
        c = emu.certs.get(cid)
        if c is None:
            raise err_not_found_cert()
        f = c.common_fields()
        now = datetime.datetime.now(datetime.timezone.utc)
        out = {"Id": c.id, "Name": c.name, "Common": f["common"], "Sans": f["sans"],
               "StartDate": f["start"], "EndDate": f["end"], "NotBefore": f["nb_ms"],
               "NotAfter": f["na_ms"], "Expired": c.expired(), "Fingerprint": f["fingerprint"],
               "SerialNo": f["serial"], "Issuer": f["issuer"], "Algorithm": f["algorithm"],
               "BuyInAliyun": not c.upload, "OrgName": f["org"], "Country": f["country"],
               "Province": f["province"], "City": f["city"], "InstanceId": c.instance_id,
               "CertIdentifier": "%d-cn-hangzhou" % c.id, "Sha2": f["sha2"],
               "ResourceGroupId": "",
               "CertChain": [{"CommonName": name_attr(x.subject, NameOID.COMMON_NAME),
                              "IssuerCommonName": name_attr(x.issuer, NameOID.COMMON_NAME),
                              "NotBefore": ms(nvb(x)), "NotAfter": ms(nva(x)),
                              "RemainDay": max(0, (nva(x) - now).days)}
                             for x in c.chain]}
        if c.order_id is not None:
            out["OrderId"] = c.order_id
        if not cert_filter:
            out["Cert"] = c.pem
            out["Key"] = c.key_pem or ""
        return out


NAME_MAX = 64    # the SDK's model: "up to 64 characters"


def act_upload(emu, p):
    name = p_str(p, "Name", required=True)
    if len(name) > NAME_MAX:
        raise invalid("Name")
    cert_text = p_str(p, "Cert", required=True)
    key_text = p_str(p, "Key", required=True)
    try:
        chain = parse_cert_chain(cert_text)
    except Exception:
        raise ApiError("InvalidSource.Content.Malformed", "证书格式异常，请检查输入内容。", 400)
    # the service's upload documentation asks for a traditional PEM key ("BEGIN RSA PRIVATE
    # KEY", converted from PKCS#8 with `openssl rsa`); the SDK's examples show "BEGIN EC
    # PRIVATE KEY" for EC keys: a PKCS#8 "BEGIN PRIVATE KEY" is refused here
    if "-----BEGIN PRIVATE KEY-----" in key_text or "-----BEGIN ENCRYPTED PRIVATE KEY" in key_text:
        raise ApiError("InvalidSource.Content.Malformed", "私钥格式异常，请检查输入内容。", 400)
    try:
        key = parse_private_key(key_text)
    except Exception:
        raise ApiError("InvalidSource.Content.Malformed", "私钥格式异常，请检查输入内容。", 400)
    if spki(key.public_key()) != spki(chain[0].public_key()):
        raise ApiError("CertificateChainNotMatch", "证书与私钥不匹配，请检查输入内容。", 400)
    for a, b in zip(chain, chain[1:]):
        if not signed_by(a, b):
            raise ApiError("CertificateChainNotMatch", "证书链不匹配，请检查输入内容。", 400)
    with emu.lock:
        if any(c.name == name for c in emu.certs.values()):
            raise ApiError("ParamRepeat", "The certificate name already exists.", 400)
        c = emu._store_cert(name, cert_text, key_text, upload=True)
    return {"CertId": c.id, "ResourceId": c.instance_id}


def act_delete_cert(emu, p):
    """"Deletes an expired or uploaded certificate" (the SDK's documentation): an issued,
    unexpired certificate of an order is refused (the code is the emulator's choice)."""
    cid = p_int(p, "CertId", required=True)
    with emu.lock:
        c = emu.certs.get(cid)
        if c is None:
            raise err_not_found_cert()
        if not c.upload and not c.expired():
            raise ApiError("CertificateStatusError",
                           "证书状态错误，只能删除已过期或上传的证书。", 400)
        del emu.certs[cid]
    return {}


def _validate_type(p, required=False):
    vt = p_str(p, "ValidateType", required)
    if vt is None:
        return "DNS"
    if vt not in ("DNS", "FILE"):
        raise invalid("ValidateType")
    return vt


def _product(p):
    pc = p_str(p, "ProductCode") or DEFAULT_PRODUCT
    return pc


def _check_file_wildcard(domains, vt):
    if vt == "FILE" and any(d.startswith("*.") for d in domains):
        raise ApiError("InvalidParameter", "Specified parameter ValidateType is not valid. "
                       "Wildcard domains support DNS validation only.", 400)


def act_create_pkg(emu, p):
    csr = p_str(p, "Csr")
    if csr is not None:
        domains = parse_csr(csr)
    else:
        domains = parse_domains(p_str(p, "Domain", required=True))
    vt = _validate_type(p)
    _check_file_wildcard(domains, vt)
    o = emu._new_order(_product(p), domains, vt, csr)
    return {"OrderId": o.id}


def act_create_req(emu, p):
    for n in ("Username", "Phone", "Email", "Domain", "ValidateType"):
        p_str(p, n, required=True)
    if "," in p["Domain"]:
        raise invalid("Domain")
    domains = parse_domains(p["Domain"])
    vt = _validate_type(p, True)
    _check_file_wildcard(domains, vt)
    o = emu._new_order(_product(p), domains, vt)
    return {"OrderId": o.id}


def act_create_csr_req(emu, p):
    for n in ("Csr", "Username", "Phone", "Email", "ValidateType"):
        p_str(p, n, required=True)
    domains = parse_csr(p["Csr"])
    vt = _validate_type(p, True)
    _check_file_wildcard(domains, vt)
    o = emu._new_order(_product(p), domains, vt, p["Csr"])
    return {"OrderId": o.id}


def act_state(emu, p):
    with emu.lock:
        o = emu._get_order(p)
        run_file = o.state == "domain_verify" and o.validate_type == "FILE"
        domains, token = list(o.domains), o.token
    if run_file:
        problem = emu._file_validate(domains, token)    # network I/O outside the lock
        with emu.lock:
            o.last_validation = problem or "ok"
            if problem is None and o.state == "domain_verify":
                o.state, o.process_since, o.process_seen = "process", time.time(), True
                return {"Type": "process"}
    with emu.lock:
        if o.state == "process" and not o.process_seen and time.time() - o.process_since < 1.0:
            o.process_seen = True
            return {"Type": "process"}
        emu._advance(o)
        if o.state == "domain_verify" and o.validate_type == "DNS" and alidns.published(
                emu, "_dnsauth." + o.domains[0].removeprefix("*."), o.token):
            o.state, o.process_since, o.process_seen = "process", time.time(), False
            return {"Type": "process"}
        if o.state == "domain_verify":
            if o.validate_type == "FILE":
                return {"Type": "domain_verify", "ValidateType": "FILE", "Domain": o.domains[0],
                        "Uri": FILE_URI, "Content": o.token}
            base = o.domains[0][2:] if o.domains[0].startswith("*.") else o.domains[0]
            return {"Type": "domain_verify", "ValidateType": "DNS", "Domain": o.domains[0],
                    "RecordDomain": "_dnsauth." + base, "RecordType": "TXT", "RecordValue": o.token}
        if o.state == "certificate":
            # no CertId: the SDK's response model has none
            return {"Type": "certificate", "Certificate": o.cert_pem, "PrivateKey": o.key_pem or ""}
        if o.state in ("process", "verify_fail", "payed"):
            return {"Type": o.state}
        return {"Type": "unknow"}


def act_cancel_order(emu, p):
    with emu.lock:
        o = emu._get_order(p)
        if o.state not in ("domain_verify", "process"):
            raise err_order_state()
        o.state, o.process_since, o.process_seen = "payed", None, False
    return {}


def act_cancel_pkg(emu, p):
    with emu.lock:
        o = emu._get_order(p)
        if o.state == "certificate":
            o.state = "revoked"
            c = emu.certs.get(o.cert_id)
            if c is not None:
                c.revoked = True
        elif o.state in ("domain_verify", "process", "payed", "verify_fail"):
            del emu.orders[o.id]          # cancelled: gone, quota returned
        else:
            raise err_order_state()
    return {}


def act_delete_order(emu, p):
    with emu.lock:
        o = emu._get_order(p)
        if o.state not in ("verify_fail", "payed"):
            raise err_order_state()
        del emu.orders[o.id]
    return {}


def act_renew(emu, p):
    """Only an order "in the expiring state" (WILLEXPIRED: issued, still valid, at most
    WILL_EXPIRE_DAYS left); the new order is "pending application" (payed) until an
    application is submitted for it (the SDK's documentation)."""
    csr = p_str(p, "Csr")
    with emu.lock:
        o = emu._get_order(p)
        if o.state != "certificate" or order_list_status(emu, o) != "WILLEXPIRED":
            raise err_order_state()
        domains = parse_csr(csr) if csr else list(o.domains)
        n = emu._new_order(o.product, domains, o.validate_type, csr)
        n.renewed_from = o.id
        n.state = "payed"
    return {"OrderId": n.id}


def act_package(emu, p):
    pc = _product(p)
    with emu.lock:
        orders = [o for o in emu.orders.values() if o.product == pc]
        return {"ProductCode": pc, "TotalCount": emu.quotas.get(pc, 0), "UsedCount": len(orders),
                "IssuedCount": sum(1 for o in orders if o.cert_id is not None)}


ACTIONS = {
    "ListUserCertificateOrder": act_list,
    "GetUserCertificateDetail": act_detail,
    "UploadUserCertificate": act_upload,
    "DeleteUserCertificate": act_delete_cert,
    "CreateCertificateForPackageRequest": act_create_pkg,
    "CreateCertificateRequest": act_create_req,
    "CreateCertificateWithCsrRequest": act_create_csr_req,
    "DescribeCertificateState": act_state,
    "CancelOrderRequest": act_cancel_order,
    "CancelCertificateForPackageRequest": act_cancel_pkg,
    "DeleteCertificateRequest": act_delete_order,
    "RenewCertificateOrderForPackageRequest": act_renew,
    "DescribePackageState": act_package,
}

# the deployment jobs (ListCloudResources, CreateDeploymentJob, ...): cas_deploy.py
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cas_deploy  # noqa: E402

cas_deploy.register(sys.modules[__name__])


# --------------------------------------------------------------------------------------
# HTTP plumbing

class _TLSServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, ctx, emu):
        super().__init__(addr, handler)
        self.socket = ctx.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
        self.emu = emu

    def handle_error(self, request, client_address):
        self.emu.log("connection error from %s: %s" % (client_address[0], sys.exc_info()[1]))


class _PlainServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, emu):
        super().__init__(addr, handler)
        self.emu = emu

    def handle_error(self, request, client_address):
        self.emu.log("metadata connection error: %s" % (sys.exc_info()[1],))


class _BaseHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Tengine"
    sys_version = ""
    timeout = 120

    def log_message(self, fmt, *args):
        pass

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        if n > 16 * 1024 * 1024:
            raise ValueError("body too large")
        return self.rfile.read(n) if n > 0 else b""

    def _send(self, resp):
        try:
            self.send_response(resp.status)
            self.send_header("Content-Type", resp.ctype)
            self.send_header("Content-Length", str(len(resp.body)))
            for k, v in resp.headers:
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(resp.body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout, OSError):
            self.close_connection = True

    def _headers_lower(self):
        out = {}
        for k, v in self.headers.items():
            k = k.lower()
            out[k] = (out[k] + "," + v) if k in out else v
        return out


class ApiHandler(_BaseHandler):
    def setup(self):
        self._hs_failed = False
        try:
            self.request.settimeout(30)
            self.request.do_handshake()
        except Exception as e:
            self._hs_failed = True
            self.server.emu.log("TLS handshake from %s failed: %s" % (self.client_address[0], e))
        super().setup()

    def handle(self):
        if not self._hs_failed:
            super().handle()

    def _dispatch(self):
        emu = self.server.emu
        try:
            body = self._read_body()
        except Exception:
            self.close_connection = True
            self._send(Response(400, b'{"Code":"BadRequest"}'))
            return
        path = urllib.parse.urlsplit(self.path).path
        headers = self._headers_lower()
        if path.startswith("/_control/"):
            resp = emu.handle_control(self.command, self.path, body, headers)
            emu.log("%s %s control %s -> %d" % (self.client_address[0], self.command, path, resp.status))
            self._send(resp)
            return
        resp = emu.handle_api(self.command, self.path, headers, body)
        info = resp.info
        emu.log("%s %s %s action=%s sig=%s ak=%s auth=%s status=%d code=%s%s" % (
            self.client_address[0], self.command, path, info.get("action"), info.get("sig"),
            info.get("access_key_id"), info.get("auth"), resp.status, info.get("code") or "-",
            (" fault=" + info["fault"]) if info.get("fault") else ""))
        self._send(resp)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _dispatch


class MetadataHandler(_BaseHandler):
    server_version = "ECS-metadata"
    PREFIX = "/latest/meta-data/ram/security-credentials"

    def _text(self, status, text, ctype="text/plain"):
        self._send(Response(status, text.encode("utf-8"), ctype))

    def _token_ok(self):
        emu = self.server.emu
        with emu.lock:
            if not emu.imds_token_issued:
                return True
            tok = self.headers.get("x-aliyun-ecs-metadata-token")
            exp = emu.imds_tokens.get(tok) if tok else None
            return exp is not None and exp > time.time()

    def do_PUT(self):
        emu = self.server.emu
        self._read_body()
        if self.path.split("?")[0] != "/latest/api/token":
            return self._text(404, "Not Found")
        ttl = self.headers.get("X-aliyun-ecs-metadata-token-ttl-seconds", "")
        if not INT_RE.match(ttl) or not (1 <= int(ttl) <= 21600):
            emu.log("metadata PUT token -> 400")
            return self._text(400, "Bad Request")
        tok = base64.urlsafe_b64encode(secrets.token_bytes(36)).decode()
        with emu.lock:
            emu.imds_tokens[tok] = time.time() + int(ttl)
            emu.imds_token_issued = True
        emu.log("metadata PUT /latest/api/token ttl=%s -> 200" % ttl)
        self._text(200, tok)

    def do_GET(self):
        emu = self.server.emu
        path = self.path.split("?")[0]
        if not path.startswith(self.PREFIX):
            emu.log("metadata GET %s -> 404" % path)
            return self._text(404, "Not Found")
        if not self._token_ok():
            emu.log("metadata GET %s -> 401 (token required)" % path)
            return self._text(401, "Unauthorized")
        rest = path[len(self.PREFIX):].strip("/")
        if rest == "":
            emu.log("metadata GET %s -> 200 role" % path)
            return self._text(200, emu.role_name)
        if rest != emu.role_name:
            emu.log("metadata GET %s -> 404" % path)
            return self._text(404, "Not Found")
        c = emu.imds_credentials()
        body = {"AccessKeyId": c.id, "AccessKeySecret": c.secret, "Expiration": iso_z(c.expires),
                "SecurityToken": c.token, "LastUpdated": iso_z(c.last_updated), "Code": "Success"}
        emu.log("metadata GET %s -> 200 credentials ak=%s expires=%s" % (path, c.id, iso_z(c.expires)))
        self._send(Response(200, json.dumps(body, indent=2).encode(), "text/plain"))

    def _other(self):
        self._read_body()
        self._text(405, "Method Not Allowed")

    do_POST = do_DELETE = _other


# --------------------------------------------------------------------------------------
# Self-test (reference section 4 vectors, run through the verifier itself)

def self_test():
    failures = []

    def check(name, cond, detail=""):
        print("%s %s%s" % ("ok  " if cond else "FAIL", name, (" -- " + detail) if detail and not cond else ""))
        if not cond:
            failures.append(name)

    base = {"AccessKeyId": "testid", "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
            "Timestamp": "2016-02-23T12:46:24Z", "SignatureMethod": "HMAC-SHA1",
            "SignatureVersion": "1.0", "Format": "JSON", "Version": API_VERSION}
    t_v1 = parse_timestamp("2016-02-23T12:46:24Z")
    t_v3 = parse_timestamp("2023-10-26T10:22:32Z")

    def make(keys, sts=()):
        e = Emulator(access_keys=keys, sts_keys=sts, quiet=True)
        return e

    emu_plain = make([("testid", "testsecret"), ("YourAccessKeyId", "YourAccessKeySecret")])
    emu_sts = make([], [("testid", "testsecret", "sts-token+/="),
                        ("YourAccessKeyId", "YourAccessKeySecret", "STSTOKEN")])

    def auth_v1(emu, method, params, body_params=None):
        info = {}
        pairs = list(params.items()) + list((body_params or {}).items())
        merged = dict(params)
        merged.update(body_params or {})
        try:
            return emu._auth_v1(method, pairs, merged, info, t_v1), None
        except ApiError as e:
            return None, e

    # v1 vector 1
    p = dict(base, Action="GetUserCertificateDetail", CertId="12345")
    sts1 = v1_string_to_sign("GET", p.items())
    check("v1 vector 1 signature", v1_signature("testsecret", sts1) == "3R9P7wUVVT6AasdBkRH0SEU5HY8=")
    emu_plain.nonces.clear()
    a, e = auth_v1(emu_plain, "GET", dict(p, Signature="3R9P7wUVVT6AasdBkRH0SEU5HY8="))
    check("v1 vector 1 accepted by verifier", a == "GetUserCertificateDetail", e and e.code)
    a, e = auth_v1(emu_plain, "GET", dict(p, Signature="3R9P7wUVVT6AasdBkRH0SEU5HY8="))
    check("v1 nonce replay rejected", e is not None and e.code == "SignatureNonceUsed")
    a, e = auth_v1(emu_plain, "GET", dict(p, SignatureNonce="other", Signature="3R9P7wUVVT6AasdBkRH0SEU5HY9="))
    check("v1 bad signature rejected with server string to sign",
          e is not None and e.code == "SignatureDoesNotMatch" and "server string to sign is:GET&%2F&" in e.message)
    # v1 vector 2 (STS)
    p2 = dict(p, SecurityToken="sts-token+/=")
    check("v1 vector 2 canonical has encoded token", "SecurityToken=sts-token%2B%2F%3D" in v1_canonical_query(p2.items()))
    check("v1 vector 2 signature", v1_signature("testsecret", v1_string_to_sign("GET", p2.items())) == "IJ04nTNYb6WexYACrZT1zcc07bQ=")
    a, e = auth_v1(emu_sts, "GET", dict(p2, Signature="IJ04nTNYb6WexYACrZT1zcc07bQ="))
    check("v1 vector 2 accepted by verifier (STS)", a == "GetUserCertificateDetail", e and e.code)
    a, e = auth_v1(emu_sts, "GET", dict(p, SignatureNonce="x2", Signature="3R9P7wUVVT6AasdBkRH0SEU5HY8="))
    check("v1 STS without token rejected", e is not None and e.code == "MissingSecurityToken", e and e.code)
    # v1 vector 3 (POST, body params)
    p3 = dict(base, Action="UploadUserCertificate", SignatureNonce="n1",
              Cert="-----BEGIN CERTIFICATE-----\nMIIB+/=\n-----END CERTIFICATE-----",
              Key="a b*c~d", Name="my cert 中")
    cq3 = v1_canonical_query(p3.items())
    check("v1 vector 3 canonical encodings",
          "Cert=-----BEGIN%20CERTIFICATE-----%0AMIIB%2B%2F%3D%0A-----END%20CERTIFICATE-----" in cq3
          and "Key=a%20b%2Ac~d" in cq3 and "Name=my%20cert%20%E4%B8%AD" in cq3)
    check("v1 vector 3 signature", v1_signature("testsecret", v1_string_to_sign("POST", p3.items())) == "UpLTLNB/SDJb36JpvubpASx4agw=")
    q3 = {k: v for k, v in p3.items() if k not in ("Cert", "Key", "Name")}
    b3 = {k: p3[k] for k in ("Cert", "Key", "Name")}
    a, e = auth_v1(emu_plain, "POST", dict(q3, Signature="UpLTLNB/SDJb36JpvubpASx4agw="), b3)
    check("v1 vector 3 accepted by verifier (params split query/body)", a == "UploadUserCertificate", e and e.code)

    # v3
    def v3_headers(action, extra=None, body=b"", ctype=None):
        h = {"host": "cas.aliyuncs.com", "x-acs-action": action, "x-acs-version": API_VERSION,
             "x-acs-date": "2023-10-26T10:22:32Z",
             "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
             "x-acs-content-sha256": hashlib.sha256(body).hexdigest()}
        h.update(extra or {})
        if ctype:
            h["content-type"] = ctype
        return h

    def auth_v3(emu, headers, query, body, sig):
        names = sorted(headers)
        h = dict(headers)
        h["authorization"] = "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=%s,Signature=%s" % (
            ";".join(names), sig)
        try:
            return emu._auth_v3("POST", "/", query, h, body, {}, t_v3), None
        except ApiError as e:
            return None, e

    h1 = v3_headers("ListUserCertificateOrder")
    q1 = [("CurrentPage", "1"), ("OrderType", "CERT"), ("ShowSize", "50")]
    cr1 = v3_canonical_request("POST", "/", q1, h1, sorted(h1), EMPTY_SHA256)
    check("v3 vector 1 hashed canonical request",
          hashlib.sha256(cr1.encode()).hexdigest() == "f040c7d17a15a526d11ae12863fe065ca4b729fb8c6c18649650d3727fbf9ffc")
    sig1 = "d6ed77ee32f5fc631f3220115c818c40fba0efea6c75523e8071ed96ad89ad4e"
    check("v3 vector 1 signature", v3_signature("YourAccessKeySecret", v3_string_to_sign(cr1)) == sig1)
    emu_plain.nonces.clear()
    a, e = auth_v3(emu_plain, h1, q1, b"", sig1)
    check("v3 vector 1 accepted by verifier", a == "ListUserCertificateOrder", e and e.code)
    a, e = auth_v3(emu_plain, dict(h1, **{"x-acs-signature-nonce": "n2"}), q1, b"x", sig1)
    check("v3 body not matching x-acs-content-sha256 rejected",
          e is not None and e.code in ("SignatureDoesNotMatch", "IncompleteSignature"), e and e.code)

    h2 = v3_headers("GetUserCertificateDetail", {"x-acs-accesskey-id": "YourAccessKeyId",
                                                 "x-acs-security-token": "STSTOKEN"})
    check("v3 vector 2 signed headers", ";".join(sorted(h2)) ==
          "host;x-acs-accesskey-id;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-security-token;x-acs-signature-nonce;x-acs-version")
    sig2 = "21a55ecc42320785b2a26df3a17186a0cf351f094eff68ceed59acf63deb7495"
    cr2 = v3_canonical_request("POST", "/", [("CertId", "12345")], h2, sorted(h2), EMPTY_SHA256)
    check("v3 vector 2 signature", v3_signature("YourAccessKeySecret", v3_string_to_sign(cr2)) == sig2)
    a, e = auth_v3(emu_sts, h2, [("CertId", "12345")], b"", sig2)
    check("v3 vector 2 accepted by verifier (STS)", a == "GetUserCertificateDetail", e and e.code)

    body3 = b"CertId=12345"
    h3 = v3_headers("GetUserCertificateDetail", body=body3, ctype="application/x-www-form-urlencoded")
    check("v3 vector 3 body hash", h3["x-acs-content-sha256"] == "fc549ac392f8f2a67f9619eb74343fe0bd66daae7ea96119a5a4eb520aa7b760")
    sig3 = "aa8b7531d19c83b82a8fd198fa7815ffd3f79087490735c4ea6accd86a679f4f"
    cr3 = v3_canonical_request("POST", "/", [], h3, sorted(h3), h3["x-acs-content-sha256"])
    check("v3 vector 3 signature", v3_signature("YourAccessKeySecret", v3_string_to_sign(cr3)) == sig3)
    emu_plain.nonces.clear()
    a, e = auth_v3(emu_plain, h3, [], body3, sig3)
    check("v3 vector 3 accepted by verifier", a == "GetUserCertificateDetail", e and e.code)

    # timestamps
    try:
        emu_plain._check_timestamp("2016-02-23T12:46:24Z", t_v1 + 16 * 60, "Timestamp")
        ok = False
    except ApiError as e:
        ok = e.code == "InvalidTimeStamp.Expired"
    check("timestamp 16 min off -> InvalidTimeStamp.Expired", ok)
    try:
        emu_plain._check_timestamp("2016-02-23 12:46:24", t_v1, "Timestamp")
        ok = False
    except ApiError as e:
        ok = e.code == "InvalidTimeStamp.Format"
    check("malformed timestamp -> InvalidTimeStamp.Format", ok)

    # X.509 issuance
    pem, key = emu_plain.ca.issue(["a.test", "b.test"], days=90)
    chain = parse_cert_chain(pem)
    check("issued chain: leaf signed by intermediate", signed_by(chain[0], chain[1]))
    check("issued chain: intermediate signed by root", signed_by(chain[1], emu_plain.ca.root_cert))
    check("rogue intermediate does not verify leaf", not signed_by(chain[0], emu_plain.ca.rogue_int_cert))
    check("issued key matches", spki(parse_private_key(key).public_key()) == spki(chain[0].public_key()))
    print("self-test: %s" % ("PASS" if not failures else "FAIL (%d)" % len(failures)))
    return 0 if not failures else 1


# --------------------------------------------------------------------------------------
# Command line

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0, help="HTTPS port on 127.0.0.1 (0 = pick)")
    ap.add_argument("--state-dir", help="writes ca.pem, issuing-ca.pem, port (and metadata-port)")
    ap.add_argument("--access-key", action="append", default=[], metavar="ID:SECRET")
    ap.add_argument("--sts", action="append", default=[], metavar="ID:SECRET:TOKEN")
    ap.add_argument("--validate-host", default="127.0.0.1:80", metavar="HOST:PORT",
                    help="where FILE validation fetches %s from (Host: <domain>)" % FILE_URI)
    ap.add_argument("--metadata-port", type=int, default=None,
                    help="serve an ECS metadata endpoint on 127.0.0.1:N over plain HTTP (0 = pick)")
    ap.add_argument("--sts-ttl", type=int, default=3600, help="lifetime of metadata STS credentials (s)")
    ap.add_argument("--role-name", default="certsync-emulator-role")
    ap.add_argument("--key-type", choices=("rsa", "ec"), default="rsa", help="key of issued certificates")
    ap.add_argument("--quota", action="append", default=[], metavar="PRODUCT=N",
                    help="package quota (default digicert-free-1-free=20)")
    ap.add_argument("--ca-cert", help="PEM root CA certificate to use instead of a generated one")
    ap.add_argument("--ca-key", help="PEM key of --ca-cert")
    ap.add_argument("--quiet", action="store_true", help="no per-request log lines")
    ap.add_argument("--self-test", action="store_true", help="check the reference signature vectors and exit")
    a = ap.parse_args(argv)
    if a.self_test:
        return self_test()
    keys, sts = [], []
    for s in a.access_key:
        if ":" not in s:
            ap.error("--access-key wants ID:SECRET")
        keys.append(tuple(s.split(":", 1)))
    for s in a.sts:
        parts = s.split(":", 2)
        if len(parts) != 3:
            ap.error("--sts wants ID:SECRET:TOKEN")
        sts.append(tuple(parts))
    quotas = {}
    for q in a.quota:
        pc, _, n = q.partition("=")
        quotas[pc] = int(n)
    ca_cert = ca_key = None
    if a.ca_cert:
        if not a.ca_key:
            ap.error("--ca-cert needs --ca-key")
        ca_cert, ca_key = open(a.ca_cert).read(), open(a.ca_key).read()
    state_dir = a.state_dir or tempfile.mkdtemp(prefix="cas-emulator-")
    emu = Emulator(state_dir=state_dir, port=a.port, access_keys=keys, sts_keys=sts,
                   validate_host=a.validate_host, metadata_port=a.metadata_port, sts_ttl=a.sts_ttl,
                   role_name=a.role_name, key_type=a.key_type, quotas=quotas, ca_cert_pem=ca_cert,
                   ca_key_pem=ca_key, quiet=a.quiet)
    if not keys and not sts and a.metadata_port is None:
        emu.log("warning: no --access-key/--sts/--metadata-port given; every API call will fail")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    emu.start()
    emu.log("state dir %s" % state_dir)
    while not stop.wait(1):
        pass
    emu.log("stopping")
    emu.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
