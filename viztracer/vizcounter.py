"""``VizCounter``: numbers tracked through time, shown as a counter track."""

from __future__ import annotations

from typing import Any, Dict

from .event_base import _EventBase


class VizCounter(_EventBase):
    """Records its public numeric attributes as one counter event (``ph: "C"``)
    named after the counter; each attribute is a series of the track.

        counter = VizCounter(tracer, "memory")
        counter.rss = 1024          # recorded (trigger_on_change)

    Every recorded value must be a number (``int`` or ``float``, or a subclass such as
    a NumPy scalar; not ``bool``), otherwise a ``TypeError`` is raised.
    """

    def _viztracer_log(self) -> None:
        tracer = self._viztracer_tracer
        if tracer is None:
            return
        args: Dict[str, Any] = {}
        for name, value in self._viztracer_attributes().items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"Counter can only take numeric values: {self._viztracer_name}.{name} "
                                f"is {type(value).__name__} ({value!r})")
            args[name] = int(value) if isinstance(value, int) else float(value)
        tracer.add_counter(self._viztracer_name, args)
