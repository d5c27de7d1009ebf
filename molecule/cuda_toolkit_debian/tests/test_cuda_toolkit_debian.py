"""Debian 12's own nvidia-cuda-toolkit 11.8 after Debian's 535 driver: checked, locked, found by a login shell."""
from __future__ import annotations


def test_debians_toolkit_is_installed_and_held(host):
    status = host.check_output("dpkg-query -W -f '${db:Status-Abbrev}${Version}' nvidia-cuda-toolkit")
    assert status.startswith("hi 11.8.")
    assert "Package: nvidia-cuda-toolkit\nPin: version 11.8." in host.file(
        "/etc/apt/preferences.d/dlnode-cuda_toolkit.pref").content_string
    assert "nvidia-cuda-toolkit" in host.file("/etc/dlnode/package-sets/cuda_toolkit.versions").content_string


def test_a_login_shell_runs_debians_nvcc(host):
    out = host.check_output("su - nobody -s /bin/bash -c 'nvcc --version; echo $CUDA_HOME'")
    assert "Cuda compilation tools, release 11.8, V11.8.89" in out
    assert out.endswith("/usr/lib/nvidia-cuda-toolkit")
    assert not host.file("/usr/local/cuda").exists


def test_the_environment_file_names_debians_tree(host):
    lines = host.file("/etc/dlnode/cuda.env").content_string.splitlines()
    assert "CUDA_HOME=/usr/lib/nvidia-cuda-toolkit" in lines
    assert host.file("/usr/lib/nvidia-cuda-toolkit/bin/nvcc").exists
