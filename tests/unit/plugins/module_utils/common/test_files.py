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
