"""dlnode.gpu.container_config on a fake root: the operator's daemon.json and containerd config.toml merged,
check mode, diff, backup, validate, refusals that write nothing."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.module_utils.containers import tomlmerge
from ansible_collections.dlnode.gpu.plugins.modules import container_config

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "containers"
DAEMON_JSON = "/etc/docker/daemon.json"
CONFIG_TOML = "/etc/containerd/config.toml"
DOCKER = {
    "log-driver": "json-file",
    "log-opts": {"max-size": "100m", "max-file": "3"},
    "default-shm-size": "1G",
    "runtimes": {"nvidia": {"path": "nvidia-container-runtime", "runtimeArgs": []}},
    "debug": None,
}
CONTAINERD = {"plugins": {"io.containerd.grpc.v1.cri": {"containerd": {
    "default_runtime_name": "nvidia",
    "runtimes": {"nvidia": {"runtime_type": "io.containerd.runc.v2",
                            "options": {"BinaryName": "/usr/bin/nvidia-container-runtime"}}}}}}}
# A validator that is a real program: it checks the file with the module's own parser.
VALIDATE_JSON = f"{sys.executable} -c 'import json, sys; json.load(open(sys.argv[1]))' %s"


@pytest.fixture
def node(tmp_path, monkeypatch):
    """A fake root holding the operator's daemon.json (mode 0600) and containerd config.toml."""
    monkeypatch.setattr(files, "ROOT", str(tmp_path))
    for path, fixture, mode in ((DAEMON_JSON, "daemon-operator.json", 0o600),
                                (CONFIG_TOML, "containerd-v2-operator.toml", 0o644)):
        real = tmp_path / path.lstrip("/")
        real.parent.mkdir(parents=True)
        real.write_bytes((FIXTURES / fixture).read_bytes())
        os.chmod(real, mode)
    return tmp_path


def real(node, path):
    return node / path.lstrip("/")


def snapshot(node):
    """Every file under the fake /etc with its bytes and mode."""
    return {str(path.relative_to(node)): (path.read_bytes(), oct(path.stat().st_mode & 0o7777))
            for path in sorted((node / "etc").rglob("*")) if path.is_file()}


def config(run_module, check_mode=False, diff=True, **args):
    return run_module(container_config, args, check_mode=check_mode, diff=diff)


def test_daemon_json_merged_keeping_operator_keys_then_idempotent(node, run_module):
    before = real(node, DAEMON_JSON).read_text()
    result, failed = config(run_module, path=DAEMON_JSON, settings=DOCKER)
    assert not failed, result
    assert result["changed"] and result["effective_changed"]
    assert result["format"] == "json"
    assert result["changed_keys"] == ["log-driver", "log-opts.max-size", "log-opts.max-file", "default-shm-size",
                                      "runtimes.nvidia", "debug"]
    assert {"key": "log-opts.max-size", "action": "updated", "before": "10m", "after": "100m"} in result["changes"]
    after = real(node, DAEMON_JSON).read_text()
    assert result["diff"] == {"before_header": DAEMON_JSON, "after_header": DAEMON_JSON, "before": before, "after": after}
    assert '    "bip": "172.26.0.1/16",\n' in after and '"debug"' not in after
    assert '    "log-opts": {\n        "max-size": "100m",\n        "labels": "team,job",\n        "max-file": "3"\n    },\n' in after
    assert after.endswith('    "default-shm-size": "1G"\n}\n')
    assert oct(real(node, DAEMON_JSON).stat().st_mode & 0o7777) == "0o600"
    assert "backup_file" not in result

    files_before = snapshot(node)
    again, failed = config(run_module, path=DAEMON_JSON, settings=DOCKER)
    assert not failed and not again["changed"] and not again["effective_changed"]
    assert again["changed_keys"] == [] and again["changes"] == []
    assert snapshot(node) == files_before


def test_containerd_toml_merged_keeping_comments_then_idempotent(node, run_module):
    before = real(node, CONFIG_TOML).read_text()
    result, failed = config(run_module, path=CONFIG_TOML, settings=CONTAINERD)
    assert not failed, result
    assert result["changed"] and result["format"] == "toml"
    assert result["changed_keys"] == ['plugins."io.containerd.grpc.v1.cri".containerd.default_runtime_name',
                                      'plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia']
    after = real(node, CONFIG_TOML).read_text()
    assert after.startswith(before[:before.index("version = 2")])  # the operator's comments at the top
    assert '    sandbox_image = "registry.internal.example:5000/pause:3.6"  # our mirror\n' in after
    assert '        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]\n' in after
    assert len(after.splitlines()) == len(before.splitlines()) + 6

    files_before = snapshot(node)
    again, failed = config(run_module, path=CONFIG_TOML, settings=CONTAINERD)
    assert not failed and not again["changed"] and snapshot(node) == files_before


def test_check_mode_returns_the_plan_and_writes_nothing(node, run_module):
    files_before = snapshot(node)
    result, failed = config(run_module, check_mode=True, path=DAEMON_JSON, settings=DOCKER, backup=True)
    assert not failed and result["changed"] and result["effective_changed"]
    assert "runtimes.nvidia" in result["changed_keys"]
    assert '"nvidia": {' in result["diff"]["after"] and '"nvidia"' not in result["diff"]["before"]
    assert "backup_file" not in result
    new, failed = config(run_module, check_mode=True, path="/etc/docker/new/daemon.json", settings={"debug": True})
    assert not failed and new["changed"] and new["diff"]["after"] == '{\n  "debug": true\n}\n'
    assert snapshot(node) == files_before and not real(node, "/etc/docker/new").exists()


def test_new_file_is_created_0644(node, run_module):
    result, failed = config(run_module, path="/etc/docker/new/daemon.json", settings={"live-restore": True, "x": None})
    assert not failed and result["changed"] and result["changed_keys"] == ["live-restore"]
    made = real(node, "/etc/docker/new/daemon.json")
    assert made.read_text() == '{\n  "live-restore": true\n}\n' and oct(made.stat().st_mode & 0o7777) == "0o644"


def test_nothing_to_set_creates_no_file(node, run_module):
    result, failed = config(run_module, path="/etc/docker/none.json", settings={"debug": None})
    assert not failed and not result["changed"] and not real(node, "/etc/docker/none.json").exists()


def test_backup_keeps_the_old_file(node, run_module):
    before = real(node, DAEMON_JSON).read_bytes()
    result, failed = config(run_module, path=DAEMON_JSON, settings={"live-restore": True}, backup=True)
    assert not failed and result["changed"]
    backup = Path(result["backup_file"])
    assert backup.parent == real(node, "/etc/docker") and backup.read_bytes() == before


def test_validate_passes_then_the_file_is_written(node, run_module):
    result, failed = config(run_module, path=DAEMON_JSON, settings={"live-restore": True}, validate=VALIDATE_JSON)
    assert not failed and result["changed"] and '"live-restore": true' in real(node, DAEMON_JSON).read_text()


def test_failed_validation_keeps_the_old_file_and_names_the_keys(node, run_module):
    files_before = snapshot(node)
    refuse = f"{sys.executable} -c 'import sys; sys.exit(\"unknown runtime in \" + sys.argv[1])' %s"
    result, failed = config(run_module, path=DAEMON_JSON, settings=DOCKER, validate=refuse, backup=True)
    assert failed and not result["changed"]
    assert result["msg"].startswith(f"validate: {refuse} refused the new {DAEMON_JSON} (rc 1): unknown runtime in ")
    assert result["msg"].endswith("; the keys it changed: log-driver, log-opts.max-size, log-opts.max-file, "
                                  "default-shm-size, runtimes.nvidia, debug. The old file was kept")
    assert "/.dlnode-" in result["msg"]  # the temporary file was what it checked
    assert snapshot(node) == files_before  # no temp file left, no backup made


def test_validate_without_placeholder_is_refused(node, run_module):
    result, failed = config(run_module, path=DAEMON_JSON, settings=DOCKER, validate="dockerd --validate")
    assert failed and result["msg"] == "validate: must contain %s where the new file's path goes, got 'dockerd --validate'"


def test_invalid_json_is_refused_and_untouched(node, run_module):
    real(node, DAEMON_JSON).write_text('{\n    "debug": true\n    "bip": "172.26.0.1/16"\n}\n')
    files_before = snapshot(node)
    result, failed = config(run_module, path=DAEMON_JSON, settings=DOCKER)
    assert failed and result["msg"] == ("/etc/docker/daemon.json is not valid JSON: Expecting ',' delimiter at line 3 "
                                        "column 5; fix or remove the file. Nothing was written")
    assert snapshot(node) == files_before


def test_invalid_toml_is_refused_and_untouched(node, run_module):
    real(node, CONFIG_TOML).write_text('version = 2\n[plugins\n')
    files_before = snapshot(node)
    result, failed = config(run_module, path=CONFIG_TOML, settings=CONTAINERD)
    assert failed and result["msg"].startswith("/etc/containerd/config.toml is not valid TOML: ")
    assert " at line 2 column " in result["msg"] and snapshot(node) == files_before


def test_key_colliding_with_a_value_is_refused(node, run_module):
    real(node, DAEMON_JSON).write_text('{\n    "log-opts": "x"\n}\n')
    files_before = snapshot(node)
    result, failed = config(run_module, path=DAEMON_JSON, settings={"log-opts": {"max-size": "10m"}, "debug": True})
    assert failed and result["msg"] == (
        'settings.log-opts: the file has log-opts = "x" (a string, not an object), so log-opts.max-size cannot be set '
        "inside it; change or remove log-opts in the file first. Nothing was written")
    assert snapshot(node) == files_before


@pytest.mark.parametrize("args, message", [
    (dict(settings="debug"), "argument 'settings' is of type str and we were unable to convert to dict"),
    (dict(settings={"dns": ["1.1.1.1", None]}), "settings.dns[1]: null inside a list; leave the item out instead"),
    (dict(path="/etc/docker/daemon.yaml", settings={"debug": True}),
     "format: cannot tell the format of /etc/docker/daemon.yaml from its name (.json or .toml); set format to json or toml"),
    (dict(path="etc/docker/daemon.json", settings={"debug": True}), "path must be an absolute path, got etc/docker/daemon.json"),
    (dict(format="yaml", settings={"debug": True}), "value of format must be one of: json, toml, got: yaml"),
])
def test_bad_input_names_the_option(node, run_module, args, message):
    files_before = snapshot(node)
    result, failed = config(run_module, **dict(dict(path=DAEMON_JSON), **args))
    assert failed and message in result["msg"]
    assert snapshot(node) == files_before


def test_format_option_overrides_the_extension(node, run_module):
    real(node, "/etc/containerd/cfg").write_text("version = 2\n")
    result, failed = config(run_module, path="/etc/containerd/cfg", format="toml", settings={"root": "/data/containerd"})
    assert not failed and result["changed"]
    assert real(node, "/etc/containerd/cfg").read_text() == 'version = 2\nroot = "/data/containerd"\n'


def test_toml_without_tomlkit_names_the_package(node, run_module, monkeypatch):
    monkeypatch.setattr(tomlmerge, "HAS_TOMLKIT", False)
    files_before = snapshot(node)
    result, failed = config(run_module, path=CONFIG_TOML, settings=CONTAINERD)
    assert failed and "install the package python3-tomlkit" in result["msg"]
    assert snapshot(node) == files_before
    result, failed = config(run_module, path=DAEMON_JSON, settings={"live-restore": True})
    assert not failed and result["changed"]  # JSON needs nothing beyond the standard library


@pytest.mark.skipif(shutil.which("containerd") is None, reason="containerd is not installed here")
def test_containerd_itself_validates_the_merged_file(node, run_module):
    # containerd loads the new file and prints the config it would run with (Debian 12: containerd 1.6.20).
    result, failed = config(run_module, path=CONFIG_TOML, settings=CONTAINERD,
                            validate="containerd --config %s config dump")
    assert not failed and result["changed"], result
    real(node, CONFIG_TOML).write_text('version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n'
                                       'default_runtime_name = "runc"\n')
    result, failed = config(run_module, path=CONFIG_TOML, settings={"version": "two"},
                            validate="containerd --config %s config dump")
    assert failed and result["msg"].startswith("validate: containerd --config %s config dump refused the new "
                                               "/etc/containerd/config.toml (rc 1): ")
    assert result["msg"].endswith("the keys it changed: version. The old file was kept")
    assert 'version = 2\n' in real(node, CONFIG_TOML).read_text()
