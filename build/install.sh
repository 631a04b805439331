#!/usr/bin/env bash
# make install / make uninstall: lays certsync out the way Debian lays out its own
# packages, under $DESTDIR. Called by the Makefile, which passes every path:
#
#   install.sh install|uninstall
#
# install records what it added (files, links, directories it created, the example
# config and its checksum) in $PREFIX/share/certsync/install-manifest; uninstall removes
# exactly that, in reverse: a config the operator changed, a store that holds anything
# and a directory that was there before are kept.
set -euo pipefail

: "${O:=out}" "${DESTDIR:=}" "${PREFIX:=/usr}" "${BINDIR:=$PREFIX/bin}"
: "${SYSCONFDIR:=/etc}" "${STATEDIR:=/var/lib/certsync}" "${SYSTEMD_UNITDIR:=/lib/systemd/system}"
: "${BASHCOMPDIR:=$PREFIX/share/bash-completion/completions}" "${MANDIR:=$PREFIX/share/man}"
: "${NGX_MODULES_PATH:=/usr/lib/nginx/modules}" "${NGX_MODULES_AVAILABLE:=$PREFIX/share/nginx/modules-available}"
: "${APACHE_MODULES_DIR:=/usr/lib/apache2/modules}" "${STORE_GROUP:=www-data}"

src=$(cd "$(dirname "$0")/.." && pwd)
manifest_rel=$PREFIX/share/certsync/install-manifest
manifest=$DESTDIR$manifest_rel
conf_rel=$SYSCONFDIR/certsync/certsync.conf
new_manifest=

die() { echo "make install: $*" >&2; exit 1; }

# one line per thing added: "d PATH", "f PATH", "l PATH", "c PATH SHA256" (PATH without
# DESTDIR); a line already there (a second install) is not repeated
record() {
    grep -qxF -- "$*" "$new_manifest" || echo "$*" >> "$new_manifest"
}

# mkdir -p that records each directory it creates, outermost first
mkdirs() { # DIR [MODE [OWNER:GROUP]]
    local rel=$1 mode=${2:-0755} owner=${3:-} missing=() d=$1
    [ -z "$DESTDIR" ] || install -d "$DESTDIR"
    while [ "$d" != / ] && [ ! -d "$DESTDIR$d" ]; do missing=("$d" "${missing[@]}"); d=$(dirname "$d"); done
    for d in "${missing[@]}"; do
        install -d -m 0755 "$DESTDIR$d"
        record d "$d"
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    chmod "$mode" "$DESTDIR$rel"
    [ -z "$owner" ] || chown_root "$owner" "$DESTDIR$rel"
}

# ownership needs root; a DESTDIR install by another user (a package build) gets a note
chown_root() { # OWNER:GROUP PATH
    if [ "$(id -u)" -eq 0 ]; then
        getent group "${1#*:}" >/dev/null || die "group ${1#*:} does not exist (for $2): give STORE_GROUP=GROUP"
        chown "$1" "$2"
    else
        echo "make install: not root: $2 should belong to $1 (chown $1 $2)" >&2
    fi
}

put() { # MODE SOURCE DEST
    [ -f "$2" ] || die "$2 is missing: run make first"
    mkdirs "$(dirname "$3")"
    install -m "$1" "$2" "$DESTDIR$3"
    record f "$3"
}

link() { # TARGET LINK
    mkdirs "$(dirname "$2")"
    ln -sfn "$1" "$DESTDIR$2"
    record l "$2"
}

install_cli() {
    put 0755 "$O/certsync" "$BINDIR/certsync"
    put 0755 "$O/certsync-tomcat" "$BINDIR/certsync-tomcat"
    put 0644 "$src/build/completion/certsync.bash" "$BASHCOMPDIR/certsync"
    put 0644 "$src/build/systemd/certsync.service" "$SYSTEMD_UNITDIR/certsync.service"
    put 0644 "$src/build/systemd/certsync.timer" "$SYSTEMD_UNITDIR/certsync.timer"
}

# make man wrote them (doc/man.mk): certsync.8, certsync.conf.5, ...
install_man() {
    local page
    for page in certsync.8 certsync.conf.5 certsync-tomcat.8 certsync-nginx.8 certsync-apache.8; do
        put 0644 "$O/man/$page" "$MANDIR/man${page##*.}/$page"
    done
}

# nginx loads modules/NAME.so relative to its prefix (/usr/share/nginx/modules ->
# /usr/lib/nginx/modules on Debian); another modules path is named in full
install_nginx_module() {
    local so=ngx_http_certsync_module.so load snippet
    put 0644 "$O/$so" "$NGX_MODULES_PATH/$so"
    load="modules/$so"
    [ "$NGX_MODULES_PATH" = /usr/lib/nginx/modules ] || load="$NGX_MODULES_PATH/$so"
    snippet=$(mktemp) && echo "load_module $load;" > "$snippet"
    put 0644 "$snippet" "$NGX_MODULES_AVAILABLE/mod-http-certsync.conf"
    rm -f "$snippet"
    # enabled as Debian's libnginx-mod-* packages do
    link "$NGX_MODULES_AVAILABLE/mod-http-certsync.conf" "$SYSCONFDIR/nginx/modules-enabled/50-mod-http-certsync.conf"
    # the stream module only: it loads after libnginx-mod-stream's, which may be absent,
    # so it is not enabled here (the Debian package depends on it and enables both)
    put 0644 "$O/ngx_stream_certsync_module.so" "$NGX_MODULES_PATH/ngx_stream_certsync_module.so"
}

# `a2enmod certsync` enables it, and mod_ssl with it (# Depends); mod_watchdog is built
# into Debian's apache2 (apache2 -l), so it is no module to enable
install_apache_module() {
    local load
    put 0644 "$O/mod_certsync.so" "$APACHE_MODULES_DIR/mod_certsync.so"
    load=$(mktemp)
    printf '# Depends: ssl\nLoadModule certsync_module %s/mod_certsync.so\n' "$APACHE_MODULES_DIR" > "$load"
    put 0644 "$load" "$SYSCONFDIR/apache2/mods-available/certsync.load"
    rm -f "$load"
}

# the example config: never over an existing one (the operator's)
install_config() {
    if [ -e "$DESTDIR$conf_rel" ] && ! grep -qx "c $conf_rel .*" "$new_manifest"; then
        echo "make install: kept the existing $DESTDIR$conf_rel (the example is $src/build/certsync.conf)"
        return 0
    fi
    mkdirs "$(dirname "$conf_rel")"
    if [ -e "$DESTDIR$conf_rel" ] && ! grep -qx "c $conf_rel $(sha256 "$DESTDIR$conf_rel")" "$new_manifest"; then
        echo "make install: kept $DESTDIR$conf_rel (changed since it was installed)"
        return 0
    fi
    install -m 0644 "$src/build/certsync.conf" "$DESTDIR$conf_rel"
    chown_root root:root "$DESTDIR$conf_rel"
    sed -i "\\#^c $conf_rel #d" "$new_manifest"
    record c "$conf_rel" "$(sha256 "$DESTDIR$conf_rel")"
}

sha256() { sha256sum < "$1" | cut -d' ' -f1; }

# written even when install fails half-way, so that make uninstall removes that half
save_manifest() {
    mkdirs "$(dirname "$manifest_rel")"
    record f "$manifest_rel"
    install -m 0644 "$new_manifest" "$manifest"
    rm -f "$new_manifest"
}

do_install() {
    new_manifest=$(mktemp)
    [ ! -f "$manifest" ] || cp "$manifest" "$new_manifest"
    trap save_manifest EXIT
    install_cli
    install_man
    install_nginx_module
    install_apache_module
    install_config
    mkdirs "$STATEDIR" 0750 "root:$STORE_GROUP"
    trap - EXIT
    save_manifest
    echo "installed certsync into ${DESTDIR:-/} (list: $manifest)"
    echo "next: systemctl enable --now certsync.timer; a2enmod certsync; nginx -t"
}

do_uninstall() {
    local kind path sum
    [ -f "$manifest" ] || die "no $manifest: nothing was installed with make install under ${DESTDIR:-/}"
    tac "$manifest" | while read -r kind path sum; do
        case $kind in
        f | l) rm -f "$DESTDIR$path" ;;
        c)
            if [ -f "$DESTDIR$path" ] && [ "$(sha256 "$DESTDIR$path")" != "$sum" ]; then
                echo "make uninstall: kept $DESTDIR$path (changed since it was installed)"
            else
                rm -f "$DESTDIR$path"
            fi
            ;;
        d)
            rmdir "$DESTDIR$path" 2>/dev/null ||
                { [ ! -d "$DESTDIR$path" ] || echo "make uninstall: kept $DESTDIR$path (not empty)"; }
            ;;
        *) die "$manifest: unknown line '$kind $path'" ;;
        esac
    done
    echo "uninstalled certsync from ${DESTDIR:-/}"
}

case ${1:-} in
install) do_install ;;
uninstall) do_uninstall ;;
*) die "usage: install.sh install|uninstall" ;;
esac
