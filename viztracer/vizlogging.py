"""``VizLoggingHandler``: ``logging`` records as instant events in the trace.

    import logging
    from viztracer.vizlogging import VizLoggingHandler

    handler = VizLoggingHandler()
    handler.setTracer(tracer)          # optional: default is the global tracer
    logging.getLogger().addHandler(handler)

Each record becomes an instant event named ``"logging - <formatted record>"`` with
process scope, while the tracer is recording.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

from .viztracer import get_tracer

_GLOBAL = object()  # sentinel: use get_tracer() at each record


class VizLoggingHandler(logging.Handler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tracer: Any = _GLOBAL

    def setTracer(self, tracer: Optional[Any]) -> None:
        """Record into ``tracer``; ``None`` makes the handler do nothing."""
        self._tracer = tracer

    def _current_tracer(self) -> Optional[Any]:
        if self._tracer is _GLOBAL:
            return get_tracer()
        return self._tracer

    def emit(self, record: logging.LogRecord) -> None:
        tracer = self._current_tracer()
        if tracer is None or not getattr(tracer, "enable", False):
            return
        try:
            tracer.add_instant(f"logging - {self.format(record)}", scope="p")
        except Exception:
            self.handleError(record)
