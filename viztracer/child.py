"""A new Python process joining the collection of the tree it was started in (see
tree_env.py): start a tracer that sends this process's trace to the tree's collector
when the process ends."""

from __future__ import annotations

import json
import os
import sys
from typing import List, Optional

from .options import member_kwargs
from .tree_env import ENV_CONFIG
from .util import command_line
from .viztracer import ProcessStart, VizTracer

# multiprocessing's helper processes outlive the program's own processes: tracing
# them would make the root wait for them forever.
_HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.semaphore_tracker",
            "loky.backend.resource_tracker")
_FORKSERVER = "multiprocessing.forkserver"


# Interpreter options that take a value (`-W error`, `-X dev`).
_OPTIONS_WITH_VALUE = set("WX")


def forked_label() -> str:
    """The name of a forked child: after the program it runs (``sys.argv``), since
    its command line is its parent's (the ``viztracer`` command, say)."""
    if not sys.argv or not sys.argv[0]:
        return "python"
    return "python -c" if sys.argv[0] == "-c" else sys.argv[0]


def process_label(args: Optional[List[str]] = None) -> str:
    """How the trace names a process started from a command line: the script as
    typed, the module of ``-m``, or ``python -c``."""
    args = (command_line() if args is None else args)[1:]
    i = 0
    while i < len(args):
        a = args[i]
        i += 1
        if a == "--check-hash-based-pycs":
            i += 1
            continue
        if a == "-" or not a.startswith("-") or a.startswith("--"):
            return a if not a.startswith("--") else "python"
        # A cluster of short options, like -Esm or -cprint(1).
        for j, ch in enumerate(a[1:], start=1):
            if ch == "c":
                return "python -c"
            if ch == "m":
                rest = a[j + 1:]
                return rest or (args[i] if i < len(args) else "python")
            if ch in _OPTIONS_WITH_VALUE:
                if not a[j + 1:]:
                    i += 1
                break
    return "python"


def join_collection() -> None:
    """Called from sitecustomize in a new Python process."""
    raw = os.environ.get(ENV_CONFIG)
    if not raw:
        return
    config = json.loads(raw)
    cmd = " ".join(command_line())
    if any(h in cmd for h in _HELPERS):
        return
    if _FORKSERVER in cmd:
        # Not traced itself, but every process it forks is.
        os.register_at_fork(after_in_child=lambda: start_forked_member(config))
        return
    start_member(config)


def start_forked_member(config: dict) -> None:
    """In a child of the forkserver: its depth counts from ``Process._bootstrap``, as
    in a child of the fork start method (see ``viztracer.ProcessStart``)."""
    start_member(config)
    ProcessStart.watch()


def start_member(config: dict) -> None:
    kwargs = member_kwargs(config.get("kwargs", {}))
    kwargs["report_endpoint"] = config["endpoint"]
    tracer = VizTracer(**kwargs)
    tracer.join_collection(config)
    tracer.start()
