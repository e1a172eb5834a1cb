"""Self-contained HTML reports: what the file holds (the page itself is checked in a
browser by tests/browser/)."""

import json
import re

from support import embedded_trace
from viztracer import VizTracer
from viztracer.report_builder import ReportBuilder
from viztracer.trace_writer import write_report

HOSTILE = "</script><script>window.pwned = 1</script><!--<script>"


def check_self_contained(page):
    # everything inline: no script or stylesheet from anywhere, no URL at all
    assert not re.search(r"<script[^>]+src=", page)
    assert not re.search(r"<link[^>]+stylesheet", page)
    assert not re.search(r"https?://", page)
    # every script element closes where we meant it to: model.js, app.js, the data
    assert page.count("<script") == 3
    assert page.lower().count("</script") == 3


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def echo(s):
    return s


def test_tracer_save_html_matches_json(tmp_path):
    tracer = VizTracer(verbose=0, log_func_args=True, log_func_retval=True)
    tracer.start()
    fib(7)
    echo(HOSTILE)
    tracer.stop()
    tracer.save(str(tmp_path / "t.json"))
    tracer.save(str(tmp_path / "t.html"))
    with open(tmp_path / "t.json") as f:
        expected = json.load(f)
    got, page = embedded_trace(tmp_path / "t.html")
    check_self_contained(page)
    assert got["traceEvents"] == expected["traceEvents"]
    assert got["file_info"] == expected["file_info"]
    names = [e["name"] for e in got["traceEvents"] if e["ph"] == "X"]
    assert sum(1 for n in names if n.startswith("fib (")) == 41
    ret = [e["args"]["return_value"] for e in got["traceEvents"] if e["name"].startswith("echo (")]
    assert ret == [repr(HOSTILE)]
    assert 'data-title="t.html"' in page


def test_with_block_writes_html(tmp_path):
    out = tmp_path / "r.html"
    with VizTracer(output_file=str(out), verbose=0):
        fib(5)
    got, page = embedded_trace(out)
    check_self_contained(page)
    assert any(e["name"].startswith("fib (") for e in got["traceEvents"])
    # the page is the viewer
    assert 'id="canvas"' in page and "VizModel" in page


def test_write_report_html_from_dict(tmp_path):
    report = {
        "traceEvents": [
            {"ph": "M", "pid": 1, "tid": 1, "name": "process_name", "args": {"name": HOSTILE}},
            {"ph": "X", "pid": 1, "tid": 1, "ts": 10, "dur": 5, "name": HOSTILE, "args": {"x": "</SCRIPT >"}},
        ],
        "viztracer_metadata": {"version": "1"},
    }
    out = tmp_path / "d.html"
    write_report(report, str(out))
    got, page = embedded_trace(out)
    check_self_contained(page)
    assert got == report
    assert "pwned" not in page


def test_report_builder_html(tmp_path):
    src = tmp_path / "a.json"
    with VizTracer(output_file=str(src), verbose=0):
        fib(4)
    out = tmp_path / "combined.html"
    ReportBuilder([str(src)], verbose=0).save(str(out))
    got, page = embedded_trace(out)
    check_self_contained(page)
    assert got["displayTimeUnit"] == "ns"
    assert sum(1 for e in got["traceEvents"] if e.get("name", "").startswith("fib (")) == 9


def test_large_trace_is_compressed(tmp_path):
    tracer = VizTracer(verbose=0, tracer_entries=300_000)
    tracer.start()
    for _ in range(3000):
        fib(5)
    tracer.stop()
    tracer.save(str(tmp_path / "big.json"))
    tracer.save(str(tmp_path / "big.html"))
    json_size = (tmp_path / "big.json").stat().st_size
    html_size = (tmp_path / "big.html").stat().st_size
    assert json_size > 2_000_000
    assert html_size < json_size / 4
    got, _ = embedded_trace(tmp_path / "big.html")
    assert sum(1 for e in got["traceEvents"] if e["ph"] == "X") == 3000 * 15
