# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""The gate's performance benchmark: a small torch script run with the framework environment's Python.

The same method as the reference figures in thresholds.py: dense 8192^3 matmuls (bf16, and fp32
with TF32 allowed), a 1 GiB device-to-device copy counted as read+write, 256 MiB pinned copies each
way, per GPU; with several GPUs an NCCL all-reduce of 256 MiB across all of them in one process
(torch.cuda.nccl), reported as nccl-tests' bus bandwidth: size / time * 2 (n - 1) / n.
The script prints one JSON line; it only reads and computes, it never changes a GPU setting.
"""
from __future__ import annotations

import json

SCRIPT = r'''
import json, sys, time
result = {"gpus": [], "errors": []}
try:
    import torch
except Exception as err:
    print(json.dumps({"error": "torch cannot be imported: %s" % err}))
    sys.exit(0)
result["torch_version"] = torch.__version__
if not torch.cuda.is_available():
    print(json.dumps({"error": "torch sees no CUDA GPU (torch %s)" % torch.__version__}))
    sys.exit(0)

def timed(function, iterations, warmup=3):
    for _ in range(warmup):
        function()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iterations):
        function()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / iterations

def matmul(device, dtype, n=8192, iterations=20):
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    return 2 * n ** 3 / timed(lambda: torch.mm(a, b), iterations) / 1e12

def figures(index):
    device = torch.device("cuda", index)
    torch.cuda.set_device(device)
    found = {"index": index, "name": torch.cuda.get_device_name(device)}
    torch.backends.cuda.matmul.allow_tf32 = False
    found["bf16_tflops"] = matmul(device, torch.bfloat16)
    torch.backends.cuda.matmul.allow_tf32 = True
    found["tf32_tflops"] = matmul(device, torch.float32)
    torch.backends.cuda.matmul.allow_tf32 = False
    size = 1 << 30
    src = torch.empty(size, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    found["memcpy_gbps"] = 2 * size / timed(lambda: dst.copy_(src), 20) / 1e9
    del src, dst
    size = 256 << 20
    host = torch.empty(size, dtype=torch.uint8, pin_memory=True)
    gpu = torch.empty(size, dtype=torch.uint8, device=device)
    found["h2d_gbps"] = size / timed(lambda: gpu.copy_(host, non_blocking=True), 10) / 1e9
    found["d2h_gbps"] = size / timed(lambda: host.copy_(gpu, non_blocking=True), 10) / 1e9
    torch.cuda.empty_cache()
    return found

count = torch.cuda.device_count()
for index in range(count):
    try:
        result["gpus"].append(figures(index))
    except Exception as err:
        result["gpus"].append({"index": index})
        result["errors"].append("GPU %d: %s" % (index, err))
if count > 1:
    try:
        import torch.cuda.nccl as nccl
        size = 256 << 20
        tensors = [torch.ones(size // 4, dtype=torch.float32, device=torch.device("cuda", i)) for i in range(count)]
        seconds = timed(lambda: nccl.all_reduce(tensors), 10)
        result["allreduce_busbw_gbps"] = size / seconds / 1e9 * 2 * (count - 1) / count
    except Exception as err:
        result["allreduce_busbw_gbps"] = None
        result["errors"].append("NCCL all-reduce: %s" % err)
print(json.dumps(result))
'''


def parse(stdout):
    """The script's JSON line (the last line of stdout that parses), or None."""
    for line in reversed((stdout or "").splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def dcgm_summary(text):
    """The failing lines of `dcgmi diag -r 1`, or its last line when nothing failed."""
    lines = [line.strip(" |") for line in (text or "").splitlines() if line.strip(" |+-=")]
    failed = [line for line in lines if "fail" in line.lower()]
    if failed:
        return "; ".join(" ".join(line.split()) for line in failed[:5])
    return " ".join(lines[-1].split()) if lines else ""
