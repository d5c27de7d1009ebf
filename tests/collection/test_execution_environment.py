"""execution-environment.yml: ansible-builder writes its build context (no image is built: no registry is
reachable here) with the collection's tarball installed by the galaxy stage and the shipped ansible.cfg."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(argv, cwd):
    done = subprocess.run([str(arg) for arg in argv], cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_ansible_builder_creates_the_context(tmp_path):
    version = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
    shutil.copy(ROOT / "execution-environment.yml", tmp_path)
    shutil.copy(ROOT / "ansible.cfg", tmp_path)
    run([BIN / "ansible-galaxy", "collection", "build", "--output-path", tmp_path / "build", ROOT], cwd=tmp_path)
    run([BIN / "ansible-builder", "create", "-f", "execution-environment.yml", "-c", "context", "--output-filename",
         "Containerfile"], cwd=tmp_path)
    context = tmp_path / "context"
    containerfile = (context / "Containerfile").read_text()
    assert (context / "_build" / "collections" / f"dlnode-gpu-{version}.tar.gz").is_file()
    assert "COPY _build/collections /build/collections" in containerfile
    assert "ansible-galaxy collection install" in containerfile
    requirements = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    assert requirements == {"collections": [{"name": f"/build/collections/dlnode-gpu-{version}.tar.gz", "type": "file"}]}
    assert (context / "_build" / "configs" / "ansible.cfg").read_text() == (ROOT / "ansible.cfg").read_text()
    assert 'ARG ANSIBLE_INSTALL_REFS="ansible-core==2.21.5 ansible-runner"' in containerfile
    assert "openssh-clients [platform:rpm]" in (context / "_build" / "bindep.txt").read_text()
