"""``--attach_installed PID``: start and stop the tracer of a running program that
called ``tracer.install()`` (see viztracer/installed.py), by signals.

``--attach`` and ``--uninstall``, which inject a tracer into a program that has none,
are not supported yet.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import threading
import time
from typing import Optional, Set

from ..installed import START_SIGNAL, STOP_SIGNAL
from .errors import CliError

# How often the wait checks that the target still runs.
_POLL = 0.1


def run_attach(ns: argparse.Namespace) -> int:
    try:
        return _run_attach(ns)
    except KeyboardInterrupt:  # (before anything was sent: see attach_installed)
        raise CliError("Interrupted before attaching: nothing was sent") from None


def _run_attach(ns: argparse.Namespace) -> int:
    if ns.attach != -1 or ns.uninstall != -1:
        raise CliError("Attaching to a process that has no tracer (--attach, --uninstall) is not supported "
                       "by this viztracer yet; call tracer.install() in the program and use --attach_installed")
    seconds = _duration(ns.t)
    pid = ns.attach_installed
    if pid is None or pid <= 0:
        raise CliError("--attach_installed needs the pid of a running process")
    return attach_installed(pid, seconds)


def _duration(t: Optional[float]) -> Optional[float]:
    if t is None:
        return None
    if not (t > 0 and math.isfinite(t)):
        raise CliError(f"-t must be a positive number of seconds, not {t}")
    return t


def attach_installed(pid: int, seconds: Optional[float]) -> int:
    _check_alive(pid)
    caught = _caught_signals(pid)
    if caught is not None and not {START_SIGNAL, STOP_SIGNAL} <= caught:
        # Its default action would kill the process.
        raise CliError(f"Process {pid} has no installed tracer (it did not call tracer.install()): "
                       "nothing was sent to it")
    # Ctrl+C means "stop now" (the tracer is stopped, and saves), from the moment the
    # start signal may have been sent: a flag, never a KeyboardInterrupt half-way.
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    try:
        os.kill(pid, START_SIGNAL)
        until = f"for {seconds:g} s (Ctrl+C stops earlier)" if seconds else "until you press Ctrl+C"
        print(f"Attached to process {pid}: its tracer records {until}", flush=True)
        deadline = None if seconds is None else time.monotonic() + seconds
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            if not _alive(pid):
                raise CliError(f"Process {pid} ended while it was traced: nothing to stop")
            stop.wait(_POLL if deadline is None else max(0.0, min(_POLL, deadline - time.monotonic())))
    finally:
        signal.signal(signal.SIGINT, previous)
    if not _alive(pid):
        raise CliError(f"Process {pid} ended while it was traced: nothing to stop")
    os.kill(pid, STOP_SIGNAL)
    print(f"Detached from process {pid}: it saves the trace to its tracer's output_file", flush=True)
    return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (ended, not yet reaped) does not run any more
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def _check_alive(pid: int) -> None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        raise CliError(f"No process with pid {pid}") from None
    except PermissionError:
        raise CliError(f"No permission to send signals to process {pid}") from None
    if not _alive(pid):
        raise CliError(f"No process with pid {pid}")


def _caught_signals(pid: int) -> Optional[Set[int]]:
    """The signals ``pid`` has a handler for (``SigCgt`` in /proc), None if unknown."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    mask = int(line.split()[1], 16)
                    return {n + 1 for n in range(64) if mask >> n & 1}
    except (OSError, ValueError):
        pass
    return None
