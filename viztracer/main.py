"""The ``viztracer`` command line.

    viztracer [options] script.py [args ...]
    viztracer [options] -m module [args ...]
    viztracer [options] -c "code" [args ...]
    viztracer [options] -- command [args ...]     (also: --run command ...)
    viztracer --combine a.json b.json -o out.json
    viztracer --compress result.json -o result.cvf

The work is split so that each part can be replaced or extended on its own:

* :func:`parse_command_line` splits argv (``--``/``--run``), applies the rcfile and
  returns the options and the command;
* :func:`prepare_program` reads and compiles what is to be run (script, module or
  string) without running it: a :class:`Program`;
* :func:`tracer_kwargs` / :func:`build_tracer` turn the options into a ``VizTracer``;
* :class:`TracedRun` runs a :class:`Program` under a tracer the way Python would run
  it untraced (argv, ``sys.path[0]``, ``__main__``, exit status, tracebacks, threads
  and atexit callbacks), and saves the trace exactly once, whichever way the
  program ends (normally, exception, ``sys.exit``, ``os._exit``, SIGTERM, SIGINT).

Everything the user asked for that is wrong is reported as a one-line message and
a non-zero exit status (:class:`CliError`), never as a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from .version import __version__

DEFAULT_OUTPUT = "result.json"
DEFAULT_RCFILE = ".viztracerrc"
# Flags that ask for source instrumentation (viztracer.code_monkey), with the
# instrument each one adds and the name of its argument.
INSTRUMENT_FLAGS = {
    "log_var": ("log_var", "varnames"),
    "log_number": ("log_number", "varnames"),
    "log_attr": ("log_attr", "attr_names"),
    "log_func_exec": ("log_func_exec", "func_names"),
    "log_func_entry": ("log_func_entry", "func_names"),
    "log_exception": ("log_exception", None),
}


class CliError(Exception):
    """A mistake in what the user asked for: printed as one message, exit status ``code``."""

    def __init__(self, message: str, code: int = 1, stream: str = "stdout") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.stream = stream


# =========================================================================== parsing

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="viztracer",
        usage="viztracer [options] (script.py | -m module | -c code | -- command) [args ...]\n"
              "       viztracer --combine|--align_combine a.json b.json ... [-o out.json]\n"
              "       viztracer --compress a.json [-o a.cvf] | --decompress a.cvf [-o a.json]",
        description="Trace a Python program and write a timeline of every function call "
                    "(open it with vizviewer). Options go before the program; everything after "
                    "the script name, or after -- or --run, belongs to the program.",
        epilog="Options can also be set in a .viztracerrc file (in the current directory, or "
               "given with --rcfile): an INI file with a [default] section whose keys are the "
               "long option names without dashes, e.g. max_stack_depth = 10.",
    )
    add = parser.add_argument

    add("--version", action="version", version=__version__, help="print the version and exit")

    g = parser.add_argument_group("what to run")
    g.add_argument("-c", "--cmd_string", nargs="?", default=None, metavar="CODE",
                   help="run this Python code, like python -c")
    g.add_argument("-m", "--module", nargs="?", default=None, metavar="MODULE",
                   help="run a module as __main__, like python -m")
    g.add_argument("--rcfile", nargs="?", default=None, metavar="FILE",
                   help=f"read default options from this file (default: ./{DEFAULT_RCFILE} if it exists)")

    g = parser.add_argument_group("output")
    out = g.add_mutually_exclusive_group()
    out.add_argument("-o", "--output_file", nargs="?", default=None, metavar="FILE",
                     help=f"where to write the trace: .json, .json.gz (or .gz) or .html "
                          f"(default {DEFAULT_OUTPUT})")
    out.add_argument("-u", "--unique_output_file", action="store_true", default=False,
                     help="name the trace <program>_<date>_<time>_<pid>.json, so runs do not overwrite each other")
    g.add_argument("--output_dir", nargs="?", default=None, metavar="DIR",
                   help="put the trace in this directory (created if missing)")
    g.add_argument("--pid_suffix", action="store_true", default=False,
                   help="add _<pid> to the trace file name")
    g.add_argument("--quiet", action="store_true", default=False,
                   help="print nothing of viztracer's own (errors excepted)")
    g.add_argument("--open", action="store_true", default=False,
                   help="open the trace in the browser (vizviewer --once) after saving it")
    g.add_argument("--minimize_memory", action="store_true", default=False,
                   help="use less memory when a report has to be built in Python (combine, plugins)")
    g.add_argument("--dump_raw", action="store_true", default=False,
                   help="accepted for compatibility; the trace is always written natively")
    g.add_argument("--file_info", action="store_true", default=False,
                   help="accepted for compatibility; traces always embed the source (file_info)")

    g = parser.add_argument_group("what is recorded")
    g.add_argument("--tracer_entries", nargs="?", type=int, default=None, metavar="N",
                   help="size of the event buffer; older events are dropped when it is full (default 1000000)")
    g.add_argument("--max_stack_depth", nargs="?", type=int, default=None, metavar="N",
                   help="record only the first N levels of calls (default: no limit)")
    g.add_argument("--min_duration", nargs="?", default=None, metavar="TIME",
                   help="drop calls shorter than this, e.g. 0.3ms, 13us, 500ns, 0.1s (a bare number is µs)")
    g.add_argument("--include_files", nargs="*", default=None, metavar="PATH",
                   help="record only code under these files or directories (end the list with --)")
    g.add_argument("--exclude_files", nargs="*", default=None, metavar="PATH",
                   help="do not record code under these files or directories (end the list with --)")
    g.add_argument("--ignore_c_function", action="store_true", default=False,
                   help="do not record builtin (C) functions")
    g.add_argument("--ignore_frozen", action="store_true", default=False,
                   help="do not record frozen modules (the import machinery)")
    g.add_argument("--log_exit", action="store_true", default=False,
                   help="keep recording after the program's top-level code: thread and atexit "
                        "callbacks, until the process exits")
    g.add_argument("--log_func_args", action="store_true", default=False,
                   help="record the arguments of every Python function (slower)")
    g.add_argument("--log_func_retval", action="store_true", default=False,
                   help="record the return value of every Python function (slower)")
    g.add_argument("--log_func_with_objprint", action="store_true", default=False,
                   help="show arguments and return values with objprint instead of repr")
    g.add_argument("--sanitize_function_name", action="store_true", default=False,
                   help="drop unprintable characters from builtin function names")
    g.add_argument("--trace_self", action="store_true", default=False,
                   help="also record viztracer's own Python code")
    g.add_argument("--fast_calls", action="store_true", default=False,
                   help="Python 3.12+: cheaper Python-to-Python calls; a builtin called from a call "
                        "site that also calls Python functions may then go unrecorded")

    g = parser.add_argument_group("extra events")
    g.add_argument("--log_print", action="store_true", default=False,
                   help="record print() calls as instant events instead of printing")
    g.add_argument("--log_gc", action="store_true", default=False,
                   help="record garbage collections")
    g.add_argument("--log_sparse", action="store_true", default=False,
                   help="record only functions decorated with @log_sparse")
    g.add_argument("--log_async", action="store_true", default=False,
                   help="show asyncio/trio tasks as separate tracks")
    g.add_argument("--log_torch", action="store_true", default=False,
                   help="also record PyTorch's profiler events (needs torch)")
    g.add_argument("--log_audit", nargs="*", default=None, metavar="REGEX",
                   help="record sys.audit events whose name matches one of these regexes (none: all)")
    g.add_argument("--plugins", nargs="*", default=None, metavar="PLUGIN",
                   help="load these VizTracer plugins ('module' or 'module args')")
    g.add_argument("--ignore_multiprocess", action="store_true", default=False,
                   help="trace only this process, not its subprocesses or multiprocessing children")

    g = parser.add_argument_group("source instrumentation (of the program's own source)")
    g.add_argument("--log_var", nargs="*", default=None, metavar="REGEX",
                   help="record assignments to variables whose name matches")
    g.add_argument("--log_number", nargs="*", default=None, metavar="REGEX",
                   help="record assignments to matching variables as a counter (numbers only)")
    g.add_argument("--log_attr", nargs="*", default=None, metavar="REGEX",
                   help="record assignments to attributes whose name matches")
    g.add_argument("--log_func_exec", nargs="*", default=None, metavar="REGEX",
                   help="record every assignment inside matching functions")
    g.add_argument("--log_func_entry", nargs="*", default=None, metavar="REGEX",
                   help="record an event when a matching function is entered")
    g.add_argument("--log_exception", action="store_true", default=False,
                   help="record an event at every raise statement")
    g.add_argument("--magic_comment", action="store_true", default=False,
                   help="process '# !viztracer: ...' comments")

    g = parser.add_argument_group("trace files")
    g.add_argument("--combine", nargs="*", default=None, metavar="FILE",
                   help="merge these traces into one (-o, default result.json)")
    g.add_argument("--align_combine", nargs="*", default=None, metavar="FILE",
                   help="merge these traces, each shifted to start at 0 (or at its sync marker)")
    g.add_argument("--compress", nargs="?", default=None, metavar="FILE",
                   help="write a .json trace in the compact .cvf format (-o, default result.cvf)")
    g.add_argument("--decompress", nargs="?", default=None, metavar="FILE",
                   help="turn a .cvf file back into a .json trace (-o, default result.json)")

    g = parser.add_argument_group("attaching to a running process (not supported)")
    g.add_argument("--attach", nargs="?", type=int, default=-1, metavar="PID",
                   help="not supported by this viztracer")
    g.add_argument("--attach_installed", nargs="?", type=int, default=-1, metavar="PID",
                   help="not supported by this viztracer")
    g.add_argument("--uninstall", nargs="?", type=int, default=-1, metavar="PID",
                   help="not supported by this viztracer")
    g.add_argument("-t", nargs="?", type=float, default=-1, metavar="SECONDS",
                   help="with --attach: how long to trace")

    g = parser.add_argument_group("deprecated (no effect)")
    g.add_argument("--log_subprocess", action="store_true", default=False,
                   help="subprocesses are followed by default")
    g.add_argument("--log_multiprocess", action="store_true", default=False,
                   help="multiprocessing children are followed by default")
    return parser


def split_argv(argv: Sequence[str]) -> Tuple[List[str], Optional[List[str]]]:
    """``(our options, command)``. The command is what follows the first ``--`` (or,
    without one, the first ``--run``); None when there is no separator."""
    argv = list(argv)
    for sep in ("--", "--run"):
        if sep in argv:
            i = argv.index(sep)
            return argv[:i], argv[i + 1:]
    return argv, None


def _bool_value(text: str) -> Optional[bool]:
    value = text.strip().lower()
    if value in ("", "1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    return None


def load_rcfile(parser: argparse.ArgumentParser, path: str) -> argparse.Namespace:
    """The options of an rcfile (``[default]`` section, keys = long option names)."""
    import configparser

    cfg = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as f:
            cfg.read_file(f)
    except OSError as e:
        raise CliError(f"Unable to read rcfile {path}: {e.strerror or e}") from e
    except (configparser.Error, UnicodeDecodeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CliError(f"Invalid rcfile {path}: {first}") from e
    if "default" not in cfg:
        raise CliError(f"Invalid rcfile {path}: it has no [default] section")
    actions = {a.dest: a for a in parser._actions}  # noqa: SLF001 - argparse has no public accessor
    ns = argparse.Namespace()
    for key, raw in cfg["default"].items():
        action = actions.get(key)
        if action is None or key in ("help", "version", "rcfile"):
            raise CliError(f"Invalid rcfile {path}: unknown option '{key}'")
        if action.nargs == 0:  # a flag
            flag = _bool_value(raw)
            if flag is None:
                raise CliError(f"Invalid rcfile {path}: {key} = {raw!r} is not a boolean (True or False)")
            setattr(ns, key, flag)
            continue
        # (the parser's types are all callables: no names registered with parser.register)
        convert = action.type if callable(action.type) else str
        value: Any
        try:
            if action.nargs == "*":
                value = [convert(v) for v in raw.split()]
            else:
                value = convert(raw.strip())
        except (TypeError, ValueError) as e:
            kind = getattr(convert, "__name__", "value")
            raise CliError(f"Invalid rcfile {path}: {key} = {raw!r} is not a valid {kind}") from e
        setattr(ns, key, value)
    return ns


def parse_command_line(argv: Sequence[str]) -> Tuple[argparse.Namespace, List[str], argparse.ArgumentParser]:
    """Options (rcfile values as defaults, overridden by argv) and the command to run."""
    parser = build_parser()
    options, command = split_argv(argv)

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--rcfile", nargs="?", default=None)
    rc_args, _ = pre.parse_known_args(options)
    defaults = argparse.Namespace()
    if rc_args.rcfile is not None:
        if not os.path.isfile(rc_args.rcfile):
            raise CliError(f"Unable to find rcfile {rc_args.rcfile}")
        defaults = load_rcfile(parser, rc_args.rcfile)
    elif os.path.isfile(DEFAULT_RCFILE):
        defaults = load_rcfile(parser, DEFAULT_RCFILE)

    if command is not None:
        ns = parser.parse_args(options, namespace=defaults)
    else:
        ns, command = parser.parse_known_args(options, namespace=defaults)
    return ns, list(command), parser


# =========================================================================== the program

class Program:
    """Something to run as ``__main__``: compiled, not started.

    ``argv`` becomes ``sys.argv``; ``path0`` replaces the launcher's entry at the
    front of ``sys.path`` (None: leave ``sys.path`` alone); ``module`` is the new
    ``__main__`` module the code runs in (see :func:`new_main_module`), ``globals``
    its dict; ``compiler`` is the instrumenting ``compile`` of the source
    instrumentation flags, None without them."""

    def __init__(self, kind: str, code: Any, argv: List[str], path0: Optional[str],
                 module: Any, base_name: str, compiler: Optional[Callable[..., Any]] = None) -> None:
        self.kind = kind
        self.code = code
        self.argv = argv
        self.path0 = path0
        self.base_name = base_name
        self.module = module
        self.globals = module.__dict__
        self.compiler = None if compiler is compile else compiler


def _launcher_globals() -> Dict[str, Any]:
    """The globals of the module that runs viztracer: the interpreter's own
    ``__main__`` (the console script, or ``viztracer/__main__.py`` for ``python -m``)."""
    return getattr(sys.modules.get("__main__"), "__dict__", None) or {}


def new_main_module() -> Any:
    """A ``__main__`` module holding what the interpreter puts in its own before it
    runs anything in it (what ``python -c`` code sees)."""
    import builtins
    import types
    from importlib.machinery import BuiltinImporter

    module = types.ModuleType("__main__")  # __name__, __doc__, __package__, __loader__, __spec__
    g = module.__dict__
    g["__loader__"] = BuiltinImporter
    # Up to 3.13 the interpreter gives __main__ an empty __annotations__ (PEP 649 ended
    # that): ours has one when the interpreter's has it.
    if "__annotations__" in _launcher_globals():
        g["__annotations__"] = {}
    g["__builtins__"] = builtins
    return module


def _empty_code() -> Any:
    return compile("", "<viztracer>", "exec", dont_inherit=True)


def _script_keys(path: str) -> Any:
    """The global names python gives a script it runs (``__cached__`` up to 3.14)."""
    launcher = _launcher_globals()
    if "__file__" in launcher and launcher.get("__spec__", True) is None:
        # The console script: the interpreter ran it as a script.
        return launcher.keys()
    # python -m viztracer (runpy): runpy's own emulation of a script run.
    import runpy
    return runpy._run_code(_empty_code(), {}, None, "__main__", script_name=path).keys()  # type: ignore[attr-defined]


_path0_done: List[str] = []


def install_path0(path0: Optional[str]) -> None:
    """Put ``path0`` first in ``sys.path`` where python puts the directory of the
    program, in place of the launcher's entry (the console script's directory, or
    the current directory for ``python -m viztracer``). Nothing in isolated or
    safe-path mode, where python adds no such entry."""
    if path0 is None or _path0_done or sys.flags.isolated or getattr(sys.flags, "safe_path", False):
        return
    _path0_done.append(path0)
    launcher = sys.modules.get("__main__")
    candidates = {os.getcwd(), ""}
    launcher_file = getattr(launcher, "__file__", None)
    if launcher_file:
        candidates.add(os.path.dirname(os.path.realpath(launcher_file)))
        candidates.add(os.path.dirname(os.path.abspath(launcher_file)))
    if sys.argv and sys.argv[0]:
        candidates.add(os.path.dirname(os.path.realpath(sys.argv[0])))
    if sys.path and sys.path[0] in candidates:
        sys.path[0] = path0
    else:
        sys.path.insert(0, path0)


def find_script(name: str) -> Optional[str]:
    """``name`` as a file in (or relative to) the current directory, else on ``$PATH``."""
    if os.path.isfile(name):
        return name
    if os.sep in name or (os.altsep and os.altsep in name):
        return None
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = os.path.join(folder or os.curdir, name)
        if os.path.isfile(candidate):
            return candidate
    return None


def _looks_like_python(path: str) -> bool:
    """Whether a file found on $PATH can be run by Python (not a binary or a shell script)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    if b"\0" in head:
        return False
    if head.startswith(b"#!"):
        return b"python" in head.split(b"\n", 1)[0]
    return True


def _make_compiler(ns: argparse.Namespace, file_name: str) -> Callable[..., Any]:
    """``compile``, or the instrumenting compiler of viztracer.code_monkey when a
    source-instrumentation flag is given (:class:`TracedRun` makes it
    ``builtins.compile`` while the program runs)."""
    wanted = [(flag, INSTRUMENT_FLAGS[flag]) for flag in INSTRUMENT_FLAGS
              if getattr(ns, flag) not in (None, False)]
    if not wanted and not ns.magic_comment:
        return compile
    try:
        from .code_monkey import CodeMonkey
    except ImportError as e:
        flags = ", ".join("--" + f for f, _ in wanted) or "--magic_comment"
        raise CliError(f"{flags} need source instrumentation (viztracer.code_monkey), "
                       f"which this installation lacks: {e}") from e
    monkey = CodeMonkey(file_name)
    for flag, (kind, arg_name) in wanted:
        try:
            monkey.add_instrument(kind, {} if arg_name is None else {arg_name: list(getattr(ns, flag))})
        except (TypeError, ValueError) as e:
            raise CliError(f"--{flag}: {e}") from e
    if ns.magic_comment:
        monkey.add_source_processor()
    return monkey.compile


def _compile(compiler: Callable[..., Any], source: Any, filename: str) -> Any:
    try:
        return compiler(source, filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as e:
        # As python does for its main script: no traceback lines, just the error.
        raise ProgramFailedToStart(e) from e


class ProgramFailedToStart(Exception):
    """The program's own error before it ran (a SyntaxError...): shown like python does."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def prepare_script(ns: argparse.Namespace, command: List[str]) -> Program:
    name = command[0]
    if name.endswith(".json") or name.endswith(".json.gz"):
        raise CliError(f'viztracer can\'t run json file, did you mean "vizviewer {name}"?')
    if os.path.isdir(name) or (os.path.isfile(name) and _is_zip(name)):
        return prepare_main_of(ns, command)
    path = find_script(name)
    if path is None:
        raise CliError(f"No such file as {name}")
    argv = list(command)
    if path != name:  # found on $PATH: what the program sees when run from the shell
        if not _looks_like_python(path):
            raise CliError(f"{path} (found on $PATH) is not a Python script; viztracer runs Python programs only")
        argv[0] = path
    abs_path = os.path.abspath(path)
    try:
        import io
        with io.open_code(abs_path) as f:
            source = f.read()
    except OSError as e:
        raise CliError(f"Unable to read {path}: {e.strerror or e}") from e
    compiler = _make_compiler(ns, abs_path)
    code = _compile(compiler, source, abs_path)
    from importlib.machinery import SourceFileLoader
    module = new_main_module()
    module.__loader__ = SourceFileLoader("__main__", abs_path)
    module.__file__ = abs_path
    if "__cached__" in _script_keys(abs_path):
        module.__cached__ = None
    base = os.path.splitext(os.path.basename(abs_path))[0] or "python"
    return Program("script", code, argv, os.path.dirname(os.path.realpath(abs_path)), module, base, compiler)


def _is_zip(path: str) -> bool:
    import zipfile
    try:
        return zipfile.is_zipfile(path)
    except OSError:
        return False


def _module_program(ns: argparse.Namespace, get_details: Callable[[Any], Any], argv_rest: List[str],
                    argv0: Optional[str], path0: str, base_name: str) -> Program:
    """A module found by runpy (``-m``, or the ``__main__`` of a directory or zip file)."""
    import runpy

    error_type = getattr(runpy, "_Error", ImportError)
    try:
        mod_name, spec, code = get_details(error_type)
    except error_type as e:
        # python's own message
        raise CliError(f"{sys.executable}: {e}", stream="stderr") from e
    except SyntaxError as e:
        raise ProgramFailedToStart(e) from e
    compiler = _make_compiler(ns, spec.origin or mod_name)
    if compiler is not compile and spec.origin and hasattr(spec.loader, "get_source"):
        # Instrument the source itself: a cached .pyc would bypass builtins.compile.
        source = spec.loader.get_source(mod_name)
        if source is not None:
            code = _compile(compiler, source, spec.origin)
    module = new_main_module()
    # What python -m does to its __main__ before running the code, by runpy itself
    # (on an empty code object): __file__, __loader__, __spec__... as this version sets them.
    runpy._run_code(_empty_code(), module.__dict__, None, "__main__", spec)  # type: ignore[attr-defined]
    argv = [argv0 if argv0 is not None else (spec.origin or mod_name)] + argv_rest
    return Program("module", code, argv, path0, module, base_name, compiler)


def prepare_main_of(ns: argparse.Namespace, command: List[str]) -> Program:
    """A directory or zip file with a ``__main__.py``, as ``python dir_or_zip`` runs it."""
    import runpy

    name = command[0]
    path0 = name if os.path.isabs(name) else os.path.join(os.getcwd(), name)
    install_path0(path0)  # python finds __main__ there first
    if not _path0_done or sys.path[0] != path0:
        sys.path.insert(0, path0)
    base = os.path.splitext(os.path.basename(os.path.normpath(name)))[0] or "python"
    return _module_program(ns, lambda err: runpy._get_main_module_details(err),  # type: ignore[attr-defined]
                           command[1:], name, path0, base)


def prepare_module(ns: argparse.Namespace, command: List[str]) -> Program:
    import runpy

    install_path0(os.getcwd())  # python -m finds the module from the current directory
    return _module_program(ns, lambda err: runpy._get_module_details(ns.module, err),  # type: ignore[attr-defined]
                           command, None, os.getcwd(), ns.module.rsplit(".", 1)[-1])


def prepare_string(ns: argparse.Namespace, command: List[str]) -> Program:
    compiler = _make_compiler(ns, "<string>")
    code = _compile(compiler, ns.cmd_string, "<string>")
    return Program("string", code, ["-c"] + command, "", new_main_module(), "python", compiler)


def prepare_program(ns: argparse.Namespace, command: List[str]) -> Program:
    if ns.cmd_string is not None:
        return prepare_string(ns, command)
    if ns.module is not None:
        return prepare_module(ns, command)
    return prepare_script(ns, command)


# =========================================================================== the tracer

def output_path(ns: argparse.Namespace, base_name: str) -> str:
    """The trace file the options ask for (checked: .json, .gz or .html)."""
    from .options import output_kind
    from .util import unique_file_name

    if ns.unique_output_file:
        name = unique_file_name(base_name)
    else:
        name = ns.output_file or DEFAULT_OUTPUT
    if ns.output_dir:
        try:
            os.makedirs(ns.output_dir, exist_ok=True)
        except OSError as e:
            raise CliError(f"Unable to create output directory {ns.output_dir}: {e.strerror or e}") from e
        name = os.path.join(ns.output_dir, name)
    try:
        output_kind(name)
    except ValueError as e:
        raise CliError("Only html, json and gz are supported") from e
    return os.path.abspath(name)


def min_duration_us(ns: argparse.Namespace) -> float:
    from .util import time_str_to_us

    if ns.min_duration is None:
        return 0.0
    try:
        return time_str_to_us(ns.min_duration)
    except ValueError as e:
        raise CliError(f"Can't convert {ns.min_duration} to time. Format should be 0.3ms or 13us") from e


def tracer_kwargs(ns: argparse.Namespace, output_file: str) -> Dict[str, Any]:
    """The ``VizTracer`` constructor arguments the options stand for."""
    kwargs: Dict[str, Any] = {
        "tracer_entries": 1000000 if ns.tracer_entries is None else ns.tracer_entries,
        "verbose": 0 if ns.quiet else 1,
        "output_file": output_file,
        "max_stack_depth": -1 if ns.max_stack_depth is None else ns.max_stack_depth,
        "include_files": ns.include_files,
        "exclude_files": ns.exclude_files,
        "ignore_c_function": ns.ignore_c_function,
        "ignore_frozen": ns.ignore_frozen,
        "ignore_multiprocess": ns.ignore_multiprocess,
        "log_func_retval": ns.log_func_retval,
        "log_func_args": ns.log_func_args,
        "log_func_with_objprint": ns.log_func_with_objprint,
        "log_print": ns.log_print,
        "log_gc": ns.log_gc,
        "log_sparse": ns.log_sparse,
        "log_async": ns.log_async,
        "log_audit": ns.log_audit,
        "log_torch": ns.log_torch,
        "pid_suffix": ns.pid_suffix,
        "file_info": True,
        "register_global": True,
        "plugins": ns.plugins,
        "trace_self": ns.trace_self,
        "min_duration": min_duration_us(ns),
        "sanitize_function_name": ns.sanitize_function_name,
        "dump_raw": ns.dump_raw,
        "minimize_memory": ns.minimize_memory,
    }
    if ns.fast_calls:
        kwargs["fast_calls"] = True
    return kwargs


def build_tracer(kwargs: Dict[str, Any]) -> Any:
    from .viztracer import VizTracer

    try:
        return VizTracer(**kwargs)
    except ImportError as e:
        if kwargs.get("log_torch") and "torch" in str(e):
            raise CliError("torch is not installed") from e
        raise CliError(str(e)) from e
    except (TypeError, ValueError) as e:
        raise CliError(str(e)) from e


def leave_outer_trace() -> None:
    """When this command runs inside a program that is being traced (its child-process
    tracing started a tracer in this process), that tracer stops and drops what it
    has: this command records the program itself, into its own file."""
    from .viztracer import get_tracer

    outer = get_tracer()
    if outer is not None and outer.enable:
        outer.stop()
        outer.clear()


# =========================================================================== running

class TracedRun:
    """Runs a :class:`Program` under ``tracer`` as Python would run it, and saves the
    trace once.

    Python's own order at the end of a program is kept: the traceback or the
    ``sys.exit`` message, then ``threading`` exit callbacks (newest first) and the
    join of non-daemon threads, then ``atexit`` callbacks; the trace is saved after
    all of them, and the exit status is the program's. Unless ``log_exit``, recording
    stops as soon as the top-level code is done."""

    def __init__(self, tracer: Any, program: Program, log_exit: bool = False,
                 open_viewer: bool = False) -> None:
        self.tracer = tracer
        self.program = program
        self.log_exit = log_exit
        self.open_viewer = open_viewer
        self.pid = os.getpid()
        self.state = "ready"  # -> "running" -> "saving" -> "saved"
        self.pending_signal: Optional[int] = None
        self.save_failed = False
        self._real_os_exit = os._exit

    # ---------------------------------------------------------------- setting up

    def install_program(self) -> None:
        """``sys.argv``, ``sys.path[0]`` and ``sys.modules['__main__']`` as python sets
        them; the instrumenting compiler as ``builtins.compile`` (for what the
        program compiles or imports of its own file), until :meth:`run` ends."""
        import builtins

        program = self.program
        install_path0(program.path0)
        sys.argv[:] = program.argv
        sys.modules["__main__"] = program.module
        if program.compiler is not None:
            self._real_compile = builtins.compile
            builtins.compile = program.compiler

    def uninstall_compiler(self) -> None:
        import builtins

        # (A compile the program put in place itself is the program's to keep.)
        if self.program.compiler is not None and builtins.compile is self.program.compiler:
            builtins.compile = self._real_compile

    def install_exit_hooks(self) -> None:
        """Save before ``os._exit`` and ``os.exec*``, and on SIGTERM (then die from it,
        as untraced)."""
        import signal
        import threading

        def exit_now(status: int) -> None:
            if os.getpid() == self.pid and self.state in ("ready", "running"):
                self.save()
            self._real_os_exit(status)

        exit_now.__doc__ = self._real_os_exit.__doc__
        os._exit = exit_now  # type: ignore[assignment]

        def before_exec(event: str, args: Any) -> None:
            # os.exec* replaces the process: nothing of ours would run after it.
            if event == "os.exec" and os.getpid() == self.pid and self.state in ("ready", "running"):
                self.save()

        sys.addaudithook(before_exec)

        if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGTERM"):
            # (Not if SIGTERM is ignored: the program inherits that, as untraced.)
            if signal.getsignal(signal.SIGTERM) != signal.SIG_IGN:
                from .term_signal import catch_sigterm
                catch_sigterm(self._on_fatal_signal)

    def _on_fatal_signal(self, signum: int, frame: Any) -> None:
        if os.getpid() != self.pid:  # a forked child: behave as if we were not here
            self._die(signum, flush=False)
        if self.state == "saving":
            self.pending_signal = signum
            return
        if self.state in ("ready", "running"):
            # A signal handler can run in the middle of a write to stdout, whose
            # buffer is then locked: print through streams of our own meanwhile.
            with _own_std_streams():
                self.save()
        self._die(signum)

    def _die(self, signum: int, flush: bool = True) -> None:
        import signal

        if flush:
            _flush_std()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        self._real_os_exit(128 + signum)  # only if the signal is blocked

    # ---------------------------------------------------------------- running

    def run(self) -> int:
        """Runs the program to its end; returns its exit status (or re-raises a
        KeyboardInterrupt that ended it, after saving)."""
        try:
            return self._run()
        finally:
            # The program is over: whoever calls the CLI in-process (a test) goes on
            # with the real compile.
            self.uninstall_compiler()

    def _run(self) -> int:
        self.install_program()
        self.install_exit_hooks()
        tracer = self.tracer
        code, main_globals = self.program.code, self.program.globals
        error: Optional[BaseException] = None
        self.state = "running"
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
        for callback in self.take_threading_atexits():
            try:
                callback()
            except Exception:
                self.print_exception()
        try:
            for thread in self.threads_to_join():
                thread.join()
        except KeyboardInterrupt:
            pass
        import atexit
        atexit._run_exitfuncs()

        self.save()
        if self.save_failed and status == 0:
            status = 1
        if self.pending_signal is not None:
            self._die(self.pending_signal)
        if self.open_viewer and not self.save_failed:
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
            _flush_std()
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
        _flush_std()
        try:
            sys.excepthook(type(error), error, tb)
        except BaseException:
            import traceback
            traceback.print_exception(type(error), error, tb)
        return 1

    @staticmethod
    def print_exception() -> None:
        import traceback
        traceback.print_exc()

    @staticmethod
    def take_threading_atexits() -> List[Callable[[], Any]]:
        """The ``threading`` exit callbacks, newest first (as threading runs them), removed."""
        import threading

        callbacks = getattr(threading, "_threading_atexits", None)
        if not callbacks:
            return []
        taken = list(reversed(callbacks))
        callbacks.clear()
        if hasattr(threading, "_SHUTTING_DOWN"):
            threading._SHUTTING_DOWN = True
        return taken

    @staticmethod
    def threads_to_join() -> Any:
        """Non-daemon threads still running, as python waits for them before atexit."""
        import threading

        main = threading.main_thread()
        seen = set()
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
        from .util import add_pid_suffix

        path = self.tracer.output_file
        if self.tracer.pid_suffix:
            path = add_pid_suffix(path, os.getpid())
        return os.path.abspath(path)

    def save(self) -> None:
        """Stop recording and write the trace; once, whatever calls it first.

        Ctrl+C while saving cuts short what can be cut short (the wait for child
        processes saves without them); the process then ends as interrupted."""
        import signal

        if self.state in ("saving", "saved"):
            return
        self.state = "saving"
        stdout = sys.stdout
        try:
            if stdout is None or getattr(stdout, "closed", False):
                sys.stdout = sys.__stdout__ if sys.__stdout__ is not None and not sys.__stdout__.closed \
                    else open(os.devnull, "w")
            try:
                self.tracer.exit_routine()
            except KeyboardInterrupt:
                self.pending_signal = signal.SIGINT
                self.save_failed = not os.path.exists(self.saved_path())
                _print_quietly("viztracer: interrupted while saving the trace", file=sys.stderr)
            except BrokenPipeError:
                # Nobody reads our summary any more (``viztracer prog.py | head``); the
                # trace itself is written before it is printed.
                self.save_failed = not os.path.exists(self.saved_path())
            except Exception as e:
                self.save_failed = True
                _print_quietly(f"viztracer: failed to save the trace to {self.tracer.output_file}: {e}",
                               file=sys.stderr)
            _flush_std()
        finally:
            sys.stdout = stdout
            self.state = "saved"


def _print_quietly(*args: Any, **kwargs: Any) -> None:
    try:
        print(*args, **kwargs)
    except Exception:
        pass


def _flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            pass


@contextlib.contextmanager
def _own_std_streams() -> Iterator[None]:
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


def raise_keyboard_interrupt_quietly() -> None:
    """End the process as an uncaught KeyboardInterrupt does (killed by SIGINT after
    finalization), without printing the traceback a second time."""
    sys.excepthook = lambda *args: None
    raise KeyboardInterrupt


def open_in_viewer(path: str) -> None:
    import subprocess

    # Port 0: any free port (the browser is sent to it), so a vizviewer already
    # running on the default port is no obstacle.
    subprocess.run([sys.executable, "-m", "viztracer.viewer", "--once", "--port", "0", path])


# =========================================================================== other modes

def run_combine(ns: argparse.Namespace, files: List[str], align: bool) -> int:
    from .report_builder import ReportBuilder

    if not files:
        raise CliError("Nothing to combine: give the trace files after --combine/--align_combine")
    for f in files:
        if not os.path.isfile(f):
            raise CliError(f"Unable to find file {f}")
        if not (f.endswith(".json") or f.endswith(".json.gz")):
            raise CliError(f"Only json reports can be combined, {f} is not one")
    out = ns.output_file or DEFAULT_OUTPUT
    if ns.output_dir:
        out = os.path.join(ns.output_dir, out)
    from .options import output_kind
    try:
        output_kind(out)
    except ValueError as e:
        raise CliError("Only html, json and gz are supported") from e
    try:
        builder = ReportBuilder(files, verbose=0 if ns.quiet else 1, align=align,
                                minimize_memory=ns.minimize_memory)
        builder.save(out)
    except ValueError as e:
        raise CliError(str(e)) from e
    return 0


def run_compress(ns: argparse.Namespace) -> int:
    from . import compressor

    src = ns.compress
    if not os.path.isfile(src):
        raise CliError(f"Unable to find file {src}")
    if not (src.endswith(".json") or src.endswith(".json.gz") or src.endswith(".gz")):
        raise CliError("Only support compressing json report")
    out = ns.output_file or "result.cvf"
    try:
        stats = compressor.compress_file(src, out)
    except compressor.FormatError as e:
        raise CliError(f"Unable to compress {src}: {e}") from e
    if not ns.quiet:
        print(f"Compressed {src} ({stats['input_bytes']} bytes) to {out} ({stats['output_bytes']} bytes)")
    return 0


def run_decompress(ns: argparse.Namespace) -> int:
    from . import compressor
    from .options import output_kind

    src = ns.decompress
    if not os.path.isfile(src):
        raise CliError(f"Unable to find file {src}")
    out = ns.output_file or DEFAULT_OUTPUT
    try:
        kind = output_kind(out)
    except ValueError as e:
        raise CliError("Only html, json and gz are supported") from e
    try:
        if kind == "html":
            from .report_builder import ReportBuilder
            with open(src, "rb") as f:
                trace = compressor.decompress(f.read())
            ReportBuilder(trace, verbose=0).save(out, file_info="file_info" not in trace)
        else:
            compressor.decompress_file(src, out)
    except compressor.FormatError as e:
        raise CliError(f"Unable to decompress {src}: {e}") from e
    if not ns.quiet:
        print(f"Decompressed {src} to {out}")
    return 0


def run_attach(ns: argparse.Namespace) -> int:
    raise CliError("Attaching to a running process (--attach, --attach_installed, --uninstall) "
                   "is not supported by this viztracer; start the program with viztracer instead")


# =========================================================================== entry point

class CommandLine:
    def __init__(self, argv: Optional[Sequence[str]] = None) -> None:
        self.argv = list(sys.argv[1:] if argv is None else argv)
        self.parser: Optional[argparse.ArgumentParser] = None

    def run(self) -> int:
        if not self.argv:
            build_parser().print_help()
            return 0
        ns, command, self.parser = parse_command_line(self.argv)
        self.ns, self.command = ns, command
        for flag in ("log_subprocess", "log_multiprocess"):
            if getattr(ns, flag):
                from .util import color_print
                color_print("YELLOW", f"--{flag} is deprecated and has no effect: "
                                      "child processes are traced by default")
        if ns.attach >= 0 or ns.attach_installed >= 0 or ns.uninstall >= 0:
            return run_attach(ns)
        if ns.cmd_string is not None or ns.module is not None or command:
            return self.trace_program()
        if ns.compress is not None:
            return run_compress(ns)
        if ns.decompress is not None:
            return run_decompress(ns)
        if ns.combine is not None:
            return run_combine(ns, ns.combine, align=False)
        if ns.align_combine is not None:
            return run_combine(ns, ns.align_combine, align=True)
        self.parser.print_help()
        return 0

    def trace_program(self) -> int:
        ns = self.ns
        program = prepare_program(ns, self.command)
        output = output_path(ns, program.base_name)
        leave_outer_trace()
        tracer = build_tracer(tracer_kwargs(ns, output))
        return TracedRun(tracer, program, log_exit=ns.log_exit, open_viewer=ns.open).run()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``viztracer`` console script and ``python -m viztracer``;
    returns the exit status."""
    try:
        return CommandLine(argv).run()
    except CliError as e:
        stream = sys.stderr if e.stream == "stderr" else sys.stdout
        print(e.message, file=stream)
        return e.code
    except ProgramFailedToStart as e:
        error = e.error
        error.__traceback__ = None
        error.__context__ = None
        sys.excepthook(type(error), error, None)
        return 1
