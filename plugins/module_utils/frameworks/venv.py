# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""A Python virtual environment filled by pip or uv: the command lines, the plan from a dry run, the read-back.

Two dry runs make the plan. The first reaches no index (pip --no-index, uv --offline): when it installs
nothing, every requirement is already satisfied by the environment's distributions, so a re-run downloads
nothing by construction. Otherwise the second dry run, against the source, says exactly what an install
would add or replace (pip's --report, uv's "+ name==version" lines).
"""
from __future__ import annotations

import json
import os
import re

from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError

# name[extras] and version clauses (PEP 508 without markers or URLs: a list of pins, not a resolver's input).
REQUIREMENT_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?(?:\[[A-Za-z0-9._,-]+\])?"
                            r"(?:\s*(?:==|>=|<=|~=|!=|<|>|===)\s*[A-Za-z0-9.*+!_-]+(?:\s*,\s*(?:==|>=|<=|~=|!=|<|>)\s*[A-Za-z0-9.*+!_-]+)*)?$")
UV_LINE_RE = re.compile(r"^ ([+-]) ([A-Za-z0-9._-]+)==(\S+)")
ENVIRON = {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1", "PIP_PROGRESS_BAR": "off",
           "UV_NO_PROGRESS": "1", "UV_PYTHON_DOWNLOADS": "never", "NO_COLOR": "1"}


class VenvError(DlnodeError):
    """A requirement that cannot be installed, or an environment that cannot be read."""


def normalize(name):
    """PEP 503's form of a distribution name: jax_cuda13_plugin and Jax.Cuda13-Plugin are jax-cuda13-plugin."""
    return re.sub(r"[-_.]+", "-", name).lower()


def check_requirements(requirements, option="requirements"):
    bad = [f"{option}[{index}]: {item!r}" for index, item in enumerate(requirements) if not REQUIREMENT_RE.match(str(item))]
    if bad:
        raise VenvError("; ".join(bad) + " is not a requirement such as jax==0.8.1, jax[cuda13]>=0.8 or numpy "
                        "(a name, optional extras and version clauses)")


def python(path):
    return os.path.join(path, "bin", "python")


def source_args(params, installer):
    """The options saying where packages come from, the same for the dry run and the install."""
    args = []
    if params.get("wheelhouse"):
        args += ["--no-index", "--find-links", params["wheelhouse"]]
    else:
        if params.get("index_url"):
            args += ["--index-url", params["index_url"]]
        for url in params.get("extra_index_urls") or []:
            args += ["--extra-index-url", url]
    for host in params.get("trusted_hosts") or []:
        args += ["--trusted-host", host] if installer == "pip" else ["--allow-insecure-host", host]
    if params.get("constraints"):
        args += ["--constraint", params["constraints"]]
    return args


def cache_args(params):
    return ["--cache-dir", params["cache_dir"]] if params.get("cache_dir") else []


class Installer:
    """pip (python -m pip inside the environment) or uv (one binary outside it) acting on one environment."""

    def __init__(self, commands, name, path, params, uv=None):
        self.commands = commands
        self.name = name
        self.path = path
        self.params = params
        self.uv = uv

    def _run(self, args, ok=False):
        """(rc, out, err) of the installer; for pip, python -m pip of the environment."""
        if self.name == "uv":
            argv = [self.uv, "pip", *args, "--python", python(self.path)]
        else:
            argv = [python(self.path), "-m", "pip", *args]
        rc, out, err = self.commands.module.run_command(argv, environ_update=self.commands.environ)
        if rc != 0 and not ok:
            raise VenvError(f"{' '.join(argv)} failed (rc {rc}): {(err or out).strip()}")
        return rc, out, err

    def create_argv(self, interpreter):
        if self.name == "uv":
            return [self.uv, "venv", "--quiet", "--python", interpreter, self.path]
        return [interpreter, "-m", "venv", self.path]

    def installed(self):
        """{normalized name: version} of every distribution in the environment."""
        if self.name == "pip" and not os.path.exists(os.path.join(self.path, "bin", "pip")):
            raise VenvError(f"installer: {self.path} has no pip (an environment uv made); use installer uv, or remove "
                            "the environment so that pip makes it again")
        _rc, out, _err = self._run(["list", "--format", "json"] + (["--disable-pip-version-check"] if self.name == "pip" else []))
        return {normalize(item["name"]): item["version"] for item in json.loads(out or "[]")}

    def dry_run(self, requirements, offline):
        """(rc, {name: version} to install, stderr) of a dry run; offline reaches no index."""
        constraint = ["--constraint", self.params["constraints"]] if self.params.get("constraints") else []
        where = ([("--offline" if self.name == "uv" else "--no-index"), *constraint] if offline
                 else source_args(self.params, self.name))
        report = [] if self.name == "uv" else ["--quiet", "--report", "-"]
        rc, out, err = self._run(["install", "--dry-run", *report, *where, *cache_args(self.params), *requirements], ok=True)
        found = {}
        if self.name == "uv":
            for line in (out + "\n" + err).splitlines():
                match = UV_LINE_RE.match(line)
                if match and match.group(1) == "+":
                    found[normalize(match.group(2))] = match.group(3)
        elif rc == 0 and "{" in out:
            items = json.loads(out[out.index("{"):]).get("install", [])
            found = {normalize(item["metadata"]["name"]): item["metadata"]["version"] for item in items}
        return rc, found, err

    def install(self, requirements):
        args = ["install", *source_args(self.params, self.name), *cache_args(self.params), *requirements]
        if self.name == "pip":
            args.insert(1, "--quiet")
        return self._run(args, ok=True)


def failure_text(err, requirements):
    """The installer's error lines, shortened, and the requirements it names."""
    lines = [line.strip() for line in err.splitlines() if line.strip() and not line.startswith(("Using Python", "  Using"))]
    text = " ".join(lines)[-1500:]
    lowered = text.lower()
    named = [item for item in requirements if normalize(re.split(r"[\[<>=!~ ]", item)[0]) in normalize(lowered)
             or re.split(r"[\[<>=!~ ]", item)[0].lower() in lowered]
    return text, named
