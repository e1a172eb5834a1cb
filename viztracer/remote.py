"""What runs inside a process that ``viztracer --attach``/``--uninstall`` reaches with
``sys.remote_exec`` (Python 3.14+, PEP 768).

The attaching command writes a request (JSON: an action and, to start, the tracer's
options) and a fixed script that imports this module and calls :func:`handle`; the
answer goes back as JSON in a status file next to the request. Nothing of the request
is ever run as code.
"""

from __future__ import annotations

import builtins
import json
import os
from typing import Any, Dict, Optional

from . import viztracer
from .lifecycle import print_quietly
from .viztracer import _GLOBAL_NAME, VizTracer

# The tracer an attach started, until it is stopped, and whether to say so.
_attached: Optional[Any] = None
_verbose = True


def script(request_path: str, status_path: str) -> str:
    """The script the target runs: it imports viztracer (or says why it can't) and
    hands the request over. Only the two paths vary."""
    return (
        "try:\n"
        "    from viztracer import remote\n"
        "except BaseException as e:\n"
        "    import json, os\n"
        f"    with open({status_path!r} + '.tmp', 'w') as f:\n"
        "        json.dump({'error': f'viztracer can not be imported in process {os.getpid()}: {e}'}, f)\n"
        f"    os.replace({status_path!r} + '.tmp', {status_path!r})\n"
        "else:\n"
        f"    remote.handle({request_path!r}, {status_path!r})\n"
    )


def handle(request_path: str, status_path: str) -> None:
    try:
        with open(request_path, encoding="utf-8") as f:
            request = json.load(f)
        action = request.get("action")
        if action == "start":
            status = _start(request.get("options", {}))
        elif action == "stop":
            status = _stop()
        elif action == "uninstall":
            status = _uninstall()
        else:
            status = {"error": f"unknown request {action!r}"}
    except Exception as e:  # never break the target: report instead
        status = {"error": f"{type(e).__name__}: {e}"}
    _write_status(status_path, status)


def _running() -> Optional[Any]:
    current = viztracer._collecting() if viztracer._collecting is not None else None
    if current is not None and current.enable:
        return current
    tracer = viztracer.get_tracer()
    return tracer if tracer is not None and tracer.enable else None


def _start(options: Dict[str, Any]) -> Dict[str, Any]:
    global _attached, _verbose
    if _running() is not None:
        return {"error": f"process {os.getpid()} already has a tracer running: nothing was changed"}
    # The tracer itself says nothing (its save message would name no attach); the
    # lines below tell whoever watches this program's output, unless --quiet.
    _verbose = options.get("verbose", 1) > 0
    tracer = VizTracer(**dict(options, verbose=0))
    tracer.start()
    _attached = tracer
    _say(f"Detected attaching of viztracer: process {os.getpid()} records until it detaches")
    return {"ok": True}


def _stop() -> Dict[str, Any]:
    global _attached
    tracer, _attached = _attached, None
    if tracer is None:
        return {"error": f"process {os.getpid()} has no tracer started by --attach"}
    tracer.stop(stop_option="flush_as_finish")
    count = tracer.parse()
    tracer.save()
    tracer.terminate()
    _forget_global(tracer)
    path = os.path.abspath(tracer.output_file)
    _say(f"Saved report to {path} ({count} trace entries; view it with: vizviewer {path})")
    return {"ok": True, "output_file": path, "entries": count}


def _say(line: str) -> None:
    """A line on this program's stdout, if the attaching command is not quiet (a
    program whose stdout is closed or broken just doesn't get it)."""
    if _verbose:
        print_quietly(line, flush=True)


def _uninstall() -> Dict[str, Any]:
    global _attached
    removed = []
    for tracer in [t for t in (_attached, _running(), viztracer.get_tracer()) if t is not None]:
        if tracer not in removed:
            tracer.stop()
            tracer.clear()
            removed.append(tracer)
        _forget_global(tracer)
    _attached = None
    return {"ok": True, "removed": len(removed)}


def _forget_global(tracer: Any) -> None:
    if builtins.__dict__.get(_GLOBAL_NAME) is tracer:
        del builtins.__dict__[_GLOBAL_NAME]


def _write_status(path: str, status: Dict[str, Any]) -> None:
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(status, f)
    os.replace(path + ".tmp", path)
