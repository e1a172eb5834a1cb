"""Decorators: leave a function out of the trace, trace one function into its own
file, or record chosen functions only (``log_sparse``).

The wrappers live in the viztracer package, whose frames are never recorded, so
they do not show in traces themselves.
"""

from __future__ import annotations

import builtins
import functools
import os
import threading
import time
from typing import Any, Callable, Dict, Optional

from .viztracer import VizTracer, get_tracer

_local = threading.local()


def _pause_depths() -> Dict[int, int]:
    depths = getattr(_local, "pause_depths", None)
    if depths is None:
        depths = _local.pause_depths = {}
    return depths


def ignore_function(method: Optional[Callable[..., Any]] = None,
                    tracer: Optional[VizTracer] = None) -> Any:
    """Record nothing while the decorated function runs (on the calling thread).

        @ignore_function
        def helper(): ...

        @ignore_function(tracer=my_tracer)
        def other(): ...

    Without ``tracer=``, the global tracer (``get_tracer()``) is used; calling the
    function when there is neither raises ``NameError``. Recording resumes when the
    function returns or raises; nested ignored functions resume only at the
    outermost one.
    """

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t = tracer if tracer is not None else get_tracer()
            if t is None:
                raise NameError("ignore_function only works with global tracer "
                                "(or give the tracer: @ignore_function(tracer=...))")
            depths = _pause_depths()
            key = id(t)
            depth = depths.get(key, 0)
            if depth == 0:
                t.pause()
            depths[key] = depth + 1
            try:
                return func(*args, **kwargs)
            finally:
                if depth == 0:
                    depths.pop(key, None)
                    t.resume()
                else:
                    depths[key] = depth
        return wrapper

    if method is not None:
        return decorator(method)
    return decorator


def _unique_report_path(output_dir: str, func_name: str) -> str:
    stamp = int(100000 * time.time())
    path = os.path.join(output_dir, f"result_{func_name}_{stamp}.json")
    while os.path.exists(path):
        stamp += 1
        path = os.path.join(output_dir, f"result_{func_name}_{stamp}.json")
    return path


def trace_and_save(method: Optional[Callable[..., Any]] = None, output_dir: str = "./",
                   **viztracer_kwargs: Any) -> Any:
    """Trace every call of the decorated function into its own file,
    ``<output_dir>/result_<function name>_<timestamp>.json``.

        @trace_and_save(output_dir="./traces", max_stack_depth=10)
        def handle_request(): ...

    Each call makes a new ``VizTracer(**viztracer_kwargs)`` (so ``get_tracer()``
    returns it during the call), traces the call, saves, and then makes the
    previously registered global tracer the global one again. ``output_dir`` is
    created if needed. The file is written even if the function raises.
    """
    if not isinstance(output_dir, (str, os.PathLike)):
        raise TypeError(f"output_dir must be a path, not {type(output_dir).__name__} ({output_dir!r})")
    kwargs = dict(viztracer_kwargs)
    kwargs.setdefault("verbose", 0)

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kw: Any) -> Any:
            previous = get_tracer()
            tracer = VizTracer(**kwargs)
            try:
                tracer.start()
                try:
                    return func(*args, **kw)
                finally:
                    tracer.stop()
                    os.makedirs(output_dir, exist_ok=True)
                    tracer.save(_unique_report_path(os.fspath(output_dir), func.__name__))
                    tracer.clear()
                    tracer.terminate()
            finally:
                if get_tracer() is tracer:
                    if previous is not None:
                        previous.register_global()
                    else:
                        builtins.__dict__.pop("__viz_tracer__", None)
        return wrapper

    if method is not None:
        return decorator(method)
    return decorator


def _event_name(func: Callable[..., Any]) -> str:
    code = getattr(func, "__code__", None)
    if code is None:
        return getattr(func, "__qualname__", repr(func))
    name = getattr(code, "co_qualname", code.co_name)
    return f"{name} ({code.co_filename}:{code.co_firstlineno})"


def log_sparse(func: Optional[Callable[..., Any]] = None, stack_depth: int = 0,
               dynamic_tracer_check: bool = False) -> Any:
    """Record the decorated function when the tracer runs with ``log_sparse=True``
    (``--log_sparse``), which records nothing else.

    * ``stack_depth=0`` (default): one event per call, spanning the call.
    * ``stack_depth=N``: each call is traced in full, down to N levels of calls.
    * ``dynamic_tracer_check=True``: look the global tracer up at each call instead of
      once when the function is decorated (needed when the tracer is made later,
      e.g. in a ``with VizTracer(...)`` block or a notebook cell).

    Under a normal (not sparse) trace the function is recorded as usual. Without a
    tracer in log_sparse mode at decoration time (and no ``dynamic_tracer_check``),
    the function is returned undecorated, so it costs nothing.
    """
    if not isinstance(stack_depth, int) or isinstance(stack_depth, bool) or stack_depth < 0:
        raise ValueError(f"stack_depth must be an int >= 0, not {stack_depth!r}")

    def decorator(f: Callable[..., Any]) -> Callable[..., Any]:
        if not dynamic_tracer_check:
            t = get_tracer()
            if t is None or not t.log_sparse:
                return f
            fixed: Optional[VizTracer] = t
        else:
            fixed = None
        name = _event_name(f)

        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t = get_tracer() if dynamic_tracer_check else fixed
            if t is None:
                return f(*args, **kwargs)
            if t.log_sparse and not t.enable:
                if stack_depth > 0:
                    return _trace_with_depth(t, stack_depth, f, args, kwargs)
                start = t.getts()
                try:
                    return f(*args, **kwargs)
                finally:
                    t.add_raw({"ph": "X", "name": name, "ts": start, "dur": t.getts() - start, "cat": "FEE"})
            if t.enable and not t.log_sparse:
                # Traced although called from this (viztracer) frame; the native call
                # directly, so that the wrapper adds one stack level, not two.
                return t._tracer.shield(f, args, kwargs)
            return f(*args, **kwargs)
        return wrapper

    if func is not None:
        return decorator(func)
    return decorator


def _trace_with_depth(t: VizTracer, depth: int, f: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    saved_depth = t.max_stack_depth
    t.max_stack_depth = depth
    t.log_sparse = False
    try:
        t.start()
        try:
            return f(*args, **kwargs)
        finally:
            t.stop()
    finally:
        t.max_stack_depth = saved_depth
        t.log_sparse = True
