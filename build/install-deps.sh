#!/usr/bin/env bash
# Install every Debian package certsync needs to build, test and demo.
# Idempotent: does nothing when all are present. Needs root (or sudo) to install.
set -euo pipefail

packages=(
    # build
    build-essential pkg-config clang-format
    # man pages (make man: scdoc) and their check (man --warnings)
    scdoc man-db
    # Debian packages (make deb) and their check (tests/interop/test_deb.py)
    debhelper dpkg-dev fakeroot lintian
    # systemd-analyze verify of the units (tests/interop/test_install.py)
    systemd
    # fuzzing (make fuzz): clang and its libFuzzer + sanitizer runtimes
    clang libclang-rt-14-dev
    # libcertsync
    libssl-dev libjansson-dev libinih-dev libcurl4-openssl-dev
    # tests
    libcmocka-dev python3-pytest python3-cryptography python3-prometheus-client openssl curl
    # a real ACME CA and its DNS stand-in for the acme provider (tests/interop/pebble.py)
    pebble
    # Java consumers of PKCS#12 and JKS (keytool, javac), and a real Tomcat
    openjdk-17-jdk-headless tomcat10 tomcat10-admin
    # the status page rendered by a real browser (tests/interop/test_status_page.py)
    chromium
    # the official SDK of the certificates service as the tests' reference client
    # (tests/sdk: npm ci from its package-lock.json, `make sdk-deps`)
    nodejs
)
# Debian's npm is a package of its own; a nodejs that bundles npm (NodeSource's) has none
command -v npm >/dev/null 2>&1 || packages+=(npm)

# each server module lists what it needs in <module>/deps.txt (one package a line)
here=$(cd "$(dirname "$0")/.." && pwd)
for f in "$here"/*/deps.txt; do
    [ -f "$f" ] && while read -r p; do [ -n "$p" ] && packages+=("$p"); done < <(grep -v '^#' "$f")
done

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}"
sudo=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "run as root (or install sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
