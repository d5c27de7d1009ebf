# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""cuDNN from NVIDIA's tar archive into one CUDA toolkit's directory, with a manifest of what was installed.

Sources: NVIDIA's cuDNN redistributable index (developer.download.nvidia.com/compute/cudnn/redist/
redistrib_9.x.y.json): one archive per CUDA major, relative_path
cudnn/linux-x86_64/cudnn-linux-x86_64-9.14.0.64_cuda13-archive.tar.xz, whose one top directory has
that name and holds LICENSE, include/ and lib/ (libcudnn*.so* as symbolic link chains, libcudnn*.a).
NVIDIA's cuDNN installation guide (Linux, tarball): the include/ files go to the toolkit's include
directory and the lib/ files, links kept, to its lib64. cudnn_version.h defines CUDNN_MAJOR,
CUDNN_MINOR and CUDNN_PATCHLEVEL; the fourth number (the build) is only in the archive's name.

The archive is read twice at most, as a stream (tarfile, so xz needs no external tool): once to plan
(every member compared with the installed file, nothing kept in memory but the headers), and once
to install what differs. Every file is staged under a temp name and renamed only after all are
staged, so a failure leaves the installed version whole.
"""
from __future__ import annotations

import json
import lzma
import os
import platform
import posixpath
import re
import stat
import tarfile
import zlib

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError
from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import cuda

MANIFEST_DIR = "/etc/dlnode/cudnn"
# Where each area of the archive goes in the toolkit's directory.
AREAS = {"include": "include", "lib": "lib64"}
NAME_RE = re.compile(r"cudnn-linux-(?P<arch>[a-z0-9_]+)-(?P<version>[0-9]+(?:\.[0-9]+){2,3})_cuda(?P<cuda>[0-9]+)-archive")
MACRO_RE = r"^\s*#\s*define\s+CUDNN_{}\s+([0-9]+)\s*$"
VERSION_RE = re.compile(r"^[0-9]+(\.[0-9]+){0,3}$")
# NVIDIA's name for the node's machine in its archives' names.
ARCHES = {"x86_64": "x86_64", "aarch64": "sbsa", "arm64": "sbsa"}
CHUNK = files.MIB
MAX_HEADER = files.MIB
READ_ERRORS = (tarfile.TarError, lzma.LZMAError, zlib.error, EOFError)


class ArchiveError(DlnodeError):
    """An archive that is missing, damaged, unsafe, not cuDNN, or not the one asked for."""


def option_name(label, option):
    """How a message names an option: src, or cudnn_archives[1].src when the caller gives a label."""
    return f"{label}.{option}" if label else option


def manifest_path(dest):
    """/etc/dlnode/cudnn/usr-local-cuda-13.0.files for /usr/local/cuda-13.0."""
    return f"{MANIFEST_DIR}/{dest.strip('/').replace('/', '-')}.files"


def numbers(version):
    return [int(part) for part in str(version).split(".")]


# -- the toolkit -------------------------------------------------------------


def check_toolkit(dest, cuda_version, label=None):
    """Refuse a dest that is not the toolkit directory of cuda_version."""
    where = option_name(label, "dest")
    real = files.host_path(dest)
    if os.path.islink(real):
        raise ArchiveError(f"{where}: {dest} is a symbolic link (to {os.readlink(real)}): name the toolkit's own "
                           "directory, such as /usr/local/cuda-13.0, so that each toolkit keeps its own cuDNN; "
                           "nothing was written")
    if not any(os.path.lexists(os.path.join(real, marker)) for marker in ("bin/nvcc", "version.json", "targets")):
        raise ArchiveError(f"{where}: CUDA {cuda_version} is not installed at {dest} (no bin/nvcc, version.json or "
                           "targets/ there): install the toolkit first (the cuda_toolkit role); nothing was written")
    installed = toolkit_version(dest)
    if installed and installed.split(".")[:2] != str(cuda_version).split(".")[:2]:
        raise ArchiveError(f"{where}: {dest} holds CUDA {installed} (its version.json), but "
                           f"{option_name(label, 'cuda_version')} is {cuda_version}; nothing was written")


def toolkit_version(dest):
    """The toolkit's version from its version.json ({"cuda": {"version": "13.0.2"}}), or None."""
    try:
        found = json.loads(files.read(f"{dest.rstrip('/')}/version.json") or "null")
    except (ValueError, files.FileError):
        return None
    version = (found or {}).get("cuda", {}).get("version") if isinstance(found, dict) else None
    return str(version) if version else None


# -- reading the archive -----------------------------------------------------


class Member:
    """One file or link of the archive that is installed: where it goes and what it is."""

    def __init__(self, rel, path, kind, mode=0o644, size=0, target=None):
        self.rel = rel          # include/cudnn.h, lib/libcudnn.so.9
        self.path = path        # /usr/local/cuda-13.0/lib64/libcudnn.so.9
        self.kind = kind        # file or link
        self.mode = mode
        self.size = size
        self.target = target
        self.state = None       # None (as installed), added or updated


class Archive:
    """What a scan of an archive found: its members to install, its headers, its name's parts."""

    def __init__(self, src):
        self.src = src
        self.members = {}       # rel -> Member, in archive order
        self.headers = {}       # include/x.h -> its text (small files only)
        self.links = {}         # include/x.h -> target, for the headers that are links
        self.tops = set()
        self.version = None
        self.cuda_major = None
        self.arch = None

    def header(self, rel, depth=0):
        """The text of an include file, following links inside include/."""
        if rel in self.links and depth < 8:
            return self.header(posixpath.normpath(posixpath.join(posixpath.dirname(rel), self.links[rel])), depth + 1)
        return self.headers.get(rel)


def split_name(raw, src, label):
    """(top directory or "", path below it) of a member; ArchiveError for an unsafe name."""
    name = raw
    while name.startswith("./"):
        name = name[2:]
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if name.startswith("/") or ".." in parts:
        raise ArchiveError(f"{option_name(label, 'src')}: {src} has an unsafe member {raw!r} (an absolute path or "
                           "'..'): refusing the archive; nothing was written")
    if not parts:
        return "", ""
    if parts[0] in AREAS:
        return "", "/".join(parts)
    return parts[0], "/".join(parts[1:])


def check_link(info, rel, src, label):
    """A link must stay in its own area (include/ or lib/): each area is installed in another directory."""
    target = info.linkname
    area = rel.split("/")[0] if rel else ""
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
    inside = area in AREAS and (resolved == area or resolved.startswith(area + "/"))
    if target.startswith("/") or not inside and area in AREAS or resolved.startswith(".."):
        raise ArchiveError(f"{option_name(label, 'src')}: {src} has an unsafe member {info.name!r}, a link to "
                           f"{target!r} outside its directory: refusing the archive; nothing was written")


def same_file(real, handle, size):
    """Whether the installed regular file real has the member's content (read from handle)."""
    try:
        if os.path.getsize(real) != size:
            return False
        with open(real, "rb") as installed:
            while True:
                block = handle.read(CHUNK)
                if block != installed.read(len(block)):
                    return False
                if not block:
                    return True
    except OSError:
        return False


def compare(member, real, handle):
    """added, updated or None (the installed path already is the member)."""
    if not os.path.lexists(real):
        return "added"
    now = os.lstat(real)
    if stat.S_ISDIR(now.st_mode):
        return "directory"
    if member.kind == "link":
        return None if stat.S_ISLNK(now.st_mode) and os.readlink(real) == member.target else "updated"
    if not stat.S_ISREG(now.st_mode) or stat.S_IMODE(now.st_mode) != member.mode:
        return "updated"
    return None if same_file(real, handle, member.size) else "updated"


def open_archive(src, label):
    """The archive as a tar stream; ArchiveError for a missing file or one that is not a tar archive."""
    where = option_name(label, "src")
    real = files.host_path(src)
    if not os.path.lexists(real):
        raise ArchiveError(f"{where}: {src} does not exist on the node: copy NVIDIA's cuDNN archive "
                           "(cudnn-linux-x86_64-<version>_cuda<major>-archive.tar.xz) there first; nothing was written")
    if os.path.isdir(real):
        raise ArchiveError(f"{where}: {src} is a directory, not a tar archive; nothing was written")
    try:
        return tarfile.open(real, "r|*")
    except READ_ERRORS as exc:
        raise ArchiveError(f"{where}: {src} is not a tar archive (.tar.xz, .tar.gz or .tgz): {exc}; "
                           "nothing was written") from exc
    except OSError as exc:
        raise files.os_error(exc, src, "read", error=ArchiveError) from exc


def walk(src, label, visit):
    """visit(info, top, rel, tar) for every member, as a stream; damage and unsafe members are refused."""
    tar = open_archive(src, label)
    try:
        with tar:
            for info in tar:
                top, rel = split_name(info.name, src, label)
                visit(info, top, rel, tar)
    except READ_ERRORS as exc:
        raise ArchiveError(f"{option_name(label, 'src')}: {src} is damaged (a download cut short?): {exc}; "
                           "nothing was written") from exc


def scan(src, dest, label=None):
    """Read the archive once: validate every member, compare each one to install with what is at dest."""
    found = Archive(src)
    where = option_name(label, "src")

    def visit(info, top, rel, tar):
        found.tops.add(top)
        area = rel.split("/")[0]
        if info.isdir() or area not in AREAS or rel == area:
            if info.issym():
                check_link(info, rel, src, label)
            return
        if info.issym():
            check_link(info, rel, src, label)
        elif not info.isreg():
            kind = "a hard link" if info.islnk() else "a device, FIFO or other special file"
            raise ArchiveError(f"{where}: {src} has a member {info.name!r} that is {kind}, which a cuDNN archive "
                               "does not hold: refusing the archive; nothing was written")
        path = f"{dest.rstrip('/')}/{AREAS[area]}/{rel.split('/', 1)[1]}"
        if info.issym():
            member = Member(rel, path, "link", target=info.linkname)
            handle = None
        else:
            member = Member(rel, path, "file", mode=(info.mode & 0o755) | 0o444, size=info.size)
            handle = tar.extractfile(info)
            if area == "include" and info.size <= MAX_HEADER:
                data = handle.read()
                found.headers[rel] = data.decode("utf-8", "replace")
                handle = _Bytes(data)
        if info.issym() and area == "include":
            found.links[rel] = info.linkname
        member.state = compare(member, files.host_path(path), handle)
        if member.state == "directory":
            raise ArchiveError(f"{option_name(label, 'dest')}: {path} is a directory where the archive has "
                               f"{member.rel}: refusing to replace it; nothing was written")
        found.members[rel] = member

    walk(src, label, visit)
    identify(found, label)
    return found


class _Bytes:
    """A header already read, for compare()."""

    def __init__(self, data):
        self.data, self.offset = data, 0

    def read(self, size):
        block = self.data[self.offset:self.offset + size]
        self.offset += len(block)
        return block


def identify(found, label):
    """The archive's cuDNN version and CUDA major, from its headers and its names; refuse what is not cuDNN."""
    where = option_name(label, "src")
    src = found.src
    text = found.header("include/cudnn_version.h")
    libraries = [rel for rel in found.members if re.match(r"^lib/libcudnn\.so", rel)]
    if text is None or not libraries:
        absent = (("include/cudnn_version.h", text is None), ("lib/libcudnn.so*", not libraries))
        missing = " and no ".join(what for what, gone in absent if gone)
        raise ArchiveError(f"{where}: {src} is not a cuDNN archive: it has no {missing} (NVIDIA's archive is "
                           "cudnn-linux-x86_64-<version>_cuda<major>-archive.tar.xz); nothing was written")
    macros = [re.search(MACRO_RE.format(name), text, re.MULTILINE) for name in ("MAJOR", "MINOR", "PATCHLEVEL")]
    if not all(macros):
        raise ArchiveError(f"{where}: {src} is not a cuDNN archive: its include/cudnn_version.h does not define "
                           "CUDNN_MAJOR, CUDNN_MINOR and CUDNN_PATCHLEVEL; nothing was written")
    header = ".".join(macro.group(1) for macro in macros)
    names = {}
    for origin, name in (("its top directory", next(iter(found.tops)) if len(found.tops) == 1 else ""),
                         ("its file name", os.path.basename(src))):
        # The top directory is NVIDIA's name exactly; a file name may carry more ("... (1).tar.xz").
        match = NAME_RE.fullmatch(name) if origin == "its top directory" else NAME_RE.search(name)
        if match:
            names[origin] = match
    for origin, match in names.items():
        if numbers(match.group("version"))[:3] != numbers(header):
            raise ArchiveError(f"{where}: {src} is damaged or renamed: {origin} says cuDNN {match.group('version')}, "
                               f"its cudnn_version.h {header}; nothing was written")
    majors = {origin: match.group("cuda") for origin, match in names.items()}
    if len(set(majors.values())) > 1:
        raise ArchiveError(f"{where}: {src} is renamed: its file name says CUDA {majors['its file name']}, "
                           f"its top directory CUDA {majors['its top directory']}; nothing was written")
    best = names.get("its top directory") or names.get("its file name")
    found.version = best.group("version") if best else header
    found.cuda_major = best.group("cuda") if best else None
    found.arch = best.group("arch") if best else None


def check_wanted(found, cuda_version, version, label=None):
    """Refuse an archive for another CUDA major, another machine, or another cuDNN version than asked."""
    where = option_name(label, "src")
    src = found.src
    major = cuda.parse(cuda_version, option_name(label, "cuda_version"))[0]
    if found.cuda_major is None:
        raise ArchiveError(f"{where}: {src} does not say which CUDA it is for (neither its name nor its top directory "
                           "is NVIDIA's cudnn-linux-<arch>-<version>_cuda<major>-archive); nothing was written")
    if found.cuda_major != major:
        raise ArchiveError(f"{where}: {src} is cuDNN {found.version} for CUDA {found.cuda_major}, but "
                           f"{option_name(label, 'cuda_version')} is {cuda_version}: use NVIDIA's archive for CUDA "
                           f"{major} (..._cuda{major}-archive.tar.xz); nothing was written")
    machine = ARCHES.get(platform.machine(), platform.machine())
    if found.arch and found.arch != machine:
        raise ArchiveError(f"{where}: {src} is built for linux-{found.arch}, but this node is {platform.machine()} "
                           f"(NVIDIA's linux-{machine} archive); nothing was written")
    if version is not None:
        if not VERSION_RE.match(str(version)):
            raise ArchiveError(f"{option_name(label, 'version')}: {version!r} is not a cuDNN version such as 9.14 "
                               "or 9.14.0.64")
        if numbers(found.version)[:len(numbers(version))] != numbers(version):
            raise ArchiveError(f"{option_name(label, 'version')}: cuDNN {version} was asked for, but {src} is cuDNN "
                               f"{found.version}; nothing was written")


# -- the manifest ------------------------------------------------------------


def read_manifest(dest, label=None):
    """The manifest of dest ({dest, version, cuda_major, files}), or None."""
    path = manifest_path(dest)
    text = files.read(path)
    if text is None:
        return None
    try:
        found = json.loads(text)
        if not isinstance(found, dict) or not isinstance(found.get("files"), list):
            raise ValueError("no list of files")
    except ValueError as exc:
        raise ArchiveError(f"{option_name(label, 'dest')}: the manifest {path} of the cuDNN installed in {dest} is "
                           f"damaged ({exc}): remove the files it lists by hand and then the manifest") from exc
    if found.get("dest") != dest.rstrip("/"):
        raise ArchiveError(f"{option_name(label, 'dest')}: the manifest {path} belongs to {found.get('dest')}, "
                           f"not {dest}; nothing was written")
    return found


def manifest_text(dest, found):
    content = {"dest": dest.rstrip("/"), "version": found.version, "cuda_major": found.cuda_major,
               "files": sorted(member.path for member in found.members.values())}
    return json.dumps(content, indent=1, sort_keys=True) + "\n"


# -- plan, apply, read back --------------------------------------------------


class Plan:
    """What a run does: files added, updated and removed, the manifest, and whether lib64 changed."""

    def __init__(self, dest, found=None, installed=None):
        self.dest = dest
        self.found = found
        self.installed = installed
        members = found.members.values() if found else ()
        self.added = [member.path for member in members if member.state == "added"]
        self.updated = [member.path for member in members if member.state == "updated"]
        keep = {member.path for member in members}
        self.removed = sorted(path for path in (installed or {}).get("files", [])
                              if path not in keep and os.path.lexists(files.host_path(path))
                              and not os.path.isdir(files.host_path(path)))
        self.manifest = files.plan(manifest_path(dest), manifest_text(dest, found) if found else None)

    @property
    def changed(self):
        return bool(self.added or self.updated or self.removed or self.manifest.changed)

    @property
    def libraries_changed(self):
        lib64 = f"{self.dest.rstrip('/')}/lib64/"
        return any(path.startswith(lib64) for path in self.added + self.updated + self.removed)

    def changes(self):
        return {"added": self.added, "updated": self.updated, "removed": self.removed}


def plan_present(src, dest, cuda_version, version=None, label=None, pending=False):
    """pending: the toolkit is installed earlier in this run, and a check run predicts it (dest is not there yet)."""
    cuda.parse(cuda_version, option_name(label, "cuda_version"))
    if not (pending and not os.path.lexists(files.host_path(dest))):
        check_toolkit(dest, cuda_version, label)
    installed = read_manifest(dest, label)
    found = scan(src, dest, label)
    check_wanted(found, cuda_version, version, label)
    return Plan(dest, found, installed)


def plan_absent(dest, label=None):
    return Plan(dest, None, read_manifest(dest, label))


def apply(module, plan, label=None):
    """Stage every file to install (a second read of the archive), then rename them, link, remove, record."""
    found = plan.found
    staged = []
    if found is not None:
        wanted = {member.rel: member for member in found.members.values() if member.state and member.kind == "file"}

        def visit(info, _top, rel, tar):
            member = wanted.get(rel)
            if member is not None and info.isreg():
                staged.append((files.stage(member.path, tar.extractfile(info), member.mode), member))

        try:
            walk(found.src, label, visit)
            if len(staged) != len(wanted):
                raise ArchiveError(f"{option_name(label, 'src')}: {found.src} changed while it was being installed; "
                                   "nothing was installed, run again")
        except Exception:
            for tmp, _member in staged:
                files.discard(tmp)
            raise
        for tmp, member in staged:
            files.commit(module, tmp, member.path, member.mode)
        for member in found.members.values():
            if member.state and member.kind == "link":
                files.symlink(member.path, member.target)
    for path in plan.removed:
        files.remove(path)
    if plan.manifest.after is None:
        files.remove(plan.manifest.path)
    elif plan.manifest.changed:
        files.write(module, plan.manifest)


def read_back(plan):
    """What differs from the plan on the node after apply: a list of lines, empty when all is in place."""
    wrong = []
    for member in (plan.found.members.values() if plan.found else ()):
        real = files.host_path(member.path)
        if member.kind == "link":
            if not os.path.islink(real) or os.readlink(real) != member.target:
                wrong.append(f"{member.path} is not a link to {member.target}")
        elif os.path.islink(real) or not os.path.isfile(real) or os.path.getsize(real) != member.size \
                or stat.S_IMODE(os.stat(real).st_mode) != member.mode:
            wrong.append(f"{member.path} is not the archive's {member.rel} ({member.size} bytes, mode {member.mode:04o})")
    wrong += [f"{path} is still there" for path in plan.removed if os.path.lexists(files.host_path(path))]
    if files.read(plan.manifest.path) != plan.manifest.after:
        wrong.append(f"{plan.manifest.path} does not hold the manifest")
    return wrong
