"""The collection builds, installs, and a playbook outside the repository uses it by FQCN."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(argv, cwd, env=None):
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_build_install_and_use_by_fqcn(tmp_path):
    run([BIN / "ansible-galaxy", "collection", "build", "--output-path", tmp_path, ROOT], cwd=tmp_path)
    tarball = tmp_path / "dlnode-gpu-0.1.0.tar.gz"
    assert tarball.exists()
    # Galaxy is not reachable: the dependencies come from the `ansible` package.
    run([BIN / "ansible-galaxy", "collection", "install", "--no-deps", "--force", "-p", tmp_path / "collections", tarball],
        cwd=tmp_path)
    installed = tmp_path / "collections/ansible_collections/dlnode/gpu"
    assert (installed / "roles/base_os/tasks/main.yml").exists()
    assert not (installed / "molecule").exists() and not (installed / "tests").exists()

    play = tmp_path / "elsewhere/play.yml"
    play.parent.mkdir()
    play.write_text(f"""---
- name: Use the role by FQCN
  hosts: gpu_nodes
  gather_facts: false
  roles:
    - role: dlnode.gpu.base_os

- name: Use a module by FQCN
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Plan a sysctl profile in check mode
      dlnode.gpu.sysctl_profile:
        path: {tmp_path}/90-probe.conf
        settings:
          vm.swappiness: 10
      check_mode: true
      register: planned

    - name: Show the plan
      ansible.builtin.debug:
        msg: "PLANNED {{{{ planned | to_json }}}}"
""")
    (play.parent / "hosts.yml").write_text(
        "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
        f"      ansible_python_interpreter: {sys.executable}\n"
        "  children:\n    gpu_nodes:\n      hosts:\n        node1:\n")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(tmp_path / "collections"), ANSIBLE_NOCOLOR="1",
               PATH=f"{BIN}:{os.environ['PATH']}")
    listing = run([BIN / "ansible-playbook", "-i", "hosts.yml", "play.yml", "--list-tasks"], cwd=play.parent, env=env)
    assert "dlnode.gpu.base_os : Apply the sysctl profile, file and running values in one call" in listing
    out = run([BIN / "ansible-playbook", "-i", "hosts.yml", "play.yml", "--limit", "localhost"],
              cwd=play.parent, env=env)
    planned = json.loads(out.split("PLANNED ", 1)[1].split('"\n', 1)[0].replace('\\"', '"'))
    assert planned["changed"] and planned["settings"] == {"vm.swappiness": "10"}
    assert not (tmp_path / "90-probe.conf").exists()
