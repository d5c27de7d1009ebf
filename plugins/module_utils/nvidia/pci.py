# Copyright: contributors to dlnode.gpu
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Find NVIDIA PCI devices in sysfs.

This works without the NVIDIA driver, so it can tell "no GPU" from
"GPU present but the driver is not loaded". Every function takes the
filesystem root so that tests can point it at a fake tree.
"""
from __future__ import annotations

import os
import re

NVIDIA_VENDOR_ID = 0x10DE

# PCI class code without the programming interface byte: 0x0300 VGA
# controller, 0x0302 3D controller (data-center GPUs), 0x0680 "other
# bridge", which is how NVSwitch chips show up.
GPU_CLASSES = (0x0300, 0x0302)
NVSWITCH_CLASS = 0x0680

# sysfs reports link speed per lane; each PCIe generation has its own.
_SPEED_TO_GENERATION = {
    "2.5": 1,
    "5.0": 2,
    "8.0": 3,
    "16.0": 4,
    "32.0": 5,
    "64.0": 6,
}

_BUS_ID_RE = re.compile(
    r"^(?:(?P<domain>[0-9a-f]{1,8}):)?(?P<bus>[0-9a-f]{1,2}):(?P<device>[0-9a-f]{1,2})\.(?P<function>[0-7])$"
)


def _read(path):
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return None


def _hex(text):
    try:
        return int(text, 16)
    except (TypeError, ValueError):
        return None


def _int(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def normalize_bus_id(bus_id):
    """Return a PCI address in sysfs form (``0000:00:06.0``), or None.

    NVML writes ``00000000:00:06.0`` (eight-digit domain, upper case) and
    lspci ``00:06.0``; all three name the same device.
    """
    match = _BUS_ID_RE.match(str(bus_id).strip().lower())
    if not match:
        return None
    domain = int(match.group("domain") or "0", 16)
    bus = int(match.group("bus"), 16)
    device = int(match.group("device"), 16)
    return f"{domain:04x}:{bus:02x}:{device:02x}.{match.group('function')}"


def link_generation(speed):
    """'32.0 GT/s PCIe' -> 5; None when unknown."""
    if not speed:
        return None
    return _SPEED_TO_GENERATION.get(speed.split()[0])


def _driver(device_dir):
    try:
        return os.path.basename(os.readlink(os.path.join(device_dir, "driver")))
    except OSError:
        return None


def _device(device_dir, bus_id, kind, pci_class):
    def read(name):
        return _read(os.path.join(device_dir, name))

    numa_node = _int(read("numa_node"))
    return {
        "pci_bus_id": normalize_bus_id(bus_id) or bus_id,
        "kind": kind,
        "vendor_id": read("vendor"),
        "device_id": read("device"),
        "class": f"0x{pci_class:06x}",
        "subsystem_vendor_id": read("subsystem_vendor"),
        "subsystem_device_id": read("subsystem_device"),
        "driver": _driver(device_dir),
        # The kernel reports -1 when the platform has no NUMA information.
        "numa_node": numa_node if numa_node is not None and numa_node >= 0 else None,
        "pcie": {
            "generation_current": link_generation(read("current_link_speed")),
            "generation_max": link_generation(read("max_link_speed")),
            "width_current": _int(read("current_link_width")),
            "width_max": _int(read("max_link_width")),
        },
    }


def nvidia_devices(root="/"):
    """NVIDIA GPUs and NVSwitches under ``root``/sys/bus/pci/devices, in bus order.

    Other NVIDIA functions (the HDMI audio or USB-C controller of a GPU)
    are left out.
    """
    base = os.path.join(root, "sys", "bus", "pci", "devices")
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return []
    devices = []
    for name in names:
        device_dir = os.path.join(base, name)
        if _hex(_read(os.path.join(device_dir, "vendor"))) != NVIDIA_VENDOR_ID:
            continue
        pci_class = _hex(_read(os.path.join(device_dir, "class")))
        if pci_class is None:
            continue
        if pci_class >> 8 in GPU_CLASSES:
            kind = "gpu"
        elif pci_class >> 8 == NVSWITCH_CLASS:
            kind = "nvswitch"
        else:
            continue
        devices.append(_device(device_dir, name, kind, pci_class))
    return devices


def driver_loaded(root="/"):
    """True when the nvidia kernel module is loaded."""
    return os.path.isdir(os.path.join(root, "sys", "module", "nvidia"))


def driver_version(root="/"):
    """Version of the loaded nvidia kernel module, or None."""
    return _read(os.path.join(root, "sys", "module", "nvidia", "version")) or None
