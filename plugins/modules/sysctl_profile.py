#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
from __future__ import annotations

DOCUMENTATION = r"""
module: sysctl_profile
short_description: Apply a whole sysctl profile in one call, persisted in one sysctl.d file
version_added: 0.1.0
description:
  - Writes every setting to one file under C(/etc/sysctl.d) and sets the running values through
    C(/proc/sys), reading each back. One call for the whole map instead of one task per key.
  - Keys the running kernel lacks, or cannot set here (a container mounts C(/proc/sys) read-only,
    and keys that are not per network namespace stay read-only inside one), are still written to
    the file for the next boot and reported in RV(unsettable).
options:
  settings:
    description:
      - Map of sysctl keys to values. Lists are joined with spaces (C(net.ipv4.tcp_rmem)).
      - A null value drops the key from the file.
    type: dict
    required: true
  path:
    description: The file under C(/etc/sysctl.d) that holds the profile; it is owned wholly by this module.
    type: path
    default: /etc/sysctl.d/90-dlnode.conf
  apply:
    description: Also set the running values now. When false only the file changes (applied at next boot).
    type: bool
    default: true
  unsettable:
    description:
      - What to do when a running value cannot be set or does not read back as written.
      - C(warn) reports it and goes on; C(fail) fails the task.
    type: str
    choices: [warn, fail]
    default: warn
attributes:
  check_mode:
    support: full
    description: Reads the file and the running values and reports exactly what would change.
  diff_mode:
    support: full
    description: Shows the file before and after.
  platform:
    support: full
    platforms: posix
    description: Linux.
author: "dlnode.gpu developers (@dlnode)"
"""

EXAMPLES = r"""
- name: Apply the node's sysctl profile
  dlnode.gpu.sysctl_profile:
    path: /etc/sysctl.d/90-dlnode.conf
    settings:
      vm.swappiness: 10
      vm.max_map_count: 1048576
      net.ipv4.tcp_rmem: [4096, 87380, 134217728]
"""

RETURN = r"""
path:
  description: The profile file.
  returned: always
  type: str
  sample: /etc/sysctl.d/90-dlnode.conf
settings:
  description: The settings written to the file, as the kernel prints them.
  returned: always
  type: dict
  sample: {"vm.swappiness": "10", "net.ipv4.tcp_rmem": "4096 87380 134217728"}
file_changed:
  description: Whether the file was (or would be) rewritten.
  returned: always
  type: bool
  sample: true
runtime:
  description: Running values changed (or to change), with before and after.
  returned: always
  type: dict
  sample: {"vm.swappiness": {"before": "60", "after": "10"}}
unsettable:
  description: Keys whose running value could not be set here, with the reason; they are in the file.
  returned: always
  type: dict
  sample: {"net.core.rmem_max": "read-only here (running value 212992): /proc/sys is mounted read-only"}
"""

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError
from ansible_collections.dlnode.gpu.plugins.module_utils.common.module import run_module
from ansible_collections.dlnode.gpu.plugins.module_utils.kernel.sysctl import apply_runtime, plan_runtime, render, wanted_settings

ARGUMENT_SPEC = dict(
    settings=dict(type="dict", required=True),
    path=dict(type="path", default="/etc/sysctl.d/90-dlnode.conf"),
    apply=dict(type="bool", default=True),
    unsettable=dict(type="str", choices=["warn", "fail"], default="warn"),
)


def run(module, result):
    path = module.params["path"]
    wanted = wanted_settings(module.params["settings"])
    changes, unsettable = plan_runtime(wanted) if module.params["apply"] else ({}, {})
    file = files.sync(module, path, render(wanted))
    if not module.check_mode:
        unsettable.update(apply_runtime(changes))
        for key in unsettable:
            changes.pop(key, None)

    result.update(
        changed=file.changed or bool(changes),
        path=path,
        settings=wanted,
        file_changed=file.changed,
        runtime=changes,
        unsettable=unsettable,
        diff=file.diff(),
    )
    if unsettable:
        lines = "; ".join(f"{key}: {reason}" for key, reason in sorted(unsettable.items()))
        if module.params["unsettable"] == "fail":
            raise DlnodeError(f"could not set running values ({lines})")
        module.warn(f"running values not set (written to {path} for the next boot): {lines}")


def main():
    run_module(ARGUMENT_SPEC, run)


if __name__ == "__main__":
    main()
