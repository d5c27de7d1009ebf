#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
from __future__ import annotations

DOCUMENTATION = r"""
module: python_environment
short_description: A named Python virtual environment filled from a list of requirements by uv or pip, online or offline
version_added: 0.1.0
description:
  - "Creates the virtual environment O(path) with O(python) when it does not exist (C(uv venv), or C(python -m venv)
    for pip), installs O(requirements) into it from PyPI, an index (O(index_url), O(extra_index_urls): a CUDA-tagged
    PyTorch index, an internal mirror) or a wheelhouse directory on the node (O(wheelhouse): C(--no-index
    --find-links)), then reads back the installed distributions."
  - "The plan is two dry runs. The first reaches no index (pip C(--no-index), uv C(--offline)): when it would install
    nothing, every requirement is satisfied by what the environment holds and the module reports changed=false having
    downloaded nothing. Otherwise a dry run against the source says exactly which distributions an install adds or
    replaces; check mode stops there (for an environment that does not exist yet it reports the requirements as given)."
  - "A requirement the source cannot satisfy (a version that does not exist, a wheel missing from the wheelhouse) fails
    in the installer's resolution, before it changes anything; the module reads the environment back after the failure
    and says whether it is unchanged. An environment this call created and could not fill is removed."
  - "With O(owner) (and O(group)) the whole environment is made theirs."
options:
  path:
    description: The environment's directory (V(/opt/dlnode/venvs/torch)).
    type: path
    required: true
  python:
    description: The interpreter that makes a new environment, a name on C(PATH) or a path (V(python3.12)).
    type: str
    default: python3
  requirements:
    description: "Requirements: a name, optional extras and version clauses (V(jax==0.8.1), V(jax[cuda13]>=0.8), V(numpy))."
    type: list
    elements: str
    default: []
  installer:
    description: V(uv) (the faster, see the README's figures) or V(pip).
    type: str
    choices: [uv, pip]
    default: uv
  uv:
    description: The uv binary; found on C(PATH) when omitted.
    type: path
  index_url:
    description: The index instead of PyPI (V(https://download.pytorch.org/whl/cu130), an internal mirror).
    type: str
  extra_index_urls:
    description: Indexes searched besides O(index_url).
    type: list
    elements: str
    default: []
  wheelhouse:
    description: A directory of wheels on the node; no index is reached (C(--no-index --find-links)).
    type: path
  trusted_hosts:
    description: Hosts whose index is trusted without a valid TLS certificate (pip C(--trusted-host), uv C(--allow-insecure-host)). Only when asked.
    type: list
    elements: str
    default: []
  cache_dir:
    description: The installer's download cache (C(--cache-dir)); its own default when omitted.
    type: path
  constraints:
    description: A constraints file on the node (C(--constraint)).
    type: path
  ca_bundle:
    description:
      - "The CA certificates that verify the index's TLS (C(PIP_CERT) for pip, C(SSL_CERT_FILE) for uv): behind a proxy
        that re-signs TLS, or an internal index with its own CA. Omitted: pip's and uv's own bundles."
    type: path
  owner:
    description: The user who owns the environment; root's when omitted.
    type: str
  group:
    description: The environment's group (with O(owner)); the owner's primary group when omitted.
    type: str
author: "dlnode.gpu developers (@dlnode)"
attributes:
  check_mode:
    support: full
    description: Returns the distributions an install would add or replace (the installer's dry run); creates nothing.
  diff_mode:
    support: full
    description: The installed distributions before and after.
"""

EXAMPLES = r"""
- name: JAX for CPU from PyPI
  dlnode.gpu.python_environment:
    path: /opt/dlnode/venvs/jax
    requirements: [jax==0.8.1, jaxlib==0.8.1]

- name: PyTorch 2.11 built for CUDA 13.0, from PyTorch's index
  dlnode.gpu.python_environment:
    path: /opt/dlnode/venvs/torch
    python: python3.12
    requirements: [torch==2.11.0+cu130]
    index_url: https://download.pytorch.org/whl/cu130
    extra_index_urls: [https://pypi.org/simple]
    owner: research

- name: The same from a wheelhouse on an air-gapped node
  dlnode.gpu.python_environment:
    path: /opt/dlnode/venvs/jax
    requirements: [jax==0.8.1, jaxlib==0.8.1]
    wheelhouse: /srv/wheelhouse
"""

RETURN = r"""
created:
  description: Whether the environment was (or in check mode would be) created.
  returned: always
  type: bool
  sample: false
to_install:
  description: Distributions added or replaced, as name to version (in check mode, what would be).
  returned: always
  type: dict
  sample: {"jax": "0.8.1", "jaxlib": "0.8.1", "ml-dtypes": "0.5.3"}
installed:
  description: Every distribution in the environment after the run, as name to version.
  returned: always
  type: dict
  sample: {"jax": "0.8.1", "jaxlib": "0.8.1", "numpy": "2.3.4"}
installer:
  description: The installer used.
  returned: always
  type: str
  sample: uv
"""

import grp
import os
import pwd
import shutil

from ansible_collections.dlnode.gpu.plugins.module_utils.common.commands import Commands
from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError
from ansible_collections.dlnode.gpu.plugins.module_utils.common.module import run_module
from ansible_collections.dlnode.gpu.plugins.module_utils.frameworks import venv

ARGUMENT_SPEC = dict(
    path=dict(type="path", required=True),
    python=dict(type="str", default="python3"),
    requirements=dict(type="list", elements="str", default=[]),
    installer=dict(type="str", choices=["uv", "pip"], default="uv"),
    uv=dict(type="path"),
    index_url=dict(type="str"),
    extra_index_urls=dict(type="list", elements="str", default=[]),
    wheelhouse=dict(type="path"),
    trusted_hosts=dict(type="list", elements="str", default=[]),
    cache_dir=dict(type="path"),
    constraints=dict(type="path"),
    ca_bundle=dict(type="path"),
    owner=dict(type="str"),
    group=dict(type="str"),
)


def owner_ids(params):
    """(uid, gid) of owner and group, or None; refused when either does not exist."""
    if not params["owner"]:
        if params["group"]:
            raise DlnodeError("group: needs owner")
        return None
    try:
        user = pwd.getpwnam(params["owner"])
    except KeyError:
        raise DlnodeError(f"owner: no user {params['owner']!r} on this node") from None
    if not params["group"]:
        return user.pw_uid, user.pw_gid
    try:
        return user.pw_uid, grp.getgrnam(params["group"]).gr_gid
    except KeyError:
        raise DlnodeError(f"group: no group {params['group']!r} on this node") from None


def chown_tree(path, ids, check_mode):
    """Give every file under path to ids; whether any was someone else's."""
    changed = False
    for top, dirs, names in os.walk(path):
        for name in [top] + [os.path.join(top, item) for item in dirs + names]:
            stat = os.lstat(name)
            if (stat.st_uid, stat.st_gid) != ids:
                changed = True
                if check_mode:
                    return True
                os.lchown(name, *ids)
    return changed


def check_inputs(module, params):
    venv.check_requirements(params["requirements"])
    if params["wheelhouse"] and not os.path.isdir(params["wheelhouse"]):
        raise DlnodeError(f"wheelhouse: {params['wheelhouse']} is not a directory on this node")
    for option in ("constraints", "ca_bundle"):
        if params[option] and not os.path.isfile(params[option]):
            raise DlnodeError(f"{option}: {params[option]} is not a file on this node")
    uv = None
    if params["installer"] == "uv":
        uv = params["uv"] or module.get_bin_path("uv")
        if not uv or not os.access(uv, os.X_OK):
            raise DlnodeError(f"uv: {params['uv'] or 'uv on PATH'} is not an executable: install uv (PyPI) "
                              "or choose installer pip")
    interpreter = params["python"] if "/" in params["python"] else module.get_bin_path(params["python"])
    if not interpreter or not os.access(interpreter, os.X_OK):
        raise DlnodeError(f"python: {params['python']} is not an interpreter on this node")
    return uv, interpreter


def install(module, installer, params, result, created):
    """Install; on failure read the environment back and say whether it is as it was."""
    before = result["installed"]
    rc, _out, err = installer.install(params["requirements"])
    if rc == 0:
        return
    text, named = venv.failure_text(err, params["requirements"])
    what = ", ".join(named) if named else ", ".join(params["requirements"])
    if created:
        shutil.rmtree(params["path"], ignore_errors=True)
        state = f"the environment {params['path']} this run created was removed"
    else:
        after = installer.installed()
        state = (f"{params['path']} is unchanged" if after == before
                 else f"{params['path']} changed: {sorted(set(after.items()) ^ set(before.items()))}")
    raise DlnodeError(f"requirements: {what} could not be installed by {params['installer']} "
                      f"from {source_text(params)}: {text}; {state}")


def source_text(params):
    if params["wheelhouse"]:
        return f"the wheelhouse {params['wheelhouse']} (no index)"
    return params["index_url"] or "PyPI"


def run(module, result):
    params = module.params
    uv, interpreter = check_inputs(module, params)
    ids = owner_ids(params)
    tls = {"PIP_CERT": params["ca_bundle"], "SSL_CERT_FILE": params["ca_bundle"]} if params["ca_bundle"] else {}
    commands = Commands(module, environ=dict(venv.ENVIRON, **tls))
    installer = venv.Installer(commands, params["installer"], params["path"], params, uv=uv)
    created = not os.path.exists(venv.python(params["path"]))
    result.update(created=created, installer=params["installer"])
    if created:
        result["to_install"] = {venv.normalize(item.split("[")[0].split("=")[0].split("<")[0].split(">")[0].strip()):
                                item for item in params["requirements"]}
        if module.check_mode:
            result["changed"] = True
            return
        rc, out, err = module.run_command(installer.create_argv(interpreter), environ_update=commands.environ)
        if rc != 0:
            shutil.rmtree(params["path"], ignore_errors=True)
            raise DlnodeError(f"python: cannot create {params['path']} with {interpreter}: {(err or out).strip()}"
                              + ("; install python3-venv" if "ensurepip" in (err or out) else ""))
    result["installed"] = installer.installed()
    to_install, rc = {}, 0
    if params["requirements"] and not created:
        rc, to_install, _err = installer.dry_run(params["requirements"], offline=True)
        if rc != 0 or to_install:
            rc, to_install, err = installer.dry_run(params["requirements"], offline=False)
            if rc != 0 and module.check_mode:
                text, named = venv.failure_text(err, params["requirements"])
                raise DlnodeError(f"requirements: {', '.join(named or params['requirements'])} could not be resolved "
                                  f"from {source_text(params)}: {text}")
            if rc != 0:
                to_install = {}  # the install below fails in the same resolution and says why
        result["to_install"] = to_install
    before = dict(result["installed"])
    unresolved = not created and params["requirements"] and rc != 0
    if (created or to_install or unresolved) and params["requirements"] and not module.check_mode:
        install(module, installer, params, result, created)
        result["installed"] = installer.installed()
        result["to_install"] = {name: version for name, version in result["installed"].items() if before.get(name) != version}
    owned = chown_tree(params["path"], ids, module.check_mode) if ids and os.path.exists(params["path"]) else False
    result["changed"] = bool(created or result["to_install"] or owned)
    result["diff"] = {"before": "".join(f"{name}=={version}\n" for name, version in sorted(before.items())),
                      "after": "".join(f"{name}=={version}\n" for name, version in sorted(result["installed"].items()))}


def main():
    run_module(ARGUMENT_SPEC, run, result=dict(created=False, to_install={}, installed={}, installer=""),
               mutually_exclusive=[("wheelhouse", "index_url"), ("wheelhouse", "extra_index_urls")])


if __name__ == "__main__":
    main()
