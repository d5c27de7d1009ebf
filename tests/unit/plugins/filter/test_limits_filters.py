"""filters limits_ceiling and lowest_limit: what a node lets processes raise their hard limits to."""
from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.dlnode.gpu.plugins.filter.limits_ceiling import CAP_SYS_RESOURCE, has_capability, limits_ceiling
from ansible_collections.dlnode.gpu.plugins.filter.lowest_limit import lowest_limit

# grep -hE '^(Max locked memory|Max open files|CapBnd)' /proc/1/limits /proc/1/status
LIMITS = ("Max locked memory         8388608              8388608              bytes     \n"
          "Max open files            1024                 524288               files     \n")
# A bare-metal root: every capability up to CAP_CHECKPOINT_RESTORE (40).
FULL = "CapBnd:\t000001ffffffffff\n"
# A node container on these machines: every capability but CAP_SYS_RESOURCE (bit 24).
CONTAINER = "CapBnd:\t000001fffeffffff\n"


def test_cap_sys_resource_is_capability_24():
    assert CAP_SYS_RESOURCE == 24
    assert has_capability("0000000001000000", CAP_SYS_RESOURCE)
    assert not has_capability("000001fffeffffff", CAP_SYS_RESOURCE)


def test_with_cap_sys_resource_nothing_caps_the_limits():
    assert limits_ceiling(LIMITS + FULL) == {"memlock": "unlimited", "nofile": "unlimited"}


def test_without_it_pid_1_hard_limits_are_the_ceiling_memlock_in_kib():
    assert limits_ceiling(LIMITS + CONTAINER) == {"memlock": 8192, "nofile": 524288}


def test_an_unlimited_hard_limit_stays_unlimited():
    text = LIMITS.replace("8388608              bytes", "unlimited            bytes") + CONTAINER
    assert limits_ceiling(text) == {"memlock": "unlimited", "nofile": 524288}


def test_order_of_lines_does_not_matter():
    assert limits_ceiling(CONTAINER + LIMITS) == {"memlock": 8192, "nofile": 524288}


@pytest.mark.parametrize("text, missing", [
    (LIMITS, "CapBnd"),
    (FULL, "Max locked memory, Max open files"),
])
def test_missing_lines_are_named(text, missing):
    with pytest.raises(AnsibleFilterError, match=f"no {missing} line"):
        limits_ceiling(text)


@pytest.mark.parametrize("limits, lowest", [
    ([1048576, 524288], 524288),
    (["unlimited", 8192], 8192),
    (["65536", 8192], 8192),
    (["65536", "unlimited"], "65536"),
    (["unlimited", "unlimited"], "unlimited"),
    (["infinity", 10], 10),
    ([1024, 1024], 1024),
])
def test_lowest_limit_keeps_the_value_as_given(limits, lowest):
    assert lowest_limit(limits) == lowest


@pytest.mark.parametrize("limits, message", [
    ([], "expected a non-empty list of limits"),
    ("unlimited", "expected a non-empty list of limits"),
    (["lots", 1], "'lots' is not a limit"),
    ([True, 1], "True is not a limit"),
    ([-1, 1], "-1 is not a limit"),
])
def test_lowest_limit_refuses_what_is_not_a_limit(limits, message):
    with pytest.raises(AnsibleFilterError, match=message):
        lowest_limit(limits)
