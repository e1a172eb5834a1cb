# Type stub of the native module (rust/). The Python package wraps it: users call
# viztracer.VizTracer, not these classes.

import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, final

__all__ = [
    "Tracer", "Snapshot", "install_sigterm_repeater", "sigterm_received", "FAST_FRAME_ACCESS", "BACKEND", "VERSION",
]
if sys.version_info >= (3, 12):
    __all__ += ["_global_call_sites", "_call_site_stats", "_call_site_opcodes"]

FAST_FRAME_ACCESS: bool
"""Whether the running frame's globals are read directly (3.12+; the layout is checked
at import). Always true before 3.12, where nothing is read from frames directly."""
BACKEND: str
"""``"sys.monitoring"`` (3.12+) or ``"setprofile"`` (3.9-3.11)."""
VERSION: str
"""The package version (Cargo.toml's, the one place it is written): what
``viztracer.__version__`` and the wheel's metadata say."""

def install_sigterm_repeater() -> bool:
    """Put a C handler in front of the SIGTERM handler just set with ``signal.signal``
    that repeats the signal until ``sigterm_received()`` is called."""

def sigterm_received() -> None:
    """The Python SIGTERM handler runs: the signal need not be repeated."""

if sys.version_info >= (3, 12):
    def _global_call_sites(code: Any) -> List[Tuple[int, str]]:
        """For tests: ``(offset, name)`` of the call sites of a code object whose callee
        is a global, as the safe CALL-event disabling sees them."""

    def _call_site_opcodes() -> List[int]:
        """For tests: the opcode numbers the call-site analysis models."""

    def _call_site_stats() -> Tuple[int, int]:
        """For tests: ``(call sites disabled, events restarted)`` in the current or
        last tracing session."""

@final
class Tracer:
    """The native recorder: hooks, per-thread buffers and options."""

    def __new__(cls, tracer_entries: int = 1_000_000) -> Tracer: ...
    # The options the hot path reads (the `native` attribute of their entry in
    # viztracer/options.py; min_duration_ns is min_duration in ns).
    # generated: options (`make options` writes this block from viztracer/options.py)
    @property
    def tracer_entries(self) -> int: ...
    max_stack_depth: int
    include_files: Optional[List[str]]
    exclude_files: Optional[List[str]]
    ignore_c_function: bool
    ignore_frozen: bool
    log_func_retval: bool
    log_func_args: bool
    log_func_repr: Optional[Callable[..., str]]
    log_async: bool
    trace_self: bool
    min_duration_ns: float
    sanitize_function_name: bool
    fast_calls: bool
    # end of generated: options
    lib_file_path: Optional[str]
    _noop_hooks: bool
    _every_call_event: bool
    thread_namer: Optional[Callable[[int], Optional[str]]]
    task_getter: Optional[Callable[[], Optional[Tuple[int, str]]]]
    @property
    def is_collecting(self) -> bool: ...
    @property
    def clock_source(self) -> str: ...
    @property
    def tool_id(self) -> Optional[int]: ...
    @property
    def mismatches(self) -> int: ...
    def start(self) -> bool: ...
    def stop(self, flush_as_finish: bool = False) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def clear(self) -> None: ...
    def reset_stack(self) -> None: ...
    def after_fork(self) -> None: ...
    def enable_thread_tracing(self) -> None: ...
    def add_instant(self, name: Any, args: Any = None, scope: str = "g") -> None: ...
    def add_counter(self, name: Any, args: Any) -> None: ...
    def add_object(self, ph: str, obj_id: Any, name: Any, args: Any = None) -> None: ...
    def add_raw(self, raw: Dict[str, Any]) -> None: ...
    def add_func_args(self, key: Any, value: Any) -> None: ...
    def get_func_args(self, create: bool = False) -> Optional[Dict[str, Any]]: ...
    def shield(self, func: Callable[..., Any], args: Tuple[Any, ...], kwargs: Optional[Dict[str, Any]]) -> Any: ...
    def getts(self) -> float: ...
    def get_base_time(self) -> int: ...
    def set_sync_marker(self) -> bool: ...
    def get_sync_marker(self) -> Optional[float]: ...
    def snapshot(self) -> Snapshot: ...
    def stats(self) -> Dict[str, Any]: ...

@final
class Snapshot:
    """Events taken out of a tracer, ready to be written."""

    @property
    def entries(self) -> int: ...
    @property
    def overflow(self) -> bool: ...
    def threads(self) -> List[Tuple[int, int, Optional[str], int]]: ...
    def task_names(self) -> List[Tuple[int, str]]: ...
    def functions(self) -> List[Tuple[str, str, int]]: ...
    def raw_events(self) -> List[Dict[str, Any]]: ...
    def write(
        self,
        fd: int,
        *,
        gzip: bool,
        pid: int,
        process_name: str,
        thread_names: Sequence[Tuple[int, str]],
        metadata_json: str,
        file_info_json: Optional[str] = None,
        progress: Optional[Callable[[int, int], None]] = None,
        ts_offset_ns: int = 0,
    ) -> int: ...
    def to_bytes(
        self,
        *,
        pid: int,
        process_name: str,
        thread_names: Sequence[Tuple[int, str]],
        metadata_json: str,
        file_info_json: Optional[str] = None,
        ts_offset_ns: int = 0,
    ) -> bytes: ...
    def stream(
        self,
        sink: Callable[[bytes], Any],
        *,
        gzip: bool,
        chunk_size: int,
        pid: int,
        process_name: str,
        thread_names: Sequence[Tuple[int, str]],
        metadata_json: str,
        file_info_json: Optional[str] = None,
        ts_offset_ns: int = 0,
    ) -> int: ...
    def to_events(
        self, pid: int, process_name: str, thread_names: Sequence[Tuple[int, str]]
    ) -> List[Dict[str, Any]]: ...
    def release(self) -> None: ...
