"""The option table of :class:`~viztracer.VizTracer`: every option once.

:data:`OPTIONS` holds one :class:`Spec` per constructor argument: its name, type and
default, the validation, where the value lives (the native tracer, the Python object,
or a property written by hand in ``viztracer.py``), its command-line flag and help,
whether a child process inherits it, and the text of the docs. Everything else is
made from it or checked against it by a test (tests/test_option_table.py):

- ``VizTracer``'s attributes (:func:`attribute` makes each validating descriptor),
  the assignments in its constructor, ``init_kwargs`` (:func:`current_kwargs`); its
  explicit constructor signature, and the attributes of ``_snaptrace.pyi``, are
  checked against the table;
- the command line (argparse, and so the rcfile keys) and the cell magic;
- the hand-over to child processes (:func:`child_kwargs`, :func:`member_kwargs`);
- the option tables of docs/api.md and docs/cli.md (``tools/options_doc.py``).

Adding an option: one :class:`Spec` here, then what static tools need written out
(the parameter in ``VizTracer.__init__``, the ``name: type = attribute()`` line in its
class body; for an option the hot path reads, its attribute on the Rust ``Tracer`` and
in ``_snaptrace.pyi``), and ``python tools/options_doc.py`` for the docs. The tests
say what is missing; the command line, the rcfile, the cell magic's options and the
child hand-over need nothing more.

Every option validates on assignment, so ``VizTracer(x=...)`` and ``tracer.x = ...``
give the same clear ``TypeError``/``ValueError`` naming the option.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Optional, Tuple

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



def check_plugins(name: str, value: Any) -> List[Any]:
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name} must be a list of plugins or plugin strings, not {type(value).__name__}")
    plugins = list(value)
    for p in plugins:
        if not isinstance(p, str) and not (hasattr(p, "message") and hasattr(p, "support_version")):
            raise TypeError(f"{name} entries must be VizPluginBase objects or strings, not {p!r}")
    return plugins


def check_pid_suffix(name: str, value: Any) -> bool:
    if type(value) is not bool:
        raise ValueError(f"{name} needs to be a boolean, not {value!r}")
    return value


# =========================================================================== the table

def _same(value: Any) -> Any:
    return value


def _us_to_ns(us: float) -> float:
    return us * 1000.0


def _ns_to_us(ns: float) -> float:
    return ns / 1000.0


def _plugin_strings(plugins: Any) -> List[str]:
    """Plugin objects can't travel to another interpreter; plugin strings can."""
    return [p for p in (plugins or []) if isinstance(p, str)]


# (Plain classes: dataclasses imports inspect and more, and from 3.14 a NamedTuple
# class imports annotationlib and ast, which the traced program would then find
# already imported.)
class Cli:
    """How an option is spelled on the command line (and so in the rcfile, whose keys
    are the long names without dashes).

    ``kind``: ``"flag"`` (no value; the option is ``True`` when given, else ``False``),
    ``"int"``, ``"time"`` (``0.3ms``, ``13us``, ``500ns``, ``0.1s`` or a bare number of
    µs), ``"list"`` (the words that follow), ``"path"`` (a file name), or
    ``"compat"`` (a flag accepted for compatibility that changes nothing).
    ``group``: the section of ``--help`` it is listed in."""

    __slots__ = ("kind", "group", "metavar", "short")

    def __init__(self, kind: str, group: str, metavar: Optional[str] = None, short: Optional[str] = None) -> None:
        self.kind = kind
        self.group = group
        self.metavar = metavar
        self.short = short

    @property
    def takes_value(self) -> bool:
        return self.kind not in ("flag", "compat")


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


INHERIT = _Marker("INHERIT")
"""``Spec.child``: a child process gets the parent's value."""
DEFAULT = _Marker("DEFAULT")
"""``Spec.child``: a child process started anew gets the constructor's default."""


class Spec:
    """One option of ``VizTracer``.

    ``type``: the annotation of the constructor parameter (a string, written into
    ``VizTracer.__init__``); ``value_type``: the annotation of the attribute, the type
    of the validated value (in ``VizTracer``'s class body and, for a native option, in
    ``_snaptrace.pyi``), when it differs from ``type``. Both may use only names the
    two files import (the generator says when one does not).
    ``default``: a literal (``None``, a bool, a number or a str).

    ``store``: ``"attr"``, a validating attribute made from this entry (kept on the
    native tracer as ``native`` when that is set, else on the Python object);
    ``"property"``, a property written by hand in ``viztracer.py`` (side effects:
    imports, installing hooks); ``"readonly"``, given to the native tracer's
    constructor (as ``native``) and read-only after; ``"init"``, a constructor
    argument only, with no attribute.

    ``native``/``to_native``: the attribute of ``_snaptrace.Tracer`` the hot path reads,
    and the conversion of the validated value to what it holds.
    ``to_kwarg``: the constructor argument that gives the attribute's current value
    (the attribute of ``min_duration`` is in ns, the argument in µs).
    ``child``: :data:`INHERIT`, :data:`DEFAULT`, or the value a child process's own
    tracer always gets (``verbose=0``). A forked child keeps its parent's tracer, and
    so every option. ``to_child``: what of the value can be sent to a new
    interpreter (JSON, through the environment).
    ``requires``: an optional package without which the option can't be turned on.
    ``data``: the value is plain data (``init_kwargs`` holds it), not a function or
    objects.
    ``sample``: a valid non-default value, for the tests.
    ``help``: one line for ``--help``; ``doc``: the meaning in docs/api.md (Markdown).
    """

    __slots__ = ("name", "type", "default", "check", "help", "doc", "sample", "store", "native", "to_native",
                 "to_kwarg", "cli", "child", "to_child", "requires", "data", "value_type")

    def __init__(self, name: str, type: str, default: Any, check: Callable[[str, Any], Any], help: str, doc: str,
                 sample: Any, store: str = "attr", native: Optional[str] = None,
                 to_native: Callable[[Any], Any] = _same, to_kwarg: Callable[[Any], Any] = _same,
                 cli: Optional[Cli] = None, child: Any = INHERIT, to_child: Callable[[Any], Any] = _same,
                 requires: Optional[str] = None, data: bool = True, value_type: Optional[str] = None) -> None:
        self.name = name
        self.type = type
        self.value_type = type if value_type is None else value_type
        self.default = default
        self.check = check
        self.help = help
        self.doc = doc
        self.sample = sample
        self.store = store
        self.native = native
        self.to_native = to_native
        self.to_kwarg = to_kwarg
        self.cli = cli
        self.child = child
        self.to_child = to_child
        self.requires = requires
        self.data = data

    def __repr__(self) -> str:
        return f"Spec({self.name!r})"

    @property
    def inherited(self) -> bool:
        return self.child is INHERIT

    @property
    def flag(self) -> Optional[str]:
        """The long command-line flag, ``--name``."""
        return None if self.cli is None else "--" + self.name


def _flag(name: str, help: str, doc: str, group: str, *, native: bool = False, child: Any = INHERIT) -> Spec:
    """A bool option, off by default, turned on by its command-line flag."""
    return Spec(name, "bool", False, check_bool, help, doc, sample=True, native=name if native else None,
                child=child, cli=Cli("flag", group))


OUTPUT, RECORDED, EXTRA = "output", "recorded", "extra"

OPTIONS: Tuple[Spec, ...] = (
    Spec("tracer_entries", "int", 1000000, check_tracer_entries,
         help="size of the event buffer; older events are dropped when it is full (default 1000000)",
         doc="Capacity of the event buffer, for all threads together: the trace keeps at most this many "
             "events. An event is a finished call, a call still running when tracing stopped, an instant, a "
             "counter, an object or a raw event (process and thread names are not counted). When more were "
             "recorded the oldest are dropped and the trace says `\"overflow\": true`: with one thread "
             "recording, the trace holds exactly its last `tracer_entries` events; with several, see "
             "[Threads](concurrency.md#threads). Read-only after construction. Each buffered event takes 24 "
             "bytes.",
         sample=54321, store="readonly", native="tracer_entries", cli=Cli("int", RECORDED, "N")),
    Spec("verbose", "int", 1, check_int,
         help="print a line when the trace is saved (--quiet: 0)",
         doc="`1`: `save()` prints a one-line summary with the path and the number of entries. `0`: nothing is "
             "printed. On the command line, `--quiet` sets `0`.",
         sample=0, child=0),
    Spec("max_stack_depth", "int", -1, check_stack_depth,
         help="record only the first N levels of calls (default: no limit)",
         doc="Record only calls up to this depth; `-1` is unlimited. Depth 1 is a call made by the frame that "
             "called `start()` (on the command line, the script runs under `exec` at depth 1 and its top level "
             "at 2). A forked child counts from the frame it starts in: the one that called `os.fork()`, or "
             "`Process._bootstrap` in a `multiprocessing` child (fork, forkserver), where `run()` is at depth 1.",
         sample=7, native="max_stack_depth", cli=Cli("int", RECORDED, "N")),
    Spec("include_files", "Optional[List[str]]", None, check_str_list,
         help="record only code under these files or directories (end the list with --)",
         doc="List of path prefixes: only code in those files is recorded, and nothing it calls from elsewhere. "
             "Relative paths are matched both as given and made absolute. Both this and `exclude_files` may be "
             "set (then one cleared), but `start()` with both raises `ValueError`.",
         sample=["/sample/include/"], native="include_files", to_native=expand_paths,
         cli=Cli("list", RECORDED, "PATH")),
    Spec("exclude_files", "Optional[List[str]]", None, check_str_list,
         help="do not record code under these files or directories (end the list with --)",
         doc="List of path prefixes whose code, and everything it calls, is not recorded.",
         sample=["/sample/exclude/"], native="exclude_files", to_native=expand_paths,
         cli=Cli("list", RECORDED, "PATH")),
    _flag("ignore_c_function", "do not record builtin (C) functions",
          "Do not record builtin (C) functions.", RECORDED, native=True),
    _flag("ignore_frozen", "do not record frozen modules (the import machinery)",
          "Do not record code from frozen modules (file names starting with `<frozen`).", RECORDED, native=True),
    _flag("log_func_retval", "record the return value of every Python function (slower)",
          "Add `args.return_value`, the `repr()` of each Python function's return value (on 3.12+, the "
          "exception when a function exits by raising).", RECORDED, native=True),
    _flag("log_func_args", "record the arguments of every Python function (slower)",
          "Add `args.func_args`, the `repr()` of each Python function's arguments (`*args` and `**kwargs` "
          "included).", RECORDED, native=True),
    Spec("log_func_repr", "Optional[Callable[..., str]]", None, check_callable,
         help="a function used instead of repr() for arguments and return values",
         doc="A function used instead of `repr()` for the two options above. A repr that raises gives "
             "`\"Not Displayable\"` and never affects the program.",
         sample=ascii, native="log_func_repr", child=DEFAULT, data=False),
    Spec("log_func_with_objprint", "bool", False, check_bool,
         help="show arguments and return values with objprint instead of repr",
         doc="Use `objprint.objstr` as that function. Can't be combined with `log_func_repr` (`ValueError`).",
         sample=True, store="property", cli=Cli("flag", RECORDED), requires="objprint"),
    _flag("log_print", "record print() calls as instant events instead of printing",
          "Record each `print()` as an instant event `print - <text>`; the text is still printed. See "
          "[Extra logging](instrumentation.md#log_print-prints-as-events).", EXTRA),
    Spec("log_gc", "bool", False, check_bool,
         help="record garbage collections",
         doc="Record each cyclic garbage collection (generation, collected and uncollectable counts) while "
             "recording. Must be a bool; can be switched at any time. See "
             "[Extra logging](instrumentation.md#log_gc-garbage-collections).",
         sample=True, store="property", cli=Cli("flag", EXTRA)),
    _flag("log_sparse", "record only functions decorated with @log_sparse",
          "Record only functions decorated with `@log_sparse` (and `log_event` blocks): `start()` does not "
          "start the function hooks. See "
          "[Decorators](decorators.md#log_sparsefuncnone-stack_depth0-dynamic_tracer_checkfalse).", EXTRA),
    _flag("log_async", "show asyncio/trio tasks as separate tracks",
          "Show asyncio (and trio) tasks as their own tracks: functions running inside a task are written "
          "with the task's pseudo thread id, named after the task.", EXTRA, native=True),
    Spec("log_torch", "bool", False, check_bool,
         help="also record PyTorch's profiler events (needs torch)",
         doc="Run `torch.profiler` between `start()` and `stop()` and merge its events, on viztracer's time "
             "axis, into the saved trace. Raises `ModuleNotFoundError` (an `ImportError`) if torch is not "
             "installed. See "
             "[Extra logging](instrumentation.md#log_torch-pytorch-operations).",
         sample=True, store="property", cli=Cli("flag", EXTRA), child=DEFAULT, requires="torch"),
    Spec("log_audit", "Optional[Sequence[str]]", None, check_str_list,
         help="record sys.audit events whose name matches one of these regexes (none: all)",
         doc="Regexes of `sys.audit` events to record as instants (`re.fullmatch`; an empty list records "
             "every event). See [Concurrency](concurrency.md#audit-events).",
         sample=["sample\\.audit\\..*"], cli=Cli("list", EXTRA, "REGEX"), value_type="Optional[List[str]]"),
    Spec("pid_suffix", "bool", False, check_pid_suffix,
         help="add _<pid> to the trace file name",
         doc="Add `_<pid>` to the output file name (`result_123.json`, `a_123.json.gz`).",
         sample=True, cli=Cli("flag", OUTPUT), child=False),
    Spec("file_info", "bool", True, check_bool,
         help="accepted for compatibility; traces always embed the source (file_info)",
         doc="Include the source of the traced files in the trace (`file_info`). The command line always "
             "does (`--file_info` is accepted for compatibility).",
         sample=False, cli=Cli("compat", OUTPUT)),
    Spec("register_global", "bool", True, check_bool,
         help="make this tracer the one get_tracer() returns",
         doc="Make this tracer the one `get_tracer()` returns.",
         sample=False, store="init", child=True),
    _flag("trace_self", "also record viztracer's own Python code",
          "Also record viztracer's own Python code.", RECORDED, native=True),
    Spec("min_duration", "float", 0, check_min_duration,
         help="drop calls shorter than this, e.g. 0.3ms, 13us, 500ns, 0.1s (a bare number is µs)",
         doc="Do not record calls shorter than this many µs. Reading the attribute returns the value in ns, "
             "as upstream VizTracer does (`init_kwargs` gives µs). On the command line a time with its unit: "
             "`0.3ms`, `13us`, `500ns`, `0.1s` (a bare number is µs).",
         sample=250.0, native="min_duration_ns", to_native=_us_to_ns, to_kwarg=_ns_to_us,
         cli=Cli("time", RECORDED, "TIME")),
    _flag("minimize_memory", "use less memory when a report has to be built in Python (combine, plugins)",
          "Accepted for compatibility: saving always streams the events, so no extra memory is used anyway.",
          OUTPUT),
    _flag("dump_raw", "accepted for compatibility; the trace is always written natively",
          "`save()` takes the events out of the buffer and keeps tracing, instead of stopping the tracer "
          "first.", OUTPUT, child=DEFAULT),
    _flag("sanitize_function_name", "drop unprintable characters from builtin function names",
          "Drop the names of C functions whose name holds non-printable characters (some extensions build "
          "method tables at run time). Names are always valid JSON regardless.", RECORDED, native=True),
    Spec("process_name", "Optional[str]", None, check_optional_str,
         help="name of the process in the trace",
         doc="Name of the process in the trace (default: `multiprocessing.current_process().name`, e.g. "
             "`MainProcess` or `SpawnPoolWorker-2`; a child process of a multi-process trace is named after its "
             "command line: `child.py`, `python -c`, or the module of `-m`).",
         sample="sample process", child=DEFAULT),
    Spec("output_file", "str", "result.json", check_output_file,
         help="where to write the trace: .json, .json.gz (or .gz) or .html (default result.json)",
         doc="Where `save()` writes. The extension picks the format: `.json`, `.json.gz` or `.gz`, `.html`. "
             "Anything else is a `ValueError` (\"Only html, json and gz are supported\").",
         sample="sample.json.gz", cli=Cli("path", OUTPUT, "FILE", short="-o"), child=DEFAULT),
    Spec("plugins", "Optional[Sequence[Any]]", None, check_plugins,
         help="load these VizTracer plugins ('module' or 'module args')",
         doc="List of plugin objects (`VizPluginBase`) or strings `\"module.path args\"` loaded through the "
             "module's `get_vizplugin`. A plugin that can't be loaded raises `VizPluginError` at construction. "
             "Child processes load the plugin strings again. See [Plugins](plugins.md).",
         # (a module the tests write)
         sample=["option_table_sample_plugin"], cli=Cli("list", EXTRA, "PLUGIN"), to_child=_plugin_strings, data=False,
         value_type="List[Any]"),
    Spec("ignore_multiprocess", "bool", True, check_bool,
         help="trace only this process, not its subprocesses or multiprocessing children",
         doc="`False`: every Python process started while tracing (subprocess, multiprocessing, `os.fork`, "
             "and their children) is traced too, and all end up in this tracer's output file. See "
             "[Concurrency](concurrency.md#child-processes). The command line traces children unless "
             "`--ignore_multiprocess` is given.",
         sample=False, cli=Cli("flag", EXTRA), child=True),
    _flag("fast_calls", "Python 3.12+: cheaper Python-to-Python calls; a builtin called from a call site that "
                        "also calls Python functions may then go unrecorded",
          "Python 3.12+ only. Every call site that calls a Python function or a class stops sending call events "
          "to the tracer (`sys.monitoring.DISABLE`); the function itself is still recorded through its start "
          "event. By default this is done only where it is provably safe (a callee taken from a global name, "
          "watched for rebinding: see [Architecture](architecture.md#call-sites-that-stop-reporting-312)); "
          "`fast_calls=True` does it for method calls and callables passed around too, which makes "
          "object-heavy code up to a quarter cheaper to trace, at a price: a builtin called later from such a "
          "call site (a callback that is sometimes a Python function, sometimes a builtin) is not recorded. "
          "Off by default, so every builtin call is recorded.", RECORDED, native=True),
)

OPTION: Dict[str, Spec] = {spec.name: spec for spec in OPTIONS}
"""The table by option name."""


# =========================================================================== attributes

class OptionAttribute:
    """The attribute of one ``"attr"`` option: validates every assignment, and keeps
    the value on the native tracer (``obj._tracer``) or on the object itself. Made
    by :func:`attribute` in the class body; the option is the attribute's name."""

    spec: Spec
    slot: str

    def __set_name__(self, owner: type, name: str) -> None:
        spec = OPTION.get(name)
        if spec is None or spec.store != "attr":
            raise TypeError(f"{owner.__name__}.{name} is not an attribute option of viztracer/options.py")
        self.spec = spec
        self.slot = "_opt_" + name

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self
        if self.spec.native is not None:
            return getattr(obj._tracer, self.spec.native)
        return obj.__dict__[self.slot]

    def __set__(self, obj: Any, value: Any) -> None:
        spec = self.spec
        value = spec.check(spec.name, value)
        if spec.native is not None:
            setattr(obj._tracer, spec.native, spec.to_native(value))
        else:
            obj.__dict__[self.slot] = value


def attribute() -> Any:
    """``verbose: int = attribute()`` in ``VizTracer``'s class body: the option of that
    name, as the table says (typed ``Any`` so that the annotation is what checkers see)."""
    return OptionAttribute()


def check(name: str, value: Any) -> Any:
    """Validate ``value`` for option ``name`` (the table's check)."""
    return OPTION[name].check(name, value)


# =========================================================================== reading, and children

def current_kwargs(tracer: Any) -> Dict[str, Any]:
    """The constructor arguments that reproduce ``tracer``'s options as they are now
    (``VizTracer.init_kwargs``): every option stored as plain data (not the
    ``log_func_repr`` function, not plugins, not ``register_global``)."""
    return {spec.name: spec.to_kwarg(getattr(tracer, spec.name)) for spec in OPTIONS
            if spec.store != "init" and spec.data}


def child_kwargs(tracer: Any) -> Dict[str, Any]:
    """What a child process's tracer inherits from ``tracer`` (sent as JSON)."""
    return {spec.name: spec.to_child(spec.to_kwarg(getattr(tracer, spec.name))) for spec in OPTIONS
            if spec.inherited}


def member_kwargs(inherited: Dict[str, Any]) -> Dict[str, Any]:
    """The constructor arguments of a child process's own tracer: what it inherited,
    and the fixed values of the options whose ``child`` is a value."""
    kwargs = {k: v for k, v in inherited.items() if k in OPTION and OPTION[k].inherited}
    for spec in OPTIONS:
        if not spec.inherited and spec.child is not DEFAULT:
            kwargs[spec.name] = spec.child
    return kwargs
