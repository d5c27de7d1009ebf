# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""dnf: the repository file, the key file and the commands of a lock, planned from rpm's database.

Planning only is tested (unit tests); no EL archive is reachable from this project's machines, so
the commands have not been run against a real EL node.
"""
from __future__ import annotations

import re

REPOS_DIR = "/etc/yum.repos.d"
KEY_DIR = "/etc/pki/rpm-gpg"
VERSIONLOCK_PLUGIN = "python3-dnf-plugin-versionlock"
PACKAGE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")
VERSION_RE = re.compile(r"^(?:[0-9]+:)?[A-Za-z0-9._+~^]+-[A-Za-z0-9._+~^]+$")
# "nvidia-driver-3:535.154.05-1.el9.*" as dnf versionlock list prints an entry.
LOCK_RE = re.compile(r"^(?:!)?(?P<name>.+)-(?:(?P<epoch>[0-9]+):)?(?P<version>[^-]+)-(?P<release>[^-]+?)(?:\.\*)?$")


def repo_text(owner, name, url, key_file, gpgcheck, repo_gpgcheck, module_hotfixes, priority):
    lines = [f"# Managed by dlnode.gpu ({owner}): edits are overwritten.", f"[{name}]", f"name={name}",
             f"baseurl={url}", "enabled=1", f"gpgcheck={int(gpgcheck)}", f"repo_gpgcheck={int(repo_gpgcheck)}",
             f"gpgkey=file://{key_file}"]
    if module_hotfixes:
        lines.append("module_hotfixes=1")
    if priority is not None:
        lines.append(f"priority={priority}")
    return "\n".join(lines) + "\n"


def makecache_args(name):
    """Fetch this repository's metadata only; with repo_gpgcheck its signature is checked here."""
    return ["makecache", "-q", "--repo", name]


def spec(name, version):
    """name-[epoch:]version-release, the form dnf install and versionlock take."""
    return f"{name}-{version}"


def install_args(packages, weak_deps):
    """One transaction: dnf install of an exact version also upgrades or downgrades an installed package."""
    return ["install", "-y", "-q", f"--setopt=install_weak_deps={weak_deps}",
            *[spec(name, version) for name, version in sorted(packages.items())]]


def remove_args(names):
    return ["remove", "-y", "-q", *sorted(names)]


def versionlock_args(action, items):
    return ["versionlock", action, *items]


def parse_versionlock(stdout):
    """{package: version} of the entries dnf versionlock list prints (exclusions, '!', left out)."""
    locked = {}
    for line in stdout.splitlines():
        line = line.strip()
        if not line or line.startswith("!") or " " in line:
            continue
        found = LOCK_RE.match(line)
        if found:
            epoch = found.group("epoch")
            version = f"{found.group('version')}-{found.group('release')}"
            locked[found.group("name")] = f"{epoch}:{version}" if epoch and epoch != "0" else version
    return locked


def repoquery_args(names):
    """Every version the enabled repositories have of these packages, one line each."""
    return ["repoquery", "-q", "--queryformat", "%{name} %{evr}\\n", *sorted(names)]


def parse_repoquery(stdout):
    """{package: [versions]} from `dnf repoquery --queryformat '%{name} %{evr}'` lines."""
    found = {}
    for line in stdout.splitlines():
        fields = line.split()
        if len(fields) == 2:
            found.setdefault(fields[0], []).append(fields[1])
    return found
