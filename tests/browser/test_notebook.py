"""%%viztracer in a real notebook: run cell by cell by an IPython kernel (this venv's
Python, so this build of viztracer), saved and read back, exported to HTML by nbconvert,
and the export opened from disk in Chromium, where the timeline embedded in the cell's
output must be drawn without a server and without a single request."""

import base64
import collections
import gzip
import html.parser
import importlib.util
import json
import os
import re
import sys
import time

import pytest

JUPYTER_PACKAGES = ("nbformat", "nbclient", "nbconvert", "ipykernel")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Cells of the notebook. The names are distinctive, to be found in the page.
CELLS = [
    "%load_ext viztracer",
    "import sys, viztracer\nprint(sys.executable)\nprint(viztracer.__file__)",
    "%%viztracer --output_file traced_cell.json\n"
    "def zebra_leaf(n):\n"
    "    return n * 2\n"
    "\n"
    "def zebra_branch(n):\n"
    "    return zebra_leaf(n) + zebra_leaf(n + 1)\n"
    "\n"
    "zebra_total = sum(zebra_branch(i) for i in range(5))\n"
    "print(zebra_total)",
    "from viztracer import VizTracer, get_tracer\n"
    "\n"
    "def okapi_work():\n"
    "    return sum(range(10))\n"
    "\n"
    "with VizTracer(output_file='plain.html', verbose=0) as tracer:\n"
    "    assert get_tracer() is tracer\n"
    "    get_tracer().add_instant('okapi_instant', {'cell': 4})\n"
    "    okapi_work()\n"
    "print('saved', zebra_total)",
]

# nbconvert's own "lab" template loads require.js and MathJax from cdnjs in the page's
# head (and mermaid.js from there when a cell has a diagram, and the widget manager from
# unpkg when the notebook holds widget state). This template is the same page without
# those three script blocks, so that the exported file, as a whole, needs no network;
# our output is exported the same either way (see the check against the default export).
OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{% block html_head_js_requirejs %}{% endblock %}
{% block html_head_js_mathjax %}{% endblock %}
{% block html_head_js_mermaidjs %}{% endblock %}
"""


@pytest.fixture(scope="module")
def jupyter(browser):
    """Checks that the packages are here (as the browser fixture checks Playwright)."""
    missing = [m for m in JUPYTER_PACKAGES if importlib.util.find_spec(m) is None]
    if missing:
        reason = f"{', '.join(missing)} not installed (pip install {' '.join(JUPYTER_PACKAGES)})"
        if IN_CI:
            pytest.fail(f"the notebook test can't run in CI: {reason}", pytrace=False)
        pytest.skip(reason)


def run_notebook(nb, workdir):
    """Executes ``nb`` in place on a kernel of this Python, started in ``workdir``."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    # A kernel spec of our own: the kernel is this very interpreter, whatever kernels
    # the machine has installed, with an IPython profile directory of its own.
    specs = workdir / "kernels"
    (specs / "viztracer-test").mkdir(parents=True)
    (specs / "viztracer-test" / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "viztracer test", "language": "python",
        "env": {"IPYTHONDIR": str(workdir / "ipython")},
    }))
    # Over Unix sockets in workdir, rather than TCP ports of localhost.
    km = KernelManager(kernel_name="viztracer-test", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(specs)]),
                       transport="ipc", ip=str(workdir / "kernel-ipc"),
                       connection_file=str(workdir / "connection.json"))
    try:
        NotebookClient(nb, km=km, timeout=120, resources={"metadata": {"path": str(workdir)}}).execute()
    finally:
        if km.has_kernel:  # a kernel manager given to nbclient is ours to stop
            km.shutdown_kernel()
    assert not km.has_kernel


class Frames(html.parser.HTMLParser):
    """The attributes of the iframes of an HTML text, as a browser reads them."""

    def __init__(self, text):
        super().__init__()
        self.found = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        if tag == "iframe":
            self.found.append(dict(attrs))


def page_trace(page):
    start = page.index('id="vizviewer-data"')
    data = page[page.index(">", start) + 1:page.index("</script>", start)]
    return json.loads(gzip.decompress(base64.b64decode("".join(data.split()))))


def test_notebook_shows_the_trace_in_the_saved_and_exported_notebook(jupyter, watched, tmp_path, screenshot_dir):
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    started = time.monotonic()
    work = tmp_path / "work"
    work.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    run_notebook(nb, work)
    executed = time.monotonic()

    # the saved notebook, read back
    path = work / "traced.ipynb"
    nbformat.write(nb, str(path))
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    assert "widgets" not in nb.metadata  # no widget: an export needs no widget manager
    where, magic, plain = nb.cells[1], nb.cells[2], nb.cells[3]
    assert [o.output_type for o in where.outputs] == ["stream"]
    import viztracer
    assert where.outputs[0].text.split() == [sys.executable, viztracer.__file__]

    # the %%viztracer cell: its own print, then the magic's one display
    assert [o.output_type for o in magic.outputs] == ["stream", "display_data"]
    assert magic.outputs[0].text == "50\n"
    shown = magic.outputs[1]
    traced = work / "traced_cell.json"
    assert shown.metadata["viztracer"]["output_file"] == str(traced)
    assert shown.metadata["viztracer"]["embedded"] is True
    assert set(shown.data) == {"text/plain", "text/html"}
    assert shown.data["text/plain"] == f"Saved the trace to {traced}; open it with: vizviewer {traced}"
    with open(traced) as f:
        trace = json.load(f)
    zebra = {}
    for e in trace["traceEvents"]:
        if e.get("ph") == "X" and e["name"].startswith("zebra_"):
            zebra.setdefault(e["name"], []).append(e)
    names = sorted(zebra)
    assert [n.split(" (")[0] for n in names] == ["zebra_branch", "zebra_leaf"], names
    assert [len(zebra[n]) for n in names] == [5, 10]

    # the plain VizTracer cell wrote its page, with the instant, and left no tracer on
    assert [o.output_type for o in plain.outputs] == ["stream"] and plain.outputs[0].text == "saved 50\n"
    plain_trace = page_trace((work / "plain.html").read_text())
    assert any(e.get("ph") == "i" and e["name"] == "okapi_instant" for e in plain_trace["traceEvents"])
    assert any(e.get("ph") == "X" and e["name"].startswith("okapi_work (") for e in plain_trace["traceEvents"])

    # exported to HTML, with either template: nbconvert re-serialises the page (through
    # BeautifulSoup), so compare what a browser reads: the line and the iframe's attributes
    default_html, _ = HTMLExporter().from_notebook_node(nb)
    exporter = HTMLExporter(extra_loaders=[DictLoader({"offline.html.j2": OFFLINE_TEMPLATE})],
                            template_file="offline.html.j2")
    body, _ = exporter.from_notebook_node(nb)
    (ours,) = Frames(shown.data["text/html"]).found
    assert page_trace(ours["srcdoc"]) == trace
    for exported_html in (body, default_html):
        assert Frames(exported_html).found == [ours]
        assert f"<code>vizviewer {traced}</code>" in exported_html
    # what the default template itself fetches, and that our template fetches none of it
    default_urls = set(re.findall(r'<script src="(https?://[^"]+)"', default_html))
    assert default_urls == {exporter.require_js_url, exporter.mathjax_url}
    assert not re.findall(r'<script src="', body)
    export = tmp_path / "traced.html"
    export.write_text(body, encoding="utf-8")
    exported = time.monotonic()

    # opened from disk: the embedded viewer draws the cell's functions
    page = watched.page
    url = "file://" + str(export)
    page.goto(url)
    frame_el = page.wait_for_selector("iframe.viztracer-viewer")
    assert frame_el.get_attribute("sandbox") == "allow-scripts"
    frame_el.scroll_into_view_if_needed()
    frame = frame_el.content_frame()
    assert frame is not None and frame.url == "about:srcdoc"
    frame.wait_for_function("window.vizviewer && (window.vizviewer.ready || window.vizviewer.error !== null)")
    assert frame.evaluate("window.vizviewer.error") is None
    counts = frame.evaluate("window.vizviewer.counts")
    # (the kernel's other threads were traced too: what they had not finished is a B event)
    phases = collections.Counter(e["ph"] for e in trace["traceEvents"])
    assert counts["phases"] == dict(phases) and counts["slices"] == phases["X"] + phases["B"]
    assert frame.evaluate("window.vizviewer.frames") >= 1
    threads = [t for t in frame.evaluate("window.vizviewer.tracks") if t["kind"] == "thread"]
    assert threads and threads[0]["rows"] >= 3  # the cell, zebra_branch, zebra_leaf (and more)
    for name in names:
        r = frame.evaluate("(q) => window.vizviewer.rectOf(q)", {"name": name})
        assert r is not None and r["h"] > 0, name
    # the same names through the page's search
    frame.fill("#search", "zebra_")
    frame.wait_for_function("window.vizviewer.search.count === 15")
    assert frame.inner_text("#search-count") == "15 matches"
    frame.fill("#search", names[0])
    frame.wait_for_function("window.vizviewer.search.count === 5")
    page.keyboard.press("Enter")
    frame.wait_for_function("window.vizviewer.selected !== null")
    assert frame.evaluate("window.vizviewer.selected")["name"] == names[0]
    assert names[0] in frame.inner_text("#details-info")
    page.screenshot(path=os.path.join(screenshot_dir, "notebook_export.png"))
    # nothing requested but the exported file itself, from the page or the iframe
    watched.check_clean([url])
    assert watched.requests == [url]
    opened = time.monotonic()
    print(f"notebook: executed in {executed - started:.1f} s, saved and exported in {exported - executed:.1f} s, "
          f"drawn in Chromium in {opened - exported:.1f} s")
