"""apt's output read back, from what apt 2.6 printed in a Debian 12 node container."""
from __future__ import annotations

import pytest

from ansible_collections.dlnode.gpu.plugins.module_utils.packages import apt, database, dnf, locks
from ansible_collections.dlnode.gpu.tests.unit.fake_apt import UPDATES

# apt-get install --simulate of a version change of two held packages (captured).
SIMULATED = """Reading package lists...
Building dependency tree...
Reading state information...
Suggested packages:
  libcpl-dev
The following held packages will be changed:
  libcext-dev libcext0
The following packages will be upgraded:
  libcext-dev libcext0
2 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.
Inst libcext-dev [7.2.3+ds-1] (7.3.2+ds-1~bpo12+1 Debian Backports:oldstable-backports [amd64]) []
Inst libcext0 [7.2.3+ds-1] (7.3.2+ds-1~bpo12+1 Debian Backports:oldstable-backports [amd64])
Conf libcext-dev (7.3.2+ds-1~bpo12+1 Debian Backports:oldstable-backports [amd64])
Conf libcext0 (7.3.2+ds-1~bpo12+1 Debian Backports:oldstable-backports [amd64])
"""
HELD_BROKEN = """Reading package lists...
Building dependency tree...
Reading state information...
Some packages could not be installed. This may mean that you have
requested an impossible situation or if you are using the unstable
distribution that some required packages have not yet been created
or been moved out of Incoming.
The following information may help to resolve the situation:

The following packages have unmet dependencies:
 libcext-dev : Depends: libcext0 (= 7.3.2+ds-1~bpo12+1) but 7.2.3+ds-1 is to be installed
"""
MADISON = """  libcext0 | 7.3.2+ds-1~bpo12+1 | http://deb.debian.org/debian bookworm-backports/main amd64 Packages
  libcext0 | 7.2.3+ds-1 | http://deb.debian.org/debian bookworm/main amd64 Packages
libcext-dev | 7.3.2+ds-1~bpo12+1 | http://deb.debian.org/debian bookworm-backports/main amd64 Packages
"""


def test_update_that_worked():
    assert apt.update_reason(*UPDATES["ok"]) is None


@pytest.mark.parametrize("case, reason, hint", [
    ("no_pubkey",
     "W: GPG error: http://deb.debian.org/debian bookworm-backports InRelease: The following signatures couldn't be "
     "verified because the public key is not available: NO_PUBKEY 6ED0E7B82643E131 NO_PUBKEY 78DBA3BC47EF2265 "
     "E: The repository 'http://deb.debian.org/debian bookworm-backports InRelease' is not signed.",
     "the key given does not verify this repository's signature"),
    ("unsigned", "E: The repository 'file:/srv/unsigned  Release' is not signed.",
     "apt refuses a repository it cannot verify with the key given (unsigned, or signed by another key)"),
    ("unreachable",
     "E: Failed to fetch http://no-such-host.invalid/debian/InRelease  Could not resolve 'no-such-host.invalid' "
     "E: Some index files failed to download. They have been ignored, or old ones used instead.",
     "the node cannot reach the URL"),
    ("unreachable_old_apt",
     "W: Failed to fetch http://127.0.0.1:9/debian/InRelease  Could not connect to 127.0.0.1:9 (127.0.0.1). - connect "
     "(111: Connection refused) W: Some index files failed to download. They have been ignored, or old ones used "
     "instead.",
     "the node cannot reach the URL"),
])
def test_update_failures(case, reason, hint):
    found = apt.update_reason(*UPDATES[case])
    assert found == reason and apt.update_hint(found) == hint


def test_update_of_one_source_file():
    assert apt.update_args("/etc/apt/sources.list.d/cuda.sources") == [
        "update", "-q", "-o", "Dir::Etc::sourcelist=/etc/apt/sources.list.d/cuda.sources",
        "-o", "Dir::Etc::sourceparts=-", "-o", "APT::Get::List-Cleanup=0", "-o", "APT::Update::Error-Mode=any"]


def test_parse_simulation():
    assert apt.parse_simulation(SIMULATED) == {
        "install": {"libcext-dev": ["7.2.3+ds-1", "7.3.2+ds-1~bpo12+1"], "libcext0": ["7.2.3+ds-1", "7.3.2+ds-1~bpo12+1"]},
        "remove": {}, "held_changed": ["libcext-dev", "libcext0"]}
    removal = "The following packages will be REMOVED:\n  libcext-dev libcext0\nRemv libcext-dev [7.3.2+ds-1~bpo12+1]\n"
    assert apt.parse_simulation(removal)["remove"] == {"libcext-dev": "7.3.2+ds-1~bpo12+1"}


def test_simulation_errors():
    errors = apt.simulation_errors(HELD_BROKEN, "E: Unable to correct problems, you have held broken packages.\n")
    assert errors == {"versions": [], "packages": [], "other": ["Unable to correct problems, you have held broken packages."],
                      "unmet": ["libcext-dev : Depends: libcext0 (= 7.3.2+ds-1~bpo12+1) but 7.2.3+ds-1 is to be installed"]}
    assert apt.unmet_names(errors["unmet"]) == ["libcext-dev", "libcext0"]
    errors = apt.simulation_errors("", "E: Version '9.9-1' for 'libcext0' was not found\nE: Unable to locate package nosuchpkg\n")
    assert errors["versions"] == [("libcext0", "9.9-1")] and errors["packages"] == ["nosuchpkg"]


def test_a_name_that_is_also_a_pattern_is_one_package_not_found():
    # apt-get install --simulate containerd.io on Debian 12 without Docker's source: three lines, one package.
    stderr = ("E: Unable to locate package containerd.io\nE: Couldn't find any package by glob 'containerd.io'\n"
              "E: Couldn't find any package by regex 'containerd.io'\n")
    assert apt.simulation_errors("", stderr) == {"versions": [], "packages": ["containerd.io"], "unmet": [], "other": []}


def test_parse_madison():
    assert apt.parse_madison(MADISON) == {
        "libcext0": [("7.3.2+ds-1~bpo12+1", "http://deb.debian.org/debian bookworm-backports/main"),
                     ("7.2.3+ds-1", "http://deb.debian.org/debian bookworm/main")],
        "libcext-dev": [("7.3.2+ds-1~bpo12+1", "http://deb.debian.org/debian bookworm-backports/main")]}


def test_refusal_of_a_virtual_package():
    # apt-get install mail-transport-agent=1: "E: Version '1' ... was not found", and madison knows no version.
    errors = apt.simulation_errors("", "E: Version '1' for 'mail-transport-agent' was not found\n")
    assert locks.refusal(errors, {}, [], {}, ["mail-transport-agent"]) == \
        "mail-transport-agent 1 is not in the configured sources; they have no version of it"


def test_entries_of_one_line_and_deb822_files():
    one_line = ("# NVIDIA's cuda-keyring\ndeb [signed-by=/usr/share/keyrings/cuda-archive-keyring.gpg] "
                "https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/ /\n"
                "deb-src http://deb.debian.org/debian bookworm main\n")
    assert apt.entries(one_line, "/etc/apt/sources.list.d/cuda-debian12-x86_64.list") == [
        ("https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64", "/")]
    deb822 = ("Types: deb deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n"
              "Components: main\n\n# off\nTypes: deb\nURIs: http://example.invalid\nSuites: x\nEnabled: no\n")
    assert apt.entries(deb822, "/etc/apt/sources.list.d/debian.sources") == [
        ("http://deb.debian.org/debian", "bookworm"), ("http://deb.debian.org/debian", "bookworm-updates")]


def test_source_text_of_a_flat_repository():
    assert apt.source_text("package_source cuda", "https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/",
                           ["/"], [], ["amd64"], "/etc/apt/keyrings/cuda.gpg") == (
        "# Managed by dlnode.gpu (package_source cuda): edits are overwritten.\nTypes: deb\n"
        "URIs: https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/\nSuites: /\n"
        "Architectures: amd64\nSigned-By: /etc/apt/keyrings/cuda.gpg\n")


@pytest.mark.parametrize("url, pin", [("https://developer.download.nvidia.com/x/", 'origin "developer.download.nvidia.com"'),
                                      ("file:/srv/repo", 'origin ""'), ("mirror+http://m.example/list", 'origin "m.example"')])
def test_default_pin_is_the_origin(url, pin):
    assert apt.default_pin(url) == pin


def test_dpkg_status_lines():
    # dpkg-query as captured: held and installed, installed, held but not installed, configuration files only.
    status = database.parse_dpkg_status("libcext0\thi \t7.2.3+ds-1\nlibcext-dev\tii \t7.2.3+ds-1\njq\thn \t\n"
                                        "nvme-cli\trc \t2.4+really2.3-3\n")
    assert status == {"libcext0": {"version": "7.2.3+ds-1", "held": True},
                      "libcext-dev": {"version": "7.2.3+ds-1", "held": False},
                      "jq": {"version": None, "held": True}, "nvme-cli": {"version": None, "held": False}}


def test_dnf_versionlock_list():
    out = ("Last metadata expiration check: 0:01:02 ago.\nnvidia-driver-3:550.127.08-1.el9.*\n"
           "cuda-toolkit-12-4-12.4.1-1.*\n!kernel-5.14.0-1.el9.*\n")
    assert dnf.parse_versionlock(out) == {"nvidia-driver": "3:550.127.08-1.el9", "cuda-toolkit-12-4": "12.4.1-1"}


def test_dnf_repo_text():
    assert dnf.repo_text("package_source cuda", "cuda", "https://developer.download.nvidia.com/compute/cuda/repos/rhel9/x86_64",
                         "/etc/pki/rpm-gpg/RPM-GPG-KEY-cuda", True, False, True, 10) == (
        "# Managed by dlnode.gpu (package_source cuda): edits are overwritten.\n[cuda]\nname=cuda\n"
        "baseurl=https://developer.download.nvidia.com/compute/cuda/repos/rhel9/x86_64\nenabled=1\ngpgcheck=1\n"
        "repo_gpgcheck=0\ngpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-cuda\nmodule_hotfixes=1\npriority=10\n")
