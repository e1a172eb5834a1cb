"""The package's shape: the native module's type stub matches the module."""

from __future__ import annotations

import ast
import os
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
    tree = ast.parse(open(STUB, encoding="utf-8").read())
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
