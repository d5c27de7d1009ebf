"""Build fake /sys and /proc trees under a temporary directory for module tests.

The layout follows the real kernel: per-size pools under /sys/kernel/mm/hugepages,
per-node pools under /sys/devices/system/node, disks under /sys/devices/... with
/sys/block and /sys/class/block symlinks, partitions as subdirectories of their disk.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path

from ansible_collections.dlnode.gpu.plugins.module_utils.kernel import sysfs

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "node" / "h100-ubuntu2404-vm"

SCHEDULERS_NONE = "[none] mq-deadline kyber bfq"
SCHEDULERS_DEADLINE = "none [mq-deadline] kyber bfq"
THP_ENABLED = "always [madvise] never"
THP_DEFRAG = "always defer defer+madvise [madvise] never"


def node_section(title):
    """Lines of one "## title" section of the H100 node probe (tests/fixtures/.../node.txt)."""
    lines = []
    inside = False
    for line in (FIXTURES / "node.txt").read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            inside = line[3:].strip() == title
        elif inside and line.strip():
            lines.append(line)
    return lines


class FakeTree:
    """A fake root; paths passed in are host paths such as /sys/block/sda."""

    def __init__(self, root):
        self.root = Path(root)

    def path(self, path):
        return self.root / path.lstrip("/")

    def write(self, path, text):
        target = self.path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("%s\n" % text, encoding="utf-8")

    def read(self, path):
        return self.path(path).read_text(encoding="utf-8").strip()

    def exists(self, path):
        return self.path(path).exists()

    def link(self, path, target):
        """Relative symlink at path pointing to the host path target, as sysfs has them."""
        link = self.path(path)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(self.path(target), link.parent))

    # --- huge pages -------------------------------------------------------

    def hugepages(self, sizes_kb=(2048, 1048576), nodes=(0,), default_kb=2048):
        """Empty pools of each size, globally and on each node, plus /proc/meminfo."""
        for size_kb in sizes_kb:
            self.pool(size_kb)
            for node in nodes:
                self.write("/sys/devices/system/node/node%d/cpulist" % node, "0-15")
                self.pool(size_kb, node=node)
        self.write("/sys/devices/system/node/online", ",".join(str(n) for n in nodes))
        self.write("/proc/meminfo", "MemTotal:       263966152 kB\nHugePages_Total:       0\nHugepagesize:       %d kB" % default_kb)
        self.cmdline("console=ttyS0 quiet")

    def pool(self, size_kb, nr=0, free=None, surplus=0, reserved=0, overcommit=0, node=None):
        free = nr if free is None else free
        if node is None:
            base = "/sys/kernel/mm/hugepages/hugepages-%dkB" % size_kb
            self.write(base + "/resv_hugepages", reserved)
            self.write(base + "/nr_overcommit_hugepages", overcommit)
            self.write(base + "/nr_hugepages_mempolicy", nr)
        else:
            base = "/sys/devices/system/node/node%d/hugepages/hugepages-%dkB" % (node, size_kb)
        self.write(base + "/nr_hugepages", nr)
        self.write(base + "/free_hugepages", free)
        self.write(base + "/surplus_hugepages", surplus)

    def thp(self, enabled=THP_ENABLED, defrag=THP_DEFRAG):
        self.write("/sys/kernel/mm/transparent_hugepage/enabled", enabled)
        self.write("/sys/kernel/mm/transparent_hugepage/defrag", defrag)

    def cmdline(self, text):
        self.write("/proc/cmdline", text)

    # --- block devices ----------------------------------------------------

    def disk(self, name, parent="/sys/devices/virtual/block", scheduler=SCHEDULERS_NONE, rotational=0,
             nr_requests=256, read_ahead_kb=128, rq_affinity=1, nomerges=0, partitions=()):
        """A whole disk under parent (a /sys/devices path); scheduler=None leaves no scheduler file."""
        device = "%s/%s" % (parent, name)
        queue = device + "/queue"
        if scheduler is not None:
            self.write(queue + "/scheduler", scheduler)
        self.write(queue + "/rotational", rotational)
        self.write(queue + "/nr_requests", nr_requests)
        self.write(queue + "/read_ahead_kb", read_ahead_kb)
        self.write(queue + "/rq_affinity", rq_affinity)
        self.write(queue + "/nomerges", nomerges)
        self.link("/sys/block/" + name, device)
        self.link("/sys/class/block/" + name, device)
        for number, part in enumerate(partitions, start=1):
            self.write("%s/%s/partition" % (device, part), number)
            self.link("/sys/class/block/" + part, "%s/%s" % (device, part))
        return device

    def h100_node(self):
        """The H100 Ubuntu 24.04 VM of tests/fixtures: its page sizes, command line and disks."""
        sizes = [int(line.strip()[len("hugepages-"):-len("kB")]) for line in node_section("hugepage sizes")]
        self.hugepages(sizes_kb=sizes, nodes=(0,), default_kb=2048)
        self.cmdline(node_section("/proc/cmdline")[0])
        self.thp()
        for number, line in enumerate(node_section("block devices")[1:], start=1):
            fields = line.split()
            name, rotational = fields[0], int(fields[3])
            if name.startswith("zram"):
                self.disk(name, scheduler=None, rotational=rotational)
            else:
                # virtio-blk disks sit under their virtio device on the PCI bus.
                self.disk(name, parent="/sys/devices/pci0000:00/0000:00:0%d.0/virtio%d/block" % (number, number),
                          scheduler=SCHEDULERS_DEADLINE, rotational=rotational)


class FakeKernel:
    """Stands in for the kernel behind sysfs.Kernel.write on a FakeTree.

    Like the real kernel it keeps brackets in choice files (scheduler, THP) and
    rejects unknown choices with EINVAL, and keeps nr_hugepages, free_hugepages
    and the node/global pools consistent. Tests tune it:
    limits {path: most pages the kernel finds}, errors {path: errno raised},
    refuse {paths whose write succeeds but changes nothing}.
    """

    def __init__(self, tree):
        self.tree = tree
        self.limits = {}
        self.errors = {}
        self.refuse = set()
        self.writes = []

    def install(self, monkeypatch):
        fake = self

        def write(kernel, path, value):
            fake.write(kernel, path, value)

        monkeypatch.setattr(sysfs.Kernel, "write", write)
        return self

    def write(self, kernel, path, value):
        self.writes.append((path, str(value)))
        if path in self.errors:
            code = self.errors[path]
            raise sysfs.translate_os_error(OSError(code, os.strerror(code)), path, "write %s to" % value)
        if path in self.refuse:
            return
        current = sysfs.read_text(kernel.root, path)
        if current is not None and "[" in current:
            self._choose(kernel, path, current, str(value))
        elif path.endswith("/nr_hugepages"):
            self._resize(path, min(int(value), self.limits.get(path, int(value))))
        else:
            sysfs.write_text(kernel.root, path, value)

    def _choose(self, kernel, path, current, value):
        choices = sysfs.parse_bracketed(current)[1]
        if value not in choices:
            raise sysfs.translate_os_error(OSError(errno.EINVAL, os.strerror(errno.EINVAL)), path, "write %s to" % value)
        sysfs.write_text(kernel.root, path, " ".join("[%s]" % c if c == value else c for c in choices))

    def _resize(self, path, nr):
        base = path.rsplit("/", 1)[0]
        delta = nr - int(self.tree.read(path))
        self._add(base, delta)
        size_dir = base.rsplit("/", 1)[1]
        if path.startswith("/sys/devices/system/node/"):
            self._add("/sys/kernel/mm/hugepages/" + size_dir, delta)
            return
        nodes = sorted(p.name for p in self.tree.path("/sys/devices/system/node").glob("node*")
                       if (p / "hugepages" / size_dir).is_dir())
        # The kernel interleaves a global resize over the nodes; hand out pages round-robin.
        for index, node in enumerate(nodes):
            share = abs(delta) // len(nodes) + (1 if index < abs(delta) % len(nodes) else 0)
            self._add("/sys/devices/system/node/%s/hugepages/%s" % (node, size_dir), share if delta >= 0 else -share)

    def _add(self, base, delta):
        for name in ("nr_hugepages", "free_hugepages"):
            path = "%s/%s" % (base, name)
            self.tree.write(path, max(int(self.tree.read(path)) + delta, 0))
