# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""Package versions: the order dpkg and rpm give them, and the patterns a set may ask for.

A pattern is a version with `*` for any characters ("580.*", "580.126.16-*", "2.28.3-*+cuda13.0", or
`*` alone): it stands for
the installed version when that matches, else the newest version the sources have that matches. An
epoch the pattern does not name is not compared ("580.*" matches "3:580.126.16-1.el9"). The order is
dpkg's (deb-version(7)): epoch, then upstream version and revision compared part by part, digits
as numbers, `~` before everything, letters before other characters. rpm's rpmvercmp differs in
corner cases (`^`, separators) that NVIDIA's versions do not use.
"""
from __future__ import annotations

import fnmatch
import re
from functools import cmp_to_key

# A version with `*` for any run of characters, at least one: 580.*, 2.28.3-*+cuda13.0, *.
PATTERN_RE = re.compile(r"^(?=[^*]*\*)(?:[0-9]+:)?[0-9*][A-Za-z0-9.+~:*-]*$")


def is_pattern(version):
    return isinstance(version, str) and "*" in version


def matches(version, pattern):
    """Whether a version (epoch 0 written or not) matches a pattern."""
    if version is None:
        return False
    plain = version.split(":", 1)[1] if ":" in version and ":" not in pattern else version
    return fnmatch.fnmatchcase(plain, pattern)


def _order(char):
    if char == "~":
        return -1
    if char.isalpha():
        return ord(char)
    return ord(char) + 256


def _compare_part(left, right):
    """dpkg's verrevcmp: alternating non-digit and digit runs."""
    while left or right:
        left_text = re.match(r"^[^0-9]*", left).group(0)
        right_text = re.match(r"^[^0-9]*", right).group(0)
        for index in range(max(len(left_text), len(right_text))):
            a = _order(left_text[index]) if index < len(left_text) else 0
            b = _order(right_text[index]) if index < len(right_text) else 0
            if a != b:
                return -1 if a < b else 1
        left, right = left[len(left_text):], right[len(right_text):]
        left_digits = re.match(r"^[0-9]*", left).group(0)
        right_digits = re.match(r"^[0-9]*", right).group(0)
        if int(left_digits or 0) != int(right_digits or 0):
            return -1 if int(left_digits or 0) < int(right_digits or 0) else 1
        left, right = left[len(left_digits):], right[len(right_digits):]
    return 0


def _split(version):
    epoch, _colon, rest = version.rpartition(":")
    upstream, _dash, revision = rest.rpartition("-") if "-" in rest else (rest, "", "")
    return int(epoch or 0), upstream, revision


def compare(left, right):
    """-1, 0 or 1 as dpkg --compare-versions orders two versions."""
    left_epoch, left_upstream, left_revision = _split(left)
    right_epoch, right_upstream, right_revision = _split(right)
    if left_epoch != right_epoch:
        return -1 if left_epoch < right_epoch else 1
    return _compare_part(left_upstream, right_upstream) or _compare_part(left_revision, right_revision)


def newest(versions):
    """The newest of some versions, or None."""
    return max(versions, key=cmp_to_key(compare)) if versions else None


def resolve(pattern, installed, available):
    """The version a pattern stands for: the installed one when it matches, else the newest matching one available."""
    if matches(installed, pattern):
        return installed
    return newest([version for version in available if matches(version, pattern)])
