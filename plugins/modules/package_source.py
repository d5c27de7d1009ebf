#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
from __future__ import annotations

DOCUMENTATION = r"""
module: package_source
short_description: One signed package source (apt or dnf), its key checked by fingerprint, proven by an update
version_added: 0.1.0
description:
  - Configures one signed package repository, or a mirror of it at a URL the operator gives, or removes it.
    The collection's one way to add a package source; the NVIDIA, CUDA, container and framework roles call it.
  - "apt: a deb822 file C(/etc/apt/sources.list.d/<name>.sources) whose C(Signed-By) names a keyring that holds
    only the given key (binary OpenPGP, C(/etc/apt/keyrings/<name>.gpg)), and optionally a preferences file
    C(/etc/apt/preferences.d/<name>.pref) that pins every package of the source (NVIDIA's instructions pin
    their repository at 600). A flat repository such as NVIDIA's has O(suites=[/]) and no O(components)."
  - "dnf: C(/etc/yum.repos.d/<name>.repo) with C(gpgcheck) (and optionally C(repo_gpgcheck)) and C(gpgkey)
    naming the key file C(/etc/pki/rpm-gpg/RPM-GPG-KEY-<name>). The dnf path is planned and unit-tested only:
    no EL archive was reachable to run it against."
  - The key (armored text from O(key), or fetched from O(key_url)) is read in pure Python and must hold exactly
    the keys of O(fingerprints) before anything is written, in check mode too (no gpg needed).
  - After a change the source is proven with an update of that source alone (C(apt-get update) of its file,
    C(dnf makecache --repo)). When that fails (a key that does not sign the repository, an unsigned repository,
    an unreachable URL) every file this call wrote or removed is put back as it was, and the task fails with
    apt's reason.
  - "A repository configured in another file under the same URL and suite (C(cuda-keyring)'s C(.list)) makes
    apt refuse both (C(Conflicting values set for option Signed-By)): it is refused here before anything is
    written, unless that file is listed in O(replaces)."
options:
  name:
    description: The source's name; it names its files. Letters, digits, C(_), C(-) and C(.) (apt ignores other file names).
    type: str
    required: true
  state:
    description: V(present) configures the source; V(absent) removes its files (source, keyring, pin).
    type: str
    choices: [present, absent]
    default: present
  url:
    description:
      - The repository's URL, or a mirror's (http, https, file). Required with O(state=present).
    type: str
  suites:
    description:
      - apt only, required there. Suites (V(bookworm-backports)), or V(/) for a flat repository (NVIDIA's).
    type: list
    elements: str
  components:
    description: apt only. Components (V(main)); none for a flat repository, required otherwise.
    type: list
    elements: str
    default: []
  architectures:
    description: apt only. Restrict the source to these architectures (V(amd64)); empty takes apt's default.
    type: list
    elements: str
    default: []
  key:
    description:
      - The repository's public key as ASCII-armored text (the role ships it). One of O(key) and O(key_url) is
        required with O(state=present).
    type: str
  key_url:
    description:
      - Where the module fetches the key (armored or binary), on the node. http, https or file URL.
    type: str
  fingerprints:
    description:
      - The full fingerprints (40 hex digits, spaces allowed) the key must hold. Every one must be a key in it
        (a primary key or subkey) and every key in it must be one of them. Required with O(state=present).
    type: list
    elements: str
  keyring:
    description:
      - Where the key is installed. Default C(/etc/apt/keyrings/<name>.gpg) (apt, binary),
        C(/etc/pki/rpm-gpg/RPM-GPG-KEY-<name>) (dnf, armored).
    type: path
  pin_priority:
    description:
      - apt only. Write C(/etc/apt/preferences.d/<name>.pref) pinning the source's packages at this priority
        (NVIDIA's instructions use 600). Unset writes no pin file (and removes this source's one).
    type: int
  pin:
    description:
      - apt only. What the pin matches, the value of its C(Pin:) line (V(release n=bookworm-backports),
        V(release l=NVIDIA CUDA)). Default V(origin "<the URL's host>").
    type: str
  replaces:
    description:
      - apt only. Source files under C(/etc/apt/sources.list.d) that configure the same repository (a
        C(cuda-keyring) package's C(.list)); they are removed with this call, and put back if the update fails.
    type: list
    elements: path
    default: []
  gpgcheck:
    description: dnf only. Check each package's signature (C(gpgcheck)). Default V(true).
    type: bool
  repo_gpgcheck:
    description: dnf only. Check the repository metadata's signature (C(repo_gpgcheck)), as NVIDIA's container toolkit repository asks. Default V(false).
    type: bool
  module_hotfixes:
    description: dnf only. Let packages of this repository replace those of modular streams (C(module_hotfixes=1)), as NVIDIA's driver repository on EL 8 needs.
    type: bool
  priority:
    description: dnf only. The repository's C(priority) (lower wins); unset leaves dnf's default (99).
    type: int
  timeout:
    description: Seconds to wait for O(key_url).
    type: int
    default: 30
extends_documentation_fragment:
  - dlnode.gpu.package_manager
attributes:
  check_mode:
    support: full
    description: Fetches and checks the key, plans the files and shows their diffs; writes nothing and runs no update.
  diff_mode:
    support: full
    description: Shows each file before and after; a keyring as the fingerprints it holds.
  platform:
    support: full
    platforms: posix
    description: Debian and Ubuntu (apt 2.x, deb822 sources); RHEL family (dnf), planned and unit-tested only.
seealso:
  - module: dlnode.gpu.package_set
author: "dlnode.gpu developers (@dlnode)"
"""

EXAMPLES = r"""
- name: NVIDIA's CUDA repository (flat), its key shipped with the role, pinned at 600 as NVIDIA's instructions do
  dlnode.gpu.package_source:
    name: cuda
    url: https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/
    suites: [/]
    key: "{{ lookup('ansible.builtin.file', 'cuda-archive.asc') }}"
    fingerprints: ["{{ nvidia_driver_cuda_key_fingerprint }}"]
    pin: release l=NVIDIA CUDA
    pin_priority: 600
    replaces: [/etc/apt/sources.list.d/cuda-debian12-x86_64.list]

- name: Debian's backports, the key taken from the node's own archive keyring
  dlnode.gpu.package_source:
    name: bookworm-backports
    url: http://deb.debian.org/debian
    suites: [bookworm-backports]
    components: [main]
    key_url: file:///usr/share/keyrings/debian-archive-bookworm-automatic.gpg
    fingerprints: [B8B80B5B623EAB6AD8775C45B7C5D7D6350947F8]
"""

RETURN = r"""
manager:
  description: The package manager configured.
  returned: always
  type: str
  sample: apt
files:
  description: The files of this source (null where none is written).
  returned: always
  type: dict
  sample: {"source": "/etc/apt/sources.list.d/cuda.sources", "keyring": "/etc/apt/keyrings/cuda.gpg",
           "pin": "/etc/apt/preferences.d/cuda.pref"}
certificates:
  description: The keys (certificates) found in the key given, checked against O(fingerprints).
  returned: with O(state=present) once the key was read
  type: list
  elements: dict
  sample: [{"fingerprint": "B8B80B5B623EAB6AD8775C45B7C5D7D6350947F8",
            "subkeys": ["4CB50190207B4758A3F73A796ED0E7B82643E131"],
            "user_ids": ["Debian Archive Automatic Signing Key (12/bookworm) <ftpmaster@debian.org>"]}]
plan:
  description: What was (or in check mode would be) done, in order.
  returned: always
  type: list
  elements: str
  sample: ["/etc/apt/keyrings/cuda.gpg: write", "/etc/apt/sources.list.d/cuda.sources: write",
           "apt-get update of /etc/apt/sources.list.d/cuda.sources"]
restored:
  description: The files put back after the update failed.
  returned: always
  type: list
  elements: str
  sample: []
"""

import glob
import os
import re

from ansible.module_utils.urls import fetch_url

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.module_utils.common.commands import Commands
from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError
from ansible_collections.dlnode.gpu.plugins.module_utils.common.module import run_module
from ansible_collections.dlnode.gpu.plugins.module_utils.packages import apt, database, dnf, openpgp
from ansible_collections.dlnode.gpu.plugins.module_utils.packages.filesets import FileSet

ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    manager=dict(type="str", choices=["auto", "apt", "dnf"], default="auto"),
    url=dict(type="str"),
    suites=dict(type="list", elements="str"),
    components=dict(type="list", elements="str", default=[]),
    architectures=dict(type="list", elements="str", default=[]),
    key=dict(type="str", no_log=False),
    key_url=dict(type="str", no_log=False),
    fingerprints=dict(type="list", elements="str"),
    keyring=dict(type="path", no_log=False),
    pin_priority=dict(type="int"),
    pin=dict(type="str"),
    replaces=dict(type="list", elements="path", default=[]),
    gpgcheck=dict(type="bool"),
    repo_gpgcheck=dict(type="bool"),
    module_hotfixes=dict(type="bool"),
    priority=dict(type="int"),
    timeout=dict(type="int", default=30),
)
ONLY = {"apt": ["suites", "components", "architectures", "pin_priority", "pin", "replaces"],
        "dnf": ["gpgcheck", "repo_gpgcheck", "module_hotfixes", "priority"]}
URL_SCHEMES = ("http://", "https://", "file:", "mirror+http://", "mirror+https://", "mirror+file:")
WORD_RE = r"^[A-Za-z0-9./][A-Za-z0-9_.+~/-]*$"


def check_options(params, manager):
    """Refuse what apt or dnf would refuse or silently ignore, naming the option."""
    name = params["name"]
    if not apt.FILE_NAME_RE.match(name):
        raise DlnodeError(f"name: {name!r} must be letters, digits, '_', '-' and '.' (apt ignores other file names)")
    other = "dnf" if manager == "apt" else "apt"
    given = [option for option in ONLY[other] if params[option]]
    if given:
        raise DlnodeError(f"{', '.join(given)}: {other} only, and this node's package manager is {manager}")
    if params["state"] == "absent":
        return
    if not params["url"].startswith(URL_SCHEMES):
        raise DlnodeError(f"url: {params['url']!r} must be an http, https or file URL")
    if manager == "dnf":
        # Without either check dnf installs whatever the URL serves, from anyone who can answer for it
        # (a DNS or mirror compromise). Some repositories sign only their metadata (NVIDIA's container
        # toolkit asks for repo_gpgcheck): that is allowed; nothing signed at all is not.
        if params["gpgcheck"] is False and not params["repo_gpgcheck"]:
            raise DlnodeError("gpgcheck: false needs repo_gpgcheck: true; a source must be signed")
        return
    check_apt_options(params)


def check_apt_options(params):
    suites, components = params["suites"] or [], params["components"]
    if not suites:
        raise DlnodeError("suites: required for an apt source: the distribution's suites, or [/] for a flat repository")
    for option in ("suites", "components", "architectures"):
        bad = [word for word in params[option] or [] if not re.match(WORD_RE, word)]
        if bad:
            raise DlnodeError(f"{option}: {bad} are not apt {option} (one word each, no spaces)")
    flat = [suite for suite in suites if suite.endswith("/")]
    if flat and components:
        raise DlnodeError(f"components: a flat repository (suites {flat}) has none; apt refuses components with it")
    if not flat and not components:
        raise DlnodeError(f"components: required for suites {suites} (main, contrib, ...); only a flat repository "
                          "(suites [/]) has none")
    if params["pin"] is not None and params["pin_priority"] is None:
        raise DlnodeError("pin: needs pin_priority; without a priority no pin file is written")
    if params["pin_priority"] == 0:
        raise DlnodeError("pin_priority: 0 has no defined meaning to apt; give a priority (600, as NVIDIA's) "
                          "or leave it unset for no pin file")
    for path in params["replaces"]:
        if not path.startswith(apt.SOURCES_DIR + "/") or not path.endswith((".list", ".sources")):
            raise DlnodeError(f"replaces: {path} is not a source file under {apt.SOURCES_DIR} (.list or .sources)")


def paths(params, manager):
    name = params["name"]
    if manager == "apt":
        return {"source": f"{apt.SOURCES_DIR}/{name}.sources",
                "keyring": params["keyring"] or f"{apt.KEYRING_DIR}/{name}.gpg",
                "pin": f"{apt.PREFERENCES_DIR}/{name}.pref"}
    return {"source": f"{dnf.REPOS_DIR}/{name}.repo", "keyring": params["keyring"] or f"{dnf.KEY_DIR}/RPM-GPG-KEY-{name}",
            "pin": None}


def load_key(module, params):
    """The key's binary packets, from the armored O(key) or fetched from O(key_url)."""
    if params["key"] is not None:
        return openpgp.dearmor(params["key"], "key")
    response, info = fetch_url(module, params["key_url"], timeout=params["timeout"])
    if response is None or info.get("status") not in (None, 200):
        raise DlnodeError(f"key_url: cannot fetch {params['key_url']}: {info.get('msg')}; nothing was written")
    data = response.read()
    return openpgp.dearmor(data.decode("ascii", "replace"), "key_url") if openpgp.is_armored(data) else data


def describe_keyring(data):
    """A keyring in a diff: the keys it holds."""
    try:
        return "".join(f"{cert.describe()}\n" for cert in openpgp.certificates(data))
    except DlnodeError:
        return f"({len(data)} bytes that are not an OpenPGP keyring)\n"


def conflicts(params, own):
    """Other source files that configure the same URL and suite; apt refuses them side by side."""
    wanted = {(params["url"].rstrip("/"), "/" if suite in ("./", "/") else suite) for suite in params["suites"]}
    candidates = ["/etc/apt/sources.list"] + sorted(
        "/" + os.path.relpath(path, files.host_path("/")) for pattern in ("*.list", "*.sources")
        for path in glob.glob(files.host_path(f"{apt.SOURCES_DIR}/{pattern}")))
    found = []
    for path in candidates:
        if path in (own, *params["replaces"]):
            continue
        text = files.read(path)
        if text and wanted & set(apt.entries(text, path)):
            found.append(path)
    return found


def plan_files(params, manager, where, data):
    """The files of the source, planned against what is on the node."""
    fileset = FileSet()
    present = params["state"] == "present"
    owner = f"package_source {params['name']}"
    if manager == "apt":
        fileset.add(where["keyring"], data if present else None, binary=True, label=describe_keyring)
        text = apt.source_text(owner, params["url"], params["suites"], params["components"], params["architectures"],
                               where["keyring"]) if present else None
        fileset.add(where["source"], text)
        pin = None
        if present and params["pin_priority"] is not None:
            pin = apt.source_pin_text(owner, params["pin"] or apt.default_pin(params["url"]), params["pin_priority"])
        fileset.add(where["pin"], pin)
        for path in params["replaces"]:
            fileset.add(path, None)
    else:
        fileset.add(where["keyring"], openpgp.armor(data) if present else None)
        text = dnf.repo_text(owner, params["name"], params["url"], where["keyring"],
                             True if params["gpgcheck"] is None else params["gpgcheck"], bool(params["repo_gpgcheck"]),
                             bool(params["module_hotfixes"]), params["priority"]) if present else None
        fileset.add(where["source"], text)
    return fileset


def prove(commands, manager, params, where):
    """None when an update of this source alone works, else apt's (or dnf's) reason."""
    if manager == "apt":
        rc, out, err = commands.result("apt-get", *apt.update_args(where["source"]))
        return apt.update_reason(rc, out, err)
    rc, out, err = commands.result("dnf", *dnf.makecache_args(params["name"]))
    return None if rc == 0 else " ".join(line for line in (err or out).splitlines() if line.strip()) or f"dnf exited {rc}"


def run(module, result):
    params = module.params
    commands = Commands(module, {"apt-get": "apt", "dnf": "dnf"})
    manager = params["manager"] if params["manager"] != "auto" else database.detect(commands, ("apt", "dnf"))
    check_options(params, manager)
    where = paths(params, manager)
    result.update(manager=manager, files=where)
    data = None
    if params["state"] == "present":
        expected = openpgp.normalize(params["fingerprints"])
        data = load_key(module, params)
        certs = openpgp.certificates(data, "key" if params["key"] is not None else "key_url")
        result["certificates"] = [cert.public() for cert in certs]
        openpgp.check(certs, expected)
        if manager == "apt":
            others = conflicts(params, where["source"])
            if others:
                raise DlnodeError(f"url: {params['url']} ({' '.join(params['suites'])}) is also configured in "
                                  f"{', '.join(others)}; apt refuses one repository with two keys ('Conflicting values "
                                  "set for option Signed-By'): list those files in replaces to have them removed with "
                                  "this call, or remove them; nothing was written")

    fileset = plan_files(params, manager, where, data)
    sources_changed = any(change.path in (where["source"], where["keyring"]) for change in fileset.changed)
    proof = params["state"] == "present" and sources_changed
    update = (f"apt-get update of {where['source']}" if manager == "apt" else f"dnf makecache --repo {params['name']}")
    result.update(changed=bool(fileset.changed), plan=fileset.texts() + ([update] if proof else []),
                  diff=fileset.diffs(), restored=[])
    if module.check_mode or not fileset.changed:
        return
    fileset.apply(module)
    if proof:
        reason = prove(commands, manager, params, where)
        if reason:
            restored = fileset.restore(module)
            hint = apt.update_hint(reason) if manager == "apt" else None
            raise DlnodeError(f"package source {params['name']}: {update} failed for {params['url']}: {reason}"
                              + (f" ({hint})" if hint else "")
                              + f". The node's sources were left as they were (put back: {', '.join(restored)})",
                              restored=restored, changed=False)


def main():
    run_module(ARGUMENT_SPEC, run,
               result=dict(manager=None, files={}, plan=[], restored=[]),
               mutually_exclusive=[("key", "key_url")],
               required_if=[("state", "present", ["url", "fingerprints"]),
                            ("state", "present", ["key", "key_url"], True)])


if __name__ == "__main__":
    main()
