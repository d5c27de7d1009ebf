"""The NVIDIA test repository (tests/repo) read by real apt on a node, as a user of NVIDIA's would.

Each node reads one repository: dlnode-nvrepo-debian12 cuda/debian12, dlnode-nvrepo-ubuntu2404
cuda/ubuntu2404. The tests run in order on each node: key and source, the driver by NVIDIA's
pinning packages (a version, then the branch, then the next branch), the CUDA toolkits side by side
(their alternatives, nvcc, removal), cuDNN and NCCL at exact versions, then the bad variants, each
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


# What NVIDIA's nvcc --version prints, per toolkit (tests/repo/packages.yml: nvcc-12.8, nvcc-13.0).
NVCC = {
    "12.8": ("nvcc: NVIDIA (R) Cuda compiler driver\nCopyright (c) 2005-2025 NVIDIA Corporation\n"
             "Built on Fri_Feb_21_20:23:50_PST_2025\nCuda compilation tools, release 12.8, V12.8.93\n"
             "Build cuda_12.8.r12.8/compiler.35583870_0\n"),
    "13.0": ("nvcc: NVIDIA (R) Cuda compiler driver\nCopyright (c) 2005-2025 NVIDIA Corporation\n"
             "Built on Wed_Aug_20_01:58:59_PM_PDT_2025\nCuda compilation tools, release 13.0, V13.0.88\n"
             "Build cuda_13.0.r13.0/compiler.36424714_0\n"),
}
COMPAT = {"debian12": "580.95.05-1", "ubuntu2404": "580.95.05-0ubuntu1"}
# Every package of a toolkit the tests install (cuda-toolkit-X-Y and what it depends on).
TOOLKIT_12_8 = ("cuda-toolkit-12-8 cuda-compiler-12-8 cuda-nvcc-12-8 cuda-libraries-12-8 cuda-cudart-12-8 "
                "cuda-toolkit-12-8-config-common cuda-toolkit-12-config-common")
CUDNN_13 = "cudnn9-cuda-13 libcudnn9-dev-cuda-13 libcudnn9-headers-cuda-13 libcudnn9-cuda-13"


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


def alternative(host, name: str) -> dict:
    """update-alternatives --query NAME: its status, value and each alternative's priority."""
    result = host.run(f"update-alternatives --query {name}")
    if result.rc != 0:
        return {}
    query = {"choices": {}}
    for stanza in result.stdout.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line)
        if "Alternative" in fields:
            query["choices"][fields["Alternative"]] = int(fields["Priority"])
        else:
            query.update(status=fields.get("Status"), value=fields.get("Value"))
    return query


def test_two_toolkits_side_by_side_cuda_points_at_the_higher(host):
    apt(host, "install cuda-toolkit-12-8 cuda-toolkit-13-0")
    assert version(host, "cuda-toolkit-13-0") == "13.0.2-1" and version(host, "cuda-nvcc-13-0") == "13.0.88-1"
    assert version(host, "cuda-cudart-12-8") == "12.8.90-1" and version(host, "cuda-toolkit-config-common") == "13.0.96-1"
    # The configuration packages' postinst registered both, priority XY: 13.0 wins.
    assert alternative(host, "cuda") == {"choices": {"/usr/local/cuda-12.8": 128, "/usr/local/cuda-13.0": 130},
                                         "status": "auto", "value": "/usr/local/cuda-13.0"}
    assert host.file("/usr/local/cuda").linked_to == "/usr/local/cuda-13.0"
    assert host.file("/usr/local/cuda-12").linked_to == "/usr/local/cuda-12.8"
    assert host.file("/usr/local/cuda-13").linked_to == "/usr/local/cuda-13.0"
    assert host.check_output("/usr/local/cuda/bin/nvcc --version") + "\n" == NVCC["13.0"]
    assert host.file("/usr/local/cuda/targets/x86_64-linux/lib/libcudart.so.13").is_file
    assert host.file("/etc/ld.so.conf.d/000_cuda.conf").content_string == "/usr/local/cuda/targets/x86_64-linux/lib\n"
    assert host.file("/etc/ld.so.conf.d/988_cuda-12.conf").content_string == "/usr/local/cuda-12/targets/x86_64-linux/lib\n"


def test_update_alternatives_set_switches_cuda(host):
    host.check_output("update-alternatives --set cuda /usr/local/cuda-12.8")
    assert alternative(host, "cuda")["status"] == "manual"
    assert host.file("/usr/local/cuda").linked_to == "/usr/local/cuda-12.8"
    assert host.check_output("/usr/local/cuda/bin/nvcc --version") + "\n" == NVCC["12.8"]
    assert host.file("/usr/local/cuda/targets/x86_64-linux/lib/libcudart.so.12").is_file


def test_cuda_compat_installs_the_forward_compatible_libcuda(host):
    apt(host, "install cuda-compat-13-0")
    assert version(host, "cuda-compat-13-0") == COMPAT[distro(host)]
    assert host.file("/usr/local/cuda-13.0/compat/libcuda.so.1").is_file


def test_removing_the_selected_toolkit_falls_back_to_the_other(host):
    # The prerm removes the alternative; update-alternatives then returns to auto mode.
    apt(host, f"purge {TOOLKIT_12_8}")
    assert alternative(host, "cuda") == {"choices": {"/usr/local/cuda-13.0": 130}, "status": "auto", "value": "/usr/local/cuda-13.0"}
    assert host.file("/usr/local/cuda").linked_to == "/usr/local/cuda-13.0"
    assert alternative(host, "cuda-12") == {}
    assert not host.file("/usr/local/cuda-12").exists and not host.file("/usr/local/cuda-12.8").exists
    assert not host.file("/etc/ld.so.conf.d/988_cuda-12.conf").exists
    assert host.check_output("/usr/local/cuda/bin/nvcc --version") + "\n" == NVCC["13.0"]


def test_cudnn_at_an_exact_version(host):
    # Unpinned, apt takes the newest; every package named at one version keeps the older one.
    assert "Inst libcudnn9-cuda-13 (9.20.0.48-1 " in apt(host, "-s install cudnn9-cuda-13")
    apt(host, "install " + " ".join(f"{package}=9.14.0.64-1" for package in CUDNN_13.split()))
    for package in CUDNN_13.split():
        assert version(host, package) == "9.14.0.64-1"
    # The dev package's postinst provides /usr/include/cudnn.h.
    assert alternative(host, "libcudnn")["value"] == "/usr/include/x86_64-linux-gnu/cudnn_v9.h"
    assert "#define CUDNN_MINOR 14\n" in host.file("/usr/include/cudnn_version.h").content_string
    assert host.file("/usr/lib/x86_64-linux-gnu/libcudnn.so.9").is_file


def test_cudnn_version_change_and_one_cuda_major_at_a_time(host):
    apt(host, "install cudnn9-cuda-13")
    for package in CUDNN_13.split():
        assert version(host, package) == "9.20.0.48-1"
    assert "#define CUDNN_MINOR 20\n" in host.file("/usr/include/cudnn_version.h").content_string
    # The CUDA 12 build installs the same paths: apt replaces the CUDA 13 one.
    plan = apt(host, "-s install libcudnn9-cuda-12")
    assert "Remv libcudnn9-cuda-13 " in plan and "Inst libcudnn9-cuda-12 (9.14.0.64-1 " in plan, plan


def test_cudnn_removal_leaves_nothing(host):
    apt(host, f"purge {CUDNN_13}")
    assert alternative(host, "libcudnn") == {}
    assert not host.file("/usr/include/cudnn.h").exists and not host.file("/usr/include/cudnn_version.h").exists
    assert not host.file("/usr/lib/x86_64-linux-gnu/libcudnn.so.9").exists


def test_nccl_at_an_exact_version(host):
    # One name for every CUDA: unpinned, apt takes the newest build of the newest CUDA.
    assert "Inst libnccl2 (2.28.9-1+cuda13.0 " in apt(host, "-s install libnccl2")
    apt(host, "install libnccl2=2.28.3-1+cuda13.0 libnccl-dev=2.28.3-1+cuda13.0")
    assert version(host, "libnccl2") == "2.28.3-1+cuda13.0" and version(host, "libnccl-dev") == "2.28.3-1+cuda13.0"
    assert "#define NCCL_MINOR 28\n#define NCCL_PATCH 3\n" in host.file("/usr/include/nccl.h").content_string
    # The dev package holds the runtime at its own build: another CUDA's build of one version is refused.
    failed = host.run(f"{APT} -s install libnccl-dev=2.28.3-1+cuda12.9 libnccl2=2.28.3-1+cuda13.0")
    assert failed.rc == 100 and "libnccl-dev : Depends: libnccl2 (= 2.28.3-1+cuda12.9)" in failed.stdout, failed.stdout


def test_nccl_and_toolkit_removal_leaves_nothing(host):
    apt(host, "purge libnccl2 libnccl-dev cuda-compat-13-0 cuda-toolkit-13-0 cuda-compiler-13-0 cuda-nvcc-13-0 cuda-libraries-13-0 "
              "cuda-cudart-13-0 cuda-toolkit-13-0-config-common cuda-toolkit-13-config-common cuda-toolkit-config-common")
    assert not host.file("/usr/lib/x86_64-linux-gnu/libnccl.so.2").exists and not host.file("/usr/include/nccl.h").exists
    assert alternative(host, "cuda") == {} and alternative(host, "cuda-13") == {}
    for path in ("/usr/local/cuda", "/usr/local/cuda-13", "/usr/local/cuda-13.0", "/etc/ld.so.conf.d/000_cuda.conf"):
        assert not host.file(path).exists, path
    assert host.check_output("dpkg-query -W -f '${db:Status-Abbrev} ${Package}\\n' 'cuda-*' 'libcudnn*' 'cudnn*' 'libnccl*' "
                             "2>/dev/null | grep -v -E '^(un|pn) ' || true") == ""


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
