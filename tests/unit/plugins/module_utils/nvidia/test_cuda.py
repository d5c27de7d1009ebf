"""nvidia/cuda: the driver a CUDA toolkit needs, under the exact and the minor-version rule."""
from __future__ import annotations

import pytest

from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import cuda


@pytest.mark.parametrize("version, driver", [
    ("13.0", "580.65.06"), ("13.0.2", "580.95.05"), ("12.9", "575.51.03"), ("12.8", "570.26"), ("12.8.1", "570.124.06"),
    ("12.0.1", "525.85.12"), ("11.8", "520.61.05"),
    ("12.8.9", "570.124.06"),  # an update the table does not list: at least the newest listed one's
])
def test_exact_rule_is_the_release_notes_table(version, driver):
    assert cuda.minimum_driver(version, "exact")[0] == driver


def test_minor_rule_is_the_major_versions_floor():
    assert cuda.minimum_driver("12.8", "minor") == ("525.60.13", "minor version compatibility: any CUDA 12.x runs on "
                                                    "525.60.13 or newer")
    assert cuda.minimum_driver("13.0.2", "minor")[0] == "580.65.06"


def test_the_h100_node_runs_its_cuda_13_0():
    # tests/fixtures/node: driver 580.159.04, cuda-*-13-0 from NVIDIA's repository.
    found = cuda.check_driver(["13.0"], "580.159.04", "exact")
    assert found == [{"version": "13.0", "minimum_driver": "580.65.06", "runs": True, "compat": False,
                      "reason": "CUDA 13.0 GA needs 580.65.06 or newer (CUDA Toolkit Release Notes)"}]


def test_a_toolkit_newer_than_the_driver_is_refused_naming_the_minimum():
    with pytest.raises(cuda.CudaError) as refused:
        cuda.check_driver(["12.8", "13.0"], "570.195.03", "exact")
    assert str(refused.value) == (
        "cuda_toolkit_versions: CUDA 13.0 needs driver 580.65.06 or newer (CUDA 13.0 GA needs 580.65.06 or newer (CUDA "
        "Toolkit Release Notes)); the driver is 570.195.03. Upgrade the driver (nvidia_driver_branch), or set "
        "cuda_toolkit_forward_compat: true for NVIDIA's cuda-compat package (datacenter GPUs only)")


def test_forward_compat_marks_what_needs_it():
    found = cuda.check_driver(["12.8", "13.0"], "570.195.03", "exact", compat=True)
    assert [(item["version"], item["runs"], item["compat"]) for item in found] == [("12.8", True, False),
                                                                                   ("13.0", False, True)]


def test_minor_rule_lets_12_8_run_on_535():
    assert cuda.check_driver(["12.8"], "535.261.03", "minor")[0]["runs"]
    with pytest.raises(cuda.CudaError):
        cuda.check_driver(["12.8"], "535.261.03", "exact")


def test_no_driver_known_checks_nothing():
    assert cuda.check_driver(["13.0"], None, "exact")[0]["runs"]


@pytest.mark.parametrize("version, message", [
    ("12", "cuda_toolkit_versions: '12' is not a CUDA toolkit version such as 12.8 or 13.0.2"),
    ("latest", "cuda_toolkit_versions: 'latest' is not a CUDA toolkit version such as 12.8 or 13.0.2"),
    ("12.7", "cuda_toolkit_versions: CUDA 12.7 is not in this collection's driver table (it has 11.8, 12.0, 12.1, 12.2, "
             "12.3, 12.4, 12.5, 12.6, 12.8, 12.9, 13.0, 13.1, 13.2)"),
])
def test_unknown_versions_are_refused(version, message):
    with pytest.raises(cuda.CudaError) as refused:
        cuda.minimum_driver(version, "exact")
    assert str(refused.value) == message


def test_dashed():
    assert cuda.dashed("12.8") == "12-8" and cuda.dashed("13.0.2") == "13-0"


def test_package_names_and_patterns():
    from ansible_collections.dlnode.gpu.plugins.module_utils.packages import versions  # pylint: disable=import-outside-toplevel
    assert cuda.toolkit_packages("12.8") == {"cuda-toolkit-12-8": "12.8.*"}
    assert cuda.toolkit_packages("13.0.2") == {"cuda-toolkit-13-0": "13.0.2-*"}
    assert versions.matches("13.0.2-1", "13.0.2-*") and versions.matches("12.8.1-1", "12.8.*")
    assert cuda.compat_package("13.0") == {"cuda-compat-13-0": "*"}
    # The real H100 node: libcudnn9-cuda-13 9.14.0.64-1, libnccl2 2.28.3-1+cuda13.0.
    assert cuda.cudnn_packages("13", "9.14.0.64") == {"libcudnn9-cuda-13": "9.14.0.64-*", "libcudnn9-dev-cuda-13": "9.14.0.64-*",
                                                      "libcudnn9-headers-cuda-13": "9.14.0.64-*"}
    assert versions.matches("9.14.0.64-1", cuda.cudnn_packages("13", "9.14")["libcudnn9-cuda-13"])
    assert cuda.cudnn_packages("12", "")["libcudnn9-cuda-12"] == "9.*"
    assert cuda.nccl_packages("2.28.3", "13.0") == {"libnccl2": "2.28.3-*+cuda13.0", "libnccl-dev": "2.28.3-*+cuda13.0"}
    assert versions.matches("2.28.3-1+cuda13.0", cuda.nccl_packages("", "13.0.2")["libnccl2"])
    assert not versions.matches("2.28.3-1+cuda12.8", cuda.nccl_packages("", "13.0")["libnccl2"])


@pytest.mark.parametrize("call, message", [
    (lambda: cuda.cudnn_packages("13", "8.9.7"), "cudnn_version: '8.9.7' is not a cuDNN 9 version such as 9.14 or 9.14.0.64"),
    (lambda: cuda.nccl_packages("2.28", "13.0"), "cuda_toolkit_nccl_version: '2.28' is not an NCCL version such as 2.28.3"),
])
def test_bad_cudnn_and_nccl_versions(call, message):
    with pytest.raises(cuda.CudaError) as refused:
        call()
    assert str(refused.value) == message
