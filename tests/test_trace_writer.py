"""viztracer/trace_writer.py: the one module that writes trace files. Every kind of
file round-trips through each of its writers (a native snapshot, a dict, a merge of
member files), and its envelope constants are what the native writer really writes."""

import base64
import gzip
import io
import json
import re

import pytest

from viztracer import VizTracer, options, trace_writer
from viztracer.report_builder import ReportBuilder
from viztracer.trace_writer import (
    END,
    FILE_INFO,
    HEAD,
    METADATA,
    SEPARATOR,
    TAIL,
    closing,
    merge_traces,
    open_trace,
    output_kind,
    split_events,
    write_report,
    write_snapshot,
)

KINDS = ["json", "gz", "html"]
HOSTILE = "</script>\n\"quoted\" \u00e9\u4e2d"


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def echo(s):
    return s


def read_bytes(path):
    """The trace JSON bytes of a file of any kind (for HTML, as the page decodes them)."""
    with open(path, "rb") as f:
        data = f.read()
    kind = output_kind(str(path))
    if kind == "gz":
        return gzip.decompress(data)
    if kind == "html":
        m = re.search(rb'id="vizviewer-data" data-encoding="gzip-base64"[^>]*>([^<]*)</script>', data)
        assert m, "no embedded trace"
        return gzip.decompress(base64.b64decode(re.sub(rb"\s+", b"", m.group(1))))
    return data


def read_trace(path):
    return json.loads(read_bytes(path))


def take_snapshot(n=6, entries=1_000_000):
    tracer = VizTracer(verbose=0, log_func_args=True, tracer_entries=entries)
    tracer.start()
    fib(n)
    echo(HOSTILE)
    tracer.add_instant(HOSTILE, {"k": [1, 2.5, None]})
    tracer.stop()
    return tracer._tracer.snapshot()


def header(snap, pid=7):
    return {"pid": pid, "process_name": "Main", "thread_names": [(pid, "MainThread")]}


META = {"version": "t", "overflow": False, "baseTimeNanoseconds": 12345}
INFO = {"files": {"/x.py": ["print(1)\n", 1]}, "functions": {"f (/x.py:1)": ["/x.py", 1]}}


# --------------------------------------------------------------------------- the envelope

@pytest.mark.parametrize("file_info", [INFO, None])
def test_envelope_constants_are_what_the_native_writer_writes(file_info):
    snap = take_snapshot()
    data = snap.to_bytes(**header(snap), metadata_json=json.dumps(META, separators=(",", ":")),
                         file_info_json=None if file_info is None else json.dumps(file_info, separators=(",", ":")))
    assert data.startswith(HEAD)
    members = {METADATA: META} if file_info is None else {METADATA: META, FILE_INFO: file_info}
    assert data.endswith(closing(members))
    assert closing(members).startswith(TAIL) and closing(members).endswith(END)
    start, end = split_events(data)
    assert (start, end) == (len(HEAD), len(data) - len(closing(members)))
    lines = data[start:end].split(SEPARATOR)
    # one event per line: the metadata events, then every event
    assert len(lines) == 2 + snap.entries
    assert all(b"\n" not in line for line in lines)
    assert [json.loads(line)["ph"] for line in lines[:2]] == ["M", "M"]


def stop_inside(tracer):
    tracer.stop()


def test_the_file_and_the_dicts_hold_the_same_events():
    """The file (``to_bytes``) and ``tracer.data`` (``to_events``) are two outputs of
    one description of the events: the same events, their keys in the same order."""
    tracer = VizTracer(verbose=0, log_func_args=True, log_func_retval=True, log_async=True)
    tracer.start()
    fib(3)
    echo(HOSTILE)
    tracer.add_instant(HOSTILE, {"k": [1, 2.5, None]}, scope="p")
    tracer.add_instant("bare")
    tracer.add_counter("num", {"value": 3})
    tracer.add_object("N", "42", "obj", {"s": "5"})
    tracer.add_object("D", "42", "obj")
    tracer.add_raw({"ph": "i", "tid": 3, "name": "raw", "ts": 5.0, "pid": 1, "s": "g"})
    tracer.add_raw({})
    stop_inside(tracer)  # a function still running: a B event
    snap = tracer._tracer.snapshot()
    names = [(7, HOSTILE)]
    from_file = json.loads(snap.to_bytes(pid=7, process_name=HOSTILE, thread_names=names,
                                         metadata_json="{}"))["traceEvents"]
    dicts = snap.to_events(7, HOSTILE, names)
    assert {e.get("ph") for e in dicts} == {"M", "X", "B", "i", "C", "N", "D", None}
    assert [list(e) for e in from_file] == [list(e) for e in dicts]
    assert from_file == dicts


def test_native_file_equals_its_bytes(tmp_path):
    snap = take_snapshot()
    kw = dict(header(snap), metadata=META, file_info=INFO)
    for kind in ("json", "gz"):
        write_snapshot(snap, str(tmp_path / f"t.{kind}"), **kw)
    expected = snap.to_bytes(**header(snap), metadata_json=json.dumps(META, separators=(",", ":")),
                             file_info_json=json.dumps(INFO, separators=(",", ":")))
    assert read_bytes(tmp_path / "t.json") == expected
    assert read_bytes(tmp_path / "t.gz") == expected


def test_split_events_rejects_other_files():
    with pytest.raises(ValueError):
        split_events(b'{"viztracer_metadata":{},"traceEvents":[]}')
    with pytest.raises(ValueError):
        split_events(HEAD + b'{"ph":"X"}')


# --------------------------------------------------------------------------- kinds

def test_output_kind():
    assert [output_kind(p) for p in ("a.json", "/d.x/B.JSON", "a.json.gz", "a.gz", "r.html")] == \
        ["json", "json", "gz", "gz", "html"]
    for bad in ("a", "a.txt", "dir.json/file", "a.json.bz2"):
        with pytest.raises(ValueError):
            output_kind(bad)
    assert options.output_kind is output_kind  # re-exported where the options are checked


def test_open_trace_refuses_unknown_kinds(tmp_path):
    with pytest.raises(ValueError):
        with open_trace(str(tmp_path / "t.txt")):
            pass
    assert not (tmp_path / "t.txt").exists()


def test_gzip_level_is_one_constant(tmp_path):
    path = str(tmp_path / "t.json.gz")
    write_report({"traceEvents": [{"ph": "X", "ts": i} for i in range(2000)]}, path)
    with open(path, "rb") as f:
        head = f.read(10)
    # gzip's XFL byte: 2 for level 9 (gzip.open's default), 4 for level 1, 0 between.
    assert trace_writer.GZIP_LEVEL == 6 and head[8] == 0


def test_html_page_is_streamed_in_4k_lines(tmp_path):
    # many small writes and one large one: the page holds the same bytes, in lines of
    # 4096 base64 characters (the last one shorter)
    payload = b"".join(b'{"ph":"X","ts":%d,"name":"%s"},\n' % (i, base64.b16encode(bytes([i % 256])))
                       for i in range(60_000))
    path = str(tmp_path / "p.html")
    with open_trace(path) as out:
        for i in range(0, 1000, 7):
            out.write(payload[i:i + 7])
        out.write(payload[1001:])
    assert read_bytes(path) == payload
    with open(path, "rb") as f:
        page = f.read()
    body = re.search(rb'data-encoding="gzip-base64"[^>]*>([^<]*)</script>', page).group(1)
    lines = body.split(b"\n")
    assert lines[-1] == b"" and len(lines) > 3
    assert all(len(line) == 4096 for line in lines[:-2]) and 0 < len(lines[-2]) <= 4096
    assert b'data-title="p.html"' in page


# --------------------------------------------------------------------------- the writers

@pytest.mark.parametrize("kind", KINDS)
def test_snapshot_round_trips(tmp_path, kind):
    snap = take_snapshot()
    path = str(tmp_path / f"s.{kind}")
    count = write_snapshot(snap, path, **header(snap), metadata=META, file_info=INFO)
    assert count == snap.entries > 10
    trace = read_trace(path)
    assert trace[METADATA] == META and trace[FILE_INFO] == INFO
    assert sum(1 for e in trace["traceEvents"] if e["ph"] != "M") == count
    assert [e["args"]["name"] for e in trace["traceEvents"] if e["ph"] == "M"] == ["Main", "MainThread"]
    assert any(e.get("name") == HOSTILE for e in trace["traceEvents"])


def _report():
    return {
        "traceEvents": [
            {"ph": "M", "pid": 1, "tid": 1, "name": "process_name", "args": {"name": HOSTILE}},
            {"ph": "X", "pid": 1, "tid": 1, "ts": 10.5, "dur": 5, "name": HOSTILE, "args": {"x": [1, {"y": None}]}},
        ] + [{"ph": "i", "pid": 1, "tid": 2, "ts": i, "name": "n", "s": "t"} for i in range(25_000)],
        "displayTimeUnit": "ns",
        "viztracer_metadata": {"version": "t", "overflow": True},
        "file_info": INFO,
    }


@pytest.mark.parametrize("kind", KINDS)
def test_report_round_trips(tmp_path, kind):
    report = _report()
    path = str(tmp_path / f"r.{kind}")
    write_report(report, path)
    assert read_trace(path) == report
    # in the envelope's layout: the events first, one per line, then the metadata
    data = read_bytes(path)
    start, end = split_events(data)
    assert data[start:end].count(b"\n") == len(report["traceEvents"]) - 1
    assert data.endswith(closing({k: v for k, v in report.items() if k != "traceEvents"}))


def test_report_without_metadata_or_events(tmp_path):
    path = str(tmp_path / "e.json")
    write_report({"other": 1}, path)
    assert read_trace(path) == {"traceEvents": [], "other": 1}


def test_report_builder_writes_to_a_stream():
    out = io.StringIO()
    report = _report()
    ReportBuilder(report, verbose=0).save(out, file_info=False)
    back = json.loads(out.getvalue())
    assert back["traceEvents"] == report["traceEvents"]
    assert out.getvalue().startswith(HEAD.decode())


def _members(tmp_path):
    """Three member files: two native snapshots, one in another layout."""
    paths = []
    for i, (n, entries) in enumerate([(5, 1_000_000), (7, 20)]):
        snap = take_snapshot(n, entries)
        path = str(tmp_path / f"m{i}.json")
        meta = {"version": "t", "overflow": snap.overflow, "baseTimeNanoseconds": 100 + i}
        info = {"files": {f"/f{i}.py": ["", 0]}, "functions": {f"f{i}": [f"/f{i}.py", 1]}}
        write_snapshot(snap, path, **header(snap, pid=10 + i), metadata=meta, file_info=info)
        paths.append(path)
    other = {"viztracer_metadata": {"version": "t", "extra": 1},
             "traceEvents": [{"ph": "M", "pid": 3, "tid": 3, "name": "process_name", "args": {"name": "p"}},
                             {"ph": "X", "pid": 3, "tid": 3, "ts": 1, "dur": 2, "name": "other"}]}
    with open(tmp_path / "m2.json", "w") as f:
        json.dump(other, f, indent=2)
    paths.append(str(tmp_path / "m2.json"))
    (tmp_path / "broken.json").write_bytes(HEAD + b'{"ph":"X"')
    paths.append(str(tmp_path / "broken.json"))
    return paths


@pytest.mark.parametrize("kind", KINDS)
def test_merge_round_trips(tmp_path, kind, capsys):
    paths = _members(tmp_path)
    parts = [read_trace(p) for p in paths[:3]]
    out = str(tmp_path / f"merged.{kind}")
    count, overflow = merge_traces(paths, out, metadata={"added": True})
    assert "skipped an unreadable trace broken.json" in capsys.readouterr().err
    merged = read_trace(out)
    assert merged["traceEvents"] == [e for p in parts for e in p["traceEvents"]]
    assert count == sum(1 for e in merged["traceEvents"] if e["ph"] != "M")
    assert overflow is True  # the second member's buffer of 20 entries overflowed
    meta = merged[METADATA]
    assert meta["overflow"] is True and meta["added"] is True and meta["extra"] == 1
    assert meta["baseTimeNanoseconds"] == 100  # the first file's value wins
    assert set(merged[FILE_INFO]["functions"]) == {"f0", "f1"}
    assert split_events(read_bytes(out)) is not None  # in the envelope's layout itself


def test_merge_of_nothing(tmp_path):
    out = str(tmp_path / "none.json")
    assert merge_traces([], out) == (0, False)
    assert read_trace(out) == {"traceEvents": [], "viztracer_metadata": {"overflow": False}}


def test_merge_keeps_the_complete_events_of_a_trace_cut_short(tmp_path):
    snap = take_snapshot(5)
    whole = str(tmp_path / "whole.json")
    write_snapshot(snap, whole, **header(snap), metadata=META, file_info=INFO)
    data = open(whole, "rb").read()
    lines = data[len(HEAD):data.rindex(TAIL)].split(SEPARATOR)
    cuts = {
        "in an event": (data[:data.index(lines[3]) + 5], lines[:3]),
        "in its metadata": (data[:data.rindex(TAIL) + len(TAIL) + 4], lines),
        "before any separator": (HEAD + lines[0][:5], []),
    }
    for name, (cut, kept) in cuts.items():
        path = tmp_path / "cut.json"
        path.write_bytes(cut)
        out = str(tmp_path / "out.json")
        count, _ = merge_traces([str(path)], out, partial=[str(path)])
        assert read_trace(out)["traceEvents"] == [json.loads(line) for line in kept], name
        assert count == sum(1 for line in kept if not line.startswith(b'{"ph":"M"')), name
    with pytest.raises(ValueError):  # a file not said to be partial is not cut silently
        trace_writer._Merge(io.BytesIO()).add_file(str(path))


def test_a_trace_streamed_with_an_offset(tmp_path):
    # What a sender gives its collector: the file, gzip-compressed, in pieces, every ts
    # moved onto the collector's clock (the durations unchanged), native or from dicts.
    import zlib

    tracer = VizTracer(verbose=0)
    tracer.start()
    fib(3)
    with tracer.log_event("block"):
        pass
    tracer.stop()
    pieces = []
    tracer._send_trace(pieces.append, True, 2_000_000_000)
    moved = json.loads(zlib.decompress(b"".join(pieces), 31))
    pieces.clear()
    tracer._send_trace(pieces.append, True, 0, compress=False)
    plain = json.loads(b"".join(pieces))
    assert len(moved["traceEvents"]) == len(plain["traceEvents"]) > 5
    for a, b in zip(moved["traceEvents"], plain["traceEvents"]):
        assert ("ts" in a) == ("ts" in b) and a.get("dur") == b.get("dur")
        if "ts" in a:
            assert abs(a["ts"] - b["ts"] - 2_000_000) < 1e-3, (a, b)
    assert moved[METADATA]["baseTimeNanoseconds"] == plain[METADATA]["baseTimeNanoseconds"] - 2_000_000_000
    assert tracer.data  # the dict path (plugins, changed data) moves them too
    pieces.clear()
    tracer._send_trace(pieces.append, True, -1000)
    from_dicts = json.loads(zlib.decompress(b"".join(pieces), 31))
    assert [e.get("ts") for e in from_dicts["traceEvents"]] == [
        e["ts"] - 1 if "ts" in e else None for e in plain["traceEvents"]]
