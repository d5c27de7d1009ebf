#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
from __future__ import annotations

DOCUMENTATION = r"""
module: cuda_toolkit_plan
short_description: Decide the CUDA toolkits, NCCL and forward compatibility a node gets, checked against its driver
version_added: 0.1.0
description:
  - The first step of the C(cuda_toolkit) role; reads only. Checks every toolkit of O(versions) against the driver
    before anything is installed, and returns the packages to lock (the toolkits, NVIDIA's forward compatibility
    packages where asked, NCCL built for the default toolkit), the default toolkit and the environment for it.
  - "The driver: O(driver_version) when given (the role passes the version the C(nvidia_driver) role installs or is
    about to install), else the installed package that owns C(nvidia-smi), else the loaded kernel module. With no
    driver at all (a build node) nothing is checked, and a warning says so."
  - "The rule (O(rule)): V(exact) needs the driver each release was built with (CUDA Toolkit Release Notes, table
    CUDA Toolkit and Corresponding Driver Versions; 13.0 GA 580.65.06, 12.8 GA 570.26); V(minor) applies minor version
    compatibility (any 13.x on 580.65.06 or newer, any 12.x on 525.60.13 or newer, some features limited)."
  - A toolkit the driver cannot run is refused naming the minimum driver, unless O(forward_compat) asks for NVIDIA's
    C(cuda-compat-<major>-<minor>), which datacenter GPUs only can use (a GeForce GPU is refused).
options:
  versions:
    description: The toolkits, V(13.0) (the newest update; the installed one once installed) or V(13.0.2) (that update).
    type: list
    elements: str
    required: true
  default:
    description: The toolkit C(/usr/local/cuda) points at; empty is the newest of O(versions).
    type: str
    default: ""
  source:
    description: V(nvidia) (NVIDIA's repository or a mirror of it) or V(distribution) (the distribution's C(nvidia-cuda-toolkit), one version).
    type: str
    choices: [nvidia, distribution]
    default: nvidia
  rule:
    description: V(exact) (the release's own driver) or V(minor) (minor version compatibility).
    type: str
    choices: [exact, minor]
    default: exact
  driver_version:
    description:
      - The driver to check against (V(580.126.16)); empty reads it from the node.
      - "A branch pattern (V(580.*), what the driver role predicts in check mode before its source exists) is checked
        as the newest driver of that branch, with a warning when a toolkit needs a version of that very branch."

    type: str
    default: ""
  forward_compat:
    description: Install C(cuda-compat-<major>-<minor>) for a toolkit newer than the driver runs, instead of refusing it.
    type: bool
    default: false
  gpu_names:
    description: The GPUs' names (M(dlnode.gpu.gpu_facts)); a GeForce GPU cannot use forward compatibility.
    type: list
    elements: str
    default: []
  nccl:
    description: Install NCCL (C(libnccl2), C(libnccl-dev)) built for the default toolkit (O(source=nvidia) only).
    type: bool
    default: true
  nccl_version:
    description: NCCL's version (V(2.28.9)); empty is the installed one built for the default toolkit, else the newest.
    type: str
    default: ""
author: "dlnode.gpu developers (@dlnode)"
attributes:
  check_mode:
    support: full
    description: Reads only, the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing.
"""

EXAMPLES = r"""
- name: Plan CUDA 12.8 and 13.0, 13.0 the default
  dlnode.gpu.cuda_toolkit_plan:
    versions: ["12.8", "13.0"]
    driver_version: 580.126.16
  register: plan
"""

RETURN = r"""
driver:
  description: The driver checked against and where its version was read, or null values when there is none.
  returned: always
  type: dict
  sample: {"version": "580.126.16", "from": "given"}
rule:
  description: The rule applied.
  returned: always
  type: str
  sample: exact
toolkits:
  description: Each toolkit, its directory, the minimum driver, why, whether the driver runs it, whether cuda-compat is used.
  returned: always
  type: list
  elements: dict
  sample: [{"version": "13.0", "path": "/usr/local/cuda-13.0", "minimum_driver": "580.65.06",
            "reason": "CUDA 13.0 GA needs 580.65.06 or newer (CUDA Toolkit Release Notes)", "runs": true, "compat": false}]
default:
  description: The default toolkit's version and directory.
  returned: always
  type: dict
  sample: {"version": "13.0", "path": "/usr/local/cuda-13.0"}
packages:
  description: The packages to lock (M(dlnode.gpu.package_set)), name to version pattern.
  returned: always
  type: dict
  sample: {"cuda-toolkit-13-0": "13.0.*", "libnccl2": "*-*+cuda13.0", "libnccl-dev": "*-*+cuda13.0"}
nccl:
  description: Whether NCCL is installed, and why.
  returned: always
  type: dict
  sample: {"wanted": true, "reason": "built for CUDA 13.0, the default toolkit"}
environment:
  description: What the default toolkit needs in users' and units' environment.
  returned: always
  type: dict
  sample: {"cuda_home": "/usr/local/cuda", "path": ["/usr/local/cuda/bin"], "library_path": ["/usr/local/cuda/lib64"]}
"""

import os
import re
from functools import cmp_to_key

from ansible_collections.dlnode.gpu.plugins.module_utils.common.commands import Commands
from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError
from ansible_collections.dlnode.gpu.plugins.module_utils.common.module import run_module
from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import cuda, driver, pci
from ansible_collections.dlnode.gpu.plugins.module_utils.packages import database, versions

ARGUMENT_SPEC = dict(
    versions=dict(type="list", elements="str", required=True),
    default=dict(type="str", default=""),
    source=dict(type="str", choices=["nvidia", "distribution"], default="nvidia"),
    rule=dict(type="str", choices=["exact", "minor"], default="exact"),
    driver_version=dict(type="str", default=""),
    forward_compat=dict(type="bool", default=False),
    gpu_names=dict(type="list", elements="str", default=[]),
    nccl=dict(type="bool", default=True),
    nccl_version=dict(type="str", default=""),
)
TOOL_PACKAGES = {"dpkg-query": "dpkg", "rpm": "rpm"}
# Debian's and Ubuntu's toolkit: nvcc in /usr/bin, the toolkit's tree under /usr/lib/nvidia-cuda-toolkit.
DISTRIBUTION_PACKAGE = "nvidia-cuda-toolkit"
DISTRIBUTION_HOME = "/usr/lib/nvidia-cuda-toolkit"


def read_driver(commands):
    """{version, from} of the driver: the package owning nvidia-smi, or the loaded module; None values without one."""
    smi = commands.path("nvidia-smi")
    manager = "dpkg" if commands.path("dpkg-query") else "rpm" if commands.path("rpm") else None
    if smi and manager:
        owner = database.owner(commands, manager, os.path.realpath(smi))
        installed = database.read_installed(commands, manager, [owner]).get(owner) if owner else None
        if installed:
            return {"version": driver.upstream(installed), "from": f"the installed package {owner}"}
    loaded = pci.driver_version(files.ROOT)
    if loaded:
        return {"version": loaded, "from": "the loaded kernel module"}
    return {"version": None, "from": None}


def given_driver(module, given):
    """The driver version to check against, from O(driver_version): exact, or a branch pattern taken at its newest."""
    exact = re.match(r"^[0-9]+\.[0-9]+(\.[0-9]+)?$", given)
    branch = re.match(r"^([0-9]+)\.\*$", given)
    if not exact and not branch:
        raise DlnodeError(f"cuda_toolkit_driver_version: {given!r} is not a driver version such as 580.126.16")
    if exact:
        return {"version": given, "from": "given"}
    module.warn(f"the driver's exact version is not known yet (branch {branch.group(1)}, {given}): the toolkits are "
                f"checked against the newest driver of that branch")
    return {"version": given, "from": "given (the branch, checked as its newest driver)",
            "checked_as": f"{branch.group(1)}.9999.9999"}


def choose_default(toolkits, default):
    """The default toolkit: `default`, which must be one of them, or the newest."""
    releases = {f"{major}.{minor}": version for version, (major, minor, _update) in toolkits.items()}
    if default:
        major, minor, _update = cuda.parse(default, "cuda_toolkit_default")
        if f"{major}.{minor}" not in releases:
            raise DlnodeError(f"cuda_toolkit_default: {default} is not one of cuda_toolkit_versions ({', '.join(toolkits)})")
        return f"{major}.{minor}"
    return max(releases, key=cmp_to_key(versions.compare))


def run(module, result):
    params = module.params
    if not params["versions"]:
        raise DlnodeError("cuda_toolkit_versions: empty; list at least one toolkit, such as 13.0")
    toolkits = {str(version): cuda.parse(version) for version in params["versions"]}
    if len({f"{major}.{minor}" for major, minor, _update in toolkits.values()}) != len(toolkits):
        raise DlnodeError(f"cuda_toolkit_versions: {', '.join(toolkits)} names a release twice; list each once")
    default = choose_default(toolkits, params["default"])
    if params["source"] == "distribution" and len(toolkits) > 1:
        raise DlnodeError("cuda_toolkit_versions: the distribution has one toolkit (nvidia-cuda-toolkit); list one "
                          "version (its release, such as 11.8 on Debian 12), or use cuda_toolkit_source: nvidia for several")
    commands = Commands(module, TOOL_PACKAGES)
    found = given_driver(module, params["driver_version"]) if params["driver_version"] else read_driver(commands)
    checked = cuda.check_driver(list(toolkits), found.pop("checked_as", found["version"]), params["rule"],
                                params["forward_compat"], shown=found["version"])
    geforce = [name for name in params["gpu_names"] if "geforce" in name.lower()]
    compat = [toolkit["version"] for toolkit in checked if toolkit["compat"]]
    if compat and geforce:
        raise DlnodeError(f"cuda_toolkit_forward_compat: NVIDIA's forward compatibility works on datacenter GPUs only, and "
                          f"this node has {', '.join(sorted(set(geforce)))}; upgrade the driver for CUDA {', '.join(compat)}")
    if found["version"] is None:
        module.warn("no NVIDIA driver is installed or loaded: the CUDA toolkits are installed without a driver check")
    if compat and params["source"] == "distribution":
        raise DlnodeError("cuda_toolkit_forward_compat: cuda-compat comes from NVIDIA's repository; "
                          "use cuda_toolkit_source: nvidia, or upgrade the driver")

    packages = {}
    if params["source"] == "nvidia":
        for version in toolkits:
            packages.update(cuda.toolkit_packages(version))
        for version in compat:
            packages.update(cuda.compat_package(version))
        home = "/usr/local/cuda"
        environment = {"cuda_home": home, "path": [f"{home}/bin"],
                       "library_path": [f"{home}/lib64"] + ([f"/usr/local/cuda-{default}/compat"] if default in
                                                            [".".join(cuda.parse(v)[:2]) for v in compat] else [])}
        paths = {version: f"/usr/local/cuda-{major}.{minor}" for version, (major, minor, _update) in toolkits.items()}
    else:
        major, minor, _update = next(iter(toolkits.values()))
        packages[DISTRIBUTION_PACKAGE] = f"{major}.{minor}.*"
        environment = {"cuda_home": DISTRIBUTION_HOME, "path": [], "library_path": []}
        paths = {version: DISTRIBUTION_HOME for version in toolkits}

    nccl = {"wanted": False, "reason": "cuda_toolkit_nccl is false"}
    if params["nccl"] and params["source"] == "distribution":
        nccl = {"wanted": False, "reason": "NCCL comes from NVIDIA's repository (cuda_toolkit_source: nvidia)"}
    elif params["nccl"]:
        wanted = cuda.nccl_packages(params["nccl_version"], default)
        packages.update(wanted)
        nccl = {"wanted": True, "reason": f"built for CUDA {default}, the default toolkit ({wanted['libnccl2']})"}

    for toolkit in checked:
        toolkit["path"] = paths[toolkit["version"]]
    result.update(driver=found, rule=params["rule"], toolkits=checked, packages=packages, nccl=nccl,
                  default={"version": default, "path": f"/usr/local/cuda-{default}" if params["source"] == "nvidia"
                           else DISTRIBUTION_HOME},
                  environment=environment)


def main():
    run_module(ARGUMENT_SPEC, run)


if __name__ == "__main__":
    main()
