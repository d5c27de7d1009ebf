# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""Which CUDA toolkits a driver runs, and the package names of a toolkit, cuDNN and NCCL.

Sources:
- NVIDIA CUDA Toolkit Release Notes, table "CUDA Toolkit and Corresponding Driver Versions" (Linux
  x86_64): the driver each toolkit release was built with and needs for every feature
  (TOOLKIT_DRIVERS, "exact" rule).
- NVIDIA CUDA Compatibility guide, "Minor Version Compatibility": an application built with any
  toolkit of a major version runs on a driver of that major's floor, some features limited (a PTX JIT
  of newer PTX, newer driver APIs): CUDA 12.x from 525.60.13, CUDA 13.x from 580 (MINOR_FLOORS,
  "minor" rule).
- The same guide, "Forward Compatibility": cuda-compat-<major>-<minor> lets a newer toolkit run on an
  older driver branch, on datacenter GPUs only.
"""
from __future__ import annotations

import re
from functools import cmp_to_key

from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError
from ansible_collections.dlnode.gpu.plugins.module_utils.packages import versions

# (toolkit release, its update number, the minimum Linux x86_64 driver), newest first.
TOOLKIT_DRIVERS = (
    ("13.2", 1, "595.58.03"), ("13.2", 0, "595.45.04"),
    ("13.1", 1, "590.48.01"), ("13.1", 0, "590.44.01"),
    ("13.0", 2, "580.95.05"), ("13.0", 1, "580.82.07"), ("13.0", 0, "580.65.06"),
    ("12.9", 1, "575.57.08"), ("12.9", 0, "575.51.03"),
    ("12.8", 1, "570.124.06"), ("12.8", 0, "570.26"),
    ("12.6", 3, "560.35.05"), ("12.6", 2, "560.35.03"), ("12.6", 1, "560.35.03"), ("12.6", 0, "560.28.03"),
    ("12.5", 1, "555.42.06"), ("12.5", 0, "555.42.02"),
    ("12.4", 1, "550.54.15"), ("12.4", 0, "550.54.14"),
    ("12.3", 1, "545.23.08"), ("12.3", 0, "545.23.06"),
    ("12.2", 2, "535.104.05"), ("12.2", 1, "535.86.09"), ("12.2", 0, "535.54.03"),
    ("12.1", 1, "530.30.02"), ("12.1", 0, "530.30.02"),
    ("12.0", 1, "525.85.12"), ("12.0", 0, "525.60.13"),
    ("11.8", 0, "520.61.05"),
)
MINOR_FLOORS = {"11": "450.80.02", "12": "525.60.13", "13": "580.65.06"}
VERSION_RE = re.compile(r"^(?P<major>[0-9]+)\.(?P<minor>[0-9]+)(?:\.(?P<patch>[0-9]+))?$")


class CudaError(DlnodeError):
    """A toolkit the driver cannot run, or a version this table does not know."""


def parse(version, option="cuda_toolkit_versions"):
    """(major, minor, update) of 12.8 or 12.8.1 (the toolkit's update number is its patch)."""
    found = VERSION_RE.match(str(version))
    if not found:
        raise CudaError(f"{option}: {version!r} is not a CUDA toolkit version such as 12.8 or 13.0.2")
    return found.group("major"), found.group("minor"), int(found.group("patch") or 0)


def minimum_driver(version, rule, option="cuda_toolkit_versions"):
    """(the minimum driver, why) for a toolkit under a rule: `exact` (the release's own driver) or `minor`."""
    major, minor, update = parse(version, option)
    release = f"{major}.{minor}"
    known = [(number, driver) for name, number, driver in TOOLKIT_DRIVERS if name == release]
    if not known:
        releases = sorted({name for name, _number, _driver in TOOLKIT_DRIVERS}, key=cmp_to_key(versions.compare))
        raise CudaError(f"{option}: CUDA {release} is not in this collection's driver table (it has {', '.join(releases)})")
    if rule == "minor":
        if major not in MINOR_FLOORS:
            raise CudaError(f"{option}: CUDA {major}.x has no minor version compatibility floor in this table")
        return MINOR_FLOORS[major], f"minor version compatibility: any CUDA {major}.x runs on {MINOR_FLOORS[major]} or newer"
    # An update the table does not list needs at least what the newest listed one needs.
    driver = next((driver for number, driver in known if number <= update), known[-1][1])
    label = f"CUDA {release}" + (f" Update {update}" if update else " GA")
    return driver, f"{label} needs {driver} or newer (CUDA Toolkit Release Notes)"


def check_driver(toolkits, driver, rule, compat=False, shown=None):
    """For each toolkit: {version, minimum_driver, reason, runs, compat}; CudaError for one the driver cannot run.

    driver: the driver's version (580.126.16), installed or about to be; None when unknown (no check).
    compat: NVIDIA's forward compatibility package is asked for, for the toolkits the driver is too old for.
    shown: how the refusal names the driver, when not by `driver` (a branch pattern checked as its newest).
    """
    found, refused = [], []
    for version in toolkits:
        minimum, reason = minimum_driver(version, rule)
        runs = driver is None or versions.compare(driver, minimum) >= 0
        found.append({"version": str(version), "minimum_driver": minimum, "reason": reason, "runs": runs,
                      "compat": bool(compat and not runs)})
        if not runs and not compat:
            refused.append(f"CUDA {version} needs driver {minimum} or newer ({reason}); the driver is {shown or driver}")
    if refused:
        raise CudaError("cuda_toolkit_versions: " + "; ".join(refused) + ". Upgrade the driver (nvidia_driver_branch), "
                        "or set cuda_toolkit_forward_compat: true for NVIDIA's cuda-compat package (datacenter GPUs only)")
    return found


def dashed(version):
    """12-8 of 12.8 or 12.8.1: the form NVIDIA's package names use."""
    major, minor, _update = parse(version)
    return f"{major}-{minor}"


def toolkit_packages(version):
    """NVIDIA's metapackage of a toolkit and its version pattern: cuda-toolkit-12-8 at 12.8.* (or 12.8.1-*)."""
    major, minor, update = parse(version)
    exact = str(version).count(".") == 2  # 12.8.1 names an update; 12.8 takes the newest
    return {f"cuda-toolkit-{major}-{minor}": f"{major}.{minor}.{update}-*" if exact else f"{major}.{minor}.*"}


def compat_package(version):
    """NVIDIA's forward compatibility package of a toolkit (its version is a driver's: any)."""
    return {f"cuda-compat-{dashed(version)}": "*"}


def cudnn_packages(cuda_major, version, option="cudnn_version"):
    """cuDNN 9's runtime, dev and headers packages for one CUDA major, at a version (9.14.0.64) or the newest 9."""
    if version and not re.match(r"^9\.[0-9]+(\.[0-9]+){0,2}$", str(version)):
        raise CudaError(f"{option}: {version!r} is not a cuDNN 9 version such as 9.14 or 9.14.0.64")
    pattern = f"{version}.*" if version and str(version).count(".") < 3 else f"{version}-*" if version else "9.*"
    return {f"{name}-cuda-{cuda_major}": pattern for name in ("libcudnn9", "libcudnn9-dev", "libcudnn9-headers")}


def nccl_packages(version, cuda_version, option="cuda_toolkit_nccl_version"):
    """libnccl2 and libnccl-dev built for a CUDA release (2.28.3-1+cuda13.0); version empty: the newest for it."""
    major, minor, _update = parse(cuda_version)
    if version and not re.match(r"^2\.[0-9]+\.[0-9]+$", str(version)):
        raise CudaError(f"{option}: {version!r} is not an NCCL version such as 2.28.3")
    pattern = f"{version or '*'}-*+cuda{major}.{minor}"
    return {"libnccl2": pattern, "libnccl-dev": pattern}
