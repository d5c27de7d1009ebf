# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""The files one module call owns, written together and put back exactly as they were when a
later step (apt's proof of a source, an install) fails.
"""
from __future__ import annotations

import os
import stat

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files


class FileSet:
    """Managed files, each with its content before and after (None: absent); bytes for binary files."""

    def __init__(self):
        self.changes = []
        self.applied = []
        self.labels = {}

    def add(self, path, content, mode=0o644, binary=False, label=None):
        """Plan one file; ``label`` renders a binary content for the diff (a keyring as its fingerprints)."""
        change = files.FileChange(path, files.read(path, binary=binary), content, mode)
        real = files.host_path(path)
        change.old_mode = stat.S_IMODE(os.stat(real).st_mode) if change.before is not None else mode
        self.changes.append(change)
        if label:
            self.labels[path] = label
        return change

    @property
    def changed(self):
        return [change for change in self.changes if change.changed]

    def texts(self):
        return [f"{change.path}: {'remove' if change.after is None else 'write'}" for change in self.changed]

    def apply(self, module):
        """Write (or remove) every changed file, in the order added."""
        for change in self.changed:
            put(module, change.path, change.after, change.mode)
            self.applied.append(change)

    def restore(self, module):
        """Put back what apply changed, last first; the paths put back."""
        restored = []
        for change in reversed(self.applied):
            put(module, change.path, change.before, change.old_mode)
            restored.append(change.path)
        self.applied = []
        return restored

    def diffs(self):
        """The diff entries of the changed files; binary ones as their label says."""
        entries = []
        for change in self.changed:
            label = self.labels.get(change.path)
            before = label(change.before) if label and change.before is not None else change.before
            after = label(change.after) if label and change.after is not None else change.after
            entries.append({"before_header": change.path, "after_header": change.path,
                            "before": before or "", "after": after or ""})
        return entries


def put(module, path, content, mode):
    """Write content to path atomically, or remove path where content is None."""
    if content is None:
        try:
            os.remove(files.host_path(path))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise files.os_error(exc, path, "remove") from exc
    else:
        files.write(module, files.FileChange(path, None, content, mode))
