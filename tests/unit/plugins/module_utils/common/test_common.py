"""module_utils.common: the module skeleton, plans and commands."""
from __future__ import annotations

import pytest
from ansible.module_utils import basic

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files, module as skeleton
from ansible_collections.dlnode.gpu.plugins.module_utils.common.commands import CommandError, Commands
from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError
from ansible_collections.dlnode.gpu.plugins.module_utils.common.plans import Plan, Step, step_to

SPEC = dict(
    path=dict(type="path"),
    name=dict(type="str"),
    paths=dict(type="list", elements="path"),
    volumes=dict(type="list", elements="dict", options=dict(mount=dict(type="path"), label=dict(type="str"))),
    unit=dict(type="dict", options=dict(file=dict(type="path"))),
)


def test_every_relative_path_option_is_named_nested_ones_too():
    params = dict(path="rel", name="rel", paths=["/ok", "x/y"], volumes=[dict(mount="/a"), dict(mount="b")],
                  unit=dict(file="c.service"))
    assert skeleton.relative_paths(params, SPEC) == [
        ("path", "rel"), ("paths", "x/y"), ("volumes[1].mount", "b"), ("unit.file", "c.service")]
    with pytest.raises(DlnodeError, match="^path must be an absolute path, got rel; paths must be"):
        skeleton.check_absolute_paths(params, SPEC)
    skeleton.check_absolute_paths(dict(path="/abs", volumes=None), SPEC)


def test_run_module_turns_a_refusal_into_a_failure_with_the_result(run_module):
    class Module:  # a module file as the skeleton wants it
        @staticmethod
        def run(module, result):
            result["seen"] = module.params["path"]
            raise DlnodeError("refused", hint="do this")

        @classmethod
        def main(cls):
            skeleton.run_module(dict(path=dict(type="path")), cls.run, result=dict(seen=None))

    result, failed = run_module(Module, dict(path="/x"))
    assert failed and result["msg"] == "refused" and result["seen"] == "/x" and result["hint"] == "do this"
    result, failed = run_module(Module, dict(path="x"))
    assert failed and result["msg"] == "path must be an absolute path, got x" and result["seen"] is None


def test_plan_applies_changes_in_order_and_not_in_check_mode():
    done = []
    plan = Plan([Step("a", "t1", call=lambda: done.append("a")),
                 step_to("b", "t2", 1, 1, done.append, "b"),
                 step_to("c", "t3", 1, 2, done.append, "c")])
    assert [s.action for s in plan.changes] == ["a", "c"] and plan.texts() == ["t1: a", "t3: c"]
    plan.apply(type("M", (), {"check_mode": True})())
    assert done == []
    plan.apply(type("M", (), {"check_mode": False})())
    assert done == ["a", "c"] and [s.applied for s in plan] == [True, False, True]
    assert plan.before_after() == ({"t1": None, "t2": 1, "t3": 1}, {"t1": None, "t2": 1, "t3": 2})
    plan.steps[2].cancel()
    assert not plan.steps[2].changed and plan.steps[2].after == 1


def test_commands_name_the_tool_and_its_package(monkeypatch):
    calls = []
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False: None if name == "mdadm" else f"/sbin/{name}")

    def run_command(self, argv, **kwargs):
        calls.append((argv, kwargs["environ_update"]))
        return (1, "", "boom\n") if argv[1] == "bad" else (0, "out", "")

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    commands = Commands(basic.AnsibleModule.__new__(basic.AnsibleModule), {"mdadm": "mdadm"})
    assert commands.run("wipefs", "--all", 3) == "out"
    assert calls[0] == (["/sbin/wipefs", "--all", "3"], {"LANG": "C", "LC_ALL": "C", "LC_MESSAGES": "C"})
    with pytest.raises(CommandError, match=r"^wipefs bad failed \(rc 1\): boom$"):
        commands.run("wipefs", "bad")
    with pytest.raises(CommandError, match="^mdadm is not installed: install mdadm$"):
        commands.run("mdadm", "--detail")


def test_check_space_and_missing_directory(tmp_path):
    with pytest.raises(files.FileError, match=r"^size_mib: \d+ MiB requested for .*, but its file system has only \d+ MiB available"):
        files.check_space(str(tmp_path / "big"), 1 << 40)
    with pytest.raises(files.FileError, match="^path: cannot create /none/x: the directory /none does not exist$"):
        files.check_space("/none/x", 1)
    files.check_space(str(tmp_path / "small"), 1)


def test_write_zeros_in_full_then_renamed(tmp_path):
    target = tmp_path / "swap"
    target.write_text("old")
    files.write_zeros(str(target), 2)
    assert target.stat().st_size == 2 * files.MIB and target.stat().st_mode & 0o777 == 0o600
    assert target.read_bytes() == bytes(2 * files.MIB)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["swap"]
