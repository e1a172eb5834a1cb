"""The %%viztracer cell magic, run through IPython's real shell."""

import json
import subprocess
import sys
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
    # a link to a running viewer that serves this trace
    html = [o for o in cap.outputs if "text/html" in o.data]
    assert html, cap.outputs
    assert "Open the VizTracer report" in html[-1].data["text/html"]
    url = html[-1].metadata["viztracer"]["url"]
    assert url in html[-1].data["text/html"]
    assert url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(url + "localtrace", timeout=10) as r:
        assert r.read() == out.read_bytes()
    with urllib.request.urlopen(url, timeout=10) as r:
        assert b'id="canvas"' in r.read()


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
    # a second cell on the same port re-points the viewer to the new file
    url = [o for o in cap.outputs if "text/html" in o.data][-1].metadata["viztracer"]["url"]
    with urllib.request.urlopen(url + "localtrace", timeout=10) as r:
        assert r.read() == out.read_bytes()


def test_magic_help_lists_options(ip):
    doc = ip.find_cell_magic("viztracer").__doc__
    for opt in ("--port", "--output_file", "--max_stack_depth", "--ignore_c_function", "--ignore_frozen",
                "--log_func_args", "--log_print", "--log_sparse"):
        assert opt in doc
