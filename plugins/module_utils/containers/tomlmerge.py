# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""Edit a TOML config (containerd's config.toml, version 2 or 3) in place with tomlkit.

Why tomlkit, on the managed node: it is the one TOML library that writes back a parsed file as
it was (comments, key order, quoting, indentation and blank lines: its documents round-trip
byte for byte), so an edit changes only the keys it sets. The standard library reads TOML only
from Python 3.11 (tomllib) and writes none; tomli-w and the old toml package rewrite the whole
file. The distributions package it as python3-tomlkit: Debian 12 (0.11.7, main), Ubuntu 22.04
(0.9.2) and 24.04 (0.12.4, universe), EL 9 through EPEL 9 (0.11.4). A hand-written editor for
containerd's TOML would be a parser of our own to maintain; the package is small (pure Python,
no dependencies) and the container_runtime role installs it before it calls the module. The
module needs it only for TOML files and says which package to install when it is missing.
This file uses only what tomlkit 0.9.2 already had (no unwrap(), which came in 0.11).

What tomlkit does not decide well is where new lines go and how they are indented: a new key or
table would take the indentation of whatever precedes it. So this module sets the indentation of
everything it adds, from the file itself: a new key that of its table's last key, a new table
that of its last sibling table (else its parent's plus the file's unit: two spaces in
`containerd config default` output, none in a flat file), and a blank line before each new table.
"""
from __future__ import annotations

import re

from ansible_collections.dlnode.gpu.plugins.module_utils.containers.merge import (
    ADDED, REMOVED, ConfigError)

try:
    import tomlkit
    from tomlkit.exceptions import ParseError, TOMLKitError
    from tomlkit.items import AoT, Bool, InlineTable, String, StringType, Table, Trivia
except ImportError:
    HAS_TOMLKIT = False
else:
    HAS_TOMLKIT = True

PACKAGE = "python3-tomlkit"
DEFAULT_UNIT = "  "
LITERAL_SAFE = re.compile(r"^[^'\x00-\x08\x0a-\x1f\x7f]*$")  # what a single-quoted TOML string can hold


def require():
    """Refuse, naming the package, when tomlkit cannot be imported by the node's Python."""
    if not HAS_TOMLKIT:
        raise ConfigError(f"format toml needs the Python library tomlkit on the managed node: install the package "
                          f"{PACKAGE} (Debian 12, Ubuntu 22.04/24.04 universe, EL 9 from EPEL 9) for the Python "
                          "that runs Ansible's modules there. Nothing was written")


def loads(text, path):
    """The file as a tomlkit document, or ConfigError with the line and column of the error."""
    require()
    try:
        return tomlkit.parse(text)
    except ParseError as err:
        raise ConfigError(f"{path} is not valid TOML: {reason(err)} at line {err.line} column {err.col}; "
                          "fix or remove the file. Nothing was written") from err
    except TOMLKitError as err:
        raise ConfigError(f"{path} is not valid TOML: {err}; fix or remove the file. Nothing was written") from err


def reason(err):
    """The parse error's words without tomlkit's own " at line L col C"."""
    text = str(err)
    cut = text.rfind(" at line ")
    return text[:cut] if cut > 0 else text


def plain(value):
    """A tomlkit value as plain Python (dict, list, str, int, float, bool, dates as they are)."""
    if isinstance(value, Bool):
        return bool(value.value)
    if isinstance(value, bool):
        return value
    if hasattr(value, "items"):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, AoT)):
        return [plain(item) for item in value]
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return value


def merge(text, doc, changes):
    """The text with the changes made to doc (parsed from text; changes from merge.plan)."""
    if not changes:
        return text
    editor = _Editor(doc)
    for change in changes:
        parent = doc
        for key in change.path[:-1]:
            parent = parent[key]
        key = change.path[-1]
        if change.action == REMOVED:
            del parent[key]
        elif change.action == ADDED:
            editor.add(parent, key, change.after, change.path)
        else:
            # tomlkit keeps the old value's indentation and end-of-line comment; the quotes are ours.
            parent[key] = editor.item(change.after, literal=is_literal(parent[key]))
    return doc.as_string()


def is_literal(value):
    """Whether a string of the file is written in single quotes."""
    return isinstance(value, String) and value.as_string().startswith("'")


def body(container):
    """(key, item) pairs of a document or a table, in file order; none for other containers."""
    if isinstance(container, Table):
        return container.value.body
    if isinstance(container, InlineTable):
        return []
    tables = getattr(container, "_tables", None)  # an out-of-order table's parts
    if tables is not None:
        return [pair for table in tables for pair in table.value.body]
    return getattr(container, "body", [])


def is_table(item):
    return isinstance(item, (Table, AoT))


def header(table):
    """A table's own header line indentation; None for a table written without a header."""
    if not isinstance(table, Table) or table.is_super_table():
        return None
    return table.trivia.indent.lstrip("\n")


def file_unit(doc):
    """How much deeper a table's keys sit than its header (two spaces in containerd's default)."""
    for table in tables_in(doc):
        indent = header(table)
        keys = [item for key, item in body(table) if key is not None and not is_table(item)]
        if indent is not None and keys:
            inner = keys[0].trivia.indent
            return inner[len(indent):] if inner.startswith(indent) else ""
    return DEFAULT_UNIT


def tables_in(container):
    for key, item in body(container):
        if key is not None and isinstance(item, Table):
            yield item
            yield from tables_in(item)


def part(parent, keys):
    """Where to add to parent: an out-of-order table (written as several parts) is resolved to the
    part with a header of its own, and that holds keys when keys are added."""
    tables = getattr(parent, "_tables", None)
    if tables is None:
        return parent
    explicit = [table for table in tables if header(table) is not None] or tables
    if keys:
        holding = [table for table in explicit if any(key is not None and not is_table(item)
                                                      for key, item in table.value.body)]
        return (holding or explicit)[0]
    return explicit[-1]


class _Editor:
    def __init__(self, doc):
        self.doc = doc
        text = doc.as_string()
        self.unit = file_unit(doc) if text.strip() else DEFAULT_UNIT
        # containerd 2 writes strings in single quotes: new strings follow the file's majority.
        self.literal = len(re.findall(r"=[ \t]*'", text)) > len(re.findall(r'=[ \t]*"', text))

    def item(self, value, literal=None):
        """A new value as a tomlkit item; strings single-quoted where the file writes them so."""
        literal = self.literal if literal is None else literal
        if isinstance(value, str) and literal and LITERAL_SAFE.match(value):
            return String(StringType.SLL, value, value, Trivia())
        return tomlkit.item(value)

    def add(self, parent, key, value, path):
        if isinstance(parent, InlineTable):
            parent[key] = value
        elif isinstance(value, dict):
            self.add_table(part(parent, keys=False), key, value, path)
        else:
            self.add_value(part(parent, keys=True), key, value)

    def key_indent(self, parent):
        keys = [item for name, item in body(parent) if name is not None and not is_table(item)]
        if keys:
            return keys[-1].trivia.indent.lstrip("\n")
        indent = header(parent)
        return "" if indent is None else indent + self.unit

    def add_value(self, parent, key, value):
        indent = self.key_indent(parent)
        item = self.item(value)
        parent.append(key, item)
        item.trivia.indent = indent  # tomlkit prefixes the table's own indentation: set it whole

    def table_indent(self, parent, path):
        siblings = [header(item) for name, item in body(parent)
                    if name is not None and isinstance(item, Table) and header(item) is not None]
        if siblings:
            return siblings[-1]
        indent = header(parent)
        if indent is not None:
            return indent + self.unit
        return self.unit * (len(path) - 1)

    def add_table(self, parent, key, value, path):
        text = parent.as_string() if parent is not self.doc else self.doc.as_string()
        if text:
            for _newline in range(0 if text.endswith("\n\n") else 1 if text.endswith("\n") else 2):
                parent.add(tomlkit.nl())
        indents = []
        table = self.build(value, self.table_indent(parent, path), indents)
        if text.endswith("\n\n"):  # the blank line that closed parent now closes the new table
            last = table
            while True:
                inner = [item for name, item in last.value.body if name is not None and isinstance(item, Table)]
                if not inner:
                    break
                last = inner[-1]
            last.add(tomlkit.nl())
        parent.append(key, table)
        for item, indent in indents:
            item.trivia.indent = indent

    def build(self, value, indent, indents):
        """A new table with its keys first, then its sub-tables; indents: (item, indentation) to set."""
        table = tomlkit.table(False)  # a header of its own even when it holds only tables
        indents.append((table, indent))
        for key, item in value.items():
            if not isinstance(item, dict):
                made = self.item(item)
                table.append(key, made)
                indents.append((made, indent + self.unit))
        for key, item in value.items():
            if isinstance(item, dict):
                table.add(tomlkit.nl())
                table.append(key, self.build(item, indent + self.unit, indents))
        return table
