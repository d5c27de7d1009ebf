# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""Read and write kernel tunables under /sys and /proc, relative to an injectable root.

Every path given to these helpers is the path on the host ("/sys/block/sda/...");
the root (normally "/") is prepended so unit tests can point it at a fake tree.
"""
from __future__ import annotations

import errno
import os

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files


class SysfsError(files.FileError):
    """A kernel file could not be read or written; str() is a message for the user."""


def host_path(root, path):
    """Join an absolute host path onto root."""
    return files.host_path(path, root)


# Kernel files: what /sys and /proc answer, and what to do about it.
MESSAGES = {
    errno.EROFS: ("read-only file system; /sys or /proc is mounted read-only (as in most containers): "
                  "remount rw or run on the host"),
    errno.EACCES: "{reason}; run as root (become: true), or in a container remount rw or run on the host",
    errno.EPERM: "{reason}; run as root (become: true), or in a container remount rw or run on the host",
    errno.ENOENT: "it does not exist on this kernel",
    errno.EINVAL: "the kernel rejected the value ({reason})",
}


def translate_os_error(exc, path, action):
    """Turn an OSError into a SysfsError whose message says what to do about it."""
    return files.os_error(exc, path, action, MESSAGES, SysfsError)


def read_text(root, path, default=None):
    """Content of a kernel file without surrounding whitespace; default if it does not exist."""
    try:
        with open(host_path(root, path), encoding="utf-8") as handle:
            return handle.read().strip()
    except FileNotFoundError:
        return default
    except OSError as exc:
        raise translate_os_error(exc, path, "read") from exc


def read_int(root, path, default=None):
    """Integer content of a kernel file; default if it does not exist."""
    text = read_text(root, path)
    if text is None:
        return default
    try:
        return int(text.split()[0])
    except (ValueError, IndexError) as exc:
        raise SysfsError(f"cannot read {path}: expected an integer, found {text!r}", path=path) from exc


def list_dir(root, path):
    """Sorted entry names of a directory; empty if it does not exist."""
    try:
        return sorted(os.listdir(host_path(root, path)))
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise translate_os_error(exc, path, "list") from exc


def exists(root, path):
    return os.path.exists(host_path(root, path))


def write_text(root, path, value):
    """Write value to an existing kernel file, as `echo value > path` does."""
    # No O_CREAT: a missing sysfs attribute is an error, never a new file.
    # O_TRUNC is ignored by sysfs but keeps fake trees (plain files) correct.
    try:
        fd = os.open(host_path(root, path), os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, (f"{value}\n").encode("utf-8"))
        finally:
            os.close(fd)
    except OSError as exc:
        raise translate_os_error(exc, path, f"write {value} to") from exc


def write_and_read_back(root, path, value):
    """Write value, then return what the kernel reports afterwards (it may clamp or refuse)."""
    write_text(root, path, value)
    return read_text(root, path)


def parse_bracketed(text):
    """Parse a choice file such as "always [madvise] never" into (current, choices).

    A file with a single unbracketed word (a queue that only offers "none")
    has that word as its current value.
    """
    choices = []
    current = None
    for word in (text or "").split():
        if word.startswith("[") and word.endswith("]"):
            word = word[1:-1]
            current = word
        choices.append(word)
    if current is None and len(choices) == 1:
        current = choices[0]
    return current, choices


class Kernel:
    """The write path to the running kernel, rooted at root.

    Modules do all their kernel I/O through one of these so tests can replace
    write() to behave like a kernel that clamps or refuses values.
    """

    def __init__(self, root=None):
        self.root = files.ROOT if root is None else root

    def read(self, path, default=None):
        return read_text(self.root, path, default)

    def read_int(self, path, default=None):
        return read_int(self.root, path, default)

    def list_dir(self, path):
        return list_dir(self.root, path)

    def exists(self, path):
        return exists(self.root, path)

    def realpath(self, path):
        """Host path that path resolves to (symlinks followed inside root)."""
        resolved = os.path.realpath(host_path(self.root, path))
        base = os.path.realpath(self.root)
        rel = os.path.relpath(resolved, base)
        return "/" + rel if rel != "." else "/"

    def write(self, path, value):
        write_text(self.root, path, value)

    def write_and_read_back(self, path, value):
        self.write(path, value)
        return self.read(path)
