"""dlnode.gpu.gpu_validate: the gate on the real H100 (fake NVML), on a GPU-less node, its report and its refusals."""
from __future__ import annotations

import json

import pytest
from ansible.module_utils import basic

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import nvml
from ansible_collections.dlnode.gpu.plugins.modules import gpu_validate
from ansible_collections.dlnode.gpu.tests.unit import fake_nvml
from ansible_collections.dlnode.gpu.tests.unit import fake_pci

BENCH = fake_nvml.load_probe()["bench"]
REPORT = "/var/lib/dlnode/validate/report.json"
TOPO = "\tGPU0\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID\nGPU0\t X \t0-15\t0\t\tN/A\n\nLegend:\n\n  X    = Self\n"
PYTHON = "/opt/venv/bin/python"


def bench_output(**changes):
    figures = {
        "index": 0, "name": BENCH["device_name"],
        "bf16_tflops": BENCH["bf16_matmul_8192_tflops"], "tf32_tflops": BENCH["tf32_matmul_8192_tflops"],
        "memcpy_gbps": BENCH["d2d_copy_GBps_rw"], "h2d_gbps": BENCH["h2d_pinned_GBps"],
        "d2h_gbps": BENCH["d2h_pinned_GBps"],
    }
    figures.update(changes)
    return json.dumps({"gpus": [figures], "errors": [], "torch_version": BENCH["torch_version"]})


@pytest.fixture
def node(tmp_path, monkeypatch):
    state = {"root": fake_pci.build(tmp_path / "node"), "lib": fake_nvml.FakePynvml(), "commands": [],
             "bench": (0, "loading...\n" + bench_output() + "\n", ""), "tools": {"modinfo", "nvidia-smi", "timeout"}}
    monkeypatch.setattr(gpu_validate, "BACKEND_FACTORY", lambda: nvml.NvmlBackend(lib=state["lib"]))
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                        lambda self, name, required=False, opt_dirs=None:
                        f"/usr/bin/{name}" if name in state["tools"] else None)

    def run_command(self, argv, **kwargs):
        name, args = argv[0].rsplit("/", 1)[-1], list(argv[1:])
        state["commands"].append([name, *args])
        if name == "modinfo":
            return 0, "580.159.04\n", ""
        if name == "nvidia-smi":
            return 0, TOPO, ""
        if name == "timeout" and args[1] == PYTHON:
            return state["bench"]
        if name == "timeout" and args[1] == "dcgmi":
            return 0, "| Diagnostic | Result |\n| Deployment | Pass |\n", ""
        raise AssertionError(f"unexpected command {argv}")

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(files, "ROOT", str(state["root"]))
    return state


def validate(run_module, check_mode=False, **options):
    args = {"node_name": "gpu01", "gpu_count": 1, "gpu_model": "h100_sxm", "python": PYTHON,
            "required": ["gpu_count", "ecc", "pcie_link", "bf16_tflops"]}
    args.update(options)
    return run_module(gpu_validate, args, check_mode=check_mode)


def statuses(result):
    return {item["name"]: item["status"] for item in result["checks"]}


def test_h100_passes_and_writes_the_report_once(node, run_module):
    result, failed = validate(run_module)
    assert not failed, result
    assert result["changed"] is True
    assert result["summary"]["passed"] is True
    assert result["summary"]["failed"] == []
    found = statuses(result)
    for name in ("gpu_count", "gpu_model", "driver", "gpu0.ecc", "gpu0.pcie_link", "benchmark", "gpu0.bf16_tflops",
                 "gpu0.tf32_tflops", "gpu0.memcpy_gbps", "gpu0.h2d_gbps", "gpu0.d2h_gbps", "topology"):
        assert found[name] == "pass", name
    assert "allreduce_busbw_gbps" not in found  # one GPU: no all-reduce
    assert found["dcgm_diag"] == "skip"
    report = json.loads((node["root"] / REPORT.lstrip("/")).read_text())
    assert report["node"] == "gpu01" and report["passed"] is True
    assert report["gpus"][0]["model"] == "h100_sxm"
    assert report == result["report"]
    again, _failed = validate(run_module)
    assert again["changed"] is False


def test_check_mode_runs_the_checks_and_writes_nothing(node, run_module):
    result, failed = validate(run_module, check_mode=True)
    assert not failed
    assert result["changed"] is True and result["summary"]["passed"] is True
    assert not (node["root"] / REPORT.lstrip("/")).exists()


def test_slow_bf16_fails_the_required_check(node, run_module):
    node["bench"] = (0, bench_output(bf16_tflops=789 * 0.85 * 0.6), "")
    result, failed = validate(run_module)
    assert not failed  # the module reports; the role fails the host
    assert result["summary"]["failed_required"] == ["gpu0.bf16_tflops"]
    assert result["summary"]["passed"] is False
    check = next(item for item in result["checks"] if item["name"] == "gpu0.bf16_tflops")
    assert check["reason"].startswith("dense bf16 matmul (TFLOP/s) 402.4 below 670.6")


def test_benchmark_timeout_fails(node, run_module):
    node["bench"] = (124, "", "")
    result, _failed = validate(run_module, performance_timeout=30)
    check = next(item for item in result["checks"] if item["name"] == "benchmark")
    assert (check["status"], check["reason"]) == ("fail", "the benchmark took longer than performance_timeout (30 s)")
    assert ["timeout", "30", PYTHON, "-c"] == node["commands"][-1][:4]


def test_dcgm_runs_where_installed(node, run_module):
    node["tools"].add("dcgmi")
    result, _failed = validate(run_module)
    assert statuses(result)["dcgm_diag"] == "pass"


def test_without_python_performance_skips(node, run_module):
    result, _failed = validate(run_module, python="")
    check = next(item for item in result["checks"] if item["name"] == "benchmark")
    assert check["reason"] == "no framework environment (python unset): performance checks skipped"
    assert not any(command[0] == "timeout" for command in node["commands"])


def test_gpu_less_node_runs_node_checks(tmp_path, monkeypatch, run_module, node):
    root = tmp_path / "bare"
    (root / "proc/sys/vm").mkdir(parents=True)
    (root / "proc/sys/vm/swappiness").write_text("60\n")
    monkeypatch.setattr(files, "ROOT", str(root))
    node["lib"].init_error = fake_nvml.LIBRARY_NOT_FOUND
    result, failed = run_module(gpu_validate, {"node_name": "cpu01", "python": PYTHON, "sysctl": {"vm.swappiness": 10},
                                               "required": ["sysctl"]})
    assert not failed
    gpu = [item for item in result["checks"] if item["check"] in gpu_validate.checks.GPU_CHECKS]
    assert {item["status"] for item in gpu} == {"skip"}
    assert result["summary"]["failed_required"] == ["sysctl"]
    assert statuses(result)["benchmark"] == "skip"
    assert node["commands"] == []
    assert json.loads((root / REPORT.lstrip("/")).read_text())["node"] == "cpu01"


@pytest.mark.parametrize("options, message", [
    ({"gpu_model": "h100"}, "gpu_model: 'h100' is not a known model; use one of a100_pcie_40gb"),
    ({"gpu_count": -1}, "gpu_count must be 0 or more, got -1"),
    ({"hugepages_size": "3X"}, "hugepages_size: '3X' is not a page size such as 2M or 1G"),
    ({"hugepages_count": -2}, "hugepages_count must be 0 or more, got -2"),
    ({"io_schedulers": {"nvme0n1": "cfq"}}, "io_schedulers.nvme0n1: 'cfq' is not a scheduler; use one of none"),
    ({"sysctl": {"swappiness": 10}}, "sysctl: 'swappiness' is not a sysctl key"),
    ({"memlock": "lots"}, "memlock must be a positive number of KiB or unlimited, got 'lots'"),
    ({"python": "venv/bin/python"}, "python must be an absolute path to a Python with torch, or empty"),
    ({"performance_timeout": 0}, "performance_timeout must be a positive number of seconds, got 0"),
    ({"threshold_fractions": {"fp8": 0.5}}, "threshold_fractions: 'fp8' is not a metric"),
    ({"threshold_fractions": {"bf16_tflops": 1.5}}, "threshold_fractions.bf16_tflops must be a number above 0"),
    ({"required": ["ecc", "speed"]}, "required: 'speed' is not a check"),
    ({"report_path": "report.json"}, "report_path must be an absolute path, got report.json"),
])
def test_bad_input_is_refused_naming_the_option(node, run_module, options, message):
    result, failed = validate(run_module, **options)
    assert failed
    assert result["msg"].startswith(message), result["msg"]
    assert node["commands"] == []


def test_required_accepts_one_gpu(node, run_module):
    node["lib"].devices[0].values["ecc_volatile_uncorrected"] = 1
    result, _failed = validate(run_module, required=["gpu0.ecc"])
    assert result["summary"]["failed_required"] == ["gpu0.ecc"]
