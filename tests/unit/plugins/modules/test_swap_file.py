from __future__ import annotations

import os
import subprocess

import pytest
from ansible.module_utils import basic

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.modules import swap_file

FRESH = dict(exists=False, size_mib=0, mode=None, active=False, in_fstab=False)
DONE = dict(exists=True, size_mib=64, mode="0600", active=True, in_fstab=True)


@pytest.mark.parametrize("now, state, actions", [
    (FRESH, "present", ["write", "mkswap", "fstab", "swapon"]),
    (DONE, "present", []),
    (dict(DONE, size_mib=32), "present", ["swapoff", "write", "mkswap", "swapon"]),
    (dict(DONE, active=False), "present", ["swapon"]),
    (dict(DONE, mode="0644"), "present", ["chmod"]),
    (dict(DONE, in_fstab=False), "present", ["fstab"]),
    (DONE, "absent", ["swapoff", "fstab", "remove"]),
    (FRESH, "absent", []),
])
def test_plan(now, state, actions):
    assert swap_file.plan(now, state, 64) == actions


@pytest.fixture
def fake_system(tmp_path, monkeypatch):
    swaps = tmp_path / "swaps"
    swaps.write_text("Filename\tType\tSize\tUsed\tPriority\n")
    monkeypatch.setattr(swap_file, "active_swaps", lambda: [line.split()[0] for line in swaps.read_text().splitlines()[1:]])
    commands = []

    def run_command(self, argv, **_kwargs):
        commands.append([argv[0].rsplit("/", 1)[-1], *argv[1:]])
        name = commands[-1][0]
        if name == "swapon":
            swaps.write_text(swaps.read_text() + f"{argv[1]}\tfile\t65532\t0\t-2\n")
        if name == "swapoff":
            swaps.write_text("Filename\tType\tSize\tUsed\tPriority\n")
        return 0, "", ""

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False: f"/sbin/{name}")
    return tmp_path, commands


def test_create_then_idempotent_then_remove(fake_system, run_module):
    root, commands = fake_system
    args = dict(path=str(root / "swapfile"), size_mib=2, fstab=str(root / "fstab"))
    result, failed = run_module(swap_file, args)
    assert not failed and result["actions"] == ["write", "mkswap", "fstab", "swapon"]
    assert (root / "swapfile").stat().st_size == 2 * 1024 * 1024
    assert oct((root / "swapfile").stat().st_mode & 0o777) == "0o600"
    assert f"{root}/swapfile none swap sw 0 0" in (root / "fstab").read_text()
    assert [c[0] for c in commands] == ["mkswap", "swapon"]
    again = run_module(swap_file, args)[0]
    assert not again["changed"]
    gone = run_module(swap_file, dict(args, state="absent"))[0]
    assert gone["actions"] == ["swapoff", "fstab", "remove"]
    assert not (root / "swapfile").exists() and "swapfile" not in (root / "fstab").read_text()


def test_check_mode_predicts_and_touches_nothing(fake_system, run_module):
    root, commands = fake_system
    args = dict(path=str(root / "swapfile"), size_mib=2, fstab=str(root / "fstab"))
    result = run_module(swap_file, args, check_mode=True, diff=True)[0]
    assert result["changed"] and result["after"]["active"] and result["diff"]["before"]["exists"] is False
    assert not (root / "swapfile").exists() and not (root / "fstab").exists() and not commands


def test_bad_input(fake_system, run_module):
    root = fake_system[0]
    result, failed = run_module(swap_file, dict(path=str(root / "swapfile"), size_mib=0))
    assert failed and result["msg"] == "size_mib must be a positive number of MiB, got 0"
    result, failed = run_module(swap_file, dict(path=str(root)))
    assert failed and result["msg"] == "state is present but all of the following are missing: size_mib"
    result, failed = run_module(swap_file, dict(path=str(root), size_mib=1))
    assert failed and result["msg"] == f"path {root} exists and is not a regular file; refusing to touch it"


@pytest.fixture
def small_fs(fake_system):
    """A real 4 MiB tmpfs under the fake system's directory: a file system that fills up."""
    root = fake_system[0] / "small"
    root.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(root)],
                                           capture_output=True, check=False).returncode != 0:
        pytest.skip("needs root and mount to make a small tmpfs")
    yield root
    subprocess.run(["umount", str(root)], check=False)


@pytest.mark.parametrize("check_mode", [False, True])
def test_too_large_is_refused_before_anything_is_written(small_fs, fake_system, run_module, check_mode):
    fstab = fake_system[0] / "fstab"
    fstab.write_text("UUID=abc / ext4 defaults 0 1\n")
    args = dict(path=str(small_fs / "swapfile"), size_mib=8, fstab=str(fstab))
    result, failed = run_module(swap_file, args, check_mode=check_mode)
    assert failed
    assert result["msg"] == (f"size_mib: 8 MiB requested for {small_fs}/swapfile, but its file system has only "
                             "4 MiB available; nothing was written")
    assert os.listdir(small_fs) == [] and fstab.read_text() == "UUID=abc / ext4 defaults 0 1\n"
    assert not fake_system[1]


def test_a_write_that_still_fails_leaves_nothing_partial(small_fs, fake_system, run_module, monkeypatch):
    """The file system fills up during the write anyway (another writer, metadata): no partial file, fstab untouched."""
    fstab = fake_system[0] / "fstab"
    fstab.write_text("UUID=abc / ext4 defaults 0 1\n")
    monkeypatch.setattr(files, "available_mib", lambda path, root=None: 1024)
    result, failed = run_module(swap_file, dict(path=str(small_fs / "swapfile"), size_mib=8, fstab=str(fstab)))
    assert failed and result["msg"] == f"cannot write 8 MiB to {small_fs}/swapfile: no space left on its file system"
    assert os.listdir(small_fs) == [] and fstab.read_text() == "UUID=abc / ext4 defaults 0 1\n"
    assert not fake_system[1]


def test_a_resize_that_does_not_fit_keeps_the_old_file(small_fs, fake_system, run_module):
    fstab = fake_system[0] / "fstab"
    args = dict(path=str(small_fs / "swapfile"), size_mib=2, fstab=str(fstab))
    assert not run_module(swap_file, args)[1]
    result, failed = run_module(swap_file, dict(args, size_mib=3))
    assert failed and result["msg"].startswith(f"size_mib: 3 MiB requested for {small_fs}/swapfile, but its file system has only 2 MiB")
    assert os.listdir(small_fs) == ["swapfile"] and (small_fs / "swapfile").stat().st_size == 2 * 1024 * 1024


@pytest.mark.parametrize("option", ["path", "fstab"])
def test_relative_paths_are_refused(fake_system, run_module, option):
    args = dict(path=str(fake_system[0] / "swapfile"), size_mib=2, fstab=str(fake_system[0] / "fstab"))
    args[option] = "relative.swap"
    result, failed = run_module(swap_file, args)
    assert failed and result["msg"] == f"{option} must be an absolute path, got relative.swap"
    assert not (fake_system[0] / "swapfile").exists() and not fake_system[1]


def test_check_mode_on_a_directory_not_made_yet_warns_and_predicts(fake_system, run_module, warnings):
    """A swap file on a volume that an earlier task of the same run mounts (the storage role)."""
    root = fake_system[0]
    args = dict(path=str(root / "data/swapfile"), size_mib=2, fstab=str(root / "fstab"))
    result, failed = run_module(swap_file, args, check_mode=True)
    assert not failed and result["actions"] == ["write", "mkswap", "fstab", "swapon"]
    assert warnings == [f"path: {root}/data does not exist yet (a volume an earlier task mounts?): the free space "
                        "for 2 MiB is checked when the real run writes the file"]
    result, failed = run_module(swap_file, args)
    assert failed and result["msg"] == f"path: cannot create {root}/data/swapfile: the directory {root}/data does not exist"
