# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
from __future__ import annotations

DOCUMENTATION = r"""
name: platform_vars
short_description: The vars file of a role for this node's platform
version_added: 0.1.0
description:
  - Returns the first file that exists in the role's C(vars/) directory among
    C(<distribution>-<major>.yml), C(<distribution>.yml), C(<os_family>.yml) and C(default.yml),
    the one pattern every role of the collection loads its per-platform values with.
  - Runs on the controller, where the role's files are.
options:
  _input:
    description: The role's directory (C(role_path)).
    type: path
    required: true
  facts:
    description: The node's facts (C(ansible_facts)), with distribution, distribution_major_version and os_family.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Load the platform's variables
  ansible.builtin.include_vars: "{{ role_path | dlnode.gpu.platform_vars(ansible_facts) }}"
"""

RETURN = r"""
_value:
  description: The absolute path of the vars file.
  type: path
  sample: /usr/share/ansible/collections/ansible_collections/dlnode/gpu/roles/base_os/vars/Debian.yml
"""

import os

from ansible.errors import AnsibleFilterError


def candidates(facts):
    """The vars file names to try, most specific first."""
    distribution = facts.get("distribution")
    major = facts.get("distribution_major_version")
    names = []
    if distribution and major:
        names.append(f"{distribution}-{major}.yml")
    if distribution:
        names.append(f"{distribution}.yml")
    if facts.get("os_family"):
        names.append(f"{facts['os_family']}.yml")
    return names + ["default.yml"]


def platform_vars(role_path, facts):
    """The first vars file of the role that exists for these facts."""
    if not isinstance(facts, dict):
        raise AnsibleFilterError(f"platform_vars: facts must be ansible_facts (a dict), got {type(facts).__name__}")
    directory = os.path.join(str(role_path), "vars")
    for name in candidates(facts):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    raise AnsibleFilterError(f"platform_vars: none of {', '.join(candidates(facts))} is in {directory}")


class FilterModule:
    """dlnode.gpu.platform_vars"""

    def filters(self):
        return {"platform_vars": platform_vars}
