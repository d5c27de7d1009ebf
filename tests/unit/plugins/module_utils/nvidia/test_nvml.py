"""NvmlBackend: pynvml errors become our exceptions; NVML is shut down exactly once."""
from __future__ import annotations

import pytest

from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import nvml
from ansible_collections.dlnode.gpu.tests.unit import fake_nvml


@pytest.mark.parametrize(
    "code, error, text",
    [
        (fake_nvml.NOT_SUPPORTED, nvml.NotSupported, "Not Supported"),
        (fake_nvml.NO_PERMISSION, nvml.NoPermission, "Insufficient Permissions"),
        (fake_nvml.DRIVER_NOT_LOADED, nvml.DriverNotLoaded, "Driver Not Loaded"),
        (fake_nvml.LIBRARY_NOT_FOUND, nvml.LibraryMissing, "NVML Shared Library Not Found"),
        (fake_nvml.FUNCTION_NOT_FOUND, nvml.FunctionMissing, "Function Not Found"),
        (fake_nvml.INVALID_ARGUMENT, nvml.InvalidArgument, "Invalid Argument"),
        (26, nvml.NotSupported, "NVML Error with code 26"),
        (fake_nvml.UNKNOWN, nvml.NvmlError, "Unknown Error"),
    ],
)
def test_errors_are_translated(backend, lib, code, error, text):
    lib.fail["nvmlDeviceGetPowerManagementLimit"] = code

    with pytest.raises(error) as raised:
        backend.power_limit(backend.handle(0))

    assert raised.type is error
    assert str(raised.value) == f"nvmlDeviceGetPowerManagementLimit: {text}"
    assert raised.value.function == "nvmlDeviceGetPowerManagementLimit"


def test_function_absent_from_pynvml_is_function_missing(backend, lib):
    lib.missing.add("nvmlDeviceGetRemappedRows")

    with pytest.raises(nvml.FunctionMissing) as raised:
        backend.remapped_rows(backend.handle(0))

    assert str(raised.value) == "nvmlDeviceGetRemappedRows is not available in the installed nvidia-ml-py (too old?)"


def test_pynvml_not_installed(monkeypatch):
    monkeypatch.setattr(nvml, "pynvml", None)
    backend = nvml.NvmlBackend()

    with pytest.raises(nvml.LibraryMissing) as raised:
        backend.init()

    assert raised.value.python is True
    assert str(raised.value) == nvml.PYNVML_MISSING_MSG
    assert "install nvidia-ml-py" in str(raised.value)


def test_default_library_is_pynvml():
    assert nvml.NvmlBackend()._lib is nvml.pynvml  # pylint: disable=protected-access


def test_shared_library_missing_is_not_a_python_problem(lib):
    lib.init_error = fake_nvml.LIBRARY_NOT_FOUND

    with pytest.raises(nvml.LibraryMissing) as raised:
        nvml.NvmlBackend(lib=lib).init()

    assert raised.value.python is False


def test_shutdown_only_after_successful_init(lib):
    lib.init_error = fake_nvml.DRIVER_NOT_LOADED
    backend = nvml.NvmlBackend(lib=lib)
    with pytest.raises(nvml.DriverNotLoaded):
        backend.init()

    backend.shutdown()

    assert lib.shutdowns == 0


def test_shutdown_runs_once_and_swallows_errors(lib):
    backend = nvml.NvmlBackend(lib=lib)
    backend.init()
    lib.fail["nvmlShutdown"] = fake_nvml.UNKNOWN

    backend.shutdown()
    backend.shutdown()

    assert lib.initialized == 1  # the failed shutdown did not run


def test_context_manager_shuts_down_on_error(lib):
    with pytest.raises(nvml.NotSupported):
        with nvml.NvmlBackend(lib=lib) as backend:
            lib.fail["nvmlDeviceGetMigMode"] = fake_nvml.NOT_SUPPORTED
            backend.mig_mode(backend.handle(0))

    assert lib.shutdowns == 1


def test_reads(backend):
    handle = backend.handle(0)

    assert backend.pci_bus_id(handle) == "00000000:00:06.0"  # bytes from the struct, decoded
    assert backend.ecc_mode(handle) == (True, True)
    assert backend.mig_mode(handle) == (False, False)
    assert backend.persistence_mode(handle) is True
    assert backend.power_limit_constraints(handle) == (200000, 700000)
    assert backend.compute_capability(handle) == (9, 0)
    assert backend.memory_total(handle) == 85520809984
    assert backend.clock(handle, nvml.CLOCK_SM) == 345
    assert backend.max_clock(handle, nvml.CLOCK_MEM) == 2619
    assert backend.supported_memory_clocks(handle) == [2619, 1593]
    assert backend.supported_graphics_clocks(handle, 1593)[:2] == [1980, 1965]
    assert backend.cuda_driver_version() == 13000


def test_retired_pages_when_supported(backend, lib):
    for name in ("nvmlDeviceGetRetiredPages", "nvmlDeviceGetRetiredPagesPendingStatus"):
        del lib.fail[name]

    assert backend.retired_pages(backend.handle(0)) == {"single_bit_ecc": 0, "double_bit_ecc": 0, "pending": False}


def test_writes_pass_nvml_values(backend, lib):
    handle = backend.handle(0)

    backend.set_persistence_mode(handle, False)
    backend.set_ecc_mode(handle, False)
    backend.set_mig_mode(handle, True)
    backend.set_power_limit(handle, 300000)

    assert lib.writes == [
        ("nvmlDeviceSetPersistenceMode", 0, 0),
        ("nvmlDeviceSetEccMode", 0, 0),
        ("nvmlDeviceSetMigMode", 0, 1),
        ("nvmlDeviceSetPowerManagementLimit", 0, 300000),
    ]


def test_str_results_are_kept():
    # Newer pynvml returns str; older returned bytes.
    assert nvml._text("580.159.04") == "580.159.04"  # pylint: disable=protected-access
    assert nvml._text(b"580.159.04") == "580.159.04"  # pylint: disable=protected-access
