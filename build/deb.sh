#!/usr/bin/env bash
# make deb: the Debian packages of debian/, built by dpkg-buildpackage in a copy of the
# tree ($O/deb-build/certsync-VERSION), so that the tree and its out/ stay as they are.
# The .deb files (and the .buildinfo and .changes) end up in $O/deb/, the packages of
# their debug symbols in $O/deb/debug/.
#
# DEB_BUILD_OPTIONS is passed on (nocheck: no unit tests during the build).
set -euo pipefail

: "${O:=out}"
src=$(cd "$(dirname "$0")/.." && pwd)
cd "$src"
die() { echo "make deb: $*" >&2; exit 1; }

command -v dpkg-buildpackage >/dev/null || die "dpkg-buildpackage is missing: make deps (or apt-get install dpkg-dev debhelper)"
version=$(dpkg-parsechangelog -S Version)
build=$O/deb-build
copy=$build/certsync-$version

rm -rf "$build" && mkdir -p "$copy" "$O/deb"
tar -C "$src" --exclude=./out --exclude="./$O" --exclude=./.git -cf - . | tar -C "$copy" -xf -
echo "make deb: building certsync $version in $copy"
(cd "$copy" && dpkg-buildpackage -us -uc -b) > "$build/build.log" 2>&1 ||
    { tail -40 "$build/build.log" >&2; die "dpkg-buildpackage failed (the whole log: $build/build.log)"; }

# out/deb/*.deb: the three packages; their debug symbols apart, in out/deb/debug/
rm -rf "$O"/deb/*.deb "$O"/deb/*.buildinfo "$O"/deb/*.changes "$O/deb/debug"
mkdir -p "$O/deb/debug"
mv "$build"/*-dbgsym_*.deb "$O/deb/debug/"
mv "$build"/*.deb "$build"/*.buildinfo "$build"/*.changes "$O/deb/"
rm -rf "$copy"
ls -l "$O"/deb/*.deb
