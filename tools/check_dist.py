"""The checks of ``make dist``: what is in dist/ is what a release ships.

    python tools/check_dist.py DIST_DIR 3.11 3.13 3.9 ...

For the version in Cargo.toml (the one place it is written) and each Python version
given, dist/ must hold exactly one wheel, tagged for that CPython and for
manylinux_2_17 (manylinux2014) x86_64, which ``auditwheel show`` confirms, and whose
native module imports no unversioned libc symbol (which auditwheel does not see); and
one sdist. Each carries what it must (the native module and the viewer's assets; the Rust
sources, Cargo.lock, README and license), ``twine check --strict`` passes on all of
them, and their sizes are printed. Any failure is one line and exit status 1.

Runs in the virtualenv ``make dist`` makes (auditwheel and twine installed there).
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from typing import Dict, List

import tomllib
from elftools.elf.elffile import ELFFile  # auditwheel's own ELF reader

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME = "viztracer"
PLATFORM = "manylinux_2_17_x86_64"
SDIST_MUST_HOLD = ("Cargo.toml", "Cargo.lock", "build.rs", "pyproject.toml", "README.md", "LICENSE",
                   "rust/lib.rs", "viztracer/web/app.js", "viztracer/web/index.html")
# A wheel much above this has picked up something it should not (debug info, assets).
MAX_WHEEL_BYTES = 2 * 1024 * 1024


class DistError(Exception):
    """What is wrong with dist/, in one line."""


def cargo_version() -> str:
    with open(os.path.join(ROOT, "Cargo.toml"), "rb") as f:
        return tomllib.load(f)["package"]["version"]


def package_files() -> List[str]:
    """The files of the Python package that git tracks (what a wheel must carry)."""
    out = subprocess.run(["git", "ls-files", NAME], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [p for p in out.split() if not p.endswith(".so")]


def wheel_name(version: str, python: str) -> str:
    tag = "cp" + python.replace(".", "")
    return f"{NAME}-{version}-{tag}-{tag}-manylinux2014_x86_64.{PLATFORM}.whl"


def unversioned_imports(so: bytes) -> List[str]:
    """Symbols the native module needs from outside that carry no symbol version and
    are not weak, other than the interpreter's own (Py*, _Py*).

    auditwheel judges a wheel by the versions of the symbols it imports; an import with
    no version escapes it. One from a glibc newer than 2.17 (gettid, say: 2.30) makes
    the module fail to load on an older system, however the wheel is tagged."""
    elf = ELFFile(io.BytesIO(so))
    versions = elf.get_section_by_name(".gnu.version")
    found = []
    for i, sym in enumerate(elf.get_section_by_name(".dynsym").iter_symbols()):
        if sym["st_shndx"] != "SHN_UNDEF" or not sym.name or sym["st_info"]["bind"] == "STB_WEAK":
            continue
        if sym.name.startswith(("Py", "_Py")):
            continue
        if versions is None or versions.get_symbol(i).entry["ndx"] in ("VER_NDX_LOCAL", "VER_NDX_GLOBAL", 0, 1):
            found.append(sym.name)
    return found


def check_wheel(path: str, version: str) -> None:
    name = os.path.basename(path)
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        metadata = z.read(f"{NAME}-{version}.dist-info/METADATA").decode("utf-8")
        modules = [n for n in names if re.fullmatch(r"viztracer/_snaptrace\.cpython-\d+[a-z]*-x86_64-linux-gnu\.so", n)]
        if len(modules) != 1:
            raise DistError(f"{name} has {len(modules)} native modules")
        unversioned = unversioned_imports(z.read(modules[0]))
    missing = [f for f in package_files() if f not in names]
    if missing:
        raise DistError(f"{name} lacks {', '.join(missing[:5])}")
    if unversioned:
        raise DistError(f"{name}: the native module imports {', '.join(unversioned)} without a symbol version "
                        f"(auditwheel can't vouch for those; call what glibc 2.17 has)")
    if not any(n.endswith(".dist-info/licenses/LICENSE") for n in names):
        raise DistError(f"{name} does not carry the license file")
    if f"\nVersion: {version}\n" not in metadata:
        raise DistError(f"{name}: its metadata does not say version {version}")
    shown = subprocess.run(["auditwheel", "show", path], capture_output=True, text=True)
    said = " ".join(shown.stdout.split())
    if shown.returncode != 0 or f'is consistent with the following platform tag: "{PLATFORM}"' not in said:
        raise DistError(f"auditwheel does not find {name} {PLATFORM}-compliant: {said or shown.stderr.strip()}")
    if os.path.getsize(path) > MAX_WHEEL_BYTES:
        raise DistError(f"{name} is {os.path.getsize(path)} bytes, over {MAX_WHEEL_BYTES}")


def check_sdist(path: str, version: str) -> None:
    prefix = f"{NAME}-{version}/"
    with tarfile.open(path) as t:
        names = {n[len(prefix):] for n in t.getnames() if n.startswith(prefix)}
    missing = [f for f in SDIST_MUST_HOLD + tuple(package_files()) if f not in names]
    if missing:
        raise DistError(f"{os.path.basename(path)} lacks {', '.join(missing[:5])}")


def check(dist: str, pythons: List[str]) -> Dict[str, int]:
    """Checks dist/; returns the size of each file, by name."""
    version = cargo_version()
    pythons = sorted(pythons, key=lambda v: tuple(int(x) for x in v.split(".")))
    ours = sorted(f for f in os.listdir(dist) if f.startswith(NAME + "-"))
    wanted = [wheel_name(version, p) for p in pythons] + [f"{NAME}-{version}.tar.gz"]
    if sorted(wanted) != ours:
        extra, missing = sorted(set(ours) - set(wanted)), sorted(set(wanted) - set(ours))
        raise DistError(f"{dist}/ should hold {len(wanted)} files for version {version}: "
                        f"missing {missing or 'none'}, unexpected {extra or 'none'}")
    for f in wanted[:-1]:
        check_wheel(os.path.join(dist, f), version)
    check_sdist(os.path.join(dist, wanted[-1]), version)
    twine = subprocess.run(["twine", "check", "--strict"] + [os.path.join(dist, f) for f in wanted],
                           capture_output=True, text=True)
    if twine.returncode != 0:
        raise DistError("twine check: " + " ".join((twine.stdout + twine.stderr).split()))
    return {f: os.path.getsize(os.path.join(dist, f)) for f in wanted}


def main(argv: List[str]) -> int:
    if len(argv) < 2:
        print("usage: check_dist.py DIST_DIR PYTHON_VERSION...", file=sys.stderr)
        return 2
    # auditwheel and twine live next to this interpreter (the dist virtualenv)
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    try:
        sizes = check(argv[0], argv[1:])
    except (DistError, OSError, KeyError, zipfile.BadZipFile, tarfile.TarError) as e:
        print(f"make dist: {e}", file=sys.stderr)
        return 1
    print(f"== {argv[0]}/: {len(sizes) - 1} wheels ({PLATFORM}, auditwheel and twine check clean) and the sdist")
    for f, size in sizes.items():
        print(f"{size / 1024:8.0f} KiB  {f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
