"""``vizviewer``: a small local web server that shows a trace file in the browser.

    vizviewer result.json            # opens the browser on the timeline
    vizviewer -s -p 9002 out.json.gz # only serve, on another port
    vizviewer --once result.html     # serve one page load, then exit
    vizviewer ./traces/              # list a folder; each file gets its own server

The page itself lives in ``viztracer/web/`` (plain HTML, CSS and JavaScript, no
network access). For a JSON trace the server answers these paths:

``/``               the viewer page (and its assets under ``/``)
``/vizviewer_info`` ``{}``: tells the page it is talking to vizviewer
``/localtrace``     the trace file's bytes exactly as on disk (still gzipped for .gz)
``/file_info``      the trace's ``file_info`` object, or ``{}`` (the page asks for it last)

An ``.html`` report is served as it is, on every path. The server binds to
127.0.0.1 unless ``--host`` says otherwise.
"""

from __future__ import annotations

import argparse
import errno
import gzip
import html
import http.server
import json
import os
import posixpath
import re
import sys
import threading
import time
import urllib.parse
import webbrowser
from typing import Any, Dict, List, Optional

WEB_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "web")
DEFAULT_PORT = 9001
DEFAULT_HOST = "127.0.0.1"
# Sub-servers of the directory mode use the ports base+1 ... base+MAX_SUB_SERVERS.
MAX_SUB_SERVERS = 10

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".gz": "application/gzip",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}


class ViewerError(Exception):
    """A problem to report to the user as one line, with exit code 1."""


def trace_kind(path: str) -> Optional[str]:
    """``"json"``, ``"gz"`` or ``"html"`` for a file name vizviewer can show, else None."""
    lower = path.lower()
    if lower.endswith(".json"):
        return "json"
    if lower.endswith(".gz"):
        return "gz"
    if lower.endswith(".html") or lower.endswith(".htm"):
        return "html"
    return None


def _content_type(path: str) -> str:
    return _CONTENT_TYPES.get(os.path.splitext(path)[1].lower(), "application/octet-stream")


# --------------------------------------------------------------------------- file_info

_FILE_INFO_KEY = b'"file_info"'


def _file_info_from_tail(data: bytes) -> Optional[Dict[str, Any]]:
    """Finds the top-level ``file_info`` member near the end of a trace without parsing
    the whole file (our writers put it last). Returns None when unsure.

    A quote inside a JSON string is always escaped, so the bytes ``"file_info"``
    followed by a colon can only be an object key; it is the top-level one when what
    follows its value closes the outermost object (maybe after a few more members)."""
    end = len(data)
    decoder = json.JSONDecoder()
    for _ in range(4):
        pos = data.rfind(_FILE_INFO_KEY, 0, end)
        if pos < 0:
            return None
        end = pos
        before = data[max(0, pos - 16):pos].rstrip()
        if not before.endswith((b",", b"{")):
            continue
        try:
            text = data[pos + len(_FILE_INFO_KEY):].decode("utf-8")
        except UnicodeDecodeError:
            return None
        m = re.match(r"\s*:\s*", text)
        if not m:
            continue
        try:
            value, stop = decoder.raw_decode(text, m.end())
        except ValueError:
            continue
        rest = text[stop:].strip()
        if rest != "}":
            # Other top-level members may follow ("displayTimeUnit": "ns"); accept them
            # only if they parse as the rest of one object.
            if not rest.startswith(",") or len(rest) > 65536:
                continue
            try:
                json.loads("{" + rest[1:])
            except ValueError:
                continue
        return value if isinstance(value, dict) else {}
    return None


def load_file_info(path: str) -> Dict[str, Any]:
    """The ``file_info`` object of a .json or .gz trace, or ``{}``."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    found = _file_info_from_tail(data)
    if found is not None:
        return found
    try:
        trace = json.loads(data)
    except ValueError:
        return {}
    if isinstance(trace, dict) and isinstance(trace.get("file_info"), dict):
        return trace["file_info"]
    return {}


# --------------------------------------------------------------------------- handlers

class _Handler(http.server.BaseHTTPRequestHandler):
    server: "_HTTPServer"
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        pass

    def handle_one_request(self) -> None:
        owner = self.server.owner
        owner._request_started()
        try:
            super().handle_one_request()
        finally:
            owner._request_finished()

    def do_GET(self) -> None:
        try:
            if not self.server.owner.host_allowed(_request_host(self)):
                self.send_error_page(403, "This server only answers requests for localhost")
                return
            self.server.owner.handle(self, head=False)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_HEAD(self) -> None:
        try:
            if not self.server.owner.host_allowed(_request_host(self)):
                self.send_error_page(403, "This server only answers requests for localhost")
                return
            self.server.owner.handle(self, head=True)
        except (BrokenPipeError, ConnectionResetError):
            pass

    # helpers used by the owners
    def send_bytes(self, body: bytes, content_type: str, head: bool, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def send_file(self, path: str, head: bool, content_type: Optional[str] = None) -> None:
        try:
            f = open(path, "rb")
        except OSError:
            self.send_error_page(404)
            return
        with f:
            size = os.fstat(f.fileno()).st_size
            self.send_response(200)
            self.send_header("Content-Type", content_type or _content_type(path))
            self.send_header("Content-Length", str(size))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if head:
                return
            self.wfile.flush()
            # os.sendfile where the OS has it (socket.sendfile falls back to send()).
            self.connection.sendfile(f)

    def send_error_page(self, status: int, message: str = "") -> None:
        text = message or {404: "Not found", 400: "Bad request"}.get(status, "Error")
        body = f"<!doctype html><title>{status}</title><p>{html.escape(text)}</p>".encode()
        self.send_bytes(body, "text/html; charset=utf-8", head=self.command == "HEAD", status=status)

    def redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: Any, owner: "_ServerBase") -> None:
        self.owner = owner
        super().__init__(address, _Handler)


def _request_host(req: http.server.BaseHTTPRequestHandler) -> Optional[str]:
    """The host name the client asked for (Host header), without the port."""
    value = req.headers.get("Host")
    if not value:
        return None
    try:
        return urllib.parse.urlsplit("//" + value).hostname
    except ValueError:
        return ""


def _url_path(raw: str) -> str:
    return urllib.parse.unquote(urllib.parse.urlsplit(raw).path)


def _safe_join(root: str, url_path: str) -> Optional[str]:
    """The file under ``root`` that ``url_path`` names, or None if it escapes ``root``."""
    parts = [p for p in posixpath.normpath("/" + url_path).split("/") if p]
    if any(p in (".", "..") or "\\" in p or "\0" in p for p in parts):
        return None
    full = os.path.realpath(os.path.join(root, *parts))
    base = os.path.realpath(root)
    if full != base and not full.startswith(base + os.sep):
        return None
    return full


class _ServerBase:
    """An HTTP server on a thread, with bookkeeping of requests for ``--once``,
    ``--timeout`` and the directory mode."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self._lock = threading.Lock()
        self._inflight = 0
        self.last_activity = time.monotonic()
        self.served = threading.Event()
        try:
            self.httpd = _HTTPServer((host, port), self)
        except OverflowError as e:
            raise ViewerError(f"Error! Invalid port {port}: use a number from 0 to 65535") from e
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise ViewerError(f'Error! Port {port} is already in use, try another port with "--port"') from e
            if e.errno == errno.EACCES:
                raise ViewerError(f'Error! No permission to use port {port}, try another port with "--port"') from e
            raise ViewerError(f"Error! Can't listen on {host}:{port}: {e.strerror or e}") from e
        self.port = self.httpd.server_address[1]
        self._thread: Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        host = self.host if self.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"

    def start(self) -> "_ServerBase":
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"vizviewer-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self, wait_inflight: float = 2.0) -> None:
        deadline = time.monotonic() + wait_inflight
        while self.inflight and time.monotonic() < deadline:
            time.sleep(0.02)
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(2)
            self._thread = None
        self.httpd.server_close()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def inflight(self) -> int:
        with self._lock:
            return self._inflight

    def host_allowed(self, host: Optional[str]) -> bool:
        """Guards against DNS rebinding: a server on the loopback address answers only
        requests addressed to a loopback name."""
        if host is None or self.host in ("0.0.0.0", "::", ""):
            return True
        return host.lower() in ("127.0.0.1", "localhost", "::1", self.host.lower())

    def idle_for(self) -> float:
        with self._lock:
            if self._inflight:
                return 0.0
            return time.monotonic() - self.last_activity

    def _request_started(self) -> None:
        with self._lock:
            self._inflight += 1
            self.last_activity = time.monotonic()

    def _request_finished(self) -> None:
        with self._lock:
            self._inflight -= 1
            self.last_activity = time.monotonic()

    def wait_once(self, timeout: float) -> None:
        """Returns when the trace was served (and every request in flight finished), or
        when no request came for ``timeout`` seconds."""
        while True:
            if self.served.wait(0.05):
                break
            if timeout > 0 and self.idle_for() > timeout:
                break
        # The page may still be reading the trace while it asks for file_info.
        deadline = time.monotonic() + 120
        while self.inflight and time.monotonic() < deadline:
            time.sleep(0.02)

    def handle(self, req: _Handler, head: bool) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class TraceServer(_ServerBase):
    """Serves one trace file (.json, .json.gz/.gz or .html) and the viewer page."""

    def __init__(self, path: str, port: int = DEFAULT_PORT, host: str = DEFAULT_HOST) -> None:
        self.path = os.path.abspath(path)
        kind = trace_kind(self.path)
        if kind is None:
            raise ViewerError(f"Error! Unsupported file type: {os.path.basename(path)} "
                              "(vizviewer opens .json, .json.gz, .gz and .html files, or a directory)")
        self.kind = kind
        self._file_info: Optional[bytes] = None
        self._file_info_lock = threading.Lock()
        super().__init__(host, port)

    def file_info_bytes(self) -> bytes:
        with self._file_info_lock:
            if self._file_info is None:
                try:
                    info = load_file_info(self.path)
                except (OSError, EOFError, ValueError):
                    info = {}
                self._file_info = json.dumps(info).encode("utf-8")
            return self._file_info

    def handle(self, req: _Handler, head: bool) -> None:
        path = _url_path(req.path)
        if self.kind == "html":
            req.send_file(self.path, head, "text/html; charset=utf-8")
            self.served.set()
            return
        if path.endswith("vizviewer_info"):
            req.send_bytes(b"{}", "application/json", head)
        elif path.endswith("file_info"):
            req.send_bytes(self.file_info_bytes(), "application/json", head)
            self.served.set()
        elif path.endswith("localtrace"):
            req.send_file(self.path, head, "application/gzip" if self.kind == "gz" else "application/json")
        else:
            if path in ("", "/"):
                path = "/index.html"
            full = _safe_join(WEB_DIR, path)
            if full is None or not os.path.isfile(full):
                req.send_error_page(404)
            else:
                req.send_file(full, head)


class DirectoryServer(_ServerBase):
    """Lists a folder's traces; opening one starts (or reuses) a :class:`TraceServer`
    on one of the next ports and redirects the browser there."""

    def __init__(self, root: str, port: int = DEFAULT_PORT, host: str = DEFAULT_HOST,
                 timeout: float = 10) -> None:
        self.root = os.path.realpath(root)
        self.timeout = timeout
        self.subs: Dict[str, TraceServer] = {}
        self._subs_lock = threading.Lock()
        super().__init__(host, port)
        self.base_port = port

    def stop(self, wait_inflight: float = 2.0) -> None:
        with self._subs_lock:
            subs = list(self.subs.values())
            self.subs.clear()
        for s in subs:
            s.stop(wait_inflight=0)
        super().stop(wait_inflight)

    def sub_server(self, path: str) -> TraceServer:
        with self._subs_lock:
            srv = self.subs.get(path)
            if srv is not None and srv.alive:
                return srv
            # Shut down the servers nobody used for a while.
            for p, s in list(self.subs.items()):
                if not s.alive or (self.timeout > 0 and s.idle_for() > self.timeout):
                    s.stop(wait_inflight=0)
                    del self.subs[p]
            if len(self.subs) >= MAX_SUB_SERVERS:
                p, s = max(self.subs.items(), key=lambda kv: kv[1].idle_for())
                s.stop(wait_inflight=0)
                del self.subs[p]
            if self.base_port == 0:
                candidates: List[int] = [0]
            else:
                used = {s.port for s in self.subs.values()}
                candidates = [self.base_port + i for i in range(1, MAX_SUB_SERVERS + 1)
                              if self.base_port + i not in used and self.base_port + i <= 65535]
            last_error: Optional[ViewerError] = None
            for port in candidates:
                try:
                    srv = TraceServer(path, port, self.host)
                except ViewerError as e:
                    last_error = e
                    continue
                srv.start()
                self.subs[path] = srv
                return srv
            raise last_error or ViewerError("Error! No free port for another trace server")

    def handle(self, req: _Handler, head: bool) -> None:
        url_path = _url_path(req.path)
        full = _safe_join(self.root, url_path)
        if full is None or not os.path.exists(full):
            req.send_error_page(404)
            return
        if os.path.isdir(full):
            if not url_path.endswith("/"):
                req.redirect(urllib.parse.quote(url_path + "/"))
                return
            req.send_bytes(self.listing(full, url_path).encode("utf-8"), "text/html; charset=utf-8", head)
            return
        kind = trace_kind(full)
        if kind in ("json", "gz"):
            try:
                srv = self.sub_server(full)
            except ViewerError as e:
                req.send_error_page(503, str(e))
                return
            host = _request_host(req) or "127.0.0.1"
            if ":" in host:
                host = f"[{host}]"
            req.redirect(f"http://{host}:{srv.port}/")
            return
        req.send_file(full, head)

    def listing(self, folder: str, url_path: str) -> str:
        dirs, files = [], []
        try:
            names = sorted(os.listdir(folder), key=str.lower)
        except OSError:
            names = []
        for name in names:
            if name.startswith("."):
                continue
            p = os.path.join(folder, name)
            if os.path.isdir(p):
                dirs.append(name)
            elif trace_kind(name) is not None:
                files.append(name)
        rows = []
        if url_path != "/":
            rows.append('<li class="dir"><a href="../">../</a></li>')
        for d in dirs:
            href = urllib.parse.quote(d) + "/"
            rows.append(f'<li class="dir"><a href="{href}">{html.escape(d)}/</a></li>')
        for f in files:
            href = urllib.parse.quote(f)
            rows.append(f'<li class="file"><a href="{href}" target="_blank" rel="noopener">{html.escape(f)}</a></li>')
        if not dirs and not files:
            rows.append("<li>No traces here (.json, .json.gz and .html files are listed)</li>")
        title = html.escape(url_path)
        return ("<!doctype html><html><head><meta charset=\"utf-8\"><link rel=\"icon\" href=\"data:,\">"
                f"<title>vizviewer: {title}</title><style>"
                "body{font:14px sans-serif;margin:2em;color:#222}h1{font-size:18px}"
                "li{margin:.3em 0;list-style:none}li.dir a{font-weight:bold}a{color:#1a56b0}"
                f"</style></head><body><h1>Traces in {title}</h1><ul>{''.join(rows)}</ul></body></html>")


# --------------------------------------------------------------------------- command line

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vizviewer",
        description="Show a VizTracer trace (.json, .json.gz, .html) or a folder of traces in the browser.")
    parser.add_argument("file", nargs=1, help="a trace file, or a directory to list")
    parser.add_argument("-s", "--server_only", action="store_true", default=False,
                        help="only run the server, do not open a browser")
    parser.add_argument("-p", "--port", type=int, default=DEFAULT_PORT,
                        help=f"port of the server (default {DEFAULT_PORT}; 0 picks a free one)")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"address to listen on (default {DEFAULT_HOST}, this machine only)")
    parser.add_argument("--once", action="store_true", default=False,
                        help="exit once the trace has been loaded by the browser")
    parser.add_argument("--timeout", type=float, default=10,
                        help="with --once: exit after this many seconds without a request; in directory "
                             "mode: stop a file's server after it has been idle this long (default 10)")
    parser.add_argument("--use_external_processor", action="store_true", default=False,
                        help="not available: this viewer needs no trace processor")
    parser.add_argument("--flamegraph", action="store_true", default=False, help=argparse.SUPPRESS)
    return parser


def _say(*lines: str) -> None:
    for line in lines:
        print(line)
    sys.stdout.flush()


def _check_args(args: argparse.Namespace) -> str:
    """Validates the options; returns the absolute path. Raises ViewerError."""
    path = os.path.abspath(os.path.expanduser(args.file[0]))
    if args.flamegraph:
        raise ViewerError("--flamegraph is removed: the timeline and its summary table "
                          "(total and self time per function) replace it. Run: vizviewer <trace file>")
    if args.use_external_processor:
        if args.once:
            raise ViewerError("Error! --use_external_processor can't be used with --once "
                              "(and is not available in this vizviewer)")
        if os.path.isdir(path):
            raise ViewerError("Error! --use_external_processor can't be used with a directory "
                              "(and is not available in this vizviewer)")
        raise ViewerError("Error! --use_external_processor is not available: this vizviewer works "
                          "offline and loads traces in the browser itself, without a trace processor. "
                          "Run vizviewer without this flag.")
    if not (0 <= args.port <= 65535):
        raise ViewerError(f"Error! Invalid port {args.port}: use a number from 0 to 65535")
    if not os.path.exists(path):
        raise ViewerError(f"File {args.file[0]} does not exist!")
    if not os.path.isdir(path) and trace_kind(path) is None:
        raise ViewerError(f"Error! Unsupported file type: {os.path.basename(path)} "
                          "(vizviewer opens .json, .json.gz, .gz and .html files, or a directory)")
    return path


def _banner(url: str) -> None:
    _say("Running vizviewer",
         f"You can also view your trace on {url}",
         "Press Ctrl+C to quit")


def _wait_forever() -> None:
    while True:
        time.sleep(3600)


def run(args: argparse.Namespace) -> int:
    try:
        path = _check_args(args)
        if os.path.isdir(path):
            server: _ServerBase = DirectoryServer(path, args.port, args.host, args.timeout)
        else:
            server = TraceServer(path, args.port, args.host)
    except ViewerError as e:
        _say(str(e))
        return 1
    server.start()
    try:
        _banner(server.url)
        if not args.server_only:
            webbrowser.open_new_tab(server.url)
        if args.once and isinstance(server, TraceServer):
            server.wait_once(args.timeout)
        else:
            _wait_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def viewer_main(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``vizviewer`` and ``python -m viztracer.viewer``; returns the exit code."""
    args = _parser().parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(viewer_main())
