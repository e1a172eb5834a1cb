"""``file_info``: the source of every traced file, so a viewer can show the code of a
clicked function.

Shape (as upstream): ``{"files": {path: [source, line_count]}, "functions": {name: [path, line]}}``.
"""

from __future__ import annotations

import importlib
import re
import sys
import tokenize
from typing import Dict, Iterable, List, Optional, Tuple

_NAME_RE = re.compile(r".*\((.*):([0-9]*)\)$")


def _read_source(path: str) -> Optional[str]:
    if path.startswith("<frozen ") and path.endswith(">"):
        # "<frozen importlib._bootstrap>": the module's own file holds the source.
        module_name = path[len("<frozen "):-1]
        try:
            module = sys.modules.get(module_name) or importlib.import_module(module_name)
            real = getattr(module, "__file__", None)
        except Exception:
            return None
        if not real:
            return None
        path = real
    try:
        with tokenize.open(path) as f:
            return f.read()
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None


def build_file_info(functions: Iterable[Tuple[str, str, int]]) -> Dict[str, Dict[str, List]]:
    """From ``(name, file, line)`` triples, read each file once and map names to places.
    Functions whose file cannot be read (``<string>``, deleted files) are left out."""
    files: Dict[str, List] = {}
    funcs: Dict[str, List] = {}
    unreadable = set()
    for name, path, line in functions:
        if path in unreadable:
            continue
        if path not in files:
            source = _read_source(path)
            if source is None:
                unreadable.add(path)
                continue
            files[path] = [source, source.count("\n")]
        funcs[name] = [path, line]
    return {"files": files, "functions": funcs}


def functions_of_raw_events(events: Iterable[dict]) -> List[Tuple[str, str, int]]:
    """``(name, file, line)`` for raw ``X`` events named like ``"event (file:line)"``
    (``log_event``, ``log_sparse``)."""
    out = []
    for e in events:
        name = e.get("name") if isinstance(e, dict) else None
        if e.get("ph") != "X" or not isinstance(name, str):
            continue
        m = _NAME_RE.match(name)
        if m and m.group(2):
            out.append((name, m.group(1), int(m.group(2))))
    return out
