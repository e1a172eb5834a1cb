"""Plugins: objects the tracer tells about its life (construction, start, stop, save,
terminate), which can add data to the trace before it is saved.

A plugin subclasses :class:`VizPluginBase`, returns the viztracer version it was
written for from ``support_version()``, and answers ``message(m_type, payload)``:

* ``("event", {"when": "initialize" | "pre-start" | "post-stop" | "pre-save"})``:
  return ``{}``, or ``{"action": "handle_data", "handler": fn}`` to have
  ``fn(tracer.data)`` called (it may change the data, e.g. append events);
* ``("command", {"cmd_type": "terminate"})``: return ``{"success": True}``.

Plugins are given to ``VizTracer(plugins=[...])`` as objects, or as strings
``"package.module arg1 arg2"``: the module is imported and its
``get_vizplugin(arg_string)`` is called with the whole string.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any, Dict, List, Sequence, Union

from .util import color_print, compare_version
from .version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from .viztracer import VizTracer

EVENTS = ("initialize", "pre-start", "post-stop", "pre-save")


class VizPluginError(ValueError):
    """A plugin could not be loaded, or answered a message wrongly. (A ValueError, so
    code that checks the tracer's arguments catches it with the other bad values.)"""


class _NoSupportVersion(VizPluginError, NotImplementedError):
    """``support_version()`` is not implemented (a NotImplementedError, as upstream)."""


class VizPluginBase:
    def __init__(self) -> None:
        pass

    def support_version(self) -> str:
        """The viztracer version this plugin was written for, e.g. ``"0.15.0"``."""
        raise NotImplementedError("Plugin of viztracer should implement support_version")

    def message(self, m_type: str, payload: Dict[str, Any]) -> Dict[str, Any]:
        """Answer a message from the tracer (see the module documentation)."""
        if m_type == "command" and payload.get("cmd_type") == "terminate":
            return {"success": True}
        return {}


def load_plugin(spec: str) -> Any:
    """The plugin object described by ``"package.module arg ..."``."""
    words = spec.split()
    if not words:
        raise VizPluginError("Empty plugin string: give a module path, e.g. 'vizplugins.cpu_usage'")
    module_path = words[0]
    target = _import_dotted(module_path)
    get_vizplugin = getattr(target, "get_vizplugin", None)
    if get_vizplugin is None:
        raise VizPluginError(f"Plugin module {module_path} has no get_vizplugin function")
    if not callable(get_vizplugin):
        raise VizPluginError(f"{module_path}.get_vizplugin is not callable")
    try:
        plugin = get_vizplugin(spec)
    except VizPluginError:
        raise
    except Exception as e:
        raise VizPluginError(f"{module_path}.get_vizplugin({spec!r}) failed: "
                             f"{type(e).__name__}: {e}") from e
    if not (hasattr(plugin, "message") and hasattr(plugin, "support_version")):
        raise VizPluginError(f"{module_path}.get_vizplugin returned {plugin!r}, "
                             "which is not a plugin (a VizPluginBase object)")
    return plugin


def _import_dotted(path: str) -> Any:
    """Import the longest importable prefix of ``path``, then walk the rest as
    attributes (``pkg.mod`` or ``pkg.mod.obj``)."""
    parts = path.split(".")
    module = None
    error: BaseException = ImportError()
    for i in range(len(parts), 0, -1):
        name = ".".join(parts[:i])
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            # Only "this module does not exist" moves on to a shorter prefix; a module
            # that exists but fails to import (a missing dependency) is reported.
            if e.name is not None and not (name == e.name or name.startswith(e.name + ".")):
                raise VizPluginError(f"Plugin {path} could not be imported: {e}") from e
            error = e
            continue
        except Exception as e:
            raise VizPluginError(f"Plugin {path} could not be imported: {type(e).__name__}: {e}") from e
        obj = module
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            break
        return obj
    raise VizPluginError(f"There's no module named {path}: can't load the plugin") from error


class VizPluginManager:
    """Sends the tracer's messages to its plugins."""

    def __init__(self, tracer: "VizTracer", plugins: Sequence[Union[str, Any]]) -> None:
        self._tracer = tracer
        self._plugins: List[Any] = []
        for p in plugins or []:
            plugin = load_plugin(p) if isinstance(p, str) else p
            self._check_version(plugin)
            self._plugins.append(plugin)
        self.event("initialize")

    @property
    def plugins(self) -> List[Any]:
        return list(self._plugins)

    @staticmethod
    def _check_version(plugin: Any) -> None:
        name = type(plugin).__name__
        try:
            version = plugin.support_version()
        except NotImplementedError:
            raise _NoSupportVersion(f"Plugin {name} must implement support_version(), returning the "
                                    "viztracer version it was written for") from None
        if not isinstance(version, str) or not any(c.isdigit() for c in version):
            raise VizPluginError(f"Plugin {name} reports support version {version!r}, "
                                 "which is not a version string like '1.0.0'")
        if compare_version(version, __version__) > 0:
            color_print("YELLOW", f"Warning: plugin {name}'s support version is higher than "
                                  f"viztracer's ({version} > {__version__}); it may not work. "
                                  "Upgrade viztracer to use it.", file=sys.stderr)

    def event(self, when: str) -> None:
        for plugin in self._plugins:
            reply = plugin.message("event", {"when": when})
            self._resolve(plugin, reply)

    def _resolve(self, plugin: Any, reply: Any) -> None:
        if not reply:
            return
        if not isinstance(reply, dict):
            raise VizPluginError(f"Plugin {type(plugin).__name__} answered {reply!r}; a dict is expected")
        action = reply.get("action")
        if action is None:
            return
        if action == "handle_data":
            handler = reply.get("handler")
            if not callable(handler):
                raise VizPluginError(f"Plugin {type(plugin).__name__} asked for handle_data "
                                     f"without a callable handler ({handler!r})")
            handler(self._tracer.data)
        else:
            raise VizPluginError(f"Plugin {type(plugin).__name__} asked for an unknown action {action!r}")

    def terminate(self) -> None:
        for plugin in self._plugins:
            reply = plugin.message("command", {"cmd_type": "terminate"})
            if not isinstance(reply, dict) or reply.get("success") is not True:
                raise VizPluginError(f"Plugin {type(plugin).__name__} failed to terminate "
                                     f"(its answer: {reply!r})")
