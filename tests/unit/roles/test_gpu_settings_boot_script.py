"""The gpu_settings boot script re-applies the settings through NVML (the fake one, from the H100 dump)."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pynvml
import pytest

from ansible_collections.dlnode.gpu.tests.unit import fake_nvml

SCRIPT = Path(__file__).resolve().parents[3] / "roles/gpu_settings/files/dlnode-gpu-settings.py"
CONFIG = {
    "gpus": ["all"],
    "persistence_mode": True,
    "power_limit": 650,
    "gpu_locked_clocks": {"min": 1410, "max": 1980},
    "memory_locked_clocks": {},
    "applications_clocks": {"preset": "max"},
    "compute_mode": "exclusive_process",
}


@pytest.fixture
def fake(monkeypatch):
    lib = fake_nvml.FakePynvml()
    for name in dir(pynvml):
        if name.startswith("NVML_"):
            setattr(lib, name, getattr(pynvml, name))
    monkeypatch.setitem(sys.modules, "pynvml", lib)
    return lib


def load_script():
    spec = importlib.util.spec_from_file_location("dlnode_gpu_settings", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_reapplies_after_a_reboot(fake, tmp_path):
    config = tmp_path / "gpu-settings.json"
    config.write_text(json.dumps(CONFIG))
    fake.reboot()
    assert load_script().main(str(config)) == 0
    device = fake.devices[0]
    assert device.locked_gpu_clocks == (1410, 1980)
    assert device.values["power_limit_mw"] == 650000
    assert [write[0] for write in fake.writes] == [
        "nvmlDeviceSetPersistenceMode", "nvmlDeviceSetPowerManagementLimit", "nvmlDeviceSetGpuLockedClocks",
        "nvmlDeviceSetApplicationsClocks", "nvmlDeviceSetComputeMode"]
    assert fake.shutdowns == 1


def test_failures_are_reported_and_nvml_shut_down(fake, tmp_path, capsys):
    config = tmp_path / "gpu-settings.json"
    config.write_text(json.dumps(CONFIG))
    fake.write_error = fake_nvml.NO_PERMISSION
    assert load_script().main(str(config)) == 1
    assert "persistence_mode failed" in capsys.readouterr().err
    assert fake.shutdowns == 1
