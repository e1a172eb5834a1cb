"""Thread and async task names for the trace's ``thread_name`` metadata."""

from __future__ import annotations

import sys
import threading
from types import FrameType
from typing import Dict, List, Optional, Sequence, Tuple

_THREADING_FILE = getattr(threading, "__file__", None)


def name_new_thread(ident: int) -> Optional[str]:
    """The ``threading`` name of a thread the tracer sees for the first time.

    Called by the native tracer from inside an event hook (so nothing here is traced).
    On 3.12+ the first event of a new thread comes from ``Thread._bootstrap`` before the
    thread registers itself in ``threading``: the ``Thread`` object is then found on
    the thread's own stack, which avoids upstream's ``Dummy-N`` names.
    """
    t = threading._active.get(ident)  # type: ignore[attr-defined]
    if t is not None and not isinstance(t, threading._DummyThread):
        return t.name
    frame: Optional[FrameType] = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if code.co_name in ("_bootstrap", "_bootstrap_inner") and code.co_filename == _THREADING_FILE:
            candidate = frame.f_locals.get("self")
            if isinstance(candidate, threading.Thread):
                return candidate.name
        frame = frame.f_back
    return None


def _live_threads() -> List[threading.Thread]:
    threads = list(threading.enumerate())
    dangling = getattr(threading, "_dangling", None)
    if dangling is not None:
        try:
            threads.extend(list(dangling))
        except RuntimeError:  # the WeakSet changed size while copying
            pass
    return threads


def thread_names(
    threads: Sequence[Tuple[int, int, Optional[str], int]],
    tasks: Sequence[Tuple[int, str]] = (),
) -> List[Tuple[int, str]]:
    """``[(tid, name)]`` for the snapshot's threads (main thread first), then tasks.

    ``threads`` holds ``(tid, ident, name_seen_at_first_event, event_count)``.
    """
    by_ident: Dict[int, str] = {}
    by_native: Dict[int, str] = {}
    for t in _live_threads():
        if t.ident is not None:
            by_ident.setdefault(t.ident, t.name)
        if t.native_id is not None:
            by_native.setdefault(t.native_id, t.name)
    main_native = threading.main_thread().native_id

    named = []
    for tid, ident, hint, _count in threads:
        name = hint or by_ident.get(ident) or by_native.get(tid) or f"Thread-{tid}"
        named.append((tid, name))
    named.sort(key=lambda tn: (tn[0] != main_native, tn[1] != "MainThread"))
    named.extend((tid, name) for tid, name in tasks)
    return named


def current_task_info() -> Optional[Tuple[int, str]]:
    """``(id(task), name)`` of the running asyncio (or trio) task, or None.
    Called by the native tracer when a coroutine starts with ``log_async`` on."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is not None:
        try:
            task = asyncio.current_task()
        except RuntimeError:  # no running event loop
            task = None
        if task is not None:
            get_name = getattr(task, "get_name", None)
            return id(task), get_name() if get_name is not None else "Task"
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            task = trio.lowlevel.current_task()
        except RuntimeError:
            task = None
        if task is not None:
            return id(task), getattr(task, "name", "Task")
    return None
