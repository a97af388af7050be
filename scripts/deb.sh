#!/usr/bin/env bash
# Builds Portrait's Debian package with dpkg-deb: target/debian/portrait_<version>_<arch>.deb.
#
#   bash scripts/deb.sh            # builds the release binary first (cargo build --release)
#   PORTRAIT_BIN=path bash scripts/deb.sh   # packages an already built binary
#
# What it installs (packaging/deb/ holds the pieces):
#   /usr/bin/portrait                      the binary
#   /lib/systemd/system/portrait.service   runs `portrait serve` as the system user `portrait`
#   /etc/portrait/portrait.toml            settings (a conffile: upgrades keep local edits)
#   /var/lib/portrait                      data, owned by `portrait` (made by postinst)
#   /usr/share/doc/portrait/               README, the commented example configuration
# The maintainer scripts create the user and the data directory and, where systemd runs,
# enable and start the service. Prints the package's path as its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

if [ -z "${PORTRAIT_BIN:-}" ]; then
  cargo build --release --locked -q -p portrait
  PORTRAIT_BIN="$root/target/release/portrait"
fi
[ -x "$PORTRAIT_BIN" ] || { echo "error: no executable at $PORTRAIT_BIN" >&2; exit 1; }

version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)"
arch="$(dpkg --print-architecture)"
out="$root/target/debian"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT

install -D -m 0755 "$PORTRAIT_BIN" "$stage/usr/bin/portrait"
strip --strip-unneeded "$stage/usr/bin/portrait" 2>/dev/null || true
install -D -m 0644 packaging/deb/portrait.service "$stage/lib/systemd/system/portrait.service"
install -D -m 0640 packaging/deb/portrait.toml "$stage/etc/portrait/portrait.toml"
install -D -m 0644 README.md "$stage/usr/share/doc/portrait/README.md"
install -D -m 0644 portrait.example.toml "$stage/usr/share/doc/portrait/portrait.example.toml"
install -D -m 0644 docs/deployment.md "$stage/usr/share/doc/portrait/deployment.md"
cat >"$stage/usr/share/doc/portrait/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: portrait
License: Apache-2.0
 On Debian systems, the full text is in /usr/share/common-licenses/Apache-2.0.
COPYRIGHT

install -d "$stage/DEBIAN"
install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$stage/DEBIAN/"
echo /etc/portrait/portrait.toml >"$stage/DEBIAN/conffiles"
size_kib="$(du -sk --exclude=DEBIAN "$stage" | cut -f1)"
cat >"$stage/DEBIAN/control" <<CONTROL
Package: portrait
Version: $version
Architecture: $arch
Maintainer: Portrait developers <portrait@localhost>
Installed-Size: $size_kib
Depends: libc6 (>= 2.34), libgcc-s1, adduser
Section: net
Priority: optional
Description: self-hosted user-profile service for chat applications
 Portrait stores every chat user's nickname, avatar, gender, signature and
 custom fields, serves them over the same REST API as Tencent Cloud IM, and
 pushes every change to the devices that show it over a WebSocket.
 .
 This package runs one node on the embedded store as the systemd service
 portrait (settings in /etc/portrait, data in /var/lib/portrait).
CONTROL

mkdir -p "$out"
deb="$out/portrait_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
