#!/bin/sh
# What a node's configuration looks like, for proving that a check-mode run changed nothing:
# packages, every file under /etc, unit states, mounts, swap, and the kernel settings the
# roles manage, and what the node's disks hold. Volatile values (counters, timestamps) are left out on purpose.
md5sum /var/lib/dpkg/status
find /etc -xdev -printf '%p %y %m %u %g %l\n' | sort
find /etc -xdev -type f -exec md5sum {} + | sort -k2
systemctl list-unit-files --no-legend --no-pager | sort
findmnt -rn -o TARGET,SOURCE,FSTYPE,OPTIONS | sort
cat /proc/swaps
find / /srv -maxdepth 2 -xdev -regextype egrep ! -regex '/(proc|sys|dev|run|tmp|var|usr)(/.*)?' -printf '%p %y %m %s\n' 2>/dev/null | sort
sysctl vm kernel.numa_balancing fs.file-max fs.nr_open fs.inotify net.core net.ipv4.tcp_rmem net.ipv4.tcp_wmem 2>/dev/null | sort
cat /sys/kernel/mm/transparent_hugepage/enabled /sys/kernel/mm/transparent_hugepage/defrag
for q in /sys/block/*/queue; do echo "$q $(cat "$q/scheduler" "$q/read_ahead_kb" 2>/dev/null | tr '\n' ' ')"; done
for dev in /dev/loop* /dev/md* /dev/nvme* /dev/sd*; do
  if [ -b "$dev" ]; then echo "$dev $(blkid -p -o export "$dev" 2>/dev/null | tr '\n' ' ')"; fi
done
