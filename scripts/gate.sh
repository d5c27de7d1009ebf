#!/usr/bin/env bash
# Run a command, showing its output as it comes and keeping it in LOG, and fail a run that passed
# but printed what nobody may ignore:
#   CRITICAL                whoever reads the log takes it at its word: the cause goes, not the line;
#   [DEPRECATION WARNING]   what ansible-core deprecates today stops working in a later release
#                           (top-level ansible_* facts stop in 2.24);
#   Failed to connect to bus  systemd asked before it answers (a node not yet booted): an error
#                           an operator would see without a reason.
# Usage: scripts/gate.sh LOG COMMAND [ARG...]
set -euo pipefail
log=$1
shift
mkdir -p "$(dirname "$log")"
# A user's ansible.cfg must not hide them.
export ANSIBLE_DEPRECATION_WARNINGS=True
# Through tee the command writes to a pipe: keep Ansible's colours where we write to a terminal.
if [ -t 1 ]; then
  export ANSIBLE_FORCE_COLOR=1
fi
"$@" 2>&1 | tee "$log"
plain=$(sed 's/\x1b\[[0-9;]*m//g' "$log")
status=0
# Molecule's log lines start with their level.
if grep -E '^[[:space:]]*CRITICAL\b' <<<"$plain" >&2; then
  echo "gate: '$*' passed but printed the CRITICAL line(s) above: remove their cause (whole output: $log)" >&2
  status=1
fi
if grep -n -A7 '\[DEPRECATION WARNING\]' <<<"$plain" >&2; then
  echo "gate: '$*' printed the deprecation warning(s) above (whole output: $log)" >&2
  status=1
fi
if grep -n 'Failed to connect to bus' <<<"$plain" >&2; then
  echo "gate: '$*' printed the D-Bus error(s) above: something asks systemd before the node has booted (whole output: $log)" >&2
  status=1
fi
exit "$status"
