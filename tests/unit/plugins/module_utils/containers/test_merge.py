"""The merge rule on plain values: what changes, key by key, and what is refused."""
from __future__ import annotations

import pytest

from ansible_collections.dlnode.gpu.plugins.module_utils.containers import merge
from ansible_collections.dlnode.gpu.plugins.module_utils.containers.merge import ConfigError

FILE = {
    "storage-driver": "overlay2",
    "log-opts": {"max-size": "10m", "labels": "team"},
    "dns": ["10.0.0.2"],
    "debug": False,
    "max-concurrent-downloads": 6,
}


def actions(changes):
    return [(change.key, change.action) for change in changes]


def test_nested_keys_merge_and_other_keys_stay():
    changes = merge.plan(FILE, {"log-opts": {"max-size": "100m", "max-file": "3"}, "log-driver": "json-file"})
    assert actions(changes) == [("log-opts.max-size", "updated"), ("log-opts.max-file", "added"),
                                ("log-driver", "added")]
    result = merge.expected(FILE, changes)
    assert result["log-opts"] == {"max-size": "100m", "labels": "team", "max-file": "3"}
    assert result["storage-driver"] == "overlay2" and result["dns"] == ["10.0.0.2"]
    assert list(result) == ["storage-driver", "log-opts", "dns", "debug", "max-concurrent-downloads", "log-driver"]
    assert FILE["log-opts"] == {"max-size": "10m", "labels": "team"}  # the file's value is not touched


def test_lists_are_replaced_whole():
    changes = merge.plan(FILE, {"dns": ["10.0.0.2", "10.0.0.3"]})
    assert [change.public() for change in changes] == [
        {"key": "dns", "action": "updated", "before": ["10.0.0.2"], "after": ["10.0.0.2", "10.0.0.3"]}]
    assert merge.plan(FILE, {"dns": ["10.0.0.2"]}) == []


def test_null_removes_and_a_missing_key_is_no_change():
    changes = merge.plan(FILE, {"debug": None, "bip": None, "log-opts": {"labels": None}})
    assert actions(changes) == [("debug", "removed"), ("log-opts.labels", "removed")]
    assert changes[0].public() == {"key": "debug", "action": "removed", "before": False}
    assert merge.expected(FILE, changes) == {"storage-driver": "overlay2", "log-opts": {"max-size": "10m"},
                                             "dns": ["10.0.0.2"], "max-concurrent-downloads": 6}


def test_new_object_drops_its_nulls_and_an_object_of_nulls_adds_nothing():
    changes = merge.plan(FILE, {"runtimes": {"nvidia": {"path": "nvidia-container-runtime", "runtimeArgs": None}},
                                "default-ulimits": {"memlock": None}})
    assert [change.public() for change in changes] == [
        {"key": "runtimes", "action": "added", "after": {"nvidia": {"path": "nvidia-container-runtime"}}}]


def test_values_compare_as_values():
    assert merge.plan(FILE, {"max-concurrent-downloads": 6.0, "debug": False}) == []
    assert actions(merge.plan(FILE, {"debug": 0})) == [("debug", "updated")]  # false is not 0
    assert actions(merge.plan(FILE, {"max-concurrent-downloads": "6"})) == [("max-concurrent-downloads", "updated")]
    assert actions(merge.plan({"live-restore": 1}, {"live-restore": True})) == [("live-restore", "updated")]
    assert merge.plan({"a": {"x": 1, "y": [1, {"z": True}]}}, {"a": {"y": [1.0, {"z": True}], "x": 1}}) == []


def test_dotted_names_quote_keys_with_dots():
    path = ("plugins", "io.containerd.grpc.v1.cri", "containerd", "default_runtime_name")
    assert merge.dotted(path) == 'plugins."io.containerd.grpc.v1.cri".containerd.default_runtime_name'
    assert merge.dotted(("log-opts", "max-size")) == "log-opts.max-size"
    assert merge.dotted(("a b", 'q"x')) == '"a b"."q\\"x"'


def test_object_into_a_value_is_refused_naming_the_key():
    with pytest.raises(ConfigError) as err:
        merge.plan({"log-opts": "x"}, {"log-opts": {"max-size": "10m"}})
    assert str(err.value) == (
        'settings.log-opts: the file has log-opts = "x" (a string, not an object), so log-opts.max-size cannot be '
        "set inside it; change or remove log-opts in the file first. Nothing was written")


def test_value_over_an_object_is_refused_naming_the_key():
    with pytest.raises(ConfigError) as err:
        merge.plan(FILE, {"log-opts": "max-size=10m"})
    assert str(err.value).startswith('settings.log-opts: the file has an object at log-opts ({"max-size": "10m", '
                                     '"labels": "team"}) and the settings give a string; replacing the whole object '
                                     "is refused")


@pytest.mark.parametrize("settings, message", [
    (["a"], "settings: expected a dictionary of keys to values, got a list"),
    ({"dns": ["1.1.1.1", None]}, "settings.dns[1]: null inside a list; leave the item out instead"),
    ({"a": {"": 1}}, "settings.a.\"\": keys must be non-empty strings, got ''"),
    ({"a": {"b": object()}}, "settings.a.b: object cannot be written to a config file"),
    ({"a": [[1, None]]}, "settings.a[0][1]: null inside a list"),
])
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ConfigError) as err:
        merge.check_settings(settings)
    assert str(err.value).startswith(message)
