"""dlnode.gpu.nvidia_driver_plan on a fake root: the real H100 node's sysfs (tests/fixtures/node), the role's
table, and dpkg-query / apt-cache answering as apt 2.6 does."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.module_utils import basic

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.modules import nvidia_driver_plan
from ansible_collections.dlnode.gpu.tests.unit import fake_pci

TABLE = yaml.safe_load((Path(__file__).resolve().parents[4] / "roles/nvidia_driver/vars/main.yml").read_text())[
    "__nvidia_driver_table"]
H100 = {"pci_bus_id": "0000:00:06.0", "kind": "gpu", "device_id": "0x2330"}
V100 = {"pci_bus_id": "0000:03:00.0", "kind": "gpu", "device_id": "0x1db4"}
B200 = {"pci_bus_id": "0000:02:00.0", "kind": "gpu", "device_id": "0x2901"}
SWITCH = {"pci_bus_id": "0000:05:00.0", "kind": "nvswitch", "device_id": "0x22a3"}
RELEASE = "6.8.0-45-generic"
SECURE_BOOT = "sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"


@pytest.fixture
def node(tmp_path, monkeypatch):
    """An Ubuntu 24.04 node: installed packages (dpkg), headers in the archive or not, and every command run."""
    root = fake_pci.build(tmp_path / "node")
    (root / "proc/sys/kernel").mkdir(parents=True)
    (root / "proc/sys/kernel/osrelease").write_text(RELEASE + "\n")
    state = {"root": root, "installed": {}, "headers_in_archive": True, "commands": [], "tools": set(),
             "smi_owner": None, "images": []}
    monkeypatch.setattr(files, "ROOT", str(root))
    tools = {"dpkg-query", "apt-cache", "apt-get"}
    smi = "/usr/local/nvidia/bin/nvidia-smi"  # where the real H100 node has it (tests/fixtures/node)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                        lambda self, name, required=False, opt_dirs=None: smi if name in state["tools"] and name == "nvidia-smi"
                        else f"/usr/bin/{name}" if name in tools else None)

    def run_command(self, argv, **kwargs):
        name, args = argv[0].rsplit("/", 1)[-1], list(argv[1:])
        state["commands"].append([name, *args])
        if name == "dpkg-query" and args[0] == "-S":
            return (0, f"{state['smi_owner']}: {args[1]}\n", "") if state["smi_owner"] else \
                (1, "", f"dpkg-query: no path found matching pattern {args[1]}\n")
        if name == "dpkg-query" and args[-1] == "linux-image-*":
            return 0, "".join(f"{image}\tii \t6.8.0-45.45\n" for image in state["images"]), ""
        if name == "dpkg-query":
            names = args[args.index("--") + 1:]
            return (0 if all(n in state["installed"] for n in names) else 1,
                    "".join(f"{n}\thi \t{state['installed'][n]}\n" for n in names if n in state["installed"]), "")
        if name == "apt-cache":
            return (0, f"Package: {args[-1]}\n", "") if state["headers_in_archive"] else \
                (100, "", "E: No packages found\n")
        return 0, "", ""

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    return state


def plan(run_module, check_mode=False, **options):
    args = dict(table=TABLE, distribution="ubuntu2404", branch=580, devices=[H100])
    args.update(options)
    return run_module(nvidia_driver_plan, args, check_mode=check_mode)


def test_the_h100_node_with_its_driver_installed_keeps_it(node, run_module):
    node["installed"]["libnvidia-compute-580"] = "580.159.04-1ubuntu1"
    result, failed = plan(run_module)
    assert not failed and not result["changed"]
    assert result["modules"] == "open"
    assert result["modules_reason"] == "every GPU is Turing or newer: NVIDIA's default (open modules since 560)"
    assert result["version_pattern"] == "580.159.04-*" and result["installed_version"] == "580.159.04-1ubuntu1"
    assert result["pinning"] == {"nvidia-driver-pinning-580": "580-*"}
    assert result["packages"]["nvidia-open"] == "580.159.04-*"
    assert result["fabric"] == {"wanted": False, "reason": "no NVSwitch on the PCI bus"}
    assert result["services"] == ["nvidia-persistenced.service"]
    assert result["kernel"] == {"release": RELEASE, "headers_package": f"linux-headers-{RELEASE}", "headers_meta": [],
                                "headers_installed": False,
                                "headers_available": True, "nvidia_loaded": "580.159.04", "nouveau_loaded": False,
                                "nouveau_installed": False}
    assert result["secure_boot"] is None


def test_a_fresh_node_takes_the_newest_of_the_branch_and_reads_only(node, run_module):
    result, failed = plan(run_module, check_mode=True)
    assert not failed and result["version_pattern"] == "580.*" and result["installed_version"] is None
    assert {c[0] for c in node["commands"]} == {"dpkg-query", "apt-cache"}


def test_an_exact_version(node, run_module):
    node["installed"]["libnvidia-compute-580"] = "580.159.04-1ubuntu1"
    assert plan(run_module, version="580.126.16")[0]["version_pattern"] == "580.126.16-*"


def test_a_version_of_another_branch_is_refused(node, run_module):
    result, failed = plan(run_module, version="590.48.01")
    assert failed and result["msg"] == ("nvidia_driver_version: 590.48.01 is not of branch 580 (nvidia_driver_branch): "
                                        "set both, or leave the version empty for the branch's newest")


def test_a_volta_gpu_refuses_the_590_branch(node, run_module):
    result, failed = plan(run_module, branch=590, devices=[V100])
    assert failed and result["msg"] == (
        "nvidia_driver_branch: 590 does not support the GPU at 0000:03:00.0 (device 1db4, volta); the last branch for "
        "it is 580: set nvidia_driver_branch: 580")


def test_volta_gets_the_proprietary_modules(node, run_module):
    result = plan(run_module, devices=[V100])[0]
    assert result["modules"] == "proprietary" and "nvidia-dkms-580" in result["packages"]


def test_nvswitches_bring_fabric_manager_and_blackwell_nvlink5(node, run_module):
    result = plan(run_module, devices=[B200, SWITCH])[0]
    assert result["fabric"] == {"wanted": True, "reason": "found on the PCI bus"}
    assert result["nvlink5"]["wanted"] and "nvlsm" in result["packages"] and "nvidia-fabricmanager" in result["packages"]
    assert result["services"] == ["nvidia-persistenced.service", "nvidia-fabricmanager.service"]
    hopper = plan(run_module, devices=[H100, SWITCH])[0]
    assert hopper["fabric"]["wanted"] and not hopper["nvlink5"]["wanted"] and "nvlsm" not in hopper["packages"]
    never = plan(run_module, devices=[H100, SWITCH], fabricmanager="never")[0]
    assert never["fabric"] == {"wanted": False, "reason": "turned off (never)"}


def test_headers_installed_or_missing_from_the_archive(node, run_module):
    node["headers_in_archive"] = False
    assert plan(run_module)[0]["kernel"]["headers_available"] is False
    (node["root"] / f"lib/modules/{RELEASE}/build").mkdir(parents=True)
    kernel = plan(run_module)[0]["kernel"]
    assert kernel["headers_installed"] and kernel["headers_available"]


def test_nouveau_and_secure_boot(node, run_module):
    (node["root"] / "sys/module/nouveau").mkdir(parents=True)
    (node["root"] / f"lib/modules/{RELEASE}/kernel/drivers/gpu/drm/nouveau").mkdir(parents=True)
    (node["root"] / f"lib/modules/{RELEASE}/kernel/drivers/gpu/drm/nouveau/nouveau.ko.zst").write_text("")
    variable = node["root"] / SECURE_BOOT
    variable.parent.mkdir(parents=True)
    variable.write_bytes(b"\x06\x00\x00\x00\x01")
    result = plan(run_module)[0]
    assert result["kernel"]["nouveau_loaded"] and result["kernel"]["nouveau_installed"]
    assert result["secure_boot"] is True


def test_table_refusals_reach_the_operator(node, run_module):
    result, failed = plan(run_module, kernel_modules="precompiled")
    assert failed and result["msg"].startswith("nvidia_driver_kernel_modules: precompiled modules come from Ubuntu's")
    result, failed = plan(run_module, distribution="sles15")
    assert failed and result["msg"].startswith("nvidia_driver_source: nvidia has no NVIDIA driver packages for sles15")


def test_the_h100_nodes_own_driver_is_kept_when_of_the_branch(node, run_module):
    # The real H100 node: module 580.159.04 loaded, nvidia-smi in /usr/local/nvidia/bin, no driver package.
    node["tools"].add("nvidia-smi")
    result, failed = plan(run_module, check_mode=True)
    assert not failed and result["foreign_driver"] == {"version": "580.159.04",
                                                       "nvidia_smi": "/usr/local/nvidia/bin/nvidia-smi"}
    assert ["dpkg-query", "-S", "/usr/local/nvidia/bin/nvidia-smi"] in node["commands"]
    assert plan(run_module, version="580.159.04")[0]["foreign_driver"]["version"] == "580.159.04"


def test_a_driver_outside_the_package_manager_of_another_branch_is_refused(node, run_module):
    node["tools"].add("nvidia-smi")
    for options in (dict(branch=590), dict(version="580.126.16")):
        result, failed = plan(run_module, **options)
        assert failed and result["msg"].startswith(
            "nvidia_driver_branch: the running driver 580.159.04 was not installed by packages "
            "(/usr/local/nvidia/bin/nvidia-smi belongs to none: a runfile, a driver container or the host's), and "), result
        assert result["msg"].endswith("remove that driver first (nvidia-uninstall for a runfile), or ask for 580.159.04 "
                                      "to keep it. Nothing was changed")


def test_a_packaged_driver_is_not_foreign(node, run_module):
    node["tools"].add("nvidia-smi")
    node["smi_owner"] = "nvidia-utils-580"
    assert plan(run_module)[0]["foreign_driver"] is None


def test_the_headers_metapackage_follows_the_kernel_metapackage(node, run_module):
    node["images"] = [f"linux-image-{RELEASE}", "linux-image-generic-hwe-24.04", "linux-image-6.8.0-40-generic"]
    assert plan(run_module)[0]["kernel"]["headers_meta"] == ["linux-headers-generic-hwe-24.04"]
