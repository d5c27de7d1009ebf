#!/usr/bin/env bash
# Build the Debian 12 node images the Molecule scenarios and the demo boot: systemd as PID 1
# and python3, from Debian's archive (Docker Hub is not reachable here). Both carry the hash
# of this recipe as a label and are rebuilt only when the recipe changes.
#   dlnode/node:debian12-bare  debootstrap minbase with systemd and python3, as an operator's
#                              fresh server: no python3-apt, which apt's check mode needs
#   dlnode/node:debian12       the same with python3-apt
# Usage: tests/images/build.sh
set -euo pipefail
full=dlnode/node:debian12
bare=dlnode/node:debian12-bare
recipe=$(sha256sum "$0" | cut -c1-16)
suite=bookworm
packages=systemd,systemd-sysv,python3,sudo,udev,kmod,procps,iproute2,ca-certificates

label() {
  docker image inspect -f '{{ index .Config.Labels "dlnode.recipe" }}' "$1" 2>/dev/null || true
}
if [ "$(label "$full")" = "$recipe" ] && [ "$(label "$bare")" = "$recipe" ]; then
  exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  else
    echo "images: debootstrap is missing: install it (Debian package debootstrap) and run again as root" >&2
    exit 1
  fi
fi

# The machine's own Debian mirror: the one its apt already reaches.
mirror=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null \
  | grep -oE "https?://[^ ]+" | head -n 1 || true)
mirror=${mirror:-http://deb.debian.org/debian}

rootfs=$(mktemp -d /var/tmp/dlnode-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
quietly() {  # quietly COMMAND...: its output (apt's chatter in a chroot) only if it fails
  local out
  if ! out=$("$@" 2>&1); then
    printf '%s\n' "$out" >&2
    echo "images: failed: $*" >&2
    exit 1
  fi
}
echo "images: building $bare and $full from $suite ($mirror), recipe $recipe"
debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" >/dev/null
# The same archive the machine uses, with updates.
cat > "$rootfs/etc/apt/sources.list" <<LIST
deb $mirror $suite main
deb $mirror $suite-updates main
LIST
# Package lists as a server has them, so a check-mode run can resolve packages.
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
quietly chroot "$rootfs" apt-get -qq update
# A node has an empty machine-id, filled at first boot like a real server.
: > "$rootfs/etc/machine-id"

save() {  # save IMAGE: the rootfs as it is now, with an empty package cache
  rm -f "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin
  tar -C "$rootfs" -c . | docker import \
    -c 'CMD ["/lib/systemd/systemd"]' \
    -c 'ENV container=docker' \
    -c "LABEL dlnode.recipe=$recipe" \
    - "$1" >/dev/null
  echo "images: $1 ready"
}
save "$bare"
quietly chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive apt-get -qq install --no-install-recommends python3-apt
save "$full"
