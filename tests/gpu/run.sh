#!/usr/bin/env bash
# The project's read-only check on a real NVIDIA GPU. READ-ONLY: it never changes a GPU setting.
# nvidia_gpu runs in check mode only; there are no persistence, clock, power-limit, compute-mode,
# ECC or MIG writes, no GPU reset, no package change and no pip install from the network.
#
# What it runs (ansible-playbook against localhost, connection local, this checkout's collection):
#   gpu_facts, compared field by field with `nvidia-smi -q -x` (product name, UUID, PCI bus id,
#   VBIOS, driver and CUDA versions, memory, persistence, compute mode, ECC and MIG modes current and
#   pending, PCIe max generation and widths, power limits, max and application clocks);
#   nvidia_gpu in check mode with the GPU settings of inventories/example's profile;
#   the validate gate (gpu_validate in check mode), with its performance checks when a python with
#   torch is found; then one summary. Exit 0 when all agree and the gate passes, 1 otherwise.
# On a machine without an NVIDIA GPU and a loaded driver it says so and exits 0.
#
# Environment:
#   DLNODE_GPU_PYTHON   the python that runs Ansible and the modules (default python3); it needs
#                       ansible-core, PyYAML, Jinja2 and nvidia-ml-py (pynvml).
#   DLNODE_WHEELS       a directory of wheels for what that python lacks, installed offline
#                       (pip --no-index --no-deps) into a temporary directory put on PYTHONPATH:
#                       ansible-core, resolvelib, cryptography, cffi, pycparser (and nvidia-ml-py,
#                       jinja2, PyYAML, MarkupSafe, packaging where missing).
#   DLNODE_TORCH_PYTHON a python with torch for the performance checks; unset, python3 is tried,
#                       and without torch they skip with that reason.
#   DLNODE_GPU_PROFILE  the example inventory's profile: h100_training (default) or l4_inference.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
checkout=$(cd "$here/../.." && pwd)
python=${DLNODE_GPU_PYTHON:-python3}

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "dlnode GPU checks: skipped: no NVIDIA GPU with a loaded driver (nvidia-smi missing or failing)"
  exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/dlnode-gpu-run.XXXXXX")
trap 'rm -rf "$work"' EXIT

# This checkout as the collection dlnode.gpu, without installing it anywhere.
mkdir -p "$work/collections/ansible_collections/dlnode"
ln -s "$checkout" "$work/collections/ansible_collections/dlnode/gpu"
export ANSIBLE_COLLECTIONS_PATH="$work/collections"

if [ -n "${DLNODE_WHEELS:-}" ]; then
  "$python" -m pip install --quiet --no-index --no-deps --target "$work/site" "$DLNODE_WHEELS"/*.whl
  export PYTHONPATH="$work/site${PYTHONPATH:+:$PYTHONPATH}"
fi
missing=$("$python" - <<'PY'
import importlib.util
print(" ".join(name for name, module in (("ansible-core", "ansible"), ("PyYAML", "yaml"), ("Jinja2", "jinja2"),
                                         ("nvidia-ml-py", "pynvml")) if importlib.util.find_spec(module) is None))
PY
)
if [ -n "$missing" ]; then
  echo "dlnode GPU checks: $python lacks $missing; give their wheels in DLNODE_WHEELS (offline: nothing is downloaded)" >&2
  exit 2
fi

exec "$python" "$here/gpu_check.py" --python "$(command -v "$python" || echo "$python")"
