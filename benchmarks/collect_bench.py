"""Collecting many independently started processes into one trace: ours against
upstream VizTracer's report server (built from its repository's newest source, see
``common.upstream_head_venv``; its collector is unreleased).

A collector is started (``viztracer --report_server``); then N sender processes are
started on their own, each ``VizTracer(report_endpoint=...)`` (the same script for
both: the interface is the same), which connects, waits until every sender has
connected (so that upstream's collector, which ends once its connections are gone,
sees them all), records E calls and sends its trace. Measured:

- the collector's peak memory (VmHWM: ``ru_maxrss`` of a small wrapper's only child);
- the time from the end of the last sender to the collector's exit, its trace written.

    python benchmarks/collect_bench.py [--python 3.11] [--senders 64] [--events 200000]
                                       [--which ours,upstream]

Not a test: it takes minutes and gigabytes (upstream keeps every trace in memory).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

import common

SENDER = r"""
import os, sys, time
from viztracer import VizTracer

endpoint, ready_dir, events = sys.argv[1], sys.argv[2], int(sys.argv[3])

def call():
    pass

tracer = VizTracer(report_endpoint=endpoint, verbose=0, tracer_entries=max(1_000_000, 2 * events))
tracer.start()  # connects to the collector
tracer.stop()
open(os.path.join(ready_dir, f"{os.getpid()}.ready"), "w").close()
while not os.path.exists(os.path.join(ready_dir, "go")):
    time.sleep(0.01)
tracer.start()
for _ in range(events):
    call()
tracer.stop()
tracer.save()
"""

# Runs the collector as its only child, then reports that child's peak RSS (kB) on
# stderr: ru_maxrss of RUSAGE_CHILDREN is the largest of the children waited for.
WRAPPER = r"""
import resource, subprocess, sys
code = subprocess.run(sys.argv[1:]).returncode
print(f"MAXRSS {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}", file=sys.stderr)
sys.exit(code)
"""


def measure(venv: str, senders: int, events: int, ours: bool) -> Dict[str, float]:
    python = os.path.join(venv, "bin", "python")
    viztracer = os.path.join(venv, "bin", "viztracer")
    work = tempfile.mkdtemp(prefix="collect_bench_")
    try:
        ready = os.path.join(work, "ready")
        os.mkdir(ready)
        sender = os.path.join(work, "sender.py")
        with open(sender, "w") as f:
            f.write(SENDER)
        output = os.path.join(work, "out.json")
        cmd = [viztracer, "--report_server", "-o", output, "--quiet"]
        if ours:
            cmd += ["--senders", str(senders), "--report_timeout", "120"]
        collector = subprocess.Popen([python, "-c", WRAPPER, *cmd], cwd=work, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert collector.stdout is not None
        endpoint = collector.stdout.readline().split()[-1]
        procs: List[subprocess.Popen] = [
            subprocess.Popen([python, sender, endpoint, ready, str(events)], cwd=work, stdout=subprocess.DEVNULL)
            for _ in range(senders)]
        while len(os.listdir(ready)) < senders:
            time.sleep(0.05)
        open(os.path.join(ready, "go"), "w").close()
        go = time.monotonic()
        ends = []
        for p in procs:
            p.wait()
            ends.append(time.monotonic())
        last = max(ends)
        _, err = collector.communicate()
        done = time.monotonic()
        if collector.returncode != 0:
            raise RuntimeError(f"the collector failed: {err}")
        rss = int(err.split("MAXRSS")[-1].split()[0])
        return {"senders_s": last - go, "write_s": done - last, "maxrss_mb": rss / 1024,
                "output_mb": os.path.getsize(output) / 1e6, "calls": _calls(output)}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _calls(path: str) -> int:
    """The recorded calls of ``call`` in a trace file (checks that every event arrived)."""
    needle = b'"name":"call ('
    count = 0
    tail = b""
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            data = (tail + chunk).replace(b'"name": "call (', needle)  # (upstream writes ", " and ": ")
            count += data.count(needle)
            tail = data[-32:]
            count -= tail.count(needle)
    return count + tail.count(needle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default="3.11")
    parser.add_argument("--senders", type=int, default=64)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--which", default="ours,upstream")
    args = parser.parse_args()
    print(f"{args.senders} senders x {args.events} calls each, Python {args.python}")
    print(f"{'collector':<28}{'senders (s)':>12}{'last end -> written (s)':>25}{'peak RSS (MB)':>15}"
          f"{'output (MB)':>13}{'calls in it':>13}")
    for which in args.which.split(","):
        if which == "ours":
            venv, name = common.ours_venv(args.python), "viztracer (this)"
        else:
            venv = common.upstream_head_venv(args.python)
            with open(os.path.join(venv, "upstream-source")) as f:
                name = f"upstream {f.readline().strip()}"
        r = measure(venv, args.senders, args.events, which == "ours")
        print(f"{name:<28}{r['senders_s']:>12.1f}{r['write_s']:>25.1f}{r['maxrss_mb']:>15.0f}"
              f"{r['output_mb']:>13.0f}{r['calls']:>13}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
