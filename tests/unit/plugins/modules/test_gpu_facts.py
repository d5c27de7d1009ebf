"""dlnode.gpu.gpu_facts: no GPU, GPU without driver, and the real H100 through a fake NVML."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import nvml
from ansible_collections.dlnode.gpu.plugins.modules import gpu_facts
from ansible_collections.dlnode.gpu.tests.unit import fake_nvml
from ansible_collections.dlnode.gpu.tests.unit import fake_pci

SMI_XML = fake_nvml.FIXTURES / "nvidia-smi-q.xml"


@pytest.fixture
def facts(run_module, monkeypatch, tmp_path):
    """facts(lib, root=None) -> the dlnode_gpu fact, with lib as pynvml and root as /."""

    def _facts(lib, root=None):
        root = root or tmp_path / "empty-root"
        root.mkdir(parents=True, exist_ok=True)
        monkeypatch.setattr(files, "ROOT", str(root))
        monkeypatch.setattr(gpu_facts, "BACKEND_FACTORY", lambda: nvml.NvmlBackend(lib=lib))
        result, failed = run_module(gpu_facts, {})
        assert not failed, result
        assert result["changed"] is False
        return result["ansible_facts"]["dlnode_gpu"]

    return _facts


@pytest.fixture
def node(tmp_path):
    return fake_pci.build(tmp_path / "node")


@pytest.fixture
def h100():
    return fake_nvml.FakePynvml()


@pytest.fixture
def smi():
    return ET.parse(SMI_XML).getroot().find("gpu")


def _no_driver_nvml():
    lib = fake_nvml.FakePynvml()
    lib.init_error = fake_nvml.DRIVER_NOT_LOADED
    return lib


# -- no GPU, no driver ---------------------------------------------------------


def test_no_gpu_at_all(facts):
    fact = facts(_no_driver_nvml())

    assert fact["present"] is False
    assert fact["count"] == 0
    assert fact["gpus"] == []
    assert fact["pci_devices"] == []
    assert fact["nvswitch_present"] is False
    assert fact["driver_loaded"] is False
    assert fact["driver_version"] is None
    assert fact["nvml_available"] is False
    assert fact["reason"] == "the NVIDIA driver is not loaded (nvmlInit: Driver Not Loaded)"


def test_no_gpu_and_no_pynvml(monkeypatch, run_module, tmp_path):
    monkeypatch.setattr(nvml, "pynvml", None)
    monkeypatch.setattr(files, "ROOT", str(tmp_path))
    monkeypatch.setattr(gpu_facts, "BACKEND_FACTORY", nvml.NvmlBackend)

    result, failed = run_module(gpu_facts, {})

    assert not failed
    fact = result["ansible_facts"]["dlnode_gpu"]
    assert fact["present"] is False
    assert fact["reason"] == nvml.PYNVML_MISSING_MSG
    assert "install nvidia-ml-py" in fact["reason"]


def test_other_pci_devices_are_not_gpus(facts, tmp_path):
    root = tmp_path / "node"
    for device in fake_pci.node_devices():
        if device["vendor"] != "0x10de":
            fake_pci.add_device(root, device)

    fact = facts(_no_driver_nvml(), root)

    assert fact["present"] is False
    assert fact["pci_devices"] == []


# -- GPU but no driver (sysfs only) --------------------------------------------


def test_gpu_without_driver_comes_from_sysfs(facts, tmp_path):
    root = fake_pci.build(tmp_path / "node", driver_loaded=False)

    fact = facts(_no_driver_nvml(), root)

    assert fact["present"] is True
    assert fact["count"] == 1
    assert fact["driver_loaded"] is False
    assert fact["driver_version"] is None
    assert fact["nvml_available"] is False
    assert fact["reason"] == "the NVIDIA driver is not loaded (nvmlInit: Driver Not Loaded)"
    assert fact["gpus"] == [
        {
            "index": 0,
            "source": "sysfs",
            "name": None,
            "uuid": None,
            "pci_bus_id": "0000:00:06.0",
            "pci_device_id": "0x2330",
            "numa_node": None,
            "driver": None,
            "pcie": {"generation_current": 5, "generation_max": 5, "width_current": 16, "width_max": 16},
        }
    ]


def test_driver_loaded_without_pynvml(node, monkeypatch, run_module):
    monkeypatch.setattr(nvml, "pynvml", None)
    monkeypatch.setattr(files, "ROOT", str(node))
    monkeypatch.setattr(gpu_facts, "BACKEND_FACTORY", nvml.NvmlBackend)

    result, _failed = run_module(gpu_facts, {})

    fact = result["ansible_facts"]["dlnode_gpu"]
    assert fact["driver_loaded"] is True
    assert fact["driver_version"] == "580.159.04"
    assert fact["gpus"][0]["driver"] == "nvidia"
    assert fact["nvml_available"] is False
    assert "install nvidia-ml-py" in fact["reason"]


def test_nvml_shared_library_missing(facts, node):
    lib = fake_nvml.FakePynvml()
    lib.init_error = fake_nvml.LIBRARY_NOT_FOUND

    fact = facts(lib, node)

    assert fact["reason"].startswith("the NVML library (libnvidia-ml.so.1) was not found")
    assert fact["gpus"][0]["source"] == "sysfs"


def test_nvswitch_is_reported(facts, tmp_path):
    root = fake_pci.build(tmp_path / "node", extra=[fake_pci.NVSWITCH, fake_pci.GPU_AUDIO])

    fact = facts(_no_driver_nvml(), root)

    assert fact["nvswitch_present"] is True
    assert fact["nvswitch_count"] == 1
    assert fact["count"] == 1
    assert [(device["pci_bus_id"], device["kind"]) for device in fact["pci_devices"]] == [
        ("0000:00:06.0", "gpu"),
        ("0000:05:00.0", "nvswitch"),
    ]


# -- the H100 through the fake NVML --------------------------------------------


def test_h100_summary(facts, node, h100):
    fact = facts(h100, node)

    assert fact["present"] is True
    assert fact["count"] == 1
    assert fact["nvml_available"] is True
    assert fact["reason"] is None
    assert fact["driver_loaded"] is True
    assert fact["driver_version"] == "580.159.04"
    assert fact["nvml_version"] == "13.580.159.04"
    assert fact["cuda_driver_version"] == "13.0"
    assert fact["nvswitch_present"] is False


def test_h100_matches_probe(facts, node, h100):
    probe = fake_nvml.load_probe()["nvml"]

    gpu = facts(h100, node)["gpus"][0]

    assert gpu["source"] == "nvml"
    assert gpu["index"] == 0
    assert gpu["name"] == probe["name"]
    assert gpu["uuid"] == probe["uuid"]
    assert gpu["pci_bus_id"] == "0000:00:06.0"
    assert gpu["vbios_version"] == probe["vbios"]
    assert gpu["architecture"] == "hopper"
    assert gpu["compute_capability"] == "9.0"
    assert gpu["memory_total_mib"] == probe["memory_total_bytes"] // 2**20
    assert gpu["persistence_mode"] is True
    assert gpu["compute_mode"] == "default"
    assert gpu["power"] == {
        "limit_w": 700,
        "default_limit_w": 700,
        "enforced_limit_w": 700,
        "min_limit_w": 200,
        "max_limit_w": 700,
    }
    assert gpu["clocks"] == {
        "current": {"graphics": 345, "sm": 345, "memory": 2619},
        "max": {"graphics": 1980, "sm": 1980, "memory": 2619},
        "applications": {"graphics": 1980, "memory": 2619},
        "default_applications": {"graphics": 1980, "memory": 2619},
    }
    assert gpu["supported_clocks"]["memory"] == [2619, 1593]
    assert gpu["supported_clocks"]["graphics"] == probe["supported_graphics_clocks"]
    assert gpu["ecc_mode"] == {"current": True, "pending": True}
    assert gpu["mig_mode"] == {"current": False, "pending": False}
    assert gpu["pcie"] == {"generation_current": 5, "generation_max": 5, "width_current": 16, "width_max": 16}
    assert gpu["clock_event_reasons"] == {"mask": 1, "active": ["gpu_idle"]}
    assert gpu["remapped_rows"] == {"correctable": 0, "uncorrectable": 0, "pending": False, "failure": False}
    assert gpu["driver"] == "nvidia"
    assert gpu["numa_node"] is None
    assert gpu["errors"] == {}


def test_h100_not_supported_values_are_marked(facts, node, h100):
    gpu = facts(h100, node)["gpus"][0]

    # probe.json: retired pages are NotSupported on this H100 (it remaps rows instead).
    assert gpu["retired_pages"] == "unsupported"


def test_h100_matches_nvidia_smi(facts, node, h100, smi):
    gpu = facts(h100, node)["gpus"][0]

    def mhz(path):
        return int(smi.findtext(path).split()[0])

    def watts(path):
        return float(smi.findtext(path).split()[0])

    assert gpu["name"] == smi.findtext("product_name")
    assert gpu["uuid"] == smi.findtext("uuid")
    assert gpu["vbios_version"] == smi.findtext("vbios_version")
    assert gpu["architecture"] == smi.findtext("product_architecture").lower()
    assert gpu["memory_total_mib"] == mhz("fb_memory_usage/total")
    assert gpu["persistence_mode"] is (smi.findtext("persistence_mode") == "Enabled")
    assert gpu["compute_mode"] == smi.findtext("compute_mode").lower()
    assert gpu["ecc_mode"]["current"] is (smi.findtext("ecc_mode/current_ecc") == "Enabled")
    assert gpu["ecc_mode"]["pending"] is (smi.findtext("ecc_mode/pending_ecc") == "Enabled")
    assert gpu["mig_mode"]["current"] is (smi.findtext("mig_mode/current_mig") == "Enabled")
    assert gpu["power"]["limit_w"] == watts("gpu_power_readings/current_power_limit")
    assert gpu["power"]["default_limit_w"] == watts("gpu_power_readings/default_power_limit")
    assert gpu["power"]["min_limit_w"] == watts("gpu_power_readings/min_power_limit")
    assert gpu["power"]["max_limit_w"] == watts("gpu_power_readings/max_power_limit")
    assert gpu["clocks"]["max"]["graphics"] == mhz("max_clocks/graphics_clock")
    assert gpu["clocks"]["max"]["memory"] == mhz("max_clocks/mem_clock")
    assert gpu["clocks"]["applications"]["graphics"] == mhz("applications_clocks/graphics_clock")
    assert gpu["clocks"]["default_applications"]["memory"] == mhz("default_applications_clocks/mem_clock")
    assert gpu["pcie"]["generation_max"] == int(smi.findtext("pci/pci_gpu_link_info/pcie_gen/max_link_gen"))
    assert gpu["pcie"]["width_current"] == int(smi.findtext("pci/pci_gpu_link_info/link_widths/current_link_width").rstrip("x"))
    assert gpu["supported_clocks"]["memory"] == [
        int(clock.findtext("value").split()[0]) for clock in smi.findall("supported_clocks/supported_mem_clock")
    ]
    assert gpu["remapped_rows"]["correctable"] == int(smi.findtext("remapped_rows/remapped_row_corr"))
    assert smi.findtext("retired_pages/pending_retirement") == "N/A"
    assert gpu["retired_pages"] == "unsupported"


def test_nvml_and_sysfs_agree_on_pcie(facts, node, h100):
    fact = facts(h100, node)

    assert fact["gpus"][0]["pcie"] == fact["pci_devices"][0]["pcie"]


@pytest.mark.parametrize(
    "function, field",
    [
        ("nvmlDeviceGetMigMode", "mig_mode"),
        ("nvmlDeviceGetEccMode", "ecc_mode"),
        ("nvmlDeviceGetRemappedRows", "remapped_rows"),
        ("nvmlDeviceGetSupportedMemoryClocks", "supported_clocks"),
        ("nvmlDeviceGetCurrentClocksEventReasons", "clock_event_reasons"),
        ("nvmlDeviceGetPersistenceMode", "persistence_mode"),
        ("nvmlDeviceGetArchitecture", "architecture"),
    ],
)
def test_not_supported_is_a_marker_not_an_error(facts, node, h100, function, field):
    h100.fail[function] = fake_nvml.NOT_SUPPORTED

    gpu = facts(h100, node)["gpus"][0]

    assert gpu[field] == "unsupported"
    assert gpu["errors"] == {}


def test_not_supported_power_constraints(facts, node, h100):
    h100.fail["nvmlDeviceGetPowerManagementLimitConstraints"] = fake_nvml.NOT_SUPPORTED

    power = facts(h100, node)["gpus"][0]["power"]

    assert power["min_limit_w"] == "unsupported"
    assert power["max_limit_w"] == "unsupported"
    assert power["limit_w"] == 700


def test_missing_function_is_unsupported(facts, node, h100):
    h100.missing.add("nvmlDeviceGetRemappedRows")

    gpu = facts(h100, node)["gpus"][0]

    assert gpu["remapped_rows"] == "unsupported"


def test_old_pynvml_falls_back_to_throttle_reasons(facts, node, h100):
    h100.missing.add("nvmlDeviceGetCurrentClocksEventReasons")

    gpu = facts(h100, node)["gpus"][0]

    assert gpu["clock_event_reasons"] == {"mask": 1, "active": ["gpu_idle"]}


def test_other_read_errors_are_listed_per_field(facts, node, h100):
    h100.fail["nvmlDeviceGetVbiosVersion"] = fake_nvml.NO_PERMISSION

    gpu = facts(h100, node)["gpus"][0]

    assert gpu["vbios_version"] is None
    assert gpu["errors"] == {"vbios_version": "nvmlDeviceGetVbiosVersion: Insufficient Permissions"}
    assert gpu["name"] == "NVIDIA H100 80GB HBM3"


def test_failure_after_init_keeps_sysfs_data(facts, node, h100):
    h100.fail["nvmlDeviceGetCount"] = fake_nvml.UNKNOWN

    fact = facts(h100, node)

    assert fact["nvml_available"] is False
    assert fact["reason"] == "NVML initialised but failed while reading: nvmlDeviceGetCount: Unknown Error"
    assert fact["gpus"][0]["source"] == "sysfs"
    assert h100.shutdowns == 1


def test_two_gpus(facts, tmp_path, h100):
    h100.devices.append(fake_nvml.FakeDevice(h100.system, 1))
    second = dict(fake_pci.node_devices()[-1], address="0000:00:07.0", numa_node="1")
    root = fake_pci.build(tmp_path / "node", extra=[second])

    fact = facts(h100, root)

    assert fact["count"] == 2
    assert [gpu["pci_bus_id"] for gpu in fact["gpus"]] == ["0000:00:06.0", "0000:00:07.0"]
    assert [gpu["numa_node"] for gpu in fact["gpus"]] == [None, 1]
    assert fact["gpus"][1]["uuid"] == "GPU-0ad4414f-aa1d-07b8-b043-5bc8e52d2e01"


def test_nvml_is_shut_down(facts, node, h100):
    facts(h100, node)

    assert h100.shutdowns == 1
    assert h100.initialized == 0


def test_check_mode_gives_the_same_facts(run_module, monkeypatch, node, h100):
    monkeypatch.setattr(files, "ROOT", str(node))
    monkeypatch.setattr(gpu_facts, "BACKEND_FACTORY", lambda: nvml.NvmlBackend(lib=h100))

    normal, _failed = run_module(gpu_facts, {})
    checked, _failed = run_module(gpu_facts, {}, check_mode=True)

    assert normal == checked
    assert h100.writes == []


def test_unknown_option_is_rejected(run_module):
    result, failed = run_module(gpu_facts, {"gather": "all"})

    assert failed
    assert "Unsupported parameters for (" in result["msg"]
    assert "gather" in result["msg"]
