"""``VizTracer.install()``: a tracer that another process starts and stops with
signals (``viztracer --attach_installed PID``).

SIGUSR1 starts the tracer; SIGUSR2 stops it and saves to its ``output_file``. Both
can come again: each SIGUSR2 writes what was recorded since the SIGUSR1 before it.
The handlers run in the main thread, between two bytecodes of whatever it is doing,
as every Python signal handler does.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

from .lifecycle import print_quietly
from .trace_writer import failure_line

if TYPE_CHECKING:  # pragma: no cover
    from .viztracer import VizTracer

START_SIGNAL = signal.SIGUSR1
STOP_SIGNAL = signal.SIGUSR2


def install(tracer: "VizTracer") -> None:
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("install() must be called from the main thread (it sets signal handlers)")

    def start(signum: int, frame: Any) -> None:
        if not tracer.enable:
            tracer.clear()
            tracer.start()

    def stop_and_save(signum: int, frame: Any) -> None:
        if tracer.enable:
            tracer.stop(stop_option="flush_as_finish")
            try:
                tracer.save()
            except Exception as e:  # raised here, it would land anywhere in the program
                print_quietly(failure_line(e), file=sys.stderr)

    signal.signal(START_SIGNAL, start)
    signal.signal(STOP_SIGNAL, stop_and_save)
