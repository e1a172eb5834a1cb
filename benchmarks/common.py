"""What the benchmarks share: where our build and upstream VizTracer live, and how
to run a measured process."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import List

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UPSTREAM = "viztracer==1.1.1"


def interpreter(version: str) -> str:
    """The base interpreter of a Python version (pyenv, else python3.X on PATH)."""
    try:
        prefix = subprocess.run(["pyenv", "prefix", version], capture_output=True, text=True, check=True)
        return os.path.join(prefix.stdout.strip().splitlines()[0], "bin", "python")
    except (OSError, subprocess.CalledProcessError):
        return f"python{version}"


def ours_venv(version: str) -> str:
    """Our build for ``version`` (``make build-<version>`` if it is missing)."""
    venv = os.path.join(ROOT, ".venv", version)
    if not os.path.exists(os.path.join(venv, "bin", "viztracer")):
        subprocess.run(["make", "-C", ROOT, f"build-{version}"], check=True)
    return venv


def upstream_venv(version: str) -> str:
    """Upstream VizTracer 1.1.1 from PyPI, in a virtualenv of its own under .bench/."""
    venv = os.path.join(ROOT, ".bench", f"upstream-{version}")
    if not os.path.exists(os.path.join(venv, "bin", "viztracer")):
        subprocess.run([interpreter(version), "-m", "venv", venv], check=True)
        subprocess.run([os.path.join(venv, "bin", "python"), "-m", "pip", "install", "-q", UPSTREAM], check=True)
    return venv


def pinned() -> List[str]:
    """A command prefix running a process on one CPU with address randomisation off:
    on these VMs the speed of the same code otherwise varies by up to 2x between
    processes."""
    prefix: List[str] = []
    if shutil.which("setarch"):
        prefix += ["setarch", os.uname().machine, "-R"]
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        prefix += ["taskset", "-c", str((os.cpu_count() or 1) - 1)]
    return prefix
