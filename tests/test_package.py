"""The package's shape: the native module's type stub matches the module, the
supported versions match the tested ones."""

from __future__ import annotations

import ast
import os
import re
import sys

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
                if isinstance(item, ast.FunctionDef) and item.name != "__init__":
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
