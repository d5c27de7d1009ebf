# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
from __future__ import annotations

DOCUMENTATION = r"""
name: task_profile
type: aggregate
short_description: Where a run's time and module calls go, per role and per task
version_added: 0.1.0
description:
  - "At the end of a run, a table per role of the module calls (tasks that sent a module to a host; skipped
    tasks left out, and those the controller answers alone, such as debug and set_fact, counted apart as
    C(local)), the changes and the seconds they took summed over hosts, then the slowest tasks; optionally the
    same as JSON for bench/."
  - "Enable it with C(ANSIBLE_CALLBACKS_ENABLED=dlnode.gpu.task_profile) or in ansible.cfg's C(callbacks_enabled);
    it prints beside the normal output."
requirements:
  - enabled in the configuration (callbacks_enabled)
options:
  output:
    description: A file to write the figures to as JSON (roles, tasks, hosts); empty writes none.
    type: str
    default: ""
    env:
      - name: DLNODE_TASK_PROFILE_OUTPUT
    ini:
      - section: dlnode_task_profile
        key: output
  top:
    description: How many of the slowest tasks to list.
    type: int
    default: 10
    env:
      - name: DLNODE_TASK_PROFILE_TOP
    ini:
      - section: dlnode_task_profile
        key: top
"""

import json
import time

from ansible.plugins.callback import CallbackBase

# Actions the controller answers alone: no module goes to the host.
LOCAL = {"debug", "set_fact", "assert", "fail", "meta", "include_tasks", "include_vars", "include_role", "add_host",
         "group_by", "pause", "validate_argument_spec", "set_stats"}


class CallbackModule(CallbackBase):
    """Counts each task's result per host: a module call unless skipped."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "dlnode.gpu.task_profile"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.started = {}
        self.roles = {}
        self.tasks = {}
        self.hosts = set()
        self.begin = time.monotonic()

    @staticmethod
    def _role(task):
        role = task._role  # pylint: disable=protected-access
        return role.get_name(include_role_fqcn=False) if role else "(play)"

    def v2_playbook_on_task_start(self, task, is_conditional):
        self.started[task._uuid] = time.monotonic()  # pylint: disable=protected-access

    def v2_playbook_on_handler_task_start(self, task):
        self.v2_playbook_on_task_start(task, False)

    def _record(self, result, skipped=False):
        task = result._task  # pylint: disable=protected-access
        host = result._host.get_name()  # pylint: disable=protected-access
        self.hosts.add(host)
        if skipped:
            return
        seconds = time.monotonic() - self.started.get(task._uuid, time.monotonic())  # pylint: disable=protected-access
        role = self._role(task)
        entry = self.roles.setdefault(role, {"calls": 0, "local": 0, "changed": 0, "seconds": 0.0})
        entry["local" if task.action.rsplit(".", 1)[-1] in LOCAL else "calls"] += 1
        entry["changed"] += int(bool(result._result.get("changed")))  # pylint: disable=protected-access
        key = f"{role}: {task.name or task.action}"
        self.tasks[key] = max(self.tasks.get(key, 0.0), seconds)
        entry["seconds"] = entry["seconds"] + seconds

    def v2_runner_on_ok(self, result):
        self._record(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result)

    def v2_runner_on_unreachable(self, result):
        self._record(result)

    def v2_runner_on_skipped(self, result):
        self._record(result, skipped=True)

    def v2_playbook_on_stats(self, stats):
        total = time.monotonic() - self.begin
        calls = sum(entry["calls"] for entry in self.roles.values())
        lines = [f"task_profile: {calls} module calls on {len(self.hosts)} hosts in {total:.1f} s",
                 f"  {'role':<24} {'calls':>6} {'local':>6} {'changed':>8} {'host-s':>9}"]
        for role, entry in sorted(self.roles.items(), key=lambda item: -item[1]["seconds"]):
            lines.append(f"  {role:<24} {entry['calls']:>6} {entry['local']:>6} {entry['changed']:>8} {entry['seconds']:>9.1f}")
        slowest = sorted(self.tasks.items(), key=lambda item: -item[1])[:self.get_option("top")]
        lines.append("  slowest tasks (seconds, the slowest host):")
        lines += [f"  {seconds:>8.1f}  {name}" for name, seconds in slowest]
        self._display.display("\n".join(lines))
        output = self.get_option("output")
        if output:
            with open(output, "w", encoding="utf-8") as handle:
                json.dump({"seconds": round(total, 3), "hosts": sorted(self.hosts), "calls": calls, "roles": self.roles,
                           "slowest": [{"task": name, "seconds": round(seconds, 3)} for name, seconds in slowest]},
                          handle, indent=1, sort_keys=True)
