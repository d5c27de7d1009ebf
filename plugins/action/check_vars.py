# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""Check role variables against what argument specs cannot express, on the controller.

A role's argument specs check types and choices; ranges, absolute paths, the keys and values
inside dicts of dicts and comparisons between variables are checked here, by rules. Every bad
value is reported at once, with its variable, the value and what is allowed. The node is never
contacted (no connection is made), so this runs before fact gathering.
"""
from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

# What a rule may say besides `var`; see the module's documentation.
CHECKS = ("type", "choices", "range", "match", "absolute", "keys", "key_of", "below", "at_most")
MODIFIERS = ("allow", "allowed", "if_set", "unique", "number")
TYPES = {
    "str": (lambda v: isinstance(v, str), "a string"),
    "int": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "list": (lambda v: isinstance(v, list), "a list"),
    "dict": (lambda v: isinstance(v, Mapping), "a mapping"),
}
_TOKEN = re.compile(r"\.\*|\.([A-Za-z0-9_-]+)|\[\]|\[([^\]]+)\]|\{\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class RuleError(Exception):
    """A rule that cannot be read: a fault of the role, not of its variables."""


def show(value):
    """A value as a user wrote it in YAML."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(str(value))
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{show(k) if not isinstance(k, str) else str(k)}: {show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return str(value)


def parse_path(path):
    """'storage_volumes[].mount' -> ('storage_volumes', [('items', None), ('key', 'mount')])."""
    name = _NAME.match(path)
    if not name:
        raise RuleError(f"{path!r} does not start with a variable name")
    tokens, pos = [], name.end()
    while pos < len(path):
        token = _TOKEN.match(path, pos)
        if not token:
            raise RuleError(f"{path!r}: cannot read {path[pos:]!r}")
        text = token.group(0)
        if text == ".*":
            tokens.append(("values", None))
        elif text == "[]":
            tokens.append(("items", None))
        elif text == "{}":
            tokens.append(("keys", None))
        else:
            tokens.append(("key", token.group(1) or token.group(2)))
        pos = token.end()
    if ("keys", None) in tokens[:-1]:
        raise RuleError(f"{path!r}: {{}} (the keys of a mapping) must come last")
    return name.group(0), tokens


class Key(str):
    """Where a key of a mapping stands: the mapping's path, marking the value as a key."""


def member(where, key):
    """How the message names a key of a mapping: a.b, or a[b.c] for a key with dots."""
    return f"{where}[{key}]" if "." in str(key) else f"{where}.{key}"


def select(variables, path):
    """([(where, value)], [problem]) for every value a path names; absent or null keys name nothing."""
    name, tokens = parse_path(path)
    if name not in variables:
        return [], []
    found, problems = [(name, variables[name])], []
    for kind, key in tokens:
        step = []
        for where, value in found:
            if value is None:
                continue
            if kind == "items":
                if not isinstance(value, list):
                    problems.append(f"{where}: got {show(value)}; allowed: a list")
                    continue
                step += [(f"{where}[{index}]", item) for index, item in enumerate(value)]
                continue
            if not isinstance(value, Mapping):
                problems.append(f"{where}: got {show(value)}; allowed: a mapping")
                continue
            if kind == "key":
                if value.get(key) is not None:
                    step.append((member(where, key), value[key]))
            elif kind == "values":
                step += [(member(where, k), v) for k, v in value.items()]
            else:
                step += [(Key(where), k) for k in value]
        found = step
    return found, problems


def one(variables, path):
    """The single value a path without wildcards names, or None."""
    found = select(variables, path)[0]
    return found[0][1] if found else None


def as_number(value, decimals=False):
    """An int (or float with decimals) from a number or a numeric string; None if it is not one."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int) or (decimals and isinstance(value, float)):
        return value
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"-?[0-9]+", text):
            return int(text)
        if decimals and re.fullmatch(r"-?[0-9]*\.[0-9]+|-?[0-9]+\.[0-9]*", text):
            return float(text)
    return None


def describe_range(low, high, decimals):
    kind = "a number" if decimals else "an integer"
    if low is not None and high is not None:
        return f"{kind} from {low} to {high}"
    if low is not None:
        return f"{kind} >= {low}"
    return f"{kind} <= {high}"


def check_value(rule, value, variables):
    """What is allowed when `value` breaks the rule (and what to call the value, if not itself), else None."""
    if "type" in rule:
        names = rule["type"] if isinstance(rule["type"], list) else [rule["type"]]
        if not any(TYPES[name][0](value) for name in names):
            return " or ".join(TYPES[name][1] for name in names)
    if "choices" in rule and value not in rule["choices"]:
        return "one of: " + ", ".join(c if isinstance(c, str) else show(c) for c in rule["choices"])
    if "range" in rule:
        low, high = rule["range"]
        number = as_number(value, rule.get("number", False))
        if number is None or (low is not None and number < low) or (high is not None and number > high):
            return describe_range(low, high, rule.get("number", False))
    if "match" in rule:
        if isinstance(value, (bool, list, Mapping)) or value is None or not re.fullmatch(rule["match"], str(value)):
            return rule["allowed"]
    if rule.get("absolute"):
        if not isinstance(value, str) or not value.startswith("/") or posixpath.normpath(value) != value:
            return "an absolute path (starting with /, without .., // or a trailing /)"
    if "keys" in rule:
        if not isinstance(value, Mapping):
            return "a mapping"
        unknown = [str(k) for k in value if k not in rule["keys"]]
        if unknown:
            return f"keys among: {', '.join(rule['keys'])}", f"the key(s) {', '.join(unknown)}"
    if "key_of" in rule:
        keys = one(variables, rule["key_of"])
        if isinstance(keys, Mapping) and value not in keys:
            return f"one of the names in {rule['key_of']}: {', '.join(map(str, keys))}"
    for check, word, broken in (("below", "less than", lambda a, b: a >= b), ("at_most", "at most", lambda a, b: a > b)):
        if check in rule:
            other = as_number(one(variables, rule[check]), True)
            number = as_number(value, True)
            if other is not None and number is not None and broken(number, other):
                return f"{word} {rule[check]} ({show(one(variables, rule[check]))})"
    return None


def check(rules, variables):
    """Every problem the rules find in the variables, one line each."""
    problems = []
    for index, rule in enumerate(rules):
        if not isinstance(rule, Mapping) or "var" not in rule:
            raise RuleError(f"rule {index} has no var: {rule!r}")
        unknown = set(rule) - set(CHECKS) - set(MODIFIERS) - {"var"}
        if unknown or not set(rule) & set(CHECKS + ("unique",)):
            raise RuleError(f"rule {index} ({rule['var']}): unknown keys {sorted(unknown)} or no check")
        if "match" in rule and "allowed" not in rule:
            raise RuleError(f"rule {index} ({rule['var']}): a match needs `allowed`, the words for what it accepts")
        if "if_set" in rule and not one(variables, rule["if_set"]):
            continue
        paths = rule["var"] if isinstance(rule["var"], list) else [rule["var"]]
        for path in paths:
            found, broken = select(variables, path)
            problems += broken
            allow = rule.get("allow", [])
            for where, value in found:
                if any(value == a and isinstance(value, bool) == isinstance(a, bool) for a in allow):
                    continue
                broken = check_value(rule, value, variables)
                if broken is not None:
                    allowed, shown = broken if isinstance(broken, tuple) else (broken, show(value))
                    if isinstance(where, Key):
                        shown = f"the key {shown}"
                    allowed = rule.get("allowed", allowed)
                    if allow:
                        allowed += ", or " + ", ".join(show(a) for a in allow)
                    problems.append(f"{where}: got {shown}; allowed: {allowed}")
            if rule.get("unique"):
                seen = {}
                for where, value in found:
                    if value is not None and show(value) in seen:
                        problems.append(f"{where}: got {show(value)}; allowed: a value no other item has "
                                        f"(also {seen[show(value)]})")
                    seen.setdefault(show(value), where)
    # A value of the wrong shape is named once, not by every rule that looks inside it.
    return list(dict.fromkeys(problems))


class ActionModule(ActionBase):
    """Runs on the controller only: no connection, no module on the node."""

    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(("rules",))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        args = self.validate_argument_spec(argument_spec=dict(rules=dict(type="list", elements="dict", required=True)))[1]
        names = set()
        try:
            for rule in args["rules"]:
                for path in rule.get("var") if isinstance(rule.get("var"), list) else [rule.get("var")]:
                    names.add(parse_path(str(path))[0])
            for rule in args["rules"]:
                for key in ("below", "at_most", "key_of", "if_set"):
                    if key in rule:
                        names.add(parse_path(str(rule[key]))[0])
            variables = self._templar.template({name: task_vars[name] for name in names if name in (task_vars or {})})
            problems = check(args["rules"], variables)
        except RuleError as err:
            raise AnsibleActionFail(f"check_vars: a rule of this role is wrong: {err}") from err
        role = self._task._role.get_name() if self._task._role else "the play"
        result["changed"] = False
        result["checked"] = sorted(names)
        if problems:
            result["failed"] = True
            result["problems"] = problems
            result["msg"] = (f"{role}: {len(problems)} value(s) the role cannot use; nothing was changed:\n"
                             + "\n".join(f"- {p}" for p in problems))
        else:
            result["msg"] = f"{role}: {len(names)} variables checked"
        return result
