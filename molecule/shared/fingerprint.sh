#!/bin/sh
# What a node's configuration looks like, for proving that a check-mode run changed nothing:
# installed packages (dpkg or rpm), the package lists, every file under /etc, unit states, mounts,
# swap, what the node's disks hold, and the kernel settings given as arguments (globs, from
# knobs.txt). Volatile values (counters, timestamps of live files) are left out on purpose.
# Usage: fingerprint.sh GLOB...
if command -v dpkg-query >/dev/null 2>&1; then
  dpkg-query -W -f '${db:Status-Abbrev} ${Package} ${Version} ${Architecture}\n' | sort
elif command -v rpm >/dev/null 2>&1; then
  rpm -qa --qf '%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE} %{ARCH}\n' | sort
fi
find /var/lib/apt/lists /var/cache/dnf -maxdepth 1 -type f ! -name lock -printf '%p %s %T@\n' 2>/dev/null | sort
find /etc -xdev -printf '%p %y %m %u %g %l\n' | sort
find /etc -xdev -type f -exec md5sum {} + | sort -k2
systemctl list-unit-files --no-legend --no-pager | sort
findmnt -rn -o TARGET,SOURCE,FSTYPE,OPTIONS | sort
cat /proc/swaps
find / /srv -maxdepth 2 -xdev -regextype egrep ! -regex '/(proc|sys|dev|run|tmp|var|usr)(/.*)?' -printf '%p %y %m %s\n' 2>/dev/null | sort
for glob in "$@"; do
  # shellcheck disable=SC2086  # the glob expands here, on the node
  for knob in $glob; do
    if value=$(tr '\n' ' ' 2>/dev/null < "$knob"); then echo "$knob $value"; fi
  done
done
for dev in /dev/loop* /dev/md* /dev/nvme* /dev/sd*; do
  if [ -b "$dev" ]; then echo "$dev $(blkid -p -o export "$dev" 2>/dev/null | tr '\n' ' ')"; fi
done
