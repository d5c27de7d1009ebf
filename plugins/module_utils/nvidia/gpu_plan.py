# Copyright: contributors to dlnode.gpu
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plan, apply and report the nvidia_gpu settings.

Planning only reads (so check mode can use it unchanged): it compares
what each GPU reports with what was asked for, validates the request
against what the GPU supports and returns a Step per setting, holding
the write to run when the value differs. NVML cannot read locked clocks
back, so for those the "before" value comes from a state file written by
earlier runs in the same boot.
"""
from __future__ import annotations

import math

from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError
from ansible_collections.dlnode.gpu.plugins.module_utils.common.plans import step_to
from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import gpu_info
from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import nvml
from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import pci

UNKNOWN = "unknown"
RESET = "reset"

COMPUTE_MODE_CODES = {"default": 0, "prohibited": 2, "exclusive_process": 3}

APPLICATIONS_CLOCKS_DEPRECATION = (
    "applications_clocks uses NVML calls that are deprecated in NVML 13 and will be removed "
    "in CUDA 14; prefer gpu_locked_clocks and memory_locked_clocks"
)


class InvalidValue(DlnodeError):
    """A requested value is malformed or outside what the GPU supports."""


class SelectionError(DlnodeError):
    """The gpus parameter names a GPU that does not exist."""


# -- parameters ------------------------------------------------------------


def parse_power_limit(value):
    """Watts as a float, or 'default'."""
    text = value.strip().lower() if isinstance(value, str) else None
    if text == "default":
        return "default"
    number = None
    if text is not None:
        try:
            number = float(text[:-1] if text.endswith("w") else text)
        except ValueError:
            number = None
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    if number is None or not math.isfinite(number) or number <= 0:
        raise InvalidValue(
            f"power_limit: expected a positive number of watts (such as 300) or 'default', got {value!r}"
        )
    return number


def parse_locked_clocks(name, value):
    """{'min': MHz, 'max': MHz} or RESET."""
    low, high = value.get("min"), value.get("max")
    if value.get("reset"):
        if low is not None or high is not None:
            raise InvalidValue(f"{name}: set either reset=true or min and max, not both")
        return RESET
    if low is None or high is None:
        raise InvalidValue(f"{name}: set both min and max (in MHz), or reset=true")
    if low <= 0 or high <= 0:
        raise InvalidValue(f"{name}: min and max must be positive MHz values, got min={low} max={high}")
    if low > high:
        raise InvalidValue(f"{name}: min ({low} MHz) must not be greater than max ({high} MHz)")
    return {"min": low, "max": high}


def parse_applications_clocks(value):
    """{'preset': 'max'|'default'} or {'graphics': MHz, 'memory': MHz}."""
    preset, graphics, memory = value.get("preset"), value.get("graphics"), value.get("memory")
    if preset:
        if graphics is not None or memory is not None:
            raise InvalidValue(
                "applications_clocks: set either preset (max or default) or graphics and memory, not both"
            )
        return {"preset": preset}
    if graphics is None or memory is None:
        raise InvalidValue("applications_clocks: set preset (max or default), or both graphics and memory (in MHz)")
    if graphics <= 0 or memory <= 0:
        raise InvalidValue(
            f"applications_clocks: graphics and memory must be positive MHz values, got graphics={graphics} memory={memory}"
        )
    return {"graphics": graphics, "memory": memory}


def parse_settings(params):
    """The requested settings, normalised; settings left unset are absent.

    Raises InvalidValue naming every bad parameter at once.
    """
    settings = {}
    errors = []
    for setting in SETTINGS:
        if params.get(setting.name) is None:
            continue
        try:
            settings[setting.name] = setting.parse(params[setting.name])
        except InvalidValue as err:
            errors.append(str(err))
    if errors:
        raise InvalidValue("; ".join(errors))
    return settings


def parse_gpus(values):
    """Selectors from the gpus parameter: ('all',), ('index', n), ('uuid', s) or ('pci', bus id)."""
    if not values:
        raise InvalidValue("gpus: name at least one GPU, or 'all'")
    selectors = []
    for value in values:
        text = str(value).strip() if not isinstance(value, bool) else ""
        if text.lower() == "all":
            selectors.append(("all",))
        elif text.isdigit():
            selectors.append(("index", int(text)))
        elif text.upper().startswith("GPU-"):
            selectors.append(("uuid", text))
        elif pci.normalize_bus_id(text):
            selectors.append(("pci", pci.normalize_bus_id(text)))
        else:
            raise InvalidValue(
                f"gpus: {value!r} is not 'all', a GPU index (0), a UUID (GPU-...) or a PCI bus id (0000:00:06.0)"
            )
    return selectors


# -- GPU selection -----------------------------------------------------------


class Gpu:
    """One GPU as NVML enumerates it."""

    def __init__(self, index, handle, uuid, pci_bus_id, name):
        self.index = index
        self.handle = handle
        self.uuid = uuid
        self.pci_bus_id = pci_bus_id
        self.name = name

    @property
    def label(self):
        return f"{self.index} ({self.uuid})"


def list_gpus(backend):
    gpus = []
    for index in range(backend.device_count()):
        handle = backend.handle(index)
        gpus.append(
            Gpu(
                index,
                handle,
                backend.uuid(handle),
                pci.normalize_bus_id(backend.pci_bus_id(handle)),
                backend.name(handle),
            )
        )
    return gpus


def select_gpus(gpus, selectors):
    """The GPUs the selectors name, each once, in index order."""
    chosen = {}
    for selector in selectors:
        if selector[0] == "all":
            matches = gpus
        elif selector[0] == "index":
            matches = [gpu for gpu in gpus if gpu.index == selector[1]]
            if not matches:
                have = f"GPUs 0-{len(gpus) - 1}" if gpus else "no GPUs"
                raise SelectionError(f"gpus: there is no GPU with index {selector[1]} (this node has {have})")
        elif selector[0] == "uuid":
            matches = [gpu for gpu in gpus if gpu.uuid.lower() == selector[1].lower()]
            if not matches:
                raise SelectionError(f"gpus: there is no GPU with UUID {selector[1]}")
        else:
            matches = [gpu for gpu in gpus if gpu.pci_bus_id == selector[1]]
            if not matches:
                raise SelectionError(f"gpus: there is no GPU at PCI bus id {selector[1]}")
        for gpu in matches:
            chosen[gpu.index] = gpu
    return [chosen[index] for index in sorted(chosen)]


# -- steps -------------------------------------------------------------------


def _step(setting, before, after, function, *args):
    """The step of one setting: a change only when the GPU's value differs from the wanted one.

    ``data["active"]`` holds the value in effect now for settings that stay pending until a
    reboot or GPU reset (ECC, MIG); ``before`` and ``after`` are then the pending value.
    """
    return step_to(setting, setting, before, after, function, *args, active=None)


def _read_applications_clocks(backend, handle):
    return {
        "graphics": backend.applications_clock(handle, nvml.CLOCK_GRAPHICS),
        "memory": backend.applications_clock(handle, nvml.CLOCK_MEM),
    }


def _read_compute_mode(backend, handle):
    code = backend.compute_mode(handle)
    return gpu_info.COMPUTE_MODES.get(code, f"unknown ({code})")


def _supported_range(values):
    return (min(values), max(values)) if values else None


def _graphics_clock_range(backend, handle):
    """(lowest, highest) supported graphics clock, or None if the GPU cannot list them."""
    try:
        clocks = set()
        for memory in backend.supported_memory_clocks(handle):
            clocks.update(backend.supported_graphics_clocks(handle, memory))
    except (nvml.NotSupported, nvml.FunctionMissing):
        return None
    return _supported_range(clocks)


def _memory_clock_range(backend, handle):
    try:
        return _supported_range(backend.supported_memory_clocks(handle))
    except (nvml.NotSupported, nvml.FunctionMissing):
        return None


def _check_clock_range(setting, wanted, supported, kind):
    if supported is None:
        # The GPU cannot list its clocks; NVML itself checks the range on write.
        return
    low, high = supported
    for bound in ("min", "max"):
        if not low <= wanted[bound] <= high:
            raise InvalidValue(
                f"{setting}: {bound} {wanted[bound]} MHz is outside the {kind} clock range "
                f"this GPU supports: {low}-{high} MHz"
            )


def _stateful_step(setting, wanted, recorded, set_function, reset_function, handle):
    before = recorded.get(setting, UNKNOWN)
    if wanted == RESET:
        return _step(setting, before, RESET, reset_function, handle)
    return _step(setting, before, wanted, set_function, handle, wanted["min"], wanted["max"])


def plan_persistence_mode(backend, handle, wanted, _recorded):
    before = backend.persistence_mode(handle)
    return _step("persistence_mode", before, wanted, backend.set_persistence_mode, handle, wanted)


def plan_compute_mode(backend, handle, wanted, _recorded):
    before = _read_compute_mode(backend, handle)
    return _step("compute_mode", before, wanted, backend.set_compute_mode, handle, COMPUTE_MODE_CODES[wanted])


def plan_power_limit(backend, handle, wanted, _recorded):
    low, high = backend.power_limit_constraints(handle)
    if wanted == "default":
        target = backend.power_default_limit(handle)
    else:
        target = int(round(wanted * 1000))
        if not low <= target <= high:
            raise InvalidValue(
                f"power_limit: {wanted:g} W is outside the range this GPU allows: "
                f"{gpu_info.watts(low)}-{gpu_info.watts(high)} W (or use 'default')"
            )
    before = gpu_info.watts(backend.power_limit(handle))
    return _step("power_limit", before, gpu_info.watts(target), backend.set_power_limit, handle, target)


def plan_applications_clocks(backend, handle, wanted, _recorded):
    before = _read_applications_clocks(backend, handle)
    preset = wanted.get("preset")
    if preset == "default":
        target = {
            "graphics": backend.default_applications_clock(handle, nvml.CLOCK_GRAPHICS),
            "memory": backend.default_applications_clock(handle, nvml.CLOCK_MEM),
        }
        return _step("applications_clocks", before, target, backend.reset_applications_clocks, handle)
    memory_clocks = backend.supported_memory_clocks(handle)
    if preset == "max":
        memory = max(memory_clocks)
        graphics = max(backend.supported_graphics_clocks(handle, memory))
    else:
        memory, graphics = wanted["memory"], wanted["graphics"]
        if memory not in memory_clocks:
            raise InvalidValue(
                f"applications_clocks: memory {memory} MHz is not supported by this GPU; "
                f"supported memory clocks: {', '.join(str(clock) for clock in memory_clocks)} MHz"
            )
        graphics_clocks = backend.supported_graphics_clocks(handle, memory)
        if graphics not in graphics_clocks:
            low, high = _supported_range(graphics_clocks) or (0, 0)
            raise InvalidValue(
                f"applications_clocks: graphics {graphics} MHz is not supported with memory {memory} MHz; "
                f"supported graphics clocks: {low}-{high} MHz, in the steps that "
                "gpu_facts supported_clocks lists"
            )
    target = {"graphics": graphics, "memory": memory}
    return _step("applications_clocks", before, target, backend.set_applications_clocks, handle, memory, graphics)


def plan_gpu_locked_clocks(backend, handle, wanted, recorded):
    if wanted != RESET:
        _check_clock_range("gpu_locked_clocks", wanted, _graphics_clock_range(backend, handle), "graphics")
    return _stateful_step(
        "gpu_locked_clocks", wanted, recorded, backend.set_gpu_locked_clocks, backend.reset_gpu_locked_clocks, handle
    )


def plan_memory_locked_clocks(backend, handle, wanted, recorded):
    if wanted != RESET:
        _check_clock_range("memory_locked_clocks", wanted, _memory_clock_range(backend, handle), "memory")
    return _stateful_step(
        "memory_locked_clocks",
        wanted,
        recorded,
        backend.set_memory_locked_clocks,
        backend.reset_memory_locked_clocks,
        handle,
    )


def plan_ecc_mode(backend, handle, wanted, _recorded):
    current, pending = backend.ecc_mode(handle)
    step = _step("ecc_mode", pending, wanted, backend.set_ecc_mode, handle, wanted)
    step.data["active"] = current
    return step


def plan_mig_mode(backend, handle, wanted, _recorded):
    current, pending = backend.mig_mode(handle)
    step = _step("mig_mode", pending, wanted, backend.set_mig_mode, handle, wanted)
    step.data["active"] = current
    return step


def _as_given(value):
    return value


class Setting:
    """Everything about one GPU setting, in one place.

    ``parse`` checks the option's value; ``plan`` reads the GPU and returns the setting's step;
    ``read`` reads it back after a write as (value, active), or is None when NVML cannot read it:
    the value then lives in the state file (``stateful``). ``pending_until`` names what makes a
    pending value take effect.
    """

    def __init__(self, name, plan, parse=_as_given, read=None, pending_until=None):
        self.name = name
        self.plan = plan
        self.parse = parse
        self.read = read
        self.stateful = read is None
        self.pending_until = pending_until


# Apply order: persistence first so that the driver keeps later settings while no client holds
# the GPU; the pending (ECC, MIG) modes last.
SETTINGS = (
    Setting("persistence_mode", plan_persistence_mode,
            read=lambda backend, handle: (backend.persistence_mode(handle), None)),
    Setting("compute_mode", plan_compute_mode,
            read=lambda backend, handle: (_read_compute_mode(backend, handle), None)),
    Setting("power_limit", plan_power_limit, parse=parse_power_limit,
            read=lambda backend, handle: (gpu_info.watts(backend.power_limit(handle)), None)),
    Setting("applications_clocks", plan_applications_clocks, parse=parse_applications_clocks,
            read=lambda backend, handle: (_read_applications_clocks(backend, handle), None)),
    Setting("gpu_locked_clocks", plan_gpu_locked_clocks,
            parse=lambda value: parse_locked_clocks("gpu_locked_clocks", value)),
    Setting("memory_locked_clocks", plan_memory_locked_clocks,
            parse=lambda value: parse_locked_clocks("memory_locked_clocks", value)),
    Setting("ecc_mode", plan_ecc_mode, read=lambda backend, handle: tuple(reversed(backend.ecc_mode(handle))),
            pending_until="reboot"),
    Setting("mig_mode", plan_mig_mode, read=lambda backend, handle: tuple(reversed(backend.mig_mode(handle))),
            pending_until="reset"),
)
SETTING = {setting.name: setting for setting in SETTINGS}


# -- errors ------------------------------------------------------------------


class Problem:
    """Something that went wrong with one setting on one GPU.

    ``level`` is fail, warn or skip (from on_unsupported for settings the
    GPU does not support; always fail otherwise).
    """

    def __init__(self, setting, level, message):
        self.setting = setting
        self.level = level
        self.message = message


def describe_error(err, setting, gpu, reading):
    """A message that says what failed, where, and what to do about it."""
    action = "reading" if reading else "changing"
    where = f"GPU {gpu.label}"
    if isinstance(err, nvml.NotSupported):
        return f"{setting}: not supported on {where} ({err})"
    if isinstance(err, nvml.FunctionMissing):
        return (
            f"{setting}: {action} it on {where} needs an NVML function that the installed NVIDIA driver "
            f"or nvidia-ml-py lacks; the driver is too old ({err})"
        )
    if isinstance(err, nvml.NoPermission):
        return (
            f"{setting}: {action} it on {where} needs root privileges; this task needs become "
            f"(become: true) ({err})"
        )
    if isinstance(err, nvml.DriverNotLoaded):
        return f"{setting}: the NVIDIA driver is not loaded ({err})"
    if isinstance(err, nvml.InvalidArgument):
        return f"{setting}: NVML rejected the value on {where} ({err})"
    return f"{setting}: NVML failed on {where} ({err})"


def problem_for(err, setting, gpu, reading, on_unsupported):
    message = describe_error(err, setting, gpu, reading)
    if isinstance(err, (nvml.NotSupported, nvml.FunctionMissing)):
        if on_unsupported == "fail":
            message += "; set on_unsupported to warn or skip to carry on without it"
        return Problem(setting, on_unsupported, message)
    return Problem(setting, "fail", message)


# -- plan, apply, read back --------------------------------------------------


class GpuPlan:
    """The steps and problems for one GPU."""

    def __init__(self, gpu):
        self.gpu = gpu
        self.steps = {}
        self.problems = []

    def failures(self):
        return [problem.message for problem in self.problems if problem.level == "fail"]

    def warnings(self):
        return [problem.message for problem in self.problems if problem.level == "warn"]

    def skipped(self):
        return {problem.setting: problem.message for problem in self.problems if problem.level in ("warn", "skip")}


def plan_gpu(backend, gpu, settings, recorded, on_unsupported):
    """Read and validate every requested setting of one GPU; write nothing."""
    plan = GpuPlan(gpu)
    for setting in SETTINGS:
        name = setting.name
        if name not in settings:
            continue
        try:
            plan.steps[name] = setting.plan(backend, gpu.handle, settings[name], recorded)
        except InvalidValue as err:
            plan.problems.append(Problem(name, "fail", f"{err} (GPU {gpu.label})"))
        except nvml.NvmlError as err:
            plan.problems.append(problem_for(err, name, gpu, True, on_unsupported))
    return plan


def apply_plan(plan, on_unsupported):
    """Run the writes of one GPU's plan; a failed write does not stop the others."""
    for name, step in plan.steps.items():
        if not step.changed:
            continue
        try:
            step.run()
        except nvml.NvmlError as err:
            plan.problems.append(problem_for(err, name, plan.gpu, False, on_unsupported))
            # Nothing changed: report the setting as it was.
            step.cancel()


def cancel(plan):
    """Drop every planned write, for when validation failed somewhere."""
    for step in plan.steps.values():
        step.cancel()


def applied_stateful(plan):
    """The stateful settings written in this run, for the state file."""
    return {name: step.after for name, step in plan.steps.items() if SETTING[name].stateful and step.applied}


def read_back(backend, plan):
    """Replace each planned 'after' with what the GPU now reports.

    Returns warnings for values that did not stick.
    """
    warnings = []
    for name, step in plan.steps.items():
        reader = SETTING[name].read
        if reader is None:
            continue
        try:
            value, active = reader(backend, plan.gpu.handle)
        except nvml.NvmlError as err:
            warnings.append(f"{name}: could not read it back on GPU {plan.gpu.label} ({err})")
            continue
        if step.applied and value != step.after:
            warnings.append(
                f"{name}: set to {step.after!r} on GPU {plan.gpu.label} but NVML reads back {value!r}"
            )
        step.after = value
        if active is not None:
            step.data["active"] = active
    return warnings


def pending(plan, until):
    """True when a setting that takes effect at `until` (reboot, reset) is not yet in effect."""
    return any(SETTING[name].pending_until == until and step.data["active"] is not None
               and step.data["active"] != step.after for name, step in plan.steps.items())


def gpu_result(plan):
    changed = [name for name, step in plan.steps.items() if step.changed]
    return {
        "index": plan.gpu.index,
        "uuid": plan.gpu.uuid,
        "pci_bus_id": plan.gpu.pci_bus_id,
        "name": plan.gpu.name,
        "changed": bool(changed),
        "changed_settings": changed,
        "before": {name: step.before for name, step in plan.steps.items()},
        "after": {name: step.after for name, step in plan.steps.items()},
        "skipped": plan.skipped(),
        "reboot_required": pending(plan, "reboot"),
        "reset_required": pending(plan, "reset"),
    }


def diff(plans):
    """Before/after of every requested setting, keyed by GPU."""
    before, after = {}, {}
    for plan in plans:
        key = f"gpu{plan.gpu.index} {plan.gpu.uuid}"
        before[key] = {name: step.before for name, step in plan.steps.items()}
        after[key] = {name: step.after for name, step in plan.steps.items()}
    return {"before": before, "after": after}
