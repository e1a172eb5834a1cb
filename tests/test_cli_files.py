"""The command line's files: .viztracerrc / --rcfile, --combine / --align_combine, and
--compress / --decompress with the .cvf format (viztracer/compressor.py)."""

from __future__ import annotations

import gzip
import json
import math
import os

import pytest

from cli_support import program_output, run_viztracer, write
from support import events, load_trace, names, short_names
from viztracer import compressor

FIB = """
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)
fib(5)
"""


# --------------------------------------------------------------------------- rcfile

def test_default_rcfile_is_read(tmp_path):
    write(tmp_path / "fib.py", FIB)
    write(tmp_path / ".viztracerrc", "[default]\nmax_stack_depth = 0\nquiet = True\n")
    r = run_viztracer(["fib.py"], tmp_path)
    assert r.returncode == 0 and r.stdout == ""
    assert events(load_trace(tmp_path / "result.json")) == []


def test_command_line_overrides_rcfile(tmp_path):
    write(tmp_path / "fib.py", FIB)
    write(tmp_path / ".viztracerrc", "[default]\nmax_stack_depth = 0\noutput_file = from_rc.json\n")
    r = run_viztracer(["--max_stack_depth", "3", "fib.py"], tmp_path)
    assert r.returncode == 0
    assert short_names(load_trace(tmp_path / "from_rc.json")).count("fib") == 1
    run_viztracer(["-o", "from_cli.json", "fib.py"], tmp_path)
    assert os.path.exists(tmp_path / "from_cli.json")


def test_explicit_rcfile_and_every_kind_of_value(tmp_path):
    write(tmp_path / "prog.py", """
        import json
        from viztracer import get_tracer
        t = get_tracer()
        print(json.dumps([t.tracer_entries, t.verbose, t.ignore_c_function, t.log_func_args, t.exclude_files,
                          t.log_audit, t.min_duration]))
    """)
    write(tmp_path / "conf" / "my.rc", """
        [default]
        tracer_entries = 4321
        ignore_c_function = True
        log_func_args = false
        exclude_files = /nowhere/a /nowhere/b
        log_audit = i.* builtins.id
        min_duration = 2us
    """)
    r = run_viztracer(["--rcfile", "conf/my.rc", "prog.py"], tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    entries, verbose, ignore_c, func_args, exclude, audit, min_duration = json.loads(program_output(r.stdout))
    assert (entries, verbose, ignore_c, func_args) == (4321, 1, True, False)
    assert exclude[:2] == ["/nowhere/a", "/nowhere/b"] and audit == ["i.*", "builtins.id"]
    assert min_duration == pytest.approx(2000)


def test_rcfile_log_var_list(tmp_path):
    write(tmp_path / "prog.py", "a = 1\nabc = 2\nd = 3\ne = 4\n")
    write(tmp_path / ".viztracerrc", "[default]\nlog_var = a.* d\n")
    assert run_viztracer(["prog.py"], tmp_path).returncode == 0
    logged = sorted(n.split(" = ")[0] for n in names(load_trace(tmp_path / "result.json"), "i"))
    assert logged == ["Variable Assign - a", "Variable Assign - abc", "Variable Assign - d"]


@pytest.mark.parametrize("content, message", [
    ("[wrong]\nquiet = True\n", "has no [default] section"),
    ("quiet = True\n", "Invalid rcfile"),
    ("[default]\nno_such_option = 1\n", "unknown option 'no_such_option'"),
    ("[default]\nmax_stack_depth = deep\n", "max_stack_depth = 'deep' is not a valid int"),
    ("[default]\nquiet = perhaps\n", "quiet = 'perhaps' is not a boolean"),
    ("[default]\nmin_duration = soon\n", "Can't convert soon to time"),
    ("[default]\noutput_file = out.txt\n", "Only html, json and gz are supported"),
])
def test_bad_rcfile(tmp_path, content, message):
    write(tmp_path / "prog.py", "print('ran')\n")
    write(tmp_path / ".viztracerrc", content)
    r = run_viztracer(["prog.py"], tmp_path)
    assert r.returncode == 1
    assert message in r.stdout, r.stdout
    assert "Traceback" not in r.stdout + r.stderr and "ran" not in r.stdout


def test_missing_explicit_rcfile(tmp_path):
    r = run_viztracer(["--rcfile", "nope.rc", "-c", "pass"], tmp_path)
    assert r.returncode == 1
    assert r.stdout == "Unable to find rcfile nope.rc\n"


# --------------------------------------------------------------------------- combine

def _two_traces(tmp_path):
    write(tmp_path / "one.py", "def one():\n    pass\none()\n")
    write(tmp_path / "two.py", "import time\ntime.sleep(0.01)\ndef two():\n    pass\ntwo()\n")
    assert run_viztracer(["--quiet", "-o", "a.json", "one.py"], tmp_path).returncode == 0
    assert run_viztracer(["--quiet", "-o", "b.json", "two.py"], tmp_path).returncode == 0
    return load_trace(tmp_path / "a.json"), load_trace(tmp_path / "b.json")


def test_combine(tmp_path):
    a, b = _two_traces(tmp_path)
    r = run_viztracer(["--combine", "a.json", "b.json", "-o", "both.json"], tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    both = load_trace(tmp_path / "both.json")
    assert sorted(names(both)) == sorted(names(a) + names(b))
    assert {e["pid"] for e in events(both)} == {e["pid"] for e in events(a)} | {e["pid"] for e in events(b)}
    assert set(both["file_info"]["files"]) >= {str(tmp_path / "one.py"), str(tmp_path / "two.py")}
    assert f"vizviewer {tmp_path / 'both.json'}" in r.stdout
    # the ts are kept
    assert min(e["ts"] for e in events(both)) == min(e["ts"] for e in events(a) + events(b))


def test_combine_default_output_and_quiet(tmp_path):
    _two_traces(tmp_path)
    r = run_viztracer(["--quiet", "--combine", "a.json", "b.json"], tmp_path)
    assert r.returncode == 0 and r.stdout == ""
    assert len(events(load_trace(tmp_path / "result.json"))) > 0


def test_align_combine(tmp_path):
    a, b = _two_traces(tmp_path)
    r = run_viztracer(["--align_combine", "a.json", "b.json", "-o", "aligned.json"], tmp_path)
    assert r.returncode == 0, r.stdout
    aligned = load_trace(tmp_path / "aligned.json")
    by_pid = {}
    for e in events(aligned):
        by_pid.setdefault(e["pid"], []).append(e["ts"])
    assert len(by_pid) == 2
    for stamps in by_pid.values():
        assert min(stamps) == pytest.approx(0, abs=1e-6)


def test_combine_gz_output(tmp_path):
    _two_traces(tmp_path)
    r = run_viztracer(["--combine", "a.json", "b.json", "-o", "both.json.gz"], tmp_path)
    assert r.returncode == 0
    assert len(events(load_trace(tmp_path / "both.json.gz"))) > 0


# --------------------------------------------------------------------------- compress / decompress

EVERY_KIND = """
import threading
from viztracer import get_tracer

class Shape:
    def __init__(self, w):
        self.w = w
    def area(self):
        return self.w * self.w

def work(n, *rest, key="k", **kw):
    return [Shape(i).area() for i in range(n)]

def worker():
    work(3)

t = get_tracer()
t.add_instant("instant with args", {"k": [1, 2.5, None, True, "s"]}, scope="p")
t.add_instant("instant without args")
for i in range(5):
    t.add_counter("counter", {"a": i, "b": i * 0.5})
t.add_object("N", "0x1", "obj")
t.add_object("O", "0x1", "obj", {"snapshot": {"x": 1}})
t.add_object("D", "0x1", "obj")
t.add_raw({"ph": "X", "name": "raw event", "ts": t.getts(), "dur": 3.25, "cat": "custom"})
t.add_raw({"ph": "i", "name": "unicode ✓ \\u00e9 \\"quoted\\" back\\\\slash", "ts": 12.0, "s": "g"})
with t.log_event("a block"):
    work(10, 1, 2, key="x", extra=3)
th = threading.Thread(target=worker, name="worker thread")
th.start(); th.join()

for i in range(200):
    work(i % 7)
"""


def _rich_trace(tmp_path, *flags):
    write(tmp_path / "kinds.py", EVERY_KIND)
    r = run_viztracer(["--quiet", "--log_func_args", "--log_func_retval", *flags, "-o", "kinds.json", "kinds.py"],
                      tmp_path)
    assert r.returncode == 0, r.stderr
    return tmp_path / "kinds.json"


def test_compress_round_trip_of_a_real_trace(tmp_path):
    src = _rich_trace(tmp_path)
    original = load_trace(src)
    phs = {e.get("ph") for e in original["traceEvents"]}
    assert {"X", "i", "C", "M", "N", "O", "D"} <= phs
    r = run_viztracer(["--compress", "kinds.json", "-o", "kinds.cvf"], tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "kinds.cvf" in r.stdout
    r = run_viztracer(["--decompress", "kinds.cvf", "-o", "back.json"], tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    back = load_trace(tmp_path / "back.json")
    assert back == original
    assert json.dumps(back) == json.dumps(original)  # same key order, same event order
    with open(src, "rb") as f:
        raw = f.read()
    assert os.path.getsize(tmp_path / "kinds.cvf") < len(gzip.compress(raw, 9))


def test_compress_gz_input_and_default_names(tmp_path):
    write(tmp_path / "fib.py", FIB)
    run_viztracer(["--quiet", "-o", "t.json.gz", "fib.py"], tmp_path)
    assert run_viztracer(["--compress", "t.json.gz"], tmp_path).returncode == 0
    assert os.path.exists(tmp_path / "result.cvf")
    assert run_viztracer(["--quiet", "--decompress", "result.cvf"], tmp_path).stdout == ""
    assert load_trace(tmp_path / "result.json") == load_trace(tmp_path / "t.json.gz")
    assert run_viztracer(["--decompress", "result.cvf", "-o", "again.json.gz"], tmp_path).returncode == 0
    assert load_trace(tmp_path / "again.json.gz") == load_trace(tmp_path / "t.json.gz")


def test_decompress_to_html(tmp_path):
    write(tmp_path / "fib.py", FIB)
    run_viztracer(["--quiet", "-o", "t.json", "fib.py"], tmp_path)
    assert run_viztracer(["--compress", "t.json", "-o", "t.cvf"], tmp_path).returncode == 0
    r = run_viztracer(["--decompress", "t.cvf", "-o", "t.html"], tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    with open(tmp_path / "t.html", encoding="utf-8") as f:
        assert 'id="vizviewer-data"' in f.read()
    r = run_viztracer(["--decompress", "t.cvf", "-o", "t.txt"], tmp_path)
    assert r.returncode == 1 and "Only html, json and gz are supported" in r.stdout


def test_decompress_rejects_other_files(tmp_path):
    write(tmp_path / "not.cvf", "hello")
    r = run_viztracer(["--decompress", "not.cvf"], tmp_path)
    assert r.returncode == 1 and "not a viztracer compressed trace" in r.stdout


def test_compress_rejects_broken_json(tmp_path):
    write(tmp_path / "broken.json", "{\"traceEvents\": [")
    r = run_viztracer(["--compress", "broken.json"], tmp_path)
    assert r.returncode == 1 and "Unable to compress broken.json" in r.stdout


def _same(a, b):
    """Equal, with floats compared bit for bit (nan included) and types kept."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a.hex() == b.hex()
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def test_compressor_keeps_odd_values_exactly():
    odd = [
        {"ph": "X", "ts": 0.1, "dur": 0.2, "name": "a", "pid": 1, "tid": 1},
        {"ph": "X", "ts": 1e-7, "dur": -0.0, "name": "b", "pid": 1, "tid": 1},
        {"ph": "X", "ts": 5, "dur": 2, "name": "int times", "pid": 2 ** 70, "tid": -3},
        {"ph": "X", "ts": 12345678.123456789, "dur": float("nan"), "name": "\ud800 lone", "pid": 1, "tid": 1},
        {"ph": "X", "ts": 1.5, "dur": float("inf"), "name": None, "pid": True, "tid": 1},
        {"name": "no ph", "args": {"nested": [{"a": [1, {"b": None}]}], "e": {}}},
        {},
        [1, 2, "not an object"],
        "a string event",
        {"ph": "C", "ts": 1.0, "name": "c", "args": {"v": 10 ** 30}},
        {"ph": "C", "ts": 1.0, "name": "c", "args": {"v": 1.0}},
    ]
    trace = {"otherKey": [1], "traceEvents": odd, "viztracer_metadata": {"overflow": False}, "displayTimeUnit": "ns"}
    back = compressor.decompress(compressor.compress(trace))
    assert _same(back, trace)
    assert list(back) == list(trace)


@pytest.mark.parametrize("n", [0, 1, 2, 3000, 20000])
def test_compressor_sizes_of_columns(n):
    events_ = [{"pid": 7, "tid": 7 + i % 3, "ts": 1000.0 + i * 1.5, "ph": "X", "dur": (i % 10) * 0.125,
                "name": f"f{i % 13} (/x.py:{i % 13})", "cat": "FEE"} for i in range(n)]
    trace = {"traceEvents": events_, "viztracer_metadata": {"version": "x", "overflow": False}}
    data = compressor.compress(trace)
    assert _same(compressor.decompress(data), trace)
    text = json.dumps(trace).encode()
    if n >= 3000:
        assert len(data) * 5 < len(gzip.compress(text, 9))


def test_compressor_rejects_what_is_not_a_trace():
    with pytest.raises(compressor.FormatError):
        compressor.compress({"no": "events"})
    with pytest.raises(compressor.FormatError):
        compressor.decompress(b"VZCF\x01\x01garbage")
    with pytest.raises(compressor.FormatError):
        compressor.decompress(b"VZCF\x09\x01")
    good = compressor.compress({"traceEvents": [{"ph": "X", "ts": float(i)} for i in range(10000)]})
    with pytest.raises(compressor.FormatError):
        compressor.decompress(good[:-20])


def test_event_objects_are_not_shared_after_decompress():
    trace = {"traceEvents": [{"ph": "i", "args": {"same": 1}} for _ in range(10000)]}
    back = compressor.decompress(compressor.compress(trace))
    back["traceEvents"][0]["args"]["same"] = 2
    assert back["traceEvents"][1]["args"]["same"] == 1
    assert not math.isnan(back["traceEvents"][1]["args"]["same"])


def test_compress_trace_with_unfinished_functions(tmp_path):
    from viztracer import VizTracer
    tracer = VizTracer(output_file=str(tmp_path / "b.json"), verbose=0, log_func_args=True)

    def stops_inside(x):
        tracer.add_instant("about to stop", {"x": x})
        tracer.stop()  # the functions still running become "B" events

    tracer.start()
    stops_inside(3)
    tracer.save()
    trace = load_trace(tmp_path / "b.json")
    assert "B" in {e.get("ph") for e in trace["traceEvents"]}
    assert compressor.decompress(compressor.compress(trace)) == trace
