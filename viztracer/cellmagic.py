"""The ``%%viztracer`` cell magic for IPython and Jupyter.

    %load_ext viztracer

    %%viztracer
    my_function()

traces the cell, saves the trace (``./viztracer_report.json`` by default) and shows a
link (and, with ipywidgets, a button) that opens it in vizviewer. The viewer runs in
a background thread of the kernel, on 127.0.0.1 (``--port``, default 9001, or a free
port if that one is taken), and serves the latest trace of the session.

IPython is imported only when the extension is loaded, never by ``import viztracer``.
"""

from __future__ import annotations

import html
import os
import threading
from typing import Any, Dict, Optional

# One viewer server per port for the whole session; it serves the newest trace.
_servers: Dict[int, Any] = {}
_servers_lock = threading.Lock()


def _viewer_url(path: str, port: int) -> str:
    """Starts (or re-points) the session's viewer for ``path``; returns its URL."""
    from .viewer import TraceServer, ViewerError

    path = os.path.abspath(path)
    with _servers_lock:
        srv = _servers.get(port)
        if srv is not None and srv.alive and srv.path == path:
            return srv.url
        if srv is not None:
            srv.stop(wait_inflight=0.5)
            del _servers[port]
        try:
            srv = TraceServer(path, port)
        except ViewerError:
            srv = TraceServer(path, 0)  # the port is taken by something else
        srv.start()
        _servers[port] = srv
        return srv.url


def _stop_servers() -> None:
    with _servers_lock:
        for srv in _servers.values():
            srv.stop(wait_inflight=0)
        _servers.clear()


def _make_magics_class() -> Any:
    from IPython.core.magic import Magics, cell_magic, magics_class, needs_local_scope
    from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

    @magics_class
    class VizTracerMagics(Magics):
        @needs_local_scope
        @magic_arguments()
        @argument("--port", "-p", default=9001, type=int,
                  help="port of the viewer (default 9001; 0 picks a free one)")
        @argument("--output_file", default="./viztracer_report.json",
                  help="where to save the trace (.json, .json.gz or .html)")
        @argument("--max_stack_depth", default=-1, type=int)
        @argument("--ignore_c_function", action="store_true")
        @argument("--ignore_frozen", action="store_true")
        @argument("--log_func_args", action="store_true")
        @argument("--log_print", action="store_true")
        @argument("--log_sparse", action="store_true")
        @cell_magic
        def viztracer(self, line: str, cell: str, local_ns: Optional[dict] = None) -> None:
            """Trace the cell with VizTracer and show a link that opens the result."""
            from IPython.display import HTML, display

            from .viztracer import VizTracer

            options = parse_argstring(self.viztracer, line)
            assert self.shell is not None
            code = self.shell.transform_cell(cell)
            namespace = local_ns if local_ns is not None else self.shell.user_ns
            output_file = os.path.abspath(options.output_file)
            tracer = VizTracer(
                output_file=output_file,
                verbose=0,
                max_stack_depth=options.max_stack_depth,
                ignore_c_function=options.ignore_c_function,
                ignore_frozen=options.ignore_frozen,
                log_func_args=options.log_func_args,
                log_print=options.log_print,
                log_sparse=options.log_sparse,
            )
            with tracer:
                exec(code, namespace, namespace)

            url = _viewer_url(output_file, options.port)
            link = (f'<a href="{html.escape(url, quote=True)}" target="_blank" rel="noopener" '
                    f'class="viztracer-report">Open the VizTracer report</a> '
                    f'<span style="color:#777">({html.escape(output_file)})</span>')
            try:
                import ipywidgets
            except ImportError:
                ipywidgets = None
            if ipywidgets is not None:
                button = ipywidgets.Button(description="VizTracer Report", tooltip=url)

                def open_report(_: Any) -> None:
                    import webbrowser
                    webbrowser.open_new_tab(_viewer_url(output_file, options.port))

                button.on_click(open_report)
                display(button)
            display(HTML(link), metadata={"viztracer": {"url": url, "output_file": output_file}})
            print(f"Saved the trace to {output_file}; view it on {url}")

    return VizTracerMagics


def load_ipython_extension(ipython: Any) -> None:
    """Called by ``%load_ext viztracer``: registers the ``%%viztracer`` cell magic."""
    ipython.register_magics(_make_magics_class())


def unload_ipython_extension(ipython: Any) -> None:
    """Called by ``%unload_ext viztracer``: stops the viewer servers of the session."""
    _stop_servers()
