# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""Which NVIDIA kernel modules (open or proprietary) and which driver branches can drive the GPUs.

Decided from the PCI device ids that sysfs shows before any driver is installed, so the driver
role can choose before it installs anything.

Sources:
- Architecture by PCI device id range: NVIDIA's id allocation per GPU family. Every id of the
  "Compatible GPUs" table of NVIDIA/open-gpu-kernel-modules README.md (release 595.45.04, kept in
  tests/fixtures/nvidia/open-gpu-ids.txt) falls in a Turing-or-later range (a unit test checks);
  pci.ids for the older families. An id beyond the ranges is taken as a new family: open modules.
- Rules: open modules are NVIDIA's default since 560; Blackwell and Grace Hopper (GH200) need them;
  Maxwell, Pascal and Volta need the proprietary modules, and 580 is the last branch that supports
  them; Kepler's last branch was 470.
"""
from __future__ import annotations

from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError

# (first id, last id, architecture), by PCI device id.
ARCHITECTURE_RANGES = (
    (0x0FC0, 0x12FF, "kepler"),
    (0x1340, 0x13FF, "maxwell"),
    (0x1400, 0x14FF, "maxwell"),
    (0x15F0, 0x15FF, "pascal"),
    (0x1600, 0x17FF, "maxwell"),
    (0x1B00, 0x1D7F, "pascal"),
    (0x1D80, 0x1DFF, "volta"),
    (0x1E00, 0x1FFF, "turing"),
    (0x2000, 0x20FF, "ampere"),
    (0x2100, 0x21FF, "turing"),
    (0x2200, 0x22FF, "ampere"),
    (0x2300, 0x23FF, "hopper"),
    (0x2400, 0x25FF, "ampere"),
    (0x2600, 0x28FF, "ada"),
    (0x2900, 0x31FF, "blackwell"),
)
# Families the open modules cannot drive, and the last branch that drives them at all.
PROPRIETARY_ONLY = {"kepler": 470, "maxwell": 580, "pascal": 580, "volta": 580}
# Grace Hopper: the open modules only.
GRACE_HOPPER_IDS = frozenset((0x2342, 0x2348))


class DriverChoiceError(DlnodeError):
    """The requested modules or branch cannot drive the GPUs found."""


def device_number(device_id):
    """A PCI device id as sysfs prints it ("0x2330") or as a number."""
    return int(device_id, 16) if isinstance(device_id, str) else int(device_id)


def architecture(device_id):
    """The GPU family of a PCI device id, or None when it is not known here."""
    device_id = device_number(device_id)
    for first, last, family in ARCHITECTURE_RANGES:
        if first <= device_id <= last:
            return family
    return None


def needs_open(device_id):
    return architecture(device_id) == "blackwell" or device_number(device_id) in GRACE_HOPPER_IDS


def describe(gpu):
    family = architecture(gpu["device_id"]) or "a family newer than this table"
    return f"the GPU at {gpu['pci_bus_id']} (device {device_number(gpu['device_id']):04x}, {family})"


def choose_modules(gpus, requested, branch):
    """(open or proprietary, reason) for the GPUs; DriverChoiceError naming what cannot work.

    gpus: [{pci_bus_id, device_id}]; requested: auto, open or proprietary; branch: an int.
    """
    old = [gpu for gpu in gpus if architecture(gpu["device_id"]) in PROPRIETARY_ONLY]
    too_old = [gpu for gpu in old if branch > PROPRIETARY_ONLY[architecture(gpu["device_id"])]]
    if too_old:
        gpu = too_old[0]
        last = PROPRIETARY_ONLY[architecture(gpu["device_id"])]
        raise DriverChoiceError(f"nvidia_driver_branch: {branch} does not support {describe(gpu)}; "
                                f"the last branch for it is {last}: set nvidia_driver_branch: {last}")
    must_open = [gpu for gpu in gpus if needs_open(gpu["device_id"])]
    if old and must_open:
        raise DriverChoiceError(f"nvidia_driver_modules: no kernel module flavour drives both {describe(old[0])} "
                                f"(proprietary only) and {describe(must_open[0])} (open only) on one node")
    if requested == "open" and old:
        raise DriverChoiceError(f"nvidia_driver_modules: open modules need Turing or newer; {describe(old[0])} "
                                "needs the proprietary modules: set nvidia_driver_modules: proprietary (or auto)")
    if requested == "proprietary" and must_open:
        raise DriverChoiceError(f"nvidia_driver_modules: {describe(must_open[0])} works only with the open modules: "
                                "set nvidia_driver_modules: open (or auto)")
    if requested != "auto":
        return requested, f"nvidia_driver_modules: {requested}"
    if old:
        return "proprietary", f"{describe(old[0])} needs the proprietary modules"
    if not gpus:
        return "open", "no NVIDIA GPU found: NVIDIA's default (open modules since 560)"
    return "open", "every GPU is Turing or newer: NVIDIA's default (open modules since 560)"


# -- package names: the role's table (roles/nvidia_driver/vars/main.yml) --------------------------

class TableError(DlnodeError):
    """The table has no packages for what was asked."""


def _in_range(entry, branch):
    return entry.get("from", 0) <= branch <= entry.get("until", branch)


def _ranges(branches):
    shown = []
    for entry in branches:
        low, high = entry.get("from"), entry.get("until")
        shown.append(f"{low}" if low is not None and low == high else f"{low or ''}-{high or ''}" if low or high else "any")
    return ", ".join(shown)


def branch_entry(table, source, distro, branch):
    """(distribution entry, branch entry) of the table, or TableError naming the variable to change."""
    distros = table.get(source, {})
    if distro not in distros:
        raise TableError(f"nvidia_driver_source: {source} has no NVIDIA driver packages for {distro} in this role's table "
                         f"(it has {', '.join(sorted(distros)) or 'none'})")
    entry = distros[distro]
    for candidate in entry["branches"]:
        if _in_range(candidate, branch):
            return entry, candidate
    raise TableError(f"nvidia_driver_branch: {branch} is not a branch {source} has for {distro} "
                     f"(branches: {_ranges(entry['branches'])})")


def _fill(text, request):
    """A table name with <branch> and <kernel> replaced."""
    return text.replace("<branch>", str(request["branch"])).replace("<kernel>", request["kernel"])


def version_package(table, request):
    """(manager, the package whose version is the driver's): the first of the branch's `common` list."""
    entry, found = branch_entry(table, request["source"], request["distro"], request["branch"])
    first = found["common"][0]
    return entry["manager"], _fill(first if isinstance(first, str) else first["name"], request)


def package_names(table, request):
    """The packages of a request, each with its version pattern, and what goes with them.

    request: {source, distro, branch, modules (open|proprietary), kernel_modules (dkms|precompiled),
    fabric, nvlink5 (bools), kernel (release), version (a package_set pattern: 580.* or 580.126.16-*)}.
    Returns {manager, pinning: {name: pattern}, packages: {name: pattern}, version_package, stream, services,
    enabled_on_install (the units the packages enable themselves)}:
    version_package is the first package of the branch's `common` list, the one at the driver's version.
    """
    entry, found = branch_entry(table, request["source"], request["distro"], request["branch"])
    modules = request["modules"]
    if request["kernel_modules"] == "precompiled":
        if "precompiled" not in found:
            raise TableError(f"nvidia_driver_kernel_modules: precompiled modules come from Ubuntu's own packages only "
                             f"(nvidia_driver_source: distribution on Ubuntu), not from {request['source']} on "
                             f"{request['distro']}: set nvidia_driver_kernel_modules: dkms")
        flavour = found["precompiled"].get(modules)
    else:
        flavour = found.get(modules)
    if not flavour:
        raise TableError(f"nvidia_driver_modules: {request['source']} has no {modules} kernel modules for "
                         f"{request['distro']} branch {request['branch']}")
    groups = [found.get("common", []), flavour]
    services = list(table["services"]["common"])
    if request["fabric"]:
        groups.append(found.get("fabric", []))
        services += table["services"]["fabric"]
    if request["nvlink5"]:
        if "nvlink5" not in found:
            raise TableError(f"nvidia_driver_nvlink5: {request['source']} has no NVLink5 packages for "
                             f"{request['distro']} branch {request['branch']} (NVLink5 systems need branch 580 or newer "
                             "from NVIDIA's repository)")
        groups.append(found["nvlink5"])
        services += table["services"]["nvlink5"]

    def expand(items, pattern):
        packages = {}
        for item in items:
            name, version = (item["name"], item["version"]) if isinstance(item, dict) else (item, pattern)
            packages[_fill(name, request)] = version
        return packages

    packages = {}
    for group in groups:
        packages.update(expand(group, request["version"]))
    stream = found.get("stream", {}).get(modules)
    return {
        "manager": entry["manager"],
        "pinning": expand(found.get("pinning", []), f"{request['branch']}-*"),
        "packages": packages,
        "version_package": version_package(table, request)[1],
        "stream": _fill(stream, request) if stream else None,
        "services": services,
        "enabled_on_install": [unit for unit in found.get("enabled_on_install", []) if unit in services],
    }


def version_pattern(branch, version, installed):
    """The package_set pattern for the driver: the exact version asked, else the installed one when it is
    of the branch (a re-run moves nothing), else the newest of the branch."""
    if version:
        return f"{version}-*"
    if installed and upstream(installed).split(".")[0] == str(branch):
        return f"{upstream(installed)}-*"
    return f"{branch}.*"


def upstream(version):
    """580.126.16 of 3:580.126.16-1ubuntu1."""
    return version.split(":", 1)[-1].rsplit("-", 1)[0]


def reboot_reasons(loaded, installed, nouveau_loaded):
    """Why the node must reboot (or reload the modules) for the installed driver to be the one running."""
    reasons = []
    if loaded and installed and loaded != upstream(installed):
        reasons.append(f"nvidia_driver: the loaded kernel module is {loaded}, the installed driver {upstream(installed)}: "
                       "reboot (or reload the modules) to run it; until then NVML reports 'Driver/library version mismatch'")
    if nouveau_loaded:
        reasons.append("nvidia_driver: nouveau is loaded and now blacklisted: reboot to load the NVIDIA driver in its place")
    return reasons
