"""The option tables of the docs, made from the option table (viztracer/options.py).

    python tools/options_doc.py           rewrite them in docs/api.md and docs/cli.md
    python tools/options_doc.py --check   exit 1 if they differ from the table

Each table sits between a ``<!-- option table: NAME ... -->`` line and an
``<!-- end of option table -->`` line; everything else in the pages is written by
hand. tests/test_option_table.py runs the check.
"""

from __future__ import annotations

import html
import json
import os
import re
import sys
from typing import Any, Callable, Dict, List

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from viztracer.options import DEFAULT, EXTRA, OPTIONS, OUTPUT, RECORDED, Spec  # noqa: E402

END = "<!-- end of option table -->"


def _code(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, str) else repr(value)
    return f"`{text}`"


def command_line(spec: Spec) -> str:
    """How the option is written on the command line, e.g. ``--max_stack_depth N``."""
    cli = spec.cli
    if cli is None or spec.flag is None:
        return ""
    value = "" if not cli.takes_value else f" {cli.metavar} ..." if cli.kind == "list" else f" {cli.metavar}"
    spellings = [f"`{flag}{value}`" for flag in ([cli.short] if cli.short else []) + [spec.flag]]
    return ", ".join(spellings)


def children(spec: Spec) -> str:
    if spec.inherited:
        return "inherited"
    if spec.child is DEFAULT:
        return "default"
    return _code(spec.child)


def api_table() -> List[str]:
    lines = ["| option | default | command line | child processes | meaning |", "|---|---|---|---|---|"]
    for spec in OPTIONS:
        lines.append(f"| `{spec.name}` | {_code(spec.default)} | {command_line(spec)} | {children(spec)} "
                     f"| {spec.doc} |")
    return lines


def cli_table() -> List[str]:
    """The options with a flag, by group in the order of ``--help``."""
    lines = ["| option | VizTracer option | meaning |", "|---|---|---|"]
    for group in (OUTPUT, RECORDED, EXTRA):
        for spec in OPTIONS:
            if spec.cli is not None and spec.cli.group == group:
                meaning = html.escape(spec.help[0].upper() + spec.help[1:], quote=False)
                lines.append(f"| {command_line(spec)} | `{spec.name}` | {meaning} |")
    return lines


TABLES: Dict[str, Callable[[], List[str]]] = {"api": api_table, "cli": cli_table}
PAGES = {"api": "docs/api.md", "cli": "docs/cli.md"}


def render(text: str, name: str) -> str:
    """``text`` with the table ``name`` made anew."""
    pattern = re.compile(r"(<!-- option table: " + name + r"\b[^\n]*-->\n)(.*?)(" + re.escape(END) + ")", re.S)
    if not pattern.search(text):
        raise SystemExit(f"no '<!-- option table: {name} -->' ... '{END}' block in {PAGES[name]}")
    table = "\n".join(TABLES[name]()) + "\n"
    return pattern.sub(lambda m: m.group(1) + table + m.group(3), text, count=1)


def main(argv: List[str]) -> int:
    stale = []
    for name, page in PAGES.items():
        path = os.path.join(ROOT, page)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        new = render(text, name)
        if new != text:
            stale.append(page)
            if "--check" not in argv:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(new)
    if stale and "--check" in argv:
        print(f"option tables out of date in {', '.join(stale)}: run python tools/options_doc.py")
        return 1
    for page in stale:
        print(f"rewrote the option table of {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
