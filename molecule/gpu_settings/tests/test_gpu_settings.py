"""gpu_settings on a node with no GPU: NVML steps skipped, the boot unit in place and enabled."""
from __future__ import annotations

import json


def test_no_nvml_venv_without_a_gpu(host):
    assert not host.file("/opt/dlnode/nvml").exists


def test_config_holds_the_declared_settings(host):
    config = json.loads(host.file("/etc/dlnode/gpu-settings.json").content_string)
    assert config == {
        "gpus": ["all"],
        "persistence_mode": True,
        "power_limit": 650,
        "gpu_locked_clocks": {"min": 1410, "max": 1980},
        "memory_locked_clocks": {},
        "applications_clocks": {},
        "compute_mode": "exclusive_process",
    }


def test_boot_unit_enabled_after_persistenced(host):
    unit = host.file("/etc/systemd/system/dlnode-gpu-settings.service").content_string
    assert "After=nvidia-persistenced.service" in unit
    assert "PartOf=nvidia-persistenced.service" in unit
    assert "ExecStart=/opt/dlnode/nvml/bin/python /usr/local/sbin/dlnode-gpu-settings /etc/dlnode/gpu-settings.json" in unit
    assert host.run("systemctl is-enabled dlnode-gpu-settings.service").stdout.strip() == "enabled"
    assert host.file("/usr/local/sbin/dlnode-gpu-settings").mode == 0o644


def test_boot_unit_waits_for_a_gpu(host):
    # No /dev/nvidiactl: starting it is a no-op, not a failure.
    assert host.run("systemctl start dlnode-gpu-settings.service").rc == 0
    state = host.run("systemctl show -p ActiveState -p ConditionResult dlnode-gpu-settings.service").stdout
    assert "ConditionResult=no" in state and "ActiveState=inactive" in state
