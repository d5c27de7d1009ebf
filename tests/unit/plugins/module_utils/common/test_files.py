"""module_utils.common.files: managed files and large files on a fake tree."""
from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.tests.unit.fake_sysfs import FakeTree


@pytest.fixture
def tree(tmp_path):
    return FakeTree(tmp_path)


def test_read_error_is_translated(tree):
    tree.path("/sys/dir").mkdir(parents=True)
    with pytest.raises(files.FileError, match=r"^cannot read /sys/dir: Is a directory$"):
        files.read("/sys/dir", root=str(tree.root))


class FakeModule:
    def __init__(self):
        self.moves = []

    def atomic_move(self, src, dest):
        self.moves.append(dest)
        os.rename(src, dest)


def test_install_file(tree):
    module = FakeModule()
    files.write(module, files.plan("/etc/x/y.conf", "a\n", root=str(tree.root)), root=str(tree.root))
    target = tree.path("/etc/x/y.conf")
    assert target.read_text() == "a\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert module.moves == [str(target)]
    assert files.read("/etc/x/y.conf", root=str(tree.root)) == "a\n"
    assert files.read("/etc/x/none.conf", root=str(tree.root)) is None
    assert os.listdir(target.parent) == ["y.conf"]


def test_install_file_error(tree):
    tree.write("/etc/blocker", "file, not a directory")
    with pytest.raises(files.FileError, match="^cannot write /etc/blocker/y.conf: "):
        files.write(FakeModule(), files.FileChange("/etc/blocker/y.conf", None, "a\n"), root=str(tree.root))


def test_before_move_sees_the_complete_temp_file_and_can_stop_the_move(tree):
    tree.path("/etc").mkdir(parents=True)
    tree.path("/etc/x.conf").write_text("old\n")
    seen = []

    def refuse(tmp):
        seen.append((os.path.dirname(tmp), open(tmp, encoding="utf-8").read(), stat.S_IMODE(os.stat(tmp).st_mode)))
        raise files.FileError("refused")

    module = FakeModule()
    with pytest.raises(files.FileError, match="^refused$"):
        files.write(module, files.FileChange("/etc/x.conf", "old\n", "new\n", mode=0o600), root=str(tree.root),
                    before_move=refuse)
    assert seen == [(str(tree.path("/etc")), "new\n", 0o600)]
    assert module.moves == [] and os.listdir(tree.path("/etc")) == ["x.conf"]
    assert tree.path("/etc/x.conf").read_text() == "old\n"
    files.write(module, files.FileChange("/etc/x.conf", "old\n", "new\n"), root=str(tree.root), before_move=seen.append)
    assert tree.path("/etc/x.conf").read_text() == "new\n" and len(seen) == 2


def test_a_write_that_fails_leaves_the_old_file_and_no_temp_file(tree, monkeypatch):
    tree.path("/etc").mkdir(parents=True)
    tree.path("/etc/x.conf").write_text("old\n")
    real_fdopen = os.fdopen

    def no_space(text):
        raise OSError(28, "No space left on device")

    def full_disk(fd, *args, **kwargs):
        handle = real_fdopen(fd, *args, **kwargs)
        handle.write = no_space
        return handle

    monkeypatch.setattr(os, "fdopen", full_disk)
    with pytest.raises(files.FileError, match="^cannot write /etc/x.conf: no space left on its file system$"):
        files.write(FakeModule(), files.FileChange("/etc/x.conf", "old\n", "new\n"), root=str(tree.root))
    assert os.listdir(tree.path("/etc")) == ["x.conf"] and tree.path("/etc/x.conf").read_text() == "old\n"


def test_stage_then_commit_replaces_a_file_or_a_link(tree):
    import io  # pylint: disable=import-outside-toplevel
    tree.path("/opt/lib").mkdir(parents=True)
    tree.path("/opt/lib/real.so").write_text("keep\n")
    os.symlink("real.so", tree.path("/opt/lib/libx.so"))
    tmp = files.stage("/opt/lib/libx.so", io.BytesIO(b"new\n" * 5), 0o755, root=str(tree.root), chunk=3)
    assert tree.path("/opt/lib/libx.so").is_symlink() and tree.path("/opt/lib/libx.so").read_text() == "keep\n"
    files.commit(FakeModule(), tmp, "/opt/lib/libx.so", 0o755, root=str(tree.root))
    target = tree.path("/opt/lib/libx.so")
    assert not target.is_symlink() and target.read_text() == "new\n" * 5
    assert stat.S_IMODE(target.stat().st_mode) == 0o755 and tree.path("/opt/lib/real.so").read_text() == "keep\n"
    assert sorted(os.listdir(target.parent)) == ["libx.so", "real.so"]


def test_stage_that_fails_leaves_no_temp_file(tree):
    class Broken:
        def read(self, _size):
            raise OSError(5, "Input/output error")

    tree.path("/opt").mkdir()
    with pytest.raises(files.FileError, match=r"^cannot write /opt/x: Input/output error$"):
        files.stage("/opt/x", Broken(), root=str(tree.root))
    assert os.listdir(tree.path("/opt")) == []
    files.discard(None)


def test_symlink_and_remove(tree):
    files.symlink("/opt/lib/libx.so", "libx.so.9", root=str(tree.root))
    files.symlink("/opt/lib/libx.so", "libx.so.10", root=str(tree.root))
    assert os.readlink(tree.path("/opt/lib/libx.so")) == "libx.so.10" and os.listdir(tree.path("/opt/lib")) == ["libx.so"]
    assert files.remove("/opt/lib/libx.so", root=str(tree.root)) is True
    assert files.remove("/opt/lib/libx.so", root=str(tree.root)) is False
    tree.path("/opt/dir").mkdir()
    with pytest.raises(files.FileError, match=r"^cannot remove /opt/dir: Is a directory$"):
        files.remove("/opt/dir", root=str(tree.root))
    with pytest.raises(files.FileError, match=r"^cannot link libz.so.1 at /opt/dir/x/y: "):
        tree.path("/opt/dir/x").write_text("a file, not a directory")
        files.symlink("/opt/dir/x/y", "libz.so.1", root=str(tree.root))
