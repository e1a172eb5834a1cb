"""Every constructor option of VizTracer: its effect on the trace, and its validation."""

import builtins
import importlib
import os
import sys
import time

import pytest

from support import assert_nested, events, load_trace, names, run_script, short_names, trace_call
from viztracer import VizTracer, get_tracer


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def fib_names(trace):
    return [n for n in names(trace) if n.startswith("fib ")]


# --------------------------------------------------------------------------- buffer

def test_tracer_entries_keeps_the_newest_events(tmp_path):
    trace = trace_call(tmp_path, lambda: [fib(1) for _ in range(100)], tracer_entries=10,
                       ignore_c_function=True)
    evs = events(trace)
    assert len(evs) == 10
    assert trace["viztracer_metadata"]["overflow"] is True
    # The lambda itself returns last, so it is kept; the rest are the newest fib calls.
    assert sorted(evs, key=lambda e: e["ts"])[-1]["name"].startswith("fib ")



@pytest.mark.parametrize("entries, calls, every", [(1000, 1973, 0), (1000, 1001, 0), (1000, 1004, 0),
                                                   (10, 11, 0), (1000, 1973, 7), (300, 2000, 3),
                                                   (5000, 12_345, 7)])
def test_tracer_entries_keeps_exactly_the_last_n_events(tmp_path, entries, calls, every):
    # An entry is an event of the trace: a finished call, an instant, a counter... A
    # buffer of N keeps exactly the N most recent (eviction drops a chunk of records at
    # a time: 1973 calls through 1000 entries kept 998). Arguments are logged, so the
    # kept calls can be told apart and the dropped ones' payloads are freed too; with
    # `every`, an instant follows every so many calls. In a process of its own: a thread
    # left by another test (IPython's history thread) that recorded an event would hold
    # part of the budget, and "exactly N" is a promise for one thread (concurrency.md).
    result = run_script(tmp_path, f"""
        from viztracer import VizTracer

        def mark(i):
            return i

        tracer = VizTracer(tracer_entries={entries}, output_file="n.json", verbose=0, log_func_args=True)
        tracer.start()
        for i in range({calls}):
            mark(i)
            if {every} and i % {every or 1} == 0:
                tracer.add_instant(f"after {{i}}")
        tracer.stop()
        tracer.save()
    """)
    assert result.returncode == 0, result.stderr
    written = []  # what is recorded, in order
    for i in range(calls):
        written.append(f"mark {i}")
        if every and i % every == 0:
            written.append(f"after {i}")
    trace = load_trace(str(tmp_path / "n.json"))
    assert trace["viztracer_metadata"]["overflow"] is True
    strays = [e["name"] for e in events(trace) if not e["name"].startswith("mark (")]
    assert not strays, strays
    kept = [f"mark {e['args']['func_args']['i']}" for e in events(trace)]
    kept += [e["name"] for e in events(trace, "i")]
    assert sorted(kept) == sorted(written[-entries:])


def test_no_overflow_below_capacity(tmp_path):
    trace = trace_call(tmp_path, lambda: fib(5), tracer_entries=1000)
    assert trace["viztracer_metadata"]["overflow"] is False
    assert len(fib_names(trace)) == 15


def test_overflow_is_reported_when_verbose(tmp_path, capsys):
    path = str(tmp_path / "o.json")
    tracer = VizTracer(tracer_entries=5, output_file=path, verbose=1)
    tracer.start()
    fib(6)
    tracer.stop()
    tracer.save()
    out = capsys.readouterr().out
    assert "buffer is full" in out
    assert len(events(load_trace(path))) == 5


def test_tracer_entries_is_read_only(tmp_path):
    tracer = VizTracer(tracer_entries=123, verbose=0)
    assert tracer.tracer_entries == 123
    with pytest.raises(AttributeError):
        tracer.tracer_entries = 5


@pytest.mark.parametrize("bad,exc", [("x", TypeError), (0, ValueError), (-5, ValueError), (1.5, TypeError),
                                     (True, TypeError)])
def test_tracer_entries_validation(bad, exc):
    with pytest.raises(exc, match="tracer_entries"):
        VizTracer(tracer_entries=bad)


# --------------------------------------------------------------------------- verbose

def test_verbose_one_prints_a_summary_line(tmp_path, capsys):
    path = tmp_path / "v.json"
    tracer = VizTracer(output_file=str(path), verbose=1)
    tracer.start()
    fib(3)
    tracer.stop()
    tracer.save()
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert str(path) in out[0] and "vizviewer" in out[0]
    count = len(events(load_trace(str(path)))) + len(events(load_trace(str(path)), "i"))
    assert f"{count} " in out[0]


def test_verbose_zero_prints_nothing(tmp_path, capsys):
    trace_call(tmp_path, lambda: fib(3), verbose=0)
    assert capsys.readouterr().out == ""


def test_save_verbose_argument_overrides(tmp_path, capsys):
    tracer = VizTracer(output_file=str(tmp_path / "x.json"), verbose=0)
    tracer.start()
    fib(2)
    tracer.stop()
    tracer.save(verbose=1)
    assert "x.json" in capsys.readouterr().out


def test_verbose_validation():
    with pytest.raises(TypeError, match="verbose"):
        VizTracer(verbose="loud")


# --------------------------------------------------------------------------- depth

def test_max_stack_depth(tmp_path):
    def run():
        fib(10)

    trace = trace_call(tmp_path, run, max_stack_depth=3)
    # run -> fib(10) -> fib(9), fib(8): 1 + 1 + 2 frames.
    assert len(events(trace)) == 4
    trace = trace_call(tmp_path, lambda: fib(10), max_stack_depth=0)
    assert events(trace) == []


def test_max_stack_depth_counts_from_the_first_traced_frame(tmp_path):
    # fib(10) called directly from the tracer's start frame: 1 + 2 + 4 events at depth 3.
    path = str(tmp_path / "d.json")
    tracer = VizTracer(output_file=path, verbose=0, max_stack_depth=3)
    tracer.start()
    fib(10)
    tracer.stop()
    tracer.save()
    assert len(fib_names(load_trace(path))) == 7


def test_max_stack_depth_validation():
    with pytest.raises(TypeError, match="max_stack_depth"):
        VizTracer(max_stack_depth="3")
    assert VizTracer(max_stack_depth=-7, verbose=0).max_stack_depth == -1


# --------------------------------------------------------------------------- files

@pytest.fixture
def two_modules(tmp_path, monkeypatch):
    """src/inner.py and lib/outer.py on sys.path; outer.run() calls inner.work()."""
    (tmp_path / "src").mkdir()
    (tmp_path / "lib").mkdir()
    (tmp_path / "src" / "inner_mod.py").write_text("def work():\n    return sum(range(3))\n")
    (tmp_path / "lib" / "outer_mod.py").write_text(
        "import inner_mod\n\ndef run():\n    return inner_mod.work() + helper()\n\ndef helper():\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    monkeypatch.syspath_prepend(str(tmp_path / "lib"))
    for m in ("inner_mod", "outer_mod"):
        sys.modules.pop(m, None)
    outer = importlib.import_module("outer_mod")
    yield tmp_path, outer
    for m in ("inner_mod", "outer_mod"):
        sys.modules.pop(m, None)


def test_include_files(two_modules):
    tmp_path, outer = two_modules
    trace = trace_call(tmp_path, outer.run, include_files=[str(tmp_path / "lib")])
    got = short_names(trace)
    assert "run" in got and "helper" in got
    # work() lives outside the included folder, and what it calls is pruned with it.
    assert "work" not in got and "builtins.sum" not in got
    # The test's own frames are excluded too.
    assert not any("test_options" in n for n in names(trace))


def test_include_files_prunes_subtrees(two_modules):
    tmp_path, outer = two_modules
    trace = trace_call(tmp_path, outer.run, include_files=[str(tmp_path / "src")])
    # run() is not included, so nothing under it is recorded, not even work().
    assert events(trace) == []


def test_exclude_files(two_modules):
    tmp_path, outer = two_modules
    trace = trace_call(tmp_path, outer.run, exclude_files=[str(tmp_path / "src")])
    got = short_names(trace)
    assert "run" in got and "helper" in got and "work" not in got
    assert "builtins.sum" not in got  # under the excluded work()


def test_relative_paths_match_absolute_code_files(two_modules, monkeypatch):
    tmp_path, outer = two_modules
    monkeypatch.chdir(tmp_path)
    tracer = VizTracer(include_files=["./lib/"], verbose=0)
    assert str(tmp_path / "lib") + os.sep in tracer.include_files
    assert "./lib/" in tracer.include_files
    trace = trace_call(tmp_path, outer.run, include_files=["lib"])
    assert "run" in short_names(trace)


def test_include_and_exclude_are_exclusive_only_when_starting(tmp_path):
    # Both may be set on the way to a configuration; starting with both is the error.
    tracer = VizTracer(include_files=["a"], exclude_files=["b"], verbose=0)
    with pytest.raises(ValueError, match="include_files and exclude_files can't be both specified"):
        tracer.start()
    assert not tracer.enable
    tracer.exclude_files = None
    tracer.start()
    assert tracer.enable
    tracer.stop()
    tracer = VizTracer(include_files=["a"], verbose=0)
    tracer.exclude_files = ["b"]
    with pytest.raises(ValueError, match="include_files and exclude_files"):
        tracer.start()
    assert not tracer.enable


def test_file_list_validation():
    with pytest.raises(TypeError, match="include_files"):
        VizTracer(include_files="src")
    with pytest.raises(TypeError, match="exclude_files"):
        VizTracer(exclude_files=[1])
    assert VizTracer(include_files=[], verbose=0).include_files is None


# --------------------------------------------------------------------------- C / frozen

def test_ignore_c_function(tmp_path):
    def work():
        return len([1, 2]) + abs(-1)

    trace = trace_call(tmp_path, work, ignore_c_function=True)
    assert "builtins.len" not in short_names(trace)
    assert any(n.endswith("work") for n in short_names(trace))
    trace = trace_call(tmp_path, work)
    assert "builtins.len" in short_names(trace) and "builtins.abs" in short_names(trace)


def test_ignore_frozen(tmp_path):
    def imports():
        sys.modules.pop("colorsys", None)
        importlib.import_module("colorsys")

    trace = trace_call(tmp_path, imports)
    assert any("<frozen" in n for n in names(trace))
    trace = trace_call(tmp_path, imports, ignore_frozen=True)
    assert not any("<frozen" in n for n in names(trace))


@pytest.mark.parametrize("option", ["ignore_c_function", "ignore_frozen", "log_func_retval", "log_func_args",
                                    "log_print", "log_gc", "log_sparse", "log_async", "file_info",
                                    "trace_self", "minimize_memory", "dump_raw", "sanitize_function_name",
                                    "log_func_with_objprint", "log_torch"])
def test_bool_options_reject_other_types(option):
    with pytest.raises(TypeError, match=option):
        VizTracer(**{option: 1})
    tracer = VizTracer(verbose=0)
    with pytest.raises(TypeError, match=option):
        setattr(tracer, option, "yes")


@pytest.mark.parametrize("option", ["ignore_c_function", "ignore_frozen", "log_func_retval", "log_func_args",
                                    "log_print", "log_gc", "log_sparse", "log_async", "file_info", "trace_self",
                                    "minimize_memory", "dump_raw", "sanitize_function_name"])
def test_bool_options_are_readable_and_settable(option):
    tracer = VizTracer(verbose=0, **{option: True})
    assert getattr(tracer, option) is True
    setattr(tracer, option, False)
    assert getattr(tracer, option) is False


# --------------------------------------------------------------------------- args / retval

def add(a, b=2, *args, **kw):
    return a + b


def test_log_func_args_and_retval(tmp_path):
    trace = trace_call(tmp_path, lambda: add(1, 3, 5, k=4), log_func_args=True, log_func_retval=True)
    (e,) = [e for e in events(trace) if e["name"].startswith("add ")]
    assert e["args"] == {"func_args": {"a": "1", "b": "3", "args": "(5,)", "kw": "{'k': 4}"},
                         "return_value": "4"}
    # C functions never carry args.
    assert all("args" not in e for e in events(trace) if " (" not in e["name"])


def test_log_func_retval_alone(tmp_path):
    trace = trace_call(tmp_path, lambda: add(2), log_func_retval=True)
    (e,) = [e for e in events(trace) if e["name"].startswith("add ")]
    assert e["args"] == {"return_value": "4"}


def test_log_func_repr(tmp_path):
    trace = trace_call(tmp_path, lambda: add(1, 2), log_func_args=True, log_func_retval=True,
                       log_func_repr=lambda v: f"<{type(v).__name__}>")
    (e,) = [e for e in events(trace) if e["name"].startswith("add ")]
    assert e["args"]["func_args"] == {"a": "<int>", "b": "<int>", "args": "<tuple>", "kw": "<dict>"}
    assert e["args"]["return_value"] == "<int>"


def test_log_func_with_objprint(tmp_path):
    pytest.importorskip("objprint")

    class Point:
        def __init__(self):
            self.x = 1

    def take(p):
        return p

    trace = trace_call(tmp_path, lambda: take(Point()), log_func_args=True, log_func_with_objprint=True)
    (e,) = [e for e in events(trace) if e["name"].split(" (")[0].endswith("take")]
    assert "x" in e["args"]["func_args"]["p"] and "Point" in e["args"]["func_args"]["p"]


def test_repr_options_are_exclusive():
    with pytest.raises(ValueError, match="log_func_repr and log_func_with_objprint"):
        VizTracer(log_func_repr=repr, log_func_with_objprint=True)
    with pytest.raises(TypeError, match="log_func_repr"):
        VizTracer(log_func_repr="repr")


class BadRepr:
    def __repr__(self):
        raise RuntimeError("no repr for you")


def echo(x):
    return x


def test_repr_that_raises_gives_a_placeholder(tmp_path):
    results = []
    trace = trace_call(tmp_path, lambda: results.append(echo(BadRepr())), log_func_args=True,
                       log_func_retval=True)
    assert isinstance(results[0], BadRepr)
    (e,) = [e for e in events(trace) if e["name"].startswith("echo ")]
    assert e["args"]["func_args"]["x"] == "Not Displayable"
    assert e["args"]["return_value"] == "Not Displayable"


def test_exception_return_value_is_logged(tmp_path):
    def boom():
        raise KeyError("k")

    def catch():
        try:
            boom()
        except KeyError:
            return "caught"

    trace = trace_call(tmp_path, catch, log_func_retval=True)
    (e,) = [e for e in events(trace) if e["name"].split(" (")[0].endswith("boom")]
    if sys.version_info >= (3, 12):
        assert e["args"]["return_value"] == "KeyError('k')"
    else:
        assert e["args"]["return_value"] == "None"


# --------------------------------------------------------------------------- min_duration

def test_min_duration(tmp_path):
    def slow():
        time.sleep(0.003)

    def fast():
        return 1

    def both():
        slow()
        fast()

    trace = trace_call(tmp_path, both, min_duration=1000)
    got = [n.split(".")[-1] for n in short_names(trace)]
    assert "slow" in got and "both" in got
    assert "fast" not in got


def test_min_duration_units_and_validation():
    tracer = VizTracer(min_duration=100, verbose=0)
    assert tracer.min_duration == 100000.0  # ns, as upstream's getter
    assert tracer.init_kwargs["min_duration"] == 100.0  # µs, usable again
    with pytest.raises(TypeError, match="min_duration"):
        VizTracer(min_duration="1ms")
    with pytest.raises(ValueError, match="min_duration"):
        VizTracer(min_duration=-1)


# --------------------------------------------------------------------------- trace_self

def test_trace_self(tmp_path):
    def work():
        get_tracer().add_instant("x")

    trace = trace_call(tmp_path, work)
    assert not any("viztracer" + os.sep in n for n in names(trace))
    trace = trace_call(tmp_path, work, trace_self=True)
    assert any("viztracer" + os.sep in n and n.startswith("VizTracer.add_instant")
               or n.startswith("add_instant") for n in names(trace))


# --------------------------------------------------------------------------- output

def test_process_name(tmp_path):
    trace = trace_call(tmp_path, lambda: None, process_name="my process")
    assert trace["traceEvents"][0]["args"]["name"] == "my process"
    with pytest.raises(TypeError, match="process_name"):
        VizTracer(process_name=3)


def test_pid_suffix(tmp_path):
    tracer = VizTracer(output_file=str(tmp_path / "result.json"), pid_suffix=True, verbose=0)
    tracer.start()
    fib(2)
    tracer.stop()
    tracer.save()
    assert (tmp_path / f"result_{os.getpid()}.json").exists()
    assert not (tmp_path / "result.json").exists()
    with pytest.raises(ValueError, match="pid_suffix"):
        VizTracer(pid_suffix=1)


def test_pid_suffix_keeps_the_double_extension(tmp_path):
    tracer = VizTracer(output_file=str(tmp_path / "a.json.gz"), pid_suffix=True, verbose=0)
    tracer.start()
    tracer.stop()
    tracer.save()
    assert (tmp_path / f"a_{os.getpid()}.json.gz").exists()


def test_file_info_option(tmp_path):
    trace = trace_call(tmp_path, lambda: fib(2), file_info=False)
    assert "file_info" not in trace
    tracer = VizTracer(output_file=str(tmp_path / "x.json"), verbose=0, file_info=False)
    tracer.start()
    fib(2)
    tracer.stop()
    tracer.save(file_info=True)
    assert "file_info" in load_trace(str(tmp_path / "x.json"))


def test_output_file_option(tmp_path):
    tracer = VizTracer(output_file=str(tmp_path / "sub" / "dir" / "out.json"), verbose=0)
    tracer.start()
    fib(2)
    tracer.stop()
    tracer.save()
    assert (tmp_path / "sub" / "dir" / "out.json").exists()
    assert tracer.output_file.endswith("out.json")
    with pytest.raises(ValueError, match="output_file"):
        VizTracer(output_file=3)


def test_default_output_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tracer = VizTracer(verbose=0)
    assert tracer.output_file == "result.json"
    tracer.start()
    tracer.stop()
    tracer.save()
    assert (tmp_path / "result.json").exists()


def test_register_global():
    tracer = VizTracer(verbose=0)
    assert get_tracer() is tracer
    other = VizTracer(verbose=0, register_global=False)
    assert get_tracer() is tracer and other is not tracer
    del builtins.__dict__["__viz_tracer__"]
    assert get_tracer() is None


def test_dump_raw_keeps_tracing(tmp_path):
    tracer = VizTracer(output_file=str(tmp_path / "raw.json"), verbose=0, dump_raw=True)
    tracer.start()
    fib(3)
    tracer.save()
    assert tracer.enable
    fib(2)
    tracer.stop()
    tracer.save(str(tmp_path / "raw2.json"))
    first = fib_names(load_trace(str(tmp_path / "raw.json")))
    second = fib_names(load_trace(str(tmp_path / "raw2.json")))
    assert len(first) == 5 and len(second) == 3


def test_sanitize_function_name_and_minimize_memory_are_accepted(tmp_path):
    trace = trace_call(tmp_path, lambda: len("x"), sanitize_function_name=True, minimize_memory=True)
    assert "builtins.len" in short_names(trace)


def test_options_owned_by_later_features_are_stored():
    from viztracer.vizplugin import VizPluginBase

    class Plugin(VizPluginBase):
        def support_version(self):
            return "0.1.0"

    plugin = Plugin()
    tracer = VizTracer(verbose=0, log_print=True, log_gc=True, log_sparse=True, log_async=True,
                       log_audit=["import"], plugins=[plugin])
    assert tracer.log_print and tracer.log_gc and tracer.log_sparse and tracer.log_async
    assert tracer.log_audit == ["import"]
    assert tracer.plugins == [plugin]  # plugin strings are loaded: see test_instrument_plugins.py
    with pytest.raises(TypeError, match="plugins"):
        VizTracer(plugins=[3])
    with pytest.raises(TypeError, match="log_audit"):
        VizTracer(log_audit="import")


def test_log_torch_needs_torch():
    try:
        import torch  # noqa: F401
    except ImportError:
        with pytest.raises(ModuleNotFoundError, match="torch is not installed") as info:
            VizTracer(log_torch=True)
        assert info.value.name == "torch"
    else:
        assert VizTracer(log_torch=True, verbose=0).log_torch


def test_nesting_with_all_extras(tmp_path):
    trace = trace_call(tmp_path, lambda: [add(i, i) for i in range(20)], log_func_args=True,
                       log_func_retval=True)
    assert_nested(trace)


def call_with(f, x):
    return f(x)


def test_fast_calls_keeps_python_events_and_skips_call_events_of_python_sites(tmp_path):
    def run():
        for _ in range(3):
            call_with(add, 1)
            call_with(len, [1])  # same call site as add(): a builtin after a Python function

    full = trace_call(tmp_path, run)
    assert short_names(full).count("builtins.len") == 3
    fast = trace_call(tmp_path, run, fast_calls=True)
    assert short_names(fast).count("add") == 3 and short_names(fast).count("call_with") == 6
    if sys.version_info >= (3, 12):
        # The documented price: that polymorphic site no longer reports builtins.
        assert short_names(fast).count("builtins.len") == 0
    else:
        assert short_names(fast).count("builtins.len") == 3
    # And nothing stays disabled for the next, exact session.
    again = trace_call(tmp_path, run)
    assert short_names(again).count("builtins.len") == 3
    assert_nested(fast)
