"""dlnode.gpu.io_scheduler against fake /sys trees."""
from __future__ import annotations

import errno
import stat

import pytest
from ansible.module_utils import basic

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.modules import io_scheduler
from ansible_collections.dlnode.gpu.tests.unit.fake_sysfs import SCHEDULERS_DEADLINE, FakeKernel, FakeTree

RULES = "/etc/udev/rules.d/60-dlnode-io-scheduler.rules"
HEADER = "# Managed by dlnode.gpu (io_scheduler module): changes here are overwritten.\n"
RULE = 'ACTION=="add|change", SUBSYSTEM=="block", ENV{DEVTYPE}=="disk", KERNEL=="%s", %s\n'
NVME_PARENT = "/sys/devices/pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0"
SATA_PARENT = "/sys/devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block"


@pytest.fixture
def tree(tmp_path, monkeypatch):
    fake = FakeTree(tmp_path)
    fake.disk("nvme0n1", parent=NVME_PARENT, partitions=["nvme0n1p1", "nvme0n1p2"])
    fake.disk("nvme1n1", parent=NVME_PARENT.replace("nvme0", "nvme1"))
    fake.disk("sda", parent=SATA_PARENT, scheduler=SCHEDULERS_DEADLINE, rotational=1, nr_requests=64, partitions=["sda1"])
    fake.disk("loop0", partitions=["loop0p1"])
    fake.disk("zram0", scheduler=None)
    fake.disk("dm-0", scheduler="none")
    fake.path("/etc/udev/rules.d").mkdir(parents=True)
    monkeypatch.setattr(files, "ROOT", str(tmp_path))
    return fake


@pytest.fixture
def kernel(tree, monkeypatch):
    return FakeKernel(tree).install(monkeypatch)


@pytest.fixture
def udevadm(monkeypatch):
    """Record udevadm calls; `path` None makes it missing, `rc` its exit status."""
    calls = []
    state = {"path": "/usr/bin/udevadm", "rc": 0}

    def get_bin_path(self, name, required=False, opt_dirs=None):
        assert name == "udevadm"
        return state["path"]

    def run_command(self, args, **kwargs):
        calls.append(args)
        return state["rc"], "", "udevadm: failed to connect" if state["rc"] else ""

    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", get_bin_path)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    state["calls"] = calls
    return state


def test_named_device_scheduler_and_rules(run_module, tree, kernel, udevadm):
    result, failed = run_module(io_scheduler, {"devices": ["/dev/sda"], "scheduler": "none"})
    assert not failed and result["changed"]
    sda = result["devices"]["sda"]
    assert sda["transport"] == "sata" and sda["rotational"] is True
    assert sda["before"] == {"scheduler": "mq-deadline", "nr_requests": 64, "read_ahead_kb": 128, "rq_affinity": 1, "nomerges": 0}
    assert sda["after"]["scheduler"] == "none"
    assert sda["changed"] and not sda["skipped"] and sda["skipped_reason"] is None
    assert tree.read("/sys/block/sda/queue/scheduler") == "[none] mq-deadline kyber bfq"
    assert tree.path(RULES).read_text() == HEADER + RULE % ("sda", 'ATTR{queue/scheduler}="none"')
    assert stat.S_IMODE(tree.path(RULES).stat().st_mode) == 0o644
    assert result["rules_file"] == RULES and result["rules_changed"] and result["udev_reloaded"]
    assert udevadm["calls"] == [
        ["/usr/bin/udevadm", "control", "--reload"],
        ["/usr/bin/udevadm", "trigger", "--action=change", "--subsystem-match=block", "--sysname-match=sda"]]


def test_rerun_is_idempotent(run_module, tree, kernel, udevadm):
    args = {"devices": ["nvme*", "sda"], "scheduler": "kyber", "read_ahead_kb": 256}
    run_module(io_scheduler, args)
    udevadm["calls"].clear()
    kernel.writes.clear()
    result, failed = run_module(io_scheduler, args)
    assert not failed and not result["changed"]
    assert not result["rules_changed"] and not result["udev_reloaded"]
    assert kernel.writes == [] and udevadm["calls"] == []


def test_rules_are_sorted_and_deterministic(run_module, tree, kernel, udevadm):
    run_module(io_scheduler, {"devices": ["sda", "nvme1n1", "nvme0n1"], "scheduler": "deadline", "nr_requests": 128, "nomerges": 2})
    rule = 'ATTR{queue/scheduler}="mq-deadline", ATTR{queue/nr_requests}="128", ATTR{queue/nomerges}="2"'
    assert tree.path(RULES).read_text() == HEADER + "".join(RULE % (name, rule) for name in ("nvme0n1", "nvme1n1", "sda"))


def test_deadline_is_mq_deadline(run_module, tree, kernel, udevadm):
    result, failed = run_module(io_scheduler, {"devices": ["sda"], "scheduler": "deadline"})
    assert not failed and not result["devices"]["sda"]["changed"]
    assert kernel.writes == []


@pytest.mark.parametrize("name", ["noop", "cfq"])
def test_single_queue_schedulers_refused(run_module, tree, name):
    result, failed = run_module(io_scheduler, {"devices": ["sda"], "scheduler": name})
    assert failed
    assert result["msg"] == "scheduler=%s: the %s scheduler was removed in Linux 5.0, use none / bfq (or mq-deadline, kyber)" % (name, name)


@pytest.mark.parametrize("name, parent", [("sda1", "sda"), ("nvme0n1p2", "nvme0n1"), ("loop0p1", "loop0")])
def test_partition_refused_naming_parent(run_module, tree, name, parent):
    result, failed = run_module(io_scheduler, {"devices": [name], "scheduler": "none"})
    assert failed
    assert result["msg"] == "devices: %s is a partition; I/O schedulers belong to the whole disk: use %s" % (name, parent)


def test_unknown_device(run_module, tree):
    result, failed = run_module(io_scheduler, {"devices": ["sdz"], "scheduler": "none"})
    assert failed
    assert result["msg"] == "devices: sdz is not a block device on this host; block devices: dm-0, loop0, nvme0n1, nvme1n1, sda, zram0"


def test_glob_matching_nothing_warns(run_module, tree, kernel, udevadm, warnings):
    result, failed = run_module(io_scheduler, {"devices": ["mmcblk*"], "scheduler": "none"})
    assert not failed
    assert result["devices"] == {}
    assert warnings == ["devices: mmcblk* matches no disk", "no disk was selected by devices and match"]


def test_device_without_scheduler_is_skipped(run_module, tree, kernel, udevadm):
    result, failed = run_module(io_scheduler, {"devices": ["zram0", "dm-0", "nvme0n1"], "scheduler": "none", "nr_requests": 32})
    assert not failed
    assert result["devices"]["zram0"]["skipped"]
    assert result["devices"]["zram0"]["skipped_reason"] == "no queue/scheduler file: this device has no I/O scheduler"
    assert result["devices"]["dm-0"]["skipped_reason"] == "queue/scheduler offers only none: this device has no selectable I/O scheduler"
    for name in ("zram0", "dm-0"):
        assert not result["devices"][name]["changed"]
        assert result["devices"][name]["after"] == result["devices"][name]["before"]
    assert [path for path, dummy in kernel.writes] == ["/sys/block/nvme0n1/queue/nr_requests"]
    assert "zram0" not in tree.path(RULES).read_text() and "dm-0" not in tree.path(RULES).read_text()


def test_queue_settings_only_on_device_without_scheduler(run_module, tree, kernel, udevadm):
    result, failed = run_module(io_scheduler, {"devices": ["zram0"], "read_ahead_kb": 0, "persist": False})
    assert not failed and result["devices"]["zram0"]["changed"]
    assert result["devices"]["zram0"]["after"] == {"nr_requests": 256, "read_ahead_kb": 0, "rq_affinity": 1, "nomerges": 0}
    assert result["rules_file"] is None and not tree.path(RULES).exists()


def test_missing_queue_setting_file_is_skipped(run_module, tree, kernel, udevadm):
    tree.path("/sys/block/loop0/queue/nomerges").unlink()
    result, dummy = run_module(io_scheduler, {"devices": ["loop0"], "nomerges": 2})
    assert result["devices"]["loop0"]["skipped_reason"] == "no queue/nomerges file on this device"


def test_match_rotational(run_module, tree, kernel, udevadm):
    result, failed = run_module(io_scheduler, {"match": {"rotational": True}, "scheduler": "bfq"})
    assert not failed
    assert list(result["devices"]) == ["sda"]
    assert result["devices"]["sda"]["after"]["scheduler"] == "bfq"


def test_match_transport(run_module, tree, kernel, udevadm):
    result, dummy = run_module(io_scheduler, {"match": {"transport": ["nvme", "loop"]}, "scheduler": "none"}, check_mode=True)
    assert sorted(result["devices"]) == ["loop0", "nvme0n1", "nvme1n1"]
    assert {d["transport"] for d in result["devices"].values()} == {"nvme", "loop"}


def test_match_filters_devices(run_module, tree, kernel, udevadm):
    args = {"devices": ["*"], "match": {"rotational": False, "transport": ["virtual"]}, "scheduler": "none"}
    result = run_module(io_scheduler, args, check_mode=True)[0]
    assert sorted(result["devices"]) == ["dm-0", "zram0"]
    assert all(d["skipped"] for d in result["devices"].values())


def test_scheduler_change_rewrites_nr_requests(run_module, tree, kernel, udevadm):
    # Selecting a scheduler resets nr_requests, so an equal value is written again after it.
    result, dummy = run_module(io_scheduler, {"devices": ["sda"], "scheduler": "kyber", "nr_requests": 64})
    assert kernel.writes == [("/sys/block/sda/queue/scheduler", "kyber"), ("/sys/block/sda/queue/nr_requests", "64")]
    assert result["devices"]["sda"]["after"]["nr_requests"] == 64


def test_check_mode_writes_nothing(run_module, tree, kernel, udevadm):
    args = {"devices": ["nvme0n1"], "scheduler": "mq-deadline", "rq_affinity": 2}
    predicted, failed = run_module(io_scheduler, args, check_mode=True, diff=True)
    assert not failed and predicted["changed"] and predicted["rules_changed"]
    assert kernel.writes == [] and udevadm["calls"] == []
    assert not tree.path(RULES).exists()
    done, dummy = run_module(io_scheduler, args, diff=True)
    assert predicted["devices"] == done["devices"]
    assert predicted["diff"] == done["diff"]


def test_check_mode_does_not_create_rules_directory(run_module, tree, kernel, udevadm):
    args = {"devices": ["sda"], "scheduler": "none", "rules_file": "/etc/udev/other/x.rules"}
    result = run_module(io_scheduler, args, check_mode=True)[0]
    assert result["rules_changed"]
    assert not tree.path("/etc/udev/other").exists()


def test_diff(run_module, tree, kernel, udevadm):
    tree.write(RULES, "# old")
    result, dummy = run_module(io_scheduler, {"devices": ["sda"], "scheduler": "none"}, diff=True)
    device, rules = result["diff"]
    assert device["before_header"] == "/sys/block/sda/queue"
    assert device["before"]["scheduler"] == "mq-deadline" and device["after"]["scheduler"] == "none"
    assert rules == {"before_header": RULES, "after_header": RULES, "before": "# old\n",
                     "after": HEADER + RULE % ("sda", 'ATTR{queue/scheduler}="none"')}


def test_no_diff_key_without_diff_mode(run_module, tree, kernel, udevadm):
    result, dummy = run_module(io_scheduler, {"devices": ["sda"], "scheduler": "none"})
    assert "diff" not in result


def test_udevadm_missing_warns(run_module, tree, kernel, udevadm, warnings):
    udevadm["path"] = None
    result, failed = run_module(io_scheduler, {"devices": ["sda"], "scheduler": "none"})
    assert not failed and result["rules_changed"] and not result["udev_reloaded"]
    assert warnings == ["udevadm not found: the rules file is written but udev was not reloaded; it takes effect at next boot"]


def test_udevadm_failure_warns(run_module, tree, kernel, udevadm, warnings):
    udevadm["rc"] = 1
    result, failed = run_module(io_scheduler, {"devices": ["sda"], "scheduler": "none"})
    assert not failed and not result["udev_reloaded"]
    assert warnings == ["udevadm control --reload failed (rc 1): udevadm: failed to connect"]


def test_scheduler_not_offered(run_module, tree, kernel, udevadm):
    tree.write("/sys/block/sda/queue/scheduler", "none [mq-deadline] kyber")
    result, failed = run_module(io_scheduler, {"devices": ["sda"], "scheduler": "bfq"})
    assert failed
    assert result["msg"] == ("scheduler: the kernel did not select bfq for sda (it offers: none, mq-deadline, kyber): "
                             "load its module (modprobe bfq) or choose one it offers")


def test_scheduler_write_ignored(run_module, tree, kernel, udevadm):
    kernel.refuse.add("/sys/block/sda/queue/scheduler")
    result, failed = run_module(io_scheduler, {"devices": ["sda"], "scheduler": "bfq"})
    assert failed
    assert result["msg"].startswith("scheduler: the kernel did not select bfq for sda")


def test_queue_setting_read_back_differs(run_module, tree, kernel, udevadm):
    kernel.refuse.add("/sys/block/sda/queue/read_ahead_kb")
    result, failed = run_module(io_scheduler, {"devices": ["sda"], "read_ahead_kb": 130})
    assert failed
    assert result["msg"] == "read_ahead_kb: wrote 130 to /sys/block/sda/queue/read_ahead_kb but the kernel reports 128"


def test_read_only_sys(run_module, tree, kernel, udevadm):
    kernel.errors["/sys/block/sda/queue/scheduler"] = errno.EROFS
    result, failed = run_module(io_scheduler, {"devices": ["sda"], "scheduler": "none"})
    assert failed
    assert "remount rw or run on the host" in result["msg"]
    assert not tree.path(RULES).exists()


@pytest.mark.parametrize("args, message", [
    ({"nr_requests": 0}, "nr_requests must be a positive integer, got 0"),
    ({"read_ahead_kb": -1}, "read_ahead_kb must be 0 or a positive integer, got -1"),
    ({"scheduler": "none", "rules_file": "rules/x.rules"}, "rules_file must be an absolute path, got rules/x.rules"),
])
def test_bad_values(run_module, tree, args, message):
    result, failed = run_module(io_scheduler, dict(args, devices=["sda"]))
    assert failed
    assert result["msg"] == message


def test_needs_a_selection_and_a_setting(run_module, tree):
    result, failed = run_module(io_scheduler, {"scheduler": "none"})
    assert failed and "one of the following is required: devices, match" in result["msg"]
    result, failed = run_module(io_scheduler, {"devices": ["sda"]})
    assert failed
    assert "one of the following is required: scheduler, nr_requests, read_ahead_kb, rq_affinity, nomerges" in result["msg"]


def test_h100_node(run_module, tmp_path, monkeypatch, udevadm):
    fake = FakeTree(tmp_path)
    fake.h100_node()
    FakeKernel(fake).install(monkeypatch)
    monkeypatch.setattr(files, "ROOT", str(tmp_path))
    result, failed = run_module(io_scheduler, {"match": {"transport": ["virtio"]}, "scheduler": "none"})
    assert not failed
    assert sorted(result["devices"]) == ["vda", "vdb"]
    assert result["devices"]["vda"]["before"]["scheduler"] == "mq-deadline"
    assert result["devices"]["vda"]["after"]["scheduler"] == "none"
    assert result["devices"]["vda"]["rotational"] is True
    result, dummy = run_module(io_scheduler, {"devices": ["zram0"], "scheduler": "none", "persist": False})
    assert result["devices"]["zram0"]["skipped"]
