"""tests/gpu/run.sh without a GPU: the real ansible-playbook run against the fake NVML and a fake nvidia-smi.

The fake NVML (tests/unit/fake_nvml.py, the real H100's values) reaches the modules of a real
ansible-playbook run as a module named pynvml first on PYTHONPATH; the fake nvidia-smi prints the same
H100's real `nvidia-smi -q -x` dump and logs every call, so the test proves nothing but reads ran.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import nvml
from ansible_collections.dlnode.gpu.plugins.modules import gpu_facts
from ansible_collections.dlnode.gpu.tests.gpu import gpu_check
from ansible_collections.dlnode.gpu.tests.unit import fake_nvml
from ansible_collections.dlnode.gpu.tests.unit import fake_pci

CHECKOUT = Path(__file__).resolve().parents[3]
RUN = CHECKOUT / "tests" / "gpu" / "run.sh"
SMI_XML = fake_nvml.FIXTURES / "nvidia-smi-q.xml"
BENCH = fake_nvml.load_probe()["bench"]

PYNVML_SHIM = """\
# The fake NVML as the module pynvml, for a real ansible-playbook run (tests/unit/gpu/test_run.py).
import importlib.util as _util
_spec = _util.spec_from_file_location("fake_nvml", {fake!r})
_fake = _util.module_from_spec(_spec)
_spec.loader.exec_module(_fake)
_lib = _fake.FakePynvml()
NVMLError = _fake.NVMLError
{writes}


def __getattr__(name):
    return getattr(_lib, name)
"""
# Any NVML write fails loudly in the shim: a read-only run must not reach one.
NO_WRITES = "_lib.write_error = _fake.NO_PERMISSION"

FAKE_SMI = """#!/bin/sh
echo "$*" >> {log}
case "$*" in
  "-L") echo "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0ad4414f-aa1d-07b8-b043-5bc8e52d2e4b)" ;;
  "-q -x") cat {xml} ;;
  "topo -m") printf '\\tGPU0\\tCPU Affinity\\tNUMA Affinity\\nGPU0\\t X \\t0-15\\t0\\n' ;;
  *) echo "fake nvidia-smi: unexpected $*" >&2; exit 3 ;;
esac
"""

FAKE_TORCH = """#!/bin/sh
# A python with torch, as far as the gate's benchmark sees: the H100's measured figures.
echo "loading torch"
echo '{figures}'
"""


def _bench_json():
    return json.dumps({"torch_version": BENCH["torch_version"], "errors": [], "gpus": [{
        "index": 0, "name": BENCH["device_name"], "bf16_tflops": BENCH["bf16_matmul_8192_tflops"],
        "tf32_tflops": BENCH["tf32_matmul_8192_tflops"], "memcpy_gbps": BENCH["d2d_copy_GBps_rw"],
        "h2d_gbps": BENCH["h2d_pinned_GBps"], "d2h_gbps": BENCH["d2h_pinned_GBps"]}]})


def _executable(path, text):
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)
    return path


@pytest.fixture
def gpu_machine(tmp_path):
    """(env, smi log): PATH with the fake nvidia-smi, PYTHONPATH with the fake NVML, a fake torch python."""
    bin_dir, shim = tmp_path / "bin", tmp_path / "shim"
    bin_dir.mkdir()
    shim.mkdir()
    log = tmp_path / "nvidia-smi.log"
    xml = tmp_path / "nvidia-smi-q.xml"
    xml.write_text(SMI_XML.read_text(encoding="utf-8"), encoding="utf-8")
    _executable(bin_dir / "nvidia-smi", FAKE_SMI.format(log=log, xml=xml))
    torch = _executable(bin_dir / "torch-python", FAKE_TORCH.format(figures=_bench_json()))
    (shim / "pynvml.py").write_text(PYNVML_SHIM.format(fake=str(CHECKOUT / "tests/unit/fake_nvml.py"),
                                                       writes=NO_WRITES), encoding="utf-8")
    env = dict(os.environ, PATH=f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin", PYTHONPATH=str(shim),
               DLNODE_GPU_PYTHON=sys.executable, DLNODE_TORCH_PYTHON=str(torch), TMPDIR=str(tmp_path))
    for name in ("ANSIBLE_COLLECTIONS_PATH", "DLNODE_WHEELS", "DLNODE_GPU_PROFILE"):
        env.pop(name, None)
    return {"env": env, "log": log, "xml": xml}


def run(env):
    done = subprocess.run([str(RUN)], env=env, capture_output=True, text=True, timeout=300, check=False)
    return done.returncode, done.stdout + done.stderr


def test_the_h100_agrees_with_nvidia_smi_and_passes_the_gate(gpu_machine):
    rc, output = run(gpu_machine["env"])
    assert rc == 0, output
    lines = output.splitlines()
    assert "dlnode GPU checks (read-only), profile h100_training, torch python: " in output
    compared = next(line for line in lines if line.startswith("gpu_facts vs nvidia-smi -q -x:"))
    agree, total = compared.split(": ")[1].split()[0].split("/")
    assert agree == total and int(total) >= 25, compared
    assert "MISMATCH" not in output
    # The example inventory's H100 settings (persistence on, compute mode default, ECC on, MIG off)
    # are what the H100 has: a check run plans no change.
    assert "nvidia_gpu (check mode, nothing written): changed=False" in output, output
    assert "  gpu 0: as declared" in output, output
    assert next(line for line in lines if line.startswith("validate gate: ")).startswith("validate gate: PASS"), output
    assert "pass gpu0.bf16_tflops: 788.8 (expected 670.6)" in output, output
    assert "the profile h100_training expects 8 GPUs; this machine has 1" in output
    assert "  skipped: hugepages, io_schedulers, sysctl, memlock (node checks: this machine is not a configured node)" \
        in output, output
    assert lines[-1] == "dlnode GPU checks: PASS"
    # nvidia-smi was only asked to print.
    assert set(gpu_machine["log"].read_text(encoding="utf-8").splitlines()) == {"-L", "-q -x", "topo -m"}


def test_a_field_nvidia_smi_reads_differently_is_named(gpu_machine):
    xml = gpu_machine["xml"]
    xml.write_text(xml.read_text(encoding="utf-8").replace("<total>81559 MiB</total>", "<total>40960 MiB</total>", 1),
                   encoding="utf-8")
    rc, output = run(gpu_machine["env"])
    assert rc == 1, output
    assert "MISMATCH gpu 0 memory_total_mib: gpu_facts 81559, nvidia-smi 40960" in output, output
    assert output.splitlines()[-1] == "dlnode GPU checks: FAIL"


def test_a_slow_gpu_fails_the_gate_with_its_figure(gpu_machine, tmp_path):
    slow = json.loads(_bench_json())
    slow["gpus"][0]["bf16_tflops"] = 400.0
    torch = _executable(tmp_path / "bin" / "slow-torch", FAKE_TORCH.format(figures=json.dumps(slow)))
    rc, output = run(dict(gpu_machine["env"], DLNODE_TORCH_PYTHON=str(torch)))
    assert rc == 1, output
    assert "validate gate: FAIL" in output
    assert "fail gpu0.bf16_tflops: 400.0" in output, output


def test_without_a_gpu_it_says_so_and_exits_0(tmp_path):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:/usr/bin:/bin")
    assert subprocess.run(["sh", "-c", "command -v nvidia-smi"], env=env, check=False).returncode != 0
    rc, output = run(env)
    assert rc == 0, output
    assert output.strip() == "dlnode GPU checks: skipped: no NVIDIA GPU with a loaded driver (nvidia-smi missing or failing)"


def test_missing_python_packages_are_named(gpu_machine, tmp_path):
    # A python without site-packages: what a bare machine's python has of them.
    bare = _executable(tmp_path / "bin" / "bare-python", "#!/bin/sh\nexec /usr/bin/python3 -I -S \"$@\"\n")
    rc, output = run(dict(gpu_machine["env"], DLNODE_GPU_PYTHON=str(bare)))
    assert rc == 2, output
    assert output.strip() == (f"dlnode GPU checks: {bare} lacks ansible-core PyYAML Jinja2 nvidia-ml-py; give their "
                              "wheels in DLNODE_WHEELS (offline: nothing is downloaded)")


# -- the comparison, in-process -------------------------------------------------------------------


@pytest.fixture
def h100_fact(run_module, monkeypatch, tmp_path):
    monkeypatch.setattr(files, "ROOT", str(fake_pci.build(tmp_path / "node")))
    monkeypatch.setattr(gpu_facts, "BACKEND_FACTORY", lambda: nvml.NvmlBackend(lib=fake_nvml.FakePynvml()))
    result, failed = run_module(gpu_facts, {})
    assert not failed, result
    return result["ansible_facts"]["dlnode_gpu"]


def test_every_field_of_the_h100_agrees(h100_fact):
    rows = gpu_check.compare(h100_fact, SMI_XML.read_text(encoding="utf-8"))
    assert [row for row in rows if not row["match"]] == []
    fields = {row["field"] for row in rows}
    for field in ("driver_version", "cuda_driver_version", "count", "name", "uuid", "pci_bus_id", "memory_total_mib",
                  "persistence_mode", "ecc_mode.current", "mig_mode.current", "pcie.generation_max",
                  "pcie.width_current", "power.limit_w", "clocks.applications.graphics"):
        assert field in fields, field


@pytest.mark.parametrize("old, new, field", [
    ("<persistence_mode>Enabled", "<persistence_mode>Disabled", "persistence_mode"),
    ("<current_ecc>Enabled", "<current_ecc>Disabled", "ecc_mode.current"),
    ("<pending_mig>Disabled", "<pending_mig>Enabled", "mig_mode.pending"),
    ("<max_link_gen>5", "<max_link_gen>4", "pcie.generation_max"),
    ("<cuda_version>13.0", "<cuda_version>12.8", "cuda_driver_version"),
    ("GPU-0ad4414f", "GPU-1bd4414f", "uuid"),
])
def test_each_differing_field_is_a_mismatch(h100_fact, old, new, field):
    text = SMI_XML.read_text(encoding="utf-8")
    assert old in text
    rows = gpu_check.compare(h100_fact, text.replace(old, new, 1))
    assert [row["field"] for row in rows if not row["match"]] == [field]


def test_nvidia_smi_values_are_read_as_gpu_facts_reports_them():
    driver, gpus = gpu_check.smi_gpus(SMI_XML.read_text(encoding="utf-8"))
    assert driver == {"driver_version": "580.159.04", "cuda_driver_version": "13.0", "count": 1}
    gpu = gpus[0]
    assert gpu["pci_bus_id"] == "0000:00:06.0"
    assert gpu["memory_total_mib"] == 81559 and gpu["power.limit_w"] == 700.0 and gpu["pcie.width_max"] == 16
    assert gpu["persistence_mode"] is True and gpu["compute_mode"] == "default"
    root = ET.fromstring(SMI_XML.read_text(encoding="utf-8"))
    assert len(gpus) == len(root.findall("gpu"))
