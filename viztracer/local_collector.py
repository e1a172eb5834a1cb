"""The collector of a process tree, run for the tree's root in a process of its own:
the same collector as ``viztracer --report_server`` (collector.py). Both sides are
here: :class:`LocalCollector`, the root's, and :func:`run_for_owner`, the collector's
process.

Not a thread of the root: from Python 3.12, ``os.fork()`` in a process that has a
second thread warns (a DeprecationWarning the program would print when it forks from
``__main__``, and an error under ``-W error``), and a thread would compete for the
traced program's GIL while traces arrive.

The root binds the listening socket itself, so that its children can connect as soon
as the environment names it (the kernel queues them until the collector is up), starts
the collector with ``os.posix_spawn`` (no fork: the program's at-fork hooks don't run;
its own process group: Ctrl+C in the terminal is the root's to pass on, with NOW), and
gives it the socket and one end of a socket pair, the *channel* (a socket pair, not
pipes: a send to a collector that died fails with EPIPE, never with the SIGPIPE a
program may have set back to its default). The root never waits for it to start; at
the end it says FINISH, gets READY once the other processes are done, then either
writes its own trace straight to the output (no other process sent one) or writes it
into the spool directory and says MERGE. A collector that died is seen as the end of
the channel: the root then saves its own trace alone, and says so.

A program that had no child process (or none that connected) does not wait for its
collector at all, not even for it to start: the root keeps the listening socket until
its save, and when the collector has not said MET (which it says before it accepts its
first connection), no connection waits to be accepted and no child is starting, nobody
came, and the root stops the collector and writes its trace alone at once
(:meth:`LocalCollector.nobody_came`).
"""

from __future__ import annotations

import _socket
import contextlib
import json
import os
import select
import signal
import sys
import time
from typing import Any, Dict, Iterator, List, Optional, Tuple

from . import wire
from .tree_env import without_collection
from .util import starting_children

_PACKAGE = os.path.dirname(os.path.abspath(__file__))
# The collector needs none of the package's __init__ (the native extension, the tracer):
# a bare package module lets it import its own modules only, in half the time.
_RUN = ("import sys, types; package = types.ModuleType('viztracer'); package.__path__ = [sys.argv[2]]; "
        "sys.modules['viztracer'] = package; from viztracer.local_collector import run_for_owner; run_for_owner()")


class CollectorGone(Exception):
    """The collector process ended before answering."""


class LocalCollector:
    def __init__(self, output: str, timeout: float) -> None:
        import tempfile  # start-up: the first collection only (it costs about 4 ms)

        self.spool = tempfile.mkdtemp(prefix="viztracer_")
        self.pid = 0
        self.channel: Optional[Any] = None
        self.met = False
        self._reader = wire.FrameReader(wire.HELPER_FRAMES)
        self.listener: Optional[Any] = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
        listener = self.listener
        theirs: Optional[Any] = None
        try:
            listener.bind((wire.DEFAULT_HOST, 0))
            listener.listen(_socket.SOMAXCONN)
            self.endpoint = wire.format_endpoint(*listener.getsockname()[:2])
            self.channel, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
            fds = (listener.fileno(), theirs.fileno())
            config = {"listen_fd": fds[0], "channel_fd": fds[1], "spool": self.spool, "timeout": timeout,
                      "owner_pid": os.getpid(), "output": output}
            self.pid = _spawn([sys.executable, "-c", _RUN, json.dumps(config), _PACKAGE], fds)
        except BaseException:
            self.close()
            raise
        finally:
            if theirs is not None:
                theirs.close()

    # ------------------------------------------------------------------ talking

    def _say(self, kind: bytes, obj: Any = None) -> None:
        data = wire.frame(kind) if obj is None else wire.json_frame(kind, obj)
        try:
            assert self.channel is not None
            self.channel.sendall(data, _socket.MSG_NOSIGNAL)
        except OSError as e:
            raise CollectorGone(f"the collector of child processes is gone ({e.strerror or e})") from None

    def _hear(self, on_waiting: Any = None) -> Dict[str, Any]:
        """The collector's next READY or RESULT (WAITING is given to ``on_waiting``).
        Ctrl+C meanwhile says NOW once, and goes on waiting; a second one is raised."""
        assert self.channel is not None
        with _ctrl_c_flag() as ctrl_c:
            while True:
                if ctrl_c.count == 1 and not ctrl_c.told:
                    ctrl_c.told = True
                    self._say(wire.NOW)
                readable, _, _ = select.select([self.channel], [], [], 0.2)
                if not readable:
                    continue
                try:
                    data = self.channel.recv(1 << 16)
                except OSError:
                    data = b""
                if not data:
                    raise CollectorGone("the collector of child processes ended")
                for kind, body in list(self._reader.feed(data)):
                    if kind == wire.MET:
                        self.met = True
                        continue
                    message = wire.decode_json(kind, body)
                    if kind != wire.WAITING:
                        return message
                    if on_waiting is not None:
                        on_waiting(message.get("running", 0))

    def nobody_came(self) -> bool:
        """Whether no other process can have connected: the collector has not said MET
        (it says so before its first accept), no connection waits in the listening
        socket's queue, and no child of this process is still starting."""
        assert self.listener is not None
        # MET is looked for again after the queue: a connection the collector accepted
        # in between was preceded by its MET.
        if self._said_met() or select.select([self.listener], [], [], 0)[0] or self._said_met():
            return False
        return not starting_children(os.getpid(), besides=[self.pid])

    def _said_met(self) -> bool:
        assert self.channel is not None
        if not self.met and select.select([self.channel], [], [], 0)[0]:
            try:
                data = self.channel.recv(1 << 16)
            except OSError:
                data = b""
            for kind, _ in list(self._reader.feed(data)):  # before FINISH, only MET comes
                self.met = self.met or kind == wire.MET
        return self.met

    def finish(self, on_waiting: Any = None) -> Dict[str, Any]:
        """Wait for the other processes of the tree (within the timeout): READY says how
        many traces came, and how many are missing."""
        self._say(wire.FINISH)
        return self._hear(on_waiting)

    def merge(self, output: str, own: Optional[Dict[str, Any]]) -> Dict[str, Any]:
        """Write ``output`` from every trace that came, and ``own`` (``{"path",
        "process"}``, a trace file in the spool directory) first."""
        self._say(wire.MERGE, {"output": output, "own": own})
        return self._hear()

    def skip(self) -> None:
        """Nothing to merge: the collector just ends."""
        self._say(wire.MERGE, {"skip": True})

    def stop(self) -> None:
        """End a collector that met nobody (:meth:`nobody_came`): it has nothing to
        write, and need not even have started."""
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass  # (the program reaped it: os.wait())
            self.pid = 0

    # ------------------------------------------------------------------ ending

    def close(self, wait: float = 5.0) -> None:
        """Close the channel, let the collector end (killed after ``wait`` seconds), and
        remove the spool directory."""
        self.forget()
        import shutil  # start-up: the end of a collection only (it imports bz2, lzma, fnmatch)

        if self.pid:
            _reap(self.pid, wait)
        self.pid = 0
        shutil.rmtree(self.spool, ignore_errors=True)

    def forget(self) -> None:
        """Close this process's end of the channel and its listening socket (in a forked
        child: the child is not the root; the descriptors are closed, the connections
        are not shut down)."""
        for name in ("channel", "listener"):
            sock = getattr(self, name)
            if sock is not None:
                sock.close()
                setattr(self, name, None)


class _CtrlC:
    def __init__(self) -> None:
        self.count = 0
        self.told = False

    def __call__(self, signum: int, frame: Any) -> None:
        self.count += 1
        if self.count > 1:
            raise KeyboardInterrupt


@contextlib.contextmanager
def _ctrl_c_flag() -> Iterator[_CtrlC]:
    """While waiting for the collector, the first Ctrl+C only counts (a KeyboardInterrupt
    in the middle of reading its answer could lose one); the second is raised. From the
    main thread only (elsewhere, Ctrl+C is not ours to take)."""
    flag = _CtrlC()
    try:
        previous = signal.getsignal(signal.SIGINT)
        if previous == signal.SIG_IGN:  # the program ignores Ctrl+C: so does the wait
            yield flag
            return
        signal.signal(signal.SIGINT, flag)
    except ValueError:
        yield flag
        return
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _spawn(argv: Any, fds: Any) -> int:
    """Start the collector with ``fds`` (left open, at their numbers) and nothing of
    the collection in its environment; stdin and stdout are /dev/null, stderr the
    root's (for its one-line messages)."""
    env = without_collection(os.environ)
    env.pop(wire.ENV_ENDPOINT, None)
    actions = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1) if fd not in fds]
    for fd in fds:
        os.set_inheritable(fd, True)
    return os.posix_spawn(argv[0], argv, env, file_actions=actions, setpgroup=0)


def _reap(pid: int, wait: float) -> None:
    deadline = time.monotonic() + wait
    try:
        while os.waitpid(pid, os.WNOHANG)[0] == 0:
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return
            time.sleep(0.01)
    except (ChildProcessError, ProcessLookupError):
        pass  # the program reaped it (os.wait()): it is gone


# ----------------------------------------------------------------------------- the collector's process

def run_for_owner() -> None:
    """The collector of a process tree, in the process :class:`LocalCollector` starts:
    ``argv[1]`` is its configuration (JSON: the descriptors of the listening socket and
    of the channel to the owner, the spool directory, the timeout, the owner's pid and
    output file)."""
    import shutil  # start-up: the collector's process only
    import socket  # start-up: the collector's process only

    from .collector import Collector, collector_metadata, say_on_stderr, wait_for_members  # start-up: as socket
    from .trace_writer import SaveError  # start-up: as socket

    config = json.loads(sys.argv[1])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the owner decides when to stop
    listener = socket.socket(fileno=config["listen_fd"])
    channel = socket.socket(fileno=config["channel_fd"])
    collector = Collector(listener, config["spool"], config["timeout"], say=say_on_stderr,
                          before_first_accept=lambda: channel.sendall(wire.frame(wire.MET)))
    collector.watch(channel)
    owner = config["owner_pid"]
    reader = wire.FrameReader(wire.OWNER_FRAMES)
    orders: List[Tuple[bytes, bytes]] = []
    gone = False  # the owner's end of the channel is closed: it died

    def take_orders(readable: List[Any]) -> bool:
        """Read what the owner said; True when it said NOW."""
        nonlocal gone
        if channel in readable and not gone:
            try:
                data = channel.recv(1 << 16)
            except OSError:
                data = b""
            if not data:
                gone = True
                collector.unwatch(channel)
            else:
                orders.extend(reader.feed(data))
        return any(kind == wire.NOW for kind, _ in orders)

    def tell(kind: bytes, obj: Any) -> None:
        try:
            channel.sendall(wire.json_frame(kind, obj))
        except OSError:
            pass

    def next_order(*kinds: bytes) -> Optional[Tuple[bytes, bytes]]:
        """The owner's next order of one of ``kinds`` (others are past), None if it is gone."""
        while True:
            while orders:
                order = orders.pop(0)
                if order[0] in kinds:
                    return order
            if gone:
                return None
            take_orders(collector.poll(1.0))

    try:
        next_order(wire.FINISH)
        known = lambda: {m.pid for m in collector.members} | {os.getpid()}  # noqa: E731
        wait_for_members(
            collector, interrupted=take_orders,
            starting=lambda: [p for p in starting_children(owner) if p not in known()],
            on_change=lambda n: tell(wire.WAITING, {"running": n}))
        tell(wire.READY, {"traces": len(collector.traces()), "missing": len(collector.missing())})
        merge = next_order(wire.MERGE)
        if merge is None:  # the owner is gone: save what came, where it would have been saved
            if collector.traces():
                collector.write(config["output"], metadata=collector_metadata())
            return
        request = wire.decode_json(wire.MERGE, merge[1])
        if request.get("skip"):
            return
        own = request.get("own")
        try:
            count, overflow = collector.write(request["output"], (own["path"], own["process"]) if own else None,
                                              metadata=collector_metadata())
        except SaveError as e:  # (the output is as it was: the owner says so, in one line)
            tell(wire.RESULT, {"failed": {"errno": e.errno, "reason": e.strerror}})
            return
        tell(wire.RESULT, {"count": count, "overflow": overflow, "missing": collector.missing_line()})
    finally:
        collector.close()
        if gone:  # (else the owner removes it, with what it wrote there)
            shutil.rmtree(config["spool"], ignore_errors=True)
