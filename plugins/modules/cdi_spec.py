#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
from __future__ import annotations

DOCUMENTATION = r"""
module: cdi_spec
short_description: Keep the NVIDIA CDI spec in step with the driver, the GPUs and their MIG devices
version_added: 0.1.0
description:
  - "Compares the CDI spec O(path) with the node: the driver's version (the spec mounts its libraries by
    their versioned names) and the GPUs and MIG devices C(nvidia-smi -L) lists now, by UUID or by index as the
    spec names them. When it differs (or is missing) the spec is written again, by the toolkit's own
    C(nvidia-cdi-refresh.service) (toolkit 1.18 and newer, O(refresh=service)) or C(nvidia-ctk cdi generate)
    (O(refresh=generate)), and read back: a spec that still differs fails the task, saying how."
  - "The toolkit's path unit regenerates the spec when the driver's files change, not after a MIG change;
    this module catches both, whoever made the change."
  - "In check mode it says why the spec would be written and writes nothing."
options:
  path:
    description: The spec.
    type: path
    default: /var/run/cdi/nvidia.yaml
  driver_version:
    description: The driver's version the spec must name (V(580.159.04)); omitted, not compared.
    type: str
  refresh:
    description: How the spec is written.
    type: str
    choices: [service, generate]
    default: generate
  service:
    description: The toolkit's unit that writes the spec (O(refresh=service)).
    type: str
    default: nvidia-cdi-refresh.service
author: "dlnode.gpu developers (@dlnode)"
attributes:
  check_mode:
    support: full
    description: Returns whether and why the spec would be written.
  diff_mode:
    support: none
    description: The spec is NVIDIA's tool's output, not ours; RV(reasons) says what differs.
"""

EXAMPLES = r"""
- name: The CDI spec names this driver and the GPUs' MIG devices
  dlnode.gpu.cdi_spec:
    driver_version: "580.159.04"
    refresh: service
"""

RETURN = r"""
reasons:
  description: Why the spec was (or would be) written; empty when it describes the node.
  returned: always
  type: list
  elements: str
  sample: ["it lacks MIG-c6d4f1ef-42e4-5de3-91c7-45d71c87eb3f"]
devices:
  description: The GPUs and MIG devices C(nvidia-smi -L) lists, by index and UUID.
  returned: always
  type: list
  elements: dict
  sample: [{"index": "0", "uuid": "GPU-0ad4414f-aa1d-07b8-b043-5bc8e52d2e4b"}]
"""

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.module_utils.common.commands import Commands
from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError
from ansible_collections.dlnode.gpu.plugins.module_utils.common.module import run_module
from ansible_collections.dlnode.gpu.plugins.module_utils.containers import cdi

ARGUMENT_SPEC = dict(
    path=dict(type="path", default="/var/run/cdi/nvidia.yaml"),
    driver_version=dict(type="str"),
    refresh=dict(type="str", choices=["service", "generate"], default="generate"),
    service=dict(type="str", default="nvidia-cdi-refresh.service"),
)


def plan(commands, params):
    devices = cdi.listed(commands.run("nvidia-smi", "-L"))
    return devices, cdi.stale(files.read(params["path"]), devices, params["driver_version"])


def run(module, result):
    params = module.params
    commands = Commands(module, {"nvidia-smi": "the NVIDIA driver's utilities", "nvidia-ctk": "nvidia-container-toolkit-base",
                                 "systemctl": "systemd"})
    devices, reasons = plan(commands, params)
    result.update(reasons=reasons, devices=[{"index": index, "uuid": uuid} for index, uuid in devices])
    if not reasons:
        return
    result["changed"] = True
    if module.check_mode:
        return
    if params["refresh"] == "service":
        # A oneshot unit: a restart runs it again even when it stayed active.
        commands.run("systemctl", "restart", params["service"])
    else:
        commands.run("nvidia-ctk", "cdi", "generate", f"--output={params['path']}")
    _devices, left = plan(commands, params)
    if left:
        how = params["service"] if params["refresh"] == "service" else "nvidia-ctk cdi generate"
        raise DlnodeError(f"{params['path']}: written by {how} but still not the node's: {'; '.join(left)}",
                          changed=True)


def main():
    run_module(ARGUMENT_SPEC, run, result=dict(reasons=[], devices=[]))


if __name__ == "__main__":
    main()
