"""The cuda_toolkit and cudnn roles after nvidia_driver, on a node reading the NVIDIA test repository as a mirror.

In file order: the state converge left (12.8 and 13.0 side by side, 13.0 the default, NCCL and cuDNN for it,
all held), the environment read back from a login shell, bad input refused with nothing changed, the
default switched to 12.8 and back (NCCL and cuDNN follow it), then NCCL and cuDNN version changes in one
run, predicted first by check mode, and a second run that changes nothing; last, CUDA 13.0 on a driver too old
for it through NVIDIA's forward compatibility package.
"""
from __future__ import annotations

import json
import shlex

import pytest
from playbook import play, recap

PIN = "/etc/apt/preferences.d/dlnode-cuda_toolkit.pref"
BLACKLIST = "/etc/apt/apt.conf.d/52dlnode-cuda_toolkit-unattended-upgrades"
NVCC = {"12.8": "Cuda compilation tools, release 12.8, V12.8.93", "13.0": "Cuda compilation tools, release 13.0, V13.0.88"}


def version(host, package):
    return host.run(f"dpkg-query -W -f '${{db:Status-Abbrev}}${{Version}}' {package}").stdout


def state(host):
    """Every file the roles and apt own, with its digest: what a refused run must leave as it was."""
    return host.check_output("find /etc/apt /etc/dlnode /etc/profile.d /etc/alternatives -printf '%p %m %l\\n' | sort; "
                             "dpkg-query -W -f '${db:Status-Abbrev} ${Package} ${Version}\\n' | sort")


def login(host, command):
    """A command in a login shell of an ordinary user, as after an ssh login."""
    return host.check_output(f"su - nobody -s /bin/bash -c {shlex.quote(command)}")


def test_two_toolkits_side_by_side_13_0_the_default(host):
    for release in ("12.8", "13.0"):
        assert host.file(f"/usr/local/cuda-{release}/bin/nvcc").is_executable
        assert version(host, f"cuda-toolkit-{release.replace('.', '-')}").startswith(f"hi {release}.")
    assert host.file("/usr/local/cuda").linked_to == "/usr/local/cuda-13.0"
    assert "Value: /usr/local/cuda-13.0" in host.check_output("update-alternatives --query cuda")


def test_nccl_and_cudnn_are_built_for_the_default_and_locked(host):
    assert version(host, "libnccl2") == "hi 2.28.3-1+cuda13.0"
    assert version(host, "libnccl-dev") == "hi 2.28.3-1+cuda13.0"
    for name in ("libcudnn9-cuda-13", "libcudnn9-dev-cuda-13", "libcudnn9-headers-cuda-13"):
        assert version(host, name) == "hi 9.14.0.64-1"
    assert not version(host, "libcudnn9-cuda-12").startswith("ii")
    pin = host.file(PIN).content_string
    assert "Package: libnccl2\nPin: version 2.28.3-1+cuda13.0\nPin-Priority: 1001" in pin
    assert "Package: cuda-toolkit-12-8\nPin: version 12.8.1-1" in pin
    assert '"^cuda-toolkit-13-0$";' in host.file(BLACKLIST).content_string
    assert "Pin: version 9.14.0.64-1" in host.file("/etc/apt/preferences.d/dlnode-cudnn.pref").content_string


def test_a_login_shell_finds_the_default_nvcc(host):
    assert NVCC["13.0"] in login(host, "nvcc --version")
    assert login(host, "echo $PATH").startswith("/usr/local/cuda/bin:")
    assert login(host, "echo $LD_LIBRARY_PATH $CUDA_HOME") == "/usr/local/cuda/lib64 /usr/local/cuda"


def test_units_get_the_environment_file(host):
    unit = ("[Service]\nType=oneshot\nEnvironmentFile=/etc/dlnode/cuda.env\n"
            "ExecStart=/bin/sh -c 'nvcc --version > /run/cuda-unit.out; echo $CUDA_HOME >> /run/cuda-unit.out'\n")
    host.check_output(f"printf %s {shlex.quote(unit)} > /run/systemd/system/dlnode-cuda-test.service && "
                      "systemctl daemon-reload && systemctl start dlnode-cuda-test.service")
    out = host.file("/run/cuda-unit.out").content_string
    assert NVCC["13.0"] in out and out.endswith("/usr/local/cuda\n")


def test_cudnn_for_12_8_comes_from_the_archive_into_its_directory(host):
    header = host.file("/usr/local/cuda-12.8/include/cudnn_version.h").content_string
    assert "#define CUDNN_MINOR 14" in header
    assert host.file("/usr/local/cuda-12.8/lib64/libcudnn.so").linked_to == "/usr/local/cuda-12.8/lib64/libcudnn.so.9.14.0"
    assert host.file("/etc/dlnode/cudnn/usr-local-cuda-12.8.files").exists
    assert not host.file("/usr/local/cuda-13.0/include/cudnn_version.h").exists


@pytest.mark.parametrize("extra, message", [
    ({"cuda_toolkit_versions": ["13.2"]},
     "cuda_toolkit_versions: CUDA 13.2 needs driver 595.45.04 or newer (CUDA 13.2 GA needs 595.45.04 or newer "
     "(CUDA Toolkit Release Notes)); the driver is 580.126.16"),
    ({"cuda_toolkit_versions": ["13"]}, "cuda_toolkit_versions[0]: got '13'; allowed: a CUDA toolkit version such as 13.0"),
    ({"cuda_toolkit_versions": ["12.8", "13.0"], "cuda_toolkit_default": "12.9"},
     "cuda_toolkit_default: 12.9 is not one of cuda_toolkit_versions (12.8, 13.0)"),
    ({"cudnn_cuda_major": "11"}, "cudnn_cuda_major: no CUDA 11 toolkit is installed on this node (its toolkits: 12.8, 13.0)"),
    ({"cudnn_archives": [{"src": "/srv/cudnn/missing.tar.xz", "cuda_version": "12.8"}]},
     "cudnn_archives[0].src: /srv/cudnn/missing.tar.xz does not exist"),
    ({"cudnn_archives": [{"src": "/srv/cudnn/not-cudnn.tar.xz", "cuda_version": "12.8"}]},
     "cudnn_archives[0].src: /srv/cudnn/not-cudnn.tar.xz is not a cuDNN archive"),
    ({"cudnn_archives": [{"src": "/srv/cudnn/cudnn-linux-x86_64-9.14.0.64_cuda13-archive.tar.xz", "cuda_version": "12.8"}]},
     "is cuDNN 9.14.0.64 for CUDA 13, but cudnn_archives[0].cuda_version is 12.8"),
])
def test_bad_input_is_refused_and_nothing_changes(host, extra, message):
    before = state(host)
    rc, output = play(host, "-e", json.dumps(extra))
    assert rc != 0 and message in " ".join(output.split()), output
    assert state(host) == before


def test_the_default_switches_to_12_8_with_nccl_and_cudnn_for_it(host):
    rc, output = play(host, "-e", json.dumps({"cuda_toolkit_default": "12.8", "cuda_toolkit_nccl_version": ""}))
    assert rc == 0, output
    assert host.file("/usr/local/cuda").linked_to == "/usr/local/cuda-12.8"
    assert NVCC["12.8"] in login(host, "nvcc --version")
    assert version(host, "libnccl2") == "hi 2.25.1-1+cuda12.8"
    assert version(host, "libcudnn9-cuda-12") == "hi 9.14.0.64-1"
    assert not version(host, "libcudnn9-cuda-13").startswith("ii")


def test_and_back_to_13_0(host):
    rc, output = play(host)
    assert rc == 0, output
    assert host.file("/usr/local/cuda").linked_to == "/usr/local/cuda-13.0"
    assert NVCC["13.0"] in login(host, "nvcc --version")
    assert version(host, "libnccl2") == "hi 2.28.3-1+cuda13.0"
    assert version(host, "libcudnn9-cuda-13") == "hi 9.14.0.64-1"


NEWER = {"cuda_toolkit_nccl_version": "2.28.9", "cudnn_version": "9.20.0.48"}


def test_check_mode_predicts_the_version_change_and_writes_nothing(host):
    before = state(host)
    rc, output = play(host, "--check", "-e", json.dumps(NEWER))
    assert rc == 0, output
    assert recap(output)["changed"] == 2 and state(host) == before


def test_the_version_change_unholds_upgrades_and_holds_in_one_run(host):
    rc, output = play(host, "-e", json.dumps(NEWER))
    assert rc == 0, output
    assert recap(output)["changed"] == 2
    assert version(host, "libnccl2") == "hi 2.28.9-1+cuda13.0"
    assert version(host, "libnccl-dev") == "hi 2.28.9-1+cuda13.0"
    for name in ("libcudnn9-cuda-13", "libcudnn9-dev-cuda-13", "libcudnn9-headers-cuda-13"):
        assert version(host, name) == "hi 9.20.0.48-1"
    assert "#define CUDNN_MINOR 20" in host.file("/usr/include/x86_64-linux-gnu/cudnn_version_v9.h").content_string
    rc, output = play(host, "-e", json.dumps(NEWER))
    assert rc == 0 and recap(output)["changed"] == 0, output


def test_forward_compatibility_runs_13_0_on_an_older_driver(host):
    # As on a datacenter node whose driver is 570: refused, then run through cuda-compat-13-0 when asked.
    older = dict(NEWER, cuda_toolkit_versions=["13.0"], cuda_toolkit_driver_version="570.124.06", cudnn_archives=[])
    rc, output = play(host, "-e", json.dumps(older))
    assert rc != 0 and "CUDA 13.0 needs driver 580.65.06 or newer" in " ".join(output.split()), output
    rc, output = play(host, "-e", json.dumps(dict(older, cuda_toolkit_forward_compat=True)))
    assert rc == 0, output
    assert version(host, "cuda-compat-13-0") == "hi 580.95.05-1"
    assert host.file("/usr/local/cuda-13.0/compat/libcuda.so.1").exists
    assert login(host, "echo $LD_LIBRARY_PATH") == "/usr/local/cuda/lib64:/usr/local/cuda-13.0/compat"
