"""Helpers shared by the tests: run code under the tracer and read back the trace file.

Imported as ``from support import ...`` (not from conftest: several conftest.py files
exist, and pytest imports each of them under the same module name)."""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
from collections import defaultdict
from typing import Any, Callable, Dict, Iterable, List, Tuple

from viztracer import VizTracer

MONITORING = sys.version_info >= (3, 12)


def load_trace(path: str) -> Dict[str, Any]:
    """Parse a trace file strictly (NaN/Infinity would be invalid JSON)."""
    def reject(token: str) -> None:
        raise ValueError(f"non-JSON number {token} in trace")

    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:  # type: ignore[operator]
        return json.load(f, parse_constant=reject)


def embedded_trace(path: Any) -> Tuple[Dict[str, Any], str]:
    """The trace JSON inside an HTML report, decoded as the page does, and the page."""
    with open(path, encoding="utf-8") as f:
        page = f.read()
    m = re.search(r'<script type="application/octet-stream" id="vizviewer-data" '
                  r'data-encoding="gzip-base64"[^>]*>([^<]*)</script>', page)
    assert m, "no embedded trace"
    return json.loads(gzip.decompress(base64.b64decode(re.sub(r"\s+", "", m.group(1))))), page


def events(trace: Dict[str, Any], ph: str = "X") -> List[Dict[str, Any]]:
    return [e for e in trace["traceEvents"] if e.get("ph") == ph]


def names(trace: Dict[str, Any], ph: str = "X") -> List[str]:
    return [e["name"] for e in events(trace, ph)]


def short_names(trace: Dict[str, Any]) -> List[str]:
    """Function names without the ``(file:line)`` part."""
    return [n.split(" (")[0] for n in names(trace)]


def assert_nested(trace: Dict[str, Any]) -> None:
    """Every pair of X events on a thread is either disjoint or nested."""
    per_thread: Dict[Any, List[Dict[str, Any]]] = defaultdict(list)
    for e in events(trace):
        assert e["dur"] >= 0, e
        per_thread[(e["pid"], e["tid"])].append(e)
    for evs in per_thread.values():
        evs.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack: List[float] = []
        for e in evs:
            start, end = e["ts"], e["ts"] + e["dur"]
            while stack and stack[-1] <= start + 1e-6:
                stack.pop()
            if stack:
                assert end <= stack[-1] + 2e-3, f"{e} overlaps its parent ending at {stack[-1]}"
            stack.append(end)


def trace_call(tmp_path, func: Callable[[], Any], output: str = "result.json", **options: Any) -> Dict[str, Any]:
    """Run ``func`` under a fresh tracer and return the parsed trace file."""
    path = os.path.join(str(tmp_path), output)
    options.setdefault("verbose", 0)
    tracer = VizTracer(output_file=path, **options)
    tracer.start()
    try:
        func()
    finally:
        tracer.stop()
        tracer.save()
    return load_trace(path)


def saved(tracer: VizTracer) -> Dict[str, Any]:
    """Stop ``tracer``, save it to its output file and return the parsed trace."""
    tracer.stop()
    tracer.save()
    return load_trace(tracer.output_file)


def run_script(tmp_path, source: str, *args: str, timeout: float = 120, **kwargs: Any) -> subprocess.CompletedProcess:
    """Run ``source`` as a script in a new interpreter (cwd: tmp_path)."""
    script = os.path.join(str(tmp_path), "script.py")
    with open(script, "w", encoding="utf-8") as f:
        f.write(textwrap.dedent(source))
    return subprocess.run([sys.executable, script, *args], cwd=str(tmp_path), capture_output=True,
                          text=True, timeout=timeout, **kwargs)


# Source of ``blocked_wait()``: SIGTERM becomes deliverable right before a wait that
# only a signal ends, with no Python code in between (C functions called from C by
# map), so CPython's handler only marks it pending. Without viztracer's repeat of the
# signal the wait would never end; untraced, the SIGTERM kills the process at once.
BLOCKED_WAIT_SOURCE = """
import ctypes, functools, operator, os, signal
_libc = ctypes.CDLL(None, use_errno=True)
_sigset = ctypes.create_string_buffer(128)
_libc.sigemptyset(_sigset)
_libc.sigaddset(_sigset, signal.SIGTERM)
_sem = ctypes.create_string_buffer(64)
_libc.sem_init(_sem, 0, 0)

def blocked_wait():
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    os.kill(os.getpid(), signal.SIGTERM)
    print("pending", flush=True)
    steps = [functools.partial(_libc.pthread_sigmask, signal.SIG_UNBLOCK, _sigset, None),
             functools.partial(_libc.sem_wait, _sem)]
    list(map(operator.methodcaller("__call__"), steps))
    print("woke up", flush=True)
"""


def run_threads(threads: Iterable[threading.Thread]) -> None:
    """Start every thread, then wait for all of them."""
    threads = list(threads)
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def count_by_name(names_: Iterable[str]) -> Dict[str, int]:
    out: Dict[str, int] = defaultdict(int)
    for n in names_:
        out[n] += 1
    return dict(out)


# --------------------------------------------------------------------------- the option table

SAMPLE_PLUGIN = """\
from viztracer.vizplugin import VizPluginBase


class SamplePlugin(VizPluginBase):
    def support_version(self):
        return "0.10.0"


def get_vizplugin(arg):
    return SamplePlugin()
"""


def write_sample_plugin(directory):
    """The module the option table's sample of ``plugins`` names, in ``directory``."""
    from viztracer.options import OPTION

    (module,) = OPTION["plugins"].sample
    (directory / f"{module}.py").write_text(SAMPLE_PLUGIN)


def missing(package):
    try:
        __import__(package)
    except ImportError:
        return True
    return False
