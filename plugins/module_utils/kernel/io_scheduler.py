# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""Pure planning helpers for the dlnode.gpu.io_scheduler module.

Device discovery reads a sysfs.Kernel, so everything here can be tested
against a fake /sys tree.
"""
from __future__ import annotations

import fnmatch
import re

from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError
from ansible_collections.dlnode.gpu.plugins.module_utils.kernel.sysfs import parse_bracketed

BLOCK_DIR = "/sys/block"
CLASS_DIR = "/sys/class/block"

SCHEDULERS = ("none", "mq-deadline", "kyber", "bfq")
ALIASES = {"deadline": "mq-deadline"}
# Single-queue schedulers, gone with the legacy block layer.
REMOVED = ("noop", "cfq")
# Order matters: selecting a scheduler resets nr_requests to its default.
QUEUE_SETTINGS = ("nr_requests", "read_ahead_kb", "rq_affinity", "nomerges")
TRANSPORTS = ("nvme", "sata", "sas", "scsi", "usb", "virtio", "mmc", "loop", "virtual", "other")


class IoSchedulerError(DlnodeError):
    """A request that can't be met; str() is the message for the user."""


def canonical_scheduler(name):
    """mq-era name for a requested scheduler; refuses the removed single-queue ones."""
    if name in REMOVED:
        raise IoSchedulerError(f"scheduler={name}: the {name} scheduler was removed in Linux 5.0, use none / bfq (or mq-deadline, kyber)")
    name = ALIASES.get(name, name)
    if name not in SCHEDULERS:
        raise IoSchedulerError(f"scheduler={name} is not a scheduler; choose one of: {', '.join(SCHEDULERS)}")
    return name


def queue_path(name, attr):
    return f"{BLOCK_DIR}/{name}/queue/{attr}"


def _is_glob(text):
    return any(char in text for char in "*?[")


def partition_parent(kernel, name):
    """Parent disk of a partition, or None if name is not a partition."""
    if not kernel.exists(f"{CLASS_DIR}/{name}/partition"):
        return None
    # /sys/class/block/sda1 -> .../block/sda/sda1: the parent is the directory above.
    return kernel.realpath(f"{CLASS_DIR}/{name}").rstrip("/").split("/")[-2]


def select_devices(kernel, patterns):
    """Whole disks named by patterns (names, /dev/ paths or globs); all disks when patterns is None.

    Returns (names, unmatched_globs). Named partitions and unknown names are errors.
    """
    disks = kernel.list_dir(BLOCK_DIR)
    if patterns is None:
        return disks, []
    selected = []
    unmatched = []
    for pattern in patterns:
        pattern = re.sub(r"^/dev/", "", pattern.strip())
        if _is_glob(pattern):
            hits = fnmatch.filter(disks, pattern)
            if not hits:
                unmatched.append(pattern)
            selected.extend(hits)
        elif pattern in disks:
            selected.append(pattern)
        else:
            parent = partition_parent(kernel, pattern)
            if parent:
                raise IoSchedulerError(f"devices: {pattern} is a partition; I/O schedulers belong to the whole disk: use {parent}")
            raise IoSchedulerError(f"devices: {pattern} is not a block device on this host; block devices: {', '.join(disks) or 'none'}")
    return sorted(set(selected)), unmatched


def transport(name, device_path):
    """Bus a disk hangs off, from its kernel name and its /sys/devices path."""
    if name.startswith("loop"):
        return "loop"
    if name.startswith("nvme") or "/nvme/" in device_path:
        return "nvme"
    # USB before ATA: USB-SATA bridges show both.
    if re.search(r"/usb\d+/", device_path):
        return "usb"
    if re.search(r"/virtio\d+/", device_path):
        return "virtio"
    if name.startswith("mmcblk") or "/mmc_host/" in device_path:
        return "mmc"
    if re.search(r"/ata\d+/", device_path):
        return "sata"
    if "/end_device-" in device_path:
        return "sas"
    if device_path.startswith("/sys/devices/virtual/"):
        return "virtual"
    if name.startswith("sd"):
        return "scsi"
    return "other"


def device_info(kernel, name):
    """What the module needs to know about one disk, read from its queue directory."""
    text = kernel.read(queue_path(name, "scheduler"))
    current, choices = parse_bracketed(text) if text is not None else (None, [])
    info = {
        "transport": transport(name, kernel.realpath(f"{BLOCK_DIR}/{name}")),
        "rotational": kernel.read(queue_path(name, "rotational")) == "1",
        "has_scheduler_file": text is not None,
        "scheduler": current,
        "schedulers": choices,
    }
    for attr in QUEUE_SETTINGS:
        info[attr] = kernel.read_int(queue_path(name, attr))
    return info


def matches(info, match):
    """Whether a disk passes the `match` filter (None or empty criteria pass everything)."""
    if not match:
        return True
    if match.get("rotational") is not None and info["rotational"] != match["rotational"]:
        return False
    if match.get("transport") and info["transport"] not in match["transport"]:
        return False
    return True


def skip_reason(info, scheduler, settings):
    """Why a disk can't take the request, or None."""
    if scheduler is not None:
        if not info["has_scheduler_file"]:
            return "no queue/scheduler file: this device has no I/O scheduler"
        if info["schedulers"] == ["none"]:
            return "queue/scheduler offers only none: this device has no selectable I/O scheduler"
    for attr in settings:
        if info[attr] is None:
            return f"no queue/{attr} file on this device"
    return None


def state(info):
    """The settings shown as before/after for one disk."""
    return dict((key, info[key]) for key in ("scheduler",) + QUEUE_SETTINGS if info[key] is not None)


def plan_device(info, scheduler, settings):
    """[(attr, value)] to write, in the order the kernel needs them."""
    writes = []
    if scheduler is not None and info["scheduler"] != scheduler:
        writes.append(("scheduler", scheduler))
    for attr in QUEUE_SETTINGS:
        if attr not in settings:
            continue
        # A new scheduler resets nr_requests, so it is written again even if it matched before.
        if info[attr] != settings[attr] or (attr == "nr_requests" and writes):
            writes.append((attr, settings[attr]))
    return writes


def predict(info, writes):
    after = dict(info)
    for attr, value in writes:
        after[attr] = value
    return after


def rules_content(names, scheduler, settings):
    """udev rules that reapply the request to each disk by kernel name, sorted so re-runs compare equal."""
    assignments = []
    if scheduler is not None:
        assignments.append(f'ATTR{{queue/scheduler}}="{scheduler}"')
    for attr in QUEUE_SETTINGS:
        if attr in settings:
            assignments.append(f'ATTR{{queue/{attr}}}="{settings[attr]}"')
    lines = ["# Managed by dlnode.gpu (io_scheduler module): changes here are overwritten."]
    for name in sorted(names):
        lines.append(f'ACTION=="add|change", SUBSYSTEM=="block", ENV{{DEVTYPE}}=="disk", KERNEL=="{name}", ' + ", ".join(assignments))
    return "\n".join(lines) + "\n"
