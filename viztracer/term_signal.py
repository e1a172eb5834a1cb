"""Our SIGTERM handler (lifecycle.py's, which saves the trace), made reliable.

CPython runs a Python signal handler only when the main thread next checks for
signals. A SIGTERM that lands just before the main thread enters a blocking wait
(a ``multiprocessing.Pool`` worker terminated as it reaches for the queue's lock) is
then never handled and the process waits forever, where it would have died untraced.
The native side (``rust/ffi/term_signal.rs``) repeats the signal until the handler runs.
"""

from __future__ import annotations

import signal
from typing import Any, Callable

from . import _snaptrace

_MARK = "_viztracer_sigterm"


def catch_sigterm(handler: Callable[[int, Any], None]) -> Any:
    """``signal.signal(SIGTERM, handler)`` with the repeater behind it; returns the previous
    handler.
    Call from the main thread."""

    def on_sigterm(signum: int, frame: Any) -> None:
        _snaptrace.sigterm_received()
        handler(signum, frame)

    setattr(on_sigterm, _MARK, True)
    previous = signal.signal(signal.SIGTERM, on_sigterm)
    _snaptrace.install_sigterm_repeater()
    return previous


def is_ours(handler: Any) -> bool:
    return getattr(handler, _MARK, False)


def repeat_again_in_child() -> None:
    """In a forked child (lifecycle.py calls it): the timer that repeats the signal is
    not inherited, make the child's own."""
    try:
        if is_ours(signal.getsignal(signal.SIGTERM)):
            _snaptrace.install_sigterm_repeater()
    except Exception:  # never break a child because of this
        pass
