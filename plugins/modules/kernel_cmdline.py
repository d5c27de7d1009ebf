#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
from __future__ import annotations

DOCUMENTATION = r"""
---
module: kernel_cmdline
short_description: Keep kernel command line parameters in the boot loader, read back, with the reboot they need
version_added: 0.1.0
description:
  - The one place the collection edits the kernel command line. Each caller (O(name)) owns a set of
    parameters; the module adds the missing ones to every boot entry and removes those the same
    caller added earlier and no longer asks for, leaving every other parameter alone.
  - GRUB (Debian, Ubuntu) gets a drop-in under C(/etc/default/grub.d) appending to
    C(GRUB_CMDLINE_LINUX_DEFAULT), then C(update-grub); the generated C(grub.cfg) is read back.
    grubby (RHEL family) edits every installed kernel's entry; C(grubby --info=ALL) is read back,
    and what was added is recorded under O(record_dir) so it can be removed later.
  - Never reboots. When the running kernel (C(/proc/cmdline)) does not have the wanted parameters,
    RV(reboot_required) is true and RV(reboot_reasons) says why, for the play to add to
    C(dlnode_reboot_reasons).
  - A container boots no kernel of its own, and a node without a boot loader tool has nothing to edit;
    the module then changes nothing and says why in RV(skipped_reason).
author: "dlnode.gpu developers (@dlnode)"
options:
  args:
    description:
      - Parameters that must be on the kernel command line, as V(name) or V(name=value)
        (V(iommu=pt), V(modprobe.blacklist=nouveau)). An empty list removes what O(name) added before.
    type: list
    elements: str
    required: true
  name:
    description: Who owns these parameters (a role name); it names the record and starts each reboot reason.
    type: str
    default: dlnode
  bootloader:
    description: V(auto) uses grubby where it is installed, else GRUB's update-grub.
    type: str
    choices: [auto, grub, grubby]
    default: auto
  grub_dropin:
    description: GRUB only. The drop-in this O(name) owns wholly.
    type: path
    default: /etc/default/grub.d/90-dlnode.cfg
  grub_config:
    description: GRUB only. The configuration update-grub generates, read back after it ran.
    type: path
    default: /boot/grub/grub.cfg
  record_dir:
    description: grubby only. Where the parameters each O(name) added are recorded.
    type: path
    default: /etc/dlnode/kernel-cmdline
attributes:
  check_mode:
    support: full
    description: Reads the boot loader's configuration and returns the exact plan; writes nothing, runs no tool that writes.
  diff_mode:
    support: full
    description: Shows the GRUB drop-in or the grubby record before and after.
  platform:
    support: full
    platforms: posix
    description: Linux with GRUB 2 (update-grub) or grubby.
"""

EXAMPLES = r"""
- name: IOMMU pass-through for GPU DMA
  dlnode.gpu.kernel_cmdline:
    name: tuning
    args: [iommu=pt]
  register: cmdline

- name: Keep nouveau away from the GPUs
  dlnode.gpu.kernel_cmdline:
    name: nvidia_driver
    args: [modprobe.blacklist=nouveau, rd.driver.blacklist=nouveau, nvidia-drm.modeset=1]
    grub_dropin: /etc/default/grub.d/90-dlnode-nvidia.cfg
"""

RETURN = r"""
bootloader:
  description: The boot loader edited (V(grub) or V(grubby)), or null when skipped.
  returned: always
  type: str
  sample: grub
args:
  description: The parameters asked for, each once.
  returned: always
  type: list
  elements: str
  sample: [iommu=pt]
added:
  description: Parameters that some boot entry lacked and were (or in check mode would be) added.
  returned: always
  type: list
  elements: str
  sample: [iommu=pt]
removed:
  description: Parameters this O(name) had added before and no longer asks for, removed from the boot entries.
  returned: always
  type: list
  elements: str
  sample: []
plan:
  description: What was (or would be) done, in order.
  returned: always
  type: list
  elements: str
  sample: ["/etc/default/grub.d/90-dlnode.cfg: append iommu=pt", "update-grub: regenerate /boot/grub/grub.cfg"]
skipped_reason:
  description: Why nothing was looked at (a container, no boot loader tool); null otherwise.
  returned: always
  type: str
  sample: "this node is a container (docker): it boots no kernel of its own"
reboot_required:
  description: The running kernel's command line differs from what the boot loader now holds for O(args).
  returned: always
  type: bool
  sample: true
reboot_reasons:
  description: One line per reason, starting with O(name), for C(dlnode_reboot_reasons).
  returned: always
  type: list
  elements: str
  sample: ["tuning: kernel command line lacks iommu=pt"]
"""

import os

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.module_utils.common.commands import Commands
from ansible_collections.dlnode.gpu.plugins.module_utils.common.module import run_module
from ansible_collections.dlnode.gpu.plugins.module_utils.common.plans import Plan, Step
from ansible_collections.dlnode.gpu.plugins.module_utils.kernel import cmdline

ARGUMENT_SPEC = dict(
    args=dict(type="list", elements="str", required=True),
    name=dict(type="str", default="dlnode"),
    bootloader=dict(type="str", choices=["auto", "grub", "grubby"], default="auto"),
    grub_dropin=dict(type="path", default="/etc/default/grub.d/90-dlnode.cfg"),
    grub_config=dict(type="path", default="/boot/grub/grub.cfg"),
    record_dir=dict(type="path", default="/etc/dlnode/kernel-cmdline"),
)
TOOLS = {"grub": "update-grub", "grubby": "grubby"}
PACKAGES = {"update-grub": "grub2-common (Debian, Ubuntu)", "grubby": "grubby"}


def container():
    """The container manager's name when this node is a container, else None."""
    for marker in cmdline.CONTAINER_MARKERS:
        if os.path.exists(files.host_path(marker)):
            return (files.read(marker) or "").strip() or os.path.basename(marker).strip(".")
    return None


def choose(commands, wanted):
    """(bootloader, None) or (None, why nothing can be edited here)."""
    manager = container()
    if manager:
        return None, f"this node is a container ({manager}): it boots no kernel of its own"
    for loader in (["grubby", "grub"] if wanted == "auto" else [wanted]):
        if commands.path(TOOLS[loader]):
            return loader, None
    names = " or ".join(TOOLS[loader] for loader in (["grubby", "grub"] if wanted == "auto" else [wanted]))
    return None, f"{names} is not installed: no boot loader to edit"


def plan_grub(module, commands, args):
    params = module.params
    dropin = files.plan(params["grub_dropin"], cmdline.dropin_content(params["name"], args) if args else None)
    before = cmdline.dropin_args(dropin.before)
    removed = [arg for arg in before if arg not in args]
    entries = cmdline.grub_cfg_entries(files.read(params["grub_config"]))
    added = cmdline.lacking(args, entries) if entries else cmdline.missing(args, before)
    plan = Plan()
    if dropin.changed:
        action = f"append {' '.join(args)}" if args else "remove the drop-in"
        plan.add(Step("dropin", dropin.path, dropin.before, dropin.after, text=f"{dropin.path}: {action}",
                      call=lambda: write_or_remove(module, dropin)))
    if dropin.changed or added or cmdline.holding(removed, entries):
        plan.add(Step("update-grub", params["grub_config"], text=f"update-grub: regenerate {params['grub_config']}",
                      call=lambda: commands.run("update-grub")))
    return plan, added, removed, dropin.diff()


def read_back_grub(module, args, removed):
    entries = cmdline.grub_cfg_entries(files.read(module.params["grub_config"]))
    if not entries:
        raise cmdline.CmdlineError(f"update-grub ran, but {module.params['grub_config']} has no linux entry to read back: "
                                   "set grub_config to the file update-grub writes")
    return cmdline.lacking(args, entries) + cmdline.holding(removed, entries)


def write_or_remove(module, change):
    if change.after is None:
        os.remove(files.host_path(change.path))
    else:
        files.write(module, change)


def record_path(module):
    return os.path.join(module.params["record_dir"], f"{module.params['name']}.args")


def plan_grubby(module, commands, args):
    record = files.plan(record_path(module), "".join(f"{arg}\n" for arg in args))
    before = (record.before or "").split()
    entries = cmdline.grubby_entries(commands.run("grubby", "--info=ALL"))
    added = cmdline.lacking(args, entries)
    removed = cmdline.holding([arg for arg in before if arg not in args], entries)
    plan = Plan()
    if added or removed:
        change = ["--update-kernel=ALL"] + ([f"--args={' '.join(added)}"] if added else []) \
            + ([f"--remove-args={' '.join(removed)}"] if removed else [])
        plan.add(Step("grubby", "ALL", text=f"grubby {' '.join(change)}", call=lambda: commands.run("grubby", *change)))
    if record.changed:
        plan.add(Step("record", record.path, record.before, record.after, text=f"{record.path}: record {' '.join(args)}",
                      call=lambda: files.write(module, record)))
    return plan, added, removed, record.diff()


def read_back_grubby(commands, args, removed):
    entries = cmdline.grubby_entries(commands.run("grubby", "--info=ALL"))
    return cmdline.lacking(args, entries) + cmdline.holding(removed, entries)


def reboot_reasons(name, args, removed):
    running = (files.read("/proc/cmdline") or "").split()
    reasons = []
    lacks = cmdline.missing(args, running)
    if lacks:
        reasons.append(f"{name}: kernel command line lacks {' '.join(lacks)}")
    still = [arg for arg in removed if arg in running]
    if still:
        reasons.append(f"{name}: kernel command line still has {' '.join(still)}")
    return reasons


def run(module, result):
    args = cmdline.check_args(module.params["args"])
    if not cmdline.ARG_RE.match(module.params["name"]) or "=" in module.params["name"]:
        raise cmdline.CmdlineError(f"name: {module.params['name']!r} must be letters, digits, '.', '_' and '-'")
    commands = Commands(module, PACKAGES)
    loader, why = choose(commands, module.params["bootloader"])
    result.update(args=args, bootloader=loader, skipped_reason=why)
    if loader is None:
        return
    planner = plan_grub if loader == "grub" else plan_grubby
    plan, added, removed, diff = planner(module, commands, args)
    plan.apply(module)
    if plan.changed and not module.check_mode:
        left = read_back_grub(module, args, removed) if loader == "grub" else read_back_grubby(commands, args, removed)
        if left:
            raise cmdline.CmdlineError(f"read back after {', '.join(plan.texts())}: the boot entries still differ "
                                       f"in {' '.join(left)}", **result)
    reasons = reboot_reasons(module.params["name"], args, removed)
    result.update(changed=plan.changed, added=added, removed=removed, plan=plan.texts(),
                  reboot_required=bool(reasons), reboot_reasons=reasons, diff=diff)


def main():
    run_module(ARGUMENT_SPEC, run, result=dict(bootloader=None, args=[], added=[], removed=[], plan=[],
                                               skipped_reason=None, reboot_required=False, reboot_reasons=[]))


if __name__ == "__main__":
    main()
