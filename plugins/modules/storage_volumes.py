#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
from __future__ import annotations

DOCUMENTATION = r"""
module: storage_volumes
short_description: Partition, RAID, format, mount and persist data volumes, never losing data
version_added: 0.1.0
description:
  - Reads every declared device (signatures with C(wipefs), partitions and holders from sysfs,
    mounts and swap from C(/proc)), plans the whole run, applies it and reads it back, in one call.
  - A device that holds a partition table, filesystem or RAID signature that the declaration does
    not match is never touched; the run fails naming the device and what it holds, unless the
    device is listed in its volume's O(volumes[].wipe). A matching setup is adopted as it is.
    A device in use (mounted, swap, held by an array) is never wiped or formatted.
  - Entries go to fstab by UUID with C(nofail), so a dead disk does not stop a boot.
options:
  volumes:
    description: The volumes, each built over one device or a RAID array of several.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Volume name (letters, digits, C(-), C(_)); the RAID device is C(/dev/md/NAME).
        type: str
        required: true
      devices:
        description: Block devices by stable path (C(/dev/disk/by-id/...), C(/dev/disk/by-path/...)) or name (C(/dev/nvme1n1)).
        type: list
        elements: str
        required: true
      raid_level:
        description: Software RAID level over O(volumes[].devices); unset for a single device.
        type: int
        choices: [0, 1, 10]
      partition:
        description: One GPT partition per device (true) or the whole device (false).
        type: bool
        default: true
      fstype:
        description: Filesystem, or C(swap) for a swap volume.
        type: str
        choices: [xfs, ext4, swap]
        default: xfs
      mkfs_options:
        description: Extra mkfs options; default none for xfs, C(-T largefile -m 0) for ext4.
        type: list
        elements: str
      label:
        description: Filesystem label; default the name, cut to what the filesystem allows.
        type: str
      mount:
        description: Absolute mount point; required unless O(volumes[].fstype=swap).
        type: str
      mount_options:
        description: Mount options, default C(noatime) (C(defaults) for swap); C(nofail) is always added in fstab.
        type: list
        elements: str
      owner:
        description: Owner of the mounted filesystem's root directory.
        type: str
      group:
        description: Group of the mounted filesystem's root directory.
        type: str
      mode:
        description: Mode of the mounted filesystem's root directory, as an octal string.
        type: str
      wipe:
        description:
          - Devices of this volume that may be erased when what they hold does not match the
            declaration. A matching device is adopted, never wiped; a device in use is never wiped.
        type: list
        elements: str
        default: []
  binds:
    description: Directories bind-mounted onto the volumes (Docker's data root, a dataset cache).
    type: list
    elements: dict
    default: []
    suboptions:
      source:
        description: Directory on a volume; created if missing.
        type: str
        required: true
      path:
        description: Where it is bind-mounted; must be missing or an empty directory.
        type: str
        required: true
      owner:
        description: Owner of the source directory.
        type: str
      group:
        description: Group of the source directory.
        type: str
      mode:
        description: Mode of the source directory, as an octal string.
        type: str
  fstab:
    description: The fstab file.
    type: path
    default: /etc/fstab
  mdadm_conf:
    description: mdadm's configuration file, where the ARRAY lines go (C(/etc/mdadm.conf) on RHEL).
    type: path
    default: /etc/mdadm/mdadm.conf
attributes:
  check_mode:
    support: full
    description: Reads only and returns the plan, step by step, that a real run would carry out.
  diff_mode:
    support: full
    description: Shows fstab and mdadm.conf before and after.
  platform:
    support: full
    platforms: posix
    description: Linux with util-linux (wipefs, sfdisk, mount), xfsprogs or e2fsprogs, and mdadm for RAID.
author: "dlnode.gpu developers (@dlnode)"
"""

EXAMPLES = r"""
- name: A RAID 0 data volume over two NVMe drives and a scratch disk
  dlnode.gpu.storage_volumes:
    volumes:
      - name: data
        devices: [/dev/disk/by-id/nvme-A, /dev/disk/by-id/nvme-B]
        raid_level: 0
        mount: /data
        owner: root
        mode: "1777"
      - name: scratch
        devices: [/dev/disk/by-id/nvme-C]
        fstype: ext4
        mount: /scratch
        wipe: [/dev/disk/by-id/nvme-C]
    binds:
      - source: /data/docker
        path: /var/lib/docker
"""

RETURN = r"""
plan:
  description: What was (or would be) done, one line per step, in order.
  returned: always
  type: list
  elements: str
  sample: ["/dev/nvme1n1: create a GPT partition table with one partition (fs) spanning the device"]
actions:
  description: The same steps as data (volume, action, device).
  returned: always
  type: list
  elements: dict
volumes:
  description: Each volume as read back (predicted in check mode).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "data", "device": "/dev/nvme1n1p1", "uuid": "...", "fstype": "xfs", "mount": "/data", "mounted": true}]
mdadm_conf_changed:
  description: Whether mdadm.conf changed; the initramfs must then be rebuilt.
  returned: always
  type: bool
"""

import grp
import os
import pwd
import stat
import time

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.module_utils.common.commands import Commands
from ansible_collections.dlnode.gpu.plugins.module_utils.common.module import run_module
from ansible_collections.dlnode.gpu.plugins.module_utils.common.plans import Plan, Step
from ansible_collections.dlnode.gpu.plugins.module_utils.kernel import sysfs
from ansible_collections.dlnode.gpu.plugins.module_utils.storage.volumes import (
    StorageError, bind_entry, fstab_entry, parse_mountinfo, parse_wipefs, plan_volume, render_fstab,
    render_mdadm_conf, validate)

PACKAGES = {"wipefs": "util-linux", "blkid": "util-linux", "mount": "util-linux", "swapon": "util-linux",
            "blockdev": "util-linux", "sfdisk": "fdisk (Debian, Ubuntu) or util-linux (RHEL)",
            "mkfs.xfs": "xfsprogs", "mkfs.ext4": "e2fsprogs", "mkswap": "util-linux", "mdadm": "mdadm"}
MKFS = {"xfs": ["mkfs.xfs", "-q"], "ext4": ["mkfs.ext4", "-q"], "swap": ["mkswap"]}

_VOLUME_OPTIONS = dict(
    name=dict(type="str", required=True),
    devices=dict(type="list", elements="str", required=True),
    raid_level=dict(type="int", choices=[0, 1, 10]),
    partition=dict(type="bool", default=True),
    fstype=dict(type="str", choices=["xfs", "ext4", "swap"], default="xfs"),
    mkfs_options=dict(type="list", elements="str"),
    label=dict(type="str"),
    mount=dict(type="str"),
    mount_options=dict(type="list", elements="str"),
    owner=dict(type="str"),
    group=dict(type="str"),
    mode=dict(type="str"),
    wipe=dict(type="list", elements="str", default=[]),
)
_BIND_OPTIONS = dict(source=dict(type="str", required=True), path=dict(type="str", required=True),
                     owner=dict(type="str"), group=dict(type="str"), mode=dict(type="str"))
ARGUMENT_SPEC = dict(
    volumes=dict(type="list", elements="dict", options=_VOLUME_OPTIONS, default=[]),
    binds=dict(type="list", elements="dict", options=_BIND_OPTIONS, default=[]),
    fstab=dict(type="path", default="/etc/fstab"),
    mdadm_conf=dict(type="path", default="/etc/mdadm/mdadm.conf"),
)


class Disks:
    """Reads and changes the node's block devices through their real tools."""

    def __init__(self, module):
        self.module = module
        self.commands = Commands(module, PACKAGES)
        self.kernel = sysfs.Kernel()

    def run(self, *argv, data=None, ok_rc=(0,)):
        return self.commands.run(*argv, data=data, ok_rc=ok_rc, binary_data=True)

    # -- reading

    def sys(self, name, attr, default=None):
        try:
            return self.kernel.read(f"/sys/class/block/{name}/{attr}", default)
        except sysfs.SysfsError:
            return default

    def ensure_node(self, name):
        """/dev/NAME for a block device the kernel has; created from sysfs where /dev is not
        a devtmpfs (containers), as devtmpfs would show it."""
        path = f"/dev/{name}"
        devno = self.sys(name, "dev")
        if devno and not os.path.exists(path):
            major, minor = (int(n) for n in devno.split(":"))
            os.mknod(path, 0o660 | stat.S_IFBLK, os.makedev(major, minor))
        return path

    def signatures(self, path):
        return parse_wipefs(self.run("wipefs", "--no-act", "--json", path))

    def block(self, name, mounts, swaps):
        path = self.ensure_node(name)
        devno = self.sys(name, "dev")
        return dict(
            name=name, path=path, devno=devno, is_partition=self.sys(name, "partition") is not None,
            signatures=self.signatures(path),
            mounts=[m["target"] for m in mounts if m["devno"] == devno],
            swap=devno in swaps, holders=self.kernel.list_dir(f"/sys/class/block/{name}/holders"),
        )

    def partitions(self, name):
        base = f"/sys/class/block/{name}"
        return [entry for entry in self.kernel.list_dir(base) if self.kernel.exists(f"{base}/{entry}/partition")]

    def observe(self, devices):
        """Blocks of the declared devices (with their partitions) and the assembled arrays over them."""
        mounts = parse_mountinfo(files.read("/proc/self/mountinfo") or "")
        swaps = set()
        for line in (files.read("/proc/swaps") or "").splitlines()[1:]:
            try:
                rdev = os.stat(line.split()[0].replace("\\040", " ")).st_rdev
            except OSError:
                continue
            swaps.add(f"{os.major(rdev)}:{os.minor(rdev)}")
        blocks, arrays = {}, {}
        for dev in devices:
            name = os.path.basename(dev)
            block = self.block(name, mounts, swaps)
            block["partitions"] = [self.block(part, mounts, swaps) for part in self.partitions(name)]
            blocks[dev] = block
            for member in [block] + block["partitions"]:
                uuid = next((s["uuid"] for s in member["signatures"] if s["type"] == "linux_raid_member"), None)
                for holder in member["holders"]:
                    if holder.startswith("md") and uuid:
                        array = self.block(holder, mounts, swaps)
                        array["level"] = self.sys(holder, "md/level")
                        arrays[uuid] = array
        return blocks, arrays, mounts

    def uuid(self, path):
        for line in self.run("blkid", "-p", "-o", "export", path).splitlines():
            if line.startswith("UUID="):
                return line.split("=", 1)[1]
        raise StorageError(f"{path} has no UUID after formatting (blkid -p)")

    # -- changing

    def settle(self):
        if self.commands.path("udevadm"):
            self.commands.result("udevadm", "settle", "--timeout=10")

    def wait_block(self, name):
        for _attempt in range(50):
            if self.kernel.exists(f"/sys/class/block/{name}"):
                return self.ensure_node(name)
            time.sleep(0.2)
        raise StorageError(f"/dev/{name} did not appear after partitioning; the kernel did not re-read the "
                           "partition table (for a loop device, attach it with losetup -P)")

    def wipe(self, block):
        for part in block.get("partitions", []):
            self.run("wipefs", "--all", "--quiet", part["path"])
        self.run("wipefs", "--all", "--quiet", block["path"])
        if block.get("partitions"):
            self.run("blockdev", "--rereadpt", block["path"])

    def partition(self, dev, part_type, label, part_path):
        self.run("sfdisk", "--quiet", "--wipe", "always", "--wipe-partitions", "always", "--label", "gpt", dev,
                 data=f'type={part_type}, name="{label}"\n')
        self.settle()
        return self.wait_block(os.path.basename(part_path))

    def raid_create(self, path, vol, members):
        self.run("mdadm", "--create", path, "--run", "--metadata=1.2", f"--level={vol['raid_level']}",
                 f"--raid-devices={len(members)}", f"--name={vol['name']}", *members)
        self.settle()
        return os.path.realpath(path)

    def raid_assemble(self, path, members):
        self.run("mdadm", "--assemble", path, *members)
        self.settle()
        return os.path.realpath(path)

    def mkfs(self, vol, path):
        self.run(*MKFS[vol["fstype"]], "-L", vol["label"], *vol["mkfs_options"], path)

    def mount(self, vol, path):
        os.makedirs(vol["mount"], mode=0o755, exist_ok=True)
        self.run("mount", "-t", vol["fstype"], "-o", ",".join(vol["mount_options"]), path, vol["mount"])


def owner_steps(item, target, where, is_new):
    """Steps to set owner/group/mode of a directory that is (or will be) there."""
    want = {}
    if item.get("owner") is not None:
        want["uid"] = pwd.getpwnam(item["owner"]).pw_uid
    if item.get("group") is not None:
        want["gid"] = grp.getgrnam(item["group"]).gr_gid
    if item.get("mode") is not None:
        want["mode"] = int(item["mode"], 8)
    if not want:
        return []
    if is_new or not os.path.isdir(target):
        have = dict(uid=0, gid=0, mode=0o755)
    else:
        st = os.stat(target)
        have = dict(uid=st.st_uid, gid=st.st_gid, mode=stat.S_IMODE(st.st_mode))
    if all(have[k] == v for k, v in want.items()):
        return []
    text = ", ".join(f"{k} {item[k]}" for k in ("owner", "group", "mode") if item.get(k) is not None)
    return [Step("owner", target, text=f"{target}: set {text}", volume=where, want=want)]


def plan_binds(binds, mounts, new_sources):
    steps = []
    for bind in binds:
        source, path = bind["source"], bind["path"]
        exists = os.path.isdir(source) and not any(source.startswith(m + "/") for m in new_sources)
        if not exists:
            steps.append(Step("bind_source", source, text=f"{source}: create the directory", volume="binds"))
        steps += owner_steps(bind, source, "binds", not exists)
        here = [m for m in mounts if m["target"] == path]
        if here:
            same = exists and os.path.isdir(path) and os.path.samestat(os.stat(path), os.stat(source))
            if not same:
                raise StorageError(f"binds: {path} already has {here[-1]['source']} mounted on it, not {source}; "
                                   "unmount it first")
            continue
        if os.path.exists(path):
            if not os.path.isdir(path):
                raise StorageError(f"binds: {path} exists and is not a directory")
            entries = os.listdir(path)
            if entries:
                raise StorageError(f"binds: {path} is not empty ({len(entries)} entries, e.g. {sorted(entries)[0]}); "
                                   f"a bind mount would hide them: move them to {source} first")
        steps.append(Step("bind", path, text=f"{path}: bind-mount {source}", volume="binds"))
    return steps


def resolve(path):
    if not path.startswith("/"):
        path = "/dev/" + path
    real = os.path.realpath(path)
    if not os.path.exists(real):
        raise StorageError(f"device {path} does not exist")
    if not stat.S_ISBLK(os.stat(real).st_mode):
        raise StorageError(f"device {path} ({real}) is not a block device")
    return real


def exists_user(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def exists_group(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def plan_all(disks, volumes, binds):
    """Every step of the run, and the targets (formatted device per volume) as planned."""
    devices = [dev for vol in volumes for dev in vol["devices"]]
    blocks, arrays, mounts = disks.observe(devices)
    steps, targets = [], {}
    for vol in volumes:
        more, target = plan_volume(vol, blocks, arrays, mounts)
        steps += more
        targets[vol["name"]] = target
        if vol["mount"]:
            mounted = not any(s.action == "mount" and s.data["volume"] == vol["name"] for s in more)
            steps += owner_steps(vol, vol["mount"], vol["name"], not mounted)
        elif not target.get("swap"):
            steps.append(Step("swapon", target["path"], text=f"{target['path']}: turn swap on", volume=vol["name"]))
    new_sources = [v["mount"] for v in volumes if v["mount"]
                   and any(s.action == "mount" and s.data["volume"] == v["name"] for s in steps)]
    steps += plan_binds(binds, mounts, new_sources)
    return steps, targets


def fstab_text(fstab, volumes, binds, targets, predict):
    entries = []
    for vol in volumes:
        target = targets[vol["name"]]
        uuid = target.get("uuid")
        if not uuid or target.get("mkfs"):
            uuid = f"<new:{target['path']}>" if predict else None
        entries.append(fstab_entry(vol, uuid))
    entries += [bind_entry(b) for b in binds]
    before = files.read(fstab)
    return before, render_fstab(before, entries) if entries else before


# Order of the run: devices first (all of them), then fstab with their UUIDs, then mounts,
# ownership and swap, then binds, then mdadm.conf once the arrays exist.
PHASES = {"wipe": 0, "partition": 0, "raid_create": 0, "raid_assemble": 0, "mkfs": 0, "fstab": 1,
          "mount": 2, "owner": 2, "swapon": 2, "bind_source": 3, "bind": 3, "mdadm_conf": 4}


def phase(item):
    return 3 if item.data["volume"] == "binds" else PHASES[item.action]


def mdadm_lines(disks, volumes):
    lines = []
    for vol in volumes:
        detail = disks.run("mdadm", "--detail", "--brief", f"/dev/md/{vol['name']}")
        lines += [line for line in detail.strip().splitlines() if line.startswith("ARRAY")]
    return lines


def mdadm_steps(path, disks, volumes, targets):
    raid = [v for v in volumes if v["raid_level"] is not None]
    if not raid:
        return []
    text = f"{path}: record the ARRAY lines of {', '.join('/dev/md/' + v['name'] for v in raid)}"
    if not any(targets[v["name"]].get("new") or targets[v["name"]].get("assemble") for v in raid):
        before = files.read(path)
        if render_mdadm_conf(before, mdadm_lines(disks, raid)) == before:
            return []
    return [Step("mdadm_conf", path, text=text, volume="mdadm")]


def run(module, result, disks=None):
    disks = disks or Disks(module)
    fstab, mdadm_conf = module.params["fstab"], module.params["mdadm_conf"]
    volumes, binds = validate(module.params["volumes"], module.params["binds"], resolve, exists_user, exists_group)
    steps, targets = plan_all(disks, volumes, binds)
    fstab_before, fstab_after = fstab_text(fstab, volumes, binds, targets, predict=True)
    if fstab_after != fstab_before:
        steps.append(Step("fstab", fstab, volume="fstab",
                          text=f"{fstab}: write the entries of "
                               f"{', '.join([v['name'] for v in volumes] + [b['path'] for b in binds])}"))
    steps += mdadm_steps(mdadm_conf, disks, volumes, targets)
    plan = Plan(sorted(steps, key=phase))
    mdadm_changed = any(s.action == "mdadm_conf" for s in plan)
    diff = dict(before_header=fstab, after_header=fstab, before=fstab_before or "")
    if module.check_mode or not plan.changed:
        result.update(report(plan, volumes, targets, mdadm_changed, dict(diff, after=fstab_after or "")))
        return
    plan.apply(module, Apply(module, disks, volumes, binds, targets))
    # Read back: a second plan must find nothing left to do.
    left, targets = plan_all(disks, volumes, binds)
    left += mdadm_steps(mdadm_conf, disks, volumes, targets)
    fstab_now, fstab_want = fstab_text(fstab, volumes, binds, targets, predict=False)
    if left or fstab_now != fstab_want:
        raise StorageError("read back after applying: still to do: "
                           + "; ".join([s.text for s in left] + (["fstab"] if fstab_now != fstab_want else [])))
    result.update(report(plan, volumes, targets, mdadm_changed, dict(diff, after=fstab_now or "")))


def report(plan, volumes, targets, mdadm_changed, diff):
    out = []
    for vol in volumes:
        target = targets[vol["name"]]
        out.append(dict(name=vol["name"], devices=vol["devices"], device=target["path"],
                        uuid=None if target.get("mkfs") else target.get("uuid"), fstype=vol["fstype"],
                        mount=vol["mount"], raid_level=vol["raid_level"]))
    public = [dict(volume=s.data["volume"], action=s.action, device=s.target) for s in plan]
    return dict(changed=plan.changed, plan=plan.texts(), actions=public, volumes=out,
                mdadm_conf_changed=mdadm_changed, diff=diff)


class Apply:
    """Makes one step of the plan; called in plan order."""

    def __init__(self, module, disks, volumes, binds, targets):
        self.module, self.disks, self.binds, self.targets = module, disks, binds, targets
        self.volumes = {v["name"]: v for v in volumes}
        self.blocks = None

    def __call__(self, item):
        getattr(self, item.action)(item, self.volumes.get(item.data["volume"]))

    def wipe(self, item, _vol):
        self.blocks = self.blocks or self.disks.observe([d for v in self.volumes.values() for d in v["devices"]])[0]
        self.disks.wipe(self.blocks[item.target])

    def partition(self, item, vol):
        self.disks.partition(item.target, item.data["part_type"], vol["name"], item.data["part_path"])

    def raid_create(self, item, vol):
        self.targets[vol["name"]]["path"] = self.disks.raid_create(item.target, vol, item.data["members"])

    def raid_assemble(self, item, vol):
        path = self.targets[vol["name"]]["path"] = self.disks.raid_assemble(item.target, item.data["members"])
        found = self.disks.signatures(path)
        if found and found[0]["type"] != vol["fstype"]:
            raise StorageError(f"volume {vol['name']!r}: the assembled array {path} holds {found[0]['type']}, "
                               f"the volume declares {vol['fstype']}; it was left untouched")
        if not found:
            self.disks.mkfs(vol, path)
        self.targets[vol["name"]]["mkfs"] = True

    def mkfs(self, _item, vol):
        self.disks.mkfs(vol, self.targets[vol["name"]]["path"])

    def fstab(self, item, _vol):
        volumes = list(self.volumes.values())
        for vol in volumes:
            target = self.targets[vol["name"]]
            if target.get("mkfs") or not target.get("uuid"):
                target["uuid"] = self.disks.uuid(target["path"])
                target["mkfs"] = False
        before, after = fstab_text(item.target, volumes, self.binds, self.targets, predict=False)
        if after != before:
            files.write(self.module, files.FileChange(item.target, before, after))

    def mount(self, _item, vol):
        self.disks.mount(vol, self.targets[vol["name"]]["path"])

    def owner(self, item, _vol):
        want = item.data["want"]
        os.chown(item.target, want.get("uid", -1), want.get("gid", -1))
        if "mode" in want:
            os.chmod(item.target, want["mode"])

    def swapon(self, _item, vol):
        self.disks.run("swapon", self.targets[vol["name"]]["path"])

    def bind_source(self, item, _vol):
        os.makedirs(item.target, mode=0o755, exist_ok=True)

    def bind(self, item, _vol):
        bind = next(b for b in self.binds if b["path"] == item.target)
        os.makedirs(bind["path"], mode=0o755, exist_ok=True)
        self.disks.run("mount", "--bind", bind["source"], bind["path"])

    def mdadm_conf(self, item, _vol):
        raid = [v for v in self.volumes.values() if v["raid_level"] is not None]
        files.sync(self.module, item.target, render_mdadm_conf(files.read(item.target), mdadm_lines(self.disks, raid)))


def main():
    run_module(ARGUMENT_SPEC, run)


if __name__ == "__main__":
    main()
