"""Test doubles of NVIDIA's cuDNN tar archives (tests/repo/README.md), for the cudnn_archive module.

The layout is NVIDIA's (redistrib_9.x.y.json, relative_path
cudnn/linux-x86_64/cudnn-linux-x86_64-<version>_cuda<major>-archive.tar.xz): one top directory named
like the file, holding LICENSE, include/ (the headers, each also under its _v<major> name) and lib/
(each shared library as the chain libX.so -> libX.so.9 -> libX.so.9.14.0, and the static
libraries). The headers carry the real version macros; the libraries are text stubs, not ELF files.

Usage: python3 tests/repo/cudnn_archives.py OUTDIR   writes OUTDIR/cudnn/*.tar.xz (see ARCHIVES, BAD)
The unit tests import archive() to build their own.
"""
from __future__ import annotations

import io
import os
import sys
import tarfile

# (cuDNN version, CUDA major) of each archive written to OUTDIR/cudnn.
ARCHIVES = (("9.14.0.64", "12"), ("9.14.0.64", "13"), ("9.20.0.48", "13"))
# The shared libraries of cuDNN 9 (NVIDIA's cuDNN 9 API overview: the graph, engines, ops, cnn and adv
# sub-libraries behind the libcudnn shim).
LIBRARIES = ("libcudnn", "libcudnn_adv", "libcudnn_cnn", "libcudnn_engines_precompiled",
             "libcudnn_engines_runtime_compiled", "libcudnn_graph", "libcudnn_heuristic", "libcudnn_ops")
HEADERS = ("cudnn", "cudnn_adv", "cudnn_backend", "cudnn_cnn", "cudnn_graph", "cudnn_ops", "cudnn_version")
MTIME = 1735689600  # 2025-01-01: the same bytes on every build
STUB = "dlnode test double of {name} (cuDNN {version} for CUDA {cuda}); not NVIDIA's software, not an ELF file\n"


def name_of(version, cuda, arch="x86_64"):
    """NVIDIA's name of the archive without .tar.xz, which is also its top directory."""
    return f"cudnn-linux-{arch}-{version}_cuda{cuda}-archive"


def version_header(version):
    major, minor, patch = version.split(".")[:3]
    return ("/* dlnode test double of cudnn_version.h: the real macros, no other content. */\n"
            "#ifndef CUDNN_VERSION_H_\n#define CUDNN_VERSION_H_\n\n"
            f"#define CUDNN_MAJOR {major}\n#define CUDNN_MINOR {minor}\n#define CUDNN_PATCHLEVEL {patch}\n\n"
            "#define CUDNN_VERSION (CUDNN_MAJOR * 10000 + CUDNN_MINOR * 100 + CUDNN_PATCHLEVEL)\n\n#endif\n")


def members(version, cuda, libraries=LIBRARIES):
    """(relative path, content or None, link target or None, mode) of every member below the top directory."""
    major, minor, patch = version.split(".")[:3]

    def stub(name):
        return STUB.format(name=name, version=version, cuda=cuda)

    found = [("LICENSE", "dlnode test double: NVIDIA's cuDNN license text is not reproduced here.\n", None, 0o644)]
    for header in HEADERS:
        text = version_header(version) if header == "cudnn_version" else f"/* dlnode test double of {header}.h */\n"
        found += [(f"include/{header}.h", text, None, 0o644), (f"include/{header}_v{major}.h", text, None, 0o644)]
    for library in libraries:
        real = f"{library}.so.{major}.{minor}.{patch}"
        found += [(f"lib/{real}", stub(real), None, 0o755),
                  (f"lib/{library}.so.{major}", None, real, 0o777),
                  (f"lib/{library}.so", None, f"{library}.so.{major}", 0o777)]
        if library != "libcudnn":
            found += [(f"lib/{library}_static.a", stub(f"{library}_static.a"), None, 0o644),
                      (f"lib/{library}_static_v{major}.a", stub(f"{library}_static_v{major}.a"), None, 0o644)]
    return found


def add(tar, name, content=None, target=None, mode=0o644, kind=None):
    """One member: a file with content, a symbolic link to target, or a directory (kind DIRTYPE)."""
    info = tarfile.TarInfo(name)
    info.mtime, info.mode, info.uname, info.gname = MTIME, mode, "root", "root"
    data = None
    if kind is not None:
        info.type = kind
    elif target is not None:
        info.type, info.linkname = tarfile.SYMTYPE, target
    else:
        data = content.encode() if isinstance(content, str) else content
        info.size = len(data)
    tar.addfile(info, io.BytesIO(data) if data is not None else None)


def archive(path, version, cuda, top=None, extra=(), skip=(), libraries=LIBRARIES):
    """Write a cuDNN archive double at path (compression from its suffix: .tar.xz, .tar.gz, .tgz, .tar).

    top: the top directory (default NVIDIA's name; "" for none); extra: more (name, content, target,
    mode) members, names taken as they are; skip: relative paths left out.
    """
    top = name_of(version, cuda) if top is None else top
    compression = {".xz": "xz", ".gz": "gz", ".tgz": "gz"}.get(os.path.splitext(path)[1], "")
    with tarfile.open(path, f"w:{compression}", format=tarfile.GNU_FORMAT) as tar:
        if top:
            add(tar, top, kind=tarfile.DIRTYPE, mode=0o755)
        for directory in ("include", "lib"):
            add(tar, f"{top}/{directory}".lstrip("/"), kind=tarfile.DIRTYPE, mode=0o755)
        for name, content, target, mode in members(version, cuda, libraries):
            if name not in skip:
                add(tar, f"{top}/{name}".lstrip("/"), content, target, mode)
        for name, content, target, mode in extra:
            add(tar, name, content, target, mode)
    return path


def main(outdir):
    out = os.path.join(outdir, "cudnn")
    os.makedirs(out, exist_ok=True)
    for version, cuda in ARCHIVES:
        archive(os.path.join(out, name_of(version, cuda) + ".tar.xz"), version, cuda)
    # A valid tar of something else: no include/cudnn_version.h, no lib/libcudnn.so*.
    with tarfile.open(os.path.join(out, "not-cudnn.tar.xz"), "w:xz") as tar:
        add(tar, "nccl_2.28.3-1+cuda13.0_x86_64/include/nccl.h", "/* dlnode test double: not cuDNN */\n")
        add(tar, "nccl_2.28.3-1+cuda13.0_x86_64/lib/libnccl.so.2.28.3", "dlnode test double, not cuDNN\n", mode=0o755)
    # A download cut short: the first half of a good archive (the xz stream ends early).
    with open(os.path.join(out, name_of("9.14.0.64", "13") + ".tar.xz"), "rb") as good:
        data = good.read()
    with open(os.path.join(out, "damaged.tar.xz"), "wb") as damaged:
        damaged.write(data[:len(data) // 2])
    with open(os.path.join(out, "not-a-tar.tar.xz"), "w", encoding="utf-8") as text:
        text.write("dlnode test double: a text file named like an archive, not a tar archive\n")
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} OUTDIR")
    print(main(sys.argv[1]))
