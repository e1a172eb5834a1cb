"""One trace from processes that were not started together: ``viztracer --report_server``
and the processes that send it their traces (``--report_endpoint``, the environment
variable, ``VizTracer(report_endpoint=...)``), over loopback. Every collector here is
bound to 127.0.0.1 and every wait is for a line, a file or a process's exit."""

import base64
import gzip
import json
import os
import re
import signal
import socket
import subprocess
import sys
import zlib

import pytest

from cli_support import VIZTRACER, clean_env, write
from support import load_trace
from viztracer import VizTracer, wire
from viztracer.trace_writer import HEAD

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX processes")

FIB = """
import sys
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)
fib(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
"""

API_SENDER = """
import sys
from viztracer import VizTracer
def square(x):
    return x * x
tracer = VizTracer(report_endpoint=sys.argv[1], verbose=0)
tracer.start()
square(3)
tracer.stop()
tracer.save()
"""


class Collector:
    """A ``viztracer --report_server`` process, its endpoint read from its first line."""

    def __init__(self, cwd, *args, env=None):
        self.proc = subprocess.Popen([VIZTRACER, "--report_server", *args], cwd=cwd, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=clean_env(env))
        self.first = self.proc.stdout.readline()
        assert self.first.startswith("Report server started at "), self.first + self.proc.stderr.read()
        self.endpoint = self.first.split()[-1]

    def finish(self, stdin="", timeout=60):
        out, err = self.proc.communicate(stdin, timeout=timeout)
        return self.first + out, err

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


@pytest.fixture
def collectors():
    started = []

    def start(*args, **kwargs):
        c = Collector(*args, **kwargs)
        started.append(c)
        return c
    yield start
    for c in started:
        c.kill()


def viztracer(args, cwd, env=None, timeout=60):
    return subprocess.run([VIZTRACER, *args], cwd=cwd, capture_output=True, text=True, env=clean_env(env),
                          timeout=timeout)


def python(args, cwd, env=None, timeout=60):
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, env=clean_env(env),
                          timeout=timeout)


def process_names(trace):
    return {e["pid"]: e["args"]["name"] for e in trace["traceEvents"]
            if e.get("ph") == "M" and e["name"] == "process_name"}


def count(trace, prefix, pid=None):
    return sum(1 for e in trace["traceEvents"] if e.get("ph") == "X" and e["name"].startswith(prefix)
               and (pid is None or e["pid"] == pid))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------- collecting

def test_independent_senders_land_in_one_trace(tmp_path, collectors):
    write(tmp_path / "fib.py", FIB)
    write(tmp_path / "api.py", API_SENDER)
    c = collectors(tmp_path, "--senders", "2", "-o", "all.json")
    first = viztracer(["--report_endpoint", c.endpoint, "fib.py", "6"], tmp_path)
    second = python(["api.py", c.endpoint], tmp_path)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert re.fullmatch(rf"Sent \d+ trace entries to the collector at {c.endpoint}", first.stdout.splitlines()[-1])
    assert second.stdout == ""  # verbose=0
    out, err = c.finish()
    assert c.proc.returncode == 0 and err == "", err
    assert "Saved " in out and "from 2 processes" in out
    trace = load_trace(tmp_path / "all.json")
    names = process_names(trace)
    assert sorted(names.values()) == ["api.py", "fib.py"]  # named after their programs
    by_name = {n: p for p, n in names.items()}
    assert count(trace, "fib ", by_name["fib.py"]) == 25 and count(trace, "square ", by_name["api.py"]) == 1
    meta = trace["viztracer_metadata"]
    processes = {p["pid"]: p for p in meta["processes"]}
    assert set(processes) == set(names)
    for p in processes.values():
        assert p["host"] == socket.gethostname() and p["status"] == "complete"
        assert p["clock_error_ns"] >= 0 and p["clock_offset_ns"] == 0  # one machine: no shift
        assert abs(p["clock_measured_ns"]) <= p["clock_error_ns"]
    assert processes[by_name["api.py"]]["label"] == "python api.py " + c.endpoint
    assert meta["collector"]["pid"] == c.proc.pid
    # Both programs' source files are in the trace.
    assert {os.path.basename(f) for f in trace["file_info"]["files"]} >= {"fib.py", "api.py"}


@pytest.mark.parametrize("how", ["enter", "ctrl-c"])
def test_the_collector_writes_on_enter_or_ctrl_c(tmp_path, collectors, how):
    write(tmp_path / "fib.py", FIB)
    c = collectors(tmp_path, "-o", "out.json.gz")
    assert viztracer(["--report_endpoint", c.endpoint, "fib.py"], tmp_path).returncode == 0
    if how == "ctrl-c":
        c.proc.send_signal(signal.SIGINT)
    out, err = c.finish("\n" if how == "enter" else "")
    assert c.proc.returncode == 0, err
    assert count(load_trace(tmp_path / "out.json.gz"), "fib ") == 15


def test_a_collector_that_got_nothing_says_so(tmp_path, collectors):
    c = collectors(tmp_path)
    out, _ = c.finish("\n")
    assert c.proc.returncode == 0
    assert out.splitlines()[-1] == "No reports collected, nothing to save."
    assert not os.path.exists(tmp_path / "result.json")


def test_the_environment_variable_names_the_collector(tmp_path, collectors):
    write(tmp_path / "fib.py", FIB)
    endpoint = f"127.0.0.1:{free_port()}"
    env = {wire.ENV_ENDPOINT: endpoint}
    c = collectors(tmp_path, "--senders", "1", "-o", "out.html", env=env)
    assert c.endpoint == endpoint
    run = viztracer(["fib.py", "4"], tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    c.finish()
    page = (tmp_path / "out.html").read_text()
    data = re.search(r'id="vizviewer-data" data-encoding="gzip-base64"[^>]*>([^<]*)</script>', page).group(1)
    trace = json.loads(gzip.decompress(base64.b64decode(re.sub(r"\s+", "", data))))
    assert count(trace, "fib ") == 9


def test_a_process_tree_sends_every_process_to_the_collector(tmp_path, collectors):
    # With an endpoint, the root of a tree is a sender like its children: it does not
    # wait for them, the collector does.
    write(tmp_path / "tree.py", """
        import subprocess, sys
        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2)
        fib(3)
        subprocess.run([sys.executable, "-c", "import fib; fib.fib(5)"])
    """)
    write(tmp_path / "fib.py", "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n")
    c = collectors(tmp_path, "--senders", "2", "-o", "out.json")
    run = viztracer(["--report_endpoint", c.endpoint, "tree.py"], tmp_path)
    assert run.returncode == 0, run.stderr
    c.finish()
    trace = load_trace(tmp_path / "out.json")
    assert sorted(process_names(trace).values()) == ["python -c", "tree.py"]
    assert count(trace, "fib ") == 5 + 15


# ----------------------------------------------------------------------------- what is not a trace

def _connect(endpoint):
    host, port = wire.parse_endpoint(endpoint)
    return socket.create_connection((host, port), timeout=30)


def _half_trace(pid):
    """A sender that says HELLO and sends the beginning of a trace: two complete events
    and half of a third, then its connection ends."""
    lines = [b'{"ph":"M","pid":%d,"tid":%d,"name":"process_name","args":{"name":"half"}}' % (pid, pid),
             b'{"pid":%d,"tid":%d,"ts":1.000,"ph":"X","dur":1.000,"name":"half_a","cat":"FEE"}' % (pid, pid),
             b'{"pid":%d,"tid":%d,"ts":3.000,"ph":"X","dur":1.000,"name":"half_b","cat":"FEE"}' % (pid, pid)]
    data = HEAD + b",\n".join(lines[:2]) + b",\n" + lines[2][:30]
    gz = zlib.compressobj(6, zlib.DEFLATED, 31)
    body = gz.compress(data) + gz.flush(zlib.Z_SYNC_FLUSH)
    return (wire.json_frame(wire.HELLO, {"version": wire.VERSION, "pid": pid, "host": "h", "label": "half"})
            + wire.frame(wire.DATA, body))


def test_what_is_not_a_trace_is_dropped_and_a_good_sender_still_lands(tmp_path, collectors):
    write(tmp_path / "fib.py", FIB)
    c = collectors(tmp_path, "--senders", "2", "-o", "out.json")
    with _connect(c.endpoint) as garbage, _connect(c.endpoint) as huge, _connect(c.endpoint) as silent:
        garbage.sendall(b"GET / HTTP/1.0\r\n\r\n")
        huge.sendall(b"H" + (2 ** 31).to_bytes(4, "big"))
        for s in (garbage, huge):  # the collector hangs up on them
            assert s.recv(10) == b""
        with _connect(c.endpoint) as half:
            half.sendall(_half_trace(4242))
        run = viztracer(["--report_endpoint", c.endpoint, "fib.py"], tmp_path)
        assert run.returncode == 0, run.stderr
        out, err = c.finish()
        assert silent.recv(10) == b""  # closed when the collection ended
    assert c.proc.returncode == 0
    lines = err.splitlines()
    assert len(lines) == 3, err
    assert lines[0].startswith("VizTracer collector: dropped the connection of 127.0.0.1:")
    assert "not a viztracer trace connection" in lines[0]
    assert "a H frame of 2147483648 bytes" in lines[1]
    assert lines[2].startswith("VizTracer: saved without 1 process: 4242 (half): connection lost after ")
    trace = load_trace(tmp_path / "out.json")  # valid JSON
    assert count(trace, "fib ") == 15
    assert [e["name"] for e in trace["traceEvents"] if e["pid"] == 4242 and e["ph"] == "X"] == ["half_a"]
    half = [p for p in trace["viztracer_metadata"]["processes"] if p["pid"] == 4242]
    assert half[0]["status"] == "partial" and half[0]["reason"].startswith("connection lost after")


def test_a_sender_of_another_protocol_version_is_refused(tmp_path, collectors):
    c = collectors(tmp_path)
    with _connect(c.endpoint) as s:
        s.sendall(wire.json_frame(wire.HELLO, {"version": 99, "pid": 1, "label": "x"}))
        assert s.recv(10) == b""
    out, err = c.finish("\n")
    assert "protocol version 99 (this collector speaks 1)" in err


# ----------------------------------------------------------------------------- when the collector is not there

def test_an_unreachable_collector_leaves_the_trace_local(tmp_path):
    write(tmp_path / "fib.py", FIB)
    endpoint = f"127.0.0.1:{free_port()}"  # nothing listens there
    plain = python(["fib.py"], tmp_path)
    run = viztracer(["--report_endpoint", endpoint, "-o", "out.json", "fib.py"], tmp_path)
    assert run.returncode == plain.returncode == 0 and run.stdout == plain.stdout
    saved = [f for f in os.listdir(tmp_path) if f.startswith("out_")]
    assert len(saved) == 1
    path = os.path.join(tmp_path, saved[0])
    assert run.stderr.splitlines() == [
        f"VizTracer: could not send the trace of process {saved[0][4:-5]} to the collector at {endpoint} "
        f"(connection refused): saved it to {path}"]
    assert count(load_trace(path), "fib ") == 15


def test_a_collector_that_dies_before_the_save_leaves_the_trace_local(tmp_path, collectors):
    write(tmp_path / "sender.py", """
        import sys
        from viztracer import VizTracer
        tracer = VizTracer(report_endpoint=sys.argv[1], output_file="mine.json", verbose=0)
        tracer.start()
        print("started", flush=True)
        sys.stdin.readline()
        tracer.stop()
        tracer.save()
    """)
    c = collectors(tmp_path)
    sender = subprocess.Popen([sys.executable, "sender.py", c.endpoint], cwd=tmp_path, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
    assert sender.stdout.readline() == "started\n"
    c.proc.kill()
    c.proc.wait()
    out, err = sender.communicate("\n", timeout=60)
    assert sender.returncode == 0, err
    assert f"could not send the trace of process {sender.pid} to the collector at {c.endpoint}" in err
    assert os.path.exists(tmp_path / f"mine_{sender.pid}.json")


# ----------------------------------------------------------------------------- mistakes

@pytest.mark.parametrize("args, message", [
    (["--report_endpoint", "nonsense", "fib.py"], "report_endpoint: 'nonsense' is not HOST:PORT"),
    (["--report_endpoint", "127.0.0.1:http", "fib.py"], "has no valid port"),
    (["--report_server", "invalid_endpoint"], "report_server endpoint should be in host:port format"),
    (["--report_server", "127.0.0.1"], "report_server endpoint should be in host:port format"),
    (["--report_server", "|invalid_config"], "Unknown report_server config: invalid_config"),
    (["--report_server", "--senders", "0"], "--senders must be 1 or more"),
    (["--report_server", "--report_timeout", "-1"], "must be a number of seconds above 0"),
])
def test_mistakes_are_one_line(tmp_path, args, message):
    write(tmp_path / "fib.py", FIB)
    run = viztracer(args, tmp_path)
    assert run.returncode != 0
    assert message in run.stdout + run.stderr and "Traceback" not in run.stderr
    assert len((run.stdout + run.stderr).strip().splitlines()) == 1


def test_a_bad_environment_variable_is_one_line(tmp_path):
    write(tmp_path / "fib.py", FIB)
    run = viztracer(["fib.py"], tmp_path, env={wire.ENV_ENDPOINT: "x"})
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stdout.strip() == (f"report_endpoint: 'x' is not HOST:PORT (e.g. 127.0.0.1:8123) "
                                  f"(from ${wire.ENV_ENDPOINT})")


def test_a_port_in_use_is_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = viztracer(["--report_server", f"127.0.0.1:{port}"], tmp_path)
    assert run.returncode == 1
    assert run.stdout.strip() == f"Can't listen on 127.0.0.1:{port}: Address already in use"


# ----------------------------------------------------------------------------- save_report

def test_save_report_writes_this_process_alone(tmp_path, collectors):
    c = collectors(tmp_path, "--senders", "1", "-o", "all.json")
    tracer = VizTracer(report_endpoint=c.endpoint, verbose=0)
    tracer.start()
    sorted([3, 1, 2])
    tracer.stop()
    tracer.save_report(str(tmp_path / "new" / "dir" / "own.json"))  # folders made
    own = load_trace(tmp_path / "new" / "dir" / "own.json")
    assert {e["pid"] for e in own["traceEvents"]} == {os.getpid()}
    import io
    text = io.StringIO()
    tracer.save_report(text)
    assert json.loads(text.getvalue())["traceEvents"] == own["traceEvents"]
    binary = io.BytesIO()
    tracer.save_report(binary)
    assert json.loads(binary.getvalue())["traceEvents"] == own["traceEvents"]
    tracer.save()  # and the collector gets it too
    c.finish()
    assert load_trace(tmp_path / "all.json")["traceEvents"] == own["traceEvents"]


# ----------------------------------------------------------------------------- the protocol's pieces

def test_frames_are_cut_whatever_the_pieces():
    data = (wire.json_frame(wire.HELLO, {"pid": 1}) + wire.frame(wire.DATA, b"x" * 10) + wire.ping(7)
            + wire.frame(wire.END))
    reader = wire.FrameReader(wire.SENDER_FRAMES)
    frames = [f for i in range(len(data)) for f in reader.feed(data[i:i + 1])]
    joined = [(k, b"".join(b for kk, b in frames if kk == k)) for k in (wire.HELLO, wire.DATA, wire.PING, wire.END)]
    assert joined == [(wire.HELLO, b'{"pid":1}'), (wire.DATA, b"x" * 10), (wire.PING, wire.ping(7)[5:]),
                      (wire.END, b"")]
    assert not reader.in_frame
    with pytest.raises(wire.WireError, match="at most"):
        list(wire.FrameReader(wire.SENDER_FRAMES).feed(wire.data_header(wire.MAX_DATA + 1)))
    with pytest.raises(wire.WireError, match="not a viztracer trace connection"):
        list(wire.FrameReader(wire.SENDER_FRAMES).feed(wire.pong(1, 2, 3)))


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:8123", ("127.0.0.1", 8123)), ("[::1]:80", ("::1", 80)), ("host.example:1", ("host.example", 1))])
def test_endpoints(text, expected):
    assert wire.parse_endpoint(text) == expected
    assert wire.format_endpoint(*expected) == text


def test_endpoints_to_listen_on():
    assert wire.parse_endpoint(":0", listening=True) == ("127.0.0.1", 0)
    for bad in ("127.0.0.1:0", ":80", "x", "h:-1", "h:65536", "h:1e3"):
        with pytest.raises(ValueError):
            wire.parse_endpoint(bad)


def test_clock_offset_from_the_shortest_round_trip():
    from viztracer import clock_sync

    # The collector's clock is 1000 ns ahead; the pings took 10+30, 2+2 (the best) and 50+5 ns.
    samples = [(0, 1010, 1010, 40), (100, 1102, 1103, 105), (200, 1250, 1251, 256)]
    assert clock_sync.offset_and_error(samples) == (1000, 2)
    assert clock_sync.applied(1000, 2) == 1000
    assert clock_sync.applied(3, 20) == 0  # within the error: not told from zero
    ticks = iter(range(0, 10**6, 10))
    offset, error = clock_sync.measure(lambda t1: (t1 + 505, t1 + 505), rounds=3, clock=lambda: next(ticks))
    assert (offset, error) == (500, 5)
