"""The ``%%viztracer`` cell magic for IPython and Jupyter.

    %load_ext viztracer

    %%viztracer
    my_function()

traces the cell, saves the trace (``./viztracer_report.json`` by default; ``.json.gz``
and ``.html`` too) and shows it in the cell's output: one line saying where the file
is and the ``vizviewer`` command that opens it, and, below it, the viewer itself, with
the trace inside. The viewer is the self-contained page of an HTML report
(:mod:`viztracer.html_report`) in an ``<iframe srcdoc=...>``: it needs no server, no
port and no network, so it works on a remote kernel (JupyterHub, VS Code remote), and
it stays in the saved notebook and in ``jupyter nbconvert --to html``. The iframe is
sandboxed (``allow-scripts`` only: the page can't reach the notebook or anything else).
In a notebook that is not trusted (one you did not run or save yourself) Jupyter
sanitizes HTML outputs, which removes the iframe and leaves the line; trusting the
notebook (``jupyter trust``, or the Trust Notebook command) brings the viewer back.

A trace whose page would be larger than :data:`EMBED_LIMIT` is not embedded: the line
says so, and, with ipywidgets, a button starts a viewer in the kernel on 127.0.0.1
(``--port``, default 9001, or a free port if that one is taken) and opens the browser
on it. That viewer stops, and gives its port back, as soon as the page has loaded the
trace (or after a minute without a request). Between cells the magic holds no port
and runs no thread.

IPython is imported only when the extension is loaded, never by ``import viztracer``.
"""

from __future__ import annotations

import gzip
import html
import io
import os
import shlex
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

from .cli.arguments import option_flags, option_kwarg
from .html_report import HtmlPage
from .options import OPTION
from .trace_writer import output_kind
from .viztracer import VizTracer

# Viewers started by a button and not done yet (stopped by %unload_ext).
_servers: List[Any] = []
_servers_lock = threading.Lock()
# A viewer nobody loads from stops after this many seconds without a request.
IDLE_TIMEOUT = 60.0

# The largest viewer page, in bytes, the cell's output embeds. The page goes over the
# kernel's iopub channel, into the notebook file (and its git history, if it is kept in
# git) and into every HTML export, and each embedded page is inflated and drawn whenever
# the notebook is opened. 2 MB holds roughly 200,000 function calls (20 to 30 MB of trace
# JSON), which the viewer draws in about a second, and keeps a notebook with a few traced
# cells small enough to open, save and diff comfortably. Jupyter Server's
# iopub_data_rate_limit (1 MB/s over a 3 s window) does not set it: that limit counts the
# bytes of stream messages only (stdout and stderr), and a display message of any size
# passes (_limit_rate in jupyter_server/services/kernels/connection/channels.py, 2.21).
EMBED_LIMIT = 2_000_000
# Height of the embedded viewer, in CSS pixels (its width is the output's).
FRAME_HEIGHT = 600
# Trace bytes read at a time while the page is made.
_READ_BYTES = 1 << 20


def serve_once(path: str, port: int, open_browser: bool = True) -> Any:
    """Starts a viewer for ``path`` on ``port`` (a free port if it is taken) that stops
    once the page has loaded the trace; opens the browser on it. Returns the server."""
    from .viewer import TraceServer, ViewerError  # start-up: the button only (http.server, email...)

    try:
        srv = TraceServer(path, port)
    except ViewerError:
        srv = TraceServer(path, 0)  # the port is taken by something else
    srv.start()
    with _servers_lock:
        _servers.append(srv)
    threading.Thread(target=_stop_when_served, args=(srv,), name=f"vizviewer-{srv.port}-once",
                     daemon=True).start()
    if open_browser:
        import webbrowser  # start-up: the button only
        webbrowser.open_new_tab(srv.url)
    return srv


def _stop_when_served(srv: Any) -> None:
    srv.wait_once(IDLE_TIMEOUT)
    _stop(srv)


def _stop(srv: Any) -> None:
    with _servers_lock:
        if srv not in _servers:
            return
        _servers.remove(srv)
    srv.stop(wait_inflight=0)


def _stop_servers() -> None:
    with _servers_lock:
        running = list(_servers)
    for srv in running:
        _stop(srv)


class _TooBig(Exception):
    pass


class _CappedBuffer(io.BytesIO):
    """A BytesIO that raises :class:`_TooBig` rather than grow past ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self._limit = limit

    def write(self, data: Any, /) -> int:
        if self.tell() + memoryview(data).nbytes > self._limit:
            raise _TooBig
        return super().write(data)


def viewer_page(path: str, limit: int) -> Optional[bytes]:
    """The self-contained viewer page (an HTML report) of the trace file ``path``
    (.json, .json.gz or .html), or None if it would be larger than ``limit`` bytes."""
    kind = output_kind(path)
    if kind == "html":  # the file is the page already
        if os.path.getsize(path) > limit:
            return None
        with open(path, "rb") as f:
            return f.read()
    out = _CappedBuffer(limit)
    try:
        page = HtmlPage(out, title=os.path.basename(path))
        if kind == "gz":
            src: Any = gzip.open(path, "rb")
        else:
            src = open(path, "rb")
        with src:
            while True:
                chunk = src.read(_READ_BYTES)
                if not chunk:
                    break
                page.write(chunk)
        page.finish()
    except _TooBig:
        return None
    return out.getvalue()


def report_output(output_file: str, limit: int) -> Tuple[Dict[str, str], Dict[str, Any]]:
    """The cell's output for a trace saved to ``output_file``: the (data, metadata) of
    one display, a line of text/plain, and in text/html the same line followed by the
    viewer page in an iframe when the page is at most ``limit`` bytes."""
    command = f"vizviewer {shlex.quote(output_file)}"
    page = viewer_page(output_file, limit)
    # The line, as (text, is code) parts: plain in text/plain, marked up in text/html.
    parts = [("Saved the trace to ", False), (output_file, True)]
    if page is None:
        parts.append((f"; it is too big to show in the notebook (a viewer page over {limit / 1e6:g} MB)", False))
    parts += [("; open it with: ", False), (command, True)]
    line = "".join(t for t, _ in parts)
    text = '<p class="viztracer-report">' + "".join(
        f"<code>{html.escape(t)}</code>" if code else html.escape(t) for t, code in parts) + "</p>"
    if page is not None:
        name = os.path.basename(output_file)
        text += (f'\n<iframe class="viztracer-viewer" title="{html.escape(name, quote=True)} in vizviewer" '
                 f'sandbox="allow-scripts" style="display:block;width:100%;height:{FRAME_HEIGHT}px;'
                 'border:1px solid #cfd4dc;box-sizing:border-box" '
                 f'srcdoc="{html.escape(page.decode("utf-8", errors="replace"), quote=True)}"></iframe>')
    metadata = {"viztracer": {"output_file": output_file, "command": command, "embedded": page is not None,
                              "page_bytes": None if page is None else len(page)}}
    return {"text/plain": line, "text/html": text}, metadata


# The tracer options %%viztracer takes, spelled as on the command line (the option table).
CELL_OPTIONS = ("max_stack_depth", "ignore_c_function", "ignore_frozen", "log_func_args", "log_print",
                "log_sparse")


def _option_arguments(argument: Callable[..., Any]) -> Callable[[Any], Any]:
    """A decorator adding IPython's ``@argument`` for each of :data:`CELL_OPTIONS`."""
    def decorate(func: Any) -> Any:
        for name in reversed(CELL_OPTIONS):
            flags, kwargs = option_flags(OPTION[name])
            func = argument(*flags, **kwargs)(func)
        return func
    return decorate


def _make_magics_class() -> Any:
    from IPython.core.magic import Magics, cell_magic, magics_class, needs_local_scope  # optional: IPython
    from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring  # optional: IPython

    @magics_class
    class VizTracerMagics(Magics):
        @needs_local_scope
        @magic_arguments()
        @argument("--port", "-p", default=9001, type=int,
                  help="port of the viewer the button starts, for a trace too big to show in the "
                       "notebook (default 9001; 0 picks a free one)")
        @argument("--output_file", default="./viztracer_report.json",
                  help="where to save the trace (.json, .json.gz or .html)")
        @_option_arguments(argument)
        @cell_magic
        def viztracer(self, line: str, cell: str, local_ns: Optional[dict] = None) -> None:
            """Trace the cell with VizTracer and show the trace in the cell's output."""
            from IPython.display import display  # optional: IPython

            options = parse_argstring(self.viztracer, line)
            assert self.shell is not None
            code = self.shell.transform_cell(cell)
            namespace = local_ns if local_ns is not None else self.shell.user_ns
            output_file = os.path.abspath(options.output_file)
            kwargs = {name: option_kwarg(OPTION[name], getattr(options, name)) for name in CELL_OPTIONS}
            tracer = VizTracer(output_file=output_file, verbose=0, **kwargs)
            with tracer:
                exec(code, namespace, namespace)

            data, metadata = report_output(output_file, EMBED_LIMIT)
            display(data, raw=True, metadata=metadata)
            if not metadata["viztracer"]["embedded"]:
                # Not in the notebook: a button that opens it, for a kernel on this machine.
                try:
                    import ipywidgets  # optional: ipywidgets
                except ImportError:
                    return
                button = ipywidgets.Button(description="VizTracer Report",
                                           tooltip=f"open {output_file} in vizviewer")
                port = options.port
                button.on_click(lambda _: serve_once(output_file, port))
                display(button)

    return VizTracerMagics


def load_ipython_extension(ipython: Any) -> None:
    """Called by ``%load_ext viztracer``: registers the ``%%viztracer`` cell magic."""
    ipython.register_magics(_make_magics_class())


def unload_ipython_extension(ipython: Any) -> None:
    """Called by ``%unload_ext viztracer``: stops the viewers the buttons started."""
    _stop_servers()
