# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""NVML read straight from libnvidia-ml.so.1 with ctypes: the driver's own check, with no Python bindings.

Right after an install the node may have no nvidia-ml-py; the library the driver installed is what
must answer. nvmlInit_v2 is where "Driver/library version mismatch" (NVML_ERROR_LIB_RM_VERSION_MISMATCH)
shows when the loaded kernel module is not the installed library's.
"""
from __future__ import annotations

import ctypes

LIBRARY = "libnvidia-ml.so.1"
VERSION_BUFFER = 96  # NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE is 80


def _error(lib, rc):
    try:
        lib.nvmlErrorString.restype = ctypes.c_char_p
        text = lib.nvmlErrorString(rc)
        return text.decode() if isinstance(text, bytes) else str(text)
    except (AttributeError, TypeError):
        return f"NVML error {rc}"


def probe(loader=ctypes.CDLL, library=LIBRARY):
    """{ok, driver_version, gpu_count, reason}: what NVML says about the driver, or why it cannot."""
    found = {"ok": False, "driver_version": None, "gpu_count": None, "reason": None}
    try:
        lib = loader(library)
    except OSError as err:
        found["reason"] = f"{library} cannot be loaded ({err})"
        return found
    rc = lib.nvmlInit_v2()
    if rc:
        found["reason"] = f"nvmlInit: {_error(lib, rc)}"
        return found
    try:
        version = ctypes.create_string_buffer(VERSION_BUFFER)
        rc = lib.nvmlSystemGetDriverVersion(version, VERSION_BUFFER)
        if rc:
            found["reason"] = f"nvmlSystemGetDriverVersion: {_error(lib, rc)}"
            return found
        count = ctypes.c_uint(0)
        rc = lib.nvmlDeviceGetCount_v2(ctypes.byref(count))
        if rc:
            found["reason"] = f"nvmlDeviceGetCount: {_error(lib, rc)}"
            return found
        found.update(ok=True, driver_version=version.value.decode(), gpu_count=count.value)
        return found
    finally:
        lib.nvmlShutdown()
