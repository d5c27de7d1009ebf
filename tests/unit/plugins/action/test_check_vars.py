"""action check_vars: rules over role variables, every problem named with its variable, value and what is allowed."""
from __future__ import annotations

import pytest

from ansible_collections.dlnode.gpu.plugins.action.check_vars import RuleError, check, parse_path, select


def test_paths_parse_into_steps():
    assert parse_path("a") == ("a", [])
    assert parse_path("a[].b.*[x.y]{}") == ("a", [("items", None), ("key", "b"), ("values", None),
                                                  ("key", "x.y"), ("keys", None)])


@pytest.mark.parametrize("path", ["1a", "a..b", "a{}.b", "a[", "a b"])
def test_a_path_that_cannot_be_read_is_a_fault_of_the_rule(path):
    with pytest.raises(RuleError):
        parse_path(path)


def test_select_names_each_value_where_it_stands():
    variables = {"vols": [{"name": "a", "mount": "/a"}, {"name": "b"}, {"name": "c", "mount": None}],
                 "sysctl": {"vm.swappiness": 10}, "classes": {"ssd": {"x": 1}}}
    assert select(variables, "vols[].mount") == ([("vols[0].mount", "/a")], [])
    assert select(variables, "sysctl[vm.swappiness]") == ([("sysctl[vm.swappiness]", 10)], [])
    assert select(variables, "sysctl.*") == ([("sysctl[vm.swappiness]", 10)], [])
    assert select(variables, "classes.*.x") == ([("classes.ssd.x", 1)], [])
    assert select(variables, "classes{}") == ([("classes", "ssd")], [])
    assert select(variables, "undefined_variable") == ([], [])


def test_select_reports_a_value_of_the_wrong_shape():
    assert select({"vols": "a"}, "vols[].mount") == ([], ["vols: got 'a'; allowed: a list"])
    assert select({"classes": {"ssd": "fast"}}, "classes.*.x") == ([], ["classes.ssd: got 'fast'; allowed: a mapping"])


@pytest.mark.parametrize("rule, value, problem", [
    ({"range": [0, 200]}, 201, "v: got 201; allowed: an integer from 0 to 200"),
    ({"range": [0, 200]}, -1, "v: got -1; allowed: an integer from 0 to 200"),
    ({"range": [0, 200]}, "ten", "v: got 'ten'; allowed: an integer from 0 to 200"),
    ({"range": [0, 200]}, True, "v: got true; allowed: an integer from 0 to 200"),
    ({"range": [0, 200]}, 1.5, "v: got 1.5; allowed: an integer from 0 to 200"),
    ({"range": [1, None]}, 0, "v: got 0; allowed: an integer >= 1"),
    ({"range": [None, 5]}, 6, "v: got 6; allowed: an integer <= 5"),
    ({"range": [1, None], "number": True}, 0.0, "v: got 0.0; allowed: a number >= 1"),
    ({"range": [1, None], "allow": ["unlimited"]}, "lots", "v: got 'lots'; allowed: an integer >= 1, or 'unlimited'"),
    ({"range": [1, None]}, None, "v: got null; allowed: an integer >= 1"),
    ({"choices": ["none", "bfq"]}, "cfq", "v: got 'cfq'; allowed: one of: none, bfq"),
    ({"type": "bool"}, "yes", "v: got 'yes'; allowed: true or false"),
    ({"type": ["int", "str"]}, [1], "v: got [1]; allowed: an integer or a string"),
    ({"absolute": True}, "etc/x", "v: got 'etc/x'; allowed: an absolute path (starting with /, without .., // or a trailing /)"),
    ({"absolute": True}, "/etc/../x", "v: got '/etc/../x'; allowed: an absolute path (starting with /, without .., // or a trailing /)"),
    ({"absolute": True}, "/etc/", "v: got '/etc/'; allowed: an absolute path (starting with /, without .., // or a trailing /)"),
    ({"absolute": True}, None, "v: got null; allowed: an absolute path (starting with /, without .., // or a trailing /)"),
    ({"match": "[a-z]+\\.service", "allowed": "a service"}, "a.timer", "v: got 'a.timer'; allowed: a service"),
    ({"match": "[0-9]+", "allowed": "digits"}, "12a", "v: got '12a'; allowed: digits"),
    ({"match": ".*", "allowed": "text"}, {"a": 1}, "v: got {a: 1}; allowed: text"),
    ({"keys": ["a", "b"]}, {"a": 1, "c": 2}, "v: got the key(s) c; allowed: keys among: a, b"),
    ({"keys": ["a"]}, "a", "v: got 'a'; allowed: a mapping"),
])
def test_a_bad_value_is_named_with_what_is_allowed(rule, value, problem):
    assert check([dict(rule, var="v")], {"v": value}) == [problem]


@pytest.mark.parametrize("rule, value", [
    ({"range": [0, 200]}, 0),
    ({"range": [0, 200]}, "200"),
    ({"range": [1, None], "number": True}, 0.5 + 1),
    ({"range": [1, None], "number": True}, "650.5"),
    ({"range": [1, None], "allow": ["unlimited"]}, "unlimited"),
    ({"range": [1, None], "allow": [None]}, None),
    ({"absolute": True, "allow": [""]}, ""),
    ({"absolute": True}, "/etc/sysctl.d/90-dlnode.conf"),
    ({"choices": [0, 1]}, 1),
    ({"type": "bool"}, False),
    ({"keys": ["a", "b"]}, {"a": 1}),
    ({"match": "(?i)[0-9]+[kmg]", "allowed": "a size"}, "2M"),
])
def test_a_good_value_passes(rule, value):
    assert check([dict(rule, var="v")], {"v": value}) == []


def test_allow_does_not_confuse_true_with_1():
    assert check([{"var": "v", "range": [5, 9], "allow": [1]}], {"v": True}) == ["v: got true; allowed: an integer from 5 to 9, or 1"]


def test_every_problem_is_reported_at_once_in_rule_order():
    rules = [{"var": ["a", "b"], "absolute": True}, {"var": "c[]", "range": [0, 2]}]
    assert check(rules, {"a": "x", "b": "/ok", "c": [0, 3, 5]}) == [
        "a: got 'x'; allowed: an absolute path (starting with /, without .., // or a trailing /)",
        "c[1]: got 3; allowed: an integer from 0 to 2",
        "c[2]: got 5; allowed: an integer from 0 to 2",
    ]


def test_comparisons_between_variables():
    rules = [{"var": "background", "range": [0, 100], "below": "ratio"},
             {"var": "clocks.min", "at_most": "clocks.max"}]
    assert check(rules, {"background": 20, "ratio": 20, "clocks": {"min": 1400, "max": 1400}}) == [
        "background: got 20; allowed: less than ratio (20)"]
    assert check(rules, {"background": 5, "ratio": 20, "clocks": {"min": 1500, "max": 1400}}) == [
        "clocks.min: got 1500; allowed: at most clocks.max (1400)"]
    assert check(rules, {"background": 5, "ratio": 20, "clocks": {}}) == []


def test_key_of_names_the_keys_of_another_mapping():
    rules = [{"var": "devices{}", "key_of": "classes"}]
    assert check(rules, {"devices": {"ssd": [], "sdd": []}, "classes": {"ssd": {}, "hdd": {}}}) == [
        "devices: got the key 'sdd'; allowed: one of the names in classes: ssd, hdd"]


def test_unique_names_the_other_item():
    rules = [{"var": "vols[].mount", "unique": True}]
    assert check(rules, {"vols": [{"mount": "/a"}, {"mount": "/b"}, {"mount": "/a"}, {}]}) == [
        "vols[2].mount: got '/a'; allowed: a value no other item has (also vols[0].mount)"]


def test_if_set_applies_a_rule_only_when_the_other_value_is_set():
    rules = [{"var": "size", "range": [1, None], "if_set": "path"}]
    assert check(rules, {"size": 0, "path": ""}) == []
    assert check(rules, {"size": 0, "path": "/data/swap"}) == ["size: got 0; allowed: an integer >= 1"]


def test_a_wrong_shape_is_named_once_not_by_every_rule_that_looks_inside():
    rules = [{"var": "c.*", "keys": ["x", "y"]}, {"var": "c.*.x", "range": [0, 1]}, {"var": "c.*.y", "range": [0, 1]}]
    assert check(rules, {"c": {"ssd": "fast"}}) == ["c.ssd: got 'fast'; allowed: a mapping"]


@pytest.mark.parametrize("rule, message", [
    ({"range": [0, 1]}, "has no var"),
    ({"var": "v"}, "unknown keys \\[\\] or no check"),
    ({"var": "v", "rnage": [0, 1]}, "unknown keys \\['rnage'\\]"),
    ({"var": "v", "match": "x"}, "a match needs `allowed`"),
])
def test_a_rule_of_the_wrong_shape_is_a_fault_of_the_role(rule, message):
    with pytest.raises(RuleError, match=message):
        check([rule], {"v": 1})
