"""The package's shape: the native module's type stub matches the module, the
supported versions match the tested ones, the native module asks for the GIL."""

from __future__ import annotations

import ast
import ctypes
import os
import re
import sys

import pytest

import viztracer
from viztracer import _snaptrace

STUB = os.path.join(os.path.dirname(viztracer.__file__), "_snaptrace.pyi")


def _for_this_python(body):
    """Top-level statements, with `if sys.version_info >= (3, N):` blocks resolved."""
    for node in body:
        if isinstance(node, ast.If) and "sys.version_info" in ast.unparse(node.test):
            yield from _for_this_python(node.body if eval(ast.unparse(node.test), {"sys": sys}) else node.orelse)
        else:
            yield node


def _stub_names():
    with open(STUB, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    top, classes = set(), {}
    for node in _for_this_python(tree.body):
        if isinstance(node, ast.ClassDef):
            members = set()
            for item in node.body:
                # (dunders such as __new__ are left out, as _public leaves them out)
                if isinstance(item, ast.FunctionDef) and not item.name.startswith("__"):
                    members.add(item.name)
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    members.add(item.target.id)
            classes[node.name] = members
            top.add(node.name)
        elif isinstance(node, ast.FunctionDef):
            top.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            top.add(node.target.id)
    return top, classes


def _public(obj):
    return {n for n in dir(obj) if not n.startswith("__")}


def test_stub_declares_exactly_what_the_module_has():
    top, classes = _stub_names()
    assert top == _public(_snaptrace)
    for name, members in classes.items():
        assert members == _public(getattr(_snaptrace, name)), name


def test_package_is_marked_typed():
    assert os.path.exists(os.path.join(os.path.dirname(viztracer.__file__), "py.typed"))


# --- supported versions: pyproject.toml against the Makefile ---------------------------

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _makefile_vars():
    """The Makefile's simple assignments (`NAME := ...`, `?=`, `=`), `$(NAME)` expanded."""
    raw = {}
    with open(os.path.join(ROOT, "Makefile"), encoding="utf-8") as f:
        for line in f:
            m = re.match(r"([A-Z_]+)\s*(?::=|\?=|=)\s*(.*)$", line)
            if m:
                raw[m.group(1)] = m.group(2).strip()

    def expand(text, depth=0):
        assert depth < 10, text
        return re.sub(r"\$\(([A-Z_]+)\)", lambda m: expand(raw.get(m.group(1), ""), depth + 1), text)

    return {name: expand(value) for name, value in raw.items()}


def _tested_versions():
    """The (major, minor) versions `make test` runs pytest on (3.14d is 3.14's debug build)."""
    names = _makefile_vars()["TEST_PYTHONS"].split()
    assert set(_makefile_vars()["SID_PYTHONS"].split()) <= set(names)
    return {tuple(int(x) for x in re.match(r"(\d+)\.(\d+)", n).groups()) for n in names}


def _pyproject():
    try:
        import tomllib
    except ImportError:  # 3.9, 3.10: pytest depends on tomli there
        import tomli as tomllib
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]


def test_classifiers_name_exactly_the_tested_versions():
    prefix = "Programming Language :: Python :: 3."
    classified = {(3, int(c[len(prefix):])) for c in _pyproject()["classifiers"]
                  if c.startswith(prefix) and c[len(prefix):].isdigit()}
    assert classified == _tested_versions()


def test_requires_python_admits_the_tested_versions_and_nothing_older():
    from packaging.specifiers import SpecifierSet

    spec = SpecifierSet(_pyproject()["requires-python"])
    tested = sorted(_tested_versions())
    for major, minor in tested:
        assert spec.contains(f"{major}.{minor}.0"), (major, minor)
    major, minor = tested[0]
    assert not spec.contains(f"{major}.{minor - 1}.99")


# --- the GIL: the native module must not claim it runs without one ---------------------

_PY_MOD_GIL = 4  # Py_mod_gil in PyModuleDef slots (3.13, 3.14)
_PY_MOD_GIL_3_15 = 87  # the same slot's id among 3.15's PySlot entries
_PY_MOD_NAME_3_15 = 100
_GIL_USED = None  # Py_MOD_GIL_USED is (void *)0; Py_MOD_GIL_NOT_USED is (void *)1


class _DefSlot(ctypes.Structure):
    _fields_ = [("slot", ctypes.c_int), ("value", ctypes.c_void_p)]


class _ModuleDef(ctypes.Structure):
    # PyModuleDef: PyModuleDef_Base (object header, m_init, m_index, m_copy), then the
    # fields up to m_slots. The header is larger on a free-threaded build.
    _fields_ = [("ob_base", ctypes.c_char * object.__basicsize__), ("m_init", ctypes.c_void_p),
                ("m_index", ctypes.c_ssize_t), ("m_copy", ctypes.c_void_p), ("m_name", ctypes.c_char_p),
                ("m_doc", ctypes.c_char_p), ("m_size", ctypes.c_ssize_t), ("m_methods", ctypes.c_void_p),
                ("m_slots", ctypes.POINTER(_DefSlot))]


class _PySlot(ctypes.Structure):
    # 3.15's `struct PySlot`.
    _fields_ = [("sl_id", ctypes.c_uint16), ("sl_flags", ctypes.c_uint16), ("sl_reserved", ctypes.c_uint32),
                ("sl_ptr", ctypes.c_void_p)]


def _gil_slots():
    """The values of the native module's Py_mod_gil slot, read from what the interpreter
    imports it by: the PyModuleDef (3.13, 3.14) or the PyModExport slots (3.15+)."""
    if sys.version_info >= (3, 15):
        export = ctypes.PyDLL(_snaptrace.__file__).PyModExport__snaptrace
        export.restype = ctypes.POINTER(_PySlot)
        slots = export()
        found, name = [], None
        for i in range(64):
            s = slots[i]
            if s.sl_id == 0:
                break
            if s.sl_id == _PY_MOD_GIL_3_15:
                found.append(s.sl_ptr)
            elif s.sl_id == _PY_MOD_NAME_3_15:
                name = ctypes.string_at(s.sl_ptr)
        assert name == b"_snaptrace", name  # the slots were read as laid out
        return found
    get_def = ctypes.pythonapi.PyModule_GetDef
    get_def.restype = ctypes.POINTER(_ModuleDef)
    get_def.argtypes = [ctypes.py_object]
    d = get_def(_snaptrace).contents
    assert d.m_name == b"_snaptrace", d.m_name  # the definition was read as laid out
    found = []
    for i in range(64):
        s = d.m_slots[i]
        if s.slot == 0:
            break
        if s.slot == _PY_MOD_GIL:
            found.append(s.value)
    return found


@pytest.mark.skipif(sys.version_info < (3, 13), reason="Py_mod_gil exists from 3.13")
def test_native_module_declares_that_it_needs_the_gil():
    # pyo3 0.30 declares Py_MOD_GIL_NOT_USED unless told otherwise: without
    # `gil_used = true` a free-threaded interpreter would run the tracer's GIL-guarded
    # state from threads in parallel (docs/architecture.md, "Free-threaded Python").
    assert _gil_slots() == [_GIL_USED]


def test_no_tracer_while_the_gil_is_off(monkeypatch):
    # What a free-threaded interpreter started with PYTHON_GIL=0 reports (the override
    # that keeps the GIL off despite the declaration above).
    monkeypatch.setattr(sys, "_is_gil_enabled", lambda: False, raising=False)
    with pytest.raises(RuntimeError, match="needs the GIL"):
        _snaptrace.Tracer(1000)
    with pytest.raises(RuntimeError, match="needs the GIL"):
        viztracer.VizTracer(verbose=0)
    monkeypatch.setattr(sys, "_is_gil_enabled", lambda: True, raising=False)
    _snaptrace.Tracer(1000)


def test_every_test_named_in_the_differences_page_exists():
    # docs/differences.md says which test keeps each difference: those tests exist.
    docs = os.path.join(ROOT, "docs", "differences.md")
    with open(docs, encoding="utf-8") as f:
        named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", f.read())
    assert len(named) >= 20
    for path, name in named:
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            tree = ast.parse(f.read())
        functions = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        assert name in functions, f"{path}::{name} (named in docs/differences.md) does not exist"


def test_docs_name_this_version():
    # The version is written once, in Cargo.toml; the README and the docs quote it in
    # install commands and file names, so a release that bumps it must update them too.
    quoted = {}
    for path in [os.path.join(ROOT, "README.md")] + [os.path.join(ROOT, "docs", f)
                                                      for f in os.listdir(os.path.join(ROOT, "docs"))]:
        if path.endswith(".md"):
            with open(path, encoding="utf-8") as f:
                for v in re.findall(r"\b\d+\.\d+\.\d+\+rust\.\d+\b", f.read()):
                    quoted.setdefault(v, []).append(os.path.relpath(path, ROOT))
    assert quoted, "the README no longer says which version to install"
    assert set(quoted) == {viztracer.__version__}, quoted
