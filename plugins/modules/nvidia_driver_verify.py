#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
from __future__ import annotations

DOCUMENTATION = r"""
module: nvidia_driver_verify
short_description: After a driver install, say whether the node runs it, reload it on request, and prove it with nvidia-smi and NVML
version_added: 0.1.0
description:
  - The last step of the C(nvidia_driver) role. Compares the loaded C(nvidia) kernel module
    (C(/sys/module/nvidia/version)) with the installed driver (the version of O(version_package)); when they
    differ, or nouveau is loaded, RV(reboot_reasons) says so, for the play to add to C(dlnode_reboot_reasons).
    It never reboots.
  - With O(reload), a loaded module of another version is replaced without a reboot when no process holds
    an NVIDIA device file; the O(services) are stopped, the modules removed and loaded again, the services
    started. A process that holds a GPU keeps the old module (named in RV(reload)), and the reboot reason stays.
  - Verifies when the node has an NVIDIA GPU and runs the installed module; C(nvidia-smi) must list the GPUs at the
    installed version, and NVML (C(libnvidia-ml.so.1), read with ctypes) must initialise and report it; a failure
    fails the task. Otherwise RV(skipped_reason) says why nothing was verified.
options:
  version_package:
    description: The package whose version is the driver's (the plan's C(version_package)).
    type: str
    required: true
  expected_version:
    description:
      - The driver version to verify instead of O(version_package)'s, for a driver no package installed
        (the plan's C(foreign_driver)).
    type: str
  reload:
    description: Replace a loaded module of another version when no process holds a GPU.
    type: bool
    default: false
  services:
    description: Units that hold the GPU and are stopped around a reload (nvidia-persistenced, fabric manager).
    type: list
    elements: str
    default: []
  modules:
    description: The NVIDIA kernel modules, in the order they are removed (dependants first); loaded again in reverse.
    type: list
    elements: str
    default: [nvidia_uvm, nvidia_drm, nvidia_modeset, nvidia]
attributes:
  check_mode:
    support: full
    description: Reads and verifies; a reload is only predicted.
  diff_mode:
    support: none
    description: No file changes.
  platform:
    support: full
    platforms: posix
    description: Linux with dpkg or rpm.
author: "dlnode.gpu developers (@dlnode)"
"""

EXAMPLES = r"""
- name: Verify the driver
  dlnode.gpu.nvidia_driver_verify:
    version_package: libnvidia-compute-580
    services: [nvidia-persistenced.service]
  register: __nvidia_driver_verify
"""

RETURN = r"""
installed_version:
  description: The installed driver version (upstream part), or null.
  returned: always
  type: str
  sample: "580.126.16"
loaded_version:
  description: The version of the loaded nvidia module, or null.
  returned: always
  type: str
  sample: "580.126.16"
reboot_reasons:
  description: Why the node must reboot for the installed driver to run; empty when it runs it.
  returned: always
  type: list
  elements: str
  sample: []
reload:
  description: What the reload did or why it did not run (null when not asked or not needed).
  returned: always
  type: str
  sample: "not reloaded: /dev/nvidia0 is held by python3 (pid 4242)"
verified:
  description: Whether nvidia-smi and NVML both answered with the installed version.
  returned: always
  type: bool
  sample: true
skipped_reason:
  description: Why nothing was verified, or null.
  returned: always
  type: str
  sample: "no NVIDIA GPU on the PCI bus"
nvidia_smi:
  description: The GPUs nvidia-smi listed (name, driver version), when it ran.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "NVIDIA H100 80GB HBM3", "driver_version": "580.126.16"}]
nvml:
  description: What NVML answered (ok, driver_version, gpu_count, reason), when it was asked.
  returned: always
  type: dict
  sample: {"ok": true, "driver_version": "580.126.16", "gpu_count": 1, "reason": null}
"""

import os

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.module_utils.common.commands import Commands
from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError
from ansible_collections.dlnode.gpu.plugins.module_utils.common.module import run_module
from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import driver, nvml_probe, pci
from ansible_collections.dlnode.gpu.plugins.module_utils.packages import database

ARGUMENT_SPEC = dict(
    version_package=dict(type="str", required=True),
    expected_version=dict(type="str"),
    reload=dict(type="bool", default=False),
    services=dict(type="list", elements="str", default=[]),
    modules=dict(type="list", elements="str", default=["nvidia_uvm", "nvidia_drm", "nvidia_modeset", "nvidia"]),
)
TOOL_PACKAGES = {"dpkg-query": "dpkg", "rpm": "rpm", "nvidia-smi": "the driver's utilities (nvidia-smi)",
                 "modprobe": "kmod", "systemctl": "systemd"}
SMI_QUERY = ["--query-gpu=name,driver_version", "--format=csv,noheader"]
# The prober is replaced in unit tests (there is no libnvidia-ml here).
PROBE = nvml_probe.probe


def holders():
    """'path by comm (pid N)' for every process that has an NVIDIA device file open."""
    found = []
    proc = files.host_path("/proc")
    for pid in sorted((name for name in os.listdir(proc) if name.isdigit()), key=int):
        try:
            fds = os.listdir(os.path.join(proc, pid, "fd"))
            targets = {os.readlink(os.path.join(proc, pid, "fd", fd)) for fd in fds}
            comm = (files.read(f"/proc/{pid}/comm") or "?").strip()
        except OSError:
            continue  # gone, or not ours to read
        found += [f"{target} by {comm} (pid {pid})" for target in sorted(targets) if target.startswith("/dev/nvidia")]
    return found


def reload_modules(module, commands, params):
    """Replace the loaded modules; a string saying what happened."""
    if module.check_mode:
        return "would reload the modules (check mode)"
    for unit in params["services"]:
        commands.run("systemctl", "stop", unit)
    held = holders()
    if not held:
        commands.run("modprobe", "-r", *params["modules"])
        for name in reversed(params["modules"]):
            commands.result("modprobe", name)  # nvidia_drm and nvidia_modeset are absent from compute-only installs
    for unit in params["services"]:
        commands.run("systemctl", "start", unit)
    return f"not reloaded: {'; '.join(held)}" if held else "reloaded"


def smi(commands, installed):
    rc, out, err = commands.result("nvidia-smi", *SMI_QUERY)
    if rc != 0:
        raise DlnodeError(f"nvidia-smi failed (rc {rc}) with the driver {installed} loaded: {(err or out).strip()}")
    listed = [dict(zip(("name", "driver_version"), [field.strip() for field in line.split(",")]))
              for line in out.splitlines() if line.strip()]
    wrong = [gpu for gpu in listed if gpu.get("driver_version") != installed]
    if not listed or wrong:
        raise DlnodeError(f"nvidia-smi lists {listed or 'no GPU'}; expected every GPU at the driver {installed}")
    return listed


def run(module, result):
    params = module.params
    commands = Commands(module, TOOL_PACKAGES)
    manager = database.detect(commands)
    if params["expected_version"]:
        installed = params["expected_version"]
    else:
        installed = database.read_installed(commands, manager, [params["version_package"]]).get(params["version_package"])
        installed = driver.upstream(installed) if installed else None
    loaded = pci.driver_version(files.ROOT)
    nouveau = os.path.isdir(files.host_path("/sys/module/nouveau"))
    result.update(installed_version=installed, loaded_version=loaded)
    if params["reload"] and loaded and installed and loaded != installed:
        result["reload"] = reload_modules(module, commands, params)
        result["changed"] = True
        if result["reload"] == "reloaded":
            loaded = pci.driver_version(files.ROOT)
            result["loaded_version"] = loaded
    result["reboot_reasons"] = driver.reboot_reasons(loaded, installed, nouveau)
    gpus = [device for device in pci.nvidia_devices(files.ROOT) if device["kind"] == "gpu"]
    skipped = ("the driver is not installed" if not installed
               else "no NVIDIA GPU on the PCI bus" if not gpus
               else "the nvidia kernel module is not loaded" if not loaded
               else f"the loaded module is {loaded}, not the installed {installed}: a reboot is pending" if loaded != installed
               else None)
    result["skipped_reason"] = skipped
    if skipped:
        return
    result["nvidia_smi"] = smi(commands, installed)
    nvml = PROBE()
    result["nvml"] = nvml
    if not nvml["ok"] or nvml["driver_version"] != installed:
        raise DlnodeError(f"NVML does not confirm the driver {installed}: {nvml['reason'] or nvml['driver_version']}")
    result["verified"] = True


def main():
    run_module(ARGUMENT_SPEC, run, result=dict(installed_version=None, loaded_version=None, reboot_reasons=[], reload=None,
                                               verified=False, skipped_reason=None, nvidia_smi=[], nvml={}))


if __name__ == "__main__":
    main()
