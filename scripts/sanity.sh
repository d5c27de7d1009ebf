#!/usr/bin/env bash
# ansible-test sanity on the collection, all tests, with the empty ignore files in tests/sanity/.
# ansible-test needs the collection under ansible_collections/dlnode/gpu and installs its pinned
# linters into the Python it runs with: that is a venv of its own (.venv-sanity-X.Y), not .venv.
# DLNODE_VENV=DIR runs it with the ansible-core of another toolchain venv.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${DLNODE_VENV:-.venv}
base=$("$venv"/bin/python -c 'import sys; print(sys._base_executable)')
pyver=$("$venv"/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
core=$("$venv"/bin/python -m pip freeze --disable-pip-version-check | grep -i '^ansible-core==')
venv_sanity=$PWD/.venv-sanity-$pyver

if [ "$(cat "$venv_sanity"/.stamp 2>/dev/null)" != "$base $core" ]; then
  rm -rf "$venv_sanity"
  "$base" -m venv "$venv_sanity"
  "$venv_sanity"/bin/python -m pip install -q --disable-pip-version-check "$core"
  echo "$base $core" > "$venv_sanity"/.stamp
fi

# ansible-test fetches a pip bootstrap script from a host these machines cannot reach; the
# stdlib's ensurepip does the same job.
pip_version=$("$venv_sanity"/bin/python - <<'PY'
import re, ansible_test, pathlib
src = (pathlib.Path(ansible_test.__file__).parent / "_internal/python_requirements.py").read_text()
print(re.search(r"pip='([0-9.]+)'", src).group(1))
PY
)
cache=~/.ansible/test/cache/get_pip_${pip_version//./_}.py
mkdir -p "$(dirname "$cache")"
printf 'import ensurepip\nensurepip.bootstrap(upgrade=True)\n' > "$cache"

# Outside this repository: inside it, ansible-test lists files with git and skips ignored ones.
tree=${TMPDIR:-/tmp}/dlnode-sanity/ansible_collections/dlnode/gpu
rm -rf "$tree" && mkdir -p "$tree"
git ls-files -co --exclude-standard | grep -vE '^(molecule|\.config)/' | tar -cf - -T - | tar -C "$tree" -xf -
cd "$tree"
"$venv_sanity/bin/ansible-test" sanity --local --python "$pyver" --requirements --color no "$@"
