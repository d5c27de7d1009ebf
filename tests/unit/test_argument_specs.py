"""Each role's meta/argument_specs.yml and defaults/main.yml name the same variables, same defaults."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLES = sorted(p.parent.parent for p in (Path(__file__).resolve().parents[2] / "roles").glob("*/defaults/main.yml"))


def load(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_specs_match_defaults(role):
    defaults = load(role / "defaults/main.yml")
    options = load(role / "meta/argument_specs.yml")["argument_specs"]["main"]["options"]
    assert sorted(options) == sorted(defaults), "variables differ between argument specs and defaults"
    for name, spec in options.items():
        assert "default" in spec, f"{name}: argument spec has no default"
        assert spec["default"] == defaults[name], f"{name}: default differs"
        assert spec.get("description"), f"{name}: no description"


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_public_variables_carry_the_role_prefix(role):
    for name in load(role / "defaults/main.yml"):
        assert name.startswith(role.name + "_"), name


def test_every_role_is_checked():
    assert [r.name for r in ROLES] == sorted(p.name for p in ROLES[0].parent.iterdir() if p.is_dir())


def check_rules(role):
    """The rules of the role's check task (tasks/checks.yml), the one place its variables are checked."""
    tasks = load(role / "tasks/checks.yml")
    assert len(tasks) == 1, "checks.yml holds exactly the one check task"
    return tasks[0]["dlnode.gpu.check_vars"]["rules"]


def path_options(options, prefix=""):
    """Every path option of a spec, as a check rule names it: a, a[], a[].b, a.b."""
    for name, spec in options.items():
        here = prefix + name
        if spec.get("type") == "path":
            yield here
        if spec.get("elements") == "path":
            yield here + "[]"
        if spec.get("options"):
            yield from path_options(spec["options"], here + ("[]." if spec.get("type") == "list" else "."))


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_the_checks_run_first_and_pass_the_defaults(role):
    from ansible_collections.dlnode.gpu.plugins.action.check_vars import check  # pylint: disable=import-outside-toplevel
    first = load(role / "tasks/main.yml")[0]
    assert first.get("ansible.builtin.import_tasks") == "checks.yml", "the checks are the role's first task"
    assert check(check_rules(role), load(role / "defaults/main.yml")) == []


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_every_path_option_must_be_absolute(role):
    options = load(role / "meta/argument_specs.yml")["argument_specs"]["main"]["options"]
    checked = set()
    for rule in check_rules(role):
        if rule.get("absolute") or str(rule.get("match", "")).startswith("/"):
            checked.update(rule["var"] if isinstance(rule["var"], list) else [rule["var"]])
    missing = sorted(set(path_options(options)) - checked)
    assert not missing, f"path options with no absolute-path rule in tasks/checks.yml: {missing}"
