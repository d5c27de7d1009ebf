"""container_runtime's repositories per platform, as its variables resolve them with each platform's facts.

No EL node can run here (no EL archive is reachable): this is what the role asks of dnf there, next to
what Molecule runs on Debian 12. The URLs are those of Docker's install guides (docker-ce.repo's baseurl
and gpgkey for RHEL; the deb822 source for Debian and Ubuntu) and NVIDIA's container toolkit guide.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

ROLE = Path(__file__).resolve().parents[3] / "roles" / "container_runtime"
ROCKY9 = {"os_family": "RedHat", "distribution": "Rocky", "distribution_major_version": "9", "architecture": "x86_64"}
RHEL8_ARM = {"os_family": "RedHat", "distribution": "RedHat", "distribution_major_version": "8", "architecture": "aarch64"}
DEBIAN12 = {"os_family": "Debian", "distribution": "Debian", "distribution_release": "bookworm", "architecture": "x86_64"}
UBUNTU2404 = {"os_family": "Debian", "distribution": "Ubuntu", "distribution_release": "noble", "architecture": "aarch64"}
KEYS = ("__container_runtime_docker_repo", "__container_runtime_docker_key_url", "__container_runtime_toolkit_repo")


def resolve(facts, **overrides):
    """The role's values for a platform: defaults, the platform's file and main.yml, templated with its facts."""
    loader = DataLoader()
    variables = {}
    for name in ("defaults/main.yml", f"vars/{facts['os_family']}.yml", "vars/main.yml"):
        variables.update(loader.load_from_file(str(ROLE / name), trusted_as_template=True))
    variables.update(overrides, ansible_facts=facts, __container_runtime_toolkit=True)
    templar = Templar(loader=loader, variables=variables)
    return {key: templar.template(variables[key]) for key in KEYS}


@pytest.mark.parametrize("facts, docker, key, toolkit", [
    (ROCKY9, "https://download.docker.com/linux/rhel/9/x86_64/stable", "https://download.docker.com/linux/rhel/gpg",
     "https://nvidia.github.io/libnvidia-container/stable/rpm/x86_64/"),
    (RHEL8_ARM, "https://download.docker.com/linux/rhel/8/aarch64/stable", "https://download.docker.com/linux/rhel/gpg",
     "https://nvidia.github.io/libnvidia-container/stable/rpm/aarch64/"),
    (DEBIAN12, "https://download.docker.com/linux/debian", "https://download.docker.com/linux/debian/gpg",
     "https://nvidia.github.io/libnvidia-container/stable/deb/amd64/"),
    (UBUNTU2404, "https://download.docker.com/linux/ubuntu", "https://download.docker.com/linux/ubuntu/gpg",
     "https://nvidia.github.io/libnvidia-container/stable/deb/arm64/"),
])
def test_the_vendors_repositories_and_keys(facts, docker, key, toolkit):
    assert resolve(facts) == dict(zip(KEYS, (docker, key, toolkit)))


def test_a_mirror_of_dockers_rhel_tree_keeps_the_key_at_its_top():
    found = resolve(ROCKY9, container_runtime_docker_url="https://mirror.example/docker/linux/rhel/")
    assert found["__container_runtime_docker_repo"] == "https://mirror.example/docker/linux/rhel/9/x86_64/stable"
    assert found["__container_runtime_docker_key_url"] == "https://mirror.example/docker/linux/rhel/gpg"
