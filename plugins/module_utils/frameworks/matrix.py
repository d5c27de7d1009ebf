# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""Which wheel variants each framework release ships, what each needs, and which one a node can run.

Every variant names its CUDA release (None: the CPU build), how it is asked for (PyTorch: an index URL;
JAX and TensorFlow: an extra on PyPI) and the GPU architectures its wheels carry. The drivers come from
nvidia/cuda.py's table: a variant runs from its CUDA major's minor version compatibility floor (12.x on
525.60.13, 13.x on 580.65.06) and has every feature from its exact toolkit's driver.

Sources (add a release by adding a row; nothing else changes):
- PyTorch: RELEASE.md in pytorch/pytorch, "Release Compatibility Matrix" (stable and experimental CUDA of
  every release, 2.0 to 2.14; the rows from 2.12 on were read from a copy of that file made after 2.14's
  branch cut) and "PyTorch CUDA Support Matrix" (architectures of the 12.6.3, 13.0.2 and 13.2.1 builds for
  Linux x86_64: 12.6 covers Maxwell 5.0 to Hopper 9.0; 13.x drops Maxwell, Pascal and Volta and carries
  Turing 7.5 to Blackwell 12.0 with PTX). The 11.8 and 12.8 builds' architectures are those PyTorch 2.7's
  builds report (torch.cuda.get_arch_list(): 11.8 sm_37 to sm_90; 12.8 sm_75 to sm_120), used for every
  release that ships them. Each variant's wheels are on https://download.pytorch.org/whl/<variant>.
- JAX: docs.jax.dev "Installation", NVIDIA GPU: pip extras jax[cuda12] and jax[cuda13] (the CUDA
  libraries come as NVIDIA's pip wheels), SM 5.2 (Maxwell) or newer for CUDA 12; CUDA 13's toolkit has
  no Maxwell, Pascal or Volta targets (CUDA 13.0 release notes), so the cuda13 build starts at SM 7.5.
  The extras themselves from each jax wheel's METADATA on PyPI (Provides-Extra / Requires-Dist): cuda12 from
  0.4.22 (0.4.21 has cuda12_pip and cuda12_local only), cuda13 from 0.7.0 (0.6.2 has none).
- TensorFlow: tensorflow.org "Install TensorFlow with pip" (tensorflow[and-cuda], the CUDA libraries as
  pip wheels) and "Tested build configurations" (2.15 CUDA 12.2; 2.16 and 2.17 CUDA 12.3; 2.18 to 2.20
  CUDA 12.5), the same as the and-cuda extra's nvidia-cuda-runtime-cu12 pins in each tensorflow wheel's
  METADATA on PyPI (12.2.140; 12.3.101; 12.5.82; >=12.5.82,<13.0 for 2.20); TensorFlow 2.18's release
  notes: compute capability 5.0 dropped, 6.0 the minimum.
"""
from __future__ import annotations

import re

from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError
from ansible_collections.dlnode.gpu.plugins.module_utils.nvidia import cuda
from ansible_collections.dlnode.gpu.plugins.module_utils.packages import versions

PYTORCH_INDEX = "https://download.pytorch.org/whl/"

# Architectures (compute capabilities) a build carries as machine code, and the one it also carries as
# PTX (a newer GPU JIT-compiles it); or, where the project publishes only a floor, the lowest it runs.
ARCH_CU118 = {"sass": ("3.7", "5.0", "6.0", "7.0", "7.5", "8.0", "8.6", "9.0"), "ptx": None}
ARCH_CU12_MAXWELL = {"sass": ("5.0", "6.0", "7.0", "7.5", "8.0", "8.6", "9.0"), "ptx": None}
ARCH_CU128 = {"sass": ("7.5", "8.0", "8.6", "9.0", "10.0", "12.0"), "ptx": None}
ARCH_CU13 = {"sass": ("7.5", "8.0", "8.6", "9.0", "10.0", "12.0"), "ptx": "12.0"}


def _torch(stable, experimental=()):
    """PyTorch's variants of one release: {variant: {cuda, arch, experimental}}, cpu included."""
    arch = {"cu118": ARCH_CU118, "cu121": ARCH_CU12_MAXWELL, "cu124": ARCH_CU12_MAXWELL, "cu126": ARCH_CU12_MAXWELL,
            "cu128": ARCH_CU128, "cu129": ARCH_CU128, "cu130": ARCH_CU13, "cu132": ARCH_CU13}
    found = {"cpu": {"cuda": None, "arch": None, "experimental": False}}
    for variant in (*stable, *experimental):
        digits = variant[2:]
        found[variant] = {"cuda": f"{digits[:-1]}.{digits[-1]}", "arch": arch[variant],
                          "experimental": variant in experimental}
    return found


def _extras(extras):
    """A release whose CUDA builds are pip extras: {extra: (CUDA release, lowest compute capability)}, cpu included."""
    found = {"cpu": {"cuda": None, "arch": None, "experimental": False}}
    for extra, (cuda_version, lowest) in extras.items():
        found[extra] = {"cuda": cuda_version, "arch": {"min": lowest}, "experimental": False}
    return found


# framework -> release (major.minor) -> variant -> what it is. Newest release first.
MATRIX = {
    "torch": {
        "2.14": _torch(("cu126", "cu130", "cu132")),
        "2.13": _torch(("cu126", "cu130"), ("cu132",)),
        "2.12": _torch(("cu126", "cu130"), ("cu132",)),
        "2.11": _torch(("cu126", "cu128", "cu130")),
        "2.10": _torch(("cu126", "cu128"), ("cu130",)),
        "2.9": _torch(("cu126", "cu128"), ("cu130",)),
        "2.8": _torch(("cu126", "cu128"), ("cu129",)),
        "2.7": _torch(("cu118", "cu126"), ("cu128",)),
        "2.6": _torch(("cu118", "cu124"), ("cu126",)),
    },
    "jax": {
        "0.7.0": _extras({"cuda12": ("12.0", "5.2"), "cuda13": ("13.0", "7.5")}),
        "0.4.22": _extras({"cuda12": ("12.0", "5.2")}),
    },
    "tensorflow": {
        **{release: _extras({"and-cuda": ("12.5", "6.0")}) for release in ("2.20", "2.19", "2.18")},
        **{release: _extras({"and-cuda": ("12.3", "5.0")}) for release in ("2.17", "2.16")},
        "2.15": _extras({"and-cuda": ("12.2", "5.0")}),
    },
}
# JAX's releases are rows "from this version on" (its extras do not change every release).
FROM_ROWS = {"jax"}
NAMES = {"torch": "PyTorch", "jax": "JAX", "tensorflow": "TensorFlow"}
CC_RE = re.compile(r"^([0-9]+)\.([0-9]+)$")
VERSION_RE = re.compile(r"^[0-9]+(\.[0-9]+){1,2}([a-z0-9.+]*)?$")


class MatrixError(DlnodeError):
    """A framework, release or variant this table does not know, or a node that cannot run it."""


def _cc(value):
    found = CC_RE.match(str(value))
    if not found:
        raise MatrixError(f"compute capability {value!r} is not major.minor such as 9.0")
    return int(found.group(1)), int(found.group(2))


def release_of(framework, version, option="frameworks_environments"):
    """The table's row for a framework's version (2.11.0 -> 2.11; jax 0.8.1 -> 0.7.0)."""
    if framework not in MATRIX:
        raise MatrixError(f"{option}: framework {framework!r} is not in the CUDA matching table "
                          f"(it has {', '.join(sorted(MATRIX))})")
    version = str(version)
    if not VERSION_RE.match(version):
        raise MatrixError(f"{option}: {NAMES[framework]} version {version!r} is not a release such as 2.11 or 2.11.0")
    rows = MATRIX[framework]
    if framework in FROM_ROWS:
        row = next((row for row in rows if versions.compare(version, row) >= 0), None)
    else:
        numbers = version.split("+", maxsplit=1)[0].split(".")
        row = ".".join(numbers[:2]) if ".".join(numbers[:2]) in rows else None
    if row is None:
        raise MatrixError(f"{option}: {NAMES[framework]} {version} is not in the CUDA matching table (it has "
                          f"{', '.join(sorted(rows, key=lambda r: [int(p) for p in r.split('.')]))}); "
                          "add its variants to plugins/module_utils/frameworks/matrix.py from the release's notes")
    return row


def runs_on(arch, capability):
    """Whether a build's architectures cover one GPU: same major and no newer minor as machine code, or PTX."""
    if arch is None:
        return True
    major, minor = _cc(capability)
    if "min" in arch:
        return (major, minor) >= _cc(arch["min"])
    for built in arch["sass"]:
        b_major, b_minor = _cc(built)
        if b_major == major and b_minor <= minor:
            return True
    return arch["ptx"] is not None and (major, minor) >= _cc(arch["ptx"])


def arch_text(arch):
    if "min" in arch:
        return f"compute capability {arch['min']} or newer"
    text = "compute capabilities " + ", ".join(arch["sass"])
    return text + (f" (and newer through PTX {arch['ptx']})" if arch["ptx"] else "")


def check(framework, version, variant, entry, driver, cuda_driver, capabilities):
    """None when the node runs the variant, else why not (the minimum driver or the architecture)."""
    label = f"{NAMES[framework]} {version} {variant}"
    if entry["cuda"] is None:
        return None
    major = entry["cuda"].split(".")[0]
    floor = cuda.MINOR_FLOORS[major]
    if driver and versions.compare(driver, floor) < 0:
        return (f"{label} is built for CUDA {entry['cuda']} and needs NVIDIA driver {floor} or newer "
                f"(CUDA {major}.x minor version compatibility); the driver is {driver}")
    if not driver and cuda_driver and int(str(cuda_driver).split(".", maxsplit=1)[0]) < int(major):
        return (f"{label} is built for CUDA {entry['cuda']} and needs NVIDIA driver {floor} or newer; "
                f"the driver supports CUDA {cuda_driver}")
    unsupported = sorted({str(cc) for cc in capabilities if not runs_on(entry["arch"], cc)})
    if unsupported:
        return (f"{label} has no code for compute capability {', '.join(unsupported)}: its wheels carry "
                f"{arch_text(entry['arch'])}")
    return None


def choose(framework, version, variant="auto", driver="", cuda_driver="", capabilities=(), gpu=None,
           option="frameworks_environments"):
    """The variant to install: {framework, release, variant, cuda, minimum_driver, full_driver, limited, index_url, extra,
    requirements, reason}.

    variant: one the release ships, or auto (the newest stable CUDA build the driver and every GPU run;
    the CPU build on a node with no GPU). driver: the NVIDIA driver's version, empty when none is loaded;
    cuda_driver: the CUDA version the driver supports; capabilities: every GPU's compute capability.
    gpu: whether the node has a GPU (default: whether capabilities were given). MatrixError names why not.
    """
    release = release_of(framework, version, option)
    shipped = MATRIX[framework][release]
    capabilities = [str(cc) for cc in capabilities or ()]
    for cc in capabilities:
        _cc(cc)
    gpu = bool(capabilities) if gpu is None else gpu
    label = f"{NAMES[framework]} {version}"
    if variant and variant != "auto":
        if variant not in shipped:
            raise MatrixError(f"{option}: {label} ships no {variant!r} variant (it has {', '.join(shipped)})")
        why = check(framework, version, variant, shipped[variant], driver, cuda_driver, capabilities) if gpu else None
        if why:
            raise MatrixError(f"{option}: {why}")
        return _answer(framework, version, release, variant, shipped[variant], driver, "asked for")
    if not gpu:
        return _answer(framework, version, release, "cpu", shipped["cpu"], driver, "the node has no GPU")
    candidates = sorted(((name, entry) for name, entry in shipped.items() if entry["cuda"] and not entry["experimental"]),
                        key=lambda item: [int(p) for p in item[1]["cuda"].split(".")], reverse=True)
    refusals = []
    for name, entry in candidates:
        why = check(framework, version, name, entry, driver, cuda_driver, capabilities)
        if why is None:
            return _answer(framework, version, release, name, entry, driver, "the newest CUDA build the driver and every GPU run")
        refusals.append(why)
    raise MatrixError(f"{option}: no CUDA build of {label} runs on this node: " + "; ".join(refusals)
                      + ". Upgrade the driver, or ask for the cpu variant")


def requirements(framework, version, variant):
    """The pins that install a variant: torch==2.11.0+cu130 (PyTorch's index labels each build), jax[cuda13]==0.8.1."""
    if framework == "torch":
        return [f"torch=={version.split('+')[0]}+{variant}"]
    if framework == "jax":
        return [f"jax=={version}", f"jaxlib=={version}"] if variant == "cpu" else [f"jax[{variant}]=={version}"]
    return [f"tensorflow=={version}" if variant == "cpu" else f"tensorflow[{variant}]=={version}"]


def _answer(framework, version, release, variant, entry, driver, reason):
    cuda_version = entry["cuda"]
    floor = full = None
    if cuda_version:
        floor = cuda.MINOR_FLOORS[cuda_version.split(".")[0]]
        full = cuda.minimum_driver(cuda_version, "exact")[0]
    answer = {
        "framework": framework, "release": release, "variant": variant, "cuda": cuda_version,
        "minimum_driver": floor, "full_driver": full,
        # Runs through minor version compatibility, some features (a PTX JIT of newer PTX) missing.
        "limited": bool(driver and full and versions.compare(driver, full) < 0),
        "experimental": entry["experimental"], "reason": reason,
        "index_url": "", "extra": "", "requirements": requirements(framework, version, variant),
    }
    if framework == "torch":
        answer["index_url"] = PYTORCH_INDEX + variant
    elif variant != "cpu":
        answer["extra"] = variant
    return answer
