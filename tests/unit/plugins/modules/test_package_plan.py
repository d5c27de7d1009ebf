from __future__ import annotations

import pytest
from ansible.module_utils import basic

from ansible_collections.dlnode.gpu.plugins.module_utils.packages import database
from ansible_collections.dlnode.gpu.plugins.modules import package_plan

# What dpkg-query -W printed on a bare Debian 12 node (python3-apt and the tools not installed,
# nvme-cli removed with its configuration left behind); stderr names the unknown ones.
DPKG_OUT = ("ca-certificates\tii \t20230311\ncurl\tii \t7.88.1-10+deb12u14\n"
            "nvme-cli\trc \t2.4+really2.3-3\nlibc6\tii \t2.36-9+deb12u10\nlibc6\tii \t2.36-9+deb12u10\n")
DPKG_ERR = "dpkg-query: no packages found matching jq\ndpkg-query: no packages found matching dkms\n"
RPM_OUT = "curl\t0:7.76.1-29.el9_4\npackage dkms is not installed\nkmod\t1:28-9.el9\n"


@pytest.fixture
def node(monkeypatch):
    """A node whose package database and Python bindings the test sets; records the commands run."""
    state = dict(bins={"apt-get", "dpkg-query", "rpm"}, rc=1, out=DPKG_OUT, err=DPKG_ERR, bindings=False, commands=[])

    def run_command(self, argv, **_kwargs):
        state["commands"].append(argv)
        # As dpkg-query and rpm do: only the names asked for.
        out = [line for line in state["out"].splitlines(keepends=True) if line.split("\t")[0] in argv
               or line.split()[1:2] and line.split()[1] in argv]
        return state["rc"], "".join(out), state["err"]

    def get_bin_path(self, name, required=False):
        if name in state["bins"]:
            return f"/usr/bin/{name}"
        if required:
            self.fail_json(msg=f"Failed to find required executable {name}")
        return None

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", get_bin_path)
    monkeypatch.setattr(package_plan, "has_bindings", lambda modules: state["bindings"])
    return state


NAMES = ["curl", "jq", "dkms", "ca-certificates", "nvme-cli"]


def test_check_mode_without_python3_apt_is_the_prediction(node, run_module, warnings):
    result, failed = run_module(package_plan, dict(name=NAMES), check_mode=True)
    assert not failed and result["changed"]
    assert result["manager"] == "dpkg" and result["bindings"] is False
    assert result["missing"] == ["jq", "dkms", "nvme-cli"]
    assert result["installed"] == {"ca-certificates": "20230311", "curl": "7.88.1-10+deb12u14"}
    assert result["msg"] == (
        "python3-apt is not installed, so apt cannot plan this install in check mode and the exact set of packages "
        "(with their dependencies) cannot be predicted without it. The real run installs python3-apt first, then "
        "these 3 packages and their dependencies: jq, dkms, nvme-cli")
    assert warnings == ["check mode: " + result["msg"]]
    # One read-only query, in a C locale, of each name once.
    assert node["commands"] == [["/usr/bin/dpkg-query", "-W", "-f", database.DPKG_FORMAT, "--",
                                 "ca-certificates", "curl", "dkms", "jq", "nvme-cli"]]


def test_with_python3_apt_the_install_task_predicts(node, run_module, warnings):
    node["bindings"] = True
    result = run_module(package_plan, dict(name=NAMES), check_mode=True)[0]
    assert not result["changed"] and result["bindings"] is True and not warnings
    assert result["missing"] == ["jq", "dkms", "nvme-cli"]
    assert result["msg"] == "3 of the packages are not installed: jq, dkms, nvme-cli"


def test_never_changed_outside_check_mode(node, run_module, warnings):
    result = run_module(package_plan, dict(name=NAMES))[0]
    assert not result["changed"] and result["missing"] == ["jq", "dkms", "nvme-cli"] and not warnings


def test_all_installed_without_python3_apt(node, run_module, warnings):
    node.update(rc=0, err="")
    result = run_module(package_plan, dict(name=["curl", "ca-certificates"]), check_mode=True)[0]
    assert not result["changed"] and result["missing"] == [] and not warnings
    assert result["msg"].endswith("The real run installs python3-apt first; the named packages are all installed")


@pytest.mark.parametrize("spec, missing", [
    ("curl=7.88.1-10+deb12u14", False),
    ("curl=7.88.*", False),
    ("curl=8.0.0-1", True),
    ("libc6:amd64", False),
    ("libc6:amd64=2.36-9+deb12u10", False),
])
def test_versions_and_architectures(node, run_module, spec, missing):
    result = run_module(package_plan, dict(name=[spec]), check_mode=True)[0]
    assert result["missing"] == ([spec] if missing else [])


def test_rpm_database(node, run_module, warnings):
    node.update(bins={"rpm"}, rc=1, out=RPM_OUT, err="")
    result = run_module(package_plan, dict(name=["curl", "dkms", "kmod"]), check_mode=True)[0]
    assert result["manager"] == "rpm" and result["missing"] == ["dkms"]
    assert result["installed"] == {"curl": "7.76.1-29.el9_4", "kmod": "1:28-9.el9"}
    assert result["changed"] and warnings[0].startswith("check mode: python3-dnf is not installed, so dnf cannot plan")
    assert node["commands"][0][:4] == ["/usr/bin/rpm", "-q", "--qf", database.RPM_FORMAT]


def test_database_unreadable(node, run_module):
    node.update(rc=2, err="dpkg-query: error: cannot access archive")
    result, failed = run_module(package_plan, dict(name=["curl"]))
    assert failed and result["msg"] == ("could not read the dpkg package database: dpkg-query exited 2: "
                                        "dpkg-query: error: cannot access archive")


def test_no_package_manager(node, run_module):
    node["bins"] = set()
    result, failed = run_module(package_plan, dict(name=["curl"]))
    assert failed and result["msg"] == "manager=auto found neither apt-get nor rpm on this node: set manager to dpkg or rpm"


@pytest.mark.parametrize("spec", ["", "./foo.deb", "/tmp/foo.rpm", "lib*", "two words"])
def test_bad_names(node, run_module, spec):
    result, failed = run_module(package_plan, dict(name=["curl", spec]))
    assert failed and result["msg"] == (
        "name must hold package names (name, name=version, name:arch on apt systems), not paths, patterns or "
        f"empty strings: got [{spec!r}]")
    assert not node["commands"]


def test_bad_manager(node, run_module):
    result, failed = run_module(package_plan, dict(name=["curl"], manager="apk"))
    assert failed and result["msg"].startswith("value of manager must be one of: auto, dpkg, rpm, got: apk")


def test_has_bindings_probes_the_system_interpreters(monkeypatch):
    probed = []
    monkeypatch.setattr(package_plan.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(package_plan, "probe_interpreters_for_module",
                        lambda paths, name: probed.append((paths, name)) or ("/usr/bin/python3" if name == "libdnf5" else None))
    assert package_plan.has_bindings(["dnf", "libdnf5"]) is True
    assert [probe[1] for probe in probed] == ["dnf", "libdnf5"]
    assert probed[0][0] == package_plan.SYSTEM_INTERPRETERS
    assert package_plan.has_bindings(["apt"]) is False
