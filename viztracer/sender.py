"""The sender's side of a collection (see wire.py): one connection to the collector,
from the tracer's ``start()`` to its save.

Connecting sends HELLO and measures the clock offset (clock_sync.py); sending streams
the trace file, gzip-compressed by the native writer, in DATA frames, then END, and
waits for the collector's ACK. Every socket operation gives up after ``timeout``
seconds without progress, so a collector that is gone or stuck never holds the traced
program: the caller then saves the trace itself (multiprocess.py).

The socket comes from ``_socket``, the C module under ``socket``: a traced program must
not find ``socket`` imported when it did not import it (its enums cost a few ms to
make, and programs may look), and a sender needs only the plain calls.
"""

from __future__ import annotations

import _socket
import os
import time
import zlib
from typing import Any, Callable, Dict, Optional, Tuple

from . import clock_sync, wire


class SendError(Exception):
    """The collector did not take the trace (the reason is the message)."""


class Sender:
    def __init__(self, endpoint: str, timeout: float) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.sock: Optional[Any] = None
        self.offset_ns = 0
        self.error_ns = 0
        self.applied_ns = 0
        self._reader = wire.FrameReader(wire.COLLECTOR_FRAMES)

    # ------------------------------------------------------------------ connecting

    def connect(self, hello: Dict[str, Any]) -> None:
        """Connect, say HELLO, measure the clock. Raises OSError (or SendError) when the
        collector can't be reached."""
        host, port = wire.parse_endpoint(self.endpoint)
        error: Optional[OSError] = None
        for family, kind, proto, _, address in _socket.getaddrinfo(host, port, 0, _socket.SOCK_STREAM):
            sock = _socket.socket(family, kind, proto)
            try:
                sock.settimeout(self.timeout)
                sock.connect(address)
            except OSError as e:
                sock.close()
                error = e
                continue
            self.sock = sock
            break
        if self.sock is None:
            raise error or OSError(f"no address for {host}")
        try:
            self.sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            self.sock.sendall(wire.json_frame(wire.HELLO, dict(hello, version=wire.VERSION)))
            self.offset_ns, self.error_ns = clock_sync.measure(self._ping)
            self.applied_ns = clock_sync.applied(self.offset_ns, self.error_ns)
            self.sock.sendall(wire.json_frame(wire.CLOCK, {"offset_ns": self.offset_ns, "error_ns": self.error_ns,
                                                           "applied_ns": self.applied_ns}))
        except BaseException:
            self.close()
            raise

    def _ping(self, t1: int) -> Tuple[int, int]:
        assert self.sock is not None
        self.sock.sendall(wire.ping(t1))
        kind, body = self._receive()
        if kind != wire.PONG:
            raise SendError("the collector answered a ping with something else")
        echoed, t2, t3 = wire.pong_times(body)
        if echoed != t1:
            raise SendError("the collector answered another ping")
        return t2, t3

    def _receive(self) -> Tuple[bytes, bytes]:
        """The collector's next frame (the socket's timeout applies to each read)."""
        assert self.sock is not None
        while True:
            data = self.sock.recv(1 << 12)
            if not data:
                raise SendError("the collector closed the connection")
            for frame in self._reader.feed(data):
                return frame  # (the collector sends one frame, then waits)

    # ------------------------------------------------------------------ sending

    def send_trace(self, write: Callable[[Callable[[bytes], None]], int]) -> int:
        """Stream the trace: ``write(sink)`` gives the gzip bytes to ``sink`` and returns
        the number of events. Returns it once the collector has stored the trace;
        raises OSError or SendError if it did not."""
        if self.sock is None:
            raise SendError("not connected")
        sock = self.sock
        total = 0
        crc = 0

        def sink(data: bytes) -> None:
            nonlocal total, crc
            for i in range(0, len(data), wire.MAX_DATA):
                piece = data[i:i + wire.MAX_DATA]
                sock.sendall(wire.data_header(len(piece)) + piece)
            total += len(data)
            crc = zlib.crc32(data, crc)

        events = write(sink)
        sock.sendall(wire.json_frame(wire.END, {"bytes": total, "crc32": crc, "events": events}))
        kind, body = self._receive()
        answer = wire.decode_json(kind, body) if kind == wire.ACK else {}
        if answer.get("ok") is not True:
            raise SendError(str(answer.get("reason") or "the collector did not take the trace"))
        return events

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def leave(self) -> None:
        """Tell the collector that this process sends no trace, and disconnect."""
        if self.sock is not None:
            try:
                self.sock.sendall(wire.frame(wire.LEAVE))
            except OSError:
                pass
        self.close()

    def forget(self) -> None:
        """In a forked child: let go of the parent's connection (closing this copy of
        the descriptor only, never shutting the connection down)."""
        self.close()


def hello(label: str) -> Dict[str, Any]:
    """What a sender says about itself."""
    return {"pid": os.getpid(), "host": _socket.gethostname(), "label": label, "time_ns": time.time_ns()}
