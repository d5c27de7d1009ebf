"""containerd's config.toml edited with tomlkit: comments, order and indentation kept, new tables placed
and indented like their neighbours. The files are containerd 1.6.20's own default and an operator's."""
from __future__ import annotations

import difflib
from pathlib import Path

import pytest
import tomlkit

from ansible_collections.dlnode.gpu.plugins.module_utils.containers import merge, tomlmerge
from ansible_collections.dlnode.gpu.plugins.module_utils.containers.merge import ConfigError

FIXTURES = Path(__file__).resolve().parents[4] / "fixtures" / "containers"
DEFAULT = (FIXTURES / "containerd-1.6.20-debian12-default.toml").read_text()
OPERATOR = (FIXTURES / "containerd-v2-operator.toml").read_text()
PACKAGED = (FIXTURES / "containerd-1.6.20-debian12-packaged.toml").read_text()
V3 = (FIXTURES / "containerd-v3-operator.toml").read_text()
PATH = "/etc/containerd/config.toml"
NVIDIA = {"runtime_type": "io.containerd.runc.v2", "options": {"BinaryName": "/usr/bin/nvidia-container-runtime"}}


def cri(containerd, plugin="io.containerd.grpc.v1.cri", **more):
    return {"plugins": {plugin: dict(containerd=containerd, **more)}}


def edit(text, settings):
    doc = tomlmerge.loads(text, PATH)
    current = tomlmerge.plain(doc)
    changes = merge.plan(current, settings)
    after = tomlmerge.merge(text, doc, changes)
    assert merge.same(tomlmerge.plain(tomlkit.parse(after)), merge.expected(current, changes))
    return after


def diff(before, after):
    """The changed lines only, as +/- lines."""
    return [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and line[:3] not in ("+++", "---")]


def test_files_round_trip_byte_for_byte():
    for text in (DEFAULT, OPERATOR, PACKAGED, V3):
        assert tomlmerge.loads(text, PATH).as_string() == text


def test_nvidia_runtime_into_the_operators_v2_file():
    after = edit(OPERATOR, cri({"default_runtime_name": "nvidia", "runtimes": {"nvidia": NVIDIA}}))
    assert diff(OPERATOR, after) == [
        '-      default_runtime_name = "runc"',
        '+      default_runtime_name = "nvidia"',
        '+        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]',
        '+          runtime_type = "io.containerd.runc.v2"',
        "+",
        '+          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia.options]',
        '+            BinaryName = "/usr/bin/nvidia-container-runtime"',
        "+",
    ]
    # The new table sits after runc's, with the blank line that separated runc from the next table.
    assert ('            SystemdCgroup = true\n\n        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]\n'
            in after)
    assert ('BinaryName = "/usr/bin/nvidia-container-runtime"\n\n'
            '      [plugins."io.containerd.grpc.v1.cri".containerd.untrusted_workload_runtime]\n') in after
    assert after.startswith("# /etc/containerd/config.toml: generated with `containerd config default`, then edited by ops.\n")


def test_second_run_changes_nothing():
    settings = cri({"default_runtime_name": "nvidia", "runtimes": {"nvidia": NVIDIA}})
    once = edit(OPERATOR, settings)
    doc = tomlmerge.loads(once, PATH)
    assert merge.plan(tomlmerge.plain(doc), settings) == []
    assert tomlmerge.merge(once, doc, []) == once


def test_updates_keep_comments_and_quotes():
    after = edit(OPERATOR, cri({"runtimes": {"runc": {"options": {"SystemdCgroup": False}}}},
                               sandbox_image="registry.k8s.io/pause:3.9"))
    assert diff(OPERATOR, after) == [
        '-    sandbox_image = "registry.internal.example:5000/pause:3.6"  # our mirror',
        '+    sandbox_image = "registry.k8s.io/pause:3.9"  # our mirror',
        "-            SystemdCgroup = true",
        "+            SystemdCgroup = false",
    ]
    assert "            # The kubelet runs with cgroupDriver: systemd.\n            SystemdCgroup = false\n" in after


def test_new_keys_go_after_their_tables_last_key():
    after = edit(DEFAULT, cri({"snapshotter": "overlayfs", "discard_unpacked_layers": True},
                              enable_cdi=True, cdi_spec_dirs=["/etc/cdi", "/var/run/cdi"]))
    assert diff(DEFAULT, after) == [
        '+    enable_cdi = true',
        '+    cdi_spec_dirs = ["/etc/cdi", "/var/run/cdi"]',
        "-      discard_unpacked_layers = false",
        "+      discard_unpacked_layers = true",
    ]
    assert '    unset_seccomp_profile = ""\n    enable_cdi = true\n    cdi_spec_dirs' in after


def test_removing_keys_and_tables():
    after = edit(DEFAULT, {"plugins": {"io.containerd.grpc.v1.cri": {
        "containerd": {"untrusted_workload_runtime": None, "no_pivot": None}}}, "ttrpc": None})
    removed = [line for line in diff(DEFAULT, after) if line.startswith("-")]
    assert "-      no_pivot = false" in removed
    assert '-      [plugins."io.containerd.grpc.v1.cri".containerd.untrusted_workload_runtime]' in removed
    assert '-        [plugins."io.containerd.grpc.v1.cri".containerd.untrusted_workload_runtime.options]' in removed
    assert "-[ttrpc]" in removed
    assert not [line for line in diff(DEFAULT, after) if line.startswith("+")]
    assert after.endswith('  "io.containerd.timeout.task.state" = "2s"\n\n')


def test_v3_file_gets_single_quotes_and_its_indentation():
    after = edit(V3, cri({"default_runtime_name": "nvidia", "runtimes": {"nvidia": NVIDIA}},
                         plugin="io.containerd.cri.v1.runtime"))
    assert diff(V3, after) == [
        "-      default_runtime_name = 'runc'",
        "+      default_runtime_name = 'nvidia'",
        "+        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.nvidia]",
        "+          runtime_type = 'io.containerd.runc.v2'",
        "+",
        "+          [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.nvidia.options]",
        "+            BinaryName = '/usr/bin/nvidia-container-runtime'",
        "+",
    ]
    assert "            # systemd owns the cgroups on this node\n            SystemdCgroup = true\n" in after
    assert "      config_path = '/etc/containerd/certs.d'  # hosts.toml per registry\n" in after


def test_missing_parent_tables_are_written_with_headers():
    after = edit(PACKAGED, cri({"default_runtime_name": "nvidia", "runtimes": {"nvidia": NVIDIA}}))
    assert diff(PACKAGED, after) == [
        "+",
        '+    [plugins."io.containerd.grpc.v1.cri".containerd]',
        '+      default_runtime_name = "nvidia"',
        "+",
        '+      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes]',
        "+",
        '+        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]',
        '+          runtime_type = "io.containerd.runc.v2"',
        "+",
        '+          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia.options]',
        '+            BinaryName = "/usr/bin/nvidia-container-runtime"',
    ]


def test_flat_file_with_tables_out_of_order():
    text = ('version = 2\n\n[plugins."io.containerd.grpc.v1.cri".containerd]\ndefault_runtime_name = "runc"\n\n'
            '[plugins."io.containerd.grpc.v1.cri"]\nsandbox_image = "registry.k8s.io/pause:3.9"\n\n'
            '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]\nruntime_type = "io.containerd.runc.v2"\n\n'
            '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]\nSystemdCgroup = true\n')
    after = edit(text, cri({"default_runtime_name": "nvidia", "runtimes": {"nvidia": NVIDIA}}, enable_cdi=True))
    assert after == text.replace('"runc"\n', '"nvidia"\n').replace(
        'pause:3.9"\n', 'pause:3.9"\nenable_cdi = true\n') + (
        '\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]\nruntime_type = "io.containerd.runc.v2"\n\n'
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia.options]\n'
        'BinaryName = "/usr/bin/nvidia-container-runtime"\n')


def test_new_file_in_containerds_style():
    after = edit("", {"version": 2, **cri({"runtimes": {"nvidia": NVIDIA}})})
    assert after == """version = 2

[plugins]

  [plugins."io.containerd.grpc.v1.cri"]

    [plugins."io.containerd.grpc.v1.cri".containerd]

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes]

        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]
          runtime_type = "io.containerd.runc.v2"

          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia.options]
            BinaryName = "/usr/bin/nvidia-container-runtime"
"""


def test_inline_tables_take_new_keys_inline():
    text = '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]\n  options = { SystemdCgroup = true }\n'
    after = edit(text, cri({"runtimes": {"runc": {"options": {"BinaryName": "/usr/bin/runc"}}}}))
    first, second, rest = after.split("\n", 2)
    assert first == text.split("\n", maxsplit=1)[0] and rest == ""
    # tomlkit spaces the added pair its own way (versions differ); it stays one inline table on its line.
    assert second.startswith("  options = { SystemdCgroup = true,") and second.endswith('BinaryName = "/usr/bin/runc"}')


def test_value_where_a_table_is_wanted_names_the_key():
    text = '[plugins."io.containerd.grpc.v1.cri"]\n  containerd = "runc"\n'
    doc = tomlmerge.loads(text, PATH)
    with pytest.raises(ConfigError) as err:
        merge.plan(tomlmerge.plain(doc), cri({"default_runtime_name": "nvidia"}))
    assert str(err.value).startswith(
        'settings.plugins."io.containerd.grpc.v1.cri".containerd: the file has '
        'plugins."io.containerd.grpc.v1.cri".containerd = "runc" (a string, not an object), so '
        'plugins."io.containerd.grpc.v1.cri".containerd.default_runtime_name cannot be set inside it')


def test_invalid_toml_names_file_line_and_column():
    text = 'version = 2\n\n[plugins."io.containerd.grpc.v1.cri"\n  sandbox_image = "x"\n'
    with pytest.raises(ConfigError) as err:
        tomlmerge.loads(text, PATH)
    message = str(err.value)
    assert message.startswith("/etc/containerd/config.toml is not valid TOML: ")
    assert message.endswith(" at line 3 column 36; fix or remove the file. Nothing was written")


def test_duplicate_keys_are_invalid():
    with pytest.raises(ConfigError) as err:
        tomlmerge.loads("version = 2\nversion = 3\n", PATH)
    assert str(err.value).startswith("/etc/containerd/config.toml is not valid TOML: ")


def test_booleans_and_numbers_read_as_plain_values():
    doc = tomlmerge.loads(DEFAULT, PATH)
    plain = tomlmerge.plain(doc)
    gc = plain["plugins"]["io.containerd.gc.v1.scheduler"]
    assert gc["pause_threshold"] == 0.02 and isinstance(gc["pause_threshold"], float)
    assert plain["version"] == 2 and isinstance(plain["version"], int)
    assert not any(isinstance(value, tomlkit.items.Item) for value in (gc["pause_threshold"], plain["version"]))
    assert plain["metrics"]["grpc_histogram"] is False
    assert plain["plugins"]["io.containerd.runtime.v2.task"]["platforms"] == ["linux/amd64"]


def test_missing_tomlkit_names_the_package(monkeypatch):
    monkeypatch.setattr(tomlmerge, "HAS_TOMLKIT", False)
    with pytest.raises(ConfigError) as err:
        tomlmerge.loads("version = 2\n", PATH)
    assert str(err.value).startswith("format toml needs the Python library tomlkit on the managed node: install the "
                                     "package python3-tomlkit (Debian 12, Ubuntu 22.04/24.04 universe, EL 9 from EPEL 9)")
