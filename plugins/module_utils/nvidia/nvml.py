# Copyright: contributors to dlnode.gpu
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A thin backend over pynvml (nvidia-ml-py).

Every NVML call goes through NvmlBackend so that the modules never see
pynvml's error classes: they are translated into the few exceptions below.
Unit tests pass a fake pynvml as ``lib``; the real one is used otherwise.
"""
from __future__ import annotations

import traceback

try:
    import pynvml
except ImportError:
    pynvml = None
    HAS_PYNVML = False
    PYNVML_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_PYNVML = True
    PYNVML_IMPORT_ERROR = None

# NVML return codes (nvml.h). Kept here so that this file works without pynvml.
_ERROR_INVALID_ARGUMENT = 2
_ERROR_NOT_SUPPORTED = 3
_ERROR_NO_PERMISSION = 4
_ERROR_DRIVER_NOT_LOADED = 9
_ERROR_LIBRARY_NOT_FOUND = 12
_ERROR_FUNCTION_NOT_FOUND = 13
_ERROR_DEPRECATED = 26

CLOCK_GRAPHICS = 0
CLOCK_SM = 1
CLOCK_MEM = 2

_MEMORY_ERROR_UNCORRECTED = 1
_VOLATILE_ECC = 0
NVLINK_MAX_LINKS = 18

_PAGE_RETIREMENT_SINGLE_BIT = 0
_PAGE_RETIREMENT_DOUBLE_BIT = 1


class NvmlError(Exception):
    """Any NVML failure. ``function`` names the NVML call that failed."""

    def __init__(self, message, function=None):
        super().__init__(message)
        self.function = function


class NotSupported(NvmlError):
    """The GPU or driver does not support this call (NVML_ERROR_NOT_SUPPORTED)."""


class NoPermission(NvmlError):
    """The call needs root (NVML_ERROR_NO_PERMISSION)."""


class DriverNotLoaded(NvmlError):
    """The nvidia kernel module is not loaded (NVML_ERROR_DRIVER_NOT_LOADED)."""


class LibraryMissing(NvmlError):
    """pynvml is not installed (``python`` is True) or libnvidia-ml.so.1 is missing."""

    def __init__(self, message, function=None, python=False):
        super().__init__(message, function)
        self.python = python


class FunctionMissing(NvmlError):
    """The driver's NVML or the installed pynvml lacks this function (too old)."""


class InvalidArgument(NvmlError):
    """NVML rejected a value (NVML_ERROR_INVALID_ARGUMENT)."""


_CODE_TO_ERROR = {
    _ERROR_INVALID_ARGUMENT: InvalidArgument,
    _ERROR_NOT_SUPPORTED: NotSupported,
    _ERROR_DEPRECATED: NotSupported,
    _ERROR_NO_PERMISSION: NoPermission,
    _ERROR_DRIVER_NOT_LOADED: DriverNotLoaded,
    _ERROR_LIBRARY_NOT_FOUND: LibraryMissing,
    _ERROR_FUNCTION_NOT_FOUND: FunctionMissing,
}

PYNVML_MISSING_MSG = (
    "the Python library nvidia-ml-py (import name pynvml) is not installed "
    "for the Python that runs Ansible on this host: install nvidia-ml-py"
)


def _text(value):
    # Older pynvml returns bytes, newer returns str.
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


class NvmlBackend:
    """Wrap the pynvml calls the dlnode.gpu modules need.

    Use init() and shutdown() (or ``with backend:``) around the other calls.
    """

    def __init__(self, lib=None):
        self._lib = lib if lib is not None else pynvml
        self._initialized = False

    # -- plumbing ---------------------------------------------------------

    def _call(self, name, *args):
        if self._lib is None:
            raise LibraryMissing(PYNVML_MISSING_MSG, name, python=True)
        try:
            function = getattr(self._lib, name)
        except AttributeError:
            raise FunctionMissing(
                f"{name} is not available in the installed nvidia-ml-py (too old?)", name
            ) from None
        try:
            return function(*args)
        except self._lib.NVMLError as err:
            code = getattr(err, "value", None)
            error_class = _CODE_TO_ERROR.get(code, NvmlError)
            raise error_class(f"{name}: {err}", name) from None

    def init(self):
        self._call("nvmlInit")
        self._initialized = True

    def shutdown(self):
        """Shut NVML down if init() succeeded; never raises."""
        if not self._initialized:
            return
        self._initialized = False
        try:
            self._call("nvmlShutdown")
        except NvmlError:
            # Nothing useful can be done about a failed shutdown at exit.
            pass

    def __enter__(self):
        self.init()
        return self

    def __exit__(self, *exc):
        self.shutdown()
        return False

    # -- system -----------------------------------------------------------

    def driver_version(self):
        return _text(self._call("nvmlSystemGetDriverVersion"))

    def nvml_version(self):
        return _text(self._call("nvmlSystemGetNVMLVersion"))

    def cuda_driver_version(self):
        """CUDA version the driver supports, as NVML's integer (13000 = 13.0)."""
        return self._call("nvmlSystemGetCudaDriverVersion")

    def device_count(self):
        return self._call("nvmlDeviceGetCount")

    def handle(self, index):
        return self._call("nvmlDeviceGetHandleByIndex", index)

    # -- device identity --------------------------------------------------

    def name(self, handle):
        return _text(self._call("nvmlDeviceGetName", handle))

    def uuid(self, handle):
        return _text(self._call("nvmlDeviceGetUUID", handle))

    def pci_bus_id(self, handle):
        return _text(self._call("nvmlDeviceGetPciInfo", handle).busId)

    def vbios_version(self, handle):
        return _text(self._call("nvmlDeviceGetVbiosVersion", handle))

    def architecture(self, handle):
        return self._call("nvmlDeviceGetArchitecture", handle)

    def compute_capability(self, handle):
        major, minor = self._call("nvmlDeviceGetCudaComputeCapability", handle)
        return major, minor

    def memory_total(self, handle):
        """Total framebuffer memory in bytes."""
        return self._call("nvmlDeviceGetMemoryInfo", handle).total

    # -- modes ------------------------------------------------------------

    def persistence_mode(self, handle):
        return self._call("nvmlDeviceGetPersistenceMode", handle) == 1

    def compute_mode(self, handle):
        return self._call("nvmlDeviceGetComputeMode", handle)

    def ecc_mode(self, handle):
        """(current, pending) as booleans."""
        current, pending = self._call("nvmlDeviceGetEccMode", handle)
        return current == 1, pending == 1

    def mig_mode(self, handle):
        """(current, pending) as booleans."""
        current, pending = self._call("nvmlDeviceGetMigMode", handle)
        return current == 1, pending == 1

    # -- power ------------------------------------------------------------

    def power_limit(self, handle):
        """The requested power limit in milliwatts."""
        return self._call("nvmlDeviceGetPowerManagementLimit", handle)

    def power_default_limit(self, handle):
        return self._call("nvmlDeviceGetPowerManagementDefaultLimit", handle)

    def power_limit_constraints(self, handle):
        """(min, max) power limit in milliwatts."""
        low, high = self._call("nvmlDeviceGetPowerManagementLimitConstraints", handle)
        return low, high

    def enforced_power_limit(self, handle):
        return self._call("nvmlDeviceGetEnforcedPowerLimit", handle)

    # -- clocks -----------------------------------------------------------

    def clock(self, handle, clock_type):
        return self._call("nvmlDeviceGetClockInfo", handle, clock_type)

    def max_clock(self, handle, clock_type):
        return self._call("nvmlDeviceGetMaxClockInfo", handle, clock_type)

    def applications_clock(self, handle, clock_type):
        return self._call("nvmlDeviceGetApplicationsClock", handle, clock_type)

    def default_applications_clock(self, handle, clock_type):
        return self._call("nvmlDeviceGetDefaultApplicationsClock", handle, clock_type)

    def supported_memory_clocks(self, handle):
        return list(self._call("nvmlDeviceGetSupportedMemoryClocks", handle))

    def supported_graphics_clocks(self, handle, memory_clock):
        return list(self._call("nvmlDeviceGetSupportedGraphicsClocks", handle, memory_clock))

    def clocks_event_reasons(self, handle):
        """Bit mask of why clocks are held down (the 'throttle reasons' before NVML 12)."""
        try:
            return self._call("nvmlDeviceGetCurrentClocksEventReasons", handle)
        except FunctionMissing:
            return self._call("nvmlDeviceGetCurrentClocksThrottleReasons", handle)

    # -- PCIe -------------------------------------------------------------

    def pcie_link_generation(self, handle):
        return self._call("nvmlDeviceGetCurrPcieLinkGeneration", handle)

    def pcie_max_link_generation(self, handle):
        return self._call("nvmlDeviceGetMaxPcieLinkGeneration", handle)

    def pcie_link_width(self, handle):
        return self._call("nvmlDeviceGetCurrPcieLinkWidth", handle)

    def pcie_max_link_width(self, handle):
        return self._call("nvmlDeviceGetMaxPcieLinkWidth", handle)

    # -- memory health ----------------------------------------------------

    def retired_pages(self, handle):
        """Retired page counts (pre-Ampere GPUs; newer ones remap rows instead)."""
        single = self._call("nvmlDeviceGetRetiredPages", handle, _PAGE_RETIREMENT_SINGLE_BIT)
        double = self._call("nvmlDeviceGetRetiredPages", handle, _PAGE_RETIREMENT_DOUBLE_BIT)
        pending = self._call("nvmlDeviceGetRetiredPagesPendingStatus", handle)
        return {"single_bit_ecc": len(single), "double_bit_ecc": len(double), "pending": pending == 1}

    def remapped_rows(self, handle):
        correctable, uncorrectable, pending, failure = self._call("nvmlDeviceGetRemappedRows", handle)
        return {
            "correctable": correctable,
            "uncorrectable": uncorrectable,
            "pending": bool(pending),
            "failure": bool(failure),
        }

    def ecc_volatile_uncorrected(self, handle):
        """Uncorrected ECC errors since the driver loaded."""
        return self._call("nvmlDeviceGetTotalEccErrors", handle, _MEMORY_ERROR_UNCORRECTED, _VOLATILE_ECC)

    # -- NVLink -----------------------------------------------------------

    def nvlink_active(self, handle, link):
        """Whether NVLink ``link`` is up; NotSupported or InvalidArgument for a link the GPU does not have."""
        return self._call("nvmlDeviceGetNvLinkState", handle, link) == 1

    # -- writes -----------------------------------------------------------

    def set_persistence_mode(self, handle, enabled):
        self._call("nvmlDeviceSetPersistenceMode", handle, 1 if enabled else 0)

    def set_compute_mode(self, handle, mode):
        self._call("nvmlDeviceSetComputeMode", handle, mode)

    def set_power_limit(self, handle, milliwatts):
        self._call("nvmlDeviceSetPowerManagementLimit", handle, milliwatts)

    def set_gpu_locked_clocks(self, handle, low, high):
        self._call("nvmlDeviceSetGpuLockedClocks", handle, low, high)

    def reset_gpu_locked_clocks(self, handle):
        self._call("nvmlDeviceResetGpuLockedClocks", handle)

    def set_memory_locked_clocks(self, handle, low, high):
        self._call("nvmlDeviceSetMemoryLockedClocks", handle, low, high)

    def reset_memory_locked_clocks(self, handle):
        self._call("nvmlDeviceResetMemoryLockedClocks", handle)

    def set_applications_clocks(self, handle, memory_clock, graphics_clock):
        self._call("nvmlDeviceSetApplicationsClocks", handle, memory_clock, graphics_clock)

    def reset_applications_clocks(self, handle):
        self._call("nvmlDeviceResetApplicationsClocks", handle)

    def set_ecc_mode(self, handle, enabled):
        self._call("nvmlDeviceSetEccMode", handle, 1 if enabled else 0)

    def set_mig_mode(self, handle, enabled):
        self._call("nvmlDeviceSetMigMode", handle, 1 if enabled else 0)
