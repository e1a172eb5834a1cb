"""The shape of the Rust code (rust/): the top-level modules form no cycle, and
`unsafe` appears only in the FFI layer and a short allow-list.

See "Layout" and "Unsafe code" in docs/architecture.md. These tests read the sources
only: they need neither a build nor a particular Python version.
"""

from __future__ import annotations

import os
import re
from typing import Dict, List, Optional, Set

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUST = os.path.join(ROOT, "rust")

# The unsafe layer: everything that talks to C through raw pointers. `ffi/` wraps the
# C API, the OS and the CPU; `hooks/` holds the functions the interpreter calls (their
# arguments are raw pointers the interpreter vouches for).
FFI_LAYER = ("ffi/", "state/", "hooks/")

# Files outside the FFI layer that may contain `unsafe`, each justified in
# docs/architecture.md ("Unsafe code"). None today: the tracer state is reached through
# the safe guards of ffi/shared.rs. A new entry needs a reason there.
UNSAFE_ALLOWED: Set[str] = set()

# The layers below the Python-facing methods, which reach tracer state through guards:
# they must not make a GIL token of their own (a guard's `with_python` is how they run
# Python, with no reference into the state alive), nor keep a plain `Py<T>` in state
# (its drop can run Python code: they keep `Held` objects, see ffi/held.rs).
GUARDED_LAYERS = ("core/", "buffers/", "output/", "clock.rs")
TOKEN_MAKERS = ("Python::attach", "Python::with_gil", "assume_attached", "from_borrowed_ptr", "from_owned_ptr")


def _rust_files() -> List[str]:
    out = []
    for dirpath, _, files in os.walk(RUST):
        for name in files:
            if name.endswith(".rs"):
                out.append(os.path.relpath(os.path.join(dirpath, name), RUST).replace(os.sep, "/"))
    return sorted(out)


def _ident_char_before(text: str, i: int) -> bool:
    return i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_")


def _code_only(text: str) -> str:
    """The source without comments, string literals and char literals, so neither a
    word in a comment nor one in a message counts."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and not _ident_char_before(text, i):
            hashes = re.match(r"r(#*)\"", text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            out.append('""')
            i = n if end < 0 else end + 1 + len(hashes)
        elif c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            out.append('""')
            i += 1
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:i + 4]):
            # A char literal (not a lifetime such as 'a or 'static).
            m = re.match(r"'(\\.|[^\\'])'", text[i:])
            out.append("' '")
            i += m.end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _code_of(path: str) -> str:
    """The code of `rust/<path>`, comments and string literals blanked."""
    with open(os.path.join(RUST, path), encoding="utf-8") as f:
        return _code_only(f.read())


def _top_module(path: str) -> Optional[str]:
    """`core/events.rs` -> `core`, `clock.rs` -> `clock`; None for the crate root."""
    if path == "lib.rs":
        return None
    first = path.split("/")[0]
    return first[:-3] if first.endswith(".rs") else first


def _references(code: str) -> Set[str]:
    """The top-level modules a file names through `crate::`: `use crate::a::b`,
    `use crate::{a, b::c}` and paths such as `crate::a::f()` in expressions."""
    found = set(re.findall(r"\bcrate::([a-z_][a-z0-9_]*)\b", code))
    for group in re.findall(r"\bcrate::\{([^}]*)\}", code):
        for item in group.split(","):
            name = item.strip().split("::")[0].strip()
            if name and name not in ("self", "*"):
                found.add(name)
    return found


def module_graph() -> Dict[str, Set[str]]:
    graph: Dict[str, Set[str]] = {}
    for path in _rust_files():
        top = _top_module(path)
        if top is None:
            continue
        code = _code_of(path)
        graph.setdefault(top, set()).update(r for r in _references(code) if r != top)
    return graph


def find_cycle(graph: Dict[str, Set[str]]) -> Optional[List[str]]:
    """A cycle of the graph as a path `[a, b, ..., a]`, or None."""
    state: Dict[str, int] = {}  # 1: on the current path, 2: done
    path: List[str] = []

    def visit(node: str) -> Optional[List[str]]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_top_level_modules_form_no_cycle():
    graph = module_graph()
    # The graph is read from real code: it must see the known edges.
    assert "core" in graph.get("hooks", set()), graph
    assert "core" in graph.get("api", set()), graph
    cycle = find_cycle(graph)
    assert cycle is None, "module cycle in rust/: " + " -> ".join(cycle)


# The layers, top down: a module uses only modules below it (rust/lib.rs, and
# docs/architecture.md, "Module dependencies"). Acyclic follows; this says more.
LAYERS = ["api", "hooks", "output", "core", "state", "buffers", "clock", "ffi"]


def test_modules_use_only_layers_below_them():
    graph = module_graph()
    assert set(graph) == set(LAYERS), "a new top-level module needs its place in LAYERS"
    upward = [f"{a} -> {b}" for a, deps in sorted(graph.items()) for b in sorted(deps)
              if LAYERS.index(b) <= LAYERS.index(a)]
    assert not upward, "rust/ modules that use a module at or above their layer: " + ", ".join(upward)


def test_ffi_layer_depends_on_nothing_of_ours():
    assert module_graph().get("ffi", set()) == set()


def test_every_module_is_declared_in_lib_rs():
    with open(os.path.join(RUST, "lib.rs"), encoding="utf-8") as f:
        declared = set(re.findall(r"^\s*(?:pub(?:\([a-z]+\))?\s+)?mod\s+([a-z_0-9]+)\s*;", f.read(), re.M))
    tops = {_top_module(p) for p in _rust_files()} - {None}
    assert tops == declared


def test_cycle_detection_finds_a_cycle():
    # The checker itself: an added edge back up the layers is reported with its path.
    graph = module_graph()
    graph.setdefault("ffi", set()).add("core")
    cycle = find_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1] and "ffi" in cycle and "core" in cycle
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]


def test_references_are_parsed_from_code_only():
    code = _code_only('use crate::{a, b::c};\n// crate::d\nlet s = "crate::e"; crate::f::g();\n/* crate::h */')
    assert _references(code) == {"a", "b", "f"}
    assert "unsafe" not in _code_only('// unsafe\nlet s = "unsafe"; /* unsafe */')


def _in_ffi_layer(path: str) -> bool:
    return path.startswith(FFI_LAYER)


def test_unsafe_only_in_the_ffi_layer_and_the_allow_list():
    outside = []
    for path in _rust_files():
        if _in_ffi_layer(path) or path in UNSAFE_ALLOWED:
            continue
        code = _code_of(path)
        count = len(re.findall(r"\bunsafe\b", code))
        if count:
            outside.append(f"{path} ({count})")
    assert not outside, (
        "`unsafe` outside the FFI layer (rust/ffi/, rust/hooks/) and the allow-list of "
        "tests/test_rust_layout.py: " + ", ".join(outside)
    )


def _guarded_files() -> List[str]:
    return [p for p in _rust_files() if p.startswith(GUARDED_LAYERS)]


def test_guarded_layers_make_no_gil_token():
    found = []
    for path in _guarded_files():
        code = _code_of(path)
        found += [f"{path}: {name}" for name in TOKEN_MAKERS if name in code]
    assert not found, "GIL tokens made below the guards: " + ", ".join(found)


def test_guarded_layers_keep_no_plain_py_in_state():
    # Struct fields and enum variants of these layers hold `Held<T>`, never `Py<T>`.
    found = []
    for path in _guarded_files():
        code = _code_of(path)
        for m in re.finditer(r"\b(?:struct|enum)\s+\w+[^{;]*\{", code):
            depth, i = 1, m.end()
            while depth and i < len(code):
                depth += {"{": 1, "}": -1}.get(code[i], 0)
                i += 1
            if re.search(r"(?<![A-Za-z_])Py<", code[m.end():i]):
                found.append(f"{path}: {code[m.start():m.end()].strip()}")
    assert not found, "plain Py<T> kept in tracer state: " + "; ".join(found)


def test_allow_list_is_current():
    # An entry that no longer needs `unsafe` leaves the list (and docs/architecture.md).
    stale = []
    for path in sorted(UNSAFE_ALLOWED):
        full = os.path.join(RUST, path)
        assert os.path.exists(full), f"allow-listed file {path} does not exist"
        with open(full, encoding="utf-8") as f:
            if not re.search(r"\bunsafe\b", _code_only(f.read())):
                stale.append(path)
    assert not stale, "allow-listed files without unsafe: " + ", ".join(stale)


# Statics whose value changes after initialisation other than through an atomic or a
# once-cell, each explained where it is declared and in docs/architecture.md ("Mutable
# statics"). Everything else is an atomic, a `OnceCell`, or owned by a tracer object.
MUTABLE_STATICS = {
    # Thread-locals: per thread by construction.
    ("state/fast_slot.rs", "EXIT_GUARD"),
    ("state/fast_slot.rs", "THREAD_MARK"),
    # The call-site registry (the dict watcher has no context; watcher ids are
    # process-wide) and its two direct-mapped tables read by CALL and PY_START events.
    ("hooks/callsites.rs", "REGISTRY"),
    ("hooks/callsites.rs", "SITE_CACHE"),
    ("hooks/callsites.rs", "GUARDS"),
    # A C symbol of the interpreter, declared in an `extern` block.
    ("ffi/callable.rs", "PyMethod_Type"),
}

# Types that make a static safe to share and change: atomics, once-cells, mutexes, and
# the registry of ffi/shared.rs (an atomic pointer).
_SYNC_STATIC = re.compile(
    r"^(?:std::sync::atomic::|core::sync::atomic::)?Atomic[A-Za-z0-9]*\b|^(?:once_cell::sync::)?OnceCell\b"
    r"|^(?:std::sync::)?Mutex<|^Registry<"
)


def _statics():
    """`(file, name, type, is_mut)` of every `static` item (thread-locals included)."""
    out = []
    for path in _rust_files():
        code = _code_of(path)
        for m in re.finditer(r"(?<!')\bstatic\s+(mut\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*:\s*([^=;]+)", code):
            out.append((path, m.group(2), m.group(3).strip(), bool(m.group(1))))
    return out


def test_mutable_statics_are_the_documented_ones():
    statics = _statics()
    assert any(name == "FAST" for _, name, _, _ in statics), statics  # the scan works
    mutable = {(path, name) for path, name, ty, is_mut in statics if is_mut or not _SYNC_STATIC.match(ty)}
    # Plain immutable data would be fine too; there is none today, so every static that
    # is neither an atomic nor a once-cell must be listed.
    assert mutable == MUTABLE_STATICS, (
        f"new mutable statics: {sorted(mutable - MUTABLE_STATICS)}; "
        f"listed but gone: {sorted(MUTABLE_STATICS - mutable)}"
    )
