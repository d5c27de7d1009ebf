"""The nvidia_driver role on two nodes reading the NVIDIA test repository (tests/repo) as a mirror.

In file order: the state converge left (580, the newest of the branch, locked), the bad repository
variants refused with the node's sources left as they were, then a branch change to 590 by the role in
one run, and a second run that changes nothing.
"""
from __future__ import annotations

import json
import os

import pytest
from playbook import play, recap

REPO = "http://dlnode-repo/cuda"
SOURCE = "/etc/apt/sources.list.d/nvidia-cuda.sources"
KEYRING = "/etc/apt/keyrings/nvidia-cuda.gpg"
SOURCE_PIN = "/etc/apt/preferences.d/nvidia-cuda.pref"
PIN = "/etc/apt/preferences.d/dlnode-nvidia_driver.pref"
BLACKLIST = "/etc/apt/apt.conf.d/52dlnode-nvidia_driver-unattended-upgrades"
RECORD = "/etc/dlnode/package-sets/nvidia_driver.versions"
PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd())
FINGERPRINT = open(os.path.join(PROJECT, ".cache/repo/cuda/KEY-FINGERPRINT"), encoding="ascii").read().strip()
BAD = os.path.join(PROJECT, ".cache/repo/bad")

# Per repository: the version converge installs (the newest of 580), the 590 one, and a package of each.
EXPECTED = {
    "debian12": {"version": "580.126.16-1", "next": "590.48.01-1", "library": "libcuda1", "library_next": "libcuda1",
                 "module": "nvidia-kernel-open-dkms", "metapackage": "nvidia-open"},
    "ubuntu2404": {"version": "580.159.04-1ubuntu1", "next": "590.48.01-1ubuntu1", "library": "libnvidia-compute-580",
                   "library_next": "libnvidia-compute", "module": "nvidia-dkms-580-open", "metapackage": "nvidia-open"},
}


def distro(host):
    return host.backend.get_hostname().rsplit("-", 1)[1]


def expected(host):
    return EXPECTED[distro(host)]


def version(host, package):
    return host.run(f"dpkg-query -W -f '${{db:Status-Abbrev}}${{Version}}' {package}").stdout


def apt_files(host):
    return host.check_output("find /etc/apt /etc/dlnode -type f -printf '%p %m ' -exec md5sum {} \\; | sort")


def test_the_mirror_is_signed_by_its_keyring_and_pinned_as_nvidia_says(host):
    source = host.file(SOURCE).content_string
    assert f"URIs: {REPO}/{distro(host)}/x86_64/" in source and "Suites: /" in source
    assert f"Signed-By: {KEYRING}" in source
    assert host.file(KEYRING).mode == 0o644
    assert "Pin: release l=NVIDIA CUDA\nPin-Priority: 600" in host.file(SOURCE_PIN).content_string


def test_the_pinning_package_holds_the_branch(host):
    assert version(host, "nvidia-driver-pinning-580").startswith("hi 580-")
    assert "Pin: version 580.*" in host.file("/etc/apt/preferences.d/nvidia-driver-pin").content_string


def test_the_whole_stack_is_installed_held_and_pinned_at_one_version(host):
    want = expected(host)
    record = host.file(RECORD).content_string
    locked = dict(line.split() for line in record.splitlines() if line and not line.startswith("#"))
    assert locked[want["metapackage"]] == want["version"] and locked[want["library"]] == want["version"]
    assert locked[want["module"]] == want["version"] and locked["nvidia-persistenced"] == want["version"]
    for name, locked_version in locked.items():
        assert version(host, name) == f"hi {locked_version}", name
    pins = host.file(PIN).content_string
    assert f"Package: {want['metapackage']}\nPin: version {want['version']}\nPin-Priority: 1001" in pins


def test_unattended_upgrades_skips_every_locked_package(host):
    dump = host.check_output("apt-config dump Unattended-Upgrade::Package-Blacklist")
    for name in ("nvidia-open", expected(host)["library"], "nvidia-persistenced"):
        assert f'"^{name}$";' in dump


def test_persistenced_is_enabled_and_nouveau_blacklisted(host):
    assert host.service("nvidia-persistenced").is_enabled
    assert "blacklist nouveau" in host.file("/etc/modprobe.d/dlnode-blacklist-nouveau.conf").content_string


def test_fabric_manager_only_where_asked(host):
    if distro(host) == "ubuntu2404":
        # nvidia_driver_fabricmanager: always. Its revision is -1 where the driver's is -1ubuntu1.
        assert version(host, "nvidia-fabricmanager") == "hi 580.159.04-1"
        assert version(host, "libnvidia-nscq") == "hi 580.159.04-1"
        assert host.service("nvidia-fabricmanager").is_enabled
    else:
        # auto, and no NVSwitch on the PCI bus.
        assert not version(host, "nvidia-fabricmanager").startswith("ii")


def test_the_mok_is_made_and_dkms_signs_with_it(host):
    if distro(host) != "debian12":
        pytest.skip("signing runs on the debian12 node (nvidia_driver_module_signing: always)")
    assert host.file("/var/lib/dlnode/mok/mok.key").mode == 0o600
    assert host.file("/var/lib/dlnode/mok/mok.der").exists
    assert "mok_signing_key" in host.file("/etc/dkms/framework.conf.d/dlnode-signing.conf").content_string


def bad_variant(host, variant):
    """The role's variables that point it at a bad repository variant (tests/repo/README.md)."""
    if variant == "wrong-fingerprint":
        wrong = open(os.path.join(BAD, "OTHER-KEY-FINGERPRINT"), encoding="ascii").read().strip()
        return {"nvidia_repository_key_fingerprints": [wrong]}
    return {"nvidia_repository_url": f"http://dlnode-repo/bad/{variant}/{distro(host)}/x86_64/",
            "nvidia_repository_key_url": f"{REPO}/{distro(host)}/x86_64/{FINGERPRINT[-8:].lower()}.pub"}


@pytest.mark.parametrize("variant, message", [
    ("unsigned", "is not signed"),
    ("otherkey", "NO_PUBKEY"),
    ("wrong-fingerprint", "fingerprints: the key does not match"),
])
def test_a_bad_repository_fails_the_run_and_the_sources_stay(host, variant, message):
    before = apt_files(host)
    rc, output = play(host, "-e", json.dumps(bad_variant(host, variant)))
    assert rc != 0 and message in " ".join(output.split()), output
    assert apt_files(host) == before


def test_check_mode_predicts_the_branch_change_and_writes_nothing(host):
    before = apt_files(host)
    rc, output = play(host, "--check", "-e", "nvidia_driver_branch=590")
    assert rc == 0, output
    assert recap(output)["changed"] >= 2 and apt_files(host) == before
    assert version(host, "nvidia-driver-pinning-580").startswith("hi ")


def test_the_branch_change_unholds_upgrades_and_holds_in_one_run(host):
    want = expected(host)
    rc, output = play(host, "-e", "nvidia_driver_branch=590")
    assert rc == 0, output
    assert version(host, "nvidia-driver-pinning-590").startswith("hi 590-")
    assert not version(host, "nvidia-driver-pinning-580").startswith("ii")
    assert version(host, want["library_next"]) == f"hi {want['next']}"
    assert version(host, "nvidia-open") == f"hi {want['next']}"
    assert f"Pin: version {want['next']}" in host.file(PIN).content_string
    if distro(host) == "ubuntu2404":
        # The 580 names are gone: replaced by the 590 packages that dropped the branch.
        assert not version(host, "libnvidia-compute-580").startswith("ii")
        assert "libnvidia-compute-580" not in host.file(RECORD).content_string
    broken = host.run("apt-get check -q")
    assert broken.rc == 0, broken.stdout + broken.stderr


def test_a_second_run_on_the_new_branch_changes_nothing(host):
    rc, output = play(host, "-e", "nvidia_driver_branch=590")
    assert rc == 0 and recap(output)["changed"] == 0, output
