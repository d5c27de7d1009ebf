"""What the tuning role leaves on a node: huge pages, THP, I/O schedulers, dirty ratios, skips."""
from __future__ import annotations

import json

import pytest

LOOPS = "/var/tmp/dlnode-molecule/tuning/loops.json"
WANTED = {"nvme": ("none", 4096), "ssd": ("mq-deadline", 4096), "hdd": ("bfq", 8192)}


@pytest.fixture(scope="module")
def loops(host):
    with host.sudo():
        return {cls: names[0] for cls, names in json.loads(host.file(LOOPS).content_string).items()}


def selected(text):
    return text.split("[", 1)[1].split("]", 1)[0]


def test_hugepages_allocated(host):
    meminfo = dict(line.split(":", 1) for line in host.file("/proc/meminfo").content_string.splitlines())
    assert int(meminfo["HugePages_Total"]) - int(meminfo["HugePages_Surp"]) == 16
    assert host.file("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages").content_string.strip() == "16"


def test_hugepages_boot_unit_written_and_enabled(host):
    unit = host.file("/etc/systemd/system/dlnode-hugepages.service")
    assert unit.exists
    assert host.file("/etc/dlnode/hugepages.d/hugepages-2048kB.conf").contains("16")
    assert host.file("/etc/dlnode/hugepages.d/thp.conf").contains("transparent_hugepage/defrag defer.madvise")
    assert host.service("dlnode-hugepages.service").is_enabled


def test_thp_modes(host):
    assert selected(host.file("/sys/kernel/mm/transparent_hugepage/enabled").content_string) == "madvise"
    assert selected(host.file("/sys/kernel/mm/transparent_hugepage/defrag").content_string) == "defer+madvise"


@pytest.mark.parametrize("cls", sorted(WANTED))
def test_loop_scheduler_and_read_ahead(host, loops, cls):
    queue = f"/sys/block/{loops[cls]}/queue"
    scheduler, read_ahead = WANTED[cls]
    if scheduler == "bfq" and "bfq" not in host.file(f"{queue}/scheduler").content_string:
        scheduler = "kyber"  # a kernel without BFQ: the scenario asks for kyber (molecule.yml)
    assert selected(host.file(f"{queue}/scheduler").content_string) == scheduler
    assert host.file(f"{queue}/read_ahead_kb").content_string.strip() == str(read_ahead)


@pytest.mark.parametrize("cls", sorted(WANTED))
def test_udev_rules_written(host, loops, cls):
    rules = host.file(f"/etc/udev/rules.d/60-dlnode-io-{cls}-devices.rules")
    assert rules.exists
    assert rules.contains(loops[cls])
    # The class's own match selects nothing on this host (virtio left out): its file names no disk.
    assert host.file(f"/etc/udev/rules.d/60-dlnode-io-{cls}.rules").exists


def test_udev_rule_restores_scheduler(host, loops):
    name = loops["ssd"]
    queue = f"/sys/block/{name}/queue"
    host.run_expect([0], f"echo kyber > {queue}/scheduler")
    assert selected(host.file(f"{queue}/scheduler").content_string) == "kyber"
    host.run_expect([0], f"udevadm trigger --action=change --subsystem-match=block --sysname-match={name}")
    host.run_expect([0], "udevadm settle --timeout=10")
    assert selected(host.file(f"{queue}/scheduler").content_string) == "mq-deadline"


def test_dirty_ratios(host):
    assert host.file("/proc/sys/vm/dirty_ratio").content_string.strip() == "30"
    assert host.file("/proc/sys/vm/dirty_background_ratio").content_string.strip() == "7"
    conf = host.file("/etc/sysctl.d/91-dlnode-tuning.conf")
    assert conf.contains("vm.dirty_ratio = 30") or conf.contains("vm.dirty_ratio=30")


def test_cpufreq_skipped_without_cpufreq(host):
    assert not host.file("/sys/devices/system/cpu/cpu0/cpufreq").exists
    assert not host.file("/etc/systemd/system/dlnode-cpufreq.service").exists


def test_kernel_cmdline_left_alone_in_a_container(host):
    assert host.run("systemd-detect-virt --container").rc == 0
    assert not host.file("/etc/default/grub.d/90-dlnode.cfg").exists
