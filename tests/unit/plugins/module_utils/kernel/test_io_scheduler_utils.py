"""module_utils.io_scheduler: device discovery and planning."""
from __future__ import annotations

import pytest

from ansible_collections.dlnode.gpu.plugins.module_utils.kernel import io_scheduler as ios
from ansible_collections.dlnode.gpu.plugins.module_utils.kernel import sysfs
from ansible_collections.dlnode.gpu.tests.unit.fake_sysfs import FakeTree


@pytest.mark.parametrize("name, path, transport", [
    ("loop3", "/sys/devices/virtual/block/loop3", "loop"),
    ("nvme0n1", "/sys/devices/pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0/nvme0n1", "nvme"),
    ("nvme0c0n1", "/sys/devices/virtual/nvme-subsystem/nvme-subsys0/nvme0c0n1", "nvme"),
    ("sdb", "/sys/devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb", "usb"),
    ("vda", "/sys/devices/pci0000:00/0000:00:02.0/virtio1/block/vda", "virtio"),
    ("sda", "/sys/devices/pci0000:00/0000:00:03.0/virtio2/host0/target0:0:0/0:0:0:0/block/sda", "virtio"),
    ("mmcblk0", "/sys/devices/platform/soc/mmc_host/mmc0/mmc0:0001/block/mmcblk0", "mmc"),
    ("sda", "/sys/devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda", "sata"),
    ("sdc", "/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/host0/port-0:0/end_device-0:0/target0:0:0/0:0:0:0/block/sdc", "sas"),
    ("zram0", "/sys/devices/virtual/block/zram0", "virtual"),
    ("sdd", "/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/host2/target2:0:0/2:0:0:0/block/sdd", "scsi"),
    ("xvda", "/sys/devices/vbd-51712/block/xvda", "other"),
])
def test_transport(name, path, transport):
    assert ios.transport(name, path) == transport


def test_canonical_scheduler():
    assert ios.canonical_scheduler("deadline") == "mq-deadline"
    assert ios.canonical_scheduler("bfq") == "bfq"
    with pytest.raises(ios.IoSchedulerError, match="removed in Linux 5.0, use none / bfq"):
        ios.canonical_scheduler("noop")
    with pytest.raises(ios.IoSchedulerError, match="scheduler=anticipatory is not a scheduler; choose one of: none, mq-deadline, kyber, bfq"):
        ios.canonical_scheduler("anticipatory")


def test_select_devices(tmp_path):
    tree = FakeTree(tmp_path)
    tree.disk("sda", partitions=["sda1"])
    tree.disk("sdb")
    tree.disk("nvme0n1")
    kernel = sysfs.Kernel(str(tmp_path))
    assert ios.select_devices(kernel, None) == (["nvme0n1", "sda", "sdb"], [])
    assert ios.select_devices(kernel, ["sd?", "/dev/sda", "vd*"]) == (["sda", "sdb"], ["vd*"])
    assert ios.partition_parent(kernel, "sda1") == "sda"
    assert ios.partition_parent(kernel, "sda") is None


def test_plan_device():
    info = {"scheduler": "mq-deadline", "nr_requests": 64, "read_ahead_kb": 128, "rq_affinity": 1, "nomerges": 0}
    assert ios.plan_device(info, "mq-deadline", {"nr_requests": 64}) == []
    assert ios.plan_device(info, None, {"read_ahead_kb": 256, "nomerges": 0}) == [("read_ahead_kb", 256)]
    assert ios.plan_device(info, "none", {"nomerges": 1, "nr_requests": 64}) == [
        ("scheduler", "none"), ("nr_requests", 64), ("nomerges", 1)]


def test_matches():
    info = {"rotational": False, "transport": "nvme"}
    assert ios.matches(info, None)
    assert ios.matches(info, {"rotational": None, "transport": None})
    assert ios.matches(info, {"rotational": False, "transport": ["nvme"]})
    assert not ios.matches(info, {"rotational": True})
    assert not ios.matches(info, {"transport": ["sata"]})


def test_rules_content_without_devices():
    assert ios.rules_content([], "none", {}) == "# Managed by dlnode.gpu (io_scheduler module): changes here are overwritten.\n"
