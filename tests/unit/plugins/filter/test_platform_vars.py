"""filter platform_vars: the first vars file for the node's platform, with default.yml as the fallback."""
from __future__ import annotations

from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.dlnode.gpu.plugins.filter.platform_vars import platform_vars

UBUNTU = {"distribution": "Ubuntu", "distribution_major_version": "24", "os_family": "Debian"}


@pytest.fixture
def role(tmp_path):
    (tmp_path / "vars").mkdir()
    return tmp_path


def make(role, *names):
    for name in names:
        (role / "vars" / name).write_text("---\n")


@pytest.mark.parametrize("present, chosen", [
    (["Ubuntu-24.yml", "Ubuntu.yml", "Debian.yml", "default.yml"], "Ubuntu-24.yml"),
    (["Ubuntu-22.yml", "Ubuntu.yml", "Debian.yml", "default.yml"], "Ubuntu.yml"),
    (["RedHat.yml", "Debian.yml", "default.yml"], "Debian.yml"),
    (["RedHat.yml", "default.yml"], "default.yml"),
])
def test_most_specific_file_wins(role, present, chosen):
    make(role, *present)
    assert platform_vars(str(role), UBUNTU) == str(role / "vars" / chosen)


def test_main_yml_is_never_a_platform_file(role):
    make(role, "main.yml", "default.yml")
    assert platform_vars(str(role), UBUNTU).endswith("/default.yml")


def test_facts_without_a_platform_fall_back_to_default(role):
    make(role, "default.yml")
    assert platform_vars(str(role), {}).endswith("/default.yml")


def test_no_file_at_all_names_every_candidate(role):
    with pytest.raises(AnsibleFilterError, match=r"none of Ubuntu-24.yml, Ubuntu.yml, Debian.yml, default.yml is in"):
        platform_vars(str(role), UBUNTU)


def test_facts_must_be_a_dict(role):
    with pytest.raises(AnsibleFilterError, match="facts must be ansible_facts"):
        platform_vars(str(role), "Debian")


ROLES = Path(__file__).resolve().parents[4] / "roles"
USERS = sorted(r.name for r in ROLES.iterdir() if any("platform_vars" in t.read_text() for t in r.glob("tasks/*.yml")))


def test_the_roles_with_platform_values_use_the_filter():
    assert USERS == ["base_os", "container_runtime", "frameworks", "nvidia_driver", "nvidia_repository", "storage"]


@pytest.mark.parametrize("name", USERS)
def test_every_role_with_platform_vars_has_a_default(name):
    role_path = ROLES / name
    assert platform_vars(str(role_path), {"os_family": "Archlinux", "distribution": "Archlinux"}).endswith("/default.yml")
    assert platform_vars(str(role_path), UBUNTU).endswith("/Debian.yml")
    assert platform_vars(str(role_path), {"os_family": "RedHat", "distribution": "Rocky",
                                          "distribution_major_version": "9"}).endswith("/RedHat.yml")
