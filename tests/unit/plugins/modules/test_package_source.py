"""dlnode.gpu.package_source on a fake root, apt-get update printing what apt 2.6 printed for a good key,
a key that does not sign the repository, an unsigned repository and an unreachable URL."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from ansible.module_utils import basic

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.module_utils.packages import openpgp
from ansible_collections.dlnode.gpu.plugins.modules import package_source
from ansible_collections.dlnode.gpu.tests.unit.fake_apt import FakeApt

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "openpgp"
REPO_KEY = (FIXTURES / "repository.asc").read_text()
REPO_FPR = "5A5F848BB8D5B1493ED8A3275738CEDE72434BA8"
REPO_SUB = "D9E1E79395C45BCFF69B50666CE5FAAAA3878053"
OTHER_KEY = (FIXTURES / "other.asc").read_text()
OTHER_FPR = "65448918A44631CD4E35D92F2941BF61AFFE52E8"
BOOKWORM_KEYRING = "/usr/share/keyrings/debian-archive-bookworm-automatic.gpg"
SOURCE = "/etc/apt/sources.list.d/bookworm-backports.sources"
KEYRING = "/etc/apt/keyrings/bookworm-backports.gpg"
PIN = "/etc/apt/preferences.d/bookworm-backports.pref"
URL = "http://deb.debian.org/debian"
BACKPORTS = dict(name="bookworm-backports", url=URL, suites=["bookworm-backports"], components=["main"],
                 key=REPO_KEY, fingerprints=[REPO_FPR])


class Node(FakeApt):
    def __init__(self, root):
        super().__init__()
        self.root = root

    def real(self, path):
        return self.root / path.lstrip("/")

    def read(self, path):
        return self.real(path).read_bytes() if self.real(path).exists() else None

    def write(self, path, data, mode=0o644):
        self.real(path).parent.mkdir(parents=True, exist_ok=True)
        self.real(path).write_bytes(data)
        os.chmod(self.real(path), mode)

    def tree(self):
        """Every file under the fake /etc with its content and mode."""
        found = {}
        for path in sorted((self.root / "etc").rglob("*")):
            if path.is_file():
                found[str(path.relative_to(self.root))] = (path.read_bytes(), oct(path.stat().st_mode & 0o777))
        return found


@pytest.fixture
def node(tmp_path, monkeypatch):
    made = Node(tmp_path)
    made.write("/etc/apt/sources.list", b"deb http://deb.debian.org/debian bookworm main\n")
    return made.patch(monkeypatch, tmp_path)


def source(run_module, check_mode=False, **options):
    """package_source of Debian's backports with these options changed (None: left out)."""
    args = {key: value for key, value in {**BACKPORTS, **options}.items() if value is not None}
    return run_module(package_source, args, check_mode=check_mode, diff=True)


def test_writes_keyring_source_and_pin_then_proves_the_source(node, run_module):
    seen = {}
    node.on_update = lambda: seen.update(source=node.read(SOURCE), keyring=node.read(KEYRING))
    result, failed = source(run_module, pin="release n=bookworm-backports", pin_priority=600)
    assert not failed and result["changed"], result
    assert node.read(KEYRING) == openpgp.dearmor(REPO_KEY)
    assert node.read(SOURCE).decode() == (
        "# Managed by dlnode.gpu (package_source bookworm-backports): edits are overwritten.\n"
        "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\n"
        f"Signed-By: {KEYRING}\n")
    assert node.read(PIN).decode() == (
        "# Managed by dlnode.gpu (package_source bookworm-backports): edits are overwritten.\n"
        "Package: *\nPin: release n=bookworm-backports\nPin-Priority: 600\n")
    # The update ran on this source alone, once the files were there.
    assert node.commands == [["apt-get", "update", "-q", "-o", f"Dir::Etc::sourcelist={SOURCE}", "-o",
                              "Dir::Etc::sourceparts=-", "-o", "APT::Get::List-Cleanup=0", "-o",
                              "APT::Update::Error-Mode=any"]]
    assert seen == {"source": node.read(SOURCE), "keyring": node.read(KEYRING)}
    assert result["plan"] == [f"{KEYRING}: write", f"{SOURCE}: write", f"{PIN}: write", f"apt-get update of {SOURCE}"]
    assert result["certificates"] == [{"fingerprint": REPO_FPR, "subkeys": [REPO_SUB],
                                       "user_ids": ["dlnode test repository <repo@dlnode.invalid>"]}]
    assert result["files"] == {"source": SOURCE, "keyring": KEYRING, "pin": PIN}


def test_a_second_run_changes_nothing_and_runs_no_update(node, run_module):
    source(run_module)
    node.commands.clear()
    result, failed = source(run_module)
    assert not failed and not result["changed"] and result["plan"] == [] and not node.commands


def test_check_mode_shows_the_plan_and_the_keyring_as_its_fingerprints(node, run_module):
    before = node.tree()
    result, failed = source(run_module, check_mode=True)
    assert not failed and result["changed"] and node.tree() == before and not node.commands
    assert result["plan"] == [f"{KEYRING}: write", f"{SOURCE}: write", f"apt-get update of {SOURCE}"]
    keyring_diff = result["diff"][0]
    assert keyring_diff["before"] == "" and keyring_diff["after"] == (
        f"{REPO_FPR} (dlnode test repository <repo@dlnode.invalid>), subkeys {REPO_SUB}\n")


def test_a_wrong_fingerprint_is_refused_before_anything_is_written(node, run_module):
    before = node.tree()
    result, failed = source(run_module, fingerprints=[OTHER_FPR])
    assert failed and result["msg"] == (
        f"fingerprints: the key does not match: it holds {REPO_FPR} (dlnode test repository <repo@dlnode.invalid>), "
        f"subkeys {REPO_SUB}; expected {OTHER_FPR} ({OTHER_FPR} not in it; {REPO_FPR} not expected)")
    assert node.tree() == before and not node.commands


def test_a_wrong_fingerprint_is_refused_in_check_mode_too(node, run_module):
    result, failed = source(run_module, check_mode=True, fingerprints=[OTHER_FPR])
    assert failed and result["msg"].startswith("fingerprints: the key does not match")


def test_a_key_that_does_not_sign_the_repository_leaves_no_new_source(node, run_module):
    node.update = "no_pubkey"
    before = node.tree()
    result, failed = source(run_module, pin_priority=600)
    assert failed and result["msg"] == (
        f"package source bookworm-backports: apt-get update of {SOURCE} failed for {URL}: W: GPG error: "
        "http://deb.debian.org/debian bookworm-backports InRelease: The following signatures couldn't be verified "
        "because the public key is not available: NO_PUBKEY 6ED0E7B82643E131 NO_PUBKEY 78DBA3BC47EF2265 E: The "
        "repository 'http://deb.debian.org/debian bookworm-backports InRelease' is not signed. (the key given does not "
        "verify this repository's signature). The node's sources were left as they were (put back: "
        f"{PIN}, {SOURCE}, {KEYRING})")
    assert node.tree() == before and result["restored"] == [PIN, SOURCE, KEYRING]


def test_a_failed_update_puts_back_the_files_of_a_source_that_was_there(node, run_module):
    source(run_module)
    os.chmod(node.real(KEYRING), 0o600)
    before = node.tree()
    node.update = "no_pubkey"
    result, failed = source(run_module, key=OTHER_KEY, fingerprints=[OTHER_FPR])
    assert failed and result["restored"] == [KEYRING]
    assert node.tree() == before  # the old keyring, byte for byte and with its mode


def test_an_unsigned_repository_is_refused(node, run_module):
    node.update = "unsigned"
    before = node.tree()
    result, failed = source(run_module, name="unsigned", url="file:/srv/unsigned", suites=["/"], components=[])
    assert failed and result["msg"].startswith(
        "package source unsigned: apt-get update of /etc/apt/sources.list.d/unsigned.sources failed for "
        "file:/srv/unsigned: E: The repository 'file:/srv/unsigned  Release' is not signed. (apt refuses a repository "
        "it cannot verify with the key given (unsigned, or signed by another key)). The node's sources were left")
    assert node.tree() == before


def test_an_unreachable_url_fails_also_where_apt_only_warns(node, run_module):
    node.update = "unreachable_old_apt"
    result, failed = source(run_module)
    assert failed and "(the node cannot reach the URL)" in result["msg"]
    assert node.read(SOURCE) is None


def test_a_repository_configured_in_another_file_is_refused(node, run_module):
    node.write("/etc/apt/sources.list.d/old-backports.list",
               b"deb [signed-by=/usr/share/keyrings/x.gpg] http://deb.debian.org/debian/ bookworm-backports main\n")
    before = node.tree()
    result, failed = source(run_module)
    assert failed and result["msg"] == (
        "url: http://deb.debian.org/debian (bookworm-backports) is also configured in "
        "/etc/apt/sources.list.d/old-backports.list; apt refuses one repository with two keys ('Conflicting values set "
        "for option Signed-By'): list those files in replaces to have them removed with this call, or remove them; "
        "nothing was written")
    assert node.tree() == before


def test_replaces_removes_the_other_file_and_puts_it_back_when_the_update_fails(node, run_module):
    old = "/etc/apt/sources.list.d/old-backports.list"
    node.write(old, b"deb http://deb.debian.org/debian bookworm-backports main\n")
    before = node.tree()
    node.update = "unreachable"
    assert source(run_module, replaces=[old])[1]
    assert node.tree() == before
    node.update = "ok"
    result, failed = source(run_module, replaces=[old])
    assert not failed and node.read(old) is None and f"{old}: remove" in result["plan"]


@pytest.mark.skipif(not os.path.exists(BOOKWORM_KEYRING), reason="Debian's archive keyring is not on this machine")
def test_key_url_takes_a_binary_keyring(node, run_module, tmp_path):
    result, failed = source(run_module, key=None, key_url=f"file://{BOOKWORM_KEYRING}",
                            fingerprints=["B8B8 0B5B 623E AB6A D877  5C45 B7C5 D7D6 3509 47F8"])
    assert not failed and result["changed"]
    with open(BOOKWORM_KEYRING, "rb") as handle:
        assert node.read(KEYRING) == handle.read()


def test_key_url_takes_an_armored_key(node, run_module, tmp_path):
    (tmp_path / "key.asc").write_text(REPO_KEY)
    result, failed = source(run_module, key=None, key_url=f"file://{tmp_path}/key.asc")
    assert not failed and node.read(KEYRING) == openpgp.dearmor(REPO_KEY)


def test_key_url_that_cannot_be_fetched(node, run_module):
    result, failed = source(run_module, key=None, key_url="file:///nonexistent/key.gpg")
    assert failed and result["msg"].startswith("key_url: cannot fetch file:///nonexistent/key.gpg: ")
    assert result["msg"].endswith("; nothing was written")


def test_absent_removes_the_files(node, run_module):
    source(run_module, pin_priority=600)
    result, failed = run_module(package_source, dict(name="bookworm-backports", state="absent"))
    assert not failed and result["changed"] and not node.commands[1:]
    assert node.read(SOURCE) is None and node.read(KEYRING) is None and node.read(PIN) is None
    assert not run_module(package_source, dict(name="bookworm-backports", state="absent"))[0]["changed"]


@pytest.mark.parametrize("options, message", [
    (dict(name="back ports"), "name: 'back ports' must be letters, digits, '_', '-' and '.' (apt ignores other file names)"),
    (dict(url="ftp.example.com/debian"), "url: 'ftp.example.com/debian' must be an http, https or file URL"),
    (dict(suites=[]), "suites: required for an apt source: the distribution's suites, or [/] for a flat repository"),
    (dict(suites=["/"]), "components: a flat repository (suites ['/']) has none; apt refuses components with it"),
    (dict(components=[]), "components: required for suites ['bookworm-backports'] (main, contrib, ...); only a flat "
                          "repository (suites [/]) has none"),
    (dict(components=["main contrib"]), "components: ['main contrib'] are not apt components (one word each, no spaces)"),
    (dict(pin="release a=x"), "pin: needs pin_priority; without a priority no pin file is written"),
    (dict(pin_priority=0), "pin_priority: 0 has no defined meaning to apt; give a priority (600, as NVIDIA's) or leave "
                           "it unset for no pin file"),
    (dict(replaces=["/etc/apt/sources.list"]), "replaces: /etc/apt/sources.list is not a source file under "
                                               "/etc/apt/sources.list.d (.list or .sources)"),
    (dict(priority=10), "priority: dnf only, and this node's package manager is apt"),
    (dict(fingerprints=["B7C5D7D6350947F8"]), "fingerprints: 'B7C5D7D6350947F8' is not a full OpenPGP v4 fingerprint "
                                              "(40 hex digits); a short or long key ID is not enough to tell a key from "
                                              "a forged one"),
    (dict(key="mQINBGPL..."), "key: not an ASCII-armored OpenPGP public key (no '-----BEGIN PGP PUBLIC KEY BLOCK-----' "
                              "... '-----END PGP PUBLIC KEY BLOCK-----' block)"),
    (dict(key_url="https://example.invalid/key"), "parameters are mutually exclusive: key|key_url"),
    (dict(key=None), "state is present but any of the following are missing: key, key_url"),
    (dict(replaces=["old.list"]), "replaces must be an absolute path, got old.list"),
])
def test_bad_input_names_the_option(node, run_module, options, message):
    before = node.tree()
    result, failed = source(run_module, **options)
    assert failed and result["msg"] == message
    assert node.tree() == before and not node.commands


# -- dnf: planning only (no EL archive is reachable here) ----------------------


@pytest.fixture
def el_node(tmp_path, monkeypatch):
    state = dict(commands=[], rc=0, err="")
    monkeypatch.setattr(files, "ROOT", str(tmp_path))
    tools = {"rpm", "dnf"}
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                        lambda self, name, required=False, opt_dirs=None: f"/usr/bin/{name}" if name in tools else None)

    def run_command(self, argv, **kwargs):
        state["commands"].append([argv[0].rsplit("/", 1)[-1], *argv[1:]])
        return state["rc"], "", state["err"]

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    state["root"] = tmp_path
    return state


CUDA_EL = dict(name="cuda-rhel9", url="https://developer.download.nvidia.com/compute/cuda/repos/rhel9/x86_64",
               key=REPO_KEY, fingerprints=[REPO_FPR], module_hotfixes=True)


def test_dnf_repository_and_key(el_node, run_module):
    result, failed = run_module(package_source, CUDA_EL)
    assert not failed and result["manager"] == "dnf"
    assert result["plan"] == ["/etc/pki/rpm-gpg/RPM-GPG-KEY-cuda-rhel9: write", "/etc/yum.repos.d/cuda-rhel9.repo: write",
                              "dnf makecache --repo cuda-rhel9"]
    assert el_node["commands"] == [["dnf", "makecache", "-q", "--repo", "cuda-rhel9"]]
    repo = (el_node["root"] / "etc/yum.repos.d/cuda-rhel9.repo").read_text()
    assert "gpgcheck=1\n" in repo and "gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-cuda-rhel9\n" in repo
    assert "module_hotfixes=1\n" in repo
    key = (el_node["root"] / "etc/pki/rpm-gpg/RPM-GPG-KEY-cuda-rhel9").read_text()
    assert openpgp.dearmor(key) == openpgp.dearmor(REPO_KEY)


def test_dnf_makecache_failure_puts_back(el_node, run_module):
    el_node.update(rc=1, err="Error: Failed to download metadata for repo 'cuda-rhel9'\n")
    result, failed = run_module(package_source, CUDA_EL)
    assert failed and result["msg"] == (
        "package source cuda-rhel9: dnf makecache --repo cuda-rhel9 failed for "
        "https://developer.download.nvidia.com/compute/cuda/repos/rhel9/x86_64: Error: Failed to download metadata for "
        "repo 'cuda-rhel9'. The node's sources were left as they were (put back: /etc/yum.repos.d/cuda-rhel9.repo, "
        "/etc/pki/rpm-gpg/RPM-GPG-KEY-cuda-rhel9)")
    assert not (el_node["root"] / "etc/yum.repos.d/cuda-rhel9.repo").exists()


def test_dnf_refuses_an_unsigned_repository_and_apt_options(el_node, run_module):
    result, failed = run_module(package_source, dict(CUDA_EL, gpgcheck=False))
    assert failed and result["msg"] == "gpgcheck: false needs repo_gpgcheck: true; a source must be signed"
    result, failed = run_module(package_source, dict(CUDA_EL, suites=["/"]))
    assert failed and result["msg"] == "suites: apt only, and this node's package manager is dnf"


def test_no_package_manager(tmp_path, monkeypatch, run_module):
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None: None)
    result, failed = run_module(package_source, BACKPORTS)
    assert failed and result["msg"] == "manager=auto found neither apt-get nor rpm on this node: set manager to apt or dnf"
