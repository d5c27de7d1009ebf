#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
from __future__ import annotations

DOCUMENTATION = r"""
module: package_plan
short_description: Which packages an install would add, read from the package database alone
version_added: 0.1.0
description:
  - Reads which of the named packages are installed from the node's package database
    (C(dpkg-query) on apt systems, C(rpm) on dnf systems), which needs no Python bindings, and
    never changes anything.
  - It lets a check run go on where M(ansible.builtin.apt) cannot plan. That module needs
    C(python3-apt) in check mode, which a bare Debian or Ubuntu server lacks (a real run
    installs it first). Run this module in check mode before the install task and skip the install
    where RV(bindings) is false; this module's result is then the prediction.
  - In check mode, where the bindings are missing and packages are missing, it reports
    C(changed) and warns that the exact set (with dependencies) cannot be predicted. Everywhere
    else it reports no change, so that a check run counts the install once (the install task's
    own prediction).
options:
  name:
    description:
      - Package names, as the install task gets them.
      - On apt systems C(name=version) (a trailing C(*) allowed in the version) and C(name:arch) are understood.
    type: list
    elements: str
    required: true
  manager:
    description:
      - The package database to read. V(auto) takes dpkg where C(apt-get) is installed, else rpm.
    type: str
    choices: [auto, dpkg, rpm]
    default: auto
attributes:
  check_mode:
    support: full
    description: Reads only; in check mode it is the prediction where the package module cannot plan.
  diff_mode:
    support: none
    description: Nothing changes, nothing to show.
  platform:
    support: full
    platforms: posix
    description: Linux with dpkg or rpm.
author: "dlnode.gpu developers (@dlnode)"
"""

EXAMPLES = r"""
# The apt module needs python3-apt to plan in check mode; a bare server lacks it.
- name: Read which packages are missing
  dlnode.gpu.package_plan:
    name: [build-essential, dkms, chrony]
  register: __plan
  when: ansible_check_mode

- name: Install the packages
  ansible.builtin.apt:
    name: [build-essential, dkms, chrony]
    state: present
  register: __install
  when: __plan.bindings | default(true)

- name: Take the plan as the install's prediction where apt could not plan
  ansible.builtin.set_fact:
    __install: "{{ __plan }}"
  when: not __plan.bindings | default(true)
"""

RETURN = r"""
manager:
  description: The package database that was read.
  returned: always
  type: str
  sample: dpkg
installed:
  description: The named packages that are installed, with their installed version.
  returned: always
  type: dict
  sample: {"ca-certificates": "20230311", "curl": "7.88.1-10+deb12u14"}
missing:
  description: The named packages that are not installed (or not in the version asked), in the order given.
  returned: always
  type: list
  elements: str
  sample: [build-essential, dkms, chrony]
bindings:
  description:
    - Whether Ansible's package module can plan on this node in check mode, because the package manager's
      Python bindings are there (C(python3-apt) for apt; C(dnf) or C(libdnf5) for dnf).
    - Where false, this module's result is the only prediction a check run has.
  returned: always
  type: bool
  sample: false
msg:
  description: What an install would do, in words.
  returned: always
  type: str
  sample: >-
    python3-apt is not installed, so apt cannot plan this install in check mode and the exact set of
    packages (with their dependencies) cannot be predicted without it. The real run installs python3-apt
    first, then these 3 packages and their dependencies: build-essential, dkms, chrony
"""

import fnmatch
import importlib.util

from ansible.module_utils.common.respawn import probe_interpreters_for_module

from ansible_collections.dlnode.gpu.plugins.module_utils.common.commands import Commands
from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError
from ansible_collections.dlnode.gpu.plugins.module_utils.common.module import run_module
from ansible_collections.dlnode.gpu.plugins.module_utils.packages import database

ARGUMENT_SPEC = dict(
    name=dict(type="list", elements="str", required=True),
    manager=dict(type="str", choices=["auto", "dpkg", "rpm"], default="auto"),
)

# Where the apt and dnf modules themselves look for their bindings when this interpreter lacks them.
SYSTEM_INTERPRETERS = ["/usr/libexec/platform-python", "/usr/bin/python3", "/usr/bin/python"]
# manager: (bindings package, package module, importable names)
BINDINGS = {"dpkg": ("python3-apt", "apt", ["apt"]), "rpm": ("python3-dnf", "dnf", ["dnf", "libdnf5"])}


def split_name(spec, manager):
    """(package, version pattern or None) of one requested name."""
    if manager != "dpkg":
        return spec, None
    name, version = spec.split("=", 1) if "=" in spec else (spec, None)
    return name.split(":", 1)[0], version or None


def missing_packages(specs, installed, manager):
    """The requested names an install would add or change, in the order given."""
    missing = []
    for spec in specs:
        name, version = split_name(spec, manager)
        have = installed.get(name)
        if have is None or (version is not None and not fnmatch.fnmatchcase(have, version)):
            missing.append(spec)
    return missing


def has_bindings(modules):
    """Whether this interpreter or a system one can import any of the bindings, as the package modules try."""
    if any(importlib.util.find_spec(name) is not None for name in modules):
        return True
    return any(probe_interpreters_for_module(SYSTEM_INTERPRETERS, name) for name in modules)


def message(manager, missing, bindings):
    if bindings:
        return f"{len(missing)} of the packages are not installed: {', '.join(missing)}" if missing else "all installed"
    package, tool = BINDINGS[manager][:2]
    head = (f"{package} is not installed, so {tool} cannot plan this install in check mode and the exact set of "
            f"packages (with their dependencies) cannot be predicted without it. The real run installs {package} first")
    if not missing:
        return f"{head}; the named packages are all installed"
    return f"{head}, then these {len(missing)} packages and their dependencies: {', '.join(missing)}"


def run(module, result):
    specs = module.params["name"]
    bad = [spec for spec in specs if not spec or spec.endswith((".deb", ".rpm")) or any(c in spec for c in " \t\n/[?")
           or "*" in split_name(spec, "dpkg")[0]]
    if bad:
        raise DlnodeError(f"name must hold package names (name, name=version, name:arch on apt systems), "
                          f"not paths, patterns or empty strings: got {bad}")
    commands = Commands(module, {"dpkg-query": "dpkg", "rpm": "rpm"})
    manager = module.params["manager"]
    if manager == "auto":
        manager = database.detect(commands)

    installed = database.read_installed(commands, manager, [split_name(spec, manager)[0] for spec in specs])
    missing = missing_packages(specs, installed, manager)
    bindings = has_bindings(BINDINGS[manager][2])
    msg = message(manager, missing, bindings)
    stands_in = module.check_mode and not bindings and bool(missing)
    if stands_in:
        module.warn(f"check mode: {msg}")
    result.update(changed=stands_in, manager=manager, installed=installed, missing=missing, bindings=bindings, msg=msg)


def main():
    run_module(ARGUMENT_SPEC, run)


if __name__ == "__main__":
    main()
