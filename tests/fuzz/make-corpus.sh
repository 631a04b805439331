#!/usr/bin/env bash
# Regenerate the seed corpus of the fuzz targets (tests/fuzz/corpus/<target>/):
# small real inputs made by openssl, keytool and certsync itself. The corpus
# is committed; run this only to change it:  tests/fuzz/make-corpus.sh out/certsync
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
certsync=$(realpath "${1:-out/certsync}")
c=$here/corpus
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
sep=$'\n--8<--\n'
days=36500

# a chain: root -> intermediate -> leaf (EC P-256), and an RSA 2048 leaf under the root
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout root.key \
    -subj "/CN=Fuzz Root" -days $days -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign -out root.pem 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout inter.key \
    -subj "/CN=Fuzz Intermediate" -out inter.csr 2>/dev/null
printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n' >ca.ext
openssl x509 -req -in inter.csr -CA root.pem -CAkey root.key -CAcreateserial -days $days \
    -extfile ca.ext -out inter.pem 2>/dev/null
printf 'subjectAltName=DNS:shop.example.com,DNS:*.example.com\nextendedKeyUsage=serverAuth\n' >leaf.ext
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout leaf.key \
    -subj "/CN=shop.example.com" -out leaf.csr 2>/dev/null
openssl x509 -req -in leaf.csr -CA inter.pem -CAkey inter.key -CAcreateserial -days $days \
    -extfile leaf.ext -out leaf.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout rsa.key -subj "/CN=rsa.example.com" \
    -out rsa.csr 2>/dev/null
printf 'subjectAltName=DNS:rsa.example.com\n' >rsa.ext
openssl x509 -req -in rsa.csr -CA root.pem -CAkey root.key -CAcreateserial -days $days \
    -extfile rsa.ext -out rsa.pem 2>/dev/null
openssl pkey -in leaf.key -out leaf.pk8.pem
openssl ec -in leaf.key -out leaf.sec1.pem 2>/dev/null
openssl pkey -in leaf.key -outform DER -out leaf.key.der
openssl x509 -in leaf.pem -outform DER -out leaf.der
openssl rsa -in rsa.key -traditional -out rsa.pkcs1.pem 2>/dev/null
printf 'fuzzpass\n' >pass.txt
openssl pkcs8 -topk8 -in leaf.key -v2 aes-256-cbc -iter 2048 -passout file:pass.txt \
    -out leaf.enc.pem
cat inter.pem root.pem >chain.pem

rm -rf "$c" && mkdir -p "$c"/{bundle,jks,config,aliyun,cred,ocsp}
# bundle: CERTS SEP KEY [SEP CHAIN [SEP PASSWORD]]
{ cat leaf.pem inter.pem root.pem; printf %s "$sep"; cat leaf.pk8.pem; } >"$c/bundle/pem-fullchain"
{ cat root.pem leaf.pem inter.pem; printf %s "$sep"; cat leaf.sec1.pem; } >"$c/bundle/pem-any-order-sec1"
{ cat leaf.der; printf %s "$sep"; cat leaf.key.der; } >"$c/bundle/der"
{ cat leaf.pem; printf %s "$sep"; cat leaf.pk8.pem; printf %s "$sep"; cat chain.pem; } >"$c/bundle/files-chain"
{ cat leaf.pem; printf %s "$sep"; cat leaf.enc.pem; printf %s "$sep"; cat chain.pem
  printf %s "$sep"; cat pass.txt; } >"$c/bundle/files-encrypted-key"
{ cat rsa.pem; printf %s "$sep"; cat rsa.pkcs1.pem; } >"$c/bundle/pem-rsa-pkcs1"

# jks: store and key password changeit
printf 'changeit\n' >jks-pass.txt
"$certsync" convert --cert leaf.pem --chain chain.pem --key leaf.key --format jks --alias Shop \
    --password-file jks-pass.txt --out "$c/jks/certsync-ec-chain.jks" >/dev/null
openssl pkcs12 -export -in rsa.pem -inkey rsa.key -certfile root.pem -name rsa \
    -passout pass:changeit -out rsa.p12
keytool -importkeystore -noprompt -srckeystore rsa.p12 -srcstoretype PKCS12 \
    -srcstorepass changeit -destkeystore "$c/jks/keytool-rsa-and-trusted.jks" \
    -deststoretype JKS -deststorepass changeit -destkeypass changeit >/dev/null 2>&1
keytool -importcert -noprompt -alias fuzz-root -file root.pem \
    -keystore "$c/jks/keytool-rsa-and-trusted.jks" -storepass changeit >/dev/null 2>&1

# config: the README's examples
cat >"$c/config/readme" <<'CONF'
[store]
path = /var/lib/certsync

[provider local]
type = local-ca              ; the embedded default: a local CA kept in the store

[provider aliyun]
type = aliyun-cas
region = cn-hangzhou
credentials = default

[cert shop]
provider = aliyun
cert-id = 14223350           ; or: domain = shop.example.com
formats = pem pfx jks        ; pem is always written
renew-before = 30d
CONF
cat >"$c/config/every-key" <<'CONF'
# every key the README documents
[store]
path = /srv/certsync
keep = 5
owner = www-data
group = www-data

[provider local]
type = local-ca
ca-lifetime = 3650d

[provider cas]
type = aliyun-cas
region = ap-southeast-1
credentials = /etc/certsync/aliyun-credentials
endpoint = https://127.0.0.1:8443
ca-file = /etc/certsync/emulator-ca.pem
signature-version = v1
metadata-endpoint = http://100.100.100.200
timeout = 30s
retries = 3

[cert shop]
provider = local
domain = shop.example.com www.shop.example.com
  *.shop.example.com
formats = pem pfx jks
renew-before = 12h
key-type = rsa3072
lifetime = 90d
pfx-profile = legacy
alias = Shop
password-file = /etc/certsync/shop.pass
on-change = /usr/sbin/apachectl graceful
    'and more' "words"

[cert api.example]
provider = cas
domain = *.example.com
CONF
printf '[cert shop]\ndomain = shop.example.com\n' >"$c/config/minimal"

# aliyun: answers shaped like the service's (and tests/emulator/cas_emulator.py)
python3 - "$c/aliyun" <<'PY'
import json, sys
d = sys.argv[1]
leaf, chain, key = (open(f).read() for f in ("leaf.pem", "inter.pem", "leaf.pk8.pem"))
row = {"CertificateId": 14223350, "Name": "shop", "CommonName": "shop.example.com",
       "Sans": "shop.example.com,*.example.com", "Issuer": "Fuzz Intermediate",
       "Fingerprint": "00" * 20, "SerialNo": "0a1b", "Sha2": "AB" * 32,
       "StartDate": "2024-01-01", "EndDate": "2124-01-01", "Expired": False, "Upload": True,
       "OrgName": "", "Country": "", "Province": "", "City": "", "ResourceGroupId": "",
       "InstanceId": "cas-upload-abc123", "Algorithm": "ECC"}
old = dict(row, CertificateId="9007199254740993", EndDate="2020-01-01", Expired=True)
w = open(d + "/list-page", "w")
json.dump({"RequestId": "7A3D-1", "CertificateOrderList": [row, old], "CurrentPage": 1,
           "ShowSize": 50, "TotalCount": 3}, w)
w.close()
order = {"OrderId": 88, "InstanceId": "cas-ivauto-x", "ProductCode": "digicert-free-1-free",
         "Domain": "shop.example.com", "DomainType": "ONE", "DomainCount": 1,
         "Status": "ISSUED", "CertificateId": 14223351, "CertStartTime": 1704067200000,
         "CertEndTime": 4102444800000, "BuyDate": 1704067200000}
json.dump({"RequestId": "7A3D-2", "CertificateOrderList": [order], "CurrentPage": 1,
           "ShowSize": 50, "TotalCount": 1}, open(d + "/list-orders", "w"))
json.dump({"RequestId": "7A3D-3", "Id": 14223350, "Name": "shop", "Common": "shop.example.com",
           "Sans": "shop.example.com,*.example.com", "StartDate": "2024-01-01",
           "EndDate": "2124-01-01", "Expired": False, "Cert": leaf + chain, "Key": key,
           "CertChain": [{"CommonName": "shop.example.com", "RemainDay": 36000}]},
          open(d + "/detail", "w"))
json.dump({"RequestId": "7A3D-4", "HostId": "cas.aliyuncs.com", "Code": "Throttling.User",
           "Message": "Request was denied due to user flow control.",
           "Recommend": "https://api.aliyun.com/troubleshoot?q=Throttling.User"},
          open(d + "/error-throttling", "w"))
json.dump({"RequestId": "7A3D-5", "Code": "NotFound", "Message": "证书不存在"},
          open(d + "/error-utf8", "w"), ensure_ascii=False)
PY

# cred: a selector byte ('0' CLI config.json, '1' SDK credentials, '2' credentials = FILE)
cat >"$c/cred/cli-profiles" <<'CRED'
0{"current": "ak", "profiles": [
  {"name": "ak", "mode": "AK", "access_key_id": "LTAIfuzzid", "access_key_secret": "fuzzsecret"},
  {"name": "sts", "mode": "StsToken", "access_key_id": "STS.fuzz", "access_key_secret": "s",
   "sts_token": "tok"},
  {"name": "ecs", "mode": "EcsRamRole", "ram_role_name": "certsync"}]}
CRED
printf '0{"current": "ecs", "profiles": [{"name": "ecs", "mode": "EcsRamRole", "ram_role_name": "r"}]}\n' \
    >"$c/cred/cli-ecs-role"
printf '1[default]\ntype = access_key\naccess_key_id = LTAIfuzzid\naccess_key_secret = fuzzsecret\n\n[other]\ntype = sts\naccess_key_id = x\naccess_key_secret = y\nsecurity_token = z\n' \
    >"$c/cred/sdk-credentials"
printf '2access_key_id = LTAIfuzzid\naccess_key_secret = fuzzsecret\nsecurity_token = tok\n' \
    >"$c/cred/certsync-file"
# ocsp: RESPONSE SEP CHAIN, answers of `openssl ocsp` signed by the leaf's issuer (good, revoked),
# one from a delegated responder certificate, one for another certificate
make_ocsp() { # NAME STATUS-LINE RSIGNER RKEY [CERT-FOR-THE-REQUEST]
    printf '%s\n' "$2" >index.txt
    openssl ocsp -issuer inter.pem -cert "${5:-leaf.pem}" -no_nonce -reqout req.der 2>/dev/null
    openssl ocsp -index index.txt -rsigner "$3" -rkey "$4" -CA inter.pem -reqin req.der \
        -respout resp.der -ndays $days 2>/dev/null
    { cat resp.der; printf %s "$sep"; cat leaf.pem inter.pem; } >"$c/ocsp/$1"
}
serial=$(openssl x509 -in leaf.pem -noout -serial | cut -d= -f2)
good="V	491231235959Z		$serial	unknown	/CN=shop.example.com"
make_ocsp good "$good" inter.pem inter.key
make_ocsp revoked "R	491231235959Z	240101000000Z	$serial	unknown	/CN=shop.example.com" inter.pem inter.key
printf 'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=OCSPSigning\n' >ocsp.ext
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout resp.key \
    -subj "/CN=Fuzz OCSP responder" -out resp.csr 2>/dev/null
openssl x509 -req -in resp.csr -CA inter.pem -CAkey inter.key -CAcreateserial -days $days \
    -extfile ocsp.ext -out resp.pem 2>/dev/null
make_ocsp delegated "$good" resp.pem resp.key
make_ocsp other-cert "$good" inter.pem inter.key rsa.pem
du -sh "$c"
