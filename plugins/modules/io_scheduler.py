#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
from __future__ import annotations

DOCUMENTATION = r"""
---
module: io_scheduler
short_description: Set the I/O scheduler and queue settings of block devices, now and at every boot
version_added: 0.1.0
description:
  - Selects the I/O scheduler (C(/sys/block/<dev>/queue/scheduler)) and the queue settings C(nr_requests),
    C(read_ahead_kb), C(rq_affinity) and C(nomerges) of whole disks, and reads every write back.
  - Disks are chosen by name or glob (O(devices)), by properties (O(match)), or both (O(match) then filters O(devices)).
  - Persists the settings as a udev rules file that names each disk by its kernel name, reloads udev and
    triggers a change event for those disks.
  - Partitions are refused (the scheduler belongs to the parent disk); disks without a selectable
    scheduler (such as zram or device-mapper devices) are skipped with a reason.
author: "dlnode.gpu developers (@dlnode)"
options:
  devices:
    description:
      - Disks by kernel name (V(nvme0n1), V(sda), V(loop3), optionally as V(/dev/sda)) or glob (V(nvme*)).
      - A name that is not a disk fails the task; a glob that matches nothing only warns.
      - Without O(devices), every disk of C(/sys/block) is a candidate for O(match).
    type: list
    elements: str
  match:
    description:
      - Select disks by properties. All given criteria must hold.
    type: dict
    suboptions:
      rotational:
        description:
          - V(true) for spinning disks, V(false) for solid-state ones (C(queue/rotational)).
        type: bool
      transport:
        description:
          - Buses to select, derived from the device's C(/sys/devices) path or kernel name.
          - V(virtual) covers devices such as zram and device-mapper; V(other) anything unrecognised.
        type: list
        elements: str
        choices: [nvme, sata, sas, scsi, usb, virtio, mmc, loop, virtual, other]
  scheduler:
    description:
      - I/O scheduler to select. V(deadline) is accepted as V(mq-deadline).
      - V(noop) and V(cfq) are refused; they were removed in Linux 5.0 (use V(none) or V(bfq)).
      - Leave unset to change only queue settings.
    type: str
    choices: [none, mq-deadline, kyber, bfq, deadline, noop, cfq]
  nr_requests:
    description:
      - Request queue depth (C(queue/nr_requests)). Applied after the scheduler, which resets it.
    type: int
  read_ahead_kb:
    description:
      - Read-ahead in kB (C(queue/read_ahead_kb)).
    type: int
  rq_affinity:
    description:
      - Completion CPU affinity (C(queue/rq_affinity)) 0 off, 1 same CPU group, 2 the requesting CPU.
    type: int
    choices: [0, 1, 2]
  nomerges:
    description:
      - Request merging (C(queue/nomerges)) 0 all merges, 1 simple merges only, 2 no merges.
    type: int
    choices: [0, 1, 2]
  persist:
    description:
      - Whether to write O(rules_file) so the settings return at boot and when the disk reappears.
    type: bool
    default: true
  rules_file:
    description:
      - udev rules file written when O(persist=true). The module owns its whole content, so
        give each task that persists different settings its own file.
    type: path
    default: /etc/udev/rules.d/60-dlnode-io-scheduler.rules
attributes:
  check_mode:
    support: full
    description: Reports the writes and the rules file change a real run would make, without making them or running udevadm.
  diff_mode:
    support: full
    description: Shows each disk's settings and the rules file before and after.
  platform:
    support: full
    platforms: posix
    description: Linux only; needs write access to C(/sys) (root, not a read-only container) and C(udevadm) for persistence.
notes:
  - Rules name disks by kernel name as resolved at run time; re-run the module after adding disks that
    O(devices) globs or O(match) should cover.
  - When C(udevadm) is not installed, the rules file is still written and the reload is skipped with a warning.
seealso:
  - name: Switching Scheduler
    description: The kernel's documentation of queue/scheduler.
    link: https://docs.kernel.org/block/switching-sched.html
  - name: Queue sysfs files
    description: The kernel's documentation of the queue settings.
    link: https://docs.kernel.org/block/queue-sysfs.html
"""

EXAMPLES = r"""
- name: No scheduler for NVMe drives, persisted in udev
  dlnode.gpu.io_scheduler:
    devices: ["nvme*"]
    scheduler: none

- name: mq-deadline with more read-ahead for spinning disks
  dlnode.gpu.io_scheduler:
    match:
      rotational: true
    scheduler: mq-deadline
    read_ahead_kb: 4096
    rules_file: /etc/udev/rules.d/61-dlnode-hdd.rules

- name: Queue settings only, not persisted
  dlnode.gpu.io_scheduler:
    devices: [sda, sdb]
    nr_requests: 256
    rq_affinity: 2
    persist: false
"""

RETURN = r"""
devices:
  description:
    - Per selected disk, its transport and rotational flag, its settings before and after
      (C(scheduler) and the queue settings it has), whether it changed, and why it was skipped.
  returned: success
  type: dict
  sample:
    nvme0n1:
      transport: nvme
      rotational: false
      before: {scheduler: mq-deadline, nr_requests: 64, read_ahead_kb: 128, rq_affinity: 1, nomerges: 0}
      after: {scheduler: none, nr_requests: 1023, read_ahead_kb: 128, rq_affinity: 1, nomerges: 0}
      changed: true
      skipped: false
      skipped_reason: null
    zram0:
      transport: virtual
      rotational: false
      before: {read_ahead_kb: 128}
      after: {read_ahead_kb: 128}
      changed: false
      skipped: true
      skipped_reason: "no queue/scheduler file: this device has no I/O scheduler"
rules_file:
  description: The udev rules file managed, or null with O(persist=false).
  returned: success
  type: str
  sample: /etc/udev/rules.d/60-dlnode-io-scheduler.rules
rules_changed:
  description: Whether the rules file was (or in check mode would be) written.
  returned: success
  type: bool
  sample: true
udev_reloaded:
  description: Whether C(udevadm control --reload) and C(udevadm trigger) ran for the disks in the rules.
  returned: success
  type: bool
  sample: true
"""

import errno

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.module_utils.common.commands import Commands, CommandError
from ansible_collections.dlnode.gpu.plugins.module_utils.common.module import run_module
from ansible_collections.dlnode.gpu.plugins.module_utils.kernel import io_scheduler as ios
from ansible_collections.dlnode.gpu.plugins.module_utils.kernel import sysfs

ARGUMENT_SPEC = dict(
    devices=dict(type="list", elements="str"),
    match=dict(type="dict", options=dict(
        rotational=dict(type="bool"),
        transport=dict(type="list", elements="str", choices=list(ios.TRANSPORTS)),
    )),
    scheduler=dict(type="str", choices=["none", "mq-deadline", "kyber", "bfq", "deadline", "noop", "cfq"]),
    nr_requests=dict(type="int"),
    read_ahead_kb=dict(type="int"),
    rq_affinity=dict(type="int", choices=[0, 1, 2]),
    nomerges=dict(type="int", choices=[0, 1, 2]),
    persist=dict(type="bool", default=True),
    rules_file=dict(type="path", default="/etc/udev/rules.d/60-dlnode-io-scheduler.rules"),
)


def requested_settings(params):
    """Queue settings asked for, validated."""
    settings = dict((attr, params[attr]) for attr in ios.QUEUE_SETTINGS if params[attr] is not None)
    if settings.get("nr_requests", 1) < 1:
        raise ios.IoSchedulerError(f"nr_requests must be a positive integer, got {settings['nr_requests']}")
    if settings.get("read_ahead_kb", 0) < 0:
        raise ios.IoSchedulerError(f"read_ahead_kb must be 0 or a positive integer, got {settings['read_ahead_kb']}")
    return settings


def write_checked(kernel, name, attr, value, choices):
    """Write one queue attribute and fail unless the kernel kept the value."""
    path = ios.queue_path(name, attr)
    refused = f"the kernel did not select {value} for {name} (it offers: {', '.join(choices)}): load its module (modprobe {value}) or choose one it offers"
    try:
        got = kernel.write_and_read_back(path, value)
    except sysfs.SysfsError as exc:
        # EINVAL on the scheduler file: the kernel does not know this scheduler.
        if attr == "scheduler" and exc.errno == errno.EINVAL:
            raise ios.IoSchedulerError("scheduler: " + refused) from exc
        raise
    if attr == "scheduler":
        if sysfs.parse_bracketed(got)[0] != value:
            raise ios.IoSchedulerError("scheduler: " + refused)
    elif got != str(value):
        raise ios.IoSchedulerError(f"{attr}: wrote {value} to {path} but the kernel reports {got}")


def reload_udev(module, names):
    """Reload the rules and replay a change event for the disks; warn when udevadm is missing or fails."""
    commands = Commands(module)
    if not commands.path("udevadm"):
        module.warn("udevadm not found: the rules file is written but udev was not reloaded; it takes effect at next boot")
        return False
    calls = [["control", "--reload"]]
    if names:
        calls.append(["trigger", "--action=change", "--subsystem-match=block"]
                     + [f"--sysname-match={name}" for name in sorted(names)])
    for args in calls:
        try:
            commands.run("udevadm", *args)
        except CommandError as err:
            module.warn(str(err))
            return False
    return True


def run(module, result):
    params = module.params
    kernel = sysfs.Kernel()
    scheduler = None if params["scheduler"] is None else ios.canonical_scheduler(params["scheduler"])
    settings = requested_settings(params)

    names, unmatched = ios.select_devices(kernel, params["devices"])
    for pattern in unmatched:
        module.warn(f"devices: {pattern} matches no disk")
    infos = dict((name, ios.device_info(kernel, name)) for name in names)
    infos = dict((name, info) for name, info in infos.items() if ios.matches(info, params["match"]))
    if not infos:
        module.warn("no disk was selected by devices and match")

    diffs = []
    configured = []
    for name, info in sorted(infos.items()):
        entry = {"transport": info["transport"], "rotational": info["rotational"], "before": ios.state(info),
                 "changed": False, "skipped": False, "skipped_reason": None}
        result["devices"][name] = entry
        reason = ios.skip_reason(info, scheduler, settings)
        if reason:
            entry.update(after=entry["before"], skipped=True, skipped_reason=reason)
            continue
        configured.append(name)
        writes = ios.plan_device(info, scheduler, settings)
        if module.check_mode:
            after = ios.predict(info, writes)
        else:
            for attr, value in writes:
                write_checked(kernel, name, attr, value, info["schedulers"])
            after = ios.device_info(kernel, name) if writes else info
        entry["after"] = ios.state(after)
        entry["changed"] = entry["after"] != entry["before"]
        if entry["changed"]:
            result["changed"] = True
            diffs.append({"before_header": f"/sys/block/{name}/queue", "after_header": f"/sys/block/{name}/queue",
                          "before": entry["before"], "after": entry["after"]})

    if params["persist"]:
        path = params["rules_file"]
        result["rules_file"] = path
        rules = files.sync(module, path, ios.rules_content(configured, scheduler, settings))
        if rules.changed:
            result["rules_changed"] = result["changed"] = True
            diffs.append(rules.diff())
            if not module.check_mode:
                result["udev_reloaded"] = reload_udev(module, configured)
    if module._diff:
        result["diff"] = diffs


def main():
    run_module(ARGUMENT_SPEC, run, result=dict(devices={}, rules_file=None, rules_changed=False, udev_reloaded=False),
               required_one_of=[("devices", "match"), ("scheduler",) + ios.QUEUE_SETTINGS])


if __name__ == "__main__":
    main()
