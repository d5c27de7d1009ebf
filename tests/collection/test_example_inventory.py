"""inventories/example: Ansible reads it, site.yml parses with it, and every value it sets is a variable
of a role, of a type and choice that role's argument specs accept (a typo or a stale name fails here)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
INVENTORY = ROOT / "inventories" / "example"
CONNECTION = {"ansible_user", "ansible_python_interpreter"}
ENV = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".cache" / "collections"), ANSIBLE_HOME=str(ROOT / ".cache" / "ansible"))


def ansible(*argv):
    done = subprocess.run([str(BIN / argv[0]), *argv[1:]], cwd=ROOT, env=ENV, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def role_specs():
    """{variable: (role, its argument spec)} of every role."""
    specs = {}
    for path in sorted((ROOT / "roles").glob("*/meta/argument_specs.yml")):
        options = yaml.safe_load(path.read_text())["argument_specs"]["main"]["options"]
        specs.update({name: (path.parts[-3], option) for name, option in options.items()})
    return specs


def test_ansible_reads_the_two_profiles():
    groups = json.loads(ansible("ansible-inventory", "-i", str(INVENTORY), "--list"))
    assert len(groups["h100_training"]["hosts"]) == 16 and len(groups["l4_inference"]["hosts"]) == 4
    assert groups["gpu_nodes"]["children"] == ["h100_training", "l4_inference"]


def test_site_yml_parses_with_it():
    assert "playbook: playbooks/site.yml" in ansible("ansible-playbook", "-i", str(INVENTORY), "--syntax-check",
                                                     "playbooks/site.yml")


@pytest.mark.parametrize("group", ["gpu_nodes", "h100_training", "l4_inference"])
def test_every_value_is_a_role_variable_its_role_accepts(group):
    values = yaml.safe_load((INVENTORY / "group_vars" / f"{group}.yml").read_text())
    specs = role_specs()
    unknown = sorted(set(values) - set(specs) - CONNECTION)
    assert not unknown, f"not a variable of any role: {unknown}"
    for name, value in values.items():
        if name in CONNECTION or "{{" in str(value):
            continue
        role, option = specs[name]
        result = ArgumentSpecValidator({name: option}).validate({name: value})
        assert not result.error_messages, f"{role}: {result.error_messages}"


def test_every_role_of_site_yml_has_its_major_variables_shown():
    shown = set()
    for group in ("gpu_nodes", "h100_training", "l4_inference"):
        shown |= set(yaml.safe_load((INVENTORY / "group_vars" / f"{group}.yml").read_text()))
    roles = {role for role, _option in role_specs().values()}
    assert roles - {role for name, (role, _option) in role_specs().items() if name in shown} == set()
