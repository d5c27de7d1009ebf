# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""Data and scratch volumes: validate a declaration, read the disks, plan, render fstab.

Planning is a pure function of the declaration and of what was read from the disks, so
the safety rules (never touch a device whose contents do not match, never wipe what is in
use) are unit-tested without disks. Reading and applying live in the module.
"""
from __future__ import annotations

import json
import os
import re

from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError
from ansible_collections.dlnode.gpu.plugins.module_utils.common.plans import Step

FS_TYPES = ("xfs", "ext4", "swap")
# Longest label each mkfs accepts.
LABEL_MAX = {"xfs": 12, "ext4": 16, "swap": 15}
# Options fit for large files on data disks: ext4 with one inode per MiB and no blocks
# reserved for root; xfs defaults already suit large files (and mkfs.xfs reads md geometry).
MKFS_DEFAULTS = {"xfs": [], "ext4": ["-T", "largefile", "-m", "0"], "swap": []}
RAID_MIN_DEVICES = {0: 2, 1: 2, 10: 4}
# GPT partition type GUIDs.
PART_TYPES = {
    "fs": "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
    "raid": "A19D880F-05FC-4D3B-A006-743F0F84911E",
    "swap": "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F",
}
RAID_MEMBER = "linux_raid_member"
PARTITION_TABLES = ("gpt", "PMBR", "dos")
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
MODE_RE = re.compile(r"^0?[0-7]{3,4}$")


class StorageError(DlnodeError):
    """The declaration or the disks do not allow the run; str() is the message for the user."""


# ---------------------------------------------------------------------------- declaration


def partition_path(device):
    """Kernel name of a device's first partition: nvme0n1 -> nvme0n1p1, sdb -> sdb1."""
    return device + ("p1" if device[-1].isdigit() else "1")


def check_ownership(where, item, users, groups):
    """Check owner, group and mode of a volume or bind; return the mode as given."""
    mode = item.get("mode")
    if mode is not None and not MODE_RE.match(str(mode)):
        raise StorageError(f"{where}.mode must be an octal string such as '0755', got {mode!r}")
    for key, exists in (("owner", users), ("group", groups)):
        value = item.get(key)
        if value is not None and exists is not None and not exists(value):
            raise StorageError(f"{where}.{key}: no {'user' if key == 'owner' else 'group'} named {value!r} on this node")
    return mode


def validate(volumes, binds, resolve, users=None, groups=None):
    """Check the declaration; return it normalized (devices resolved to /dev/NAME).

    resolve(path) returns the /dev path a device path points at, or raises StorageError
    saying why it cannot be used. users/groups are callables that say whether a name exists.
    """
    out, seen_devices, seen_mounts, seen_names = [], {}, {}, set()
    for index, vol in enumerate(volumes):
        name = vol.get("name") or ""
        where = f"volumes[{index}]" + (f" ({name})" if name else "")
        if not NAME_RE.match(name):
            raise StorageError(f"{where}.name must be 1-32 letters, digits, '-' or '_', got {name!r}")
        if name in seen_names:
            raise StorageError(f"{where}.name {name!r} is used by two volumes")
        seen_names.add(name)
        fstype = vol.get("fstype") or "xfs"
        if fstype not in FS_TYPES:
            raise StorageError(f"{where}.fstype must be one of {', '.join(FS_TYPES)}, got {fstype!r}")
        devices = list(vol.get("devices") or [])
        if not devices:
            raise StorageError(f"{where}.devices must list at least one device")
        level = vol.get("raid_level")
        if level is not None and level not in RAID_MIN_DEVICES:
            raise StorageError(f"{where}.raid_level must be one of 0, 1, 10, got {level!r}")
        if level is None and len(devices) > 1:
            raise StorageError(f"{where}.devices lists {len(devices)} devices but no raid_level is set: "
                               "set raid_level (0, 1 or 10) or declare one volume per device")
        if level is not None and len(devices) < RAID_MIN_DEVICES[level]:
            raise StorageError(f"{where}.raid_level {level} needs at least {RAID_MIN_DEVICES[level]} devices, "
                               f"got {len(devices)}")
        mount = vol.get("mount")
        if fstype == "swap":
            if mount:
                raise StorageError(f"{where}.mount must not be set for a swap volume, got {mount!r}")
        elif not mount:
            raise StorageError(f"{where}.mount is required for an {fstype} volume (an absolute path)")
        elif not mount.startswith("/") or os.path.normpath(mount) != mount or mount == "/":
            raise StorageError(f"{where}.mount must be a normalized absolute path other than /, got {mount!r}")
        if mount in seen_mounts:
            raise StorageError(f"{where}.mount {mount} is also the mount point of volume {seen_mounts[mount]!r}")
        if mount:
            seen_mounts[mount] = name
        label = vol.get("label") or name[:LABEL_MAX[fstype]]
        if len(label) > LABEL_MAX[fstype]:
            raise StorageError(f"{where}.label {label!r} is longer than {fstype} allows ({LABEL_MAX[fstype]} characters)")
        resolved = []
        for dev in devices:
            real = resolve(dev)
            if real in seen_devices or real in resolved:
                other = seen_devices.get(real, name)
                raise StorageError(f"device {dev} ({real}) is declared twice: in volume {other!r} and in volume {name!r}")
            resolved.append(real)
        for real in resolved:
            seen_devices[real] = name
        wipe = []
        for dev in vol.get("wipe") or []:
            real = resolve(dev)
            if real not in resolved:
                raise StorageError(f"{where}.wipe: {dev} is not one of the volume's devices ({', '.join(devices)})")
            wipe.append(real)
        mode = check_ownership(where, vol, users, groups)
        if fstype == "swap" and any(vol.get(k) is not None for k in ("owner", "group", "mode")):
            raise StorageError(f"{where}: owner, group and mode apply to mounted filesystems, not to swap")
        options = list(vol.get("mount_options") or ["noatime"])
        if fstype == "swap":
            options = list(vol.get("mount_options") or ["defaults"])
        out.append(dict(
            name=name, devices=resolved, raid_level=level,
            partition=vol.get("partition", True) is not False, fstype=fstype,
            mkfs_options=list(MKFS_DEFAULTS[fstype] if vol.get("mkfs_options") is None else vol["mkfs_options"]),
            label=label, mount=mount, mount_options=[o for o in options if o != "nofail"],
            owner=vol.get("owner"), group=vol.get("group"),
            mode=None if mode is None else f"{int(str(mode), 8):04o}", wipe=wipe,
        ))
    mounts = {v["mount"]: v["name"] for v in out if v["mount"]}
    checked_binds = []
    for index, bind in enumerate(binds):
        where = f"binds[{index}]"
        source, path = bind.get("source") or "", bind.get("path") or ""
        for key, value in (("source", source), ("path", path)):
            if not value.startswith("/") or os.path.normpath(value) != value or value == "/":
                raise StorageError(f"{where}.{key} must be a normalized absolute path other than /, got {value!r}")
        if path in mounts:
            raise StorageError(f"{where}.path {path} is the mount point of volume {mounts[path]!r}")
        mode = check_ownership(where, bind, users, groups)
        # The volume whose mount point holds the source: the bind waits for it at boot.
        under = [m for m in mounts if source.startswith(m.rstrip("/") + "/")]
        checked_binds.append(dict(source=source, path=path, owner=bind.get("owner"), group=bind.get("group"),
                                  mode=None if mode is None else f"{int(str(mode), 8):04o}",
                                  requires=max(under, key=len) if under else None))
    return out, checked_binds


# ---------------------------------------------------------------------------- reading disks


def parse_wipefs(text):
    """Signatures from `wipefs --no-act --json`: [{type, uuid, label, offset}]."""
    if not text.strip():
        return []
    found = json.loads(text).get("signatures") or []
    return [dict(type=s.get("type"), uuid=s.get("uuid"), label=s.get("label"), offset=s.get("offset")) for s in found]


def parse_mountinfo(text):
    """/proc/self/mountinfo as [{devno, root, target, options, fstype, source}]."""
    mounts = []
    for line in text.splitlines():
        left, _sep, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if len(fields) < 6 or len(rest) < 2:
            continue
        mounts.append(dict(devno=fields[2], root=unescape(fields[3]), target=unescape(fields[4]),
                           options=fields[5].split(","), fstype=rest[0], source=unescape(rest[1])))
    return mounts


def unescape(field):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def article(word):
    """'an xfs', 'an ext4', 'a btrfs': filesystem names are read letter by letter or as words."""
    return "an" if word[:1].lower() in "aeiox" else "a"


def describe(signatures, partitions=0):
    """What a device holds, in words, for messages."""
    if not signatures:
        return "nothing (blank)"
    kinds = []
    for sig in signatures:
        kind = sig["type"]
        if kind == "PMBR":
            continue
        if kind in PARTITION_TABLES:
            text = f"a {kind} partition table with {partitions} partition{'s' if partitions != 1 else ''}"
        elif kind == RAID_MEMBER:
            text = f"a RAID member signature (array UUID {sig.get('uuid')}, name {sig.get('label')})"
        elif kind == "swap":
            text = f"a swap signature (UUID {sig.get('uuid')})"
        else:
            text = f"{article(kind)} {kind} filesystem"
            details = [f"label {sig['label']!r}" if sig.get("label") else "", f"UUID {sig['uuid']}" if sig.get("uuid") else ""]
            details = [d for d in details if d]
            if details:
                text += f" ({', '.join(details)})"
        if text not in kinds:
            kinds.append(text)
    return " and ".join(kinds) or "a protective MBR"


def content(signatures):
    """The one kind of content a device holds: None (blank), a type, or 'mixed'."""
    kinds = {s["type"] for s in signatures} - {"PMBR"}
    if not kinds:
        return None
    return kinds.pop() if len(kinds) == 1 else "mixed"


# ---------------------------------------------------------------------------- planning


def step(volume, action, device, text, **extra):
    """A step of the storage plan: an action on a device (or a path) for a volume."""
    return Step(action, device, text=text, volume=volume, **extra)


def busy_reasons(block):
    """Why a device (or one of its partitions) cannot be erased: mounts, swap, holders."""
    reasons = []
    for item in [block] + block.get("partitions", []):
        for target in item.get("mounts", []):
            reasons.append(f"{item['path']} is mounted at {target}")
        if item.get("swap"):
            reasons.append(f"{item['path']} is an active swap area")
        for holder in item.get("holders", []):
            reasons.append(f"{item['path']} is held by /dev/{holder}")
    return reasons


def refuse(vol, dev, found, expected):
    return StorageError(
        f"volume {vol['name']!r}: {dev} holds {found}, which does not match the declaration ({expected}); "
        f"the device was left untouched. To erase it, list it in the volume's wipe: [{dev}]")


def expectation(vol):
    layout = "one GPT partition" if vol["partition"] else "the whole device"
    inside = f"a RAID {vol['raid_level']} member" if vol["raid_level"] is not None \
        else f"{article(vol['fstype'])} {vol['fstype']} filesystem"
    if vol["fstype"] == "swap" and vol["raid_level"] is None:
        inside = "swap"
    return f"{layout} holding {inside}"


def plan_members(vol, blocks):
    """Per device: the steps to make it a member, and the member's path and content.

    Returns (steps, members) where members is [{path, content, uuid, label, new}].
    Raises StorageError when a device holds something else and is not listed in wipe,
    or is in use.
    """
    steps, members = [], []
    kind = "raid" if vol["raid_level"] is not None else ("swap" if vol["fstype"] == "swap" else "fs")
    wanted = RAID_MEMBER if kind == "raid" else vol["fstype"]
    for dev in vol["devices"]:
        block = blocks[dev]
        sigs, parts = block["signatures"], block.get("partitions", [])
        member, found = None, None
        if vol["partition"]:
            if block.get("is_partition"):
                raise StorageError(f"volume {vol['name']!r}: {dev} is a partition; set partition: false to use it whole")
            if not sigs and not parts:
                member = dict(path=partition_path(dev), signatures=[], new=True)
            elif content(sigs) == "gpt" and len(parts) == 1:
                member = dict(parts[0], new=False)
            else:
                found = describe(sigs, len(parts))
        elif parts or content(sigs) in PARTITION_TABLES:
            found = describe(sigs, len(parts))
        else:
            member = dict(block, new=False)
        if member is not None and content(member["signatures"]) not in (None, wanted):
            found = describe(member["signatures"]) + (f" on {member['path']}" if member["path"] != dev else "")
        if found is not None:
            if dev not in vol["wipe"]:
                raise refuse(vol, dev, found, expectation(vol))
            busy = busy_reasons(block)
            if busy:
                raise StorageError(f"volume {vol['name']!r}: {dev} holds {found} and is in use ({'; '.join(busy)}): "
                                   "a device in use is never wiped")
            steps.append(step(vol["name"], "wipe", dev, f"{dev}: erase {found} (listed in wipe)"))
            member = dict(path=partition_path(dev) if vol["partition"] else dev, signatures=[], new=True)
        if vol["partition"] and member.get("new"):
            steps.append(step(vol["name"], "partition", dev,
                              f"{dev}: create a GPT partition table with one partition ({kind}) spanning the device",
                              part_type=PART_TYPES[kind], part_path=member["path"]))
        sig = (member["signatures"] or [{}])[0]
        members.append(dict(path=member["path"], content=content(member["signatures"]), uuid=sig.get("uuid"),
                            label=sig.get("label"), new=member.get("new", False), block=member))
    return steps, members


def plan_array(vol, members, arrays):
    """Steps to create or adopt the RAID array; returns (steps, target) with target the md block or a prediction."""
    path = f"/dev/md/{vol['name']}"
    if all(m["content"] is None for m in members):
        text = (f"{path}: create RAID {vol['raid_level']} over {', '.join(m['path'] for m in members)} "
                "(mdadm, metadata 1.2)")
        return [step(vol["name"], "raid_create", path, text, members=[m["path"] for m in members])], \
            dict(path=path, signatures=[], new=True)
    uuids = {m["uuid"] for m in members if m["content"] == RAID_MEMBER}
    if any(m["content"] is None for m in members) or len(uuids) != 1:
        found = "; ".join(f"{m['path']}: {describe(m['block']['signatures'])}" for m in members)
        raise StorageError(f"volume {vol['name']!r}: its devices do not form one array ({found}); "
                           "nothing was changed. Repair the array with mdadm, or list the devices in wipe")
    uuid = uuids.pop()
    array = arrays.get(uuid)
    if array is None:
        text = f"{path}: assemble the existing array {uuid} from {', '.join(m['path'] for m in members)}"
        return [step(vol["name"], "raid_assemble", path, text, members=[m["path"] for m in members], uuid=uuid)], \
            dict(path=path, signatures=None, new=False, assemble=True)
    if array["level"] != f"raid{vol['raid_level']}":
        raise StorageError(f"volume {vol['name']!r}: array {array['path']} ({uuid}) is {array['level']}, "
                           f"the volume declares raid_level {vol['raid_level']}; nothing was changed")
    return [], dict(array, new=False)


def plan_volume(vol, blocks, arrays, mounts):
    """Steps for one volume up to a formatted device; returns (steps, target)."""
    steps, members = plan_members(vol, blocks)
    if vol["raid_level"] is not None:
        more, target = plan_array(vol, members, arrays)
        steps += more
        if target.get("signatures") is not None:
            found = content(target["signatures"])
            if found not in (None, vol["fstype"]):
                raise refuse(vol, target["path"], describe(target["signatures"]), f"an array holding {vol['fstype']}")
            target["content"] = found
            sig = (target["signatures"] or [{}])[0]
            target["uuid"] = sig.get("uuid")
    else:
        member = members[0]
        target = dict(member["block"], path=member["path"], content=member["content"], uuid=member["uuid"],
                      new=member["new"])
    if target.get("signatures") is None:
        # An array that is assembled during the run is read again then.
        target["content"] = vol["fstype"]
    elif target["content"] is None:
        verb = "make swap" if vol["fstype"] == "swap" else f"make {article(vol['fstype'])} {vol['fstype']} filesystem"
        opts = " ".join(vol["mkfs_options"])
        steps.append(step(vol["name"], "mkfs", target["path"],
                          f"{target['path']}: {verb} labelled {vol['label']!r}" + (f" (options {opts})" if opts else "")))
    target["mkfs"] = target["content"] is None
    if vol["mount"]:
        steps += plan_mount(vol, target, mounts)
    return steps, target


def plan_mount(vol, target, mounts):
    here = [m for m in mounts if m["target"] == vol["mount"]]
    elsewhere = [m["target"] for m in mounts if target.get("devno") and m["devno"] == target["devno"]
                 and m["target"] != vol["mount"] and m["root"] == "/"]
    if here and (not target.get("devno") or here[-1]["devno"] != target["devno"]):
        raise StorageError(f"volume {vol['name']!r}: {vol['mount']} already has {here[-1]['source']} mounted on it; "
                           f"unmount it or choose another mount point")
    if elsewhere and not here:
        raise StorageError(f"volume {vol['name']!r}: {target['path']} is mounted at {', '.join(elsewhere)}, "
                           f"the volume declares {vol['mount']}; unmount it or change the mount point")
    steps = []
    if not here:
        steps.append(step(vol["name"], "mount", vol["mount"],
                          f"{vol['mount']}: mount {target['path']} ({','.join(vol['mount_options'])})"))
    return steps


def fstab_entry(vol, uuid):
    """The fstab line of a volume; nofail so that a dead disk does not stop the boot."""
    spec = f"UUID={uuid}"
    options = ",".join(vol["mount_options"] + ["nofail"])
    if vol["fstype"] == "swap":
        return f"{spec} none swap {options} 0 0"
    # fsck.xfs does nothing at boot; ext4 is checked after the root filesystem.
    return f"{spec} {vol['mount']} {vol['fstype']} {options} 0 {2 if vol['fstype'] == 'ext4' else 0}"


def bind_entry(bind):
    options = ["bind", "nofail"]
    if bind["requires"]:
        options.append(f"x-systemd.requires-mounts-for={bind['requires']}")
    return f"{bind['source']} {bind['path']} none {','.join(options)} 0 0"


def replace_lines(text, entries, key):
    """text with each entry in place of the first line of the same key (later ones dropped),
    entries without such a line appended, and every other line kept."""
    wanted = {key(e): e for e in entries}
    lines, done = [], set()
    for line in (text or "").splitlines():
        k = key(line)
        if k is not None and k in wanted:
            if k not in done:
                lines.append(wanted[k])
                done.add(k)
            continue
        lines.append(line)
    lines += [e for e in entries if key(e) not in done]
    return "\n".join(lines) + "\n"


def fstab_key(line):
    """Our fstab lines are keyed by mount point, or by UUID for swap."""
    fields = line.split()
    if len(fields) < 3 or fields[0].startswith("#"):
        return None
    return ("swap", fields[0]) if fields[2] == "swap" else ("mount", fields[1])


def mdadm_key(line):
    match = re.search(r"\bUUID=(\S+)", line)
    return match.group(1) if line.startswith("ARRAY") and match else None


def render_fstab(text, entries):
    """fstab with our entries in place; other lines kept."""
    return replace_lines(text, entries, fstab_key)


def render_mdadm_conf(text, arrays):
    """mdadm.conf with one ARRAY line per array UUID."""
    return replace_lines(text, arrays, mdadm_key)
