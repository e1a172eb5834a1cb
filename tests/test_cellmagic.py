"""The %%viztracer cell magic, run through IPython's real shell."""

import base64
import gzip
import html.parser
import json
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

IPython = pytest.importorskip("IPython")

from IPython.core.interactiveshell import InteractiveShell  # noqa: E402
from IPython.utils.capture import capture_output  # noqa: E402

from support import listening_ports_of_this_process  # noqa: E402
from viztracer import cellmagic  # noqa: E402


@pytest.fixture(scope="module")
def ip():
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "viztracer")
    yield shell
    shell.run_line_magic("unload_ext", "viztracer")
    cellmagic._stop_servers()


def test_import_viztracer_does_not_import_ipython():
    code = "import sys, viztracer; assert callable(viztracer.load_ipython_extension); print('IPython' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


class OutputHTML(html.parser.HTMLParser):
    """The parts of the magic's text/html: the tags, the text outside the iframe and
    the iframes' attributes (unescaped, as a browser reads them)."""

    def __init__(self, text):
        super().__init__()
        self.tags, self.text, self.iframes = [], [], []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "iframe":
            self.iframes.append(dict(attrs))

    def handle_data(self, data):
        self.text.append(data)


def page_trace(page):
    """The trace JSON inside a viewer page (an HTML report)."""
    start = page.index('id="vizviewer-data"')
    data = page[page.index(">", start) + 1:page.index("</script>", start)]
    return json.loads(gzip.decompress(base64.b64decode("".join(data.split()))))


def one_output(cap):
    """The magic's one display: a line of text/plain, and the same line in text/html."""
    assert len(cap.outputs) == 1, cap.outputs
    out = cap.outputs[0]
    assert set(out.data) == {"text/plain", "text/html"}
    line = out.data["text/plain"]
    assert "\n" not in line
    parsed = OutputHTML(out.data["text/html"])
    assert "".join(parsed.text).strip() == line
    return out, parsed


def test_magic_traces_the_cell(ip, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cell = "def square(v):\n    return v * v\nresult = [square(i) for i in range(4)]\nprint(sum(result))"
    with capture_output() as cap:
        ip.run_cell_magic("viztracer", "-p 0", cell)
    # the cell ran in the user namespace; the magic prints nothing of its own
    assert ip.user_ns["result"] == [0, 1, 4, 9]
    assert cap.stdout == "14\n" and cap.stderr == ""
    # the default output file, with the cell's functions
    out = tmp_path / "viztracer_report.json"
    with open(out) as f:
        trace = json.load(f)
    squares = [e for e in trace["traceEvents"] if e["ph"] == "X" and e["name"].startswith("square (")]
    assert len(squares) == 4
    # one display: where the trace is and how to open it, and the viewer with the trace inside
    shown, parsed = one_output(cap)
    command = f"vizviewer {out}"
    assert shown.data["text/plain"] == f"Saved the trace to {out}; open it with: {command}"
    assert shown.metadata["viztracer"] == {"output_file": str(out), "command": command, "embedded": True,
                                           "page_bytes": len(parsed.iframes[0]["srcdoc"].encode())}
    assert parsed.tags == ["p", "code", "code", "iframe"]
    (frame,) = parsed.iframes
    assert frame["sandbox"] == "allow-scripts"
    assert "width:100%" in frame["style"] and f"height:{cellmagic.FRAME_HEIGHT}px" in frame["style"]
    page = frame["srcdoc"]
    assert page.startswith("<!doctype html>") and 'id="canvas"' in page
    assert page_trace(page) == trace
    # self-contained: nothing in the page is loaded from elsewhere
    assert 'src="' not in page and "<link rel=\"stylesheet\"" not in page
    # no viewer runs
    assert not cellmagic._servers


@pytest.mark.parametrize("name", ["t.json.gz", "t.html", 'a"b"<c>&d.json'])
def test_every_output_kind_is_embedded(ip, tmp_path, name):
    out = tmp_path / name
    with capture_output() as cap:
        ip.run_cell_magic("viztracer", f"--output_file {out}", "def kind_check():\n    return 1\nkind_check()")
    shown, parsed = one_output(cap)
    assert shown.metadata["viztracer"]["output_file"] == str(out) and shown.metadata["viztracer"]["embedded"]
    assert str(out) in shown.data["text/plain"]
    (frame,) = parsed.iframes
    assert frame["title"] == f"{name} in vizviewer"
    page = frame["srcdoc"]
    if name.endswith(".html"):
        assert page.encode() == out.read_bytes()  # the report file is the page
        trace = page_trace(page)
    else:
        opener = gzip.open if name.endswith(".gz") else open
        with opener(out, "rb") as f:
            trace = json.load(f)
        assert page_trace(page) == trace
        assert f'data-title="{html.escape(name, quote=True)}"' in page
    assert any(e["ph"] == "X" and e["name"].startswith("kind_check (") for e in trace["traceEvents"])


def test_too_big_to_embed(ip, tmp_path, monkeypatch):
    monkeypatch.setattr(cellmagic, "EMBED_LIMIT", 50_000)  # less than the page's scripts alone
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # as without ipywidgets: no button
    for name in ("big.json", "big.json.gz", "big.html"):
        out = tmp_path / name
        with capture_output() as cap:
            ip.run_cell_magic("viztracer", f"--output_file {out}", "x = [len(str(i)) for i in range(100)]")
        assert cap.stdout == ""
        shown, parsed = one_output(cap)
        command = f"vizviewer {out}"
        assert shown.data["text/plain"] == (f"Saved the trace to {out}; it is too big to show in the notebook "
                                            f"(a viewer page over 0.05 MB); open it with: {command}")
        assert parsed.tags == ["p", "code", "code"] and not parsed.iframes
        assert shown.metadata["viztracer"] == {"output_file": str(out), "command": command, "embedded": False,
                                               "page_bytes": None}
        assert out.stat().st_size > 0
    assert not cellmagic._servers


def test_viewer_page_stops_at_the_limit(tmp_path):
    out = tmp_path / "cap.json"
    out.write_text(json.dumps({"traceEvents": [{"ph": "i", "pid": 1, "tid": 1, "ts": i, "name": f"e{i}"}
                                               for i in range(5000)]}))
    page = cellmagic.viewer_page(str(out), 10**8)
    assert page_trace(page.decode())["traceEvents"][-1]["name"] == "e4999"
    assert cellmagic.viewer_page(str(out), len(page)) == page
    assert cellmagic.viewer_page(str(out), len(page) - 1) is None


def _wait_for(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_serve_once_serves_the_trace_then_frees_the_port(tmp_path):
    out = tmp_path / "t.json"
    out.write_text('{"traceEvents":[]}')
    srv = cellmagic.serve_once(str(out), 0, open_browser=False)
    with urllib.request.urlopen(srv.url, timeout=10) as r:
        assert b'id="canvas"' in r.read()
    with urllib.request.urlopen(srv.url + "localtrace", timeout=10) as r:
        assert r.read() == out.read_bytes()
    assert srv.alive
    with urllib.request.urlopen(srv.url + "file_info", timeout=10) as r:  # the page's last request
        r.read()
    _wait_for(lambda: not cellmagic._servers and not srv.alive)
    assert srv.port not in listening_ports_of_this_process()  # the port was given back


def test_the_button_only_for_a_trace_too_big_to_embed(ip, tmp_path, monkeypatch):
    ipywidgets = pytest.importorskip("ipywidgets")
    import IPython.display

    shown, served = [], []
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append(obj))
    monkeypatch.setattr(cellmagic, "serve_once", lambda path, port: served.append((path, port)))
    # embedded: no button (an export of the notebook needs no widget manager)
    with capture_output():
        ip.run_cell_magic("viztracer", f"--output_file {tmp_path / 'small.json'} -p 9123", "x = 1")
    assert len(shown) == 1 and "<iframe" in shown[0]["text/html"]
    # too big: the line, then a button that starts a viewer for the trace
    shown.clear()
    monkeypatch.setattr(cellmagic, "EMBED_LIMIT", 1000)
    out = tmp_path / "b.json"
    with capture_output():
        ip.run_cell_magic("viztracer", f"--output_file {out} -p 9123", "x = 1")
    assert len(shown) == 2 and "too big" in shown[0]["text/plain"]
    buttons = [o for o in shown if isinstance(o, ipywidgets.Button)]
    assert len(buttons) == 1 and not served
    buttons[0].click()
    assert served == [(str(out), 9123)]


def test_magic_holds_no_port_and_no_thread_between_cells(ip, tmp_path, monkeypatch):
    from viztracer.viewer import viewer_main

    out = tmp_path / "p.json"
    threads = threading.active_count()
    with capture_output():
        ip.run_cell_magic("viztracer", f"--output_file {out}", "x = 1")
        monkeypatch.setattr(cellmagic, "EMBED_LIMIT", 1000)  # and with the button of a trace too big
        ip.run_cell_magic("viztracer", f"--output_file {out}", "x = 1")
    assert threading.active_count() == threads
    assert not cellmagic._servers
    # the default port is free for a vizviewer in the same process
    assert viewer_main(["-s", "--once", "--timeout", "0.3", "-p", "9001", str(out)]) == 0


def test_magic_options(ip, tmp_path):
    out = tmp_path / "opts.json"
    with capture_output() as cap:
        ip.run_cell_magic("viztracer", f"--output_file {out} -p 0 --ignore_c_function --log_func_args",
                          "def g(a):\n    return len([a])\ng(3)")
    with open(out) as f:
        events = [e for e in json.load(f)["traceEvents"] if e["ph"] == "X"]
    names = [e["name"] for e in events]
    assert not any(n.startswith("builtins.") for n in names), names
    g = [e for e in events if e["name"].startswith("g (")]
    assert g and g[0]["args"]["func_args"] == {"a": "3"}
    assert one_output(cap)[0].metadata["viztracer"]["output_file"] == str(out)


def test_magic_help_lists_options(ip):
    doc = ip.find_cell_magic("viztracer").__doc__
    for opt in ("--port", "--output_file", "--max_stack_depth", "--ignore_c_function", "--ignore_frozen",
                "--log_func_args", "--log_print", "--log_sparse"):
        assert opt in doc


def test_magic_max_stack_depth(ip, tmp_path):
    # builtins.exec, the cell, f: g is the fourth level
    out = tmp_path / "depth.json"
    with capture_output():
        ip.run_cell_magic("viztracer", f"--output_file {out} -p 0 --max_stack_depth 3",
                          "def f():\n    return g()\ndef g():\n    return 1\nf()")
    with open(out) as f:
        names = [e["name"] for e in json.load(f)["traceEvents"] if e["ph"] == "X"]
    assert any(n.startswith("f (") for n in names), names
    assert not any(n.startswith("g (") for n in names), names
