"""dlnode.gpu.hugepages against fake /sys and /proc trees."""
from __future__ import annotations

import errno
import stat

import pytest

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.modules import hugepages
from ansible_collections.dlnode.gpu.tests.unit.fake_sysfs import FakeKernel, FakeTree

G1 = 1048576
POOL_2M = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"
POOL_1G = "/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages"
NODE1_1G = "/sys/devices/system/node/node1/hugepages/hugepages-1048576kB/nr_hugepages"
SYSCTL = "/etc/sysctl.d/60-dlnode-hugepages.conf"
UNIT = "/etc/systemd/system/dlnode-hugepages.service"
CONF_DIR = "/etc/dlnode/hugepages.d"


@pytest.fixture
def tree(tmp_path, monkeypatch):
    fake = FakeTree(tmp_path)
    fake.hugepages(nodes=(0, 1))
    fake.thp()
    monkeypatch.setattr(files, "ROOT", str(tmp_path))
    return fake


@pytest.fixture
def kernel(tree, monkeypatch):
    return FakeKernel(tree).install(monkeypatch)


def test_count_is_applied_and_read_back(run_module, tree, kernel):
    result, failed = run_module(hugepages, {"size": "2M", "count": 5})
    assert not failed
    assert result["changed"]
    assert result["size"] == "2M" and result["size_kb"] == 2048 and result["nodes"] == [0, 1]
    assert result["before"]["pages"]["total"] == {"nr": 0, "free": 0, "surplus": 0, "reserved": 0, "overcommit": 0}
    assert result["after"]["pages"]["total"]["nr"] == 5
    assert result["after"]["pages"]["nodes"] == {"node0": {"nr": 3, "free": 3, "surplus": 0},
                                                 "node1": {"nr": 2, "free": 2, "surplus": 0}}
    assert result["shortfall"] == {}
    assert kernel.writes == [(POOL_2M, "5")]
    assert tree.read(POOL_2M) == "5"


def test_same_count_again_changes_nothing(run_module, tree, kernel):
    tree.pool(2048, nr=5)
    result, failed = run_module(hugepages, {"count": 5})
    assert not failed and not result["changed"]
    assert kernel.writes == []


def test_check_mode_predicts_without_writing(run_module, tree, kernel):
    result, failed = run_module(hugepages, {"count": 4, "thp_enabled": "never", "persist": "boot_unit"}, check_mode=True)
    assert not failed and result["changed"]
    assert result["after"]["pages"]["total"]["nr"] == 4
    assert result["after"]["thp"] == {"enabled": "never"}
    assert result["persisted_changed"] == [UNIT, CONF_DIR + "/hugepages-2048kB.conf", CONF_DIR + "/thp.conf"]
    assert result["shortfall"] == {}
    assert kernel.writes == []
    assert tree.read(POOL_2M) == "0"
    assert not tree.exists("/etc")


def test_check_mode_and_real_run_agree(run_module, tree, kernel):
    args = {"size": "1G", "node_counts": {"0": 2}, "overcommit": 1, "persist": "boot_unit"}
    predicted, dummy = run_module(hugepages, args, check_mode=True, diff=True)
    done, failed = run_module(hugepages, args, diff=True)
    assert not failed
    assert predicted["changed"] and done["changed"]
    assert predicted["diff"] == done["diff"]
    assert predicted["after"]["pages"]["nodes"]["node0"] == done["after"]["pages"]["nodes"]["node0"]


def test_diff_shows_runtime_and_files(run_module, tree, kernel):
    result, dummy = run_module(hugepages, {"count": 2, "overcommit": 3, "persist": "sysctl"}, diff=True)
    runtime, sysctl = result["diff"]
    assert runtime["before"] == {"total nr_hugepages": 0, "nr_overcommit_hugepages": 0}
    assert runtime["after"] == {"total nr_hugepages": 2, "nr_overcommit_hugepages": 3}
    assert sysctl["before_header"] == SYSCTL and sysctl["before"] == ""
    assert "vm.nr_hugepages = 2\nvm.nr_overcommit_hugepages = 3\n" in sysctl["after"]


def test_node_counts_per_node(run_module, tree, kernel):
    result, failed = run_module(hugepages, {"size": "1G", "node_counts": {"0": 1, "node1": "2"}})
    assert not failed and result["changed"]
    assert result["after"]["pages"]["nodes"]["node0"]["nr"] == 1
    assert result["after"]["pages"]["nodes"]["node1"]["nr"] == 2
    assert result["after"]["pages"]["total"]["nr"] == 3
    assert [path for path, dummy in kernel.writes] == [
        "/sys/devices/system/node/node0/hugepages/hugepages-1048576kB/nr_hugepages", NODE1_1G]


def test_unknown_size_lists_offered_sizes(run_module, tree):
    result, failed = run_module(hugepages, {"size": "16M", "count": 1})
    assert failed
    assert result["msg"] == "size=16M is not offered by this kernel; available sizes: 2M, 1G"


def test_malformed_size(run_module, tree):
    result, failed = run_module(hugepages, {"size": "huge", "count": 1})
    assert failed
    assert result["msg"] == "size=huge is not a page size: use a number with K, M or G, e.g. 2M or 1G"


def test_negative_count(run_module, tree):
    result, failed = run_module(hugepages, {"count": -1})
    assert failed
    assert result["msg"] == "count must be a non-negative integer, got -1"


def test_non_integer_count(run_module, tree):
    result, failed = run_module(hugepages, {"count": "many"})
    assert failed
    assert "argument 'count' is of type" in result["msg"] and "int" in result["msg"]


def test_negative_overcommit(run_module, tree):
    result, failed = run_module(hugepages, {"overcommit": -3})
    assert failed
    assert result["msg"] == "overcommit must be a non-negative integer, got -3"


@pytest.mark.parametrize("value, shown", [(-2, "-2"), ("lots", "'lots'"), (1.5, "1.5"), (True, "True")])
def test_bad_node_count(run_module, tree, value, shown):
    result, failed = run_module(hugepages, {"node_counts": {"0": value}})
    assert failed
    assert result["msg"] == "node_counts[0] must be a non-negative integer, got %s" % shown


def test_missing_numa_node_lists_existing(run_module, tree):
    result, failed = run_module(hugepages, {"node_counts": {"3": 1}})
    assert failed
    assert result["msg"] == "node_counts: NUMA node 3 does not exist; this machine has nodes: 0, 1"


def test_node_counts_without_numa_information(run_module, tmp_path, monkeypatch):
    fake = FakeTree(tmp_path)
    fake.hugepages(nodes=())
    monkeypatch.setattr(files, "ROOT", str(tmp_path))
    result, failed = run_module(hugepages, {"node_counts": {"0": 1}})
    assert failed
    assert "NUMA node 0 does not exist; this machine has nodes: none" in result["msg"]


def test_bad_node_id(run_module, tree):
    result, failed = run_module(hugepages, {"node_counts": {"socket0": 1}})
    assert failed
    assert result["msg"] == "node_counts: 'socket0' is not a NUMA node id; use 0, 1, ... (or node0, node1, ...)"


def test_count_and_node_counts_exclusive(run_module, tree):
    result, failed = run_module(hugepages, {"count": 1, "node_counts": {"0": 1}})
    assert failed
    assert "mutually exclusive: count|node_counts" in result["msg"]


def test_read_only_sys(run_module, tree, kernel):
    kernel.errors[POOL_2M] = errno.EROFS
    result, failed = run_module(hugepages, {"count": 8})
    assert failed
    assert "remount rw or run on the host" in result["msg"]
    assert result["msg"].startswith("cannot write 8 to %s: read-only file system" % POOL_2M)


def test_permission_denied(run_module, tree, kernel):
    kernel.errors["/sys/kernel/mm/transparent_hugepage/enabled"] = errno.EACCES
    result, failed = run_module(hugepages, {"thp_enabled": "never"})
    assert failed
    assert "Permission denied; run as root (become: true)" in result["msg"]
    assert "remount rw or run on the host" in result["msg"]


def test_shortfall_fails_by_default(run_module, tree, kernel):
    kernel.limits[NODE1_1G] = 1
    result, failed = run_module(hugepages, {"size": "1G", "node_counts": {"0": 2, "1": 4}})
    assert failed
    assert result["shortfall"] == {"node1": 3}
    assert result["msg"] == (
        "the kernel allocated fewer 1G huge pages than asked (node1 asked 4, got 1): not enough free contiguous memory; "
        "free memory and re-run, reserve them at boot (persist: cmdline or boot_unit), or set on_shortfall: warn to accept fewer")
    assert result["after"]["pages"]["nodes"]["node1"]["nr"] == 1


def test_shortfall_can_warn(run_module, tree, kernel, warnings):
    kernel.limits[POOL_2M] = 6
    result, failed = run_module(hugepages, {"count": 10, "on_shortfall": "warn"})
    assert not failed and result["changed"]
    assert result["shortfall"] == {"total": 4}
    assert warnings == [
        "the kernel allocated fewer 2M huge pages than asked (total asked 10, got 6): not enough free contiguous memory; "
        "free memory and re-run, reserve them at boot (persist: cmdline or boot_unit), or set on_shortfall: warn to accept fewer"]


def test_gigantic_pages_refused_at_runtime(run_module, tree, kernel):
    kernel.limits[POOL_1G] = 0
    result, failed = run_module(hugepages, {"size": "1G", "count": 4})
    assert failed
    assert result["shortfall"] == {"total": 4}
    assert result["msg"] == (
        "the kernel refused to allocate 1G huge pages at runtime (total asked 4, got 0): gigantic pages need contiguous free memory, "
        "which a running system rarely has; reserve them at boot with persist: cmdline")
    assert not result["changed"]


def test_gigantic_pages_einval(run_module, tree, kernel):
    kernel.errors[POOL_1G] = errno.EINVAL
    result, failed = run_module(hugepages, {"size": "1G", "count": 4})
    assert failed
    assert result["msg"] == ("the kernel refused to allocate 1G huge pages at runtime (writing 4 to %s failed: EINVAL); "
                             "reserve them at boot with persist: cmdline" % POOL_1G)


def test_einval_on_small_pages_is_reported_as_is(run_module, tree, kernel):
    kernel.errors[POOL_2M] = errno.EINVAL
    result, failed = run_module(hugepages, {"count": 4})
    assert failed
    assert result["msg"] == "cannot write 4 to %s: the kernel rejected the value (Invalid argument)" % POOL_2M


def test_shrinking_below_in_use_warns_by_name(run_module, tree, kernel, warnings):
    tree.pool(2048, nr=8, free=2, node=0)
    tree.pool(2048, nr=8, free=2)
    result, failed = run_module(hugepages, {"node_counts": {"0": 3}})
    assert not failed
    assert result["shrink_below_in_use"] == ["node0"]
    assert warnings == ["shrinking node0 of 2M huge pages to 3 while 6 are in use: the kernel keeps the used pages as surplus "
                        "and frees them only when they are released"]


def test_surplus_pages_are_not_configured_pages(run_module, tree, kernel):
    tree.pool(2048, nr=6, free=0, surplus=2)
    result, failed = run_module(hugepages, {"count": 4})
    assert not failed and not result["changed"]
    assert kernel.writes == []


def test_overcommit(run_module, tree, kernel):
    result, failed = run_module(hugepages, {"overcommit": 16})
    assert not failed and result["changed"]
    assert result["after"]["pages"]["total"]["overcommit"] == 16
    assert tree.read("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_overcommit_hugepages") == "16"


def test_overcommit_not_kept(run_module, tree, kernel):
    kernel.refuse.add("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_overcommit_hugepages")
    result, failed = run_module(hugepages, {"overcommit": 16})
    assert failed
    assert result["msg"] == "overcommit: wrote 16 but the kernel reports nr_overcommit_hugepages=0"


def test_thp_settings(run_module, tree, kernel):
    args = {"thp_enabled": "never", "thp_defrag": "defer+madvise"}
    result, failed = run_module(hugepages, args)
    assert not failed and result["changed"]
    assert result["before"]["thp"] == {"enabled": "madvise", "defrag": "madvise"}
    assert result["after"]["thp"] == {"enabled": "never", "defrag": "defer+madvise"}
    assert tree.read("/sys/kernel/mm/transparent_hugepage/enabled") == "always madvise [never]"
    again, dummy = run_module(hugepages, args)
    assert not again["changed"]


def test_thp_choice_not_offered(run_module, tree):
    tree.write("/sys/kernel/mm/transparent_hugepage/defrag", "always [madvise] never")
    result, failed = run_module(hugepages, {"thp_defrag": "defer"})
    assert failed
    assert result["msg"] == ("thp_defrag=defer is not offered by this kernel; "
                             "/sys/kernel/mm/transparent_hugepage/defrag offers: always, madvise, never")


def test_thp_missing(run_module, tree):
    tree.path("/sys/kernel/mm/transparent_hugepage/enabled").unlink()
    result, failed = run_module(hugepages, {"thp_enabled": "never"})
    assert failed
    assert result["msg"] == ("thp_enabled: transparent huge pages are not available on this kernel "
                             "(/sys/kernel/mm/transparent_hugepage/enabled is missing)")


def test_thp_write_not_kept(run_module, tree, kernel):
    kernel.refuse.add("/sys/kernel/mm/transparent_hugepage/enabled")
    result, failed = run_module(hugepages, {"thp_enabled": "never"})
    assert failed
    assert result["msg"] == "thp_enabled: wrote never to /sys/kernel/mm/transparent_hugepage/enabled but the kernel reports madvise"


def test_persist_sysctl(run_module, tree, kernel):
    result, failed = run_module(hugepages, {"count": 64, "persist": "sysctl"})
    assert not failed and result["changed"]
    assert result["persisted"] == result["persisted_changed"] == [SYSCTL]
    assert tree.read(SYSCTL).splitlines()[1:] == ["vm.nr_hugepages = 64"]
    assert stat.S_IMODE(tree.path(SYSCTL).stat().st_mode) == 0o644
    again, dummy = run_module(hugepages, {"count": 64, "persist": "sysctl"})
    assert not again["changed"] and again["persisted_changed"] == []


def test_persist_sysctl_fixes_mode(run_module, tree, kernel):
    tree.write(SYSCTL, "vm.nr_hugepages = 1")
    tree.path(SYSCTL).chmod(0o600)
    run_module(hugepages, {"count": 64, "persist": "sysctl"})
    assert stat.S_IMODE(tree.path(SYSCTL).stat().st_mode) == 0o644


def test_persist_sysctl_only_default_size(run_module, tree):
    result, failed = run_module(hugepages, {"size": "1G", "count": 1, "persist": "sysctl"})
    assert failed
    assert result["msg"] == ("persist=sysctl only covers the default huge page size (2M), not 1G: "
                             "use persist: boot_unit or persist: cmdline")


def test_persist_sysctl_refuses_node_counts(run_module, tree):
    result, failed = run_module(hugepages, {"node_counts": {"0": 1}, "persist": "sysctl"})
    assert failed
    assert result["msg"] == ("persist=sysctl can't hold node_counts (vm.nr_hugepages is global): "
                             "use persist: boot_unit or persist: cmdline")


def test_persist_sysctl_refuses_thp(run_module, tree):
    result, failed = run_module(hugepages, {"thp_enabled": "never", "persist": "sysctl"})
    assert failed
    assert result["msg"] == "persist=sysctl can't hold thp_enabled or thp_defrag (they are not sysctls): use persist: boot_unit"


def test_persist_sysctl_with_nothing_to_persist(run_module, tree, kernel):
    result, failed = run_module(hugepages, {"persist": "sysctl"})
    assert not failed and not result["changed"]
    assert result["persisted"] == []


def test_persist_boot_unit(run_module, tree, kernel):
    args = {"size": "1G", "node_counts": {"1": 2}, "overcommit": 1, "thp_enabled": "never", "thp_defrag": "defer", "persist": "boot_unit"}
    result, failed = run_module(hugepages, args)
    assert not failed and result["changed"]
    conf = CONF_DIR + "/hugepages-1048576kB.conf"
    assert result["persisted"] == [UNIT, conf, CONF_DIR + "/thp.conf"]
    assert tree.read(conf).splitlines()[1:] == [
        NODE1_1G + " 2", "/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_overcommit_hugepages 1"]
    assert tree.read(CONF_DIR + "/thp.conf").splitlines()[1:] == [
        "/sys/kernel/mm/transparent_hugepage/enabled never", "/sys/kernel/mm/transparent_hugepage/defrag defer"]
    unit = tree.read(UNIT)
    assert "Type=oneshot" in unit and "WantedBy=sysinit.target" in unit
    assert "for f in /etc/dlnode/hugepages.d/*.conf" in unit and '"$$path"' in unit
    for path in result["persisted"]:
        assert stat.S_IMODE(tree.path(path).stat().st_mode) == 0o644
    again, dummy = run_module(hugepages, args)
    assert not again["changed"]


def test_apply_false_only_persists(run_module, tree, kernel):
    result, failed = run_module(hugepages, {"size": "1G", "count": 8, "apply": False, "persist": "boot_unit"})
    assert not failed and result["changed"]
    assert kernel.writes == []
    assert result["after"] == result["before"]
    assert result["shortfall"] == {}


def test_persist_cmdline(run_module, tree, kernel):
    args = {"size": "1G", "count": 32, "apply": False, "persist": "cmdline", "set_default_size": True, "thp_enabled": "madvise"}
    result, failed = run_module(hugepages, args)
    assert not failed and not result["changed"]
    assert result["cmdline_args"] == ["default_hugepagesz=1G", "hugepagesz=1G", "hugepages=32", "transparent_hugepage=madvise"]
    assert result["reboot_required"]
    tree.cmdline("BOOT_IMAGE=/vmlinuz root=/dev/vda1 default_hugepagesz=1G hugepagesz=1G hugepages=32 transparent_hugepage=madvise")
    result, dummy = run_module(hugepages, args)
    assert not result["reboot_required"]


def test_persist_cmdline_per_node(run_module, tree, kernel):
    tree.cmdline("quiet hugepagesz=1G hugepages=0:2,1:2")
    result, failed = run_module(hugepages, {"size": "1G", "node_counts": {"1": 2, "0": 2}, "apply": False, "persist": "cmdline"})
    assert not failed
    assert result["cmdline_args"] == ["hugepagesz=1G", "hugepages=0:2,1:2"]
    assert not result["reboot_required"]


def test_persist_cmdline_refuses_overcommit(run_module, tree):
    result, failed = run_module(hugepages, {"overcommit": 1, "persist": "cmdline"})
    assert failed
    assert result["msg"] == ("persist=cmdline can't hold overcommit (no kernel parameter sets it): "
                             "use persist: sysctl or persist: boot_unit")


def test_persist_cmdline_refuses_defrag(run_module, tree):
    result, failed = run_module(hugepages, {"thp_defrag": "never", "persist": "cmdline"})
    assert failed
    assert result["msg"] == "persist=cmdline can't hold thp_defrag (no kernel parameter sets it): use persist: boot_unit"


def test_conflicting_running_cmdline(run_module, tree, kernel):
    tree.cmdline("root=/dev/vda1 hugepagesz=1G hugepages=8 -- init-arg")
    result, failed = run_module(hugepages, {"size": "1G", "count": 4})
    assert failed
    assert result["msg"] == ("the running kernel command line (/proc/cmdline) has hugepages=8 for 1G pages, "
                             "which conflicts with the requested 4; remove it from the boot loader configuration, "
                             "or use persist: cmdline to replace it")
    assert kernel.writes == []


def test_default_size_hugepages_on_cmdline_conflicts(run_module, tree, kernel):
    tree.cmdline("hugepages=100")
    result, failed = run_module(hugepages, {"node_counts": {"0": 5}})
    assert failed
    assert "has hugepages=100 for 2M pages, which conflicts with the requested 0:5" in result["msg"]


def test_matching_running_cmdline_is_fine(run_module, tree, kernel):
    tree.cmdline("hugepagesz=1G hugepages=4")
    result, failed = run_module(hugepages, {"size": "1G", "count": 4})
    assert not failed and result["changed"]


def test_cmdline_persist_replaces_conflict(run_module, tree, kernel):
    tree.cmdline("hugepagesz=1G hugepages=8")
    result, failed = run_module(hugepages, {"size": "1G", "count": 4, "apply": False, "persist": "cmdline"})
    assert not failed
    assert result["reboot_required"]


def test_relative_persist_path(run_module, tree):
    result, failed = run_module(hugepages, {"count": 1, "persist": "sysctl", "sysctl_file": "hugepages.conf"})
    assert failed
    assert result["msg"] == "sysctl_file must be an absolute path, got hugepages.conf"


def test_kernel_without_hugepages(run_module, tmp_path, monkeypatch):
    monkeypatch.setattr(files, "ROOT", str(tmp_path))
    result, failed = run_module(hugepages, {"count": 1})
    assert failed
    assert result["msg"] == ("this kernel offers no huge pages: /sys/kernel/mm/hugepages is missing or empty "
                             "(CONFIG_HUGETLBFS off?)")


def test_default_size_falls_back_to_smallest(run_module, tree, kernel):
    tree.path("/proc/meminfo").unlink()
    result, failed = run_module(hugepages, {"count": 1})
    assert not failed
    assert result["size"] == "2M"


def test_h100_node(run_module, tmp_path, monkeypatch):
    fake = FakeTree(tmp_path)
    fake.h100_node()
    FakeKernel(fake).install(monkeypatch)
    monkeypatch.setattr(files, "ROOT", str(tmp_path))
    result, failed = run_module(hugepages, {"size": "512M", "count": 1})
    assert failed
    assert result["msg"] == "size=512M is not offered by this kernel; available sizes: 2M, 1G"
    result, failed = run_module(hugepages, {"size": "1G", "count": 2, "apply": False, "persist": "cmdline"})
    assert not failed
    assert result["nodes"] == [0]
    assert result["cmdline_args"] == ["hugepagesz=1G", "hugepages=2"]
    assert result["reboot_required"]
