"""module_utils.nvidia.cudnn_archive: names, links, headers, the manifest, and an install that fails half way."""
from __future__ import annotations

import json
import os

import pytest

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import cudnn_archive as ca
from ansible_collections.dlnode.gpu.tests.repo import cudnn_archives

DEST = "/usr/local/cuda-13.0"
NAME = cudnn_archives.name_of("9.14.0.64", "13")


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "ROOT", str(tmp_path))
    (tmp_path / "usr/local/cuda-13.0/bin").mkdir(parents=True)
    (tmp_path / "usr/local/cuda-13.0/bin/nvcc").write_text("")
    (tmp_path / "srv").mkdir()
    return tmp_path


def test_manifest_path_and_option_names():
    assert ca.manifest_path("/usr/local/cuda-13.0/") == "/etc/dlnode/cudnn/usr-local-cuda-13.0.files"
    assert ca.option_name(None, "src") == "src"
    assert ca.option_name("cudnn_archives[2]", "src") == "cudnn_archives[2].src"


@pytest.mark.parametrize("name, split", [
    (f"{NAME}/lib/libcudnn.so.9", (NAME, "lib/libcudnn.so.9")),
    (f"./{NAME}/include/cudnn.h", (NAME, "include/cudnn.h")),
    ("include/cudnn.h", ("", "include/cudnn.h")),
    ("./", ("", "")),
])
def test_split_name(name, split):
    assert ca.split_name(name, "/srv/a.tar.xz", None) == split


def test_the_header_is_found_through_a_link():
    found = ca.Archive("/srv/a.tar.xz")
    found.headers["include/cudnn_version_v9.h"] = "#define CUDNN_MAJOR 9\n"
    found.links["include/cudnn_version.h"] = "cudnn_version_v9.h"
    assert found.header("include/cudnn_version.h") == "#define CUDNN_MAJOR 9\n"
    found.links["include/loop.h"] = "loop.h"
    assert found.header("include/loop.h") is None


def test_a_linked_version_header_is_read(root):
    version = cudnn_archives.version_header("9.14.0")
    src = cudnn_archives.archive(str(root / "srv" / (NAME + ".tar.xz")), "9.14.0.64", "13", skip=("include/cudnn_version.h",),
                                 extra=[(f"{NAME}/include/cudnn_version.h", None, "cudnn_version_v9.h", 0o777)])
    assert "#define CUDNN_MAJOR 9" in version
    found = ca.scan("/srv/" + os.path.basename(src), DEST)
    assert found.version == "9.14.0.64" and found.cuda_major == "13" and found.arch == "x86_64"
    assert found.members["include/cudnn_version.h"].kind == "link"


def test_a_header_without_the_macros_is_not_cudnn(root):
    cudnn_archives.archive(str(root / "srv/a.tar.xz"), "9.14.0.64", "13", skip=("include/cudnn_version.h",),
                           extra=[(f"{NAME}/include/cudnn_version.h", "#define CUDNN_MAJOR 9\n", None, 0o644)])
    with pytest.raises(ca.ArchiveError, match=r"^src: /srv/a.tar.xz is not a cuDNN archive: its include/cudnn_version.h "
                                              r"does not define CUDNN_MAJOR, CUDNN_MINOR and CUDNN_PATCHLEVEL; nothing"):
        ca.scan("/srv/a.tar.xz", DEST)


def test_an_archive_for_another_machine(root, monkeypatch):
    monkeypatch.setattr(ca.platform, "machine", lambda: "aarch64")
    cudnn_archives.archive(str(root / "srv/a.tar.xz"), "9.14.0.64", "13")
    found = ca.scan("/srv/a.tar.xz", DEST)
    with pytest.raises(ca.ArchiveError, match=r"^src: /srv/a.tar.xz is built for linux-x86_64, but this node is "
                                              r"aarch64 \(NVIDIA's linux-sbsa archive\); nothing was written$"):
        ca.check_wanted(found, "13.0", None)


def test_a_damaged_or_foreign_manifest_is_refused(root):
    manifest = root / "etc/dlnode/cudnn/usr-local-cuda-13.0.files"
    manifest.parent.mkdir(parents=True)
    manifest.write_text("{not json")
    with pytest.raises(ca.ArchiveError, match=r"^dest: the manifest /etc/dlnode/cudnn/usr-local-cuda-13.0.files of the "
                                              r"cuDNN installed in /usr/local/cuda-13.0 is damaged \("):
        ca.plan_absent(DEST)
    manifest.write_text(json.dumps({"dest": "/usr/local-cuda-13.0", "files": []}))
    with pytest.raises(ca.ArchiveError, match=r"^dest: the manifest .* belongs to /usr/local-cuda-13.0, not "
                                              r"/usr/local/cuda-13.0; nothing was written$"):
        ca.plan_absent(DEST)


def test_a_failed_install_leaves_nothing_half_done(root, monkeypatch):
    cudnn_archives.archive(str(root / "srv/a.tar.xz"), "9.14.0.64", "13")
    plan = ca.plan_present("/srv/a.tar.xz", DEST, "13.0")
    real_stage = files.stage
    staged = []

    def stage(path, source, mode=0o644, root=None):
        if len(staged) == 5:
            raise files.FileError(f"cannot write {path}: no space left on its file system")
        staged.append(real_stage(path, source, mode, root))
        return staged[-1]

    monkeypatch.setattr(files, "stage", stage)
    with pytest.raises(files.FileError, match="no space left"):
        ca.apply(None, plan)
    assert len(staged) == 5 and not [path for path in staged if os.path.lexists(path)]
    leftovers = [path for path in root.rglob("*") if path.is_file() and "cuda-13.0/bin" not in str(path)]
    assert [path.name for path in leftovers] == ["a.tar.xz"]
    assert not (root / "etc/dlnode").exists()


def test_read_back_names_what_is_wrong(root):
    cudnn_archives.archive(str(root / "srv/a.tar.xz"), "9.14.0.64", "13")
    plan = ca.plan_present("/srv/a.tar.xz", DEST, "13.0")
    ca.apply(None, plan)
    assert ca.read_back(plan) == []
    os.remove(root / "usr/local/cuda-13.0/lib64/libcudnn.so")
    (root / "usr/local/cuda-13.0/include/cudnn.h").chmod(0o600)
    assert ca.read_back(plan) == [f"{DEST}/include/cudnn.h is not the archive's include/cudnn.h (36 bytes, mode 0644)",
                                  f"{DEST}/lib64/libcudnn.so is not a link to libcudnn.so.9"]
