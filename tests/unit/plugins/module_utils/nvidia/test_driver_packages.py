"""nvidia/driver: the package names of the role's one table, per source, distribution and branch."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import driver

TABLE = yaml.safe_load((Path(__file__).resolve().parents[5] / "roles/nvidia_driver/vars/main.yml").read_text())[
    "__nvidia_driver_table"]


def names(source="nvidia", distro="ubuntu2404", branch=580, modules="open", kernel_modules="dkms", fabric=False,
          nvlink5=False, version="580.*"):
    return driver.package_names(TABLE, dict(source=source, distro=distro, branch=branch, modules=modules,
                                            kernel_modules=kernel_modules, fabric=fabric, nvlink5=nvlink5,
                                            kernel="6.8.0-45-generic", version=version))


def test_ubuntu_580_open_carries_the_branch_in_every_name_and_pins_the_branch_first():
    found = names()
    assert found["manager"] == "apt" and found["stream"] is None
    assert found["pinning"] == {"nvidia-driver-pinning-580": "580-*"}
    assert found["packages"] == dict.fromkeys([
        "libnvidia-compute-580", "libnvidia-cfg1-580", "nvidia-kernel-common-580", "nvidia-firmware-580", "nvidia-utils-580",
        "nvidia-compute-utils-580", "nvidia-persistenced", "nvidia-modprobe", "nvidia-open", "nvidia-driver-580-open",
        "nvidia-dkms-580-open", "nvidia-kernel-source-580-open"], "580.*")
    assert found["version_package"] == "libnvidia-compute-580"
    assert found["services"] == ["nvidia-persistenced.service"]


def test_ubuntu_590_drops_the_branch_from_the_names():
    found = names(branch=590, version="590.48.01-*")
    assert found["pinning"] == {"nvidia-driver-pinning-590": "590-*"}
    assert {"libnvidia-compute", "nvidia-dkms-open", "nvidia-driver-open", "nvidia-open"} <= set(found["packages"])
    assert not any("590" in name for name in found["packages"])
    assert set(found["packages"].values()) == {"590.48.01-*"} and found["version_package"] == "libnvidia-compute"


def test_proprietary_ubuntu_580_never_names_the_loose_cuda_drivers_alone():
    found = names(modules="proprietary")
    assert {"cuda-drivers", "cuda-drivers-580", "nvidia-driver-580", "nvidia-dkms-580"} <= set(found["packages"])
    assert "nvidia-open" not in found["packages"]


def test_before_580_no_pinning_package_and_fabric_manager_carries_the_branch():
    found = names(branch=570, fabric=True, version="570.*")
    assert found["pinning"] == {}
    assert {"nvidia-open-570", "nvidia-fabricmanager-570", "libnvidia-nscq-570"} <= set(found["packages"])
    assert found["services"] == ["nvidia-persistenced.service", "nvidia-fabricmanager.service"]


def test_fabric_manager_only_when_asked():
    assert not any("fabric" in name for name in names()["packages"])
    with_fabric = names(fabric=True)
    assert {"nvidia-fabricmanager", "libnvidia-nscq"} <= set(with_fabric["packages"])


def test_nvlink5_adds_the_subnet_manager_at_its_own_version():
    found = names(fabric=True, nvlink5=True)
    assert found["packages"]["nvlsm"] == "*" and found["packages"]["nvlink5-580"] == "580.*"
    assert found["packages"]["libnvsdm"] == "580.*"


def test_nvlink5_is_refused_where_the_table_has_none():
    with pytest.raises(driver.TableError, match="nvidia_driver_nvlink5: nvidia has no NVLink5 packages for ubuntu2404 "
                                                "branch 570"):
        names(branch=570, nvlink5=True, version="570.*")


def test_debian12_from_nvidia_locks_the_loose_dependencies_too():
    found = names(distro="debian12")
    assert found["version_package"] == "nvidia-driver"
    assert {"nvidia-open", "nvidia-kernel-open-dkms", "nvidia-driver", "nvidia-driver-cuda", "libcuda1", "libnvidia-ml1",
            "nvidia-smi", "nvidia-persistenced", "firmware-nvidia-gsp"} <= set(found["packages"])
    # The trap: cuda-drivers-580 alone pulls 590; it is not in any debian12 list.
    assert "cuda-drivers-580" not in names(distro="debian12", modules="proprietary")["packages"]


def test_a_mirror_is_no_source_of_its_own():
    # A mirror is NVIDIA's repository at another URL (nvidia_repository_url): the same names.
    with pytest.raises(driver.TableError) as refused:
        names(source="mirror")
    assert "nvidia_driver_source: mirror has no NVIDIA driver packages for ubuntu2404" in str(refused.value)


def test_debian12_distribution_has_branch_535_only():
    found = names(source="distribution", distro="debian12", branch=535, modules="proprietary", version="535.*")
    assert found["pinning"] == {} and found["version_package"] == "libcuda1"
    assert found["packages"]["nvidia-kernel-dkms"] == "535.*" and found["packages"]["nvidia-persistenced"] == "*"
    with pytest.raises(driver.TableError) as refused:
        names(source="distribution", distro="debian12", branch=580)
    assert str(refused.value) == "nvidia_driver_branch: 580 is not a branch distribution has for debian12 (branches: 535)"


def test_ubuntu_distribution_server_packages_and_precompiled_modules():
    dkms = names(source="distribution", branch=580)
    assert {"nvidia-headless-580-server-open", "nvidia-dkms-580-server-open", "nvidia-utils-580-server"} <= set(dkms["packages"])
    precompiled = names(source="distribution", kernel_modules="precompiled")
    assert precompiled["packages"]["linux-modules-nvidia-580-server-open-6.8.0-45-generic"] == "*"
    assert "nvidia-headless-no-dkms-580-server-open" in precompiled["packages"]
    assert not any("dkms-" in name for name in precompiled["packages"] if "no-dkms" not in name)
    assert names(source="distribution", fabric=True)["packages"]["nvidia-fabricmanager-580"] == "580.*"


def test_precompiled_modules_only_from_ubuntu():
    with pytest.raises(driver.TableError) as refused:
        names(kernel_modules="precompiled")
    assert str(refused.value) == (
        "nvidia_driver_kernel_modules: precompiled modules come from Ubuntu's own packages only (nvidia_driver_source: "
        "distribution on Ubuntu), not from nvidia on ubuntu2404: set nvidia_driver_kernel_modules: dkms")


def test_el_streams_select_branch_and_flavour():
    found = names(distro="rhel9")
    assert found["manager"] == "dnf" and found["stream"] == "nvidia-driver:580-open" and found["pinning"] == {}
    assert {"nvidia-open", "kmod-nvidia-open-dkms", "nvidia-driver"} <= set(found["packages"])
    assert names(distro="rhel8", modules="proprietary")["stream"] == "nvidia-driver:580-dkms"
    assert "nvidia-fabricmanager" in names(distro="rhel9", fabric=True)["packages"]
    assert "nvidia-fabric-manager" in names(distro="rhel9", fabric=True, branch=570, version="570.*")["packages"]


def test_a_distribution_the_table_lacks_is_refused_naming_those_it_has():
    with pytest.raises(driver.TableError) as refused:
        names(distro="sles15")
    assert str(refused.value) == ("nvidia_driver_source: nvidia has no NVIDIA driver packages for sles15 in this role's table "
                                  "(it has debian12, rhel8, rhel9, ubuntu2204, ubuntu2404)")


@pytest.mark.parametrize("version, installed, pattern", [
    ("580.126.16", "580.159.04-1ubuntu1", "580.126.16-*"),   # asked: exact
    ("", "580.126.16-1ubuntu1", "580.126.16-*"),              # installed, of the branch: kept
    ("", "3:580.126.16-1.el9", "580.126.16-*"),
    ("", "580.126.16-1", "580.126.16-*"),
    ("", None, "580.*"),                                       # nothing: newest of the branch
    ("", "570.195.03-1", "580.*"),                             # another branch: the newest of this one
])
def test_version_pattern(version, installed, pattern):
    assert driver.version_pattern(580, version, installed) == pattern


def test_reboot_reasons():
    assert driver.reboot_reasons(None, "580.126.16-1", False) == []
    assert driver.reboot_reasons("580.126.16", "580.126.16-1ubuntu1", False) == []
    assert driver.reboot_reasons("580.126.16", "590.48.01-1", False) == [
        "nvidia_driver: the loaded kernel module is 580.126.16, the installed driver 590.48.01: reboot (or reload the "
        "modules) to run it; until then NVML reports 'Driver/library version mismatch'"]
    assert driver.reboot_reasons(None, "580.126.16-1", True) == [
        "nvidia_driver: nouveau is loaded and now blacklisted: reboot to load the NVIDIA driver in its place"]


def test_units_the_packages_enable_themselves():
    assert names(source="distribution", distro="debian12", branch=535, version="535.*")["enabled_on_install"] == [
        "nvidia-persistenced.service"]
    assert names()["enabled_on_install"] == []
