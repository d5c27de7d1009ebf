#!/usr/bin/env python3
"""Save and restore the host kernel state that node containers can change.

Node containers share the host kernel, so a scenario that sets vm.swappiness, hugepages,
transparent hugepages or swap changes the machine running the tests. `save FILE` records
it at create; `restore FILE` puts it back at destroy, turns off swap areas that were not
active at save time and detaches loop devices backed by the tests' files.
"""
from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

# The kernel settings the roles manage, one glob a line (fingerprint.sh prints the same ones).
KNOBS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "knobs.txt")
# Per network namespace sysctls are each container's own and need no restore.
OWN_PER_NODE = "/proc/sys/net/"
# Files under these paths that read fine but must never be written back.
SKIP = {"/proc/sys/vm/drop_caches", "/proc/sys/vm/compact_memory", "/proc/sys/vm/stat_refresh"}
TEST_FILES = "/var/tmp/dlnode-"


def read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as handle:
            value = handle.read().strip()
    except OSError:
        return None
    if "[" in value:  # "always [madvise] never": the selected choice is what we restore
        value = value.split("[", 1)[1].split("]", 1)[0]
    return value


def swaps() -> list[str]:
    with open("/proc/swaps", encoding="ascii") as handle:
        return [line.split()[0] for line in handle.readlines()[1:]]


def patterns() -> list[str]:
    with open(KNOBS, encoding="ascii") as handle:
        return [line.strip() for line in handle if line.strip() and not line.startswith("#")]


def save(path: str) -> None:
    state = {}
    for pattern in patterns():
        for name in sorted(glob.glob(pattern)):
            if name in SKIP or name.startswith(OWN_PER_NODE) or not os.access(name, os.W_OK):
                continue
            value = read(name)
            if value is not None:
                state[name] = value
    with open(path, "w", encoding="ascii") as handle:
        json.dump({"files": state, "swaps": swaps()}, handle, indent=1)


def restore(path: str) -> None:
    with open(path, encoding="ascii") as handle:
        saved = json.load(handle)
    for area in swaps():
        if area not in saved["swaps"] and area.startswith("/dev/"):
            subprocess.run(["swapoff", area], check=False, stderr=subprocess.DEVNULL)
    if any(area not in saved["swaps"] for area in swaps()):
        # A swap file enabled inside a node shows in /proc/swaps with the node's path, which
        # does not resolve here once the node is gone: turn off the tests' files by their own.
        for name in glob.glob(TEST_FILES + "*/**", recursive=True):
            if os.path.isfile(name):
                subprocess.run(["swapoff", name], check=False, stderr=subprocess.DEVNULL)
    listing = subprocess.run(["losetup", "-n", "-O", "NAME,BACK-FILE", "-l"], capture_output=True,
                             text=True, check=False).stdout
    for line in listing.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[1].startswith(TEST_FILES):
            subprocess.run(["losetup", "-d", parts[0]], check=False)
    for name, value in saved["files"].items():
        if read(name) == value:
            continue
        try:
            with open(name, "w", encoding="ascii") as handle:
                handle.write(value)
        except OSError as err:
            print(f"host_state: could not restore {name} to {value!r}: {err}", file=sys.stderr)
    os.remove(path)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("save", "restore"):
        sys.exit("usage: host_state.py save|restore FILE")
    (save if sys.argv[1] == "save" else restore)(sys.argv[2])
