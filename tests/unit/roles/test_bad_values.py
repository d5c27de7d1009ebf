"""Each role refuses bad variable values in its first tasks, naming them, before it touches the node.

One ansible-playbook run (check mode) applies every role to hosts that each carry a set of bad
values. The hosts point at a closed port: a task that reached the node would come back
UNREACHABLE, so a run that fails with our message and no unreachable host failed before any
node access. Hosts with the defaults (and with the documented nulls) show the checks pass and
that the node is reached only after them.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
ROLES = ("base_os", "storage", "tuning", "gpu_settings", "container_runtime", "validate")
SPEC_TASK = "Validating arguments against arg spec 'main'"
CHECK_TASK = "Check the values the argument specs cannot express"

# Values the argument specs refuse: wrong choices, wrong types, missing keys of a known shape.
SPEC_BAD = {
    "container_runtime": {"container_runtime_engine": "podman", "container_runtime_nvidia_toolkit": "yes",
                          "container_runtime_daemon_settings": ["debug"]},
    "base_os": {"base_os_unattended_upgrades": "sometimes", "base_os_swap_file_size_mib": "big",
                "base_os_sysctl": [1]},
    "storage": {"storage_volumes": [{"name": "data", "devices": ["/dev/sdb"], "fstype": "zfs", "mount": "/data"},
                                    {"name": "scratch", "devices": ["/dev/sdc"]}],
                "storage_binds": [{"source": "/data/docker"}]},
    "tuning": {"tuning_thp_enabled": "sometimes", "tuning_cpu_governor": "turbo", "tuning_hugepages_persist": "grub"},
    "gpu_settings": {"gpu_settings_compute_mode": "exclusive_thread", "gpu_settings_gpu_locked_clocks": {"min": 1000},
                     "gpu_settings_applications_clocks": {"preset": "max", "graphics": 1410},
                     "gpu_settings_on_unsupported": "ignore"},
    "validate": {"validate_gpu_count": "eight", "validate_required": "ecc", "validate_mig": "sometimes"},
}
SPEC_MESSAGES = {
    "base_os": ["value of base_os_unattended_upgrades must be one of: disabled, exclude_nvidia, unmanaged, got: sometimes",
                "argument 'base_os_swap_file_size_mib' is of type str and we were unable to convert to int",
                "argument 'base_os_sysctl' is of type list and we were unable to convert to dict"],
    "storage": ["value of fstype must be one of: xfs, ext4, swap, got: zfs found in storage_volumes",
                "fstype is xfs but all of the following are missing: mount found in storage_volumes",
                "missing required arguments: path found in storage_binds"],
    "tuning": ["value of tuning_thp_enabled must be one of: always, madvise, never, None, got: sometimes",
               "value of tuning_cpu_governor must be one of: performance, powersave, schedutil, ondemand, conservative, "
               "userspace, None, got: turbo",
               "value of tuning_hugepages_persist must be one of: sysctl, boot_unit, cmdline, none, got: grub"],
    "gpu_settings": ["value of gpu_settings_compute_mode must be one of: default, exclusive_process, prohibited, None, "
                     "got: exclusive_thread",
                     "parameters are required together: min, max found in gpu_settings_gpu_locked_clocks",
                     "parameters are mutually exclusive: preset|graphics found in gpu_settings_applications_clocks",
                     "value of gpu_settings_on_unsupported must be one of: fail, warn, skip, got: ignore"],
    "validate": ["argument 'validate_gpu_count' is of type str and we were unable to convert to int",
                 "argument 'validate_mig' is of type str and we were unable to convert to bool"],
    "container_runtime": ["value of container_runtime_engine must be one of: docker, containerd, got: podman",
                          "value of container_runtime_nvidia_toolkit must be one of: auto, always, never, got: yes",
                          "argument 'container_runtime_daemon_settings' is of type list and we were unable to convert to dict"],
}
ABSOLUTE = "allowed: an absolute path (starting with /, without .., // or a trailing /)"

# Values of the right type and the wrong meaning, refused by the role's check task.
CHECK_BAD = {
    "container_runtime": {
        "container_runtime_data_root": "data/docker",
        "container_runtime_daemon_settings": {"live-restor": True, "debug": "yes", "log-opts": {"max-file": 3},
                                              "mtu": "9000", "registry-mirrors": "https://mirror.example"},
        "container_runtime_log_max_size": "100 MB",
        "container_runtime_docker_key_fingerprints": ["0EBFCD88"],
        "container_runtime_nvidia_toolkit_url": "nvidia.github.io/libnvidia-container",
    },
    "base_os": {
        "base_os_sysctl_file": "sysctl.d/90-dlnode.conf",
        "base_os_sysctl": {"vm.swappiness": 300, "vm overcommit": 1},
        "base_os_limits_memlock": "lots",
        "base_os_limits_nofile": 0,
        "base_os_masked_services": ["ModemManager", {"name": "bluetooth.service"}],
        "base_os_packages_extra": [["htop"]],
        "base_os_epel_url": "mirror.example/epel/",
        "base_os_cluster_networks": ["10.10.0.0", "fd00:10::/64"],
        "base_os_cluster_ports": ["29500", "6817-6818/tcp"],
        "base_os_cluster_firewalld_zone": "dlnode cluster",
    },
    "storage": {
        "storage_volumes": [
            {"name": "da ta", "devices": ["sdb"], "mount": "data", "mode": "rwx"},
            {"name": "scratch", "devices": ["/dev/sdc"], "mount": "/scratch", "mount_options": ["noatime,nodev"]},
            {"name": "scratch", "devices": ["/dev/sdd"], "mount": "/scratch"},
        ],
        "storage_binds": [{"source": "/data/docker", "path": "/var/lib/docker/"}],
        "storage_swap_file_path": "swapfile",
    },
    "tuning": {
        "tuning_hugepages_size": "2X",
        "tuning_hugepages_count": -1,
        "tuning_hugepages_node_counts": {"x": 1},
        "tuning_io_classes": {"nvme": {"match": {"transport": ["nvm"]}, "scheduler": "cfq", "read_ahead_kb": -1,
                                       "bogus": 1}},
        "tuning_io_devices": {"ssd": ["loop8"]},
        "tuning_sysctl_file": "91-dlnode-tuning.conf",
        "tuning_cpu_unit": "dlnode-cpufreq",
        "tuning_dirty_ratio": 10,
        "tuning_dirty_background_ratio": 10,
    },
    "gpu_settings": {
        "gpu_settings_gpus": ["all", "GPU0", {"index": 0}],
        "gpu_settings_power_limit": -5,
        "gpu_settings_memory_locked_clocks": {"min": 2000, "max": 1000},
        "gpu_settings_nvml_venv": "opt/dlnode/nvml",
        "gpu_settings_persistenced_user": "Nvidia Persistenced",
    },
    "validate": {
        "validate_gpu_count": -1,
        "validate_gpu_model": "h100",
        "validate_hugepages_size": "2X",
        "validate_io_schedulers": {"nvme0n1": "cfq"},
        "validate_memlock": "lots",
        "validate_python": "venv/bin/python",
        "validate_report_path": "report.json",
        "validate_performance_timeout": 0,
        "validate_threshold_fractions": {"fp8": 0.5, "bf16_tflops": 1.5},
        "validate_required": ["ecc", "speed"],
    },
}
CHECK_MESSAGES = {
    "container_runtime": [
        f"container_runtime_data_root: got 'data/docker'; {ABSOLUTE}, or ''",
        "container_runtime_daemon_settings: got the key(s) live-restor; allowed: keys among: allow-nondistributable",
        "container_runtime_daemon_settings.debug: got 'yes'; allowed: true or false",
        "container_runtime_daemon_settings.log-opts.max-file: got 3; allowed: a string",
        "container_runtime_daemon_settings.mtu: got '9000'; allowed: an integer",
        "container_runtime_daemon_settings.registry-mirrors: got 'https://mirror.example'; allowed: a list",
        "container_runtime_log_max_size: got '100 MB'; allowed: a size such as 100m or 1g",
        "container_runtime_docker_key_fingerprints[0]: got '0EBFCD88'; allowed: a full key fingerprint",
        "container_runtime_nvidia_toolkit_url: got 'nvidia.github.io/libnvidia-container'; allowed: empty, or an http",
    ],
    "base_os": [
        f"base_os_sysctl_file: got 'sysctl.d/90-dlnode.conf'; {ABSOLUTE}",
        "base_os_epel_url: got 'mirror.example/epel/'; allowed: a URL (https://, http://, ftp:// or file://) "
        "without a trailing /",
        "base_os_packages_extra[0]: got ['htop']; allowed: a package name (or prefix) without spaces",
        "base_os_masked_services[0]: got 'ModemManager'; allowed: a unit name with its type",
        "base_os_masked_services[1]: got {name: 'bluetooth.service'}; allowed: a unit name with its type",
        "base_os_sysctl: got the key 'vm overcommit'; allowed: a sysctl key",
        "base_os_sysctl[vm.swappiness]: got 300; allowed: an integer from 0 to 200, or null",
        "base_os_limits_memlock: got 'lots'; allowed: an integer >= 1, or 'unlimited'",
        "base_os_limits_nofile: got 0; allowed: an integer >= 1",
        "base_os_cluster_networks[0]: got '10.10.0.0'; allowed: a network in CIDR form",
        "base_os_cluster_ports[0]: got '29500'; allowed: a port or a range with its protocol",
        "base_os_cluster_firewalld_zone: got 'dlnode cluster'; allowed: 1 to 17 letters, digits, _ or -",
    ],
    "storage": [
        "storage_volumes[0].name: got 'da ta'; allowed: 1 to 32 letters, digits, - or _",
        "storage_volumes[2].name: got 'scratch'; allowed: a value no other item has (also storage_volumes[1].name)",
        "storage_volumes[0].devices[0]: got 'sdb'; allowed: a device path under /dev",
        "storage_volumes[0].mount: got 'data'; allowed: an absolute path other than /",
        "storage_binds[0].path: got '/var/lib/docker/'; allowed: an absolute path other than /",
        "storage_volumes[2].mount: got '/scratch'; allowed: a value no other item has (also storage_volumes[1].mount)",
        "storage_volumes[1].mount_options[0]: got 'noatime,nodev'; allowed: one mount option, without spaces or commas",
        "storage_volumes[0].mode: got 'rwx'; allowed: an octal mode in quotes",
        f"storage_swap_file_path: got 'swapfile'; {ABSOLUTE}, or ''",
        "storage_swap_file_size_mib: got 0; allowed: an integer >= 1",
    ],
    "tuning": [
        "tuning_hugepages_size: got '2X'; allowed: a page size such as 2M or 1G",
        "tuning_hugepages_count: got -1; allowed: an integer >= 0",
        "tuning_hugepages_node_counts: got the key 'x'; allowed: a NUMA node id",
        "tuning_io_classes.nvme: got the key(s) bogus; allowed: keys among: match, scheduler, read_ahead_kb",
        "tuning_io_classes.nvme.match.transport[0]: got 'nvm'; allowed: one of: nvme, sata, sas, scsi",
        "tuning_io_classes.nvme.scheduler: got 'cfq'; allowed: one of: none, mq-deadline, kyber, bfq, deadline",
        "tuning_io_classes.nvme.read_ahead_kb: got -1; allowed: an integer >= 0",
        "tuning_io_devices: got the key 'ssd'; allowed: one of the names in tuning_io_classes: nvme",
        f"tuning_sysctl_file: got '91-dlnode-tuning.conf'; {ABSOLUTE}",
        "tuning_cpu_unit: got 'dlnode-cpufreq'; allowed: a unit name ending in .service",
        "tuning_dirty_background_ratio: got 10; allowed: less than tuning_dirty_ratio (10)",
    ],
    "gpu_settings": [
        "gpu_settings_gpus[1]: got 'GPU0'; allowed: all, a GPU index (0), a UUID (GPU-...) or a PCI bus id",
        "gpu_settings_gpus[2]: got {index: 0}; allowed: all, a GPU index (0)",
        "gpu_settings_power_limit: got -5; allowed: a number >= 1, or 'default', null",
        "gpu_settings_memory_locked_clocks.min: got 2000; allowed: at most gpu_settings_memory_locked_clocks.max (1000)",
        f"gpu_settings_nvml_venv: got 'opt/dlnode/nvml'; {ABSOLUTE}",
        "gpu_settings_persistenced_user: got 'Nvidia Persistenced'; allowed: a user name",
    ],
    "validate": [
        "validate_gpu_count: got -1; allowed: an integer >= 0",
        "validate_performance_timeout: got 0; allowed: an integer >= 1",
        "validate_gpu_model: got 'h100'; allowed: a key of the threshold table",
        "validate_hugepages_size: got '2X'; allowed: a page size such as 2M or 1G",
        "validate_io_schedulers.nvme0n1: got 'cfq'; allowed: one of: none, mq-deadline, kyber, bfq",
        "validate_memlock: got 'lots'; allowed: a positive number of KiB or unlimited",
        f"validate_python: got 'venv/bin/python'; {ABSOLUTE}",
        f"validate_report_path: got 'report.json'; {ABSOLUTE}",
        "validate_threshold_fractions: got the key 'fp8'",
        "validate_threshold_fractions.bf16_tflops: got 1.5",
        "validate_required[1]: got 'speed'; allowed: a check",
    ],
}
# Documented values that must pass: nulls leave a setting unmanaged.
GOOD = {
    "container_runtime": {"container_runtime_data_root": "/data/docker", "container_runtime_engine": "containerd",
                          "container_runtime_daemon_settings": {"debug": True, "live-restore": None,
                                                                "log-opts": {"max-file": "5", "compress": None},
                                                                "default-ulimits": {"nofile": {"Name": "nofile",
                                                                                               "Hard": 65536,
                                                                                               "Soft": 65536}}}},
    "base_os": {"base_os_limits_memlock": 65536, "base_os_sysctl": {"vm.swappiness": 0, "kernel.numa_balancing": None}},
    "storage": {"storage_volumes": [{"name": "data", "devices": ["/dev/disk/by-id/nvme-A", "/dev/nvme1n1"],
                                     "raid_level": 0, "mount": "/data", "mode": "1777"},
                                    {"name": "swap", "devices": ["/dev/sdc"], "fstype": "swap"}],
                "storage_binds": [{"source": "/data/docker", "path": "/var/lib/docker"}]},
    "tuning": {"tuning_thp_enabled": None, "tuning_thp_defrag": None, "tuning_cpu_governor": None,
               "tuning_cpu_energy_preference": None, "tuning_hugepages_node_counts": {0: 512, "node1": 512}},
    "gpu_settings": {"gpu_settings_power_limit": "default", "gpu_settings_gpus": [0, "GPU-0ad4414f-aa1d", "0000:3b:00.0"],
                     "gpu_settings_applications_clocks": {"preset": "max"}},
    "validate": {"validate_gpu_count": 8, "validate_gpu_model": "NVIDIA H100 80GB HBM3", "validate_memlock": "unlimited",
                 "validate_python": "/opt/dlnode/venvs/torch/bin/python", "validate_required": ["gpu3.ecc", "bf16_tflops"],
                 "validate_threshold_fractions": {"bf16_tflops": 0.9}, "validate_io_schedulers": {"nvme0n1": "none"}},
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{host: [(task name, result)]} of one check-mode run over every role and set of values."""
    tmp = tmp_path_factory.mktemp("bad-values")
    # Nothing listens on port 9 of this machine: reaching the node fails at once, as UNREACHABLE.
    node = {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": 9}
    hosts = {}
    for role in ROLES:
        node["test_role"] = f"dlnode.gpu.{role}"
        hosts[f"{role}_spec"] = dict(node, **SPEC_BAD[role])
        hosts[f"{role}_check"] = dict(node, **CHECK_BAD[role])
        hosts[f"{role}_defaults"] = dict(node)
        hosts[f"{role}_good"] = dict(node, **GOOD[role])
    (tmp / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    # One play: a host that fails does not stop the others.
    (tmp / "play.yml").write_text(yaml.safe_dump([
        {"name": "Apply each host's role", "hosts": "all", "gather_facts": False,
         "tasks": [{"name": "Apply the role", "ansible.builtin.include_role": {"name": "{{ test_role }}"}}]}
    ]))
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_HOST_KEY_CHECKING="False",
               ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".cache/collections"), ANSIBLE_FORKS="16",
               ANSIBLE_SSH_ARGS="-o ConnectTimeout=5")
    done = subprocess.run([BIN / "ansible-playbook", "-i", tmp / "hosts.yml", tmp / "play.yml", "--check"],
                          cwd=tmp, env=env, capture_output=True, text=True, check=False)
    report = json.loads(done.stdout)
    ran = {host: [] for host in hosts}
    for play in report["plays"]:
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                if result.get("action") != "ansible.builtin.include_role":
                    ran[host].append((task["task"]["name"].split(" : ", 1)[-1], result))
    return ran


def messages(result):
    return result.get("msg", "")


@pytest.mark.parametrize("role", ROLES)
def test_argument_specs_refuse_wrong_choices_and_types_first(runs, role):
    tasks = runs[f"{role}_spec"]
    assert [name.startswith(SPEC_TASK) for name, _result in tasks] == [True], tasks
    result = tasks[0][1]
    assert result["failed"] and not result.get("unreachable")
    for expected in SPEC_MESSAGES[role]:
        assert expected in messages(result), f"{expected!r} not in {messages(result)!r}"


@pytest.mark.parametrize("role", ROLES)
def test_the_check_task_names_every_bad_value_before_the_node_is_touched(runs, role):
    tasks = runs[f"{role}_check"]
    names = [name for name, _result in tasks]
    assert len(names) == 2 and names[0].startswith(SPEC_TASK) and names[1] == CHECK_TASK, names
    result = tasks[1][1]
    assert result["failed"] and not result.get("unreachable")
    assert f"dlnode.gpu.{role}: " in result["msg"] and "nothing was changed" in result["msg"]
    for expected in CHECK_MESSAGES[role]:
        assert any(line.startswith(expected) for line in result["problems"]), \
            f"{expected!r} not in {json.dumps(result['problems'], indent=1)}"
    assert len(result["problems"]) == len(CHECK_MESSAGES[role]), result["problems"]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("values", ["defaults", "good"])
def test_good_values_pass_and_the_node_is_reached_only_after_the_checks(runs, role, values):
    tasks = runs[f"{role}_{values}"]
    assert tasks[0][0].startswith(SPEC_TASK) and not tasks[0][1].get("failed"), tasks[0]
    assert tasks[1][0] == CHECK_TASK and not tasks[1][1].get("failed"), tasks[1]
    assert tasks[2][1].get("unreachable"), tasks[2]
