"""Write out what is made from the option table (viztracer/options.py).

    python tools/options_gen.py                rewrite the generated blocks (make options)
    python tools/options_gen.py --check        exit 1, naming the stale files, if any differs
    python tools/options_gen.py --root DIR     work on the copy of the project in DIR

A generated block sits between a begin marker comment, ``# generated: NAME ...``
(``<!-- generated: NAME ... -->`` in Markdown), and an end marker comment,
``# end of generated: NAME`` (``<!-- end of generated: NAME -->``). The lines between
them are rewritten (indented like the begin marker); everything else in the files is
written by hand. The blocks:

- viztracer/viztracer.py, ``attributes``: the ``name: value_type = attribute()``
  lines of ``VizTracer``'s class body (the options stored as ``"attr"``);
- viztracer/viztracer.py, ``parameters``: the parameters of ``VizTracer.__init__``,
  every option with its annotation and default, in table order;
- viztracer/_snaptrace.pyi, ``options``: the members of ``Tracer`` that hold
  options (the ``native`` attribute of each native option; a read-only property for
  a ``"readonly"`` one);
- docs/api.md, ``api``, and docs/cli.md, ``cli``: the option tables of the docs.

tests/test_option_table.py runs the check, and adds an option to a copy of the
project to show that this command is all it needs besides the table.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import html
import importlib
import importlib.util
import json
import os
import re
import sys
from typing import Any, Callable, List, Optional, Set, Tuple


class TableError(Exception):
    """A table entry that can't be written out (the message says why)."""


# =========================================================================== Python code

def _literal(value: Any) -> str:
    """``value`` as Python source; only literals that read back as themselves."""
    text = json.dumps(value) if isinstance(value, str) else repr(value)
    try:
        same = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        same = ...
    if not (value is None or type(value) in (bool, int, float, str)) or same != value or type(same) is not type(value):
        raise TableError(f"the default of an option must be None, a bool, a number or a str, not {value!r}")
    return text


def _check_names(annotation: str, known: Set[str], option: str, path: str) -> None:
    """Every name ``annotation`` uses is imported by (or built into) the file at ``path``."""
    try:
        tree = ast.parse(annotation, mode="eval")
    except SyntaxError:
        raise TableError(f"the type of option {option} is not a Python annotation: {annotation!r}") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in known:
            raise TableError(f"the type of option {option} uses {node.id}, which {path} does not import")


def _module_names(source: str) -> Set[str]:
    """The names a module's top-level imports bind, and the builtins."""
    names = set(dir(builtins))
    for node in ast.parse(source).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


def attributes(options: Any, known: Set[str], path: str) -> List[str]:
    """The class-body lines of the options ``VizTracer`` keeps as validating attributes."""
    lines = []
    for spec in options.OPTIONS:
        if spec.store == "attr":
            _check_names(spec.value_type, known, spec.name, path)
            lines.append(f"{spec.name}: {spec.value_type} = attribute()")
    return lines


def parameters(options: Any, known: Set[str], path: str) -> List[str]:
    """``VizTracer.__init__``'s parameters (after ``self``), one a line."""
    lines = []
    for spec in options.OPTIONS:
        _check_names(spec.type, known, spec.name, path)
        try:
            default = _literal(spec.default)
        except TableError as e:
            raise TableError(f"option {spec.name}: {e}") from None
        lines.append(f"{spec.name}: {spec.type} = {default},")
    return lines


def native_members(options: Any, known: Set[str], path: str) -> List[str]:
    """The members of ``_snaptrace.Tracer`` that hold options, as the stub declares them."""
    lines = []
    for spec in options.OPTIONS:
        if spec.native is None:
            continue
        _check_names(spec.value_type, known, spec.name, path)
        if spec.store == "readonly":
            lines += ["@property", f"def {spec.native}(self) -> {spec.value_type}: ..."]
        else:
            lines.append(f"{spec.native}: {spec.value_type}")
    return lines


# =========================================================================== docs

def _code(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, str) else repr(value)
    return f"`{text}`"


def command_line(spec: Any) -> str:
    """How the option is written on the command line, e.g. ``--max_stack_depth N``."""
    cli = spec.cli
    if cli is None or spec.flag is None:
        return ""
    value = "" if not cli.takes_value else f" {cli.metavar} ..." if cli.kind == "list" else f" {cli.metavar}"
    spellings = [f"`{flag}{value}`" for flag in ([cli.short] if cli.short else []) + [spec.flag]]
    return ", ".join(spellings)


def children(options: Any, spec: Any) -> str:
    if spec.inherited:
        return "inherited"
    if spec.child is options.DEFAULT:
        return "default"
    return _code(spec.child)


def api_table(options: Any, known: Set[str], path: str) -> List[str]:
    lines = ["| option | default | command line | child processes | meaning |", "|---|---|---|---|---|"]
    for spec in options.OPTIONS:
        lines.append(f"| `{spec.name}` | {_code(spec.default)} | {command_line(spec)} | {children(options, spec)} "
                     f"| {spec.doc} |")
    return lines


def cli_table(options: Any, known: Set[str], path: str) -> List[str]:
    """The options with a flag, by group in the order of ``--help``."""
    lines = ["| option | VizTracer option | meaning |", "|---|---|---|"]
    for group in (options.OUTPUT, options.RECORDED, options.EXTRA, options.COLLECT):
        for spec in options.OPTIONS:
            if spec.cli is not None and spec.cli.group == group:
                meaning = html.escape(spec.help[0].upper() + spec.help[1:], quote=False)
                lines.append(f"| {command_line(spec)} | `{spec.name}` | {meaning} |")
    return lines


# =========================================================================== blocks

Maker = Callable[[Any, Set[str], str], List[str]]

# (file, block name, what writes its lines), files in the order they are rewritten.
BLOCKS: Tuple[Tuple[str, str, Maker], ...] = (
    ("viztracer/viztracer.py", "attributes", attributes),
    ("viztracer/viztracer.py", "parameters", parameters),
    ("viztracer/_snaptrace.pyi", "options", native_members),
    ("docs/api.md", "api", api_table),
    ("docs/cli.md", "cli", cli_table),
)


def replace_block(text: str, name: str, lines: List[str], path: str) -> str:
    """``text`` with the lines of block ``name`` replaced by ``lines``."""
    old = text.splitlines(keepends=True)
    begin = re.compile(r"^(\s*)(?:#|<!--) generated: " + re.escape(name) + r"(?:\s|$)")
    end = re.compile(r"^\s*(?:#|<!--) end of generated: " + re.escape(name) + r"(?:\s|-->|$)")
    begins = [i for i, line in enumerate(old) if begin.match(line)]
    ends = [i for i, line in enumerate(old) if end.match(line)]
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        raise TableError(f"{path} needs one 'generated: {name}' marker comment, then one "
                         f"'end of generated: {name}' (found {len(begins)} and {len(ends)})")
    match = begin.match(old[begins[0]])
    indent = match.group(1) if match else ""
    new = [(indent + line if line else "") + "\n" for line in lines]
    return "".join(old[:begins[0] + 1] + new + old[ends[0]:])


def load_table(root: str) -> Any:
    """viztracer/options.py of the project in ``root``, imported without the package's
    ``__init__`` (and so without the native extension, or code that a stale block may
    have broken): under a name of its own, so that it is that file whatever
    ``viztracer`` is installed."""
    directory = os.path.join(root, "viztracer")
    init = os.path.join(directory, "__init__.py")
    if not os.path.exists(os.path.join(directory, "options.py")):
        raise TableError(f"no viztracer/options.py in {root}")
    spec = importlib.util.spec_from_file_location(TABLE_PACKAGE, init, submodule_search_locations=[directory])
    assert spec is not None
    sys.modules[TABLE_PACKAGE] = importlib.util.module_from_spec(spec)  # (not run: the table needs none of it)
    return importlib.import_module(TABLE_PACKAGE + ".options")


TABLE_PACKAGE = "_viztracer_option_table"


def generate(root: str) -> List[Tuple[str, str, str]]:
    """``(path, current text, generated text)`` of every file with blocks."""
    options = load_table(root)
    out = []
    for path in dict.fromkeys(path for path, _, _ in BLOCKS):
        with open(os.path.join(root, path), encoding="utf-8") as f:
            text = f.read()
        known = _module_names(text) if path.endswith((".py", ".pyi")) else set()
        new = text
        for block_path, name, make in BLOCKS:
            if block_path == path:
                new = replace_block(new, name, make(options, known, path), path)
        out.append((path, text, new))
    return out


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Write out the blocks made from viztracer/options.py.")
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated block is out of date")
    parser.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        help="the project's directory (default: the one this script is in)")
    args = parser.parse_args(argv)
    try:
        files = generate(args.root)
    except TableError as e:
        print(f"options_gen: {e}", file=sys.stderr)
        return 2
    stale = [path for path, text, new in files if new != text]
    if args.check:
        if stale:
            print(f"generated option code is out of date in {', '.join(stale)}: run make options "
                  "(python tools/options_gen.py)")
            return 1
        return 0
    for path, text, new in files:
        if new != text:
            with open(os.path.join(args.root, path), "w", encoding="utf-8") as f:
                f.write(new)
            print(f"rewrote the generated blocks of {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
