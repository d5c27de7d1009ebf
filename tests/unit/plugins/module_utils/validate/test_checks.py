"""The validate gate's checks: the real H100 dump passes as an H100 80GB HBM3; degraded copies fail with the right message."""
from __future__ import annotations

import pytest

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import nvml
from ansible_collections.dlnode.gpu.plugins.module_utils.validate import checks
from ansible_collections.dlnode.gpu.plugins.module_utils.validate import collect
from ansible_collections.dlnode.gpu.plugins.module_utils.validate import thresholds
from ansible_collections.dlnode.gpu.tests.unit import fake_nvml
from ansible_collections.dlnode.gpu.tests.unit import fake_pci

BENCH = fake_nvml.load_probe()["bench"]
EXPECT = {"gpu_count": 1, "gpu_model": "h100_sxm", "driver_version": "580.159.04", "mig": False}


@pytest.fixture
def node(tmp_path, monkeypatch):
    root = fake_pci.build(tmp_path / "node")
    monkeypatch.setattr(files, "ROOT", str(root))
    return root


def state_of(lib, installed="580.159.04"):
    fact = collect.gpus(lambda: nvml.NvmlBackend(lib=lib))
    return {
        "gpu": fact,
        "driver": collect.driver_versions(fact, installed),
        "fabric_manager_running": collect.process_running(collect.FABRIC_MANAGER),
        "topology": collect.parse_topology(TOPO_1GPU),
    }


TOPO_1GPU = """\
\tGPU0\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID
GPU0\t X \t0-15\t0\t\tN/A

Legend:

  X    = Self
"""


def by_name(results):
    return {item["name"]: item for item in results}


def failed(results):
    return {item["name"]: item for item in results if item["status"] == checks.FAIL}


# -- the real H100 ---------------------------------------------------------------


def test_real_h100_is_an_h100_sxm_and_passes(node):
    results = checks.gpu_checks(state_of(fake_nvml.FakePynvml()), EXPECT)
    found = by_name(results)
    assert failed(results) == {}
    assert found["gpu_model"]["value"] == "NVIDIA H100 80GB HBM3"
    assert found["gpu_model"]["expected"] == "h100_sxm"
    assert found["gpu_count"]["value"] == 1
    assert found["driver"]["value"]["loaded_module"] == "580.159.04"
    assert found["gpu0.pcie_link"]["value"] == "Gen5 x16"
    assert found["gpu0.pcie_link"]["reason"] == "Gen5 x16 (idle: the link's maximum generation)"
    assert found["gpu0.ecc"]["status"] == "pass"
    assert found["gpu0.memory_health"]["status"] == "pass"
    assert found["gpu0.clock_events"]["value"] == ["gpu_idle"]
    assert found["gpu0.persistence_mode"]["status"] == "pass"
    assert found["gpu0.mig"]["status"] == "pass"
    # The VM's H100 reports NVLink as not supported: skipped with the reason, not failed.
    assert found["gpu0.nvlink"]["status"] == "skip"
    assert "passthrough VM" in found["gpu0.nvlink"]["reason"]
    assert found["fabric_manager"]["status"] == "skip"
    assert found["topology"]["value"]["matrix"] == {"GPU0": {"GPU0": "X"}}
    summary = checks.summary(results, checks.GPU_CHECKS)
    assert summary["passed"] and summary["counts"]["fail"] == 0


def test_real_h100_reference_figures_pass(node):
    model = thresholds.match_model("NVIDIA H100 80GB HBM3", "0x2330")
    gpu = {"index": 0}
    measured = {metric: BENCH[key] for metric, key in (
        ("bf16_tflops", "bf16_matmul_8192_tflops"), ("tf32_tflops", "tf32_matmul_8192_tflops"),
        ("memcpy_gbps", "d2d_copy_GBps_rw"), ("h2d_gbps", "h2d_pinned_GBps"), ("d2h_gbps", "d2h_pinned_GBps"))}
    results = checks.performance(gpu, model, measured)
    assert [item["status"] for item in results] == ["pass"] * 5
    assert by_name(results)["gpu0.bf16_tflops"]["expected"] == round(789 * 0.85, 1)


def test_model_matching():
    assert thresholds.match_model("NVIDIA H100 80GB HBM3")["key"] == "h100_sxm"
    assert thresholds.match_model(None, "0x2330")["key"] == "h100_sxm"
    assert thresholds.match_model("NVIDIA H100 PCIe")["key"] == "h100_pcie"
    assert thresholds.match_model("NVIDIA H100 NVL")["key"] == "h100_nvl"
    assert thresholds.match_model("NVIDIA H200")["key"] == "h200_sxm"
    assert thresholds.match_model("NVIDIA A100-SXM4-80GB")["key"] == "a100_sxm_80gb"
    assert thresholds.match_model("NVIDIA A100-PCIE-40GB")["key"] == "a100_pcie_40gb"
    assert thresholds.match_model("NVIDIA L40S")["key"] == "l40s"
    assert thresholds.match_model("NVIDIA L4")["key"] == "l4"
    assert thresholds.match_model("NVIDIA GeForce RTX 4090")["key"] == "rtx_4090"
    # The device id wins over a name that says otherwise.
    assert thresholds.match_model("NVIDIA L4", "0x26b9")["key"] == "l40s"
    assert thresholds.match_model("NVIDIA Tesla T4", "0x1eb8") is None


def test_every_model_has_every_figure_and_a_source():
    for model in thresholds.MODELS:
        assert set(model["achievable"]) == set(thresholds.METRICS), model["key"]
        assert model["basis"] in ("measured", "estimate")
        assert model["source"]
        assert all(value > 0 for value in model["achievable"].values())


# -- degraded copies of the real H100 ----------------------------------------------


def degraded(**values):
    lib = fake_nvml.FakePynvml()
    lib.devices[0].values.update(values)
    return lib


@pytest.mark.parametrize("values, status, reason", [
    ({"pcie_width_cur": 8, "pcie_width_max": 8}, "fail",
     "link width x8, expected x16: reseat the GPU or check the riser"),
    ({"pcie_width_cur": 8, "clocks_event_reasons": 0}, "fail",
     "link width x8, expected x16: reseat the GPU or check the riser"),
    ({"pcie_width_cur": 8}, "warn", "idle link runs x8: check again under load"),
    ({"pcie_gen_cur": 3, "pcie_gen_max": 3}, "fail",
     "link trains at most Gen3, the model needs Gen5: slot, riser or BIOS setting"),
    ({"pcie_gen_cur": 3, "clocks_event_reasons": 0}, "fail", "busy link runs Gen3, expected Gen5"),
])
def test_pcie_degraded(node, values, status, reason):
    found = by_name(checks.gpu_checks(state_of(degraded(**values)), EXPECT))["gpu0.pcie_link"]
    assert (found["status"], found["reason"]) == (status, reason)
    assert found["expected"] == "Gen5 x16"


def test_idle_link_downtrained_to_gen1_passes(node):
    found = by_name(checks.gpu_checks(state_of(degraded(pcie_gen_cur=1)), EXPECT))["gpu0.pcie_link"]
    assert found["status"] == "pass"


def test_volatile_uncorrected_ecc_error_fails(node):
    found = failed(checks.gpu_checks(state_of(degraded(ecc_volatile_uncorrected=2)), EXPECT))
    assert list(found) == ["gpu0.ecc"]
    assert found["gpu0.ecc"]["value"] == {"enabled": True, "volatile_uncorrected": 2}
    assert found["gpu0.ecc"]["reason"].startswith("2 volatile uncorrected ECC errors since the driver loaded")


def test_ecc_off_fails(node):
    found = failed(checks.gpu_checks(state_of(degraded(ecc_mode=[0, 0])), EXPECT))
    assert found["gpu0.ecc"]["reason"] == "ECC is off"


def test_pending_row_remap_fails(node):
    found = failed(checks.gpu_checks(state_of(degraded(remapped_rows=[0, 1, 1, 0])), EXPECT))
    assert list(found) == ["gpu0.memory_health"]
    assert found["gpu0.memory_health"]["reason"] == "a row remap is pending: reset the GPU (or reboot) to apply it"


def test_row_remap_failure_fails(node):
    found = failed(checks.gpu_checks(state_of(degraded(remapped_rows=[0, 9, 0, 1])), EXPECT))
    assert "row remapping failed" in found["gpu0.memory_health"]["reason"]


@pytest.mark.parametrize("mask, names", [
    (0x040, "hw_thermal_slowdown"),
    (0x080, "hw_power_brake_slowdown"),
    (0x020 | 0x001, "sw_thermal_slowdown"),
])
def test_thermal_or_power_brake_clock_event_fails(node, mask, names):
    found = failed(checks.gpu_checks(state_of(degraded(clocks_event_reasons=mask)), EXPECT))
    assert list(found) == ["gpu0.clock_events"]
    assert found["gpu0.clock_events"]["reason"] == f"clocks held down by {names}: check cooling and power delivery"


def test_software_power_cap_only_warns(node):
    found = by_name(checks.gpu_checks(state_of(degraded(clocks_event_reasons=0x004)), EXPECT))
    assert found["gpu0.clock_events"]["status"] == "warn"


def test_missing_gpu_fails(node):
    results = checks.gpu_checks(state_of(fake_nvml.FakePynvml()), dict(EXPECT, gpu_count=8))
    found = failed(results)
    assert found["gpu_count"]["reason"] == "expected 8 GPUs, NVML sees 1"
    assert checks.summary(results, ["gpu_count"])["failed_required"] == ["gpu_count"]


def test_gpu_on_the_bus_that_nvml_lost_fails(node):
    results = checks.gpu_checks(state_of(fake_nvml.FakePynvml(gpu_count=0)), dict(EXPECT, gpu_count=None))
    assert failed(results)["gpu_count"]["reason"] == (
        "1 GPUs on the PCI bus but NVML sees 0: a GPU fell off the bus or failed to initialise")


def test_driver_module_version_mismatch_fails(node):
    state = state_of(fake_nvml.FakePynvml(), installed="580.126.09")
    found = failed(checks.gpu_checks(state, EXPECT))
    assert found["driver"]["reason"] == (
        "the loaded kernel module is 580.159.04 but 580.126.09 is installed; reboot to load it")


def test_driver_library_mismatch_fails(node):
    library = node / "usr" / "lib" / "x86_64-linux-gnu"
    library.mkdir(parents=True)
    (library / "libnvidia-ml.so.580.126.09").write_text("")
    (library / "libnvidia-ml.so.1").symlink_to("libnvidia-ml.so.580.126.09")
    found = failed(checks.gpu_checks(state_of(fake_nvml.FakePynvml()), EXPECT))
    assert found["driver"]["reason"].startswith(
        "driver/library version mismatch: NVML library 580.126.09, loaded kernel module 580.159.04")


def test_declared_driver_version(node):
    found = failed(checks.gpu_checks(state_of(fake_nvml.FakePynvml()), dict(EXPECT, driver_version="570")))
    assert found["driver"]["reason"] == "driver 580.159.04 is not the declared 570"
    assert not failed(checks.gpu_checks(state_of(fake_nvml.FakePynvml()), dict(EXPECT, driver_version="580")))


def test_persistence_off_fails(node):
    found = failed(checks.gpu_checks(state_of(degraded(persistence_mode=0)), EXPECT))
    assert found["gpu0.persistence_mode"]["reason"].startswith("persistence mode is off")


def test_mig_not_as_declared_fails(node):
    found = failed(checks.gpu_checks(state_of(fake_nvml.FakePynvml()), dict(EXPECT, mig=True)))
    assert found["gpu0.mig"]["reason"] == "MIG is off, declared on"


def test_wrong_model_fails(node):
    found = failed(checks.gpu_checks(state_of(fake_nvml.FakePynvml()), dict(EXPECT, gpu_model="h200_sxm")))
    assert found["gpu_model"]["reason"] == "expected h200_sxm, found NVIDIA H100 80GB HBM3"


def test_nvlink_down_fails(node):
    lib = degraded(nvlink_states=[1] * 16 + [0, 0])
    del lib.fail["nvmlDeviceGetNvLinkState"]
    found = failed(checks.gpu_checks(state_of(lib), EXPECT))
    assert found["gpu0.nvlink"]["reason"] == "2 of 18 NVLinks down"


def test_nvlink_all_up_passes(node):
    lib = degraded(nvlink_states=[1] * 18)
    del lib.fail["nvmlDeviceGetNvLinkState"]
    assert by_name(checks.gpu_checks(state_of(lib), EXPECT))["gpu0.nvlink"]["value"] == {"up": 18, "total": 18}


def test_nvswitch_without_fabric_manager_fails(tmp_path, monkeypatch):
    root = fake_pci.build(tmp_path / "node", extra=[fake_pci.NVSWITCH])
    monkeypatch.setattr(files, "ROOT", str(root))
    found = failed(checks.gpu_checks(state_of(fake_nvml.FakePynvml()), EXPECT))
    assert found["fabric_manager"]["reason"].startswith("1 NVSwitches but nv-fabricmanager is not running")
    proc = root / "proc" / "4242"
    proc.mkdir(parents=True)
    (proc / "comm").write_text("nv-fabricmanage\n")
    assert not failed(checks.gpu_checks(state_of(fake_nvml.FakePynvml()), EXPECT))


def test_bf16_at_60_percent_of_threshold_fails():
    model = thresholds.BY_KEY["h100_sxm"]
    limit = thresholds.threshold(model, "bf16_tflops")
    found = checks.performance({"index": 0}, model, {"bf16_tflops": limit * 0.6})
    assert found[0]["status"] == "fail"
    assert found[0]["expected"] == limit
    assert found[0]["reason"] == (
        f"dense bf16 matmul (TFLOP/s) {round(limit * 0.6, 1)} below {limit} (85 % of 789 measured on H100 SXM5 80GB)")


def test_unknown_model_perf_warns_and_missing_figure_fails():
    assert checks.figure("bf16_tflops", 100.0, None)["status"] == "warn"
    assert checks.figure("bf16_tflops", None, thresholds.BY_KEY["l4"])["reason"] == "not measured (the benchmark failed)"


# -- no GPU ----------------------------------------------------------------------


def test_gpu_less_node_skips_gpu_checks_with_a_reason(tmp_path, monkeypatch):
    root = tmp_path / "empty"
    root.mkdir()
    monkeypatch.setattr(files, "ROOT", str(root))
    lib = fake_nvml.FakePynvml()
    lib.init_error = fake_nvml.DRIVER_NOT_LOADED
    results = checks.gpu_checks(state_of(lib, installed=None), {})
    assert {item["status"] for item in results} == {"skip"}
    assert {item["reason"] for item in results} == {"no NVIDIA GPU on the PCI bus"}
    expected = failed(checks.gpu_checks(state_of(lib, installed=None), {"gpu_count": 8}))
    assert expected["gpu_count"]["reason"] == "expected 8 GPUs, found no NVIDIA GPU on the PCI bus"


# -- node checks -------------------------------------------------------------------


def test_node_checks():
    assert checks.hugepages({"size_kb": 2048, "count": 512}, 100)["reason"] == (
        "100 of 512 2048 kB hugepages allocated (memory fragmented?)")
    assert checks.hugepages({"size_kb": 2048, "count": 512}, 512)["status"] == "pass"
    assert checks.hugepages({"size_kb": 1048576, "count": 2}, None)["status"] == "fail"
    assert checks.hugepages(None, 0)["status"] == "skip"
    assert checks.io_schedulers({"vda": "none"}, {"vda": "mq-deadline"})["reason"] == (
        "schedulers differ: vda mq-deadline (want none)")
    assert checks.io_schedulers({"vdz": "none"}, {"vdz": None})["reason"] == "schedulers differ: vdz missing (want none)"
    assert checks.sysctl({"vm.swappiness": "10"}, {"vm.swappiness": "60"})["reason"] == (
        "sysctl values differ: vm.swappiness = 60 (want 10)")
    assert checks.sysctl({"vm.swappiness": "10"}, {"vm.swappiness": "10"})["status"] == "pass"
    assert checks.memlock("unlimited", {"soft": "unlimited", "hard": "unlimited"}, "infinity")["status"] == "pass"
    assert checks.memlock(1024, {"soft": "1024", "hard": "1024"}, str(1024 * 1024))["status"] == "pass"
    assert checks.memlock("unlimited", {"soft": "64", "hard": None}, None)["reason"] == (
        "memlock not unlimited: logins soft 64, logins hard not set, services not set")


def test_node_readers(tmp_path, monkeypatch):
    root = tmp_path / "node"
    monkeypatch.setattr(files, "ROOT", str(root))
    for path, text in {
        "sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages": "512\n",
        "sys/block/vda/queue/scheduler": "none [mq-deadline] kyber bfq\n",
        "proc/sys/vm/swappiness": "10\n",
        "proc/sys/net/ipv4/tcp_rmem": "4096\t131072\t6291456\n",
        "etc/security/limits.conf": "# nothing\n*  soft  memlock  64\n",
        "etc/security/limits.d/90-dlnode.conf": "*     -     memlock  unlimited\nroot  -  memlock 1\n",
        "etc/systemd/system.conf": "[Manager]\n#DefaultLimitMEMLOCK=8M\n",
        "etc/systemd/system.conf.d/90-dlnode-limits.conf": "[Manager]\nDefaultLimitMEMLOCK=infinity\n",
    }.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    assert collect.hugepages_count(2048) == 512
    assert collect.hugepages_count(1048576) is None
    assert collect.schedulers(["vda", "vdz"]) == {"vda": "mq-deadline", "vdz": None}
    assert collect.sysctl_values(["vm.swappiness", "net.ipv4.tcp_rmem"]) == {
        "vm.swappiness": "10", "net.ipv4.tcp_rmem": "4096 131072 6291456"}
    assert collect.login_memlock() == {"soft": "unlimited", "hard": "unlimited"}
    assert collect.service_memlock() == "infinity"


def test_topology_of_an_8_gpu_node():
    text = (
        "\tGPU0\tGPU1\tNIC0\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID\n"
        "GPU0\t X \tNV18\tPXB\t0-47\t0\t\tN/A\n"
        "GPU1\tNV18\t X \tSYS\t48-95\t1\t\tN/A\n"
        "NIC0\tPXB\tSYS\t X \t\t\t\t\n"
    )
    topo = collect.parse_topology(text)
    assert topo["devices"] == ["GPU0", "GPU1", "NIC0"]
    assert topo["matrix"]["GPU0"] == {"GPU0": "X", "GPU1": "NV18", "NIC0": "PXB"}
    assert topo["affinity"]["GPU1"]["CPU Affinity"] == "48-95"


def test_benchmark_script_compiles_and_its_output_parses():
    from ansible_collections.dlnode.gpu.plugins.module_utils.validate import perf  # pylint: disable=import-outside-toplevel
    compile(perf.SCRIPT, "benchmark", "exec")
    assert perf.parse('warning: x\n{"gpus": [], "errors": []}\n') == {"gpus": [], "errors": []}
    assert perf.parse("Traceback ...\n") is None
    assert perf.dcgm_summary("| Deployment | Pass |\n| Memory | Fail - GPU 0 |\n") == "Memory | Fail - GPU 0"
