#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
from __future__ import annotations

DOCUMENTATION = r"""
---
module: hugepages
short_description: Reserve huge pages per size and NUMA node, and set transparent huge pages
version_added: 0.1.0
description:
  - Sets the size of a huge page pool (C(nr_hugepages)), globally or per NUMA node, and its
    overcommit limit (C(nr_overcommit_hugepages)) through C(/sys), then reads the counters back,
    because the kernel accepts the write and may allocate fewer pages than asked.
  - Optionally sets transparent huge pages (C(/sys/kernel/mm/transparent_hugepage/enabled) and C(defrag)).
  - Persists the request as a sysctl.d file, as a boot-time oneshot systemd unit with a small
    configuration it replays, or reports the kernel command line parameters that reserve it at boot.
  - The module never edits the boot loader; with O(persist=cmdline) it returns the parameters in
    RV(cmdline_args) and sets RV(reboot_required) when the running kernel command line lacks them.
author: "dlnode.gpu developers (@dlnode)"
options:
  size:
    description:
      - Huge page size, such as V(2M), V(1G) or V(2048kB).
      - It must be one of the sizes this kernel offers under C(/sys/kernel/mm/hugepages).
      - Defaults to the kernel's default huge page size (C(Hugepagesize) in C(/proc/meminfo)).
    type: str
  count:
    description:
      - Number of persistent huge pages of O(size) in the pool, spread over NUMA nodes by the kernel.
      - Leave both O(count) and O(node_counts) unset to leave the pool size alone.
    type: int
  node_counts:
    description:
      - Number of persistent huge pages of O(size) per NUMA node, as a mapping of node id
        (V(0) or V(node0)) to count. Nodes not listed are left alone.
    type: dict
  overcommit:
    description:
      - Maximum number of surplus pages of O(size) the kernel may allocate on demand (C(nr_overcommit_hugepages)).
    type: int
  apply:
    description:
      - Whether to change the running kernel now. With V(false) only persistence is written.
    type: bool
    default: true
  persist:
    description:
      - How the request survives a reboot.
      - V(sysctl) writes O(sysctl_file) with C(vm.nr_hugepages) and C(vm.nr_overcommit_hugepages); it only
        covers the default page size, without per-node counts or transparent huge page settings.
      - V(boot_unit) writes the oneshot unit O(unit_file) and a configuration in O(unit_config_dir) that it
        replays early at boot; it covers every size, per-node counts and transparent huge pages. Enabling the
        unit is left to the caller (the C(dlnode.gpu) roles do it).
      - V(cmdline) returns the kernel parameters in RV(cmdline_args); the caller adds them to the boot loader.
        This is the reliable way to get 1 GiB pages, which need contiguous memory that only boot time has.
      - V(none) changes the running kernel only.
    type: str
    choices: [sysctl, boot_unit, cmdline, none]
    default: none
  set_default_size:
    description:
      - With O(persist=cmdline), also make O(size) the default huge page size (C(default_hugepagesz=)).
    type: bool
    default: false
  sysctl_file:
    description:
      - File written with O(persist=sysctl). The module owns its whole content.
    type: path
    default: /etc/sysctl.d/60-dlnode-hugepages.conf
  unit_file:
    description:
      - Unit file written with O(persist=boot_unit).
    type: path
    default: /etc/systemd/system/dlnode-hugepages.service
  unit_config_dir:
    description:
      - Directory of the configuration the boot unit replays. The module writes
        C(hugepages-<size>kB.conf) there for the pool and C(thp.conf) for transparent huge pages.
    type: path
    default: /etc/dlnode/hugepages.d
  thp_enabled:
    description:
      - Transparent huge page mode (C(/sys/kernel/mm/transparent_hugepage/enabled)).
      - V(madvise) suits most deep-learning nodes; V(never) suits latency-sensitive databases.
    type: str
    choices: [always, madvise, never]
  thp_defrag:
    description:
      - Transparent huge page defragmentation policy (C(/sys/kernel/mm/transparent_hugepage/defrag)).
    type: str
    choices: [always, defer, defer+madvise, madvise, never]
  on_shortfall:
    description:
      - What to do when the kernel allocates fewer pages than asked. V(fail) fails the task,
        V(warn) returns a warning and the numbers in RV(shortfall).
    type: str
    choices: [fail, warn]
    default: fail
attributes:
  check_mode:
    support: full
    description: Reports the writes and file changes a real run would make, without making them.
  diff_mode:
    support: full
    description: Shows the pool sizes and transparent huge page settings before and after, and the persisted files.
  platform:
    support: full
    platforms: posix
    description: Linux only; needs C(/sys/kernel/mm/hugepages) and write access to C(/sys) (root, not a read-only container).
notes:
  - Pools are compared by persistent pages (C(nr_hugepages) minus C(surplus_hugepages)), so surplus
    pages from overcommit or from a pool shrunk below its use do not count as configured pages.
  - Shrinking a pool below the pages in use is allowed; the kernel keeps the used pages as surplus
    and frees them when released. The module warns and names the pool in RV(shrink_below_in_use).
  - In check mode the pool counters in RV(after) are predicted; a real run may get fewer pages.
  - The module fails when the running kernel command line already reserves a different number of
    pages of O(size) (C(hugepages=)), unless O(persist=cmdline), which replaces it.
seealso:
  - name: HugeTLB Pages
    description: The kernel's documentation of huge page pools and their command line parameters.
    link: https://docs.kernel.org/admin-guide/mm/hugetlbpage.html
  - name: Transparent Hugepage Support
    description: The kernel's documentation of transparent huge pages.
    link: https://docs.kernel.org/admin-guide/mm/transhuge.html
"""

EXAMPLES = r"""
- name: Reserve 2048 2 MiB pages now and after reboot
  dlnode.gpu.hugepages:
    size: 2M
    count: 2048
    persist: sysctl

- name: Reserve 1 GiB pages per NUMA node at boot with a oneshot unit
  dlnode.gpu.hugepages:
    size: 1G
    node_counts:
      0: 16
      1: 16
    persist: boot_unit
    on_shortfall: warn

- name: Reserve 1 GiB pages on the kernel command line
  dlnode.gpu.hugepages:
    size: 1G
    count: 32
    apply: false
    persist: cmdline
    set_default_size: true
  register: hugepages

- name: Show what the boot loader needs
  ansible.builtin.debug:
    msg: "Add {{ hugepages.cmdline_args | join(' ') }}; reboot required: {{ hugepages.reboot_required }}"

- name: Transparent huge pages only when asked for
  dlnode.gpu.hugepages:
    thp_enabled: madvise
    thp_defrag: defer+madvise
    persist: boot_unit
"""

RETURN = r"""
size:
  description: The page size managed, as the kernel command line spells it.
  returned: success
  type: str
  sample: 1G
size_kb:
  description: The page size managed, in kB.
  returned: success
  type: int
  sample: 1048576
nodes:
  description: NUMA node ids that have a pool of this size.
  returned: success
  type: list
  elements: int
  sample: [0, 1]
before:
  description:
    - Pool counters before the run, in C(pages.total) (C(nr), C(free), C(surplus), C(reserved), C(overcommit))
      and per node in C(pages.nodes) (C(nr), C(free), C(surplus)), and the transparent huge page
      settings that were asked about in C(thp).
  returned: success
  type: dict
  sample:
    pages:
      total: {nr: 0, free: 0, surplus: 0, reserved: 0, overcommit: 0}
      nodes:
        node0: {nr: 0, free: 0, surplus: 0}
    thp: {enabled: always}
after:
  description: The same counters and settings read back after the run (predicted in check mode).
  returned: success
  type: dict
  sample:
    pages:
      total: {nr: 8, free: 8, surplus: 0, reserved: 0, overcommit: 0}
      nodes:
        node0: {nr: 8, free: 8, surplus: 0}
    thp: {enabled: madvise}
shortfall:
  description:
    - Pages asked for but not allocated, per pool (V(total) for O(count), V(nodeN) for O(node_counts)).
      Empty when the kernel allocated everything, and always empty in check mode.
  returned: success
  type: dict
  sample: {node1: 3}
shrink_below_in_use:
  description: Pools (V(total) or V(nodeN)) that were asked to shrink below the pages in use.
  returned: success
  type: list
  elements: str
  sample: [node0]
persisted:
  description: Files that hold the persistent configuration (written or already up to date).
  returned: success
  type: list
  elements: str
  sample: [/etc/systemd/system/dlnode-hugepages.service, /etc/dlnode/hugepages.d/hugepages-1048576kB.conf]
persisted_changed:
  description: The files of RV(persisted) that were (or in check mode would be) written.
  returned: success
  type: list
  elements: str
  sample: [/etc/dlnode/hugepages.d/hugepages-1048576kB.conf]
cmdline_args:
  description: Kernel command line parameters that reserve the request at boot; empty unless O(persist=cmdline).
  returned: success
  type: list
  elements: str
  sample: [default_hugepagesz=1G, hugepagesz=1G, hugepages=32]
reboot_required:
  description: True when O(persist=cmdline) and the running kernel command line (C(/proc/cmdline)) lacks RV(cmdline_args).
  returned: success
  type: bool
  sample: true
"""

import errno

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.module_utils.common.module import run_module
from ansible_collections.dlnode.gpu.plugins.module_utils.kernel import hugepages as hp
from ansible_collections.dlnode.gpu.plugins.module_utils.kernel import sysfs

ARGUMENT_SPEC = dict(
    size=dict(type="str"),
    count=dict(type="int"),
    node_counts=dict(type="dict"),
    overcommit=dict(type="int"),
    apply=dict(type="bool", default=True),
    persist=dict(type="str", choices=["sysctl", "boot_unit", "cmdline", "none"], default="none"),
    set_default_size=dict(type="bool", default=False),
    sysctl_file=dict(type="path", default="/etc/sysctl.d/60-dlnode-hugepages.conf"),
    unit_file=dict(type="path", default="/etc/systemd/system/dlnode-hugepages.service"),
    unit_config_dir=dict(type="path", default="/etc/dlnode/hugepages.d"),
    thp_enabled=dict(type="str", choices=list(hp.THP_ENABLED)),
    thp_defrag=dict(type="str", choices=list(hp.THP_DEFRAG)),
    on_shortfall=dict(type="str", choices=["fail", "warn"], default="fail"),
)


def check_persist(params, size_kb, default_kb, node_counts):
    """Refuse persistence methods that can't hold the request."""
    persist = params["persist"]
    if persist == "sysctl":
        if size_kb != default_kb:
            raise hp.HugepagesError(
                f"persist=sysctl only covers the default huge page size ({hp.size_label(default_kb)}), "
                f"not {hp.size_label(size_kb)}: use persist: boot_unit or persist: cmdline")
        if node_counts is not None:
            raise hp.HugepagesError("persist=sysctl can't hold node_counts (vm.nr_hugepages is global): use persist: boot_unit or persist: cmdline")
        if params["thp_enabled"] or params["thp_defrag"]:
            raise hp.HugepagesError("persist=sysctl can't hold thp_enabled or thp_defrag (they are not sysctls): use persist: boot_unit")
    if persist == "cmdline":
        if params["overcommit"] is not None:
            raise hp.HugepagesError("persist=cmdline can't hold overcommit (no kernel parameter sets it): use persist: sysctl or persist: boot_unit")
        if params["thp_defrag"]:
            raise hp.HugepagesError("persist=cmdline can't hold thp_defrag (no kernel parameter sets it): use persist: boot_unit")


def write_pool(kernel, path, value, size_kb):
    try:
        kernel.write(path, value)
    except sysfs.SysfsError as exc:
        # EINVAL here means this kernel can't allocate gigantic pages at runtime at all.
        if exc.errno == errno.EINVAL and size_kb >= hp.GIGANTIC_KB:
            raise hp.HugepagesError(
                f"the kernel refused to allocate {hp.size_label(size_kb)} huge pages at runtime "
                f"(writing {value} to {path} failed: EINVAL); reserve them at boot with persist: cmdline") from exc
        raise


def apply_thp(kernel, thp_wanted, thp_before):
    """Write the transparent huge page settings that differ and check what the kernel kept."""
    for name, value in thp_wanted.items():
        if thp_before[name] == value:
            continue
        current = sysfs.parse_bracketed(kernel.write_and_read_back(hp.thp_path(name), value))[0]
        if current != value:
            raise hp.HugepagesError(f"thp_{name}: wrote {value} to {hp.thp_path(name)} but the kernel reports {current}")


def settings(pages, thp, desired, overcommit):
    """The values this module controls, to decide `changed` and to show in the diff."""
    snapshot = {}
    for target in desired:
        entry = pages["total"] if target == "total" else pages["nodes"][target]
        snapshot[f"{target} nr_hugepages"] = entry["nr"] - entry["surplus"]
    if overcommit is not None:
        snapshot["nr_overcommit_hugepages"] = pages["total"]["overcommit"]
    for name, value in thp.items():
        snapshot[f"transparent_hugepage {name}"] = value
    return snapshot


def persist_files(params, size_kb, desired, count, overcommit, thp_wanted):
    """[(path, content)] of the files the chosen persistence method needs."""
    persist = params["persist"]
    files = []
    if persist == "sysctl" and (count is not None or overcommit is not None):
        files.append((params["sysctl_file"], hp.sysctl_content(count, overcommit)))
    if persist == "boot_unit":
        config_dir = params["unit_config_dir"].rstrip("/")
        files.append((params["unit_file"], hp.unit_content(config_dir)))
        pool = hp.boot_page_settings(size_kb, desired, overcommit)
        if pool:
            files.append((f"{config_dir}/hugepages-{size_kb}kB.conf", hp.boot_config_content(pool)))
        if thp_wanted:
            files.append((f"{config_dir}/thp.conf", hp.boot_config_content([(hp.thp_path(n), v) for n, v in thp_wanted.items()])))
    return files


def shortfall_message(size_kb, desired, missing, none_added):
    details = ", ".join(f"{target} asked {desired[target]}, got {desired[target] - short}" for target, short in missing.items())
    if size_kb >= hp.GIGANTIC_KB and none_added:
        return (f"the kernel refused to allocate {hp.size_label(size_kb)} huge pages at runtime ({details}): gigantic pages "
                "need contiguous free memory, which a running system rarely has; reserve them at boot with persist: cmdline")
    return (f"the kernel allocated fewer {hp.size_label(size_kb)} huge pages than asked ({details}): not enough free "
            "contiguous memory; free memory and re-run, reserve them at boot (persist: cmdline or boot_unit), or set "
            "on_shortfall: warn to accept fewer")


def run(module, result):
    params = module.params
    kernel = sysfs.Kernel()

    sizes = hp.available_sizes(kernel)
    default_kb = hp.default_size_kb(kernel, sizes)
    size_kb = hp.resolve_size(params["size"], sizes, default_kb)
    nodes = hp.list_nodes(kernel, size_kb)
    count = None if params["count"] is None else hp.check_count("count", params["count"])
    node_counts = None if params["node_counts"] is None else hp.normalize_node_counts(params["node_counts"], nodes)
    overcommit = None if params["overcommit"] is None else hp.check_count("overcommit", params["overcommit"])
    check_persist(params, size_kb, default_kb, node_counts)
    desired = hp.desired_pools(count, node_counts)
    result.update(size=hp.size_label(size_kb), size_kb=size_kb, nodes=nodes)

    running = hp.parse_cmdline(kernel.read(hp.CMDLINE, ""), default_kb)
    if params["persist"] != "cmdline":
        conflict = hp.cmdline_conflict(running, size_kb, count, node_counts)
        if conflict:
            raise hp.HugepagesError(conflict)

    thp_wanted = dict((name, params["thp_" + name]) for name in ("enabled", "defrag") if params["thp_" + name] is not None)
    thp_before = {}
    for name, value in thp_wanted.items():
        current, choices = hp.read_thp(kernel, name)
        if value not in choices:
            raise hp.HugepagesError(f"thp_{name}={value} is not offered by this kernel; {hp.thp_path(name)} offers: {', '.join(choices)}")
        thp_before[name] = current

    before = hp.read_pages(kernel, size_kb, nodes)
    result["before"] = {"pages": before, "thp": thp_before}
    for target, value, in_use in hp.shrinks_below_in_use(before, desired):
        result["shrink_below_in_use"].append(target)
        module.warn(f"shrinking {target} of {hp.size_label(size_kb)} huge pages to {value} while {in_use} are in use: "
                    "the kernel keeps the used pages as surplus and frees them only when they are released")

    if not params["apply"]:
        after, thp_after = before, dict(thp_before)
    elif module.check_mode:
        after, thp_after = hp.predict_pages(before, desired, overcommit), dict(thp_wanted)
    else:
        hp.plan_page_writes(before, size_kb, desired, overcommit).apply(
            module, lambda step: write_pool(kernel, step.target, step.after, size_kb))
        apply_thp(kernel, thp_wanted, thp_before)
        after = hp.read_pages(kernel, size_kb, nodes)
        thp_after = dict((name, hp.read_thp(kernel, name)[0]) for name in thp_wanted)
    result["after"] = {"pages": after, "thp": thp_after}
    runtime_before = settings(before, thp_before, desired, overcommit)
    runtime_after = settings(after, thp_after, desired, overcommit)
    diffs = [{"before_header": "running kernel", "after_header": "running kernel", "before": runtime_before, "after": runtime_after}]
    result["changed"] = runtime_before != runtime_after

    for path, content in persist_files(params, size_kb, desired, count, overcommit, thp_wanted):
        result["persisted"].append(path)
        persisted = files.sync(module, path, content)
        if persisted.changed:
            result["persisted_changed"].append(path)
            result["changed"] = True
            diffs.append(persisted.diff())

    if params["persist"] == "cmdline":
        result["cmdline_args"] = hp.cmdline_args(size_kb, count, node_counts, params["set_default_size"], params["thp_enabled"])
        result["reboot_required"] = not hp.cmdline_satisfied(running, size_kb, count, node_counts,
                                                             params["set_default_size"], params["thp_enabled"])
    if module._diff:
        result["diff"] = diffs

    if params["apply"] and not module.check_mode:
        if overcommit is not None and after["total"]["overcommit"] != overcommit:
            raise hp.HugepagesError(f"overcommit: wrote {overcommit} but the kernel reports "
                                    f"nr_overcommit_hugepages={after['total']['overcommit']}")
        missing, none_added = hp.shortfall(before, after, desired)
        result["shortfall"] = missing
        if missing:
            message = shortfall_message(size_kb, desired, missing, none_added)
            if params["on_shortfall"] == "fail":
                raise hp.HugepagesError(message)
            module.warn(message)


def main():
    run_module(ARGUMENT_SPEC, run, mutually_exclusive=[("count", "node_counts")],
               result=dict(shortfall={}, shrink_below_in_use=[], persisted=[], persisted_changed=[],
                           cmdline_args=[], reboot_required=False))


if __name__ == "__main__":
    main()
