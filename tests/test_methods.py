"""Every method of VizTracer, checked through the trace file."""

import os
import textwrap
import threading

import pytest

from support import BLOCKED_WAIT_SOURCE, events, load_trace, names, run_script, saved
from viztracer import VizTracer, get_tracer


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def fib_count(trace):
    return len([n for n in names(trace) if n.startswith("fib ")])


def test_run(tmp_path):
    tracer = VizTracer(verbose=0)
    out = str(tmp_path / "run.json")
    tracer.run("fib(6)", output_file=out)
    assert fib_count(load_trace(out)) == 25
    assert not tracer.enable


def test_run_saves_when_the_command_raises(tmp_path):
    tracer = VizTracer(verbose=0)
    out = str(tmp_path / "run.json")
    with pytest.raises(ZeroDivisionError):
        tracer.run("fib(3); 1 / 0", output_file=out)
    assert fib_count(load_trace(out)) == 5


def test_start_stop_restart(tracer):
    tracer.start()
    assert tracer.enable
    fib(2)
    tracer.stop()
    assert not tracer.enable
    fib(10)  # not recorded
    tracer.start()
    fib(3)
    trace = saved(tracer)
    assert fib_count(trace) == 3 + 5  # both sessions: stopping does not drop events


def test_stop_option_validation(tracer):
    tracer.start()
    with pytest.raises(ValueError, match="stop_option"):
        tracer.stop("flush")
    assert tracer.enable
    tracer.stop("flush_as_finish")
    assert not tracer.enable


def test_stop_twice_and_stop_before_start(tracer):
    tracer.stop()
    tracer.start()
    tracer.stop()
    tracer.stop()


def test_clear(tracer):
    tracer.start()
    fib(5)
    tracer.clear()
    fib(2)
    assert fib_count(saved(tracer)) == 3


def test_parse_returns_the_event_count(tracer):
    tracer.start()
    fib(4)
    n = tracer.parse()
    assert not tracer.enable
    assert n == len(tracer.data["traceEvents"]) - 2  # minus the process/thread metadata
    assert len([e for e in tracer.data["traceEvents"] if e["name"].startswith("fib ")]) == 9
    assert tracer.parse() == n  # cached until the next start()


def test_data_edits_reach_the_saved_file(tracer):
    tracer.start()
    fib(2)
    tracer.parse()
    tracer.data["traceEvents"].append({"ph": "i", "name": "added", "ts": 1.0, "pid": 1, "tid": 1, "s": "g"})
    tracer.save()
    trace = load_trace(tracer.output_file)
    assert "added" in [e["name"] for e in trace["traceEvents"]]
    assert fib_count(trace) == 3


def test_save_arguments(tracer, tmp_path):
    tracer.start()
    fib(3)
    tracer.stop()
    tracer.save(output_file=str(tmp_path / "other.json.gz"), file_info=False, verbose=0)
    trace = load_trace(str(tmp_path / "other.json.gz"))
    assert fib_count(trace) == 5 and "file_info" not in trace
    # Saving again writes the same events again.
    tracer.save(output_file=str(tmp_path / "again.json"))
    assert fib_count(load_trace(str(tmp_path / "again.json"))) == 5


def test_save_rejects_non_paths(tracer):
    import io
    with pytest.raises(ValueError, match="output_file"):
        tracer.save(io.StringIO())


def test_save_makes_missing_folders(tracer, tmp_path):
    tracer.start()
    fib(2)
    tracer.stop()
    tracer.save(str(tmp_path / "new" / "nested" / "t.json"))
    assert fib_count(load_trace(str(tmp_path / "new" / "nested" / "t.json"))) == 3


def test_save_accepts_pathlike(tracer, tmp_path):
    tracer.start()
    fib(1)
    tracer.stop()
    tracer.save(tmp_path / "p.json")
    assert fib_count(load_trace(str(tmp_path / "p.json"))) == 1


def test_context_manager(tmp_path):
    out = str(tmp_path / "cm.json")
    with VizTracer(output_file=out, verbose=0) as t:
        assert t.enable and get_tracer() is t
        fib(3)
    assert not t.enable
    assert get_tracer() is None
    assert fib_count(load_trace(out)) == 5


def test_context_manager_saves_when_the_block_raises(tmp_path):
    out = str(tmp_path / "cm.json")
    with pytest.raises(KeyError):
        with VizTracer(output_file=out, verbose=0):
            fib(2)
            raise KeyError("x")
    assert fib_count(load_trace(out)) == 3


def test_add_variable(tracer):
    tracer.start()
    tracer.add_variable("a", [1, 2])
    tracer.add_variable("n", 5, event="counter")
    with pytest.raises(ValueError, match="is not a number"):
        tracer.add_variable("s", "x", event="counter")
    with pytest.raises(ValueError, match="not supported"):
        tracer.add_variable("s", 1, event="gauge")
    trace = saved(tracer)
    (inst,) = events(trace, "i")
    assert inst["name"] == "a = [1, 2]" and inst["s"] == "p"
    (counter,) = events(trace, "C")
    assert counter["name"] == "n" and counter["args"] == {"n": 5}


def test_add_instant_scopes(tracer):
    tracer.start()
    for scope in ("g", "p", "t"):
        tracer.add_instant(f"in-{scope}", {"s": scope}, scope=scope)
    with pytest.raises(ValueError, match="Scope must be one of 'g', 'p', 't'"):
        tracer.add_instant("bad", scope="x")
    trace = saved(tracer)
    assert [(e["name"], e["s"]) for e in events(trace, "i")] == [("in-g", "g"), ("in-p", "p"), ("in-t", "t")]


def test_custom_events_need_a_running_tracer(tracer):
    tracer.add_instant("before")
    tracer.add_counter("before", {"v": 1})
    tracer.start()
    tracer.add_instant("during")
    trace = saved(tracer)
    assert [e["name"] for e in events(trace, "i")] == ["during"]
    assert events(trace, "C") == []


def test_add_counter(tracer):
    tracer.start()
    tracer.add_counter("mem", {"rss": 10, "heap": 2.5})
    with pytest.raises(TypeError, match="add_counter"):
        tracer.add_counter("mem", 3)
    (c,) = events(saved(tracer), "C")
    assert c["args"] == {"rss": 10, "heap": 2.5}


def test_add_raw_works_before_start(tracer):
    tracer.add_raw({"ph": "i", "name": "raw-before", "ts": 1.0, "s": "g"})
    tracer.start()
    tracer.add_raw({"ph": "X", "name": "raw-during (x.py:2)", "ts": 2.0, "dur": 1.0, "cat": "FEE"})
    with pytest.raises(TypeError):
        tracer.add_raw([1, 2])
    trace = saved(tracer)
    got = [e["name"] for e in trace["traceEvents"]]
    assert "raw-before" in got and "raw-during (x.py:2)" in got


def test_add_func_args(tracer):
    def work():
        tracer.add_func_args("key", "value")
        tracer.add_func_args("name-ignored", "other", [1, 2])  # the seed's three-argument form
        inner()

    def inner():
        tracer.add_func_args("inner_key", {"a": 1})

    tracer.start()
    work()
    trace = saved(tracer)
    by_name = {e["name"].split(" (")[0].split(".")[-1]: e for e in events(trace)}
    assert by_name["work"]["args"] == {"key": "value", "other": [1, 2]}
    assert by_name["inner"]["args"] == {"inner_key": {"a": 1}}


def test_get_func_args_and_add_func_exec(tracer):
    seen = {}

    def work():
        tracer.add_func_exec("x", 5, 10)
        tracer.add_func_exec("y", "s", 11)
        seen["args"] = dict(tracer.get_func_args())

    tracer.start()
    work()
    trace = saved(tracer)
    (e,) = [e for e in events(trace) if e["name"].split(" (")[0].endswith("work")]
    assert e["args"] == {"exec_steps": ["(10) x = 5", "(11) y = s"]}
    assert seen["args"] == e["args"]


def test_log_event(tracer):
    tracer.start()
    with tracer.log_event("my block"):
        [].append(1)
    trace = saved(tracer)
    line = test_log_event.__code__.co_firstlineno + 2
    (block,) = [e for e in events(trace) if e["name"].startswith("my block")]
    assert block["name"] == f"my block ({os.path.abspath(__file__)}:{line})"
    (append,) = [e for e in events(trace) if e["name"] == "list.append"]
    assert block["ts"] <= append["ts"] and append["ts"] + append["dur"] <= block["ts"] + block["dur"] + 1e-3
    assert trace["file_info"]["functions"][block["name"]] == [os.path.abspath(__file__), line]


def test_log_instant_and_log_var(tracer):
    tracer.start()
    tracer.log_instant("shown", {"a": 1})
    tracer.log_instant("hidden", cond=False)
    tracer.log_var("count", 3)
    tracer.log_var("obj", {"k": [1]})
    trace = saved(tracer)
    assert [e["name"] for e in events(trace, "i")] == ["shown", "obj"]
    assert events(trace, "C")[0]["args"] == {"value": 3}


def test_getts_and_base_time(tracer):
    a = tracer.getts()
    b = tracer.getts()
    assert isinstance(a, float) and b >= a
    import time
    wall_from_trace = b * 1000 + tracer.get_base_time()
    assert abs(wall_from_trace - time.time_ns()) < 50_000_000


def test_sync_marker(tracer, recwarn):
    assert tracer.get_sync_marker() is None
    tracer.set_sync_marker()
    marker = tracer.get_sync_marker()
    assert abs(marker - tracer.getts()) < 1e6
    tracer.set_sync_marker()
    assert any("Synchronization marker already set" in str(w.message) for w in recwarn)
    tracer.start()
    trace = saved(tracer)
    assert trace["viztracer_metadata"]["sync_marker"] >= marker


def test_enable_thread_tracing_for_raw_threads(tracer):
    import _thread
    done = threading.Event()

    def body():
        get = tracer.enable_thread_tracing
        get()
        fib(3)
        done.set()

    tracer.start()
    _thread.start_new_thread(body, ())
    assert done.wait(10)
    trace = saved(tracer)
    assert fib_count(trace) == 5
    tids = {e["tid"] for e in events(trace) if e["name"].startswith("fib ")}
    assert threading.get_native_id() not in tids


def test_setpid(tracer):
    tracer.setpid(4242)
    tracer.start()
    fib(1)
    trace = saved(tracer)
    assert {e["pid"] for e in trace["traceEvents"]} == {4242}
    tracer.setpid(0)
    tracer.start()
    fib(1)
    assert {e["pid"] for e in saved(tracer)["traceEvents"]} == {os.getpid()}


def test_two_tracers_the_second_takes_over(tmp_path, capsys):
    a = VizTracer(output_file=str(tmp_path / "a.json"), verbose=0)
    b = VizTracer(output_file=str(tmp_path / "b.json"), verbose=0)
    a.start()
    fib(1)
    b.start()
    assert "Overwrite tracer" in capsys.readouterr().err
    assert not a.enable and b.enable
    fib(2)
    b.stop()
    b.save()
    a.save()
    assert fib_count(load_trace(str(tmp_path / "b.json"))) == 3
    assert fib_count(load_trace(str(tmp_path / "a.json"))) == 1


def test_no_generate_json(tracer):
    with pytest.raises(AttributeError):
        tracer.generate_json()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_set_afterfork_and_fork_reset(tmp_path):
    result = run_script(tmp_path, """
        import os, json
        from viztracer import VizTracer

        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2)

        def after(tracer, tag, key=None):
            tracer.max_stack_depth = 10
            print(f"afterfork {tag} {key} {os.getpid()}", flush=True)

        tracer = VizTracer(verbose=0)
        tracer.set_afterfork(after, "child", key="k")
        tracer.start()
        fib(5)
        pid = os.fork()
        if pid == 0:
            fib(2)
            tracer.stop()
            tracer.save("child.json")
            os._exit(0)
        os.waitpid(pid, 0)
        tracer.stop()
        tracer.save("parent.json")
        child = json.load(open("child.json"))
        parent = json.load(open("parent.json"))
        def fibs(t):
            return [e for e in t["traceEvents"] if e.get("name", "").startswith("fib ")]
        print("child", len(fibs(child)), {e["pid"] for e in fibs(child)} == {pid}, tracer.max_stack_depth)
        print("parent", len(fibs(parent)))
        """)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("afterfork child k ")
    assert "child 3 True -1" in lines  # only the child's own calls, under the child's pid
    assert "parent 15" in lines


def test_forked_child_gets_the_programs_own_sigterm_handler_back(tmp_path):
    # register_exit replaced the program's handler; a forked child that saves nothing
    # (no multi-process collection) must handle SIGTERM as it would untraced.
    source = """
        import os, signal, sys
        from viztracer import VizTracer
        def mine(signum, frame):
            print("program handler", os.getpid() != parent, flush=True)
            os._exit(7)
        signal.signal(signal.SIGTERM, mine)
        parent = os.getpid()
        tracer = VizTracer(output_file=sys.argv[1], verbose=0)
        tracer.register_exit()
        assert signal.getsignal(signal.SIGTERM) is not mine
        tracer.start()
        pid = os.fork()
        if pid == 0:
            assert signal.getsignal(signal.SIGTERM) is mine
            os.kill(os.getpid(), signal.SIGTERM)
            os._exit(1)
        _, status = os.waitpid(pid, 0)
        print("child exit", os.waitstatus_to_exitcode(status))
    """
    result = run_script(tmp_path, source, str(tmp_path / "t.json"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["program handler True", "child exit 7"]
    assert load_trace(tmp_path / "t.json")["traceEvents"]


def test_register_exit_saves_at_exit_and_on_sigterm(tmp_path):
    source = BLOCKED_WAIT_SOURCE + textwrap.dedent("""
        import os, signal, sys, time
        from viztracer import VizTracer
        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2)
        tracer = VizTracer(output_file=sys.argv[2], verbose=0)
        tracer.register_exit()
        tracer.start()
        fib(5)
        if sys.argv[1] == "exit":
            sys.exit(3)
        if sys.argv[1] == "raise":
            raise ValueError("boom")
        if sys.argv[1] == "term":
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        if sys.argv[1] == "term_before_wait":
            blocked_wait()
        """)
    import json
    import signal
    for how, code in (("exit", 3), ("raise", 1), ("term", -signal.SIGTERM), ("term_before_wait", -signal.SIGTERM),
                      ("end", 0)):
        out = tmp_path / f"{how}.json"
        result = run_script(tmp_path, source, how, str(out))
        assert result.returncode == code, (how, result.stderr)
        trace = json.loads(out.read_text())
        assert len([e for e in trace["traceEvents"] if e.get("name", "").startswith("fib ")]) == 15, how
