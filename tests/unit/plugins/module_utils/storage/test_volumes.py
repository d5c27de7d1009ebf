"""Storage declaration checks and the planner's safety rules, on described disks (no devices)."""
from __future__ import annotations

import pytest

from ansible_collections.dlnode.gpu.plugins.module_utils.storage import volumes as storage
from ansible_collections.dlnode.gpu.plugins.module_utils.storage.volumes import StorageError

DEVICES = {"/dev/nvme1n1", "/dev/nvme2n1", "/dev/nvme3n1", "/dev/nvme4n1", "/dev/sdb"}
LINKS = {"/dev/disk/by-id/nvme-A": "/dev/nvme1n1"}
XFS = dict(type="xfs", uuid="1111-xfs", label="data", offset="0x0")
EXT4 = dict(type="ext4", uuid="2222-ext4", label="old", offset="0x438")
GPT = [dict(type="PMBR", uuid=None, label=None, offset="0x1fe"), dict(type="gpt", uuid=None, label=None, offset="0x200")]


def resolve(path):
    real = LINKS.get(path, path)
    if real not in DEVICES:
        raise StorageError(f"device {path} does not exist")
    return real


def check(volumes, binds=()):
    return storage.validate(volumes, list(binds), resolve, lambda n: n in ("root", "dl"), lambda n: n == "root")


def vol(**kw):
    base = dict(name="data", devices=["/dev/nvme1n1"], mount="/data")
    base.update(kw)
    return check([base])[0][0]


def block(path, signatures=(), partitions=(), **kw):
    return dict(dict(path=path, name=path[5:], devno="259:1", signatures=list(signatures), mounts=[], swap=False,
                     holders=[], is_partition=False, partitions=list(partitions)), **kw)


def actions(steps):
    return [(s.action, s.target) for s in steps]


# ---------------------------------------------------------------- bad input: one clear message each


@pytest.mark.parametrize("volume, message", [
    (dict(fstype="btrfs"), "volumes[0] (data).fstype must be one of xfs, ext4, swap, got 'btrfs'"),
    (dict(mount="data"), "volumes[0] (data).mount must be a normalized absolute path other than /, got 'data'"),
    (dict(mount="/data/../x"), "must be a normalized absolute path"),
    (dict(mount=None), "volumes[0] (data).mount is required for an xfs volume"),
    (dict(devices=["/dev/nvme1n1", "/dev/nvme2n1"], raid_level=10),
     "volumes[0] (data).raid_level 10 needs at least 4 devices, got 2"),
    (dict(devices=["/dev/nvme1n1"], raid_level=0), "raid_level 0 needs at least 2 devices, got 1"),
    (dict(devices=["/dev/nvme1n1", "/dev/nvme2n1"]), "lists 2 devices but no raid_level is set"),
    (dict(raid_level=5, devices=["/dev/nvme1n1", "/dev/nvme2n1", "/dev/nvme3n1"]), "raid_level must be one of 0, 1, 10, got 5"),
    (dict(devices=["/dev/disk/by-id/nvme-missing"]), "device /dev/disk/by-id/nvme-missing does not exist"),
    (dict(devices=["/dev/nvme1n1", "/dev/disk/by-id/nvme-A"], raid_level=1),
     "device /dev/disk/by-id/nvme-A (/dev/nvme1n1) is declared twice: in volume 'data' and in volume 'data'"),
    (dict(devices=[]), "volumes[0] (data).devices must list at least one device"),
    (dict(name="my data"), "volumes[0] (my data).name must be 1-32 letters"),
    (dict(label="much-too-long-label"), "label 'much-too-long-label' is longer than xfs allows (12 characters)"),
    (dict(wipe=["/dev/sdb"]), "volumes[0] (data).wipe: /dev/sdb is not one of the volume's devices (/dev/nvme1n1)"),
    (dict(mode="rwx"), "volumes[0] (data).mode must be an octal string such as '0755', got 'rwx'"),
    (dict(owner="nobody-here"), "volumes[0] (data).owner: no user named 'nobody-here' on this node"),
    (dict(group="dl"), "volumes[0] (data).group: no group named 'dl' on this node"),
    (dict(fstype="swap"), "volumes[0] (data).mount must not be set for a swap volume"),
])
def test_bad_volume_is_refused_with_a_message_naming_it(volume, message):
    base = dict(name="data", devices=["/dev/nvme1n1"], mount="/data")
    base.update(volume)
    with pytest.raises(StorageError) as err:
        check([base])
    assert message in str(err.value)


def test_the_same_device_in_two_volumes_is_refused():
    with pytest.raises(StorageError) as err:
        check([dict(name="data", devices=["/dev/disk/by-id/nvme-A"], mount="/data"),
               dict(name="scratch", devices=["/dev/nvme1n1"], mount="/scratch")])
    assert str(err.value) == "device /dev/nvme1n1 (/dev/nvme1n1) is declared twice: in volume 'data' and in volume 'scratch'"


def test_the_same_mount_point_in_two_volumes_is_refused():
    with pytest.raises(StorageError) as err:
        check([dict(name="data", devices=["/dev/nvme1n1"], mount="/data"),
               dict(name="more", devices=["/dev/nvme2n1"], mount="/data")])
    assert "volumes[1] (more).mount /data is also the mount point of volume 'data'" in str(err.value)


@pytest.mark.parametrize("bind, message", [
    (dict(source="data/docker", path="/var/lib/docker"), "binds[0].source must be a normalized absolute path"),
    (dict(source="/data/docker", path="/data"), "binds[0].path /data is the mount point of volume 'data'"),
])
def test_bad_bind_is_refused(bind, message):
    with pytest.raises(StorageError) as err:
        check([dict(name="data", devices=["/dev/nvme1n1"], mount="/data")], [bind])
    assert message in str(err.value)


def test_declaration_is_normalized():
    volumes, binds = check([dict(name="data", devices=["/dev/disk/by-id/nvme-A"], mount="/data", mode="775",
                                 fstype="ext4", mount_options=["noatime", "nofail"])],
                           [dict(source="/data/docker", path="/var/lib/docker")])
    assert volumes[0]["devices"] == ["/dev/nvme1n1"]
    assert volumes[0]["mode"] == "0775"
    assert volumes[0]["mkfs_options"] == ["-T", "largefile", "-m", "0"]
    assert volumes[0]["mount_options"] == ["noatime"]
    assert volumes[0]["label"] == "data"
    assert binds[0]["requires"] == "/data"


# ---------------------------------------------------------------- planning


def test_blank_device_is_partitioned_formatted_and_mounted():
    steps, target = storage.plan_volume(vol(), {"/dev/nvme1n1": block("/dev/nvme1n1")}, {}, [])
    assert actions(steps) == [("partition", "/dev/nvme1n1"), ("mkfs", "/dev/nvme1n1p1"), ("mount", "/data")]
    assert steps[0].data["part_type"] == storage.PART_TYPES["fs"]
    assert target["path"] == "/dev/nvme1n1p1" and target["mkfs"]


def test_partition_names_follow_the_kernel():
    assert storage.partition_path("/dev/sdb") == "/dev/sdb1"
    assert storage.partition_path("/dev/nvme0n1") == "/dev/nvme0n1p1"
    assert storage.partition_path("/dev/loop3") == "/dev/loop3p1"


def test_matching_setup_is_adopted_as_is():
    part = block("/dev/nvme1n1p1", [XFS], devno="259:2", mounts=["/data"])
    blocks = {"/dev/nvme1n1": block("/dev/nvme1n1", GPT, [part])}
    mounts = [dict(devno="259:2", root="/", target="/data", source="/dev/nvme1n1p1", fstype="xfs", options=[])]
    steps, target = storage.plan_volume(vol(), blocks, {}, mounts)
    assert steps == []
    assert target["uuid"] == "1111-xfs" and not target["mkfs"]


def test_blank_partition_left_by_an_interrupted_run_is_formatted():
    blocks = {"/dev/nvme1n1": block("/dev/nvme1n1", GPT, [block("/dev/nvme1n1p1")])}
    steps, _target = storage.plan_volume(vol(), blocks, {}, [])
    assert actions(steps) == [("mkfs", "/dev/nvme1n1p1"), ("mount", "/data")]


@pytest.mark.parametrize("volume, device, found", [
    (dict(partition=False), block("/dev/nvme1n1", [EXT4]), "an ext4 filesystem (label 'old', UUID 2222-ext4)"),
    (dict(), block("/dev/nvme1n1", [EXT4]), "an ext4 filesystem (label 'old', UUID 2222-ext4)"),
    (dict(), block("/dev/nvme1n1", GPT, [block("/dev/nvme1n1p1"), block("/dev/nvme1n1p2")]),
     "a gpt partition table with 2 partitions"),
    (dict(), block("/dev/nvme1n1", GPT, [block("/dev/nvme1n1p1", [EXT4])]), "an ext4 filesystem (label 'old', UUID 2222-ext4) on /dev/nvme1n1p1"),
    (dict(partition=False), block("/dev/nvme1n1", GPT, [block("/dev/nvme1n1p1", [XFS])]), "a gpt partition table with 1 partition"),
    (dict(), block("/dev/nvme1n1", [dict(type="linux_raid_member", uuid="aa:bb", label="h:md0")]),
     "a RAID member signature (array UUID aa:bb, name h:md0)"),
])
def test_foreign_content_is_refused_naming_device_and_content(volume, device, found):
    with pytest.raises(StorageError) as err:
        storage.plan_volume(vol(**volume), {"/dev/nvme1n1": device}, {}, [])
    message = str(err.value)
    assert message.startswith(f"volume 'data': /dev/nvme1n1 holds {found}, which does not match the declaration")
    assert "left untouched" in message and "wipe: [/dev/nvme1n1]" in message


def test_foreign_content_with_the_wipe_flag_is_erased_then_rebuilt():
    steps, _target = storage.plan_volume(vol(wipe=["/dev/nvme1n1"]), {"/dev/nvme1n1": block("/dev/nvme1n1", [EXT4])}, {}, [])
    assert actions(steps) == [("wipe", "/dev/nvme1n1"), ("partition", "/dev/nvme1n1"), ("mkfs", "/dev/nvme1n1p1"),
                              ("mount", "/data")]


def test_matching_content_is_never_wiped_even_with_the_flag():
    steps, _target = storage.plan_volume(vol(partition=False, wipe=["/dev/nvme1n1"]),
                                         {"/dev/nvme1n1": block("/dev/nvme1n1", [XFS])}, {}, [])
    assert actions(steps) == [("mount", "/data")]


@pytest.mark.parametrize("device, reason", [
    (block("/dev/nvme1n1", [EXT4], mounts=["/srv"]), "/dev/nvme1n1 is mounted at /srv"),
    (block("/dev/nvme1n1", GPT, [block("/dev/nvme1n1p1", [EXT4], mounts=["/old"])]), "/dev/nvme1n1p1 is mounted at /old"),
    (block("/dev/nvme1n1", [dict(type="swap", uuid="s", label=None, offset="0x0")], swap=True), "is an active swap area"),
    (block("/dev/nvme1n1", [dict(type="linux_raid_member", uuid="u", label="x")], holders=["md127"]), "is held by /dev/md127"),
])
def test_a_device_in_use_is_never_wiped(device, reason):
    with pytest.raises(StorageError) as err:
        storage.plan_volume(vol(wipe=["/dev/nvme1n1"]), {"/dev/nvme1n1": device}, {}, [])
    assert reason in str(err.value) and "a device in use is never wiped" in str(err.value)


def test_a_partition_declared_for_partitioning_is_refused():
    with pytest.raises(StorageError) as err:
        storage.plan_volume(vol(), {"/dev/nvme1n1": block("/dev/nvme1n1", is_partition=True)}, {}, [])
    assert "is a partition; set partition: false" in str(err.value)


def test_another_device_on_the_mount_point_is_refused():
    mounts = [dict(devno="8:1", root="/", target="/data", source="/dev/sda1", fstype="ext4", options=[])]
    with pytest.raises(StorageError) as err:
        storage.plan_volume(vol(), {"/dev/nvme1n1": block("/dev/nvme1n1")}, {}, mounts)
    assert "/data already has /dev/sda1 mounted on it" in str(err.value)


def test_own_filesystem_mounted_elsewhere_is_refused():
    mounts = [dict(devno="259:1", root="/", target="/mnt", source="/dev/nvme1n1", fstype="xfs", options=[])]
    with pytest.raises(StorageError) as err:
        storage.plan_volume(vol(partition=False), {"/dev/nvme1n1": block("/dev/nvme1n1", [XFS], mounts=["/mnt"])}, {}, mounts)
    assert "/dev/nvme1n1 is mounted at /mnt, the volume declares /data" in str(err.value)


RAID = dict(devices=["/dev/nvme1n1", "/dev/nvme2n1"], raid_level=0)


def test_raid_over_blank_devices_is_created_then_formatted():
    blocks = {d: block(d) for d in RAID["devices"]}
    steps, target = storage.plan_volume(vol(**RAID), blocks, {}, [])
    assert actions(steps) == [("partition", "/dev/nvme1n1"), ("partition", "/dev/nvme2n1"), ("raid_create", "/dev/md/data"),
                              ("mkfs", "/dev/md/data"), ("mount", "/data")]
    assert steps[0].data["part_type"] == storage.PART_TYPES["raid"]
    assert steps[2].data["members"] == ["/dev/nvme1n1p1", "/dev/nvme2n1p1"]
    assert target["path"] == "/dev/md/data"


def member(path, uuid="aa:bb", holders=("md127",)):
    return block(path, [dict(type="linux_raid_member", uuid=uuid, label="node:data")], holders=list(holders))


def test_assembled_array_with_the_filesystem_is_adopted():
    blocks = {d: member(d) for d in RAID["devices"]}
    arrays = {"aa:bb": block("/dev/md127", [XFS], devno="9:127", mounts=["/data"], level="raid0")}
    mounts = [dict(devno="9:127", root="/", target="/data", source="/dev/md127", fstype="xfs", options=[])]
    steps, target = storage.plan_volume(vol(partition=False, **RAID), blocks, arrays, mounts)
    assert steps == [] and target["path"] == "/dev/md127" and target["uuid"] == "1111-xfs"


def test_array_that_is_not_assembled_is_assembled():
    blocks = {d: member(d, holders=()) for d in RAID["devices"]}
    steps, _target = storage.plan_volume(vol(partition=False, **RAID), blocks, {}, [])
    assert actions(steps) == [("raid_assemble", "/dev/md/data"), ("mount", "/data")]


def test_array_of_another_level_is_refused():
    blocks = {d: member(d) for d in RAID["devices"]}
    arrays = {"aa:bb": block("/dev/md127", [XFS], level="raid1")}
    with pytest.raises(StorageError) as err:
        storage.plan_volume(vol(partition=False, **RAID), blocks, arrays, [])
    assert "array /dev/md127 (aa:bb) is raid1, the volume declares raid_level 0" in str(err.value)


def test_members_of_different_arrays_are_refused():
    blocks = {"/dev/nvme1n1": member("/dev/nvme1n1", "aa:bb"), "/dev/nvme2n1": member("/dev/nvme2n1", "cc:dd")}
    with pytest.raises(StorageError) as err:
        storage.plan_volume(vol(partition=False, **RAID), blocks, {}, [])
    assert "its devices do not form one array" in str(err.value)


def test_half_blank_array_is_refused():
    blocks = {"/dev/nvme1n1": member("/dev/nvme1n1"), "/dev/nvme2n1": block("/dev/nvme2n1")}
    with pytest.raises(StorageError) as err:
        storage.plan_volume(vol(partition=False, **RAID), blocks, {}, [])
    assert "/dev/nvme2n1: nothing (blank)" in str(err.value)


def test_swap_partition_is_made_without_a_mount():
    steps, _target = storage.plan_volume(vol(fstype="swap", mount=None), {"/dev/nvme1n1": block("/dev/nvme1n1")}, {}, [])
    assert actions(steps) == [("partition", "/dev/nvme1n1"), ("mkfs", "/dev/nvme1n1p1")]
    assert steps[0].data["part_type"] == storage.PART_TYPES["swap"]


# ---------------------------------------------------------------- files


def test_fstab_entries_by_uuid_with_nofail():
    assert storage.fstab_entry(vol(), "u1") == "UUID=u1 /data xfs noatime,nofail 0 0"
    assert storage.fstab_entry(vol(fstype="ext4"), "u2") == "UUID=u2 /data ext4 noatime,nofail 0 2"
    assert storage.fstab_entry(vol(fstype="swap", mount=None), "u3") == "UUID=u3 none swap defaults,nofail 0 0"


def test_fstab_replaces_our_lines_in_place_and_keeps_the_rest():
    before = "# static\nUUID=root / ext4 defaults 0 1\n/dev/old /data ext4 defaults 0 2\nUUID=s none swap sw 0 0\n"
    after = storage.render_fstab(before, ["UUID=u1 /data xfs noatime,nofail 0 0", "UUID=s none swap defaults,nofail 0 0",
                                          "/data/c /var/cache/ds none bind,nofail 0 0"])
    assert after == ("# static\nUUID=root / ext4 defaults 0 1\nUUID=u1 /data xfs noatime,nofail 0 0\n"
                     "UUID=s none swap defaults,nofail 0 0\n/data/c /var/cache/ds none bind,nofail 0 0\n")
    assert storage.render_fstab(after, ["UUID=u1 /data xfs noatime,nofail 0 0"]) == after


def test_mdadm_conf_one_line_per_array():
    before = "HOMEHOST <system>\nARRAY /dev/md/old metadata=1.2 UUID=aa name=h:old\n"
    line = "ARRAY /dev/md/data metadata=1.2 UUID=bb name=h:data"
    after = storage.render_mdadm_conf(before, [line])
    assert after == before + line + "\n"
    assert storage.render_mdadm_conf(after, [line]) == after


def test_parsers():
    assert storage.parse_wipefs("") == []
    text = '{"signatures": [{"device":"loop3","offset":"0x438","type":"ext4","uuid":"u","label":"x"}]}'
    assert storage.parse_wipefs(text) == [dict(type="ext4", uuid="u", label="x", offset="0x438")]
    line = "36 25 259:2 / /mnt/my\\040data rw,noatime shared:1 - xfs /dev/loop3p1 rw,attr2"
    assert storage.parse_mountinfo(line) == [dict(devno="259:2", root="/", target="/mnt/my data", options=["rw", "noatime"],
                                                  fstype="xfs", source="/dev/loop3p1")]
