#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
from __future__ import annotations

DOCUMENTATION = r"""
module: container_config
short_description: Merge settings into Docker's daemon.json or containerd's config.toml, keeping the rest of the file
version_added: 0.1.0
description:
  - Merges O(settings) into a JSON or TOML config file that the operator owns too, as JSON Merge Patch
    (RFC 7386) does. Keys the settings do not name stay as they are; an object of the settings merges
    key by key into the file's object; any other value (string, number, boolean, list) is added or
    replaces the file's value whole; a null value removes the key.
  - The file's text is edited, not rewritten. Key order, indentation, comments (TOML), quoting and blank
    lines stay, so a diff shows only the keys that changed. A new key goes at the end of its object or
    table, indented like its neighbours; a new TOML table goes after the last table of its parent.
  - Values are compared as values, not as text, so a second run with the same settings changes nothing and
    leaves the file byte for byte as it was.
  - The new text is parsed again and compared with the plan before anything is written, and it is written
    atomically (a temporary file in the same directory, optionally validated, then renamed), keeping the
    file's mode and owner.
  - The module never restarts a daemon. RV(effective_changed) tells the caller when to.
requirements:
  - For O(format=toml), the Python library tomlkit (0.9.2 or newer) on the managed node; Debian and Ubuntu
    package it as C(python3-tomlkit), EL 9 in EPEL 9.
options:
  path:
    description:
      - The config file, such as C(/etc/docker/daemon.json) or C(/etc/containerd/config.toml).
      - A missing file is created (mode 0644, directories 0755) when there is something to set.
    type: path
    required: true
  format:
    description:
      - The file's format. Left out, it comes from the file's extension (C(.json) or C(.toml)).
    type: str
    choices: [json, toml]
  settings:
    description:
      - The keys to set, nested as in the file (C(log-opts) holds C(max-size)). Null removes a key.
      - An object of the settings cannot merge into a value of the file that is not an object (the file has
        C(log-opts) set to the string C(x) and the settings set C(log-opts.max-size)), nor can a non-object value
        replace an object of the file. Both fail naming the key, and nothing is written.
      - A new key whose value is an object of nulls only is not added.
    type: dict
    required: true
  backup:
    description: Keep a copy of the file (timestamped, next to it) before it is changed.
    type: bool
    default: false
  validate:
    description:
      - A command that checks the new file before it replaces the old one; C(%s) stands for the new file's
        path (a temporary file in the same directory). Run without a shell.
      - When it fails, the old file stays and the task fails with the command's output and the changed keys.
      - For example C(dockerd --validate --config-file %s) (Docker 23.0 and newer) or
        C(containerd --config %s config dump).
    type: str
attributes:
  check_mode:
    support: full
    description: Reads the file and returns exactly the changes and the new text it would write.
  diff_mode:
    support: full
    description: Shows the file's text before and after.
  platform:
    support: full
    platforms: posix
    description: Linux.
seealso:
  - name: JSON Merge Patch
    description: The merge rule, RFC 7386.
    link: https://www.rfc-editor.org/rfc/rfc7386
author: "dlnode.gpu developers (@dlnode)"
"""

EXAMPLES = r"""
- name: Log rotation, ulimits and the NVIDIA runtime in daemon.json, keeping the operator's keys
  dlnode.gpu.container_config:
    path: /etc/docker/daemon.json
    backup: true
    settings:
      log-driver: json-file
      log-opts:
        max-size: 100m
        max-file: "3"
      default-ulimits:
        memlock: {Name: memlock, Hard: -1, Soft: -1}
      runtimes:
        nvidia:
          path: nvidia-container-runtime
          runtimeArgs: []
      debug: null
  register: daemon_json

- name: The NVIDIA runtime in containerd's config (version 2), as the default runtime
  dlnode.gpu.container_config:
    path: /etc/containerd/config.toml
    validate: containerd --config %s config dump
    settings:
      plugins:
        io.containerd.grpc.v1.cri:
          containerd:
            default_runtime_name: nvidia
            runtimes:
              nvidia:
                runtime_type: io.containerd.runc.v2
                options:
                  BinaryName: /usr/bin/nvidia-container-runtime
"""

RETURN = r"""
path:
  description: The config file.
  returned: always
  type: str
  sample: /etc/docker/daemon.json
format:
  description: The file's format.
  returned: always
  type: str
  sample: json
changed_keys:
  description: The dotted paths of the keys added, updated or removed; keys holding dots are quoted.
  returned: always
  type: list
  elements: str
  sample: ["log-opts.max-size", "runtimes.nvidia", 'plugins."io.containerd.grpc.v1.cri".containerd.default_runtime_name']
changes:
  description: Each changed key with what was done and its value before (not for added) and after (not for removed).
  returned: always
  type: list
  elements: dict
  sample: [{"key": "log-opts.max-size", "action": "updated", "before": "10m", "after": "100m"}]
effective_changed:
  description:
    - Whether the values of the file changed (or would change), which is when the daemon needs a restart.
      The same as C(changed) here; a caller that combines several steps can rely on this one.
  returned: always
  type: bool
  sample: true
backup_file:
  description: The copy made of the old file.
  returned: when O(backup=true) and the file changed
  type: str
  sample: /etc/docker/daemon.json.12345.2026-11-25@10:00:00~
"""

import shlex

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.module_utils.common.commands import C_LOCALE
from ansible_collections.dlnode.gpu.plugins.module_utils.common.module import run_module
from ansible_collections.dlnode.gpu.plugins.module_utils.containers import config
from ansible_collections.dlnode.gpu.plugins.module_utils.containers.merge import ConfigError

ARGUMENT_SPEC = dict(
    path=dict(type="path", required=True),
    format=dict(type="str", choices=["json", "toml"]),
    settings=dict(type="dict", required=True),
    backup=dict(type="bool", default=False),
    validate=dict(type="str"),
)


def validator(module, plan, result):
    """What runs on the complete temporary file before it replaces the old one: validate, then backup."""
    command = module.params["validate"]
    exists = plan.before is not None

    def before_move(tmp):
        if command:
            argv = [word.replace("%s", tmp) for word in shlex.split(command)]
            rc, out, err = module.run_command(argv, environ_update=C_LOCALE)
            if rc != 0:
                raise ConfigError(f"validate: {command} refused the new {plan.path} (rc {rc}): "
                                  f"{(err or out).strip() or 'no output'}; the keys it changed: {', '.join(plan.keys)}. "
                                  "The old file was kept")
        if module.params["backup"] and exists:
            result["backup_file"] = module.backup_local(files.host_path(plan.path))

    return before_move


def run(module, result):
    params = module.params
    if params["validate"] is not None and "%s" not in params["validate"]:
        raise ConfigError(f"validate: must contain %s where the new file's path goes, got {params['validate']!r}")
    plan = config.plan(params["path"], params["settings"], params["format"])
    result.update(path=plan.path, format=plan.format, changed_keys=plan.keys,
                  changes=[change.public() for change in plan.changes])
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = plan.diff()
    if plan.changed and not module.check_mode:
        files.write(module, plan, before_move=validator(module, plan, result))
        if files.read(plan.path) != plan.after:
            raise ConfigError(f"{plan.path} does not read back as written; another process may be writing it",
                              changed=True, effective_changed=True)
    result.update(changed=plan.changed, effective_changed=plan.changed)


def main():
    run_module(ARGUMENT_SPEC, run, result=dict(effective_changed=False, changed_keys=[], changes=[]))


if __name__ == "__main__":
    main()
