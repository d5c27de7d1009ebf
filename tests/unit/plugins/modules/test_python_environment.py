"""dlnode.gpu.python_environment with the real uv and pip, offline: a wheelhouse of tiny wheels built here.

What the installers do is the thing under test (the plan from their dry runs, resolution failing before
anything changes), so nothing is faked but the index: every run uses --no-index/--offline or a wheelhouse.
"""
from __future__ import annotations

import base64
import hashlib
import os
import socket
import subprocess
import sys
import zipfile

import pytest

from ansible_collections.dlnode.gpu.plugins.modules import python_environment

UV = os.path.join(os.path.dirname(sys.executable), "uv")


def wheel(directory, name, version, requires=()):
    """A pure-Python wheel whose module answers its version."""
    dist = f"{name}-{version}.dist-info"
    files = {f"{name}/__init__.py": f"VERSION = {version!r}\n",
             f"{dist}/METADATA": "Metadata-Version: 2.1\nName: " + name + "\nVersion: " + version + "\n"
             + "".join(f"Requires-Dist: {item}\n" for item in requires),
             f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: dlnode-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{dist}/RECORD"] = "\n".join(record + [f"{dist}/RECORD,,"]) + "\n"
    target = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(target, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return target


@pytest.fixture
def house(tmp_path, monkeypatch):
    """A wheelhouse with probe 1.0 and 2.0 (2.0 needs probedep), and an isolated installer configuration."""
    directory = tmp_path / "wheelhouse"
    directory.mkdir()
    wheel(directory, "probe", "1.0")
    wheel(directory, "probe", "2.0", requires=["probedep>=1"])
    wheel(directory, "probedep", "1.5")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    monkeypatch.setenv("UV_NO_CONFIG", "1")
    return directory


def env(run_module, tmp_path, house, installer, check_mode=False, **options):
    args = {"path": str(tmp_path / "venv"), "python": sys.executable, "installer": installer, "uv": UV,
            "wheelhouse": str(house), "requirements": ["probe==1.0"]}
    args.update(options)
    # None: the option left out (an index instead of the wheelhouse).
    args = {key: value for key, value in args.items() if value is not None}
    return run_module(python_environment, args, check_mode=check_mode)


def probe_version(tmp_path):
    return subprocess.run([str(tmp_path / "venv" / "bin" / "python"), "-c", "import probe; print(probe.VERSION)"],
                          capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_create_fill_and_a_rerun_changes_nothing(run_module, tmp_path, house, installer):
    result, failed = env(run_module, tmp_path, house, installer)
    assert not failed, result
    assert result["changed"] and result["created"]
    assert result["to_install"] == {"probe": "1.0"}
    assert result["installed"]["probe"] == "1.0"
    assert probe_version(tmp_path) == "1.0"
    # The re-run is decided by the dry run that reaches no index: with the wheelhouse gone, it still passes.
    (house / "probe-1.0-py3-none-any.whl").unlink()
    result, failed = env(run_module, tmp_path, house, installer)
    assert not failed, result
    assert not result["changed"] and not result["created"] and result["to_install"] == {}


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_check_mode_reports_exactly_what_an_upgrade_installs_and_changes_nothing(run_module, tmp_path, house, installer):
    env(run_module, tmp_path, house, installer)
    result, failed = env(run_module, tmp_path, house, installer, check_mode=True, requirements=["probe==2.0"])
    assert not failed, result
    assert result["changed"] and result["to_install"] == {"probe": "2.0", "probedep": "1.5"}
    assert probe_version(tmp_path) == "1.0"
    result, failed = env(run_module, tmp_path, house, installer, requirements=["probe==2.0"])
    assert not failed and result["to_install"] == {"probe": "2.0", "probedep": "1.5"}
    assert probe_version(tmp_path) == "2.0"
    assert result["diff"]["before"] != result["diff"]["after"]


def test_check_mode_on_a_new_environment_creates_nothing(run_module, tmp_path, house):
    result, failed = env(run_module, tmp_path, house, "uv", check_mode=True)
    assert not failed and result["changed"] and result["created"]
    assert result["to_install"] == {"probe": "probe==1.0"}
    assert not (tmp_path / "venv").exists()


@pytest.mark.parametrize("installer", ["uv", "pip"])
@pytest.mark.parametrize("requirement, missing", [
    ("probe==9.9", "a version that does not exist"),
    ("probe==2.0", "a dependency whose wheel is missing from the wheelhouse"),
])
def test_a_failed_install_names_the_requirement_and_leaves_the_environment_working(
        run_module, tmp_path, house, installer, requirement, missing):
    env(run_module, tmp_path, house, installer)
    (house / "probedep-1.5-py3-none-any.whl").unlink()
    result, failed = env(run_module, tmp_path, house, installer, requirements=[requirement])
    assert failed, missing
    assert result["msg"].startswith("requirements: probe")
    assert f"could not be installed by {installer} from the wheelhouse {house} (no index)" in result["msg"]
    assert result["msg"].endswith(f"{tmp_path / 'venv'} is unchanged")
    assert probe_version(tmp_path) == "1.0"


def test_a_new_environment_that_cannot_be_filled_is_removed(run_module, tmp_path, house):
    result, failed = env(run_module, tmp_path, house, "uv", requirements=["probe==9.9"])
    assert failed
    assert result["msg"].endswith(f"the environment {tmp_path / 'venv'} this run created was removed")
    assert "probe" in result["msg"] and not (tmp_path / "venv").exists()


def test_pip_refuses_an_environment_uv_made_without_pip(run_module, tmp_path, house):
    env(run_module, tmp_path, house, "uv")
    result, failed = env(run_module, tmp_path, house, "pip")
    assert failed
    assert result["msg"] == (f"installer: {tmp_path / 'venv'} has no pip (an environment uv made); use installer uv, "
                             "or remove the environment so that pip makes it again")


@pytest.mark.parametrize("options, message", [
    ({"requirements": ["probe==1.0", "probe; os_name == 'posix'"]},
     "requirements[1]: \"probe; os_name == 'posix'\" is not a requirement such as jax==0.8.1, jax[cuda13]>=0.8 or numpy "
     "(a name, optional extras and version clauses)"),
    ({"wheelhouse": "/nonexistent/wheels"}, "wheelhouse: /nonexistent/wheels is not a directory on this node"),
    ({"constraints": "/nonexistent/c.txt"}, "constraints: /nonexistent/c.txt is not a file on this node"),
    ({"ca_bundle": "/nonexistent/ca.crt"}, "ca_bundle: /nonexistent/ca.crt is not a file on this node"),
    ({"uv": "/nonexistent/uv"}, "uv: /nonexistent/uv is not an executable: install uv (PyPI) or choose installer pip"),
    ({"python": "/nonexistent/python3"}, "python: /nonexistent/python3 is not an interpreter on this node"),
    ({"owner": "no-such-user-dlnode"}, "owner: no user 'no-such-user-dlnode' on this node"),
    ({"group": "root"}, "group: needs owner"),
    ({"index_url": "https://pypi.org/simple"}, "parameters are mutually exclusive: wheelhouse|index_url"),
])
def test_bad_input_is_refused_naming_the_option_before_anything_is_written(run_module, tmp_path, house, options, message):
    result, failed = env(run_module, tmp_path, house, "uv", **options)
    assert failed and result["msg"] == message
    assert not (tmp_path / "venv").exists()


def test_the_environment_is_given_to_its_owner(run_module, tmp_path, house, monkeypatch):
    changed = []
    monkeypatch.setattr(os, "lchown", lambda path, uid, gid: changed.append((path, uid, gid)))
    monkeypatch.setattr(python_environment.pwd, "getpwnam",
                        lambda name: type("U", (), {"pw_uid": 4242, "pw_gid": 4343})())
    result, failed = env(run_module, tmp_path, house, "uv", owner="research")
    assert not failed and result["changed"]
    assert changed and {(uid, gid) for _path, uid, gid in changed} == {(4242, 4343)}
    assert changed[0][0] == str(tmp_path / "venv")


def own_address():
    """This machine's address on its network (no packet is sent): pip trusts loopback indexes without asking."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("10.255.255.255", 1))
        return probe.getsockname()[0]


def host(url):
    return url.split("/")[2].split(":")[0]


@pytest.fixture
def index(house, tmp_path):
    """The wheelhouse as a PEP 503 simple index over plain HTTP on this machine's address (an internal mirror)."""
    root = tmp_path / "simple"
    for name in ("probe", "probedep"):
        (root / name).mkdir(parents=True)
        links = "".join(f'<a href="/files/{path.name}">{path.name}</a>\n' for path in sorted(house.glob(f"{name}-*.whl")))
        (root / name / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{links}</body></html>\n")
    (tmp_path / "files").symlink_to(house)
    address = own_address()
    server = subprocess.Popen([sys.executable, "-m", "http.server", "0", "--bind", address, "--directory", str(tmp_path)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    port = server.stdout.readline().split("port ")[1].split(" ")[0]
    yield f"http://{address}:{port}/simple/"
    server.terminate()
    server.wait()


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_an_internal_index_with_a_cache_and_constraints(run_module, tmp_path, house, index, installer):
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("probedep==1.5\n")
    result, failed = env(run_module, tmp_path, house, installer, wheelhouse=None, index_url=index, trusted_hosts=[host(index)],
                         cache_dir=str(tmp_path / "cache"), constraints=str(constraints), requirements=["probe==2.0"])
    assert not failed, result
    assert result["installed"]["probe"] == "2.0" and result["installed"]["probedep"] == "1.5"
    if installer == "uv":
        # uv's downloads go through the cache asked for (pip's HTTP cache keeps nothing of http.server's
        # answers, which carry no caching headers).
        assert any((tmp_path / "cache").rglob("probe*")), "nothing of probe in the cache directory"


def test_a_constraint_the_index_cannot_meet_fails_naming_it(run_module, tmp_path, house, index):
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("probedep==9.9\n")
    result, failed = env(run_module, tmp_path, house, "uv", wheelhouse=None, index_url=index, trusted_hosts=[host(index)],
                         constraints=str(constraints), requirements=["probe==2.0"])
    assert failed and "probedep" in result["msg"], result
    # A new environment that cannot be filled is not left behind half made.
    assert not (tmp_path / "venv").exists()


def test_pip_reaches_a_plain_http_index_only_when_its_host_is_trusted(run_module, tmp_path, house, index):
    result, failed = env(run_module, tmp_path, house, "pip", wheelhouse=None, index_url=index)
    assert failed and "probe==1.0" in result["msg"], result
    result, failed = env(run_module, tmp_path, house, "pip", wheelhouse=None, index_url=index, trusted_hosts=[host(index)])
    assert not failed and result["installed"]["probe"] == "1.0", result
