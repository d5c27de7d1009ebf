"""playbooks/rolling_update.yml: it parses with the example inventory, and its bad input (serial 0, no drain
command where one is required, a reboot flag that is no boolean) is refused on the controller before any
node is touched: the nodes here answer on no port, so a run that reached one would say UNREACHABLE."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ENV = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".cache" / "collections"), ANSIBLE_HOME=str(ROOT / ".cache" / "ansible"),
           ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0")
DRAIN = {"dlnode_drain_command": "echo drain {{ inventory_hostname }}", "dlnode_undrain_command": "echo undrain {{ inventory_hostname }}"}


def rollout(tmp_path, extra):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  children:\n    gpu_nodes:\n      hosts:\n" + "".join(
        f"        node{n}: {{ansible_host: 127.0.0.1, ansible_port: 1, ansible_connection: ssh}}\n" for n in (1, 2)))
    done = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inventory), "playbooks/rolling_update.yml", "-e", json.dumps(extra)],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, check=False)
    return done.returncode, " ".join((done.stdout + done.stderr).split())


def test_it_parses_with_the_example_inventory():
    done = subprocess.run([str(BIN / "ansible-playbook"), "-i", "inventories/example", "--syntax-check", "playbooks/rolling_update.yml"],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("extra, message", [
    (dict(DRAIN, dlnode_serial=0),
     "- dlnode_serial: got 0; allowed: a number of nodes per batch (1 or more) or a percentage of them (1% to 100%)"),
    (dict(DRAIN, dlnode_serial="0%"), "- dlnode_serial: got '0%'; allowed: a number of nodes per batch"),
    ({"dlnode_serial": 2}, "- dlnode_drain_command: got ''; allowed: a command (dlnode_drain_required is true: give both, "
                           "or set dlnode_drain_required to false) - dlnode_undrain_command: got ''"),
    (dict(DRAIN, dlnode_allow_reboot="sometimes"), "- dlnode_allow_reboot: got 'sometimes'; allowed: true or false"),
])
def test_bad_input_is_refused_before_any_node_is_touched(tmp_path, extra, message):
    rc, output = rollout(tmp_path, extra)
    assert rc != 0 and message in output, output
    assert "UNREACHABLE" not in output and "node1" not in output.rsplit("PLAY RECAP", maxsplit=1)[-1], output


def test_good_input_reaches_the_nodes_after_the_checks(tmp_path):
    rc, output = rollout(tmp_path, {"dlnode_serial": "50%", "dlnode_drain_required": False})
    assert rc != 0 and "value(s) the role cannot use" not in output, output
    assert output.index("Check the rollout's variables") < output.index("UNREACHABLE"), output
