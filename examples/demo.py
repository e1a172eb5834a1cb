"""A small program traced with viztracer, and a report of what it recorded.

Run it with ``make demo`` (which builds the extension first) or, once viztracer is
installed, ``python examples/demo.py``. It writes ``examples/result.json`` and prints
the functions that took the most time, read back from the trace file.
"""

import json
import math
import os
import sys
import threading
from collections import defaultdict

from viztracer import VizTracer

HERE = os.path.dirname(os.path.abspath(__file__))
OUTPUT = os.path.join(HERE, "result.json")


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


class Particle:
    def __init__(self, x, y):
        self.x = x
        self.y = y

    def step(self, dt):
        self.x += math.cos(self.y) * dt
        self.y += math.sin(self.x) * dt


def simulate(count, steps):
    particles = [Particle(i, i / 2) for i in range(count)]
    for _ in range(steps):
        for p in particles:
            p.step(0.01)
    return sum(p.x for p in particles)


def worker(n):
    return sorted(str(fib(k)) for k in range(n))


def main():
    tracer = VizTracer(output_file=OUTPUT, log_func_args=False, verbose=1)
    with tracer:
        tracer.add_instant("start", {"program": "demo"})
        threads = [threading.Thread(target=worker, args=(14,), name=f"worker-{i}") for i in range(2)]
        for t in threads:
            t.start()
        fib(16)
        with tracer.log_event("simulate"):
            total = simulate(200, 20)
        tracer.add_counter("result", {"total": total})
        for t in threads:
            t.join()
    report(OUTPUT)


def report(path):
    with open(path, encoding="utf-8") as f:
        trace = json.load(f)
    events = [e for e in trace["traceEvents"] if e.get("ph") == "X"]
    threads = {e["args"]["name"] for e in trace["traceEvents"] if e.get("name") == "thread_name"}
    total = defaultdict(float)
    count = defaultdict(int)
    for e in events:
        total[e["name"]] += e["dur"]
        count[e["name"]] += 1
    print(f"\n{len(events)} function events on {len(threads)} threads ({', '.join(sorted(threads))})")
    print(f"{'function':<60} {'calls':>8} {'total ms':>10}")
    for name, t in sorted(total.items(), key=lambda kv: -kv[1])[:10]:
        print(f"{name[:60]:<60} {count[name]:>8} {t / 1000:>10.2f}")
    print(f"\nOpen the timeline with: vizviewer {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
