"""Traced programs behave exactly as untraced ones, and odd control flow never crashes
the tracer or breaks the nesting of the recorded events."""

import asyncio
import gc
import os
import sys

import pytest

from support import (
    MONITORING,
    assert_nested,
    count_by_name,
    events,
    load_trace,
    names,
    run_script,
    short_names,
    trace_call,
)
from viztracer import VizTracer


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def leaf(n):
    return n


def test_exceptions_unwinding_through_frames(tmp_path):
    def level3():
        leaf(1)
        raise ValueError("deep")

    def level2():
        level3()

    def level1():
        try:
            level2()
        except ValueError as e:
            return str(e)

    out = []
    trace = trace_call(tmp_path, lambda: out.append(level1()))
    assert out == ["deep"]
    got = [n.split(".")[-1] for n in short_names(trace)]
    for f in ("level1", "level2", "level3", "leaf"):
        assert f in got
    assert_nested(trace)


def test_exception_from_a_c_function(tmp_path):
    def parse(s):
        try:
            return int(s)
        except ValueError:
            return -1

    def run():
        return [parse("12"), parse("x"), parse("3")]

    out = []
    trace = trace_call(tmp_path, lambda: out.append(run()))
    assert out == [[12, -1, 3]]
    assert_nested(trace)


def test_uncaught_exception_propagates_unchanged(tmp_path):
    class Custom(Exception):
        pass

    def bad():
        raise Custom("payload")

    with pytest.raises(Custom, match="payload"):
        trace_call(tmp_path, bad)


def gen(n):
    for i in range(n):
        yield leaf(i)


def test_generators_give_one_slice_per_resume(tmp_path):
    out = []
    trace = trace_call(tmp_path, lambda: out.append(list(gen(3))))
    assert out == [[0, 1, 2]]
    counts = count_by_name(short_names(trace))
    assert counts["gen"] == 4  # three yields and the final return
    assert counts["leaf"] == 3
    assert_nested(trace)


def real_entries(func):
    """How often each function of this module is entered (a call, or a resume of a
    generator or coroutine) when ``func`` runs untraced, as the interpreter's own
    profile events tell: what a trace must show, whatever this Python version does
    (3.13 skips resuming a generator without a handler on close(), 3.12 and 3.14+
    do not)."""
    from collections import Counter

    entries = Counter()

    def profile(frame, event, arg):
        if event == "call" and frame.f_code.co_filename == __file__:
            entries[frame.f_code.co_name] += 1

    sys.setprofile(profile)
    try:
        func()
    finally:
        sys.setprofile(None)
    return entries


def traced_entries(tmp_path, func):
    trace = trace_call(tmp_path, func)
    assert_nested(trace)
    ours = {os.path.abspath(__file__)}
    found = count_by_name(n.split(" (")[0].split(".")[-1] for n in names(trace)
                          if " (" in n and n.split(" (")[1].rsplit(":", 1)[0] in ours)
    return found


def test_generator_close_and_throw(tmp_path):
    def consumer():
        g = gen(10)
        next(g)
        try:
            g.throw(KeyError("stop"))
        except KeyError:
            pass
        g2 = gen(10)
        next(g2)
        g2.close()

    expected = real_entries(consumer)
    assert expected["gen"] in (3, 4)  # next, throw, next, and close() where it resumes
    assert traced_entries(tmp_path, consumer) == expected


def test_frame_entries_match_the_interpreter_on_odd_control_flow(tmp_path):
    """Generators and coroutines sent to, thrown into and closed, delegation, finally
    blocks, re-raised and chained exceptions: every entry the interpreter reports is
    one slice of the trace (PY_THROW, PY_UNWIND, RERAISE and friends differ between
    versions; the profile events are the reference)."""

    def inner():
        try:
            yield leaf(1)
            yield leaf(2)
        finally:
            leaf(3)

    def outer():
        got = yield from inner()
        return got

    def with_handler():
        while True:
            try:
                yield
            except ValueError:
                leaf(4)

    async def coro():
        return leaf(5)

    def reraiser():
        try:
            raise KeyError("a")
        except KeyError as e:
            raise ValueError("b") from e

    def workload():
        g = outer()
        next(g)
        g.close()
        h = with_handler()
        next(h)
        h.throw(ValueError("x"))
        h.send(None)
        h.close()
        c = coro()
        try:
            c.send(None)
        except StopIteration:
            pass
        c2 = coro()
        c2.close()
        for _ in range(3):
            try:
                reraiser()
            except ValueError:
                pass
        list(inner())

    expected = real_entries(workload)
    assert expected["inner"] >= 4 and expected["reraiser"] == 3
    assert traced_entries(tmp_path, workload) == expected


async def child(n):
    await asyncio.sleep(0)
    return leaf(n)


async def parent():
    return sum(await asyncio.gather(*(child(i) for i in range(5))))


def test_coroutines_and_asyncio(tmp_path):
    out = []
    trace = trace_call(tmp_path, lambda: out.append(asyncio.run(parent())))
    assert out == [10]
    counts = count_by_name(short_names(trace))
    assert counts["leaf"] == 5
    assert counts["child"] >= 10  # each coroutine runs in two segments
    assert_nested(trace)


def test_deep_recursion(tmp_path):
    def down(n):
        return 0 if n == 0 else 1 + down(n - 1)

    old = sys.getrecursionlimit()
    sys.setrecursionlimit(20000)
    try:
        out = []
        trace = trace_call(tmp_path, lambda: out.append(down(8000)))
    finally:
        sys.setrecursionlimit(old)
    assert out == [8000]
    assert count_by_name(short_names(trace))["test_deep_recursion.<locals>.down" if MONITORING or
                                               sys.version_info >= (3, 11) else "down"] == 8001
    assert_nested(trace)


def test_recursion_error_inside_tracing(tmp_path):
    def forever(n):
        return forever(n + 1)

    def run():
        try:
            forever(0)
        except RecursionError:
            return "stopped"

    out = []
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(300)
    try:
        trace = trace_call(tmp_path, lambda: out.append(run()))
    finally:
        sys.setrecursionlimit(old)
    assert out == ["stopped"]
    assert_nested(trace)
    assert count_by_name([n.split(".")[-1] for n in short_names(trace)])["forever"] > 100


def test_start_inside_nested_frames_ignores_earlier_frames(tmp_path):
    path = str(tmp_path / "nested.json")
    tracer = VizTracer(output_file=path, verbose=0)

    def outer():
        inner()
        leaf(2)

    def inner():
        tracer.start()
        leaf(1)

    outer()
    tracer.stop()
    tracer.save()
    from support import load_trace
    trace = load_trace(path)
    got = [n.split(".")[-1] for n in short_names(trace)]
    # inner() and outer() began before start(): their returns are not recorded.
    assert got.count("leaf") == 2 and "inner" not in got and "outer" not in got
    assert_nested(trace)


class Noisy:
    def __del__(self):
        tracer = __import__("builtins").__dict__.get("__viz_tracer__")
        if tracer is not None:
            tracer.add_instant("deleted", {"n": 1})
            leaf(0)


def test_reentrant_calls_from_finalizers(tmp_path):
    def churn():
        for _ in range(2000):
            a = Noisy()
            b = Noisy()
            a.other = b
            b.other = a
        gc.collect()

    path = tmp_path / "re.json"
    tracer = VizTracer(output_file=str(path), verbose=0, tracer_entries=500, log_func_args=True,
                       log_func_retval=True)
    tracer.start()
    churn()
    tracer.stop()
    tracer.save()
    from support import load_trace
    trace = load_trace(str(path))
    assert len(events(trace)) + len(events(trace, "i")) <= 500
    assert_nested(trace)


class Weird:
    """A repr that calls back into the tracer and into traced code."""

    def __repr__(self):
        __import__("builtins").__dict__["__viz_tracer__"].add_instant("from repr")
        return f"Weird({fib(3)})"


def identity(x):
    return x


def test_repr_calling_back_into_the_tracer(tmp_path):
    trace = trace_call(tmp_path, lambda: identity(Weird()), log_func_args=True, log_func_retval=True)
    (e,) = [e for e in events(trace) if e["name"].startswith("identity ")]
    assert e["args"]["func_args"] == {"x": "Weird(2)"} and e["args"]["return_value"] == "Weird(2)"
    assert_nested(trace)


def test_pause_and_resume_across_returns(tmp_path):
    path = str(tmp_path / "p.json")
    tracer = VizTracer(output_file=path, verbose=0)

    def pauses():
        tracer.pause()

    def outer():
        pauses()  # returns while paused
        leaf(1)  # not recorded
        tracer.resume()
        leaf(2)

    tracer.start()
    outer()
    leaf(3)
    tracer.stop()
    tracer.save()
    from support import load_trace
    trace = load_trace(path)
    got = [n.split(".")[-1] for n in short_names(trace)]
    assert got.count("leaf") == 2 and "outer" in got
    assert_nested(trace)


def test_many_c_call_shapes_nest_correctly(tmp_path):
    import functools
    import itertools
    import math

    class Sub(list):
        pass

    def run():
        s = Sub()
        s.append(1)
        list.append(s, 2)
        m = [].append
        m(3)
        sorted([3, 1, 2], key=lambda x: -x)
        functools.reduce(lambda a, b: a + b, [1, 2, 3])
        list(map(math.sqrt, [1, 4]))
        list(itertools.chain([1], [2]))
        dict.fromkeys("ab")
        "x".join(["a", "b"])
        max(1, 2, key=abs)
        try:
            int("bad")
        except ValueError:
            pass
        bytes(3).hex()

    trace = trace_call(tmp_path, run)
    got = short_names(trace)
    for name in ("Sub.append", "builtins.sorted", "_functools.reduce", "math.sqrt" if False else "builtins.max",
                 "type.fromkeys", "str.join", "bytes.hex"):
        assert name in got, name
    assert got.count("Sub.append") + got.count("list.append") >= 3
    assert_nested(trace)


def test_builtin_returns_match_their_calls(tmp_path):
    """A builtin's return is matched to its call by the callable object: bound
    methods wrapping a builtin, calls through *args, a raising builtin and the same
    builtin nested in itself must all close their own slice."""
    import types

    holder = object()
    bound_len = types.MethodType(len, [1, 2])  # calls len([1, 2]) through a bound method

    def run():
        assert bound_len() == 2
        args = ([3, 1, 2],)
        sorted(*args)
        for _ in range(3):
            try:
                divmod(1, 0)
            except ZeroDivisionError:
                pass
        sorted([[2, 1], [1]], key=lambda x: sorted(x))
        _ = holder.__class__  # an attribute load between the calls, no call of its own

    path = os.path.join(str(tmp_path), "result.json")
    tracer = VizTracer(output_file=path, verbose=0)
    tracer.start()
    run()
    tracer.stop()
    assert tracer._tracer.mismatches == 0
    tracer.save()
    trace = load_trace(path)
    got = short_names(trace)
    assert got.count("builtins.divmod") == 3
    assert got.count("builtins.sorted") == 4
    if sys.version_info >= (3, 12):
        # 3.9-3.11 do not report calls through bound methods wrapping a builtin.
        assert "builtins.len" in got
    assert_nested(trace)


def test_traced_program_output_and_exit_code_are_unchanged(tmp_path):
    source = """
        import sys
        from viztracer import VizTracer
        def compute():
            print("result", sum(i * i for i in range(10)))
            sys.stdout.write("raw write\\n")
            return 3
        if len(sys.argv) > 1:
            with VizTracer(verbose=0, output_file="t.json"):
                code = compute()
        else:
            code = compute()
        sys.exit(code)
        """
    plain = run_script(tmp_path, source)
    traced = run_script(tmp_path, source, "trace")
    assert plain.returncode == traced.returncode == 3
    assert plain.stdout == traced.stdout
    assert (tmp_path / "t.json").exists()


def test_exception_traceback_is_unchanged(tmp_path):
    source = """
        import sys
        from viztracer import VizTracer
        def fail():
            raise RuntimeError("boom")
        tracer = VizTracer(verbose=0, output_file="t.json")
        if len(sys.argv) > 1:
            tracer.start()
        fail()
        """
    plain = run_script(tmp_path, source)
    traced = run_script(tmp_path, source, "trace")
    assert plain.returncode == traced.returncode == 1
    assert plain.stderr.splitlines()[-1] == traced.stderr.splitlines()[-1] == "RuntimeError: boom"
    assert len(plain.stderr.splitlines()) == len(traced.stderr.splitlines())


def test_hooks_are_removed_on_stop(tmp_path):
    tracer = VizTracer(verbose=0)
    tracer.start()
    tool = tracer._tracer.tool_id
    tracer.stop()
    if MONITORING:
        assert tool in (2, 3, 4)
        assert sys.monitoring.get_tool(tool) is None
    else:
        assert sys.getprofile() is None
        import threading
        assert getattr(threading, "_profile_hook", None) is None


@pytest.mark.skipif(not MONITORING, reason="sys.monitoring tool ids exist on 3.12+")
def test_cprofile_keeps_working_next_to_us(tmp_path):
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()  # takes sys.monitoring.PROFILER_ID (2)
    try:
        trace = trace_call(tmp_path, lambda: fib(6))
    finally:
        prof.disable()
    assert len([n for n in names(trace) if n.startswith("fib ")]) == 25
    stats = pstats.Stats(prof)
    assert any(func[2] == "fib" for func in stats.stats)  # type: ignore[attr-defined]
    # And the other way round: cProfile can start while we trace.
    tracer = VizTracer(verbose=0)
    tracer.start()
    try:
        prof2 = cProfile.Profile()
        prof2.enable()
        fib(3)
        prof2.disable()
    finally:
        tracer.stop()
    assert any(func[2] == "fib" for func in pstats.Stats(prof2).stats)  # type: ignore[attr-defined]


@pytest.mark.skipif(not MONITORING, reason="sys.monitoring tool ids exist on 3.12+")
def test_clear_error_when_every_tool_id_is_taken():
    taken = []
    for tool in (2, 3, 4):
        if sys.monitoring.get_tool(tool) is None:
            sys.monitoring.use_tool_id(tool, f"blocker{tool}")
            taken.append(tool)
    try:
        tracer = VizTracer(verbose=0)
        with pytest.raises(RuntimeError, match="tool ids 2, 3 and 4 are all in use"):
            tracer.start()
        assert not tracer.enable
    finally:
        for tool in taken:
            sys.monitoring.free_tool_id(tool)


def test_tracing_survives_a_failing_thread_namer(tmp_path, monkeypatch):
    import threading

    import viztracer.threads as threads_mod

    def broken(ident):
        raise RuntimeError("namer failed")

    path = str(tmp_path / "n.json")
    tracer = VizTracer(output_file=path, verbose=0)
    tracer._tracer.thread_namer = broken
    tracer.start()
    t = threading.Thread(target=fib, args=(3,), name="nameless")
    t.start()
    t.join()
    tracer.stop()
    tracer.save()
    from support import load_trace
    trace = load_trace(path)
    assert len([n for n in names(trace) if n.startswith("fib ")]) == 5
    assert threads_mod  # the module-level namer is untouched


def test_native_backend_matches_the_python_version():
    from viztracer import _snaptrace
    assert _snaptrace.BACKEND == ("sys.monitoring" if MONITORING else "setprofile")
    # On 3.12+ the running frame's globals are read straight from CPython's structs,
    # and the layout check at import must have accepted this interpreter's layout
    # (before 3.12 nothing is read directly, and the flag is always true).
    assert _snaptrace.FAST_FRAME_ACCESS is True
