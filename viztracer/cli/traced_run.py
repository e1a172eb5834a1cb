"""Running a :class:`~viztracer.cli.program.Program` under a tracer the way Python
runs it untraced, and saving the trace exactly once however it ends."""

from __future__ import annotations

import atexit
import builtins
import os
import signal
import sys
import threading
from typing import Any, Callable, List, Optional

from ..lifecycle import ExitSave, flush_std, print_quietly
from ..util import add_pid_suffix
from .program import Program, install_path0


class TracedRun:
    """Runs a :class:`Program` under ``tracer`` as Python would run it, and saves the
    trace once.

    Python's own order at the end of a program is kept: the traceback or the
    ``sys.exit`` message, then ``threading`` exit callbacks (newest first) and the
    join of non-daemon threads, then ``atexit`` callbacks; the trace is saved after
    all of them, and the exit status is the program's (but 1 instead of 0 when the
    trace could not be saved). Unless ``log_exit``, recording stops as soon as the
    top-level code is done."""

    def __init__(self, tracer: Any, program: Program, log_exit: bool = False,
                 open_viewer: bool = False) -> None:
        self.tracer = tracer
        self.program = program
        self.log_exit = log_exit
        self.open_viewer = open_viewer
        self.save_failed = False
        # Saves once, on os._exit, os.exec*, SIGTERM or at the end of run().
        self.exit_save = ExitSave(self._save)

    # ---------------------------------------------------------------- setting up

    def install_program(self) -> None:
        """``sys.argv``, ``sys.path[0]`` and ``sys.modules['__main__']`` as python sets
        them; the instrumenting compiler as ``builtins.compile`` (for what the
        program compiles or imports of its own file), until :meth:`run` ends."""
        program = self.program
        install_path0(program.path0)
        sys.argv[:] = program.argv
        sys.modules["__main__"] = program.module
        if program.compiler is not None:
            self._real_compile = builtins.compile
            builtins.compile = program.compiler

    def uninstall_compiler(self) -> None:
        # (A compile the program put in place itself is the program's to keep.)
        if self.program.compiler is not None and builtins.compile is self.program.compiler:
            builtins.compile = self._real_compile

    # ---------------------------------------------------------------- running

    def run(self) -> int:
        """Runs the program to its end; returns its exit status (or re-raises a
        KeyboardInterrupt that ended it, after saving)."""
        try:
            return self._run()
        finally:
            # The program is over: whoever calls the CLI in-process (a test) goes on
            # with the real compile, os._exit and SIGTERM handler.
            self.uninstall_compiler()
            self.exit_save.disarm()

    def _run(self) -> int:
        self.install_program()
        self.exit_save.arm()
        # Exit callbacks registered before the program started belong to whoever calls
        # the command line in its own process (a test runner, a notebook): they stay.
        host_threading_atexits = len(getattr(threading, "_threading_atexits", ()))
        host_has_atexits = atexit._ncallbacks() > 0
        host_threads = threading.enumerate()
        tracer = self.tracer
        code, main_globals = self.program.code, self.program.globals
        error: Optional[BaseException] = None
        # The exec call and the program below it are recorded; this frame is not.
        tracer.start()
        try:
            exec(code, main_globals)
        except BaseException as e:  # noqa: B036 - everything the program raises is reported like python does
            error = e
        if not self.log_exit:
            tracer.stop(stop_option="flush_as_finish")
        status = self.report_end(error)
        interrupted = isinstance(error, KeyboardInterrupt)
        error = None

        # Interpreter shutdown, in Python's order; called from this frame so that it is
        # recorded with --log_exit.
        was_shutting_down = getattr(threading, "_SHUTTING_DOWN", None)
        for callback in self.take_threading_atexits(host_threading_atexits):
            try:
                callback()
            except Exception:
                self.print_exception()
        if was_shutting_down is not None:
            threading._SHUTTING_DOWN = was_shutting_down  # type: ignore[attr-defined]
        try:
            for thread in self.threads_to_join(host_threads):
                thread.join()
        except KeyboardInterrupt:
            pass
        if not host_has_atexits:
            atexit._run_exitfuncs()
        # (else the program's atexit callbacks run when the calling process exits, as
        # those of any code it runs do: atexit can't run some of its callbacks alone)

        self.exit_save.save()  # (a signal that came meanwhile ends the process here)
        self.save_failed = self.save_failed or self.exit_save.failed
        if self.save_failed and status == 0:
            status = 1  # the program's own failure says more; success without a trace is not one
        if self.open_viewer and not self.save_failed and self.tracer.report_endpoint is None:
            open_in_viewer(self.saved_path())
        if interrupted:
            raise_keyboard_interrupt_quietly()
        return status

    def report_end(self, error: Optional[BaseException]) -> int:
        """Print what python prints when a program ends with ``error``; returns the status."""
        if error is None:
            return 0
        if isinstance(error, SystemExit):
            code = error.code
            if code is None:
                return 0
            if isinstance(code, int):
                return code
            flush_std()
            try:
                sys.stderr.write(f"{code}\n")
            except Exception:
                pass
            return 1
        tb = error.__traceback__
        if tb is not None:
            tb = tb.tb_next  # this module's frame (the exec call)
        error.__traceback__ = tb
        try:
            sys.last_type, sys.last_value, sys.last_traceback = type(error), error, tb
            if sys.version_info >= (3, 12):
                sys.last_exc = error
        except Exception:
            pass
        flush_std()
        try:
            sys.excepthook(type(error), error, tb)
        except BaseException:
            import traceback  # program: the traced program must not find it imported
            traceback.print_exception(type(error), error, tb)
        return 1

    @staticmethod
    def print_exception() -> None:
        import traceback  # program: the traced program must not find it imported
        traceback.print_exc()

    @staticmethod
    def take_threading_atexits(keep: int = 0) -> List[Callable[[], Any]]:
        """The ``threading`` exit callbacks after the first ``keep`` (the caller's own),
        newest first (as threading runs them), removed."""
        callbacks = getattr(threading, "_threading_atexits", None)
        if not callbacks or len(callbacks) <= keep:
            return []
        taken = list(reversed(callbacks[keep:]))
        del callbacks[keep:]
        if hasattr(threading, "_SHUTTING_DOWN"):
            threading._SHUTTING_DOWN = True
        return taken

    @staticmethod
    def threads_to_join(hosts: Any = ()) -> Any:
        """Non-daemon threads still running, as python waits for them before atexit
        (not ``hosts``: the threads of whoever runs the command line in-process)."""
        main = threading.main_thread()
        seen = set(hosts)
        while True:
            left = [t for t in threading.enumerate()
                    if t is not main and not t.daemon and t.is_alive() and t not in seen
                    and t is not threading.current_thread()]
            if not left:
                return
            for t in left:
                seen.add(t)
                yield t

    # ---------------------------------------------------------------- saving

    def saved_path(self) -> str:
        path = self.tracer.output_file
        if self.tracer.pid_suffix:
            path = add_pid_suffix(path, os.getpid())
        return os.path.abspath(path)

    def _save(self) -> None:
        """Stop recording and write the trace (``self.exit_save`` calls it once).

        Ctrl+C while saving cuts short what can be cut short (the wait for child
        processes saves without them); the process then ends as interrupted."""
        stdout = sys.stdout
        try:
            if stdout is None or getattr(stdout, "closed", False):
                sys.stdout = sys.__stdout__ if sys.__stdout__ is not None and not sys.__stdout__.closed \
                    else open(os.devnull, "w")
            try:
                self.tracer.exit_routine()
            except KeyboardInterrupt:
                self.exit_save.pending_signal = signal.SIGINT
                self.save_failed = not os.path.exists(self.saved_path())
                print_quietly("VizTracer: interrupted while saving the trace", file=sys.stderr)
            except BrokenPipeError:
                # Nobody reads our summary any more (``viztracer prog.py | head``); the
                # trace itself is written before it is printed.
                self.save_failed = not os.path.exists(self.saved_path())
            # (any other error goes on to self.exit_save, which says it in one line)
        finally:
            flush_std()
            sys.stdout = stdout


def raise_keyboard_interrupt_quietly() -> None:
    """End the process as an uncaught KeyboardInterrupt does (killed by SIGINT after
    finalization), without printing the traceback a second time."""
    sys.excepthook = lambda *args: None
    raise KeyboardInterrupt


def open_in_viewer(path: str) -> None:
    import subprocess  # program: --open only, and the program must not find it imported

    # Port 0: any free port (the browser is sent to it), so a vizviewer already
    # running on the default port is no obstacle.
    subprocess.run([sys.executable, "-m", "viztracer.viewer", "--once", "--port", "0", path])
