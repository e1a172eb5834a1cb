"""The trace file: keys, event shapes, names, timestamps, metadata (features.md §5)."""

import gzip
import json
import math
import os
import threading
import time

import pytest

from support import assert_nested, events, load_trace, names, short_names, trace_call
from viztracer import VizTracer, __version__

THIS_FILE = os.path.abspath(__file__)


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


class Shape:
    def area(self):
        return math.sqrt(16.0)


def test_python_function_events(tmp_path):
    trace = trace_call(tmp_path, lambda: fib(5))
    fibs = [e for e in events(trace) if e["name"].startswith("fib ")]
    assert len(fibs) == 15
    line = fib.__code__.co_firstlineno
    for e in fibs:
        assert e["name"] == f"fib ({THIS_FILE}:{line})"
        assert e["ph"] == "X" and e["cat"] == "FEE"
        assert e["pid"] == os.getpid()
        assert e["tid"] == threading.get_native_id()
        assert isinstance(e["ts"], float) and isinstance(e["dur"], float)
        assert list(e) == ["pid", "tid", "ts", "ph", "dur", "name", "cat"]
    assert_nested(trace)


def test_qualified_names_and_c_functions(tmp_path):
    def work():
        lst = []
        lst.append(1)
        len(lst)
        Shape().area()
        "a,b".split(",")

    trace = trace_call(tmp_path, work)
    got = short_names(trace)
    assert "list.append" in got
    assert "builtins.len" in got
    assert "math.sqrt" in got
    assert "str.split" in got
    area = "Shape.area" if hasattr(Shape.area.__code__, "co_qualname") else "area"
    assert area in got
    # Type calls (Shape(), list()) are never C function events.
    assert not any(n.startswith("Shape (") for n in names(trace))
    assert "builtins.list" not in got


def test_top_level_keys_and_metadata(tmp_path):
    before = time.time_ns()
    trace = trace_call(tmp_path, lambda: fib(3))
    after = time.time_ns()
    assert list(trace) == ["traceEvents", "viztracer_metadata", "file_info"]
    meta = trace["viztracer_metadata"]
    assert meta["version"] == __version__
    assert meta["overflow"] is False
    base = meta["baseTimeNanoseconds"]
    assert isinstance(base, int)
    # ts * 1000 + baseTimeNanoseconds is wall-clock time.
    for e in events(trace):
        wall = e["ts"] * 1000 + base
        assert before - 50_000_000 <= wall <= after + 50_000_000


def test_metadata_events_come_first(tmp_path):
    trace = trace_call(tmp_path, lambda: fib(2))
    first, second = trace["traceEvents"][:2]
    assert first == {"ph": "M", "pid": os.getpid(), "tid": os.getpid(), "name": "process_name",
                     "args": {"name": "MainProcess"}}
    assert second["name"] == "thread_name" and second["args"]["name"] == "MainThread"
    assert second["tid"] == threading.get_native_id()


def test_file_info_holds_the_source(tmp_path):
    trace = trace_call(tmp_path, lambda: fib(2))
    info = trace["file_info"]
    name = f"fib ({THIS_FILE}:{fib.__code__.co_firstlineno})"
    assert info["functions"][name] == [THIS_FILE, fib.__code__.co_firstlineno]
    source, lines = info["files"][THIS_FILE]
    with open(THIS_FILE, encoding="utf-8") as f:
        expected = f.read()
    assert source == expected and lines == expected.count("\n")


def test_timestamps_match_getts(tmp_path):
    path = str(tmp_path / "t.json")
    tracer = VizTracer(output_file=path, verbose=0)
    tracer.start()
    t0 = tracer.getts()
    fib(4)
    t1 = tracer.getts()
    tracer.stop()
    tracer.save()
    fibs = [e for e in events(load_trace(path)) if e["name"].startswith("fib ")]
    assert fibs
    for e in fibs:
        assert t0 <= e["ts"] and e["ts"] + e["dur"] <= t1


def test_durations_are_measured(tmp_path):
    def sleeper():
        time.sleep(0.02)

    trace = trace_call(tmp_path, sleeper)
    e = [e for e in events(trace) if e["name"].startswith("test_durations_are_measured.<locals>.sleeper")
         or e["name"].startswith("sleeper ")][0]
    assert 19_000 <= e["dur"] <= 200_000
    sleep = [e for e in events(trace) if e["name"] == "time.sleep"][0]
    assert sleep["ts"] >= e["ts"] and sleep["ts"] + sleep["dur"] <= e["ts"] + e["dur"]


def test_timestamps_have_nanosecond_precision_text(tmp_path):
    trace_call(tmp_path, lambda: fib(3))
    raw = (tmp_path / "result.json").read_text(encoding="utf-8")
    # Fixed-point µs with three decimals, never exponent notation.
    assert '"ts":' in raw and "e+" not in raw.split('"file_info"')[0]


def test_instant_counter_object_raw_shapes(tmp_path):
    path = str(tmp_path / "r.json")
    tracer = VizTracer(output_file=path, verbose=0)
    tracer.start()
    tracer.add_instant("hello", {"k": 1}, scope="t")
    tracer.add_instant("bare")
    tracer.add_counter("num", {"value": 3, "other": 1.5})
    tracer.add_object("O", "42", "obj", {"snapshot": {"s": "5"}})
    tracer.add_raw({"ph": "X", "name": "raw (x.py:1)", "ts": 5.0, "dur": 1.0, "cat": "FEE", "pid": 1})
    tracer.stop()
    tracer.save()
    trace = load_trace(path)
    by_ph = {}
    for e in trace["traceEvents"]:
        by_ph.setdefault(e["ph"], []).append(e)
    hello, bare = by_ph["i"]
    assert hello["cat"] == "INSTANT" and hello["name"] == "hello"
    assert hello["args"] == {"k": 1} and hello["s"] == "t"
    assert bare["args"] is None and bare["s"] == "g"
    (counter,) = by_ph["C"]
    assert counter["name"] == "num" and counter["args"] == {"value": 3, "other": 1.5}
    (obj,) = by_ph["O"]
    assert obj["id"] == "42" and obj["name"] == "obj" and obj["args"] == {"snapshot": {"s": "5"}}
    (raw,) = [e for e in by_ph["X"] if e["name"] == "raw (x.py:1)"]
    assert raw["pid"] == os.getpid() and raw["tid"] == threading.get_native_id()
    assert raw["ts"] == 5.0 and raw["dur"] == 1.0


def test_args_that_json_cannot_hold(tmp_path):
    path = str(tmp_path / "a.json")
    tracer = VizTracer(output_file=path, verbose=0)
    tracer.start()
    tracer.add_instant("odd", {"set": {1}, "nan": float("nan"), "big": 10**30, 3: "int key",
                               "tuple": (1, "a"), "nested": {"deep": [None, True]}})
    tracer.stop()
    tracer.save()
    (e,) = events(load_trace(path), "i")
    assert e["args"] == {"set": "{1}", "nan": "NaN", "big": 10**30, "3": "int key",
                         "tuple": [1, "a"], "nested": {"deep": [None, True]}}


def test_unfinished_functions_are_begin_events(tmp_path):
    path = str(tmp_path / "b.json")
    tracer = VizTracer(output_file=path, verbose=0)

    def outer():
        inner()

    def inner():
        tracer.stop()

    tracer.start()
    outer()
    tracer.save()
    trace = load_trace(path)
    begins = [e["name"].split(" (")[0] for e in events(trace, "B")]
    assert any(n.endswith("outer") for n in begins) and any(n.endswith("inner") for n in begins)
    for e in events(trace, "B"):
        assert "dur" not in e and e["cat"] == "FEE"


def test_flush_as_finish_completes_running_functions(tmp_path):
    path = str(tmp_path / "f.json")
    tracer = VizTracer(output_file=path, verbose=0)

    def outer():
        time.sleep(0.002)
        tracer.stop(stop_option="flush_as_finish")

    tracer.start()
    outer()
    tracer.save()
    trace = load_trace(path)
    assert not events(trace, "B")
    (e,) = [e for e in events(trace) if e["name"].split(" (")[0].endswith("outer")]
    assert e["dur"] >= 2000


def test_gzip_output(tmp_path):
    trace_call(tmp_path, lambda: fib(4), output="result.json.gz")
    path = tmp_path / "result.json.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        data = json.load(f)
    assert len([n for n in names(data) if n.startswith("fib ")]) == 9
    assert "file_info" in data


def test_plain_gz_extension(tmp_path):
    trace_call(tmp_path, lambda: fib(2), output="trace.gz")
    with gzip.open(tmp_path / "trace.gz", "rt", encoding="utf-8") as f:
        assert json.load(f)["traceEvents"]


def test_unicode_and_special_names(tmp_path):
    ns = {}
    source = 'def ünïcode_"quoted"():\n    return 1\n'.replace('_"quoted"', "_q")
    exec(compile(source, "wéird \"file\"\n.py", "exec"), ns)
    trace = trace_call(tmp_path, lambda: ns["ünïcode_q"]())
    assert 'ünïcode_q (wéird "file"\n.py:1)' in names(trace)


def test_file_is_written_even_for_an_empty_trace(tmp_path):
    trace = trace_call(tmp_path, int, ignore_c_function=True)
    assert [e["ph"] for e in trace["traceEvents"]] == ["M"] * len(trace["traceEvents"])
    assert trace["viztracer_metadata"]["overflow"] is False


@pytest.mark.parametrize("ext", ["txt", "csv", "jsonl"])
def test_unsupported_extension(tmp_path, ext):
    with pytest.raises(ValueError, match="Only html, json and gz are supported"):
        VizTracer(output_file=str(tmp_path / f"out.{ext}"), verbose=0)
    tracer = VizTracer(verbose=0)
    with pytest.raises(ValueError, match="Only html, json and gz are supported"):
        tracer.save(str(tmp_path / f"out.{ext}"))
