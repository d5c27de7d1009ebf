#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
from __future__ import annotations

DOCUMENTATION = r"""
module: cudnn_archive
short_description: Install cuDNN from NVIDIA's tar archive into one CUDA toolkit's directory, or remove it
version_added: 0.1.0
description:
  - Installs NVIDIA's cuDNN tar archive (C(cudnn-linux-x86_64-9.14.0.64_cuda13-archive.tar.xz)) the way NVIDIA's
    installation guide says, into one toolkit's directory, so that several CUDA majors each have their own cuDNN
    side by side (NVIDIA's cuDNN packages for CUDA 12 and 13 install the same paths and conflict).
  - The archive's C(include/) files go to the C(include) directory of O(dest), its C(lib/) files to its C(lib64),
    symbolic links kept as links; files get the archive's mode without group or other write (headers 0644,
    libraries 0755).
  - Every member is compared with the installed file (content, mode, link target) and only what differs is written,
    each file under a temp name first and renamed once all are written.
  - A manifest in C(/etc/dlnode/cudnn/) (JSON; C(usr-local-cuda-13.0.files) for O(dest=/usr/local/cuda-13.0))
    records the version and the files installed.
    A version change removes the previous version's files that the new one does not have, in the same run;
    O(state=absent) removes exactly the recorded files. A file the module did not install is never removed.
  - Runs C(ldconfig) when anything under C(lib64) changed (skipped when C(ldconfig) is not installed).
  - Refuses, before anything is written, an O(src) that does not exist, is not a tar archive, is damaged, is not a
    cuDNN archive (no C(include/cudnn_version.h) or no C(lib/libcudnn.so*)), has unsafe members (absolute paths,
    C(..), links out of their directory, hard links, special files), is for another CUDA major, another machine or
    another cuDNN version than O(version); and a O(dest) that does not hold the CUDA toolkit O(cuda_version).
  - The archive is read with Python's tarfile (xz, gzip or none); no tar command is needed.
options:
  src:
    description:
      - Path on the node of NVIDIA's cuDNN tar archive (C(.tar.xz), also C(.tar.gz) or C(.tgz)).
      - Its CUDA major and version are read from its name (C(_cuda13-archive)), its top directory (the same name)
        and its C(include/cudnn_version.h); a renamed file is judged by its top directory.
      - Required with O(state=present).
    type: path
  dest:
    description:
      - The CUDA toolkit's own directory, such as C(/usr/local/cuda-13.0). It must hold the toolkit (C(bin/nvcc),
        C(version.json) or C(targets/)); a symbolic link such as C(/usr/local/cuda) is refused.
    type: path
    required: true
  cuda_version:
    description:
      - The toolkit's version at O(dest), such as C(13.0). The archive's CUDA major must be its major; when
        O(dest) has a C(version.json), its major and minor must be these.
      - Required with O(state=present).
    type: str
  version:
    description:
      - The cuDNN version the archive must be, whole (C(9.14.0.64)) or its first numbers (C(9.14)). Unset, any.
    type: str
  state:
    description: C(present) installs the archive; C(absent) removes the files the manifest of O(dest) records.
    type: str
    choices: [present, absent]
    default: present
  pending:
    description:
      - Check mode only. The toolkit at O(dest) is installed earlier in the same run (the C(cudnn) role passes it for
        a toolkit the C(cuda_toolkit) role plans), so a O(dest) that does not exist yet is predicted, not refused.
    type: bool
    default: false
  label:
    description:
      - How messages name the options, for a role that passes its own variable; with C(cudnn_archives[1]) a
        message starts C(cudnn_archives[1].src:) instead of C(src:).
    type: str
attributes:
  check_mode:
    support: full
    description: Reads the archive and returns the exact files that would be added, updated and removed; writes nothing.
  diff_mode:
    support: full
    description: The installed cuDNN version (from the manifest) and the file count before and after.
  platform:
    support: full
    platforms: posix
    description: Linux.
author: "dlnode.gpu developers (@dlnode)"
"""

EXAMPLES = r"""
- name: cuDNN for CUDA 13.0 from NVIDIA's archive
  dlnode.gpu.cudnn_archive:
    src: /srv/nvidia/cudnn-linux-x86_64-9.14.0.64_cuda13-archive.tar.xz
    dest: /usr/local/cuda-13.0
    cuda_version: "13.0"
    version: 9.14.0.64

- name: And for CUDA 12.8 beside it
  dlnode.gpu.cudnn_archive:
    src: /srv/nvidia/cudnn-linux-x86_64-9.14.0.64_cuda12-archive.tar.xz
    dest: /usr/local/cuda-12.8
    cuda_version: "12.8"

- name: No cuDNN in the CUDA 12.8 toolkit
  dlnode.gpu.cudnn_archive:
    dest: /usr/local/cuda-12.8
    state: absent
"""

RETURN = r"""
version:
  description: The archive's cuDNN version (present); the removed version (absent); null when there was none.
  returned: always
  type: str
  sample: 9.14.0.64
previous_version:
  description: The cuDNN version the manifest recorded before this run, or null.
  returned: always
  type: str
  sample: 9.8.0.87
cuda_major:
  description: The CUDA major the archive is built for (absent, the one recorded).
  returned: always
  type: str
  sample: "13"
files:
  description: The paths added, updated (replaced) and removed, or that would be in check mode.
  returned: always
  type: dict
  sample: {"added": ["/usr/local/cuda-13.0/lib64/libcudnn.so.9.14.0"], "updated": ["/usr/local/cuda-13.0/lib64/libcudnn.so.9"],
           "removed": ["/usr/local/cuda-13.0/lib64/libcudnn.so.9.8.0"]}
manifest:
  description: The manifest file that records the installed files of O(dest).
  returned: always
  type: str
  sample: /etc/dlnode/cudnn/usr-local-cuda-13.0.files
ldconfig:
  description: Whether ldconfig ran (check mode, would run) because files under C(lib64) changed.
  returned: always
  type: bool
  sample: true
"""

from ansible_collections.dlnode.gpu.plugins.module_utils.common.commands import Commands
from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError
from ansible_collections.dlnode.gpu.plugins.module_utils.common.module import run_module
from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import cudnn_archive

ARGUMENT_SPEC = dict(
    src=dict(type="path"),
    dest=dict(type="path", required=True),
    cuda_version=dict(type="str"),
    version=dict(type="str"),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    label=dict(type="str"),
    pending=dict(type="bool", default=False),
)


def state_of(manifest):
    return {"version": (manifest or {}).get("version"), "files": len((manifest or {}).get("files", []))}


def run(module, result):
    params = module.params
    label, dest = params["label"], params["dest"]
    if params["state"] == "present":
        plan = cudnn_archive.plan_present(params["src"], dest, params["cuda_version"], params["version"], label,
                                          pending=module.check_mode and params["pending"])
        version, cuda_major = plan.found.version, plan.found.cuda_major
        after = {"version": version, "files": len(plan.found.members)}
    else:
        plan = cudnn_archive.plan_absent(dest, label)
        version, cuda_major = (plan.installed or {}).get("version"), (plan.installed or {}).get("cuda_major")
        after = state_of(None)
    before = state_of(plan.installed)
    ldconfig = plan.libraries_changed and Commands(module).path("ldconfig") is not None
    result.update(changed=plan.changed, version=version, previous_version=before["version"], cuda_major=cuda_major,
                  files=plan.changes(), manifest=plan.manifest.path, ldconfig=ldconfig,
                  diff=dict(before=before, after=after if plan.changed else before))
    if module.check_mode or not plan.changed:
        return
    cudnn_archive.apply(module, plan, label)
    if ldconfig:
        Commands(module).run("ldconfig")
    wrong = cudnn_archive.read_back(plan)
    if wrong:
        raise DlnodeError(f"cuDNN in {dest} reads back wrong after the install: " + "; ".join(wrong))


def main():
    run_module(ARGUMENT_SPEC, run, required_if=[("state", "present", ["src", "cuda_version"])])


if __name__ == "__main__":
    main()
