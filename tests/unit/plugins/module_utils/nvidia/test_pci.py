"""PCI scanning of sysfs, over a fake tree built from the real node's listing."""
from __future__ import annotations

import pytest

from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import pci
from ansible_collections.dlnode.gpu.tests.unit import fake_pci


@pytest.mark.parametrize(
    "bus_id, expected",
    [
        ("0000:00:06.0", "0000:00:06.0"),
        ("00000000:00:06.0", "0000:00:06.0"),
        ("00000000:1B:00.0", "0000:1b:00.0"),
        ("00:06.0", "0000:00:06.0"),
        ("0001:c1:00.1", "0001:c1:00.1"),
        (" 0000:00:06.0\n", "0000:00:06.0"),
        ("0000:00:06", None),
        ("0000:00:06.8", None),
        ("GPU-0ad4414f", None),
        ("", None),
    ],
)
def test_normalize_bus_id(bus_id, expected):
    assert pci.normalize_bus_id(bus_id) == expected


@pytest.mark.parametrize(
    "speed, generation",
    [("2.5 GT/s PCIe", 1), ("8.0 GT/s PCIe", 3), ("32.0 GT/s PCIe", 5), ("64.0 GT/s PCIe", 6), ("Unknown", None), (None, None)],
)
def test_link_generation(speed, generation):
    assert pci.link_generation(speed) == generation


def test_missing_sysfs_means_no_devices(tmp_path):
    assert pci.nvidia_devices(str(tmp_path)) == []
    assert pci.driver_loaded(str(tmp_path)) is False
    assert pci.driver_version(str(tmp_path)) is None


def test_real_node(tmp_path):
    root = fake_pci.build(tmp_path)

    assert pci.nvidia_devices(str(root)) == [
        {
            "pci_bus_id": "0000:00:06.0",
            "kind": "gpu",
            "vendor_id": "0x10de",
            "device_id": "0x2330",
            "class": "0x030200",
            "subsystem_vendor_id": "0x10de",
            "subsystem_device_id": "0x16c1",
            "driver": "nvidia",
            "numa_node": None,
            "pcie": {"generation_current": 5, "generation_max": 5, "width_current": 16, "width_max": 16},
        }
    ]
    assert pci.driver_loaded(str(root)) is True
    assert pci.driver_version(str(root)) == "580.159.04"


def test_unbound_gpu(tmp_path):
    root = fake_pci.build(tmp_path, driver_loaded=False)

    devices = pci.nvidia_devices(str(root))

    assert [device["driver"] for device in devices] == [None]
    assert pci.driver_loaded(str(root)) is False


def test_classes(tmp_path):
    vga = dict(fake_pci.NVSWITCH, address="0000:02:00.0", **{"class": "0x030000"})
    root = fake_pci.build(tmp_path, extra=[fake_pci.NVSWITCH, fake_pci.GPU_AUDIO, vga])

    devices = pci.nvidia_devices(str(root))

    assert [(device["pci_bus_id"], device["kind"]) for device in devices] == [
        ("0000:00:06.0", "gpu"),
        ("0000:02:00.0", "gpu"),
        ("0000:05:00.0", "nvswitch"),
    ]


def test_numa_node_and_unreadable_files(tmp_path):
    fake_pci.add_device(tmp_path, {"address": "0000:00:08.0", "vendor": "0x10de", "device": "0x2330",
                                   "class": "0x030200", "numa_node": "1"})
    fake_pci.add_device(tmp_path, {"address": "0000:00:09.0", "vendor": "0x10de", "class": "garbage"})

    devices = pci.nvidia_devices(str(tmp_path))

    assert len(devices) == 1
    assert devices[0]["numa_node"] == 1
    assert devices[0]["driver"] is None
    assert devices[0]["pcie"] == {"generation_current": None, "generation_max": None, "width_current": None, "width_max": None}
