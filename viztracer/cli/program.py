"""What is to be run as ``__main__`` (a script, ``-m`` module, ``-c`` string, or a
directory/zip with ``__main__.py``): read and compiled, not started."""

from __future__ import annotations

import argparse
import builtins
import contextlib
import io
import os
import sys
import types
from importlib.machinery import BuiltinImporter, SourceFileLoader
from typing import Any, Callable, Dict, Iterator, List, Optional

from .arguments import INSTRUMENT_FLAGS
from .errors import CliError, ProgramFailedToStart


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


@contextlib.contextmanager
def launch_state_restored() -> Iterator[None]:
    """``sys.argv``, ``sys.path`` and ``sys.modules["__main__"]`` as they were before
    the program was set up, once it is over: code that calls the command line in its
    own process (a test, a notebook) gets its own back."""
    argv, path, main = list(sys.argv), list(sys.path), sys.modules.get("__main__")
    try:
        yield
    finally:
        sys.argv[:] = argv
        sys.path[:] = path
        if main is not None:
            sys.modules["__main__"] = main
        _path0_done.clear()


@contextlib.contextmanager
def program_import_path(program: Program) -> Iterator[None]:
    """While the tracer is built, its plugins (``--plugins pkg.module``) import as the
    program would import them: from the program's directory and the current
    directory. ``sys.path`` is given back afterwards, so the program sees its own."""
    saved = list(sys.path)
    cwd = os.getcwd()
    front = [program.path0 or cwd, cwd]
    sys.path[:0] = [p for i, p in enumerate(front) if p not in front[:i]]
    try:
        yield
    finally:
        sys.path[:] = saved


def _launcher_globals() -> Dict[str, Any]:
    """The globals of the module that runs viztracer: the interpreter's own
    ``__main__`` (the console script, or ``viztracer/__main__.py`` for ``python -m``)."""
    return getattr(sys.modules.get("__main__"), "__dict__", None) or {}


def new_main_module() -> Any:
    """A ``__main__`` module holding what the interpreter puts in its own before it
    runs anything in it (what ``python -c`` code sees)."""
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
    import runpy  # program: a script run untraced does not import it
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
    from ..code_monkey import CodeMonkey  # program: the instrumentation flags only (it imports ast)

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
        with io.open_code(abs_path) as f:
            source = f.read()
    except OSError as e:
        raise CliError(f"Unable to read {path}: {e.strerror or e}") from e
    compiler = _make_compiler(ns, abs_path)
    code = _compile(compiler, source, abs_path)
    module = new_main_module()
    module.__loader__ = SourceFileLoader("__main__", abs_path)
    module.__file__ = abs_path
    if "__cached__" in _script_keys(abs_path):
        module.__cached__ = None
    base = os.path.splitext(os.path.basename(abs_path))[0] or "python"
    return Program("script", code, argv, os.path.dirname(os.path.realpath(abs_path)), module, base, compiler)


def _is_zip(path: str) -> bool:
    # A zip archive ends with an end-of-central-directory record (within its last
    # 64 KiB, the longest comment): look for its signature before importing zipfile,
    # which the program would otherwise find imported.
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - (1 << 16) - 22))
            if b"PK\x05\x06" not in f.read():
                return False
        import zipfile  # program: see above
        return zipfile.is_zipfile(path)
    except OSError:
        return False


def _module_program(ns: argparse.Namespace, get_details: Callable[[Any], Any], argv_rest: List[str],
                    argv0: Optional[str], path0: str, base_name: str) -> Program:
    """A module found by runpy (``-m``, or the ``__main__`` of a directory or zip file)."""
    import runpy  # program: a script run untraced does not import it

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
    import runpy  # program: a script run untraced does not import it

    name = command[0]
    path0 = name if os.path.isabs(name) else os.path.join(os.getcwd(), name)
    install_path0(path0)  # python finds __main__ there first
    if not _path0_done or sys.path[0] != path0:
        sys.path.insert(0, path0)
    base = os.path.splitext(os.path.basename(os.path.normpath(name)))[0] or "python"
    return _module_program(ns, lambda err: runpy._get_main_module_details(err),  # type: ignore[attr-defined]
                           command[1:], name, path0, base)


def prepare_module(ns: argparse.Namespace, command: List[str]) -> Program:
    import runpy  # program: a script run untraced does not import it

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
