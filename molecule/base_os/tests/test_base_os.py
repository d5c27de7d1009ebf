"""base_os on Debian 12 nodes, with and without python3-apt at first: state read back from each node."""
from __future__ import annotations

import pytest

PROFILE = {
    "vm.swappiness": "10",
    "vm.overcommit_memory": "1",
    "vm.max_map_count": "2097152",  # the scenario's override of the profile's 1048576
    "kernel.numa_balancing": "0",
    "net.ipv4.tcp_rmem": "4096 87380 268435456",
    "net.ipv4.tcp_wmem": "4096 65536 268435456",
    "net.ipv4.tcp_mtu_probing": "1",
    "fs.file-max": "4194304",
    "fs.nr_open": "4194304",
    "fs.inotify.max_user_watches": "1048576",
    "fs.inotify.max_user_instances": "8192",
}


@pytest.mark.parametrize("name", ["build-essential", "dkms", "pciutils", "numactl", "nvme-cli", "jq",
                                  "python3-venv", "curl", "ca-certificates", "gnupg", "chrony"])
def test_base_packages_installed(host, name):
    assert host.package(name).is_installed


def test_python3_apt_installed_by_the_run(host):
    # The bare node had none (prepare checks): the apt module installed it in the real run.
    assert host.package("python3-apt").is_installed
    assert host.run("python3 -c 'import apt_pkg'").rc == 0


def test_compilers_run(host):
    assert host.run("gcc --version").rc == 0
    assert host.run("make --version").rc == 0
    assert host.run("python3 -m venv /tmp/probe-venv && /tmp/probe-venv/bin/python -V").rc == 0


@pytest.mark.parametrize("unit", ["apt-daily.timer", "apt-daily-upgrade.timer", "unattended-upgrades.service",
                                  "e2scrub_reap.service"])
def test_units_masked_and_stopped(host, unit):
    assert host.run(f"systemctl is-enabled {unit}").stdout.strip() == "masked"
    assert host.run(f"systemctl is-active {unit}").stdout.strip() != "active"


def test_chrony_running(host):
    assert host.service("chrony").is_enabled


@pytest.mark.parametrize("key, value", PROFILE.items())
def test_sysctl_running_values(host, key, value):
    path = "/proc/sys/" + key.replace(".", "/")
    assert " ".join(host.file(path).content_string.split()) == value


def test_sysctl_file_holds_the_merged_profile(host):
    text = host.file("/etc/sysctl.d/90-dlnode-base.conf").content_string
    for key, value in PROFILE.items():
        assert f"{key} = {value}\n" in text
    # Not per network namespace: read-only in a container, written for the next boot.
    assert "net.core.rmem_max = 268435456\n" in text
    # Dropped with a null in the scenario.
    assert "netdev_max_backlog" not in text


def test_sysctl_file_loads_at_boot(host):
    # systemd-sysctl reads the file the same way at boot; it must parse cleanly.
    result = host.run("sysctl -p /etc/sysctl.d/90-dlnode-base.conf")
    assert "vm.swappiness = 10" in result.stdout
    # Only the keys that are not per network namespace are refused, as in any container.
    refused = [line for line in result.stderr.splitlines() if line]
    assert refused and all('setting key "net.core.' in line for line in refused), refused


def expected_limits(host):
    """unlimited/1048576 where hard limits can be raised; else PID 1's ceiling (a container)."""
    capbnd = int(host.run("grep CapBnd /proc/1/status").stdout.split()[1], 16)
    if capbnd & (1 << 24):  # CAP_SYS_RESOURCE
        return "unlimited", "1048576"
    limits = host.file("/proc/1/limits").content_string.splitlines()
    memlock = next(line for line in limits if line.startswith("Max locked memory")).split()[4]
    nofile = next(line for line in limits if line.startswith("Max open files")).split()[4]
    memlock = memlock if memlock == "unlimited" else str(int(memlock) // 1024)
    return memlock, str(min(int(nofile), 1048576))


@pytest.mark.parametrize("user", ["root", "dlprobe"])
def test_limits_in_a_fresh_login_session(host, user):
    session = host.run(f"runuser -l {user} -c 'ulimit -l; ulimit -n'")
    assert session.rc == 0, session.stderr
    assert session.stdout.split() == list(expected_limits(host))


def test_limits_files(host):
    memlock, nofile = expected_limits(host)
    text = host.file("/etc/security/limits.d/90-dlnode.conf").content_string
    for who in ("*", "root"):
        for kind in ("soft", "hard"):
            assert f"{who:<5} {kind:<5} memlock  {memlock}\n" in text
            assert f"{who:<5} {kind:<5} nofile   {nofile}\n" in text


def test_limits_for_services(host):
    memlock, nofile = expected_limits(host)
    show = host.run("systemctl show --property DefaultLimitMEMLOCK --property DefaultLimitNOFILE").stdout
    assert f"DefaultLimitMEMLOCK={'infinity' if memlock == 'unlimited' else int(memlock) * 1024}" in show
    assert f"DefaultLimitNOFILE={nofile}" in show
    # A service started now gets them (a runtime unit: systemd-run needs D-Bus, absent here).
    host.run("printf '[Service]\\nType=oneshot\\nExecStart=/bin/sh -c \"ulimit -l >/run/limits-probe; "
             "ulimit -n >>/run/limits-probe\"\\n' >/run/systemd/system/dlnode-limits-probe.service")
    probe = host.run("systemctl daemon-reload && systemctl start dlnode-limits-probe.service")
    assert probe.rc == 0, probe.stderr
    assert host.file("/run/limits-probe").content_string.split() == [memlock, nofile]


def test_swap_file_active_and_persistent(host):
    swap = host.file("/srv/swap/swapfile")
    assert swap.size == 64 * 1024 * 1024
    assert swap.mode == 0o600
    assert "/srv/swap/swapfile" in host.file("/proc/swaps").content_string
    assert "/srv/swap/swapfile none swap sw 0 0" in host.file("/etc/fstab").content_string
