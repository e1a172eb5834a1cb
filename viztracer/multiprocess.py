"""How a VizTracer takes part in a collection: one trace from many processes.

Every process of a collection is a *sender* (sender.py): it connects to a collector
(collector.py) when it starts and sends its trace when it saves. Where the collector is:

- ``report_endpoint`` (or ``VIZTRACER_REPORT_SERVER_ENDPOINT``) names one, started with
  ``viztracer --report_server``, perhaps on another machine: the process sends there;
- otherwise the *root* of a process tree (``ignore_multiprocess=False``, the command
  line's default) starts one for the tree (local_collector.py), and at its save writes
  the output with it.

With ``ignore_multiprocess=False`` the root also gives its children the environment
that makes each Python child a sender to the same collector (tree_env.py, child.py). A
forked child keeps its parent's tracer, which drops the parent's events and connects
anew (:func:`after_fork`).

A sender whose collector can't be reached, or does not take its trace, saves the trace
itself (next to the root's output, or its own, with ``_<pid>``) and says where.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, Dict, Optional

from . import wire
from .lifecycle import print_quietly
from .local_collector import CollectorGone, LocalCollector
from .options import child_kwargs
from .sender import Sender, SendError, hello
from .trace_writer import SaveError
from .tree_env import TreeEnvironment
from .util import add_pid_suffix, command_label

if TYPE_CHECKING:  # pragma: no cover
    from .viztracer import VizTracer


class Membership:
    """A tracer's part in a collection: its connection (``sender``), or, for the root
    of a tree without an external collector, the collector it started (``local``)."""

    def __init__(self, endpoint: str, root_output: Optional[str], fallback: str, *,
                 local: Optional[LocalCollector] = None, tree: Optional[TreeEnvironment] = None,
                 forked: bool = False) -> None:
        self.endpoint = endpoint
        self.root_output = root_output  # the root's output file (absolute), in a tree
        self.fallback = fallback  # where this process's trace goes if the collector can't take it
        self.local = local
        self.tree = tree
        self.forked = forked  # a forked child runs the parent's program: named after its argv
        self.sender: Optional[Sender] = None
        self.problem = ""  # why the sender is not connected

    def connect(self, timeout: float) -> None:
        sender = Sender(self.endpoint, timeout)
        try:
            sender.connect(hello(command_label()))
        except (OSError, SendError, ValueError) as e:
            self.problem = _reason(e)
            return
        self.sender = sender

    def forget(self) -> None:
        """In a forked child: the parent's connection and collector are not its own."""
        if self.sender is not None:
            self.sender.forget()
            self.sender = None
        if self.local is not None:
            self.local.forget()
            self.local.pid = 0  # (not this process's child)
            self.local = None
        self.tree = None  # the environment is the parent's to restore

    def close(self) -> None:
        if self.tree is not None:
            self.tree.deactivate()
            self.tree = None
        if self.sender is not None:
            self.sender.close()
            self.sender = None
        if self.local is not None:
            self.local.close()
            self.local = None


def _reason(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror.lower()
    return str(e) or type(e).__name__


def _arm(tracer: "VizTracer", membership: Membership) -> None:
    tracer._membership = membership
    # os._exit skips atexit: the trace is sent there too (and before os.exec*).
    tracer._exit_save().arm(sigterm=False)


def start_collection(tracer: "VizTracer") -> None:
    """At ``start()``: ``tracer`` sends to its ``report_endpoint``, and/or is the root of a
    process tree (``ignore_multiprocess=False``), whose children send to the same
    collector (the one it starts, without an endpoint)."""
    output = os.path.abspath(tracer.output_file)
    fallback = add_pid_suffix(output, os.getpid())
    endpoint = tracer.report_endpoint
    tree = not tracer.ignore_multiprocess
    local = None
    if endpoint is None:
        try:
            local = LocalCollector(output, tracer.report_timeout)
        except OSError as e:
            print_quietly(f"VizTracer: can't start the collector of child processes ({_reason(e)}): "
                          f"tracing this process only", file=sys.stderr)
            return
        endpoint = local.endpoint
    membership = Membership(endpoint, output if tree else None, fallback, local=local)
    if local is None:
        membership.connect(tracer.report_timeout)
    if tree:
        config = {"endpoint": endpoint, "kwargs": child_kwargs(tracer), "root_output": output}
        membership.tree = TreeEnvironment(config)
        membership.tree.activate()
    _arm(tracer, membership)


def join_collection(tracer: "VizTracer", config: Dict[str, Any]) -> None:
    """Make ``tracer`` (in a new interpreter started by a tree's process) a sender to
    the tree's collector (``config``: see tree_env.py)."""
    root_output = config.get("root_output")
    membership = Membership(config["endpoint"], root_output,
                            add_pid_suffix(root_output or os.path.abspath(tracer.output_file), os.getpid()))
    membership.connect(tracer.report_timeout)
    _arm(tracer, membership)
    tracer.register_exit()


def take_over(tracer: "VizTracer", member: "VizTracer") -> bool:
    """``tracer`` is about to start in a member process of a tree, built with the
    root's own output file: loky (joblib's default backend) starts one that way in
    each of its workers, from the parent's ``get_tracer().init_kwargs``. It takes the
    member's place and connection (the member stops and drops what it has), so the
    worker's events go to the collector instead of overwriting the root's report.
    Returns whether it did."""
    membership = member._membership
    if (membership is None or membership.local is not None or membership.tree is not None
            or membership.root_output is None or os.path.abspath(tracer.output_file) != membership.root_output):
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
    if membership is None or membership.local is not None or membership.tree is not None:
        return
    tracer._membership = None
    if tracer._exit_saver is not None:
        tracer._exit_saver.disarm()
    if membership.sender is not None:
        membership.sender.leave()
        membership.sender = None


def after_fork(tracer: "VizTracer") -> None:
    """In a forked child: a sender of its own, to the same collector."""
    inherited = tracer._membership
    if inherited is None:
        return
    inherited.forget()
    membership = Membership(inherited.endpoint, inherited.root_output,
                            add_pid_suffix(inherited.root_output or inherited.fallback, os.getpid()), forked=True)
    membership.connect(tracer.report_timeout)
    _arm(tracer, membership)
    tracer.register_exit()


def leave_in_child(tracer: "VizTracer") -> None:
    """In a forked child that saves its parent's events alone (``fork_save``)."""
    if tracer._membership is not None:
        tracer._membership.forget()
        tracer._membership = None


# ----------------------------------------------------------------------------- saving

def save(tracer: "VizTracer", path: str, file_info: bool, verbose: int) -> None:
    """Save inside a collection: the root of a tree with its own collector waits for the
    other processes and has the output written (:func:`_save_as_root`); any other
    process sends its trace (:func:`_send`). ``path`` is the output file of the former;
    for the latter (the collector's own output decides), where the trace goes if the
    collector can't take it, with ``_<pid>``."""
    membership = tracer._membership
    assert membership is not None
    saver = tracer._exit_saver
    if saver is not None and not saver.at_exit:
        saver.disarm()  # it watched os._exit for this collection only
    if membership.tree is not None:
        membership.tree.deactivate()  # children started from now on are not waited for
    try:
        if membership.local is not None:
            _save_as_root(tracer, membership.local, path, file_info, verbose)
        else:
            if membership.root_output is None:  # not a tree's: the fallback is this save's file
                membership.fallback = path if tracer.pid_suffix else add_pid_suffix(path, os.getpid())
            _send(tracer, membership, file_info, verbose)
    finally:
        tracer._membership = None  # (after writing: it names the process)
        membership.close()


def _save_as_root(tracer: "VizTracer", local: LocalCollector, path: str, file_info: bool, verbose: int) -> None:
    tracer.stop(stop_option="flush_as_finish")

    def waiting(running: int) -> None:
        if verbose > 0 and running:
            print_quietly(f"Waiting for {running} child process(es) to finish their traces, "
                          f"Ctrl+C to save without them", file=sys.stderr, flush=True)

    try:
        if local.nobody_came():  # no other process connected: nothing to wait for
            local.stop()
            tracer._save_to(path, file_info, verbose)
            return
        ready = local.finish(waiting)
        if not ready.get("traces") and not ready.get("missing"):
            local.skip()  # no other process: the trace is this one's, written directly
            tracer._save_to(path, file_info, verbose)
            return
        own = os.path.join(local.spool, "root.json")
        tracer._save_to(own, file_info, 0)
        result = local.merge(path, {"path": own, "process": _process_entry(tracer)})
    except (CollectorGone, wire.WireError) as e:
        print_quietly(f"VizTracer: {e}: saved this process's trace alone", file=sys.stderr)
        tracer._save_to(path, file_info, verbose)
        return
    failed = result.get("failed")
    if failed:
        raise SaveError(path, OSError(failed.get("errno"), failed.get("reason")))
    if verbose > 0:
        tracer._print_saved(path, int(result.get("count", 0)), bool(result.get("overflow")))
    if result.get("missing"):
        print_quietly(result["missing"], file=sys.stderr)


def _process_entry(tracer: "VizTracer") -> Dict[str, Any]:
    """The root in the output's ``viztracer_metadata.processes`` (its clock is the
    collector's: same machine, same clock)."""
    info = hello(command_label())
    return {"pid": tracer._pid(), "host": info["host"], "label": info["label"], "clock_offset_ns": 0,
            "clock_measured_ns": 0, "clock_error_ns": 0, "status": "complete"}


def _send(tracer: "VizTracer", membership: Membership, file_info: bool, verbose: int) -> None:
    sender = membership.sender
    problem = membership.problem
    if sender is not None:
        try:
            count = sender.send_trace(lambda sink: tracer._send_trace(sink, file_info, sender.applied_ns))
        except (OSError, SendError, wire.WireError) as e:
            problem = _reason(e)
        else:
            # (A child of a tree is quiet: the tree's root tells what was saved.)
            if verbose > 0 and (membership.root_output is None or membership.tree is not None):
                print_quietly(f"Sent {count} trace entries to the collector at {membership.endpoint}")
            return
    path = membership.fallback
    try:
        tracer._save_to(path, file_info, 0)
    except (OSError, ValueError) as e:
        print_quietly(f"VizTracer: could not send the trace of process {os.getpid()} to the collector at "
                      f"{membership.endpoint} ({problem}), nor save it to {path}: {e}", file=sys.stderr)
        return
    print_quietly(f"VizTracer: could not send the trace of process {os.getpid()} to the collector at "
                  f"{membership.endpoint} ({problem}): saved it to {path}", file=sys.stderr)
