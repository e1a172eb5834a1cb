"""Many machines, one time axis: senders whose monotonic clock really differs from the
collector's (each in a Linux time namespace of its own, made by ``unshare --time``)
land on the collector's axis, where they really ran."""

import shutil
import subprocess
import sys
import time

import pytest

from cli_support import VIZTRACER, clean_env, write
from support import load_trace

AHEAD = {"a": 100_000, "b": 250_000}  # seconds each sender's clock is ahead of the collector's


def _unshare(seconds):
    return ["unshare", "--time", f"--monotonic={seconds}", "--fork"]


@pytest.fixture(scope="module")
def time_namespaces():
    if sys.platform != "linux" or shutil.which("unshare") is None:
        pytest.skip("time namespaces are Linux's, made here with util-linux's unshare")
    probe = subprocess.run(_unshare(AHEAD["a"]) + [sys.executable, "-c", "import time; print(time.monotonic())"],
                           capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"this machine does not let us make a time namespace: {probe.stderr.strip()}")
    assert float(probe.stdout) > time.monotonic() + AHEAD["a"] - 60


SENDER = """
import sys, time
def work():
    time.sleep(0.05)
print(time.monotonic_ns(), flush=True)
work()
"""


def test_senders_on_other_clocks_land_where_they_ran(tmp_path, time_namespaces):
    write(tmp_path / "sender.py", SENDER)
    collector = subprocess.Popen([VIZTRACER, "--report_server", "--senders", "2", "-o", "out.json"], cwd=tmp_path,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env=clean_env())
    try:
        endpoint = collector.stdout.readline().split()[-1]
        windows = {}
        for name, seconds in AHEAD.items():
            before = time.monotonic_ns()  # the collector's clock (this machine's)
            run = subprocess.run(_unshare(seconds) + [VIZTRACER, "--report_endpoint", endpoint, "sender.py"],
                                 cwd=tmp_path, capture_output=True, text=True, env=clean_env(), timeout=60)
            after = time.monotonic_ns()
            assert run.returncode == 0, run.stderr
            own_clock = int(run.stdout.split()[0])
            assert own_clock > after + (seconds - 60) * 10**9  # its clock really is far ahead
            windows[name] = (before, after)
        collector.communicate(timeout=60)
    finally:
        collector.kill()
    trace = load_trace(tmp_path / "out.json")
    processes = trace["viztracer_metadata"]["processes"]
    assert len(processes) == 2
    for (name, seconds), process in zip(AHEAD.items(), processes):
        # Measured: the collector's clock is behind the sender's by `seconds`, within its error.
        assert abs(process["clock_offset_ns"] + seconds * 10**9) < 10**9
        assert 0 <= process["clock_error_ns"] < 10**9 and process["clock_offset_ns"] == process["clock_measured_ns"]
        before, after = windows[name]
        [work] = [e for e in trace["traceEvents"]
                  if e["pid"] == process["pid"] and e.get("name", "").startswith("work ")]
        assert before / 1000 < work["ts"] and work["ts"] + work["dur"] < after / 1000, (work, windows[name])


def test_a_child_on_another_clock_lands_inside_the_call_that_ran_it(tmp_path, time_namespaces):
    # A process tree whose child runs in a time namespace (as a child on another machine
    # would): its events fall inside the parent's subprocess.run() that waited for it.
    write(tmp_path / "sender.py", SENDER)
    write(tmp_path / "prog.py", f"""
        import subprocess, sys
        def run_child():
            subprocess.run({_unshare(AHEAD["a"])!r} + [sys.executable, "sender.py"], check=True)
        run_child()
    """)
    run = subprocess.run([VIZTRACER, "-o", "out.json", "prog.py"], cwd=tmp_path, capture_output=True, text=True,
                         env=clean_env(), timeout=60)
    assert run.returncode == 0, run.stderr
    trace = load_trace(tmp_path / "out.json")
    [parent] = [e for e in trace["traceEvents"] if e.get("name", "").startswith("run_child ")]
    [work] = [e for e in trace["traceEvents"] if e.get("name", "").startswith("work ")]
    assert work["pid"] != parent["pid"]
    assert parent["ts"] < work["ts"] and work["ts"] + work["dur"] < parent["ts"] + parent["dur"], (parent, work)
    child = [p for p in trace["viztracer_metadata"]["processes"] if p["pid"] == work["pid"]]
    assert abs(child[0]["clock_offset_ns"] + AHEAD["a"] * 10**9) < 10**9
