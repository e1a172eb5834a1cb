"""The collector: one trace from every process that sends its own (wire.py).

It runs in a process of its own, in one of two roles, each a loop around
:class:`Collector` and :func:`wait_for_members`:

- standalone, ``viztracer --report_server [HOST:PORT]`` (cli/report_server.py): any
  process, on any machine, started in any way, sends to it (``--report_endpoint``,
  ``VIZTRACER_REPORT_SERVER_ENDPOINT``, ``VizTracer(report_endpoint=...)``); it writes
  the trace on Ctrl+C, on Enter, or once the senders it was told to expect are done;
- the collector of one process tree, started by the tree's root (local_collector.py),
  which tells it over a channel when to wait and when to write.

Each connection's trace is decompressed as it arrives into a spool file of its own,
so memory stays bounded by a constant per connection, whatever the traces' size; at
the end the spool files are spliced into the output without being parsed
(:func:`viztracer.trace_writer.merge_traces`), the events of a trace whose sender
was lost midway up to its last complete one. Whatever arrives that is not this
protocol is dropped with one line, and the connection with it.
"""

from __future__ import annotations

import os
import selectors
import socket
import sys
import tempfile
import time
import zlib
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import wire
from .trace_writer import HEAD, merge_traces

RECEIVE = 256 << 10
# A decompressed piece at most this big at a time: a small frame can't inflate
# into a big allocation.
INFLATE = 256 << 10
GRACE = 1.0
"""How long the end of a tree waits for its descendants that have not connected yet
(processes still starting up)."""

Say = Callable[[str], None]


def size_text(n: int) -> str:
    if n < 1000:
        return f"{n} B"
    if n < 1_000_000:
        return f"{n / 1000:.1f} kB"
    return f"{n / 1_000_000:.1f} MB"


class Member:
    """One connection, and the trace it sends."""

    def __init__(self, sock: socket.socket, address: Any, spool: str) -> None:
        self.sock = sock
        self.address = address
        self.spool = spool
        self.reader = wire.FrameReader(wire.SENDER_FRAMES)
        self.hello: Optional[Dict[str, Any]] = None
        self.clock: Dict[str, int] = {}
        self.state = "new"  # -> running -> sending -> complete | partial | lost; running -> left
        self.reason = ""
        self.received = 0  # compressed trace bytes
        self.crc = 0
        self.events = 0
        self.since = time.monotonic()
        self._inflate: Optional[Any] = None
        self._file: Optional[Any] = None
        self._head = b""  # the first bytes of the trace, until they are checked

    @property
    def pid(self) -> int:
        return int(self.hello.get("pid", 0)) if self.hello else 0

    @property
    def name(self) -> str:
        if not self.hello:
            return _address(self.address)
        return f"{self.pid} ({self.hello.get('label', '')})"

    @property
    def running(self) -> bool:
        return self.state in ("running", "sending")

    @property
    def has_trace(self) -> bool:
        return self.state in ("complete", "partial")

    # ------------------------------------------------------------------ the trace

    def write(self, piece: bytes) -> None:
        if self._inflate is None:
            self._inflate = zlib.decompressobj(wbits=31)
            self._file = open(self.spool, "wb")
            self.state = "sending"
        self.received += len(piece)
        self.crc = zlib.crc32(piece, self.crc)
        data = piece
        while data:
            try:
                out = self._inflate.decompress(data, INFLATE)
            except zlib.error as e:
                raise wire.WireError(f"a trace that is not gzip data ({e})") from None
            data = self._inflate.unconsumed_tail
            self._write_out(out)
            if self._inflate.eof and (data or self._inflate.unused_data):
                raise wire.WireError("data after the end of the trace")

    def _write_out(self, out: bytes) -> None:
        if len(self._head) < len(HEAD):
            self._head += out[:len(HEAD) - len(self._head)]
            if not HEAD.startswith(self._head):
                raise wire.WireError("a trace that is not a viztracer trace file")
        assert self._file is not None
        self._file.write(out)

    def end(self, info: Dict[str, Any]) -> str:
        """The END frame: "" if the trace is complete, else what is wrong."""
        if self._inflate is None:
            return "END without a trace"
        if not self._inflate.eof:
            return "END before the end of the compressed trace"
        if info.get("bytes") != self.received or info.get("crc32") != self.crc:
            return "the trace's length or CRC differs from what was received"
        events = info.get("events")
        self.events = events if isinstance(events, int) else 0
        return ""

    def close_spool(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def metadata(self) -> Dict[str, Any]:
        """This process in the output's ``viztracer_metadata.processes``."""
        hello = self.hello or {}
        out: Dict[str, Any] = {
            "pid": self.pid, "host": hello.get("host"), "label": hello.get("label"),
            "clock_offset_ns": self.clock.get("applied_ns", 0), "clock_measured_ns": self.clock.get("offset_ns"),
            "clock_error_ns": self.clock.get("error_ns"),
            "status": self.state if self.has_trace else "missing",
        }
        if self.reason:
            out["reason"] = self.reason
        return out


def _address(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        return wire.format_endpoint(str(address[0]), int(address[1]))
    return str(address)


class Collector:
    """Accepts connections on ``listener`` and receives their traces into
    ``spool_dir``, one :meth:`poll` at a time; :meth:`write` makes the output."""

    def __init__(self, listener: socket.socket, spool_dir: str, timeout: float, say: Say,
                 before_first_accept: Callable[[], None] = lambda: None) -> None:
        self.listener = listener
        self.spool_dir = spool_dir
        self.timeout = timeout
        self.say = say
        self.before_first_accept = before_first_accept
        self.members: List[Member] = []
        self.selector = selectors.DefaultSelector()
        listener.setblocking(False)
        self.selector.register(listener, selectors.EVENT_READ)
        self.progress = time.monotonic()  # the last time something arrived
        self._count = 0

    @property
    def endpoint(self) -> str:
        host, port = self.listener.getsockname()[:2]
        return wire.format_endpoint(host, port)

    def watch(self, fileobj: Any) -> None:
        """Also wake :meth:`poll` when ``fileobj`` is readable (its key is returned)."""
        self.selector.register(fileobj, selectors.EVENT_READ)

    def unwatch(self, fileobj: Any) -> None:
        self.selector.unregister(fileobj)

    def poll(self, timeout: float) -> List[Any]:
        """Handle what arrived within ``timeout`` seconds; returns the watched objects
        (see :meth:`watch`) that are readable."""
        others = []
        for key, _ in self.selector.select(timeout):
            if key.fileobj is self.listener:
                self._accept()
            elif isinstance(key.data, Member):
                self._receive(key.data)
            else:
                others.append(key.fileobj)
        self._drop_silent()
        return others

    # ------------------------------------------------------------------ receiving

    def _accept(self) -> None:
        if not self._count:
            self.before_first_accept()
        try:
            sock, address = self.listener.accept()
        except OSError:
            return
        sock.setblocking(False)
        self._count += 1
        member = Member(sock, address, os.path.join(self.spool_dir, f"{self._count}.json"))
        self.members.append(member)
        self.selector.register(sock, selectors.EVENT_READ, member)

    def _receive(self, m: Member) -> None:
        try:
            data = m.sock.recv(RECEIVE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self._close(m, f"connection lost after {size_text(m.received)} ({e.strerror or e})")
            return
        if not data:
            self._close(m, None)
            return
        self.progress = time.monotonic()
        try:
            for kind, body in m.reader.feed(data):
                self._frame(m, kind, body)
        except wire.WireError as e:
            self.say(f"VizTracer collector: dropped the connection of {m.name}: {e}")
            self._close(m, f"dropped: {e}")

    def _frame(self, m: Member, kind: bytes, body: bytes) -> None:
        if kind == wire.HELLO:
            self._hello(m, wire.decode_json(kind, body))
            return
        if m.hello is None:
            raise wire.WireError("no HELLO first")
        if m.state in ("complete", "partial"):
            raise wire.WireError("frames after END")
        if kind == wire.PING:
            now = time.monotonic_ns()
            self._send(m, wire.pong(wire.ping_time(body), now, time.monotonic_ns()))
        elif kind == wire.CLOCK:
            info = wire.decode_json(kind, body)
            m.clock = {k: v for k, v in info.items() if k in ("offset_ns", "error_ns", "applied_ns")
                       and isinstance(v, int)}
        elif kind == wire.DATA:
            m.write(body)
        elif kind == wire.LEAVE:
            # It sends nothing, on purpose (a viztracer command in it records on its own).
            m.state = "left"
            self._close(m, None)
        elif kind == wire.END:
            problem = m.end(wire.decode_json(kind, body))
            m.close_spool()
            if problem:
                raise wire.WireError(problem)
            m.state = "complete"
            self._send(m, wire.json_frame(wire.ACK, {"ok": True}))

    def _hello(self, m: Member, info: Dict[str, Any]) -> None:
        if m.hello is not None:
            raise wire.WireError("a second HELLO")
        if info.get("version") != wire.VERSION:
            raise wire.WireError(f"protocol version {info.get('version')!r} (this collector speaks {wire.VERSION})")
        if not isinstance(info.get("pid"), int) or not isinstance(info.get("label", ""), str):
            raise wire.WireError("a HELLO without a pid")
        m.hello = info
        m.state = "running"

    def _send(self, m: Member, data: bytes) -> None:
        # Answers are a few bytes, to a sender that waits for them: the socket buffer
        # takes them at once, or the sender is not reading, which is not a sender.
        try:
            sent = m.sock.send(data)
        except OSError:
            sent = 0
        if sent != len(data):
            raise wire.WireError("a sender that does not read its answers")

    def _close(self, m: Member, reason: Optional[str]) -> None:
        """The connection is over: a trace that came whole stays; one cut short is kept
        up to its last complete event."""
        try:
            self.selector.unregister(m.sock)
        except (KeyError, ValueError):
            pass
        m.sock.close()
        m.close_spool()
        if m.state in ("complete", "left") or m.hello is None:
            return
        if m.state == "sending" and m.received:
            m.state = "partial"
            m.reason = reason or f"connection lost after {size_text(m.received)}"
        else:
            m.state = "lost"
            m.reason = reason or "exited without sending its trace"
        self.progress = time.monotonic()

    def _drop_silent(self) -> None:
        """Connections that said nothing for ``timeout`` seconds are not senders."""
        now = time.monotonic()
        for m in self.members:
            if m.state == "new" and now - m.since > self.timeout and m.sock.fileno() >= 0:
                self.say(f"VizTracer collector: dropped the connection of {m.name}: nothing received in "
                         f"{self.timeout:g} s")
                self._close(m, None)

    # ------------------------------------------------------------------ the end

    def running(self) -> List[Member]:
        return [m for m in self.members if m.running]

    def finished(self) -> List[Member]:
        return [m for m in self.members if m.hello is not None and not m.running]

    def traces(self) -> List[Member]:
        return [m for m in self.members if m.has_trace]

    def give_up(self, why: Callable[[Member], str]) -> None:
        """Stop waiting for the members still running: each is missing, for ``why``."""
        for m in self.running():
            self._close(m, why(m))

    def missing(self) -> List[Member]:
        return [m for m in self.members if m.hello is not None and m.state in ("partial", "lost")]

    def missing_line(self) -> str:
        """The one line naming the processes whose trace is missing or cut short."""
        gone = self.missing()
        if not gone:
            return ""
        what = "1 process" if len(gone) == 1 else f"{len(gone)} processes"
        return f"VizTracer: saved without {what}: " + "; ".join(f"{m.name}: {m.reason}" for m in gone)

    def write(self, output: str, own: Optional[Tuple[str, Dict[str, Any]]] = None,
              metadata: Optional[Dict[str, Any]] = None) -> Tuple[int, bool]:
        """Writes every trace received (and ``own``, ``(path, its metadata)``, first) to
        ``output``: returns (events, overflow)."""
        paths = ([own[0]] if own else []) + [m.spool for m in self.traces()]
        partial = [m.spool for m in self.traces() if m.state == "partial"]
        processes = ([own[1]] if own else []) + [m.metadata() for m in self.members if m.hello is not None]
        meta = dict(metadata or {})
        meta["baseTimeNanoseconds"] = time.time_ns() - time.monotonic_ns()
        meta["processes"] = processes
        return merge_traces(paths, output, meta, partial=partial)

    def close(self) -> None:
        for m in self.members:
            if m.sock.fileno() >= 0:
                self._close(m, "the collector stopped")
        self.selector.close()
        self.listener.close()


def collector_metadata() -> Dict[str, Any]:
    return {"collector": {"host": socket.gethostname(), "pid": os.getpid()}}


# ----------------------------------------------------------------------------- the wait

def wait_for_members(collector: Collector, *, interrupted: Callable[[List[Any]], bool],
                     starting: Callable[[], List[int]] = list,
                     on_change: Callable[[int], None] = lambda n: None) -> None:
    """Receive until no member is running (nor, within :data:`GRACE`, starting), or
    ``timeout`` seconds pass without anything arriving (the members still running are
    then missing), or ``interrupted(readable)`` says so (Ctrl+C, Enter, the owner)."""
    began = time.monotonic()
    collector.progress = began
    last = -1
    while True:
        running = collector.running()
        late = starting() if time.monotonic() - began < GRACE else []
        if not running and not late:
            return
        if len(running) != last:
            last = len(running)
            on_change(last)
        waited = time.monotonic() - collector.progress
        if waited >= collector.timeout:
            collector.give_up(lambda m: f"still running after {collector.timeout:g} s" if m.state == "running"
                              else f"stalled after {size_text(m.received)}")
            return
        readable = collector.poll(min(0.5, collector.timeout - waited))
        if interrupted(readable):
            collector.give_up(lambda m: "still running when the wait was cut short" if m.state == "running"
                              else f"cut short after {size_text(m.received)}")
            return


def spool_directory() -> str:
    return tempfile.mkdtemp(prefix="viztracer_")


def listen(host: str, port: int) -> socket.socket:
    """A listening socket, or OSError (a port in use, an address not of this host)."""
    infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.bind(address)
        sock.listen(socket.SOMAXCONN)
    except OSError:
        sock.close()
        raise
    return sock


def say_on_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
