# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""Re-apply the GPU settings written by the dlnode.gpu gpu_settings role, through NVML.

Run by dlnode-gpu-settings.service at boot and when nvidia-persistenced restarts. Locked
clocks, power limits, application clocks and compute mode do not survive a reboot or a
driver reload; ECC and MIG modes are kept by the GPU and are not touched here.
Usage: dlnode-gpu-settings CONFIG.json
"""
from __future__ import annotations

import json
import sys

import pynvml

COMPUTE_MODES = {
    "default": pynvml.NVML_COMPUTEMODE_DEFAULT,
    "exclusive_process": pynvml.NVML_COMPUTEMODE_EXCLUSIVE_PROCESS,
    "prohibited": pynvml.NVML_COMPUTEMODE_PROHIBITED,
}


def select(selectors):
    """NVML handles for `all`, indexes, UUIDs (GPU-...) and PCI bus ids."""
    if "all" in selectors:
        return [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
    handles = []
    for item in selectors:
        item = str(item)
        if item.isdigit():
            handles.append(pynvml.nvmlDeviceGetHandleByIndex(int(item)))
        elif item.startswith(("GPU-", "MIG-")):
            handles.append(pynvml.nvmlDeviceGetHandleByUUID(item))
        else:
            handles.append(pynvml.nvmlDeviceGetHandleByPciBusId(item))
    return handles


def steps(config, handle):
    """(name, call) for each setting the config holds, in a safe order."""
    if config.get("persistence_mode") is not None:
        mode = pynvml.NVML_FEATURE_ENABLED if config["persistence_mode"] else pynvml.NVML_FEATURE_DISABLED
        yield "persistence_mode", lambda: pynvml.nvmlDeviceSetPersistenceMode(handle, mode)
    limit = config.get("power_limit")
    if limit == "default":
        yield "power_limit", lambda: pynvml.nvmlDeviceSetPowerManagementLimit(
            handle, pynvml.nvmlDeviceGetPowerManagementDefaultLimit(handle))
    elif limit is not None:
        yield "power_limit", lambda: pynvml.nvmlDeviceSetPowerManagementLimit(handle, int(float(limit) * 1000))
    clocks = config.get("gpu_locked_clocks") or {}
    if clocks.get("reset"):
        yield "gpu_locked_clocks", lambda: pynvml.nvmlDeviceResetGpuLockedClocks(handle)
    elif clocks:
        yield "gpu_locked_clocks", lambda: pynvml.nvmlDeviceSetGpuLockedClocks(handle, clocks["min"], clocks["max"])
    memory = config.get("memory_locked_clocks") or {}
    if memory.get("reset"):
        yield "memory_locked_clocks", lambda: pynvml.nvmlDeviceResetMemoryLockedClocks(handle)
    elif memory:
        yield "memory_locked_clocks", lambda: pynvml.nvmlDeviceSetMemoryLockedClocks(handle, memory["min"], memory["max"])
    apps = config.get("applications_clocks") or {}
    if apps.get("preset") == "default":
        yield "applications_clocks", lambda: pynvml.nvmlDeviceResetApplicationsClocks(handle)
    elif apps.get("preset") == "max":
        yield "applications_clocks", lambda: pynvml.nvmlDeviceSetApplicationsClocks(
            handle, pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_MEM),
            pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_GRAPHICS))
    elif apps:
        yield "applications_clocks", lambda: pynvml.nvmlDeviceSetApplicationsClocks(handle, apps["memory"], apps["graphics"])
    if config.get("compute_mode") is not None:
        yield "compute_mode", lambda: pynvml.nvmlDeviceSetComputeMode(handle, COMPUTE_MODES[config["compute_mode"]])


def main(path):
    with open(path, encoding="utf-8") as handle:
        config = json.load(handle)
    failures = 0
    pynvml.nvmlInit()
    try:
        for gpu in select(config.get("gpus", ["all"])):
            uuid = pynvml.nvmlDeviceGetUUID(gpu)
            for name, call in steps(config, gpu):
                try:
                    call()
                    print(f"{uuid}: {name} applied")
                except pynvml.NVMLError as err:
                    print(f"{uuid}: {name} failed: {err}", file=sys.stderr)
                    failures += 1
    finally:
        pynvml.nvmlShutdown()
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: dlnode-gpu-settings CONFIG.json")
    sys.exit(main(sys.argv[1]))
