"""``tracer.install()`` and ``viztracer --attach_installed PID``: a running program's
tracer started and stopped from another process, by signals."""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from cli_support import VIZTRACER, clean_env

TARGET = """
import sys, threading, time
from viztracer import VizTracer

def work(n):
    global told
    if tracer.enable and not told:
        told = print("tracing", flush=True)  # (None: told once)
    return sum(i * i for i in range(n))

told = False

def busy(name):
    while True:
        work(200)
        time.sleep(0.001)

tracer = VizTracer(output_file=sys.argv[1], verbose=0)
tracer.install()
for i in range(int(sys.argv[2])):
    threading.Thread(target=busy, args=(f"busy-{i}",), name=f"busy-{i}", daemon=True).start()
print("ready", flush=True)
while True:
    work(200)
    time.sleep(0.001)
"""


def wait_for(condition, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def complete_trace(path):
    """The trace at ``path`` once it is complete JSON (the target writes it)."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


@pytest.fixture
def target(tmp_path):
    procs = []

    def start(threads=0):
        script = tmp_path / "target.py"
        script.write_text(textwrap.dedent(TARGET))
        out = tmp_path / "out.json"
        proc = subprocess.Popen([sys.executable, str(script), str(out), str(threads)], stdout=subprocess.PIPE,
                                text=True, env=clean_env(), cwd=str(tmp_path))
        procs.append(proc)
        assert proc.stdout.readline().strip() == "ready"
        return proc, out

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def attach(pid, *args, timeout=60):
    return subprocess.run([VIZTRACER, "--attach_installed", str(pid), *args], capture_output=True, text=True,
                          env=clean_env(), timeout=timeout)


def work_events(trace):
    return [e for e in trace["traceEvents"] if e.get("ph") == "X" and e["name"].startswith("work (")]


def test_timed_attach_twice_in_a_row(target):
    proc, out = target()
    for _ in range(2):
        r = attach(proc.pid, "-t", "0.3")
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"Attached to process {proc.pid}" in r.stdout and "Detached" in r.stdout
        wait_for(lambda: complete_trace(out) is not None, what="the trace")
        assert work_events(complete_trace(out))
        os.unlink(out)
    assert proc.poll() is None  # the target runs on


def test_ctrl_c_stops_the_attach(target):
    proc, out = target()
    attaching = subprocess.Popen([VIZTRACER, "--attach_installed", str(proc.pid)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env=clean_env())
    assert "until you press Ctrl+C" in attaching.stdout.readline()
    assert proc.stdout.readline().strip() == "tracing"  # the target records
    attaching.send_signal(signal.SIGINT)
    stdout, stderr = attaching.communicate(timeout=60)
    assert attaching.returncode == 0, stdout + stderr
    assert "Detached" in stdout and "Traceback" not in stderr
    wait_for(lambda: complete_trace(out) is not None, what="the trace")
    assert work_events(complete_trace(out))
    assert proc.poll() is None


def test_threads_running_before_the_attach_are_traced(target):
    proc, out = target(threads=4)
    assert attach(proc.pid, "-t", "0.5").returncode == 0
    wait_for(lambda: complete_trace(out) is not None, what="the trace")
    trace = complete_trace(out)
    names = {e["args"]["name"] for e in trace["traceEvents"] if e.get("ph") == "M" and e["name"] == "thread_name"}
    working = {e["tid"] for e in work_events(trace)}
    assert {f"busy-{i}" for i in range(4)} <= names
    assert len(working) == 5  # the four threads and the main thread


@pytest.mark.parametrize("args, message", [
    (["--attach_installed", "999999999", "-t", "1"], "No process with pid 999999999"),
    (["--attach", "999999999", "-t", "1"], "No process with pid 999999999"),
    (["--uninstall", "999999999"], "No process with pid 999999999"),
    (["--attach_installed"], "--attach_installed needs the pid of a running process"),
    (["--attach_installed", "1", "-t", "0"], "-t must be a positive number of seconds"),
    (["--attach_installed", "1", "-t", "-2"], "-t must be a positive number of seconds"),
    (["--attach_installed", "1", "-t", "nan"], "-t must be a positive number of seconds"),
])
def test_bad_input(args, message):
    r = subprocess.run([VIZTRACER, *args], capture_output=True, text=True, env=clean_env(), timeout=60)
    assert r.returncode != 0
    assert message in r.stdout + r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("program", [["sleep", "60"], [sys.executable, "-c", "import time; time.sleep(60)"]],
                         ids=["not-python", "python-without-install"])
def test_a_process_without_an_installed_tracer_is_left_alone(program):
    proc = subprocess.Popen(program)
    try:
        # (the process must have started: its command line is its own, not the fork's)
        wait_for(lambda: open(f"/proc/{proc.pid}/cmdline", "rb").read().split(b"\0")[0].endswith(
            os.path.basename(program[0]).encode()), what="the process to start")
        r = attach(proc.pid, "-t", "0.2")
        assert r.returncode == 1
        assert f"Process {proc.pid} has no installed tracer" in r.stdout
        assert proc.poll() is None  # SIGUSR1 would have killed it
    finally:
        proc.kill()
        proc.wait()


def test_install_needs_the_main_thread():
    from viztracer import VizTracer

    errors = []
    tracer = VizTracer(verbose=0)

    def run():
        try:
            tracer.install()
        except RuntimeError as e:
            errors.append(str(e))

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert errors and "main thread" in errors[0]


# ---------------------------------------------------------------------- --attach, --uninstall

PLAIN_TARGET = """
import sys, threading, time

def work(n):
    return sum(i * i for i in range(n))

def busy():
    while True:
        work(200)
        time.sleep(0.001)

for i in range(int(sys.argv[1])):
    threading.Thread(target=busy, name=f"busy-{i}", daemon=True).start()
if sys.argv[2] == "traced":
    from viztracer import VizTracer
    VizTracer(verbose=0).start()
print("ready", flush=True)
if sys.argv[2] == "sleep_first":
    time.sleep(3)  # in C: what is sent to this process waits
while True:
    work(200)
    time.sleep(0.001)
"""

# 3.14+ attaches with sys.remote_exec, earlier Pythons with gdb (which make test
# installs; CI must not skip these).
CAN_ATTACH = hasattr(sys, "remote_exec") or shutil.which("gdb") is not None
REMOTE = pytest.mark.skipif(not CAN_ATTACH and os.environ.get("CI") != "true", reason="needs gdb before 3.14")


@pytest.fixture
def plain_target(tmp_path):
    procs = []

    def start(threads=0, mode="plain", python_args=(), env=None):
        script = tmp_path / "plain_target.py"
        script.write_text(textwrap.dedent(PLAIN_TARGET))
        proc = subprocess.Popen([sys.executable, *python_args, str(script), str(threads), mode],
                                stdout=subprocess.PIPE, text=True, env=clean_env(env), cwd=str(tmp_path))
        procs.append(proc)
        assert proc.stdout.readline().strip() == "ready"
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def viztracer_cmd(*args, timeout=90):
    return subprocess.run([VIZTRACER, *args], capture_output=True, text=True, env=clean_env(), timeout=timeout)


@REMOTE
def test_attach_twice_traces_every_thread_and_leaves_the_target_running(plain_target, tmp_path):
    proc = plain_target(threads=4)
    for i in range(2):
        out = tmp_path / f"attach{i}.json"
        r = viztracer_cmd("--attach", str(proc.pid), "-t", "0.5", "-o", str(out))
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"attached to process {proc.pid}" in r.stdout and f"to {out}" in r.stdout
        trace = complete_trace(out)
        assert len({e["tid"] for e in work_events(trace)}) == 5  # four threads and the main one
    assert proc.poll() is None


@REMOTE
def test_attach_says_success_and_the_target_says_detected_and_saved(plain_target, tmp_path):
    # Scripts written for upstream wait for these phrases: "success" from the command
    # once the target's tracer runs, "Detected attaching" and "Saved report to PATH"
    # on the target's own stdout. --quiet keeps the target's output the program's.
    proc = plain_target()
    quiet = tmp_path / "quiet.json"
    r = viztracer_cmd("--attach", str(proc.pid), "-t", "0.2", "--quiet", "-o", str(quiet))
    assert r.returncode == 0, r.stdout + r.stderr
    assert complete_trace(quiet) is not None
    out = tmp_path / "told.json"
    r = viztracer_cmd("--attach", str(proc.pid), "-t", "0.2", "-o", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"Attach success, attached to process {proc.pid}: its tracer records for 0.2 s")
    entries = len(complete_trace(out)["traceEvents"])
    # (the quiet attach printed nothing there: the next lines are this attach's)
    detected = proc.stdout.readline()
    assert detected.startswith("Detected attaching") and str(proc.pid) in detected
    saved = proc.stdout.readline()
    assert saved.startswith(f"Saved report to {out} (")
    reported = int(saved.split("(")[1].split()[0])
    assert 0 < reported <= entries and f"saved {reported} trace entries to {out}" in lines[1]


@REMOTE
def test_attach_ended_with_ctrl_c(plain_target, tmp_path):
    proc = plain_target()
    out = tmp_path / "ctrl_c.json"
    attaching = subprocess.Popen([VIZTRACER, "--attach", str(proc.pid), "-o", str(out)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env=clean_env())
    assert "until you press Ctrl+C" in attaching.stdout.readline()
    attaching.send_signal(signal.SIGINT)
    stdout, stderr = attaching.communicate(timeout=90)
    assert attaching.returncode == 0, stdout + stderr
    assert complete_trace(out)["traceEvents"] and proc.poll() is None


@REMOTE
def test_a_running_tracer_is_left_alone_then_uninstalled(plain_target, tmp_path):
    proc = plain_target(mode="traced")
    out = tmp_path / "refused.json"
    r = viztracer_cmd("--attach", str(proc.pid), "-t", "0.2", "-o", str(out))
    assert r.returncode == 1 and "already has a tracer running" in r.stdout
    assert not out.exists()
    r = viztracer_cmd("--uninstall", str(proc.pid))
    assert r.returncode == 0 and "Removed 1 tracer(s)" in r.stdout, r.stdout + r.stderr
    r = viztracer_cmd("--attach", str(proc.pid), "-t", "0.2", "-o", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    assert work_events(complete_trace(out))


@REMOTE
@pytest.mark.parametrize("case", ["not-python", "no-viztracer", "remote-debug-disabled", "remote-debug-env"])
def test_attach_refusals_leave_the_target_running(plain_target, case):
    if case == "not-python":
        proc = subprocess.Popen(["sleep", "60"])
        wait_for(lambda: open(f"/proc/{proc.pid}/cmdline", "rb").read().startswith(b"sleep"), what="sleep")
        message = "is not a Python process"
    elif case == "no-viztracer":
        proc = plain_target(python_args=("-S",))  # no site: viztracer can't be imported there
        message = "viztracer can not be imported in process"
    elif case == "remote-debug-disabled":
        proc = plain_target(python_args=("-X", "disable_remote_debug"))
        message = "disabled remote debugging"
    else:
        proc = plain_target(env={"PYTHON_DISABLE_REMOTE_DEBUG": "1"})
        message = "disabled remote debugging"
    try:
        r = viztracer_cmd("--attach", str(proc.pid), "-t", "0.2")
        assert r.returncode == 1 and message in r.stdout, r.stdout + r.stderr
        assert "Traceback" not in r.stderr
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.skipif(hasattr(sys, "remote_exec"), reason="3.14+ attaches without gdb")
def test_attach_without_gdb_says_what_to_install(plain_target, tmp_path):
    proc = plain_target()
    env = clean_env({"PATH": str(tmp_path)})  # no gdb on it
    r = subprocess.run([VIZTRACER, "--attach", str(proc.pid), "-t", "0.2"], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 1 and "needs gdb" in r.stdout and "apt-get install gdb" in r.stdout
    assert proc.poll() is None


@REMOTE
def test_ctrl_c_while_the_attach_is_still_on_its_way(plain_target, tmp_path):
    # The target's main thread sleeps in C for a while, so the request waits there;
    # Ctrl+C meanwhile still ends cleanly: the tracer starts, then stops and saves.
    proc = plain_target(mode="sleep_first")
    exchange = tmp_path / "exchange"
    exchange.mkdir()
    out = tmp_path / "early.json"
    attaching = subprocess.Popen([VIZTRACER, "--attach", str(proc.pid), "-o", str(out)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env=clean_env({"TMPDIR": str(exchange)}))
    wait_for(lambda: list(exchange.glob("*/start.py")), what="the request to be sent")
    attaching.send_signal(signal.SIGINT)
    stdout, stderr = attaching.communicate(timeout=90)
    assert attaching.returncode == 0, stdout + stderr
    assert "Detached" in stdout and "Traceback" not in stderr
    assert complete_trace(out) is not None and proc.poll() is None


@REMOTE
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root to run as nobody")
def test_attach_without_permission(plain_target):
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    if subprocess.run([*as_nobody, sys.executable, "-c", "import viztracer"], capture_output=True,
                      env=clean_env()).returncode != 0:
        pytest.skip("this Python (or viztracer) can't be run by another user here")
    proc = plain_target()
    r = subprocess.run([*as_nobody, VIZTRACER, "--attach", str(proc.pid), "-t", "0.2", "-o", "/nonexistent/x.json"],
                       capture_output=True, text=True,
                       env=clean_env(), timeout=60)
    assert r.returncode == 1
    assert f"No permission to reach process {proc.pid}" in r.stdout, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert proc.poll() is None
