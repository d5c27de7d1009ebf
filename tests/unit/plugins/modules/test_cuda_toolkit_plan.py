"""dlnode.gpu.cuda_toolkit_plan: the toolkits against the driver (given, installed or loaded), the packages,
the default toolkit and its environment, on a fake root with dpkg-query answering as dpkg does."""
from __future__ import annotations

import pytest
from ansible.module_utils import basic

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.modules import cuda_toolkit_plan


@pytest.fixture
def node(tmp_path, monkeypatch):
    """A Debian node: which driver package owns nvidia-smi, the loaded module, and every command run."""
    state = {"owner": None, "installed": {}, "loaded": None, "commands": [], "smi": "/usr/bin/nvidia-smi"}
    monkeypatch.setattr(files, "ROOT", str(tmp_path))

    def get_bin_path(self, name, required=False, opt_dirs=None):
        if name == "nvidia-smi":
            return state["smi"]
        return f"/usr/bin/{name}" if name in ("dpkg-query", "apt-get") else None

    def run_command(self, argv, **kwargs):
        name, args = argv[0].rsplit("/", 1)[-1], list(argv[1:])
        state["commands"].append([name, *args])
        if args[0] == "-S":
            return (0, f"{state['owner']}: {args[1]}\n", "") if state["owner"] else (1, "", "no path found\n")
        names = args[args.index("--") + 1:]
        return 0, "".join(f"{n}\tii \t{state['installed'][n]}\n" for n in names if n in state["installed"]), ""

    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", get_bin_path)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr("os.path.realpath", lambda path: path)

    def load(version):
        (tmp_path / "sys/module/nvidia").mkdir(parents=True, exist_ok=True)
        (tmp_path / "sys/module/nvidia/version").write_text(version + "\n")
    state["load"] = load
    return state


def plan(run_module, **options):
    return run_module(cuda_toolkit_plan, dict({"versions": ["12.8", "13.0"]}, **options))


def test_two_toolkits_on_the_installed_driver(node, run_module):
    node["owner"], node["installed"]["nvidia-smi"] = "nvidia-smi", "580.126.16-1"
    result, failed = plan(run_module)
    assert not failed and not result["changed"]
    assert result["driver"] == {"version": "580.126.16", "from": "the installed package nvidia-smi"}
    assert [(t["version"], t["path"], t["minimum_driver"], t["runs"]) for t in result["toolkits"]] == [
        ("12.8", "/usr/local/cuda-12.8", "570.26", True), ("13.0", "/usr/local/cuda-13.0", "580.65.06", True)]
    assert result["toolkits"][1]["reason"] == "CUDA 13.0 GA needs 580.65.06 or newer (CUDA Toolkit Release Notes)"
    assert result["default"] == {"version": "13.0", "path": "/usr/local/cuda-13.0"}
    assert result["packages"] == {"cuda-toolkit-12-8": "12.8.*", "cuda-toolkit-13-0": "13.0.*",
                                  "libnccl2": "*-*+cuda13.0", "libnccl-dev": "*-*+cuda13.0"}
    assert result["environment"] == {"cuda_home": "/usr/local/cuda", "path": ["/usr/local/cuda/bin"],
                                     "library_path": ["/usr/local/cuda/lib64"]}
    assert result["nccl"]["reason"] == "built for CUDA 13.0, the default toolkit (*-*+cuda13.0)"


def test_the_default_and_nccls_version_follow_the_options(node, run_module):
    result, failed = plan(run_module, default="12.8", nccl_version="2.25.1", driver_version="580.126.16")
    assert not failed
    assert result["driver"] == {"version": "580.126.16", "from": "given"}
    assert result["default"] == {"version": "12.8", "path": "/usr/local/cuda-12.8"}
    assert result["packages"]["libnccl2"] == "2.25.1-*+cuda12.8"
    # Given a driver, the node is not read.
    assert node["commands"] == []


def test_a_toolkit_newer_than_the_driver_is_refused_naming_the_minimum_driver(node, run_module):
    node["load"]("575.57.08")
    node["smi"] = None
    result, failed = plan(run_module)
    assert failed
    assert result["msg"] == (
        "cuda_toolkit_versions: CUDA 13.0 needs driver 580.65.06 or newer (CUDA 13.0 GA needs 580.65.06 or newer "
        "(CUDA Toolkit Release Notes)); the driver is 575.57.08. Upgrade the driver (nvidia_driver_branch), or set "
        "cuda_toolkit_forward_compat: true for NVIDIA's cuda-compat package (datacenter GPUs only)")


def test_the_minor_rule_runs_any_12x_on_525(node, run_module):
    result, failed = plan(run_module, versions=["12.8"], driver_version="535.104.05", rule="minor")
    assert not failed
    assert result["rule"] == "minor"
    assert result["toolkits"][0]["reason"] == "minor version compatibility: any CUDA 12.x runs on 525.60.13 or newer"
    _result, failed = plan(run_module, versions=["12.8"], driver_version="535.104.05")
    assert failed


def test_forward_compatibility_installs_cuda_compat_first_in_the_library_path(node, run_module):
    result, failed = plan(run_module, versions=["13.0"], driver_version="570.124.06", forward_compat=True,
                          gpu_names=["NVIDIA H100 80GB HBM3"])
    assert not failed
    assert result["toolkits"][0]["compat"] is True and result["toolkits"][0]["runs"] is False
    assert result["packages"]["cuda-compat-13-0"] == "*"
    assert result["environment"]["library_path"] == ["/usr/local/cuda/lib64", "/usr/local/cuda-13.0/compat"]


def test_forward_compatibility_is_refused_on_geforce(node, run_module):
    result, failed = plan(run_module, versions=["13.0"], driver_version="570.124.06", forward_compat=True,
                          gpu_names=["NVIDIA GeForce RTX 4090"])
    assert failed
    assert result["msg"].startswith("cuda_toolkit_forward_compat: NVIDIA's forward compatibility works on datacenter GPUs "
                                    "only, and this node has NVIDIA GeForce RTX 4090")


def test_without_a_driver_nothing_is_checked_and_a_warning_says_so(node, run_module, warnings):
    node["smi"] = None
    result, failed = plan(run_module)
    assert not failed
    assert result["driver"] == {"version": None, "from": None}
    assert all(toolkit["runs"] for toolkit in result["toolkits"])
    assert any("without a driver check" in warning for warning in warnings)


def test_the_distribution_has_one_toolkit_and_no_nccl(node, run_module):
    result, failed = plan(run_module, versions=["11.8"], source="distribution", driver_version="535.261.03")
    assert not failed
    assert result["packages"] == {"nvidia-cuda-toolkit": "11.8.*"}
    assert result["default"] == {"version": "11.8", "path": "/usr/lib/nvidia-cuda-toolkit"}
    assert result["environment"] == {"cuda_home": "/usr/lib/nvidia-cuda-toolkit", "path": [], "library_path": []}
    assert result["nccl"] == {"wanted": False, "reason": "NCCL comes from NVIDIA's repository (cuda_toolkit_source: nvidia)"}


@pytest.mark.parametrize("options, message", [
    ({"versions": ["12.8", "13.0"], "source": "distribution"},
     "cuda_toolkit_versions: the distribution has one toolkit (nvidia-cuda-toolkit); list one version"),
    ({"versions": ["13"]}, "cuda_toolkit_versions: '13' is not a CUDA toolkit version such as 12.8 or 13.0.2"),
    ({"versions": ["14.1"]}, "cuda_toolkit_versions: CUDA 14.1 is not in this collection's driver table (it has 11.8, 12.0,"),
    ({"versions": []}, "cuda_toolkit_versions: empty; list at least one toolkit, such as 13.0"),
    ({"versions": ["13.0", "13.0.2"]}, "cuda_toolkit_versions: 13.0, 13.0.2 names a release twice; list each once"),
    ({"default": "12.9"}, "cuda_toolkit_default: 12.9 is not one of cuda_toolkit_versions (12.8, 13.0)"),
    ({"nccl_version": "2.28"}, "cuda_toolkit_nccl_version: '2.28' is not an NCCL version such as 2.28.3"),
    ({"versions": ["13.0"], "driver_version": "570.124.06", "forward_compat": True, "source": "distribution"},
     "cuda_toolkit_forward_compat: cuda-compat comes from NVIDIA's repository; use cuda_toolkit_source: nvidia"),
])
def test_bad_input_is_refused_naming_the_variable(node, run_module, options, message):
    options.setdefault("driver_version", "580.126.16")
    result, failed = plan(run_module, **options)
    assert failed and result["msg"].startswith(message), result["msg"]


def test_a_branch_pattern_is_checked_as_the_newest_of_the_branch(node, run_module, warnings):
    # What the driver role predicts in check mode on a bare node, before NVIDIA's source is there.
    result, failed = plan(run_module, driver_version="580.*")
    assert not failed
    assert result["driver"] == {"version": "580.*", "from": "given (the branch, checked as its newest driver)"}
    assert any("checked against the newest driver of that branch" in warning for warning in warnings)
    result, failed = plan(run_module, versions=["13.2"], driver_version="580.*")
    assert failed and result["msg"].startswith("cuda_toolkit_versions: CUDA 13.2 needs driver 595.45.04 or newer "
                                               "(CUDA 13.2 GA needs 595.45.04 or newer (CUDA Toolkit Release Notes)); "
                                               "the driver is 580.*")


@pytest.mark.parametrize("given", ["\\2", "580", "580.126.16-1"])
def test_a_driver_version_that_is_none_is_refused(node, run_module, given):
    result, failed = plan(run_module, driver_version=given)
    assert failed and result["msg"] == f"cuda_toolkit_driver_version: {given!r} is not a driver version such as 580.126.16"
