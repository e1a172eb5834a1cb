"""log_print, log_gc, log_torch and the logging handler."""

import builtins
import gc
import io
import json
import logging
import sys
import textwrap
import time

import pytest

from support import events, load_trace, run_script, saved
from viztracer import VizTracer, get_tracer
from viztracer.extra_log import load_torch_trace
from viztracer.vizlogging import VizLoggingHandler


def instants(trace):
    return [e for e in events(trace, "i")]


# ---------------------------------------------------------------------- log_print

def test_log_print_records_and_still_prints(tmp_path, capsys):
    original = builtins.print
    t = VizTracer(output_file=str(tmp_path / "r.json"), verbose=0, log_print=True)
    t.start()
    assert builtins.print is not original
    print("hello", 42)
    print("a", "b", sep="-", end="!\n")
    print("to stderr", file=sys.stderr)
    buf = io.StringIO()
    print("to a file", file=buf)
    print("flushed", flush=True)
    t.stop()
    assert builtins.print is original
    print("after stop")
    t.save()
    out, err = capsys.readouterr()
    assert out == "hello 42\na-b!\nflushed\nafter stop\n"   # the program's output is kept
    assert err == "to stderr\n"
    assert buf.getvalue() == "to a file\n"
    names = [(e["name"], e["s"]) for e in instants(load_trace(tmp_path / "r.json"))]
    assert names == [("print - hello 42\n", "g"), ("print - a-b!\n", "g"),
                     ("print - to stderr\n", "g"), ("print - flushed\n", "g")]


def test_log_print_calls_str_once_and_keeps_errors(tmp_path, capsys):
    calls = []

    class Loud:
        def __str__(self):
            calls.append(1)
            return "loud"

    t = VizTracer(output_file=str(tmp_path / "r.json"), verbose=0, log_print=True)
    t.start()
    print(Loud())
    with_error = None
    try:
        print("x", sep=3)
    except TypeError as e:
        with_error = e
    t.stop()
    t.save()
    assert calls == [1]
    assert with_error is not None
    assert capsys.readouterr().out == "loud\n"


def test_log_print_is_off_by_default_and_in_sparse_mode(tmp_path, capsys):
    original = builtins.print
    t = VizTracer(output_file=str(tmp_path / "r.json"), verbose=0)
    t.start()
    assert builtins.print is original
    t.stop()
    sparse = VizTracer(output_file=str(tmp_path / "s.json"), verbose=0, log_print=True, log_sparse=True)
    sparse.start()
    assert builtins.print is original  # nothing records in log_sparse mode outside @log_sparse
    sparse.stop()


def test_log_print_from_the_command_of_a_script(tmp_path):
    result = run_script(tmp_path, """
        from viztracer import VizTracer
        with VizTracer(output_file="out.json", verbose=0, log_print=True):
            print("inside")
        print("outside")
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "inside\noutside\n"
    assert [e["name"] for e in instants(load_trace(tmp_path / "out.json"))] == ["print - inside\n"]


# ---------------------------------------------------------------------- log_gc

class Cycle:
    def __init__(self):
        self.me = self


def make_garbage(n):
    for _ in range(n):
        Cycle()


def gc_events(trace):
    counters = [e["args"] for e in events(trace, "C") if e["name"] == "garbage collection"]
    slices = [e for e in events(trace) if e["name"] == "garbage collection"]
    return counters, slices


def test_log_gc_validation_and_callback():
    t = VizTracer(verbose=0)
    with pytest.raises(TypeError, match="log_gc"):
        t.log_gc = 1
    with pytest.raises(TypeError, match="log_gc"):
        VizTracer(log_gc="yes")
    before = len(gc.callbacks)
    t.log_gc = True
    assert t.log_gc is True and len(gc.callbacks) == before  # only while recording
    t.start()
    assert len(gc.callbacks) == before + 1
    t.log_gc = True  # idempotent
    assert len(gc.callbacks) == before + 1
    t.log_gc = False  # switched off while recording: at once
    assert t.log_gc is False and len(gc.callbacks) == before
    t.log_gc = True  # and on again
    assert len(gc.callbacks) == before + 1
    t.stop()
    assert len(gc.callbacks) == before  # nothing of it outlives the recording
    t2 = VizTracer(verbose=0, log_gc=True)
    assert len(gc.callbacks) == before
    del t2
    builtins.__dict__.pop("__viz_tracer__", None)


def test_log_gc_records_collections_with_counts(tmp_path):
    gc.collect()
    t = VizTracer(output_file=str(tmp_path / "r.json"), verbose=0, log_gc=True)
    make_garbage(5)
    gc.collect()          # before start: not recorded
    t.start()
    make_garbage(30)
    gc.collect()
    t.stop()
    make_garbage(5)
    gc.collect()          # after stop: not recorded
    t.save()
    t.log_gc = False
    counters, slices = gc_events(load_trace(tmp_path / "r.json"))
    assert counters[0] == {"collecting": 1, "collected": 0, "uncollectable": 0}
    assert len(counters) == 2 * len(slices)
    last = slices[-1]
    assert last["cat"] == "gc" and last["args"]["generation"] == 2
    assert last["args"]["collected"] >= 30 and last["args"]["uncollectable"] == 0
    assert counters[-1] == {"collecting": 0, "collected": last["args"]["collected"], "uncollectable": 0}
    assert last["dur"] >= 0


def test_log_gc_off_records_nothing(tmp_path):
    t = VizTracer(output_file=str(tmp_path / "r.json"), verbose=0)
    t.start()
    make_garbage(10)
    gc.collect()
    t.stop()
    t.save()
    assert gc_events(load_trace(tmp_path / "r.json")) == ([], [])


# ---------------------------------------------------------------------- log_torch

FAKE_TORCH_PROFILER = '''
import json, os, time

_active = []

class ProfilerActivity:
    CPU = "CPU"

def supported_activities():
    return {ProfilerActivity.CPU}

class profile:
    def __init__(self, activities=None):
        self.activities = activities
        self.events = []

    def __enter__(self):
        self.base = time.time_ns()
        _active.append(self)
        return self

    def __exit__(self, *exc):
        _active.remove(self)
        self.stopped = True

    def export_chrome_trace(self, path):
        assert self.stopped
        with open(path, "w") as f:
            json.dump({"schemaVersion": 1, "deviceProperties": [], "traceName": path,
                       "displayTimeUnit": "ms", "baseTimeNanoseconds": self.base,
                       "traceEvents": [{"ph": "M", "name": "process_name", "pid": os.getpid(),
                                        "tid": 0, "ts": 0, "args": {"name": "torch"}}] + self.events}, f)
'''

FAKE_TORCH_INIT = '''
import time
from . import profiler

def empty(n):
    start = time.time_ns()
    out = [0] * n
    for p in profiler._active:
        p.events.append({"ph": "X", "cat": "cpu_op", "name": "aten::empty", "pid": 1, "tid": 1,
                         "ts": (start - p.base) / 1000, "dur": (time.time_ns() - start) / 1000})
    return out
'''


@pytest.fixture
def fake_torch(tmp_path, monkeypatch):
    pkg = tmp_path / "fake_torch" / "torch"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(FAKE_TORCH_INIT)
    (pkg / "profiler.py").write_text(FAKE_TORCH_PROFILER)
    monkeypatch.syspath_prepend(str(tmp_path / "fake_torch"))
    for name in ("torch", "torch.profiler"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    yield
    for name in ("torch", "torch.profiler"):
        sys.modules.pop(name, None)


def test_log_torch_merges_the_profiler_trace_on_our_time_axis(tmp_path, fake_torch):
    import torch

    def work():
        time.sleep(0.003)
        torch.empty(10)
        time.sleep(0.003)

    t = VizTracer(output_file=str(tmp_path / "r.json"), verbose=0, log_torch=True)
    t.start()
    work()
    t.stop()
    t.save()
    t.save(str(tmp_path / "again.json"))  # saving twice merges once
    for path in ("r.json", "again.json"):
        trace = load_trace(tmp_path / path)
        (aten,) = [e for e in events(trace) if e["name"] == "aten::empty"]
        (w,) = [e for e in events(trace) if e["name"].split(" (")[0].split(".")[-1] == "work"]
        # torch's clock (epoch) and ours (monotonic + base time) agree to well under 3 ms
        assert w["ts"] < aten["ts"] < w["ts"] + w["dur"]
        meta = [e for e in trace["traceEvents"] if e["ph"] == "M" and e.get("args") == {"name": "torch"}]
        assert meta and "ts" not in meta[0]
        assert "schemaVersion" not in trace and "deviceProperties" not in trace
        assert trace["viztracer_metadata"]["baseTimeNanoseconds"] == t.get_base_time()


def test_log_torch_with_real_torch(tmp_path):
    # Runs where PyTorch is installed (it is too big for CI's virtualenvs); checked by
    # hand with torch 2.15 (CPU) on Python 3.11.
    try:
        import torch  # noqa: F401
    except ImportError:
        pytest.skip("torch is not installed")
    result = run_script(tmp_path, """
        import sys, torch
        from viztracer import VizTracer
        def model_step(x, w):
            return torch.relu(x @ w).sum()
        with VizTracer(output_file=sys.argv[1], verbose=0, log_torch=True):
            x, w = torch.randn(32, 32), torch.randn(32, 32)
            for _ in range(3):
                model_step(x, w)
    """, str(tmp_path / "t.json"))
    assert result.returncode == 0, result.stderr
    trace = load_trace(tmp_path / "t.json")
    steps = [e for e in events(trace) if e["name"].startswith("model_step (")]
    matmuls = [e for e in events(trace) if e["name"] == "aten::matmul"]
    assert len(steps) == len(matmuls) == 3
    for step, mm in zip(steps, matmuls):
        assert step["ts"] <= mm["ts"] and mm["ts"] + mm["dur"] <= step["ts"] + step["dur"] + 1
        assert (mm["pid"], mm["tid"]) == (step["pid"], step["tid"])


def test_log_torch_without_torch_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match="log_torch needs PyTorch"):
        VizTracer(log_torch=True)


def test_load_torch_trace(tmp_path):
    path = tmp_path / "torch.json"
    path.write_text(json.dumps({
        "schemaVersion": 1, "traceName": "x", "displayTimeUnit": "ms", "deviceProperties": [{}],
        "baseTimeNanoseconds": 5_000_000,
        "traceEvents": [{"ph": "M", "name": "process_name", "ts": 3, "args": {}},
                        {"ph": "X", "name": "aten::add", "ts": 10.0, "dur": 2},
                        {"ph": "i", "name": "mark", "ts": 20}],
    }))
    trace = load_torch_trace(str(path), base_offset=1_000_000)
    assert trace == {"traceEvents": [{"ph": "M", "name": "process_name", "args": {}},
                                     {"ph": "X", "name": "aten::add", "ts": 4010.0, "dur": 2},
                                     {"ph": "i", "name": "mark", "ts": 4020.0}],
                     "viztracer_metadata": {}}


# ---------------------------------------------------------------------- VizLoggingHandler

@pytest.fixture
def logger():
    log = logging.getLogger("viztracer-test")
    log.setLevel(logging.INFO)
    log.propagate = False
    yield log
    log.handlers.clear()


def test_logging_handler_with_a_tracer(tracer, logger):
    handler = VizLoggingHandler()
    handler.setTracer(tracer)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.info("before start")       # not recording: nothing
    tracer.start()
    logger.info("hello %d", 1)
    logger.warning("careful")
    tracer.stop()
    logger.info("after stop")
    tracer.save()
    got = [(e["name"], e["s"]) for e in instants(load_trace(tracer.output_file))]
    assert got == [("logging - INFO hello 1", "p"), ("logging - WARNING careful", "p")]


def test_logging_handler_uses_the_global_tracer_by_default(tmp_path, logger):
    handler = VizLoggingHandler()
    logger.addHandler(handler)
    logger.info("no tracer at all")   # no global tracer: nothing, no error
    t = VizTracer(output_file=str(tmp_path / "r.json"), verbose=0)
    assert get_tracer() is t
    t.start()
    logger.info("via global")
    t.stop()
    t.save()
    assert [e["name"] for e in instants(load_trace(tmp_path / "r.json"))] == ["logging - via global"]


def test_logging_handler_with_none_is_a_no_op(tracer, logger):
    handler = VizLoggingHandler()
    handler.setTracer(None)
    logger.addHandler(handler)
    tracer.start()
    logger.info("dropped")
    trace = saved(tracer)
    assert instants(trace) == []


def test_logging_handler_in_a_script(tmp_path):
    result = run_script(tmp_path, textwrap.dedent("""
        import logging
        from viztracer import VizTracer, get_tracer
        from viztracer.vizlogging import VizLoggingHandler

        tracer = VizTracer(output_file="out.json", verbose=0)
        handler = VizLoggingHandler()
        handler.setTracer(get_tracer())
        logging.basicConfig(handlers=[handler], level=logging.INFO, format="%(message)s")
        tracer.start()
        logging.info("logged")
        tracer.stop()
        tracer.save()
    """))
    assert result.returncode == 0, result.stderr
    assert [e["name"] for e in instants(load_trace(tmp_path / "out.json"))] == ["logging - logged"]
