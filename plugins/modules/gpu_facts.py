#!/usr/bin/python
# Copyright: contributors to dlnode.gpu
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: gpu_facts
short_description: Gather facts about NVIDIA GPUs, NVSwitches and the NVIDIA driver
version_added: 0.1.0
description:
  - Sets the C(dlnode_gpu) fact describing the NVIDIA GPUs of the host.
  - Finds GPUs and NVSwitches on the PCI bus through sysfs, so it works on hosts without a GPU
    and on hosts where the NVIDIA driver is not installed or not loaded.
  - When NVML (the library behind C(nvidia-smi)) can be used, adds per GPU details such as clocks,
    power limits, ECC and MIG modes. When it cannot, RV(ansible_facts.dlnode_gpu.reason) says why.
  - Values a GPU or driver does not support are reported as the string V(unsupported), not as errors.
  - Reads only; never changes the host.
options: {}
requirements:
  - nvidia-ml-py (optional; without it only the PCI data from sysfs is reported)
attributes:
  check_mode:
    support: full
    description: The module only reads, so it runs the same in check mode.
  diff_mode:
    support: none
    description: The module changes nothing, so there is nothing to diff.
  platform:
    support: full
    platforms: posix
    description: Linux hosts; the PCI scan reads /sys.
  facts:
    support: full
    description: Sets the C(dlnode_gpu) fact.
seealso:
  - module: dlnode.gpu.nvidia_gpu
author: "dlnode.gpu developers (@dlnode)"
"""

EXAMPLES = r"""
- name: Gather GPU facts
  dlnode.gpu.gpu_facts:

- name: Stop when the GPUs are there but the driver is not
  ansible.builtin.fail:
    msg: "NVIDIA GPU found but NVML is unusable: {{ ansible_facts['dlnode_gpu'].reason }}"
  when: ansible_facts['dlnode_gpu'].present and not ansible_facts['dlnode_gpu'].nvml_available

- name: Show the power limit of each GPU
  ansible.builtin.debug:
    msg: "GPU {{ item.index }} {{ item.name }}: {{ item.power.limit_w }} W"
  loop: "{{ ansible_facts['dlnode_gpu'].gpus }}"
  when: ansible_facts['dlnode_gpu'].nvml_available
"""

RETURN = r"""
ansible_facts:
  description: Facts to add to ansible_facts.
  returned: always
  type: dict
  contains:
    dlnode_gpu:
      description: NVIDIA GPUs, NVSwitches and driver of the host.
      returned: always
      type: dict
      contains:
        present:
          description: Whether the host has an NVIDIA GPU (on the PCI bus, or seen by NVML).
          type: bool
          returned: always
          sample: true
        count:
          description: Number of GPUs (NVML's count when NVML works, else the PCI count).
          type: int
          returned: always
          sample: 1
        driver_loaded:
          description: Whether the nvidia kernel module is loaded (C(/sys/module/nvidia) exists or NVML initialised).
          type: bool
          returned: always
          sample: true
        driver_version:
          description: NVIDIA driver version, or V(null) when the driver is not loaded.
          type: str
          returned: always
          sample: "580.159.04"
        cuda_driver_version:
          description: Highest CUDA version the driver supports, or V(null) without NVML.
          type: str
          returned: always
          sample: "13.0"
        nvml_version:
          description: NVML library version, or V(null) without NVML.
          type: str
          returned: always
          sample: "13.580.159.04"
        nvml_available:
          description: Whether NVML could be initialised and read.
          type: bool
          returned: always
          sample: true
        reason:
          description: Why NVML could not be used, or V(null) when it could.
          type: str
          returned: always
          sample: "the NVIDIA driver is not loaded (nvmlInit: Driver Not Loaded)"
        nvswitch_present:
          description: Whether an NVSwitch is on the PCI bus.
          type: bool
          returned: always
          sample: false
        nvswitch_count:
          description: Number of NVSwitches on the PCI bus.
          type: int
          returned: always
          sample: 0
        pci_devices:
          description: NVIDIA GPUs and NVSwitches found in sysfs, in PCI bus order.
          type: list
          elements: dict
          returned: always
          sample:
            - pci_bus_id: "0000:00:06.0"
              kind: gpu
              vendor_id: "0x10de"
              device_id: "0x2330"
              class: "0x030200"
              subsystem_vendor_id: "0x10de"
              subsystem_device_id: "0x16c1"
              driver: nvidia
              numa_node: null
              pcie: {generation_current: 5, generation_max: 5, width_current: 16, width_max: 16}
        gpus:
          description:
            - One entry per GPU. With NVML (C(source) is V(nvml)) all keys below except C(pci_device_id);
              without it (C(source) is V(sysfs)) only index, source, name, uuid, pci_bus_id, pci_device_id,
              numa_node, driver and pcie, with name and uuid V(null).
            - Any value the GPU does not support is the string V(unsupported).
          type: list
          elements: dict
          returned: always
          contains:
            index:
              description: GPU index (NVML order, or PCI bus order without NVML).
              type: int
              returned: always
              sample: 0
            source:
              description: Where the entry comes from, V(nvml) or V(sysfs).
              type: str
              returned: always
              sample: nvml
            name:
              description: Product name.
              type: str
              returned: always
              sample: NVIDIA H100 80GB HBM3
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
            pci_device_id:
              description: PCI device id.
              type: str
              returned: without NVML
              sample: "0x2330"
            numa_node:
              description: NUMA node of the GPU from sysfs, V(null) when the platform reports none.
              type: int
              returned: always
              sample: 0
            driver:
              description: Kernel driver bound to the device.
              type: str
              returned: always
              sample: nvidia
            vbios_version:
              description: VBIOS version.
              type: str
              returned: with NVML
              sample: "96.00.DA.00.0C"
            architecture:
              description: GPU architecture.
              type: str
              returned: with NVML
              sample: hopper
            compute_capability:
              description: CUDA compute capability.
              type: str
              returned: with NVML
              sample: "9.0"
            memory_total_mib:
              description: Total GPU memory in MiB.
              type: int
              returned: with NVML
              sample: 81559
            persistence_mode:
              description: Whether persistence mode is on.
              type: bool
              returned: with NVML
              sample: true
            compute_mode:
              description: Compute mode (V(default), V(exclusive_process), V(prohibited)).
              type: str
              returned: with NVML
              sample: default
            power:
              description: Power limits in watts.
              type: dict
              returned: with NVML
              sample: {limit_w: 700, default_limit_w: 700, enforced_limit_w: 700, min_limit_w: 200, max_limit_w: 700}
            clocks:
              description: Current, maximum, application and default application clocks in MHz.
              type: dict
              returned: with NVML
              sample:
                current: {graphics: 345, sm: 345, memory: 2619}
                max: {graphics: 1980, sm: 1980, memory: 2619}
                applications: {graphics: 1980, memory: 2619}
                default_applications: {graphics: 1980, memory: 2619}
            supported_clocks:
              description: Supported memory clocks, and the graphics clocks supported with each (keyed by memory clock).
              type: dict
              returned: with NVML
              sample: {memory: [2619, 1593], graphics: {"2619": [1980, 1965, 345], "1593": [1980, 1965, 345]}}
            ecc_mode:
              description: ECC mode in effect (current) and after the next reboot (pending).
              type: dict
              returned: with NVML
              sample: {current: true, pending: true}
            mig_mode:
              description: MIG mode in effect (current) and after the next GPU reset (pending).
              type: dict
              returned: with NVML
              sample: {current: false, pending: false}
            pcie:
              description: PCIe link generation and width, current and maximum.
              type: dict
              returned: always
              sample: {generation_current: 5, generation_max: 5, width_current: 16, width_max: 16}
            clock_event_reasons:
              description: Why clocks are held down now (called throttle reasons before NVML 12), as a bit mask and names.
              type: dict
              returned: with NVML
              sample: {mask: 1, active: [gpu_idle]}
            retired_pages:
              description: Retired memory pages (GPUs before Ampere), or V(unsupported).
              type: raw
              returned: with NVML
              sample: unsupported
            remapped_rows:
              description: Remapped memory rows (Ampere and later), or V(unsupported).
              type: raw
              returned: with NVML
              sample: {correctable: 0, uncorrectable: 0, pending: false, failure: false}
            errors:
              description: Fields NVML failed to read for reasons other than lack of support, with the error.
              type: dict
              returned: with NVML
              sample: {}
"""

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.module_utils.common.module import run_module
from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import gpu_info
from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import nvml

# The NVML boundary: tests give a fake built from the real H100 dump.
BACKEND_FACTORY = nvml.NvmlBackend
ARGUMENT_SPEC = {}


def run(_module, result):
    result["ansible_facts"] = {"dlnode_gpu": gpu_info.collect(BACKEND_FACTORY(), files.ROOT)}


def main():
    run_module(ARGUMENT_SPEC, run)


if __name__ == "__main__":
    main()
