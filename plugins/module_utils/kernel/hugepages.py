# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""Pure planning helpers for the dlnode.gpu.hugepages module.

Everything here works on a sysfs.Kernel (for reads) or on plain values, so it
can be tested against a fake /sys tree.
"""
from __future__ import annotations

import re

from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError
from ansible_collections.dlnode.gpu.plugins.module_utils.common.plans import Plan, Step
from ansible_collections.dlnode.gpu.plugins.module_utils.kernel.sysfs import parse_bracketed

GLOBAL_DIR = "/sys/kernel/mm/hugepages"
NODE_DIR = "/sys/devices/system/node"
THP_DIR = "/sys/kernel/mm/transparent_hugepage"
MEMINFO = "/proc/meminfo"
CMDLINE = "/proc/cmdline"

# Pages of 1 GiB and more are "gigantic": the buddy allocator can't provide
# them, so runtime allocation needs contiguous free memory and often fails.
GIGANTIC_KB = 1024 * 1024

THP_ENABLED = ("always", "madvise", "never")
THP_DEFRAG = ("always", "defer", "defer+madvise", "madvise", "never")

_SIZE_RE = re.compile(r"^\s*(\d+)\s*([kKmMgG]?)[bB]?\s*$")
_UNITS = {"": 1, "k": 1, "m": 1024, "g": 1024 * 1024}


class HugepagesError(DlnodeError):
    """A request that can't be met; str() is the message for the user."""


def parse_size(text):
    """Page size such as "2M", "1G", "2048kB" or "1GB" in kB."""
    match = _SIZE_RE.match(str(text))
    if not match or int(match.group(1)) == 0:
        raise HugepagesError(f"size={text} is not a page size: use a number with K, M or G, e.g. 2M or 1G")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def size_label(size_kb):
    """Shortest name of a page size, as the kernel command line spells it (2M, 1G)."""
    if size_kb % (1024 * 1024) == 0:
        return f"{size_kb // (1024 * 1024)}G"
    if size_kb % 1024 == 0:
        return f"{size_kb // 1024}M"
    return f"{size_kb}K"


def global_path(size_kb, name):
    return f"{GLOBAL_DIR}/hugepages-{size_kb}kB/{name}"


def node_path(node, size_kb, name):
    return f"{NODE_DIR}/node{node}/hugepages/hugepages-{size_kb}kB/{name}"


def available_sizes(kernel):
    """Page sizes (kB) this kernel offers, smallest first."""
    sizes = []
    for entry in kernel.list_dir(GLOBAL_DIR):
        match = re.match(r"^hugepages-(\d+)kB$", entry)
        if match:
            sizes.append(int(match.group(1)))
    return sorted(sizes)


def default_size_kb(kernel, sizes):
    """The kernel's default huge page size: Hugepagesize in /proc/meminfo."""
    for line in (kernel.read(MEMINFO) or "").splitlines():
        match = re.match(r"^Hugepagesize:\s*(\d+)\s*kB", line)
        if match:
            return int(match.group(1))
    return sizes[0] if sizes else None


def resolve_size(size, sizes, default_kb):
    """Validate the requested size against what the kernel offers; returns kB."""
    if not sizes:
        raise HugepagesError(f"this kernel offers no huge pages: {GLOBAL_DIR} is missing or empty (CONFIG_HUGETLBFS off?)")
    size_kb = default_kb if size is None else parse_size(size)
    if size_kb not in sizes:
        raise HugepagesError(f"size={size} is not offered by this kernel; available sizes: {', '.join((size_label(kb) for kb in sizes))}")
    return size_kb


def list_nodes(kernel, size_kb):
    """NUMA node ids that have a pool for this page size."""
    nodes = []
    for entry in kernel.list_dir(NODE_DIR):
        match = re.match(r"^node(\d+)$", entry)
        if match and kernel.exists(node_path(int(match.group(1)), size_kb, "nr_hugepages")):
            nodes.append(int(match.group(1)))
    return sorted(nodes)


def check_count(name, value):
    """A page count must be a non-negative integer (bools are not counts)."""
    if isinstance(value, bool):
        raise HugepagesError(f"{name} must be a non-negative integer, got {value!r}")
    if isinstance(value, str) and re.match(r"^\s*-?\d+\s*$", value):
        value = int(value)
    if not isinstance(value, int):
        raise HugepagesError(f"{name} must be a non-negative integer, got {value!r}")
    if value < 0:
        raise HugepagesError(f"{name} must be a non-negative integer, got {value}")
    return value


def normalize_node_counts(node_counts, nodes):
    """{"0": 4, "node1": "2"} -> {0: 4, 1: 2}, checked against the nodes that exist."""
    result = {}
    for key, value in node_counts.items():
        match = re.match(r"^(?:node)?(\d+)$", str(key).strip())
        if not match:
            raise HugepagesError(f"node_counts: {key!r} is not a NUMA node id; use 0, 1, ... (or node0, node1, ...)")
        node = int(match.group(1))
        if node not in nodes:
            existing = ", ".join(str(n) for n in nodes) or f"none (no NUMA information in {NODE_DIR})"
            raise HugepagesError(f"node_counts: NUMA node {node} does not exist; this machine has nodes: {existing}")
        result[node] = check_count(f"node_counts[{key}]", value)
    return result


def _persistent(entry):
    # Surplus pages (overcommit, or pages kept because they were in use when
    # the pool shrank) are not part of the configured pool size.
    return entry["nr"] - entry["surplus"]


def read_pages(kernel, size_kb, nodes):
    """Current pool counters, globally and per node."""
    total = {
        "nr": kernel.read_int(global_path(size_kb, "nr_hugepages"), 0),
        "free": kernel.read_int(global_path(size_kb, "free_hugepages"), 0),
        "surplus": kernel.read_int(global_path(size_kb, "surplus_hugepages"), 0),
        "reserved": kernel.read_int(global_path(size_kb, "resv_hugepages"), 0),
        "overcommit": kernel.read_int(global_path(size_kb, "nr_overcommit_hugepages"), 0),
    }
    per_node = {}
    for node in nodes:
        per_node[f"node{node}"] = {
            "nr": kernel.read_int(node_path(node, size_kb, "nr_hugepages"), 0),
            "free": kernel.read_int(node_path(node, size_kb, "free_hugepages"), 0),
            "surplus": kernel.read_int(node_path(node, size_kb, "surplus_hugepages"), 0),
        }
    return {"total": total, "nodes": per_node}


def desired_pools(count, node_counts):
    """Target name ("total" or "nodeN") -> requested persistent pages."""
    if count is not None:
        return {"total": count}
    return dict((f"node{node}", value) for node, value in sorted((node_counts or {}).items()))


def _entry(pages, target):
    return pages["total"] if target == "total" else pages["nodes"][target]


def _pool_path(target, size_kb, name):
    if target == "total":
        return global_path(size_kb, name)
    return node_path(int(target[len("node"):]), size_kb, name)


def plan_page_writes(pages, size_kb, desired, overcommit):
    """Steps (action: the pool, target: its counter's path) for the counters that differ from the request."""
    writes = Plan()
    for target, value in desired.items():
        current = _persistent(_entry(pages, target))
        if current != value:
            writes.add(Step(target, _pool_path(target, size_kb, "nr_hugepages"), current, value))
    if overcommit is not None and pages["total"]["overcommit"] != overcommit:
        writes.add(Step("overcommit", global_path(size_kb, "nr_overcommit_hugepages"), pages["total"]["overcommit"], overcommit))
    return writes


def shrinks_below_in_use(pages, desired):
    """[(target, requested, in_use)] where the request is below the pages in use."""
    found = []
    for target, value in desired.items():
        entry = _entry(pages, target)
        in_use = entry["nr"] - entry["free"]
        if value < in_use:
            found.append((target, value, in_use))
    return found


def predict_pages(pages, desired, overcommit):
    """What read_pages() should show after a successful run (for check mode)."""
    after = {"total": dict(pages["total"]), "nodes": dict((k, dict(v)) for k, v in pages["nodes"].items())}
    for target, value in desired.items():
        entry = _entry(after, target)
        delta = value - _persistent(entry)
        entry["nr"] += delta
        entry["free"] = max(entry["free"] + delta, 0)
        if target != "total":
            after["total"]["nr"] += delta
            after["total"]["free"] = max(after["total"]["free"] + delta, 0)
    if overcommit is not None:
        after["total"]["overcommit"] = overcommit
    return after


def shortfall(before, after, desired):
    """Target -> pages asked for but not allocated; and the targets where none were added."""
    missing = {}
    none_added = []
    for target, value in desired.items():
        got = _persistent(_entry(after, target))
        if got < value:
            missing[target] = value - got
            if got <= _persistent(_entry(before, target)):
                none_added.append(target)
    return missing, none_added


def parse_pages_value(value):
    """A hugepages= value: "4" -> 4, "0:2,1:2" -> {0: 2, 1: 2}; None if malformed."""
    value = value.strip()
    if re.match(r"^\d+$", value):
        return int(value)
    per_node = {}
    for part in value.split(","):
        match = re.match(r"^(\d+):(\d+)$", part.strip())
        if not match:
            return None
        per_node[int(match.group(1))] = int(match.group(2))
    return per_node


def parse_cmdline(text, default_kb):
    """Huge page settings on a kernel command line.

    Returns {"default_kb": kB or None, "pages": {kB: raw hugepages= value}, "thp": value or None}.
    As in the kernel, hugepages= applies to the hugepagesz= before it, or to
    the default size when none precedes it.
    """
    explicit_default = None
    pages = {}
    thp = None
    current = None
    pending_default = None
    for token in (text or "").split():
        if token == "--":
            break  # the rest goes to init, not the kernel
        key, dummy, value = token.partition("=")
        if key == "hugepagesz":
            try:
                current = parse_size(value)
            except HugepagesError:
                current = None
        elif key == "default_hugepagesz":
            try:
                explicit_default = parse_size(value)
            except HugepagesError:
                pass
        elif key == "hugepages":
            if current is None:
                pending_default = value
            else:
                pages[current] = value
        elif key == "transparent_hugepage":
            thp = value
    if pending_default is not None:
        pages.setdefault(explicit_default or default_kb, pending_default)
    return {"default_kb": explicit_default, "pages": pages, "thp": thp}


def _requested_pages_value(count, node_counts):
    if count is not None:
        return count
    if node_counts:
        return dict(node_counts)
    return None


def cmdline_conflict(running, size_kb, count, node_counts):
    """Message if the running command line reserves a different pool for this size, else None."""
    wanted = _requested_pages_value(count, node_counts)
    raw = running["pages"].get(size_kb)
    if wanted is None or raw is None or parse_pages_value(raw) == wanted:
        return None
    return (f"the running kernel command line ({CMDLINE}) has hugepages={raw} for {size_label(size_kb)} pages, which "
            f"conflicts with the requested {_format_pages_value(wanted)}; remove it from the boot loader configuration, "
            "or use persist: cmdline to replace it")


def _format_pages_value(value):
    if isinstance(value, dict):
        return ",".join(f"{node}:{pages}" for node, pages in sorted(value.items()))
    return str(value)


def cmdline_args(size_kb, count, node_counts, set_default, thp_enabled):
    """Kernel parameters that reserve the request at boot."""
    args = []
    if set_default:
        args.append(f"default_hugepagesz={size_label(size_kb)}")
    wanted = _requested_pages_value(count, node_counts)
    if wanted is not None:
        args.append(f"hugepagesz={size_label(size_kb)}")
        args.append(f"hugepages={_format_pages_value(wanted)}")
    if thp_enabled is not None:
        args.append(f"transparent_hugepage={thp_enabled}")
    return args


def cmdline_satisfied(running, size_kb, count, node_counts, set_default, thp_enabled):
    """Whether the running command line already carries what cmdline_args() asks for."""
    wanted = _requested_pages_value(count, node_counts)
    if wanted is not None and parse_pages_value(running["pages"].get(size_kb, "")) != wanted:
        return False
    if set_default and running["default_kb"] != size_kb:
        return False
    if thp_enabled is not None and running["thp"] != thp_enabled:
        return False
    return True


def sysctl_content(count, overcommit):
    lines = ["# Managed by dlnode.gpu (hugepages module): changes here are overwritten."]
    if count is not None:
        lines.append(f"vm.nr_hugepages = {count}")
    if overcommit is not None:
        lines.append(f"vm.nr_overcommit_hugepages = {overcommit}")
    return "\n".join(lines) + "\n"


def boot_config_content(settings):
    """Config for the boot unit: one "path value" line per kernel file to write, in order."""
    lines = ["# Managed by dlnode.gpu (hugepages module): written to /sys at boot by the dlnode hugepages unit."]
    lines.extend(f"{path} {value}" for path, value in settings)
    return "\n".join(lines) + "\n"


def boot_page_settings(size_kb, desired, overcommit):
    """(path, value) pairs that recreate the pool at boot."""
    settings = [(_pool_path(target, size_kb, "nr_hugepages"), value) for target, value in desired.items()]
    if overcommit is not None:
        settings.append((global_path(size_kb, "nr_overcommit_hugepages"), overcommit))
    return settings


def unit_content(config_dir):
    """A oneshot unit that replays every *.conf in config_dir early at boot."""
    # $$ is systemd's escape for a literal $ in ExecStart; only /sys paths are written.
    script = (f"for f in {config_dir}/*.conf; do [ -f \"$$f\" ] || continue; "
              "while read -r path value; do case \"$$path\" in /sys/*) "
              "echo \"$$value\" > \"$$path\" || echo \"dlnode-hugepages: cannot write $$value to $$path\" >&2 ;; esac; "
              "done < \"$$f\"; done")
    return "\n".join([
        "# Managed by dlnode.gpu (hugepages module): changes here are overwritten.",
        "[Unit]",
        "Description=Reserve huge pages and set transparent huge pages (dlnode.gpu)",
        "Documentation=https://docs.kernel.org/admin-guide/mm/hugetlbpage.html",
        "DefaultDependencies=no",
        "After=local-fs.target",
        "Before=sysinit.target shutdown.target",
        "Conflicts=shutdown.target",
        f"ConditionPathIsDirectory={config_dir}",
        "",
        "[Service]",
        "Type=oneshot",
        "RemainAfterExit=yes",
        f"ExecStart=/bin/sh -c '{script}'",
        "",
        "[Install]",
        "WantedBy=sysinit.target",
        "",
    ])


def thp_path(name):
    return f"{THP_DIR}/{name}"


def read_thp(kernel, name):
    """(current, choices) of a transparent huge page setting ("enabled" or "defrag")."""
    text = kernel.read(thp_path(name))
    if text is None:
        raise HugepagesError(f"thp_{name}: transparent huge pages are not available on this kernel ({thp_path(name)} is missing)")
    return parse_bracketed(text)
