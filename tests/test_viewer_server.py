"""vizviewer's server over real HTTP: routes, headers, --once, directory mode, errors."""

import gzip
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from viztracer import VizTracer
from viztracer import viewer as viewer_mod
from viztracer.viewer import _file_info_from_tail, load_file_info, viewer_main

WEB_DIR = viewer_mod.WEB_DIR


def _work(n):
    return n if n < 2 else _work(n - 1) + _work(n - 2)


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    d = tmp_path_factory.mktemp("traces")
    paths = {}
    paths["json"] = str(d / "result.json")
    with VizTracer(output_file=paths["json"], verbose=0):
        _work(8)
    paths["gz"] = str(d / "result.json.gz")
    with VizTracer(output_file=paths["gz"], verbose=0):
        _work(6)
    paths["html"] = str(d / "result.html")
    with VizTracer(output_file=paths["html"], verbose=0):
        _work(5)
    paths["nofileinfo"] = str(d / "plain.json")
    with open(paths["nofileinfo"], "w") as f:
        json.dump({"traceEvents": [{"ph": "X", "pid": 1, "tid": 1, "ts": 1, "dur": 2, "name": "a"}]}, f)
    paths["list"] = str(d / "list.json")
    with open(paths["list"], "w") as f:
        json.dump([{"ph": "X", "pid": 1, "tid": 1, "ts": 1, "dur": 2, "name": "a"}], f)
    return paths


class Viewer:
    """``python -m viztracer.viewer`` in a subprocess."""

    def __init__(self, *args, wait=True):
        self.proc = subprocess.Popen([sys.executable, "-m", "viztracer.viewer", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.url = None
        if wait:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                line = self.proc.stdout.readline()
                if not line:
                    break
                self.lines.append(line)
                m = re.search(r"view your trace on (http://\S+)", line)
                if m:
                    self.url = m.group(1)
                    break
            stderr = self.proc.stderr.read() if self.proc.poll() is not None else ""
            assert self.url, f"no URL printed: {self.lines} {stderr}"
            self.port = int(self.url.rsplit(":", 1)[1].strip("/"))

    def get(self, path, headers=None):
        req = urllib.request.Request(self.url.rstrip("/") + path, headers=headers or {})
        return urllib.request.urlopen(req, timeout=20)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def viewer():
    started = []

    def start(*args, **kw):
        v = Viewer(*args, **kw)
        started.append(v)
        return v
    yield start
    for v in started:
        v.stop()


def run_viewer(*args, timeout=30):
    return subprocess.run([sys.executable, "-m", "viztracer.viewer", *args],
                          capture_output=True, text=True, timeout=timeout)


def free_port_block(n=11):
    """A base port such that base .. base+n-1 are all free right now."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + n >= 65535:
            continue
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    pytest.skip("no block of free ports")


# --------------------------------------------------------------------------- single file

def test_json_routes(viewer, traces):
    v = viewer("-s", "-p", "0", traces["json"])
    assert v.url.startswith("http://127.0.0.1:")
    assert any("Running vizviewer" in line for line in v.lines)

    r = v.get("/")
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("text/html")
    assert r.headers["Cache-Control"] == "no-store"
    page = r.read().decode()
    assert 'id="canvas"' in page and "app.js" in page

    with open(traces["json"], "rb") as f:
        raw = f.read()
    r = v.get("/localtrace")
    assert r.read() == raw
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["Cache-Control"] == "no-store"

    expected = json.loads(raw)["file_info"]
    assert expected["functions"], "the tracer wrote no file_info"
    assert json.loads(v.get("/file_info").read()) == expected
    assert json.loads(v.get("/vizviewer_info").read()) == {}

    for asset, ctype in (("/app.js", "text/javascript"), ("/model.js", "text/javascript"),
                         ("/style.css", "text/css"), ("/index.html", "text/html")):
        r = v.get(asset)
        assert r.headers["Content-Type"].startswith(ctype), asset
        with open(os.path.join(WEB_DIR, asset.lstrip("/")), "rb") as f:
            assert r.read() == f.read()

    with pytest.raises(urllib.error.HTTPError) as e:
        v.get("/no_such_file.js")
    assert e.value.code == 404
    # no way out of the web folder
    conn = http.client.HTTPConnection("127.0.0.1", v.port, timeout=10)
    conn.request("GET", "/../viewer.py")
    assert conn.getresponse().status == 404
    conn.close()
    conn = http.client.HTTPConnection("127.0.0.1", v.port, timeout=10)
    conn.request("GET", "/%2e%2e/viewer.py")
    assert conn.getresponse().status == 404
    conn.close()
    # a page of another site that rebinds its name to 127.0.0.1 gets nothing
    with pytest.raises(urllib.error.HTTPError) as e:
        v.get("/localtrace", headers={"Host": f"evil.example:{v.port}"})
    assert e.value.code == 403
    answer = v.get("/localtrace", headers={"Host": f"localhost:{v.port}"})
    assert answer.status == 200
    assert "Access-Control-Allow-Origin" not in answer.headers  # no other site may read it
    assert v.stop() == 0


def test_gz_trace_is_served_raw(viewer, traces):
    v = viewer("-s", "-p", "0", traces["gz"])
    with open(traces["gz"], "rb") as f:
        raw = f.read()
    assert raw[:2] == b"\x1f\x8b"
    body = v.get("/localtrace").read()
    assert body == raw
    trace = json.loads(gzip.decompress(body))
    assert json.loads(v.get("/file_info").read()) == trace["file_info"]


@pytest.mark.parametrize("kind", ["nofileinfo", "list"])
def test_file_info_defaults_to_empty(viewer, traces, kind):
    v = viewer("-s", "-p", "0", traces[kind])
    assert json.loads(v.get("/file_info").read()) == {}


def test_html_is_served_verbatim(viewer, traces):
    v = viewer("-s", "-p", "0", traces["html"])
    with open(traces["html"], "rb") as f:
        raw = f.read()
    for path in ("/", "/anything/else", "/localtrace"):
        r = v.get(path)
        assert r.read() == raw
        assert r.headers["Content-Type"].startswith("text/html")


def test_file_info_from_tail():
    fi = {"files": {"/a.py": ["def f():\n    return '\"file_info\": {}'\n", 2]},
          "functions": {"f (/a.py:1)": ["/a.py", 1]}}
    events = [{"ph": "X", "name": "f (/a.py:1)", "args": {"file_info": {"x": 1}},
               "ts": 1, "dur": 1, "pid": 1, "tid": 1}]
    last = json.dumps({"traceEvents": events, "file_info": fi}).encode()
    assert _file_info_from_tail(last) == fi
    not_last = json.dumps({"traceEvents": events, "file_info": fi, "displayTimeUnit": "ns"}).encode()
    assert _file_info_from_tail(not_last) == fi
    # only a nested "file_info": not the top-level one, so the tail scan must not answer
    nested = json.dumps({"traceEvents": events}).encode()
    assert _file_info_from_tail(nested) is None


def test_load_file_info_fallback(tmp_path):
    fi = {"files": {}, "functions": {"g": ["/b.py", 3]}}
    p = tmp_path / "t.json"
    # file_info first, then a big member: the tail scan gives up, the full parse finds it
    p.write_text(json.dumps({"file_info": fi, "traceEvents": [{"ph": "M"}] * 10}))
    assert load_file_info(str(p)) == fi
    p.write_text("not json")
    assert load_file_info(str(p)) == {}


# --------------------------------------------------------------------------- errors

def test_missing_file():
    r = run_viewer("-s", "/no/such/trace.json")
    assert r.returncode == 1
    assert "does not exist" in r.stdout
    assert "Traceback" not in r.stderr


def test_bad_extension(tmp_path):
    p = tmp_path / "trace.txt"
    p.write_text("{}")
    r = run_viewer("-s", str(p))
    assert r.returncode == 1
    assert "Unsupported file type" in r.stdout
    assert "Traceback" not in r.stderr


def test_port_in_use(traces):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = run_viewer("-s", "-p", str(port), traces["json"])
    assert r.returncode != 0
    assert "Error" in r.stdout and "already in use" in r.stdout
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("port", ["-3", "70000"])
def test_bad_port(traces, port):
    r = run_viewer("-s", "-p", port, traces["json"])
    assert r.returncode == 1
    assert "Invalid port" in r.stdout
    assert "Traceback" not in r.stderr


def test_flamegraph_removed(traces):
    r = run_viewer("--flamegraph", traces["json"])
    assert r.returncode == 1
    assert r.stdout.startswith("--flamegraph is removed")


def test_external_processor_unavailable(traces, tmp_path):
    r = run_viewer("--use_external_processor", traces["json"])
    assert r.returncode == 1
    assert "not available" in r.stdout
    r = run_viewer("--use_external_processor", "--once", traces["json"])
    assert r.returncode == 1
    assert "--once" in r.stdout
    r = run_viewer("--use_external_processor", str(tmp_path))
    assert r.returncode == 1
    assert "directory" in r.stdout


def test_sigint_exits_zero(viewer, traces):
    v = viewer("-s", "-p", "0", traces["json"])
    assert v.get("/vizviewer_info").status == 200
    assert v.stop() == 0


# --------------------------------------------------------------------------- --once

def test_once_exits_after_file_info(viewer, traces):
    v = viewer("-s", "--once", "-p", "0", traces["json"])
    v.get("/vizviewer_info").read()
    v.get("/localtrace").read()
    assert v.proc.poll() is None, "exited before the trace was served"
    v.get("/file_info").read()
    assert v.proc.wait(10) == 0


def test_once_html(viewer, traces):
    v = viewer("-s", "--once", "-p", "0", traces["html"])
    v.get("/").read()
    assert v.proc.wait(10) == 0


def test_once_timeout_without_requests(traces):
    t = time.monotonic()
    r = run_viewer("-s", "--once", "--timeout", "1", "-p", "0", traces["json"])
    assert r.returncode == 0
    assert time.monotonic() - t < 15


def test_browser_is_opened_unless_server_only(monkeypatch, traces):
    opened = []
    monkeypatch.setattr(viewer_mod.webbrowser, "open_new_tab", lambda url: opened.append(url))
    assert viewer_main(["--once", "--timeout", "0.3", "-p", "0", traces["json"]]) == 0
    assert len(opened) == 1 and opened[0].startswith("http://127.0.0.1:")
    assert viewer_main(["-s", "--once", "--timeout", "0.3", "-p", "0", traces["json"]]) == 0
    assert len(opened) == 1


# --------------------------------------------------------------------------- directory mode

@pytest.fixture
def trace_dir(tmp_path, traces):
    d = tmp_path / "dir"
    (d / "sub").mkdir(parents=True)
    for name in ("fib.json", "old.json", "new.json"):
        shutil.copy(traces["json"], d / name)
    shutil.copy(traces["gz"], d / "packed.json.gz")
    shutil.copy(traces["html"], d / "report.html")
    (d / "notes.txt").write_text("not a trace")
    shutil.copy(traces["json"], d / "sub" / "inner.json")
    return d


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def get_redirect(url):
    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as e:
        opener.open(url, timeout=20)
    assert e.value.code == 302
    return e.value.headers["Location"]


def test_directory_listing_and_redirects(viewer, trace_dir, traces):
    base = free_port_block()
    # A --timeout no step of this test can outlast, however loaded the machine:
    # the per-file servers stay up (test_directory_idle_servers_stop tests their end).
    v = viewer("-s", "-p", str(base), "--timeout", "600", str(trace_dir))
    page = v.get("/").read().decode()
    for shown in ("fib.json", "old.json", "packed.json.gz", "report.html", "sub/"):
        assert shown in page
    assert "notes.txt" not in page
    assert 'target="_blank"' in page
    assert "inner.json" in v.get("/sub/").read().decode()

    assert get_redirect(v.url + "fib.json") == f"http://127.0.0.1:{base + 1}/"
    assert get_redirect(v.url + "old.json") == f"http://127.0.0.1:{base + 2}/"
    assert get_redirect(v.url + "fib.json") == f"http://127.0.0.1:{base + 1}/"  # reused
    # the per-file server really serves that file
    with open(trace_dir / "old.json", "rb") as f:
        assert urllib.request.urlopen(f"http://127.0.0.1:{base + 2}/localtrace", timeout=20).read() == f.read()
    # html reports are served from the folder as they are
    with open(traces["html"], "rb") as f:
        assert v.get("/report.html").read() == f.read()
    assert v.stop() == 0


def test_directory_idle_servers_stop(viewer, trace_dir):
    """A file's server idle for longer than --timeout is stopped when another file is
    opened, and its port is used again."""
    base = free_port_block()
    idle_timeout = 1.0
    v = viewer("-s", "-p", str(base), "--timeout", str(idle_timeout), str(trace_dir))
    assert get_redirect(v.url + "fib.json") == f"http://127.0.0.1:{base + 1}/"
    # fib.json's server started (its last activity) before the redirect came back:
    # what the viewer compares with --timeout is its idle time, which from here on is
    # at least the time the test's own clock shows (both are CLOCK_MONOTONIC).
    idle_since = time.monotonic()
    while time.monotonic() - idle_since <= idle_timeout + 0.1:
        time.sleep(0.05)
    # (base + 1 is free again only if fib.json's server was stopped)
    assert get_redirect(v.url + "new.json") == f"http://127.0.0.1:{base + 1}/"
    assert v.stop() == 0


def test_directory_has_at_most_ten_servers(viewer, tmp_path, traces):
    base = free_port_block()
    for i in range(12):
        shutil.copy(traces["json"], tmp_path / f"t{i}.json")
    v = viewer("-s", "-p", str(base), "--timeout", "60", str(tmp_path))
    ports = set()
    for i in range(12):
        loc = get_redirect(v.url + f"t{i}.json")
        ports.add(int(loc.rsplit(":", 1)[1].strip("/")))
    assert ports <= set(range(base + 1, base + 11))
    assert len(ports) == 10


# --------------------------------------------------------------------------- the assets

def test_assets_are_offline():
    names = sorted(os.listdir(WEB_DIR))
    assert {"index.html", "app.js", "model.js", "style.css"} <= set(names)
    for name in names:
        with open(os.path.join(WEB_DIR, name), encoding="utf-8") as f:
            text = f.read()
        assert not re.search(r"https?://", text), f"{name} mentions a URL"
        assert "@import" not in text and "url(" not in text, name


def test_assets_are_package_data():
    try:
        from importlib.resources import files
    except ImportError:  # Python 3.8
        pytest.skip("importlib.resources.files needs Python 3.9")
    web = files("viztracer") / "web"
    assert (web / "index.html").is_file()
    assert "VizModel" in (web / "model.js").read_text(encoding="utf-8")
