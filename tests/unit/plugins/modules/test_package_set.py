"""dlnode.gpu.package_set on a fake root, with apt-get, apt-mark, apt-cache and dpkg-query printing what
apt 2.6 printed in a Debian 12 node container (tests/unit/fake_apt.py)."""
from __future__ import annotations

import re

import pytest
from ansible.module_utils import basic

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.modules import package_set
from ansible_collections.dlnode.gpu.tests.unit.fake_apt import NEW, OLD, FakeApt

PIN = "/etc/apt/preferences.d/dlnode-test_lock.pref"
BLACKLIST = "/etc/apt/apt.conf.d/52dlnode-test_lock-unattended-upgrades"
RECORD = "/etc/dlnode/package-sets/test_lock.versions"
BOTH_OLD = {"libcext0": OLD, "libcext-dev": OLD}
BOTH_NEW = {"libcext0": NEW, "libcext-dev": NEW}


class Node(FakeApt):
    def __init__(self, root):
        super().__init__()
        self.root = root

    def read(self, path):
        real = self.root / path.lstrip("/")
        return real.read_text() if real.exists() else None

    def write(self, path, text):
        real = self.root / path.lstrip("/")
        real.parent.mkdir(parents=True, exist_ok=True)
        real.write_text(text)

    def ran(self, tool):
        return [command for command in self.commands if command[0] == tool]


@pytest.fixture
def node(tmp_path, monkeypatch):
    return Node(tmp_path).patch(monkeypatch, tmp_path)


def lock(run_module, packages, check_mode=False, **options):
    return run_module(package_set, dict(name="test_lock", packages=packages, **options), check_mode=check_mode)


def test_installs_the_whole_set_in_one_call_holds_pins_and_excludes(node, run_module):
    result, failed = lock(run_module, BOTH_OLD)
    assert not failed and result["changed"], result
    assert result["locked"] == {"libcext-dev": OLD, "libcext0": OLD}
    assert node.installed == BOTH_OLD and node.held == {"libcext0", "libcext-dev"}
    assert [c[:2] for c in node.commands] == [["dpkg-query", "-W"], ["apt-get", "install"], ["apt-get", "install"],
                                              ["apt-mark", "hold"], ["dpkg-query", "-W"]]
    # One simulation and one install, of both packages at their versions.
    assert node.commands[1][2] == "--simulate" and node.commands[2][2] == "-y"
    assert node.commands[2][-2:] == [f"libcext-dev={OLD}", f"libcext0={OLD}"]
    assert "--no-install-recommends" in node.commands[2] and "--allow-downgrades" in node.commands[2]
    assert result["transaction"] == {"install": {"libcext0": [None, OLD], "libcext-dev": [None, OLD]}, "remove": {}}
    assert result["plan"] == [f"apt-get install libcext-dev={OLD} libcext0={OLD}", "apt-mark hold libcext-dev libcext0",
                              f"{PIN}: write", f"{BLACKLIST}: write", f"{RECORD}: write"]
    assert node.read(PIN) == (
        "# Managed by dlnode.gpu (package_set test_lock): edits are overwritten.\n"
        f"Package: libcext-dev\nPin: version {OLD}\nPin-Priority: 1001\n\n"
        f"Package: libcext0\nPin: version {OLD}\nPin-Priority: 1001\n")
    assert node.read(BLACKLIST) == (
        "// Managed by dlnode.gpu (package_set test_lock): edits are overwritten.\n"
        "// Locked at exact versions: unattended-upgrades must not move them.\n"
        'Unattended-Upgrade::Package-Blacklist {\n    "^libcext-dev$";\n    "^libcext0$";\n};\n')
    assert node.read(RECORD).endswith(f"libcext-dev {OLD}\nlibcext0 {OLD}\n")
    assert result["after"] == {"libcext0": {"version": OLD, "held": True}, "libcext-dev": {"version": OLD, "held": True}}


def test_a_second_run_reads_only(node, run_module):
    lock(run_module, BOTH_OLD)
    node.commands.clear()
    result, failed = lock(run_module, BOTH_OLD)
    assert not failed and not result["changed"] and result["plan"] == []
    assert node.commands == [["dpkg-query", "-W", "-f", "${Package}\t${db:Status-Abbrev}\t${Version}\n", "--",
                              "libcext-dev", "libcext0"]]


def test_a_version_change_unholds_upgrades_and_holds_again_in_one_run(node, run_module):
    lock(run_module, BOTH_OLD)
    node.commands.clear()
    result, failed = lock(run_module, BOTH_NEW)
    assert not failed and result["changed"]
    assert [c[:2] for c in node.commands] == [["dpkg-query", "-W"], ["apt-get", "install"], ["apt-mark", "unhold"],
                                              ["apt-get", "install"], ["apt-mark", "hold"], ["dpkg-query", "-W"]]
    assert result["plan"][:3] == ["apt-mark unhold libcext-dev libcext0",
                                  f"apt-get install libcext-dev={NEW} libcext0={NEW}",
                                  "apt-mark hold libcext-dev libcext0"]
    assert node.installed == BOTH_NEW and node.held == {"libcext0", "libcext-dev"}
    assert result["transaction"]["install"] == {"libcext-dev": [OLD, NEW], "libcext0": [OLD, NEW]}
    assert f"Pin: version {NEW}" in node.read(PIN) and OLD not in node.read(PIN)
    # And back down: a downgrade is the same sequence.
    assert lock(run_module, BOTH_OLD)[0]["changed"] and node.installed == BOTH_OLD


def test_check_mode_predicts_the_change_and_changes_nothing(node, run_module):
    lock(run_module, BOTH_OLD)
    before = (dict(node.installed), set(node.held), node.read(PIN), node.read(RECORD))
    node.commands.clear()
    result, failed = lock(run_module, BOTH_NEW, check_mode=True)
    assert not failed and result["changed"]
    assert result["after"] == {"libcext0": {"version": NEW, "held": True}, "libcext-dev": {"version": NEW, "held": True}}
    assert result["locked"] == {"libcext-dev": NEW, "libcext0": NEW}
    assert result["transaction"]["install"] == {"libcext-dev": [OLD, NEW], "libcext0": [OLD, NEW]}
    # Read only: dpkg-query and a simulation; nothing written.
    assert [c[:3] for c in node.commands] == [["dpkg-query", "-W", "-f"], ["apt-get", "install", "--simulate"]]
    assert (node.installed, node.held, node.read(PIN), node.read(RECORD)) == before
    pin_diff = next(d for d in result["diff"] if d["before_header"] == PIN)
    assert f"Pin: version {OLD}" in pin_diff["before"] and f"Pin: version {NEW}" in pin_diff["after"]


def test_check_mode_on_a_fresh_node_predicts_the_install(node, run_module):
    result, failed = lock(run_module, BOTH_OLD, check_mode=True)
    assert not failed and result["changed"] and not node.installed and node.read(PIN) is None
    assert result["before"] == {"libcext0": {"version": None, "held": False},
                                "libcext-dev": {"version": None, "held": False}}


def test_a_version_the_sources_lack_is_refused_with_the_versions_they_have(node, run_module):
    lock(run_module, BOTH_OLD)
    node.commands.clear()
    result, failed = lock(run_module, {"libcext0": "9.9-1", "libcext-dev": "9.8-1"})
    assert failed
    assert result["msg"] == (
        "packages: libcext-dev 9.8-1 is not in the configured sources; they have "
        f"{NEW} (http://deb.debian.org/debian bookworm-backports/main), "
        f"{OLD} (http://deb.debian.org/debian bookworm/main); "
        "libcext0 9.9-1 is not in the configured sources; they have "
        f"{NEW} (http://deb.debian.org/debian bookworm-backports/main), "
        f"{OLD} (http://deb.debian.org/debian bookworm/main). Nothing was changed")
    assert [c[:2] for c in node.commands] == [["dpkg-query", "-W"], ["apt-get", "install"],
                                              ["apt-cache", "madison"]]
    assert node.installed == BOTH_OLD and node.held == {"libcext0", "libcext-dev"}


def test_a_package_the_sources_do_not_know_is_refused(node, run_module):
    result, failed = lock(run_module, {"nvidia-driver": "535.261.03-1"})
    assert failed and result["msg"] == (
        "packages: nvidia-driver is in none of the configured sources (is its source missing, or not updated since "
        "it was added?). Nothing was changed")


def test_check_mode_after_a_source_that_is_not_there_yet(node, run_module, warnings):
    packages = {"nvidia-driver": "535.261.03-1", "libcext0": "9.9-1"}
    result, failed = lock(run_module, packages, check_mode=True, sources_changed=True)
    assert not failed and result["changed"] and result["locked"] == dict(sorted(packages.items()))
    assert warnings == ["check mode: apt's lists lack libcext0 9.9-1, nvidia-driver: the source a task before this one "
                        "adds is not there in a check run, so the install is predicted without apt's resolution"]
    # A real run refuses, and so does a check run with apt's other refusals.
    assert lock(run_module, packages, sources_changed=True)[1]
    assert not node.installed


def test_held_broken_packages_name_the_hold_outside_the_set(node, run_module):
    node.installed["libcext0"] = OLD
    node.held.add("libcext0")  # by hand
    result, failed = lock(run_module, {"libcext-dev": NEW})
    assert failed and result["msg"] == (
        f"packages: apt cannot install the set together: libcext-dev : Depends: libcext0 (= {NEW}) but {OLD} is to "
        "be installed; held outside this set: libcext0 (held, by no dlnode.gpu set: apt-mark unhold it or add it to "
        "this set). Nothing was changed")
    assert node.ran("apt-mark") == [["apt-mark", "showhold"]]
    assert node.installed == {"libcext0": OLD}


def test_held_broken_packages_name_the_set_that_holds_them(node, run_module):
    assert not run_module(package_set, dict(name="other", packages={"libcext0": OLD}))[1]
    result, failed = lock(run_module, {"libcext-dev": NEW})
    assert failed and "held outside this set: libcext0 (held by the set other)" in result["msg"]


def test_a_package_belongs_to_one_set(node, run_module):
    assert not run_module(package_set, dict(name="other", packages={"libcext0": OLD}))[1]
    node.commands.clear()
    result, failed = lock(run_module, BOTH_OLD)
    assert failed and result["msg"] == ("packages: libcext0 is locked by the set other; a package belongs to one set: "
                                        "take it out of that set first")
    assert not node.commands


def test_a_package_the_set_no_longer_names_is_released(node, run_module):
    lock(run_module, BOTH_OLD)
    result, failed = lock(run_module, {"libcext0": OLD})
    assert not failed and result["changed"] and result["released"] == ["libcext-dev"]
    assert result["plan"][0] == "apt-mark unhold libcext-dev"
    assert node.held == {"libcext0"} and node.installed == BOTH_OLD
    assert "libcext-dev" not in node.read(PIN) and "libcext-dev" not in node.read(BLACKLIST)
    assert not lock(run_module, {"libcext0": OLD})[0]["changed"]


def test_absent_unlocks_and_removes_the_set(node, run_module):
    lock(run_module, BOTH_OLD)
    result, failed = run_module(package_set, dict(name="test_lock", state="absent"))
    assert not failed and result["changed"] and result["locked"] == {}
    assert result["plan"] == ["apt-mark unhold libcext-dev libcext0", "apt-get remove libcext-dev libcext0",
                              f"{PIN}: remove", f"{BLACKLIST}: remove", f"{RECORD}: remove"]
    assert not node.installed and not node.held
    assert node.read(PIN) is None and node.read(BLACKLIST) is None and node.read(RECORD) is None
    assert not run_module(package_set, dict(name="test_lock", state="absent"))[0]["changed"]


def test_absent_refuses_to_remove_packages_outside_the_set(node, run_module):
    lock(run_module, {"libcext0": OLD})
    node.installed["libcext-dev"] = OLD
    result, failed = run_module(package_set, dict(name="test_lock", state="absent"))
    assert failed and result["msg"] == ("state: removing the set would also remove libcext-dev (they depend on it): "
                                        "remove or release them first. Nothing was changed")
    assert node.installed["libcext0"] == OLD and node.held == {"libcext0"}


def test_a_failed_install_puts_the_holds_back(node, run_module):
    lock(run_module, BOTH_OLD)
    node.fail_install = "E: Sub-process /usr/bin/dpkg returned an error code (1)\n"
    result, failed = lock(run_module, BOTH_NEW)
    assert failed and result["msg"].startswith("package set test_lock: apt-get install -y -q --allow-downgrades")
    assert result["msg"].endswith("E: Sub-process /usr/bin/dpkg returned an error code (1); the holds on libcext-dev, "
                                  f"libcext0 were put back; installed now: libcext0 {OLD}, libcext-dev {OLD}")
    assert result["after"]["libcext0"] == {"version": OLD, "held": True}
    assert node.held == {"libcext0", "libcext-dev"} and f"Pin: version {OLD}" in node.read(PIN)


def test_no_hold_no_pin_no_exclusion(node, run_module):
    lock(run_module, BOTH_OLD)
    result = lock(run_module, BOTH_OLD, hold=False, pin=False, unattended_upgrades_exclude=False)[0]
    assert result["changed"] and not node.held and node.read(PIN) is None and node.read(BLACKLIST) is None
    assert node.read(RECORD) is not None and result["locked"] == {"libcext-dev": OLD, "libcext0": OLD}


def test_epoch_zero_is_the_same_version(node, run_module):
    lock(run_module, BOTH_OLD)
    assert not lock(run_module, {"libcext0": "0:" + OLD, "libcext-dev": OLD})[0]["changed"]


def test_a_pattern_takes_the_newest_matching_version_and_locks_it(node, run_module):
    result, failed = lock(run_module, {"libcext0": "7.*", "libcext-dev": "7.*"})
    assert not failed and result["locked"] == BOTH_NEW and node.installed == BOTH_NEW
    assert ["apt-cache", "madison", "libcext-dev", "libcext0"] in node.commands
    assert f"Pin: version {NEW}" in node.read(PIN)


def test_a_pattern_keeps_the_installed_version_that_matches(node, run_module):
    lock(run_module, BOTH_OLD)
    node.commands.clear()
    result, failed = lock(run_module, {"libcext0": "7.*", "libcext-dev": "7.*"})
    # The newer matching version in the sources moves nothing, and costs no madison.
    assert not failed and not result["changed"] and result["locked"] == BOTH_OLD
    assert [c[0] for c in node.commands] == ["dpkg-query"]
    # A narrower pattern the installed version does not match moves the set.
    result = lock(run_module, {"libcext0": "7.3.*", "libcext-dev": "7.3.*"})[0]
    assert result["changed"] and result["locked"] == BOTH_NEW and node.installed == BOTH_NEW


def test_a_pattern_no_version_matches_is_refused_with_the_versions_there(node, run_module):
    result, failed = lock(run_module, {"libcext0": "8.*"})
    assert failed and result["msg"] == (f"packages: no version of libcext0 matches 8.*; the sources have {NEW}, {OLD}. "
                                        "Nothing was changed")
    assert not node.installed


def test_check_mode_predicts_a_pattern_a_new_source_will_resolve(node, run_module, warnings):
    result, failed = lock(run_module, {"libnvidia-compute": "580.*"}, check_mode=True, sources_changed=True)
    assert not failed and result["changed"] and result["locked"] == {"libnvidia-compute": "580.*"}
    assert any("no version of libnvidia-compute in apt's lists matches 580.*" in warning for warning in warnings)


def test_blacklist_entries_match_the_exact_name_only():
    from ansible_collections.dlnode.gpu.plugins.module_utils.packages import apt  # pylint: disable=import-outside-toplevel
    entry = apt.blacklist_entry("libstdc++6")
    assert entry == "^libstdc[+][+]6$"
    assert re.match(entry, "libstdc++6") and not re.match(entry, "libstdc++6-dbg") and not re.match(entry, "libstdcxx6")


@pytest.mark.parametrize("options, message", [
    (dict(name="nvidia driver", packages=BOTH_OLD),
     "name: 'nvidia driver' must be letters, digits, '_' and '-' (it names the set's apt files)"),
    (dict(name="test_lock", packages={}), "packages: required with state=present, as {name: version}"),
    (dict(name="test_lock", packages={"libcext0": 1.1}),
     "packages: the version of libcext0 must be a quoted string as apt prints it, got float 1.1 "
     "(YAML reads 1.10 as the number 1.1)"),
    (dict(name="test_lock", packages={"libcext0": "latest"}),
     "packages: libcext0: 'latest' is not an exact apt version ([epoch:]version[-revision], no spaces) nor a pattern "
     "with '*' (580.*)"),
    (dict(name="test_lock", packages={"libcext0": "7.2 *"}),
     "packages: libcext0: '7.2 *' is not an exact apt version ([epoch:]version[-revision], no spaces) nor a pattern "
     "with '*' (580.*)"),
    (dict(name="test_lock", packages={"libcext0:amd64": OLD}),
     "packages: 'libcext0:amd64' is not a apt package name (no architecture, pattern or path)"),
    (dict(name="test_lock", packages=BOTH_OLD, pin_priority=0),
     "pin_priority: 0 must be a non-zero number from -32768 to 32767 (above 1000 to go back to the version from a "
     "newer one)"),
    (dict(name="test_lock", packages=BOTH_OLD, state="gone"),
     "value of state must be one of: present, absent, got: gone"),
])
def test_bad_input_names_the_option(node, run_module, options, message):
    result, failed = run_module(package_set, options)
    assert failed and result["msg"] == message
    assert not node.commands


# -- dnf: planning only (no EL archive is reachable here) ----------------------

RPM_OUT = "nvidia-driver\t3:535.154.05-1.el9\nkmod-nvidia\t3:535.154.05-1.el9\n"
VERSIONLOCK_LIST = "Last metadata expiration check: 0:12:01 ago on Tue 25 Nov 2025.\nnvidia-driver-3:535.154.05-1.el9.*\n" \
                   "kmod-nvidia-3:535.154.05-1.el9.*\n"


@pytest.fixture
def el_node(tmp_path, monkeypatch):
    state = dict(commands=[], rpm=RPM_OUT, plugin=True, locks=VERSIONLOCK_LIST, repoquery="")
    monkeypatch.setattr(files, "ROOT", str(tmp_path))
    tools = {"rpm", "dnf"}
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                        lambda self, name, required=False, opt_dirs=None: f"/usr/bin/{name}" if name in tools else None)

    def run_command(self, argv, **kwargs):
        name, args = argv[0].rsplit("/", 1)[-1], argv[1:]
        state["commands"].append([name, *args])
        if name == "rpm" and "python3-dnf-plugin-versionlock" in args:
            return (0, "python3-dnf-plugin-versionlock\t0:4.3.0-16.el9\n", "") if state["plugin"] else \
                (1, "package python3-dnf-plugin-versionlock is not installed\n", "")
        if name == "rpm":
            return 0, state["rpm"], ""
        if args[:2] == ["versionlock", "list"]:
            return 0, state["locks"], ""
        if args[:1] == ["repoquery"]:
            return 0, state["repoquery"], ""
        return 0, "", ""

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    return state


DRIVER_550 = {"nvidia-driver": "3:550.127.08-1.el9", "kmod-nvidia": "3:550.127.08-1.el9"}


def test_dnf_plans_unlock_install_lock(el_node, run_module):
    result, failed = run_module(package_set, dict(name="nvidia_driver", packages=DRIVER_550), check_mode=True)
    assert not failed and result["changed"] and result["manager"] == "dnf"
    assert result["plan"] == ["dnf versionlock delete kmod-nvidia nvidia-driver",
                              "dnf install kmod-nvidia-3:550.127.08-1.el9 nvidia-driver-3:550.127.08-1.el9",
                              "dnf versionlock add kmod-nvidia-3:550.127.08-1.el9 nvidia-driver-3:550.127.08-1.el9",
                              "/etc/dlnode/package-sets/nvidia_driver.versions: write"]
    assert result["before"]["nvidia-driver"] == {"version": "3:535.154.05-1.el9", "held": True}


def test_dnf_runs_the_planned_commands(el_node, run_module):
    run_module(package_set, dict(name="nvidia_driver", packages=DRIVER_550))
    ran = [c for c in el_node["commands"] if c[0] == "dnf" and c[1:3] != ["versionlock", "list"]]
    assert ran == [["dnf", "versionlock", "delete", "kmod-nvidia", "nvidia-driver"],
                   ["dnf", "install", "-y", "-q", "--setopt=install_weak_deps=False",
                    "kmod-nvidia-3:550.127.08-1.el9", "nvidia-driver-3:550.127.08-1.el9"],
                   ["dnf", "versionlock", "add", "kmod-nvidia-3:550.127.08-1.el9", "nvidia-driver-3:550.127.08-1.el9"]]


def test_dnf_locked_at_the_version_is_unchanged(el_node, run_module):
    result = run_module(package_set, dict(name="nvidia_driver", packages={"nvidia-driver": "3:535.154.05-1.el9",
                                                                          "kmod-nvidia": "3:535.154.05-1.el9"}),
                        check_mode=True)[0]
    assert result["plan"] == ["/etc/dlnode/package-sets/nvidia_driver.versions: write"]


def test_dnf_without_the_versionlock_plugin(el_node, run_module):
    el_node["plugin"] = False
    result, failed = run_module(package_set, dict(name="nvidia_driver", packages=DRIVER_550))
    assert failed and result["msg"] == ("hold: dnf versionlock needs python3-dnf-plugin-versionlock: install it "
                                        "(dlnode.gpu.packages) or set hold: false")


def test_dnf_versions_need_the_release(el_node, run_module):
    result, failed = run_module(package_set, dict(name="nvidia_driver", packages={"nvidia-driver": "550.127.08"}))
    assert failed and result["msg"] == ("packages: nvidia-driver: '550.127.08' is not an exact dnf version "
                                        "([epoch:]version-release, no spaces) nor a pattern with '*' (580.*)")


def test_dnf_pattern_resolves_from_repoquery(el_node, run_module):
    el_node["repoquery"] = ("kmod-nvidia 3:550.127.08-1.el9\nkmod-nvidia 3:550.90.07-1.el9\nkmod-nvidia 3:560.35.03-1.el9\n"
                            "nvidia-driver 3:550.127.08-1.el9\nnvidia-driver 3:550.90.07-1.el9\n")
    result, failed = run_module(package_set, dict(name="nvidia_driver", packages={"nvidia-driver": "550.*", "kmod-nvidia": "550.*"}),
                                check_mode=True)
    assert not failed and result["locked"] == DRIVER_550
    assert ["dnf", "repoquery", "-q", "--queryformat", "%{name} %{evr}\\n", "kmod-nvidia", "nvidia-driver"] in el_node["commands"]
