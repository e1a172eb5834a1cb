"""The shape of the Rust code (rust/) where the compiler cannot see it: the top-level
modules are layers that only use the ones below them, the layers without `unsafe` say
so to the compiler, the layers under the guards make no GIL token and keep no plain
`Py<T>`, and the mutable statics are the documented ones.

That `unsafe` stays in `ffi/`, `state/` and `hooks/` is the compiler's job: every other
layer starts with `#![forbid(unsafe_code)]`. See "Module dependencies" and "Unsafe
code" in docs/architecture.md. These tests read the sources only: they need neither a
build nor a particular Python version.
"""

from __future__ import annotations

import os
import re
from typing import Dict, List, Optional, Set

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUST = os.path.join(ROOT, "rust")

# The layers, top down: a module uses only modules below it (rust/lib.rs, and
# docs/architecture.md, "Module dependencies").
LAYERS = ["api", "hooks", "output", "core", "state", "buffers", "clock", "ffi"]

# The layers that contain `unsafe`: the C boundary (`ffi`), the ownership of tracer
# state behind raw pointers (`state`), the functions the interpreter calls (`hooks`).
# Every other layer forbids it.
UNSAFE_LAYERS = {"ffi", "state", "hooks"}

# The layers below the Python-facing methods, which reach tracer state through guards:
# they must not make a GIL token of their own (a guard's `with_python` is how they run
# Python, with no reference into the state alive), nor keep a plain `Py<T>` in state
# (its drop can run Python code: they keep `Held` objects, see ffi/held.rs).
GUARDED_LAYERS = ("core/", "buffers/", "output/", "clock.rs")
TOKEN_MAKERS = ("Python::attach", "Python::with_gil", "assume_attached", "from_borrowed_ptr", "from_owned_ptr")

# Comments, string literals (raw ones too) and char literals, so that neither a word
# in a comment nor one in a message counts as code. A lifetime ('a) is not a char.
_NOT_CODE = re.compile(
    r"//[^\n]*|/\*.*?\*/|(?<![A-Za-z0-9_])b?r(#*)\".*?\"\1|\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^\\'])'",
    re.S,
)


def _code_only(text: str) -> str:
    return _NOT_CODE.sub(lambda m: "" if m.group(0).startswith("/") else '""', text)


def _rust_files() -> List[str]:
    out = []
    for dirpath, _, files in os.walk(RUST):
        for name in files:
            if name.endswith(".rs"):
                out.append(os.path.relpath(os.path.join(dirpath, name), RUST).replace(os.sep, "/"))
    return sorted(out)


def _code_of(path: str) -> str:
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
        if top is not None:
            graph.setdefault(top, set()).update(r for r in _references(_code_of(path)) if r != top)
    return graph


def upward_edges(graph: Dict[str, Set[str]]) -> List[str]:
    return [f"{a} -> {b}" for a, deps in sorted(graph.items()) for b in sorted(deps)
            if LAYERS.index(b) <= LAYERS.index(a)]


def test_modules_use_only_layers_below_them():
    graph = module_graph()
    # The graph is read from real code: it must see the known edges.
    assert "state" in graph["hooks"] and "ffi" in graph["state"], graph
    assert set(graph) == set(LAYERS), "a new top-level module needs its place in LAYERS"
    upward = upward_edges(graph)
    assert not upward, "rust/ modules that use a module at or above their layer: " + ", ".join(upward)
    assert graph["ffi"] == set(), "ffi/ uses nothing of ours"


def test_an_edge_up_the_layers_is_reported():
    graph = module_graph()
    graph["ffi"].add("core")
    assert upward_edges(graph) == ["ffi -> core"]


def test_every_module_is_declared_in_lib_rs():
    with open(os.path.join(RUST, "lib.rs"), encoding="utf-8") as f:
        declared = set(re.findall(r"^\s*(?:pub(?:\([a-z]+\))?\s+)?mod\s+([a-z_0-9]+)\s*;", f.read(), re.M))
    assert {_top_module(p) for p in _rust_files()} - {None} == declared


def test_references_are_parsed_from_code_only():
    code = _code_only('use crate::{a, b::c};\n// crate::d\nlet s = "crate::e"; crate::f::g();\n/* crate::h */'
                      "\nlet r = r#\"crate::i\"#; let c = '\"'; fn x<'a>(_: &'a crate::j::T) {}")
    assert _references(code) == {"a", "b", "f", "j"}


def test_layers_without_unsafe_forbid_it():
    # The root file of each such layer; `forbid` there covers its submodules.
    missing = []
    for top in sorted(set(LAYERS) - UNSAFE_LAYERS):
        root = f"{top}/mod.rs" if os.path.isdir(os.path.join(RUST, top)) else f"{top}.rs"
        if "#![forbid(unsafe_code)]" not in _code_of(root):
            missing.append(root)
    assert not missing, "layers without #![forbid(unsafe_code)]: " + ", ".join(missing)


def _guarded_files() -> List[str]:
    return [p for p in _rust_files() if p.startswith(GUARDED_LAYERS)]


def test_guarded_layers_make_no_gil_token():
    found = [f"{path}: {name}" for path in _guarded_files() for name in TOKEN_MAKERS if name in _code_of(path)]
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


# Statics whose value changes after initialisation other than through an atomic or a
# once-cell, each explained where it is declared and in docs/architecture.md ("Mutable
# statics"). Everything else is an atomic, a `OnceCell`, or owned by a tracer object.
MUTABLE_STATICS = {
    # Thread-locals: per thread by construction.
    ("state/fast_slot.rs", "THREAD_EXIT"),
    ("state/fast_slot.rs", "THREAD_MARK"),
    # The call-site registry (the dict watcher has no context; watcher ids are
    # process-wide) and its two direct-mapped tables read by CALL and PY_START events.
    ("hooks/callsites.rs", "DECISIONS"),
    ("hooks/callsites.rs", "SITE_CACHE"),
    ("hooks/callsites.rs", "CODE_GLOBALS"),
    # A C symbol of the interpreter, declared in an `extern` block.
    ("ffi/callable.rs", "PyMethod_Type"),
}

# Types that make a static safe to share and change: atomics, once-cells, mutexes, and
# the fast slot (`FastSlot`, a struct of atomics).
_SYNC_STATIC = re.compile(
    r"^(?:std::sync::atomic::|core::sync::atomic::)?Atomic[A-Za-z0-9]*\b|^(?:once_cell::sync::)?OnceCell\b"
    r"|^(?:std::sync::)?Mutex<|^FastSlot\b"
)


def test_mutable_statics_are_the_documented_ones():
    statics = []
    for path in _rust_files():
        for m in re.finditer(r"(?<!')\bstatic\s+(mut\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*:\s*([^=;]+)", _code_of(path)):
            statics.append((path, m.group(2), m.group(3).strip(), bool(m.group(1))))
    assert any(name == "FAST_SLOT" for _, name, _, _ in statics), statics  # the scan works
    mutable = {(path, name) for path, name, ty, is_mut in statics if is_mut or not _SYNC_STATIC.match(ty)}
    assert mutable == MUTABLE_STATICS, (
        f"new mutable statics: {sorted(mutable - MUTABLE_STATICS)}; "
        f"listed but gone: {sorted(MUTABLE_STATICS - mutable)}"
    )
