"""Expand tests/repo/packages.yml into the package trees of the test-double apt repositories.

build.sh runs it; dpkg-deb builds each tree. The expansion refuses a package whose dependency no
package of the same repository satisfies, a package built twice, and a template naming a value its
table does not have, before anything is built. A package's `postinst:`/`prerm:`/`postrm:` become its
maintainer scripts (DEBIAN/postinst, ...), run by dpkg on the node.

    python3 doubles.py DATA distros                 NVIDIA's CUDA repositories, one a line
    python3 doubles.py DATA vendors                 the other vendors' repositories (vendor_repositories:), one a line
    python3 doubles.py DATA trees REPO DEST [REAL]  one tree per package under DEST, its name printed; REAL holds
                                                    the Debian packages of `real_debs:` unpacked, one directory each
    python3 doubles.py DATA debs REPO               the Debian packages a vendor repository takes real files from,
                                                    package/suite one a line (`real_debs:`)
    python3 doubles.py DATA list REPO               name version architecture, one package a line
    python3 doubles.py DATA pin DISTRO              NVIDIA's cuda-<distro>.pin for that repository
    python3 doubles.py DATA release FIELD           origin, label, key_name or maintainer (the CUDA repositories)
    python3 doubles.py DATA vendor REPO FIELD       a vendor repository's layout: dir, top, pool, index, release_dir,
                                                    key_file, key_name, compression, signatures, or release_options
                                                    (apt-ftparchive's -o options for its Release file, one a line)
"""
from __future__ import annotations

import itertools
import os
import re
import shutil
import sys

import yaml

RELATION_FIELDS = {"depends": "Depends", "recommends": "Recommends", "provides": "Provides", "conflicts": "Conflicts",
                   "breaks": "Breaks", "replaces": "Replaces"}
ENTRY_KEYS = {"name", "for", "branches", "majors", "versions", "version", "architecture", "section", "description", "depends",
              "recommends", "provides", "conflicts", "breaks", "replaces", "renames", "files", "dirs", "postinst", "prerm", "postrm",
              "source", "unconfirmed"}
SCRIPTS = ("postinst", "prerm", "postrm")
# What build.sh asks of a vendor repository (vendor_repositories: in packages.yml).
VENDOR_FIELDS = ("dir", "pool", "index", "release_dir", "key_file", "key_name", "compression", "signatures")
RELATION = re.compile(r"^\s*(?P<name>[a-z0-9][a-z0-9+.-]+)\s*(?:\((?P<op><<|<=|=|>=|>>)\s*(?P<version>[^)\s]+)\s*\))?\s*$")


class DataError(Exception):
    """packages.yml says something the builder cannot build."""


def _order(char: str) -> int:
    if char == "~":
        return -1
    if char.isalpha():
        return ord(char)
    return ord(char) + 256 if char else 0


def _compare_part(left: str, right: str) -> int:
    """Debian's comparison of an upstream version or revision: non-digits, then digits, in turn."""
    while left or right:
        left_text = re.match(r"\D*", left).group()
        right_text = re.match(r"\D*", right).group()
        for one, two in itertools.zip_longest(left_text, right_text, fillvalue=""):
            if _order(one) != _order(two):
                return -1 if _order(one) < _order(two) else 1
        left, right = left[len(left_text):], right[len(right_text):]
        left_digits = re.match(r"\d*", left).group()
        right_digits = re.match(r"\d*", right).group()
        if int(left_digits or 0) != int(right_digits or 0):
            return -1 if int(left_digits or 0) < int(right_digits or 0) else 1
        left, right = left[len(left_digits):], right[len(right_digits):]
    return 0


def compare_versions(left: str, right: str) -> int:
    """-1, 0 or 1 as dpkg --compare-versions orders LEFT and RIGHT (an epoch, `5:`, orders first)."""
    left_epoch, left = left.split(":", 1) if ":" in left else ("0", left)
    right_epoch, right = right.split(":", 1) if ":" in right else ("0", right)
    if int(left_epoch) != int(right_epoch):
        return -1 if int(left_epoch) < int(right_epoch) else 1
    left_upstream, left_revision = left.rsplit("-", 1) if "-" in left else (left, "")
    right_upstream, right_revision = right.rsplit("-", 1) if "-" in right else (right, "")
    return _compare_part(left_upstream, right_upstream) or _compare_part(left_revision, right_revision)


def satisfies(version: str, operator: str, wanted: str) -> bool:
    order = compare_versions(version, wanted)
    return {"<<": order < 0, "<=": order <= 0, "=": order == 0, ">=": order >= 0, ">>": order > 0}[operator]


def _fill(template, values: dict) -> str:
    try:
        return str(template).format(**values)
    except (KeyError, IndexError) as err:
        raise DataError(f"{values.get('name', 'packages.yml')}: the template {str(template)[:60]!r} names {err}, which its table "
                        f"does not give; it gives: {', '.join(sorted(values))}") from None


def _instances(repository: dict, entry: dict, distro: str) -> list[dict]:
    """The values of each package an entry builds: per driver version or branch, per toolkit, cuDNN or NCCL build, per
    item of its own `versions:`, or once."""
    if "versions" in entry:
        # A vendor repository's package: one per item, a version string or a table whose `full` is the version.
        items = [item if isinstance(item, dict) else {"full": item} for item in entry["versions"]]
        if not all("full" in item for item in items):
            raise DataError(f"{distro} {entry.get('name')}: each item of `versions:` is a version or a table with `full:`")
        return [dict(item, full=str(item["full"])) for item in items]
    kind = entry.get("for")
    if kind in ("version", "branch"):
        branches = [str(branch) for branch in entry.get("branches", repository["branches"])]
        if kind == "branch":
            return [{"branch": branch, "version": branch, "full": f"{branch}{repository['revision']}"} for branch in branches]
        return [{"branch": branch, "version": version, "full": f"{version}{repository['revision']}"}
                for branch in branches for version in repository["branches"][branch]]
    if kind in ("cuda", "cudnn", "nccl") and kind not in repository:
        raise DataError(f"{distro} {entry.get('name')}: `for: {kind}` but the repository has no `{kind}:` table")
    if kind == "cuda":
        # A toolkit X.Y: the names say X-Y, the alternatives' priority is XY (13.0 -> 130, 13.2 -> 132).
        return [dict(parts, cuda=cuda, cuda_major=cuda.split(".")[0], cuda_dash=cuda.replace(".", "-"), cuda_priority=cuda.replace(".", ""))
                for cuda, parts in repository["cuda"].items()]
    if kind == "cudnn":
        majors = [str(major) for major in entry.get("majors", repository["cudnn"])]
        return [{"cuda_major": major, "cudnn": version, "cudnn_parts": version.split("."), "full": f"{version}-1"}
                for major in majors for version in repository["cudnn"][major]]
    if kind == "nccl":
        return [{"nccl_cuda": cuda, "nccl": version, "nccl_parts": version.split("-")[0].split("."), "full": f"{version}+cuda{cuda}"}
                for cuda, versions in repository["nccl"].items() for version in versions]
    if kind is None:
        if "revision" not in repository:
            raise DataError(f"{distro} {entry.get('name')}: a package of this repository needs `versions:`")
        return [{"branch": "", "version": "", "full": repository["revision"]}]
    raise DataError(f"{distro} {entry.get('name')}: `for: {kind}` is not one of version, branch, cuda, cudnn, nccl")


def _repository(data: dict, name: str) -> tuple[dict, list[dict]]:
    """A repository by name and its package entries: a CUDA repository's own and the shared ones, or a vendor's."""
    if name in data["repositories"]:
        return data["repositories"][name], data["repositories"][name]["packages"] + data.get("shared_packages", [])
    if name in data.get("vendor_repositories", {}):
        return data["vendor_repositories"][name], data["vendor_repositories"][name]["packages"]
    known = list(data["repositories"]) + list(data.get("vendor_repositories", {}))
    raise DataError(f"no repository {name!r} in packages.yml; there are: {', '.join(known)}")


def expand(data: dict, distro: str) -> list[dict]:
    """Every package of one repository, its templates filled, checked for duplicates and dependencies."""
    repository, entries = _repository(data, distro)
    # A vendor repository keeps its own sources: and files: beside the shared ones.
    sources = {**data["sources"], **repository.get("sources", {})}
    templates = {**data["files"], **repository.get("files", {})}
    packages = []
    for entry in entries:
        unknown = sorted(set(entry) - ENTRY_KEYS)
        if unknown:
            raise DataError(f"{distro} {entry.get('name')}: unknown key(s) {', '.join(map(str, unknown))}; known: {', '.join(sorted(ENTRY_KEYS))}")
        if entry.get("for") not in ("version", "branch", None) and "version" not in entry:
            raise DataError(f"{distro} {entry['name']}: `for: {entry['for']}` needs a `version:` template")
        for values in _instances(repository, entry, distro):
            values["pinned"] = repository.get("pinned", "")
            values["vendor"] = repository.get("vendor", "NVIDIA")
            template = entry.get("version", "{full}")
            if isinstance(template, dict):
                template = template[values["branch"]]
            package = {"name": _fill(entry["name"], values), "version": _fill(template, values), "vendor": values["vendor"],
                       "architecture": entry.get("architecture", "amd64"), "section": entry.get("section", "misc"),
                       "description": _fill(entry["description"], values), "source": entry["source"],
                       "unconfirmed": entry.get("unconfirmed", "")}
            values.update(name=package["name"], full=package["version"])
            for key in RELATION_FIELDS:
                package[key] = [_fill(relation, values) for relation in entry.get(key, [])]
            if "renames" in entry:
                package["conflicts"].append(_fill(entry["renames"], values))
                package["replaces"].append(_fill(entry["renames"], values))
            package["files"] = []
            for key in entry.get("files", []):
                if key not in templates:
                    raise DataError(f"{distro} {package['name']}: file {key} is not under files:")
                path = _fill(templates[key]["path"], values)
                item = {"path": path, "mode": int(templates[key]["mode"], 8)}
                if "from" in templates[key]:
                    item["from"] = _real_file(repository, templates[key]["from"], distro, package["name"])
                else:
                    item["content"] = _fill(templates[key]["content"], dict(values, path=path))
                package["files"].append(item)
            package["dirs"] = [_fill(path, values) for path in entry.get("dirs", [])]
            for script in SCRIPTS:
                package[script] = _fill(entry[script], values) if script in entry else ""
                if package[script] and not package[script].startswith("#!/bin/sh\nset -e\n"):
                    raise DataError(f"{distro} {package['name']}: its {script} must start with '#!/bin/sh' and 'set -e' lines, as dpkg runs it")
            unknown = [key for key in package["source"] if key not in sources]
            if unknown:
                raise DataError(f"{distro} {package['name']}: source {', '.join(unknown)} is not under sources:")
            package["source_notes"] = [f"{key}: {sources[key]}" for key in package["source"]]
            packages.append(package)
    _check(distro, packages, repository.get("outside", []))
    return packages


def _real_file(repository: dict, source: str, distro: str, name: str) -> tuple[str, str]:
    """A file taken from a real Debian package (`from: <package>:<path>`) of the repository's `real_debs:`."""
    package, _sep, path = source.partition(":")
    known = [entry.split("/")[0] for entry in repository.get("real_debs", [])]
    if package not in known or not path.startswith("/"):
        raise DataError(f"{distro} {name}: `from: {source}` names no /path in a package of real_debs: ({', '.join(known) or 'none'})")
    return package, path


def _check(distro: str, packages: list[dict], outside: list[str]) -> None:
    seen = set()
    offered: dict[str, list[str | None]] = {name: [None] for name in outside}  # name -> versions (None: virtual or outside)
    for package in packages:
        key = (package["name"], package["version"], package["architecture"])
        if key in seen:
            raise DataError(f"{distro}: {' '.join(key)} is built twice")
        seen.add(key)
        offered.setdefault(package["name"], []).append(package["version"])
        for virtual in package["provides"]:
            offered.setdefault(virtual, []).append(None)
    for package in packages:
        for relation in package["depends"]:
            alternatives = [RELATION.match(alternative) for alternative in relation.split("|")]
            if not all(alternatives):
                raise DataError(f"{distro} {package['name']} {package['version']}: cannot read the dependency {relation!r}")
            if not any(_offers(offered, match) for match in alternatives):
                raise DataError(f"{distro} {package['name']} {package['version']}: nothing in the repository satisfies {relation!r}")


def _offers(offered: dict, match: re.Match) -> bool:
    versions = offered.get(match["name"], [])
    if not match["op"]:
        return bool(versions)
    return any(version is not None and satisfies(version, match["op"], match["version"]) for version in versions)


def control(package: dict, maintainer: str, sources: dict) -> str:
    lines = [f"Package: {package['name']}", f"Version: {package['version']}", f"Architecture: {package['architecture']}",
             f"Maintainer: {maintainer}", f"Section: {package['section']}", "Priority: optional"]
    for key, field in RELATION_FIELDS.items():
        if package[key]:
            lines.append(f"{field}: {', '.join(package[key])}")
    lines.append(f"Description: {package['description']} (dlnode test double)")
    if any("from" in item for item in package["files"]):
        real = sorted({item["from"][0] for item in package["files"] if "from" in item})
        lines.append(f" Test double of {package['vendor']}'s {package['name']} {package['version']}: Debian's build of its programs"
                     f" ({', '.join(real)}).")
    else:
        lines.append(f" Test double of {package['vendor']}'s {package['name']} {package['version']}: no {package['vendor']} software.")
    lines.append(f" Name and shape from: {', '.join(package['source'])} ({sources})")
    return "\n".join(lines) + "\n"


def readme(package: dict) -> str:
    real = sorted({f"{item['from'][0]}:{item['from'][1]}" for item in package["files"] if "from" in item})
    holds = (f"It holds Debian's build of the same programs, not {package['vendor']}'s: {', '.join(real)}." if real
             else f"It holds no {package['vendor']} software.")
    text = [f"{package['name']} {package['version']} is a test double built by dlnode.gpu's tests/repo/build.sh.",
            f"{holds} Its name, version and dependencies follow {package['vendor']}'s repository:", ""]
    text += [f"- {note}" for note in package["source_notes"]]
    if package["unconfirmed"]:
        text += ["", f"Not confirmed by those sources: {package['unconfirmed']}"]
    return "\n".join(text) + "\n"


def write_tree(package: dict, data: dict, dest: str, real: str | None = None) -> str:
    tree = os.path.join(dest, f"{package['name']}_{package['version']}_{package['architecture']}")
    files = [{"path": f"/usr/share/doc/{package['name']}/README.test-double", "mode": 0o644, "content": readme(package)}]
    for directory in package["dirs"]:
        os.makedirs(os.path.join(tree, directory.lstrip("/")), mode=0o755, exist_ok=True)
    for item in files + package["files"]:
        path = os.path.join(tree, item["path"].lstrip("/"))
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        if "from" in item:
            origin = os.path.join(real or "", item["from"][0], item["from"][1].lstrip("/"))
            if real is None or not os.path.isfile(origin):
                raise DataError(f"{package['name']}: {item['path']} comes from {':'.join(item['from'])}, not found in "
                                f"{real or 'the unpacked packages (trees REPO DEST REAL)'}")
            shutil.copyfile(origin, path)
        else:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(item["content"])
        os.chmod(path, item["mode"])
    os.makedirs(os.path.join(tree, "DEBIAN"), mode=0o755, exist_ok=True)
    with open(os.path.join(tree, "DEBIAN", "control"), "w", encoding="utf-8") as handle:
        handle.write(control(package, data["release"]["maintainer"], "tests/repo/packages.yml"))
    # As debhelper makes them: a file under /etc is a conffile, kept on removal until a purge.
    conffiles = [item["path"] for item in package["files"] if item["path"].startswith("/etc/")]
    if conffiles:
        with open(os.path.join(tree, "DEBIAN", "conffiles"), "w", encoding="utf-8") as handle:
            handle.write("\n".join(conffiles) + "\n")
    for script in SCRIPTS:
        if package[script]:
            path = os.path.join(tree, "DEBIAN", script)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(package[script])
            os.chmod(path, 0o755)
    return tree


def vendor_field(data: dict, name: str, field: str) -> str:
    """One field of a vendor repository's layout, as build.sh uses it (paths relative to OUTDIR or to `dir`)."""
    repository = data.get("vendor_repositories", {}).get(name)
    if repository is None:
        raise DataError(f"no vendor repository {name!r} in packages.yml; there are: {', '.join(data.get('vendor_repositories', {}))}")
    suite = repository.get("suite")
    if field == "top":
        return repository["dir"].split("/")[0]
    if field == "pool":  # where the .deb files go, relative to dir: beside the index in a flat repository
        return repository.get("pool", ".")
    if field == "index":  # the directory of the Packages file, relative to dir
        return f"dists/{suite}/{repository['component']}/binary-amd64" if suite else "."
    if field == "release_dir":  # the directory of the Release file, relative to dir
        return f"dists/{suite}" if suite else "."
    if field == "signatures":
        return " ".join(repository.get("signatures", ["InRelease", "Release.gpg"]))
    if field == "compression":
        return repository.get("compression", "gzip")
    if field == "release_options":
        return "\n".join(f"-o\nAPT::FTPArchive::Release::{key}={value}" for key, value in repository["release"].items())
    if field in VENDOR_FIELDS:
        return str(repository[field])
    raise DataError(f"vendor field {field!r} is not one of top, release_options, {', '.join(VENDOR_FIELDS)}")


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    command, args = argv[2], argv[3:]
    try:
        if command == "distros":
            print("\n".join(data["repositories"]))
        elif command == "trees" and len(args) in (2, 3):
            for package in expand(data, args[0]):
                print(write_tree(package, data, *args[1:]))
        elif command == "debs" and len(args) == 1:
            repository, _entries = _repository(data, args[0])
            print("\n".join(repository.get("real_debs", [])))
        elif command == "list" and len(args) == 1:
            for package in expand(data, args[0]):
                print(package["name"], package["version"], package["architecture"])
        elif command == "pin" and len(args) == 1:
            expand(data, args[0])
            sys.stdout.write(data["repository_pin"])
        elif command == "release" and len(args) == 1:
            print(data["release"][args[0]])
        elif command == "vendors":
            print("\n".join(data.get("vendor_repositories", {})))
        elif command == "vendor" and len(args) == 2:
            print(vendor_field(data, *args))
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except DataError as err:
        print(f"doubles.py: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
