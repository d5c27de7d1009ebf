"""gpu_plan, gpu_state and gpu_info helpers: parameter parsing, planning, state file."""
from __future__ import annotations

import json
import os

import pytest

from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import gpu_info
from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import gpu_plan
from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import gpu_state
from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import nvml
from ansible_collections.dlnode.gpu.tests.unit import fake_nvml

BOOT_A = "boot-a"
BOOT_B = "boot-b"
UUID = "GPU-0ad4414f-aa1d-07b8-b043-5bc8e52d2e4b"


@pytest.fixture
def gpu(backend):
    return gpu_plan.list_gpus(backend)[0]


# -- parameters ----------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [(300, 300.0), (450.5, 450.5), ("300", 300.0), ("300W", 300.0), (" 300 w ", 300.0), ("DEFAULT", "default")],
)
def test_parse_power_limit(value, expected):
    assert gpu_plan.parse_power_limit(value) == expected


@pytest.mark.parametrize("value", ["", "watts", "inf", 0, -1, None, False, {"w": 1}])
def test_parse_power_limit_rejects(value):
    with pytest.raises(gpu_plan.InvalidValue) as raised:
        gpu_plan.parse_power_limit(value)

    assert str(raised.value) == (
        f"power_limit: expected a positive number of watts (such as 300) or 'default', got {value!r}"
    )


def test_parse_settings_skips_unset_and_reports_every_error():
    params = {"power_limit": None, "persistence_mode": True, "compute_mode": None}
    assert gpu_plan.parse_settings(params) == {"persistence_mode": True}

    with pytest.raises(gpu_plan.InvalidValue) as raised:
        gpu_plan.parse_settings({
            "power_limit": "lots",
            "gpu_locked_clocks": {"min": 2, "max": 1, "reset": False},
        })
    assert str(raised.value) == (
        "power_limit: expected a positive number of watts (such as 300) or 'default', got 'lots'; "
        "gpu_locked_clocks: min (2 MHz) must not be greater than max (1 MHz)"
    )


def test_parse_locked_clocks():
    assert gpu_plan.parse_locked_clocks("x", {"min": 1, "max": 2, "reset": False}) == {"min": 1, "max": 2}
    assert gpu_plan.parse_locked_clocks("x", {"min": None, "max": None, "reset": True}) == gpu_plan.RESET


def test_parse_gpus():
    assert gpu_plan.parse_gpus(["all", 0, "1", "gpu-abc", "00000000:1B:00.0"]) == [
        ("all",),
        ("index", 0),
        ("index", 1),
        ("uuid", "gpu-abc"),
        ("pci", "0000:1b:00.0"),
    ]


# -- planning ------------------------------------------------------------------


def test_plan_power_limit_reads_only(backend, lib, gpu):
    step = gpu_plan.plan_power_limit(backend, gpu.handle, 450.0, {})

    assert (step.before, step.after, step.changed) == (700, 450, True)
    assert lib.writes == []


def test_plan_power_limit_error_names_range(backend, gpu):
    with pytest.raises(gpu_plan.InvalidValue) as raised:
        gpu_plan.plan_power_limit(backend, gpu.handle, 199.9, {})

    assert str(raised.value) == "power_limit: 199.9 W is outside the range this GPU allows: 200-700 W (or use 'default')"


def test_plan_stateful_uses_record(backend, gpu):
    wanted = {"min": 1200, "max": 1980}

    unknown = gpu_plan.plan_gpu_locked_clocks(backend, gpu.handle, wanted, {})
    known = gpu_plan.plan_gpu_locked_clocks(backend, gpu.handle, wanted, {"gpu_locked_clocks": wanted})

    assert (unknown.before, unknown.changed) == ("unknown", True)
    assert (known.before, known.changed) == (wanted, False)


def test_plan_gpu_collects_problems(backend, lib, gpu):
    lib.fail["nvmlDeviceGetMigMode"] = fake_nvml.NOT_SUPPORTED
    settings = {"mig_mode": True, "power_limit": 1000.0, "persistence_mode": True}

    plan = gpu_plan.plan_gpu(backend, gpu, settings, {}, "warn")

    assert list(plan.steps) == ["persistence_mode"]
    assert [(problem.setting, problem.level) for problem in plan.problems] == [
        ("power_limit", "fail"),
        ("mig_mode", "warn"),
    ]
    assert plan.warnings() == [f"mig_mode: not supported on GPU 0 ({UUID}) (nvmlDeviceGetMigMode: Not Supported)"]


def test_apply_and_read_back(backend, lib, gpu):
    plan = gpu_plan.plan_gpu(backend, gpu, {"ecc_mode": False, "gpu_locked_clocks": {"min": 1200, "max": 1980}}, {}, "fail")

    gpu_plan.apply_plan(plan, "fail")
    assert gpu_plan.read_back(backend, plan) == []

    result = gpu_plan.gpu_result(plan)
    assert result["changed_settings"] == ["gpu_locked_clocks", "ecc_mode"]
    assert result["reboot_required"] is True
    assert gpu_plan.applied_stateful(plan) == {"gpu_locked_clocks": {"min": 1200, "max": 1980}}
    assert lib.devices[0].locked_gpu_clocks == (1200, 1980)


def test_cancel_drops_writes(backend, lib, gpu):
    plan = gpu_plan.plan_gpu(backend, gpu, {"power_limit": 300.0}, {}, "fail")

    gpu_plan.cancel(plan)
    gpu_plan.apply_plan(plan, "fail")

    assert lib.writes == []
    assert gpu_plan.gpu_result(plan)["after"] == {"power_limit": 700}


# -- state file ----------------------------------------------------------------


def test_boot_id(tmp_path):
    path = tmp_path / "boot_id"
    path.write_text("abc\n", encoding="ascii")

    assert gpu_state.read_boot_id(str(path)) == "abc"
    assert gpu_state.read_boot_id(str(tmp_path / "missing")) is None


def test_state_round_trip_and_boot_change(tmp_path):
    path = str(tmp_path / "deep" / "dir" / "state.json")
    state = gpu_state.load_state(path)
    assert state == {"version": 1, "gpus": {}}

    gpu_state.record_settings(state, UUID, BOOT_A, {"gpu_locked_clocks": "reset"})
    gpu_state.record_settings(state, UUID, BOOT_A, {"memory_locked_clocks": {"min": 1, "max": 2}})
    gpu_state.save_state(None, path, state)
    loaded = gpu_state.load_state(path)

    assert gpu_state.recorded_settings(loaded, UUID, BOOT_A) == {
        "gpu_locked_clocks": "reset",
        "memory_locked_clocks": {"min": 1, "max": 2},
    }
    assert gpu_state.recorded_settings(loaded, UUID, BOOT_B) == {}
    assert gpu_state.recorded_settings(loaded, UUID, None) == {}
    assert gpu_state.recorded_settings(loaded, "GPU-other", BOOT_A) == {}
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"
    assert os.listdir(os.path.dirname(path)) == ["state.json"]

    gpu_state.record_settings(loaded, UUID, BOOT_B, {"gpu_locked_clocks": "reset"})
    assert loaded["gpus"][UUID] == {"boot_id": BOOT_B, "settings": {"gpu_locked_clocks": "reset"}}


@pytest.mark.parametrize("content", ["{not json", "[]", json.dumps({"gpus": []})])
def test_bad_state_file(tmp_path, content):
    path = tmp_path / "state.json"
    path.write_text(content, encoding="utf-8")

    with pytest.raises(gpu_state.StateFileError) as raised:
        gpu_state.load_state(str(path))

    assert str(raised.value).startswith("state_file: ")
    assert str(raised.value).endswith("starting from an empty state")


def test_state_file_write_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="ascii")

    with pytest.raises(gpu_state.StateFileError) as raised:
        gpu_state.save_state(None, str(blocker / "state.json"), gpu_state.empty_state())

    assert str(raised.value).startswith(f"state_file: cannot write {blocker / 'state.json'} (")


# -- gpu_info helpers ----------------------------------------------------------


@pytest.mark.parametrize("milliwatts, watts", [(700000, 700), (450500, 450.5), (0, 0)])
def test_watts(milliwatts, watts):
    assert gpu_info.watts(milliwatts) == watts


@pytest.mark.parametrize("version, text", [(13000, "13.0"), (12040, "12.4"), (11080, "11.8")])
def test_cuda_version_string(version, text):
    assert gpu_info.cuda_version_string(version) == text


def test_clock_event_reason_names():
    assert gpu_info.clock_event_reason_names(0) == []
    assert gpu_info.clock_event_reason_names(0x1 | 0x4 | 0x40) == ["gpu_idle", "sw_power_cap", "hw_thermal_slowdown"]


@pytest.mark.parametrize(
    "error, reason",
    [
        (nvml.LibraryMissing("x", python=True), nvml.PYNVML_MISSING_MSG),
        (nvml.LibraryMissing("nvmlInit: NVML Shared Library Not Found"),
         "the NVML library (libnvidia-ml.so.1) was not found: the NVIDIA driver is not installed "
         "(nvmlInit: NVML Shared Library Not Found)"),
        (nvml.DriverNotLoaded("nvmlInit: Driver Not Loaded"), "the NVIDIA driver is not loaded (nvmlInit: Driver Not Loaded)"),
        (nvml.NoPermission("nvmlInit: Insufficient Permissions"),
         "no permission to open the NVIDIA devices; this needs become (nvmlInit: Insufficient Permissions)"),
        (nvml.NvmlError("nvmlInit: Unknown Error"), "NVML could not be initialised: nvmlInit: Unknown Error"),
    ],
)
def test_init_failure_reason(error, reason):
    assert gpu_info.init_failure_reason(error) == reason
