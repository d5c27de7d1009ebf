# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
from __future__ import annotations

DOCUMENTATION = r"""
name: systemctl_show
short_description: The units of a C(systemctl show) output, one dict each
version_added: 0.1.0
description:
  - Parses what C(systemctl show --property=A,B UNIT...) prints, one block of C(Key=Value) lines
    per unit, blocks separated by an empty line. A value keeps any C(=) it holds.
options:
  _input:
    description: The output of C(systemctl show), as a string.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Mask the units that are not masked yet
  ansible.builtin.systemd_service:
    name: "{{ item.Id }}"
    masked: true
  loop: "{{ __units.stdout | dlnode.gpu.systemctl_show | rejectattr('LoadState', '==', 'masked') }}"
"""

RETURN = r"""
_value:
  description: One dict per unit, in the order systemctl printed them.
  type: list
  elements: dict
  sample: [{"Id": "apt-daily.timer", "LoadState": "loaded", "ActiveState": "active"}]
"""

from ansible.errors import AnsibleFilterError


def systemctl_show(text):
    """[{property: value}] for each unit block of `systemctl show` output."""
    if not isinstance(text, str):
        raise AnsibleFilterError(f"systemctl_show: expected the output of systemctl show (a string), got {type(text).__name__}")
    units, unit = [], {}
    for line in text.splitlines() + [""]:
        if not line.strip():
            if unit:
                units.append(unit)
            unit = {}
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise AnsibleFilterError(f"systemctl_show: {line!r} is not a Key=Value line of systemctl show")
        unit[key] = value
    return units


class FilterModule:
    """dlnode.gpu.systemctl_show"""

    def filters(self):
        return {"systemctl_show": systemctl_show}
