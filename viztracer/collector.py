"""Collecting the traces of several processes into one file.

The process that owns the output file (the *root*: the ``viztracer`` command, or a
tracer made with ``ignore_multiprocess=False``) creates a private directory and
advertises it to its children through the environment:

- ``VIZTRACER_COLLECT`` holds the directory and the tracer options, and
- ``PYTHONPATH`` gets ``viztracer/_child`` in front, whose ``sitecustomize`` starts a
  tracer in every Python process started from here on (``subprocess``, ``os.system``,
  ``multiprocessing`` spawn and forkserver, their children in turn). The child's
  argv, ``sys.path[0]``, ``__main__`` and output are the ones it would have untraced.

Forked children (``os.fork``, multiprocessing's fork) keep the tracer they inherit;
it drops the parent's events and joins the collection (see ``VizTracer``).

Every member writes its own trace with the native writer to
``<dir>/<pid>_<token>.json`` (through a temporary name and a rename, so a file is
either complete or absent), and marks itself alive meanwhile with
``<pid>_<token>.running``. At the end the root waits for members that are still alive
(a dead or zombie pid is not waited for; Ctrl+C stops the wait), then splices the
event arrays of all files into the output without parsing them
(:func:`viztracer.trace_writer.merge_traces`), and removes the directory.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

from .util import pid_alive

ENV_CONFIG = "VIZTRACER_COLLECT"
CHILD_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_child")

def member_paths(directory: str, pid: int) -> Tuple[str, str]:
    """(trace file, alive marker) for a new member process of a collection."""
    stem = os.path.join(directory, f"{pid}_{os.urandom(4).hex()}")
    return stem + ".json", stem + ".running"


def descendants(root: int) -> List[int]:
    """Live (non-zombie) descendant processes of ``root``, from /proc (Linux); an
    empty list where /proc is not available."""
    children: Dict[int, List[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] in (b"Z", b"X"):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    out: List[int] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            out.append(child)
            stack.append(child)
    return out


def _is_multiprocessing_helper(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read()
    except OSError:
        return False
    return b"multiprocessing.resource_tracker" in cmd or b"multiprocessing.forkserver" in cmd


def _files_ending(directory: str, suffix: str) -> List[str]:
    """The files of ``directory`` named ``*suffix`` (not hidden: partial traces are)."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return [os.path.join(directory, n) for n in names if n.endswith(suffix) and not n.startswith(".")]


class Collector:
    """The root's side of a collection."""

    def __init__(self, tracer_kwargs: Dict[str, Any], root_output: str) -> None:
        import tempfile  # start-up: import viztracer alone does not pay for it
        self.directory = tempfile.mkdtemp(prefix="viztracer_")
        self.root_pid = os.getpid()
        # root_output: the root's report, which no member may write (see multiprocess.take_over).
        self.config = {"dir": self.directory, "kwargs": tracer_kwargs, "root_output": root_output}
        self._saved_env: Optional[Dict[str, Optional[str]]] = None

    def activate(self) -> None:
        """Make child processes started from now on join the collection."""
        if self._saved_env is not None:
            return
        self._saved_env = {k: os.environ.get(k) for k in (ENV_CONFIG, "PYTHONPATH")}
        os.environ[ENV_CONFIG] = json.dumps(self.config)
        old = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = CHILD_PATH + (os.pathsep + old if old else "")

    def deactivate(self) -> None:
        """Stop advertising the collection (children started later run untraced)."""
        if self._saved_env is None:
            return
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = None

    def running_members(self) -> List[int]:
        pids = []
        for marker in _files_ending(self.directory, ".running"):
            try:
                pid = int(os.path.basename(marker).split("_", 1)[0])
            except ValueError:
                continue
            if pid != os.getpid() and pid_alive(pid):
                pids.append(pid)
        return pids

    def starting_members(self, running: List[int]) -> List[int]:
        """Descendant processes that have not marked themselves yet: a Python child
        started just before the end may still be starting up."""
        return [p for p in descendants(self.root_pid)
                if p not in running and not _is_multiprocessing_helper(p)]

    def wait_for_members(self, verbose: int = 1, poll: float = 0.02, grace: float = 1.0) -> bool:
        """Wait until no member process is still running (giving processes that are
        still starting up ``grace`` seconds to join). Returns False if the wait was cut
        short with Ctrl+C (what was collected is still saved)."""
        last = None
        deadline = time.monotonic() + grace
        try:
            while True:
                running = self.running_members()
                starting = self.starting_members(running) if time.monotonic() < deadline else []
                if not running and not starting:
                    break
                if verbose and running and len(running) != last:
                    print(f"Waiting for {len(running)} child process(es) to finish their traces, "
                          f"Ctrl+C to save without them", file=sys.stderr, flush=True)
                    last = len(running)
                time.sleep(poll)
        except KeyboardInterrupt:
            return False
        return True

    def traces(self) -> List[str]:
        """The complete trace files, the root's first."""
        files = sorted(_files_ending(self.directory, ".json"))
        root = [f for f in files if os.path.basename(f).startswith(f"{self.root_pid}_")]
        return root + [f for f in files if f not in root]

    def cleanup(self) -> None:
        import shutil  # start-up: as tempfile (which imported it already)
        self.deactivate()
        shutil.rmtree(self.directory, ignore_errors=True)
