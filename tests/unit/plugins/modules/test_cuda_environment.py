"""dlnode.gpu.cuda_environment on a fake root: update-alternatives answering as dpkg's does, the files read back,
and the profile script run by a real sh."""
from __future__ import annotations

import subprocess

import pytest
from ansible.module_utils import basic

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.modules import cuda_environment

PROFILE = "/etc/profile.d/dlnode-cuda.sh"
ENV = "/etc/dlnode/cuda.env"


@pytest.fixture
def node(tmp_path, monkeypatch):
    """The alternatives group cuda with 12.8 and 13.0 (priority 128, 130), auto mode; the commands run."""
    state = {"value": "/usr/local/cuda-13.0", "alternatives": ["/usr/local/cuda-12.8", "/usr/local/cuda-13.0"],
             "commands": []}
    monkeypatch.setattr(files, "ROOT", str(tmp_path))
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                        lambda self, name, required=False, opt_dirs=None: f"/usr/bin/{name}")
    monkeypatch.setattr(basic.AnsibleModule, "atomic_move", lambda self, src, dest, **kwargs: __import__("os").replace(src, dest))

    def run_command(self, argv, **kwargs):
        args = list(argv[1:])
        state["commands"].append(args)
        if args[0] == "--query":
            if not state["alternatives"]:
                return 2, "", "update-alternatives: error: no alternatives for cuda\n"
            text = f"Name: cuda\nLink: /usr/local/cuda\nStatus: auto\nBest: {state['alternatives'][-1]}\nValue: {state['value']}\n"
            text += "".join(f"\nAlternative: {path}\nPriority: {path[-4:].replace('.', '')}\n" for path in state["alternatives"])
            return 0, text, ""
        if args[0] == "--set":
            state["value"] = args[2]
            return 0, "", ""
        raise AssertionError(args)

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    state["root"] = tmp_path
    return state


def env(run_module, check_mode=False, **options):
    args = {"alternative": "/usr/local/cuda-13.0", "cuda_home": "/usr/local/cuda", "path": ["/usr/local/cuda/bin"],
            "library_path": ["/usr/local/cuda/lib64"]}
    args.update(options)
    return run_module(cuda_environment, args, check_mode=check_mode)


def test_the_files_are_written_once_and_a_rerun_changes_nothing(node, run_module):
    result, failed = env(run_module)
    assert not failed and result["changed"]
    assert result["alternative"] == {"before": "/usr/local/cuda-13.0", "after": "/usr/local/cuda-13.0"}
    assert result["files"] == [PROFILE, ENV]
    assert (node["root"] / ENV.lstrip("/")).read_text().splitlines()[1:] == [
        "CUDA_HOME=/usr/local/cuda",
        "PATH=/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LD_LIBRARY_PATH=/usr/local/cuda/lib64"]
    assert ["--set", "cuda", "/usr/local/cuda-13.0"] not in node["commands"]
    result, failed = env(run_module)
    assert not failed and not result["changed"] and result["files"] == []


def test_the_profile_puts_each_directory_first_once(node, run_module):
    env(run_module)
    script = node["root"] / PROFILE.lstrip("/")
    out = subprocess.run(["sh", "-c", f". {script}; . {script}; echo $PATH; echo $LD_LIBRARY_PATH; echo $CUDA_HOME"],
                         env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["/usr/local/cuda/bin:/usr/bin:/bin", "/usr/local/cuda/lib64", "/usr/local/cuda"]


def test_the_default_is_switched_with_update_alternatives(node, run_module):
    result, failed = env(run_module, alternative="/usr/local/cuda-12.8")
    assert not failed and result["changed"]
    assert result["alternative"] == {"before": "/usr/local/cuda-13.0", "after": "/usr/local/cuda-12.8"}
    assert ["--set", "cuda", "/usr/local/cuda-12.8"] in node["commands"] and node["value"] == "/usr/local/cuda-12.8"


def test_check_mode_predicts_and_writes_nothing(node, run_module):
    result, failed = env(run_module, check_mode=True, alternative="/usr/local/cuda-12.8")
    assert not failed and result["changed"] and result["files"] == [PROFILE, ENV]
    assert node["value"] == "/usr/local/cuda-13.0" and not (node["root"] / "etc").exists()


def test_check_mode_predicts_an_alternative_that_is_about_to_be_installed(node, run_module):
    node["alternatives"] = []
    result, failed = env(run_module, check_mode=True)
    assert not failed and result["changed"]
    assert result["alternative"] == {"before": None, "after": "/usr/local/cuda-13.0"}


def test_an_alternative_the_group_lacks_is_refused(node, run_module):
    result, failed = env(run_module, alternative="/usr/local/cuda-12.9")
    assert failed
    assert result["msg"] == ("cuda_toolkit_default: /usr/local/cuda-12.9 is not an alternative of cuda (it has "
                             "/usr/local/cuda-12.8, /usr/local/cuda-13.0); the toolkit's package registers it: "
                             "is that toolkit installed?")
    assert not (node["root"] / "etc").exists()


def test_without_an_alternative_only_the_files_are_written(node, run_module):
    result, failed = env(run_module, alternative=None, cuda_home="/usr/lib/nvidia-cuda-toolkit", path=[], library_path=[])
    assert not failed and result["changed"]
    assert node["commands"] == []
    assert (node["root"] / ENV.lstrip("/")).read_text().splitlines()[1:] == [
        "CUDA_HOME=/usr/lib/nvidia-cuda-toolkit", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]


TRAINING = {"NCCL_SOCKET_IFNAME": "^docker0,lo", "NCCL_IB_DISABLE": "1", "OMP_NUM_THREADS": "8"}


def test_variables_alone_make_a_training_environment_without_cuda_or_path(node, run_module):
    result, failed = run_module(cuda_environment, {
        "variables": TRAINING, "comment": "(frameworks): the training environment",
        "profile_file": "/etc/profile.d/dlnode-frameworks.sh", "environment_file": "/etc/dlnode/frameworks.env"})
    assert not failed and result["changed"]
    assert result["alternative"] == {"before": None, "after": None} and node["commands"] == []
    assert (node["root"] / "etc/dlnode/frameworks.env").read_text().splitlines() == [
        "# Managed by dlnode.gpu (frameworks): the training environment. Edits are replaced.",
        "NCCL_SOCKET_IFNAME=^docker0,lo", "NCCL_IB_DISABLE=1", "OMP_NUM_THREADS=8"]
    script = node["root"] / "etc/profile.d/dlnode-frameworks.sh"
    out = subprocess.run(["sh", "-c", f". {script}; echo $NCCL_SOCKET_IFNAME $NCCL_IB_DISABLE $OMP_NUM_THREADS $PATH"],
                         env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["^docker0,lo", "1", "8", "/usr/bin:/bin"]


@pytest.mark.parametrize("variables, message", [
    ({"NCCL-DEBUG": "INFO"}, "variables: 'NCCL-DEBUG' is not a variable name"),
    ({"NCCL_DEBUG": "$HOME"}, "variables: NCCL_DEBUG='$HOME' holds a quote, backslash, $, backtick or line break"),
])
def test_bad_variables_are_refused_before_anything_is_written(node, run_module, variables, message):
    result, failed = env(run_module, variables=variables)
    assert failed and result["msg"] == message
    assert not (node["root"] / ENV.lstrip("/")).exists()
