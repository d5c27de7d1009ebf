# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""Kernel command line parameters: parse, compare and render what the boot loaders hold."""
from __future__ import annotations

import re
import shlex

from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError

ARG_RE = re.compile(r"^[A-Za-z0-9_.\-]+(=[^\s\"'\\]+)?$")
CONTAINER_MARKERS = ("/run/systemd/container", "/run/.containerenv", "/.dockerenv")


class CmdlineError(DlnodeError):
    """Bad input or a boot loader state the module cannot work with."""


def check_args(args):
    """The parameters, each once in the given order; refuses what a boot loader would mangle."""
    bad = [arg for arg in args if not ARG_RE.match(str(arg))]
    if bad:
        raise CmdlineError(f"args: {', '.join(repr(arg) for arg in bad)} is not a kernel parameter "
                           "(name or name=value, no spaces or quotes)")
    return list(dict.fromkeys(str(arg) for arg in args))


def missing(wanted, present):
    """The wanted parameters not among present, in wanted order."""
    have = set(present)
    return [arg for arg in wanted if arg not in have]


def dropin_content(name, args):
    """A GRUB drop-in that appends the parameters to every normal boot entry."""
    return (f"# Managed by dlnode.gpu ({name}): kernel parameters of a GPU node.\n"
            f'GRUB_CMDLINE_LINUX_DEFAULT="${{GRUB_CMDLINE_LINUX_DEFAULT}} {" ".join(args)}"\n')


def dropin_args(text):
    """The parameters a drop-in written by dropin_content adds (empty for none or another file)."""
    found = re.search(r'^GRUB_CMDLINE_LINUX_DEFAULT="\$\{GRUB_CMDLINE_LINUX_DEFAULT\}(.*)"$', text or "", re.M)
    return found.group(1).split() if found else []


# Recovery entries get GRUB_CMDLINE_LINUX only, not _DEFAULT: Debian boots them `single`,
# Ubuntu `recovery nomodeset`.
RECOVERY = ("single", "recovery")


def grub_cfg_entries(text):
    """The parameters of each normal (not recovery) `linux` line of a generated grub.cfg."""
    entries = []
    for line in (text or "").splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] in ("linux", "linuxefi", "linux16") \
                and not any(word in RECOVERY for word in words[2:]):
            entries.append(words[2:])
    return entries


def grubby_entries(text):
    """The parameters of each boot entry in `grubby --info=ALL` output (args="...")."""
    entries = []
    for line in (text or "").splitlines():
        if line.startswith("args="):
            value = line[len("args="):].strip()
            entries.append(shlex.split(value)[0].split() if value.startswith('"') else value.split())
    return entries


def lacking(wanted, entries):
    """The wanted parameters that some boot entry lacks."""
    found = []
    for entry in entries:
        found += [arg for arg in missing(wanted, entry) if arg not in found]
    return found


def holding(unwanted, entries):
    """The unwanted parameters that some boot entry still holds."""
    return [arg for arg in unwanted if any(arg in entry for entry in entries)]
