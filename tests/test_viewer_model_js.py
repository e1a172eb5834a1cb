"""The viewer's trace model (viztracer/web/model.js) under node: the fast byte loader
must read exactly what JSON.parse reads, on traces with awkward JSON."""

import json
import os
import shutil
import subprocess

import pytest

from viztracer import VizTracer

MODEL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "viztracer", "web", "model.js")
NODE = shutil.which("node")

COMPARE = r"""
const M = require(process.argv[1]);
const fs = require("fs");
const out = [];
for (const path of process.argv.slice(2)) {
  const bytes = new Uint8Array(fs.readFileSync(path));
  const fast = M.buildFromBytes(bytes);
  const slow = M.build(JSON.parse(new TextDecoder("utf-8").decode(bytes)));  // as the page does
  const dump = (m) => ({
    counts: m.counts, slices: m.sliceCount, t0: m.t0, span: m.span, names: m.names.slice().sort(),
    fileInfo: m.fileInfo, metadata: m.metadata, unmatched: m.unmatchedEnd, unfinished: m.unfinished,
    procs: m.processes.map(p => ({pid: p.pid, name: p.name, instants: Array.from(p.instants.ts),
      counters: p.counters.map(c => [c.name, Array.from(c.ts), Array.from(c.v)]),
      threads: p.threads.map(t => ({tid: t.tid, name: t.name, st: Array.from(t.st), du: Array.from(t.du),
        nm: Array.from(t.nm).map(i => m.names[i]), depth: Array.from(t.depth), self: Array.from(t.self),
        inst: Array.from(t.instants.ts)}))})),
    global: Array.from(m.globalInstants.ts),
    first: m.eventAt(0), last: m.eventAt(m.eventCount - 1)
  });
  out.push({path, fast: dump(fast), slow: dump(slow)});
}
console.log(JSON.stringify(out));
"""

AWKWARD = {
    "traceEvents": [
        {"ph": "M", "pid": 7, "tid": 7, "name": "process_name", "args": {"name": "P \u00e9\u00e8 \u2603"}},
        {"ph": "M", "pid": 7, "tid": "worker", "name": "thread_name", "args": {"name": "w"}},
        {"ph": "X", "pid": 7, "tid": 7, "ts": 1.5e3, "dur": 2e-1, "name": "esc \"q\" \\ \u00e9 </script>",
         "args": {"a": "}]{["}},
        {"ph": "X", "pid": 7, "tid": 7, "ts": 1500.0000000000002, "dur": 1, "name": "\u0066ib (x.py:1)"},
        {"ph": "X", "pid": 7, "tid": 7, "ts": "1501", "dur": "0.5", "name": "fib (x.py:1)"},
        {"ph": "X", "pid": 7, "tid": "worker", "ts": 1499.25, "dur": 10, "name": 12},
        {"ph": "X", "pid": 7, "tid": 7, "ts": -3, "dur": 0, "name": "negative"},
        {"ph": "X", "pid": 7, "tid": 7, "ts": 12345678901234567, "dur": 1, "name": "big"},
        {"ph": "B", "pid": 7, "tid": 7, "ts": 1600, "name": "open"},
        {"ph": "E", "pid": 7, "tid": 7, "ts": 1610, "args": {"r": 1}},
        {"ph": "E", "pid": 7, "tid": 7, "ts": 1611},
        {"ph": "B", "pid": 7, "tid": 7, "ts": 1620, "name": "never"},
        {"ph": "i", "pid": 7, "tid": 7, "ts": 1601, "name": "t", "s": "t"},
        {"ph": "I", "pid": 7, "tid": 7, "ts": 1602, "name": "p", "s": "p"},
        {"ph": "i", "pid": 7, "tid": 7, "ts": 1603, "name": "g", "s": "g", "args": None},
        {"ph": "C", "pid": 7, "tid": 7, "ts": 1604, "name": "c", "args": {"x": 1, "y": 2.5, "s": "skip"}},
        {"ph": "C", "pid": 7, "tid": 7, "ts": 1605, "name": "c", "id": 3, "args": {"x": 2}},
        {"ph": "N", "pid": 7, "tid": 7, "ts": 1606, "name": "obj", "id": "0x1"},
        {"ph": "Xy", "pid": 7, "tid": 7, "ts": 1607, "name": "odd phase"},
        [1, 2, 3],
        "not an event",
        {},
    ],
    "viztracer_metadata": {"overflow": True, "version": "x"},
    "file_info": {"files": {"x.py": ["def fib(n):\n    pass\n", 2]}, "functions": {"fib (x.py:1)": ["x.py", 1]}},
}


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_fast_loader_matches_json_parse(tmp_path):
    paths = []
    p = tmp_path / "awkward.json"
    p.write_text(json.dumps(AWKWARD))
    paths.append(p)
    p = tmp_path / "awkward_pretty.json"
    p.write_text("\ufeff" + json.dumps(AWKWARD, indent=2, ensure_ascii=False), encoding="utf-8")
    paths.append(p)
    p = tmp_path / "bare.json"
    p.write_text(json.dumps(AWKWARD["traceEvents"][:8]))
    paths.append(p)
    p = tmp_path / "real.json"

    def fib(n):
        return n if n < 2 else fib(n - 1) + fib(n - 2)
    with VizTracer(output_file=str(p), verbose=0, log_func_args=True, log_func_retval=True) as t:
        fib(6)
        t.add_instant("i", {"k": [1, {"z": "]"}]})
        t.add_counter("c", {"v": 1})
    paths.append(p)

    res = subprocess.run([NODE, "-e", COMPARE, MODEL, *map(str, paths)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    for item in json.loads(res.stdout):
        assert item["fast"] == item["slow"], item["path"]
    awkward = json.loads(res.stdout)[0]["fast"]
    assert awkward["counts"] == {"X": 6, "B": 2, "E": 2, "i": 3, "C": 2, "M": 2, "N": 1, "Xy": 1}
    assert awkward["unmatched"] == 1 and awkward["unfinished"] == 1
    assert "esc \"q\" \\ \u00e9 </script>" in awkward["names"]
    # "\u0066ib" and "fib" are the same function
    assert awkward["names"].count("fib (x.py:1)") == 1
    assert awkward["metadata"] == {"overflow": True, "version": "x"}


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_fast_loader_rejects_broken_json(tmp_path):
    script = ("const M = require(process.argv[1]);"
              "for (const t of ['{\"traceEvents\": [{\"ph\": \"X\", ', '[1, 2', '{\"a\": 1} x', 'nul']) {"
              "  try { M.buildFromBytes(new TextEncoder().encode(t)); console.log('accepted ' + t); }"
              "  catch (e) { console.log('rejected'); } }")
    res = subprocess.run([NODE, "-e", script, MODEL], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["rejected"] * 4
