#!/usr/bin/env bash
# Make sure a Docker daemon answers. On a Debian-family machine, as root, with no daemon
# reachable, install Debian's docker.io and start dockerd (these machines have no systemd
# as PID 1, so it is started directly). Otherwise say exactly what is missing.
set -euo pipefail
log=/var/log/dlnode-dockerd.log

if docker info >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "docker: no Docker daemon reachable and not root: start dockerd, or run as root to let this script install and start it" >&2
  exit 1
fi
if [ ! -f /etc/debian_version ]; then
  echo "docker: no Docker daemon reachable; this script installs one only on Debian-family machines: install and start Docker yourself" >&2
  exit 1
fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "docker: installing Debian's docker.io"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null
fi
if [ -d /run/systemd/system ]; then
  systemctl start docker
else
  echo "docker: starting dockerd (log: $log)"
  setsid nohup dockerd >"$log" 2>&1 < /dev/null &
fi
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    exit 0
  fi
  sleep 1
done
echo "docker: dockerd did not answer within 60 s; see $log" >&2
exit 1
