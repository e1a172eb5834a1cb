"""The ``%%viztracer`` cell magic for IPython and Jupyter.

    %load_ext viztracer

    %%viztracer
    my_function()

traces the cell, saves the trace (``./viztracer_report.json`` by default) and shows
where it is, with the ``vizviewer`` command that opens it and, with ipywidgets, a
button that does. The button starts a viewer on 127.0.0.1 (``--port``, default 9001,
or a free port if that one is taken) and opens the browser on it; that viewer stops,
and gives its port back, as soon as the page has loaded the trace (or after a minute
without a request). Between cells the magic holds no port and runs no thread.

IPython is imported only when the extension is loaded, never by ``import viztracer``.
"""

from __future__ import annotations

import html
import os
import shlex
import threading
from typing import Any, Callable, List, Optional

# Viewers started by a button and not done yet (stopped by %unload_ext).
_servers: List[Any] = []
_servers_lock = threading.Lock()
# A viewer nobody loads from stops after this many seconds without a request.
IDLE_TIMEOUT = 60.0


def serve_once(path: str, port: int, open_browser: bool = True) -> Any:
    """Starts a viewer for ``path`` on ``port`` (a free port if it is taken) that stops
    once the page has loaded the trace; opens the browser on it. Returns the server."""
    from .viewer import TraceServer, ViewerError

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
        import webbrowser
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


# The tracer options %%viztracer takes, spelled as on the command line (the option table).
CELL_OPTIONS = ("max_stack_depth", "ignore_c_function", "ignore_frozen", "log_func_args", "log_print",
                "log_sparse")


def _option_arguments(argument: Callable[..., Any]) -> Callable[[Any], Any]:
    """A decorator adding IPython's ``@argument`` for each of :data:`CELL_OPTIONS`."""
    from .cli.arguments import option_flags
    from .options import OPTION

    def decorate(func: Any) -> Any:
        for name in reversed(CELL_OPTIONS):
            flags, kwargs = option_flags(OPTION[name])
            func = argument(*flags, **kwargs)(func)
        return func
    return decorate


def _make_magics_class() -> Any:
    from IPython.core.magic import Magics, cell_magic, magics_class, needs_local_scope
    from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

    @magics_class
    class VizTracerMagics(Magics):
        @needs_local_scope
        @magic_arguments()
        @argument("--port", "-p", default=9001, type=int,
                  help="port of the viewer the button starts (default 9001; 0 picks a free one)")
        @argument("--output_file", default="./viztracer_report.json",
                  help="where to save the trace (.json, .json.gz or .html)")
        @_option_arguments(argument)
        @cell_magic
        def viztracer(self, line: str, cell: str, local_ns: Optional[dict] = None) -> None:
            """Trace the cell with VizTracer and show a link that opens the result."""
            from IPython.display import HTML, display

            from .cli.arguments import option_kwarg
            from .options import OPTION
            from .viztracer import VizTracer

            options = parse_argstring(self.viztracer, line)
            assert self.shell is not None
            code = self.shell.transform_cell(cell)
            namespace = local_ns if local_ns is not None else self.shell.user_ns
            output_file = os.path.abspath(options.output_file)
            kwargs = {name: option_kwarg(OPTION[name], getattr(options, name)) for name in CELL_OPTIONS}
            tracer = VizTracer(output_file=output_file, verbose=0, **kwargs)
            with tracer:
                exec(code, namespace, namespace)

            command = f"vizviewer {shlex.quote(output_file)}"
            try:
                import ipywidgets
            except ImportError:
                ipywidgets = None
            if ipywidgets is not None:
                button = ipywidgets.Button(description="VizTracer Report",
                                           tooltip=f"open {output_file} in vizviewer")
                port = options.port
                button.on_click(lambda _: serve_once(output_file, port))
                display(button)
            text = (f'<span class="viztracer-report">Saved the trace to <code>{html.escape(output_file)}</code>; '
                    f'open it with <code>{html.escape(command)}</code></span>')
            display(HTML(text), metadata={"viztracer": {"output_file": output_file, "command": command}})
            print(f"Saved the trace to {output_file}; view it with: {command}")

    return VizTracerMagics


def load_ipython_extension(ipython: Any) -> None:
    """Called by ``%load_ext viztracer``: registers the ``%%viztracer`` cell magic."""
    ipython.register_magics(_make_magics_class())


def unload_ipython_extension(ipython: Any) -> None:
    """Called by ``%unload_ext viztracer``: stops the viewers the buttons started."""
    _stop_servers()
