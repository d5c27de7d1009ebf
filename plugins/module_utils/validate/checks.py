# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""The checks of the validate gate: pure functions from what was read on the node to a verdict.

Each check returns one result: {name, check, status, value, expected, reason}. ``check`` is the
kind of check (``pcie_link``), ``name`` the instance (``gpu0.pcie_link``); status is one of pass,
fail, warn or skip. The node's state comes from validate.collect (NVML through gpu_info, sysfs,
/proc); tests build it from the real H100 dump and degrade it.
"""
from __future__ import annotations

from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import gpu_info
from ansible_collections.dlnode.gpu.plugins.module_utils.validate import thresholds

PASS, FAIL, WARN, SKIP = "pass", "fail", "warn", "skip"
STATUSES = (FAIL, WARN, PASS, SKIP)
UNSUPPORTED = gpu_info.UNSUPPORTED

GPU_CHECKS = ("gpu_count", "gpu_model", "driver", "persistence_mode", "pcie_link", "ecc", "memory_health",
              "clock_events", "mig", "nvlink", "fabric_manager", "topology")
NODE_CHECKS = ("hugepages", "io_schedulers", "sysctl", "memlock")
PERF_CHECKS = ("benchmark",) + thresholds.METRICS + ("dcgm_diag",)
ALL_CHECKS = GPU_CHECKS + NODE_CHECKS + PERF_CHECKS

# Clock-event reasons that mean the hardware is in trouble (heat, power delivery); the others
# (a software power cap under load, application clocks) are policy and only warn.
HARDWARE_CLOCK_EVENTS = ("hw_slowdown", "sw_thermal_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown")


def result(check, status, value=None, expected=None, reason="", gpu=None):
    return {
        "name": check if gpu is None else f"gpu{gpu}.{check}",
        "check": check,
        "status": status,
        "value": value,
        "expected": expected,
        "reason": reason,
    }


def model_of(gpu):
    """The thresholds.MODELS entry of a GPU of the node state (its ``model`` key), or None."""
    return thresholds.BY_KEY.get(gpu.get("model"))


def _known(value):
    return value not in (None, UNSUPPORTED)


# -- the GPUs as a whole ---------------------------------------------------------


def gpu_count(fact, expected):
    """NVML sees the expected number of GPUs, and as many as the PCI bus has."""
    found = fact["count"] if fact["nvml_available"] else 0
    on_bus = len([device for device in fact["pci_devices"] if device["kind"] == "gpu"])
    if not fact["present"]:
        if expected:
            return result("gpu_count", FAIL, 0, expected, f"expected {expected} GPUs, found no NVIDIA GPU on the PCI bus")
        return result("gpu_count", SKIP, 0, expected, "no NVIDIA GPU on the PCI bus")
    if not fact["nvml_available"]:
        return result("gpu_count", FAIL, on_bus, expected,
                      f"{on_bus} GPUs on the PCI bus but NVML cannot be used: {fact['reason']}")
    if expected is not None and found != expected:
        return result("gpu_count", FAIL, found, expected, f"expected {expected} GPUs, NVML sees {found}")
    if on_bus > found:
        return result("gpu_count", FAIL, found, on_bus,
                      f"{on_bus} GPUs on the PCI bus but NVML sees {found}: a GPU fell off the bus or failed to initialise")
    return result("gpu_count", PASS, found, expected if expected is not None else on_bus, f"{found} GPUs")


def gpu_model(gpus, expected):
    """Every GPU is the declared model (a MODELS key, a label or the NVML name), and a known one."""
    if not gpus:
        return result("gpu_model", SKIP, None, expected, "no GPU seen by NVML")
    names = sorted({gpu["name"] for gpu in gpus})
    models = [model_of(gpu) for gpu in gpus]
    value = names[0] if len(names) == 1 else names
    if len(names) > 1:
        return result("gpu_model", FAIL, value, expected, f"mixed GPU models on one node: {', '.join(names)}")
    model = models[0]
    if expected:
        wanted = thresholds.BY_KEY.get(expected)
        matches = (model is not None and wanted is not None and model["key"] == wanted["key"]) or expected in names
        if model is not None and expected == model["label"]:
            matches = True
        if not matches:
            return result("gpu_model", FAIL, value, expected, f"expected {expected}, found {value}")
    if model is None:
        return result("gpu_model", WARN, value, expected,
                      f"{value} is not in the threshold table: performance checks cannot be judged")
    return result("gpu_model", PASS, value, expected or model["key"], f"{model['label']} ({model['basis']} figures)")


def driver(versions, expected):
    """The NVML library, the loaded kernel module and the installed module are one version (and the declared one)."""
    library, loaded, installed = versions.get("library"), versions.get("loaded_module"), versions.get("installed_module")
    value = {"library": library, "loaded_module": loaded, "installed_module": installed}
    if not loaded and not library:
        return result("driver", SKIP, value, expected, "no NVIDIA driver loaded")
    if library and loaded and library != loaded:
        return result("driver", FAIL, value, expected,
                      f"driver/library version mismatch: NVML library {library}, loaded kernel module {loaded}; "
                      "reboot (or reload the nvidia modules) after a driver update")
    if installed and loaded and installed != loaded:
        return result("driver", FAIL, value, expected,
                      f"the loaded kernel module is {loaded} but {installed} is installed; reboot to load it")
    running = loaded or library
    if expected and running != str(expected) and not running.startswith(f"{expected}."):
        return result("driver", FAIL, value, expected, f"driver {running} is not the declared {expected}")
    return result("driver", PASS, value, expected, f"driver {running}")


def fabric_manager(fact, running):
    if not fact["nvswitch_present"]:
        return result("fabric_manager", SKIP, running, None, "no NVSwitch on the PCI bus")
    if not running:
        return result("fabric_manager", FAIL, running, True,
                      f"{fact['nvswitch_count']} NVSwitches but nv-fabricmanager is not running: "
                      "CUDA cannot use the GPUs until it is")
    return result("fabric_manager", PASS, running, True, "nv-fabricmanager running")


def topology(topo, reason=None):
    if topo is None:
        return result("topology", SKIP, None, None, reason or "no topology read")
    return result("topology", PASS, topo, None, "recorded (nvidia-smi topo -m)")


# -- per GPU ---------------------------------------------------------------------


def persistence_mode(gpu):
    value = gpu.get("persistence_mode")
    if not _known(value):
        return result("persistence_mode", SKIP, value, True, "not reported", gpu["index"])
    if not value:
        return result("persistence_mode", FAIL, False, True,
                      "persistence mode is off: every CUDA start re-initialises the GPU", gpu["index"])
    return result("persistence_mode", PASS, True, True, "on", gpu["index"])


def _idle(gpu):
    reasons = gpu.get("clock_event_reasons")
    return isinstance(reasons, dict) and "gpu_idle" in reasons["active"]


def pcie_link(gpu, model):
    """Generation and width at the model's maximum; an idle GPU is judged by the link's maximum generation."""
    pcie = gpu.get("pcie") or {}
    keys = ("generation_current", "generation_max", "width_current", "width_max")
    if not all(isinstance(pcie.get(key), int) for key in keys):
        return result("pcie_link", SKIP, pcie, None, "PCIe link not reported", gpu["index"])
    spec = model["pcie"] if model else {"generation": pcie["generation_max"], "width": pcie["width_max"]}
    expected = f"Gen{spec['generation']} x{spec['width']}"
    idle = _idle(gpu)
    generation = pcie["generation_max"] if idle else pcie["generation_current"]
    value = f"Gen{generation} x{pcie['width_current']}"
    index = gpu["index"]
    if pcie["generation_max"] < spec["generation"]:
        return result("pcie_link", FAIL, f"Gen{pcie['generation_max']} x{pcie['width_current']}", expected,
                      f"link trains at most Gen{pcie['generation_max']}, the model needs Gen{spec['generation']}: "
                      "slot, riser or BIOS setting", index)
    if pcie["width_max"] < spec["width"] or pcie["width_current"] < spec["width"]:
        width = min(pcie["width_max"], pcie["width_current"])
        if idle and pcie["width_max"] >= spec["width"]:
            return result("pcie_link", WARN, value, expected,
                          f"idle link runs x{width}: check again under load", index)
        return result("pcie_link", FAIL, f"Gen{generation} x{width}", expected,
                      f"link width x{width}, expected x{spec['width']}: reseat the GPU or check the riser", index)
    if not idle and generation < spec["generation"]:
        return result("pcie_link", FAIL, value, expected,
                      f"busy link runs Gen{generation}, expected Gen{spec['generation']}", index)
    note = " (idle: the link's maximum generation)" if idle else ""
    return result("pcie_link", PASS, value, expected, f"{value}{note}", index)


def ecc(gpu):
    mode = gpu.get("ecc_mode")
    errors = gpu.get("ecc_volatile_uncorrected")
    index = gpu["index"]
    if not isinstance(mode, dict):
        return result("ecc", SKIP, mode, True, "this GPU has no ECC", index)
    value = {"enabled": mode["current"], "volatile_uncorrected": errors}
    if not mode["current"]:
        return result("ecc", FAIL, value, True, "ECC is off", index)
    if isinstance(errors, int) and errors > 0:
        return result("ecc", FAIL, value, {"enabled": True, "volatile_uncorrected": 0},
                      f"{errors} volatile uncorrected ECC errors since the driver loaded: drain the node and "
                      "reset the GPU", index)
    if not mode["pending"]:
        return result("ecc", WARN, value, True, "ECC is on but will be off after the next reboot", index)
    return result("ecc", PASS, value, True, "ECC on, no volatile uncorrected errors", index)


def memory_health(gpu):
    rows, pages = gpu.get("remapped_rows"), gpu.get("retired_pages")
    index = gpu["index"]
    expected = "no pending remap, no remap failure, no retired pages pending"
    if isinstance(rows, dict):
        if rows["failure"]:
            return result("memory_health", FAIL, rows, expected,
                          "row remapping failed: the GPU has run out of spare rows; replace it", index)
        if rows["pending"]:
            return result("memory_health", FAIL, rows, expected,
                          "a row remap is pending: reset the GPU (or reboot) to apply it", index)
    if isinstance(pages, dict) and pages["pending"]:
        return result("memory_health", FAIL, pages, expected,
                      "retired pages are pending: reset the GPU (or reboot) to retire them", index)
    if not isinstance(rows, dict) and not isinstance(pages, dict):
        return result("memory_health", SKIP, rows, expected, "neither row remapping nor page retirement reported", index)
    value = rows if isinstance(rows, dict) else pages
    return result("memory_health", PASS, value, expected, "no pending row remap or page retirement", index)


def clock_events(gpu):
    reasons = gpu.get("clock_event_reasons")
    index = gpu["index"]
    if not isinstance(reasons, dict):
        return result("clock_events", SKIP, reasons, ["gpu_idle"], "clock-event reasons not reported", index)
    others = [name for name in reasons["active"] if name != "gpu_idle"]
    if not others:
        return result("clock_events", PASS, reasons["active"], ["gpu_idle"], "no clock-event reason other than idle",
                      index)
    hardware = [name for name in others if name in HARDWARE_CLOCK_EVENTS]
    if hardware:
        return result("clock_events", FAIL, reasons["active"], ["gpu_idle"],
                      f"clocks held down by {', '.join(hardware)}: check cooling and power delivery", index)
    return result("clock_events", WARN, reasons["active"], ["gpu_idle"],
                  f"clocks held down by {', '.join(others)}", index)


def mig(gpu, expected):
    mode = gpu.get("mig_mode")
    index = gpu["index"]
    if not isinstance(mode, dict):
        if expected:
            return result("mig", FAIL, mode, expected, "MIG declared but this GPU has no MIG", index)
        return result("mig", SKIP, mode, expected, "this GPU has no MIG", index)
    if expected is None:
        return result("mig", PASS, mode["current"], None, f"MIG {'on' if mode['current'] else 'off'} (not declared)", index)
    if mode["current"] != expected:
        return result("mig", FAIL, mode["current"], expected,
                      f"MIG is {'on' if mode['current'] else 'off'}, declared {'on' if expected else 'off'}", index)
    if mode["pending"] != mode["current"]:
        return result("mig", WARN, mode["current"], expected, "a MIG change is pending a GPU reset", index)
    return result("mig", PASS, mode["current"], expected, f"MIG {'on' if expected else 'off'} as declared", index)


def nvlink(gpu, model):
    links = gpu.get("nvlink")
    index = gpu["index"]
    if model is not None and not model["nvlink"]:
        return result("nvlink", SKIP, links, None, f"{model['label']} has no NVLink", index)
    if not isinstance(links, dict) or not links.get("total"):
        if model is None:
            return result("nvlink", SKIP, links, None, "no NVLink reported", index)
        return result("nvlink", SKIP, links, "all links up",
                      f"NVML reports no NVLink on this {model['label']} (a passthrough VM or a board without bridges)",
                      index)
    if links["up"] < links["total"]:
        return result("nvlink", FAIL, links, {"up": links["total"], "total": links["total"]},
                      f"{links['total'] - links['up']} of {links['total']} NVLinks down", index)
    return result("nvlink", PASS, links, {"up": links["total"], "total": links["total"]},
                  f"{links['up']} NVLinks up", index)


# -- the node --------------------------------------------------------------------


def hugepages(expected, actual):
    """expected {size_kb, count}; actual: the pool's nr_hugepages (None: no such pool)."""
    if not expected or not expected.get("count"):
        return result("hugepages", SKIP, actual, expected, "no hugepages declared")
    count = expected["count"]
    if actual is None:
        return result("hugepages", FAIL, None, count, f"this kernel has no {expected['size_kb']} kB hugepage pool")
    if actual < count:
        return result("hugepages", FAIL, actual, count,
                      f"{actual} of {count} {expected['size_kb']} kB hugepages allocated (memory fragmented?)")
    return result("hugepages", PASS, actual, count, f"{actual} {expected['size_kb']} kB hugepages")


def _declared(check, expected, actual, what, describe):
    """One result over a set of declared values: fail listing each one that differs."""
    if not expected:
        return result(check, SKIP, actual, expected, f"no {what} declared")
    wrong = [describe(key, actual.get(key), want) for key, want in expected.items() if actual.get(key) != want]
    if wrong:
        return result(check, FAIL, actual, expected, f"{what} differ: {', '.join(wrong)}")
    return result(check, PASS, actual, expected, f"{len(expected)} {what} as declared")


def io_schedulers(expected, actual):
    """expected {device: scheduler}; actual {device: current scheduler, None when the device is missing}."""
    return _declared("io_schedulers", expected, actual, "schedulers",
                     lambda device, current, want: f"{device} {current or 'missing'} (want {want})")


def sysctl(expected, actual):
    """expected {key: value}; actual {key: running value, None when the kernel has no such key}; both normalised."""
    return _declared("sysctl", expected, actual, "sysctl values",
                     lambda key, current, want: f"{key} = {current if current is not None else 'missing'} (want {want})")


def _limit_value(text, unit_bytes):
    """A limit as KiB, or 'unlimited'. unit_bytes: systemd values are bytes, limits.conf values KiB."""
    text = str(text).strip().lower()
    if text in ("unlimited", "infinity", "-1"):
        return "unlimited"
    try:
        number = int(text)
    except ValueError:
        return text
    return number // 1024 if unit_bytes else number


def memlock(expected, logins, services):
    """expected: KiB or unlimited; logins {soft, hard} from limits.d; services: systemd's DefaultLimitMEMLOCK."""
    if expected in (None, ""):
        return result("memlock", SKIP, None, expected, "no memlock declared")
    want = _limit_value(expected, False)
    value = {
        "logins": {kind: _limit_value(limit, False) if limit is not None else None for kind, limit in (logins or {}).items()},
        "services": _limit_value(services, True) if services is not None else None,
    }
    wrong = []
    for kind in ("soft", "hard"):
        if value["logins"].get(kind) != want:
            wrong.append(f"logins {kind} {value['logins'].get(kind) or 'not set'}")
    if value["services"] != want:
        wrong.append(f"services {value['services'] or 'not set'}")
    if wrong:
        return result("memlock", FAIL, value, want, f"memlock not {want}: {', '.join(wrong)}")
    return result("memlock", PASS, value, want, f"memlock {want} for logins and services")


# -- performance -----------------------------------------------------------------


def performance(gpu, model, measured, fractions=None):
    """One result per metric measured on this GPU, against the model's threshold."""
    found = []
    index = gpu["index"]
    for metric in thresholds.METRICS[:-1]:
        if metric not in measured:
            continue
        found.append(figure(metric, measured[metric], model, fractions, index))
    return found


def figure(metric, value, model, fractions=None, gpu=None):
    if value is None:
        return result(metric, FAIL, None, None, "not measured (the benchmark failed)", gpu)
    value = round(value, 1)
    if model is None:
        return result(metric, WARN, value, None, "no threshold for this GPU model", gpu)
    limit = thresholds.threshold(model, metric, fractions)
    fraction = (fractions or thresholds.FRACTIONS)[metric]
    basis = f"{round(fraction * 100)} % of {model['achievable'][metric]} {model['basis']} on {model['label']}"
    if value < limit:
        return result(metric, FAIL, value, limit,
                      f"{thresholds.METRIC_LABELS[metric]} {value} below {limit} ({basis})", gpu)
    return result(metric, PASS, value, limit, f"{value} >= {limit} ({basis})", gpu)


def dcgm_diag(outcome):
    """outcome: None (dcgmi not installed) or {rc, summary}."""
    if outcome is None:
        return result("dcgm_diag", SKIP, None, "pass", "DCGM (dcgmi) is not installed")
    if outcome.get("rc") != 0:
        return result("dcgm_diag", FAIL, outcome.get("summary"), "pass",
                      f"dcgmi diag -r 1 failed (rc {outcome.get('rc')}): {outcome.get('summary')}")
    return result("dcgm_diag", PASS, outcome.get("summary"), "pass", "dcgmi diag -r 1 passed")


# -- the verdict -----------------------------------------------------------------


def gpu_checks(state, expect):
    """Every GPU check of the node state; expect: {gpu_count, gpu_model, driver_version, mig}."""
    fact = state["gpu"]
    gpus = fact["gpus"] if fact["nvml_available"] else []
    found = [gpu_count(fact, expect.get("gpu_count"))]
    if not fact["present"]:
        reason = "no NVIDIA GPU on the PCI bus"
        found += [result(name, SKIP, None, None, reason) for name in GPU_CHECKS if name != "gpu_count"]
        return found
    found.append(gpu_model(gpus, expect.get("gpu_model")))
    found.append(driver(state["driver"], expect.get("driver_version")))
    for gpu in gpus:
        model = model_of(gpu)
        found += [
            persistence_mode(gpu),
            pcie_link(gpu, model),
            ecc(gpu),
            memory_health(gpu),
            clock_events(gpu),
            mig(gpu, expect.get("mig")),
            nvlink(gpu, model),
        ]
    found.append(fabric_manager(fact, state.get("fabric_manager_running")))
    found.append(topology(state.get("topology"), state.get("topology_reason")))
    return found


def summary(results, required):
    """Counts per status, and the failed checks that are required (by kind or by full name)."""
    counts = {status: 0 for status in STATUSES}
    for item in results:
        counts[item["status"]] += 1
    failed = [item["name"] for item in results if item["status"] == FAIL]
    failed_required = [item["name"] for item in results
                       if item["status"] == FAIL and (item["check"] in required or item["name"] in required)]
    return {
        "counts": counts,
        "failed": failed,
        "failed_required": failed_required,
        "passed": not failed_required,
    }
