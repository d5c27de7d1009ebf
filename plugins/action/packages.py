# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""Install packages with the node's package module, and predict the install in check mode
also where that module cannot plan (apt without python3-apt, on a bare server).

One task in every role that installs packages; the collection's one way to do it.
"""
from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

# The package module and what to call its database, per os_family.
MODULES = {"Debian": ("ansible.builtin.apt", "dpkg"), "RedHat": ("ansible.builtin.dnf", "rpm")}
ARGUMENT_SPEC = dict(
    name=dict(type="list", elements="str", required=True),
    install_recommends=dict(type="bool"),
)


class ActionModule(ActionBase):
    """package_plan first in check mode; then apt or dnf, unless package_plan is the prediction."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        family = (task_vars or {}).get("ansible_facts", {}).get("os_family")
        if family not in MODULES:
            raise AnsibleActionFail(f"packages: os_family {family!r} has no package module here "
                                    f"(known: {', '.join(MODULES)}); gather facts first (gather_subset: min)")
        module, database = MODULES[family]
        if self._task.check_mode:
            plan = self._execute_module("dlnode.gpu.package_plan", module_args=dict(name=args["name"], manager=database),
                                        task_vars=task_vars)
            if plan.get("failed") or not plan.get("bindings", True):
                result.update(plan)
                return result
        module_args = dict(name=args["name"], state="present")
        if args["install_recommends"] is not None and module == "ansible.builtin.apt":
            module_args["install_recommends"] = args["install_recommends"]
        result.update(self._execute_module(module, module_args=module_args, task_vars=task_vars))
        return result
