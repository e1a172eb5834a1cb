"""The ``viztracer`` command line.

    viztracer [options] script.py [args ...]
    viztracer [options] -m module [args ...]
    viztracer [options] -c "code" [args ...]
    viztracer [options] -- command [args ...]     (also: --run command ...)
    viztracer --combine a.json b.json -o out.json
    viztracer --compress result.json -o result.cvf

One module per step, each replaceable on its own:

* ``arguments``: argv (``--``/``--run``) and the rcfile become options; the options
  become a ``VizTracer`` (:func:`tracer_kwargs`, :func:`build_tracer`);
* ``program``: what is to be run (script, module, string, directory or zip), read
  and compiled but not started: a :class:`Program`;
* ``traced_run``: :class:`TracedRun` runs a :class:`Program` under a tracer the way
  Python would run it untraced (argv, ``sys.path[0]``, ``__main__``, exit status,
  tracebacks, threads and atexit callbacks), and saves the trace exactly once,
  however the program ends (normally, exception, ``sys.exit``, ``os._exit``,
  SIGTERM, SIGINT);
* ``trace_files``: ``--combine``, ``--align_combine``, ``--compress``, ``--decompress``;
* ``attach``: ``--attach``, ``--attach_installed``, ``--uninstall``;
* ``command``: picks the mode and runs it; ``errors``: how it stops early.

Everything the user asked for that is wrong is reported as a one-line message and
a non-zero exit status (:class:`CliError`), never as a traceback.
"""

from .command import main

__all__ = ["main"]
