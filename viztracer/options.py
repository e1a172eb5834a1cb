"""Validation of :class:`~viztracer.VizTracer` options.

Every option is an attribute that validates on assignment, so ``VizTracer(x=...)``
and ``tracer.x = ...`` give the same clear ``TypeError``/``ValueError`` naming the
option. Options the hot path reads live on the native tracer (:class:`NativeOption`);
the others live on the Python object (:class:`Option`).
"""

from __future__ import annotations

import os
from typing import Any, Callable, List, Optional

from .trace_writer import output_kind  # the output kinds belong to the writer


def _type_name(value: Any) -> str:
    return type(value).__name__


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {_type_name(value)} ({value!r})")
    return value


def check_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {_type_name(value)} ({value!r})")
    return value


def check_stack_depth(name: str, value: Any) -> int:
    value = check_int(name, value)
    return value if value >= 0 else -1


def check_tracer_entries(name: str, value: Any) -> int:
    value = check_int(name, value)
    if not 0 < value < 1 << 30:
        raise ValueError(f"{name} must be between 1 and {(1 << 30) - 1}, not {value}")
    return value


def check_optional_str(name: str, value: Any) -> Optional[str]:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} must be a str or None, not {_type_name(value)} ({value!r})")
    return value


def check_callable(name: str, value: Any) -> Optional[Callable]:
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be a callable or None, not {_type_name(value)} ({value!r})")
    return value


def check_min_duration(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of µs, not {_type_name(value)} ({value!r})")
    if value < 0 or value != value:
        raise ValueError(f"{name} must be >= 0 µs, not {value!r}")
    return float(value)


def check_str_list(name: str, value: Any) -> Optional[List[str]]:
    """``None`` or a list of strings (paths, regexes). Tuples and path-likes accepted."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name} must be a list of str or None, not {_type_name(value)} ({value!r})")
    out = []
    for item in value:
        if isinstance(item, os.PathLike):
            item = os.fspath(item)
        if not isinstance(item, str):
            raise TypeError(f"{name} must contain only str, found {_type_name(item)} ({item!r})")
        out.append(item)
    return out


def expand_paths(paths: Optional[List[str]]) -> Optional[List[str]]:
    """Code file names may be relative or absolute: match both forms of each prefix."""
    if not paths:
        return None
    out = list(paths)
    for p in paths:
        if not os.path.isabs(p):
            absolute = os.path.abspath(p)
            if p.endswith(os.sep) and not absolute.endswith(os.sep):
                absolute += os.sep
            if absolute not in out:
                out.append(absolute)
    return out


def check_output_file(name: str, value: Any) -> str:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a file path (str), not {_type_name(value)} ({value!r})")
    output_kind(value)
    return value


class Option:
    """An option stored on the Python object, validated on every assignment."""

    def __init__(self, check: Callable[[str, Any], Any]) -> None:
        self.check = check
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.slot = "_opt_" + name

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self
        return obj.__dict__[self.slot]

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self.slot] = self.check(self.name, value)


class NativeOption(Option):
    """An option the native tracer reads on the hot path."""

    def __init__(self, check: Callable[[str, Any], Any], native: Optional[str] = None,
                 to_native: Callable[[Any], Any] = lambda v: v,
                 from_native: Callable[[Any], Any] = lambda v: v) -> None:
        super().__init__(check)
        self.native = native or ""  # the attribute's own name when not given (__set_name__)
        self.to_native = to_native
        self.from_native = from_native

    def __set_name__(self, owner: type, name: str) -> None:
        super().__set_name__(owner, name)
        self.native = self.native or name

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self
        return self.from_native(getattr(obj._tracer, self.native))

    def __set__(self, obj: Any, value: Any) -> None:
        setattr(obj._tracer, self.native, self.to_native(self.check(self.name, value)))
