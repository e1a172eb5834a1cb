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
    """Upstream VizTracer 1.1.1 from PyPI, in a virtualenv of its own under .bench/.

    It is installed from the wheel PyPI has for this interpreter (cp39 to cp314 for
    1.1.1), else built from its sdist, which needs a C compiler and the interpreter's
    headers (3.15: the Debian sid root has both). Which one it was is written to
    ``upstream-source`` in the virtualenv (see ``upstream_source``)."""
    venv = os.path.join(ROOT, ".bench", f"upstream-{version}")
    if not os.path.exists(os.path.join(venv, "bin", "viztracer")):
        subprocess.run([interpreter(version), "-m", "venv", venv], check=True)
        pip = [os.path.join(venv, "bin", "python"), "-m", "pip", "install", "-q"]
        wheel = subprocess.run([*pip, "--only-binary", "viztracer", UPSTREAM], capture_output=True, text=True)
        if wheel.returncode == 0:
            source = "wheel"
        else:
            print(f"== no {UPSTREAM} wheel for Python {version}: building it from its sdist", flush=True)
            subprocess.run([*pip, "--no-binary", "viztracer", UPSTREAM], check=True)
            source = "sdist"
        with open(os.path.join(venv, "upstream-source"), "w") as f:
            f.write(source + "\n")
    return venv


def upstream_source(version: str) -> str:
    """How upstream was installed in ``upstream_venv(version)``: "wheel", "sdist", or
    "unknown" for a virtualenv made before this was recorded."""
    try:
        with open(os.path.join(ROOT, ".bench", f"upstream-{version}", "upstream-source")) as f:
            return f.read().strip()
    except OSError:
        return "unknown"


def in_sid_root() -> bool:
    """True inside the Debian sid root (tools/debian-root.sh sid sets VIZTRACER_IN_SID)."""
    return bool(os.environ.get("VIZTRACER_IN_SID"))


def sid_pythons() -> List[str]:
    """The versions that live in the Debian sid root, read from the Makefile's
    SID_PYTHONS (the one list of them), or [] where make cannot tell."""
    try:
        out = subprocess.run(["make", "-s", "--no-print-directory", "-C", ROOT,
                              "--eval", "bench-sid-pythons: ; @echo $(SID_PYTHONS)", "bench-sid-pythons"],
                             capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return []
    return out.stdout.split()


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


MIRROR = "/work/.mirror/gaogaotiantian+viztracer/repo"


def upstream_head_venv(version: str) -> str:
    """Upstream VizTracer built from the newest source of its repository (its
    unreleased report server), in a virtualenv of its own under .bench/: the files of
    the mirror's ``HEAD`` that building needs, written into a temporary directory and
    installed with pip (a C compiler builds its extension). The mirror leaves out its
    largest files (the viewer's web assets, which the collector does not use): those
    are left out here too, and named, with the commit, in ``upstream-source``."""
    import tempfile

    venv = os.path.join(ROOT, ".bench", f"upstream-head-{version}")
    if not os.path.exists(os.path.join(venv, "bin", "viztracer")):
        git = ["git", "-C", MIRROR]
        commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
        tree = subprocess.run([*git, "ls-tree", "-r", "-z", "HEAD", "--", "src", "setup.py", "pyproject.toml",
                               "README.md", "LICENSE", "NOTICE.txt", "MANIFEST.in"],
                              capture_output=True, text=True, check=True).stdout
        subprocess.run([interpreter(version), "-m", "venv", venv], check=True)
        absent = []
        with tempfile.TemporaryDirectory() as src:
            for entry in filter(None, tree.split("\0")):
                meta, path = entry.split("\t", 1)
                blob = subprocess.run([*git, "cat-file", "blob", meta.split()[2]], capture_output=True)
                if blob.returncode != 0:
                    absent.append(path)
                    continue
                os.makedirs(os.path.join(src, os.path.dirname(path)), exist_ok=True)
                with open(os.path.join(src, path), "wb") as f:
                    f.write(blob.stdout)
            subprocess.run([os.path.join(venv, "bin", "python"), "-m", "pip", "install", "-q", src], check=True)
        with open(os.path.join(venv, "upstream-source"), "w") as f:
            f.write(f"source at {commit}\n")
            f.writelines(f"absent from the mirror: {path}\n" for path in absent)
    return venv
