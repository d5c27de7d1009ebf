#!/bin/sh
# Runs on the controller, which is the Docker host: the nodes share its kernel and its loop devices.
# One sparse file per test device (mkfs.xfs needs 300 MB), attached here so that the kernel records
# the backing files as /var/tmp/dlnode-... and the shared destroy detaches them. Two of them
# already hold an ext4 filesystem with a file on it, as a disk with someone's data would.
# Every run starts from new files. Prints {"devices": {role: loopN}, "payload_sha256": ...}.
set -eu
dir=/var/tmp/dlnode-molecule/storage
mkdir -p "$dir/payload"
head -c 1048576 /dev/urandom > "$dir/payload/dataset.bin"
out=""
for role in data scratch swap foreign wipe blank; do
  file="$dir/$role.img"
  for old in $(losetup -j "$file" -O NAME -n); do losetup -d "$old"; done
  rm -f "$file"
  truncate -s 512M "$file"
  case $role in
    foreign|wipe) mkfs.ext4 -q -F -L "$role" -d "$dir/payload" "$file" ;;
  esac
  dev=$(losetup -f --show "$file")
  out="$out${out:+, }\"$role\": \"${dev#/dev/}\""
done
sum=$(sha256sum "$dir/payload/dataset.bin" | cut -d' ' -f1)
echo "{\"devices\": {$out}, \"payload_sha256\": \"$sum\"}"
