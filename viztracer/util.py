"""Small helpers shared by the tracer, the command line and the viewer."""

from __future__ import annotations

import os
import re
import sys
import time
from typing import Any, Dict, Iterable, List, Tuple


class Colors:
    GREEN = "\033[92m"
    YELLOW = "\033[93m"
    RED = "\033[91m"
    BOLD = "\033[1m"
    ENDC = "\033[0m"


def color_print(color: str, s: str, **kwargs: Any) -> None:
    """Print ``s`` in ``color`` (a name of :class:`Colors`) when stdout is a terminal."""
    code = getattr(Colors, color, "")
    if code and sys.stdout.isatty():
        print(code + s + Colors.ENDC, **kwargs)
    else:
        print(s, **kwargs)


def same_line_print(s: str, width: int = 80, **kwargs: Any) -> None:
    """Overwrite the current terminal line with ``s`` (progress messages)."""
    print("\r" + " " * width + "\r" + s, end="", flush=True, **kwargs)


def compare_version(a: str, b: str) -> int:
    """Compare dotted versions: 1 if a > b, 0 if equal, -1 if a < b. A local version
    label (``1.1.1+rust.1``) is left out: it names a build, not an API level."""
    def parts(v: str) -> Tuple[int, ...]:
        return tuple(int(p) for p in re.findall(r"\d+", v.split("+", 1)[0]))

    pa, pb = parts(a), parts(b)
    return (pa > pb) - (pa < pb)


_TIME_UNITS = {"s": 1e6, "ms": 1e3, "us": 1.0, "ns": 1e-3}


def time_str_to_us(t: str) -> float:
    """``"0.3ms"`` -> ``300.0``. A bare number is in µs."""
    m = re.match(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([mun]?s)?\s*$", str(t))
    if not m:
        raise ValueError(f"Can't convert {t} to time. Format should be 0.3ms or 13us")
    value = float(m.group(1))
    return value * _TIME_UNITS[m.group(2) or "us"]


def pid_exists(pid: int) -> bool:
    """Whether a process with this pid exists (and is not a zombie we reaped)."""
    if pid < 0:
        return False
    if pid == 0:
        raise ValueError("invalid PID 0")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not reaped, does not count)."""
    if not pid_exists(pid):
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        return True


def unique_file_name(base: str) -> str:
    """``<base>_<YYYYMMDD>_<HHMMSS>_<pid>.json``."""
    return f"{base}_{time.strftime('%Y%m%d_%H%M%S')}_{os.getpid()}.json"


def add_pid_suffix(path: str, pid: int) -> str:
    """``result.json`` -> ``result_<pid>.json``; ``a.json.gz`` -> ``a_<pid>.json.gz``."""
    head, tail = os.path.split(path)
    for ext in (".json.gz", ".json", ".html", ".gz"):
        if tail.endswith(ext):
            return os.path.join(head, f"{tail[:-len(ext)]}_{pid}{ext}")
    stem, ext = os.path.splitext(tail)
    return os.path.join(head, f"{stem}_{pid}{ext}")



def command_line() -> List[str]:
    """The full command line of this process (``sys.orig_argv`` from 3.10)."""
    orig = getattr(sys, "orig_argv", None)
    if orig:
        return list(orig)
    try:
        with open("/proc/self/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return list(sys.argv)


def command_label(limit: int = 80) -> str:
    """This process's command line, short: ``python3.12 worker.py --n 3`` (the
    interpreter, and a script given with its full path, by their names)."""
    args = command_line()
    if not args:
        return "python"
    args = [os.path.basename(args[0])] + args[1:]
    if len(args) > 1 and os.path.isabs(args[1]):
        args[1] = os.path.basename(args[1])
    text = " ".join(args)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def descendants(root: int) -> List[int]:
    """Live (non-zombie) descendant processes of ``root``, from /proc (Linux); an
    empty list where /proc is not available."""
    children: Dict[int, List[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] in (b"Z", b"X"):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    out: List[int] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            out.append(child)
            stack.append(child)
    return out


def _is_helper(pid: int) -> bool:
    """multiprocessing's helper processes, which are not traced."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read()
    except OSError:
        return False
    return b"multiprocessing.resource_tracker" in cmd or b"multiprocessing.forkserver" in cmd


def starting_children(root: int, besides: Iterable[int] = ()) -> List[int]:
    """The live descendants of ``root`` that may still join its collection: not
    multiprocessing's helpers, nor ``besides``."""
    skip = set(besides)
    return [p for p in descendants(root) if p not in skip and not _is_helper(p)]
