#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
from __future__ import annotations

DOCUMENTATION = r"""
module: cuda_environment
short_description: Select the default CUDA toolkit (alternatives) and write its environment for shells and units
version_added: 0.1.0
description:
  - "The C(cuda_toolkit) role's last step, one call: points the alternatives group O(name) (C(/usr/local/cuda),
    registered by NVIDIA's C(cuda-toolkit-X-Y-config-common) packages) at O(alternative) with
    C(update-alternatives --set), writes O(profile_file) for login shells (C(CUDA_HOME), and C(PATH) and
    C(LD_LIBRARY_PATH) prepended when missing) and O(environment_file) for systemd units (C(EnvironmentFile=))
    and Slurm prologs (C(KEY=value) lines, C(PATH) whole: systemd expands no variables), then reads the group back."
  - "With O(variables) and no O(cuda_home) it writes any other node-wide environment the same way: the C(frameworks)
    role's training environment (NCCL, OpenMP, MKL, CUDA device order) in its own two files."
  - "In check mode an O(alternative) the group does not have yet (its toolkit is about to be installed) is
    predicted as a change; in a real run it is refused, naming the group's alternatives."
options:
  alternative:
    description: The directory the group must point at (V(/usr/local/cuda-13.0)); omitted leaves alternatives alone.
    type: path
  name:
    description: The alternatives group.
    type: str
    default: cuda
  cuda_home:
    description: C(CUDA_HOME) (V(/usr/local/cuda)); omitted writes none (the C(frameworks) role's training environment).
    type: path
  variables:
    description:
      - "More variables, name to value, written after the CUDA ones (the C(frameworks) role's NCCL, OMP and CUDA settings).
        A value may not hold quotes, backslashes, C($), backticks or line breaks: systemd does not expand them and the
        shell does, so the two files would disagree."
    type: dict
    default: {}
  comment:
    description: The first line's words after C(Managed by dlnode.gpu).
    type: str
    default: "(cuda_toolkit): the default CUDA toolkit's environment"
  path:
    description: Directories to put before C(PATH).
    type: list
    elements: path
    default: []
  library_path:
    description: Directories to put before C(LD_LIBRARY_PATH).
    type: list
    elements: path
    default: []
  system_path:
    description: The C(PATH) the environment file prepends O(path) to (systemd's own default).
    type: str
    default: /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  profile_file:
    description: The login shells' script.
    type: path
    default: /etc/profile.d/dlnode-cuda.sh
  environment_file:
    description: The systemd and Slurm environment file.
    type: path
    default: /etc/dlnode/cuda.env
author: "dlnode.gpu developers (@dlnode)"
attributes:
  check_mode:
    support: full
    description: Returns the alternative and the files it would change; a group its toolkit is about to register is predicted.
  diff_mode:
    support: full
    description: Shows each file before and after.
"""

EXAMPLES = r"""
- name: CUDA 13.0 the default, for login shells and units
  dlnode.gpu.cuda_environment:
    alternative: /usr/local/cuda-13.0
    cuda_home: /usr/local/cuda
    path: [/usr/local/cuda/bin]
    library_path: [/usr/local/cuda/lib64]
"""

RETURN = r"""
alternative:
  description: The group's value before and after.
  returned: always
  type: dict
  sample: {"before": "/usr/local/cuda-13.0", "after": "/usr/local/cuda-12.8"}
files:
  description: The files written (or to be written in check mode).
  returned: always
  type: list
  elements: str
  sample: [/etc/profile.d/dlnode-cuda.sh]
"""

import re
import shlex

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.module_utils.common.commands import Commands
from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError
from ansible_collections.dlnode.gpu.plugins.module_utils.common.module import run_module

ARGUMENT_SPEC = dict(
    alternative=dict(type="path"),
    name=dict(type="str", default="cuda"),
    cuda_home=dict(type="path"),
    variables=dict(type="dict", default={}),
    comment=dict(type="str", default="(cuda_toolkit): the default CUDA toolkit's environment"),
    path=dict(type="list", elements="path", default=[]),
    library_path=dict(type="list", elements="path", default=[]),
    system_path=dict(type="str", default="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
    profile_file=dict(type="path", default="/etc/profile.d/dlnode-cuda.sh"),
    environment_file=dict(type="path", default="/etc/dlnode/cuda.env"),
)
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
UNSAFE = ('"', "'", "\\", "$", "`", "\n", "\r")


def header(params):
    return f"# Managed by dlnode.gpu {params['comment']}. Edits are replaced.\n"


def check_variables(variables):
    """Refuse a name that is no shell variable, or a value the shell and systemd would read differently."""
    bad = [f"{name!r} is not a variable name" for name in variables if not NAME_RE.match(str(name))]
    bad += [f"{name}={value!r} holds a quote, backslash, $, backtick or line break" for name, value in variables.items()
            if any(char in str(value) for char in UNSAFE)]
    if bad:
        raise DlnodeError("variables: " + "; ".join(bad))


def query(commands, name):
    """{value, alternatives} of an alternatives group; None when the group does not exist."""
    rc, out, _err = commands.result("update-alternatives", "--query", name)
    if rc != 0:
        return None
    fields = {"value": None, "alternatives": []}
    for line in out.splitlines():
        key, _sep, value = line.partition(": ")
        if key == "Value":
            fields["value"] = value.strip()
        elif key == "Alternative":
            fields["alternatives"].append(value.strip())
    return fields


def profile(params):
    """POSIX sh for /etc/profile.d: each directory put first once, so a nested login shell adds nothing twice."""
    lines = [header(params)] + ([f"export CUDA_HOME={params['cuda_home']}\n"] if params["cuda_home"] else [])
    for variable, directories in (("PATH", params["path"]), ("LD_LIBRARY_PATH", params["library_path"])):
        for directory in reversed(directories):
            lines.append(f'case ":${{{variable}:-}}:" in *":{directory}:"*) ;; '
                         f'*) {variable}="{directory}${{{variable}:+:${variable}}}" ;; esac\n')
        if directories:
            lines.append(f"export {variable}\n")
    lines += [f"export {name}={shlex.quote(str(value))}\n" for name, value in params["variables"].items()]
    return "".join(lines)


def environment(params):
    """KEY=value lines, as systemd's EnvironmentFile= and a shell's `set -a; . file` read them."""
    lines = [header(params)]
    if params["cuda_home"]:
        lines.append(f"CUDA_HOME={params['cuda_home']}\n")
    if params["cuda_home"] or params["path"]:
        lines.append("PATH=" + ":".join(params["path"] + [params["system_path"]]) + "\n")
    if params["library_path"]:
        lines.append("LD_LIBRARY_PATH=" + ":".join(params["library_path"]) + "\n")
    lines += [f"{name}={value}\n" for name, value in params["variables"].items()]
    return "".join(lines)


def select(module, commands, result):
    """Point the group at the alternative; the change, or None when it already does."""
    params = module.params
    wanted = params["alternative"]
    group = query(commands, params["name"]) if commands.path("update-alternatives") else None
    current = group["value"] if group else None
    result["alternative"] = {"before": current, "after": wanted}
    if current == wanted:
        return False
    if group is None or wanted not in group["alternatives"]:
        if module.check_mode:
            return True  # its toolkit's package, about to be installed, registers it
        have = ", ".join(group["alternatives"]) if group else "none: the group does not exist"
        raise DlnodeError(f"cuda_toolkit_default: {wanted} is not an alternative of {params['name']} (it has {have}); "
                          "the toolkit's package registers it: is that toolkit installed?")
    if not module.check_mode:
        commands.run("update-alternatives", "--set", params["name"], wanted)
        after = query(commands, params["name"])["value"]
        if after != wanted:
            raise DlnodeError(f"update-alternatives --set {params['name']} {wanted} left it at {after}")
    return True


def run(module, result):
    params = module.params
    check_variables(params["variables"])
    commands = Commands(module, {"update-alternatives": "dpkg (or chkconfig's alternatives on the RHEL family)"})
    switched = select(module, commands, result) if params["alternative"] else False
    changes = [files.sync(module, params["profile_file"], profile(params)),
               files.sync(module, params["environment_file"], environment(params))]
    result.update(changed=switched or any(change.changed for change in changes),
                  files=[change.path for change in changes if change.changed], diff=files.diffs(changes))
    if not params["alternative"]:
        result["alternative"] = {"before": None, "after": None}


def main():
    run_module(ARGUMENT_SPEC, run, result=dict(alternative={}, files=[]))


if __name__ == "__main__":
    main()
