"""Shared pytest setup: import this repository as the collection dlnode.gpu, run modules in-process."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_COLLECTIONS = ROOT / ".cache" / "collections"
_LINK = _COLLECTIONS / "ansible_collections" / "dlnode" / "gpu"
if not _LINK.exists():
    _LINK.parent.mkdir(parents=True, exist_ok=True)
    os.symlink("../../../..", _LINK)
sys.path.insert(0, str(_COLLECTIONS))

from ansible.module_utils import basic  # noqa: E402  (after the path is set)
from ansible.module_utils.testing import patch_module_args  # noqa: E402


class ModuleExit(Exception):
    """A module called exit_json or fail_json; `result` holds what it returned."""

    def __init__(self, result: dict, failed: bool):
        super().__init__(json.dumps(result, default=str))
        self.result = result
        self.failed = failed


def _exit_json(self, **kwargs):
    raise ModuleExit(kwargs, failed=False)


def _fail_json(self, msg, **kwargs):
    kwargs["msg"] = msg
    kwargs["failed"] = True
    raise ModuleExit(kwargs, failed=True)


@pytest.fixture
def run_module(monkeypatch):
    """run_module(module, args, check_mode=False, diff=False) -> (result, failed).

    Runs module.main() in-process with the given arguments and returns what it
    passed to exit_json/fail_json, so tests assert on real module results.
    """
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", _exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", _fail_json)

    def _run(module, args, check_mode=False, diff=False):
        full = dict(args)
        full["_ansible_check_mode"] = check_mode
        full["_ansible_diff"] = diff
        with patch_module_args(full):
            try:
                module.main()
            except ModuleExit as done:
                return done.result, done.failed
        raise AssertionError("module returned without exit_json or fail_json")

    return _run


@pytest.fixture
def warnings(monkeypatch):
    """The warnings modules emit through AnsibleModule.warn, in order."""
    seen = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, warning, **kwargs: seen.append(warning))
    return seen


@pytest.fixture
def lib():
    """A fake pynvml module built from the real H100 dump."""
    from ansible_collections.dlnode.gpu.tests.unit import fake_nvml  # pylint: disable=import-outside-toplevel
    return fake_nvml.FakePynvml()


@pytest.fixture
def backend(lib):  # pylint: disable=redefined-outer-name
    """An initialised NVML backend over the fake pynvml."""
    from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import nvml  # pylint: disable=import-outside-toplevel
    nvml_backend = nvml.NvmlBackend(lib=lib)
    nvml_backend.init()
    yield nvml_backend
    nvml_backend.shutdown()
