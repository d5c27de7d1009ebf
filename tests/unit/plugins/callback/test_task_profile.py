"""dlnode.gpu.task_profile in a real ansible-playbook run on localhost: per role, the module calls (a command
and a stat), the local actions (set_fact, debug) apart, skipped tasks left out, changes counted; the JSON."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
BIN = Path(sys.executable).parent

ROLE_TASKS = """---
- name: A module call that changes
  ansible.builtin.command: "true"
- name: A module call that does not
  ansible.builtin.stat:
    path: /
- name: A fact, on the controller
  ansible.builtin.set_fact:
    probe_fact: 1
- name: Skipped
  ansible.builtin.command: "false"
  when: false
"""
PLAYBOOK = """---
- name: Profile
  hosts: localhost
  gather_facts: false
  roles:
    - probe
  tasks:
    - name: A message
      ansible.builtin.debug:
        msg: hello
"""


def test_calls_local_actions_and_changes_per_role(tmp_path):
    (tmp_path / "roles/probe/tasks").mkdir(parents=True)
    (tmp_path / "roles/probe/tasks/main.yml").write_text(ROLE_TASKS)
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    output = tmp_path / "profile.json"
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".cache/collections"), ANSIBLE_CALLBACKS_ENABLED="dlnode.gpu.task_profile",
               DLNODE_TASK_PROFILE_OUTPUT=str(output), ANSIBLE_NOCOLOR="1")
    argv = [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}",
            "play.yml"]
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "task_profile: 2 module calls on 1 hosts in" in done.stdout
    profile = json.loads(output.read_text())
    assert {role: {key: entry[key] for key in ("calls", "local", "changed")} for role, entry in profile["roles"].items()} == {
        "probe": {"calls": 2, "local": 1, "changed": 1}, "(play)": {"calls": 0, "local": 1, "changed": 0}}
    assert profile["hosts"] == ["localhost"] and profile["calls"] == 2
    assert {entry["task"] for entry in profile["slowest"]} == {
        "probe: A module call that changes", "probe: A module call that does not", "probe: A fact, on the controller",
        "(play): A message"}
