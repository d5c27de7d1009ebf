# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""What nvidia_gpu applied that NVML cannot read back (locked clocks), per GPU and per boot.

The state file is keyed by GPU UUID and the kernel's boot id: a reboot resets locked clocks,
and the recorded values of an earlier boot are ignored.
"""
from __future__ import annotations

import json
import os

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError

BOOT_ID = "/proc/sys/kernel/random/boot_id"
STATE_VERSION = 1


class StateFileError(DlnodeError):
    """The state file cannot be read or written."""


def read_boot_id(path=None):
    """The kernel's boot id, which changes on every boot; None if unreadable."""
    try:
        return (files.read(path or BOOT_ID) or "").strip() or None
    except files.FileError:
        return None


def empty_state():
    return {"version": STATE_VERSION, "gpus": {}}


def load_state(path):
    """The state file's content; an empty state when the file does not exist."""
    try:
        text = files.read(path)
        state = empty_state() if text is None else json.loads(text)
    except (files.FileError, ValueError) as err:
        raise StateFileError(f"state_file: cannot read {path} ({err}); starting from an empty state") from None
    if not isinstance(state, dict) or not isinstance(state.get("gpus"), dict):
        raise StateFileError(f"state_file: {path} is not a dlnode nvidia_gpu state file; starting from an empty state")
    return state


def recorded_settings(state, uuid, boot_id):
    """What was applied to this GPU during this boot."""
    entry = state["gpus"].get(uuid)
    if boot_id is None or not isinstance(entry, dict) or entry.get("boot_id") != boot_id:
        return {}
    settings = entry.get("settings")
    return settings if isinstance(settings, dict) else {}


def record_settings(state, uuid, boot_id, settings):
    """Remember applied settings; anything recorded in an earlier boot is dropped."""
    entry = state["gpus"].get(uuid)
    if not isinstance(entry, dict) or entry.get("boot_id") != boot_id:
        entry = {"boot_id": boot_id, "settings": {}}
        state["gpus"][uuid] = entry
    entry["settings"].update(settings)


def save_state(module, path, state):
    """Write the state file atomically (a crash leaves the old file or the new one); module may be None."""
    content = json.dumps(state, indent=2, sort_keys=True) + "\n"
    try:
        files.write(module, files.FileChange(path, None, content))
    except files.FileError as err:
        reason = os.strerror(err.errno) if err.errno else str(err)
        raise StateFileError(f"state_file: cannot write {path} ({reason}); writing it needs become") from None
