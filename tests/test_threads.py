"""Threads: every thread's calls are recorded on its own track, named after its
``threading`` name, including threads that were already running at ``start()``."""

import sys
import threading
import time

from support import assert_nested, events, load_trace, run_threads
from viztracer import VizTracer


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def thread_names(trace):
    return {e["tid"]: e["args"]["name"] for e in trace["traceEvents"]
            if e["ph"] == "M" and e["name"] == "thread_name"}


def fibs_by_tid(trace):
    out = {}
    for e in events(trace):
        if e["name"].startswith("fib "):
            out[e["tid"]] = out.get(e["tid"], 0) + 1
    return out


def test_threads_started_after_start(tmp_path):
    path = str(tmp_path / "t.json")
    tracer = VizTracer(output_file=path, verbose=0)
    tracer.start()
    run_threads(threading.Thread(target=fib, args=(5,), name=f"worker-{i}") for i in range(4))
    tracer.stop()
    tracer.save()
    trace = load_trace(path)
    counts = fibs_by_tid(trace)
    assert sorted(counts.values()) == [15, 15, 15, 15]
    tnames = thread_names(trace)
    assert {tnames[tid] for tid in counts} == {f"worker-{i}" for i in range(4)}
    assert not any(n.startswith("Dummy-") for n in tnames.values())
    # The main thread's metadata comes first.
    first_thread = [e for e in trace["traceEvents"] if e["ph"] == "M" and e["name"] == "thread_name"][0]
    assert first_thread["args"]["name"] == "MainThread"
    assert_nested(trace)


def test_threads_running_before_start_are_traced(tmp_path):
    """Upstream VizTracer cannot do this before 3.12; we install the hook on every thread."""
    path = str(tmp_path / "pre.json")
    running = threading.Event()
    go = threading.Event()
    done = threading.Event()

    def waiter():
        running.set()
        go.wait(10)
        fib(6)
        done.set()

    t = threading.Thread(target=waiter, name="early-bird")
    t.start()
    assert running.wait(10)  # the thread runs Python code before tracing starts
    tracer = VizTracer(output_file=path, verbose=0)
    tracer.start()
    go.set()
    assert done.wait(10)
    t.join()
    tracer.stop()
    tracer.save()
    trace = load_trace(path)
    counts = fibs_by_tid(trace)
    assert list(counts.values()) == [25]
    (tid,) = counts
    assert thread_names(trace)[tid] == "early-bird"


def test_threads_that_ended_keep_their_events_and_names(tmp_path):
    path = str(tmp_path / "ended.json")
    tracer = VizTracer(output_file=path, verbose=0)
    tracer.start()

    def spawn():
        t = threading.Thread(target=fib, args=(4,), name="short-lived")
        t.start()
        t.join()

    spawn()  # the Thread object is garbage by the time we save
    import gc
    gc.collect()
    tracer.stop()
    tracer.save()
    trace = load_trace(path)
    counts = fibs_by_tid(trace)
    assert list(counts.values()) == [9]
    assert thread_names(trace)[next(iter(counts))] == "short-lived"


def test_many_threads_lose_nothing(tmp_path):
    path = str(tmp_path / "many.json")
    tracer = VizTracer(output_file=path, verbose=0)
    tracer.start()
    run_threads(threading.Thread(target=fib, args=(8,)) for _ in range(16))
    tracer.stop()
    tracer.save()
    trace = load_trace(path)
    counts = fibs_by_tid(trace)
    assert len(counts) == 16 and set(counts.values()) == {67}
    assert_nested(trace)


def test_threads_one_after_another_keep_their_own_tracks(tmp_path):
    """Threads started after the previous one ended usually reuse its stack and thread
    pointer: each must still record on its own track (the tracer's per-thread cache is
    keyed by that pointer and must not hand a new thread the old one's state)."""
    path = str(tmp_path / "serial.json")
    tracer = VizTracer(output_file=path, verbose=0)
    tracer.start()
    native_ids = []

    def body(i):
        native_ids.append(threading.get_native_id())
        fib(3 + i)

    for i in range(6):
        t = threading.Thread(target=body, args=(i,), name=f"serial-{i}")
        t.start()
        t.join()
    tracer.stop()
    tracer.save()
    trace = load_trace(path)
    names = thread_names(trace)
    counts = fibs_by_tid(trace)
    for i, tid in enumerate(native_ids):
        assert names[tid] == f"serial-{i}"
        assert counts[tid] == 2 * fib(4 + i) - 1  # the calls fib(3 + i) makes
    assert_nested(trace)


def test_thread_buffer_limit_is_shared(tmp_path):
    path = str(tmp_path / "limit.json")
    tracer = VizTracer(output_file=path, verbose=0, tracer_entries=2000)
    tracer.start()
    run_threads(threading.Thread(target=fib, args=(12,)) for _ in range(4))
    tracer.stop()
    tracer.save()
    trace = load_trace(path)
    total = len(events(trace))
    assert 1900 <= total <= 2000
    assert trace["viztracer_metadata"]["overflow"] is True


def test_thread_pool(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    path = str(tmp_path / "pool.json")
    tracer = VizTracer(output_file=path, verbose=0)
    tracer.start()
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="pool") as ex:
        assert list(ex.map(fib, [5] * 6)) == [5] * 6
    tracer.stop()
    tracer.save()
    trace = load_trace(path)
    assert sum(fibs_by_tid(trace).values()) == 6 * 15
    tnames = thread_names(trace)
    assert all(tnames[tid].startswith("pool") for tid in fibs_by_tid(trace))


def test_daemon_thread_still_running_at_stop(tmp_path):
    path = str(tmp_path / "daemon.json")
    stop = threading.Event()
    spun = threading.Event()

    def spin():
        while not stop.is_set():
            fib(3)
            spun.set()
            time.sleep(0.001)

    tracer = VizTracer(output_file=path, verbose=0)
    tracer.start()
    t = threading.Thread(target=spin, daemon=True, name="spinner")
    t.start()
    assert spun.wait(30)  # fib(3) ran in the thread while tracing
    tracer.stop()
    tracer.save()
    stop.set()
    t.join()
    trace = load_trace(path)
    assert fibs_by_tid(trace)
    assert "spinner" in thread_names(trace).values()
    # Frames still running in that thread at stop() are written as B events.
    assert any(e["name"].split(" (")[0].endswith("spin") for e in events(trace, "B"))
    assert sys.getprofile() is None


def test_states_of_finished_threads_are_freed(tmp_path):
    tracer = VizTracer(output_file=str(tmp_path / "free.json"), verbose=0)
    for _ in range(3):
        tracer.start()
        run_threads(threading.Thread(target=fib, args=(2,)) for _ in range(20))
        tracer.stop()
        assert tracer._tracer.stats()["threads"] >= 20
        tracer.save()
        # After the events are taken out, threads that hold nothing are forgotten.
        assert tracer._tracer.stats()["threads"] == 0
        assert sum(fibs_by_tid(load_trace(str(tmp_path / "free.json"))).values()) == 20 * 3
