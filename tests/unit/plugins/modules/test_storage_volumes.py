"""storage_volumes refuses bad input before it reads or touches any disk."""
from __future__ import annotations

import pytest

from ansible_collections.dlnode.gpu.plugins.modules import storage_volumes


@pytest.mark.parametrize("volume, message", [
    (dict(name="d", devices=["/dev/null"], fstype="btrfs", mount="/d"), "value of fstype must be one of: xfs, ext4, swap, got: btrfs"),
    (dict(name="d", devices=["/dev/dlnode-missing"], mount="/d"), "device /dev/dlnode-missing does not exist"),
    (dict(name="d", devices=["/dev/null"], mount="/d"), "device /dev/null (/dev/null) is not a block device"),
    (dict(name="d", devices=["/dev/null"], mount="d"), "volumes[0] (d).mount must be a normalized absolute path other than /, got 'd'"),
    (dict(name="d", devices=["/dev/a", "/dev/b"], raid_level=1, mount="/d"), None),
    (dict(name="d", devices=["/dev/a", "/dev/b"], raid_level=10, mount="/d"), "raid_level 10 needs at least 4 devices, got 2"),
    (dict(name="d", devices=["/dev/a"], raid_level=5, mount="/d"), "value of raid_level must be one of: 0, 1, 10, got: 5"),
])
def test_bad_input_fails_with_a_message_and_no_disk_read(run_module, monkeypatch, volume, message):
    def no_disks(self, devices):
        raise AssertionError("disks were read")

    monkeypatch.setattr(storage_volumes.Disks, "observe", no_disks)
    result, failed = run_module(storage_volumes, dict(volumes=[volume]))
    assert failed
    if message is None:  # /dev/a does not exist: the first device problem is reported
        message = "device /dev/a does not exist"
    assert message in result["msg"]
    assert "Traceback" not in result["msg"]


def test_the_same_device_in_two_volumes(run_module, monkeypatch, tmp_path):
    monkeypatch.setattr(storage_volumes, "resolve", lambda path: "/dev/loop7")
    result, failed = run_module(storage_volumes, dict(volumes=[dict(name="a", devices=["/dev/disk/by-id/x"], mount="/a"),
                                                               dict(name="b", devices=["/dev/loop7"], mount="/b")]))
    assert failed
    assert result["msg"] == "device /dev/loop7 (/dev/loop7) is declared twice: in volume 'a' and in volume 'b'"
