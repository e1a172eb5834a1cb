"""Started in every Python process launched while a viztracer collection is active
(this directory is put in front of PYTHONPATH): joins the collection, then runs the
sitecustomize this one hides, if there is one."""

import os
import sys


def _without_us() -> str:
    """Take this directory out of sys.path: the program sees the path it would see
    untraced. Returns the directory."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    return here


def _join_collection() -> None:
    try:
        from viztracer.child import join_collection
    except Exception:
        return  # another Python, or one without viztracer: run untraced, silently
    try:
        join_collection()
    except Exception as e:  # never break the program because of the tracer
        print(f"VizTracer: could not trace process {os.getpid()}: {e!r}", file=sys.stderr)


def _chain_original(here: str) -> None:
    """Run the sitecustomize that would have run without us."""
    import importlib.machinery
    import importlib.util
    spec = importlib.machinery.PathFinder.find_spec(
        "sitecustomize", [p for p in sys.path if os.path.abspath(p or ".") != here])
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


_here = _without_us()
if os.environ.get("VIZTRACER_COLLECT"):
    _join_collection()
_chain_original(_here)
