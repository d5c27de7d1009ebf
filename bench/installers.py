"""pip against uv: create a virtual environment and fill it with JAX's CPU build from PyPI, cold and warm cache.

Usage: python3 bench/installers.py [--python /usr/bin/python3] [--uv PATH] [--runs 2] [--requirements jax==0.10.2 jaxlib==0.10.2]

Each run starts from no environment. "cold": an empty cache directory, so every wheel is downloaded;
"warm": the same cache again, so nothing is. The installers read no configuration of this machine
(PIP_CONFIG_FILE=/dev/null, no PIP_* variables, UV_NO_CONFIG), so both reach PyPI and nothing else.
pip is the one the interpreter's venv module puts into the environment (what a node gets without
upgrading it); uv is one static binary. Prints one line per measurement and a table for the README.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time


def clean_environ(cache):
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("PIP_", "UV_"))}
    environ.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_CACHE_DIR=cache,
                   UV_NO_CONFIG="1", UV_CACHE_DIR=cache, UV_PYTHON_DOWNLOADS="never", UV_NO_PROGRESS="1")
    return environ


def steps(installer, args, target):
    python = os.path.join(target, "bin", "python")
    if installer == "pip":
        return [[args.python, "-m", "venv", target], [python, "-m", "pip", "install", "--quiet", *args.requirements]]
    return [[args.uv, "venv", "--quiet", "--python", args.python, target],
            [args.uv, "pip", "install", "--quiet", "--python", python, *args.requirements]]


def measure(installer, args, cache, work):
    target = os.path.join(work, f"venv-{installer}")
    shutil.rmtree(target, ignore_errors=True)
    start = time.monotonic()
    for argv in steps(installer, args, target):
        subprocess.run(argv, env=clean_environ(cache), check=True)
    elapsed = time.monotonic() - start
    check = subprocess.run([os.path.join(target, "bin", "python"), "-c",
                            "import jax, jax.numpy as jnp; print(jax.__version__, float(jnp.arange(4.0).sum()))"],
                           capture_output=True, text=True, check=True).stdout.strip()
    return elapsed, check


def version(argv):
    return subprocess.run(argv, capture_output=True, text=True, env=clean_environ(os.devnull), check=False).stdout.strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default="/usr/bin/python3")
    parser.add_argument("--uv", default=shutil.which("uv") or os.path.join(os.path.dirname(sys.executable), "uv"))
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--requirements", nargs="+", default=["jax==0.10.2", "jaxlib==0.10.2"])
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="dlnode-bench-") as work:
        for run in range(args.runs):
            for installer in ("pip", "uv"):
                cache = os.path.join(work, f"cache-{installer}-{run}")
                for state in ("cold", "warm"):
                    elapsed, check = measure(installer, args, cache, work)
                    results.setdefault((installer, state), []).append(elapsed)
                    print(f"run {run + 1} {installer:3} {state}: {elapsed:6.1f} s  ({check})", flush=True)
        pip_version = version([os.path.join(work, "venv-pip", "bin", "python"), "-m", "pip", "--version"]).split(" from ")[0]
    print(f"\n{' '.join(args.requirements)} into a new environment, Python {version([args.python, '-V']).split()[-1]}, "
          f"{pip_version}, {version([args.uv, '--version'])}; best of {args.runs}, seconds")
    print("| installer | cold cache | warm cache |\n| --- | --- | --- |")
    for installer in ("pip", "uv"):
        print(f"| {installer} | {min(results[(installer, 'cold')]):.1f} | {min(results[(installer, 'warm')]):.1f} |")


if __name__ == "__main__":
    main()
