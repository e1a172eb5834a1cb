"""Source instrumentation of the traced script (the command line's ``--log_var``,
``--log_number``, ``--log_attr``, ``--log_func_exec``, ``--log_func_entry``,
``--log_exception`` and ``--magic_comment``).

    monkey = CodeMonkey(script_path)
    monkey.add_instrument("log_var", {"varnames": ["a.*"]})
    monkey.add_source_processor()          # magic comments
    builtins.compile = monkey.compile

The injected code calls methods of the global tracer, ``__viz_tracer__`` (a builtin
while a tracer is registered). Only sources compiled under the script's own file
name are changed; every other ``compile()`` call passes through untouched.
"""

# No "from __future__ import ...": compile() called from this module with
# dont_inherit=False would pass this module's future flags on to the user's code.

import __future__  # the module (the list of features), not a future statement

import ast
import copy
import io
import os
import re
import sys
import tokenize
from typing import Any, Dict, List, Optional, Pattern, Sequence, Tuple, Union, cast

_TRACER = "__viz_tracer__"

INSTRUMENT_TYPES = ("log_var", "log_number", "log_attr", "log_func_exec", "log_func_entry", "log_exception")
_INFO_KEYS = {
    "log_var": "varnames",
    "log_number": "varnames",
    "log_attr": "attr_names",
    "log_func_exec": "func_names",
    "log_func_entry": "func_names",
    "log_exception": None,
}

_real_compile = compile


# ---------------------------------------------------------------------- expressions as text

def get_string_of_expr(node: ast.AST) -> str:
    """Compact source text of an expression: ``a``, ``a[0]``, ``a[1:]``, ``d['a'][0].b``,
    ``(a,b)``, ``[a,b]``, ``*a``, ``f()`` (call arguments are left out)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Constant):
        return repr(node.value)
    if isinstance(node, ast.Attribute):
        return f"{get_string_of_expr(node.value)}.{node.attr}"
    if isinstance(node, ast.Subscript):
        return f"{get_string_of_expr(node.value)}[{get_string_of_expr(node.slice)}]"
    if isinstance(node, ast.Call):
        return f"{get_string_of_expr(node.func)}()"
    if isinstance(node, ast.Starred):
        return f"*{get_string_of_expr(node.value)}"
    if isinstance(node, ast.Tuple):
        return "(" + ",".join(get_string_of_expr(e) for e in node.elts) + ")"
    if isinstance(node, ast.List):
        return "[" + ",".join(get_string_of_expr(e) for e in node.elts) + "]"
    if isinstance(node, ast.Slice):
        text = (get_string_of_expr(node.lower) if node.lower else "") + ":"
        text += get_string_of_expr(node.upper) if node.upper else ""
        if node.step:
            text += ":" + get_string_of_expr(node.step)
        return text
    try:
        return ast.unparse(node)
    except Exception:  # pragma: no cover
        return ""


def _root_names(target: ast.AST) -> List[str]:
    """The variables an assignment target binds or changes: ``a`` for ``a``,
    ``a[1]`` and ``a.b.c``; every name of a tuple/list/starred target."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [n for e in target.elts for n in _root_names(e)]
    if isinstance(target, ast.Starred):
        return _root_names(target.value)
    if isinstance(target, (ast.Attribute, ast.Subscript)):
        node = target.value
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        return [node.id] if isinstance(node, ast.Name) else []
    return []


def _attribute_targets(target: ast.AST) -> List[ast.Attribute]:
    if isinstance(target, ast.Attribute):
        return [target]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [a for e in target.elts for a in _attribute_targets(e)]
    if isinstance(target, ast.Starred):
        return _attribute_targets(target.value)
    return []


def _has_call(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Call) for n in ast.walk(node))


def _load(node: ast.expr) -> ast.expr:
    """A copy of a target expression that reads it."""
    copied = copy.deepcopy(node)
    for n in ast.walk(copied):
        # (the nodes that have a ctx)
        if isinstance(n, (ast.Name, ast.Attribute, ast.Subscript, ast.Starred, ast.List, ast.Tuple)) \
                and isinstance(n.ctx, (ast.Store, ast.Del)):
            n.ctx = ast.Load()
    return copied


def _parse(text: str) -> ast.Module:
    """``ast.parse`` without going through ``builtins.compile``, which may be ours."""
    return cast(ast.Module, _real_compile(text, "<viztracer>", "exec", ast.PyCF_ONLY_AST, True))


def _tracer_call(method: str, *args: ast.expr) -> ast.Expr:
    return ast.Expr(value=ast.Call(
        func=ast.Attribute(value=ast.Name(id=_TRACER, ctx=ast.Load()), attr=method, ctx=ast.Load()),
        args=list(args), keywords=[]))


def _const(value: Any) -> ast.Constant:
    return ast.Constant(value=value)


def _docstring_end(body: List[ast.stmt]) -> int:
    """Where injected statements go at the top of a body: after its docstring."""
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        return 1
    return 0


def _located(nodes: List[ast.stmt], origin: ast.AST) -> List[ast.stmt]:
    """Gives injected code the position of the statement it instruments."""
    for n in nodes:
        for child in ast.walk(n):
            if "lineno" in child._attributes:
                ast.copy_location(child, origin)
    return nodes


# ---------------------------------------------------------------------- the AST transformer

class AstTransformer(ast.NodeTransformer):
    """Injects tracer calls for one kind of instrumentation (see INSTRUMENT_TYPES)."""

    def __init__(self, inst_type: str, inst_args: Dict[str, Any]) -> None:
        super().__init__()
        if inst_type not in INSTRUMENT_TYPES:
            raise ValueError(f"{inst_type} is not a valid instrument type: use one of "
                             + ", ".join(INSTRUMENT_TYPES))
        self.inst_type = inst_type
        self.inst_args = dict(inst_args or {})
        key = _INFO_KEYS[inst_type]
        self.patterns: List[Pattern[str]] = []
        if key is not None:
            if key not in self.inst_args:
                raise ValueError(f"{inst_type} needs {{{key!r}: [regex, ...]}}")
            regexes = self.inst_args[key]
            if isinstance(regexes, str) or not isinstance(regexes, Sequence):
                raise TypeError(f"{inst_type}: {key} must be a list of regexes, not {regexes!r}")
            for r in regexes:
                try:
                    self.patterns.append(re.compile(r))
                except re.error as e:
                    raise ValueError(f"{inst_type}: invalid regex {r!r}: {e}") from None
        self.in_matching_function = False

    def matches(self, name: str) -> bool:
        return any(p.fullmatch(name) for p in self.patterns)

    # -- what gets logged for an assignment target

    def _after_assign(self, targets: Sequence[ast.expr], origin: ast.stmt) -> List[ast.stmt]:
        calls: List[ast.stmt] = []
        if self.inst_type in ("log_var", "log_number"):
            event = "instant" if self.inst_type == "log_var" else "counter"
            for name in _dedup(n for t in targets for n in _root_names(t)):
                if self.matches(name):
                    calls.append(_tracer_call("add_variable", _const(f"Variable Assign - {name}"),
                                              ast.Name(id=name, ctx=ast.Load()), _const(event)))
        elif self.inst_type == "log_attr":
            for attr in (a for t in targets for a in _attribute_targets(t)):
                if self.matches(attr.attr) and not _has_call(attr):
                    calls.append(_tracer_call("add_variable",
                                              _const(f"Attribute Assign - {get_string_of_expr(attr)}"),
                                              _load(attr), _const("instant")))
        elif self.inst_type == "log_func_exec" and self.in_matching_function:
            for name in _dedup(n for t in targets for n in _root_names(t)):
                calls.append(_tracer_call("add_func_exec", _const(name), ast.Name(id=name, ctx=ast.Load()),
                                          _const(origin.lineno)))
        return _located(calls, origin)

    def _assignment(self, node: ast.stmt, targets: Sequence[ast.expr]) -> Union[ast.stmt, List[ast.stmt]]:
        self.generic_visit(node)
        extra = self._after_assign(targets, node)
        return [node, *extra] if extra else node

    def visit_Assign(self, node: ast.Assign) -> Any:
        return self._assignment(node, node.targets)

    def visit_AugAssign(self, node: ast.AugAssign) -> Any:
        return self._assignment(node, [node.target])

    def visit_AnnAssign(self, node: ast.AnnAssign) -> Any:
        if node.value is None:  # "x: int" binds nothing
            return node
        return self._assignment(node, [node.target])

    def _loop(self, node: Union[ast.For, ast.AsyncFor]) -> Any:
        self.generic_visit(node)
        if self.inst_type in ("log_var", "log_number"):
            extra = self._after_assign([node.target], node)
            if extra:
                node.body[0:0] = _located(extra, node.body[0] if node.body else node)
        return node

    def visit_For(self, node: ast.For) -> Any:
        return self._loop(node)

    def visit_AsyncFor(self, node: ast.AsyncFor) -> Any:
        return self._loop(node)

    def _function(self, node: Union[ast.FunctionDef, ast.AsyncFunctionDef]) -> Any:
        outer = self.in_matching_function
        if self.inst_type == "log_func_exec":
            self.in_matching_function = self.matches(node.name)
        try:
            self.generic_visit(node)
        finally:
            self.in_matching_function = outer
        at = _docstring_end(node.body)
        origin = node.body[at] if at < len(node.body) else node
        inject: List[ast.stmt] = []
        if self.inst_type in ("log_var", "log_number"):
            a = node.args
            params = [*a.posonlyargs, *a.args, *([a.vararg] if a.vararg else []), *a.kwonlyargs,
                      *([a.kwarg] if a.kwarg else [])]
            inject = self._after_assign([ast.Name(id=p.arg, ctx=ast.Store()) for p in params], origin)
        elif self.inst_type == "log_func_entry" and self.matches(node.name):
            inject = _located([_tracer_call("add_variable", _const(f"Function Entry - {node.name}"),
                                            _const(f"{node.name} is called"), _const("instant"))], origin)
        if inject:
            node.body[at:at] = inject
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> Any:
        return self._function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> Any:
        return self._function(node)

    def visit_Raise(self, node: ast.Raise) -> Any:
        if self.inst_type != "log_exception":
            return node
        # try:
        #     raise <exc> [from <cause>]
        # except BaseException as __viz_exception:
        #     __viz_tracer__.add_variable("Exception - <exc>", __viz_exception, "instant")
        #     raise
        # The expression is evaluated once, and what is logged is the exception object
        # that is actually raised (an instance even for "raise ValueError").
        label = f"Exception - {get_string_of_expr(node.exc)}" if node.exc is not None else "Exception"
        var = "__viz_exception"
        exc_type = ast.Name(id="BaseException", ctx=ast.Load())
        handler = ast.ExceptHandler(
            type=exc_type, name=var,
            body=[_tracer_call("add_variable", _const(label), ast.Name(id=var, ctx=ast.Load()),
                               _const("instant")),
                  ast.Raise(exc=None, cause=None)])
        _located(handler.body, node)
        wrapped = ast.Try(body=[node], handlers=[handler], orelse=[], finalbody=[])
        ast.copy_location(handler, node)
        ast.copy_location(exc_type, node)
        return ast.copy_location(wrapped, node)


def _dedup(items: Any) -> List[str]:
    seen: Dict[str, None] = {}
    for i in items:
        seen.setdefault(i, None)
    return list(seen)


# ---------------------------------------------------------------------- magic comments

_MAGIC = re.compile(r"#\s*!viztracer:\s*(?P<body>.*?)\s*$")
_OWN_LINE_CALL = re.compile(r"(?P<call>log_\w+\(.*\))(?:\s+if\s+(?P<cond>.+))?")
_TRAILING_LOG = re.compile(r"log(?:\s+if\s+(?P<cond>.+))?")


class SourceProcessor:
    """Turns ``# !viztracer:`` comments into tracer calls, line by line (line numbers
    are kept):

    1. ``# !viztracer: log_xxx(...)`` on its own line: ``__viz_tracer__.log_xxx(...)``
    2. ``stmt  # !viztracer: log``: ``stmt  ; __viz_tracer__.log_var('<lhs>', (<lhs>))``
       for an assignment, else ``stmt  ; __viz_tracer__.log_instant('<stmt>')``
    3. ``# !viztracer: log_xxx(...) if cond``: ``if cond: __viz_tracer__.log_xxx(...);``
    4. ``stmt  # !viztracer: log if cond``: as 2, with ``cond=cond`` passed
    """

    def process(self, source: Union[str, bytes, Any]) -> Any:
        if isinstance(source, bytes):
            encoding = _detect_encoding(source)
            text = source.decode(encoding)
            return self.process(text).encode(encoding)
        if not isinstance(source, str) or "!viztracer" not in source:
            return source
        lines = io.StringIO(source).readlines()
        for row, col, stmt, comment in _magic_comments(source):
            line = lines[row - 1]
            m = _MAGIC.match(comment)
            if m is None:
                continue
            body = m.group("body")
            ending = line[len(line.rstrip("\r\n")):]
            if stmt is None:
                new = self._own_line(line[:col], body)
            else:
                new = self._trailing(line[:col], stmt, body)
            if new is not None:
                lines[row - 1] = new + ending
        return "".join(lines)

    @staticmethod
    def _own_line(indent: str, body: str) -> Optional[str]:
        m = _OWN_LINE_CALL.fullmatch(body)
        if m is None:
            return None
        if m.group("cond"):
            return f"{indent}if {m.group('cond')}: {_TRACER}.{m.group('call')};"
        return f"{indent}{_TRACER}.{m.group('call')}"

    @staticmethod
    def _trailing(before: str, stmt: str, body: str) -> Optional[str]:
        m = _TRAILING_LOG.fullmatch(body)
        if m is None:
            return None
        cond = f", cond={m.group('cond')}" if m.group("cond") else ""
        kind = _statement_kind(stmt)
        if kind is None:
            return None
        if kind[0] == "assign":
            lhs = kind[1]
            call = f"{_TRACER}.log_var({lhs!r}, ({lhs}){cond})"
        else:
            call = f"{_TRACER}.log_instant({' '.join(stmt.split())!r}{cond})"
        return f"{before}; {call}"


def _detect_encoding(source: bytes) -> str:
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(source).readline)
    except SyntaxError:
        return "utf-8"
    return "utf-8" if encoding == "utf-8-sig" else encoding


def _statement_kind(stmt: str) -> Optional[tuple]:
    """``("assign", <target text>)`` for an assignment, ``("stmt",)`` for another
    simple statement, None when nothing can be appended (e.g. ``if x:``)."""
    text = stmt.strip()
    try:
        tree = _parse(text)
    except (SyntaxError, ValueError):
        return None
    if len(tree.body) != 1:
        return ("stmt",)
    node = tree.body[0]
    target = None
    if isinstance(node, ast.Assign):
        target = node.targets[0]
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
        target = node.target
    if target is not None:
        return ("assign", ast.get_source_segment(text, target))
    return ("stmt",)


def _magic_comments(source: str) -> List[Any]:
    """``(row, col, statement text or None, comment)`` for each ``!viztracer`` comment
    that stands on its own line between statements (statement None) or ends a
    statement (its text, from the start of the logical line)."""
    found: List[Tuple[int, int, Optional[str], str]] = []
    stmt_start: Optional[tuple] = None
    depth = 0
    src_lines = io.StringIO(source).readlines()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                if "!viztracer" in tok.string:
                    if stmt_start is None:
                        found.append((tok.start[0], tok.start[1], None, tok.string))
                    elif depth == 0:
                        found.append((tok.start[0], tok.start[1],
                                      _text_between(src_lines, stmt_start, tok.start), tok.string))
                continue
            if tok.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
                stmt_start, depth = None, 0
            elif tok.type in (tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING):
                continue
            else:
                if stmt_start is None:
                    stmt_start = tok.start
                if tok.type == tokenize.OP and tok.string in "([{":
                    depth += 1
                elif tok.type == tokenize.OP and tok.string in ")]}":
                    depth -= 1
    except (tokenize.TokenError, SyntaxError, IndentationError):
        pass  # leave the rest alone; compile() reports the error
    return found


def _text_between(lines: List[str], start: tuple, end: tuple) -> str:
    (r0, c0), (r1, c1) = start, end
    if r0 == r1:
        return lines[r0 - 1][c0:c1]
    parts = [lines[r0 - 1][c0:]] + lines[r0:r1 - 1] + [lines[r1 - 1][:c1]]
    return "".join(parts)


# ---------------------------------------------------------------------- CodeMonkey

class CodeMonkey:
    """Instruments the source of one file (the traced script) as it is compiled."""

    def __init__(self, file_name: str) -> None:
        self.file_name = file_name
        self._paths = _path_forms(file_name)
        self.ast_transformers: List[AstTransformer] = []
        self.source_processor: Optional[SourceProcessor] = None

    def add_instrument(self, instrument_type: str, info: Dict[str, Any]) -> None:
        self.ast_transformers.append(AstTransformer(instrument_type, info))

    def add_source_processor(self) -> None:
        self.source_processor = SourceProcessor()

    def _is_target(self, filename: Any) -> bool:
        if isinstance(filename, bytes):
            filename = os.fsdecode(filename)
        if isinstance(filename, os.PathLike):
            filename = os.fspath(filename)
        return isinstance(filename, str) and bool(_path_forms(filename) & self._paths)

    def compile(self, *args: Any, **kwargs: Any) -> Any:
        """Drop-in for the builtin ``compile``: instruments ``source`` when it is the
        target file's code, compiles everything else as given. Every argument goes to
        the real ``compile`` unchanged (whatever keywords this interpreter's takes,
        e.g. 3.15's ``module=``), so it is checked there too."""
        filename = _argument(args, kwargs, "filename")
        flags = _argument(args, kwargs, "flags", 0)
        if not _argument(args, kwargs, "dont_inherit", False) and isinstance(flags, int):
            # The real compile inherits the future statements of its caller's code,
            # which is now this frame: hand it the caller's.
            caller = sys._getframe(1)
            args, kwargs = _with_argument(args, kwargs, "flags", flags | (caller.f_code.co_flags & _FUTURE_FLAGS))
        if not self._is_target(filename) or not isinstance(flags, int) \
                or flags & ast.PyCF_ONLY_AST:
            return _real_compile(*args, **kwargs)
        source = _argument(args, kwargs, "source")
        if self.source_processor is not None:
            source = self.source_processor.process(source)
        if self.ast_transformers:
            if isinstance(source, ast.AST):
                tree = source
            else:
                a, k = _with_argument(args, kwargs, "source", source)
                a, k = _with_argument(a, k, "flags", _argument(a, k, "flags", 0) | ast.PyCF_ONLY_AST)
                tree = _real_compile(*a, **k)
            for transformer in self.ast_transformers:
                tree = transformer.visit(tree)
                ast.fix_missing_locations(tree)
            source = tree
        # Instrumented code must not end up in a .pyc (running it later without a
        # tracer would fail): the import system checks this flag after compiling.
        sys.dont_write_bytecode = True
        args, kwargs = _with_argument(args, kwargs, "source", source)
        return _real_compile(*args, **kwargs)


# The parameters of compile() that may be given by position, in order (unchanged
# since Python 3.2); later ones are keyword-only and are passed on as they come.
_POSITIONAL = ("source", "filename", "mode", "flags", "dont_inherit", "optimize")


def _future_flags() -> int:
    """The compiler flags of the future statements that still change something here."""
    flags = 0
    for name in __future__.all_feature_names:
        feature = getattr(__future__, name)
        if feature.mandatory is None or feature.mandatory > sys.version_info:
            flags |= feature.compiler_flag
    return flags


_FUTURE_FLAGS = _future_flags()


def _argument(args: tuple, kwargs: Dict[str, Any], name: str, default: Any = None) -> Any:
    i = _POSITIONAL.index(name)
    return args[i] if len(args) > i else kwargs.get(name, default)


def _with_argument(args: tuple, kwargs: Dict[str, Any], name: str, value: Any) -> tuple:
    """``(args, kwargs)`` with one argument of compile() replaced, where it was given."""
    i = _POSITIONAL.index(name)
    if len(args) > i:
        return args[:i] + (value,) + args[i + 1:], kwargs
    return args, {**kwargs, name: value}


def _path_forms(name: str) -> set:
    forms = {name}
    if not (name.startswith("<") and name.endswith(">")):
        try:
            forms.add(os.path.abspath(name))
            forms.add(os.path.realpath(name))
        except (OSError, ValueError):
            pass
    return forms

