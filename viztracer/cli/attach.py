"""Tracing a program that is already running.

* ``--attach_installed PID``: start and stop the tracer of a program that called
  ``tracer.install()`` (viztracer/installed.py), by signals;
* ``--attach PID`` and ``--uninstall PID``: start a tracer inside a program that has
  none, then stop it (it saves), or remove any tracer it has: the program runs a short
  fixed script (viztracer/remote.py is its side) through ``sys.remote_exec`` when this
  command runs on 3.14+, through gdb and ``Py_AddPendingCall`` before.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Set

from ..installed import START_SIGNAL, STOP_SIGNAL
from ..util import pid_alive
from .arguments import output_path, tracer_kwargs
from .errors import CliError

# How often the wait checks that the target still runs.
_POLL = 0.1


def run_attach(ns: argparse.Namespace) -> int:
    try:
        return _run_attach(ns)
    except KeyboardInterrupt:  # (before anything was sent: see attach_installed)
        raise CliError("Interrupted before attaching: nothing was sent") from None


def _run_attach(ns: argparse.Namespace) -> int:
    seconds = _duration(ns.t)
    flag, pid = next((f, p) for f, p in (("--attach", ns.attach), ("--attach_installed", ns.attach_installed),
                                         ("--uninstall", ns.uninstall)) if p != -1)
    if pid is None or pid <= 0:
        raise CliError(f"{flag} needs the pid of a running process")
    if flag == "--attach_installed":
        return attach_installed(pid, seconds)
    if flag == "--uninstall":
        return uninstall(pid)
    return attach(pid, seconds, tracer_kwargs(ns, output_path(ns, f"attached_{pid}")))


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
    _trace_for(pid, seconds, start=lambda: os.kill(pid, START_SIGNAL), started=f"Attached to process {pid}")
    os.kill(pid, STOP_SIGNAL)
    print(f"Detached from process {pid}: it saves the trace to its tracer's output_file", flush=True)
    return 0


def attach(pid: int, seconds: Optional[float], options: Dict[str, Any]) -> int:
    """Start a tracer with ``options`` inside ``pid``, then stop it there, where it saves."""
    _check_remote(pid)
    with tempfile.TemporaryDirectory(prefix="viztracer_attach_") as exchange:
        # (the answer comes once the target's tracer runs: "success" is the target's word)
        _trace_for(pid, seconds, start=lambda: _ask(pid, exchange, {"action": "start", "options": options}),
                   started=f"Attach success, attached to process {pid}")
        status = _ask(pid, exchange, {"action": "stop"})
    print(f"Detached from process {pid}: it saved {status.get('entries', 0)} trace entries to "
          f"{status['output_file']}", flush=True)
    return 0


def uninstall(pid: int) -> int:
    """Stop and remove any tracer inside ``pid``, without saving."""
    _check_remote(pid)
    with tempfile.TemporaryDirectory(prefix="viztracer_attach_") as exchange:
        status = _ask(pid, exchange, {"action": "uninstall"})
    removed = status.get("removed", 0)
    print(f"Removed {removed} tracer(s) from process {pid}" if removed else f"Process {pid} had no tracer running",
          flush=True)
    return 0


# How long the target gets to run what it was sent (its main thread must come back to
# Python for that).
REMOTE_TIMEOUT = 30.0


def _check_remote(pid: int) -> None:
    _check_alive(pid)
    if _remote_debug_disabled(pid):
        raise CliError(f"Process {pid} disabled remote debugging (PYTHON_DISABLE_REMOTE_DEBUG or "
                       "-X disable_remote_debug): it can't be attached to")


def _ask(pid: int, exchange: str, request: Dict[str, Any]) -> Dict[str, Any]:
    """Have ``pid`` handle ``request`` (viztracer/remote.py); its answer."""
    from .. import remote  # start-up: --attach and --uninstall only

    name = request["action"]
    request_path = os.path.join(exchange, name + ".json")
    status_path = os.path.join(exchange, name + ".status")
    script_path = os.path.join(exchange, name + ".py")
    with open(request_path, "w", encoding="utf-8") as f:
        json.dump(request, f)
    with open(script_path, "w", encoding="utf-8") as f:
        f.write(remote.script(request_path, status_path))
    if not hasattr(sys, "remote_exec"):
        _run_with_gdb(pid, script_path)
    else:
        _remote_exec(pid, script_path)
    deadline = time.monotonic() + REMOTE_TIMEOUT
    while not os.path.exists(status_path):
        if not pid_alive(pid):
            raise CliError(f"Process {pid} ended before it answered")
        if time.monotonic() > deadline:
            raise CliError(f"Process {pid} did not run viztracer's code within {REMOTE_TIMEOUT:g} s: its main "
                           "thread may be blocked outside Python")
        time.sleep(0.02)
    with open(status_path, encoding="utf-8") as f:
        status: Dict[str, Any] = json.load(f)
    if "error" in status:
        raise CliError(str(status["error"]))
    return status


def _remote_exec(pid: int, script_path: str) -> None:
    """3.14+: the interpreter runs the script at the target's next safe point."""
    try:
        sys.remote_exec(pid, script_path)  # type: ignore[attr-defined]
    except PermissionError:
        raise CliError(f"No permission to attach to process {pid} (it needs what a debugger needs: "
                       "the same user, and ptrace allowed)") from None
    except ProcessLookupError:
        raise CliError(f"No process with pid {pid}") from None
    except (RuntimeError, OSError) as e:
        message = str(e)
        if "PyRuntime" in message:
            message = f"process {pid} is not a Python process (or not one this Python can read)"
        elif "Python 3." in message:
            message += ": run viztracer with the Python of that process"
        raise CliError(f"Can't attach to process {pid}: {message}") from None


def _run_with_gdb(pid: int, script_path: str) -> None:
    """3.13 and earlier: gdb stops the target just long enough to queue a pending call
    (``Py_AddPendingCall``, safe without the GIL) that runs the script in the main
    thread at its next safe point, as ``sys.remote_exec`` does."""
    import subprocess  # program: the traced program must not find it imported

    gdb = shutil.which("gdb")
    if gdb is None:
        raise CliError("Attaching from Python 3.13 and earlier needs gdb: install it (Debian: apt-get install gdb)")
    statement = f"exec(open({script_path!r}).read(), {{}})"
    call = ("call (int)Py_AddPendingCall((int(*)(void*))PyRun_SimpleString, (void*)strdup("
            + json.dumps(statement) + "))")
    try:
        result = subprocess.run([gdb, "-p", str(pid), "-batch", "-nx", "-q", "-ex", call, "-ex", "detach"],
                                capture_output=True, text=True, timeout=REMOTE_TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise CliError(f"gdb did not attach to process {pid} within {REMOTE_TIMEOUT:g} s") from None
    output = result.stdout + result.stderr
    if "$1 = 0" in output:
        return
    if "No such process" in output:
        raise CliError(f"No process with pid {pid}")
    if "Operation not permitted" in output:
        raise CliError(f"No permission to attach to process {pid} (it needs what a debugger needs: "
                       "the same user, and ptrace allowed)")
    if "No symbol" in output:
        raise CliError(f"Can't attach to process {pid}: it is not a Python process")
    last = [line for line in output.splitlines() if line.strip()][-1:] or ["no output"]
    raise CliError(f"Can't attach to process {pid}: gdb failed ({last[0].strip()})")


def _remote_debug_disabled(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read().split(b"\0")
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().split(b"\0")
    except OSError:
        return False
    if any(e.startswith(b"PYTHON_DISABLE_REMOTE_DEBUG=") and e != b"PYTHON_DISABLE_REMOTE_DEBUG=" for e in env):
        return True
    return any(a.endswith(b"disable_remote_debug") for a in args)


def _trace_for(pid: int, seconds: Optional[float], start: Callable[[], object], started: str) -> None:
    """Run ``start``, say so (``started``, then for how long), and wait ``seconds`` or
    until Ctrl+C. Ctrl+C means "stop now" from the moment the start may have happened:
    a flag, never a KeyboardInterrupt half-way (and not an Event: setting one from a
    signal handler can deadlock on its own lock)."""
    stop: List[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: stop.append(signum))
    try:
        start()
        until = f"for {seconds:g} s (Ctrl+C stops earlier)" if seconds else "until you press Ctrl+C"
        print(f"{started}: its tracer records {until}", flush=True)
        deadline = None if seconds is None else time.monotonic() + seconds
        while not stop and (deadline is None or time.monotonic() < deadline):
            if not pid_alive(pid):
                raise CliError(f"Process {pid} ended while it was traced: nothing to stop")
            time.sleep(_POLL if deadline is None else max(0.0, min(_POLL, deadline - time.monotonic())))
    finally:
        signal.signal(signal.SIGINT, previous)
    if not pid_alive(pid):
        raise CliError(f"Process {pid} ended while it was traced: nothing to stop")


def _check_alive(pid: int) -> None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        raise CliError(f"No process with pid {pid}") from None
    except PermissionError:
        raise CliError(f"No permission to reach process {pid} (it runs as another user)") from None
    if not pid_alive(pid):
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
