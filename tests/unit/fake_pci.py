"""Build a fake sysfs PCI tree from the real node listing (tests/fixtures/node/h100-ubuntu2404-vm/node.txt).

Like the kernel, /sys/bus/pci/devices/<address> are symlinks into
/sys/devices/pci0000:00/, and each bound device has a ``driver`` symlink.
"""
from __future__ import annotations

import os
from pathlib import Path

NODE_TXT = Path(__file__).resolve().parents[1] / "fixtures" / "node" / "h100-ubuntu2404-vm" / "node.txt"

# An NVSwitch as HGX boards show it (PCI class 0x0680, "other bridge").
NVSWITCH = {"address": "0000:05:00.0", "vendor": "0x10de", "device": "0x22a3", "class": "0x068000",
            "subsystem_device": "0x1796", "driver": "nvidia"}
# A GPU's HDMI audio function: an NVIDIA device that is not a GPU.
GPU_AUDIO = {"address": "0000:00:06.1", "vendor": "0x10de", "device": "0x22ba", "class": "0x040300",
             "subsystem_device": "0x16c1", "driver": "snd_hda_intel"}


def _sections(text):
    sections, name = {}, None
    for line in text.splitlines():
        if line.startswith("## "):
            name = line[3:].strip()
            sections[name] = []
        elif name is not None:
            sections[name].append(line)
    return sections


def node_devices():
    """The PCI devices of the real node, with the detail lines of the NVIDIA ones."""
    sections = _sections(NODE_TXT.read_text(encoding="utf-8"))
    devices = []
    for line in sections["pci devices (vendor device class subsystem driver)"]:
        fields = line.split()
        if not fields:
            continue
        devices.append({
            "address": fields[0],
            "vendor": fields[1],
            "device": fields[2],
            "class": fields[3],
            "subsystem_device": fields[4],
            "driver": fields[5] if len(fields) > 5 else None,
        })
    detail, current = {}, None
    for line in sections["nvidia pci detail"]:
        if line.startswith("# "):
            current = detail.setdefault(line[2:].strip(), {})
        elif "=" in line and current is not None:
            key, value = line.split("=", 1)
            current[key] = value
    for device in devices:
        device.update(detail.get(device["address"], {}))
    return devices


def node_driver_version():
    return _sections(NODE_TXT.read_text(encoding="utf-8"))["/sys/module/nvidia/version"][0].strip()


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{text}\n", encoding="ascii")


def add_device(root, device, driver=True):
    """One PCI device under root; driver=False leaves it unbound (no driver loaded)."""
    root = Path(root)
    real = root / "sys" / "devices" / "pci0000:00" / device["address"]
    real.mkdir(parents=True, exist_ok=True)
    for key, value in device.items():
        if key not in ("address", "driver"):
            _write(real / key, value)
    link = root / "sys" / "bus" / "pci" / "devices" / device["address"]
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(real, link.parent))
    if driver and device.get("driver"):
        driver_dir = root / "sys" / "bus" / "pci" / "drivers" / device["driver"]
        driver_dir.mkdir(parents=True, exist_ok=True)
        (real / "driver").symlink_to(os.path.relpath(driver_dir, real))


def build(root, driver_loaded=True, extra=()):
    """The real node's PCI bus under root, plus ``extra`` devices.

    driver_loaded=False is the same node before the nvidia module loads:
    no /sys/module/nvidia and no driver bound to the GPU.
    """
    for device in list(node_devices()) + list(extra):
        nvidia = device.get("driver") == "nvidia"
        add_device(root, device, driver=driver_loaded or not nvidia)
    if driver_loaded:
        _write(Path(root) / "sys" / "module" / "nvidia" / "version", node_driver_version())
    return Path(root)
