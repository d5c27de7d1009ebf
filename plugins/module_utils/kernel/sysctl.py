# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""Plan and apply a whole sysctl profile: one file under sysctl.d plus the running values."""
from __future__ import annotations

import errno
import os
import re

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError
from ansible_collections.dlnode.gpu.plugins.module_utils.kernel import sysfs

KEY_RE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_:@-]+)+$")
HEADER = "# Managed by Ansible (dlnode.gpu). Local changes are overwritten.\n"


class SysctlError(DlnodeError):
    """Bad input: the message names the key and what is allowed."""


def normalize(key, value):
    """The value as the kernel prints it: words separated by single spaces."""
    if isinstance(value, (bool, dict, float)):
        raise SysctlError(f"settings.{key}: expected an integer, a string or a list of integers, got {value!r}")
    if isinstance(value, list):
        value = " ".join(str(item) for item in value)
    text = " ".join(str(value).split())
    if not text:
        raise SysctlError(f"settings.{key}: empty value; use null to drop a key")
    return text


def wanted_settings(settings):
    """Validated {key: normalized value}; null values are dropped."""
    wanted = {}
    for key, value in settings.items():
        if not KEY_RE.match(key):
            raise SysctlError(f"settings: {key!r} is not a sysctl key (dotted words such as vm.swappiness)")
        if value is not None:
            wanted[key] = normalize(key, value)
    return dict(sorted(wanted.items()))


def render(wanted):
    return HEADER + "".join(f"{key} = {value}\n" for key, value in wanted.items())


def proc_key(key):
    """The key's file under /proc/sys (vm.swappiness: /proc/sys/vm/swappiness)."""
    return os.path.join("/proc/sys", *key.split("."))


def proc_path(key):
    return files.host_path(proc_key(key))


def read_value(key):
    """The running value, or None when this kernel has no such key."""
    try:
        with open(proc_path(key), encoding="utf-8") as handle:
            return " ".join(handle.read().split())
    except FileNotFoundError:
        return None


def plan_runtime(wanted):
    """({key: {before, after}} to write, {key: reason} that cannot be set here)."""
    changes, unsettable = {}, {}
    for key, value in wanted.items():
        current = read_value(key)
        if current is None:
            unsettable[key] = "no such key in this kernel"
        elif current == value:
            continue
        elif not os.access(proc_path(key), os.W_OK):
            unsettable[key] = (f"read-only here (running value {current}): /proc/sys is mounted read-only "
                               "or the key is not per network namespace, as in a container")
        else:
            changes[key] = {"before": current, "after": value}
    return changes, unsettable


def apply_runtime(changes):
    """Write each value, read it back; returns {key: reason} for what did not take."""
    refused = {}
    for key, change in changes.items():
        try:
            sysfs.write_text(files.ROOT, proc_key(key), change["after"])
        except sysfs.SysfsError as err:
            if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                refused[key] = f"the kernel refused the write ({os.strerror(err.errno)})"
                continue
            refused[key] = f"the kernel rejected {change['after']!r}: {os.strerror(err.errno)}"
            continue
        got = read_value(key)
        if got != change["after"]:
            refused[key] = f"the kernel accepted {change['after']!r} but reads back {got!r}"
    return refused
