"""Side-by-side benchmark of our viztracer against upstream VizTracer 1.1.1.

    python benchmarks/run.py [--pythons 3.11 3.12 3.14] [--runs 5] [--quick]

For each Python version it uses our build in ``.venv/<ver>`` (``make build-<ver>``)
and creates ``.bench/upstream-<ver>`` with ``pip install viztracer==1.1.1`` (the
wheel for that interpreter, else built from the sdist). The versions of the
Makefile's SID_PYTHONS (3.14, 3.15) are measured inside the Debian sid root: this
script runs itself there for them (``tools/debian-root.sh sid run python3.X ...``), so our
build, upstream's virtualenv and every measured process use the root's interpreter.
Every measurement runs in a fresh process (benchmarks/_worker.py), alternating
between the implementations, and the median of the runs is reported:

* tracing cost per call (ns) on five workloads, against the target ratio
  (<= 0.6x upstream on 3.12+, <= 0.8x on 3.11), for our default (every C call
  recorded) and, on 3.12+, with ``fast_calls=True``;
* save of a full 1M-entry buffer: events/s (target: >= 10x upstream's default save()
  and >= 5M events/s), bytes per event, memory per buffered entry, and peak memory
  while saving relative to the memory after tracing (target <= 1.2x).

Results go to stdout as a Markdown table and to benchmarks/results/<python>.json;
with several versions, a summary of the cost ratios of all of them ends the output.
Exit status 1 if a target is missed or a version could not be measured.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

from common import ROOT, in_sid_root, ours_venv, pinned, sid_pythons, upstream_source, upstream_venv

WORKER = os.path.join(ROOT, "benchmarks", "_worker.py")
COST_WORKLOADS = ["recursion", "objects", "ccalls", "threads", "asyncio"]


def run_worker(python: str, *args: str) -> dict:
    # Run from a neutral directory so the source tree's viztracer/ never shadows the
    # interpreter's installed package, with the same environment for both
    # implementations (even the environment's size shifts interpreter speed).
    out = subprocess.run([*pinned(), python, WORKER, *args], capture_output=True, text=True, cwd=tempfile.gettempdir(),
                         timeout=600, env=dict(os.environ))
    if out.returncode != 0:
        raise RuntimeError(f"{python} {args} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def spread(results: list, base_ns: float, median_ns: float) -> float:
    """How far apart the processes of one measurement were: (max - min) of their cost
    over the median cost."""
    costs = [(r["slowdown"] - 1) * base_ns for r in results]
    return (max(costs) - min(costs)) / median_ns if median_ns else float("nan")


def median_of(results: list, key: str) -> float:
    values = [r[key] for r in results if r.get(key) is not None]
    return statistics.median(values) if values else float("nan")


def bench_version(version: str, runs: int, reps: int) -> dict:
    py_ours = os.path.join(ours_venv(version), "bin", "python")
    py_up = os.path.join(upstream_venv(version), "bin", "python")
    target_ratio = 0.6 if tuple(map(int, version.split("."))) >= (3, 12) else 0.8
    report = {"python": version, "cost": {}, "save": {}, "targets": {}, "upstream_source": upstream_source(version)}
    has_fast = tuple(map(int, version.split("."))) >= (3, 12)
    for workload in COST_WORKLOADS:
        a, f, b, z = [], [], [], []
        for _ in range(runs):
            a.append(run_worker(py_ours, "cost", workload, str(reps)))
            if has_fast:
                f.append(run_worker(py_ours, "cost-fast", workload, str(reps)))
            b.append(run_worker(py_up, "cost", workload, str(reps)))
            z.append(run_worker(py_ours, "cost-floor", workload, str(reps)))
        # The speed of this VM drifts between processes, so each process's cost is
        # taken relative to its own untraced time, then turned into ns with the
        # median untraced time of all runs.
        base_ns = statistics.median(r["base_s"] for r in a + f + b + z) / a[0]["calls"] * 1e9
        o = (median_of(a, "slowdown") - 1) * base_ns
        u = (median_of(b, "slowdown") - 1) * base_ns
        floor = (median_of(z, "slowdown") - 1) * base_ns
        entry = {"calls": a[0]["calls"], "base_ns": base_ns, "ours_ns": o, "upstream_ns": u, "ratio": o / u,
                 "floor_ns": floor, "floor_ratio": floor / u,
                 "target_ratio": target_ratio, "ok": o / u <= target_ratio,
                 "spread": {"ours": spread(a, base_ns, o), "upstream": spread(b, base_ns, u),
                            "floor": spread(z, base_ns, floor)}}
        if has_fast:
            fo = (median_of(f, "slowdown") - 1) * base_ns
            entry.update({"fast_ns": fo, "fast_ratio": fo / u, "fast_ok": fo / u <= target_ratio})
            entry["spread"]["fast"] = spread(f, base_ns, fo)
        report["cost"][workload] = entry
        report["python_full"] = a[0]["python"]
    with tempfile.TemporaryDirectory() as tmp:
        a, b = [], []
        for _ in range(max(1, runs // 2)):
            a.append(run_worker(py_ours, "save", "million", tmp))
            b.append(run_worker(py_up, "save", "million", tmp))
    keys = ["events", "save_s", "events_per_s", "bytes_per_event", "trace_mem_bytes_per_entry",
            "rss_after_trace_kb", "peak_saving_kb"]
    report["save"] = {"ours": {k: median_of(a, k) for k in keys}, "upstream": {k: median_of(b, k) for k in keys}}
    so, su = report["save"]["ours"], report["save"]["upstream"]
    speedup = so["events_per_s"] / su["events_per_s"]
    mem_ratio = so["peak_saving_kb"] / so["rss_after_trace_kb"]
    report["targets"] = {
        "cost": all(c["ok"] for c in report["cost"].values()),
        "cost_fast": all(c.get("fast_ok", c["ok"]) for c in report["cost"].values()),
        "save_speedup": speedup, "save_speedup_ok": speedup >= 10,
        "save_rate_ok": so["events_per_s"] >= 5e6,
        "save_peak_ratio": mem_ratio, "save_peak_ok": mem_ratio <= 1.2,
        "entry_bytes_ok": so["trace_mem_bytes_per_entry"] <= 32,
    }
    return report


def print_report(r: dict) -> None:
    sources = {"wheel": "from its wheel for this interpreter", "sdist": "built from its sdist"}
    src = sources.get(r.get("upstream_source"))
    print(f"\n### Python {r['python']}\n")
    print(f"Python {r.get('python_full', r['python'])}" + (f"; upstream 1.1.1 {src}" if src else "") + "\n")
    fast = any("fast_ns" in c for c in r["cost"].values())
    print("| workload | calls | untraced ns/call | upstream ns/call | ours ns/call | ratio |"
          + (" ours fast_calls ns/call | ratio |" if fast else "") + " no-op hooks ns/call | ratio | target |")
    print("|---|---:|---:|---:|---:|---:|" + ("---:|---:|" if fast else "") + "---:|---:|---|")
    for name, c in r["cost"].items():
        mark = "ok" if c["ok"] else "missed"
        row = (f"| {name} | {c['calls']} | {c['base_ns']:.0f} | {c['upstream_ns']:.0f} | {c['ours_ns']:.0f} "
               f"| {c['ratio']:.2f}x |")
        if fast:
            row += f" {c['fast_ns']:.0f} | {c['fast_ratio']:.2f}x |"
            mark = f"exact {mark}, fast_calls {'ok' if c['fast_ok'] else 'missed'}"
        row += f" {c['floor_ns']:.0f} | {c['floor_ratio']:.2f}x |"
        print(row + f" <= {c['target_ratio']}x: {mark} |")
    print("\n(no-op hooks: our hooks registered but doing nothing, i.e. what the interpreter itself "
          "spends delivering the events; no tracer can cost less.)")
    spreads = [v for c in r["cost"].values() for v in c.get("spread", {}).values()]
    if spreads:
        print(f"(spread between the processes of one measurement, (max - min) / median of the cost: "
              f"median {statistics.median(spreads):.0%}, largest {max(spreads):.0%}.)")
    so, su, t = r["save"]["ours"], r["save"]["upstream"], r["targets"]
    print("\n| save of a full 1M buffer | ours | upstream |\n|---|---:|---:|")
    print(f"| events | {so['events']:.0f} | {su['events']:.0f} |")
    print(f"| save time (s) | {so['save_s']:.3f} | {su['save_s']:.3f} |")
    print(f"| events/s | {so['events_per_s'] / 1e6:.2f} M | {su['events_per_s'] / 1e6:.2f} M |")
    print(f"| file bytes/event | {so['bytes_per_event']:.0f} | {su['bytes_per_event']:.0f} |")
    print(f"| memory per buffered entry (bytes) | {so['trace_mem_bytes_per_entry']:.0f} "
          f"| {su['trace_mem_bytes_per_entry']:.0f} |")
    print(f"| RSS after tracing (MB) | {so['rss_after_trace_kb'] / 1024:.0f} | {su['rss_after_trace_kb'] / 1024:.0f} |")
    print(f"| peak RSS while saving (MB) | {so['peak_saving_kb'] / 1024:.0f} | {su['peak_saving_kb'] / 1024:.0f} |")
    print(f"\nsave speed-up {t['save_speedup']:.1f}x (target >= 10x: {'ok' if t['save_speedup_ok'] else 'MISSED'}), "
          f">= 5M events/s: {'ok' if t['save_rate_ok'] else 'MISSED'}, peak while saving / after tracing "
          f"{t['save_peak_ratio']:.2f} (target <= 1.2: {'ok' if t['save_peak_ok'] else 'MISSED'}), "
          f"<= 32 bytes/entry: {'ok' if t['entry_bytes_ok'] else 'MISSED'}")


def bench_in_sid_root(version: str, runs: int, reps: int) -> bool:
    """Runs this script for ``version`` inside the Debian sid root, with the root's
    interpreter, which builds ours and makes upstream's virtualenv there. True if it
    ran (its targets may still be missed: see its report)."""
    result = os.path.join(ROOT, "benchmarks", "results", f"python{version}.json")
    before = os.path.getmtime(result) if os.path.exists(result) else None
    print(f"\n== Python {version}: measured inside the Debian sid root (tools/debian-root.sh sid)", flush=True)
    subprocess.run([os.path.join(ROOT, "tools", "debian-root.sh"), "sid", "run", f"python{version}",
                    "benchmarks/run.py", "--pythons", version, "--runs", str(runs), "--reps", str(reps)])
    sys.stdout.flush()
    if not os.path.exists(result) or os.path.getmtime(result) == before:
        print(f"== Python {version} not measured: the run inside the Debian sid root failed (see above)")
        return False
    return True


def print_summary(reports: list) -> None:
    print("\n### Summary: cost per call relative to upstream 1.1.1\n")
    print("default / fast_calls / no-op hooks; fast_calls is 3.12+ only.\n")
    print("| workload | " + " | ".join(f"Python {r['python']}" for r in reports) + " |")
    print("|---|" + "---:|" * len(reports))
    for workload in COST_WORKLOADS:
        cells = []
        for r in reports:
            c = r["cost"].get(workload)
            if c is None:
                cells.append("")
                continue
            fast = f" / {c['fast_ratio']:.2f}x" if "fast_ratio" in c else ""
            cells.append(f"{c['ratio']:.2f}x{fast} / {c['floor_ratio']:.2f}x")
        print(f"| {workload} | " + " | ".join(cells) + " |")
    print("| target | " + " | ".join(f"<= {next(iter(r['cost'].values()))['target_ratio']}x" for r in reports) + " |")


def targets_ok(r: dict) -> bool:
    return all(v for k, v in r["targets"].items() if k.endswith("ok") or k.startswith("cost"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pythons", nargs="+", default=["3.11", "3.12"])
    parser.add_argument("--runs", type=int, default=5, help="processes per measurement (median)")
    parser.add_argument("--reps", type=int, default=7, help="repetitions inside a process (median)")
    parser.add_argument("--quick", action="store_true", help="2 runs of 3 repetitions")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.reps = 2, 3
    os.makedirs(os.path.join(ROOT, "benchmarks", "results"), exist_ok=True)
    sid = [] if in_sid_root() else sid_pythons()
    ok = True
    reports = []
    for version in args.pythons:
        if version in sid:
            if not bench_in_sid_root(version, args.runs, args.reps):
                ok = False
                continue
            with open(os.path.join(ROOT, "benchmarks", "results", f"python{version}.json")) as f:
                r = json.load(f)
        else:
            r = bench_version(version, args.runs, args.reps)
            print_report(r)
            with open(os.path.join(ROOT, "benchmarks", "results", f"python{version}.json"), "w") as f:
                json.dump(r, f, indent=2)
        reports.append(r)
        ok = ok and targets_ok(r)
    if len(reports) > 1:
        print_summary(reports)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
