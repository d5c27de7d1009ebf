# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""Per-model figures for the validate gate: what each GPU model achieves, and how much of it must show.

Every model has its ``achievable`` figures (what a healthy GPU of that model measures with the
gate's own benchmark) and where they come from (``basis`` and ``source``). A performance check
passes when the measured figure reaches ``achievable * FRACTIONS[metric]``.

- basis ``measured``: run on that model with the gate's benchmark (torch, 8192^3 matmuls, 1 GiB
  copies). Only the H100 SXM5 80GB so far: the reference figures of the project's GPU machine
  (NVIDIA H100 80GB HBM3, driver 580.159.04, torch 2.11, PCIe Gen5 x16), recorded in
  tests/fixtures/nvml/h100-80gb-hbm3/probe.json ("bench").
- basis ``estimate``: NVIDIA's datasheet peak (dense, no sparsity) times the efficiency the
  measured H100 reached against its own datasheet peak (EFFICIENCY below). Replace one with a
  measured figure when a node of that model is available; the gate says which basis it used.

The PCIe figures are per direction with pinned host memory; a PCIe Gen5 x16 link carries
63.0 GB/s per direction after encoding, Gen4 x16 31.5 GB/s. All-reduce figures are NCCL bus
bandwidth (nccl-tests' busbw) across all GPUs of the node: over NVLink, 80 % of the per-direction
NVLink bandwidth; over PCIe, the pinned host-copy figure (the GPUs talk through the host bridge).
"""
from __future__ import annotations

import re

METRICS = ("bf16_tflops", "tf32_tflops", "memcpy_gbps", "h2d_gbps", "d2h_gbps", "allreduce_busbw_gbps")

METRIC_LABELS = {
    "bf16_tflops": "dense bf16 matmul (TFLOP/s)",
    "tf32_tflops": "dense TF32 matmul (TFLOP/s)",
    "memcpy_gbps": "device memory copy, read+write (GB/s)",
    "h2d_gbps": "host to device, pinned (GB/s)",
    "d2h_gbps": "device to host, pinned (GB/s)",
    "allreduce_busbw_gbps": "NCCL all-reduce bus bandwidth (GB/s)",
}

# Fraction of the achievable figure a healthy node must reach. Matmuls and memory copies vary by
# a few percent between runs and boards (clocks, temperature); PCIe more with the host's root
# complex and IOMMU; all-reduce most (topology, NCCL's algorithm choice).
FRACTIONS = {
    "bf16_tflops": 0.85,
    "tf32_tflops": 0.85,
    "memcpy_gbps": 0.85,
    "h2d_gbps": 0.80,
    "d2h_gbps": 0.80,
    "allreduce_busbw_gbps": 0.70,
}

# The measured H100 SXM5 against its datasheet: bf16 789 / 989.4, TF32 431 / 494.7,
# memory copy 2989 / 3350 GB/s, pinned H2D 54.7 / 63.0 GB/s (PCIe Gen5 x16).
EFFICIENCY = {
    "bf16_tflops": 0.797,
    "tf32_tflops": 0.871,
    "memcpy_gbps": 0.892,
    "pcie_gbps": 0.868,
    "nvlink_allreduce": 0.80,
}

_PCIE_GBPS = {3: 15.75, 4: 31.5, 5: 63.0}


def _estimate(bf16, tf32, memory_gbps, pcie_gen, nvlink_gbps=None):
    """Achievable figures from datasheet peaks: bf16/tf32 dense TFLOP/s, memory GB/s, NVLink GB/s per direction."""
    pcie = round(_PCIE_GBPS[pcie_gen] * EFFICIENCY["pcie_gbps"], 1)
    return {
        "bf16_tflops": round(bf16 * EFFICIENCY["bf16_tflops"]),
        "tf32_tflops": round(tf32 * EFFICIENCY["tf32_tflops"]),
        "memcpy_gbps": round(memory_gbps * EFFICIENCY["memcpy_gbps"]),
        "h2d_gbps": pcie,
        "d2h_gbps": pcie,
        "allreduce_busbw_gbps": round(nvlink_gbps * EFFICIENCY["nvlink_allreduce"]) if nvlink_gbps else pcie,
    }


def _datasheet_model(key, label, names, device_ids, pcie_gen, nvlink_gbps, bf16, tf32, memory_gbps, datasheet):
    return {
        "key": key,
        "label": label,
        "names": names,
        "device_ids": device_ids,
        "pcie": {"generation": pcie_gen, "width": 16},
        "nvlink": nvlink_gbps is not None,
        "basis": "estimate",
        "source": f"NVIDIA datasheet, dense peaks, times the measured H100's efficiency: {datasheet}",
        "achievable": _estimate(bf16, tf32, memory_gbps, pcie_gen, nvlink_gbps),
    }


MODELS = (
    {
        "key": "h100_sxm",
        "label": "H100 SXM5 80GB",
        "names": (r"^NVIDIA H100 80GB HBM3$", r"^NVIDIA H100 SXM"),
        "device_ids": ("0x2330",),
        "pcie": {"generation": 5, "width": 16},
        "nvlink": True,
        "basis": "measured",
        "source": "dlnode.gpu GPU machine (H100 80GB HBM3, driver 580.159.04, torch 2.11): bf16 789, TF32 431 TFLOP/s, "
                  "copy 2989 GB/s, pinned H2D 54.7 and D2H 54.7 GB/s; all-reduce estimated (NVLink 450 GB/s per direction)",
        "achievable": {
            "bf16_tflops": 789, "tf32_tflops": 431, "memcpy_gbps": 2989,
            "h2d_gbps": 54.7, "d2h_gbps": 54.7, "allreduce_busbw_gbps": 360,
        },
    },
    *(_datasheet_model(*row) for row in (
        # key, label, NVML names, PCI device ids, PCIe generation, NVLink GB/s per direction (None: none),
        # datasheet bf16 and TF32 dense TFLOP/s, memory GB/s, and the datasheet's words.
        ("h100_pcie", "H100 PCIe 80GB", (r"^NVIDIA H100 PCIe$",), ("0x2331",), 5, None,
         756, 378, 2000, "bf16 756, TF32 378 TFLOP/s, HBM2e 2000 GB/s, PCIe Gen5 x16"),
        ("h100_nvl", "H100 NVL 94GB", (r"^NVIDIA H100 NVL$",), ("0x2321",), 5, 300,
         835, 418, 3900, "bf16 835, TF32 418 TFLOP/s, HBM3 3900 GB/s, PCIe Gen5 x16, NVLink bridge 300 GB/s per direction"),
        ("h200_sxm", "H200 SXM 141GB", (r"^NVIDIA H200$", r"^NVIDIA H200 141GB"), ("0x2335",), 5, 450,
         989.4, 494.7, 4800, "bf16 989, TF32 495 TFLOP/s, HBM3e 4800 GB/s, PCIe Gen5 x16, NVLink 450 GB/s per direction"),
        ("a100_sxm_80gb", "A100 SXM4 80GB", (r"^NVIDIA A100-SXM4-80GB$",), ("0x20b2",), 4, 300,
         312, 156, 2039, "bf16 312, TF32 156 TFLOP/s, HBM2e 2039 GB/s, PCIe Gen4 x16, NVLink 300 GB/s per direction"),
        ("a100_sxm_40gb", "A100 SXM4 40GB", (r"^NVIDIA A100-SXM4-40GB$",), ("0x20b0",), 4, 300,
         312, 156, 1555, "bf16 312, TF32 156 TFLOP/s, HBM2 1555 GB/s, PCIe Gen4 x16, NVLink 300 GB/s per direction"),
        ("a100_pcie_80gb", "A100 PCIe 80GB", (r"^NVIDIA A100 80GB PCIe$",), ("0x20b5",), 4, None,
         312, 156, 1935, "bf16 312, TF32 156 TFLOP/s, HBM2e 1935 GB/s, PCIe Gen4 x16"),
        ("a100_pcie_40gb", "A100 PCIe 40GB", (r"^NVIDIA A100-PCIE-40GB$",), ("0x20f1",), 4, None,
         312, 156, 1555, "bf16 312, TF32 156 TFLOP/s, HBM2 1555 GB/s, PCIe Gen4 x16"),
        ("l40s", "L40S", (r"^NVIDIA L40S$",), ("0x26b9",), 4, None,
         362, 183, 864, "bf16 362, TF32 183 TFLOP/s, GDDR6 864 GB/s, PCIe Gen4 x16"),
        ("l4", "L4", (r"^NVIDIA L4$",), ("0x27b8",), 4, None,
         121, 60, 300, "bf16 121, TF32 60 TFLOP/s, GDDR6 300 GB/s, PCIe Gen4 x16"),
        ("rtx_4090", "GeForce RTX 4090", (r"^NVIDIA GeForce RTX 4090$",), ("0x2684",), 4, None,
         165.2, 82.6, 1008, "Ada whitepaper with FP32 accumulate: bf16 165, TF32 83 TFLOP/s, GDDR6X 1008 GB/s, "
         "PCIe Gen4 x16"),
    )),
)

BY_KEY = {model["key"]: model for model in MODELS}


def match_model(name=None, pci_device_id=None):
    """The MODELS entry of a GPU: by PCI device id first (exact), then by NVML product name; None if unknown."""
    device = (pci_device_id or "").lower()
    if device:
        for model in MODELS:
            if device in model["device_ids"]:
                return model
    for model in MODELS:
        if name and any(re.search(pattern, name) for pattern in model["names"]):
            return model
    return None


def threshold(model, metric, fractions=None):
    """The figure a healthy GPU of this model must reach, or None when the model has no figure."""
    achievable = model["achievable"].get(metric)
    if achievable is None:
        return None
    fraction = (fractions or FRACTIONS)[metric]
    return round(achievable * fraction, 1)
