#!/usr/bin/env bash
# A Debian 12 virtual machine node for what a container cannot show: this machine's kernel
# reads no partition tables and has no md driver, a VM's Debian kernel has both.
#   tests/images/vm.sh build   root disk, kernel and initrd from the node image (rebuilt only
#                              when this recipe changes), with Debian's linux-image-amd64,
#                              openssh-server, the disk tools and GRUB's update-grub, root login by key
#   tests/images/vm.sh boot    start it in the background (root disk in snapshot mode: every
#                              boot starts from the same fresh disk) and wait for SSH
#   tests/images/vm.sh stop    power it off (ACPI, then kill)
# Runs under QEMU's software emulation (TCG): /dev/kvm on these machines is a nested PVM
# hypervisor that cannot boot a Debian kernel. VM_ACCEL=kvm uses KVM where it works.
set -euo pipefail
dir=${DLNODE_VM_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/.cache/vm}
port=${DLNODE_VM_PORT:-2222}
base=dlnode/node:debian12
recipe=$(sha256sum "$0" | cut -c1-16)
mkdir -p "$dir"
cd "$dir"

ssh_vm() {
  ssh -i id_ed25519 -p "$port" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
      -o ConnectTimeout=3 -o LogLevel=ERROR -o BatchMode=yes root@127.0.0.1 "$@"
}

need_qemu() {
  command -v qemu-system-x86_64 >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ]; then
    echo "vm: installing Debian's qemu-system-x86"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null
  else
    echo "vm: qemu-system-x86_64 is missing: install it (Debian package qemu-system-x86)" >&2
    exit 1
  fi
}

build() {
  need_qemu
  if [ "$(cat recipe 2>/dev/null)" = "$recipe" ] && [ -f root.raw ]; then
    return 0
  fi
  echo "vm: building the VM disk from $base, recipe $recipe"
  rm -f recipe root.raw vmlinuz initrd.img id_ed25519 id_ed25519.pub
  ssh-keygen -q -t ed25519 -N '' -C dlnode-vm -f id_ed25519
  docker rm -f dlnode-vm-build >/dev/null 2>&1 || true
  docker create --name dlnode-vm-build --entrypoint sleep "$base" infinity >/dev/null
  docker start dlnode-vm-build >/dev/null
  docker cp id_ed25519.pub dlnode-vm-build:/tmp/authorized_keys
  docker exec -i -e DEBIAN_FRONTEND=noninteractive dlnode-vm-build bash -euo pipefail <<'IN'
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
apt-get -qq update
# The disk tools the storage role installs are there already: a run under emulation is slow.
apt-get -qq install -y --no-install-recommends linux-image-amd64 initramfs-tools udev kmod dbus \
  openssh-server iproute2 mdadm xfsprogs e2fsprogs fdisk grub2-common >/dev/null
# GRUB's configuration tools as on a server (grub-install made /boot/grub there); the VM itself
# boots its kernel directly.
mkdir -p /boot/grub
rm -f /usr/sbin/policy-rc.d
echo '/dev/vda / ext4 rw,errors=remount-ro 0 1' > /etc/fstab
: > /etc/machine-id
mkdir -p /etc/systemd/network
printf '[Match]\nName=en*\n\n[Network]\nDHCP=yes\n' > /etc/systemd/network/20-wired.network
systemctl enable systemd-networkd.service ssh.service >/dev/null 2>&1
systemctl disable systemd-networkd-wait-online.service >/dev/null 2>&1 || true
install -d -m 700 /root/.ssh
install -m 600 /tmp/authorized_keys /root/.ssh/authorized_keys
printf 'PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n' > /etc/ssh/sshd_config.d/dlnode.conf
rm -f /etc/ssh/ssh_host_* && ssh-keygen -A
# A small initramfs unpacks fast under emulation: the listed modules (and mdadm's own).
printf 'virtio_pci\nvirtio_blk\nvirtio_net\next4\ncrc32c_generic\n' >> /etc/initramfs-tools/modules
sed -i 's/^MODULES=.*/MODULES=list/' /etc/initramfs-tools/initramfs.conf
update-initramfs -u -k all >/dev/null 2>&1
rm -f /var/cache/apt/archives/*.deb
IN
  docker stop -t 1 dlnode-vm-build >/dev/null
  rm -rf rootfs && mkdir rootfs
  docker export dlnode-vm-build | tar -C rootfs -xpf - --numeric-owner
  docker rm dlnode-vm-build >/dev/null
  # Docker bind-mounts these into a container; the VM gets its own.
  rm -f rootfs/.dockerenv
  echo 'nameserver 10.0.2.3' > rootfs/etc/resolv.conf
  echo dlnode-vm > rootfs/etc/hostname
  kernel=$(ls rootfs/lib/modules | sort -V | tail -n 1)
  cp "rootfs/boot/vmlinuz-$kernel" vmlinuz
  cp "rootfs/boot/initrd.img-$kernel" initrd.img
  mkfs.ext4 -q -F -L dlroot -d rootfs root.raw 3G
  rm -rf rootfs
  echo "$recipe" > recipe
}

boot() {
  if [ -f qemu.pid ] && kill -0 "$(cat qemu.pid)" 2>/dev/null; then
    echo "vm: already running (pid $(cat qemu.pid))" >&2
    exit 1
  fi
  if [ "${VM_ACCEL:-tcg}" = kvm ]; then accel=(-accel kvm -cpu host); else accel=(-accel tcg,thread=multi -cpu max); fi
  rm -f serial.log
  qemu-system-x86_64 "${accel[@]}" -m 1024 -smp 2 -nodefaults -display none -no-reboot \
    -kernel vmlinuz -initrd initrd.img -append "root=/dev/vda rw console=ttyS0 panic=-1" \
    -drive file=root.raw,format=raw,if=virtio,snapshot=on,cache=unsafe \
    -netdev user,id=n0,hostfwd=tcp:127.0.0.1:"$port"-:22 -device virtio-net-pci,netdev=n0 \
    -device virtio-rng-pci -serial file:serial.log -pidfile qemu.pid -daemonize
  for _ in $(seq 1 300); do
    if ssh_vm true 2>/dev/null; then
      return 0
    fi
    kill -0 "$(cat qemu.pid)" 2>/dev/null || { echo "vm: qemu exited" >&2; tail -n 30 serial.log >&2; exit 1; }
    sleep 1
  done
  echo "vm: no SSH after 300 s" >&2
  tail -n 30 serial.log >&2
  exit 1
}

stop() {
  [ -f qemu.pid ] || return 0
  pid=$(cat qemu.pid)
  ssh_vm 'systemctl poweroff' 2>/dev/null || true
  for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  kill "$pid" 2>/dev/null || true
  rm -f qemu.pid
}

case ${1:-} in
  build) build ;;
  boot) boot ;;
  stop) stop ;;
  *) echo "usage: $0 build|boot|stop" >&2; exit 2 ;;
esac
