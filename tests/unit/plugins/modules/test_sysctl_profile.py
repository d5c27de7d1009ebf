from __future__ import annotations

import os

import pytest

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.modules import sysctl_profile


@pytest.fixture
def node(tmp_path, monkeypatch):
    """A fake root with /proc/sys values like a fresh Debian 12 node."""
    values = {
        "vm/swappiness": "60\n",
        "vm/max_map_count": "65530\n",
        "net/ipv4/tcp_rmem": "4096\t131072\t6291456\n",
        "net/core/rmem_max": "212992\n",
    }
    for name, value in values.items():
        path = tmp_path / "proc/sys" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value)
    monkeypatch.setattr(files, "ROOT", str(tmp_path))
    return tmp_path


def args(node, **settings):
    return {"settings": settings, "path": "/etc/sysctl.d/90-dlnode.conf"}


def value(node, name):
    return (node / "proc/sys" / name).read_text()


def test_applies_file_and_runtime_then_is_idempotent(node, run_module):
    request = args(node, **{"vm.swappiness": 10, "net.ipv4.tcp_rmem": [4096, 87380, 134217728]})
    result, failed = run_module(sysctl_profile, request)
    assert not failed and result["changed"]
    assert value(node, "vm/swappiness") == "10\n"
    assert value(node, "net/ipv4/tcp_rmem") == "4096 87380 134217728\n"
    assert result["runtime"]["vm.swappiness"] == {"before": "60", "after": "10"}
    text = (node / "etc/sysctl.d/90-dlnode.conf").read_text()
    assert "net.ipv4.tcp_rmem = 4096 87380 134217728\nvm.swappiness = 10\n" in text
    again = run_module(sysctl_profile, request)[0]
    assert not again["changed"] and again["runtime"] == {}


def test_check_mode_predicts_and_writes_nothing(node, run_module):
    request = args(node, **{"vm.swappiness": 10, "vm.max_map_count": 65530})
    result, failed = run_module(sysctl_profile, request, check_mode=True, diff=True)
    assert not failed and result["changed"] and result["file_changed"]
    assert result["runtime"] == {"vm.swappiness": {"before": "60", "after": "10"}}
    assert "vm.swappiness = 10" in result["diff"]["after"] and result["diff"]["before"] == ""
    assert value(node, "vm/swappiness") == "60\n"
    assert not (node / "etc").exists()


def test_null_drops_a_key(node, run_module):
    result = run_module(sysctl_profile, args(node, **{"vm.swappiness": 10, "vm.max_map_count": None}))[0]
    assert result["settings"] == {"vm.swappiness": "10"}
    assert "max_map_count" not in (node / "etc/sysctl.d/90-dlnode.conf").read_text()


def test_read_only_key_is_reported_not_fatal(node, run_module, monkeypatch):
    # What a container shows: the key is there, but its /proc/sys file is not writable.
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: not str(path).endswith("rmem_max")
                        and real_access(path, mode))
    result, failed = run_module(sysctl_profile, args(node, **{"net.core.rmem_max": 268435456}))
    assert not failed and not result["runtime"]
    assert result["unsettable"]["net.core.rmem_max"].startswith("read-only here (running value 212992)")
    assert "268435456" in (node / "etc/sysctl.d/90-dlnode.conf").read_text()
    assert value(node, "net/core/rmem_max") == "212992\n"


def test_refused_write_is_reported_and_can_fail(node, run_module, monkeypatch):
    real_open = os.open

    def refusing_open(path, flags, *rest):
        if flags & os.O_WRONLY and str(path).endswith("rmem_max"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *rest)

    monkeypatch.setattr(os, "open", refusing_open)
    result, failed = run_module(sysctl_profile, args(node, **{"net.core.rmem_max": 268435456}))
    assert not failed and "refused the write" in result["unsettable"]["net.core.rmem_max"]
    request = dict(args(node, **{"net.core.rmem_max": 268435456}), unsettable="fail")
    result, failed = run_module(sysctl_profile, request)
    assert failed and result["msg"].startswith("could not set running values (net.core.rmem_max: ")


def test_missing_key_is_reported(node, run_module):
    result, failed = run_module(sysctl_profile, args(node, **{"kernel.numa_balancing": 0}))
    assert not failed and result["unsettable"] == {"kernel.numa_balancing": "no such key in this kernel"}


@pytest.mark.parametrize("settings, message", [
    ({"swappiness": 10}, "settings: 'swappiness' is not a sysctl key (dotted words such as vm.swappiness)"),
    ({"vm.swappiness": True}, "settings.vm.swappiness: expected an integer, a string or a list of integers, got True"),
    ({"vm.swappiness": {"a": 1}}, "settings.vm.swappiness: expected an integer"),
    ({"vm.swappiness": "  "}, "settings.vm.swappiness: empty value; use null to drop a key"),
])
def test_bad_input_names_the_key(node, run_module, settings, message):
    result, failed = run_module(sysctl_profile, args(node, **settings))
    assert failed and result["msg"].startswith(message)


def test_relative_path_is_refused(node, run_module):
    request = dict(args(node, **{"vm.swappiness": 10}), path="relative/file.conf")
    result, failed = run_module(sysctl_profile, request)
    assert failed and result["msg"] == "path must be an absolute path, got relative/file.conf"
    assert value(node, "vm/swappiness") == "60\n" and not (node / "relative").exists()
