"""dlnode.gpu.cudnn_packages: NVIDIA's cuDNN 9 package names for a CUDA major and their version pattern."""
from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.dlnode.gpu.plugins.filter.cudnn_packages import cudnn_packages


@pytest.mark.parametrize("version, pattern", [("9.14.0.64", "9.14.0.64-*"), ("9.14", "9.14.*"), ("", "9.*")])
def test_runtime_dev_and_headers_at_one_pattern(version, pattern):
    assert cudnn_packages("13", version) == {"libcudnn9-cuda-13": pattern, "libcudnn9-dev-cuda-13": pattern,
                                             "libcudnn9-headers-cuda-13": pattern}


@pytest.mark.parametrize("major, version, message", [
    ("13", "8.9.7", "cudnn_version: '8.9.7' is not a cuDNN 9 version such as 9.14 or 9.14.0.64"),
    ("13.0", "", "cudnn_cuda_major: '13.0' is not a CUDA major version such as 12 or 13"),
])
def test_bad_input_names_the_variable(major, version, message):
    with pytest.raises(AnsibleFilterError) as refused:
        cudnn_packages(major, version)
    assert str(refused.value) == message
