"""nvidia/nvml_probe against a fake libnvidia-ml (there is none on this machine)."""
from __future__ import annotations

from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import nvml_probe


class Function:
    def __init__(self, call):
        self.call, self.restype = call, None

    def __call__(self, *args):
        return self.call(*args)


class FakeNvml:
    def __init__(self, init_rc=0, version=b"580.159.04", count=1):
        self.shutdowns = 0
        self.nvmlInit_v2 = Function(lambda: init_rc)
        self.nvmlErrorString = Function(lambda rc: {18: b"Driver/library version mismatch"}.get(rc, b"Unknown Error"))
        self.nvmlSystemGetDriverVersion = Function(lambda buffer, size: buffer.__setattr__("value", version) or 0)
        self.nvmlDeviceGetCount_v2 = Function(lambda pointer: setattr(pointer._obj, "value", count) or 0)
        self.nvmlShutdown = Function(self._shutdown)

    def _shutdown(self):
        self.shutdowns += 1
        return 0


def test_a_working_driver():
    lib = FakeNvml()
    assert nvml_probe.probe(loader=lambda name: lib) == {"ok": True, "driver_version": "580.159.04", "gpu_count": 1,
                                                         "reason": None}
    assert lib.shutdowns == 1


def test_version_mismatch_is_named():
    found = nvml_probe.probe(loader=lambda name: FakeNvml(init_rc=18))
    assert found == {"ok": False, "driver_version": None, "gpu_count": None,
                     "reason": "nvmlInit: Driver/library version mismatch"}


def test_no_library():
    def missing(name):
        raise OSError(f"{name}: cannot open shared object file: No such file or directory")
    found = nvml_probe.probe(loader=missing)
    assert not found["ok"] and found["reason"] == ("libnvidia-ml.so.1 cannot be loaded (libnvidia-ml.so.1: cannot open "
                                                   "shared object file: No such file or directory)")
