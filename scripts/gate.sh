#!/usr/bin/env bash
# Run a command, showing its output as it comes, and fail when a line of it says CRITICAL although
# the command passed: whoever reads the log takes it at its word, so the cause goes, not the line.
# Usage: scripts/gate.sh COMMAND [ARG...]
set -euo pipefail
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Through tee the command writes to a pipe: keep Ansible's colours where we write to a terminal.
if [ -t 1 ]; then
  export ANSIBLE_FORCE_COLOR=1
fi
"$@" 2>&1 | tee "$log"
# Molecule's log lines start with their level, coloured when it writes to a terminal.
if sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E '^[[:space:]]*CRITICAL\b' >&2; then
  echo "gate: '$*' passed but printed the CRITICAL line(s) above: remove their cause" >&2
  exit 1
fi
