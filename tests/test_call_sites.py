"""3.12+: call sites whose callee is a global stop sending CALL events while that
global holds a Python function or a class (rust/hooks/callsites.rs). Every builtin
call must still be recorded, whatever happens to the globals meanwhile."""

import argparse as argparse_mod
import builtins
import dataclasses as dataclasses_mod
import sys
import textwrap
import types

import pytest

from support import assert_nested, short_names, trace_call

pytestmark = pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring only")

if sys.version_info >= (3, 12):
    from viztracer._snaptrace import _call_site_stats, _global_call_sites


def namespace(src):
    """Functions defined in a fresh globals dict of their own."""
    ns = {"__name__": "callsites_ns"}
    exec(compile(textwrap.dedent(src), "<callsites>", "exec"), ns)
    return ns


LOOP = """
def py(x):
    return x

def loop(n):
    for i in range(n):
        hook([i])
"""


def builtin_count(trace, name):
    return short_names(trace).count(f"builtins.{name}")


def test_sites_calling_python_through_globals_are_switched_off(tmp_path):
    ns = namespace("""
        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2)

        def make(n):
            return [str(i) for i in range(n)]
    """)

    def run():
        ns["fib"](15)
        ns["make"](10)

    trace = trace_call(tmp_path, run)
    assert short_names(trace).count("fib") == 1973
    disabled, restarts = _call_site_stats()
    # fib's two recursive calls (and the outer call, str() and range() here) stopped
    # reporting after their first call.
    assert disabled >= 3 and restarts == 0
    # fast_calls does this itself: nothing is decided.
    trace_call(tmp_path, run, fast_calls=True)
    assert _call_site_stats() == (0, 0)


def test_rebinding_a_global_to_a_builtin_is_seen_at_once(tmp_path):
    ns = namespace(LOOP + "hook = py\n")

    def run():
        ns["loop"](50)       # the site calls a Python function: it stops reporting
        ns["hook"] = sum     # ...until the global is rebound
        ns["loop"](5)
        ns["hook"] = ns["py"]
        ns["loop"](20)
        ns["hook"] = len
        ns["loop"](3)

    trace = trace_call(tmp_path, run)
    assert builtin_count(trace, "sum") == 5
    assert builtin_count(trace, "len") == 3
    assert short_names(trace).count("py") == 70
    assert_nested(trace)


def test_deleting_a_global_falls_back_to_the_builtin(tmp_path):
    ns = namespace(LOOP.replace("hook(", "len(") + "def len(x):\n    return 0\n")

    def run():
        ns["loop"](40)
        del ns["len"]
        ns["loop"](6)

    trace = trace_call(tmp_path, run)
    assert builtin_count(trace, "len") == 6
    assert short_names(trace).count("len") == 40


def test_a_builtin_class_site_and_a_global_that_shadows_it(tmp_path):
    ns = namespace("""
        def loop(n):
            for i in range(n):
                str(i)
    """)

    def run():
        ns["loop"](30)       # str is a class from the builtins: never recorded
        ns["str"] = repr     # a global now shadows it with a builtin function
        ns["loop"](4)
        del ns["str"]
        ns["loop"](30)

    trace = trace_call(tmp_path, run)
    assert builtin_count(trace, "repr") == 4


def test_replacing_a_builtin_is_seen(tmp_path):
    ns = namespace("""
        def ident(x):
            return x

        def loop(n):
            for i in range(n):
                ascii(i)
    """)
    original = builtins.ascii

    def run():
        builtins.ascii = ns["ident"]
        try:
            ns["loop"](25)
            builtins.ascii = repr
            ns["loop"](4)
        finally:
            builtins.ascii = original
        ns["loop"](2)

    trace = trace_call(tmp_path, run)
    assert short_names(trace).count("ident") == 25
    assert builtin_count(trace, "repr") == 4
    assert builtin_count(trace, "ascii") == 2


def test_same_code_under_other_globals(tmp_path):
    ns = namespace(LOOP + "hook = py\n")
    other = dict(ns, hook=max)
    copy = types.FunctionType(ns["loop"].__code__, other)

    def run():
        ns["loop"](30)   # decided under ns
        copy(3)          # the same code object, where hook is a builtin
        ns["loop"](30)
        copy(2)

    trace = trace_call(tmp_path, run)
    assert builtin_count(trace, "max") == 5


def test_cleared_and_refilled_globals(tmp_path):
    ns = namespace(LOOP + "hook = py\n")
    loop, py = ns["loop"], ns["py"]

    def run():
        loop(30)
        ns.clear()
        ns.update(range=range, hook=min)
        loop(4)
        ns["hook"] = py
        loop(10)

    trace = trace_call(tmp_path, run)
    assert builtin_count(trace, "min") == 4


def test_a_global_rebound_over_and_over(tmp_path):
    ns = namespace(LOOP + "hook = py\n")

    def run():
        for _ in range(20):
            ns["hook"] = ns["py"]
            ns["loop"](10)
            ns["hook"] = len
            ns["loop"](1)

    trace = trace_call(tmp_path, run)
    assert builtin_count(trace, "len") == 20
    assert short_names(trace).count("py") == 200
    # After two rebinding restarts the name's sites stay enabled.
    assert _call_site_stats()[1] == 2


def test_globals_that_change_all_the_time_are_given_up(tmp_path):
    """A module rebinding a global in a hot loop would pay the watcher on every store:
    its dict is unwatched after 20,000 changes, and its sites report again."""
    ns = namespace(LOOP + """
hook = py
counter = 0

def churn(n):
    global counter
    for i in range(n):
        counter += 1
""")

    def run():
        ns["loop"](10)
        ns["churn"](25_000)
        ns["loop"](10)
        ns["hook"] = len
        ns["loop"](3)

    trace = trace_call(tmp_path, run)
    assert builtin_count(trace, "len") == 3
    assert short_names(trace).count("py") == 20
    # Giving the dict up re-enabled its sites once; nothing was decided under it
    # afterwards, so rebinding `hook` restarted nothing.
    assert _call_site_stats()[1] == 1


def test_a_global_rebound_while_not_tracing_is_seen_next_session(tmp_path):
    ns = namespace(LOOP + "hook = py\n")
    trace = trace_call(tmp_path, lambda: ns["loop"](30))
    assert short_names(trace).count("py") == 30
    ns["hook"] = len          # no tracer is watching now
    trace = trace_call(tmp_path, lambda: ns["loop"](7))
    assert builtin_count(trace, "len") == 7


def test_profiler_after_tracing_sees_every_call(tmp_path):
    import cProfile
    import pstats

    ns = namespace(LOOP + "hook = py\n")
    trace_call(tmp_path, lambda: ns["loop"](30))
    ns["hook"] = len
    prof = cProfile.Profile()
    prof.runcall(ns["loop"], 9)
    stats = pstats.Stats(prof).stats
    assert sum(v[1] for k, v in stats.items() if "len" in k[2]) == 9


CHURN_C = r"""
#include <pthread.h>
typedef int PyGILState_STATE;
extern PyGILState_STATE PyGILState_Ensure(void);
extern void PyGILState_Release(PyGILState_STATE);
extern void *PyObject_CallNoArgs(void *);
extern void Py_DecRef(void *);
extern void PyErr_Clear(void);
struct job { void *cb; int n; };
static void *run(void *arg) {
    struct job *j = arg;
    for (int i = 0; i < j->n; i++) {
        /* A thread state is created and freed around every call. */
        PyGILState_STATE g = PyGILState_Ensure();
        void *r = PyObject_CallNoArgs(j->cb);
        if (r) Py_DecRef(r); else PyErr_Clear();
        PyGILState_Release(g);
    }
    return 0;
}
int call_from_c_thread(void *cb, int n) {
    struct job j = {cb, n};
    pthread_t t;
    if (pthread_create(&t, 0, run, &j)) return -1;
    return pthread_join(t, 0);
}
"""


def test_c_thread_whose_thread_state_comes_and_goes(tmp_path):
    """The fast slot remembers the thread state it read globals through; a C thread
    that enters Python through PyGILState_Ensure gets a new one every time."""
    import ctypes
    import shutil
    import subprocess

    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    src, lib_path = tmp_path / "churn.c", tmp_path / "churn.so"
    src.write_text(CHURN_C)
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", str(lib_path), str(src), "-lpthread"], check=True)
    lib = ctypes.CDLL(str(lib_path))
    lib.call_from_c_thread.argtypes = [ctypes.py_object, ctypes.c_int]
    ns = namespace("""
        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2)

        def from_c():
            fib(8)
            len([1])
    """)

    def run():
        ns["fib"](10)
        assert lib.call_from_c_thread(ns["from_c"], 50) == 0
        ns["fib"](10)

    trace = trace_call(tmp_path, run)
    names = short_names(trace)
    assert names.count("from_c") == 50 and builtin_count(trace, "len") == 50
    assert names.count("fib") == 2 * 177 + 50 * 67
    # A stale thread state would read some other frame's globals and restart events.
    assert _call_site_stats()[1] == 0
    assert_nested(trace)


def test_analysis_finds_global_call_sites_only():
    ns = namespace("""
        def f(a, b, *c, **k):
            fib(a - 1, key=b)
            g(*c, **k)
            h(a)(b)
            (f if a else h)(b)
            obj.method(a)
            g(x := fib(1), [1, 2], {"a": b}, f"{a!r:>3}")
            g(v for v in c)
            g([v for v in c])
    """)
    sites = _global_call_sites(ns["f"].__code__)
    called = [name for _, name in sites]
    # The call of h's result, the conditional callee and the method take their
    # callee from elsewhere. The call wrapping the list comprehension (inlined: a
    # loop) is beyond a straight-line walk; so is the one wrapping the generator
    # expression before 3.15, whose caller ran GET_ITER on the argument.
    genexpr_call = ["g"] if sys.version_info >= (3, 15) else []
    assert called == ["fib", "g", "h", "fib", "g"] + genexpr_call
    offsets = [off for off, _ in sites]
    assert offsets == sorted(offsets) and all(off % 2 == 0 for off in offsets)


def test_analysis_finds_nearly_every_global_call_of_real_code():
    """On this interpreter, the sites the analysis proves are nearly all the calls of a
    global in real code. A CPython whose compiler emits an instruction the analysis
    does not model (3.14's LOAD_FAST_BORROW, LOAD_SMALL_INT, ...) turns the
    optimisation off for every call around it: it shows here, not as a slower tracer."""
    import ast
    import calendar
    import difflib
    import dis
    import inspect
    import json.decoder
    import pprint

    modules = [argparse_mod, ast, calendar, dataclasses_mod, difflib, dis, inspect, json.decoder, pprint,
               textwrap, types]
    loads = found = 0
    for mod in modules:
        with open(mod.__file__, encoding="utf-8") as f:
            top = compile(f.read(), mod.__file__, "exec")
        todo = [top]
        while todo:
            code = todo.pop()
            todo.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
            # A LOAD_GLOBAL that also pushes NULL loads a callee, and its call is a
            # site, unless an attribute of the global is the callee (3.12: `a.b.c()`).
            ins = list(dis.get_instructions(code))
            loads += sum(1 for a, b in zip(ins, ins[1:])
                         if a.opname == "LOAD_GLOBAL" and a.arg & 1 and b.opname != "LOAD_ATTR")
            found += len(_global_call_sites(code))
    assert loads > 1000
    assert found / loads > 0.95, (found, loads)


def test_analysis_agrees_with_the_interpreter_on_real_code():
    """Every CALL event at a site the analysis names calls that global."""
    mon = sys.monitoring
    tool = next(t for t in (5, 1, 0) if mon.get_tool(t) is None)
    sites_cache = {}
    checked = [0]
    wrong = []

    def on_call(code, offset, callable, arg0):
        sites = sites_cache.get(code)
        if sites is None:
            sites = sites_cache[code] = dict(_global_call_sites(code))
        name = sites.get(offset)
        if name is not None:
            frame = sys._getframe(1)
            g, b = frame.f_globals, frame.f_builtins
            expected = g[name] if name in g else b.get(name)
            checked[0] += 1
            if expected is not callable:
                wrong.append((code, offset, name, callable))

    def workload():
        import argparse
        import dataclasses
        import json
        import re
        import textwrap as tw

        @dataclasses.dataclass
        class P:
            x: int
            y: str = "a"

        data = {"a": [1, 2.5, None, "x" * 20], "b": {"c": [P(1).x] * 5}}
        json.loads(json.dumps(data, indent=2, sort_keys=True))
        re.sub(r"(\w+)@(\w+)", r"\2 at \1", "me@here you@there " * 10)
        tw.fill("word " * 200, width=40)
        parser = argparse.ArgumentParser(prog="x")
        parser.add_argument("--n", type=int, default=3)
        parser.add_argument("rest", nargs="*")
        parser.parse_args(["--n", "5", "a", "b"])
        repr(P(2, "b"))

    mon.use_tool_id(tool, "test")
    try:
        mon.register_callback(tool, mon.events.CALL, on_call)
        mon.set_events(tool, mon.events.CALL)
        workload()
    finally:
        mon.set_events(tool, 0)
        mon.register_callback(tool, mon.events.CALL, None)
        mon.free_tool_id(tool)
    assert checked[0] > 200
    assert wrong == []


def test_same_trace_with_every_call_event_delivered(tmp_path):
    """Switching call sites off changes how events arrive, never which are recorded."""
    from collections import Counter

    from viztracer import VizTracer

    def workload():
        import argparse
        import asyncio
        import dataclasses
        import json
        import re
        import textwrap as tw

        @dataclasses.dataclass
        class P:
            x: int
            y: str = "a"

        data = {"a": [1, 2.5, None, "x" * 20], "b": {"c": [P(i).x for i in range(5)]}}
        json.loads(json.dumps(data, indent=2, sort_keys=True))
        re.sub(r"(\w+)@(\w+)", r"\2 at \1", "me@here you@there " * 10)
        tw.fill("word " * 200, width=40)
        parser = argparse.ArgumentParser(prog="x")
        parser.add_argument("--n", type=int, default=3)
        parser.parse_args(["--n", "5"])
        sorted(map(str, range(50)), key=len)

        async def leaf(i):
            await asyncio.sleep(0)
            return str(i)

        async def main():
            return await asyncio.gather(*(leaf(i) for i in range(20)))

        asyncio.run(main())

        # Sites whose callee changes kind: a parameter, and a method of two types.
        class Box:
            def append(self, x):
                return x

        def apply(f, x):
            return f(x)

        for o in [Box(), [], Box(), []] * 5:
            o.append(1)
        for f in [lambda v: v, len] * 5:
            apply(f, [1])

    workload()  # imports and caches warm, so both runs do the same work

    def traced(every):
        tracer = VizTracer(verbose=0, output_file=str(tmp_path / f"t{every}.json"))
        tracer._tracer._every_call_event = every
        tracer.start()
        workload()
        tracer.stop()
        tracer.parse()
        return Counter(e["name"] for e in tracer.data["traceEvents"] if e.get("ph") == "X")

    switched, every = traced(False), traced(True)
    assert _call_site_stats()[0] == 0  # the second run switched nothing off
    assert sum(switched.values()) > 2000
    assert switched == every


def test_threads_calling_a_global_that_another_thread_keeps_rebinding(tmp_path):
    import threading

    sink = []
    ns = namespace(LOOP + "hook = py\n")
    rebinding = threading.Event()

    def worker():
        rebinding.wait()  # the calls start once the rebinding has
        for _ in range(400):
            ns["loop"](50)

    def run():
        threads = [threading.Thread(target=worker) for _ in range(4)]
        old = sys.getswitchinterval()
        sys.setswitchinterval(0.00005)  # interleave the rebinding with the calls
        try:
            for t in threads:
                t.start()
            k = 0
            while k < 2 or any(t.is_alive() for t in threads):
                ns["hook"] = sink.append if k % 2 else ns["py"]
                k += 1
                rebinding.set()
                if k % 2 == 0:
                    # Bound to the builtin: let the workers call it at least once
                    # (where the scheduler switches threads is not ours to choose).
                    n = len(sink)
                    while len(sink) == n and any(t.is_alive() for t in threads):
                        pass
        finally:
            sys.setswitchinterval(old)
        for t in threads:
            t.join()
        # The builtin was bound, called and rebound at least twice while they ran.
        assert k >= 4

    trace = trace_call(tmp_path, run, tracer_entries=2_000_000)
    names = short_names(trace)
    assert names.count("list.append") == len(sink) > 0
    assert names.count("py") + len(sink) == 4 * 400 * 50
