# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""Package sets locked at exact versions: their records, who owns which package, and the words
of a refusal.

A set's record (``<record_dir>/<set>.versions``, one "package version" a line) says what the set
locked last time: the packages it no longer names are released (unheld, unpinned), and a package
belongs to one set only.
"""
from __future__ import annotations

import glob
import os

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.module_utils.packages import apt
from ansible_collections.dlnode.gpu.plugins.module_utils.packages.database import strip_epoch

RECORD_SUFFIX = ".versions"


def record_path(record_dir, name):
    return os.path.join(record_dir, name + RECORD_SUFFIX)


def record_text(owner, packages):
    lines = "".join(f"{name} {version}\n" for name, version in sorted(packages.items()))
    return f"# {apt.header(owner)}\n# The packages this set locked, at their versions.\n{lines}"


def parse_record(text):
    """{package: version} of a record."""
    found = {}
    for line in (text or "").splitlines():
        words = line.split()
        if len(words) == 2 and not line.startswith("#"):
            found[words[0]] = words[1]
    return found


def owners(record_dir, own):
    """{package: set name} of every other set's record under record_dir."""
    found = {}
    for path in sorted(glob.glob(os.path.join(files.host_path(record_dir), "*" + RECORD_SUFFIX))):
        name = os.path.basename(path)[:-len(RECORD_SUFFIX)]
        if name != own:
            with open(path, encoding="utf-8") as handle:
                found.update({package: name for package in parse_record(handle.read())})
    return found


def same_version(have, want):
    """Whether two versions (None: not installed) are the same, an epoch 0 written or not."""
    if have is None or want is None:
        return have is want
    return strip_epoch(have) == strip_epoch(want)


def held_by(names, owners_map):
    """'a (held by the set x), b (held by hand)' for a message."""
    return ", ".join(f"{name} (held by the set {owners_map[name]})" if name in owners_map
                     else f"{name} (held, by no dlnode.gpu set: apt-mark unhold it or add it to this set)"
                     for name in names)


def refusal(errors, madison, holds, owners_map, members):
    """Why apt cannot install the set, in words that name each package, the version asked and what the sources have."""
    parts = []
    for name, version in errors["versions"]:
        have = ", ".join(f"{found} ({where})" for found, where in madison.get(name, []))
        parts.append(f"{name} {version} is not in the configured sources; they have "
                     + (have or "no version of it"))
    for name in errors["packages"]:
        parts.append(f"{name} is in none of the configured sources (is its source missing, or not updated since "
                     "it was added?)")
    if errors["unmet"]:
        held = [name for name in dict.fromkeys(apt.unmet_names(errors["unmet"])) if name in holds and name not in members]
        parts.append("apt cannot install the set together: " + "; ".join(errors["unmet"])
                     + (f"; held outside this set: {held_by(held, owners_map)}" if held else ""))
    parts += [line for line in errors["other"] if "held broken packages" not in line or not errors["unmet"]]
    return "; ".join(parts)
