"""module_utils.sysfs: reads, writes, read-back and error translation on a fake tree."""
from __future__ import annotations

import errno
import os

import pytest

from ansible_collections.dlnode.gpu.plugins.module_utils.kernel import sysfs
from ansible_collections.dlnode.gpu.tests.unit.fake_sysfs import FakeTree


@pytest.fixture
def tree(tmp_path):
    return FakeTree(tmp_path)


def test_read_text_strips_and_defaults(tree):
    tree.write("/sys/a", "  42 ")
    assert sysfs.read_text(tree.root, "/sys/a") == "42"
    assert sysfs.read_text(tree.root, "/sys/missing") is None
    assert sysfs.read_text(tree.root, "/sys/missing", "x") == "x"


def test_read_error_is_translated(tree):
    tree.path("/sys/dir").mkdir(parents=True)
    with pytest.raises(sysfs.SysfsError, match=r"^cannot read /sys/dir: Is a directory$"):
        sysfs.read_text(tree.root, "/sys/dir")


def test_read_int(tree):
    tree.write("/sys/n", "7")
    tree.write("/sys/bad", "seven")
    assert sysfs.read_int(tree.root, "/sys/n") == 7
    assert sysfs.read_int(tree.root, "/sys/missing", 0) == 0
    with pytest.raises(sysfs.SysfsError, match="cannot read /sys/bad: expected an integer, found 'seven'"):
        sysfs.read_int(tree.root, "/sys/bad")


def test_list_dir(tree):
    tree.write("/sys/d/b", 1)
    tree.write("/sys/d/a", 1)
    tree.write("/sys/file", 1)
    assert sysfs.list_dir(tree.root, "/sys/d") == ["a", "b"]
    assert sysfs.list_dir(tree.root, "/sys/none") == []
    with pytest.raises(sysfs.SysfsError, match="cannot list /sys/file"):
        sysfs.list_dir(tree.root, "/sys/file")


def test_write_and_read_back(tree):
    tree.write("/sys/n", "1024")
    assert sysfs.write_and_read_back(tree.root, "/sys/n", 2) == "2"


def test_write_never_creates_files(tree):
    tree.path("/sys").mkdir()
    with pytest.raises(sysfs.SysfsError, match="^cannot write 1 to /sys/new: it does not exist on this kernel$"):
        sysfs.write_text(tree.root, "/sys/new", 1)
    assert not tree.exists("/sys/new")


@pytest.mark.parametrize("code, message", [
    (errno.EROFS, "cannot write 1 to /sys/x: read-only file system; /sys or /proc is mounted read-only "
                  "(as in most containers): remount rw or run on the host"),
    (errno.EACCES, "cannot write 1 to /sys/x: Permission denied; run as root (become: true), "
                   "or in a container remount rw or run on the host"),
    (errno.EPERM, "cannot write 1 to /sys/x: Operation not permitted; run as root (become: true), "
                  "or in a container remount rw or run on the host"),
    (errno.EINVAL, "cannot write 1 to /sys/x: the kernel rejected the value (Invalid argument)"),
    (errno.EBUSY, "cannot write 1 to /sys/x: Device or resource busy"),
])
def test_write_errors_are_translated(tree, monkeypatch, code, message):
    tree.write("/sys/x", 0)
    real_open = os.open

    def failing_open(path, flags, *args):
        if str(path).startswith(str(tree.root)):
            raise OSError(code, os.strerror(code))
        return real_open(path, flags, *args)

    monkeypatch.setattr(sysfs.os, "open", failing_open)
    with pytest.raises(sysfs.SysfsError) as raised:
        sysfs.write_text(tree.root, "/sys/x", 1)
    assert str(raised.value) == message
    assert raised.value.errno == code and raised.value.path == "/sys/x"


def test_proc_read_only_message():
    error = sysfs.translate_os_error(OSError(errno.EROFS, "Read-only file system"), "/proc/sys/vm/nr_hugepages", "write 4 to")
    assert "remount rw or run on the host" in str(error)


def test_error_without_errno():
    assert str(sysfs.translate_os_error(OSError("odd"), "/sys/x", "read")) == "cannot read /sys/x: odd"


@pytest.mark.parametrize("text, expected", [
    ("always [madvise] never", ("madvise", ["always", "madvise", "never"])),
    ("[none] mq-deadline kyber bfq", ("none", ["none", "mq-deadline", "kyber", "bfq"])),
    ("always defer defer+madvise [madvise] never", ("madvise", ["always", "defer", "defer+madvise", "madvise", "never"])),
    ("none", ("none", ["none"])),
    ("a b", (None, ["a", "b"])),
    ("", (None, [])),
    (None, (None, [])),
])
def test_parse_bracketed(text, expected):
    assert sysfs.parse_bracketed(text) == expected


def test_kernel_object(tree):
    tree.write("/sys/devices/virtual/block/loop0/queue/nr_requests", 128)
    tree.link("/sys/block/loop0", "/sys/devices/virtual/block/loop0")
    kernel = sysfs.Kernel(str(tree.root))
    assert kernel.realpath("/sys/block/loop0") == "/sys/devices/virtual/block/loop0"
    assert kernel.realpath("/") == "/"
    assert kernel.exists("/sys/block/loop0/queue/nr_requests")
    assert kernel.list_dir("/sys/block") == ["loop0"]
    assert kernel.read_int("/sys/block/loop0/queue/nr_requests") == 128
    assert kernel.write_and_read_back("/sys/block/loop0/queue/nr_requests", 64) == "64"
    assert kernel.read("/sys/block/loop0/queue/nr_requests") == "64"
