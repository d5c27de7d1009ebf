# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""Managed files: read, plan, write atomically, diff, check mode; and large files written whole.

Every path given here is the path on the host ("/etc/fstab"). ROOT is prepended, so unit tests
point ROOT at a fake tree: it is the collection's one test seam for the file system.
"""
from __future__ import annotations

import errno
import os
import tempfile

from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError

ROOT = "/"
MIB = 1024 * 1024


class FileError(DlnodeError):
    """A file could not be read or written; str() says which and what to do."""

    def __init__(self, msg, path=None, errno_value=None):
        super().__init__(msg)
        self.path = path
        self.errno = errno_value


def host_path(path, root=None):
    """Where the absolute host path is under root (ROOT unless given)."""
    return os.path.join(ROOT if root is None else root, path.lstrip("/"))


# What to say after "cannot <action> <path>: " for an errno; {reason} is the system's words.
MESSAGES = {
    errno.EACCES: "{reason}; run as root (become: true)",
    errno.EPERM: "{reason}; run as root (become: true)",
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on its file system",
}


def os_error(exc, path, action, messages=None, error=FileError):
    """An OSError as a FileError (or `error`) whose message says what to do about it.

    ``messages`` adds or replaces entries of MESSAGES for one kind of file (kernel files).
    """
    code = exc.errno
    reason = os.strerror(code) if code else str(exc)
    template = {**MESSAGES, **(messages or {})}.get(code, "{reason}")
    return error(f"cannot {action} {path}: " + template.format(reason=reason), path=path, errno_value=code)


def read(path, root=None, binary=False):
    """Content of a file (bytes when binary), or None if it does not exist."""
    try:
        with open(host_path(path, root), "rb" if binary else "r", encoding=None if binary else "utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise os_error(exc, path, "read") from exc


class FileChange:
    """A file the module owns: its content now (None: missing) and as it should be (str, or bytes for a binary file)."""

    def __init__(self, path, before, after, mode=0o644):
        self.path = path
        self.before = before
        self.after = after
        self.mode = mode

    @property
    def changed(self):
        return self.before != self.after

    def diff(self):
        return {"before_header": self.path, "after_header": self.path,
                "before": self.before or "", "after": self.after or ""}


def plan(path, content, mode=0o644, root=None):
    return FileChange(path, read(path, root), content, mode)


def write(module, change, root=None, before_move=None):
    """Replace the file atomically: a temp file in the same directory, then a rename.

    A failed write removes the temp file and leaves the old file as it was. Outside a module
    (module None: the boot scripts, tests) the rename is a plain one. ``before_move`` is called
    with the temp file's path once it is complete (a validation, a backup); when it raises, the
    temp file is removed and the old file stays.
    """
    dest = host_path(change.path, root)
    directory = os.path.dirname(dest)
    tmp = None
    try:
        os.makedirs(directory, mode=0o755, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".dlnode-", dir=directory)
        binary = isinstance(change.after, bytes)
        with os.fdopen(fd, "wb" if binary else "w", encoding=None if binary else "utf-8") as handle:
            handle.write(change.after)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, change.mode)
    except OSError as exc:
        if tmp is not None:
            os.unlink(tmp)
        raise os_error(exc, change.path, "write") from exc
    if before_move is not None:
        try:
            before_move(tmp)
        except BaseException:
            os.unlink(tmp)
            raise
    if module is None:
        os.replace(tmp, dest)
    else:
        module.atomic_move(tmp, dest)
    # atomic_move keeps an existing file's mode; a managed file has the mode we give it.
    os.chmod(dest, change.mode)


def stage(path, source, mode=0o644, root=None, chunk=MIB):
    """Copy the readable ``source`` to a temp file beside path, in chunks: its host path, for commit().

    For content too large to hold in memory (a library from an archive). A failed copy removes the
    temp file; path itself is not touched until commit().
    """
    directory = os.path.dirname(host_path(path, root))
    tmp = None
    try:
        os.makedirs(directory, mode=0o755, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".dlnode-", dir=directory)
        with os.fdopen(fd, "wb") as handle:
            for block in iter(lambda: source.read(chunk), b""):
                handle.write(block)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
    except OSError as exc:
        discard(tmp)
        raise os_error(exc, path, "write") from exc
    return tmp


def commit(module, tmp, path, mode=0o644, root=None):
    """Rename a staged temp file over path (a file or a link there is replaced, atomically)."""
    dest = host_path(path, root)
    if module is None or os.path.islink(dest):
        # atomic_move would follow a link to its target's mode and owner; the link itself is replaced.
        os.replace(tmp, dest)
    else:
        module.atomic_move(tmp, dest)
    os.chmod(dest, mode)


def discard(tmp):
    """Remove a staged temp file, if there is one."""
    if tmp is not None and os.path.lexists(tmp):
        os.unlink(tmp)


def symlink(path, target, root=None):
    """Make path a symbolic link to target, atomically: a link under a temp name, then a rename."""
    dest = host_path(path, root)
    tmp = os.path.join(os.path.dirname(dest), f".dlnode-{os.getpid()}-{os.path.basename(dest)}")
    try:
        os.makedirs(os.path.dirname(dest), mode=0o755, exist_ok=True)
        discard(tmp)
        os.symlink(target, tmp)
        os.replace(tmp, dest)
    except OSError as exc:
        discard(tmp)
        raise os_error(exc, path, f"link {target} at") from exc


def remove(path, root=None):
    """Remove a file or a symbolic link (never a directory); True when there was one."""
    try:
        os.unlink(host_path(path, root))
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise os_error(exc, path, "remove") from exc
    return True


def sync(module, path, content, mode=0o644, root=None):
    """Plan the file and, unless in check mode, write it when it differs. Returns the FileChange."""
    change = plan(path, content, mode, root)
    if change.changed and not module.check_mode:
        write(module, change, root)
    return change


def diffs(changes):
    """The diff entries of the changed files, for a module's result."""
    return [change.diff() for change in changes if change.changed]


# -- large files -------------------------------------------------------------


def available_mib(path, root=None):
    """MiB still free for writing on the file system that holds path's directory."""
    stats = os.statvfs(host_path(os.path.dirname(path) or "/", root))
    return stats.f_bavail * stats.f_frsize // MIB


def check_space(path, size_mib, path_option="path", size_option="size_mib", root=None):
    """Refuse, before anything is written, a file larger than its file system's free space."""
    directory = os.path.dirname(path) or "/"
    if not os.path.isdir(host_path(directory, root)):
        raise FileError(f"{path_option}: cannot create {path}: the directory {directory} does not exist", path=path)
    available = available_mib(path, root)
    if size_mib > available:
        raise FileError(f"{size_option}: {size_mib} MiB requested for {path}, but its file system has only "
                        f"{available} MiB available; nothing was written", path=path, errno_value=errno.ENOSPC)


def write_zeros(path, size_mib, mode=0o600, root=None):
    """Write a file of size_mib MiB of zeros in full (no holes), under a temp name then renamed.

    A failed write (the disk filled up after all, an I/O error) removes the temp file: nothing
    partial is left, and an existing file at path is untouched until the rename.
    """
    dest = host_path(path, root)
    block = bytes(MIB)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".dlnode-", dir=os.path.dirname(dest))
        try:
            os.fchmod(fd, mode)
            for _block in range(size_mib):
                os.write(fd, block)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, dest)
    except OSError as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        raise os_error(exc, path, f"write {size_mib} MiB to") from exc
