# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
from __future__ import annotations

DOCUMENTATION = r"""
name: cudnn_packages
short_description: NVIDIA's cuDNN 9 packages for one CUDA major, with the version pattern they lock at
version_added: 0.1.0
description:
  - "Returns the runtime, dev and headers packages of cuDNN 9 built for a CUDA major (C(libcudnn9-cuda-13),
    C(libcudnn9-dev-cuda-13), C(libcudnn9-headers-cuda-13)) mapped to a version pattern for
    M(dlnode.gpu.package_set): V(9.14.0.64-*) for an exact version, V(9.14.*) for a release, V(9.*) for none."
  - A version that is not a cuDNN 9 version fails, naming C(cudnn_version).
options:
  _input:
    description: The CUDA major (V(12), V(13)).
    type: str
    required: true
  version:
    description: cuDNN's version (V(9.14.0.64), V(9.14)) or empty.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: The cuDNN packages of the default toolkit
  ansible.builtin.debug:
    msg: "{{ '13' | dlnode.gpu.cudnn_packages('9.14.0.64') }}"
"""

RETURN = r"""
_value:
  description: Package name to version pattern.
  type: dict
  sample: {"libcudnn9-cuda-13": "9.14.0.64-*", "libcudnn9-dev-cuda-13": "9.14.0.64-*", "libcudnn9-headers-cuda-13": "9.14.0.64-*"}
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError
from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import cuda


def cudnn_packages(major, version=""):
    if not str(major).isdigit():
        raise AnsibleFilterError(f"cudnn_cuda_major: {major!r} is not a CUDA major version such as 12 or 13")
    try:
        return cuda.cudnn_packages(str(major), version or "")
    except DlnodeError as err:
        raise AnsibleFilterError(str(err)) from err


class FilterModule:
    """dlnode.gpu.cudnn_packages"""

    def filters(self):
        return {"cudnn_packages": cudnn_packages}
