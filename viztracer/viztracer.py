"""The :class:`VizTracer` class: options, start/stop, custom events and saving.

The recording itself happens in the native ``_snaptrace.Tracer`` this class owns;
everything here runs at most a few times per trace, except the small methods users
call to add their own events.
"""

from __future__ import annotations

import builtins
import io
import os
import sys
import warnings
import weakref
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from . import _snaptrace, audit, lifecycle, multiprocess, trace_writer, wire
from .file_info import build_file_info, functions_of_raw_events
from .lifecycle import ExitSave
from .options import (
    OPTIONS,
    attribute,
    check,
    check_bool,
    check_int,
    check_output_file,
    current_kwargs,
)
from .threads import current_task_info, name_new_thread, thread_names
from .util import add_pid_suffix, color_print, same_line_print
from .version import __version__
from .vizevent import VizEvent

_LIB_FILE_PATH = os.path.dirname(os.path.abspath(__file__)) + os.sep
_GLOBAL_NAME = "__viz_tracer__"

# Every live tracer, for the after-fork reset.
_instances: "weakref.WeakSet[VizTracer]" = weakref.WeakSet()
# The tracer collecting right now (only one can).
_collecting: Optional["weakref.ref[VizTracer]"] = None


def get_tracer() -> Optional["VizTracer"]:
    """The globally registered tracer (``register_global=True``), or None."""
    return builtins.__dict__.get(_GLOBAL_NAME)


class VizTracer:
    # The options (see viztracer/options.py): every attribute validates on assignment;
    # those the hot path reads live on the native tracer. tracer_entries,
    # log_func_with_objprint, log_gc and log_torch are the properties below; min_duration
    # is stored and read in ns, as upstream VizTracer's is.
    # generated: attributes (`make options` writes this block from viztracer/options.py)
    verbose: int = attribute()
    max_stack_depth: int = attribute()
    include_files: Optional[List[str]] = attribute()
    exclude_files: Optional[List[str]] = attribute()
    ignore_c_function: bool = attribute()
    ignore_frozen: bool = attribute()
    log_func_retval: bool = attribute()
    log_func_args: bool = attribute()
    log_func_repr: Optional[Callable[..., str]] = attribute()
    log_print: bool = attribute()
    log_sparse: bool = attribute()
    log_async: bool = attribute()
    log_audit: Optional[List[str]] = attribute()
    pid_suffix: bool = attribute()
    file_info: bool = attribute()
    trace_self: bool = attribute()
    min_duration: float = attribute()
    minimize_memory: bool = attribute()
    dump_raw: bool = attribute()
    sanitize_function_name: bool = attribute()
    process_name: Optional[str] = attribute()
    output_file: str = attribute()
    plugins: List[Any] = attribute()
    ignore_multiprocess: bool = attribute()
    report_endpoint: Optional[str] = attribute()
    report_timeout: float = attribute()
    fast_calls: bool = attribute()
    # end of generated: attributes

    # Set by _extras_init (declared here for the type checker: log_gc comes first).
    _gc_logger: Optional[Any]

    def __init__(
        self,
        # generated: parameters (`make options` writes this block from viztracer/options.py)
        tracer_entries: int = 1000000,
        verbose: int = 1,
        max_stack_depth: int = -1,
        include_files: Optional[List[str]] = None,
        exclude_files: Optional[List[str]] = None,
        ignore_c_function: bool = False,
        ignore_frozen: bool = False,
        log_func_retval: bool = False,
        log_func_args: bool = False,
        log_func_repr: Optional[Callable[..., str]] = None,
        log_func_with_objprint: bool = False,
        log_print: bool = False,
        log_gc: bool = False,
        log_sparse: bool = False,
        log_async: bool = False,
        log_torch: bool = False,
        log_audit: Optional[Sequence[str]] = None,
        pid_suffix: bool = False,
        file_info: bool = True,
        register_global: bool = True,
        trace_self: bool = False,
        min_duration: float = 0,
        minimize_memory: bool = False,
        dump_raw: bool = False,
        sanitize_function_name: bool = False,
        process_name: Optional[str] = None,
        output_file: str = "result.json",
        plugins: Optional[Sequence[Any]] = None,
        ignore_multiprocess: bool = True,
        report_endpoint: Optional[str] = None,
        report_timeout: float = 10.0,
        fast_calls: bool = False,
        # end of generated: parameters
    ) -> None:
        # The parameters are the option table's, assigned in its order.
        args = dict(locals())
        self._tracer = _snaptrace.Tracer(check("tracer_entries", tracer_entries))
        self._tracer.lib_file_path = _LIB_FILE_PATH
        self._tracer.thread_namer = name_new_thread
        self.enable = False
        self.parsed = False
        self.total_entries = 0
        self._snapshot: Optional[Any] = None
        self._data: Optional[Dict[str, Any]] = None
        self._fixed_pid: Optional[int] = None
        self._afterfork: Optional[Tuple[Callable, tuple, dict]] = None
        self._membership: Optional[Any] = None  # multiprocess.Membership in a collection
        self._log_torch = False
        self._log_func_with_objprint = False
        self._extras_init()
        self.cwd = os.getcwd()
        self._exiting = False
        self._exit_saver: Optional[ExitSave] = None  # see _exit_save
        self._forking_to_save: Optional[int] = None  # the parent's pid, during fork_save
        self.system_print = builtins.print

        for spec in OPTIONS:
            if spec.store not in ("attr", "property"):
                continue
            if spec.name == "log_func_repr" and log_func_repr is not None and log_func_with_objprint:
                raise ValueError("log_func_repr and log_func_with_objprint can't be both set")
            setattr(self, spec.name, args[spec.name])
        if self.report_endpoint is None and os.environ.get(wire.ENV_ENDPOINT):
            try:
                self.report_endpoint = os.environ[wire.ENV_ENDPOINT]
            except ValueError as e:
                raise ValueError(f"{e} (from ${wire.ENV_ENDPOINT})") from None
        if check("register_global", register_global):
            self.register_global()
        _instances.add(self)
        self._plugins_init()

    # ------------------------------------------------------------------ options

    @property
    def tracer_entries(self) -> int:
        """Capacity of the event buffer (fixed at construction)."""
        return self._tracer.tracer_entries

    @property
    def lib_file_path(self) -> str:
        return _LIB_FILE_PATH

    @property
    def log_func_with_objprint(self) -> bool:
        return self._log_func_with_objprint

    @log_func_with_objprint.setter
    def log_func_with_objprint(self, value: bool) -> None:
        value = check("log_func_with_objprint", value)
        if value:
            try:
                import objprint  # optional: objprint (and start-up)
            except ImportError:
                raise ModuleNotFoundError("log_func_with_objprint needs the objprint package: pip install objprint",
                                          name="objprint") from None
            self.log_func_repr = objprint.objstr
        elif self._log_func_with_objprint:
            self.log_func_repr = None
        self._log_func_with_objprint = value

    @property
    def log_torch(self) -> bool:
        return self._log_torch

    @log_torch.setter
    def log_torch(self, value: bool) -> None:
        value = check("log_torch", value)
        if value:
            try:
                import torch  # noqa: F401  # optional: torch
            except ImportError:
                raise ModuleNotFoundError("torch is not installed: log_torch needs PyTorch", name="torch") from None
        self._log_torch = value

    @property
    def log_gc(self) -> bool:
        """Record cyclic garbage collections (see ``extra_log.GcLogger``)."""
        return self._gc_logger is not None

    @log_gc.setter
    def log_gc(self, value: bool) -> None:
        if check("log_gc", value):
            if self._gc_logger is None:
                from .extra_log import GcLogger  # start-up: log_gc only (extra_log imports tempfile)
                self._gc_logger = GcLogger(self)
                if self.enable:
                    self._gc_logger.install()
        elif self._gc_logger is not None:
            self._gc_logger.uninstall()
            self._gc_logger = None

    @property
    def init_kwargs(self) -> Dict[str, Any]:
        """The constructor arguments that reproduce this tracer's options as they are
        now (``min_duration`` in µs; not the ``log_func_repr`` function, nor plugins)."""
        return current_kwargs(self)

    def _check_filters(self) -> None:
        """Both filters may be set on the way to a configuration (then one cleared);
        only starting with both is an error."""
        if self.include_files and self.exclude_files:
            raise ValueError("include_files and exclude_files can't be both specified!")

    # ------------------------------------------------------------------ control

    def register_global(self) -> None:
        """Make this tracer the one ``get_tracer()`` returns."""
        builtins.__dict__[_GLOBAL_NAME] = self

    def start(self) -> None:
        """Start recording."""
        global _collecting
        if self.enable:
            return
        self._check_filters()
        self.parsed = False
        self._snapshot = None
        self._data = None
        self._plugin_event("pre-start")
        if self._membership is None:
            member = next((t for t in _instances if t is not self and t._membership is not None
                           and t._membership.tree is None and t._membership.local is None), None)
            if member is not None:
                multiprocess.take_over(self, member)
        if (not self.ignore_multiprocess or self.report_endpoint is not None) and self._membership is None:
            # Also in log_sparse mode: the children's @log_sparse events are collected.
            multiprocess.start_collection(self)
        if self.log_sparse:
            return
        self._extras_start()
        previous = _collecting() if _collecting is not None else None
        self._tracer.log_func_repr = self.log_func_repr
        if self.log_async:
            self._tracer.task_getter = current_task_info
        if self.log_audit is not None:
            audit.log_events(self, self.log_audit)
        self.enable = True
        try:
            alone = self._tracer.start()
        except BaseException:
            self.enable = False
            self._extras_stop()
            raise
        if not alone and previous is not None and previous is not self:
            previous.enable = False
            color_print("YELLOW", "Warning! Overwrite tracer! You should not have two VizTracer recording "
                                  "at the same time!", file=sys.stderr)
        _collecting = weakref.ref(self)

    def stop(self, stop_option: Optional[str] = None) -> None:
        """Stop recording. With ``stop_option="flush_as_finish"`` functions still running
        are recorded as finished now; otherwise they are recorded as begun (``B``)."""
        if stop_option not in (None, "flush_as_finish"):
            raise ValueError(f"stop_option must be None or 'flush_as_finish', not {stop_option!r}")
        if not self.enable:
            return
        self.enable = False
        self._tracer.stop(flush_as_finish=stop_option == "flush_as_finish")
        if self.log_audit is not None:
            audit.log_events(None)
        self._extras_stop()
        self._plugin_event("post-stop")

    def pause(self) -> None:
        """Stop recording on the calling thread until :meth:`resume`."""
        self._tracer.pause()

    def resume(self) -> None:
        self._tracer.resume()

    def clear(self) -> None:
        """Drop everything recorded so far."""
        self._tracer.clear()
        self.parsed = False
        self._snapshot = None
        self._data = None
        self.total_entries = 0

    def reset_stack(self) -> None:
        self._tracer.reset_stack()

    def enable_thread_tracing(self) -> None:
        """Trace the calling thread. Needed only on Python < 3.12, for threads not
        started through ``threading`` after :meth:`start`."""
        self._tracer.enable_thread_tracing()

    def run(self, command: str, output_file: Optional[str] = None) -> None:
        """Trace ``command`` (Python source, run in the caller's namespace) and save."""
        frame = sys._getframe(1)
        self.start()
        try:
            exec(command, frame.f_globals, frame.f_locals)
        finally:
            self.stop()
            self.save(output_file)

    def __enter__(self) -> "VizTracer":
        self.start()
        return self

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        self.stop()
        self.save()
        self.terminate()
        if builtins.__dict__.get(_GLOBAL_NAME) is self:
            del builtins.__dict__[_GLOBAL_NAME]

    def terminate(self) -> None:
        """Tell plugins the tracer is done (nothing to do without plugins)."""
        if self._plugin_manager is not None:
            self._plugin_manager.terminate()

    def register_exit(self) -> None:
        """Save the trace when the process ends: at interpreter exit (also after
        ``sys.exit`` or an uncaught exception), at ``os._exit``, before ``os.exec*`` and
        on SIGTERM (see lifecycle.py). After saving on SIGTERM the process still dies
        from that signal, so its exit status is unchanged."""
        self.cwd = os.getcwd()
        self._exit_save().arm(at_exit=True, owner=self)

    def _exit_save(self) -> ExitSave:
        """This tracer's ExitSave in this process (a forked child gets a new one)."""
        if self._exit_saver is None or self._exit_saver.pid != os.getpid():
            self._exit_saver = ExitSave(self.exit_routine)
        return self._exit_saver

    def exit_routine(self) -> None:
        """Stop (functions still running end now) and save, once."""
        if self._exiting:
            return
        self._exiting = True
        self.stop(stop_option="flush_as_finish")
        try:
            os.chdir(self.cwd)
        except OSError:
            pass
        self.save()
        self.terminate()

    def install(self) -> None:
        """Let another process start and stop this tracer: SIGUSR1 starts it, SIGUSR2
        stops it and saves to ``output_file`` (``viztracer --attach_installed PID``
        sends them). Call from the main thread."""
        from . import installed  # start-up: install() only

        installed.install(self)

    def set_afterfork(self, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run ``callback(tracer, *args, **kwargs)`` in forked child processes."""
        if not callable(callback):
            raise TypeError(f"set_afterfork needs a callable, not {callback!r}")
        self._afterfork = (callback, args, kwargs)

    def join_collection(self, config: Dict[str, Any]) -> None:
        """Make this tracer (in a child process) send its trace to the collector of
        the process tree ``config`` describes (see tree_env.py)."""
        multiprocess.join_collection(self, config)

    def fork_save(self, output_file: Optional[str] = None) -> Any:
        """Save what has been recorded so far to ``output_file`` (default: the
        ``output_file`` option) from a forked child process, under this process's pid,
        while this process goes on tracing. Returns the child, a started
        ``multiprocessing.Process``: ``join()`` it to know the file is complete. Needs
        multiprocessing's ``fork`` start method."""
        import multiprocessing  # start-up: fork_save only (and importing it has side effects)

        # (The default is the first of get_all_start_methods; asking get_start_method
        # would fix it for the whole program.)
        method = multiprocessing.get_start_method(allow_none=True) or multiprocessing.get_all_start_methods()[0]
        if method != "fork":
            raise RuntimeError(f"fork_save needs multiprocessing's 'fork' start method, and this program uses "
                               f"{method!r}: call multiprocessing.set_start_method('fork') first")
        if output_file is not None:
            output_file = check_output_file("output_file", output_file)
        self._forking_to_save = os.getpid()
        try:
            child = multiprocessing.Process(target=self.save, kwargs={"output_file": output_file}, daemon=False)
            child.start()
        finally:
            self._forking_to_save = None
        return child

    def _after_fork_in_child(self) -> None:
        if self._forking_to_save is not None:
            # A fork_save child: it keeps the parent's events, stops recording (what
            # is still running is written as begun) and saves them as the parent's.
            self._fixed_pid = self._forking_to_save
            self._forking_to_save = None
            multiprocess.leave_in_child(self)  # its file is its own, not part of a collection
            self.stop()
            return
        self._tracer.after_fork()
        self._exiting = False
        self._snapshot = None
        self._data = None
        self.parsed = False
        # (lifecycle.py gave the child the program's own SIGTERM handling back.)
        if self._membership is not None:
            multiprocess.after_fork(self)
        if self._afterfork is not None:
            callback, args, kwargs = self._afterfork
            callback(self, *args, **kwargs)

    def setpid(self, pid: int = -1) -> None:
        """Fix the pid written in the trace (``-1``: the current one; ``0``: follow the
        live pid again)."""
        pid = check_int("pid", pid)
        self._fixed_pid = None if pid == 0 else (os.getpid() if pid < 0 else pid)

    # ------------------------------------------------------------------ time

    def getts(self) -> float:
        """Now, in µs, on the clock of the events."""
        return self._tracer.getts()

    def get_base_time(self) -> int:
        """Wall-clock ns minus monotonic ns: ``ts * 1000 + base_time`` is epoch ns."""
        return self._tracer.get_base_time()

    def set_sync_marker(self) -> None:
        """Mark "now" as the point where traces of several runs line up (--align_combine)."""
        if not self._tracer.set_sync_marker():
            warnings.warn("Synchronization marker already set", RuntimeWarning, stacklevel=2)

    def get_sync_marker(self) -> Optional[float]:
        return self._tracer.get_sync_marker()

    # ------------------------------------------------------------------ custom events

    def add_instant(self, name: str, args: Any = None, scope: str = "g") -> None:
        """Instant event; ``scope`` is ``"g"`` (global), ``"p"`` (process) or ``"t"`` (thread)."""
        if scope not in ("g", "p", "t"):
            raise ValueError("Scope must be one of 'g', 'p', 't'")
        self._tracer.add_instant(name, args, scope)

    def add_counter(self, name: str, args: Dict[str, Any]) -> None:
        """Counter event: ``args`` maps series names to numbers."""
        if not isinstance(args, dict):
            raise TypeError(f"add_counter args must be a dict of numbers, not {type(args).__name__}")
        self._tracer.add_counter(name, args)

    def add_object(self, ph: str, obj_id: str, name: str, args: Any = None) -> None:
        """Object event (``ph`` N: created, O: snapshot, D: destroyed)."""
        self._tracer.add_object(ph, obj_id, name, args)

    def add_raw(self, raw: Dict[str, Any]) -> None:
        """A Chrome trace event dict, written as given (pid and tid filled in)."""
        if not isinstance(raw, dict):
            raise TypeError(f"add_raw needs a dict, not {type(raw).__name__}")
        self._tracer.add_raw(raw)

    def add_func_args(self, *args: Any, **kwargs: Any) -> None:
        """``add_func_args(key, value)``: attach ``key: value`` to the args of the
        function that is running (shown when the event is clicked). The older form
        ``add_func_args(name, key, value)`` is accepted too."""
        if len(args) == 3 and not kwargs:
            args = args[1:]
        params = dict(zip(("key", "value"), args), **kwargs)
        if set(params) != {"key", "value"}:
            raise TypeError("add_func_args takes a key and a value")
        self._tracer.add_func_args(params["key"], params["value"])

    def get_func_args(self) -> Optional[Dict[str, Any]]:
        return self._tracer.get_func_args()

    def add_func_exec(self, name: str, val: Any, lineno: int) -> None:
        """Append ``"(<lineno>) <name> = <val>"`` to the running function's exec steps."""
        if not self.enable:
            return
        func_args = self._tracer.get_func_args(create=True)
        if func_args is not None:
            func_args.setdefault("exec_steps", []).append(f"({lineno}) {name} = {val}")

    def add_variable(self, name: str, var: Any, event: str = "instant") -> None:
        """Record a variable: ``event="instant"`` shows ``name = repr(var)``,
        ``event="counter"`` plots a number."""
        if event not in ("instant", "counter"):
            raise ValueError(f"{event} is not supported")
        if not self.enable:
            return
        if event == "instant":
            self._tracer.add_instant(f"{name} = {var!r}", None, "p")
        else:
            if isinstance(var, bool) or not isinstance(var, (int, float)):
                raise ValueError(f"{name}({var}) is not a number")
            self._tracer.add_counter(name, {name: var})

    def log_instant(self, name: str, args: Any = None, scope: str = "t", cond: bool = True) -> None:
        if cond:
            self.add_instant(name, args, scope)

    def log_var(self, name: str, var: Any, cond: bool = True) -> None:
        """Numbers become a counter, anything else an instant showing the value."""
        if not cond:
            return
        if isinstance(var, (int, float)) and not isinstance(var, bool):
            self.add_counter(name, {"value": var})
        else:
            try:
                from objprint import objstr  # optional: objprint (and start-up)
                text = objstr(var, color=False)
            except ImportError:
                text = repr(var)
            self.add_instant(name, {"object": text}, scope="t")

    def log_event(self, event_name: str) -> VizEvent:
        """``with tracer.log_event("name"): ...`` records the block as one event."""
        caller = sys._getframe(1)
        return VizEvent(self, event_name, caller.f_code.co_filename, caller.f_lineno)

    def shield_ignore(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``func`` so that it is traced even though it is called from viztracer code."""
        return self._tracer.shield(func, args, kwargs)

    # ------------------------------------------------------------------ results

    def parse(self) -> int:
        """Stop and collect the recorded events; returns how many there are."""
        self.stop()
        if not self.parsed:
            self._snapshot = self._tracer.snapshot()
            self._data = None
            self.total_entries = self._snapshot.entries
            self.parsed = True
        return self.total_entries

    @property
    def data(self) -> Dict[str, Any]:
        """The parsed trace as a dict (built on first access; empty before :meth:`parse`)."""
        if self._data is None:
            if self._snapshot is None:
                return {}
            snap = self._snapshot
            events = snap.to_events(self._pid(), self._process_name(),
                                    thread_names(snap.threads(), snap.task_names()))
            self._data = {"traceEvents": events, "viztracer_metadata": self._metadata(snap.overflow)}
        return self._data

    @data.setter
    def data(self, value: Dict[str, Any]) -> None:
        self._data = value

    def load(self) -> List[Dict[str, Any]]:
        """Take the recorded events out as a list of dicts."""
        snap = self._tracer.snapshot()
        return snap.to_events(self._pid(), self._process_name(),
                              thread_names(snap.threads(), snap.task_names()))

    def _pid(self) -> int:
        return self._fixed_pid if self._fixed_pid is not None else os.getpid()

    def _process_name(self) -> str:
        if self.process_name is not None:
            return self.process_name
        mp = sys.modules.get("multiprocessing")
        name = "MainProcess"
        if mp is not None:
            try:
                name = mp.current_process().name
            except Exception:
                pass
        membership = self._membership
        if name == "MainProcess" and membership is not None and membership.tree is None and membership.local is None:
            # A child process of a tree, or a process sending to a collector: name it
            # after its command line.
            from .child import forked_label, process_label  # cycle: child.py imports VizTracer
            return forked_label() if membership.forked else process_label()
        return name

    def _metadata(self, overflow: bool, ts_offset_ns: int = 0) -> Dict[str, Any]:
        """``viztracer_metadata``; with timestamps moved by ``ts_offset_ns`` (onto a
        collector's clock), the sync marker moves with them and the base time against them."""
        meta: Dict[str, Any] = {
            "version": __version__,
            "overflow": bool(overflow),
            "baseTimeNanoseconds": self.get_base_time() - ts_offset_ns,
        }
        marker = self.get_sync_marker()
        if marker is not None:
            meta["sync_marker"] = marker + ts_offset_ns / 1000
        return meta

    def save(self, output_file: Optional[str] = None, file_info: Optional[bool] = None,
             verbose: Optional[int] = None) -> None:
        """Write the trace to ``output_file`` (default: the ``output_file`` option).
        ``.json`` and ``.json.gz`` are written natively, streaming. The file is
        replaced only once complete: if the save fails, ``trace_writer.SaveError`` (an
        OSError, with a one-line message) is raised and the file is as it was."""
        if output_file is None:
            output_file = self.output_file
        output_file = check_output_file("output_file", output_file)
        file_info = self.file_info if file_info is None else check_bool("file_info", file_info)
        verbose = self.verbose if verbose is None else check_int("verbose", verbose)
        if self.pid_suffix:
            output_file = add_pid_suffix(output_file, self._pid())
        path = os.path.abspath(output_file)
        trace_writer.make_parent_dir(path)
        self._extras_before_save()

        if self._membership is not None:
            multiprocess.save(self, path, file_info, verbose)
            return
        self._save_to(path, file_info, verbose)

    def save_report(self, output_file: Any, file_info: Optional[bool] = None,
                    verbose: Optional[int] = None) -> None:
        """Write this process's own trace to ``output_file`` (a path, whose missing
        folders are made, or a text or binary stream), whatever collection it is part of."""
        file_info = self.file_info if file_info is None else check_bool("file_info", file_info)
        verbose = self.verbose if verbose is None else check_int("verbose", verbose)
        self._extras_before_save()
        if hasattr(output_file, "write"):
            self._write_stream(output_file, file_info)
            return
        path = os.path.abspath(check_output_file("output_file", output_file))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self._save_to(path, file_info, verbose)

    def _write_stream(self, stream: Any, file_info: bool) -> None:
        chunks: List[bytes] = []
        self._send_trace(chunks.append, file_info, 0, compress=False)
        for chunk in chunks:
            stream.write(chunk if not isinstance(stream, io.TextIOBase) else chunk.decode("utf-8"))

    def _send_trace(self, sink: Callable[[bytes], Any], file_info: bool, ts_offset_ns: int,
                    compress: bool = True) -> int:
        """Give this process's trace file to ``sink`` a piece at a time, gzip-compressed
        (unless not ``compress``), every timestamp moved by ``ts_offset_ns`` (a sender's
        offset to its collector's clock); returns the number of events."""
        if self._data is not None:
            from .report_builder import ReportBuilder  # start-up: changed data only (report_builder imports gzip)
            report = ReportBuilder(self._data, verbose=0, base_time=self.get_base_time()).prepare_json(file_info)
            return trace_writer.stream_report(report, sink, ts_offset_ns, compress)
        self.parse()
        assert self._snapshot is not None  # parse() took one
        snap = self._snapshot
        return trace_writer.stream_snapshot(
            snap, sink, compress=compress, chunk_size=wire.CHUNK, pid=self._pid(), process_name=self._process_name(),
            thread_names=thread_names(snap.threads(), snap.task_names()),
            metadata=self._metadata(snap.overflow, ts_offset_ns), file_info=self._file_info(snap, file_info),
            ts_offset_ns=ts_offset_ns)

    def _file_info(self, snap: Any, wanted: bool) -> Optional[Dict[str, Any]]:
        if not wanted:
            return None
        return build_file_info(snap.functions() + functions_of_raw_events(snap.raw_events()))

    def _save_to(self, path: str, file_info: bool, verbose: int) -> None:
        """Write this process's trace to ``path`` (absolute, its folder exists)."""
        if self._data is not None:
            # The data was materialised (and maybe changed): build the report from it.
            from .report_builder import ReportBuilder  # start-up: changed data only (report_builder imports gzip)
            ReportBuilder(self._data, verbose=0, minimize_memory=self.minimize_memory,
                          base_time=self.get_base_time()).save(path, file_info=file_info)
            count = sum(1 for e in self._data.get("traceEvents", []) if e.get("ph") != "M")
            overflow = bool(self._data.get("viztracer_metadata", {}).get("overflow"))
        else:
            if self.dump_raw and self.enable:
                # Raw dump: take the events out and keep tracing.
                snap = self._tracer.snapshot()
            else:
                self.parse()
                assert self._snapshot is not None  # parse() took one
                snap = self._snapshot
            count = self._write_snapshot(snap, path, file_info, verbose)
            overflow = snap.overflow
        if verbose > 0:
            self._print_saved(path, count, overflow)

    def _write_snapshot(self, snap: Any, path: str, file_info: bool, verbose: int) -> int:
        info = self._file_info(snap, file_info)
        show_progress = verbose > 0 and snap.entries >= 2_000_000 and sys.stdout.isatty()
        progress = _print_progress if show_progress else None
        count = trace_writer.write_snapshot(
            snap, path, pid=self._pid(), process_name=self._process_name(),
            thread_names=thread_names(snap.threads(), snap.task_names()),
            metadata=self._metadata(snap.overflow), file_info=info, progress=progress)
        if progress is not None:
            same_line_print("")
        return count

    def _print_saved(self, path: str, count: int, overflow: bool) -> None:
        if overflow:
            color_print("YELLOW", "Circular buffer is full, you lost some early data, but you still "
                                  "have the most recent data. Use a larger tracer_entries to keep more.")
        shown = f'"{path}"' if " " in path else path
        print(f"Saved {count} trace entries to {shown} (view it with: vizviewer {shown})")

    # ------------------------------------------------------------------ plugins, log_print, log_gc, log_torch
    # (the objects doing the work live in vizplugin.py and extra_log.py)

    def _extras_init(self) -> None:
        self._gc_logger = None
        self._print_logger: Optional[Any] = None
        self._torch_profiler: Optional[Any] = None
        self._torch_merged_into: Optional[Dict[str, Any]] = None
        self._plugin_manager: Optional[Any] = None
        self._global_before = get_tracer()  # until the plugins are loaded

    def _plugins_init(self) -> None:
        if self.plugins:
            from .vizplugin import VizPluginManager  # start-up: plugins only

            try:
                self._plugin_manager = VizPluginManager(self, self.plugins)
            except BaseException:
                # The constructor fails: give the global name back to its previous tracer.
                if builtins.__dict__.get(_GLOBAL_NAME) is self:
                    if self._global_before is not None:
                        builtins.__dict__[_GLOBAL_NAME] = self._global_before
                    else:
                        del builtins.__dict__[_GLOBAL_NAME]
                raise
            finally:
                self._global_before = None
        self._global_before = None

    def _plugin_event(self, when: str) -> None:
        if self._plugin_manager is not None:
            self._plugin_manager.event(when)

    def _extras_start(self) -> None:
        """Before the native start: the gc callback, the torch profiler, then the print hook."""
        if self._gc_logger is not None:
            self._gc_logger.install()
        if self.log_torch:
            from .extra_log import TorchProfiler  # start-up: log_torch only (extra_log imports tempfile)
            self._torch_profiler = TorchProfiler()
            self._torch_profiler.start()
            self._torch_merged_into = None
        else:
            self._torch_profiler = None
        if self.log_print:
            if self._print_logger is None:
                from .extra_log import PrintLogger  # start-up: log_print only (extra_log imports tempfile)
                self._print_logger = PrintLogger(self)
            self._print_logger.install()

    def _extras_stop(self) -> None:
        if self._gc_logger is not None:
            self._gc_logger.uninstall()
        if self._print_logger is not None:
            self._print_logger.uninstall()
        if self._torch_profiler is not None:
            self._torch_profiler.stop()

    def _extras_before_save(self) -> None:
        """With plugins or torch events the report is built from ``self.data``: parse,
        let plugins see (and change) the data, merge the torch events."""
        if self._plugin_manager is None and self._torch_profiler is None:
            return
        self.parse()
        self._plugin_event("pre-save")
        if self._torch_profiler is not None and self._torch_merged_into is not self.data:
            data = self.data
            data.setdefault("traceEvents", []).extend(self._torch_profiler.events(self.get_base_time()))
            self._torch_merged_into = data


def _print_progress(done: int, total: int) -> None:
    same_line_print(f"Saving trace data: {done}/{total} events")


def _after_fork_in_child() -> None:
    for tracer in list(_instances):
        try:
            tracer._after_fork_in_child()
        except Exception as e:  # never break the child because of the tracer
            print(f"VizTracer: after-fork reset failed: {e!r}", file=sys.stderr)
    if _collecting is not None and _collecting() is not None:
        ProcessStart.watch()


class ProcessStart:
    """Where a ``multiprocessing`` child starts. A forked child's tracer forgets the
    stack it inherited, so its depth counts from the frame that called ``os.fork()``,
    as the parent's counts from the frame that called ``start()``. A multiprocessing
    child (fork, forkserver) runs its program from ``Process._bootstrap``, the child's
    first frame of its own, which calls multiprocessing's after-fork hooks before
    ``run()``: there the tracer forgets the stack again, so ``_bootstrap`` and the fork
    machinery that called it are not recorded, ``run()`` is at depth 1 and the target
    at 2, however deep the parent was when it started the process."""

    _instance: Optional["ProcessStart"] = None

    @classmethod
    def watch(cls) -> None:
        """Called in a forked child: from now on (and in the children it forks, which
        inherit the registration), a ``Process._bootstrap`` resets the depth."""
        mp_util = sys.modules.get("multiprocessing.util")
        if cls._instance is not None or mp_util is None:
            return
        cls._instance = cls()
        mp_util.register_after_fork(cls._instance, cls.bootstrapping)

    def bootstrapping(self) -> None:
        tracer = _collecting() if _collecting is not None else None
        if tracer is not None and tracer._tracer.is_collecting:
            tracer._tracer.reset_stack()


lifecycle.on_fork_in_child(_after_fork_in_child)
