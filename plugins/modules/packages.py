#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
# Documentation only: the work is done by the action plugin of the same name.
from __future__ import annotations

DOCUMENTATION = r"""
module: packages
short_description: Install packages, and predict the install in check mode on a bare server too
version_added: 0.1.0
description:
  - Installs the named packages with the node's package module (M(ansible.builtin.apt) on the
    Debian family, M(ansible.builtin.dnf) on the RHEL family), chosen from C(ansible_facts['os_family']).
  - In check mode it first runs M(dlnode.gpu.package_plan). Where the package module cannot plan
    (apt without C(python3-apt), as on a bare Debian or Ubuntu server), that read of the package
    database is the prediction, with a warning that the exact set (with dependencies) cannot be
    predicted; elsewhere the package module's own check mode predicts.
  - The roles of the collection install every package through it.
options:
  name:
    description: Package names (on apt systems also V(name=version)).
    type: list
    elements: str
    required: true
  install_recommends:
    description: apt only. Install recommended packages too; unset leaves apt's configuration to decide.
    type: bool
attributes:
  action:
    support: full
    description: An action plugin, which runs package_plan and the package module on the node.
  check_mode:
    support: full
    description: Predicts with the package module, or from the package database where it cannot plan.
  diff_mode:
    support: none
    description: The package modules report no diff.
  platform:
    support: full
    platforms: posix
    description: Debian, Ubuntu and RHEL-family nodes; facts gathered (at least C(gather_subset=min)).
author: "dlnode.gpu developers (@dlnode)"
"""

EXAMPLES = r"""
- name: Install the base packages
  dlnode.gpu.packages:
    name: [build-essential, dkms, chrony]
    install_recommends: false
  register: installed
"""

RETURN = r"""
missing:
  description: In check mode where the package module cannot plan, the named packages that are not installed.
  returned: check mode without the package module's bindings
  type: list
  elements: str
  sample: [build-essential, dkms]
bindings:
  description: Whether the package module could plan this check run; false where the missing packages are the prediction.
  returned: check mode
  type: bool
  sample: false
"""
