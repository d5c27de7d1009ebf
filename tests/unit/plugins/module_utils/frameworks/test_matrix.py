"""frameworks/matrix.py: which wheel variant of a framework a node runs, and why one is refused."""
from __future__ import annotations

import pytest

from ansible_collections.dlnode.gpu.plugins.module_utils.frameworks import matrix
from ansible_collections.dlnode.gpu.plugins.module_utils.frameworks.matrix import MatrixError, choose

H100 = ["9.0"]
# The real H100 machine: driver 580.159.04, CUDA 13.0 (shared/ENVIRONMENT.md).
H100_DRIVER = "580.159.04"


def test_pytorch_211_ships_cu126_cu128_cu130_and_cpu():
    assert set(matrix.MATRIX["torch"]["2.11"]) == {"cpu", "cu126", "cu128", "cu130"}
    assert matrix.MATRIX["torch"]["2.11"]["cu130"]["cuda"] == "13.0"
    assert not any(entry["experimental"] for entry in matrix.MATRIX["torch"]["2.11"].values())


def test_auto_on_the_h100_picks_cu130_from_pytorchs_index():
    found = choose("torch", "2.11.0", "auto", driver=H100_DRIVER, cuda_driver="13.0", capabilities=H100)
    assert (found["variant"], found["cuda"], found["index_url"]) == ("cu130", "13.0", "https://download.pytorch.org/whl/cu130")
    assert (found["minimum_driver"], found["full_driver"], found["limited"]) == ("580.65.06", "580.65.06", False)


def test_auto_on_a_535_driver_picks_the_newest_12x_build_limited_below_its_toolkits_driver():
    found = choose("torch", "2.11", "auto", driver="535.261.03", capabilities=["8.0"])
    assert found["variant"] == "cu128"
    assert found["minimum_driver"] == "525.60.13"
    assert found["full_driver"] == "570.26"
    assert found["limited"] is True


def test_auto_on_volta_skips_cu130_and_cu128_for_cu126():
    found = choose("torch", "2.11", "auto", driver=H100_DRIVER, capabilities=["7.0", "9.0"])
    assert found["variant"] == "cu126"


def test_auto_skips_experimental_builds_but_they_can_be_asked_for():
    assert choose("torch", "2.10", "auto", driver=H100_DRIVER, capabilities=H100)["variant"] == "cu128"
    found = choose("torch", "2.10", "cu130", driver=H100_DRIVER, capabilities=H100)
    assert (found["variant"], found["experimental"]) == ("cu130", True)


def test_a_node_with_no_gpu_gets_the_cpu_build_unless_a_cuda_one_is_asked():
    assert choose("torch", "2.11", "auto")["variant"] == "cpu"
    assert choose("torch", "2.11", "auto")["index_url"] == "https://download.pytorch.org/whl/cpu"
    assert choose("torch", "2.11", "cu130")["variant"] == "cu130"


def test_cpu_asked_on_a_gpu_node():
    assert choose("torch", "2.11", "cpu", driver="470.1", capabilities=["3.7"])["variant"] == "cpu"


def test_cu130_on_a_570_driver_is_refused_naming_driver_580():
    with pytest.raises(MatrixError) as refused:
        choose("torch", "2.11", "cu130", driver="570.124.06", capabilities=H100)
    assert str(refused.value) == (
        "frameworks_environments: PyTorch 2.11 cu130 is built for CUDA 13.0 and needs NVIDIA driver 580.65.06 or newer "
        "(CUDA 13.x minor version compatibility); the driver is 570.124.06")


def test_cu126_on_a_470_driver_is_refused_naming_driver_525():
    with pytest.raises(MatrixError, match=r"needs NVIDIA driver 525\.60\.13 or newer .*the driver is 470\.256\.02"):
        choose("torch", "2.11", "cu126", driver="470.256.02", capabilities=["8.0"])


def test_without_a_driver_version_the_drivers_cuda_version_decides():
    with pytest.raises(MatrixError, match=r"cu130 is built for CUDA 13\.0 and needs NVIDIA driver 580\.65\.06 or newer; "
                                          r"the driver supports CUDA 12\.8"):
        choose("torch", "2.11", "cu130", cuda_driver="12.8", capabilities=H100)
    assert choose("torch", "2.11", "auto", cuda_driver="12.8", capabilities=H100)["variant"] == "cu128"


def test_cu130_on_pascal_is_refused_naming_the_architecture():
    with pytest.raises(MatrixError) as refused:
        choose("torch", "2.11", "cu130", driver=H100_DRIVER, capabilities=["6.1", "9.0"])
    assert str(refused.value) == (
        "frameworks_environments: PyTorch 2.11 cu130 has no code for compute capability 6.1: its wheels carry compute "
        "capabilities 7.5, 8.0, 8.6, 9.0, 10.0, 12.0 (and newer through PTX 12.0)")


def test_blackwell_needs_a_build_that_has_it():
    with pytest.raises(MatrixError, match=r"cu126 has no code for compute capability 10\.0"):
        choose("torch", "2.11", "cu126", driver=H100_DRIVER, capabilities=["10.0"])
    assert choose("torch", "2.11", "auto", driver=H100_DRIVER, capabilities=["10.0"])["variant"] == "cu130"
    # PTX: a GPU newer than the newest machine code JIT-compiles cu130's PTX.
    assert choose("torch", "2.11", "cu130", driver=H100_DRIVER, capabilities=["12.1"])["variant"] == "cu130"


def test_ada_runs_amperes_machine_code():
    assert matrix.runs_on(matrix.ARCH_CU12_MAXWELL, "8.9")
    assert not matrix.runs_on(matrix.ARCH_CU12_MAXWELL, "10.0")


def test_auto_refused_when_no_build_runs_names_every_reason():
    with pytest.raises(MatrixError) as refused:
        choose("torch", "2.11", "auto", driver="470.256.02", capabilities=["9.0"])
    message = str(refused.value)
    assert message.startswith("frameworks_environments: no CUDA build of PyTorch 2.11 runs on this node: "
                              "PyTorch 2.11 cu130 is built for CUDA 13.0 and needs NVIDIA driver 580.65.06 or newer")
    assert "cu126 is built for CUDA 12.6 and needs NVIDIA driver 525.60.13" in message
    assert message.endswith("Upgrade the driver, or ask for the cpu variant")


def test_jax_extras_by_release():
    assert choose("jax", "0.8.1", "auto", driver=H100_DRIVER, capabilities=H100)["extra"] == "cuda13"
    assert choose("jax", "0.8.1", "auto", driver="550.54.14", capabilities=H100)["extra"] == "cuda12"
    assert choose("jax", "0.5.0", "auto", driver=H100_DRIVER, capabilities=H100)["extra"] == "cuda12"
    assert choose("jax", "0.8.1", "auto") == {**choose("jax", "0.8.1", "cpu"), "reason": "the node has no GPU"}
    assert choose("jax", "0.8.1", "auto")["extra"] == ""


def test_jax_cuda13_on_volta_refused_naming_the_architecture_floor():
    with pytest.raises(MatrixError, match=r"JAX 0\.8\.0 cuda13 has no code for compute capability 7\.0: its wheels carry "
                                          r"compute capability 7\.5 or newer"):
        choose("jax", "0.8.0", "cuda13", driver=H100_DRIVER, capabilities=["7.0"])


def test_tensorflow_and_cuda():
    found = choose("tensorflow", "2.20.0", "auto", driver="560.35.03", capabilities=["8.0"])
    assert (found["variant"], found["cuda"], found["extra"], found["limited"]) == ("and-cuda", "12.5", "and-cuda", False)
    with pytest.raises(MatrixError, match=r"TensorFlow 2\.18\.1 and-cuda has no code for compute capability 5\.0"):
        choose("tensorflow", "2.18.1", "and-cuda", driver="560.35.03", capabilities=["5.0"])


@pytest.mark.parametrize("args, message", [
    (("mxnet", "1.9"), "frameworks_environments: framework 'mxnet' is not in the CUDA matching table "
                       "(it has jax, tensorflow, torch)"),
    (("torch", "2.5.1"), "frameworks_environments: PyTorch 2.5.1 is not in the CUDA matching table (it has 2.6, 2.7, "
                         "2.8, 2.9, 2.10, 2.11, 2.12, 2.13, 2.14); add its variants to "
                         "plugins/module_utils/frameworks/matrix.py from the release's notes"),
    (("torch", "latest"), "frameworks_environments: PyTorch version 'latest' is not a release such as 2.11 or 2.11.0"),
    (("jax", "0.4.20"), "frameworks_environments: JAX 0.4.20 is not in the CUDA matching table (it has 0.4.22, 0.7.0); "
                        "add its variants to plugins/module_utils/frameworks/matrix.py from the release's notes"),
    (("torch", "2.11", "cu118"), "frameworks_environments: PyTorch 2.11 ships no 'cu118' variant "
                                 "(it has cpu, cu126, cu128, cu130)"),
])
def test_unknown_framework_release_or_variant(args, message):
    with pytest.raises(MatrixError) as refused:
        choose(*args)
    assert str(refused.value) == message


def test_bad_compute_capability():
    with pytest.raises(MatrixError, match=r"compute capability 'sm_90' is not major\.minor such as 9\.0"):
        choose("torch", "2.11", capabilities=["sm_90"])


def test_every_cuda_variant_has_a_driver_row():
    """A variant whose CUDA release cuda.py's driver table lacks would fail at run time: catch it here."""
    for releases in matrix.MATRIX.values():
        for variants in releases.values():
            for entry in variants.values():
                if entry["cuda"]:
                    assert matrix.cuda.minimum_driver(entry["cuda"], "exact")


@pytest.mark.parametrize("framework, version, variant, pins", [
    ("torch", "2.11.0", "cu130", ["torch==2.11.0+cu130"]),
    ("torch", "2.11.0", "cpu", ["torch==2.11.0+cpu"]),
    ("jax", "0.10.2", "cpu", ["jax==0.10.2", "jaxlib==0.10.2"]),
    ("jax", "0.10.2", "cuda13", ["jax[cuda13]==0.10.2"]),
    ("tensorflow", "2.20.0", "and-cuda", ["tensorflow[and-cuda]==2.20.0"]),
    ("tensorflow", "2.20.0", "cpu", ["tensorflow==2.20.0"]),
])
def test_the_requirements_that_install_a_variant(framework, version, variant, pins):
    assert choose(framework, version, variant)["requirements"] == pins
