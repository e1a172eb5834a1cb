"""How a VizTracer takes part in a multi-process collection (see collector.py).

A tracer is the *root* of a collection (it owns the output file, waits for the other
processes and merges their traces) or a *member* (it writes its own trace into the
collection directory). A forked child of either becomes a member.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Optional

from .collector import Collector, member_paths
from .options import child_kwargs
from .trace_writer import merge_traces

if TYPE_CHECKING:  # pragma: no cover
    from .viztracer import VizTracer


class Membership:
    """Where a process of a collection writes its trace; the root also holds the
    collector."""

    def __init__(self, directory: str, trace_path: str, marker_path: str, root_output: Optional[str],
                 collector: Optional[Collector] = None, forked: bool = False) -> None:
        self.directory = directory
        self.root_output = root_output  # the root's output file (absolute)
        self.trace_path = trace_path
        self.marker_path = marker_path
        self.collector = collector
        # A forked child runs the parent's program: name it after that program's argv.
        self.forked = forked


def _become_member(tracer: "VizTracer", directory: str, root_output: Optional[str],
                   collector: Optional[Collector] = None, forked: bool = False) -> None:
    trace_path, marker_path = member_paths(directory, os.getpid())
    with open(marker_path, "w"):
        pass
    tracer._membership = Membership(directory, trace_path, marker_path, root_output, collector, forked)
    # os._exit skips atexit: the trace is saved there too (and before os.exec*).
    tracer._exit_save().arm(sigterm=False)


def start_collection(tracer: "VizTracer") -> None:
    """Make ``tracer`` the root of a new collection: child processes started from now
    on are traced and end up in its output file."""
    root_output = os.path.abspath(tracer.output_file)
    collector = Collector(child_kwargs(tracer), root_output)
    collector.activate()
    _become_member(tracer, collector.directory, root_output, collector)


def join_collection(tracer: "VizTracer", directory: str, root_output: Optional[str] = None) -> None:
    """Make ``tracer`` (in a child process) a member of the collection in ``directory``."""
    _become_member(tracer, directory, root_output)
    tracer.register_exit()


def take_over(tracer: "VizTracer", member: "VizTracer") -> bool:
    """``tracer`` is about to start in a member process of a collection, built with the
    root's own output file: loky (joblib's default backend) starts one that way in
    each of its workers, from the parent's ``get_tracer().init_kwargs``. It takes the
    member's place (the member stops and drops what it has), so the worker's events
    go into the collection instead of overwriting the root's report. Returns whether
    it did."""
    membership = member._membership
    if (membership is None or membership.collector is not None or membership.root_output is None
            or os.path.abspath(tracer.output_file) != membership.root_output):
        return False
    member.stop()
    member.clear()
    member._membership = None
    if member._exit_saver is not None:
        member._exit_saver.disarm()
    tracer._membership = membership
    tracer.register_exit()
    return True


def leave_collection(tracer: "VizTracer") -> None:
    """``tracer``, a member (started in this process when it joined a collection),
    leaves it and saves nothing: a ``viztracer`` command run inside a traced program
    records its own program into its own file, as typed."""
    membership = tracer._membership
    if membership is None or membership.collector is not None:
        return
    tracer._membership = None
    if tracer._exit_saver is not None:
        tracer._exit_saver.disarm()
    _remove(membership.marker_path)


def after_fork(tracer: "VizTracer") -> None:
    """In a forked child: a new member, with a trace file of its own."""
    membership = tracer._membership
    if membership is None:
        return
    if membership.collector is not None:
        # The child must not remove the root's directory or restore its environment.
        membership.collector = None
    _become_member(tracer, membership.directory, membership.root_output, forked=True)
    tracer.register_exit()


def save(tracer: "VizTracer", path: str, file_info: bool, verbose: int) -> None:
    """Save inside a collection: a member writes its own trace into the directory; the
    root waits for the other processes, then merges every trace into ``path`` (or, if
    no other process left a trace, writes its own straight to ``path``)."""
    membership = tracer._membership
    assert membership is not None
    collector = membership.collector
    if collector is None:
        _write_own_trace(tracer, membership, file_info)
        return
    tracer._membership = None
    saver = tracer._exit_saver
    if saver is not None and not saver.at_exit:
        saver.disarm()  # it watched os._exit for this collection only
    try:
        collector.deactivate()  # children started from now on are not waited for
        tracer.stop(stop_option="flush_as_finish")
        collector.wait_for_members(verbose)
        _remove(membership.marker_path)
        if not collector.traces():
            tracer._save_to(path, file_info, verbose)
            return
        _write_own_trace(tracer, membership, file_info)
        count, overflow = merge_traces(collector.traces(), path)
    finally:
        collector.cleanup()
    if verbose > 0:
        tracer._print_saved(path, count, overflow)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _write_own_trace(tracer: "VizTracer", membership: Membership, file_info: bool) -> None:
    directory, name = os.path.split(membership.trace_path)
    partial = os.path.join(directory, "." + name)  # the root merges only complete files
    try:
        tracer._save_to(partial, file_info, 0)
        os.replace(partial, membership.trace_path)
    except OSError as e:
        if os.path.isdir(directory):
            print(f"VizTracer: could not save the trace of process {os.getpid()}: {e}", file=sys.stderr)
        # else the root gave up waiting and removed the directory
    finally:
        _remove(membership.marker_path)
