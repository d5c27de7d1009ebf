"""module_utils.hugepages: pure parsing and planning."""
from __future__ import annotations

import pytest

from ansible_collections.dlnode.gpu.plugins.module_utils.kernel import hugepages as hp
from ansible_collections.dlnode.gpu.plugins.module_utils.kernel import sysfs
from ansible_collections.dlnode.gpu.tests.unit.fake_sysfs import FakeTree

G1 = 1048576


@pytest.mark.parametrize("text, size_kb", [
    ("2M", 2048), ("2m", 2048), ("2MB", 2048), ("1G", G1), ("1GB", G1), ("2048kB", 2048), ("2048K", 2048),
    ("2048", 2048), (" 1 G ", G1), ("64K", 64),
])
def test_parse_size(text, size_kb):
    assert hp.parse_size(text) == size_kb


@pytest.mark.parametrize("text", ["", "G", "0M", "1T", "1.5G", "-2M"])
def test_parse_size_rejects(text):
    with pytest.raises(hp.HugepagesError, match="is not a page size"):
        hp.parse_size(text)


@pytest.mark.parametrize("size_kb, label", [(2048, "2M"), (G1, "1G"), (16 * G1, "16G"), (64, "64K"), (524288, "512M")])
def test_size_label(size_kb, label):
    assert hp.size_label(size_kb) == label


def test_discovery(tmp_path):
    tree = FakeTree(tmp_path)
    tree.hugepages(sizes_kb=(G1, 2048), nodes=(0, 2), default_kb=G1)
    tree.write("/sys/kernel/mm/hugepages/README", "not a pool")
    tree.write("/sys/devices/system/node/node3/cpulist", "")  # memoryless node: no pools
    kernel = sysfs.Kernel(str(tmp_path))
    sizes = hp.available_sizes(kernel)
    assert sizes == [2048, G1]
    assert hp.default_size_kb(kernel, sizes) == G1
    assert hp.list_nodes(kernel, 2048) == [0, 2]
    assert hp.resolve_size(None, sizes, G1) == G1


def test_check_count():
    assert hp.check_count("count", "12") == 12
    assert hp.check_count("count", 0) == 0
    with pytest.raises(hp.HugepagesError, match="count must be a non-negative integer, got '-'"):
        hp.check_count("count", "-")
    with pytest.raises(hp.HugepagesError, match="got -4"):
        hp.check_count("count", "-4")


def test_normalize_node_counts():
    assert hp.normalize_node_counts({"0": 1, "node2": "3", 1: 0}, [0, 1, 2]) == {0: 1, 2: 3, 1: 0}


def pages(total_nr=0, total_free=0, nodes=None):
    return {"total": {"nr": total_nr, "free": total_free, "surplus": 0, "reserved": 0, "overcommit": 0},
            "nodes": dict(("node%d" % n, {"nr": nr, "free": free, "surplus": 0}) for n, (nr, free) in (nodes or {}).items())}


def test_plan_and_predict():
    before = pages(4, 4, {0: (4, 4), 1: (0, 0)})
    desired = hp.desired_pools(None, {1: 2, 0: 4})
    assert desired == {"node0": 4, "node1": 2}
    assert [(s.target, s.after, s.action) for s in hp.plan_page_writes(before, 2048, desired, 3)] == [
        ("/sys/devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages", 2, "node1"),
        ("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_overcommit_hugepages", 3, "overcommit")]
    after = hp.predict_pages(before, desired, 3)
    assert after["total"]["nr"] == 6 and after["total"]["overcommit"] == 3
    assert after["nodes"]["node1"] == {"nr": 2, "free": 2, "surplus": 0}
    assert before["nodes"]["node1"]["nr"] == 0


def test_shortfall_and_none_added():
    before = pages(nodes={0: (1, 1), 1: (0, 0)})
    after = pages(nodes={0: (3, 3), 1: (0, 0)})
    assert hp.shortfall(before, after, {"node0": 4, "node1": 2}) == ({"node0": 1, "node1": 2}, ["node1"])
    assert hp.shortfall(before, after, {"node0": 3}) == ({}, [])


def test_shrinks_below_in_use():
    assert hp.shrinks_below_in_use(pages(10, 2), {"total": 5}) == [("total", 5, 8)]
    assert hp.shrinks_below_in_use(pages(10, 2), {"total": 8}) == []


@pytest.mark.parametrize("text, expected", [
    ("", {"default_kb": None, "pages": {}, "thp": None}),
    ("hugepages=16", {"default_kb": None, "pages": {2048: "16"}, "thp": None}),
    ("hugepages=16 default_hugepagesz=1G", {"default_kb": G1, "pages": {G1: "16"}, "thp": None}),
    ("hugepagesz=1G hugepages=4 hugepagesz=2M hugepages=0:512,1:512 transparent_hugepage=never",
     {"default_kb": None, "pages": {G1: "4", 2048: "0:512,1:512"}, "thp": "never"}),
    ("hugepagesz=bogus hugepages=3 default_hugepagesz=bogus", {"default_kb": None, "pages": {2048: "3"}, "thp": None}),
    ("quiet -- hugepages=5", {"default_kb": None, "pages": {}, "thp": None}),
])
def test_parse_cmdline(text, expected):
    assert hp.parse_cmdline(text, 2048) == expected


@pytest.mark.parametrize("value, parsed", [("4", 4), ("0:2,1:3", {0: 2, 1: 3}), ("0:2,x", None), ("", None)])
def test_parse_pages_value(value, parsed):
    assert hp.parse_pages_value(value) == parsed


def test_cmdline_args_and_satisfied():
    running = hp.parse_cmdline("default_hugepagesz=1G hugepagesz=1G hugepages=0:2,1:2", 2048)
    assert hp.cmdline_args(G1, None, {0: 2, 1: 2}, True, None) == ["default_hugepagesz=1G", "hugepagesz=1G", "hugepages=0:2,1:2"]
    assert hp.cmdline_satisfied(running, G1, None, {0: 2, 1: 2}, True, None)
    assert not hp.cmdline_satisfied(running, G1, 4, None, False, None)
    assert not hp.cmdline_satisfied(running, 2048, None, None, True, None)
    assert not hp.cmdline_satisfied(running, G1, None, None, False, "never")
    assert hp.cmdline_args(2048, None, None, False, None) == []
    assert hp.cmdline_conflict(running, G1, None, None) is None
    assert hp.cmdline_conflict(running, 2048, 4, None) is None
    assert "has hugepages=0:2,1:2 for 1G pages, which conflicts with the requested 4;" in hp.cmdline_conflict(running, G1, 4, None)


def test_file_contents():
    assert hp.sysctl_content(None, 2).splitlines()[1:] == ["vm.nr_overcommit_hugepages = 2"]
    assert hp.boot_config_content([("/sys/a", 1)]).splitlines()[1:] == ["/sys/a 1"]
    unit = hp.unit_content("/etc/x.d")
    assert "ConditionPathIsDirectory=/etc/x.d" in unit
    # Every shell $ must be doubled for systemd, and no % specifier may appear.
    exec_line = [line for line in unit.splitlines() if line.startswith("ExecStart=")][0]
    assert "$" not in exec_line.replace("$$", "") and "%" not in exec_line
