"""``VizObject``: an object whose JSON-able attributes are recorded as snapshots."""

from __future__ import annotations

from typing import Any, Dict, Iterable, Optional

from .event_base import _EventBase

_SCALARS = (str, int, float, bool, type(None))


def _is_jsonable(value: Any) -> bool:
    return isinstance(value, (dict, list, tuple) + _SCALARS)


def _frozen(value: Any) -> Any:
    """A copy of a JSON-able value as it is now (events are written at save time, and
    the object may have changed by then). Values JSON cannot hold become their repr."""
    if isinstance(value, bool) or value is None or type(value) in (str, int, float):
        return value
    if isinstance(value, dict):
        return {k if isinstance(k, str) else str(k): _frozen(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_frozen(v) for v in value]
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return repr(value)


class VizObject(_EventBase):
    """Records its public attributes that JSON can hold (dict, list, tuple, str, int,
    float, bool, None) as object snapshots; other values are left out. The trace gets
    a "created" event (``ph: "N"``) when the object is made, a snapshot
    (``ph: "O"``, ``args: {"snapshot": {...}}``) on every record, and a "destroyed"
    event (``ph: "D"``) when the object is garbage collected."""

    def __init__(self, tracer: Any, name: Optional[str] = None, trigger_on_change: bool = True,
                 include_attributes: Iterable[str] = [],  # noqa: B006 (never mutated)
                 exclude_attributes: Iterable[str] = []) -> None:  # noqa: B006
        super().__init__(tracer, name, trigger_on_change, include_attributes, exclude_attributes)
        self._viztracer_id = str(id(self))
        if tracer is not None:
            tracer.add_object("N", self._viztracer_id, self._viztracer_name)

    def _viztracer_log(self) -> None:
        tracer = self._viztracer_tracer
        if tracer is None:
            return
        snapshot: Dict[str, Any] = {n: _frozen(v) for n, v in self._viztracer_attributes().items()
                                    if _is_jsonable(v)}
        tracer.add_object("O", self._viztracer_id, self._viztracer_name, {"snapshot": snapshot})

    def __del__(self) -> None:
        tracer = self.__dict__.get("_viztracer_tracer")
        obj_id = self.__dict__.get("_viztracer_id")
        if tracer is None or obj_id is None:
            return
        try:
            tracer.add_object("D", obj_id, self._viztracer_name)
        except Exception:  # interpreter shutdown, tracer already torn down
            pass
