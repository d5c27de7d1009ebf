"""Version order and patterns, checked against the real `dpkg --compare-versions` of this machine."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from ansible_collections.dlnode.gpu.plugins.module_utils.packages import versions

PAIRS = [
    ("580.126.16-1ubuntu1", "580.159.04-1ubuntu1"), ("580.159.04-1ubuntu1", "590.48.01-1ubuntu1"),
    ("580.126.16-1", "580.126.16-1ubuntu1"), ("535.261.03-1~deb12u1", "535.261.03-1"),
    ("1:1.0", "2.0"), ("1.0~rc1", "1.0"), ("1.0", "1.0+b1"), ("1.0a", "1.0+"), ("7.2.3+ds-1", "7.3.2+ds-1~bpo12+1"),
    ("2025.10.14-1", "580.126.16-1"), ("1.0-1", "1.0-1"), ("0:1.0-1", "1.0-1"), ("12.8.1-1", "12.10.0-1"),
    ("9.10.2.21-1", "9.8.0.87-1"), ("1.0", "1.0-0"), ("a", "b"), ("1.0~~", "1.0~"),
]


@pytest.mark.parametrize("left, right", PAIRS)
def test_order_is_dpkgs(left, right):
    if not shutil.which("dpkg"):
        pytest.skip("dpkg is not installed here")
    expected = 0
    for relation, value in (("lt", -1), ("gt", 1)):
        if subprocess.run(["dpkg", "--compare-versions", left, relation, right], check=False).returncode == 0:
            expected = value
    assert versions.compare(left, right) == expected
    assert versions.compare(*reversed((left, right))) == -expected


def test_newest_and_resolve():
    available = ["580.126.16-1ubuntu1", "590.48.01-1ubuntu1", "580.159.04-1ubuntu1", "580.65.06-1ubuntu1"]
    assert versions.newest(available) == "590.48.01-1ubuntu1"
    assert versions.newest([]) is None
    assert versions.resolve("580.*", None, available) == "580.159.04-1ubuntu1"
    assert versions.resolve("580.*", "580.126.16-1ubuntu1", available) == "580.126.16-1ubuntu1"
    assert versions.resolve("580.126.16-*", "580.159.04-1ubuntu1", available) == "580.126.16-1ubuntu1"
    assert versions.resolve("600.*", None, available) is None
    # 5800.x is not branch 580.
    assert versions.resolve("580.*", None, ["5800.1-1"]) is None
    nccl = ["2.28.3-1+cuda12.8", "2.28.3-1+cuda13.0", "2.26.5-1+cuda13.0"]
    assert versions.resolve("*+cuda13.0", None, nccl) == "2.28.3-1+cuda13.0"


@pytest.mark.parametrize("version, pattern, expected", [
    ("580.126.16-1", "580.*", True), ("0:580.126.16-1", "580.*", True), ("3:580.126.16-1.el9", "3:580.*", True),
    ("3:580.126.16-1.el9", "580.*", True), ("3:580.1-1", "2:580.*", False),
    ("590.48.01-1", "580.*", False), (None, "580.*", False),
])
def test_matches(version, pattern, expected):
    assert versions.matches(version, pattern) is expected


@pytest.mark.parametrize("text, expected", [("580.*", True), ("580.126.16-*", True), ("3:580.*", True),
                                            ("*", True), ("2.28.3-*+cuda13.0", True), ("580.126.16", False), ("latest", False),
                                            ("580 .*", False)])
def test_pattern_form(text, expected):
    assert bool(versions.PATTERN_RE.match(text)) is expected
