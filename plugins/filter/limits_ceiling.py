# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
from __future__ import annotations

DOCUMENTATION = r"""
name: limits_ceiling
short_description: The highest memlock and nofile hard limits a node lets its processes have
version_added: 0.1.0
description:
  - Reads the lines C(Max locked memory) and C(Max open files) of C(/proc/1/limits) and C(CapBnd)
    of C(/proc/1/status) (other lines are ignored).
  - Raising a hard limit above the one a process inherited needs C(CAP_SYS_RESOURCE). When the
    capability bounding set has it, nothing caps the limits (V(unlimited)); when it lacks it (a
    container), nobody on the node can go above PID 1's hard limits, which are then the ceiling.
options:
  _input:
    description: The text of those lines, e.g. the output of
      C(grep -hE '^(Max locked memory|Max open files|CapBnd)' /proc/1/limits /proc/1/status).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Read PID 1's hard limits and capability bounding set
  ansible.builtin.command: grep -hE '^(Max locked memory|Max open files|CapBnd)' /proc/1/limits /proc/1/status
  register: __ceiling
  changed_when: false

- name: Clamp nofile to what this node allows
  ansible.builtin.set_fact:
    nofile: "{{ [1048576, (__ceiling.stdout | dlnode.gpu.limits_ceiling).nofile] | dlnode.gpu.lowest_limit }}"
"""

RETURN = r"""
_value:
  description: C(memlock) in KiB and C(nofile), each a number or V(unlimited).
  type: dict
  sample: {"memlock": 8192, "nofile": 1048576}
"""

from ansible.errors import AnsibleFilterError

# linux/capability.h: the capability to override resource limits, raise hard limits included.
CAP_SYS_RESOURCE = 24
FIELDS = {"memlock": "Max locked memory", "nofile": "Max open files"}


def has_capability(capbnd_hex, capability):
    """Whether a capability set in /proc/PID/status hex form (CapBnd) holds a capability."""
    return bool(int(capbnd_hex, 16) >> capability & 1)


def hard_limit(line, field):
    """The hard limit of a /proc/PID/limits line: after the name come soft, hard and units."""
    value = line[len(field):].split()[1]
    return value if value == "unlimited" else int(value)


def limits_ceiling(text):
    """{'memlock': KiB or 'unlimited', 'nofile': count or 'unlimited'}."""
    if not isinstance(text, str):
        raise AnsibleFilterError(f"limits_ceiling: expected lines of /proc/1/limits and /proc/1/status, got {type(text).__name__}")
    lines = text.splitlines()
    capbnd = [line.split()[1] for line in lines if line.startswith("CapBnd:")]
    found = {key: [hard_limit(line, field) for line in lines if line.startswith(field)] for key, field in FIELDS.items()}
    missing = [FIELDS[key] for key, values in found.items() if not values] + ([] if capbnd else ["CapBnd"])
    if missing:
        raise AnsibleFilterError(f"limits_ceiling: no {', '.join(missing)} line in {text!r}")
    if has_capability(capbnd[0], CAP_SYS_RESOURCE):
        return {"memlock": "unlimited", "nofile": "unlimited"}
    memlock = found["memlock"][0]
    return {"memlock": memlock if memlock == "unlimited" else memlock // 1024, "nofile": found["nofile"][0]}


class FilterModule:
    """dlnode.gpu.limits_ceiling"""

    def filters(self):
        return {"limits_ceiling": limits_ceiling}
