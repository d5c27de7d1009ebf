# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""Read what the validate checks judge: NVML (through gpu_info), sysfs, /proc and the node's config files.

Reads only. Every path is a host path under files.ROOT, the collection's test seam.
"""
from __future__ import annotations

import glob
import os
import re

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.module_utils.kernel import hugepages as hugepages_utils
from ansible_collections.dlnode.gpu.plugins.module_utils.kernel import io_scheduler
from ansible_collections.dlnode.gpu.plugins.module_utils.kernel import sysctl as sysctl_utils
from ansible_collections.dlnode.gpu.plugins.module_utils.kernel import sysfs
from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import gpu_info
from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import nvml
from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import pci
from ansible_collections.dlnode.gpu.plugins.module_utils.validate import thresholds

NVML_LIBRARY = "libnvidia-ml.so.1"
LIBRARY_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib")
FABRIC_MANAGER = "nv-fabricmanager"
LIMITS_FILES = ("/etc/security/limits.conf", "/etc/security/limits.d/*.conf")
SYSTEMD_FILES = ("/etc/systemd/system.conf", "/etc/systemd/system.conf.d/*.conf")


def _read(path):
    try:
        return files.read(path)
    except files.FileError:
        return None


def _host_glob(pattern):
    """Host paths matching a host glob pattern, sorted (the order systemd and pam read drop-ins)."""
    base = files.host_path("/")
    found = glob.glob(files.host_path(pattern))
    return sorted("/" + os.path.relpath(path, base) for path in found)


# -- GPUs ------------------------------------------------------------------------


def _nvlink(backend, handle):
    links = []
    for link in range(nvml.NVLINK_MAX_LINKS):
        try:
            links.append(backend.nvlink_active(handle, link))
        except (nvml.NotSupported, nvml.InvalidArgument, nvml.FunctionMissing):
            continue
    if not links:
        return gpu_info.UNSUPPORTED
    return {"up": sum(1 for up in links if up), "total": len(links)}


def _extras(backend, count):
    """Per GPU what gpu_facts does not read: volatile uncorrected ECC errors, NVLink states."""
    found = {}
    try:
        backend.init()
    except nvml.NvmlError:
        return found
    try:
        for index in range(count):
            handle = backend.handle(index)
            try:
                errors = backend.ecc_volatile_uncorrected(handle)
            except (nvml.NotSupported, nvml.FunctionMissing):
                errors = gpu_info.UNSUPPORTED
            except nvml.NvmlError as err:
                errors = f"error: {err}"
            found[index] = {"ecc_volatile_uncorrected": errors, "nvlink": _nvlink(backend, handle)}
    finally:
        backend.shutdown()
    return found


def gpus(backend_factory):
    """The dlnode_gpu fact, each NVML GPU with ecc_volatile_uncorrected, nvlink, pci_device_id and model (a key)."""
    fact = gpu_info.collect(backend_factory(), files.ROOT)
    device_ids = {device["pci_bus_id"]: device["device_id"] for device in fact["pci_devices"]}
    extras = _extras(backend_factory(), fact["count"]) if fact["nvml_available"] else {}
    for gpu in fact["gpus"]:
        gpu.update(extras.get(gpu["index"], {}))
        gpu.setdefault("pci_device_id", device_ids.get(gpu["pci_bus_id"]))
        model = thresholds.match_model(gpu.get("name"), gpu["pci_device_id"])
        gpu["model"] = model["key"] if model else None
    return fact


def library_version():
    """The version of the installed libnvidia-ml.so.1 (its file name, libnvidia-ml.so.580.159.04), or None."""
    for directory in LIBRARY_DIRS:
        path = files.host_path(os.path.join(directory, NVML_LIBRARY))
        if os.path.exists(path):
            match = re.search(r"\.so\.(\d+\.\d+(?:\.\d+)?)$", os.path.realpath(path))
            if match:
                return match.group(1)
    return None


def driver_versions(fact, installed_module):
    return {
        "library": library_version() or (fact["driver_version"] if fact["nvml_available"] else None),
        "loaded_module": pci.driver_version(files.ROOT),
        "installed_module": installed_module,
    }


def process_running(name):
    """Whether a process whose comm is ``name`` runs (read from /proc, so it works without systemd)."""
    for comm in glob.glob(files.host_path("/proc/[0-9]*/comm")):
        try:
            with open(comm, encoding="utf-8") as handle:
                if handle.read().strip() == name[:15]:
                    return True
        except OSError:
            continue
    return False


def parse_topology(text):
    """`nvidia-smi topo -m` as data: {gpus: [names], matrix: {row: {column: link}}, affinity: {row: {...}}}."""
    lines = [line.rstrip() for line in (text or "").splitlines() if line.strip()]
    if not lines:
        return None
    header = re.split(r"\t+|\s{2,}", lines[0].strip())
    devices = [name for name in header if re.match(r"^(GPU|NIC|mlx|NV)\w*\d+$", name)]
    extra = [name for name in header if name not in devices]
    matrix, affinity = {}, {}
    for line in lines[1:]:
        fields = [cell.strip() for cell in re.split(r"\t+|\s{2,}", line.strip())]
        if not fields or fields[0] not in devices:
            continue
        row, cells = fields[0], fields[1:]
        matrix[row] = dict(zip(devices, cells[:len(devices)]))
        affinity[row] = dict(zip(extra, cells[len(devices):]))
    return {"devices": devices, "matrix": matrix, "affinity": affinity}


# -- the node --------------------------------------------------------------------


def hugepages_count(size_kb):
    kernel = sysfs.Kernel()
    return kernel.read_int(hugepages_utils.global_path(size_kb, "nr_hugepages"))


def schedulers(devices):
    kernel = sysfs.Kernel()
    found = {}
    for device in devices:
        text = kernel.read(io_scheduler.queue_path(device, "scheduler"))
        found[device] = sysfs.parse_bracketed(text)[0] if text is not None else None
    return found


def sysctl_values(keys):
    return {key: sysctl_utils.read_value(key) for key in keys}


def login_memlock():
    """{soft, hard} memlock for every user ('*') from limits.conf and limits.d, the last line winning."""
    found = {"soft": None, "hard": None}
    for pattern in LIMITS_FILES:
        for path in _host_glob(pattern):
            for line in (_read(path) or "").splitlines():
                fields = line.split("#", 1)[0].split()
                if len(fields) != 4 or fields[0] != "*" or fields[2] != "memlock":
                    continue
                kinds = ("soft", "hard") if fields[1] == "-" else (fields[1],)
                for kind in kinds:
                    if kind in found:
                        found[kind] = fields[3]
    return found


def service_memlock():
    """systemd's DefaultLimitMEMLOCK (the hard value of soft:hard) from system.conf and its drop-ins, or None."""
    value = None
    for pattern in SYSTEMD_FILES:
        for path in _host_glob(pattern):
            for line in (_read(path) or "").splitlines():
                match = re.match(r"^\s*DefaultLimitMEMLOCK\s*=\s*(\S+)", line)
                if match:
                    value = match.group(1).split(":")[-1]
    return value
