"""dlnode.gpu.cdi_spec on a fake root: nvidia-smi -L listing the H100 of shared/fixtures (its real UUID; the MIG
devices' UUIDs are made up in NVIDIA's format), and nvidia-ctk / nvidia-cdi-refresh writing the spec as the real
nvidia-ctk does (each device by index and by UUID, the driver's libraries by their versioned names)."""
from __future__ import annotations

import pytest
from ansible.module_utils import basic

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.module_utils.containers import cdi
from ansible_collections.dlnode.gpu.plugins.modules import cdi_spec

SPEC = "/var/run/cdi/nvidia.yaml"
GPU = "GPU-0ad4414f-aa1d-07b8-b043-5bc8e52d2e4b"
MIG = ["MIG-c6d4f1ef-42e4-5de3-91c7-45d71c87eb3f", "MIG-cba663e8-9bed-5b25-b243-5985ef7c9beb"]
LISTED = f"GPU 0: NVIDIA H100 80GB HBM3 (UUID: {GPU})\n"
LISTED_MIG = LISTED + "".join(f"  MIG 3g.40gb     Device  {n}: (UUID: {uuid})\n" for n, uuid in enumerate(MIG))


def spec(driver, listed, by=("index", "uuid")):
    """A spec as nvidia-ctk cdi generate writes it for these devices."""
    lines = ["---", "cdiVersion: 0.5.0", "containerEdits:", "  mounts:",
             f"  - hostPath: /usr/lib/x86_64-linux-gnu/libcuda.so.{driver}", "devices:"]
    for index, uuid in cdi.listed(listed):
        for name in ([index] if "index" in by else []) + ([uuid] if "uuid" in by else []):
            lines += ["- containerEdits:", "    deviceNodes:", "    - path: /dev/nvidia0", f"  name: {name if '-' in name else repr(name)}"]
    lines += ["- containerEdits: {}", "  name: all", "kind: nvidia.com/gpu"]
    return "\n".join(lines).replace("'", '"') + "\n"


@pytest.fixture
def node(tmp_path, monkeypatch):
    state = {"driver": "580.159.04", "listed": LISTED, "commands": [], "writes": True}
    monkeypatch.setattr(files, "ROOT", str(tmp_path))
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None: f"/usr/bin/{name}")

    def write():
        if state["writes"]:
            path = tmp_path / SPEC.lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(spec(state["driver"], state["listed"]))

    def run_command(self, argv, **kwargs):
        args = [argv[0].rsplit("/", 1)[-1], *argv[1:]]
        state["commands"].append(args)
        if args == ["nvidia-smi", "-L"]:
            return 0, state["listed"], ""
        if args in (["nvidia-ctk", "cdi", "generate", f"--output={SPEC}"], ["systemctl", "restart", "nvidia-cdi-refresh.service"]):
            write()
            return 0, "", ""
        raise AssertionError(args)

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    state["root"] = tmp_path
    state["spec"] = tmp_path / SPEC.lstrip("/")
    return state


def writes(node):
    return [args for args in node["commands"] if args[0] != "nvidia-smi"]


def test_a_missing_spec_is_generated_and_the_next_run_changes_nothing(node, run_module):
    result, failed = run_module(cdi_spec, {"driver_version": "580.159.04"})
    assert not failed and result["changed"] and result["reasons"] == ["there is no spec"]
    assert writes(node) == [["nvidia-ctk", "cdi", "generate", f"--output={SPEC}"]]
    assert result["devices"] == [{"index": "0", "uuid": GPU}]
    node["commands"].clear()
    result, failed = run_module(cdi_spec, {"driver_version": "580.159.04"})
    assert not failed and not result["changed"] and result["reasons"] == [] and writes(node) == []


def test_a_driver_change_writes_it_again_through_the_toolkits_unit(node, run_module):
    node["spec"].parent.mkdir(parents=True)
    node["spec"].write_text(spec("570.124.06", LISTED))
    result, failed = run_module(cdi_spec, {"driver_version": "580.159.04", "refresh": "service"})
    assert not failed and result["changed"]
    assert result["reasons"] == ["it does not name the driver 580.159.04"]
    assert writes(node) == [["systemctl", "restart", "nvidia-cdi-refresh.service"]]
    assert "libcuda.so.580.159.04" in node["spec"].read_text()


def test_mig_devices_made_since_are_seen_and_so_are_those_gone(node, run_module):
    node["spec"].parent.mkdir(parents=True)
    node["spec"].write_text(spec("580.159.04", LISTED))
    node["listed"] = LISTED_MIG
    result, failed = run_module(cdi_spec, {"driver_version": "580.159.04"})
    assert not failed and result["changed"] and result["reasons"] == [f"it lacks {MIG[0]}, {MIG[1]}"]
    assert f"name: {MIG[1]}" in node["spec"].read_text()
    node["listed"] = LISTED
    result, failed = run_module(cdi_spec, {"driver_version": "580.159.04"})
    assert result["reasons"] == [f"it names {MIG[0]}, {MIG[1]}, which the node no longer has (a MIG change?)"]
    assert "MIG-" not in node["spec"].read_text()


def test_a_spec_named_by_index_only_is_compared_by_index():
    named = spec("580.159.04", LISTED_MIG, by=("index",))
    assert cdi.spec_devices(named) == {"0", "0:0", "0:1"}
    assert cdi.stale(named, cdi.listed(LISTED_MIG), "580.159.04") == []
    assert cdi.stale(named, cdi.listed(LISTED), "580.159.04") == [
        "it names 0:0, 0:1, which the node no longer has (a MIG change?)"]


def test_check_mode_says_why_and_writes_nothing(node, run_module):
    node["listed"] = LISTED_MIG
    result, failed = run_module(cdi_spec, {"driver_version": "580.159.04"}, check_mode=True)
    assert not failed and result["changed"] and result["reasons"] == ["there is no spec"]
    assert writes(node) == [] and not node["spec"].exists()


def test_a_spec_still_stale_after_the_refresh_fails_saying_how(node, run_module):
    node["writes"] = False
    result, failed = run_module(cdi_spec, {"refresh": "service"})
    assert failed and result["changed"]
    assert result["msg"] == f"{SPEC}: written by nvidia-cdi-refresh.service but still not the node's: there is no spec"


def test_no_nvidia_smi_is_a_clear_error(node, run_module, monkeypatch):
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None: None)
    result, failed = run_module(cdi_spec, {})
    assert failed and result["msg"] == "nvidia-smi is not installed: install the NVIDIA driver's utilities"
