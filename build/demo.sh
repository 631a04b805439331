#!/usr/bin/env bash
# The demo on the embedded default: the local CA issues a certificate into a store,
# rotates it, and rolls it back, shown by `certsync status` at each step.
# Then Debian's real nginx, Apache and Tomcat serve it and pick up a new version with no
# restart.
# Usage: build/demo.sh PATH-TO-certsync [PATH-TO-certsync-tomcat]
set -euo pipefail
certsync=${1:-out/certsync}
certsync_tomcat=${2:-out/certsync-tomcat}
demo=${CERTSYNC_DEMO_DIR:-$(mktemp -d /tmp/certsync-demo.XXXXXX)}
mkdir -p "$demo"
# the servers' workers (www-data) read the store through its group: traversable
chmod 755 "$demo"
owner=
id www-data >/dev/null 2>&1 && owner="group = www-data"
conf=$demo/certsync.conf
cat > "$conf" <<CONF
[store]
path = $demo/store
$owner

[provider local]
type = local-ca

[cert demo]
provider = local
domain = demo.localhost www.demo.localhost
formats = pem pfx jks
lifetime = 90d
renew-before = 30d
CONF

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "configuration ($conf)"
cat "$conf"
step "first sync: the local CA is created and issues v1"
show "$certsync" --config "$conf" sync
show "$certsync" --config "$conf" status demo
step "a second sync changes nothing: v1 is still good"
show "$certsync" --config "$conf" sync
step "rotation: a forced renewal installs v2 atomically"
show "$certsync" --config "$conf" sync --force demo
show "$certsync" --config "$conf" status demo
step "what a server reads: $demo/store/certs/demo/current -> $(readlink "$demo/store/certs/demo/current")"
ls -l "$demo/store/certs/demo/current/"
show openssl verify -CAfile "$demo/store/local-ca/root.pem" \
    -untrusted "$demo/store/certs/demo/current/chain.pem" "$demo/store/certs/demo/current/cert.pem"
if command -v keytool >/dev/null; then
    keytool -list -keystore "$demo/store/certs/demo/current/demo.jks" -storetype JKS \
        -storepass:file "$demo/store/certs/demo/current/jks-password.txt" | grep -E "entry|PrivateKeyEntry"
fi
step "rollback: v1 is current again"
show "$certsync" --config "$conf" rollback demo
show "$certsync" --config "$conf" status demo
step "a sync leaves a rolled-back certificate alone until it is released"
show "$certsync" --config "$conf" sync
show "$certsync" --config "$conf" release demo
if [ -x /usr/sbin/nginx ] && [ -x /usr/sbin/apache2 ] && [ -f "$(dirname "$certsync")/ngx_http_certsync_module.so" ] \
    && [ -f "$(dirname "$certsync")/mod_certsync.so" ]; then
    step "nginx and Apache serve 'demo' by name; a rotation reaches both with no reload"
    CERTSYNC=$certsync /usr/bin/python3 "$(dirname "$0")/demo-servers.py" "$conf" "$certsync"
fi
if [ -x /usr/share/tomcat10/bin/catalina.sh ] && [ -x "$certsync_tomcat" ]; then
    step "Tomcat: certsync-tomcat writes the keystore, Tomcat serves it, a new version is hot-reloaded"
    /usr/bin/python3 "$(dirname "$0")/demo-tomcat.py" "$conf" "$certsync" "$certsync_tomcat"
fi
printf '\nThe demo store is in %s\n' "$demo"
