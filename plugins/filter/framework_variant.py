# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
from __future__ import annotations

DOCUMENTATION = r"""
name: framework_variant
short_description: The wheel variant of PyTorch, JAX or TensorFlow a node can run, matched to its driver and GPUs
version_added: 0.1.0
description:
  - "Picks the variant asked for, or with V(auto) the newest stable CUDA build that the driver and every GPU run
    (the CPU build on a node with no GPU), from the collection's table of what each release ships
    (C(plugins/module_utils/frameworks/matrix.py), its sources in its docstring)."
  - "Refuses a combination the node cannot run, naming why: the minimum driver (CUDA 13.x builds need 580 or
    newer, 12.x builds 525.60.13 through minor version compatibility) or the GPU architecture the build has no
    code for (PyTorch's cu130 drops Maxwell, Pascal and Volta)."
  - Runs on the controller from facts already gathered; it touches no node.
options:
  _input:
    description: "The request: C(framework) (V(torch), V(jax), V(tensorflow)), C(version), C(variant) (V(auto) when omitted)."
    type: dict
    required: true
  gpu:
    description: "The node's C(dlnode_gpu) fact from M(dlnode.gpu.gpu_facts) (C(present), C(driver_version),
      C(cuda_driver_version), C(gpus[].compute_capability)); empty for a node with no GPU."
    type: dict
    default: {}
  driver:
    description: The driver about to be installed (C(dlnode_nvidia_driver_version)), used when the fact has none.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: PyTorch 2.11 for this node
  ansible.builtin.debug:
    msg: "{{ {'framework': 'torch', 'version': '2.11.0'} | dlnode.gpu.framework_variant(ansible_facts['dlnode_gpu']) }}"
"""

RETURN = r"""
_value:
  description: "The variant and what it needs: C(variant), C(cuda), C(minimum_driver), C(full_driver) (every feature),
    C(limited) (runs below C(full_driver)), C(index_url) (PyTorch), C(extra) (JAX, TensorFlow), C(requirements)
    (the pins that install it), C(reason)."
  type: dict
  sample: {"framework": "torch", "release": "2.11", "variant": "cu130", "cuda": "13.0", "minimum_driver": "580.65.06",
           "full_driver": "580.65.06", "limited": false, "experimental": false, "extra": "",
           "index_url": "https://download.pytorch.org/whl/cu130",
           "requirements": ["torch==2.11.0+cu130"], "reason": "the newest CUDA build the driver and every GPU run"}
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError
from ansible_collections.dlnode.gpu.plugins.module_utils.frameworks import matrix


def framework_variant(request, gpu=None, driver=""):
    if not isinstance(request, dict) or not request.get("framework") or not request.get("version"):
        raise AnsibleFilterError(f"frameworks_environments: a framework needs framework and version, got {request!r}")
    gpu = gpu or {}
    capabilities = [item.get("compute_capability") for item in gpu.get("gpus") or [] if item.get("compute_capability")]
    try:
        return matrix.choose(str(request["framework"]), str(request["version"]), str(request.get("variant") or "auto"),
                             driver=str(gpu.get("driver_version") or driver or ""),
                             cuda_driver=str(gpu.get("cuda_driver_version") or ""),
                             capabilities=capabilities, gpu=bool(gpu.get("present") or capabilities))
    except DlnodeError as err:
        raise AnsibleFilterError(str(err)) from err


class FilterModule:
    """dlnode.gpu.framework_variant"""

    def filters(self):
        return {"framework_variant": framework_variant}
