"""Docker from Docker's repository (the test repository's doubles, carrying Debian's real dockerd 26.1).

In file order: the signed deb822 source, the engine's packages locked at the version asked, a real daemon
running from docker-ce's own units, a setting `dockerd --validate` refuses (refused before the file is
replaced: nothing changes, nothing restarts), and a version change in one run under a running container.
"""
from __future__ import annotations

import json
import os
import subprocess

from playbook import play, recap

DAEMON_JSON = "/etc/docker/daemon.json"
IMAGE = "dlnode/busybox:test"
OLD = "5:28.5.2-1~debian.12~bookworm"
NEW = "5:29.0.0-1~debian.12~bookworm"
ENGINE = ("docker-ce", "docker-ce-cli")
OTHERS = {"containerd.io": "1.7.28-1~debian.12~bookworm", "docker-buildx-plugin": "0.30.0-1~debian.12~bookworm",
          "docker-compose-plugin": "2.40.3-1~debian.12~bookworm"}
FINGERPRINT = os.path.join(os.environ.get("MOLECULE_PROJECT_DIRECTORY", "."), ".cache/repo/docker/KEY-FINGERPRINT")


def started(host):
    return host.check_output("systemctl show -p ActiveEnterTimestamp --value docker.service")


def installed(host, name):
    """'hi 5:28.5.2-1~debian.12~bookworm': held and installed, at that version."""
    return host.check_output(f"dpkg-query -W -f '${{db:Status-Abbrev}}${{Version}}' {name}")


def state(host):
    return (host.file(DAEMON_JSON).content_string, started(host),
            host.check_output("dpkg-query -W -f '${db:Status-Abbrev} ${Package} ${Version}\\n' | sort"))


def test_dockers_source_is_deb822_signed_by_its_own_key(host):
    source = host.file("/etc/apt/sources.list.d/docker.sources").content_string
    for line in ("URIs: http://dlnode-repo/docker/linux/debian", "Suites: bookworm", "Components: stable"):
        assert line in source.splitlines(), source
    keyring = next(line.split(": ", 1)[1] for line in source.splitlines() if line.startswith("Signed-By: "))
    with open(FINGERPRINT, encoding="utf-8") as handle:
        fingerprint = handle.read().strip()
    # The node has no gpg: the keyring is read here.
    shown = subprocess.run(["gpg", "--show-keys", "--with-colons"], input=host.file(keyring).content,
                           capture_output=True, check=True).stdout.decode()
    assert f"fpr:::::::::{fingerprint}:" in shown
    assert not host.file("/etc/apt/sources.list.d/docker.list").exists


def test_the_engine_is_locked_at_the_version_asked_and_the_rest_at_the_newest(host):
    pin = host.file("/etc/apt/preferences.d/dlnode-container_runtime.pref").content_string
    for name in ENGINE:
        assert installed(host, name) == f"hi {OLD}"
        assert f"Package: {name}\nPin: version {OLD}" in pin
    for name, version in OTHERS.items():
        assert installed(host, name) == f"hi {version}"
        assert f"Package: {name}\nPin: version {version}" in pin
    assert host.package("docker.io").is_installed is False


def test_a_real_daemon_runs_from_docker_ces_units_with_the_operators_keys(host):
    assert host.service("docker").is_running and host.service("docker").is_enabled
    assert host.check_output("systemctl show -p FragmentPath --value docker.service") == "/lib/systemd/system/docker.service"
    assert host.service("containerd").is_running
    info = json.loads(host.check_output("docker info --format '{{json .}}'"))
    assert info["ServerVersion"] == "26.1.5+dfsg1" and info["LiveRestoreEnabled"] is True
    assert "dlnode.test=operator" in info["Labels"]
    host.check_output(f"docker import -c 'ENV PATH=/bin' /srv/busybox-rootfs.tar {IMAGE}")
    assert host.check_output(f"docker run --rm {IMAGE} sh -c 'df -k /dev/shm | tail -1'").split()[1] == str(1024 ** 2)


def test_a_setting_dockerd_validate_refuses_changes_nothing_and_restarts_nothing(host):
    # A string, as the controller's check wants; only dockerd knows the levels.
    before = state(host)
    rc, output = play(host, "-e", json.dumps({"container_runtime_daemon_settings": {"log-level": "loud"}}))
    text = " ".join(output.split())
    assert rc != 0
    assert f"validate: dockerd --validate --config-file %s refused the new {DAEMON_JSON} (rc 1)" in text, output
    assert "invalid logging level: loud; the keys it changed: log-level. The old file was kept" in text, output
    assert state(host) == before


def test_a_version_change_upgrades_in_one_run_and_a_running_container_survives(host):
    host.run("docker rm -f dlnode-probe")
    host.check_output(f"docker run -d --name dlnode-probe {IMAGE} sleep 600")
    pid = host.check_output("docker inspect -f '{{.State.Pid}}' dlnode-probe")
    rc, output = play(host, "-e", json.dumps({"container_runtime_engine_version": NEW}))
    assert rc == 0, output
    pin = host.file("/etc/apt/preferences.d/dlnode-container_runtime.pref").content_string
    for name in ENGINE:
        assert installed(host, name) == f"hi {NEW}"
        assert f"Package: {name}\nPin: version {NEW}" in pin
    assert host.service("docker").is_running
    assert host.check_output("docker inspect -f '{{.State.Running}} {{.State.Pid}}' dlnode-probe") == f"true {pid}"
    rc, output = play(host, "-e", json.dumps({"container_runtime_engine_version": NEW}))
    assert rc == 0 and recap(output)["changed"] == 0, output
    host.run("docker rm -f dlnode-probe")
