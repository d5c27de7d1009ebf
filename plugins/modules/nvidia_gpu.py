#!/usr/bin/python
# Copyright: contributors to dlnode.gpu
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: nvidia_gpu
short_description: Configure NVIDIA GPU settings through NVML
version_added: 0.1.0
description:
  - Sets persistence mode, power limit, locked GPU and memory clocks, application clocks, compute mode,
    ECC mode and MIG mode on NVIDIA GPUs, through NVML (the library behind C(nvidia-smi)).
  - Reads every setting first and only changes what differs.
  - NVML cannot read locked clocks back, so the module records what it applied in O(state_file),
    keyed by GPU UUID and the kernel boot id. A second run in the same boot reports no change;
    after a reboot, which resets locked clocks, the module applies them again.
  - ECC and MIG mode changes stay pending until the node reboots or the GPU is reset; the module
    reports this as RV(reboot_required) and RV(reset_required).
  - Settings other than ECC and MIG mode do not survive a reboot or a driver reload; run the module
    at every boot (for example from a systemd unit or each play) to keep them.
  - Most settings need root, so use C(become=true).
options:
  gpus:
    description:
      - The GPUs to configure.
      - Each item is V(all), a GPU index as NVML counts them (V(0)), a UUID (V(GPU-0ad4414f-...)),
        or a PCI bus id in sysfs or NVML form (V(0000:00:06.0) or V(00000000:00:06.0)).
    type: list
    elements: raw
    default: [all]
  persistence_mode:
    description:
      - Enable or disable persistence mode, which keeps the driver initialised while no client uses
        the GPU, so that the other settings stick and CUDA start-up is fast.
    type: bool
  power_limit:
    description:
      - Power limit in watts (V(300)), or V(default) for the GPU's default limit.
      - Must lie between the minimum and maximum limits the GPU reports (see M(dlnode.gpu.gpu_facts)).
    type: raw
  gpu_locked_clocks:
    description:
      - Lock the GPU (graphics) clock to a range, or remove the lock.
      - Give O(gpu_locked_clocks.min) and O(gpu_locked_clocks.max), or O(gpu_locked_clocks.reset=true).
    type: dict
    suboptions:
      min:
        description: Lowest graphics clock in MHz. Must lie within the GPU's supported graphics clocks.
        type: int
      max:
        description: Highest graphics clock in MHz. Must lie within the GPU's supported graphics clocks.
        type: int
      reset:
        description: Remove the graphics clock lock.
        type: bool
        default: false
  memory_locked_clocks:
    description:
      - Lock the memory clock to a range, or remove the lock.
      - Give O(memory_locked_clocks.min) and O(memory_locked_clocks.max), or O(memory_locked_clocks.reset=true).
    type: dict
    suboptions:
      min:
        description: Lowest memory clock in MHz. Must lie within the GPU's supported memory clocks.
        type: int
      max:
        description: Highest memory clock in MHz. Must lie within the GPU's supported memory clocks.
        type: int
      reset:
        description: Remove the memory clock lock.
        type: bool
        default: false
  applications_clocks:
    description:
      - Set the application clocks, the clocks the GPU runs compute work at.
      - NVML 13 deprecates application clocks, so the module warns when this is set; prefer
        O(gpu_locked_clocks) and O(memory_locked_clocks).
      - Give O(applications_clocks.preset), or both O(applications_clocks.graphics) and O(applications_clocks.memory).
    type: dict
    suboptions:
      preset:
        description:
          - V(max) sets the highest supported memory clock and the highest graphics clock supported with it.
          - V(default) resets the application clocks to the GPU's defaults.
        type: str
        choices: [max, default]
      graphics:
        description: Graphics clock in MHz; must be a supported graphics clock for O(applications_clocks.memory).
        type: int
      memory:
        description: Memory clock in MHz; must be one of the GPU's supported memory clocks.
        type: int
  compute_mode:
    description:
      - V(default) lets many processes share the GPU, V(exclusive_process) allows one process,
        V(prohibited) allows none.
    type: str
    choices: [default, exclusive_process, prohibited]
  ecc_mode:
    description:
      - Enable or disable ECC memory. The change is pending until the next reboot (RV(reboot_required)).
    type: bool
  mig_mode:
    description:
      - Enable or disable Multi-Instance GPU mode. The change may stay pending until the GPU is reset
        (RV(reset_required)).
    type: bool
  on_unsupported:
    description:
      - What to do when a GPU or its driver does not support a requested setting.
      - V(fail) fails the task, V(warn) skips the setting with a warning, V(skip) skips it silently.
      - Skipped settings are listed per GPU in the C(skipped) return value.
    type: str
    choices: [fail, warn, skip]
    default: fail
  state_file:
    description:
      - Where to record the locked clocks applied in this boot, keyed by GPU UUID and boot id.
      - Only written when O(gpu_locked_clocks) or O(memory_locked_clocks) change something, and never in check mode.
    type: path
    default: /var/lib/dlnode/nvidia_gpu_state.json
requirements:
  - nvidia-ml-py
  - an NVIDIA driver with its kernel module loaded
attributes:
  check_mode:
    support: full
    description: Reads the GPUs and validates every requested value against what they support, but writes nothing, not even O(state_file).
  diff_mode:
    support: full
    description: Shows each requested setting before and after, per GPU.
  platform:
    support: full
    platforms: posix
    description: Linux hosts with an NVIDIA driver.
notes:
  - Locked clocks and application clocks are validated against the clocks that NVML lists as supported,
    the power limit against the GPU's power limit constraints.
  - NVML has no call to ask whether locked clocks are supported, so in check mode a GPU that lacks them
    is only found out when the task runs for real.
seealso:
  - module: dlnode.gpu.gpu_facts
author: "dlnode.gpu developers (@dlnode)"
"""

EXAMPLES = r"""
- name: Enable persistence mode and cap power on all GPUs
  dlnode.gpu.nvidia_gpu:
    persistence_mode: true
    power_limit: 600
  become: true

- name: Lock graphics clocks on GPU 0 for stable benchmarks
  dlnode.gpu.nvidia_gpu:
    gpus: [0]
    gpu_locked_clocks:
      min: 1755
      max: 1980
  become: true

- name: Remove clock locks and restore the default power limit
  dlnode.gpu.nvidia_gpu:
    gpus: [all]
    gpu_locked_clocks:
      reset: true
    memory_locked_clocks:
      reset: true
    power_limit: default
  become: true

- name: Enable MIG on one GPU, tolerating GPUs without MIG
  dlnode.gpu.nvidia_gpu:
    gpus: [GPU-0ad4414f-aa1d-07b8-b043-5bc8e52d2e4b]
    mig_mode: true
    on_unsupported: warn
  become: true
  register: mig

- name: Reboot when ECC or MIG changes are pending
  ansible.builtin.reboot:
  become: true
  when: mig.reboot_required or mig.reset_required
"""

RETURN = r"""
gpus:
  description: One entry per selected GPU.
  returned: always
  type: list
  elements: dict
  contains:
    index:
      description: NVML index of the GPU.
      type: int
      returned: always
      sample: 0
    uuid:
      description: GPU UUID.
      type: str
      returned: always
      sample: GPU-0ad4414f-aa1d-07b8-b043-5bc8e52d2e4b
    pci_bus_id:
      description: PCI bus id in sysfs form.
      type: str
      returned: always
      sample: "0000:00:06.0"
    name:
      description: Product name.
      type: str
      returned: always
      sample: NVIDIA H100 80GB HBM3
    changed:
      description: Whether any setting of this GPU changed (or would change, in check mode).
      type: bool
      returned: always
      sample: true
    changed_settings:
      description: Names of the settings that changed.
      type: list
      elements: str
      returned: always
      sample: [power_limit]
    before:
      description:
        - Each requested setting before the task. Power in watts, clocks in MHz.
        - Locked clocks read V(unknown) when this module has not set them since boot.
        - For O(ecc_mode) and O(mig_mode), the pending value.
      type: dict
      returned: always
      sample: {"power_limit": 700, "gpu_locked_clocks": "unknown"}
    after:
      description: Each requested setting after the task, as read back from the GPU (planned values in check mode).
      type: dict
      returned: always
      sample: {"power_limit": 600, "gpu_locked_clocks": {"min": 1755, "max": 1980}}
    skipped:
      description: Settings skipped because of O(on_unsupported), with the reason.
      type: dict
      returned: always
      sample: {"mig_mode": "mig_mode: not supported on GPU 0 (GPU-0ad4414f-aa1d-07b8-b043-5bc8e52d2e4b)"}
    reboot_required:
      description: An ECC mode change on this GPU waits for a reboot.
      type: bool
      returned: always
      sample: false
    reset_required:
      description: A MIG mode change on this GPU waits for a GPU reset or reboot.
      type: bool
      returned: always
      sample: false
reboot_required:
  description: Any selected GPU has an ECC mode change waiting for a reboot.
  returned: always
  type: bool
  sample: false
reset_required:
  description: Any selected GPU has a MIG mode change waiting for a GPU reset or reboot.
  returned: always
  type: bool
  sample: false
state_file:
  description: The state file used for locked clocks.
  returned: when O(gpu_locked_clocks) or O(memory_locked_clocks) is set
  type: str
  sample: /var/lib/dlnode/nvidia_gpu_state.json
"""

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError
from ansible_collections.dlnode.gpu.plugins.module_utils.common.module import run_module
from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import gpu_info
from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import gpu_plan
from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import gpu_state
from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import nvml

# The NVML boundary: tests give a fake built from the real H100 dump.
BACKEND_FACTORY = nvml.NvmlBackend

_LOCKED_CLOCKS_OPTIONS = dict(
    min=dict(type="int"),
    max=dict(type="int"),
    reset=dict(type="bool", default=False),
)

ARGUMENT_SPEC = dict(
    gpus=dict(type="list", elements="raw", default=["all"]),
    persistence_mode=dict(type="bool"),
    power_limit=dict(type="raw"),
    gpu_locked_clocks=dict(type="dict", options=_LOCKED_CLOCKS_OPTIONS),
    memory_locked_clocks=dict(type="dict", options=_LOCKED_CLOCKS_OPTIONS),
    applications_clocks=dict(
        type="dict",
        options=dict(
            preset=dict(type="str", choices=["max", "default"]),
            graphics=dict(type="int"),
            memory=dict(type="int"),
        ),
    ),
    compute_mode=dict(type="str", choices=["default", "exclusive_process", "prohibited"]),
    ecc_mode=dict(type="bool"),
    mig_mode=dict(type="bool"),
    on_unsupported=dict(type="str", choices=["fail", "warn", "skip"], default="fail"),
    state_file=dict(type="path", default="/var/lib/dlnode/nvidia_gpu_state.json"),
)


def _result(plans, stateful, state_file):
    gpus = [gpu_plan.gpu_result(plan) for plan in plans]
    result = {
        "changed": any(gpu["changed"] for gpu in gpus),
        "gpus": gpus,
        "reboot_required": any(gpu["reboot_required"] for gpu in gpus),
        "reset_required": any(gpu["reset_required"] for gpu in gpus),
    }
    if stateful:
        result["state_file"] = state_file
    return result


def configure(module, backend, settings, selectors):
    """Plan, apply and read back. Returns (result, failure message or None)."""
    params = module.params
    on_unsupported = params["on_unsupported"]
    stateful = any(gpu_plan.SETTING[name].stateful for name in settings)
    state_file = params["state_file"]

    try:
        gpus = gpu_plan.select_gpus(gpu_plan.list_gpus(backend), selectors)
    except gpu_plan.SelectionError as err:
        return _result([], False, state_file), str(err)
    except nvml.NvmlError as err:
        return _result([], False, state_file), f"listing the GPUs failed: {err}"
    if not gpus:
        module.warn("NVML found no NVIDIA GPU on this host; nothing to configure")

    boot_id = None
    state = gpu_state.empty_state()
    if stateful:
        boot_id = gpu_state.read_boot_id()
        if boot_id is None:
            module.warn(f"cannot read the boot id from {gpu_state.BOOT_ID}: locked clocks are applied on every run")
        try:
            state = gpu_state.load_state(state_file)
        except gpu_state.StateFileError as err:
            module.warn(str(err))

    plans = [
        gpu_plan.plan_gpu(
            backend, gpu, settings, gpu_state.recorded_settings(state, gpu.uuid, boot_id), on_unsupported
        )
        for gpu in gpus
    ]
    failures = [message for plan in plans for message in plan.failures()]
    if failures:
        # Validate everything before writing anything.
        for plan in plans:
            gpu_plan.cancel(plan)
        return _result(plans, stateful, state_file), "; ".join(failures)

    if not module.check_mode:
        for plan in plans:
            gpu_plan.apply_plan(plan, on_unsupported)
            for warning in gpu_plan.read_back(backend, plan):
                module.warn(warning)
            failures.extend(plan.failures())
            applied = gpu_plan.applied_stateful(plan)
            if applied and boot_id is not None:
                gpu_state.record_settings(state, plan.gpu.uuid, boot_id, applied)
        if stateful and boot_id is not None and any(gpu_plan.applied_stateful(plan) for plan in plans):
            try:
                gpu_state.save_state(module, state_file, state)
            except gpu_state.StateFileError as err:
                failures.append(str(err))

    for plan in plans:
        for warning in plan.warnings():
            module.warn(warning)

    result = _result(plans, stateful, state_file)
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = gpu_plan.diff(plans)
    return result, "; ".join(failures) or None


def init_backend():
    """An initialised NVML backend, or a DlnodeError saying what is missing."""
    backend = BACKEND_FACTORY()
    try:
        backend.init()
    except nvml.LibraryMissing as err:
        if err.python:
            raise DlnodeError(
                missing_required_lib("nvidia-ml-py", reason="to talk to the NVIDIA driver; install nvidia-ml-py"),
                exception=nvml.PYNVML_IMPORT_ERROR) from None
        raise DlnodeError(gpu_info.init_failure_reason(err)) from None
    except nvml.NvmlError as err:
        raise DlnodeError(gpu_info.init_failure_reason(err)) from None
    return backend


def run(module, result):
    settings = gpu_plan.parse_settings(module.params)
    selectors = gpu_plan.parse_gpus(module.params["gpus"])
    if "applications_clocks" in settings:
        module.warn(gpu_plan.APPLICATIONS_CLOCKS_DEPRECATION)
    backend = init_backend()
    try:
        found, failure = configure(module, backend, settings, selectors)
    finally:
        backend.shutdown()
    result.update(found)
    if failure:
        raise DlnodeError(failure)


def main():
    run_module(ARGUMENT_SPEC, run)


if __name__ == "__main__":
    main()
