"""The NVIDIA test repository (tests/repo) read by real apt on a node, as a user of NVIDIA's would.

Each node reads one repository: dlnode-nvrepo-debian12 cuda/debian12, dlnode-nvrepo-ubuntu2404
cuda/ubuntu2404. The tests run in order on each node: key and source, the driver by NVIDIA's
pinning packages (a version, then the branch, then the next branch), then the bad variants, each
through an apt update of its own that leaves the node's sources and lists alone.
"""
from __future__ import annotations

import subprocess

import pytest

REPO = "http://dlnode-repo"
KEYRING = "/etc/apt/keyrings/nvidia-cuda.gpg"
APT = "DEBIAN_FRONTEND=noninteractive apt-get -y -q --no-install-recommends"
# The node has python3 but neither curl nor gpg: fetch with urllib, dearmor the one key block by hand.
FETCH = "python3 -c 'import sys, urllib.request; sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1]).read())' {}"
DEARMOR = ("python3 -c 'import base64, sys; text = sys.stdin.read(); "
           "sys.stdout.buffer.write(base64.b64decode(text.split(\"\\n\\n\", 1)[1].split(\"\\n=\", 1)[0]))'")

# Per repository: the older and newer 580 versions, the 590 one, and the compute library's names.
EXPECTED = {
    "debian12": {"old": "580.105.08", "new": "580.126.16", "next": "590.48.01", "revision": "-1",
                 "compute": "libcuda1", "compute_next": "libcuda1", "module": "nvidia-kernel-open-dkms"},
    "ubuntu2404": {"old": "580.126.16", "new": "580.159.04", "next": "590.48.01", "revision": "-1ubuntu1",
                   "compute": "libnvidia-compute-580", "compute_next": "libnvidia-compute", "module": "nvidia-dkms-open"},
}


def distro(host) -> str:
    return host.backend.get_hostname().rsplit("-", 1)[1]


def url(host, path: str = "") -> str:
    return f"{REPO}/cuda/{distro(host)}/x86_64{path}"


def fetch(host, address: str) -> str:
    return host.check_output(FETCH.format(address))


def fingerprint_of(armored: str) -> str:
    """The primary key's fingerprint, read by the controller's gpg."""
    out = subprocess.run(["gpg", "--show-keys", "--with-colons"], input=armored, capture_output=True, text=True, check=True).stdout
    return next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:"))


def key_file(fingerprint: str) -> str:
    return fingerprint[-8:].lower() + ".pub"


def version(host, package: str) -> str:
    return host.check_output(f"dpkg-query -W -f '${{Version}}' {package}")


def installed(host, package: str) -> bool:
    return host.run(f"dpkg-query -W -f '${{db:Status-Abbrev}}' {package}").stdout.startswith("ii")


def apt(host, args: str) -> str:
    result = host.run(f"{APT} {args}")
    assert result.rc == 0, result.stdout + result.stderr
    return result.stdout


def test_key_file_has_the_published_fingerprint(host):
    good = fetch(host, f"{REPO}/cuda/KEY-FINGERPRINT").strip()
    other = fetch(host, f"{REPO}/bad/OTHER-KEY-FINGERPRINT").strip()
    assert len(good) == 40 and good != other
    assert fingerprint_of(fetch(host, url(host, "/" + key_file(good)))) == good
    # The wrong-fingerprint variant: the same file name, another key.
    assert fingerprint_of(fetch(host, f"{REPO}/bad/wrong-fingerprint/{distro(host)}/x86_64/{key_file(good)}")) == other


def test_update_reads_the_signed_repository(host):
    good = fetch(host, f"{REPO}/cuda/KEY-FINGERPRINT").strip()
    host.check_output(f"mkdir -p /etc/apt/keyrings && {FETCH.format(url(host, '/' + key_file(good)))} | {DEARMOR} > {KEYRING}")
    source = f"Types: deb\nURIs: {url(host, '/')}\nSuites: /\nSigned-By: {KEYRING}\n"
    host.check_output(f"printf '{source}' > /etc/apt/sources.list.d/cuda-{distro(host)}-x86_64.sources")
    update = host.run("apt-get update")
    assert update.rc == 0 and "dlnode-repo" not in update.stderr, update.stdout + update.stderr
    policy = host.check_output("apt-cache policy")
    assert f"500 {url(host)}  Packages\n     release o=NVIDIA,l=NVIDIA CUDA" in policy, policy


def test_pinning_package_and_driver_in_one_transaction_get_the_newest_branch(host):
    # apt resolves the transaction before the pin file exists: NVIDIA's trap, kept by the doubles.
    new = EXPECTED[distro(host)]
    plan = apt(host, "-s install nvidia-driver-pinning-580 nvidia-open")
    assert f"Inst nvidia-open ({new['next']}{new['revision']} " in plan, plan


def test_debian_cuda_drivers_580_alone_installs_590(host):
    if distro(host) != "debian12":
        pytest.skip("the trap of NVIDIA's debian12 repository")
    plan = apt(host, "-s install cuda-drivers-580")
    assert "Inst nvidia-driver (590.48.01-1 " in plan, plan


def test_version_pinning_package_installs_that_version(host):
    expected = EXPECTED[distro(host)]
    full = expected["old"] + expected["revision"]
    apt(host, f"install nvidia-driver-pinning-{expected['old']}")
    assert f"Pin: version {expected['old']}-*\n" in host.file("/etc/apt/preferences.d/nvidia-driver-pin").content_string
    apt(host, "install nvidia-open")
    assert version(host, "nvidia-open") == full
    assert version(host, expected["compute"]) == full
    smi = host.run("nvidia-smi")
    assert smi.rc == 9 and "dlnode test double" in smi.stderr


def test_branch_pinning_package_moves_to_the_newest_of_the_branch(host):
    expected = EXPECTED[distro(host)]
    full = expected["new"] + expected["revision"]
    # It conflicts with the version pinning package and takes over the pin file.
    apt(host, "install nvidia-driver-pinning-580")
    assert "Pin: version 580.*\n" in host.file("/etc/apt/preferences.d/nvidia-driver-pin").content_string
    apt(host, "dist-upgrade")
    assert version(host, "nvidia-open") == full
    assert version(host, expected["compute"]) == full
    policy = host.check_output("apt-cache policy nvidia-open")
    assert f"Candidate: {full}\n" in policy and f" *** {full} 1000\n" in policy, policy


def test_next_branch_pinning_package_switches_to_590(host):
    expected = EXPECTED[distro(host)]
    full = expected["next"] + expected["revision"]
    apt(host, "install nvidia-driver-pinning-590")
    # The metapackage by name: on ubuntu2404 its 590 parts replace the 580 names.
    apt(host, "install nvidia-open")
    assert version(host, "nvidia-open") == full
    assert version(host, expected["compute_next"]) == full
    assert installed(host, expected["module"])
    assert not installed(host, "libnvidia-compute-580")
    assert not installed(host, "nvidia-driver-pinning-580")


def bad_update(host, address: str, keyring: str):
    """apt-get update of one source alone, with lists of its own: the node's are not touched."""
    source = f"Types: deb\nURIs: {address}\nSuites: /\nSigned-By: {keyring}\n"
    host.check_output(f"rm -rf /tmp/bad && mkdir -p /tmp/bad/sources /tmp/bad/lists/partial && printf '{source}' > /tmp/bad/sources/bad.sources")
    return host.run("apt-get update -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=/tmp/bad/sources -o Dir::State::Lists=/tmp/bad/lists")


def test_unsigned_repository_is_refused(host):
    address = f"{REPO}/bad/unsigned/{distro(host)}/x86_64"
    result = bad_update(host, address + "/", KEYRING)
    assert result.rc == 100
    assert f"E: The repository '{address}  Release' is not signed." in result.stderr.splitlines(), result.stderr


def test_repository_signed_by_another_key_is_refused(host):
    other = fetch(host, f"{REPO}/bad/OTHER-KEY-FINGERPRINT").strip()
    address = f"{REPO}/bad/otherkey/{distro(host)}/x86_64"
    result = bad_update(host, address + "/", KEYRING)
    assert result.rc == 100
    lines = result.stderr.splitlines()
    assert (f"W: GPG error: {address}  InRelease: The following signatures couldn't be verified because the public key is not available: "
            f"NO_PUBKEY {other[-16:]}") in lines, result.stderr
    assert f"E: The repository '{address}  InRelease' is not signed." in lines, result.stderr


@pytest.mark.parametrize("keyring", ["wrong-fingerprint", "not-a-key"])
def test_repository_with_a_bad_key_is_refused(host, keyring):
    good = fetch(host, f"{REPO}/cuda/KEY-FINGERPRINT").strip()
    key = (f"{REPO}/bad/wrong-fingerprint/{distro(host)}/x86_64/{key_file(good)}" if keyring == "wrong-fingerprint"
           else f"{REPO}/bad/not-a-key.pub")
    dearmor = f" | {DEARMOR}" if keyring == "wrong-fingerprint" else ""
    host.check_output(f"{FETCH.format(key)}{dearmor} > /tmp/{keyring}.gpg")
    result = bad_update(host, url(host, "/"), f"/tmp/{keyring}.gpg")
    assert result.rc == 100
    lines = result.stderr.splitlines()
    # apt names the key it lacks: the repository's own.
    assert (f"W: GPG error: {url(host)}  InRelease: The following signatures couldn't be verified because the public key is not available: "
            f"NO_PUBKEY {good[-16:]}") in lines, result.stderr
    assert f"E: The repository '{url(host)}  InRelease' is not signed." in lines, result.stderr
