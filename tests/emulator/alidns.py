"""Alibaba Cloud DNS (Alidns, OpenAPI 2015-01-09) actions of the service emulator.

cas_emulator.py serves them on the same port with the same signature checks (v1 and v3,
the same access keys and STS credentials), the same fault injection (/_control/fault with
action=AddDomainRecord, ...) and the same request log. Kept in this module so that the
certificate service's part of the emulator and this one change independently.

Actions: AddDomainRecord, DescribeDomainRecords, DeleteDomainRecord. The account holds
the zones added with /_control/alidns-domain?name=example.test; a name outside them is
InvalidDomainName.NoExist. With /_control/alidns-forward?url=http://127.0.0.1:PORT every
TXT record is also set in pebble-challtestsrv (its management API: /set-txt, /clear-txt),
so that a real ACME CA resolves it. /_control/alidns-records lists the records.
"""
import json
import sys
import threading
import urllib.request

VERSION = "2015-01-09"
RECORD_ID_START = 20000000000000001  # record ids are long digit strings
TYPES = {"A", "AAAA", "CNAME", "MX", "NS", "TXT", "SRV", "CAA"}


class _State:
    def __init__(self):
        self.lock = threading.RLock()
        self.zones = set()
        self.records = {}  # id (str) -> {DomainName, RR, Type, Value, TTL}
        self.next_id = RECORD_ID_START
        self.forward = None  # challtestsrv's management URL


def state(emu):
    if getattr(emu, "_alidns", None) is None:
        emu._alidns = _State()
    return emu._alidns


def reset(emu):
    emu._alidns = _State()


def _m(emu):
    """The emulator's module (cas_emulator, or __main__ when it runs as a script)."""
    return sys.modules[type(emu).__module__]


def _err(emu, code, message, status=400):
    return _m(emu).ApiError(code, message, status)


def _need(emu, p, name):
    v = p.get(name)
    if v is None or v == "":
        raise _m(emu).missing(name)
    return v


def _zone(emu, st, p):
    zone = _need(emu, p, "DomainName").lower().rstrip(".")
    if zone not in st.zones:
        raise _err(emu, "InvalidDomainName.NoExist",
                   "The specified domain name does not exist. Refresh the page and try again.")
    return zone


def _fqdn(r):
    return r["DomainName"] if r["RR"] == "@" else "%s.%s" % (r["RR"], r["DomainName"])


def _sync_forward(st, fqdn):
    """challtestsrv holds exactly the TXT values the zone holds for fqdn."""
    if not st.forward:
        return
    host = fqdn + "."
    values = [r["Value"] for r in st.records.values() if r["Type"] == "TXT" and _fqdn(r) == fqdn]

    def post(path, body):
        req = urllib.request.Request(st.forward + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        urllib.request.urlopen(req, timeout=5).read()

    post("/clear-txt", {"host": host})
    for v in values:
        post("/set-txt", {"host": host, "value": v})


def act_add(emu, p):
    st = state(emu)
    with st.lock:
        zone = _zone(emu, st, p)
        rr = _need(emu, p, "RR").lower()
        rtype = _need(emu, p, "Type").upper()
        value = _need(emu, p, "Value")
        if rtype not in TYPES:
            raise _m(emu).invalid("Type")
        ttl = p.get("TTL", "600")
        if not ttl.isdigit() or not 1 <= int(ttl) <= 86400:
            raise _m(emu).invalid("TTL")
        for r in st.records.values():
            if (r["DomainName"], r["RR"], r["Type"], r["Value"]) == (zone, rr, rtype, value):
                raise _err(emu, "DomainRecordDuplicate", "The DNS record already exists.")
        rid = str(st.next_id)
        st.next_id += 2
        st.records[rid] = {"DomainName": zone, "RR": rr, "Type": rtype, "Value": value,
                           "TTL": int(ttl)}
        if rtype == "TXT":
            _sync_forward(st, "%s.%s" % (rr, zone))
        return {"RecordId": rid}


def _int(emu, p, name, default, lo, hi):
    v = p.get(name)
    if v is None:
        return default
    if not v.isdigit() or not lo <= int(v) <= hi:
        raise _m(emu).invalid(name)
    return int(v)


def act_describe(emu, p):
    st = state(emu)
    with st.lock:
        zone = _zone(emu, st, p)
        page = _int(emu, p, "PageNumber", 1, 1, 10 ** 6)
        size = _int(emu, p, "PageSize", 20, 1, 500)
        rr_kw = (p.get("RRKeyWord") or "").lower()
        type_kw = (p.get("TypeKeyWord") or p.get("Type") or "").upper()
        value_kw = p.get("ValueKeyWord") or ""
        rows = [dict(r, RecordId=rid, Status="ENABLE", Line="default", Locked=False)
                for rid, r in sorted(st.records.items())
                if r["DomainName"] == zone and rr_kw in r["RR"]
                and (not type_kw or r["Type"] == type_kw) and value_kw in r["Value"]]
        return {"TotalCount": len(rows), "PageNumber": page, "PageSize": size,
                "DomainRecords": {"Record": rows[(page - 1) * size:page * size]}}


def act_delete(emu, p):
    st = state(emu)
    with st.lock:
        rid = _need(emu, p, "RecordId")
        r = st.records.pop(rid, None)
        if r is None:
            raise _err(emu, "DomainRecordNotBelongToUser",
                       "The DNS record does not exist or does not belong to the current user.")
        if r["Type"] == "TXT":
            _sync_forward(st, _fqdn(r))
        return {"RecordId": rid}


def published(emu, fqdn, value):
    """The account's zones hold the TXT record fqdn = value (the service's DNS validation)."""
    st = state(emu)
    with st.lock:
        return any(r["Type"] == "TXT" and _fqdn(r) == fqdn and r["Value"] == value
                   for r in st.records.values())


ACTIONS = {
    "AddDomainRecord": act_add,
    "DescribeDomainRecords": act_describe,
    "DeleteDomainRecord": act_delete,
}


def control(emu, what, p):
    """/_control/alidns-*: the account's zones, forwarding to challtestsrv, the records."""
    st = state(emu)
    with st.lock:
        if what == "alidns-domain":
            name = (p.get("name") or "").lower().rstrip(".")
            if not name:
                raise ValueError("name is required")
            st.zones.add(name)
            return {"ok": True, "zones": sorted(st.zones)}
        if what == "alidns-forward":
            st.forward = (p.get("url") or "").rstrip("/") or None
            return {"ok": True, "forward": st.forward}
        if what == "alidns-records":
            return {"zones": sorted(st.zones),
                    "records": [dict(r, RecordId=rid) for rid, r in sorted(st.records.items())]}
    return None
