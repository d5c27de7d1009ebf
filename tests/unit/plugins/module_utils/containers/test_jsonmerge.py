"""daemon.json edited in place: only the changed keys' text changes, in the operator's style."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ansible_collections.dlnode.gpu.plugins.module_utils.containers import jsonmerge, merge
from ansible_collections.dlnode.gpu.plugins.module_utils.containers.merge import ConfigError

FIXTURES = Path(__file__).resolve().parents[4] / "fixtures" / "containers"
OPERATOR = (FIXTURES / "daemon-operator.json").read_text()
PATH = "/etc/docker/daemon.json"
NVIDIA = {"nvidia": {"path": "nvidia-container-runtime", "runtimeArgs": []}}


def edit(text, settings):
    current = jsonmerge.loads(text, PATH)
    changes = merge.plan(current, settings)
    after = jsonmerge.merge(text, current, changes, PATH)
    assert json.loads(after) == merge.expected(current, changes)
    return after


def test_operator_file_keeps_order_and_four_space_indent():
    after = edit(OPERATOR, {
        "log-driver": "json-file",
        "log-opts": {"max-size": "100m", "max-file": "3"},
        "runtimes": NVIDIA,
        "default-ulimits": {"memlock": {"Name": "memlock", "Hard": -1, "Soft": -1}},
        "debug": None,
        "storage-driver": "overlay2",
    })
    assert after == """{
    "storage-driver": "overlay2",
    "registry-mirrors": ["https://registry.internal.example:5000"],
    "log-opts": {
        "max-size": "100m",
        "labels": "team,job",
        "max-file": "3"
    },
    "insecure-registries": [
        "registry.internal.example:5000"
    ],
    "bip": "172.26.0.1/16",
    "runtimes": {
        "runsc": {
            "path": "/usr/local/bin/runsc",
            "runtimeArgs": ["--platform=systrap"]
        },
        "nvidia": {
            "path": "nvidia-container-runtime",
            "runtimeArgs": []
        }
    },
    "max-concurrent-downloads": 6,
    "log-driver": "json-file",
    "default-ulimits": {
        "memlock": {
            "Name": "memlock",
            "Hard": -1,
            "Soft": -1
        }
    }
}
"""


def test_second_run_is_byte_identical():
    settings = {"log-opts": {"max-size": "100m"}, "runtimes": NVIDIA, "debug": None}
    once = edit(OPERATOR, settings)
    current = jsonmerge.loads(once, PATH)
    assert merge.plan(current, settings) == []
    assert jsonmerge.merge(once, current, [], PATH) == once


def test_tab_indent_is_kept_for_new_nested_objects():
    text = '{\n\t"data-root": "/data/docker",\n\t"live-restore": false\n}\n'
    after = edit(text, {"live-restore": True, "runtimes": NVIDIA})
    assert after == ('{\n\t"data-root": "/data/docker",\n\t"live-restore": true,\n\t"runtimes": {\n\t\t"nvidia": {\n'
                     '\t\t\t"path": "nvidia-container-runtime",\n\t\t\t"runtimeArgs": []\n\t\t}\n\t}\n}\n')


def test_two_space_file_and_a_one_line_object():
    text = '{\n  "log-opts": {"max-size": "10m"},\n  "dns": ["10.0.0.2"]\n}\n'
    after = edit(text, {"log-opts": {"max-file": "3", "compress": "true"}, "dns": ["10.0.0.2", "10.0.0.3"]})
    assert after == ('{\n  "log-opts": {"max-size": "10m", "max-file": "3", "compress": "true"},\n'
                     '  "dns": ["10.0.0.2", "10.0.0.3"]\n}\n')


def test_removing_first_last_and_all_members():
    text = '{\n    "a": 1,\n    "b": {"x": 1},\n    "c": 3\n}\n'
    assert edit(text, {"a": None}) == '{\n    "b": {"x": 1},\n    "c": 3\n}\n'
    assert edit(text, {"c": None}) == '{\n    "a": 1,\n    "b": {"x": 1}\n}\n'
    assert edit(text, {"b": None}) == '{\n    "a": 1,\n    "c": 3\n}\n'
    assert edit(text, {"a": None, "b": None}) == '{\n    "c": 3\n}\n'
    assert edit(text, {"b": {"x": None}}) == '{\n    "a": 1,\n    "b": {},\n    "c": 3\n}\n'
    assert edit(text, {"a": None, "b": None, "c": None}) == "{}\n"
    assert edit(text, {"c": None, "d": 4}) == '{\n    "a": 1,\n    "b": {"x": 1},\n    "d": 4\n}\n'


def test_adding_into_empty_objects():
    assert edit("{}\n", {"live-restore": True}) == '{\n  "live-restore": true\n}\n'
    text = '{\n    "runtimes": {},\n    "debug": true\n}'
    assert edit(text, {"runtimes": NVIDIA}) == (
        '{\n    "runtimes": {\n        "nvidia": {\n            "path": "nvidia-container-runtime",\n'
        '            "runtimeArgs": []\n        }\n    },\n    "debug": true\n}')


def test_new_and_empty_files_get_two_spaces():
    assert edit("", {"log-driver": "local", "log-opts": {"max-size": "10m", "x": None}}) == (
        '{\n  "log-driver": "local",\n  "log-opts": {\n    "max-size": "10m"\n  }\n}\n')
    assert edit(" \n", {"live-restore": True}) == '{\n  "live-restore": true\n}\n'


def test_crlf_lines_and_odd_spacing_are_kept():
    text = '{\r\n  "a" : 1,\r\n  "b" : {\r\n    "c" : 2\r\n  }\r\n}\r\n'
    assert edit(text, {"b": {"d": [1, 2]}, "a": 5}) == (
        '{\r\n  "a" : 5,\r\n  "b" : {\r\n    "c" : 2,\r\n    "d" : [1, 2]\r\n  }\r\n}\r\n')


def test_multi_line_values_stay_multi_line():
    after = edit(OPERATOR, {"insecure-registries": ["a.example:5000", "b.example:5000"],
                            "registry-mirrors": ["https://mirror.example"]})
    assert '    "registry-mirrors": ["https://mirror.example"],\n' in after
    assert '    "insecure-registries": [\n        "a.example:5000",\n        "b.example:5000"\n    ],\n' in after


def test_escapes_and_unicode_compare_as_values():
    text = '{\n  "label": "caf\\u00e9",\n  "n": 1e3\n}\n'
    current = jsonmerge.loads(text, PATH)
    assert merge.plan(current, {"label": "café", "n": 1000}) == []
    assert edit(text, {"note": "ünïcode"}) == '{\n  "label": "caf\\u00e9",\n  "n": 1e3,\n  "note": "ünïcode"\n}\n'


def test_duplicate_key_edits_the_one_json_reads():
    text = '{\n  "debug": true,\n  "debug": false\n}\n'
    assert edit(text, {"debug": True}) == '{\n  "debug": true,\n  "debug": true\n}\n'
    assert edit(text, {"debug": None}) == "{}\n"


def test_invalid_json_names_file_line_and_column():
    text = '{\n    "storage-driver": "overlay2",\n    "debug" true\n}\n'
    with pytest.raises(ConfigError) as err:
        jsonmerge.loads(text, PATH)
    assert str(err.value) == ("/etc/docker/daemon.json is not valid JSON: Expecting ':' delimiter at line 3 column 13; "
                              "fix or remove the file. Nothing was written")


def test_top_level_must_be_an_object():
    with pytest.raises(ConfigError) as err:
        jsonmerge.loads('["debug"]\n', PATH)
    assert str(err.value) == "/etc/docker/daemon.json: expected a JSON object at the top, found a list. Nothing was written"
