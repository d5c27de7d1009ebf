"""cudnn_archive: NVIDIA's cuDNN archive (test doubles of its real layout) into toolkits on a fake root."""
from __future__ import annotations

import json
import os
import tarfile

import pytest
from ansible.module_utils import basic

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.modules import cudnn_archive
from ansible_collections.dlnode.gpu.tests.repo import cudnn_archives

CUDA13 = "/usr/local/cuda-13.0"
MANIFEST = "/etc/dlnode/cudnn/usr-local-cuda-13.0.files"


class Node:
    """A fake root with CUDA toolkits, archives under /srv, and the commands modules ran."""

    def __init__(self, root):
        self.root = root
        self.commands = []

    def path(self, path):
        return self.root / path.lstrip("/")

    def toolkit(self, dest, version):
        self.path(f"{dest}/bin").mkdir(parents=True)
        self.path(f"{dest}/bin/nvcc").write_text("#!/bin/sh\n")
        self.path(f"{dest}/version.json").write_text(json.dumps({"cuda": {"name": "CUDA SDK", "version": version}}))

    def archive(self, version="9.14.0.64", cuda="13", name=None, **kwargs):
        """An archive double at /srv/<name>, NVIDIA's name by default; its path on the node."""
        name = name or cudnn_archives.name_of(version, cuda) + ".tar.xz"
        self.path("/srv").mkdir(exist_ok=True)
        cudnn_archives.archive(str(self.path(f"/srv/{name}")), version, cuda, **kwargs)
        return f"/srv/{name}"

    def tree(self, dest=CUDA13):
        """{path below dest: link target, or (mode, text)} of everything in include/ and lib64/."""
        found = {}
        for area in ("include", "lib64"):
            directory = self.path(f"{dest}/{area}")
            for name in sorted(os.listdir(directory)) if directory.is_dir() else ():
                real = directory / name
                found[f"{area}/{name}"] = (os.readlink(real) if real.is_symlink()
                                           else (oct(real.stat().st_mode & 0o777), real.read_text()))
        return found

    def snapshot(self):
        return sorted(str(path.relative_to(self.root)) for path in self.root.rglob("*"))


@pytest.fixture
def node(tmp_path, monkeypatch):
    made = Node(tmp_path)
    made.toolkit(CUDA13, "13.0.2")
    monkeypatch.setattr(files, "ROOT", str(tmp_path))
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                        lambda self, name, required=False, **kwargs: f"/sbin/{name}" if name == "ldconfig" else None)

    def run_command(self, argv, **_kwargs):
        made.commands.append([os.path.basename(argv[0]), *argv[1:]])
        return 0, "", ""

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    return made


def args(src, **more):
    return dict(dict(src=src, dest=CUDA13, cuda_version="13.0"), **more)


def test_fresh_install_then_idempotent(node, run_module):
    src = node.archive()
    result, failed = run_module(cudnn_archive, args(src, version="9.14.0.64"), diff=True)
    assert not failed, result["msg"] if failed else ""
    assert result["changed"] and result["version"] == "9.14.0.64" and result["cuda_major"] == "13"
    assert result["previous_version"] is None and result["manifest"] == MANIFEST and result["ldconfig"]
    assert result["diff"] == {"before": {"version": None, "files": 0}, "after": {"version": "9.14.0.64", "files": 52}}
    tree = node.tree()
    assert tree["lib64/libcudnn.so"] == "libcudnn.so.9" and tree["lib64/libcudnn.so.9"] == "libcudnn.so.9.14.0"
    assert tree["lib64/libcudnn_graph.so.9"] == "libcudnn_graph.so.9.14.0"
    mode, text = tree["lib64/libcudnn_ops.so.9.14.0"]
    assert mode == "0o755" and "libcudnn_ops.so.9.14.0 (cuDNN 9.14.0.64 for CUDA 13)" in text
    assert tree["lib64/libcudnn_ops_static_v9.a"][0] == "0o644"
    mode, text = tree["include/cudnn_version.h"]
    assert mode == "0o644" and "#define CUDNN_MINOR 14\n" in text
    assert "LICENSE" not in str(node.snapshot())
    assert sorted(result["files"]["added"]) == sorted(f"{CUDA13}/{path}" for path in tree)
    assert result["files"]["updated"] == [] and result["files"]["removed"] == []
    manifest = json.loads(node.path(MANIFEST).read_text())
    assert manifest == {"dest": CUDA13, "version": "9.14.0.64", "cuda_major": "13",
                        "files": sorted(f"{CUDA13}/{path}" for path in tree)}
    assert node.commands == [["ldconfig"]]
    assert not [name for name in node.snapshot() if ".dlnode-" in name]

    again, failed = run_module(cudnn_archive, args(src), diff=True)
    assert not failed and not again["changed"] and again["files"] == {"added": [], "updated": [], "removed": []}
    assert again["diff"]["before"] == again["diff"]["after"] and not again["ldconfig"]
    assert node.commands == [["ldconfig"]]


def test_version_change_removes_the_old_files_in_the_same_run(node, run_module):
    run_module(cudnn_archive, args(node.archive("9.14.0.64")))
    result, failed = run_module(cudnn_archive, args(node.archive("9.20.0.48"), version="9.20"), diff=True)
    assert not failed and result["changed"] and result["previous_version"] == "9.14.0.64"
    assert result["diff"]["before"]["version"] == "9.14.0.64" and result["diff"]["after"]["version"] == "9.20.0.48"
    tree = node.tree()
    assert tree["lib64/libcudnn.so.9"] == "libcudnn.so.9.20.0" and "lib64/libcudnn.so.9.14.0" not in tree
    assert not [path for path in tree if "9.14" in path]
    assert f"{CUDA13}/lib64/libcudnn_adv.so.9.14.0" in result["files"]["removed"]
    assert f"{CUDA13}/lib64/libcudnn_adv.so.9.20.0" in result["files"]["added"]
    assert f"{CUDA13}/lib64/libcudnn_adv.so.9" in result["files"]["updated"]
    assert f"{CUDA13}/include/cudnn_version.h" in result["files"]["updated"]
    assert "#define CUDNN_MINOR 20\n" in tree["include/cudnn_version.h"][1]
    assert json.loads(node.path(MANIFEST).read_text())["version"] == "9.20.0.48"
    assert node.commands == [["ldconfig"], ["ldconfig"]]


def test_a_changed_or_replaced_file_is_put_back(node, run_module):
    src = node.archive()
    run_module(cudnn_archive, args(src))
    node.path(f"{CUDA13}/lib64/libcudnn_cnn.so.9.14.0").write_text("edited\n")
    node.path(f"{CUDA13}/include/cudnn.h").chmod(0o600)
    node.path(f"{CUDA13}/lib64/libcudnn.so").unlink()
    node.path(f"{CUDA13}/lib64/libcudnn.so").write_text("a copy, not a link\n")
    result = run_module(cudnn_archive, args(src))[0]
    assert sorted(result["files"]["updated"]) == [f"{CUDA13}/include/cudnn.h", f"{CUDA13}/lib64/libcudnn.so",
                                                  f"{CUDA13}/lib64/libcudnn_cnn.so.9.14.0"]
    tree = node.tree()
    assert tree["lib64/libcudnn.so"] == "libcudnn.so.9" and tree["include/cudnn.h"][0] == "0o644"
    assert "cuDNN 9.14.0.64" in tree["lib64/libcudnn_cnn.so.9.14.0"][1]


def test_absent_removes_exactly_the_recorded_files(node, run_module):
    run_module(cudnn_archive, args(node.archive()))
    node.path(f"{CUDA13}/lib64/libcudart.so.13").write_text("the toolkit's own\n")
    node.path(f"{CUDA13}/include/cuda.h").write_text("the toolkit's own\n")
    check = run_module(cudnn_archive, dict(dest=CUDA13, state="absent"), check_mode=True)[0]
    assert check["changed"] and len(check["files"]["removed"]) == 52 and node.path(MANIFEST).exists()
    result, failed = run_module(cudnn_archive, dict(dest=CUDA13, state="absent"), diff=True)
    assert not failed and result["changed"] and result["version"] == "9.14.0.64"
    assert result["files"]["removed"] == check["files"]["removed"]
    assert result["diff"]["after"] == {"version": None, "files": 0}
    assert set(node.tree()) == {"lib64/libcudart.so.13", "include/cuda.h"} and not node.path(MANIFEST).exists()
    again = run_module(cudnn_archive, dict(dest=CUDA13, state="absent"))[0]
    assert not again["changed"] and again["version"] is None


def test_check_mode_returns_the_plan_and_writes_nothing(node, run_module):
    src = node.archive()
    before = node.snapshot()
    result, failed = run_module(cudnn_archive, args(src), check_mode=True, diff=True)
    assert not failed and result["changed"] and len(result["files"]["added"]) == 52 and result["ldconfig"]
    assert node.snapshot() == before and node.commands == []
    run_module(cudnn_archive, args(src))
    newer = node.archive("9.20.0.48")
    before = node.snapshot()
    planned = run_module(cudnn_archive, args(newer), check_mode=True)[0]
    assert node.snapshot() == before and node.commands == [["ldconfig"]]
    done = run_module(cudnn_archive, args(newer))[0]
    assert planned["files"] == done["files"]


def test_two_toolkits_side_by_side(node, run_module):
    node.toolkit("/usr/local/cuda-12.8", "12.8.1")
    run_module(cudnn_archive, args(node.archive("9.14.0.64", "13")))
    result, failed = run_module(cudnn_archive, dict(src=node.archive("9.14.0.64", "12"), dest="/usr/local/cuda-12.8",
                                                    cuda_version="12.8"))
    assert not failed and result["manifest"] == "/etc/dlnode/cudnn/usr-local-cuda-12.8.files"
    assert "for CUDA 12" in node.tree("/usr/local/cuda-12.8")["lib64/libcudnn.so.9.14.0"][1]
    assert "for CUDA 13" in node.tree()["lib64/libcudnn.so.9.14.0"][1]


def test_gzip_archive_and_lib64_as_the_toolkits_link(node, run_module):
    # A real toolkit's lib64 and include are links to targets/x86_64-linux/{lib,include}.
    for area, target in (("lib64", "lib"), ("include", "include")):
        node.path(f"{CUDA13}/targets/x86_64-linux/{target}").mkdir(parents=True, exist_ok=True)
        os.symlink(f"targets/x86_64-linux/{target}", node.path(f"{CUDA13}/{area}"))
    name = cudnn_archives.name_of("9.14.0.64", "13") + ".tgz"
    result, failed = run_module(cudnn_archive, args(node.archive(name=name)))
    assert not failed and result["changed"]
    assert os.readlink(node.path(f"{CUDA13}/targets/x86_64-linux/lib/libcudnn.so.9")) == "libcudnn.so.9.14.0"
    assert node.path(f"{CUDA13}/lib64").is_symlink()
    assert not run_module(cudnn_archive, args(node.archive(name=name)))[0]["changed"]


def refused(run_module, node, arguments, message):
    before = node.snapshot()
    result, failed = run_module(cudnn_archive, arguments)
    assert failed and result["msg"] == message
    assert node.snapshot() == before and node.commands == []


def test_refuses_a_missing_src(node, run_module):
    refused(run_module, node, args("/srv/cudnn.tar.xz", label="cudnn_archives[1]"),
            "cudnn_archives[1].src: /srv/cudnn.tar.xz does not exist on the node: copy NVIDIA's cuDNN archive "
            "(cudnn-linux-x86_64-<version>_cuda<major>-archive.tar.xz) there first; nothing was written")


def test_refuses_a_file_that_is_not_a_tar_archive(node, run_module):
    node.path("/srv").mkdir()
    node.path("/srv/cudnn.tar.xz").write_text("not an archive\n" * 40)
    refused(run_module, node, args("/srv/cudnn.tar.xz"),
            "src: /srv/cudnn.tar.xz is not a tar archive (.tar.xz, .tar.gz or .tgz): invalid header; "
            "nothing was written")
    refused(run_module, node, args("/srv"), "src: /srv is a directory, not a tar archive; nothing was written")


def test_refuses_a_damaged_archive(node, run_module):
    src = node.archive()
    data = node.path(src).read_bytes()
    node.path(src).write_bytes(data[:len(data) // 2])
    before = node.snapshot()
    result, failed = run_module(cudnn_archive, args(src))
    assert failed and result["msg"].startswith(f"src: {src} is damaged (a download cut short?): ")
    assert result["msg"].endswith("; nothing was written") and node.snapshot() == before


def test_refuses_a_tar_that_is_not_cudnn(node, run_module):
    src = node.archive(skip=("include/cudnn_version.h",))
    refused(run_module, node, args(src),
            f"src: {src} is not a cuDNN archive: it has no include/cudnn_version.h (NVIDIA's archive is "
            "cudnn-linux-x86_64-<version>_cuda<major>-archive.tar.xz); nothing was written")
    src = node.archive(name="nccl.tar.gz", libraries=("libcudnn_ops",))
    refused(run_module, node, args(src),
            f"src: {src} is not a cuDNN archive: it has no lib/libcudnn.so* (NVIDIA's archive is "
            "cudnn-linux-x86_64-<version>_cuda<major>-archive.tar.xz); nothing was written")


@pytest.mark.parametrize("member, what", [
    (("/etc/ld.so.conf.d/evil.conf", "x\n", None, 0o644), "an unsafe member '/etc/ld.so.conf.d/evil.conf' (an absolute path or '..')"),
    (("top/../../etc/passwd", "x\n", None, 0o644), "an unsafe member 'top/../../etc/passwd' (an absolute path or '..')"),
    (("T/lib/libcudnn_x.so", None, "/usr/lib/libc.so.6", 0o777),
     "an unsafe member 'T/lib/libcudnn_x.so', a link to '/usr/lib/libc.so.6' outside its directory"),
    (("T/lib/libcudnn_x.so", None, "../include/cudnn.h", 0o777),
     "an unsafe member 'T/lib/libcudnn_x.so', a link to '../include/cudnn.h' outside its directory"),
    (("T/LICENSE.link", None, "../../etc/shadow", 0o777),
     "an unsafe member 'T/LICENSE.link', a link to '../../etc/shadow' outside its directory"),
])
def test_refuses_unsafe_members(node, run_module, member, what):
    name = cudnn_archives.name_of("9.14.0.64", "13")
    member = (member[0].replace("T/", name + "/"), *member[1:])
    what = what.replace("'T/", f"'{name}/")
    src = node.archive(extra=[member])
    refused(run_module, node, args(src), f"src: {src} has {what}: refusing the archive; nothing was written")


def test_refuses_hard_links(node, run_module):
    src = node.archive()
    name = cudnn_archives.name_of("9.14.0.64", "13")
    with tarfile.open(node.path(src), "w:xz") as tar:
        info = tarfile.TarInfo(f"{name}/lib/libcudnn.so.9")
        info.type, info.linkname = tarfile.LNKTYPE, "/etc/shadow"
        tar.addfile(info)
    refused(run_module, node, args(src), f"src: {src} has a member '{name}/lib/libcudnn.so.9' that is a hard link, "
                                         "which a cuDNN archive does not hold: refusing the archive; nothing was written")


def test_refuses_an_archive_for_another_cuda_major(node, run_module):
    src = node.archive("9.14.0.64", "12")
    refused(run_module, node, args(src),
            f"src: {src} is cuDNN 9.14.0.64 for CUDA 12, but cuda_version is 13.0: use NVIDIA's archive for CUDA 13 "
            "(..._cuda13-archive.tar.xz); nothing was written")
    # Renamed: the top directory still says CUDA 12.
    renamed = node.archive("9.14.0.64", "12", name="cudnn-linux-x86_64-9.14.0.64_cuda13-archive.tar.xz")
    refused(run_module, node, args(renamed),
            f"src: {renamed} is renamed: its file name says CUDA 13, its top directory CUDA 12; nothing was written")


def test_an_archive_without_nvidias_names(node, run_module):
    bare = node.archive(name="cudnn.tar.xz", top="")
    refused(run_module, node, args(bare),
            f"src: {bare} does not say which CUDA it is for (neither its name nor its top directory is NVIDIA's "
            "cudnn-linux-<arch>-<version>_cuda<major>-archive); nothing was written")
    renamed = node.archive(name="cudnn.tar.xz")
    result, failed = run_module(cudnn_archive, args(renamed))
    assert not failed and result["version"] == "9.14.0.64" and result["cuda_major"] == "13"


def test_refuses_another_cudnn_version(node, run_module):
    src = node.archive()
    refused(run_module, node, args(src, version="9.20"),
            f"version: cuDNN 9.20 was asked for, but {src} is cuDNN 9.14.0.64; nothing was written")
    refused(run_module, node, args(src, version="9.14.0.65", label="cudnn_archives[0]"),
            f"cudnn_archives[0].version: cuDNN 9.14.0.65 was asked for, but {src} is cuDNN 9.14.0.64; nothing was written")
    refused(run_module, node, args(src, version="9.x"),
            "version: '9.x' is not a cuDNN version such as 9.14 or 9.14.0.64")


def test_refuses_a_header_that_disagrees_with_the_name(node, run_module):
    name = cudnn_archives.name_of("9.14.0.64", "13")
    src = node.archive(top=name + "x", skip=("include/cudnn_version.h",),
                       extra=[(f"{name}x/include/cudnn_version.h", cudnn_archives.version_header("9.20.0"), None, 0o644)])
    refused(run_module, node, args(src),
            f"src: {src} is damaged or renamed: its file name says cuDNN 9.14.0.64, its cudnn_version.h 9.20.0; "
            "nothing was written")


def test_refuses_a_dest_without_the_toolkit(node, run_module):
    src = node.archive()
    refused(run_module, node, args(src, dest="/usr/local/cuda-13.1", cuda_version="13.1", label="cudnn_archives[0]"),
            "cudnn_archives[0].dest: CUDA 13.1 is not installed at /usr/local/cuda-13.1 (no bin/nvcc, version.json or "
            "targets/ there): install the toolkit first (the cuda_toolkit role); nothing was written")
    node.toolkit("/usr/local/cuda-12.8", "12.8.1")
    refused(run_module, node, args(src, dest="/usr/local/cuda-12.8"),
            "dest: /usr/local/cuda-12.8 holds CUDA 12.8.1 (its version.json), but cuda_version is 13.0; nothing was written")
    os.symlink("/usr/local/cuda-13.0", node.path("/usr/local/cuda"))
    refused(run_module, node, args(src, dest="/usr/local/cuda"),
            "dest: /usr/local/cuda is a symbolic link (to /usr/local/cuda-13.0): name the toolkit's own directory, "
            "such as /usr/local/cuda-13.0, so that each toolkit keeps its own cuDNN; nothing was written")
    refused(run_module, node, args(src, cuda_version="13"),
            "cuda_version: '13' is not a CUDA toolkit version such as 12.8 or 13.0.2")


def test_refuses_a_directory_where_a_file_goes(node, run_module):
    node.path(f"{CUDA13}/lib64/libcudnn.so.9").mkdir(parents=True)
    src = node.archive()
    refused(run_module, node, args(src),
            f"dest: {CUDA13}/lib64/libcudnn.so.9 is a directory where the archive has lib/libcudnn.so.9: "
            "refusing to replace it; nothing was written")


def test_required_options(node, run_module):
    result, failed = run_module(cudnn_archive, dict(dest=CUDA13))
    assert failed and result["msg"] == "state is present but all of the following are missing: src, cuda_version"
    result, failed = run_module(cudnn_archive, dict(src="x.tar.xz", dest=CUDA13, cuda_version="13.0"))
    assert failed and result["msg"] == "src must be an absolute path, got x.tar.xz"


def test_check_mode_predicts_a_toolkit_installed_earlier_in_the_run(node, run_module):
    src = node.archive("9.14.0.64", "12")
    pending = args(src, dest="/usr/local/cuda-12.8", cuda_version="12.8", pending=True)
    before = node.snapshot()
    result, failed = run_module(cudnn_archive, pending, check_mode=True)
    assert not failed and result["changed"] and len(result["files"]["added"]) == 52
    assert node.snapshot() == before
    # Only a check run predicts it: a real run needs the toolkit there.
    result, failed = run_module(cudnn_archive, pending)
    assert failed and "CUDA 12.8 is not installed at /usr/local/cuda-12.8" in result["msg"]
