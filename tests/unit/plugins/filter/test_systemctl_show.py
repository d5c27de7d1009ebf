"""filter systemctl_show: `systemctl show` output, one dict per unit."""
from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.dlnode.gpu.plugins.filter.systemctl_show import systemctl_show

# What systemd 252 (Debian 12) prints for an active timer, a masked service and a unit that
# is not installed, with --property=Id,LoadState,ActiveState.
OUTPUT = """Id=apt-daily.timer
LoadState=loaded
ActiveState=active

Id=unattended-upgrades.service
LoadState=masked
ActiveState=inactive

Id=ModemManager.service
LoadState=not-found
ActiveState=inactive"""


def test_one_dict_per_unit_in_order():
    assert systemctl_show(OUTPUT) == [
        {"Id": "apt-daily.timer", "LoadState": "loaded", "ActiveState": "active"},
        {"Id": "unattended-upgrades.service", "LoadState": "masked", "ActiveState": "inactive"},
        {"Id": "ModemManager.service", "LoadState": "not-found", "ActiveState": "inactive"},
    ]


def test_values_keep_their_equals_signs_and_trailing_newlines_are_ignored():
    assert systemctl_show("Id=a.service\nEnvironment=A=1 B=2\n\n\n") == [{"Id": "a.service", "Environment": "A=1 B=2"}]


def test_empty_output_has_no_units():
    assert systemctl_show("") == []


def test_a_line_that_is_not_key_value_is_refused():
    with pytest.raises(AnsibleFilterError, match="'Failed to get properties' is not a Key=Value line"):
        systemctl_show("Failed to get properties")


def test_input_must_be_text():
    with pytest.raises(AnsibleFilterError, match="expected the output of systemctl show"):
        systemctl_show(["Id=a.service"])
