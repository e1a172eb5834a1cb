"""``_EventBase``: the shared machinery of :class:`~viztracer.VizCounter` and
:class:`~viztracer.VizObject`.

An event object watches its own public attributes (names that do not start with
``_``). With ``trigger_on_change`` on, every assignment to one of them records the
current values; otherwise nothing is recorded until :meth:`log` is called, or a
method decorated with :meth:`triggerlog` runs. Everything the class keeps for itself
lives in attributes starting with ``_viztracer_``, so it never shows in the trace.

With ``tracer=None`` every operation does nothing, so instrumented code runs
normally without viztracer.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional

if TYPE_CHECKING:  # pragma: no cover
    from .viztracer import VizTracer

_WHEN = ("after", "before", "both")

# Config keys; the reference documentation spells the last one "exclude_attribtues",
# which is accepted as another name for "exclude_attributes".
_CONFIG_ALIASES = {
    "trigger_on_change": "trigger_on_change",
    "include_attributes": "include_attributes",
    "exclude_attributes": "exclude_attributes",
    "exclude_attribtues": "exclude_attributes",
}


def _check_config(key: str, value: Any) -> Any:
    if key == "trigger_on_change":
        if not isinstance(value, bool):
            raise TypeError(f"trigger_on_change must be a bool, not {type(value).__name__} ({value!r})")
        return value
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"{key} must be a list of attribute names, not {type(value).__name__} ({value!r})")
    names = list(value)
    for n in names:
        if not isinstance(n, str):
            raise TypeError(f"{key} must contain only str, found {type(n).__name__} ({n!r})")
    return names


class _EventBase:
    """Base class of :class:`VizCounter` and :class:`VizObject`; not used directly.

    :param tracer: the :class:`VizTracer` to record into, or None to do nothing
    :param name: the name shown in the trace (default: the class name)
    :param trigger_on_change: record whenever a public attribute is assigned
    :param include_attributes: if not empty, only these attributes trigger a record
        and are recorded
    :param exclude_attributes: these attributes never trigger a record and are not
        recorded
    """

    def __init__(self, tracer: Optional["VizTracer"], name: Optional[str] = None,
                 trigger_on_change: bool = True,
                 include_attributes: Iterable[str] = [],  # noqa: B006 (never mutated)
                 exclude_attributes: Iterable[str] = []) -> None:  # noqa: B006
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str or None, not {type(name).__name__} ({name!r})")
        self._viztracer_tracer = tracer
        self._viztracer_name = type(self).__name__ if name is None else name
        self._viztracer_config: Dict[str, Any] = {
            "trigger_on_change": _check_config("trigger_on_change", trigger_on_change),
            "include_attributes": _check_config("include_attributes", include_attributes),
            "exclude_attributes": _check_config("exclude_attributes", exclude_attributes),
        }
        # Assignments made before this point (in __init__) never trigger a record.
        self._viztracer_ready = True

    # ------------------------------------------------------------------ triggering

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name[:1] == "_" or not self.__dict__.get("_viztracer_ready", False):
            return
        if self._viztracer_tracer is None:
            return
        if self._viztracer_config["trigger_on_change"] and self._viztracer_is_watched(name):
            self._viztracer_log()

    def _viztracer_is_watched(self, name: str) -> bool:
        include = self._viztracer_config["include_attributes"]
        if include and name not in include:
            return False
        return name not in self._viztracer_config["exclude_attributes"]

    def _viztracer_attribute_names(self) -> List[str]:
        """The attributes a record contains: the included ones if there is an include
        list, else every public name, minus the excluded ones."""
        include = self._viztracer_config["include_attributes"]
        names = list(include) if include else [n for n in dir(self) if n[:1] != "_"]
        exclude = self._viztracer_config["exclude_attributes"]
        return [n for n in names if n not in exclude]

    def _viztracer_attributes(self) -> Dict[str, Any]:
        """Current values of the recorded attributes that exist and are not callable."""
        values: Dict[str, Any] = {}
        for n in self._viztracer_attribute_names():
            try:
                v = getattr(self, n)
            except AttributeError:
                continue
            if callable(v):
                continue
            values[n] = v
        return values

    # ------------------------------------------------------------------ public API

    def log(self) -> None:
        """Record the current attribute values now."""
        self._viztracer_log()

    def _viztracer_log(self) -> None:
        raise NotImplementedError("_EventBase is a base class: use VizCounter or VizObject")

    def config(self, key: str, value: Any) -> None:
        """Change one setting: ``"trigger_on_change"`` (bool), ``"include_attributes"``
        or ``"exclude_attributes"`` (lists of attribute names)."""
        self._viztracer_set_config(key, value)

    def _viztracer_set_config(self, key: str, value: Any) -> None:
        if not isinstance(key, str) or key not in _CONFIG_ALIASES:
            raise ValueError(f"No config named {key}: use one of "
                             "'trigger_on_change', 'include_attributes', 'exclude_attributes'")
        key = _CONFIG_ALIASES[key]
        self._viztracer_config[key] = _check_config(key, value)

    @staticmethod
    def triggerlog(method: Optional[Callable[..., Any]] = None, when: str = "after") -> Any:
        """Decorator for methods of an event class: record the attributes when the
        method is called, ``when="after"`` it returns (the default), ``"before"`` it
        runs, or ``"both"``. Usable bare (``@VizObject.triggerlog``) or with an
        argument (``@VizObject.triggerlog(when="both")``)."""
        if isinstance(method, str):  # triggerlog("before")
            method, when = None, method
        if when not in _WHEN:
            raise ValueError(f'when must be one of "after", "before" or "both", not {when!r}')
        before = when in ("before", "both")
        after = when in ("after", "both")

        def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
            if not callable(func):
                raise TypeError(f"triggerlog decorates methods, not {func!r}")
            pass_self = _takes_self(func)

            @functools.wraps(func)
            def wrapper(self: "_EventBase", *args: Any, **kwargs: Any) -> Any:
                if before:
                    self._viztracer_log()
                # Called from viztracer code, the method itself is not recorded (as
                # in upstream VizTracer): the trace shows the records it triggers.
                ret = func(self, *args, **kwargs) if pass_self else func(*args, **kwargs)
                if after:
                    self._viztracer_log()
                return ret
            return wrapper

        if method is not None:
            return decorator(method)
        return decorator


def _takes_self(func: Callable[..., Any]) -> bool:
    """False for a method written without any positional parameter (as in
    ``def log_on_this_function():``), which is then called without ``self``."""
    while hasattr(func, "__wrapped__"):
        func = func.__wrapped__
    code = getattr(func, "__code__", None)
    if code is None:
        return True
    return code.co_argcount > 0 or bool(code.co_flags & _CO_VARARGS)


_CO_VARARGS = 0x04  # inspect.CO_VARARGS, without importing inspect at startup


triggerlog = _EventBase.triggerlog
