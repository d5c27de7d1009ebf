"""dlnode.gpu.nvidia_gpu against a fake NVML built from the real H100 dump."""
from __future__ import annotations

import json

import pytest


from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import gpu_state
from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import nvml
from ansible_collections.dlnode.gpu.plugins.modules import nvidia_gpu
from ansible_collections.dlnode.gpu.tests.unit import fake_nvml

UUID = "GPU-0ad4414f-aa1d-07b8-b043-5bc8e52d2e4b"


@pytest.fixture
def fake(monkeypatch):
    """A one-GPU fake NVML wired into the module."""
    lib = fake_nvml.FakePynvml()
    monkeypatch.setattr(nvidia_gpu, "BACKEND_FACTORY", lambda: nvml.NvmlBackend(lib=lib))
    return lib


@pytest.fixture
def boot_id(tmp_path, monkeypatch):
    """A boot id file; write a new id to it to simulate a reboot."""
    path = tmp_path / "boot_id"
    path.write_text("11111111-aaaa-bbbb-cccc-000000000001\n", encoding="ascii")
    monkeypatch.setattr(gpu_state, "BOOT_ID", str(path))
    return path


@pytest.fixture
def gpu(run_module, fake, boot_id, tmp_path):
    """run the module with a state file in tmp_path: gpu(args, check_mode=False, diff=False)."""
    state_file = tmp_path / "state" / "nvidia_gpu_state.json"

    def _run(args, check_mode=False, diff=False):
        full = {"state_file": str(state_file)}
        full.update(args)
        return run_module(nvidia_gpu, full, check_mode=check_mode, diff=diff)

    _run.state_file = state_file
    _run.fake = fake
    _run.boot_id = boot_id
    return _run


def writes(fake):
    return [write[0] for write in fake.writes]


# Per setting: a value that changes the H100, the write that makes it, a
# value it already has, the NVML call that fails when the GPU does not
# support the setting, and a bad value with the start of its error message.
SETTINGS = {
    "persistence_mode": dict(
        change=False,
        write="nvmlDeviceSetPersistenceMode",
        same=True,
        call="nvmlDeviceGetPersistenceMode",
        invalid="sometimes",
        message="argument 'persistence_mode' is of type",
    ),
    "power_limit": dict(
        change=500,
        write="nvmlDeviceSetPowerManagementLimit",
        same=700,
        call="nvmlDeviceGetPowerManagementLimitConstraints",
        invalid=800,
        message="power_limit: 800 W is outside the range this GPU allows: 200-700 W (or use 'default')",
    ),
    "compute_mode": dict(
        change="exclusive_process",
        write="nvmlDeviceSetComputeMode",
        same="default",
        call="nvmlDeviceGetComputeMode",
        invalid="exclusive_thread",
        message="value of compute_mode must be one of: default, exclusive_process, prohibited, got: exclusive_thread",
    ),
    "applications_clocks": dict(
        change={"graphics": 1410, "memory": 1593},
        write="nvmlDeviceSetApplicationsClocks",
        same={"preset": "max"},
        call="nvmlDeviceGetApplicationsClock",
        invalid={"graphics": 1980, "memory": 3000},
        message="applications_clocks: memory 3000 MHz is not supported by this GPU; supported memory clocks: 2619, 1593 MHz",
    ),
    "gpu_locked_clocks": dict(
        change={"min": 1200, "max": 1980},
        write="nvmlDeviceSetGpuLockedClocks",
        same=None,
        call="nvmlDeviceSetGpuLockedClocks",
        invalid={"min": 100, "max": 1980},
        message="gpu_locked_clocks: min 100 MHz is outside the graphics clock range this GPU supports: 345-1980 MHz",
    ),
    "memory_locked_clocks": dict(
        change={"min": 1593, "max": 2619},
        write="nvmlDeviceSetMemoryLockedClocks",
        same=None,
        call="nvmlDeviceSetMemoryLockedClocks",
        invalid={"min": 1593, "max": 3000},
        message="memory_locked_clocks: max 3000 MHz is outside the memory clock range this GPU supports: 1593-2619 MHz",
    ),
    "ecc_mode": dict(
        change=False,
        write="nvmlDeviceSetEccMode",
        same=True,
        call="nvmlDeviceGetEccMode",
        invalid="sometimes",
        message="argument 'ecc_mode' is of type",
    ),
    "mig_mode": dict(
        change=True,
        write="nvmlDeviceSetMigMode",
        same=False,
        call="nvmlDeviceGetMigMode",
        invalid="sometimes",
        message="argument 'mig_mode' is of type",
    ),
}
ALL = sorted(SETTINGS)
READABLE = [name for name in ALL if SETTINGS[name]["same"] is not None]


# -- every setting -------------------------------------------------------------


@pytest.mark.parametrize("setting", ALL)
def test_change_writes_once_and_reports(gpu, fake, setting):
    result, failed = gpu({setting: SETTINGS[setting]["change"]})

    assert not failed, result
    assert result["changed"] is True
    assert writes(fake) == [SETTINGS[setting]["write"]]
    entry = result["gpus"][0]
    assert entry["uuid"] == UUID
    assert entry["changed_settings"] == [setting]


@pytest.mark.parametrize("setting", READABLE)
def test_value_already_set_is_not_written(gpu, fake, setting):
    result, failed = gpu({setting: SETTINGS[setting]["same"]})

    assert not failed, result
    assert result["changed"] is False
    assert fake.writes == []
    assert result["gpus"][0]["changed_settings"] == []


@pytest.mark.parametrize("setting", ALL)
def test_second_run_is_idempotent(gpu, fake, setting):
    gpu({setting: SETTINGS[setting]["change"]})
    fake.writes.clear()

    result, failed = gpu({setting: SETTINGS[setting]["change"]})

    assert not failed, result
    assert result["changed"] is False
    assert fake.writes == []


@pytest.mark.parametrize("setting", ALL)
def test_check_mode_reports_change_and_writes_nothing(gpu, fake, setting):
    result, failed = gpu({setting: SETTINGS[setting]["change"]}, check_mode=True)

    assert not failed, result
    assert result["changed"] is True
    assert fake.writes == []
    assert not gpu.state_file.exists()


@pytest.mark.parametrize("setting", ALL)
def test_unsupported_fails_by_default(gpu, fake, setting):
    fake.fail[SETTINGS[setting]["call"]] = fake_nvml.NOT_SUPPORTED

    result, failed = gpu({setting: SETTINGS[setting]["change"]})

    assert failed
    assert result["msg"].startswith(f"{setting}: not supported on GPU 0 ({UUID})")
    assert "set on_unsupported to warn or skip to carry on without it" in result["msg"]


@pytest.mark.parametrize("setting", ALL)
def test_unsupported_warn_skips_with_a_warning(gpu, fake, warnings, setting):
    fake.fail[SETTINGS[setting]["call"]] = fake_nvml.NOT_SUPPORTED

    result, failed = gpu({setting: SETTINGS[setting]["change"], "on_unsupported": "warn"})

    assert not failed, result
    assert result["changed"] is False
    assert setting in result["gpus"][0]["skipped"]
    assert any(warning.startswith(f"{setting}: not supported on GPU 0") for warning in warnings)


@pytest.mark.parametrize("setting", ALL)
def test_unsupported_skip_is_silent(gpu, fake, warnings, setting):
    fake.fail[SETTINGS[setting]["call"]] = fake_nvml.NOT_SUPPORTED

    result, failed = gpu({setting: SETTINGS[setting]["change"], "on_unsupported": "skip"})

    assert not failed, result
    assert result["changed"] is False
    assert setting in result["gpus"][0]["skipped"]
    assert not [warning for warning in warnings if "not supported" in warning]


@pytest.mark.parametrize("setting", ALL)
def test_no_permission_asks_for_become(gpu, fake, setting):
    fake.write_error = fake_nvml.NO_PERMISSION

    result, failed = gpu({setting: SETTINGS[setting]["change"]})

    assert failed
    assert result["msg"].startswith(f"{setting}: changing it on GPU 0 ({UUID}) needs root privileges")
    assert "needs become" in result["msg"]
    assert "Insufficient Permissions" in result["msg"]
    assert result["changed"] is False


@pytest.mark.parametrize("setting", ALL)
def test_invalid_value_names_parameter_and_range(gpu, fake, setting):
    result, failed = gpu({setting: SETTINGS[setting]["invalid"]})

    assert failed
    assert result["msg"].startswith(SETTINGS[setting]["message"])
    assert fake.writes == []


@pytest.mark.parametrize("setting", ALL)
def test_diff_shows_before_and_after(gpu, setting):
    result, _failed = gpu({setting: SETTINGS[setting]["change"]}, diff=True)

    key = f"gpu0 {UUID}"
    assert result["diff"]["before"][key][setting] == result["gpus"][0]["before"][setting]
    assert result["diff"]["after"][key][setting] == result["gpus"][0]["after"][setting]
    assert result["diff"]["before"][key] != result["diff"]["after"][key]


# -- setting specifics ---------------------------------------------------------


def test_persistence_mode_disable_reads_back(gpu, fake):
    result, _failed = gpu({"persistence_mode": False})

    assert fake.writes == [("nvmlDeviceSetPersistenceMode", 0, 0)]
    assert result["gpus"][0]["before"] == {"persistence_mode": True}
    assert result["gpus"][0]["after"] == {"persistence_mode": False}


def test_power_limit_in_watts_is_written_in_milliwatts(gpu, fake):
    result, _failed = gpu({"power_limit": "450.5"})

    assert fake.writes == [("nvmlDeviceSetPowerManagementLimit", 0, 450500)]
    assert result["gpus"][0]["after"] == {"power_limit": 450.5}


def test_power_limit_default_restores_default(gpu, fake):
    gpu({"power_limit": 300})
    fake.writes.clear()

    result, _failed = gpu({"power_limit": "default"})

    assert fake.writes == [("nvmlDeviceSetPowerManagementLimit", 0, 700000)]
    assert result["gpus"][0]["before"] == {"power_limit": 300}
    assert result["gpus"][0]["after"] == {"power_limit": 700}


def test_power_limit_default_when_already_default(gpu, fake):
    result, _failed = gpu({"power_limit": "default"})

    assert result["changed"] is False
    assert fake.writes == []


def test_power_limit_below_minimum_fails_in_check_mode_too(gpu):
    result, failed = gpu({"power_limit": 150}, check_mode=True)

    assert failed
    assert result["msg"] == (
        f"power_limit: 150 W is outside the range this GPU allows: 200-700 W (or use 'default') (GPU 0 ({UUID}))"
    )


@pytest.mark.parametrize("value", ["abc", "-5", "0", True, "nan", [300]])
def test_power_limit_not_a_number(gpu, value):
    result, failed = gpu({"power_limit": value})

    assert failed
    assert result["msg"] == (
        f"power_limit: expected a positive number of watts (such as 300) or 'default', got {value!r}"
    )


def test_compute_mode_prohibited(gpu, fake):
    result, _failed = gpu({"compute_mode": "prohibited"})

    assert fake.writes == [("nvmlDeviceSetComputeMode", 0, 2)]
    assert result["gpus"][0]["after"] == {"compute_mode": "prohibited"}


def test_applications_clocks_warn_deprecated(gpu, warnings):
    gpu({"applications_clocks": {"preset": "default"}})

    assert any("deprecated in NVML 13" in warning for warning in warnings)


def test_applications_clocks_values_are_set_and_read_back(gpu, fake):
    result, _failed = gpu({"applications_clocks": {"graphics": 1410, "memory": 1593}})

    assert fake.writes == [("nvmlDeviceSetApplicationsClocks", 0, 1593, 1410)]
    assert result["gpus"][0]["before"] == {"applications_clocks": {"graphics": 1980, "memory": 2619}}
    assert result["gpus"][0]["after"] == {"applications_clocks": {"graphics": 1410, "memory": 1593}}


def test_applications_clocks_default_resets(gpu, fake):
    gpu({"applications_clocks": {"graphics": 1410, "memory": 1593}})
    fake.writes.clear()

    result, _failed = gpu({"applications_clocks": {"preset": "default"}})

    assert fake.writes == [("nvmlDeviceResetApplicationsClocks", 0)]
    assert result["gpus"][0]["after"] == {"applications_clocks": {"graphics": 1980, "memory": 2619}}


def test_applications_clocks_max_picks_highest_supported_pair(gpu, fake):
    gpu({"applications_clocks": {"graphics": 1410, "memory": 1593}})
    fake.writes.clear()

    gpu({"applications_clocks": {"preset": "max"}})

    assert fake.writes == [("nvmlDeviceSetApplicationsClocks", 0, 2619, 1980)]


def test_applications_clocks_graphics_not_supported(gpu):
    result, failed = gpu({"applications_clocks": {"graphics": 1234, "memory": 2619}}, check_mode=True)

    assert failed
    assert result["msg"].startswith(
        "applications_clocks: graphics 1234 MHz is not supported with memory 2619 MHz; "
        "supported graphics clocks: 345-1980 MHz"
    )


@pytest.mark.parametrize(
    "value, message",
    [
        ({"preset": "max", "graphics": 1980}, "applications_clocks: set either preset (max or default) or graphics and memory, not both"),
        ({"graphics": 1980}, "applications_clocks: set preset (max or default), or both graphics and memory (in MHz)"),
        ({}, "applications_clocks: set preset (max or default), or both graphics and memory (in MHz)"),
        ({"graphics": -1, "memory": 2619}, "applications_clocks: graphics and memory must be positive MHz values, got graphics=-1 memory=2619"),
        ({"preset": "fastest"}, "value of preset must be one of: max, default, got: fastest found in applications_clocks"),
    ],
)
def test_applications_clocks_bad_shape(gpu, value, message):
    result, failed = gpu({"applications_clocks": value})

    assert failed
    assert result["msg"] == message


@pytest.mark.parametrize("setting", ["gpu_locked_clocks", "memory_locked_clocks"])
@pytest.mark.parametrize(
    "value, message",
    [
        ({"min": 1500}, "{setting}: set both min and max (in MHz), or reset=true"),
        ({}, "{setting}: set both min and max (in MHz), or reset=true"),
        ({"min": 1500, "max": 1600, "reset": True}, "{setting}: set either reset=true or min and max, not both"),
        ({"min": 1980, "max": 1600}, "{setting}: min (1980 MHz) must not be greater than max (1600 MHz)"),
        ({"min": 0, "max": 1600}, "{setting}: min and max must be positive MHz values, got min=0 max=1600"),
        ({"min": "fast", "max": 1600}, "argument 'min' is of type"),
    ],
)
def test_locked_clocks_bad_shape(gpu, fake, setting, value, message):
    result, failed = gpu({setting: value})

    assert failed
    assert result["msg"].startswith(message.format(setting=setting))
    assert fake.writes == []


def test_gpu_locked_clocks_values_reach_nvml(gpu, fake):
    result, _failed = gpu({"gpu_locked_clocks": {"min": 1200, "max": 1980}})

    assert fake.writes == [("nvmlDeviceSetGpuLockedClocks", 0, 1200, 1980)]
    assert fake.devices[0].locked_gpu_clocks == (1200, 1980)
    assert result["gpus"][0]["before"] == {"gpu_locked_clocks": "unknown"}
    assert result["gpus"][0]["after"] == {"gpu_locked_clocks": {"min": 1200, "max": 1980}}


def test_memory_locked_clocks_reset(gpu, fake):
    gpu({"memory_locked_clocks": {"min": 1593, "max": 1593}})
    fake.writes.clear()

    result, _failed = gpu({"memory_locked_clocks": {"reset": True}})

    assert fake.writes == [("nvmlDeviceResetMemoryLockedClocks", 0)]
    assert fake.devices[0].locked_memory_clocks is None
    assert result["gpus"][0]["before"] == {"memory_locked_clocks": {"min": 1593, "max": 1593}}
    assert result["gpus"][0]["after"] == {"memory_locked_clocks": "reset"}

    again, _failed = gpu({"memory_locked_clocks": {"reset": True}})
    assert again["changed"] is False


def test_locked_clocks_range_unchecked_when_gpu_cannot_list_clocks(gpu, fake):
    fake.fail["nvmlDeviceGetSupportedMemoryClocks"] = fake_nvml.NOT_SUPPORTED

    result, failed = gpu({"gpu_locked_clocks": {"min": 100, "max": 5000}})

    # NVML checks the range itself on write; the fake accepts it.
    assert not failed, result
    assert fake.writes == [("nvmlDeviceSetGpuLockedClocks", 0, 100, 5000)]


def test_ecc_change_is_pending_until_reboot(gpu, fake):
    result, _failed = gpu({"ecc_mode": False})

    assert result["changed"] is True
    assert result["reboot_required"] is True
    assert result["reset_required"] is False
    assert result["gpus"][0]["reboot_required"] is True
    assert result["gpus"][0]["after"] == {"ecc_mode": False}

    again, _failed = gpu({"ecc_mode": False})
    assert again["changed"] is False
    assert again["reboot_required"] is True

    fake.reboot()
    after_reboot, _failed = gpu({"ecc_mode": False})
    assert after_reboot["changed"] is False
    assert after_reboot["reboot_required"] is False


def test_ecc_check_mode_reports_reboot_required(gpu, fake):
    result, _failed = gpu({"ecc_mode": False}, check_mode=True)

    assert result["reboot_required"] is True
    assert fake.devices[0].values["ecc_mode"] == [1, 1]


def test_mig_change_is_pending_until_reset(gpu, fake):
    result, _failed = gpu({"mig_mode": True})

    assert result["changed"] is True
    assert result["reset_required"] is True
    assert result["reboot_required"] is False
    assert fake.writes == [("nvmlDeviceSetMigMode", 0, 1)]

    fake.reboot()
    again, _failed = gpu({"mig_mode": True})
    assert again["changed"] is False
    assert again["reset_required"] is False


# -- state file and boot id ----------------------------------------------------


def test_locked_clocks_state_file_survives_runs_but_not_reboots(gpu, fake, boot_id):
    args = {"gpu_locked_clocks": {"min": 1200, "max": 1980}, "memory_locked_clocks": {"min": 2619, "max": 2619}}

    first, _failed = gpu(args)
    assert first["changed"] is True
    state = json.loads(gpu.state_file.read_text(encoding="utf-8"))
    assert state["gpus"][UUID] == {
        "boot_id": "11111111-aaaa-bbbb-cccc-000000000001",
        "settings": {
            "gpu_locked_clocks": {"min": 1200, "max": 1980},
            "memory_locked_clocks": {"min": 2619, "max": 2619},
        },
    }

    fake.writes.clear()
    second, _failed = gpu(args)
    assert second["changed"] is False
    assert fake.writes == []

    # Reboot: the driver forgets locked clocks and the kernel makes a new boot id.
    fake.reboot()
    boot_id.write_text("22222222-aaaa-bbbb-cccc-000000000002\n", encoding="ascii")
    third, _failed = gpu(args)
    assert third["changed"] is True
    assert third["gpus"][0]["before"]["gpu_locked_clocks"] == "unknown"
    assert writes(fake) == ["nvmlDeviceSetGpuLockedClocks", "nvmlDeviceSetMemoryLockedClocks"]
    assert fake.devices[0].locked_gpu_clocks == (1200, 1980)
    state = json.loads(gpu.state_file.read_text(encoding="utf-8"))
    assert state["gpus"][UUID]["boot_id"] == "22222222-aaaa-bbbb-cccc-000000000002"


def test_changed_clock_request_is_applied_in_same_boot(gpu, fake):
    gpu({"gpu_locked_clocks": {"min": 1200, "max": 1980}})
    fake.writes.clear()

    result, _failed = gpu({"gpu_locked_clocks": {"min": 1500, "max": 1980}})

    assert result["changed"] is True
    assert result["gpus"][0]["before"] == {"gpu_locked_clocks": {"min": 1200, "max": 1980}}
    assert fake.writes == [("nvmlDeviceSetGpuLockedClocks", 0, 1500, 1980)]


def test_state_file_untouched_by_settings_nvml_reads_back(gpu):
    gpu({"power_limit": 500, "persistence_mode": False})

    assert not gpu.state_file.exists()


def test_corrupt_state_file_warns_and_reapplies(gpu, warnings):
    gpu.state_file.parent.mkdir(parents=True)
    gpu.state_file.write_text("{not json", encoding="utf-8")

    result, failed = gpu({"gpu_locked_clocks": {"min": 1200, "max": 1980}})

    assert not failed, result
    assert result["changed"] is True
    assert any(warning.startswith(f"state_file: cannot read {gpu.state_file}") for warning in warnings)
    assert json.loads(gpu.state_file.read_text(encoding="utf-8"))["gpus"][UUID]["settings"]


def test_unwritable_state_file_fails_after_applying(gpu, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("", encoding="ascii")

    result, failed = gpu({"gpu_locked_clocks": {"min": 1200, "max": 1980}, "state_file": str(blocker / "state.json")})

    assert failed
    assert result["msg"].startswith(f"state_file: cannot write {blocker / 'state.json'} (")
    assert result["msg"].endswith("writing it needs become")
    assert result["changed"] is True


def test_unreadable_boot_id_warns_and_always_applies(gpu, warnings, boot_id):
    boot_id.unlink()

    gpu({"gpu_locked_clocks": {"min": 1200, "max": 1980}})
    second, _failed = gpu({"gpu_locked_clocks": {"min": 1200, "max": 1980}})

    assert second["changed"] is True
    assert any("cannot read the boot id" in warning for warning in warnings)
    assert not gpu.state_file.exists()


# -- GPU selection -------------------------------------------------------------


@pytest.fixture
def two_gpus(fake):
    fake.devices.append(fake_nvml.FakeDevice(fake.system, 1))
    return fake


@pytest.mark.parametrize(
    "selector",
    [[1], ["1"], ["GPU-0ad4414f-aa1d-07b8-b043-5bc8e52d2e01"], ["0000:00:07.0"], ["00000000:00:07.0"], ["00:07.0"]],
)
def test_select_one_gpu(gpu, two_gpus, selector):
    result, failed = gpu({"gpus": selector, "power_limit": 500})

    assert not failed, result
    assert [entry["index"] for entry in result["gpus"]] == [1]
    assert two_gpus.writes == [("nvmlDeviceSetPowerManagementLimit", 1, 500000)]


def test_all_is_the_default(gpu, two_gpus):
    result, _failed = gpu({"power_limit": 500})

    assert [entry["pci_bus_id"] for entry in result["gpus"]] == ["0000:00:06.0", "0000:00:07.0"]
    assert [write[1] for write in two_gpus.writes] == [0, 1]


@pytest.mark.usefixtures("two_gpus")
def test_selection_is_deduplicated(gpu):
    result, _failed = gpu({"gpus": [0, UUID, "all"], "power_limit": 500})

    assert [entry["index"] for entry in result["gpus"]] == [0, 1]


@pytest.mark.parametrize(
    "selector, message",
    [
        ([5], "gpus: there is no GPU with index 5 (this node has GPUs 0-1)"),
        (["GPU-ffffffff-0000-0000-0000-000000000000"], "gpus: there is no GPU with UUID GPU-ffffffff-0000-0000-0000-000000000000"),
        (["0000:81:00.0"], "gpus: there is no GPU at PCI bus id 0000:81:00.0"),
        (["first"], "gpus: 'first' is not 'all', a GPU index (0), a UUID (GPU-...) or a PCI bus id (0000:00:06.0)"),
        ([True], "gpus: True is not 'all', a GPU index (0), a UUID (GPU-...) or a PCI bus id (0000:00:06.0)"),
        ([], "gpus: name at least one GPU, or 'all'"),
    ],
)
def test_bad_selection(gpu, two_gpus, selector, message):
    result, failed = gpu({"gpus": selector, "power_limit": 500})

    assert failed
    assert result["msg"] == message
    assert two_gpus.writes == []


def test_invalid_value_on_one_gpu_writes_nothing_anywhere(gpu, two_gpus):
    two_gpus.devices[1].values["power_limit_constraints_mw"] = [200000, 400000]

    result, failed = gpu({"power_limit": 500})

    assert failed
    assert "(GPU 1 (GPU-0ad4414f-aa1d-07b8-b043-5bc8e52d2e01))" in result["msg"]
    assert two_gpus.writes == []
    assert result["changed"] is False


def test_errors_from_several_settings_are_all_reported(gpu):
    result, failed = gpu({"power_limit": 900, "memory_locked_clocks": {"min": 10, "max": 20}})

    assert failed
    assert "power_limit: 900 W is outside" in result["msg"]
    assert "memory_locked_clocks: min 10 MHz is outside" in result["msg"]


def test_failed_write_does_not_stop_other_settings(gpu, fake):
    fake.fail["nvmlDeviceSetComputeMode"] = fake_nvml.UNKNOWN

    result, failed = gpu({"compute_mode": "prohibited", "power_limit": 500})

    assert failed
    assert result["msg"] == f"compute_mode: NVML failed on GPU 0 ({UUID}) (nvmlDeviceSetComputeMode: Unknown Error)"
    assert result["changed"] is True
    assert result["gpus"][0]["changed_settings"] == ["power_limit"]
    assert fake.devices[0].values["power_limit_mw"] == 500000


def test_no_gpu_warns_and_changes_nothing(gpu, fake, warnings):
    fake.devices.clear()

    result, failed = gpu({"power_limit": 500})

    assert not failed
    assert result["changed"] is False
    assert result["gpus"] == []
    assert any("found no NVIDIA GPU" in warning for warning in warnings)


def test_no_settings_only_reports_gpus(gpu):
    result, failed = gpu({})

    assert not failed
    assert result["changed"] is False
    assert result["gpus"][0]["name"] == "NVIDIA H100 80GB HBM3"
    assert "state_file" not in result


# -- NVML not usable -----------------------------------------------------------


def test_library_missing(run_module, monkeypatch):
    monkeypatch.setattr(nvml, "pynvml", None)
    monkeypatch.setattr(nvidia_gpu, "BACKEND_FACTORY", nvml.NvmlBackend)

    result, failed = run_module(nvidia_gpu, {"power_limit": 500})

    assert failed
    assert result["msg"].startswith("Failed to import the required Python library (nvidia-ml-py)")
    assert "install nvidia-ml-py" in result["msg"]


def test_nvml_shared_library_missing(gpu, fake):
    fake.init_error = fake_nvml.LIBRARY_NOT_FOUND

    result, failed = gpu({"power_limit": 500})

    assert failed
    assert result["msg"].startswith(
        "the NVML library (libnvidia-ml.so.1) was not found: the NVIDIA driver is not installed"
    )


def test_driver_not_loaded(gpu, fake):
    fake.init_error = fake_nvml.DRIVER_NOT_LOADED

    result, failed = gpu({"power_limit": 500})

    assert failed
    assert result["msg"] == "the NVIDIA driver is not loaded (nvmlInit: Driver Not Loaded)"
    assert fake.shutdowns == 0


def test_no_permission_to_open_devices(gpu, fake):
    fake.init_error = fake_nvml.NO_PERMISSION

    result, failed = gpu({"power_limit": 500})

    assert failed
    assert "needs become" in result["msg"]


@pytest.mark.parametrize("how", ["attribute", "code"])
def test_function_missing_means_driver_too_old(gpu, fake, how):
    if how == "attribute":
        fake.missing.add("nvmlDeviceSetGpuLockedClocks")
    else:
        fake.fail["nvmlDeviceSetGpuLockedClocks"] = fake_nvml.FUNCTION_NOT_FOUND

    result, failed = gpu({"gpu_locked_clocks": {"min": 1200, "max": 1980}})

    assert failed
    assert result["msg"].startswith(
        f"gpu_locked_clocks: changing it on GPU 0 ({UUID}) needs an NVML function that the installed "
        "NVIDIA driver or nvidia-ml-py lacks; the driver is too old (nvmlDeviceSetGpuLockedClocks"
    )
    assert not gpu.state_file.exists()


def test_function_missing_can_be_skipped(gpu, fake):
    fake.missing.add("nvmlDeviceSetGpuLockedClocks")

    result, failed = gpu({"gpu_locked_clocks": {"min": 1200, "max": 1980}, "on_unsupported": "skip"})

    assert not failed
    assert "gpu_locked_clocks" in result["gpus"][0]["skipped"]


@pytest.mark.parametrize(
    "args",
    [
        {"power_limit": 500},
        {"power_limit": 9000},
        {"gpus": [7], "power_limit": 500},
        {"gpu_locked_clocks": {"min": 1200, "max": 1980}},
    ],
)
def test_nvml_is_always_shut_down(gpu, fake, args):
    fake.write_error = fake_nvml.NO_PERMISSION if args.get("power_limit") == 500 else None

    gpu(args)

    assert fake.shutdowns == 1
    assert fake.initialized == 0


def test_read_back_mismatch_warns(gpu, fake, warnings, monkeypatch):
    # A driver that accepts the limit but keeps its own, as some firmware does.
    monkeypatch.setattr(fake, "nvmlDeviceSetPowerManagementLimit", lambda handle, limit: None)

    result, failed = gpu({"power_limit": 500})

    assert not failed
    assert result["gpus"][0]["after"] == {"power_limit": 700}
    assert f"power_limit: set to 500 on GPU 0 ({UUID}) but NVML reads back 700" in warnings
