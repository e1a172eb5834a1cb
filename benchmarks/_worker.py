"""One benchmark measurement, run inside the interpreter under test.

Usage: python _worker.py <mode> <workload> [args]
Prints one JSON object. Works with our viztracer and with upstream VizTracer 1.1.1
(same API), so benchmarks/run.py can run it side by side in two virtualenvs.
"""

import asyncio
import gc
import json
import math
import os
import statistics
import sys
import threading
import time

# ----------------------------------------------------------------------- workloads

def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def w_recursion():
    fib(21)


class Vec:
    __slots__ = ("x", "y")

    def __init__(self, x, y):
        self.x = x
        self.y = y

    def add(self, other):
        return Vec(self.x + other.x, self.y + other.y)

    @property
    def norm2(self):
        return self.x * self.x + self.y * self.y


class Body:
    def __init__(self, i):
        self.pos = Vec(i, i * 2)
        self.vel = Vec(1, -1)

    def step(self):
        self.pos = self.pos.add(self.vel)
        return self.pos.norm2


def w_objects():
    bodies = [Body(i) for i in range(300)]
    total = 0
    for _ in range(30):
        for b in bodies:
            total += b.step()
    return total


def w_ccalls():
    out = []
    s = 0.0
    for i in range(12000):
        out.append(i)
        s += math.sqrt(len(out))
        str(i).zfill(5)
        abs(-i)
    return s


def w_threads():
    threads = [threading.Thread(target=fib, args=(19,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


async def _leaf(i):
    await asyncio.sleep(0)
    return fib(6) + i


async def _main():
    for _ in range(3):
        await asyncio.gather(*(_leaf(i) for i in range(300)))


def w_asyncio():
    asyncio.run(_main())


def w_million():
    fib(28)  # ~1.3M calls: fills the default 1M-entry buffer


WORKLOADS = {
    "recursion": w_recursion,
    "objects": w_objects,
    "ccalls": w_ccalls,
    "threads": w_threads,
    "asyncio": w_asyncio,
    "million": w_million,
}


# ----------------------------------------------------------------------- helpers

def count_calls(func):
    """Python and C calls made by ``func`` (the unit of 'per traced call')."""
    n = [0]

    def prof(frame, event, arg):
        if event in ("call", "c_call"):
            n[0] += 1

    threading.setprofile(prof)
    sys.setprofile(prof)
    try:
        func()
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    return n[0]


def rss_kb(field="VmRSS"):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def timed(func):
    gc.collect()
    t = time.perf_counter()
    func()
    return time.perf_counter() - t


# ----------------------------------------------------------------------- modes

def mode_cost(workload, reps, variant="exact"):
    """Tracing cost per call: the traced time over the untraced time, and the calls.

    Untraced and traced runs alternate, and the median of the pairwise ratios is
    kept, so a drift of the machine's speed cancels out. Before measuring, the tracer
    is started and stopped once and leftover profile hooks are removed: upstream
    VizTracer installs its hook when it is constructed (and leaves the one for new
    threads after stop()), which would slow the untraced runs down and flatter it.
    ``variant`` is "exact" (defaults), "fast" (fast_calls=True) or "floor" (hooks
    that do nothing: what the interpreter itself spends delivering the events).
    """
    from viztracer import VizTracer
    func = WORKLOADS[workload]
    func()  # warm up imports and caches
    calls = count_calls(func)
    tracer = VizTracer(verbose=0, tracer_entries=1_000_000, **({"fast_calls": True} if variant == "fast" else {}))
    if variant == "floor":
        tracer._tracer._noop_hooks = True
    tracer.start()
    tracer.stop()
    tracer.clear()
    sys.setprofile(None)
    func()
    base, traced = [], []
    for _ in range(reps):
        # Upstream keeps its hook for new threads installed between sessions (it
        # only installs it when constructed): take it away for the untraced run only.
        thread_hook = getattr(threading, "_profile_hook", None)
        threading.setprofile(None)
        base.append(timed(func))
        threading.setprofile(thread_hook)
        tracer.start()
        traced.append(timed(func))
        tracer.stop()
        tracer.clear()
    b, t = statistics.median(base), statistics.median(traced)
    slowdown = statistics.median(tr / ba for tr, ba in zip(traced, base))
    return {"calls": calls, "base_s": b, "traced_s": t, "slowdown": slowdown, "ns_per_call": (t - b) / calls * 1e9}


def mode_save(workload, out_dir):
    """Save throughput, file size and memory around a save of a full buffer."""
    from viztracer import VizTracer
    func = WORKLOADS[workload]
    func()
    gc.collect()
    rss_before = rss_kb()
    can_reset = reset_peak()
    tracer = VizTracer(verbose=0, tracer_entries=1_000_000, output_file=os.path.join(out_dir, "bench.json"))
    tracer.start()
    func()
    tracer.stop()
    gc.collect()
    peak_tracing = rss_kb("VmHWM")
    rss_after = rss_kb()
    reset_peak()
    t = time.perf_counter()
    tracer.save()
    save_s = time.perf_counter() - t
    peak_saving = rss_kb("VmHWM")
    path = tracer.output_file
    size = os.path.getsize(path)
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    events = sum(1 for e in data["traceEvents"] if e.get("ph") != "M")
    os.unlink(path)
    return {
        "events": events,
        "save_s": save_s,
        "events_per_s": events / save_s,
        "bytes_per_event": size / events,
        "rss_before_kb": rss_before,
        "rss_after_trace_kb": rss_after,
        "peak_tracing_kb": peak_tracing if can_reset else None,
        "peak_saving_kb": peak_saving if can_reset else None,
        "trace_mem_bytes_per_entry": (rss_after - rss_before) * 1024 / max(events, 1),
    }


def main():
    mode, workload = sys.argv[1], sys.argv[2]
    if mode == "cost":
        result = mode_cost(workload, int(sys.argv[3]))
    elif mode == "cost-fast":
        result = mode_cost(workload, int(sys.argv[3]), "fast")
    elif mode == "cost-floor":
        result = mode_cost(workload, int(sys.argv[3]), "floor")
    elif mode == "save":
        result = mode_save(workload, sys.argv[3])
    else:
        raise SystemExit(f"unknown mode {mode}")
    import viztracer
    result["impl"] = "ours" if hasattr(viztracer, "_snaptrace") or "viztracer._snaptrace" in sys.modules else "upstream"
    result["python"] = ".".join(map(str, sys.version_info[:3]))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
