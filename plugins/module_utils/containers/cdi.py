# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""Whether the NVIDIA CDI spec still describes the node: its driver, and its GPUs and MIG devices.

nvidia-ctk (and toolkit 1.18's nvidia-cdi-refresh, which runs it at boot and when the driver's files
change) names each device by index ("0", and "0:1" for a GPU's MIG device 1) and by UUID ("GPU-...",
"MIG-..."), and mounts the driver's libraries by their versioned names (libcuda.so.580.159.04). A MIG
change (mode, or instances made by nvidia-mig-parted or by hand) changes the devices and no file the
path unit watches: the spec is compared with what `nvidia-smi -L` lists now.
"""
from __future__ import annotations

import re

# nvidia-smi -L: "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0ad4...)" and, under it,
# "  MIG 1g.10gb     Device  0: (UUID: MIG-c6d4...)".
GPU_RE = re.compile(r"^GPU (\d+): .*\(UUID: (GPU-[0-9a-fA-F-]+)\)")
MIG_RE = re.compile(r"^\s+MIG .*Device\s+(\d+): \(UUID: (MIG-[0-9a-fA-F-]+)\)")
# A device's name in the spec, as nvidia-ctk writes it (quoted or not).
NAME_RE = re.compile(r"""^\s*(?:-\s+)?name:\s*["']?([^"'\s]+)["']?\s*$""")
DEVICE_NAME_RE = re.compile(r"^(\d+(:\d+)?|GPU-[0-9a-fA-F-]+|MIG-[0-9a-fA-F-]+)$")


def listed(text):
    """The devices nvidia-smi -L lists: [(index name, UUID)], GPUs as "0", MIG devices as "0:1"."""
    found, gpu = [], None
    for line in text.splitlines():
        match = GPU_RE.match(line)
        if match:
            gpu = match.group(1)
            found.append((gpu, match.group(2)))
            continue
        match = MIG_RE.match(line)
        if match and gpu is not None:
            found.append((f"{gpu}:{match.group(1)}", match.group(2)))
    return found


def spec_devices(text):
    """The device names of a CDI spec (its `all` left out)."""
    names = (NAME_RE.match(line) for line in text.splitlines())
    return {match.group(1) for match in names if match and DEVICE_NAME_RE.match(match.group(1))}


def stale(spec, devices, driver_version=None):
    """Why the spec no longer describes the node, [] when it does. ``spec`` is its text or None."""
    if spec is None:
        return ["there is no spec"]
    reasons = []
    if driver_version and driver_version not in spec:
        reasons.append(f"it does not name the driver {driver_version}")
    named = spec_devices(spec)
    # The spec's naming: by UUID when it has any (nvidia-ctk's default names both ways), else by index.
    by_uuid = any(name.startswith(("GPU-", "MIG-")) for name in named)
    now = {uuid if by_uuid else index for index, uuid in devices}
    compared = {name for name in named if name.startswith(("GPU-", "MIG-")) == by_uuid}
    missing, gone = sorted(now - compared), sorted(compared - now)
    if missing:
        reasons.append(f"it lacks {', '.join(missing)}")
    if gone:
        reasons.append(f"it names {', '.join(gone)}, which the node no longer has (a MIG change?)")
    return reasons
