# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""The merge of settings into a daemon's config, on plain values: what changes, key by key.

The rule is JSON Merge Patch (RFC 7386) with one refusal: an object in the settings merges into
the object of the file key by key; null removes a key; any other value (a string, a number, a
list) replaces the file's value whole. Keys the settings do not name stay as they are. Where an
object of the settings meets a value of the file that is not an object (or the other way round)
the merge refuses, naming the key: replacing an operator's whole object, or an operator's value
by an object, is never what a caller that sets one key meant.

The formats (jsonmerge, tomlmerge) apply the changes found here to the file's text so that only
those keys' lines change; the module checks the result by parsing it again and comparing it,
value by value, with expected() below.
"""
from __future__ import annotations

import json
import re

from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError

BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
ADDED, UPDATED, REMOVED = "added", "updated", "removed"


class ConfigError(DlnodeError):
    """A config file or settings the merge cannot take; the message names the file or the key."""


def dotted(path):
    """The key path as one string: log-opts.max-size, plugins."io.containerd.grpc.v1.cri".containerd."""
    return ".".join(key if BARE_KEY.match(key) else '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
                    for key in path)


def kind(value):
    """A value's kind in the words of the formats (for messages)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def same(left, right):
    """Equal as values of the file: true is not 1, 3 is 3.0, objects regardless of key order."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, (int, float)) and isinstance(right, (int, float)):
        return left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(same(left[key], right[key]) for key in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(same(one, two) for one, two in zip(left, right))
    return type(left) is type(right) and left == right


def prune(value):
    """A value to add: the nulls of its objects left out (nothing to remove in a new object)."""
    if isinstance(value, dict):
        return {key: prune(item) for key, item in value.items() if item is not None}
    return value


def only_nulls(value):
    return isinstance(value, dict) and bool(value) and all(item is None or only_nulls(item) for item in value.values())


class Change:
    """One key that changes: its path (a tuple of keys), added/updated/removed, the values."""

    def __init__(self, path, action, before=None, after=None):
        self.path = tuple(path)
        self.action = action
        self.before = before
        self.after = after

    @property
    def key(self):
        return dotted(self.path)

    def public(self):
        entry = {"key": self.key, "action": self.action}
        if self.action != ADDED:
            entry["before"] = self.before
        if self.action != REMOVED:
            entry["after"] = self.after
        return entry

    def __repr__(self):
        return f"Change({self.key} {self.action})"


def check_settings(settings, path=()):
    """Refuse settings the files cannot hold: keys that are not strings, nulls inside lists."""
    if not isinstance(settings, dict):
        raise ConfigError(f"settings: expected a dictionary of keys to values, got {kind(settings)}")
    for key, value in settings.items():
        where = dotted(path + (str(key),))
        if not isinstance(key, str) or not key:
            raise ConfigError(f"settings.{where}: keys must be non-empty strings, got {key!r}")
        if isinstance(value, dict):
            check_settings(value, path + (key,))
        elif isinstance(value, list):
            check_list(value, where)
        elif value is not None and not isinstance(value, (str, int, float, bool)):
            raise ConfigError(f"settings.{where}: {type(value).__name__} cannot be written to a config file")


def check_list(values, where):
    for index, value in enumerate(values):
        if value is None:
            raise ConfigError(f"settings.{where}[{index}]: null inside a list; leave the item out instead")
        if isinstance(value, dict):
            check_settings(value, ())
        elif isinstance(value, list):
            check_list(value, f"{where}[{index}]")


def plan(current, settings, path=()):
    """The changes that merge settings into current (both plain dicts), in the settings' order."""
    changes = []
    for key, wanted in settings.items():
        here = path + (key,)
        present = key in current
        value = current.get(key)
        if wanted is None:
            if present:
                changes.append(Change(here, REMOVED, before=value))
        elif isinstance(wanted, dict):
            if not present:
                if not only_nulls(wanted):
                    changes.append(Change(here, ADDED, after=prune(wanted)))
            elif isinstance(value, dict):
                changes += plan(value, wanted, here)
            else:
                raise collision(here, value, wanted)
        elif not present:
            changes.append(Change(here, ADDED, after=wanted))
        elif isinstance(value, dict):
            raise collision(here, value, wanted)
        elif not same(value, wanted):
            changes.append(Change(here, UPDATED, before=value, after=wanted))
    return changes


def collision(path, value, wanted):
    key = dotted(path)
    if isinstance(wanted, dict):
        inner = dotted(path + (next(iter(wanted)),)) if wanted else key
        return ConfigError(f"settings.{key}: the file has {key} = {short(value)} ({kind(value)}, not an object), "
                           f"so {inner} cannot be set inside it; change or remove {key} in the file first. "
                           "Nothing was written")
    return ConfigError(f"settings.{key}: the file has an object at {key} ({short(value)}) and the settings give "
                       f"{kind(wanted)}; replacing the whole object is refused: set its keys one by one, or null "
                       "to remove it. Nothing was written")


def short(value, limit=60):
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def expected(current, changes):
    """current (a plain dict) with the changes made: what the edited file must parse to."""
    result = copy(current)
    for change in changes:
        parent = result
        for key in change.path[:-1]:
            parent = parent[key]
        if change.action == REMOVED:
            del parent[change.path[-1]]
        else:
            parent[change.path[-1]] = copy(change.after)
    return result


def copy(value):
    if isinstance(value, dict):
        return {key: copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy(item) for item in value]
    return value
