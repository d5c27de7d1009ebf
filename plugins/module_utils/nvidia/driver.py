# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""Which NVIDIA kernel modules (open or proprietary) and which driver branches can drive the GPUs.

Decided from the PCI device ids that sysfs shows before any driver is installed, so the driver
role can choose before it installs anything.

Sources:
- Architecture by PCI device id range: NVIDIA's id allocation per GPU family. Every id of the
  "Compatible GPUs" table of NVIDIA/open-gpu-kernel-modules README.md (release 595.45.04, kept in
  tests/fixtures/nvidia/open-gpu-ids.txt) falls in a Turing-or-later range (a unit test checks);
  pci.ids for the older families. An id beyond the ranges is taken as a new family: open modules.
- Rules: open modules are NVIDIA's default since 560; Blackwell and Grace Hopper (GH200) need them;
  Maxwell, Pascal and Volta need the proprietary modules, and 580 is the last branch that supports
  them; Kepler's last branch was 470.
"""
from __future__ import annotations

from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError

# (first id, last id, architecture), by PCI device id.
ARCHITECTURE_RANGES = (
    (0x0FC0, 0x12FF, "kepler"),
    (0x1340, 0x13FF, "maxwell"),
    (0x1400, 0x14FF, "maxwell"),
    (0x15F0, 0x15FF, "pascal"),
    (0x1600, 0x17FF, "maxwell"),
    (0x1B00, 0x1D7F, "pascal"),
    (0x1D80, 0x1DFF, "volta"),
    (0x1E00, 0x1FFF, "turing"),
    (0x2000, 0x20FF, "ampere"),
    (0x2100, 0x21FF, "turing"),
    (0x2200, 0x22FF, "ampere"),
    (0x2300, 0x23FF, "hopper"),
    (0x2400, 0x25FF, "ampere"),
    (0x2600, 0x28FF, "ada"),
    (0x2900, 0x31FF, "blackwell"),
)
# Families the open modules cannot drive, and the last branch that drives them at all.
PROPRIETARY_ONLY = {"kepler": 470, "maxwell": 580, "pascal": 580, "volta": 580}
# Grace Hopper: the open modules only.
GRACE_HOPPER_IDS = frozenset((0x2342, 0x2348))


class DriverChoiceError(DlnodeError):
    """The requested modules or branch cannot drive the GPUs found."""


def device_number(device_id):
    """A PCI device id as sysfs prints it ("0x2330") or as a number."""
    return int(device_id, 16) if isinstance(device_id, str) else int(device_id)


def architecture(device_id):
    """The GPU family of a PCI device id, or None when it is not known here."""
    device_id = device_number(device_id)
    for first, last, family in ARCHITECTURE_RANGES:
        if first <= device_id <= last:
            return family
    return None


def needs_open(device_id):
    return architecture(device_id) == "blackwell" or device_number(device_id) in GRACE_HOPPER_IDS


def describe(gpu):
    family = architecture(gpu["device_id"]) or "a family newer than this table"
    return f"the GPU at {gpu['pci_bus_id']} (device {device_number(gpu['device_id']):04x}, {family})"


def choose_modules(gpus, requested, branch):
    """(open or proprietary, reason) for the GPUs; DriverChoiceError naming what cannot work.

    gpus: [{pci_bus_id, device_id}]; requested: auto, open or proprietary; branch: an int.
    """
    old = [gpu for gpu in gpus if architecture(gpu["device_id"]) in PROPRIETARY_ONLY]
    too_old = [gpu for gpu in old if branch > PROPRIETARY_ONLY[architecture(gpu["device_id"])]]
    if too_old:
        gpu = too_old[0]
        last = PROPRIETARY_ONLY[architecture(gpu["device_id"])]
        raise DriverChoiceError(f"nvidia_driver_branch: {branch} does not support {describe(gpu)}; "
                                f"the last branch for it is {last}: set nvidia_driver_branch: {last}")
    must_open = [gpu for gpu in gpus if needs_open(gpu["device_id"])]
    if old and must_open:
        raise DriverChoiceError(f"nvidia_driver_modules: no kernel module flavour drives both {describe(old[0])} "
                                f"(proprietary only) and {describe(must_open[0])} (open only) on one node")
    if requested == "open" and old:
        raise DriverChoiceError(f"nvidia_driver_modules: open modules need Turing or newer; {describe(old[0])} "
                                "needs the proprietary modules: set nvidia_driver_modules: proprietary (or auto)")
    if requested == "proprietary" and must_open:
        raise DriverChoiceError(f"nvidia_driver_modules: {describe(must_open[0])} works only with the open modules: "
                                "set nvidia_driver_modules: open (or auto)")
    if requested != "auto":
        return requested, f"nvidia_driver_modules: {requested}"
    if old:
        return "proprietary", f"{describe(old[0])} needs the proprietary modules"
    if not gpus:
        return "open", "no NVIDIA GPU found: NVIDIA's default (open modules since 560)"
    return "open", "every GPU is Turing or newer: NVIDIA's default (open modules since 560)"
