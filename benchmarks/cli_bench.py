"""Whole-process cost of the ``viztracer`` command line, side by side with upstream
VizTracer 1.1.1's.

    python benchmarks/cli_bench.py [--pythons 3.11 3.12] [--runs 5]

For each Python version it times, as separate processes pinned to one CPU without
address randomisation (``setarch -R taskset -c N`` when available):

* ``python prog.py``                                  (the program untraced)
* ``viztracer --quiet -o out.json prog.py``           (ours, ``.venv/<ver>``)
* the same with upstream's CLI                         (``.bench/upstream-<ver>``)
* ``viztracer --quiet -c pass``, both                  (startup + exit: the floor)

on two programs: ``fib(30)`` (2.7 M Python calls) and an object-heavy one (classes,
``__init__``, properties, methods, dict/list builtins). The runs alternate between
the implementations and the median is reported. To say where our time goes, one
more process per program runs the same steps as the CLI through the API and times
them: import, tracing, saving.

The target is ours <= 1/8 of upstream's whole-process time. Results go to stdout
(Markdown) and to ``benchmarks/results/cli-python<ver>.json``; the exit status is 1
if the target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

from common import ROOT, ours_venv, pinned, upstream_venv

TARGET = 1 / 8

PROGRAMS = {
    "fib30": """
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)
fib(30)
""",
    "objects": """
class Vec:
    __slots__ = ("x", "y")
    def __init__(self, x, y):
        self.x = x
        self.y = y
    def __add__(self, other):
        return Vec(self.x + other.x, self.y + other.y)
    @property
    def norm2(self):
        return self.x * self.x + self.y * self.y

class Particle:
    def __init__(self, i):
        self.pos = Vec(i, -i)
        self.vel = Vec(1, 2)
        self.tags = {"id": i, "kind": "p" if i % 2 else "q"}
    def step(self):
        self.pos = self.pos + self.vel
        self.tags["last"] = self.pos.norm2
        return len(self.tags)

def run():
    parts = [Particle(i) for i in range(20000)]
    total = 0
    for _ in range(12):
        for p in parts:
            total += p.step()
    names = sorted(str(p.tags["id"]) for p in parts)
    return total, len(names), max(p.pos.norm2 for p in parts)
run()
""",
}

# Runs the CLI's steps through the API, timing each (ours only).
PHASES = r"""
import json, sys, time
t0 = time.perf_counter()
from viztracer.cli.arguments import build_parser, tracer_kwargs
from viztracer import VizTracer
t1 = time.perf_counter()
ns = build_parser().parse_args(["--quiet"])
tracer = VizTracer(**tracer_kwargs(ns, sys.argv[2]))
code = compile(open(sys.argv[1]).read(), sys.argv[1], "exec")
t2 = time.perf_counter()
tracer.start()
exec(code, {"__name__": "__main__"})
tracer.stop(stop_option="flush_as_finish")
t3 = time.perf_counter()
tracer.save()
t4 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "setup_s": t2 - t1, "trace_s": t3 - t2, "save_s": t4 - t3}))
"""


def environment() -> Dict[str, str]:
    # Same environment for every run; .pyc files may be written and used (as they are
    # for any installed package), output is buffered as usual.
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "VIZTRACER_COLLECT")}
    return env


def timed(cmd: List[str], cwd: str) -> float:
    start = time.perf_counter()
    r = subprocess.run(pinned() + cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=environment(), timeout=900)
    elapsed = time.perf_counter() - start
    if r.returncode != 0:
        raise RuntimeError(f"{cmd} failed ({r.returncode}):\n{r.stderr.decode(errors='replace')}")
    return elapsed


def bench_version(version: str, runs: int) -> dict:
    ours_dir, up_venv = ours_venv(version), upstream_venv(version)
    python = os.path.join(ours_dir, "bin", "python")
    cmds = {
        "python": lambda prog, out: [python, prog],
        "ours": lambda prog, out: [os.path.join(ours_dir, "bin", "viztracer"), "--quiet", "-o", out, prog],
        "upstream": lambda prog, out: [os.path.join(up_venv, "bin", "viztracer"), "--quiet", "-o", out, prog],
    }
    report: dict = {"python": version, "runs": runs, "programs": {}, "startup": {}}
    with tempfile.TemporaryDirectory() as tmp:
        empty = os.path.join(tmp, "empty.py")
        with open(empty, "w") as f:
            f.write("pass\n")
        # Warm-up: write the .pyc files of both installations.
        for name in ("ours", "upstream"):
            timed(cmds[name](empty, os.path.join(tmp, "w.json")), tmp)
        times: Dict[str, List[float]] = {"ours": [], "upstream": [], "python": []}
        for _ in range(runs):
            for name in times:
                times[name].append(timed(cmds[name](empty, os.path.join(tmp, f"{name}.json")), tmp))
        report["startup"] = {k: statistics.median(v) for k, v in times.items()}

        for prog_name, source in PROGRAMS.items():
            prog = os.path.join(tmp, f"{prog_name}.py")
            with open(prog, "w") as f:
                f.write(source)
            times = {"python": [], "ours": [], "upstream": []}
            sizes = {}
            for _ in range(runs):
                for name in times:
                    out = os.path.join(tmp, f"{name}.json")
                    times[name].append(timed(cmds[name](prog, out), tmp))
                    if name != "python":
                        sizes[name] = os.path.getsize(out)
            phases = []
            for _ in range(max(1, runs // 2)):
                r = subprocess.run(pinned() + [python, "-c", PHASES, prog, os.path.join(tmp, "phases.json")],
                                   cwd=tmp, capture_output=True, text=True, env=environment(), timeout=900)
                if r.returncode != 0:
                    raise RuntimeError(r.stderr)
                phases.append(json.loads(r.stdout.strip().splitlines()[-1]))
            med = {k: statistics.median(v) for k, v in times.items()}
            report["programs"][prog_name] = {
                "python_s": med["python"], "ours_s": med["ours"], "upstream_s": med["upstream"],
                "ratio": med["ours"] / med["upstream"], "ok": med["ours"] <= TARGET * med["upstream"],
                "ours_runs": times["ours"], "upstream_runs": times["upstream"], "python_runs": times["python"],
                "trace_bytes": sizes,
                "ours_phases": {k: statistics.median(p[k] for p in phases) for k in phases[0]},
            }
    return report


def print_report(r: dict) -> None:
    print(f"\n### Python {r['python']} (median of {r['runs']} processes each)\n")
    s = r["startup"]
    print("| program | python | upstream viztracer | ours | ours / upstream | target <= 0.125 |")
    print("|---|---:|---:|---:|---:|---|")
    print(f"| empty (startup + exit) | {s['python']:.3f} s | {s['upstream']:.3f} s | {s['ours']:.3f} s "
          f"| {s['ours'] / s['upstream']:.3f} | |")
    for name, p in r["programs"].items():
        print(f"| {name} | {p['python_s']:.3f} s | {p['upstream_s']:.3f} s | {p['ours_s']:.3f} s "
              f"| {p['ratio']:.3f} | {'ok' if p['ok'] else 'MISSED'} |")
    print("\nWhere our time goes (the CLI's steps through the API, in one process):\n")
    print("| program | import | set-up | tracing | saving | trace file (ours / upstream) |")
    print("|---|---:|---:|---:|---:|---|")
    for name, p in r["programs"].items():
        ph = p["ours_phases"]
        size = p["trace_bytes"]
        print(f"| {name} | {ph['import_s']:.3f} s | {ph['setup_s']:.3f} s | {ph['trace_s']:.3f} s "
              f"| {ph['save_s']:.3f} s | {size.get('ours', 0) / 1e6:.0f} MB / {size.get('upstream', 0) / 1e6:.0f} MB |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pythons", nargs="+", default=["3.11", "3.12"])
    parser.add_argument("--runs", type=int, default=5, help="processes per measurement (median)")
    args = parser.parse_args()
    os.makedirs(os.path.join(ROOT, "benchmarks", "results"), exist_ok=True)
    ok = True
    for version in args.pythons:
        r = bench_version(version, args.runs)
        print_report(r)
        with open(os.path.join(ROOT, "benchmarks", "results", f"cli-python{version}.json"), "w") as f:
            json.dump(r, f, indent=2)
        ok = ok and all(p["ok"] for p in r["programs"].values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
