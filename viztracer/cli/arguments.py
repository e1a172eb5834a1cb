"""From argv to options: the parser, ``--``/``--run``, the rcfile, and the
``VizTracer`` the options stand for."""

from __future__ import annotations

import argparse
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..multiprocess import leave_collection
from ..options import COLLECT, EXTRA, OPTION, OPTIONS, OUTPUT, RECORDED, Spec, output_kind
from ..util import time_str_to_us, unique_file_name
from ..version import __version__
from ..viztracer import VizTracer, get_tracer
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


OPTION_OUTPUT_FILE = OPTION["output_file"]  # -o, which excludes -u


def add_option(container: Any, spec: Spec) -> None:
    """Add the flag of a tracer option, as its entry in the option table spells it, to
    an argparse parser or group (or an IPython magic's ``argument`` decorator, which
    takes the same arguments: see :func:`option_flags`)."""
    flags, kwargs = option_flags(spec)
    container.add_argument(*flags, **kwargs)


def option_flags(spec: Spec) -> Tuple[List[str], Dict[str, Any]]:
    """``(flags, add_argument keyword arguments)`` of a tracer option. Every option is
    ``None`` (or ``False`` for a flag) when not given: :func:`option_kwarg` turns that
    into the constructor's value."""
    cli = spec.cli
    assert cli is not None and spec.flag is not None
    flags = [cli.short, spec.flag] if cli.short else [spec.flag]
    kwargs: Dict[str, Any] = {"help": spec.help}
    if not cli.takes_value:
        kwargs.update(action="store_true", default=False)
    else:
        kwargs.update(nargs="*" if cli.kind == "list" else "?", default=None, metavar=cli.metavar)
        if cli.kind in ("int", "float"):
            kwargs["type"] = int if cli.kind == "int" else float
    return flags, kwargs


def option_kwarg(spec: Spec, value: Any) -> Any:
    """The constructor argument of a tracer option parsed as ``value`` (what
    :func:`option_flags` made argparse store)."""
    assert spec.cli is not None
    kind = spec.cli.kind
    if kind == "flag":
        return bool(value)
    if kind == "compat" or value is None:
        return spec.default
    if kind == "time":
        try:
            return time_str_to_us(value)
        except ValueError as e:
            raise CliError(f"Can't convert {value} to time. Format should be 0.3ms or 13us") from e
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="viztracer",
        usage="viztracer [options] (script.py | -m module | -c code | -- command) [args ...]\n"
              "       viztracer --combine|--align_combine a.json b.json ... [-o out.json]\n"
              "       viztracer --compress a.json [-o a.cvf] | --decompress a.cvf [-o a.json]\n"
              "       viztracer --report_server [HOST:PORT] [--senders N] [-o out.json]",
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

    # The tracer's options come from the option table (viztracer/options.py), each in
    # the group its entry names, after the command line's own options of that group.
    groups: Dict[str, Any] = {}
    g = groups[OUTPUT] = parser.add_argument_group("output")
    out = g.add_mutually_exclusive_group()
    add_option(out, OPTION_OUTPUT_FILE)
    out.add_argument("-u", "--unique_output_file", action="store_true", default=False,
                     help="name the trace <program>_<date>_<time>_<pid>.json, so runs do not overwrite each other")
    g.add_argument("--output_dir", nargs="?", default=None, metavar="DIR",
                   help="put the trace in this directory (created if missing)")
    g.add_argument("--quiet", action="store_true", default=False,
                   help="print nothing of viztracer's own (errors excepted)")
    g.add_argument("--open", action="store_true", default=False,
                   help="open the trace in the browser (vizviewer --once) after saving it")

    g = groups[RECORDED] = parser.add_argument_group("what is recorded")
    g.add_argument("--log_exit", action="store_true", default=False,
                   help="keep recording after the program's top-level code: thread and atexit "
                        "callbacks, until the process exits")

    groups[EXTRA] = parser.add_argument_group("extra events")
    g = groups[COLLECT] = parser.add_argument_group(
        "one trace from many processes and machines (see also --ignore_multiprocess)")
    g.add_argument("--report_server", nargs="?", const="", default=None, metavar="HOST:PORT",
                   help="run a collector: processes started with --report_endpoint HOST:PORT (or "
                        "VIZTRACER_REPORT_SERVER_ENDPOINT) send it their traces, written into one (-o) on Ctrl+C "
                        "or Enter (default 127.0.0.1 on a free port, printed)")
    g.add_argument("--senders", type=int, default=None, metavar="N",
                   help="with --report_server: write the trace once N senders have finished and no other "
                        "is still sending")
    for spec in OPTIONS:
        if spec.cli is not None and spec is not OPTION_OUTPUT_FILE:
            add_option(groups[spec.cli.group], spec)

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

    g = parser.add_argument_group("attaching to a running process")
    g.add_argument("--attach", nargs="?", type=int, default=-1, metavar="PID",
                   help="trace a running Python program for -t seconds or until Ctrl+C (it saves to -o; "
                        "tracer options apply; before Python 3.14 this needs gdb)")
    g.add_argument("--attach_installed", nargs="?", type=int, default=-1, metavar="PID",
                   help="start the tracer of a program that called tracer.install(), then stop it "
                        "(after -t seconds or Ctrl+C): the program saves to its tracer's output_file")
    g.add_argument("--uninstall", nargs="?", type=int, default=-1, metavar="PID",
                   help="stop and remove any tracer in a running Python program, without saving")
    g.add_argument("-t", nargs="?", type=float, default=None, metavar="SECONDS",
                   help="with --attach or --attach_installed: how long to trace (default: until Ctrl+C)")

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
    import configparser  # start-up: an rcfile only

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


def tracer_kwargs(ns: argparse.Namespace, output_file: str) -> Dict[str, Any]:
    """The ``VizTracer`` constructor arguments the options stand for: every option of
    the table that has a flag, ``--quiet`` for ``verbose``, and the output file (as
    :func:`output_path` made it)."""
    kwargs = {spec.name: option_kwarg(spec, getattr(ns, spec.name)) for spec in OPTIONS if spec.cli is not None}
    kwargs["output_file"] = output_file
    if ns.quiet:
        kwargs["verbose"] = 0
    return kwargs


def build_tracer(kwargs: Dict[str, Any]) -> Any:
    try:
        tracer = VizTracer(**kwargs)
        tracer._check_filters()  # (the constructor allows both; starting with both fails)
        return tracer
    except ImportError as e:
        if kwargs.get("log_torch") and "torch" in str(e):
            raise CliError("torch is not installed") from e
        raise CliError(str(e)) from e
    except (TypeError, ValueError) as e:
        raise CliError(str(e)) from e


def leave_outer_trace() -> None:
    """When this command runs inside a program that is being traced (its child-process
    tracing started a tracer in this process), that tracer stops, drops what it has
    and leaves the outer collection: this command records the program itself, into its
    own file, and prints what it prints untraced (even when that file is the outer
    run's output file, which a member tracer started later would otherwise join)."""
    outer = get_tracer()
    if outer is None:
        return
    if outer.enable:
        outer.stop()
        outer.clear()
    leave_collection(outer)
