"""Saving a trace when the process ends, once, whichever way it ends.

An :class:`ExitSave` wraps one "save" callable (``VizTracer.exit_routine``, or the
command line's save of the program it runs) and, once armed, calls it at most once,
on the first of:

* ``os._exit``: a wrapper around it (one per process, put back when nothing is armed);
* ``os.exec*``, which replaces the process: the ``os.exec`` audit event (audit.py);
* SIGTERM: our handler (term_signal.py) saves, then the process dies from the signal,
  as it would untraced; a SIGTERM that arrives while saving is kept and delivered
  when the save is done;
* interpreter exit (end of the program, ``sys.exit``, an uncaught exception), with
  ``at_exit=True``: a multiprocessing finalizer with priority -1, which runs after
  multiprocessing has terminated and joined its daemonic children. (The command line
  saves at the end of its own run instead, after the program's atexit callbacks.)

A save that fails says why in one line on stderr, never a traceback, and the process
ends as it would have; only ``os._exit(0)`` becomes ``os._exit(1)``, so that the
failure shows in the status where the status is still ours to give.

An ExitSave belongs to the process that armed it. In a forked child it does nothing
and the child gets the program's own SIGTERM handling back; a child that saves a
trace of its own (a member of a multi-process collection) arms a new one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from typing import Any, Callable, Iterator, List, NoReturn, Optional

from . import audit, term_signal
from .trace_writer import failure_line

# Armed ExitSaves of this process, oldest first (the first armed saves first).
_armed: List["ExitSave"] = []
_real_os_exit = os._exit


class ExitSave:
    def __init__(self, save: Callable[[], None]) -> None:
        self._save = save
        self.pid = os.getpid()
        self.state = "idle"  # -> "armed" -> "saving" -> "saved"
        self.failed = False  # the save raised (and said so in one line)
        # A signal that arrived while saving: delivered when the save is done.
        self.pending_signal: Optional[int] = None
        self._at_exit_owner: Optional[Any] = None
        # The SIGTERM handler ours replaced (None: ours is not installed).
        self._program_sigterm: Any = None

    # ------------------------------------------------------------------ arming

    def arm(self, at_exit: bool = False, sigterm: bool = True, owner: Optional[Any] = None) -> "ExitSave":
        """Watch ``os._exit`` and ``os.exec*``; SIGTERM with ``sigterm``; the interpreter's
        exit with ``at_exit`` (the finalizer goes if ``owner`` is collected first).
        Arming again adds what was not watched yet."""
        if self.state == "idle":
            self.state = "armed"
            _armed.append(self)
            if os._exit is not _exit_with_save:
                os._exit = _exit_with_save
            audit.on_exec(_save_all)
        if self.state != "armed":
            return self
        if sigterm and self._program_sigterm is None:
            self._catch_sigterm()
        if at_exit and self._at_exit_owner is None:
            self._at_exit_owner = self if owner is None else owner
            self._finalize_at_exit()
        return self

    @property
    def at_exit(self) -> bool:
        """Whether the interpreter's exit is watched too (``VizTracer.register_exit``)."""
        return self._at_exit_owner is not None

    def disarm(self) -> None:
        """Stop watching; the SIGTERM handler and ``os._exit`` go back to what they were
        (when nothing else is armed). Also after saving."""
        if self in _armed:
            _armed.remove(self)
        if self._program_sigterm is not None and os.getpid() == self.pid:
            if term_signal.is_ours(signal.getsignal(signal.SIGTERM)):
                signal.signal(signal.SIGTERM, self._program_sigterm)
            self._program_sigterm = None
        if not _armed and os._exit is _exit_with_save:
            os._exit = _real_os_exit
        if self.state == "armed":
            self.state = "idle"
        self._at_exit_owner = None

    def _catch_sigterm(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGTERM)
        if previous == signal.SIG_IGN:
            return  # the program ignores SIGTERM (it inherited that): so do we
        previous = term_signal.catch_sigterm(self._on_sigterm)
        # None: a handler set outside Python, which can't be put back.
        self._program_sigterm = signal.SIG_DFL if previous is None else previous

    def _finalize_at_exit(self) -> None:
        import multiprocessing.util  # start-up: at-exit saving only (and importing it has side effects)

        multiprocessing.util.Finalize(self._at_exit_owner, self.save, exitpriority=-1)
        _AfterForkers.register()

    # ------------------------------------------------------------------ saving

    def save(self) -> None:
        """Save now, unless this ExitSave already saved (or is saving) or belongs to
        another process. A signal that came meanwhile is delivered afterwards."""
        if self.state != "armed" or os.getpid() != self.pid:
            return
        self.state = "saving"
        try:
            self._save()
        except Exception as e:  # the process is ending: one line, never a traceback
            self.failed = True
            print_quietly(failure_line(e), file=sys.stderr)
        finally:
            self.state = "saved"
        if self.pending_signal is not None:
            die(self.pending_signal)

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        if os.getpid() != self.pid:
            die(signum, flush=False)  # a forked child: as if we were not here
        if self.state == "saving":
            self.pending_signal = signum
            return
        if self.state == "armed":
            # A signal handler can run in the middle of a write to stdout, whose
            # buffer is then locked: print through streams of our own meanwhile.
            with own_std_streams():
                self.save()
        die(signum)


# ---------------------------------------------------------------------- the process's hooks

def _save_all() -> bool:
    """Save every ExitSave of this process; whether one of them failed."""
    pid = os.getpid()
    failed = False
    for exit_save in list(_armed):
        if exit_save.pid == pid:
            exit_save.save()
            failed = failed or exit_save.failed
    return failed


def _exit_with_save(status: int) -> NoReturn:
    """``os._exit`` skips atexit and finalizers: save first (status 0 becomes 1 if
    that failed)."""
    failed = _save_all()
    _real_os_exit(1 if failed and status == 0 else status)


_exit_with_save.__doc__ = _real_os_exit.__doc__


# What else must happen in a forked child, after the steps below (viztracer.py: each
# tracer resets itself, and a member of a collection connects to its collector anew and
# arms an ExitSave of its own).
_fork_callbacks: List[Callable[[], None]] = []


def on_fork_in_child(callback: Callable[[], None]) -> None:
    """Run ``callback`` in every forked child, after this module's own steps."""
    _fork_callbacks.append(callback)


def _after_fork_in_child() -> None:
    """Everything viztracer does in a forked child, in this order (one at-fork hook,
    so the order is written here): the SIGTERM repeater's timer is made again; the child
    owns none of its parent's ExitSaves, so their SIGTERM handler gives way to the
    program's own and ``os._exit`` is the real one again; then the callbacks."""
    term_signal.repeat_again_in_child()
    inherited = list(_armed)
    _armed.clear()
    for exit_save in inherited:
        if exit_save._program_sigterm is not None:
            try:
                if term_signal.is_ours(signal.getsignal(signal.SIGTERM)):
                    signal.signal(signal.SIGTERM, exit_save._program_sigterm)
            except (ValueError, OSError):  # not the main thread
                pass
    if os._exit is _exit_with_save:
        os._exit = _real_os_exit
    for callback in _fork_callbacks:
        callback()


class _AfterForkers:
    """multiprocessing runs its after-fork hooks after it cleared the finalizers a child
    inherited (every start method, on some versions): an ExitSave armed in the child
    before that (a collection member) sets its finalizer again. Registered the first
    time a finalizer is (importing multiprocessing has side effects of its own)."""

    instance: Optional["_AfterForkers"] = None

    @classmethod
    def register(cls) -> None:
        if cls.instance is None:
            import multiprocessing.util  # start-up: at-exit saving only (and importing it has side effects)

            cls.instance = cls()
            multiprocessing.util.register_after_fork(cls.instance, cls.run)

    def run(self) -> None:
        for exit_save in _armed:
            if exit_save.pid == os.getpid() and exit_save._at_exit_owner is not None:
                import multiprocessing.util  # start-up: at-exit saving only (and importing it has side effects)

                multiprocessing.util.Finalize(exit_save._at_exit_owner, exit_save.save, exitpriority=-1)


os.register_at_fork(after_in_child=_after_fork_in_child)


# ---------------------------------------------------------------------- dying, printing

def die(signum: int, flush: bool = True) -> NoReturn:
    """End the process from ``signum``, as it would have ended untraced."""
    if flush:
        flush_std()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    _real_os_exit(128 + signum)  # only if the signal is blocked


def print_quietly(*args: Any, **kwargs: Any) -> None:
    try:
        print(*args, **kwargs)
    except Exception:
        pass


def flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            pass


@contextlib.contextmanager
def own_std_streams() -> Iterator[None]:
    """``sys.stdout``/``sys.stderr`` replaced by line-buffered streams on duplicates of
    file descriptors 1 and 2 (what the program had buffered is flushed first, when
    that is possible)."""
    saved = sys.stdout, sys.stderr
    opened = []
    for name, fd in (("stdout", 1), ("stderr", 2)):
        stream = getattr(sys, name)
        try:
            stream.flush()
        except Exception:
            pass
        try:
            new = open(os.dup(fd), "w", buffering=1, encoding=getattr(stream, "encoding", None) or "utf-8",
                       errors="backslashreplace")
        except (OSError, ValueError):
            continue
        setattr(sys, name, new)
        opened.append(new)
    try:
        yield
    finally:
        for new in opened:
            try:
                new.close()
            except Exception:
                pass
        sys.stdout, sys.stderr = saved
