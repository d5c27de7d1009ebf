"""For the scenarios' testinfra tests: run the scenario's role.yml on the node under test, as an operator runs it."""
from __future__ import annotations

import os
import subprocess

PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd())


def play(host, *extra):
    """ansible-playbook of the scenario's role.yml on this node only; (rc, stdout and stderr)."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(PROJECT, ".cache/collections"),
               ANSIBLE_PIPELINING="True", ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    scenario = os.environ["MOLECULE_SCENARIO_DIRECTORY"]
    argv = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], "--limit", host.backend.get_hostname(),
            os.path.join(scenario, "role.yml"), *extra]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    return done.returncode, done.stdout + done.stderr


def recap(output):
    """The PLAY RECAP counts of the node: {ok, changed, unreachable, failed, ...}."""
    line = next(line for line in output.splitlines() if " ok=" in line and "changed=" in line)
    return {field.split("=")[0]: int(field.split("=")[1]) for field in line.split(":", 1)[1].split()}
