"""From argv to options: the parser, ``--``/``--run``, the rcfile, and the
``VizTracer`` the options stand for."""

from __future__ import annotations

import argparse
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..version import __version__
from .errors import CliError

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


def output_path(ns: argparse.Namespace, base_name: str) -> str:
    """The trace file the options ask for (checked: .json, .gz or .html)."""
    from ..options import output_kind
    from ..util import unique_file_name

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
    from ..util import time_str_to_us

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
    from ..viztracer import VizTracer

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
    from ..viztracer import get_tracer

    outer = get_tracer()
    if outer is not None and outer.enable:
        outer.stop()
        outer.clear()
