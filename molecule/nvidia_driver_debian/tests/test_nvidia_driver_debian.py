"""The nvidia_driver role with Debian 12's own non-free 535 driver: real packages, locked; no GPU and no
headers for the container's kernel, so DKMS has registered the module and built nothing."""
from __future__ import annotations

VERSION = "535.261.03-1"  # bookworm's (the node has no bookworm-security)
RECORD = "/etc/dlnode/package-sets/nvidia_driver.versions"
PIN = "/etc/apt/preferences.d/dlnode-nvidia_driver.pref"


def locked(host):
    text = host.file(RECORD).content_string
    return dict(line.split() for line in text.splitlines() if line and not line.startswith("#"))


def test_the_compute_driver_is_installed_held_and_pinned_at_535(host):
    found = locked(host)
    assert set(found) == {"libcuda1", "nvidia-smi", "libnvidia-ml1", "libnvidia-cfg1", "nvidia-kernel-support",
                          "firmware-nvidia-gsp", "nvidia-persistenced", "nvidia-kernel-dkms"}
    for name, version in found.items():
        state = host.check_output(f"dpkg-query -W -f '${{db:Status-Abbrev}}${{Version}}' {name}")
        assert state == f"hi {version}", name
        assert f"Package: {name}\nPin: version {version}\nPin-Priority: 1001" in host.file(PIN).content_string
    assert found["nvidia-kernel-dkms"] == VERSION and found["libcuda1"] == VERSION
    # nvidia-persistenced has versions of its own in Debian: locked at the one installed.
    assert found["nvidia-persistenced"].startswith("535.")


def test_no_x_server_came_with_it(host):
    assert not host.package("xserver-xorg-core").is_installed


def test_dkms_registered_the_module_and_built_nothing_for_this_kernel(host):
    status = host.check_output("dkms status")
    assert status.startswith("nvidia-current/535.261.03") and "installed" not in status


def test_nvidia_smi_is_the_real_one_and_finds_no_driver(host):
    done = host.run("nvidia-smi")
    assert done.rc != 0 and "NVIDIA-SMI has failed" in done.stdout + done.stderr


def test_persistenced_is_enabled(host):
    assert host.service("nvidia-persistenced").is_enabled


def test_unattended_upgrades_skips_the_driver(host):
    dump = host.check_output("apt-config dump Unattended-Upgrade::Package-Blacklist")
    assert '"^nvidia-kernel-dkms$";' in dump and '"^libcuda1$";' in dump
