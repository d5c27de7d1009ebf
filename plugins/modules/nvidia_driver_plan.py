#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
from __future__ import annotations

DOCUMENTATION = r"""
module: nvidia_driver_plan
short_description: Decide the NVIDIA driver a node gets, before anything is installed
version_added: 0.1.0
description:
  - The first step of the C(nvidia_driver) role; reads only. From the GPUs on the PCI bus (as
    M(dlnode.gpu.gpu_facts) reports them, before any driver), the role's package table and the options,
    it decides the kernel module flavour (open or proprietary), the exact packages and the version pattern
    they are locked at, the pinning package to install first, the dnf module stream, the units to enable,
    and reads what the install depends on (the running kernel's headers, Secure Boot, nouveau, the loaded
    NVIDIA module).
  - "Open modules are NVIDIA's default (since 560) and need Turing or newer; Blackwell and Grace Hopper
    need them; Maxwell, Pascal and Volta need the proprietary ones, and 580 is the last branch for them.
    A choice or branch that cannot drive a GPU found is refused, naming the GPU and the variable to change."
  - "A running driver that no package installed (its C(nvidia-smi) belongs to no package: a runfile, a driver
    container, a hypervisor's injected driver) is RV(foreign_driver): kept when it is of O(branch) (and O(version)),
    refused otherwise, naming it and what to do."
  - "The version pattern: V(<version>-*) when O(version) is given; else the installed driver's version when it
    is of O(branch) (a re-run moves nothing); else V(<branch>.*), the newest of the branch."
options:
  table:
    description: The role's package table (C(roles/nvidia_driver/vars/main.yml)).
    type: dict
    required: true
  source:
    description: V(nvidia) (NVIDIA's CUDA repository or a mirror of it) or V(distribution) (the distribution's own packages).
    type: str
    choices: [nvidia, distribution]
    default: nvidia
  distribution:
    description: The table's name for the node's distribution (V(debian12), V(ubuntu2404), V(rhel9)).
    type: str
    required: true
  branch:
    description: The driver branch (V(580)).
    type: int
    required: true
  version:
    description: An exact driver version of the branch (V(580.126.16)); empty for the installed or newest one.
    type: str
    default: ""
  modules:
    description: Kernel module flavour; V(auto) chooses from the GPUs.
    type: str
    choices: [auto, open, proprietary]
    default: auto
  kernel_modules:
    description: V(dkms) builds the modules on the node; V(precompiled) installs the distribution's signed builds (Ubuntu).
    type: str
    choices: [dkms, precompiled]
    default: dkms
  fabricmanager:
    description: V(auto) installs NVIDIA Fabric Manager when an NVSwitch is on the PCI bus.
    type: str
    choices: [auto, always, never]
    default: auto
  nvlink5:
    description: V(auto) adds the NVLink5 packages (subnet manager, libnvsdm) with NVSwitches and a Blackwell GPU.
    type: str
    choices: [auto, always, never]
    default: auto
  devices:
    description: The NVIDIA PCI devices, as RV(dlnode.gpu.gpu_facts#module:ansible_facts.dlnode_gpu.pci_devices) lists them.
    type: list
    elements: dict
    default: []
attributes:
  check_mode:
    support: full
    description: Reads only, in every mode.
  diff_mode:
    support: none
    description: Nothing changes.
  platform:
    support: full
    platforms: posix
    description: Debian, Ubuntu (dpkg); RHEL family (rpm), planned and unit-tested only.
seealso:
  - module: dlnode.gpu.gpu_facts
  - module: dlnode.gpu.package_set
author: "dlnode.gpu developers (@dlnode)"
"""

EXAMPLES = r"""
- name: Decide the driver
  dlnode.gpu.nvidia_driver_plan:
    table: "{{ __nvidia_driver_table }}"
    source: nvidia
    distribution: ubuntu2404
    branch: 580
    devices: "{{ ansible_facts['dlnode_gpu'].pci_devices }}"
  register: __nvidia_driver_plan
"""

RETURN = r"""
foreign_driver:
  description: The running driver when no package installed it (its version and nvidia-smi), else null.
  returned: success
  type: dict
  sample: {"version": "580.159.04", "nvidia_smi": "/usr/local/nvidia/bin/nvidia-smi"}
modules:
  description: The kernel module flavour chosen.
  returned: success
  type: str
  sample: open
modules_reason:
  description: Why.
  returned: success
  type: str
  sample: "every GPU is Turing or newer: NVIDIA's default (open modules since 560)"
manager:
  description: The package manager of the distribution's table entry.
  returned: success
  type: str
  sample: apt
version_pattern:
  description: The version every driver package is locked at, as a package_set pattern.
  returned: success
  type: str
  sample: "580.*"
version_package:
  description: The package whose version is the driver's.
  returned: success
  type: str
  sample: libnvidia-compute-580
installed_version:
  description: The installed version of RV(version_package), or null.
  returned: success
  type: str
  sample: "580.126.16-1ubuntu1"
pinning:
  description: NVIDIA's pinning package to install before the driver (its own set), with its pattern; empty where there is none.
  returned: success
  type: dict
  sample: {"nvidia-driver-pinning-580": "580-*"}
packages:
  description: The driver's packages with their version pattern, for M(dlnode.gpu.package_set).
  returned: success
  type: dict
  sample: {"nvidia-open": "580.*", "nvidia-driver-580-open": "580.*"}
stream:
  description: The dnf module stream to enable (RHEL family), or null.
  returned: success
  type: str
  sample: "nvidia-driver:580-open"
services:
  description: The units to enable.
  returned: success
  type: list
  elements: str
  sample: [nvidia-persistenced.service]
enabled_on_install:
  description: The units of RV(services) that their packages enable when they are installed.
  returned: success
  type: list
  elements: str
  sample: [nvidia-persistenced.service]
fabric:
  description: Whether Fabric Manager is installed, and why.
  returned: success
  type: dict
  sample: {"wanted": false, "reason": "no NVSwitch on the PCI bus"}
kernel:
  description: The running kernel, its headers (installed, or available from the configured archive), and the loaded modules.
  returned: success
  type: dict
  sample: {"release": "6.8.0-45-generic", "headers_package": "linux-headers-6.8.0-45-generic",
           "headers_meta": ["linux-headers-generic"], "headers_installed": false,
           "headers_available": true, "nvidia_loaded": "580.126.16", "nouveau_loaded": false, "nouveau_installed": true}
secure_boot:
  description: Whether Secure Boot is on (null where the node has no EFI or it cannot be read).
  returned: success
  type: bool
  sample: false
"""

import glob
import os

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.module_utils.common.commands import Commands
from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError
from ansible_collections.dlnode.gpu.plugins.module_utils.common.module import run_module
from ansible_collections.dlnode.gpu.plugins.module_utils.kernel import secure_boot
from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import driver, pci
from ansible_collections.dlnode.gpu.plugins.module_utils.packages import database

ARGUMENT_SPEC = dict(
    table=dict(type="dict", required=True),
    source=dict(type="str", choices=["nvidia", "distribution"], default="nvidia"),
    distribution=dict(type="str", required=True),
    branch=dict(type="int", required=True),
    version=dict(type="str", default=""),
    modules=dict(type="str", choices=["auto", "open", "proprietary"], default="auto"),
    kernel_modules=dict(type="str", choices=["dkms", "precompiled"], default="dkms"),
    fabricmanager=dict(type="str", choices=["auto", "always", "never"], default="auto"),
    nvlink5=dict(type="str", choices=["auto", "always", "never"], default="auto"),
    devices=dict(type="list", elements="dict", default=[]),
)
TOOL_PACKAGES = {"dpkg-query": "dpkg", "rpm": "rpm", "apt-cache": "apt", "dnf": "dnf"}
HEADERS = {"apt": "linux-headers-{}", "dnf": "kernel-devel-{}"}


def kernel_state(commands, manager, release):
    """The running kernel's headers and the NVIDIA and nouveau modules, from the node."""
    headers = HEADERS[manager].format(release)
    installed = os.path.isdir(files.host_path(f"/lib/modules/{release}/build"))
    available = installed
    if not installed:
        query = ("apt-cache", "show", "--no-all-versions", headers) if manager == "apt" else ("dnf", "-q", "list", headers)
        available = commands.result(*query)[0] == 0
    nouveau = glob.glob(files.host_path(f"/lib/modules/{release}/kernel/drivers/gpu/drm/nouveau/nouveau.ko*"))
    return {
        "release": release,
        "headers_package": headers,
        "headers_meta": headers_meta(commands, manager),
        "headers_installed": installed,
        "headers_available": available,
        "nvidia_loaded": pci.driver_version(files.ROOT),
        "nouveau_loaded": os.path.isdir(files.host_path("/sys/module/nouveau")),
        "nouveau_installed": bool(nouveau),
    }


def headers_meta(commands, manager):
    """The headers metapackage of each kernel metapackage installed (linux-image-amd64 -> linux-headers-amd64,
    linux-image-generic-hwe-24.04 -> linux-headers-generic-hwe-24.04): with it, a kernel update brings its
    headers and DKMS builds the driver for the new kernel. apt only."""
    if manager != "apt":
        return []
    images = database.read_installed(commands, "dpkg", ["linux-image-*"])
    prefix = "linux-image-"
    return sorted("linux-headers-" + name[len(prefix):] for name in images
                  if name.startswith(prefix) and not name[len(prefix):][:1].isdigit() and not name.endswith("-dbg"))


def foreign_driver(module, commands, manager, loaded):
    """The running driver when no package installed it (a runfile, a driver container, the host's
    injected driver): its nvidia-smi belongs to no package. None otherwise."""
    smi = module.get_bin_path("nvidia-smi")
    if not loaded or not smi:
        return None
    if database.owner(commands, "dpkg" if manager == "apt" else "rpm", os.path.realpath(smi)):
        return None
    return {"version": loaded, "nvidia_smi": smi}


def wanted(setting, present, why_not):
    if setting == "always":
        return {"wanted": True, "reason": "asked for (always)"}
    if setting == "never":
        return {"wanted": False, "reason": "turned off (never)"}
    return {"wanted": present, "reason": "found on the PCI bus" if present else why_not}


def run(module, result):
    params = module.params
    gpus = [{"pci_bus_id": device.get("pci_bus_id"), "device_id": device["device_id"]}
            for device in params["devices"] if device.get("kind", "gpu") == "gpu" and device.get("device_id")]
    switches = [device for device in params["devices"] if device.get("kind") == "nvswitch"]
    if params["version"] and not params["version"].startswith(f"{params['branch']}."):
        raise DlnodeError(f"nvidia_driver_version: {params['version']} is not of branch {params['branch']} "
                          "(nvidia_driver_branch): set both, or leave the version empty for the branch's newest")
    modules, reason = driver.choose_modules(gpus, params["modules"], params["branch"])
    fabric = wanted(params["fabricmanager"], bool(switches), "no NVSwitch on the PCI bus")
    blackwell = any(driver.architecture(gpu["device_id"]) == "blackwell" for gpu in gpus)
    nvlink5 = wanted(params["nvlink5"], bool(switches) and blackwell, "no NVSwitch with a Blackwell GPU on the PCI bus")
    release = (files.read("/proc/sys/kernel/osrelease") or os.uname().release).strip()
    request = dict(source=params["source"], distro=params["distribution"], branch=params["branch"], modules=modules,
                   kernel_modules=params["kernel_modules"], fabric=fabric["wanted"], nvlink5=nvlink5["wanted"],
                   kernel=release)
    manager, version_package = driver.version_package(params["table"], request)
    commands = Commands(module, TOOL_PACKAGES)
    installed = database.read_installed(commands, "dpkg" if manager == "apt" else "rpm", [version_package]).get(version_package)
    pattern = driver.version_pattern(params["branch"], params["version"], installed)
    names = driver.package_names(params["table"], dict(request, version=pattern))
    kernel = kernel_state(commands, names["manager"], release)
    foreign = foreign_driver(module, commands, names["manager"], kernel["nvidia_loaded"])
    if foreign and (not foreign["version"].startswith(f"{params['branch']}.")
                    or (params["version"] and foreign["version"] != params["version"])):
        raise DlnodeError(f"nvidia_driver_branch: the running driver {foreign['version']} was not installed by packages "
                          f"({foreign['nvidia_smi']} belongs to none: a runfile, a driver container or the host's), and "
                          f"{params['version'] or 'branch ' + str(params['branch'])} was asked: remove that driver first "
                          f"(nvidia-uninstall for a runfile), or ask for {foreign['version']} to keep it. Nothing was changed")
    result.update(
        foreign_driver=foreign,
        modules=modules, modules_reason=reason, manager=names["manager"], version_pattern=pattern,
        version_package=names["version_package"], installed_version=installed, pinning=names["pinning"],
        packages=names["packages"], stream=names["stream"], services=names["services"],
        enabled_on_install=names["enabled_on_install"],
        fabric=fabric, nvlink5=nvlink5, kernel=kernel,
        secure_boot=secure_boot.state(files.ROOT),
    )


def main():
    run_module(ARGUMENT_SPEC, run)


if __name__ == "__main__":
    main()
