"""action packages: which module installs, and what predicts a check run where apt cannot plan."""
from __future__ import annotations

from unittest.mock import MagicMock

import pytest
from ansible.errors import AnsibleActionFail
from ansible.playbook.task import Task
from ansible.plugins.action import ActionBase

from ansible_collections.dlnode.gpu.plugins.action.packages import ActionModule


def action(args, check_mode, answers):
    """The plugin for a task with these args; answers[module] is what that module returns."""
    task = Task()
    task.args = args
    task.check_mode = check_mode
    plugin = ActionModule(task, MagicMock(), MagicMock(), loader=None, templar=None, shared_loader_obj=None)
    plugin.calls = []

    def execute(module_name, module_args=None, task_vars=None, **_kwargs):
        plugin.calls.append((module_name, module_args))
        return dict(answers[module_name])

    plugin._execute_module = execute  # pylint: disable=protected-access
    return plugin


@pytest.fixture(autouse=True)
def no_base_run(monkeypatch):
    monkeypatch.setattr(ActionBase, "run", lambda self, tmp=None, task_vars=None: {})


DEBIAN = {"ansible_facts": {"os_family": "Debian"}}
PLAN_BARE = {"changed": True, "bindings": False, "missing": ["jq"], "msg": "python3-apt is not installed, ..."}
PLAN_APT = {"changed": False, "bindings": True, "missing": ["jq"]}
APT = {"changed": True, "stdout": "apt ran"}


def test_a_real_run_installs_with_apt_only():
    plugin = action({"name": ["jq"], "install_recommends": False}, False, {"ansible.builtin.apt": APT})
    assert plugin.run(task_vars=DEBIAN)["stdout"] == "apt ran"
    assert plugin.calls == [("ansible.builtin.apt", {"name": ["jq"], "state": "present", "install_recommends": False})]


def test_check_mode_without_python3_apt_takes_the_package_database_as_the_prediction():
    plugin = action({"name": ["jq"]}, True, {"dlnode.gpu.package_plan": PLAN_BARE})
    result = plugin.run(task_vars=DEBIAN)
    assert result["changed"] and result["missing"] == ["jq"] and not result["bindings"]
    assert plugin.calls == [("dlnode.gpu.package_plan", {"name": ["jq"], "manager": "dpkg"})]


def test_check_mode_with_python3_apt_lets_apt_predict():
    plugin = action({"name": ["jq"]}, True, {"dlnode.gpu.package_plan": PLAN_APT, "ansible.builtin.apt": APT})
    assert plugin.run(task_vars=DEBIAN)["stdout"] == "apt ran"
    assert [call[0] for call in plugin.calls] == ["dlnode.gpu.package_plan", "ansible.builtin.apt"]


def test_the_rhel_family_uses_dnf_and_rpm_without_apt_options():
    plugin = action({"name": ["dkms"], "install_recommends": True}, False, {"ansible.builtin.dnf": APT})
    plugin.run(task_vars={"ansible_facts": {"os_family": "RedHat"}})
    assert plugin.calls == [("ansible.builtin.dnf", {"name": ["dkms"], "state": "present"})]


def test_an_unknown_family_is_refused_naming_it():
    plugin = action({"name": ["jq"]}, False, {})
    with pytest.raises(AnsibleActionFail, match="os_family 'Archlinux' has no package module here"):
        plugin.run(task_vars={"ansible_facts": {"os_family": "Archlinux"}})
