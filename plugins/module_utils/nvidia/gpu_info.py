# Copyright: contributors to dlnode.gpu
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Collect the dlnode_gpu facts from sysfs and, when it loads, NVML."""
from __future__ import annotations

from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import nvml
from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import pci

# The marker for values this GPU or driver cannot report. A string, so that
# it is never mistaken for a real value (0, False) in a playbook condition.
UNSUPPORTED = "unsupported"

ARCHITECTURES = {
    2: "kepler",
    3: "maxwell",
    4: "pascal",
    5: "volta",
    6: "turing",
    7: "ampere",
    8: "ada",
    9: "hopper",
    10: "blackwell",
}

COMPUTE_MODES = {
    0: "default",
    1: "exclusive_thread",
    2: "prohibited",
    3: "exclusive_process",
}

# Bits of nvmlClocksEventReasons, in nvml.h order.
CLOCK_EVENT_REASONS = (
    (0x001, "gpu_idle"),
    (0x002, "applications_clocks_setting"),
    (0x004, "sw_power_cap"),
    (0x008, "hw_slowdown"),
    (0x010, "sync_boost"),
    (0x020, "sw_thermal_slowdown"),
    (0x040, "hw_thermal_slowdown"),
    (0x080, "hw_power_brake_slowdown"),
    (0x100, "display_clock_setting"),
)


def watts(milliwatts):
    """NVML milliwatts to watts, as an int when it is a whole number."""
    value = milliwatts / 1000
    return int(value) if value.is_integer() else value


def cuda_version_string(version):
    """NVML's 13000 -> '13.0'."""
    return f"{version // 1000}.{version % 1000 // 10}"


def clock_event_reason_names(mask):
    return [name for bit, name in CLOCK_EVENT_REASONS if mask & bit]


class _Reader:
    """Run one NVML read, turning 'not supported' into the UNSUPPORTED marker.

    Other errors (permission, a lost GPU) are kept per field in ``errors``
    so one bad value does not hide all the others.
    """

    def __init__(self):
        self.errors = {}

    def __call__(self, field, function, *args):
        try:
            return function(*args)
        except (nvml.NotSupported, nvml.FunctionMissing):
            return UNSUPPORTED
        except nvml.NvmlError as err:
            self.errors[field] = str(err)
            return None


def _supported_clocks(backend, handle):
    memory = backend.supported_memory_clocks(handle)
    graphics = {str(clock): backend.supported_graphics_clocks(handle, clock) for clock in memory}
    return {"memory": memory, "graphics": graphics}


def _power(backend, handle):
    low, high = backend.power_limit_constraints(handle)
    return {"min_limit_w": watts(low), "max_limit_w": watts(high)}


def _clock_set(read, field, function, handle, kinds):
    return {
        name: read(f"{field}.{name}", function, handle, clock_type)
        for name, clock_type in kinds
    }


_ALL_CLOCKS = (("graphics", nvml.CLOCK_GRAPHICS), ("sm", nvml.CLOCK_SM), ("memory", nvml.CLOCK_MEM))
_APP_CLOCKS = (("graphics", nvml.CLOCK_GRAPHICS), ("memory", nvml.CLOCK_MEM))


def _mode_pair(value):
    if value in (UNSUPPORTED, None):
        return value
    current, pending = value
    return {"current": current, "pending": pending}


def gpu_details(backend, index, sysfs_by_bus_id):
    """Everything NVML reports about GPU ``index`` that the dlnode roles use."""
    handle = backend.handle(index)
    read = _Reader()
    bus_id = read("pci_bus_id", backend.pci_bus_id, handle)
    bus_id = pci.normalize_bus_id(bus_id) or bus_id
    sysfs = sysfs_by_bus_id.get(bus_id, {})

    architecture = read("architecture", backend.architecture, handle)
    if isinstance(architecture, int):
        architecture = ARCHITECTURES.get(architecture, f"unknown ({architecture})")
    capability = read("compute_capability", backend.compute_capability, handle)
    if isinstance(capability, tuple):
        capability = f"{capability[0]}.{capability[1]}"
    memory = read("memory_total_mib", backend.memory_total, handle)
    if isinstance(memory, int):
        memory = memory // (1024 * 1024)
    compute_mode = read("compute_mode", backend.compute_mode, handle)
    if isinstance(compute_mode, int):
        compute_mode = COMPUTE_MODES.get(compute_mode, f"unknown ({compute_mode})")
    reasons = read("clock_event_reasons", backend.clocks_event_reasons, handle)
    if isinstance(reasons, int):
        reasons = {"mask": reasons, "active": clock_event_reason_names(reasons)}

    power = {
        "limit_w": read("power.limit_w", backend.power_limit, handle),
        "default_limit_w": read("power.default_limit_w", backend.power_default_limit, handle),
        "enforced_limit_w": read("power.enforced_limit_w", backend.enforced_power_limit, handle),
    }
    power = {key: watts(value) if isinstance(value, int) else value for key, value in power.items()}
    constraints = read("power.constraints", _power, backend, handle)
    if isinstance(constraints, dict):
        power.update(constraints)
    else:
        power.update(min_limit_w=constraints, max_limit_w=constraints)

    details = {
        "index": index,
        "source": "nvml",
        "name": read("name", backend.name, handle),
        "uuid": read("uuid", backend.uuid, handle),
        "pci_bus_id": bus_id,
        "vbios_version": read("vbios_version", backend.vbios_version, handle),
        "architecture": architecture,
        "compute_capability": capability,
        "memory_total_mib": memory,
        "persistence_mode": read("persistence_mode", backend.persistence_mode, handle),
        "compute_mode": compute_mode,
        "power": power,
        "clocks": {
            "current": _clock_set(read, "clocks.current", backend.clock, handle, _ALL_CLOCKS),
            "max": _clock_set(read, "clocks.max", backend.max_clock, handle, _ALL_CLOCKS),
            "applications": _clock_set(
                read, "clocks.applications", backend.applications_clock, handle, _APP_CLOCKS
            ),
            "default_applications": _clock_set(
                read, "clocks.default_applications", backend.default_applications_clock, handle, _APP_CLOCKS
            ),
        },
        "supported_clocks": read("supported_clocks", _supported_clocks, backend, handle),
        "ecc_mode": _mode_pair(read("ecc_mode", backend.ecc_mode, handle)),
        "mig_mode": _mode_pair(read("mig_mode", backend.mig_mode, handle)),
        "pcie": {
            "generation_current": read("pcie.generation_current", backend.pcie_link_generation, handle),
            "generation_max": read("pcie.generation_max", backend.pcie_max_link_generation, handle),
            "width_current": read("pcie.width_current", backend.pcie_link_width, handle),
            "width_max": read("pcie.width_max", backend.pcie_max_link_width, handle),
        },
        "clock_event_reasons": reasons,
        "retired_pages": read("retired_pages", backend.retired_pages, handle),
        "remapped_rows": read("remapped_rows", backend.remapped_rows, handle),
        # NVML's NUMA query is not supported on many systems; sysfs knows.
        "numa_node": sysfs.get("numa_node"),
        "driver": sysfs.get("driver"),
        "errors": read.errors,
    }
    return details


def _sysfs_gpu(index, device):
    return {
        "index": index,
        "source": "sysfs",
        "name": None,
        "uuid": None,
        "pci_bus_id": device["pci_bus_id"],
        "pci_device_id": device["device_id"],
        "numa_node": device["numa_node"],
        "driver": device["driver"],
        "pcie": device["pcie"],
    }


def collect(backend, sysfs_root="/"):
    """Return the dlnode_gpu fact.

    sysfs gives presence and PCI data even without a driver; NVML adds the
    details when it can be initialised, and ``reason`` says why it could not.
    """
    devices = pci.nvidia_devices(sysfs_root)
    pci_gpus = [device for device in devices if device["kind"] == "gpu"]
    switches = [device for device in devices if device["kind"] == "nvswitch"]
    facts = {
        "present": bool(pci_gpus),
        "count": len(pci_gpus),
        "gpus": [_sysfs_gpu(index, device) for index, device in enumerate(pci_gpus)],
        "pci_devices": devices,
        "nvswitch_present": bool(switches),
        "nvswitch_count": len(switches),
        "driver_loaded": pci.driver_loaded(sysfs_root),
        "driver_version": pci.driver_version(sysfs_root),
        "cuda_driver_version": None,
        "nvml_version": None,
        "nvml_available": False,
        "reason": None,
    }

    try:
        backend.init()
    except nvml.NvmlError as err:
        facts["reason"] = init_failure_reason(err)
        return facts
    try:
        by_bus_id = {device["pci_bus_id"]: device for device in pci_gpus}
        facts["driver_loaded"] = True
        facts["driver_version"] = backend.driver_version()
        facts["nvml_version"] = backend.nvml_version()
        facts["cuda_driver_version"] = cuda_version_string(backend.cuda_driver_version())
        gpus = [gpu_details(backend, index, by_bus_id) for index in range(backend.device_count())]
        facts.update(
            gpus=gpus,
            count=len(gpus),
            present=bool(gpus) or facts["present"],
            nvml_available=True,
        )
    except nvml.NvmlError as err:
        facts["reason"] = f"NVML initialised but failed while reading: {err}"
    finally:
        backend.shutdown()
    return facts


def init_failure_reason(err):
    """One line on why NVML could not be used, for humans."""
    if isinstance(err, nvml.LibraryMissing):
        if err.python:
            return nvml.PYNVML_MISSING_MSG
        return f"the NVML library (libnvidia-ml.so.1) was not found: the NVIDIA driver is not installed ({err})"
    if isinstance(err, nvml.DriverNotLoaded):
        return f"the NVIDIA driver is not loaded ({err})"
    if isinstance(err, nvml.NoPermission):
        return f"no permission to open the NVIDIA devices; this needs become ({err})"
    return f"NVML could not be initialised: {err}"
