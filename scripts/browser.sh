#!/usr/bin/env bash
# Make sure Debian's chromium is here: a unit test opens the validate role's HTML fleet report in a real
# headless browser. On a Debian-family machine, as root, install it; otherwise say what is missing.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || [ ! -f /etc/debian_version ]; then
  echo "browser: chromium is missing and this script installs it only as root on Debian: install Debian's chromium" \
    "(the HTML report's test is skipped without it)" >&2
  exit 1
fi
echo "browser: installing Debian's chromium"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
