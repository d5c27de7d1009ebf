# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""The node's package database, read with dpkg-query or rpm alone: no Python bindings needed, so
it reads the same on a bare server (no python3-apt) in check mode as in a real run.
"""
from __future__ import annotations

from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError

# db:Status-Abbrev is want, status, error: "ii " installed, "hi " installed and held,
# "rc " removed with its configuration left, "hn " held but not installed.
DPKG_FORMAT = "${Package}\t${db:Status-Abbrev}\t${Version}\n"
RPM_FORMAT = "%{NAME}\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\n"
TOOLS = {"dpkg": "dpkg-query", "rpm": "rpm"}


def detect(commands, names=("dpkg", "rpm")):
    """names[0] (dpkg's family) where apt-get is installed, else names[1] (rpm's) where rpm is; refused where neither is."""
    if commands.path("apt-get"):
        return names[0]
    if commands.path("rpm"):
        return names[1]
    raise DlnodeError(f"manager=auto found neither apt-get nor rpm on this node: set manager to {names[0]} or {names[1]}")


def parse_dpkg_status(stdout):
    """{package: {version (None: not installed), held}} of every line dpkg-query printed."""
    found = {}
    for line in stdout.splitlines():
        fields = line.split("\t")
        if len(fields) == 3:
            installed = fields[1][1:2] == "i"
            found[fields[0]] = {"version": fields[2] if installed else None, "held": fields[1][:1] == "h"}
    return found


def parse_dpkg(stdout):
    """{package: version} of the packages dpkg-query lists as installed."""
    return {name: state["version"] for name, state in parse_dpkg_status(stdout).items() if state["version"]}


def parse_rpm(stdout):
    """{package: version} of the packages rpm lists (epoch 0 left out); missing ones are lines without a tab."""
    installed = {}
    for line in stdout.splitlines():
        fields = line.split("\t")
        if len(fields) == 2:
            installed[fields[0]] = strip_epoch(fields[1])
    return installed


def strip_epoch(version):
    """A version without the epoch 0 that dpkg and rpm leave out when they print one."""
    return version[2:] if version.startswith("0:") else version


def query(commands, manager, names):
    """stdout of dpkg-query or rpm for these package names; a name it does not know is no error."""
    names = sorted(set(names))
    if manager == "dpkg":
        args = ["-W", "-f", DPKG_FORMAT, "--", *names]
        worst = 1  # 1: some names are unknown to dpkg
    else:
        args = ["-q", "--qf", RPM_FORMAT, "--", *names]
        worst = len(names)  # rpm exits with the number of packages not installed
    tool = TOOLS[manager]
    rc, stdout, stderr = commands.result(tool, *args)
    if not 0 <= rc <= worst:
        raise DlnodeError(f"could not read the {manager} package database: {tool} exited {rc}: {stderr.strip()}",
                          rc=rc, stderr=stderr)
    return stdout


OWNER_QUERY = {"dpkg": ("dpkg-query", "-S"), "rpm": ("rpm", "-qf", "--qf", "%{NAME}\n")}


def owner(commands, manager, path):
    """The package that installed a file (dpkg or rpm), or None when none did."""
    rc, out, _err = commands.result(*OWNER_QUERY[manager], path)
    name = out.split(":")[0].split(",")[0].strip() if manager == "dpkg" else out.strip()
    return name if rc == 0 and name else None


def read_installed(commands, manager, names):
    """{package: installed version} of the named packages that are installed."""
    if not names:
        return {}
    stdout = query(commands, manager, names)
    return parse_dpkg(stdout) if manager == "dpkg" else parse_rpm(stdout)


def read_status(commands, names):
    """dpkg only: {package: {version, held}} of every named package, {version: None, held: False} when unknown."""
    status = parse_dpkg_status(query(commands, "dpkg", names)) if names else {}
    return {name: status.get(name, {"version": None, "held": False}) for name in names}
