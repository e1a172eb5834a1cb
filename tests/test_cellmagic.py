"""The %%viztracer cell magic, run through IPython's real shell."""

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


def test_magic_traces_the_cell(ip, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cell = "def square(v):\n    return v * v\nresult = [square(i) for i in range(4)]\nprint(sum(result))"
    with capture_output() as cap:
        ip.run_cell_magic("viztracer", "-p 0", cell)
    # the cell ran in the user namespace
    assert ip.user_ns["result"] == [0, 1, 4, 9]
    assert "14" in cap.stdout
    # the default output file, with the cell's functions
    out = tmp_path / "viztracer_report.json"
    with open(out) as f:
        trace = json.load(f)
    squares = [e for e in trace["traceEvents"] if e["ph"] == "X" and e["name"].startswith("square (")]
    assert len(squares) == 4
    # where the trace is and how to open it; no viewer runs until asked for
    html = [o for o in cap.outputs if "text/html" in o.data]
    assert html, cap.outputs
    meta = html[-1].metadata["viztracer"]
    assert meta["output_file"] == str(out)
    assert meta["command"] == f"vizviewer {out}" and meta["command"] in html[-1].data["text/html"]
    assert not cellmagic._servers


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
    from viztracer.viewer import TraceServer
    TraceServer(str(out), srv.port).stop()  # the port was given back


def test_the_button_starts_a_viewer_for_the_cells_trace(ip, tmp_path, monkeypatch):
    ipywidgets = pytest.importorskip("ipywidgets")
    import IPython.display

    shown, served = [], []
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append(obj))
    monkeypatch.setattr(cellmagic, "serve_once", lambda path, port: served.append((path, port)))
    out = tmp_path / "b.json"
    with capture_output():
        ip.run_cell_magic("viztracer", f"--output_file {out} -p 9123", "x = 1")
    buttons = [o for o in shown if isinstance(o, ipywidgets.Button)]
    assert len(buttons) == 1 and not served
    buttons[0].click()
    assert served == [(str(out), 9123)]


def test_magic_holds_no_port_and_no_thread_between_cells(ip, tmp_path):
    from viztracer.viewer import viewer_main

    out = tmp_path / "p.json"
    threads = threading.active_count()
    with capture_output():
        ip.run_cell_magic("viztracer", f"--output_file {out}", "x = 1")
    assert threading.active_count() == threads
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
    assert [o for o in cap.outputs if "text/html" in o.data][-1].metadata["viztracer"]["output_file"] == str(out)


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
