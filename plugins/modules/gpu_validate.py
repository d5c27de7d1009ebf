#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
from __future__ import annotations

DOCUMENTATION = r"""
---
module: gpu_validate
short_description: Run the node acceptance gate, GPU health, node settings and performance, and write its JSON report
version_added: 0.1.0
description:
  - Runs every check of the validate gate and returns one result per check, each with its status
    (V(pass), V(fail), V(warn) or V(skip)), the measured value, the expected value and a one-line reason.
  - GPU health through NVML (nvidia-ml-py, as M(dlnode.gpu.gpu_facts) reads it) and sysfs, GPU count and model, driver
    version and the loaded kernel module against the installed one, persistence mode, PCIe link generation and width
    (an idle GPU by the link's maximum generation, since idle links downtrain), ECC with no volatile uncorrected
    errors, no pending row remap, remap failure or retired pages pending, no clock-event reason other than idle
    (thermal and power-brake reasons fail, software caps warn), MIG as declared, NVLink links up where the model has
    them, nv-fabricmanager running where NVSwitches exist, and C(nvidia-smi topo -m) recorded as data.
  - Node settings of the other roles, hugepages allocated, I/O schedulers, sysctl values and memlock for logins
    (limits.d) and services (systemd's C(DefaultLimitMEMLOCK)).
  - With O(python), the performance checks, dense bf16 and TF32 matmul throughput, device memory copy bandwidth,
    pinned host-to-device and device-to-host bandwidth per GPU, and an NCCL all-reduce across all GPUs when there are
    several, each against the model's threshold (a fraction of its measured-achievable figure). Where C(dcgmi) is
    installed, C(dcgmi diag -r 1) is one more check.
  - On a node without an NVIDIA GPU the GPU checks skip with a reason and the node checks still run.
  - Writes the report to O(report_path) only when its content changed. The report holds the measured figures, so a
    run with performance checks usually rewrites it; without them a re-run changes nothing.
  - Never changes a GPU setting. The module does not fail when a check fails; RV(summary.failed_required) lists the
    failed checks named in O(required), for the caller to act on.
options:
  node_name:
    description: The node's name in the report (the role passes C(inventory_hostname)); the host name when unset.
    type: str
  gpu_count:
    description: How many GPUs NVML must see. Unset, any number, as long as NVML sees every GPU on the PCI bus.
    type: int
  gpu_model:
    description:
      - The model every GPU must be, as a key of the threshold table (V(h100_sxm), V(h100_pcie), V(h100_nvl),
        V(h200_sxm), V(a100_sxm_80gb), V(a100_sxm_40gb), V(a100_pcie_80gb), V(a100_pcie_40gb), V(l40s), V(l4),
        V(rtx_4090)), its label or the NVML product name. Unset, any model.
    type: str
  driver_version:
    description: The driver version the node must run, whole (V(580.159.04)) or its leading part (V(580)). Unset, any.
    type: str
  mig:
    description: Whether MIG must be on (true) or off (false) on every GPU. Unset, either.
    type: bool
  hugepages_size:
    description: The hugepage size of O(hugepages_count), such as V(2M) or V(1G).
    type: str
    default: 2M
  hugepages_count:
    description: How many hugepages of O(hugepages_size) must be allocated; 0 skips the check.
    type: int
    default: 0
  io_schedulers:
    description: Block devices and the scheduler each must use, for example C(nvme0n1) V(none).
    type: dict
    default: {}
  sysctl:
    description: sysctl keys and the values they must have (lists are joined with spaces).
    type: dict
    default: {}
  memlock:
    description: The memlock limit logins and services must have, in KiB or V(unlimited); unset skips the check.
    type: str
  python:
    description:
      - Absolute path of a Python with torch (a framework environment's interpreter) for the performance checks.
      - Unset or empty, the performance checks skip with that reason.
    type: str
  performance_timeout:
    description: Seconds the benchmark may take before it is stopped and its checks fail.
    type: int
    default: 120
  dcgm:
    description: Run C(dcgmi diag -r 1) where DCGM is installed and O(python) is set.
    type: bool
    default: true
  threshold_fractions:
    description:
      - Fractions of the measured-achievable figure that replace the defaults, by metric (V(bf16_tflops),
        V(tf32_tflops), V(memcpy_gbps), V(h2d_gbps), V(d2h_gbps), V(allreduce_busbw_gbps)); each between 0 and 1.
    type: dict
    default: {}
  required:
    description:
      - The checks whose failure fails the node, by kind (V(ecc), V(pcie_link)) or by name (V(gpu0.ecc)).
      - Kinds are V(gpu_count), V(gpu_model), V(driver), V(persistence_mode), V(pcie_link), V(ecc), V(memory_health),
        V(clock_events), V(mig), V(nvlink), V(fabric_manager), V(topology), V(hugepages), V(io_schedulers), V(sysctl),
        V(memlock), V(benchmark), V(bf16_tflops), V(tf32_tflops), V(memcpy_gbps), V(h2d_gbps), V(d2h_gbps),
        V(allreduce_busbw_gbps) and V(dcgm_diag).
    type: list
    elements: str
    default: []
  report_path:
    description: Where the JSON report is written on the node.
    type: path
    default: /var/lib/dlnode/validate/report.json
requirements:
  - nvidia-ml-py for the GPU checks (without it the GPUs on the PCI bus fail the gpu_count check with the reason)
  - torch in O(python) for the performance checks
attributes:
  check_mode:
    support: full
    description: Runs every check, as a run does (they only read), and reports whether the report would change without
      writing it.
  diff_mode:
    support: full
    description: Shows the report before and after.
  platform:
    support: full
    platforms: posix
    description: Linux.
seealso:
  - module: dlnode.gpu.gpu_facts
author: "dlnode.gpu developers (@dlnode)"
"""

EXAMPLES = r"""
- name: Run the acceptance gate on an 8-GPU H100 node
  dlnode.gpu.gpu_validate:
    node_name: "{{ inventory_hostname }}"
    gpu_count: 8
    gpu_model: h100_sxm
    driver_version: "580"
    mig: false
    python: /opt/dlnode/venvs/torch/bin/python
    required: [gpu_count, gpu_model, driver, ecc, memory_health, pcie_link, bf16_tflops]
  register: gate

- name: Stop on a bad node
  ansible.builtin.assert:
    that: gate.summary.passed
    fail_msg: "failed: {{ gate.summary.failed_required | join(', ') }}"
"""

RETURN = r"""
checks:
  description: One result per check, in the order they ran.
  returned: always
  type: list
  elements: dict
  sample:
    - {name: gpu0.pcie_link, check: pcie_link, status: pass, value: Gen5 x16, expected: Gen5 x16,
       reason: "Gen5 x16 (idle: the link's maximum generation)"}
summary:
  description: Counts per status, the failed checks, the failed required ones, and whether the node passed.
  returned: always
  type: dict
  contains:
    counts:
      description: How many checks have each status.
      type: dict
      returned: always
      sample: {fail: 0, warn: 0, pass: 14, skip: 9}
    failed:
      description: The names of the failed checks.
      type: list
      elements: str
      returned: always
      sample: []
    failed_required:
      description: The names of the failed checks that O(required) names.
      type: list
      elements: str
      returned: always
      sample: []
    passed:
      description: Whether no required check failed.
      type: bool
      returned: always
      sample: true
report:
  description: The report as written to O(report_path) (node, gpus, checks, summary, benchmark).
  returned: always
  type: dict
  sample: {format: 1, node: gpu01, passed: true}
report_path:
  description: Where the report is.
  returned: always
  type: str
  sample: /var/lib/dlnode/validate/report.json
"""

import json
import socket

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.module_utils.common.commands import Commands
from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError
from ansible_collections.dlnode.gpu.plugins.module_utils.common.module import run_module
from ansible_collections.dlnode.gpu.plugins.module_utils.kernel import hugepages
from ansible_collections.dlnode.gpu.plugins.module_utils.kernel import io_scheduler
from ansible_collections.dlnode.gpu.plugins.module_utils.kernel import sysctl
from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import nvml
from ansible_collections.dlnode.gpu.plugins.module_utils.validate import checks
from ansible_collections.dlnode.gpu.plugins.module_utils.validate import collect
from ansible_collections.dlnode.gpu.plugins.module_utils.validate import perf
from ansible_collections.dlnode.gpu.plugins.module_utils.validate import thresholds

# The NVML boundary: tests give a fake built from the real H100 dump.
BACKEND_FACTORY = nvml.NvmlBackend
REPORT_FORMAT = 1
DCGM_TIMEOUT = 120

ARGUMENT_SPEC = {
    "node_name": {"type": "str"},
    "gpu_count": {"type": "int"},
    "gpu_model": {"type": "str"},
    "driver_version": {"type": "str"},
    "mig": {"type": "bool"},
    "hugepages_size": {"type": "str", "default": "2M"},
    "hugepages_count": {"type": "int", "default": 0},
    "io_schedulers": {"type": "dict", "default": {}},
    "sysctl": {"type": "dict", "default": {}},
    "memlock": {"type": "str"},
    "python": {"type": "str"},
    "performance_timeout": {"type": "int", "default": 120},
    "dcgm": {"type": "bool", "default": True},
    "threshold_fractions": {"type": "dict", "default": {}},
    "required": {"type": "list", "elements": "str", "default": []},
    "report_path": {"type": "path", "default": "/var/lib/dlnode/validate/report.json"},
}


def _model_names():
    return sorted(thresholds.BY_KEY)


def validate_params(params):
    """The options checked and normalised; DlnodeError naming the option otherwise."""
    if params["gpu_count"] is not None and params["gpu_count"] < 0:
        raise DlnodeError(f"gpu_count must be 0 or more, got {params['gpu_count']}")
    model = params["gpu_model"]
    labels = {entry["label"] for entry in thresholds.MODELS}
    if model and model not in thresholds.BY_KEY and model not in labels and not model.startswith("NVIDIA "):
        raise DlnodeError(f"gpu_model: {model!r} is not a known model; use one of {', '.join(_model_names())}, "
                          "a label of the threshold table or the NVML product name (NVIDIA ...)")
    if params["hugepages_count"] < 0:
        raise DlnodeError(f"hugepages_count must be 0 or more, got {params['hugepages_count']}")
    try:
        size_kb = hugepages.parse_size(params["hugepages_size"])
    except hugepages.HugepagesError:
        raise DlnodeError(f"hugepages_size: {params['hugepages_size']!r} is not a page size such as 2M or 1G") from None
    for device, scheduler in params["io_schedulers"].items():
        if scheduler not in io_scheduler.SCHEDULERS:
            raise DlnodeError(f"io_schedulers.{device}: {scheduler!r} is not a scheduler; "
                              f"use one of {', '.join(io_scheduler.SCHEDULERS)}")
    try:
        wanted = sysctl.wanted_settings(params["sysctl"])
    except sysctl.SysctlError as err:
        raise DlnodeError("sysctl" + str(err)[len("settings"):]) from None
    memlock = params["memlock"]
    if memlock not in (None, "") and memlock != "unlimited" and not (memlock.isdigit() and int(memlock) > 0):
        raise DlnodeError(f"memlock must be a positive number of KiB or unlimited, got {memlock!r}")
    python = params["python"] or ""
    if python and not python.startswith("/"):
        raise DlnodeError(f"python must be an absolute path to a Python with torch, or empty, got {python!r}")
    if params["performance_timeout"] <= 0:
        raise DlnodeError(f"performance_timeout must be a positive number of seconds, got {params['performance_timeout']}")
    fractions = dict(thresholds.FRACTIONS)
    for metric, value in params["threshold_fractions"].items():
        if metric not in thresholds.FRACTIONS:
            raise DlnodeError(f"threshold_fractions: {metric!r} is not a metric; use {', '.join(thresholds.METRICS)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
            raise DlnodeError(f"threshold_fractions.{metric} must be a number above 0 and at most 1, got {value!r}")
        fractions[metric] = value
    for name in params["required"]:
        kind = name.split(".", 1)[1] if name.startswith("gpu") and "." in name else name
        if kind not in checks.ALL_CHECKS:
            raise DlnodeError(f"required: {name!r} is not a check; use one of {', '.join(checks.ALL_CHECKS)} "
                              "(or gpuN.<check> for one GPU)")
    return {"size_kb": size_kb, "sysctl": wanted, "python": python, "fractions": fractions}


def _installed_module(commands):
    if commands.path("modinfo") is None:
        return None
    rc, out, _err = commands.result("modinfo", "-F", "version", "nvidia")
    if rc != 0:
        return None
    return out.strip() or None


def _topology(commands, fact):
    if not fact["nvml_available"]:
        return None, "NVML unavailable"
    if commands.path("nvidia-smi") is None:
        return None, "nvidia-smi is not installed"
    rc, out, err = commands.result("nvidia-smi", "topo", "-m")
    if rc != 0:
        return None, f"nvidia-smi topo -m failed (rc {rc}): {(err or out).strip()}"
    return collect.parse_topology(out), None


def gpu_state(commands):
    fact = collect.gpus(BACKEND_FACTORY)
    state = {"gpu": fact, "fabric_manager_running": None, "topology": None, "topology_reason": None}
    state["driver"] = collect.driver_versions(fact, _installed_module(commands) if fact["present"] else None)
    if fact["nvswitch_present"]:
        state["fabric_manager_running"] = collect.process_running(collect.FABRIC_MANAGER)
    if fact["present"]:
        state["topology"], state["topology_reason"] = _topology(commands, fact)
    return state


def node_checks(params, wanted):
    schedulers = params["io_schedulers"]
    return [
        checks.hugepages({"size_kb": wanted["size_kb"], "count": params["hugepages_count"]},
                         collect.hugepages_count(wanted["size_kb"]) if params["hugepages_count"] else None),
        checks.io_schedulers(schedulers, collect.schedulers(sorted(schedulers))),
        checks.sysctl(wanted["sysctl"], collect.sysctl_values(sorted(wanted["sysctl"]))),
        checks.memlock(params["memlock"] or None, collect.login_memlock(), collect.service_memlock()),
    ]


def run_benchmark(commands, python, timeout):
    """(figures, reason): the script's JSON, or None and why not."""
    rc, out, err = commands.result("timeout", str(timeout), python, "-c", perf.SCRIPT)
    figures = perf.parse(out)
    if rc == 124:
        return None, f"the benchmark took longer than performance_timeout ({timeout} s)"
    if figures is None:
        return None, f"{python} -c <benchmark> failed (rc {rc}): {(err or out).strip()[-300:]}"
    if figures.get("error"):
        return None, figures["error"]
    return figures, None


def performance_checks(commands, state, wanted, params):
    fact = state["gpu"]
    gpus = fact["gpus"] if fact["nvml_available"] else []
    if not gpus:
        return [checks.result("benchmark", checks.SKIP, None, None, "no GPU seen by NVML")], None
    if not wanted["python"]:
        return [checks.result("benchmark", checks.SKIP, None, None,
                              "no framework environment (python unset): performance checks skipped")], None
    figures, reason = run_benchmark(commands, wanted["python"], params["performance_timeout"])
    if figures is None:
        return [checks.result("benchmark", checks.FAIL, None, "torch benchmark ran", reason)], None
    errors = figures.get("errors") or []
    found = [checks.result("benchmark", checks.FAIL if errors else checks.PASS, figures.get("torch_version"),
                           "torch benchmark ran", "; ".join(errors) or f"torch {figures.get('torch_version')}")]
    measured = {item.get("index"): item for item in figures.get("gpus", [])}
    for gpu in gpus:
        found += checks.performance(gpu, checks.model_of(gpu), measured.get(gpu["index"], {}), wanted["fractions"])
    if len(gpus) > 1:
        found.append(checks.figure("allreduce_busbw_gbps", figures.get("allreduce_busbw_gbps"),
                                   checks.model_of(gpus[0]), wanted["fractions"]))
    if params["dcgm"]:
        found.append(checks.dcgm_diag(_dcgm(commands)))
    return found, figures


def _dcgm(commands):
    if commands.path("dcgmi") is None:
        return None
    rc, out, err = commands.result("timeout", str(DCGM_TIMEOUT), "dcgmi", "diag", "-r", "1")
    return {"rc": rc, "summary": perf.dcgm_summary(out or err)}


def build_report(params, state, results, summary, figures):
    fact = state["gpu"]
    return {
        "format": REPORT_FORMAT,
        "node": params["node_name"] or socket.gethostname(),
        "passed": summary["passed"],
        "summary": summary,
        "driver_version": fact["driver_version"],
        "gpus": [{key: gpu.get(key) for key in ("index", "name", "uuid", "pci_bus_id", "model")}
                 for gpu in (fact["gpus"] if fact["nvml_available"] else [])],
        "checks": results,
        "benchmark": figures,
    }


def run(module, result):
    params = module.params
    wanted = validate_params(params)
    commands = Commands(module, {"timeout": "coreutils", "modinfo": "kmod", "nvidia-smi": "the NVIDIA driver"})
    state = gpu_state(commands)
    expect = {"gpu_count": params["gpu_count"], "gpu_model": params["gpu_model"],
              "driver_version": params["driver_version"], "mig": params["mig"]}
    results = checks.gpu_checks(state, expect) + node_checks(params, wanted)
    found, figures = performance_checks(commands, state, wanted, params)
    results += found
    summary = checks.summary(results, params["required"])
    report = build_report(params, state, results, summary, figures)
    content = json.dumps(report, indent=2, sort_keys=True) + "\n"
    change = files.plan(params["report_path"], content)
    if change.changed and not module.check_mode:
        files.write(module, change)
    result.update(changed=change.changed, checks=results, summary=summary, report=report,
                  report_path=params["report_path"])
    if module._diff and change.changed:
        result["diff"] = change.diff()


def main():
    run_module(ARGUMENT_SPEC, run)


if __name__ == "__main__":
    main()
