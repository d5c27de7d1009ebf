"""What the storage role leaves on a node, and what it refuses, on real loop devices.

The refusal, wipe and check-mode cases run the role again through ansible-playbook against
the same node, with other volumes declared, after the converge and idempotence runs.
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile

import pytest
import yaml

DISKS = "/var/tmp/dlnode-molecule/storage/disks.json"


@pytest.fixture(scope="module")
def disks(host):
    with host.sudo():
        return json.loads(host.file(DISKS).content_string)


def dev(disks, role):
    return f"/dev/{disks['devices'][role]}"


def blkid(host, path):
    out = host.run(f"blkid -p -o export {path}").stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def apply_role(variables, check=False):
    """Run dlnode.gpu.storage on the node with these variables; return (failed, task result)."""
    play = [{"name": "storage", "hosts": "all", "gather_facts": False,
             "tasks": [{"name": "Apply storage", "ansible.builtin.include_role": {"name": "dlnode.gpu.storage"}}]}]
    with tempfile.TemporaryDirectory() as tmp:
        playbook, extra = os.path.join(tmp, "play.yml"), os.path.join(tmp, "vars.json")
        with open(playbook, "w", encoding="utf-8") as handle:
            yaml.safe_dump(play, handle)
        with open(extra, "w", encoding="utf-8") as handle:
            # Only the volumes given here: not the scenario's binds and swap file.
            json.dump(dict({"storage_binds": [], "storage_swap_file_path": ""}, **variables), handle)
        env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_PIPELINING="True")
        argv = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], playbook, "-e", f"@{extra}"]
        proc = subprocess.run(argv + (["--check"] if check else []), env=env, capture_output=True, text=True, check=False)
    report = json.loads(proc.stdout)
    results = [host_result for play in report["plays"] for task in play["tasks"]
               for host_result in task["hosts"].values() if "plan" in host_result or host_result.get("failed")]
    assert results, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.returncode != 0, results[-1]


def test_data_volume_formatted_and_mounted(host, disks):
    # Declared by /dev/disk/by-id/dlnode-test-data, a link to the loop device.
    mount = host.mount_point("/data")
    assert mount.exists and mount.filesystem == "xfs" and mount.device == dev(disks, "data")
    assert "noatime" in mount.options
    assert blkid(host, dev(disks, "data"))["LABEL"] == "data"


def test_scratch_volume_is_ext4_with_its_options(host, disks):
    mount = host.mount_point("/scratch")
    assert mount.exists and mount.filesystem == "ext4" and mount.device == dev(disks, "scratch")
    assert {"noatime", "nodiratime"} <= set(mount.options)
    # -m 0: no blocks reserved for root on a data disk.
    assert "Reserved block count:     0" in host.run(f"tune2fs -l {dev(disks, 'scratch')}").stdout


def test_fstab_entries_by_uuid_with_nofail(host, disks):
    fstab = host.file("/etc/fstab").content_string.splitlines()
    data, scratch, swap = (blkid(host, dev(disks, r))["UUID"] for r in ("data", "scratch", "swap"))
    assert f"UUID={data} /data xfs noatime,nofail 0 0" in fstab
    assert f"UUID={scratch} /scratch ext4 noatime,nodiratime,nofail 0 2" in fstab
    assert f"UUID={swap} none swap defaults,nofail 0 0" in fstab
    assert "/data/cache /var/cache/datasets none bind,nofail,x-systemd.requires-mounts-for=/data 0 0" in fstab


def test_fstab_mounts_what_is_mounted(host):
    # `mount --fake --all --verbose` resolves every fstab line and reports what it would mount:
    # nothing, when the run left fstab and the mounts in agreement.
    out = host.run("mount --fake --all --verbose").stdout
    for target in ("/data", "/scratch", "/var/cache/datasets"):
        assert f"{target}" in out and "already mounted" in out.split(f"{target}", 1)[1].splitlines()[0]


def test_root_directory_owner_and_mode(host):
    root = host.file("/data")
    assert root.user == "dlprobe" and root.mode == 0o775


def test_bind_mount_and_its_source(host):
    assert host.run("findmnt -n -o SOURCE /var/cache/datasets").stdout.strip().endswith("[/cache]")
    assert host.file("/data/cache").mode == 0o1777
    host.run("touch /var/cache/datasets/probe")
    assert host.file("/data/cache/probe").exists


def test_swap_partition_and_swap_file_active(host, disks):
    swaps = host.file("/proc/swaps").content_string
    assert dev(disks, "swap") in swaps
    assert "/data/swapfile" in swaps


def test_device_with_a_filesystem_is_refused_and_its_data_kept(host, disks):
    foreign = dev(disks, "foreign")
    failed, result = apply_role({"storage_volumes": [
        {"name": "foreign", "devices": [foreign], "partition": False, "mount": "/foreign"}]})
    assert failed
    assert result["msg"].startswith(f"volume 'foreign': {foreign} holds an ext4 filesystem (label 'foreign', UUID ")
    assert f"the device was left untouched. To erase it, list it in the volume's wipe: [{foreign}]" in result["msg"]
    assert blkid(host, foreign)["TYPE"] == "ext4"
    # The file on it, read without mounting: the same bytes as when the disk was made.
    data = host.run(f"debugfs -R 'cat /dataset.bin' {foreign} 2>/dev/null | sha256sum").stdout.split()[0]
    assert data == disks["payload_sha256"]
    assert not host.file("/foreign").exists


def test_device_with_a_filesystem_and_the_wipe_flag_is_reformatted(host, disks):
    target = dev(disks, "wipe")
    assert blkid(host, target)["TYPE"] == "ext4"
    failed, result = apply_role({"storage_volumes": [
        {"name": "wiped", "devices": [target], "partition": False, "mount": "/wiped", "wipe": [target]}]})
    assert not failed, result
    assert result["plan"][0].startswith(f"{target}: erase an ext4 filesystem (label 'wipe', UUID ")
    assert blkid(host, target)["TYPE"] == "xfs"
    assert host.mount_point("/wiped").exists


def test_check_mode_on_a_fresh_device_plans_and_leaves_it_blank(host, disks):
    blank = dev(disks, "blank")
    fstab = host.file("/etc/fstab").content_string
    failed, result = apply_role({"storage_volumes": [{"name": "fresh", "devices": [blank], "mount": "/fresh"}]}, check=True)
    assert not failed, result
    assert result["plan"] == [
        f"{blank}: create a GPT partition table with one partition (fs) spanning the device",
        f"{blank}p1: make an xfs filesystem labelled 'fresh'",
        "/etc/fstab: write the entries of fresh",
        f"/fresh: mount {blank}p1 (noatime)",
    ]
    assert f"UUID=<new:{blank}p1> /fresh xfs noatime,nofail 0 0" in result["diff"]["after"]
    assert host.run(f"wipefs --no-act {blank}").stdout == ""
    assert host.file("/etc/fstab").content_string == fstab
    assert not host.file("/fresh").exists


@pytest.mark.parametrize("volume, message", [
    ({"name": "x", "devices": ["/dev/nope"], "mount": "/x"}, "device /dev/nope does not exist"),
    ({"name": "x", "devices": ["/dev/loop-a", "/dev/loop-b"], "raid_level": 10, "mount": "/x"},
     "volumes[0] (x).raid_level 10 needs at least 4 devices, got 2"),
    # Refused by the role's first task, before the module runs.
    ({"name": "x", "devices": ["/dev/nope"], "mount": "x"},
     "storage_volumes[0].mount: got 'x'; allowed: an absolute path other than /"),
    ({"name": "x", "devices": ["/dev/nope"], "fstype": "btrfs", "mount": "/x"}, "fstype"),
])
def test_bad_input_gets_a_clear_message(volume, message):
    failed, result = apply_role({"storage_volumes": [volume]})
    assert failed and message in result["msg"], result["msg"]
