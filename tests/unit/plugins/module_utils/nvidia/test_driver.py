"""nvidia/driver: open or proprietary kernel modules, and the branches that drive the GPUs found."""
from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import driver

OPEN_IDS = [int(word, 16) for line in (Path(__file__).resolve().parents[4] / "fixtures/nvidia/open-gpu-ids.txt")
            .read_text().splitlines() if not line.startswith("#") for word in line.split()]


def gpu(device_id, bus="0000:00:06.0"):
    return {"pci_bus_id": bus, "device_id": device_id}


H100 = gpu("0x2330")           # Hopper, the real H100 of shared/fixtures
GH200 = gpu("0x2342", "0000:01:00.0")
B200 = gpu("0x2901", "0000:02:00.0")
V100 = gpu("0x1db4", "0000:03:00.0")  # Volta
P100 = gpu("0x15f8", "0000:04:00.0")  # Pascal
K80 = gpu("0x102d", "0000:05:00.0")   # Kepler
L4 = gpu("0x27b8", "0000:06:00.0")    # Ada


def test_every_gpu_of_nvidias_open_module_table_is_turing_or_later():
    assert len(OPEN_IDS) == 289
    families = {driver.architecture(device_id) for device_id in OPEN_IDS}
    assert families == {"turing", "ampere", "hopper", "ada", "blackwell"}


@pytest.mark.parametrize("device, family", [
    ("0x2330", "hopper"), ("0x20b2", "ampere"), ("0x1eb8", "turing"), ("0x2182", "turing"), ("0x27b8", "ada"),
    ("0x2901", "blackwell"), ("0x2b85", "blackwell"), ("0x1db4", "volta"), ("0x15f8", "pascal"),
    ("0x1b80", "pascal"), ("0x13c2", "maxwell"), ("0x17c2", "maxwell"), ("0x102d", "kepler"), (0x3300, None),
])
def test_family_by_device_id(device, family):
    assert driver.architecture(device) == family


@pytest.mark.parametrize("gpus, requested, branch, modules, reason", [
    ([H100], "auto", 580, "open", "every GPU is Turing or newer: NVIDIA's default (open modules since 560)"),
    ([H100, L4], "proprietary", 580, "proprietary", "nvidia_driver_modules: proprietary"),
    ([V100], "auto", 580, "proprietary", "the GPU at 0000:03:00.0 (device 1db4, volta) needs the proprietary modules"),
    ([B200, GH200], "open", 590, "open", "nvidia_driver_modules: open"),
    ([], "auto", 590, "open", "no NVIDIA GPU found: NVIDIA's default (open modules since 560)"),
    ([gpu(0x3300)], "auto", 590, "open", "every GPU is Turing or newer: NVIDIA's default (open modules since 560)"),
])
def test_choice(gpus, requested, branch, modules, reason):
    assert driver.choose_modules(gpus, requested, branch) == (modules, reason)


@pytest.mark.parametrize("gpus, requested, branch, message", [
    ([V100], "open", 580, "nvidia_driver_modules: open modules need Turing or newer; the GPU at 0000:03:00.0 "
                          "(device 1db4, volta) needs the proprietary modules: set nvidia_driver_modules: proprietary (or auto)"),
    ([B200], "proprietary", 590, "nvidia_driver_modules: the GPU at 0000:02:00.0 (device 2901, blackwell) works only "
                                 "with the open modules: set nvidia_driver_modules: open (or auto)"),
    ([GH200], "proprietary", 580, "nvidia_driver_modules: the GPU at 0000:01:00.0 (device 2342, hopper) works only"),
    ([P100], "auto", 590, "nvidia_driver_branch: 590 does not support the GPU at 0000:04:00.0 (device 15f8, pascal); "
                          "the last branch for it is 580: set nvidia_driver_branch: 580"),
    ([K80], "proprietary", 580, "nvidia_driver_branch: 580 does not support the GPU at 0000:05:00.0 (device 102d, kepler); "
                                "the last branch for it is 470"),
    ([V100, B200], "auto", 580, "nvidia_driver_modules: no kernel module flavour drives both the GPU at 0000:03:00.0"),
])
def test_refusals_name_the_gpu_and_what_to_set(gpus, requested, branch, message):
    with pytest.raises(driver.DriverChoiceError) as raised:
        driver.choose_modules(gpus, requested, branch)
    assert str(raised.value).startswith(message)
