"""GPT partitions and md RAID 0 built by the storage role, on loop devices inside a Debian 12 VM."""
from __future__ import annotations

import json


def blkid(host, path):
    out = host.run(f"blkid -p -o export {path}").stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_data_disk_partitioned_formatted_and_mounted(host):
    table = host.run("sfdisk --json /dev/loop0").stdout
    assert '"label":"gpt"' in table.replace(" ", "")
    assert "0FC63DAF-8483-4772-8E79-3D69D8477DE4" in table  # one Linux filesystem partition
    assert table.count('"node"') == 1
    assert blkid(host, "/dev/loop0p1")["TYPE"] == "xfs"
    mount = host.mount_point("/data")
    assert mount.exists and mount.device == "/dev/loop0p1" and "noatime" in mount.options


def test_raid0_assembled_over_two_partitions_and_mounted(host):
    mdstat = host.file("/proc/mdstat").content_string
    line = next(line for line in mdstat.splitlines() if line.startswith("md"))
    assert "active raid0" in line and "loop1p1" in line and "loop2p1" in line
    for member in ("/dev/loop1", "/dev/loop2"):
        assert "A19D880F-05FC-4D3B-A006-743F0F84911E" in host.run(f"sfdisk --json {member}").stdout  # Linux RAID
    array = host.run("readlink -f /dev/md/fast").stdout.strip()
    assert blkid(host, array)["TYPE"] == "xfs"
    mount = host.mount_point("/fast")
    assert mount.exists and mount.device in (array, "/dev/md/fast")
    assert host.file("/fast").mode == 0o1777


def test_fstab_by_uuid_with_nofail(host):
    fstab = host.file("/etc/fstab").content_string.splitlines()
    data = blkid(host, "/dev/loop0p1")["UUID"]
    fast = blkid(host, "/dev/md/fast")["UUID"]
    assert f"UUID={data} /data xfs noatime,nofail 0 0" in fstab
    assert f"UUID={fast} /fast xfs noatime,nofail 0 0" in fstab


def test_mdadm_conf_and_initramfs_updated(host):
    detail = host.run("mdadm --detail --brief /dev/md/fast").stdout.strip()
    assert detail in host.file("/etc/mdadm/mdadm.conf").content_string.splitlines()
    # The handler rebuilt the initramfs after mdadm.conf changed, and the array is in it.
    initrd = host.run("readlink -f /initrd.img || ls /boot/initrd.img-*").stdout.split()[0]
    assert host.file(initrd).mtime >= host.file("/etc/mdadm/mdadm.conf").mtime
    assert "etc/mdadm/mdadm.conf" in host.run(f"lsinitramfs {initrd}").stdout


def test_a_remount_from_fstab_brings_both_back(host):
    with host.sudo():
        assert host.run("umount /data /fast && mount --all").rc == 0
    assert host.mount_point("/data").exists and host.mount_point("/fast").exists


def test_kernel_cmdline_through_the_real_grub(host):
    """The VM has GRUB's update-grub and a kernel of its own: dlnode.gpu.kernel_cmdline for real."""
    dropin = "/etc/default/grub.d/90-dlnode-vmtest.cfg"

    def cmdline(*args, check=False):
        module_args = json.dumps({"name": "vmtest", "args": list(args), "grub_dropin": dropin})
        return host.ansible("dlnode.gpu.kernel_cmdline", module_args, check=check, become=True)

    def linux_lines():
        """The normal entries; recovery entries (`single`) get GRUB_CMDLINE_LINUX only."""
        return [line for line in host.file("/boot/grub/grub.cfg").content_string.splitlines()
                if line.split()[:1] == ["linux"] and "single" not in line.split()]

    predicted = cmdline("iommu=pt", "nvidia-drm.modeset=1", check=True)
    assert predicted["changed"] and predicted["bootloader"] == "grub" and predicted["reboot_required"], predicted
    assert predicted["plan"] == [f"{dropin}: append iommu=pt nvidia-drm.modeset=1",
                                 "update-grub: regenerate /boot/grub/grub.cfg"]
    assert not host.file(dropin).exists

    done = cmdline("iommu=pt", "nvidia-drm.modeset=1")
    assert done["changed"] and done["added"] == ["iommu=pt", "nvidia-drm.modeset=1"], done
    assert linux_lines() and all("iommu=pt nvidia-drm.modeset=1" in line for line in linux_lines())
    assert done["reboot_reasons"] == ["vmtest: kernel command line lacks iommu=pt nvidia-drm.modeset=1"]
    assert not cmdline("iommu=pt", "nvidia-drm.modeset=1")["changed"]

    dropped = cmdline("iommu=pt")
    assert dropped["changed"] and dropped["removed"] == ["nvidia-drm.modeset=1"], dropped
    assert all("iommu=pt" in line and "nvidia-drm" not in line for line in linux_lines())
    gone = cmdline()
    assert gone["changed"] and not host.file(dropin).exists, gone
    assert linux_lines() and not any("iommu=pt" in line for line in linux_lines())


def test_nouveau_is_blacklisted_in_the_initramfs_and_on_the_kernel_command_line(host):
    """The VM's kernel has nouveau: the nvidia_driver role blacklisted it where the next boot reads it."""
    release = host.check_output("uname -r")
    assert host.file(f"/lib/modules/{release}/kernel/drivers/gpu/drm/nouveau/nouveau.ko").exists \
        or host.run(f"ls /lib/modules/{release}/kernel/drivers/gpu/drm/nouveau/nouveau.ko*").rc == 0
    blacklist = "/etc/modprobe.d/dlnode-blacklist-nouveau.conf"
    assert "blacklist nouveau" in host.file(blacklist).content_string
    # The handler rebuilt the initramfs: initramfs-tools copies /etc/modprobe.d into it.
    assert blacklist.lstrip("/") in host.check_output(f"lsinitramfs /boot/initrd.img-{release}").splitlines()
    dropin = host.file("/etc/default/grub.d/91-dlnode-nvidia-driver.cfg").content_string
    assert "modprobe.blacklist=nouveau" in dropin
    # GRUB_CMDLINE_LINUX_DEFAULT: every entry but the recovery ones (" single").
    entries = [line for line in host.file("/boot/grub/grub.cfg").content_string.splitlines()
               if line.strip().startswith("linux") and " single" not in line]
    assert entries and all("modprobe.blacklist=nouveau" in line for line in entries)


def test_the_driver_doubles_are_locked_from_the_file_uri(host):
    assert "URIs: file:///srv/dlnode-repo/cuda/debian12/x86_64/" in host.file("/etc/apt/sources.list.d/nvidia-cuda.sources").content_string
    assert host.check_output("dpkg-query -W -f '${db:Status-Abbrev}${Version}' nvidia-open") == "hi 580.126.16-1"
