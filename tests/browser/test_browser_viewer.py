"""The viewer page in headless Chromium, on traces made by our own tracer."""

import collections
import importlib.util
import json
import os
import re
import sys
import time

import pytest

from viztracer import VizTracer

PROGRAM = '''\
import threading


def inner(k):
    total = 0
    for i in range(3000):
        total += i * k
    return total


def outer(n):
    acc = 0
    for k in range(n):
        acc += inner(k)
        j = 0
        while j < 40000:
            j += 1
    return acc


def worker():
    return outer(2)


def main(tracer):
    tracer.add_instant("begin", {"phase": "start"}, scope="g")
    t = threading.Thread(target=worker, name="worker-1")
    t.start()
    outer(3)
    for i in range(3):
        tracer.add_counter("progress", {"done": i, "left": 3 - i})
    tracer.add_instant("checkpoint", {"ok": True}, scope="t")
    t.join()
'''

# track backgrounds, also where a faint grid line crosses them
BACKGROUNDS = {(255, 255, 255), (246, 247, 249), (240, 240, 240), (231, 232, 234)}


def load_program(tmp_path):
    path = tmp_path / "sample_prog.py"
    path.write_text(PROGRAM)
    spec = importlib.util.spec_from_file_location("sample_prog", str(path))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod, str(path)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    d = tmp_path_factory.mktemp("sample")
    mod, prog = load_program(d)
    tracer = VizTracer(verbose=0, log_func_args=True, log_func_retval=True)
    tracer.start()
    mod.main(tracer)
    tracer.stop()
    out = str(d / "sample.json")
    tracer.save(out)
    tracer.save(str(d / "sample.html"))
    tracer.save(str(d / "sample.json.gz"))
    with open(out) as f:
        trace = json.load(f)
    return {"json": out, "html": str(d / "sample.html"), "gz": str(d / "sample.json.gz"),
            "trace": trace, "program": prog, "dir": d}


def name_of(trace, prefix):
    names = {e["name"] for e in trace["traceEvents"] if e.get("ph") == "X" and e["name"].startswith(prefix + " (")}
    assert len(names) == 1, names
    return names.pop()


def x_events(trace, name):
    return sorted((e for e in trace["traceEvents"] if e.get("ph") == "X" and e["name"] == name), key=lambda e: e["ts"])


def canvas_pixel(page, x, y):
    """The canvas colour at page coordinates (x, y)."""
    return tuple(page.evaluate(
        """([x, y]) => {
            const c = document.getElementById("canvas");
            const r = c.getBoundingClientRect();
            const d = window.devicePixelRatio || 1;
            const px = Math.round((x - r.left) * d), py = Math.round((y - r.top) * d);
            const pixel = c.getContext("2d").getImageData(px, py, 1, 1);
            return Array.from(pixel.data).slice(0, 3);
        }""", [x, y]))


def viewport(page):
    return page.evaluate("window.vizviewer.viewport")


def rect(page, name, **q):
    q["name"] = name
    return page.evaluate("(q) => window.vizviewer.rectOf(q)", q)


def zoom_until_wide(page, name, ts, width=40):
    """Zooms with W around an event until it is at least `width` pixels wide."""
    for _ in range(60):
        r = rect(page, name, ts=ts)
        assert r is not None
        if r["visible"] and r["w"] >= width:
            return r
        page.mouse.move(r["cx"], r["cy"])
        page.keyboard.press("w")
    raise AssertionError(f"could not zoom onto {name}: {r}")


def self_times(trace):
    """count, total and self time per function, computed independently of the page."""
    per_thread = collections.defaultdict(list)
    for e in trace["traceEvents"]:
        if e.get("ph") == "X":
            per_thread[(e["pid"], e["tid"])].append(e)
    stats = collections.defaultdict(lambda: [0, 0.0, 0.0])
    for evs in per_thread.values():
        evs.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack = []
        selfs = {}
        for e in evs:
            while stack and stack[-1]["ts"] + stack[-1]["dur"] <= e["ts"]:
                stack.pop()
            selfs[id(e)] = e["dur"]
            if stack:
                p = stack[-1]
                selfs[id(p)] -= max(0.0, min(e["ts"] + e["dur"], p["ts"] + p["dur"]) - e["ts"])
            stack.append(e)
        for e in evs:
            s = stats[e["name"]]
            s[0] += 1
            s[1] += e["dur"]
            s[2] += max(0.0, selfs[id(e)])
    return stats


# --------------------------------------------------------------------------- loading, tracks, pixels

def test_loads_tracks_counts_and_pixels(watched, open_trace, sample, screenshot_dir):
    page = watched.page
    url = open_trace(sample["json"])
    trace = sample["trace"]

    expected = collections.Counter(e["ph"] for e in trace["traceEvents"])
    counts = page.evaluate("window.vizviewer.counts")
    assert counts["phases"] == dict(expected)
    assert counts["slices"] == expected["X"]

    tracks = page.evaluate("window.vizviewer.tracks")
    kinds = [(t["kind"], t["name"]) for t in tracks]
    pid = os.getpid()
    assert kinds[0] == ("instants", "Global instants")
    assert ("process", f"MainProcess (pid {pid})") in kinds
    threads = [t for t in tracks if t["kind"] == "thread"]
    thread_names = {e["tid"]: e["args"]["name"] for e in trace["traceEvents"]
                    if e.get("ph") == "M" and e["name"] == "thread_name"}
    assert [t["name"] for t in threads][0] == f"MainThread {pid}"  # the main thread first
    assert {t["name"] for t in threads} == {f"{n} {tid}" for tid, n in thread_names.items()}
    counters = {t["name"]: t["samples"] for t in tracks if t["kind"] == "counter"}
    assert counters == {"progress.done": 3, "progress.left": 3}
    main_track = threads[0]
    assert main_track["instants"] == 1  # "checkpoint", scope t
    assert tracks[0]["instants"] == 1   # "begin", scope g
    # tracks are stacked without overlap
    for a, b in zip(tracks, tracks[1:]):
        assert b["top"] >= a["top"] + a["height"] - 0.01

    # pixels: a known event is painted, the gap between two calls is not
    outer = name_of(trace, "outer")
    inner = name_of(trace, "inner")
    main_outer = [e for e in x_events(trace, outer) if e["tid"] == pid][0]
    r = rect(page, outer, ts=main_outer["ts"])
    assert r["visible"] and r["w"] > 20
    assert canvas_pixel(page, r["cx"], r["cy"]) not in BACKGROUNDS
    first, second = [e for e in x_events(trace, inner) if e["tid"] == pid][:2]
    gap_mid = (first["ts"] + first["dur"] + second["ts"]) / 2
    r1 = zoom_until_wide(page, inner, first["ts"], width=3)
    vp = viewport(page)
    x = r1["x"] + (gap_mid - first["ts"]) / (vp["end"] - vp["start"]) * (vp["width"] - vp["labelWidth"])
    assert canvas_pixel(page, x, r1["cy"]) in BACKGROUNDS
    assert canvas_pixel(page, r1["cx"], r1["cy"]) not in BACKGROUNDS
    path = os.path.join(screenshot_dir, "sample_timeline.png")
    page.screenshot(path=path)
    assert os.path.getsize(path) > 10000
    watched.check_clean([url])


def test_click_shows_details_and_source(watched, open_trace, sample):
    page = watched.page
    url = open_trace(sample["json"])
    trace = sample["trace"]
    inner = name_of(trace, "inner")
    ev = [e for e in x_events(trace, inner) if e["tid"] == os.getpid()][1]
    r = zoom_until_wide(page, inner, ev["ts"])
    page.mouse.click(r["cx"], r["cy"])
    sel = page.evaluate("window.vizviewer.selected")
    assert sel["name"] == inner and sel["ts"] == pytest.approx(ev["ts"], rel=1e-12, abs=1e-6)
    info = page.inner_text("#details-info")
    assert inner in info
    assert "Duration" in info and "Self time" in info and "MainThread" in info
    # args and return value, as logged
    assert ev["args"]["func_args"] == {"k": "1"}
    assert re.search(r"k:\s*1", info)
    assert "Return value" in info and ev["args"]["return_value"] in info
    # the source, with the function's line highlighted
    head = page.inner_text("#source-head")
    assert head == f"{sample['program']}:4"
    assert page.inner_text("#source-code .line.hl .ln") == "4"
    assert page.inner_text("#source-code .line.hl .code").rstrip() == "def inner(k):"
    lines = page.locator("#source-code .line").count()
    assert lines == len(PROGRAM.splitlines())
    # a click on nothing clears the selection
    page.mouse.click(1270, 790 - page.evaluate("document.getElementById('panel').offsetHeight") - 20)
    assert page.evaluate("window.vizviewer.selected") is None
    watched.check_clean([url])


def test_source_not_available(watched, open_trace, tmp_path):
    page = watched.page
    t = VizTracer(verbose=0)
    t.start()
    json.dumps({"a": 1})
    t.stop()
    out = str(tmp_path / "nofi.json")
    t.save(out, file_info=False)
    with open(out) as f:
        trace = json.load(f)
    assert "file_info" not in trace or not trace["file_info"].get("files")
    url = open_trace(out)
    ev = max((e for e in trace["traceEvents"] if e.get("ph") == "X"), key=lambda e: e["dur"])
    r = zoom_until_wide(page, ev["name"], ev["ts"], width=20)
    page.mouse.click(r["cx"], r["cy"])
    assert ev["name"] in page.inner_text("#details-info")
    assert "Source not available" in page.inner_text("#source-code")
    watched.check_clean([url])


# --------------------------------------------------------------------------- keys and mouse

def test_keys_and_mouse(watched, open_trace, sample):
    page = watched.page
    url = open_trace(sample["json"])
    full = viewport(page)
    trace = page.evaluate("window.vizviewer.trace")
    assert full["start"] <= trace["start"] and full["end"] >= trace["end"]
    page.mouse.move(700, 300)

    page.keyboard.press("w")
    z1 = viewport(page)
    assert z1["end"] - z1["start"] < (full["end"] - full["start"]) * 0.9
    page.keyboard.press("s")
    z2 = viewport(page)
    assert z2["end"] - z2["start"] > (z1["end"] - z1["start"]) * 1.1
    for _ in range(3):
        page.keyboard.press("w")
    z3 = viewport(page)
    page.keyboard.press("d")
    d = viewport(page)
    assert d["start"] > z3["start"]
    assert abs((d["end"] - d["start"]) - (z3["end"] - z3["start"])) < 1e-6 * (z3["end"] - z3["start"]) + 1e-9
    page.keyboard.press("a")
    page.keyboard.press("a")
    a = viewport(page)
    assert a["start"] < d["start"]

    # ctrl+wheel zooms around the mouse, the plain wheel scrolls the tracks
    before = viewport(page)
    page.keyboard.down("Control")
    page.mouse.wheel(0, -300)
    page.keyboard.up("Control")
    page.wait_for_function("(s) => window.vizviewer.viewport.end - window.vizviewer.viewport.start < s",
                           arg=(before["end"] - before["start"]) * 0.9)

    # dragging pans in time
    before = viewport(page)
    page.mouse.move(800, 200)
    page.mouse.down()
    page.mouse.move(700, 200, steps=5)
    page.mouse.up()
    after = viewport(page)
    assert after["start"] > before["start"]
    # timestamps are ~1e10 µs, so compare widths relative to their size (a double's
    # spacing there is ~2e-6 µs): a pan keeps the width, a zoom would change it a lot
    assert after["end"] - after["start"] == pytest.approx(before["end"] - before["start"], rel=1e-6)

    # f shows the whole trace again
    page.keyboard.press("f")
    assert viewport(page) == full

    # shift+drag selects a range; Esc clears it
    page.keyboard.down("Shift")
    page.mouse.move(400, 200)
    page.mouse.down()
    page.mouse.move(900, 200, steps=4)
    page.mouse.up()
    page.keyboard.up("Shift")
    rng = page.evaluate("window.vizviewer.range")
    assert rng is not None and rng["end"] > rng["start"]
    assert "Range:" in page.inner_text("#range-info")
    page.keyboard.press("Escape")
    assert page.evaluate("window.vizviewer.range") is None

    # double-click zooms to a slice
    outer = name_of(sample["trace"], "outer")
    ev = [e for e in x_events(sample["trace"], outer) if e["tid"] == os.getpid()][0]
    r = rect(page, outer, ts=ev["ts"])
    page.mouse.dblclick(r["cx"], r["cy"])
    vp = viewport(page)
    assert vp["start"] <= ev["ts"] and vp["end"] >= ev["ts"] + ev["dur"]
    assert vp["end"] - vp["start"] < ev["dur"] * 1.5
    watched.check_clean([url])


# --------------------------------------------------------------------------- search and summary

def test_search(watched, open_trace, sample):
    page = watched.page
    url = open_trace(sample["json"])
    trace = sample["trace"]
    inner = name_of(trace, "inner")
    expected = sum(1 for e in trace["traceEvents"] if e.get("ph") == "X" and "inner" in e["name"].lower())
    assert expected == 5
    page.keyboard.press("/")
    page.keyboard.type("INNER")
    page.wait_for_function("window.vizviewer.search.count === 5")
    assert page.inner_text("#search-count") == "5 matches"

    starts = sorted(e["ts"] for e in x_events(trace, inner))
    page.keyboard.press("Enter")
    sel = page.evaluate("window.vizviewer.selected")
    assert sel["name"] == inner
    assert page.inner_text("#search-count") == "1 / 5"
    first = sel["ts"]
    assert first in [pytest.approx(s, rel=1e-12, abs=1e-6) for s in starts]
    vp = viewport(page)
    assert vp["start"] <= first <= vp["end"]
    assert rect(page, inner, ts=first)["visible"]
    page.keyboard.press("Enter")
    second = page.evaluate("window.vizviewer.selected")["ts"]
    assert second > first
    assert page.inner_text("#search-count") == "2 / 5"
    page.keyboard.press("Shift+Enter")
    assert page.evaluate("window.vizviewer.selected")["ts"] == first

    # regex
    page.fill("#search", "^(inner|outer) \\(")
    page.check("#search-regex")
    n_outer = len(x_events(trace, name_of(trace, "outer")))
    page.wait_for_function(f"window.vizviewer.search.count === {5 + n_outer}")
    page.fill("#search", "([")
    page.wait_for_function("window.vizviewer.search.error !== null")
    assert page.inner_text("#search-count") == "bad regex"
    watched.check_clean([url])


def test_summary_table(watched, open_trace, sample):
    page = watched.page
    url = open_trace(sample["json"])
    stats = self_times(sample["trace"])
    page.click("#tabs button[data-tab=summary]")
    rows = page.locator("#summary-table tbody tr")
    assert rows.count() == min(500, len(stats))
    assert "Whole trace" in page.inner_text("#summary-scope")
    for prefix in ("inner", "outer", "worker"):
        name = name_of(sample["trace"], prefix)
        row = page.locator(f'#summary-table tbody tr[data-name="{name}"]')
        values = [float(v) for v in row.locator("td[data-value]").evaluate_all("els => els.map(e => e.dataset.value)")]
        count, total, self_, avg, mx = values
        exp = stats[name]
        assert count == exp[0]
        # (the page derives times from timestamps near 1e10 µs, where a double's
        # spacing is about 2e-6 µs: a few operations differ by a few 1e-6)
        assert total == pytest.approx(exp[1], rel=1e-9, abs=1e-4)
        assert self_ == pytest.approx(exp[2], rel=1e-9, abs=1e-4)
        assert avg == pytest.approx(exp[1] / exp[0], rel=1e-9)
        assert mx == pytest.approx(max(e["dur"] for e in x_events(sample["trace"], name)))

    def column(i):
        return [float(v) for v in page.locator(f"#summary-table tbody tr td:nth-child({i})").evaluate_all(
            "els => els.map(e => e.dataset.value)")]
    totals = column(3)
    assert totals == sorted(totals, reverse=True)  # default: by total time
    page.click("#summary-table th[data-key=count]")
    counts = column(2)
    assert counts == sorted(counts, reverse=True)
    page.click("#summary-table th[data-key=count]")
    counts = column(2)
    assert counts == sorted(counts)
    page.click("#summary-table th[data-key=self]")
    selfs = column(4)
    assert selfs == sorted(selfs, reverse=True)

    # a range covering one outer() call: the table covers only what overlaps it
    outer = name_of(sample["trace"], "outer")
    ev = [e for e in x_events(sample["trace"], outer) if e["tid"] == os.getpid()][0]
    r = rect(page, outer, ts=ev["ts"])
    ruler_y = page.evaluate("document.getElementById('canvas').getBoundingClientRect().top") + 10
    page.mouse.move(r["x"] + 1, ruler_y)
    page.mouse.down()
    page.mouse.move(r["x"] + r["w"] - 1, ruler_y, steps=4)
    page.mouse.up()
    page.wait_for_function("document.getElementById('summary-scope').textContent.startsWith('Selected range')")
    row = page.locator(f'#summary-table tbody tr[data-name="{outer}"]')
    count = float(row.locator("td[data-value]").first.get_attribute("data-value"))
    rng = page.evaluate("window.vizviewer.range")
    assert ev["ts"] < rng["start"] < rng["end"] < ev["ts"] + ev["dur"]
    # this call, and the worker thread's if it ran at the same time
    overlapping = [e for e in x_events(sample["trace"], outer)
                   if e["ts"] < rng["end"] and e["ts"] + e["dur"] > rng["start"]]
    assert count == len(overlapping) >= 1
    total = float(row.locator("td[data-value]").nth(1).get_attribute("data-value"))
    assert total == pytest.approx(sum(min(e["ts"] + e["dur"], rng["end"]) - max(e["ts"], rng["start"])
                                      for e in overlapping), rel=1e-6)
    # clicking a row searches for that function
    row.click()
    page.wait_for_function("window.vizviewer.search.count > 0")
    assert page.input_value("#search") == outer
    watched.check_clean([url])


# --------------------------------------------------------------------------- other inputs

def test_html_report_from_disk(watched, open_trace, sample, screenshot_dir):
    page = watched.page
    open_trace(sample["html"])
    counts = page.evaluate("window.vizviewer.counts")
    assert counts["slices"] == sum(1 for e in sample["trace"]["traceEvents"] if e.get("ph") == "X")
    inner = name_of(sample["trace"], "inner")
    ev = x_events(sample["trace"], inner)[0]
    r = zoom_until_wide(page, inner, ev["ts"])
    page.mouse.click(r["cx"], r["cy"])
    assert "def inner(k):" in page.inner_text("#source-code .line.hl")
    page.screenshot(path=os.path.join(screenshot_dir, "html_report.png"))
    watched.check_clean(["file://" + sample["html"]])


def test_gz_trace(watched, open_trace, sample):
    url = open_trace(sample["gz"])
    counts = watched.page.evaluate("window.vizviewer.counts")
    assert counts["slices"] == sum(1 for e in sample["trace"]["traceEvents"] if e.get("ph") == "X")
    watched.check_clean([url])


def test_odd_traces(watched, open_trace, tmp_path):
    page = watched.page
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"traceEvents": []}))
    url = open_trace(str(empty))
    assert page.evaluate("window.vizviewer.empty") is True
    assert "No events" in page.inner_text("#message")

    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps([{"ph": "X", "pid": 1, "tid": 2, "ts": 10, "dur": 5, "name": "a"},
                                {"ph": "X", "pid": 1, "tid": 2, "ts": 11, "dur": 1, "name": "b"}]))
    open_trace(str(bare))
    assert page.evaluate("window.vizviewer.counts")["slices"] == 2

    be = tmp_path / "be.json"
    be.write_text(json.dumps({"traceEvents": [
        {"ph": "E", "pid": 1, "tid": 1, "ts": 1},                      # no begin
        {"ph": "B", "pid": 1, "tid": 1, "ts": 2, "name": "outer"},
        {"ph": "B", "pid": 1, "tid": 1, "ts": 3, "name": "inner"},
        {"ph": "E", "pid": 1, "tid": 1, "ts": 5},
        {"ph": "B", "pid": 1, "tid": 1, "ts": 6, "name": "never ends"},
        {"ph": "C", "pid": 1, "tid": 1, "ts": 7, "name": "mem", "args": {"value": 3}},
        {"ph": "i", "pid": 1, "tid": 1, "ts": 8, "name": "tick", "s": "p"},
        {"ph": "N", "pid": 1, "tid": 1, "ts": 8, "name": "obj", "id": "0x1"},
        {"ph": "E", "pid": 1, "tid": 1, "ts": 9},
    ]}))
    open_trace(str(be))
    c = page.evaluate("window.vizviewer.counts")
    assert c["phases"] == {"B": 3, "E": 3, "C": 1, "i": 1, "N": 1}
    assert c["slices"] == 3 and c["unmatchedEnd"] == 1 and c["unfinished"] == 1
    kinds = [t["kind"] for t in page.evaluate("window.vizviewer.tracks")]
    assert kinds == ["process", "instants", "counter", "thread"]

    broken = tmp_path / "broken.json"
    broken.write_text('{"traceEvents": [{"ph": "X", ')
    page.goto(open_trace.__self__ if False else url.rsplit("/", 1)[0] + "/")  # any page, then the broken one
    from viztracer.viewer import TraceServer
    s = TraceServer(str(broken), port=0).start()
    try:
        page.goto(s.url)
        page.wait_for_function("window.vizviewer.error !== null")
        assert "not valid JSON" in page.evaluate("window.vizviewer.error")
        assert "Could not open" in page.inner_text("#message")
    finally:
        s.stop()
    assert watched.page_errors == []


def test_large_trace_loads_quickly(watched, open_trace, tmp_path):
    page = watched.page
    out = str(tmp_path / "large.json")

    def leaf(i):
        return i

    def branch(i):
        return leaf(i) + leaf(i + 1)

    t = VizTracer(verbose=0, tracer_entries=250_000)
    t.start()
    for i in range(70_000):
        branch(i)
    t.stop()
    t.save(out)
    start = time.monotonic()
    url = open_trace(out)
    elapsed = time.monotonic() - start
    counts = page.evaluate("window.vizviewer.counts")
    assert counts["slices"] >= 200_000
    assert elapsed < 10, elapsed
    # a pan/zoom frame stays cheap
    page.mouse.move(700, 300)
    for key in "wwwwdda":
        page.keyboard.press(key)
    assert page.evaluate("window.vizviewer.lastFrameMs") < 100
    watched.check_clean([url])


def test_python_m_viztracer_viewer_end_to_end(watched, tmp_path):
    """A script traced in its own process, then `python -m viztracer.viewer -s`."""
    import subprocess

    page = watched.page
    script = tmp_path / "script.py"
    script.write_text("def compute(n):\n    return sum(i * i for i in range(n))\n\n"
                      "from viztracer import VizTracer\n"
                      f"with VizTracer(output_file={str(tmp_path / 'e2e.json')!r}, verbose=0):\n"
                      "    compute(1000)\n")
    subprocess.run([sys.executable, str(script)], check=True, cwd=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-m", "viztracer.viewer", "-s", "-p", "0", str(tmp_path / "e2e.json")],
                            stdout=subprocess.PIPE, text=True)
    try:
        url = None
        for _ in range(10):
            line = proc.stdout.readline()
            m = re.search(r"view your trace on (\S+)", line)
            if m:
                url = m.group(1)
                break
        assert url
        page.goto(url)
        page.wait_for_function("window.vizviewer && window.vizviewer.ready")
        name = f"compute ({script}:1)"
        with open(tmp_path / "e2e.json") as f:
            ev = [e for e in json.load(f)["traceEvents"] if e.get("name") == name][0]
        r = zoom_until_wide(page, name, ev["ts"])
        page.mouse.click(r["cx"], r["cy"])
        assert page.inner_text("#source-code .line.hl .code").rstrip() == "def compute(n):"
        watched.check_clean([url])
    finally:
        proc.terminate()
        proc.wait()
