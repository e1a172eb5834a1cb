"""What the ``log_print``, ``log_gc`` and ``log_torch`` options add to a trace.

The tracer owns one object of each kind below and calls it around ``start()``,
``stop()`` and ``save()``.
"""

from __future__ import annotations

import builtins
import gc
import io
import json
import os
import sys
import tempfile
import weakref
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

if TYPE_CHECKING:  # pragma: no cover
    from .viztracer import VizTracer


class PrintLogger:
    """While installed, ``print`` still prints, and each call also becomes an instant
    event ``"print - <text>"`` (the text as printed, with its end, usually ``\\n``).
    Only prints to the terminal streams (``sys.stdout``, ``sys.stderr``) are
    recorded; prints to other files pass through untouched."""

    def __init__(self, tracer: "VizTracer") -> None:
        self._tracer_ref = weakref.ref(tracer)
        self._original: Optional[Callable[..., None]] = None
        self._hook = self._print  # one bound method, so `builtins.print is self._hook` works

    @property
    def installed(self) -> bool:
        return self._original is not None

    def install(self) -> None:
        if self._original is None:
            self._original = builtins.print
            builtins.print = self._hook

    def uninstall(self) -> None:
        if self._original is None:
            return
        if builtins.print is self._hook:
            builtins.print = self._original
        self._original = None

    def _print(self, *args: Any, sep: Optional[str] = " ", end: Optional[str] = "\n",
               file: Any = None, flush: bool = False) -> None:
        original = self._original or _builtin_print
        # Render once (each __str__ runs once), then log and write the same text.
        buf = io.StringIO()
        original(*args, sep=sep, end=end, file=buf)
        text = buf.getvalue()
        tracer = self._tracer_ref()
        if tracer is not None and tracer.enable and (file is None or file is sys.stdout or file is sys.stderr):
            tracer.add_instant(f"print - {text}", scope="g")
        original(text, end="", file=file, flush=flush)


_builtin_print = builtins.print


class GcLogger:
    """The ``gc.callbacks`` entry of a tracer with ``log_gc=True``. While the tracer
    records, each cyclic collection gives:

    * a counter ``"garbage collection"``: ``{"collecting": 1, "collected": 0,
      "uncollectable": 0}`` when it starts, ``{"collecting": 0, "collected": n,
      "uncollectable": m}`` when it ends;
    * a complete event ``"garbage collection"`` (category ``gc``) spanning it, on the
      thread that ran it, with ``args: {"generation", "collected", "uncollectable"}``.
    """

    def __init__(self, tracer: "VizTracer") -> None:
        ref = weakref.ref(tracer)
        started: List[float] = []

        def callback(phase: str, info: Dict[str, Any]) -> None:
            t = ref()
            if t is None or not t.enable:
                started.clear()
                return
            if phase == "start":
                started[:] = [t.getts()]
                t.add_counter("garbage collection", {"collecting": 1, "collected": 0, "uncollectable": 0})
                return
            if not started:  # recording began during this collection
                return
            start = started.pop()
            collected = int(info.get("collected", 0))
            uncollectable = int(info.get("uncollectable", 0))
            t.add_counter("garbage collection",
                          {"collecting": 0, "collected": collected, "uncollectable": uncollectable})
            t.add_raw({"ph": "X", "name": "garbage collection", "cat": "gc", "ts": start,
                       "dur": t.getts() - start,
                       "args": {"generation": info.get("generation"), "collected": collected,
                                "uncollectable": uncollectable}})

        self.callback = callback

    # The callback is in gc.callbacks only while the tracer records (start to stop):
    # nothing of it outlives the recording.
    def install(self) -> None:
        if self.callback not in gc.callbacks:
            gc.callbacks.append(self.callback)

    def uninstall(self) -> None:
        _remove_gc_callback(self.callback)


def _remove_gc_callback(callback: Callable[..., None]) -> None:
    while callback in gc.callbacks:
        gc.callbacks.remove(callback)


# ---------------------------------------------------------------------- torch

_TORCH_DROPPED_KEYS = ("baseTimeNanoseconds", "displayTimeUnit", "traceName", "deviceProperties",
                       "schemaVersion")


def load_torch_trace(path: str, base_offset: int) -> Dict[str, Any]:
    """A chrome trace exported by ``torch.profiler``, moved onto viztracer's time axis.

    torch writes ``ts`` in µs from its own ``baseTimeNanoseconds`` (an epoch time);
    ours are µs from ``base_offset`` (``tracer.get_base_time()``), so every ``ts`` is
    shifted by ``(baseTimeNanoseconds - base_offset) / 1000``. Metadata events lose
    their ``ts``; torch's top-level keys other than ``traceEvents`` are dropped."""
    with open(path, encoding="utf-8") as f:
        trace = json.load(f)
    if not isinstance(trace, dict):
        raise ValueError(f"{path} is not a chrome trace (no top-level object)")
    shift = (int(trace.get("baseTimeNanoseconds", 0)) - int(base_offset)) / 1000
    events = trace.get("traceEvents", [])
    for e in events:
        if not isinstance(e, dict):
            continue
        if e.get("ph") == "M":
            e.pop("ts", None)
        elif isinstance(e.get("ts"), (int, float)) and not isinstance(e.get("ts"), bool):
            e["ts"] = e["ts"] + shift
    for key in _TORCH_DROPPED_KEYS:
        trace.pop(key, None)
    trace["traceEvents"] = [e for e in events if isinstance(e, dict)]
    trace["viztracer_metadata"] = {}
    return trace


class TorchProfiler:
    """Runs ``torch.profiler.profile`` between the tracer's start and stop, and gives
    its events on the tracer's time axis for the saved report."""

    def __init__(self) -> None:
        self._profiler: Any = None
        self._running = False
        self._trace: Optional[Dict[str, Any]] = None

    def start(self) -> None:
        import torch.profiler  # optional: torch
        self._profiler = torch.profiler.profile(activities=torch.profiler.supported_activities())
        self._profiler.__enter__()
        self._running = True
        self._trace = None

    def stop(self) -> None:
        if self._running:
            self._running = False
            self._profiler.__exit__(None, None, None)

    def events(self, base_offset: int) -> List[Dict[str, Any]]:
        """The profiled events (exported once per start/stop)."""
        if self._profiler is None:
            return []
        self.stop()
        if self._trace is None:
            with tempfile.TemporaryDirectory(prefix="viztracer_torch_") as d:
                path = os.path.join(d, "torch_trace.json")
                self._profiler.export_chrome_trace(path)
                self._trace = load_torch_trace(path, base_offset)
        return self._trace["traceEvents"]
