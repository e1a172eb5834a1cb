"""viztracer: a low-overhead tracer and timeline profiler for Python.

    from viztracer import VizTracer
    with VizTracer(output_file="result.json"):
        my_program()

Then open the file with ``vizviewer result.json``.
"""

from .decorator import ignore_function, log_sparse, trace_and_save
from .version import __version__
from .vizcounter import VizCounter
from .vizobject import VizObject
from .viztracer import VizTracer, get_tracer


def load_ipython_extension(ipython):  # type: ignore[no-untyped-def]
    """``%load_ext viztracer``: registers the ``%%viztracer`` cell magic. (Imported
    lazily: ``import viztracer`` stays fast outside of IPython.)"""
    from .cellmagic import load_ipython_extension as load  # start-up: only %load_ext needs it
    return load(ipython)


__all__ = [
    "__version__",
    "VizTracer",
    "VizCounter",
    "VizObject",
    "get_tracer",
    "ignore_function",
    "log_sparse",
    "trace_and_save",
    "load_ipython_extension",
]
