"""The frameworks role with JAX's CPU build on a Debian 12 node.

In file order: what converge left (uv, the environment from PyPI owned by its user, the training
environment), then with the node cut off every network: a re-run that changes and downloads nothing, a
second environment from the wheelhouse, check mode reporting exactly what an install adds and changing
nothing, a version that does not exist and a wheel missing from the wheelhouse failing by name with the
environment left working, and a broken environment failing the role through its smoke test.
"""
from __future__ import annotations

import json
import re

import pytest
from playbook import play, recap

ENV = "/opt/dlnode/venvs/jax"
OFFLINE_ENV = "/opt/dlnode/venvs/jax-offline"
JAX = {"name": "jax", "version": "0.10.2"}


def environments(*packages, check_name="jax-offline"):
    """The scenario's environment and one from the wheelhouse, with more packages."""
    return json.dumps({"frameworks_environments": [
        {"name": "jax", "framework": JAX, "owner": "dlprobe"},
        {"name": check_name, "framework": JAX, "wheelhouse": "/srv/wheelhouse", "packages": list(packages)}]})


def jax_works(host, path):
    """Run as root without writing __pycache__ (files of root's in the owner's environment would be re-owned)."""
    return host.check_output(f"PYTHONDONTWRITEBYTECODE=1 {path}/bin/python -c 'import jax, jax.numpy as j; print(jax.__version__, float(j.arange(4.0).sum()))'")


@pytest.fixture(scope="module")
def offline(host):
    """The node with no default route: no index, no PyPI, nothing outside. Put back afterwards."""
    route = host.check_output("ip route show default")
    host.check_output("ip route del default")
    probe = host.run("python3 -c \"import socket; socket.create_connection(('pypi.org', 443), timeout=3)\"")
    assert probe.rc != 0, "the node still reaches PyPI"
    yield
    host.check_output(f"ip route add {route}")


def test_converge_filled_the_environment_from_pypi_for_its_owner(host):
    assert jax_works(host, ENV) == "0.10.2 6.0"
    assert host.file(ENV).user == "dlprobe"
    assert host.file(f"{ENV}/lib/python3.11/site-packages/jaxlib").user == "dlprobe"
    assert host.check_output("/opt/dlnode/tools/bin/uv --version").startswith("uv 0.13.10")


def test_the_training_environment_for_units_and_login_shells(host):
    assert host.file("/etc/dlnode/frameworks.env").content_string.splitlines()[1:] == [
        "NCCL_SOCKET_IFNAME=^docker0,lo", "NCCL_IB_DISABLE=1", "OMP_NUM_THREADS=2",
        "CUDA_DEVICE_ORDER=PCI_BUS_ID", "CUDA_MODULE_LOADING=LAZY"]
    shell = host.check_output("su - dlprobe -c 'echo $NCCL_SOCKET_IFNAME $OMP_NUM_THREADS $CUDA_DEVICE_ORDER'")
    assert shell == "^docker0,lo 2 PCI_BUS_ID"


def test_a_rerun_with_no_network_changes_and_downloads_nothing(host, offline):
    rc, out = play(host)
    assert rc == 0, out
    assert recap(out)["changed"] == 0, out
    assert re.search(r"jax: jax\s+0\.10\.2", out), out


def test_the_wheelhouse_fills_an_environment_with_no_index(host, offline):
    rc, out = play(host, "-e", environments())
    assert rc == 0, out
    assert recap(out)["changed"] == 1, out
    assert jax_works(host, OFFLINE_ENV) == "0.10.2 6.0"
    assert re.search(r"jax-offline: jax\s+0\.10\.2", out), out


def test_check_mode_reports_exactly_what_an_install_adds_and_changes_nothing(host, offline):
    before = host.check_output(f"ls {OFFLINE_ENV}/bin {OFFLINE_ENV}/lib/python3.11/site-packages")
    rc, out = play(host, "--check", "-v", "-e", environments("uv==0.13.10"))
    assert rc == 0, out
    assert '"to_install": {"uv": "0.13.10"}' in out, out
    assert host.check_output(f"ls {OFFLINE_ENV}/bin {OFFLINE_ENV}/lib/python3.11/site-packages") == before
    assert not host.file(f"{OFFLINE_ENV}/bin/uv").exists


@pytest.mark.parametrize("requirement", ["uv==0.0.1", "requests==2.34.2"], ids=["no-such-version", "not-in-wheelhouse"])
def test_a_requirement_that_cannot_be_installed_fails_by_name_and_leaves_the_environment_working(host, offline, requirement):
    rc, out = play(host, "-e", environments(requirement))
    assert rc != 0, out
    assert (f"requirements: {requirement} could not be installed by uv from the wheelhouse /srv/wheelhouse (no index)"
            in out), out
    assert f"{OFFLINE_ENV} is unchanged" in out, out
    assert jax_works(host, OFFLINE_ENV) == "0.10.2 6.0"


def test_a_broken_environment_fails_the_role_through_its_smoke_test(host, offline):
    host.check_output(f"rm -r {OFFLINE_ENV}/lib/python3.11/site-packages/jaxlib")
    rc, out = play(host, "-e", environments())
    assert rc != 0, out
    assert "The smoke test failed for jax-offline" in out, out
    assert "ModuleNotFoundError" in out or "ImportError" in out, out
