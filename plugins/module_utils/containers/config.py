# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""Plan a merge into a daemon's config file: read it, find the changes, edit its text, check the edit.

Everything here only reads: the plan holds the file's text before and after and the changes, so
check mode returns it as it is and the module writes exactly what was planned.
"""
from __future__ import annotations

import os

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.module_utils.containers import jsonmerge, merge, tomlmerge
from ansible_collections.dlnode.gpu.plugins.module_utils.containers.merge import ConfigError

FORMATS = {".json": "json", ".toml": "toml"}
NEW_FILE_MODE = 0o644


def file_format(path, given=None):
    """The format given, or the one the file's name says."""
    if given:
        return given
    found = FORMATS.get(os.path.splitext(path)[1].lower())
    if found is None:
        raise ConfigError(f"format: cannot tell the format of {path} from its name (.json or .toml); "
                          "set format to json or toml")
    return found


class ConfigPlan(files.FileChange):
    """The file's text before (None: missing) and after, written with the mode it has (0644 when new),
    and the changes that make the difference (none: after is before, byte for byte)."""

    def __init__(self, path, fmt, before, after, changes, mode):
        super().__init__(path, before, after, mode)
        self.format = fmt
        self.changes = changes

    @property
    def keys(self):
        return [change.key for change in self.changes]


def current_mode(path, root=None):
    """The existing file's permission bits, kept when it is rewritten; 0644 for a new file."""
    try:
        return os.stat(files.host_path(path, root)).st_mode & 0o7777
    except FileNotFoundError:
        return NEW_FILE_MODE
    except OSError as exc:
        raise files.os_error(exc, path, "read") from exc


def parse(fmt, text, path):
    """(what the format edits, its plain value) of a file's text."""
    if fmt == "toml":
        doc = tomlmerge.loads(text, path)
        return doc, tomlmerge.plain(doc)
    value = jsonmerge.loads(text, path)
    return value, value


def edit(fmt, text, parsed, current, changes, path):
    if fmt == "toml":
        return tomlmerge.merge(text, parsed, changes)
    return jsonmerge.merge(text, current, changes, path)


def plan(path, settings, fmt=None, root=None):
    """The plan that merges settings into the file at path (on the host: ROOT is prepended)."""
    fmt = file_format(path, fmt)
    merge.check_settings(settings)
    if fmt == "toml":
        tomlmerge.require()
    before = files.read(path, root)
    text = before or ""
    parsed, current = parse(fmt, text, path)
    changes = merge.plan(current, settings)
    if not changes:
        return ConfigPlan(path, fmt, before, before, [], current_mode(path, root))
    after = edit(fmt, text, parsed, current, changes, path)
    check(fmt, after, merge.expected(current, changes), path)
    return ConfigPlan(path, fmt, before, after, changes, current_mode(path, root))


def check(fmt, after, wanted, path):
    """Parse the edited text again: it must hold exactly the values planned, every other key as it was."""
    try:
        got = parse(fmt, after, path)[1]
    except ConfigError as err:
        raise ConfigError(f"the edit of {path} does not parse ({err}); this is a bug of container_config, "
                          "please report it with the file. Nothing was written") from err
    if not merge.same(got, wanted):
        raise ConfigError(f"the edit of {path} does not hold the planned values; this is a bug of "
                          "container_config, please report it with the file. Nothing was written")
