"""dlnode.gpu.nvidia_driver_verify on a fake root: the real H100 node's sysfs and driver version
(tests/fixtures/node), dpkg-query, nvidia-smi, modprobe and systemctl faked, NVML's answer given."""
from __future__ import annotations

import os

import pytest
from ansible.module_utils import basic

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.modules import nvidia_driver_verify
from ansible_collections.dlnode.gpu.tests.unit import fake_pci

LOADED = fake_pci.node_driver_version()  # 580.159.04
NVML_OK = {"ok": True, "driver_version": LOADED, "gpu_count": 1, "reason": None}


@pytest.fixture
def node(tmp_path, monkeypatch):
    state = {"root": tmp_path / "node", "installed": f"{LOADED}-1ubuntu1", "commands": [], "nvml": dict(NVML_OK),
             "smi": (0, f"NVIDIA H100 80GB HBM3, {LOADED}\n", ""), "new_module": None}
    state["root"].mkdir()
    (state["root"] / "proc").mkdir()
    monkeypatch.setattr(files, "ROOT", str(state["root"]))
    monkeypatch.setattr(nvidia_driver_verify, "PROBE", lambda: state["nvml"])
    tools = {"dpkg-query", "apt-get", "nvidia-smi", "modprobe", "systemctl"}
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                        lambda self, name, required=False, opt_dirs=None: f"/usr/bin/{name}" if name in tools else None)

    def run_command(self, argv, **kwargs):
        name, args = argv[0].rsplit("/", 1)[-1], list(argv[1:])
        state["commands"].append([name, *args])
        if name == "dpkg-query":
            return (0, f"{args[-1]}\thi \t{state['installed']}\n", "") if state["installed"] else (1, "", "")
        if name == "nvidia-smi":
            return state["smi"]
        if name == "modprobe" and args == ["nvidia"] and state["new_module"]:
            (state["root"] / "sys/module/nvidia/version").write_text(state["new_module"] + "\n")
        return 0, "", ""

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    return state


def verify(run_module, check_mode=False, **options):
    return run_module(nvidia_driver_verify, dict(dict(version_package="libnvidia-compute-580"), **options),
                      check_mode=check_mode)


def test_the_h100_node_runs_its_installed_driver(node, run_module):
    fake_pci.build(node["root"])
    result, failed = verify(run_module)
    assert not failed and result["verified"] and not result["changed"]
    assert result["nvidia_smi"] == [{"name": "NVIDIA H100 80GB HBM3", "driver_version": LOADED}]
    assert result["nvml"] == NVML_OK and result["reboot_reasons"] == [] and result["skipped_reason"] is None


def test_no_gpu_skips_with_the_reason(node, run_module):
    result, failed = verify(run_module)
    assert not failed and not result["verified"] and result["skipped_reason"] == "no NVIDIA GPU on the PCI bus"
    assert result["installed_version"] == LOADED and result["loaded_version"] is None
    assert not [c for c in node["commands"] if c[0] == "nvidia-smi"]


def test_no_module_loaded_yet(node, run_module):
    fake_pci.build(node["root"], driver_loaded=False)
    result = verify(run_module)[0]
    assert result["skipped_reason"] == "the nvidia kernel module is not loaded" and result["reboot_reasons"] == []


def test_a_new_driver_under_the_old_module_needs_a_reboot(node, run_module):
    fake_pci.build(node["root"])
    node["installed"] = "590.48.01-1ubuntu1"
    result, failed = verify(run_module, version_package="libnvidia-compute")
    assert not failed and not result["changed"]
    assert result["reboot_reasons"] == [
        f"nvidia_driver: the loaded kernel module is {LOADED}, the installed driver 590.48.01: reboot (or reload the "
        "modules) to run it; until then NVML reports 'Driver/library version mismatch'"]
    assert result["skipped_reason"] == f"the loaded module is {LOADED}, not the installed 590.48.01: a reboot is pending"


def test_reload_replaces_the_module_when_no_process_holds_a_gpu(node, run_module):
    fake_pci.build(node["root"])
    node["installed"], node["new_module"] = "590.48.01-1ubuntu1", "590.48.01"
    node["nvml"]["driver_version"] = "590.48.01"
    node["smi"] = (0, "NVIDIA H100 80GB HBM3, 590.48.01\n", "")
    result, failed = verify(run_module, reload=True, services=["nvidia-persistenced.service"])
    assert not failed and result["changed"] and result["reload"] == "reloaded" and result["verified"]
    assert result["reboot_reasons"] == [] and result["loaded_version"] == "590.48.01"
    ran = [c for c in node["commands"] if c[0] in ("systemctl", "modprobe")]
    assert ran == [["systemctl", "stop", "nvidia-persistenced.service"],
                   ["modprobe", "-r", "nvidia_uvm", "nvidia_drm", "nvidia_modeset", "nvidia"],
                   ["modprobe", "nvidia"], ["modprobe", "nvidia_modeset"], ["modprobe", "nvidia_drm"], ["modprobe", "nvidia_uvm"],
                   ["systemctl", "start", "nvidia-persistenced.service"]]


def test_reload_leaves_a_module_a_process_holds(node, run_module):
    fake_pci.build(node["root"])
    node["installed"] = "590.48.01-1ubuntu1"
    fd = node["root"] / "proc/4242/fd"
    fd.mkdir(parents=True)
    os.symlink("/dev/nvidia0", fd / "3")
    (node["root"] / "proc/4242/comm").write_text("python3\n")
    result, failed = verify(run_module, reload=True)
    assert not failed and result["reload"] == "not reloaded: /dev/nvidia0 by python3 (pid 4242)"
    assert not [c for c in node["commands"] if c[0] == "modprobe"]
    assert result["reboot_reasons"] and not result["verified"]


def test_check_mode_only_predicts_the_reload(node, run_module):
    fake_pci.build(node["root"])
    node["installed"] = "590.48.01-1ubuntu1"
    result = verify(run_module, check_mode=True, reload=True)[0]
    assert result["changed"] and result["reload"] == "would reload the modules (check mode)"
    assert not [c for c in node["commands"] if c[0] in ("systemctl", "modprobe")]


def test_nvml_mismatch_fails(node, run_module):
    fake_pci.build(node["root"])
    node["nvml"] = {"ok": False, "driver_version": None, "gpu_count": None,
                    "reason": "nvmlInit: Driver/library version mismatch"}
    result, failed = verify(run_module)
    assert failed and result["msg"] == f"NVML does not confirm the driver {LOADED}: nvmlInit: Driver/library version mismatch"


def test_nvidia_smi_failure_fails(node, run_module):
    fake_pci.build(node["root"])
    node["smi"] = (9, "", "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n")
    result, failed = verify(run_module)
    assert failed and result["msg"] == (f"nvidia-smi failed (rc 9) with the driver {LOADED} loaded: NVIDIA-SMI has failed "
                                        "because it couldn't communicate with the NVIDIA driver.")


def test_a_driver_no_package_installed_is_verified_at_the_version_given(node, run_module):
    fake_pci.build(node["root"])
    node["installed"] = None
    result, failed = verify(run_module, expected_version=LOADED)
    assert not failed and result["verified"] and result["installed_version"] == LOADED
    assert not [c for c in node["commands"] if c[0] == "dpkg-query"]
