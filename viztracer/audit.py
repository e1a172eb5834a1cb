"""``sys.audit`` events: recorded as instants with ``log_audit``, and used to save the
trace before ``os.exec*`` replaces the process.

An audit hook can never be removed, so one hook is installed per process, the first
time it is needed, and it looks at the current tracer on each event.
"""

from __future__ import annotations

import re
import sys
import weakref
from typing import TYPE_CHECKING, Callable, List, Optional, Pattern

if TYPE_CHECKING:  # pragma: no cover
    from .viztracer import VizTracer

_installed = False
_logging: Optional["weakref.ref[VizTracer]"] = None
_patterns: List[Pattern[str]] = []
_on_exec: Optional[Callable[[], object]] = None
_in_hook = False


def _hook(event: str, args: tuple) -> None:
    global _in_hook
    if _in_hook:
        return
    _in_hook = True
    try:
        tracer = _logging() if _logging is not None else None
        if tracer is not None and tracer.enable and (not _patterns or any(p.fullmatch(event) for p in _patterns)):
            tracer._tracer.add_instant(event, {"args": [_text(a) for a in args]}, "t")
        if event == "os.exec" and _on_exec is not None:
            _on_exec()
    except Exception:
        pass  # an audit hook must never break the program
    finally:
        _in_hook = False


def _text(value: object) -> str:
    try:
        return str(value)
    except Exception:
        return "Not Displayable"


def _install() -> None:
    global _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True


def log_events(tracer: Optional["VizTracer"], patterns: Optional[List[str]] = None) -> None:
    """Record audit events matching ``patterns`` (``re.fullmatch``; an empty list
    means every event) as instants of ``tracer``; ``None`` stops recording."""
    global _logging, _patterns
    if tracer is None:
        _logging = None
        return
    _patterns = [re.compile(p) for p in (patterns or [])]
    _logging = weakref.ref(tracer)
    _install()


def on_exec(callback: Callable[[], object]) -> None:
    """Call ``callback`` when the process is about to ``exec`` (lifecycle.py saves
    the trace then)."""
    global _on_exec
    _on_exec = callback
    _install()
