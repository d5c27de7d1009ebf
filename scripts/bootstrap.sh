#!/usr/bin/env bash
# Build .venv with the pinned toolchain. Prefers a Python >= 3.12 that really runs
# (ansible-core 2.21); falls back to Python 3.11 with ansible-core 2.19.
# Rebuilt only when the chosen requirements file or the interpreter changes.
# DLNODE_PYTHON=/path/to/python forces an interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${DLNODE_VENV:-.venv}

works() {  # works PYTHON MIN_MINOR: runs, has venv, and is 3.MIN_MINOR or newer
  "$1" -c "import sys, venv; sys.exit(0 if sys.version_info >= (3, $2) else 1)" >/dev/null 2>&1
}

base_of() {  # the interpreter itself, also when a venv (this one included) is first on PATH
  "$1" -c 'import sys; print(sys._base_executable)'
}

candidates() {
  if [ -n "${DLNODE_PYTHON:-}" ]; then
    echo "$DLNODE_PYTHON"
    return
  fi
  for v in 3.12 3.13 3.14; do
    command -v "python$v" || true
    if command -v pyenv >/dev/null 2>&1; then
      ls -d "$(pyenv root)/versions/$v".*/bin/"python$v" 2>/dev/null | sort -V | tail -n 1 || true
    fi
  done
  command -v python3 || true
}

python=""
for c in $(candidates); do
  if works "$c" 12; then python=$(base_of "$c"); break; fi
done
if [ -n "$python" ]; then
  reqs=requirements.txt
else
  for c in $(candidates); do
    if works "$c" 11; then python=$(base_of "$c"); break; fi
  done
  reqs=requirements-py311.txt
fi
if [ -z "$python" ]; then
  echo "bootstrap: no usable Python found: need Python >= 3.12 (or 3.11) with the venv module;" >&2
  echo "           set DLNODE_PYTHON=/path/to/python3.12" >&2
  exit 1
fi

stamp="$python $("$python" -V 2>&1) $(sha256sum "$reqs" | cut -c1-16)"
if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.stamp" 2>/dev/null)" = "$stamp" ]; then
  exit 0
fi
echo "bootstrap: building $venv with $("$python" -V 2>&1) from $reqs"
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$reqs"
echo "$stamp" > "$venv/.stamp"
"$venv/bin/ansible" --version | sed -n 1p
