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
