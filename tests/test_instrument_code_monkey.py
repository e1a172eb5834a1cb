"""Source instrumentation (CodeMonkey), tested directly: compile + exec under a
registered tracer, as the command line does for the traced script."""

import ast
import asyncio
import builtins
import inspect
import sys
import textwrap
import traceback
import warnings

import pytest

from support import events, load_trace
from viztracer import VizTracer, code_monkey
from viztracer.code_monkey import AstTransformer, CodeMonkey, SourceProcessor, get_string_of_expr

FILE = "/tmp/instrumented_script.py"


def run(tmp_path, source, instruments=(), magic=False, **options):
    """Compile ``source`` as the traced script with the given instruments, run it
    under a global tracer, return (trace, namespace)."""
    monkey = CodeMonkey(FILE)
    for kind, info in instruments:
        monkey.add_instrument(kind, info)
    if magic:
        monkey.add_source_processor()
    code = monkey.compile(textwrap.dedent(source), FILE, "exec")
    tracer = VizTracer(output_file=str(tmp_path / "r.json"), verbose=0, **options)
    namespace = {"__name__": "__main__"}
    tracer.start()
    try:
        exec(code, namespace)
    finally:
        tracer.stop()
        tracer.save()
    return load_trace(tmp_path / "r.json"), namespace


def instant_names(trace):
    return [e["name"] for e in events(trace, "i")]


def counter_events(trace):
    return [(e["name"], e["args"]) for e in events(trace, "C")]


@pytest.fixture(autouse=True)
def keep_bytecode_flag():
    flag = sys.dont_write_bytecode
    yield
    sys.dont_write_bytecode = flag


# ---------------------------------------------------------------------- log_var / log_number

VAR_SOURCE = """
    a = 1
    ab = [1]
    ab[0] = 2
    ab.append(3)
    a += 1
    b: int = 3
    c: int
    x, (y, *z) = 1, (2, 3, 4)
    class O: pass
    o = O()
    o.attr = 5
    def f(p, /, q, *args, k, **kw):
        inner = p
        return inner
    f(1, 2, 3, k=4, w=5)
    for i in range(2):
        pass
"""


def test_log_var(tmp_path):
    trace, ns = run(tmp_path, VAR_SOURCE, [("log_var", {"varnames": ["a", "ab", "[xyz]", "o", "p|q|args|k|kw", "i"]})])
    assert instant_names(trace) == [
        "Variable Assign - a = 1",
        "Variable Assign - ab = [1]",
        "Variable Assign - ab = [2]",          # ab[0] = 2 logs ab
        "Variable Assign - a = 2",             # a += 1
        "Variable Assign - x = 1",
        "Variable Assign - y = 2",
        "Variable Assign - z = [3, 4]",
        f"Variable Assign - o = {ns['o']!r}",
        f"Variable Assign - o = {ns['o']!r}",  # o.attr = 5 logs o
        "Variable Assign - p = 1",             # parameters, at the start of the body
        "Variable Assign - q = 2",
        "Variable Assign - args = (3,)",
        "Variable Assign - k = 4",
        "Variable Assign - kw = {'w': 5}",
        "Variable Assign - i = 0",             # for targets, at each iteration
        "Variable Assign - i = 1",
    ]
    assert all(e["s"] == "p" for e in events(trace, "i"))
    assert ns["ab"] == [2, 3] and ns["z"] == [3, 4]  # the program is unchanged


def test_log_var_regexes_must_match_whole_names(tmp_path):
    trace, _ = run(tmp_path, "a = 1\nab = 2\nba = 3\n", [("log_var", {"varnames": ["a"]})])
    assert instant_names(trace) == ["Variable Assign - a = 1"]
    trace, _ = run(tmp_path, "a = 1\nab = 2\nba = 3\n", [("log_var", {"varnames": ["a.*"]})])
    assert instant_names(trace) == ["Variable Assign - a = 1", "Variable Assign - ab = 2"]


def test_log_number(tmp_path):
    trace, _ = run(tmp_path, "abc = 1\nabd = 2.5\nabc += 1\nxyz = 3\n",
                   [("log_number", {"varnames": ["ab[cd]"]})])
    assert counter_events(trace) == [
        ("Variable Assign - abc", {"Variable Assign - abc": 1}),
        ("Variable Assign - abd", {"Variable Assign - abd": 2.5}),
        ("Variable Assign - abc", {"Variable Assign - abc": 2}),
    ]


def test_log_number_rejects_non_numbers_in_the_program(tmp_path):
    with pytest.raises(ValueError, match="is not a number"):
        run(tmp_path, "n = 'text'\n", [("log_number", {"varnames": ["n"]})])


# ---------------------------------------------------------------------- log_attr

def test_log_attr(tmp_path):
    source = """
        class S:
            def __init__(self):
                self.attr = 1
                self.other = 0
        s = S()
        s.attr = 2
        lst = [S()]
        lst[0].attr = 3
        s.attr, lst[0].attr = 4, 5
        s.attr += 1
        def get():
            return s
        get().attr = 9   # not logged: reading it again would call get() twice
    """
    trace, _ = run(tmp_path, source, [("log_attr", {"attr_names": ["at.*"]})])
    assert instant_names(trace) == [
        "Attribute Assign - self.attr = 1",
        "Attribute Assign - s.attr = 2",
        "Attribute Assign - self.attr = 1",
        "Attribute Assign - lst[0].attr = 3",
        "Attribute Assign - s.attr = 4",
        "Attribute Assign - lst[0].attr = 5",
        "Attribute Assign - s.attr = 5",
    ]
    get_calls = [e for e in events(trace) if e["name"].startswith("get ")]
    assert len(get_calls) == 1


# ---------------------------------------------------------------------- log_func_entry / log_func_exec

def test_log_func_entry_keeps_docstrings(tmp_path):
    source = '''
        def alpha():
            """Alpha's doc."""
            return 1
        async def beta():
            return 2
        def gamma():
            return 3
        alpha(); alpha(); gamma()
        import asyncio
        asyncio.run(beta())
    '''
    trace, ns = run(tmp_path, source, [("log_func_entry", {"func_names": ["alpha|beta"]})])
    assert instant_names(trace) == ["Function Entry - alpha = 'alpha is called'"] * 2 + [
        "Function Entry - beta = 'beta is called'"]
    assert ns["alpha"].__doc__ == "Alpha's doc."


def test_log_func_exec(tmp_path):
    source = """
        def work(n):
            total = 0
            for i in range(n):
                total += i
            def helper():
                hidden = 1
                return hidden
            after = helper()
            return total
        work(3)
    """
    trace, _ = run(tmp_path, source, [("log_func_exec", {"func_names": ["work"]})])
    (work,) = [e for e in events(trace) if e["name"].startswith("work ")]
    assert work["args"]["exec_steps"] == [
        "(3) total = 0", "(5) total = 0", "(5) total = 1", "(5) total = 3",
        "(9) after = 1",   # a nested def does not switch the outer function off
    ]
    (helper,) = [e for e in events(trace) if "helper" in e["name"]]
    assert "args" not in helper


# ---------------------------------------------------------------------- log_exception

def test_log_exception(tmp_path):
    source = """
        made = []
        def make(msg):
            made.append(msg)
            return ValueError(msg)
        for what in ("expr", "class", "bare", "from"):
            try:
                if what == "expr":
                    raise make("bad")
                if what == "class":
                    raise KeyError
                if what == "bare":
                    try:
                        {}["missing"]
                    except KeyError:
                        raise
                raise make("chained") from None
            except (ValueError, KeyError):
                pass
    """
    trace, ns = run(tmp_path, source, [("log_exception", {})])
    assert instant_names(trace) == [
        "Exception - make() = ValueError('bad')",
        "Exception - KeyError = KeyError()",
        "Exception = KeyError('missing')",
        "Exception - make() = ValueError('chained')",
    ]
    assert ns["made"] == ["bad", "chained"]  # the expression is evaluated once


def test_log_exception_keeps_tracebacks_and_chaining(tmp_path):
    source = """
        def fail():
            try:
                1 / 0
            except ZeroDivisionError as e:
                raise RuntimeError("wrapped") from e
        fail()
    """
    with pytest.raises(RuntimeError) as info:
        run(tmp_path, source, [("log_exception", {})])
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    frames = [f for f in traceback.extract_tb(info.value.__traceback__) if f.filename == FILE]
    assert [(f.name, f.lineno) for f in frames] == [("<module>", 7), ("fail", 6)]
    assert "__viz_exception" not in info.value.__traceback__.tb_next.tb_frame.f_locals


# ---------------------------------------------------------------------- several instruments, line numbers

def test_several_instruments_and_line_numbers(tmp_path):
    source = """
        def f(a):
            b = a + 1
            return b
        c = f(1)
        d = c.missing
    """
    with pytest.raises(AttributeError) as info:
        run(tmp_path, source, [("log_var", {"varnames": ["b", "c"]}), ("log_func_entry", {"func_names": ["f"]})])
    (frame,) = [f for f in traceback.extract_tb(info.value.__traceback__) if f.filename == FILE]
    assert frame.lineno == 6
    trace = load_trace(tmp_path / "r.json")
    assert instant_names(trace) == ["Function Entry - f = 'f is called'", "Variable Assign - b = 2",
                                    "Variable Assign - c = 2"]
    assert all(e["name"] != "Variable Assign - a" for e in events(trace, "i"))


# ---------------------------------------------------------------------- magic comments

@pytest.mark.parametrize("line, expected", [
    ("a = 3  # !viztracer: log", "a = 3  ; __viz_tracer__.log_var('a', (a))"),
    ("a = 3 # !viztracer: log if a > 2", "a = 3 ; __viz_tracer__.log_var('a', (a), cond=a > 2)"),
    ("    # !viztracer: log_instant('x')", "    __viz_tracer__.log_instant('x')"),
    ("# !viztracer: log_var('a', a) if a > 1", "if a > 1: __viz_tracer__.log_var('a', a);"),
    ("f()  # !viztracer: log", "f()  ; __viz_tracer__.log_instant('f()')"),
    ("a += 1  # !viztracer: log", "a += 1  ; __viz_tracer__.log_var('a', (a))"),
    ("a[0] = 1  # !viztracer: log", "a[0] = 1  ; __viz_tracer__.log_var('a[0]', (a[0]))"),
    ("#!viztracer: log_instant('x')", "__viz_tracer__.log_instant('x')"),
    # left alone: nothing valid can be appended, or it is not a magic comment
    ("if x:  # !viztracer: log", "if x:  # !viztracer: log"),
    ("a = 1  # !viztracer: something else", "a = 1  # !viztracer: something else"),
    ("s = '# !viztracer: log'", "s = '# !viztracer: log'"),
    ("a = 1  # just a comment", "a = 1  # just a comment"),
])
def test_magic_comment_lines(line, expected):
    assert SourceProcessor().process(line) == expected
    assert SourceProcessor().process(line + "\n") == expected + "\n"


def test_magic_comments_keep_lines_and_handle_bytes():
    source = "x = (1,\n     2)  # !viztracer: log\n# !viztracer: log_instant('y')\ny = 2\n"
    out = SourceProcessor().process(source)
    assert out.splitlines() == ["x = (1,", "     2)  ; __viz_tracer__.log_var('x', (x))",
                                "__viz_tracer__.log_instant('y')", "y = 2"]
    latin = "# -*- coding: latin-1 -*-\nv = 'é'  # !viztracer: log\n".encode("latin-1")
    processed = SourceProcessor().process(latin)
    assert isinstance(processed, bytes)
    assert processed.decode("latin-1").splitlines()[1] == "v = 'é'  ; __viz_tracer__.log_var('v', (v))"
    assert SourceProcessor().process(None) is None


def test_magic_comments_in_a_program(tmp_path):
    source = """
        a = 3  # !viztracer: log
        name = "n"  # !viztracer: log
        # !viztracer: log_instant("own line")
        # !viztracer: log_instant("skipped") if a > 5
        # !viztracer: log_instant("taken", scope="p") if a < 5
        b = 10  # !viztracer: log if a == 3
        c = 20  # !viztracer: log if a == 4
        print  # !viztracer: log
    """
    trace, _ = run(tmp_path, source, magic=True)
    assert counter_events(trace) == [("a", {"value": 3}), ("b", {"value": 10})]
    assert instant_names(trace) == ["name", "own line", "taken", "print"]
    named = {e["name"]: e for e in events(trace, "i")}
    assert named["name"]["args"]["object"].strip("'\"") == "n"
    assert named["taken"]["s"] == "p"


# ---------------------------------------------------------------------- compile() as a drop-in

def test_compile_changes_only_the_target_file(tmp_path, monkeypatch):
    monkey = CodeMonkey(FILE)
    monkey.add_instrument("log_var", {"varnames": ["a"]})
    monkey.add_source_processor()
    monkeypatch.setattr(builtins, "compile", monkey.compile)
    tree = ast.parse("a = 1  # !viztracer: log")  # ast.parse goes through compile()
    assert isinstance(tree, ast.Module) and len(tree.body) == 1
    other = compile("a = 1  # !viztracer: log", "/elsewhere.py", "exec")
    tracer = VizTracer(output_file=str(tmp_path / "r.json"), verbose=0)
    tracer.start()
    exec(other, {})
    exec(compile("a = 2", FILE, "exec"), {})
    exec(compile(ast.parse("a = 3"), FILE, "exec"), {})   # an AST of the target file
    assert eval(compile("a + 1", FILE, "eval", dont_inherit=True), {"a": 1}) == 2
    tracer.stop()
    tracer.save()
    assert instant_names(load_trace(tmp_path / "r.json")) == ["Variable Assign - a = 2", "Variable Assign - a = 3"]
    assert sys.dont_write_bytecode  # instrumented code is never cached


def test_compile_matches_relative_and_absolute_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkey = CodeMonkey("script.py")
    monkey.add_instrument("log_var", {"varnames": ["v"]})
    code = monkey.compile("v = 1", str(tmp_path / "script.py"), "exec")
    assert "add_variable" in code.co_names or any(
        "add_variable" in getattr(c, "co_names", ()) for c in code.co_consts)


def test_compile_keeps_no_future_flags_of_its_own():
    monkey = CodeMonkey(FILE)
    monkey.add_instrument("log_var", {"varnames": ["x"]})
    ns = {}
    exec(monkey.compile("def f(x: int): pass\nann = f.__annotations__", FILE, "exec"), {"__builtins__": builtins}, ns)
    assert ns["ann"] == {"x": int}  # not the string 'int'


def _keyword_only_parameters_of_compile():
    return {p.name: p.default for p in inspect.signature(compile).parameters.values() if p.kind is p.KEYWORD_ONLY}


@pytest.mark.parametrize("filename", [FILE, "/elsewhere.py"], ids=["target-file", "other-file"])
def test_compile_passes_every_keyword_through(monkeypatch, filename):
    # Whatever keywords this interpreter's compile() takes (3.15's ast.parse passes
    # module=), ours takes them and hands them on.
    keywords = _keyword_only_parameters_of_compile()
    assert "_feature_version" in keywords
    calls = []
    real = code_monkey._real_compile

    def recording(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(code_monkey, "_real_compile", recording)
    monkey = CodeMonkey(FILE)
    monkey.add_instrument("log_var", {"varnames": ["a"]})
    code = monkey.compile("a = 1", filename, "exec", optimize=1, **keywords)
    assert calls, "the real compile was not called"
    for kwargs in calls:  # the target file's source is parsed, then compiled
        assert {k: kwargs.get(k, "missing") for k in keywords} == keywords
        assert kwargs["optimize"] == 1
    assert ("add_variable" in code.co_names) == (filename == FILE)
    with pytest.raises(TypeError) as ours:
        monkey.compile("a = 1", filename, "exec", no_such_keyword=1)
    with pytest.raises(TypeError) as builtin:
        compile("a = 1", filename, "exec", no_such_keyword=1)
    assert str(ours.value) == str(builtin.value)


def test_compile_module_keyword_reaches_the_real_compile(monkeypatch):
    if "module" not in _keyword_only_parameters_of_compile():
        pytest.skip("this interpreter's compile() has no module= keyword (new in 3.15)")
    # module= names the module whose warning filters apply to the compiled source.
    monkey = CodeMonkey(FILE)
    monkey.add_instrument("log_var", {"varnames": ["a"]})
    monkeypatch.setattr(builtins, "compile", monkey.compile)
    warns = 'a = "\\d"\n'  # an invalid escape: a SyntaxWarning from the parser
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.filterwarnings("error", category=SyntaxWarning, module="the_module")
        for name in (FILE, "/elsewhere.py"):
            compile(warns, name, "exec", module="other_module")
            with pytest.raises(SyntaxError):
                compile(warns, name, "exec", module="the_module")
        ast.parse(warns, module="other_module")
        with pytest.raises(SyntaxError):
            ast.parse(warns, module="the_module")


def test_compile_hands_on_the_callers_future_statements(monkeypatch):
    # The builtin compile inherits its caller's future statements (unless
    # dont_inherit): ours is called in its place, so it must hand on its caller's.
    caller = {}
    exec(compile("from __future__ import annotations\n"
                 "def make(source, name, **kw):\n"
                 "    return compile(source, name, 'exec', **kw)\n", "<caller>", "exec"), caller)
    source = "def f(x: int): pass\nann = f.__annotations__\n"

    def annotations(name, **kw):
        ns = {"__builtins__": builtins}
        exec(caller["make"](source, name, **kw), ns)
        return ns["ann"]

    assert annotations("/elsewhere.py") == {"x": "int"}  # the builtin compile's behaviour
    monkey = CodeMonkey(FILE)
    monkey.add_instrument("log_var", {"varnames": ["nothing"]})
    monkeypatch.setattr(builtins, "compile", monkey.compile)
    for name in (FILE, "/elsewhere.py"):
        assert annotations(name) == {"x": "int"}, name
        assert annotations(name, dont_inherit=True) == {"x": int}, name


def test_instrument_errors():
    monkey = CodeMonkey(FILE)
    with pytest.raises(ValueError, match="not a valid instrument type"):
        monkey.add_instrument("log_everything", {})
    with pytest.raises(ValueError, match="needs {'varnames'"):
        monkey.add_instrument("log_var", {})
    with pytest.raises(ValueError, match="invalid regex"):
        monkey.add_instrument("log_var", {"varnames": ["("]})
    with pytest.raises(TypeError, match="must be a list of regexes"):
        AstTransformer("log_attr", {"attr_names": "a"})


@pytest.mark.parametrize("expr", ["a", "a[0]", "a[1:]", "a[0:3]", "a[0:3:1]", "d['a']", "d['a'][0].b",
                                  "[a,b]", "(a,b)", "a[:3]", "a[::2]"])
def test_get_string_of_expr(expr):
    assert get_string_of_expr(ast.parse(expr, mode="eval").body) == expr


def test_get_string_of_expr_others():
    assert get_string_of_expr(ast.parse("f(1, x=2).y", mode="eval").body) == "f().y"
    starred = ast.parse("*a, = b").body[0].targets[0].elts[0]
    assert get_string_of_expr(starred) == "*a"
    assert get_string_of_expr(ast.parse("a + b", mode="eval").body) == "a + b"


def test_async_functions_are_instrumented(tmp_path):
    source = """
        import asyncio
        async def job(n):
            doubled = n * 2
            return doubled
        asyncio.run(job(4))
    """
    trace, _ = run(tmp_path, source, [("log_var", {"varnames": ["n", "doubled"]})])
    assert instant_names(trace) == ["Variable Assign - n = 4", "Variable Assign - doubled = 8"]
    assert asyncio  # imported for the instrumented program only
