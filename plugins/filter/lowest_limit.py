# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
from __future__ import annotations

DOCUMENTATION = r"""
name: lowest_limit
short_description: The lowest of resource limits, V(unlimited) being the highest
version_added: 0.1.0
description:
  - Compares limits as pam_limits and systemd write them, numbers or V(unlimited)
    (V(infinity) too), and returns the lowest one as it was given.
options:
  _input:
    description: The limits, each an integer, a string of digits, V(unlimited) or V(infinity).
    type: list
    elements: raw
    required: true
"""

EXAMPLES = r"""
- name: Clamp nofile to what the node allows
  ansible.builtin.debug:
    msg: "{{ [1048576, 524288] | dlnode.gpu.lowest_limit }}"  # 524288
"""

RETURN = r"""
_value:
  description: The lowest limit, unchanged; V(unlimited) only when every limit is unlimited.
  type: raw
  sample: 524288
"""

from ansible.errors import AnsibleFilterError

UNLIMITED = ("unlimited", "infinity")


def magnitude(limit):
    """A limit as a number to compare; unlimited is infinite."""
    if isinstance(limit, str) and limit.strip() in UNLIMITED:
        return float("inf")
    if isinstance(limit, bool) or not str(limit).strip().isdigit():
        raise AnsibleFilterError(f"lowest_limit: {limit!r} is not a limit: use a non-negative integer or unlimited")
    return int(str(limit).strip())


def lowest_limit(limits):
    """The lowest of the limits, as given."""
    if not isinstance(limits, (list, tuple)) or not limits:
        raise AnsibleFilterError(f"lowest_limit: expected a non-empty list of limits, got {limits!r}")
    return min(limits, key=magnitude)


class FilterModule:
    """dlnode.gpu.lowest_limit"""

    def filters(self):
        return {"lowest_limit": lowest_limit}
