"""The container_runtime role on a node with Debian's docker.io running inside it.

In file order: what converge left (the operator's daemon.json keys kept with ours merged in, the engine
locked, NVIDIA's container toolkit locked with it and its runtime registered, the docker group), a container from a locally imported image with the role's shm size, ulimits
and log options, a second run that changes nothing and does not restart the daemon, a config change
under a running container (live-restore), a setting dockerd refuses at start (the old file goes back),
and bad input refused with nothing changed.
"""
from __future__ import annotations

import base64
import json

import pytest
from playbook import play, recap

DAEMON_JSON = "/etc/docker/daemon.json"
IMAGE = "dlnode/busybox:test"
GIB = 1024 ** 3


def started(host):
    """When systemd last started the daemon: a restart changes it."""
    return host.check_output("systemctl show -p ActiveEnterTimestamp --value docker.service")


def write(host, path, text):
    host.check_output(f"echo {base64.b64encode(text.encode()).decode()} | base64 -d > {path}")


def state(host):
    """What a refused run must leave as it was: the config, the daemon's start, packages and holds."""
    return (host.file(DAEMON_JSON).content_string, started(host),
            host.check_output("dpkg-query -W -f '${db:Status-Abbrev} ${Package} ${Version}\\n' | sort"))


@pytest.fixture(scope="module")
def image(host):
    # An imported root filesystem has no environment: PATH for busybox's applets.
    host.check_output(f"docker import -c 'ENV PATH=/bin' /srv/busybox-rootfs.tar {IMAGE}")
    return IMAGE


def test_the_operators_keys_stay_first_with_ours_merged_after(host):
    text = host.file(DAEMON_JSON).content_string
    assert text.startswith('{\n    "labels": ["dlnode.test=operator"],\n    "max-concurrent-downloads": 4,\n'), text
    config = json.loads(text)
    assert config["log-driver"] == "json-file"
    assert config["log-opts"] == {"max-size": "100m", "max-file": "3"}
    assert config["live-restore"] is True
    assert config["default-shm-size"] == "1g"
    assert config["default-ulimits"]["stack"] == {"Name": "stack", "Soft": 67108864, "Hard": 67108864}


def test_the_engine_is_locked_and_running(host):
    assert host.check_output("dpkg-query -W -f '${db:Status-Abbrev}' docker.io").startswith("hi")
    assert "Package: docker.io\nPin: version" in host.file("/etc/apt/preferences.d/dlnode-container_runtime.pref").content_string
    assert host.service("docker").is_running and host.service("docker").is_enabled
    info = json.loads(host.check_output("docker info --format '{{json .}}'"))
    assert info["Driver"] == "overlay2" and info["LiveRestoreEnabled"] is True
    assert "dlnode.test=operator" in info["Labels"]


def test_nvidias_toolkit_is_locked_with_the_engine_and_registered_as_a_runtime(host):
    # The test repository's newest, 1.18.0-1: all four packages at one version, held and pinned.
    pin = host.file("/etc/apt/preferences.d/dlnode-container_runtime.pref").content_string
    for name in ("nvidia-container-toolkit", "nvidia-container-toolkit-base", "libnvidia-container-tools",
                 "libnvidia-container1"):
        assert host.check_output(f"dpkg-query -W -f '${{db:Status-Abbrev}}${{Version}}' {name}") == "hi 1.18.0-1"
        assert f"Package: {name}\nPin: version 1.18.0-1" in pin
    assert json.loads(host.file(DAEMON_JSON).content_string)["runtimes"]["nvidia"]["path"] == "nvidia-container-runtime"
    assert "nvidia" in json.loads(host.check_output("docker info --format '{{json .Runtimes}}'"))


def test_users_are_in_the_docker_group(host):
    assert "docker" in host.user("dlprobe").groups


def test_a_container_gets_the_shm_size_ulimits_and_log_options(host, image):
    host.run("docker rm -f dlnode-probe")
    host.check_output(f"docker run -d --name dlnode-probe {image} sleep 600")
    inspect = json.loads(host.check_output("docker inspect dlnode-probe"))[0]["HostConfig"]
    assert inspect["ShmSize"] == GIB
    assert inspect["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "100m", "max-file": "3"}}
    ulimits = {u["Name"]: (u["Soft"], u["Hard"]) for u in inspect["Ulimits"]}
    memlock = json.loads(host.file(DAEMON_JSON).content_string)["default-ulimits"]["memlock"]["Hard"]
    assert ulimits == {"memlock": (memlock, memlock), "stack": (67108864, 67108864)}
    # The same inside: /dev/shm's size in KiB, memlock in KiB (capped here: no CAP_SYS_RESOURCE), stack.
    inside = host.check_output("docker exec dlnode-probe sh -c 'df -k /dev/shm | tail -1; ulimit -l; ulimit -s'").split("\n")
    assert inside[0].split()[1] == str(GIB // 1024)
    assert inside[1:] == [str(memlock // 1024) if memlock != -1 else "unlimited", str(67108864 // 1024)]


def test_a_second_run_changes_nothing_and_does_not_restart_the_daemon(host):
    before = started(host)
    rc, output = play(host)
    assert rc == 0, output
    assert recap(output)["changed"] == 0, output
    assert started(host) == before


def test_a_config_change_restarts_the_daemon_and_the_container_keeps_running(host):
    pid = host.check_output("docker inspect -f '{{.State.Pid}}' dlnode-probe")
    before = started(host)
    rc, output = play(host, "-e", json.dumps({"container_runtime_log_max_file": 5}))
    assert rc == 0, output
    assert started(host) != before
    assert json.loads(host.file(DAEMON_JSON).content_string)["log-opts"]["max-file"] == "5"
    assert host.check_output("docker inspect -f '{{.State.Running}} {{.State.Pid}}' dlnode-probe") == f"true {pid}"
    rc, output = play(host)
    assert rc == 0, output
    assert host.check_output("docker inspect -f '{{.State.Running}}' dlnode-probe") == "true"


def test_a_setting_dockerd_refuses_at_start_puts_the_old_file_back(host):
    before = host.file(DAEMON_JSON).content_string
    rc, output = play(host, "-e", json.dumps({"container_runtime_daemon_settings": {"storage-driver": "nosuchdriver"}}))
    assert rc != 0
    assert "docker.service did not start with the new /etc/docker/daemon.json (the keys changed: storage-driver); " \
           "the old file was put back" in " ".join(output.split()), output
    assert host.file(DAEMON_JSON).content_string == before
    assert host.service("docker").is_running
    assert host.check_output("docker inspect -f '{{.State.Running}}' dlnode-probe") == "true"


@pytest.mark.parametrize("extra, message", [
    ({"container_runtime_engine": "podman"}, "value of container_runtime_engine must be one of: docker, containerd, got: podman"),
    ({"container_runtime_daemon_settings": {"live-restore": "yes", "log-opts": {"max-file": 3}}},
     "container_runtime_daemon_settings.live-restore: got 'yes'; allowed: true or false"),
    ({"container_runtime_daemon_settings": {"log-opts": {"max-file": 3}}},
     "container_runtime_daemon_settings.log-opts.max-file: got 3; allowed: a string"),
    ({"container_runtime_data_root": "var/lib/docker"}, "container_runtime_data_root: got 'var/lib/docker'; allowed: an absolute path"),
    ({"container_runtime_data_root": "/srv/datasets"},
     "container_runtime_data_root: /srv/datasets holds train-00000.tar, which is not Docker's"),
])
def test_bad_input_is_refused_and_nothing_changes(host, extra, message):
    before = state(host)
    rc, output = play(host, "-e", json.dumps(extra))
    assert rc != 0 and message in " ".join(output.split()), output
    assert state(host) == before


def test_a_daemon_json_that_is_not_json_is_refused_and_left_as_it_is(host):
    good = host.file(DAEMON_JSON).content_string
    broken = good.replace('"live-restore": true', '"live-restore": true,,')
    assert broken != good
    write(host, DAEMON_JSON, broken)
    try:
        before = state(host)
        rc, output = play(host)
        assert rc != 0 and f"{DAEMON_JSON} is not valid JSON" in output and "Nothing was written" in output, output
        assert state(host) == before
    finally:
        write(host, DAEMON_JSON, good)
    host.run("docker rm -f dlnode-probe")
