# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""apt without python3-apt: the files a source and a lock are made of, and apt's own output read back.

Every parser here reads what apt 2.6 (Debian 12) prints in the C locale; the unit tests hold
those outputs as captured in a node container.
"""
from __future__ import annotations

import re
from urllib.parse import urlsplit

SOURCES_DIR = "/etc/apt/sources.list.d"
PREFERENCES_DIR = "/etc/apt/preferences.d"
CONF_DIR = "/etc/apt/apt.conf.d"
KEYRING_DIR = "/etc/apt/keyrings"
# apt reads only files of these characters in its .d directories, and ignores the others silently.
FILE_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
VERSION_RE = re.compile(r"^(?:[0-9]+:)?[0-9][A-Za-z0-9.+~-]*$")
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "DEBIAN_PRIORITY": "critical", "APT_LISTCHANGES_FRONTEND": "none"}
# Keep the configuration files a package ships and the operator changed; never ask. Wait for a dpkg
# lock held by apt's daily timers on a freshly booted server rather than fail.
DPKG_OPTIONS = ["-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold",
                "-o", "DPkg::Lock::Timeout=120"]


def header(owner):
    return f"Managed by dlnode.gpu ({owner}): edits are overwritten."


# -- files -------------------------------------------------------------------


def source_text(owner, url, suites, components, architectures, keyring):
    """A deb822 source; a flat repository (suite ending in '/', NVIDIA's) has no Components."""
    lines = [f"# {header(owner)}", "Types: deb", f"URIs: {url}", f"Suites: {' '.join(suites)}"]
    if components:
        lines.append(f"Components: {' '.join(components)}")
    if architectures:
        lines.append(f"Architectures: {' '.join(architectures)}")
    lines.append(f"Signed-By: {keyring}")
    return "\n".join(lines) + "\n"


def default_pin(url):
    """Pin every package from the source's host (origin), as NVIDIA's instructions do; a file: URL has origin ""."""
    host = urlsplit(url.split("+", 1)[-1]).hostname
    return f'origin "{host}"' if host else 'origin ""'


def source_pin_text(owner, pin, priority):
    return f"# {header(owner)}\nPackage: *\nPin: {pin}\nPin-Priority: {priority}\n"


def version_pins_text(owner, packages, priority):
    """One preferences record per package: that exact version above every other (> 1000 also downgrades)."""
    records = [f"Package: {name}\nPin: version {version}\nPin-Priority: {priority}\n"
               for name, version in sorted(packages.items())]
    return f"# {header(owner)}\n" + "\n".join(records)


def blacklist_entry(name):
    """unattended-upgrades reads Package-Blacklist entries as Python regular expressions (re.match):
    the exact name, its '.' and '+' as character classes (no backslash for apt's parser to read)."""
    return "^" + re.sub(r"([.+])", r"[\1]", name) + "$"


def blacklist_text(owner, names):
    entries = "".join(f'    "{blacklist_entry(name)}";\n' for name in sorted(names))
    return (f"// {header(owner)}\n// Locked at exact versions: unattended-upgrades must not move them.\n"
            f"Unattended-Upgrade::Package-Blacklist {{\n{entries}}};\n")


# -- sources configured elsewhere ------------------------------------------


def _norm(url):
    return url.rstrip("/")


def _suite(suite):
    return "/" if suite in ("./", "/") else suite


def entries(text, path):
    """(url, suite) of every enabled deb entry in a one-line .list or a deb822 .sources file."""
    found = []
    if path.endswith(".sources"):
        for stanza in re.split(r"\n\s*\n", text):
            fields = {}
            for line in stanza.splitlines():
                if line.strip() and not line.lstrip().startswith("#") and ":" in line and not line[:1].isspace():
                    key, value = line.split(":", 1)
                    fields[key.strip().lower()] = value.split()
            if "deb" in fields.get("types", []) and fields.get("enabled", ["yes"]) != ["no"]:
                found += [(_norm(url), _suite(suite)) for url in fields.get("uris", []) for suite in fields.get("suites", [])]
        return found
    for line in text.splitlines():
        words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
        if len(words) >= 3 and words[0] == "deb":
            found.append((_norm(words[1]), _suite(words[2])))
    return found


# -- apt-get update of one source ---------------------------------------------


def update_args(sources_file):
    """apt-get update of this one source file, the other lists kept, every warning an error."""
    return ["update", "-q", "-o", f"Dir::Etc::sourcelist={sources_file}", "-o", "Dir::Etc::sourceparts=-",
            "-o", "APT::Get::List-Cleanup=0", "-o", "APT::Update::Error-Mode=any"]


def update_reason(rc, stdout, stderr):
    """apt's reason when an update failed (its E:/W: lines, else its Err: lines), or None when it worked.

    APT::Update::Error-Mode=any makes apt >= 2.1.16 fail on a warning; older apt only warns
    ("W: Failed to fetch"), so an Err: line fails too.
    """
    problems = [line for line in stderr.splitlines() if line.startswith(("E:", "W:"))]
    errs = [line for line in stdout.splitlines() if line.startswith("Err:")]
    if rc == 0 and not errs and not any(line.startswith("E:") or "Failed to fetch" in line or "GPG error" in line
                                        for line in problems):
        return None
    if problems:
        return " ".join(problems)
    return " ".join(errs) or f"apt-get update exited {rc}"


def update_hint(reason):
    """What the reason means for the key and source given."""
    if "NO_PUBKEY" in reason or "EXPKEYSIG" in reason or "BADSIG" in reason:
        return "the key given does not verify this repository's signature"
    if "is not signed" in reason:
        return "apt refuses a repository it cannot verify with the key given (unsigned, or signed by another key)"
    if "does not have a Release file" in reason:
        return "no repository at this URL and suite (check url and suites)"
    if "Could not resolve" in reason or "Could not connect" in reason or "Failed to fetch" in reason:
        return "the node cannot reach the URL"
    return None


# -- apt-get --simulate -------------------------------------------------------

INST_RE = re.compile(r"^Inst (\S+) (?:\[(\S+)\] )?\((\S+) ")
REMV_RE = re.compile(r"^Remv (\S+)(?: \[(\S+)\])?")


def install_args(packages, recommends, simulate, ignore_hold=False):
    """apt-get install of every package at its version in one call: the whole set resolved together.

    ignore_hold: simulate as if the holds were gone, for packages the real run unholds first."""
    args = ["install", "--simulate" if simulate else "-y", "-q", "--allow-downgrades", *(["--ignore-hold"] if ignore_hold else [])]
    args.append("--install-recommends" if recommends else "--no-install-recommends")
    return args + ([] if simulate else DPKG_OPTIONS) + [f"{name}={version}" for name, version in sorted(packages.items())]


def remove_args(names, simulate):
    return ["remove", "--simulate" if simulate else "-y", "-q", *([] if simulate else DPKG_OPTIONS), *sorted(names)]


def block(stdout, title):
    """The package names apt lists under a heading ("The following held packages will be changed:")."""
    names, inside = [], False
    for line in stdout.splitlines():
        if line.startswith(title):
            inside = True
        elif inside and line.startswith("  "):
            names += line.split()
        else:
            inside = False
    return names


def parse_simulation(stdout):
    """What apt would do: {install: {name: [old or None, new]}, remove: {name: old}, held_changed: [names]}."""
    install, remove = {}, {}
    for line in stdout.splitlines():
        inst = INST_RE.match(line)
        if inst:
            install[inst.group(1).split(":")[0]] = [inst.group(2), inst.group(3)]
        remv = REMV_RE.match(line)
        if remv:
            remove[remv.group(1).split(":")[0]] = remv.group(2)
    return {"install": install, "remove": remove,
            "held_changed": block(stdout, "The following held packages will be changed:")}


VERSION_NOT_FOUND_RE = re.compile(r"^E: Version '([^']+)' for '([^']+)' was not found")
NOT_LOCATED_RE = re.compile(r"^E: Unable to locate package (\S+)")
# What apt adds for a name that is also a glob or regex (containerd.io): the same package, not found.
NOT_FOUND_BY_PATTERN_RE = re.compile(r"^E: Couldn't find any package by (?:glob|regex) '(\S+)'")


def simulation_errors(stdout, stderr):
    """apt's refusals: {versions: [(name, version)], packages: [names], unmet: [lines], other: [E: lines]}."""
    errors = {"versions": [], "packages": [], "unmet": [], "other": []}
    for line in stderr.splitlines():
        version, located = VERSION_NOT_FOUND_RE.match(line), NOT_LOCATED_RE.match(line) or NOT_FOUND_BY_PATTERN_RE.match(line)
        if version:
            errors["versions"].append((version.group(2), version.group(1)))
        elif located:
            if located.group(1) not in errors["packages"]:
                errors["packages"].append(located.group(1))
        elif line.startswith("E:"):
            errors["other"].append(line[3:].strip())
    inside = False
    for line in stdout.splitlines():
        if line.startswith("The following packages have unmet dependencies:"):
            inside = True
        elif inside and line.startswith(" "):
            errors["unmet"].append(" ".join(line.split()))
        else:
            inside = False
    return errors


def unmet_names(lines):
    """The package names an unmet-dependency line mentions (" a : Depends: b (= 1) but 2 is to be installed")."""
    names = []
    for line in lines:
        head, _sep, rest = line.partition(" : ")
        names.append(head.strip())
        dep = re.search(r"(?:Depends|Pre-Depends|Breaks|Conflicts): (\S+)", rest)
        if dep:
            names.append(dep.group(1))
    return names


def parse_madison(stdout):
    """{package: [(version, where)]} from apt-cache madison ("  pkg | 1.0-1 | http://... bookworm/main amd64 Packages")."""
    found = {}
    for line in stdout.splitlines():
        fields = [field.strip() for field in line.split(" | ")]
        if len(fields) == 3:
            where = fields[2].rsplit(" ", 2)[0] if fields[2].endswith(" Packages") else fields[2]
            found.setdefault(fields[0], []).append((fields[1], where))
    return found
