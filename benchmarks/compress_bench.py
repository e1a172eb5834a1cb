"""Size of our .cvf format (``viztracer --compress``) against the trace's JSON, gzip
of the JSON and xz of the JSON, on traces recorded by our tracer.

    python benchmarks/compress_bench.py [--python .venv/3.12/bin/python]

Each program is traced with ``viztracer --quiet`` (so the traces carry file_info, as
real ones do), then compressed in-process with viztracer.compressor; the round trip is
checked to give back the same trace. Prints a Markdown table and writes
``benchmarks/results/compress.json``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import lzma
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROGRAMS = {
    "fib(30), full 1M buffer": ([], """
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)
fib(30)
"""),
    "objects, full 1M buffer": ([], """
class Vec:
    def __init__(self, x, y):
        self.x, self.y = x, y
    def __add__(self, o):
        return Vec(self.x + o.x, self.y + o.y)
parts = [Vec(i, i) for i in range(30000)]
for _ in range(20):
    parts = [p + Vec(1, 1) for p in parts]
    sorted(str(p.x) for p in parts[:1000])
"""),
    "args and return values (50k calls)": (["--log_func_args", "--log_func_retval"], """
def area(w, h, *, unit="m"):
    return f"{w * h}{unit}"
for i in range(25000):
    area(i, i % 7, unit="cm")
"""),
    "4 threads, instants and counters": ([], """
import threading
from viztracer import get_tracer
def work(k):
    t = get_tracer()
    for i in range(20000):
        if i % 100 == 0:
            t.add_instant("checkpoint", {"i": i, "k": k})
            t.add_counter("progress", {"done": i})
        abs(i - k)
threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
for t in threads: t.start()
for t in threads: t.join()
"""),
    "small script (fib(10))": ([], """
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)
fib(10)
"""),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", default=os.path.join(ROOT, ".venv", "3.12", "bin", "python"))
    args = parser.parse_args()
    viztracer = os.path.join(os.path.dirname(args.python), "viztracer")
    sys.path.insert(0, ROOT)
    from viztracer import compressor

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (flags, source) in PROGRAMS.items():
            prog = os.path.join(tmp, "prog.py")
            with open(prog, "w") as f:
                f.write(source)
            out = os.path.join(tmp, "trace.json")
            subprocess.run([viztracer, "--quiet", *flags, "-o", out, prog], cwd=tmp, check=True)
            with open(out, "rb") as f:
                raw = f.read()
            trace = json.loads(raw)
            t0 = time.perf_counter()
            cvf = compressor.compress(trace)
            t1 = time.perf_counter()
            back = compressor.decompress(cvf)
            t2 = time.perf_counter()
            assert back == trace, f"round trip differs for {name}"
            gz6, gz9 = len(gzip.compress(raw, 6)), len(gzip.compress(raw, 9))
            xz = len(lzma.compress(raw, preset=6))
            rows.append({"trace": name, "events": len(trace["traceEvents"]), "json": len(raw), "gzip6": gz6,
                         "gzip9": gz9, "xz6": xz, "cvf": len(cvf), "compress_s": t1 - t0,
                         "decompress_s": t2 - t1})
    print("| trace | events | JSON | gzip -6 | gzip -9 | xz -6 | .cvf | JSON / cvf | gzip -9 / cvf "
          "| compress | decompress |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['trace']} | {r['events']} | {r['json'] / 1e6:.2f} MB | {r['gzip6'] / 1e3:.0f} kB "
              f"| {r['gzip9'] / 1e3:.0f} kB | {r['xz6'] / 1e3:.0f} kB | {r['cvf'] / 1e3:.1f} kB "
              f"| {r['json'] / r['cvf']:.0f}x | {r['gzip9'] / r['cvf']:.1f}x | {r['compress_s']:.2f} s "
              f"| {r['decompress_s']:.2f} s |")
    os.makedirs(os.path.join(ROOT, "benchmarks", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "benchmarks", "results", "compress.json"), "w") as f:
        json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
