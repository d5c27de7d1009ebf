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
