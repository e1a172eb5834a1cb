"""How fast the vizviewer page opens and redraws a 1M-event trace in headless Chromium.

    python benchmarks/viewer_bench.py                 # 1M events, 3 runs
    python benchmarks/viewer_bench.py --events 200000 --runs 1
    python benchmarks/viewer_bench.py --trace my.json # an existing trace

It traces a synthetic program with our tracer (the default buffer of 1M entries,
filled), serves the file with vizviewer on a free port, opens it in Debian's
Chromium (/usr/bin/chromium, driven by Playwright) and reports:

* first frame: milliseconds from the start of navigation to the end of the first
  drawing of the timeline (the page's own clock), and the same once the canvas has
  been rasterised (a 1-pixel read forces that);
* pan/zoom frames: for each W/S/A/D key press sent to the page, the time the page
  spends drawing the next frame, plus rasterising it (median, 95th percentile, max).

Needs: pip install playwright; apt-get install chromium.
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

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

CHROMIUM = os.environ.get("VIZVIEWER_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# A program with a realistic shape: a few levels of Python calls, C calls at the
# leaves, and names as long as those of an installed package.
WORKLOAD = '''
import math

class Particle:
    def __init__(self, x):
        self.x = x
        self.trail = []

    def step(self, dt):
        self.x += math.sin(self.x) * dt
        self.trail.append(self.x)
        if len(self.trail) > 8:
            self.trail.pop(0)

def simulate(particles, steps):
    for _ in range(steps):
        for p in particles:
            p.step(0.01)

def run(n_events):
    # each step() makes 1 Python + 3 or 4 C events
    particles = [Particle(i) for i in range(50)]
    simulate(particles, n_events // (50 * 5) + 1)
'''


def make_trace(path: str, events: int) -> int:
    """Traces WORKLOAD into ``path``; returns the number of events saved."""
    pkg = tempfile.mkdtemp(prefix="viztracer-bench-")
    mod_dir = os.path.join(pkg, "site-packages", "particles_simulation", "engine")
    os.makedirs(mod_dir)
    with open(os.path.join(mod_dir, "physics_model.py"), "w") as f:
        f.write(WORKLOAD)
    code = (
        "import sys; sys.path.insert(0, %r)\n"
        "import physics_model\n"
        "from viztracer import VizTracer\n"
        "t = VizTracer(output_file=%r, verbose=0, tracer_entries=%d)\n"
        "t.start(); physics_model.run(%d); t.stop(); t.save()\n"
    ) % (mod_dir, path, events, int(events * 1.1))
    subprocess.run([sys.executable, "-c", code], check=True)
    with open(path, "rb") as f:
        data = f.read()
    return data.count(b'"ph":"X"')


STEP_JS = """
async (keys) => {
  const canvas = document.getElementById("canvas");
  const ctx = canvas.getContext("2d");
  const out = [];
  for (const key of keys) {
    const before = window.vizviewer.frames;
    window.dispatchEvent(new KeyboardEvent("keydown", {key: key, bubbles: true}));
    await new Promise(r => requestAnimationFrame(() => r()));
    if (window.vizviewer.frames === before) { await new Promise(r => requestAnimationFrame(() => r())); }
    const t1 = performance.now();
    ctx.getImageData(0, 0, 1, 1);
    const raster = performance.now() - t1;
    out.push({key: key, draw: window.vizviewer.lastFrameMs, raster: raster});
  }
  return out;
}
"""


def measure(trace: str, width: int, height: int) -> dict:
    from playwright.sync_api import sync_playwright

    # The server runs in its own process, as `vizviewer` does.
    server = subprocess.Popen([sys.executable, "-m", "viztracer.viewer", "-s", "-p", "0", trace],
                              stdout=subprocess.PIPE, text=True, cwd=os.path.dirname(HERE))
    try:
        url = None
        while url is None:
            line = server.stdout.readline()
            if not line:
                raise RuntimeError("vizviewer exited early")
            if "view your trace on" in line:
                url = line.split("view your trace on", 1)[1].strip()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": width, "height": height})
            errors: list = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            t0 = time.perf_counter()
            page.goto(url)
            page.wait_for_function("window.vizviewer && (window.vizviewer.ready || window.vizviewer.error)",
                                   timeout=120000, polling=20)
            wall = (time.perf_counter() - t0) * 1000
            err = page.evaluate("window.vizviewer.error")
            if err or errors:
                raise RuntimeError(f"the page failed: {err or errors}")
            painted = page.evaluate("() => { document.getElementById('canvas').getContext('2d')"
                                    ".getImageData(0, 0, 1, 1); return performance.now(); }")
            timings = page.evaluate("window.vizviewer.timings")
            counts = page.evaluate("window.vizviewer.counts")
            page.mouse.move(width * 0.6, 200)
            keys = ["w"] * 12 + ["d"] * 6 + ["s"] * 6 + ["a"] * 6 + ["w"] * 10 + ["d"] * 4 + ["s"] * 16 + ["f"]
            steps = page.evaluate(STEP_JS, keys)
            browser.close()
    finally:
        server.terminate()
        server.wait()
    frames = [s["draw"] + s["raster"] for s in steps]
    frames_sorted = sorted(frames)
    return {
        "slices": counts["slices"],
        "first_frame_ms": timings["firstFrame"],
        "first_frame_painted_ms": painted,
        "fetched_ms": timings.get("fetched"),
        "built_ms": timings.get("built"),
        "wall_ready_ms": wall,
        "frame_median_ms": statistics.median(frames),
        "frame_p95_ms": frames_sorted[int(len(frames_sorted) * 0.95) - 1],
        "frame_max_ms": max(frames),
        "draw_median_ms": statistics.median(s["draw"] for s in steps),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--trace", help="measure this trace instead of making one")
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    if not os.path.exists(CHROMIUM):
        print(f"{CHROMIUM} not found: apt-get install chromium", file=sys.stderr)
        return 1
    tmp = tempfile.mkdtemp(prefix="viewer-bench-")
    trace = args.trace
    if trace is None:
        trace = os.path.join(tmp, "bench.json")
        t = time.perf_counter()
        n = make_trace(trace, args.events)
        print(f"traced {n} function events into {trace} "
              f"({os.path.getsize(trace) / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s")
    results = []
    for run in range(args.runs):
        r = measure(trace, args.width, args.height)
        results.append(r)
        print(f"run {run + 1}: {r['slices']} slices, first frame {r['first_frame_ms']:.0f} ms "
              f"(painted {r['first_frame_painted_ms']:.0f} ms; trace fetched at {r['fetched_ms']:.0f} ms, "
              f"model built at {r['built_ms']:.0f} ms), pan/zoom frame median {r['frame_median_ms']:.1f} ms, "
              f"p95 {r['frame_p95_ms']:.1f} ms, max {r['frame_max_ms']:.1f} ms")
    best = {k: statistics.median(r[k] for r in results) for k in results[0] if k != "slices"}
    best["slices"] = results[0]["slices"]
    best["trace_mb"] = round(os.path.getsize(trace) / 1e6, 1)
    print("median of runs: " + json.dumps({k: round(v, 1) for k, v in best.items()}))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": results, "median": best}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
