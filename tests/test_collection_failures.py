"""Never hang, never lose what arrived: a child that never exits, a sender killed while
sending, a collector that dies. The traced program ends as it would untraced, within
``report_timeout`` (1 s here), what arrived is saved, one line names what is missing.
And nothing of a collection outlives it."""

import json
import os
import re
import signal
import subprocess
import sys

import pytest

from cli_support import VIZTRACER, clean_env, write
from support import load_trace

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX processes")


def viztracer(args, cwd, timeout=60):
    return subprocess.run([VIZTRACER, *args], cwd=cwd, capture_output=True, text=True, env=clean_env(),
                          timeout=timeout)


def our_lines(stderr):
    """What viztracer printed on stderr but the "Waiting for N child process(es)" lines."""
    return [line for line in stderr.splitlines() if not line.startswith("Waiting for ")]


def pids_of(trace, prefix):
    return {e["pid"] for e in trace["traceEvents"] if e.get("ph") == "X" and e["name"].startswith(prefix)}


def test_a_child_that_never_exits_is_left_out_after_the_timeout(tmp_path):
    write(tmp_path / "prog.py", """
        import subprocess, sys
        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2)
        # Connected to the collector once its own code runs; it never ends (the test kills it).
        child = subprocess.Popen([sys.executable, "-c", "import time; print('up', flush=True); time.sleep(600)"],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert child.stdout.readline() == "up\\n"
        print("child", child.pid)
        fib(5)
    """)
    run = viztracer(["--report_timeout", "1", "-o", "out.json", "prog.py"], tmp_path)
    child = int(run.stdout.split()[1])
    try:
        assert run.returncode == 0, run.stderr
        assert our_lines(run.stderr) == [
            f"VizTracer: saved without 1 process: {child} (python -c import time; print('up', flush=True); "
            f"time.sleep(600)): still running after 1 s"]
        trace = load_trace(tmp_path / "out.json")
        assert pids_of(trace, "fib ") == {trace["traceEvents"][0]["pid"]}
        missing = [p for p in trace["viztracer_metadata"]["processes"] if p["pid"] == child]
        assert missing[0]["status"] == "missing" and missing[0]["reason"] == "still running after 1 s"
    finally:
        os.kill(child, signal.SIGKILL)


def test_a_sender_killed_while_sending_keeps_its_complete_events(tmp_path):
    # The child kills itself (SIGKILL) as it starts its second piece of trace data (of
    # about four): the first arrived, and the events it holds are kept.
    write(tmp_path / "child.py", """
        import os, signal
        from viztracer import wire
        header = wire.data_header
        sent = []
        def third_kills(length):
            sent.append(length)
            if len(sent) == 2:
                os.kill(os.getpid(), signal.SIGKILL)
            return header(length)
        wire.data_header = third_kills
        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2)
        fib(24)
    """)
    write(tmp_path / "prog.py", """
        import subprocess, sys
        print("child exit", subprocess.run([sys.executable, "child.py"]).returncode)
    """)
    run = viztracer(["-o", "out.json", "prog.py"], tmp_path)
    assert run.returncode == 0, run.stderr
    assert "child exit -9" in run.stdout
    [line] = our_lines(run.stderr)
    assert re.fullmatch(r"VizTracer: saved without 1 process: \d+ \(python child\.py\): "
                        r"connection lost after 2\d\d\.\d kB", line), line
    trace = load_trace(tmp_path / "out.json")
    [partial] = [p for p in trace["viztracer_metadata"]["processes"] if p["status"] == "partial"]
    kept = sum(1 for e in trace["traceEvents"] if e["pid"] == partial["pid"] and e.get("ph") == "X")
    assert 1000 < kept < 150049, kept  # fib(24) makes 150049 calls


def test_a_tree_whose_collector_died_saves_what_it_can(tmp_path):
    write(tmp_path / "prog.py", """
        import os, subprocess, sys
        from viztracer import VizTracer
        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2)
        tracer = VizTracer(output_file="out.json", ignore_multiprocess=False, verbose=0, report_timeout=1)
        tracer.start()
        print("started", flush=True)
        sys.stdin.readline()  # the test kills the collector meanwhile
        subprocess.run([sys.executable, "-c", "print('child ran')"])
        fib(5)
        tracer.stop()
        tracer.save()
    """)
    prog = subprocess.Popen([sys.executable, "prog.py"], cwd=tmp_path, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
    assert prog.stdout.readline() == "started\n"
    collector = _child_running(prog.pid, b"run_for_owner")
    os.kill(collector, signal.SIGKILL)
    out, err = prog.communicate("\n", timeout=60)
    assert prog.returncode == 0, err
    assert "child ran" in out
    lines = err.splitlines()
    assert len(lines) == 2, err
    # (The root keeps the listening socket until it saves, so the child's connection waits
    # in its queue, unanswered, for report_timeout.)
    assert re.fullmatch(r"VizTracer: could not send the trace of process (\d+) to the collector at "
                        r"127\.0\.0\.1:\d+ \(timed out\): saved it to .*/out_\1\.json", lines[0])
    assert lines[1] == "VizTracer: the collector of child processes is gone (Broken pipe): " \
                       "saved this process's trace alone"
    assert pids_of(load_trace(tmp_path / "out.json"), "fib ") == {prog.pid}


def _child_running(parent, needle):
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmd = f.read()
            except OSError:
                continue
            if ppid == parent and needle in cmd:
                return int(entry)
    raise AssertionError(f"no child of {parent} runs {needle!r}")


LONG_LIVED = """
import json, os, signal, subprocess, sys, threading
from viztracer import VizTracer

def state():
    try:
        os.waitpid(-1, os.WNOHANG)
        children = "some"
    except ChildProcessError:
        children = "none"
    return {"env": dict(os.environ), "fds": sorted(os.listdir("/proc/self/fd")), "threads": threading.active_count(),
            "children": children, "tmp": os.listdir(os.environ["TMPDIR"]), "os._exit": os._exit.__module__,
            "sigterm": str(signal.getsignal(signal.SIGTERM))}

before = state()
for endpoint, children in ((None, True), (None, False), (sys.argv[1], True)):
    with VizTracer(output_file="out.json", ignore_multiprocess=False, report_endpoint=endpoint, verbose=0):
        if children:
            subprocess.run([sys.executable, "-c", "pass"])
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)
    after = state()
    print(json.dumps({k: (before[k], after[k]) for k in before if before[k] != after[k]}))
"""


def test_nothing_outlives_a_collection(tmp_path):
    # A long-lived process (a notebook, a server) traces three times, with a collector of
    # its own (with child processes, and without: its collector is stopped before it is
    # up) and with an unreachable one: afterwards its environment, descriptors, threads,
    # children, signal handlers and temporary directory are as they were.
    write(tmp_path / "prog.py", LONG_LIVED)
    (tmp_path / "tmp").mkdir()
    run = subprocess.run([sys.executable, "prog.py", "127.0.0.1:1"], cwd=tmp_path, capture_output=True,
                         text=True, env=clean_env({"TMPDIR": str(tmp_path / "tmp")}), timeout=60)
    assert run.returncode == 0, run.stderr
    assert [json.loads(line) for line in run.stdout.splitlines()] == [{}, {}, {}]
