"""The wire protocol of trace collection: every constant and frame of it, in one place.

A sender (any traced process, see sender.py) keeps one TCP connection to a collector
(collector.py) from its ``start()`` to its save. The bytes on it are *frames*: one type
byte, the length of the body as 4 bytes (big-endian), the body.

Sender to collector:

- ``HELLO``, the first frame: JSON ``{"version", "pid", "host", "label"}``;
- ``PING``: the sender's clock (8 bytes, signed ns), answered by ``PONG``;
- ``CLOCK``: JSON ``{"offset_ns", "error_ns", "applied_ns"}``, what the sender measured
  (clock_sync.py) and added to its timestamps;
- ``DATA``: the next piece of the trace file, gzip-compressed (:data:`CHUNK` bytes at a
  time, at most :data:`MAX_DATA`);
- ``END``: JSON ``{"bytes", "crc32", "events"}`` of the compressed stream: the trace is
  complete.

Collector to sender:

- ``PONG``: the ping's clock, then the collector's when it received the ping and when
  it answered (3 x 8 bytes);
- ``ACK``: JSON ``{"ok": true}`` once the trace is stored, or ``{"ok": false,
  "reason"}`` (the sender then saves it itself).

A connection closed before ``END`` is a process that is gone: what it sent is kept up
to its last complete event.

The root of a process tree and the collector it started (local_collector.py) talk over
two pipes in the same frames: ``FINISH`` (wait for the other processes), ``NOW`` (stop
waiting), ``MERGE`` (JSON: write the output, or ``{"skip": true}``) one way; ``MET``
(a connection came: sent before the collector accepts its first), ``WAITING`` (JSON ``{"running"}``, when
that number changes), ``READY`` (JSON: the wait is over) and ``RESULT`` (JSON: the
output is written) the other.
"""

from __future__ import annotations

import json
import struct
from typing import Any, Dict, Iterator, Tuple

VERSION = 1
"""The protocol version a HELLO carries; a collector refuses another."""

ENV_ENDPOINT = "VIZTRACER_REPORT_SERVER_ENDPOINT"
"""The environment variable naming a collector (``HOST:PORT``), as upstream VizTracer's."""

DEFAULT_HOST = "127.0.0.1"

HELLO, PING, CLOCK, DATA, END, LEAVE = b"H", b"P", b"C", b"D", b"E", b"L"
PONG, ACK = b"p", b"a"
FINISH, NOW, MERGE = b"F", b"N", b"M"
MET, WAITING, READY, RESULT = b"m", b"w", b"r", b"s"

SENDER_FRAMES = frozenset((HELLO, PING, CLOCK, DATA, END, LEAVE))
COLLECTOR_FRAMES = frozenset((PONG, ACK))
OWNER_FRAMES = frozenset((FINISH, NOW, MERGE))
HELPER_FRAMES = frozenset((MET, WAITING, READY, RESULT))

_HEADER = struct.Struct(">cI")
HEADER_SIZE = _HEADER.size
CHUNK = 256 << 10
"""The size of the DATA frames a sender writes."""
MAX_DATA = 1 << 20
"""The largest DATA body a collector takes."""
MAX_CONTROL = 64 << 10
"""The largest body of any other frame."""

_PING = struct.Struct(">q")
_PONG = struct.Struct(">qqq")


class WireError(ValueError):
    """Bytes that are not this protocol (the connection is dropped)."""


def frame(kind: bytes, body: bytes = b"") -> bytes:
    return _HEADER.pack(kind, len(body)) + body


def json_frame(kind: bytes, obj: Any) -> bytes:
    return frame(kind, json.dumps(obj, separators=(",", ":")).encode())


def data_header(length: int) -> bytes:
    """The header of a DATA frame whose body (``length`` bytes) is sent separately."""
    return _HEADER.pack(DATA, length)


def decode_json(kind: bytes, body: bytes) -> Dict[str, Any]:
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WireError(f"a {kind.decode()} frame that is not JSON") from None
    if not isinstance(obj, dict):
        raise WireError(f"a {kind.decode()} frame that is not a JSON object")
    return obj


def ping(t1: int) -> bytes:
    return frame(PING, _PING.pack(t1))


def ping_time(body: bytes) -> int:
    if len(body) != _PING.size:
        raise WireError("a PING of the wrong size")
    return int(_PING.unpack(body)[0])


def pong(t1: int, t2: int, t3: int) -> bytes:
    return frame(PONG, _PONG.pack(t1, t2, t3))


def pong_times(body: bytes) -> Tuple[int, int, int]:
    if len(body) != _PONG.size:
        raise WireError("a PONG of the wrong size")
    t1, t2, t3 = _PONG.unpack(body)
    return t1, t2, t3


class FrameReader:
    """Cuts bytes, as they arrive, into ``(kind, body)``. A DATA body is given in the
    pieces it arrives in (never held whole), so memory stays bounded by what one
    ``feed`` brings; any other body whole. Frames of another kind than ``allowed``, and
    bodies over the limits, raise :class:`WireError`."""

    def __init__(self, allowed: frozenset) -> None:
        self.allowed = allowed
        self._buf = bytearray()
        self._kind = b""
        self._left = -1  # bytes of the current body still to come; -1: in a header

    def feed(self, data: bytes) -> Iterator[Tuple[bytes, bytes]]:
        view = memoryview(data)
        while view:
            if self._left < 0:
                take = HEADER_SIZE - len(self._buf)
                self._buf += view[:take]
                view = view[take:]
                if len(self._buf) < HEADER_SIZE:
                    return
                kind, length = _HEADER.unpack(self._buf)
                self._buf.clear()
                self._start(kind, length)
                if length == 0:
                    self._left = -1
                    yield kind, b""
                continue
            piece = view[:self._left]
            view = view[self._left:]
            self._left -= len(piece)
            done = self._left == 0
            if done:
                self._left = -1  # (before yielding: the caller may stop at any frame)
            if self._kind == DATA:
                yield DATA, bytes(piece)
            else:
                self._buf += piece
                if done:
                    body = bytes(self._buf)
                    self._buf.clear()
                    yield self._kind, body

    def _start(self, kind: bytes, length: int) -> None:
        if kind not in self.allowed:
            raise WireError(f"not a viztracer trace connection (frame type {kind!r})")
        limit = MAX_DATA if kind == DATA else MAX_CONTROL
        if length > limit:
            raise WireError(f"a {kind.decode()} frame of {length} bytes (at most {limit})")
        self._kind = kind
        self._left = length

    @property
    def in_frame(self) -> bool:
        """Whether a frame has begun and not ended."""
        return self._left >= 0 or bool(self._buf)


# ----------------------------------------------------------------------------- endpoints

def parse_endpoint(text: str, *, listening: bool = False) -> Tuple[str, int]:
    """``(host, port)`` of ``HOST:PORT`` (``[::1]:PORT`` for IPv6), or a ValueError
    saying what is wrong. Port 0 (any free port) only for a collector to listen on,
    which may also leave out the host (``:PORT``: 127.0.0.1)."""
    if not isinstance(text, str) or ":" not in text:
        raise ValueError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:8123)")
    host, _, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        if not listening:
            raise ValueError(f"{text!r} has no host: HOST:PORT (e.g. 127.0.0.1:8123)")
        host = DEFAULT_HOST
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not (0 if listening else 1) <= port <= 65535 or not port_text.isdigit():
        raise ValueError(f"{text!r} has no valid port: use a number from {0 if listening else 1} to 65535")
    return host, port


def format_endpoint(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
