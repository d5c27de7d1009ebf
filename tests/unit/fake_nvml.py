"""A fake pynvml built from a real NVML dump (tests/fixtures/nvml/h100-80gb-hbm3/probe.json).

FakePynvml has the pynvml functions the dlnode.gpu backend calls, with the
values and NotSupported errors the real H100 returned. NvmlBackend(lib=fake)
then runs its real error translation against it. Tests tune it:

- ``fail[name] = code``: that function raises NVMLError(code) (e.g. NOT_SUPPORTED);
- ``write_error = code``: every Set*/Reset* call raises it (e.g. NO_PERMISSION);
- ``missing``: names that are absent, as in an older nvidia-ml-py (AttributeError);
- ``init_error = code``: nvmlInit fails (DRIVER_NOT_LOADED, LIBRARY_NOT_FOUND).

Writes change the fake's state, so a later read sees them; ``writes`` logs them.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from types import SimpleNamespace

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "nvml" / "h100-80gb-hbm3"

SUCCESS = 0
INVALID_ARGUMENT = 2
NOT_SUPPORTED = 3
NO_PERMISSION = 4
DRIVER_NOT_LOADED = 9
LIBRARY_NOT_FOUND = 12
FUNCTION_NOT_FOUND = 13
IN_USE = 19
UNKNOWN = 999

_ERROR_STRINGS = {
    INVALID_ARGUMENT: "Invalid Argument",
    NOT_SUPPORTED: "Not Supported",
    NO_PERMISSION: "Insufficient Permissions",
    DRIVER_NOT_LOADED: "Driver Not Loaded",
    LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
    FUNCTION_NOT_FOUND: "Function Not Found",
    IN_USE: "In use by another client",
    UNKNOWN: "Unknown Error",
}

# probe.json "errors" keys -> the pynvml functions that failed that way.
_PROBE_ERROR_FUNCTIONS = {
    "auto_boosted_clocks": ("nvmlDeviceGetAutoBoostedClocksEnabled",),
    "retired_pages_pending": ("nvmlDeviceGetRetiredPagesPendingStatus", "nvmlDeviceGetRetiredPages"),
    "numa_node": ("nvmlDeviceGetNumaNodeId",),
    "nvlink_state_0": ("nvmlDeviceGetNvLinkState",),
}

CLOCK_GRAPHICS, CLOCK_SM, CLOCK_MEM = 0, 1, 2


def load_probe():
    return json.loads((FIXTURES / "probe.json").read_text(encoding="utf-8"))


class NVMLError(Exception):
    """Like pynvml.NVMLError: carries the NVML return code in ``value``."""

    def __init__(self, value):
        super().__init__(value)
        self.value = value

    def __str__(self):
        return _ERROR_STRINGS.get(self.value, f"NVML Error with code {self.value}")


class FakeDevice:
    """One GPU's NVML state, starting from the probe's values."""

    def __init__(self, nvml, index):
        self.index = index
        self.values = copy.deepcopy(nvml)
        if index:
            # Extra GPUs: same model, their own identity and bus address.
            uuid = self.values["uuid"]
            self.values["uuid"] = f"{uuid[:-2]}{index:02x}"
            self.values["pci_bus_id"] = f"00000000:00:{6 + index:02X}.0"
            self.values["serial"] = str(int(self.values["serial"]) + index)
        self.locked_gpu_clocks = None
        self.locked_memory_clocks = None


class FakePynvml:
    """Stands in for the pynvml module."""

    NVMLError = NVMLError

    def __init__(self, gpu_count=None, probe=None):
        probe = probe or load_probe()
        nvml = probe["nvml"]
        count = nvml["device_count"] if gpu_count is None else gpu_count
        self.system = nvml
        self.devices = [FakeDevice(nvml, index) for index in range(count)]
        self.fail = {}
        for key in probe["errors"]:
            for name in _PROBE_ERROR_FUNCTIONS.get(key, ()):
                self.fail[name] = NOT_SUPPORTED
        self.write_error = None
        self.missing = set()
        self.init_error = None
        self.initialized = 0
        self.shutdowns = 0
        self.writes = []

    def __getattribute__(self, name):
        if name.startswith("nvml") and name in object.__getattribute__(self, "missing"):
            raise AttributeError(name)
        return object.__getattribute__(self, name)

    # -- plumbing ---------------------------------------------------------

    def _enter(self, name):
        if not self.initialized:
            raise NVMLError(1)
        if name in self.fail:
            raise NVMLError(self.fail[name])

    def _device(self, name, handle):
        self._enter(name)
        return handle.values

    def _write(self, name, handle, *args):
        self._enter(name)
        if self.write_error is not None:
            raise NVMLError(self.write_error)
        self.writes.append((name, handle.index) + args)
        return handle.values

    # -- system -----------------------------------------------------------

    def nvmlInit(self):
        if self.init_error is not None:
            raise NVMLError(self.init_error)
        self.initialized += 1

    def nvmlShutdown(self):
        self._enter("nvmlShutdown")
        self.initialized -= 1
        self.shutdowns += 1

    def nvmlSystemGetDriverVersion(self):
        self._enter("nvmlSystemGetDriverVersion")
        return self.system["driver_version"]

    def nvmlSystemGetNVMLVersion(self):
        self._enter("nvmlSystemGetNVMLVersion")
        return self.system["nvml_version"]

    def nvmlSystemGetCudaDriverVersion(self):
        self._enter("nvmlSystemGetCudaDriverVersion")
        return self.system["cuda_driver_version"]

    def nvmlDeviceGetCount(self):
        self._enter("nvmlDeviceGetCount")
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index):
        self._enter("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < len(self.devices):
            raise NVMLError(INVALID_ARGUMENT)
        return self.devices[index]

    # -- reads ------------------------------------------------------------

    def nvmlDeviceGetName(self, handle):
        return self._device("nvmlDeviceGetName", handle)["name"]

    def nvmlDeviceGetUUID(self, handle):
        return self._device("nvmlDeviceGetUUID", handle)["uuid"]

    def nvmlDeviceGetPciInfo(self, handle):
        values = self._device("nvmlDeviceGetPciInfo", handle)
        # The real struct holds bytes; the backend must decode them.
        return SimpleNamespace(busId=values["pci_bus_id"].encode(), pciDeviceId=0x233010DE)

    def nvmlDeviceGetVbiosVersion(self, handle):
        return self._device("nvmlDeviceGetVbiosVersion", handle)["vbios"]

    def nvmlDeviceGetArchitecture(self, handle):
        return self._device("nvmlDeviceGetArchitecture", handle)["architecture"]

    def nvmlDeviceGetCudaComputeCapability(self, handle):
        return tuple(self._device("nvmlDeviceGetCudaComputeCapability", handle)["cuda_compute_capability"])

    def nvmlDeviceGetMemoryInfo(self, handle):
        total = self._device("nvmlDeviceGetMemoryInfo", handle)["memory_total_bytes"]
        return SimpleNamespace(total=total, free=total, used=0)

    def nvmlDeviceGetPersistenceMode(self, handle):
        return self._device("nvmlDeviceGetPersistenceMode", handle)["persistence_mode"]

    def nvmlDeviceGetComputeMode(self, handle):
        return self._device("nvmlDeviceGetComputeMode", handle)["compute_mode"]

    def nvmlDeviceGetEccMode(self, handle):
        return list(self._device("nvmlDeviceGetEccMode", handle)["ecc_mode"])

    def nvmlDeviceGetMigMode(self, handle):
        return list(self._device("nvmlDeviceGetMigMode", handle)["mig_mode"])

    def nvmlDeviceGetPowerManagementLimit(self, handle):
        return self._device("nvmlDeviceGetPowerManagementLimit", handle)["power_limit_mw"]

    def nvmlDeviceGetPowerManagementDefaultLimit(self, handle):
        return self._device("nvmlDeviceGetPowerManagementDefaultLimit", handle)["power_limit_default_mw"]

    def nvmlDeviceGetPowerManagementLimitConstraints(self, handle):
        return list(self._device("nvmlDeviceGetPowerManagementLimitConstraints", handle)["power_limit_constraints_mw"])

    def nvmlDeviceGetEnforcedPowerLimit(self, handle):
        return self._device("nvmlDeviceGetEnforcedPowerLimit", handle)["enforced_power_limit_mw"]

    def _clock(self, name, handle, clock_type, prefix):
        values = self._device(name, handle)
        kind = {CLOCK_GRAPHICS: "graphics", CLOCK_SM: "sm", CLOCK_MEM: "mem"}.get(clock_type)
        key = f"{prefix}clock_{kind}_mhz"
        if key not in values:
            raise NVMLError(INVALID_ARGUMENT)
        return values[key]

    def nvmlDeviceGetClockInfo(self, handle, clock_type):
        return self._clock("nvmlDeviceGetClockInfo", handle, clock_type, "")

    def nvmlDeviceGetMaxClockInfo(self, handle, clock_type):
        return self._clock("nvmlDeviceGetMaxClockInfo", handle, clock_type, "max_")

    def nvmlDeviceGetApplicationsClock(self, handle, clock_type):
        return self._clock("nvmlDeviceGetApplicationsClock", handle, clock_type, "app_")

    def nvmlDeviceGetDefaultApplicationsClock(self, handle, clock_type):
        return self._clock("nvmlDeviceGetDefaultApplicationsClock", handle, clock_type, "default_app_")

    def nvmlDeviceGetSupportedMemoryClocks(self, handle):
        return list(self._device("nvmlDeviceGetSupportedMemoryClocks", handle)["supported_memory_clocks"])

    def nvmlDeviceGetSupportedGraphicsClocks(self, handle, memory_clock):
        values = self._device("nvmlDeviceGetSupportedGraphicsClocks", handle)
        clocks = values["supported_graphics_clocks"].get(str(memory_clock))
        if clocks is None:
            raise NVMLError(INVALID_ARGUMENT)
        return list(clocks)

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle):
        return self._device("nvmlDeviceGetCurrentClocksEventReasons", handle)["clocks_event_reasons"]

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle):
        return self._device("nvmlDeviceGetCurrentClocksThrottleReasons", handle)["clocks_event_reasons"]

    def nvmlDeviceGetCurrPcieLinkGeneration(self, handle):
        return self._device("nvmlDeviceGetCurrPcieLinkGeneration", handle)["pcie_gen_cur"]

    def nvmlDeviceGetMaxPcieLinkGeneration(self, handle):
        return self._device("nvmlDeviceGetMaxPcieLinkGeneration", handle)["pcie_gen_max"]

    def nvmlDeviceGetCurrPcieLinkWidth(self, handle):
        return self._device("nvmlDeviceGetCurrPcieLinkWidth", handle)["pcie_width_cur"]

    def nvmlDeviceGetMaxPcieLinkWidth(self, handle):
        return self._device("nvmlDeviceGetMaxPcieLinkWidth", handle)["pcie_width_max"]

    def nvmlDeviceGetRetiredPages(self, handle, _cause):
        self._device("nvmlDeviceGetRetiredPages", handle)
        return []

    def nvmlDeviceGetRetiredPagesPendingStatus(self, handle):
        self._device("nvmlDeviceGetRetiredPagesPendingStatus", handle)
        return 0

    def nvmlDeviceGetRemappedRows(self, handle):
        return tuple(self._device("nvmlDeviceGetRemappedRows", handle)["remapped_rows"])

    def nvmlDeviceGetTotalEccErrors(self, handle, error_type, counter_type):
        values = self._device("nvmlDeviceGetTotalEccErrors", handle)
        if (error_type, counter_type) != (1, 0):
            raise NVMLError(INVALID_ARGUMENT)
        return values["ecc_volatile_uncorrected"]

    def nvmlDeviceGetNvLinkState(self, handle, link):
        """``nvlink_states`` (one 0/1 per link) where a test sets it; the real H100 VM has none."""
        states = self._device("nvmlDeviceGetNvLinkState", handle).get("nvlink_states", [])
        if link >= len(states):
            raise NVMLError(NOT_SUPPORTED)
        return states[link]

    # -- writes (validated the way the driver does) -----------------------

    def nvmlDeviceSetPersistenceMode(self, handle, mode):
        self._write("nvmlDeviceSetPersistenceMode", handle, mode)["persistence_mode"] = mode

    def nvmlDeviceSetComputeMode(self, handle, mode):
        values = self._write("nvmlDeviceSetComputeMode", handle, mode)
        if mode not in (0, 2, 3):
            raise NVMLError(INVALID_ARGUMENT)
        values["compute_mode"] = mode

    def nvmlDeviceSetPowerManagementLimit(self, handle, limit):
        values = self._write("nvmlDeviceSetPowerManagementLimit", handle, limit)
        low, high = values["power_limit_constraints_mw"]
        if not low <= limit <= high:
            raise NVMLError(INVALID_ARGUMENT)
        values["power_limit_mw"] = limit
        values["enforced_power_limit_mw"] = limit

    def nvmlDeviceSetGpuLockedClocks(self, handle, low, high):
        self._write("nvmlDeviceSetGpuLockedClocks", handle, low, high)
        handle.locked_gpu_clocks = (low, high)

    def nvmlDeviceResetGpuLockedClocks(self, handle):
        self._write("nvmlDeviceResetGpuLockedClocks", handle)
        handle.locked_gpu_clocks = None

    def nvmlDeviceSetMemoryLockedClocks(self, handle, low, high):
        self._write("nvmlDeviceSetMemoryLockedClocks", handle, low, high)
        handle.locked_memory_clocks = (low, high)

    def nvmlDeviceResetMemoryLockedClocks(self, handle):
        self._write("nvmlDeviceResetMemoryLockedClocks", handle)
        handle.locked_memory_clocks = None

    def nvmlDeviceSetApplicationsClocks(self, handle, memory_clock, graphics_clock):
        values = self._write("nvmlDeviceSetApplicationsClocks", handle, memory_clock, graphics_clock)
        if graphics_clock not in values["supported_graphics_clocks"].get(str(memory_clock), []):
            raise NVMLError(INVALID_ARGUMENT)
        values["app_clock_mem_mhz"] = memory_clock
        values["app_clock_graphics_mhz"] = graphics_clock

    def nvmlDeviceResetApplicationsClocks(self, handle):
        values = self._write("nvmlDeviceResetApplicationsClocks", handle)
        values["app_clock_mem_mhz"] = values["default_app_clock_mem_mhz"]
        values["app_clock_graphics_mhz"] = values["default_app_clock_graphics_mhz"]

    def nvmlDeviceSetEccMode(self, handle, mode):
        # ECC changes wait for a reboot: only the pending value moves.
        self._write("nvmlDeviceSetEccMode", handle, mode)["ecc_mode"][1] = mode

    def nvmlDeviceSetMigMode(self, handle, mode):
        # Like a GPU with a client attached: MIG stays pending until a reset.
        self._write("nvmlDeviceSetMigMode", handle, mode)["mig_mode"][1] = mode
        return IN_USE

    # -- test helpers -----------------------------------------------------

    def reboot(self):
        """What a reboot does to NVML state: pending modes apply, volatile settings reset."""
        for device in self.devices:
            values = device.values
            values["ecc_mode"][0] = values["ecc_mode"][1]
            values["mig_mode"][0] = values["mig_mode"][1]
            values["power_limit_mw"] = values["power_limit_default_mw"]
            values["enforced_power_limit_mw"] = values["power_limit_default_mw"]
            values["app_clock_mem_mhz"] = values["default_app_clock_mem_mhz"]
            values["app_clock_graphics_mhz"] = values["default_app_clock_graphics_mhz"]
            device.locked_gpu_clocks = None
            device.locked_memory_clocks = None
