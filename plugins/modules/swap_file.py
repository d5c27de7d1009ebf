#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
from __future__ import annotations

DOCUMENTATION = r"""
module: swap_file
short_description: Create, enable and persist a swap file, or remove it, in one call
version_added: 0.1.0
description:
  - Plans from the file, C(/proc/swaps) and C(/etc/fstab), applies only what differs
    (swapoff, write, mkswap, mode 0600, the fstab line, swapon) and reads C(/proc/swaps) back.
  - A file of another size is turned off, rewritten and turned on again.
options:
  path:
    description: Path of the swap file.
    type: path
    required: true
  state:
    description: C(present) creates, enables and persists the file; C(absent) turns it off and removes it and its fstab line.
    type: str
    choices: [present, absent]
    default: present
  size_mib:
    description: Size in MiB. Required with O(state=present).
    type: int
  fstab:
    description: The fstab file that holds the swap line.
    type: path
    default: /etc/fstab
attributes:
  check_mode:
    support: full
    description: Reports exactly the actions a real run would take, touching nothing.
  diff_mode:
    support: full
    description: Shows the swap file's state before and after.
  platform:
    support: full
    platforms: posix
    description: Linux with util-linux (mkswap, swapon, swapoff).
author: "dlnode.gpu developers (@dlnode)"
"""

EXAMPLES = r"""
- name: A 4 GiB swap file
  dlnode.gpu.swap_file:
    path: /swapfile
    size_mib: 4096

- name: No swap file
  dlnode.gpu.swap_file:
    path: /swapfile
    state: absent
"""

RETURN = r"""
actions:
  description: What was (or would be) done, in order.
  returned: always
  type: list
  elements: str
  sample: [write, mkswap, fstab, swapon]
before:
  description: The swap file's state before.
  returned: always
  type: dict
  sample: {"exists": false, "size_mib": 0, "active": false, "in_fstab": false}
after:
  description: The swap file's state after (read back; predicted in check mode).
  returned: always
  type: dict
  sample: {"exists": true, "size_mib": 4096, "active": true, "in_fstab": true}
"""

import os
import stat

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.module_utils.common.commands import Commands
from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError
from ansible_collections.dlnode.gpu.plugins.module_utils.common.module import run_module
from ansible_collections.dlnode.gpu.plugins.module_utils.common.plans import Plan, Step

ARGUMENT_SPEC = dict(
    path=dict(type="path", required=True),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    size_mib=dict(type="int"),
    fstab=dict(type="path", default="/etc/fstab"),
)


def active_swaps():
    # /proc/swaps escapes spaces in paths as \040.
    return [line.split()[0].replace("\\040", " ") for line in (files.read("/proc/swaps") or "").splitlines()[1:]]


def fstab_line(path):
    return f"{path} none swap sw 0 0"


def read_fstab(fstab):
    return (files.read(fstab) or "").splitlines()


def observe(path, fstab):
    real = files.host_path(path)
    exists = os.path.isfile(real)
    lines = read_fstab(fstab)
    return dict(
        exists=exists,
        size_mib=os.path.getsize(real) // files.MIB if exists else 0,
        mode=f"{stat.S_IMODE(os.stat(real).st_mode):04o}" if exists else None,
        active=path in active_swaps(),
        in_fstab=fstab_line(path) in lines,
    )


def plan(now, state, size_mib):
    """The ordered actions that take the file from `now` to `state`."""
    actions = []
    if state == "absent":
        if now["active"]:
            actions.append("swapoff")
        if now["in_fstab"]:
            actions.append("fstab")
        if now["exists"]:
            actions.append("remove")
        return actions
    rebuild = not now["exists"] or now["size_mib"] != size_mib
    if rebuild and now["active"]:
        actions.append("swapoff")
    if rebuild:
        actions += ["write", "mkswap"]
    elif now["mode"] != "0600":
        actions.append("chmod")
    if not now["in_fstab"]:
        actions.append("fstab")
    if rebuild or not now["active"]:
        actions.append("swapon")
    return actions


def fstab_change(fstab, path, present):
    kept = [line for line in read_fstab(fstab) if line.split()[:1] != [path]]
    if present:
        kept.append(fstab_line(path))
    return files.plan(fstab, "\n".join(kept) + "\n")


def steps(module, actions, path, size_mib, fstab, state):
    """The actions as steps of a plan, each with the call that makes it."""
    commands = Commands(module, packages={"mkswap": "util-linux", "swapon": "util-linux", "swapoff": "util-linux"})
    calls = {
        "swapoff": lambda: commands.run("swapoff", path),
        # Written out in full: swapon refuses files with holes or unwritten extents on some file systems.
        "write": lambda: files.write_zeros(path, size_mib),
        "mkswap": lambda: commands.run("mkswap", path),
        "chmod": lambda: os.chmod(files.host_path(path), 0o600),
        "fstab": lambda: files.write(module, fstab_change(fstab, path, state == "present")),
        "swapon": lambda: commands.run("swapon", path),
        "remove": lambda: os.remove(files.host_path(path)),
    }
    return Plan(Step(action, path, call=calls[action]) for action in actions)


def predict(now, state, size_mib):
    if state == "absent":
        return dict(exists=False, size_mib=0, mode=None, active=False, in_fstab=False)
    return dict(exists=True, size_mib=size_mib, mode="0600", active=True, in_fstab=True)


def run(module, result):
    path, state, size_mib, fstab = (module.params[k] for k in ("path", "state", "size_mib", "fstab"))
    if state == "present" and size_mib < 1:
        raise DlnodeError(f"size_mib must be a positive number of MiB, got {size_mib}")
    if os.path.exists(files.host_path(path)) and not os.path.isfile(files.host_path(path)):
        raise DlnodeError(f"path {path} exists and is not a regular file; refusing to touch it")

    before = observe(path, fstab)
    actions = plan(before, state, size_mib)
    result.update(actions=actions, before=before)
    if "write" in actions:
        # Before anything is done, in check mode too: a swap file must never fill its file system.
        directory = os.path.dirname(path)
        if module.check_mode and not os.path.isdir(files.host_path(directory)):
            module.warn(f"path: {directory} does not exist yet (a volume an earlier task mounts?): the free space "
                        f"for {size_mib} MiB is checked when the real run writes the file")
        else:
            files.check_space(path, size_mib)
    steps(module, actions, path, size_mib, fstab, state).apply(module)
    after = observe(path, fstab) if actions and not module.check_mode else (predict(before, state, size_mib) if actions else before)
    result.update(changed=bool(actions), after=after, diff=dict(before=before, after=after))
    if after != predict(before, state, size_mib):
        raise DlnodeError(f"swap file {path} reads back as {after} after {actions}")


def main():
    run_module(ARGUMENT_SPEC, run, required_if=[("state", "present", ["size_mib"])])


if __name__ == "__main__":
    main()
