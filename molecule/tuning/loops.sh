#!/bin/sh
# Runs on the controller, which is the Docker host: the nodes share its kernel and its loop devices.
# Attach one 64 MiB sparse file per device class and print {class: [loopN]}. Attached here, the
# kernel records the backing files as /var/tmp/dlnode-..., so the shared destroy detaches them
# (attached inside a node, the host would see them as /nvme.img, relative to the node's bind mount).
set -eu
dir=/var/tmp/dlnode-molecule/tuning
mkdir -p "$dir"
out=""
for class in nvme ssd hdd; do
  file="$dir/$class.img"
  [ -f "$file" ] || truncate -s 64M "$file"
  dev=$(losetup -j "$file" -O NAME -n | head -n1)
  [ -n "$dev" ] || dev=$(losetup -f --show "$file")
  out="$out${out:+, }\"$class\": [\"${dev#/dev/}\"]"
done
echo "{$out}"
