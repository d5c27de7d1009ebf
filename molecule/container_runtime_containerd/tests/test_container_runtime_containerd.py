"""containerd alone with NVIDIA's runtime registered in its config, read back through containerd itself."""
from __future__ import annotations

from playbook import play, recap

CONFIG = "/etc/containerd/config.toml"


def test_the_operators_lines_stay_and_the_nvidia_runtime_is_added(host):
    text = host.file(CONFIG).content_string
    assert text.startswith("# Operator: keep the state on the fast disk.\nversion = 2\noom_score = -999\n"), text
    assert 'snapshotter = "native"' in text
    assert '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]' in text


def test_containerd_reads_the_runtime_and_runs(host):
    dump = host.check_output("containerd config dump")
    assert 'default_runtime_name = "nvidia"' in dump
    assert 'BinaryName = "/usr/bin/nvidia-container-runtime"' in dump
    assert "oom_score = -999" in dump
    assert host.service("containerd").is_running
    assert "Server:" in host.check_output("ctr version")


def test_containerd_and_the_toolkit_are_locked(host):
    pin = host.file("/etc/apt/preferences.d/dlnode-container_runtime.pref").content_string
    for name in ("containerd", "nvidia-container-toolkit", "libnvidia-container1"):
        assert host.check_output(f"dpkg-query -W -f '${{db:Status-Abbrev}}' {name}") == "hi "
        assert f"Package: {name}\nPin: version" in pin
    assert not host.file("/usr/bin/dockerd").exists


def test_a_second_run_does_not_restart_containerd(host):
    before = host.check_output("systemctl show -p ActiveEnterTimestamp --value containerd.service")
    rc, output = play(host)
    assert rc == 0 and recap(output)["changed"] == 0, output
    assert host.check_output("systemctl show -p ActiveEnterTimestamp --value containerd.service") == before
