"""``tracer.log_event(name)``: a ``with`` block recorded as one complete event."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .viztracer import VizTracer


class VizEvent:
    """Context manager that records ``"<name> (<file>:<line>)"`` as an ``X`` event
    spanning the block. It works in ``log_sparse`` mode too (raw events need no
    collecting tracer)."""

    def __init__(self, tracer: "VizTracer", event_name: str, file_name: str, lineno: int) -> None:
        self._tracer = tracer
        self.event_name = event_name
        self.file_name = file_name
        self.lineno = lineno
        self.start = 0.0

    def __enter__(self) -> None:
        self.start = self._tracer.getts()

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        dur = self._tracer.getts() - self.start
        self._tracer.add_raw({
            "ph": "X",
            "name": f"{self.event_name} ({self.file_name}:{self.lineno})",
            "ts": self.start,
            "dur": dur,
            "cat": "FEE",
        })
