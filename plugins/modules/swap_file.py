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

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dlnode.gpu.plugins.module_utils.kernel.sysfs import SysfsError, install_file, read_file

MIB = 1024 * 1024


def active_swaps():
    with open("/proc/swaps", encoding="utf-8") as handle:
        # /proc/swaps escapes spaces in paths as \040.
        return [line.split()[0].replace("\\040", " ") for line in handle.readlines()[1:]]


def fstab_line(path):
    return f"{path} none swap sw 0 0"


def read_fstab(fstab):
    return (read_file("/", fstab) or "").splitlines()


def observe(path, fstab):
    exists = os.path.isfile(path)
    lines = read_fstab(fstab)
    return dict(
        exists=exists,
        size_mib=os.path.getsize(path) // MIB if exists else 0,
        mode=f"{stat.S_IMODE(os.stat(path).st_mode):04o}" if exists else None,
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


def write_fstab(module, fstab, path, present):
    kept = [line for line in read_fstab(fstab) if line.split()[:1] != [path]]
    if present:
        kept.append(fstab_line(path))
    install_file(module, "/", fstab, "\n".join(kept) + "\n")


def write_zeros(path, size_mib):
    # Written out in full: swapon refuses files with holes or unwritten extents on some filesystems.
    block = bytes(MIB)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for _block in range(size_mib):
            os.write(fd, block)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(path, 0o600)


def apply(module, actions, path, size_mib, fstab, state):
    def run(*argv):
        module.run_command([module.get_bin_path(argv[0], required=True), *argv[1:]], check_rc=True)

    for action in actions:
        if action == "swapoff":
            run("swapoff", path)
        elif action == "write":
            write_zeros(path, size_mib)
        elif action == "mkswap":
            run("mkswap", path)
        elif action == "chmod":
            os.chmod(path, 0o600)
        elif action == "fstab":
            write_fstab(module, fstab, path, state == "present")
        elif action == "swapon":
            run("swapon", path)
        elif action == "remove":
            os.remove(path)


def predict(now, state, size_mib):
    if state == "absent":
        return dict(exists=False, size_mib=0, mode=None, active=False, in_fstab=False)
    return dict(exists=True, size_mib=size_mib, mode="0600", active=True, in_fstab=True)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            size_mib=dict(type="int"),
            fstab=dict(type="path", default="/etc/fstab"),
        ),
        required_if=[("state", "present", ["size_mib"])],
        supports_check_mode=True,
    )
    path, state, size_mib, fstab = (module.params[k] for k in ("path", "state", "size_mib", "fstab"))
    if state == "present" and size_mib < 1:
        module.fail_json(msg=f"size_mib must be a positive number of MiB, got {size_mib}")
    if os.path.exists(path) and not os.path.isfile(path):
        module.fail_json(msg=f"path {path} exists and is not a regular file; refusing to touch it")

    try:
        before = observe(path, fstab)
        actions = plan(before, state, size_mib)
        if actions and not module.check_mode:
            apply(module, actions, path, size_mib, fstab, state)
            after = observe(path, fstab)
        else:
            after = predict(before, state, size_mib) if actions else before
    except SysfsError as err:
        module.fail_json(msg=str(err))
    else:
        if after != predict(before, state, size_mib):
            module.fail_json(msg=f"swap file {path} reads back as {after} after {actions}", actions=actions,
                             before=before, after=after)
        module.exit_json(changed=bool(actions), actions=actions, before=before, after=after,
                         diff=dict(before=before, after=after))


if __name__ == "__main__":
    main()
