# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""Edit a JSON config (Docker's daemon.json) in place: only the changed keys' text changes.

The file is parsed twice: by the json module, for its values and for the line and column of a
syntax error, and by scan() below, which finds where each member of each object starts and ends.
An edit then rebuilds only the objects that hold a change, from the original text between the
members: the operator's key order, indentation, separators and line ends stay, an updated value
is written where the old one was, a removed member takes its comma with it, and a new member is
appended at the end of its object with the indentation of its neighbours (multi-line objects) or
on the same line (one-line objects). Nested values that are written whole use the file's indent
unit: the indentation of its first key (two or four spaces, or a tab), two spaces in a new file.
"""
from __future__ import annotations

import json
from json.decoder import scanstring

from ansible_collections.dlnode.gpu.plugins.module_utils.containers.merge import (
    ADDED, REMOVED, ConfigError, expected, kind)

WHITESPACE = " \t\n\r"
DEFAULT_UNIT = "  "
_DECODER = json.JSONDecoder()


class Obj:
    """An object of the file: where its braces are and its members in the order written."""

    def __init__(self, start):
        self.start = start
        self.end = None
        self.members = []


class Member:
    """"key": value of an object, with the offsets of the key, the value and its end."""

    def __init__(self, key, key_start, key_end, value_start, value_end, child):
        self.key = key
        self.key_start = key_start
        self.key_end = key_end
        self.value_start = value_start
        self.value_end = value_end
        self.child = child


def loads(text, path):
    """The file's value (an object; {} for an empty file), or ConfigError with line and column."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path} is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}; "
                          "fix or remove the file. Nothing was written") from err
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: expected a JSON object at the top, found {kind(value)}. Nothing was written")
    return value


def skip(text, pos):
    while pos < len(text) and text[pos] in WHITESPACE:
        pos += 1
    return pos


def scan(text, pos):
    """The object whose "{" is at pos (the text is valid JSON: loads() said so)."""
    obj = Obj(pos)
    pos = skip(text, pos + 1)
    if text[pos] == "}":
        obj.end = pos + 1
        return obj
    while True:
        key_start = pos
        key, key_end = scanstring(text, pos + 1)
        pos = skip(text, key_end)
        value_start = skip(text, pos + 1)  # after the colon
        child = None
        if text[value_start] == "{":
            child = scan(text, value_start)
            value_end = child.end
        else:
            value_end = _DECODER.raw_decode(text, value_start)[1]
        obj.members.append(Member(key, key_start, key_end, value_start, value_end, child))
        pos = skip(text, value_end)
        if text[pos] == "}":
            obj.end = pos + 1
            return obj
        pos = skip(text, pos + 1)  # after the comma


def line_indent(text, pos):
    """The whitespace that starts the line holding pos."""
    start = text.rfind("\n", 0, pos) + 1
    end = start
    while end < pos and text[end] in " \t":
        end += 1
    return text[start:end]


def indent_unit(text, top):
    """The file's indent: that of its first key when it is on a line of its own."""
    if top.members:
        lead = text[top.start + 1:top.members[0].key_start]
        if "\n" in lead:
            unit = lead[lead.rfind("\n") + 1:]
            return "\t" if "\t" in unit else unit
    return DEFAULT_UNIT


def dumps(value, unit=DEFAULT_UNIT):
    """A new file: the value written as merge() writes new values, ending in a newline."""
    return _Editor("", unit, "\n").value(value, "", False) + "\n"


def merge(text, current, changes, path):
    """The text with the changes made (changes from merge.plan over current, the parsed text)."""
    if not changes:
        return text
    if not text.strip():
        return dumps(expected(current, changes))
    start = skip(text, 0)
    top = scan(text, start)
    editor = _Editor(text, indent_unit(text, top), "\r\n" if "\r\n" in text else "\n")
    return text[:start] + editor.object(top, (), changes) + text[top.end:]


class _Editor:
    def __init__(self, text, unit, newline):
        self.text = text
        self.unit = unit
        self.newline = newline

    def value(self, value, indent, inline, lists_inline=True):
        """A value written at indent: objects one member a line, lists of plain values on one line
        (as operators write "dns" or "runtimeArgs"); all on one line inside a one-line object."""
        if inline or not isinstance(value, (dict, list)) or not value or (
                lists_inline and isinstance(value, list) and not any(isinstance(item, (dict, list)) for item in value)):
            return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
        inner = indent + self.unit
        if isinstance(value, dict):
            items = [json.dumps(key, ensure_ascii=False) + ": " + self.value(item, inner, False, lists_inline)
                     for key, item in value.items()]
            opening, closing = "{", "}"
        else:
            items = [self.value(item, inner, False, lists_inline) for item in value]
            opening, closing = "[", "]"
        lines = ("," + self.newline).join(inner + item for item in items)
        return opening + self.newline + lines + self.newline + indent + closing

    def object(self, obj, path, changes):
        """The object's new text: the members of path's changes edited, the others as written."""
        text = self.text
        depth = len(path)
        direct = {change.path[depth]: change for change in changes if len(change.path) == depth + 1}
        deeper = {}
        for change in changes:
            if len(change.path) > depth + 1:
                deeper.setdefault(change.path[depth], []).append(change)
        if not direct and not deeper:
            return text[obj.start:obj.end]
        inline = "\n" not in text[obj.start:obj.end]
        last = {member.key: index for index, member in enumerate(obj.members)}  # JSON's last duplicate wins
        kept = []
        for index, member in enumerate(obj.members):
            change = direct.get(member.key)
            if change is not None and change.action == REMOVED:
                continue
            head = text[member.key_start:member.value_start]
            if last[member.key] != index:
                body = text[member.value_start:member.value_end]
            elif change is not None:
                # A value written on one line stays on one line; one written over several lines keeps doing so.
                written = text[member.value_start:member.value_end]
                body = self.value(change.after, line_indent(text, member.key_start), inline or "\n" not in written,
                                  lists_inline=False)
            elif member.key in deeper:
                body = self.object(member.child, path + (member.key,), deeper[member.key])
            else:
                body = text[member.value_start:member.value_end]
            kept.append((index, head + body))
        added = [change for change in direct.values() if change.action == ADDED]
        if not kept:
            return self.fresh(obj, added)
        members = obj.members
        if len(members) > 1:
            new_sep = text[members[-2].value_end:members[-1].key_start]
        else:
            lead = text[obj.start + 1:members[0].key_start]
            new_sep = "," + lead if "\n" in lead else ", "
        colon = text[members[-1].key_end:members[-1].value_start]
        indent = new_sep[new_sep.rfind("\n") + 1:]
        out = [text[obj.start:members[0].key_start]]
        for position, (index, member_text) in enumerate(kept):
            if position:
                previous = kept[position - 1][0]
                out.append(text[members[previous].value_end:members[previous + 1].key_start])
            out.append(member_text)
        last_kept = kept[-1][0]
        for number, change in enumerate(added):
            if number == 0 and last_kept < len(members) - 1:
                out.append(text[members[last_kept].value_end:members[last_kept + 1].key_start])
            else:
                out.append(new_sep)
            out.append(json.dumps(change.path[-1], ensure_ascii=False) + colon
                       + self.value(change.after, indent, inline and "\n" not in new_sep))
        out.append(text[members[-1].value_end:obj.end])
        return "".join(out)

    def fresh(self, obj, added):
        """An object none of whose members stay: written anew, one member a line."""
        if not added:
            return "{}"
        base = line_indent(self.text, obj.start)
        indent = base + self.unit
        lines = [indent + json.dumps(change.path[-1], ensure_ascii=False) + ": " + self.value(change.after, indent, False)
                 for change in added]
        return "{" + self.newline + ("," + self.newline).join(lines) + self.newline + base + "}"
