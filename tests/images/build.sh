#!/usr/bin/env bash
# Build the Debian 12 node image the Molecule scenarios and the demo boot: systemd as PID 1
# and python3, from Debian's archive (Docker Hub is not reachable here). The image carries
# the hash of this recipe as a label and is rebuilt only when the recipe changes.
# Usage: tests/images/build.sh [IMAGE]   (default dlnode/node:debian12)
set -euo pipefail
image=${1:-dlnode/node:debian12}
recipe=$(sha256sum "$0" | cut -c1-16)
suite=bookworm
packages=systemd,systemd-sysv,python3,python3-apt,sudo,udev,kmod,procps,iproute2,ca-certificates

have=$(docker image inspect -f '{{ index .Config.Labels "dlnode.recipe" }}' "$image" 2>/dev/null || true)
if [ "$have" = "$recipe" ]; then
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
echo "images: building $image from $suite ($mirror), recipe $recipe"
debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" >/dev/null
# The same archive the machine uses, with updates and security, and an empty apt cache.
cat > "$rootfs/etc/apt/sources.list" <<LIST
deb $mirror $suite main
deb $mirror $suite-updates main
LIST
# Package lists as a server has them, so a check-mode run can resolve packages.
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
chroot "$rootfs" apt-get -qq update
rm -f "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin
# A node has an empty machine-id, filled at first boot like a real server.
: > "$rootfs/etc/machine-id"
tar -C "$rootfs" -c . | docker import \
  -c 'CMD ["/lib/systemd/systemd"]' \
  -c 'ENV container=docker' \
  -c "LABEL dlnode.recipe=$recipe" \
  - "$image" >/dev/null
echo "images: $image ready"
