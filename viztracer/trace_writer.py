"""Writing trace files: every trace file viztracer writes goes through here.

This module owns

- the output kinds (``.json``, ``.gz``/``.json.gz``, ``.html``) and how a file of each
  kind is opened for writing (:func:`open_trace`): plain, gzip at :data:`GZIP_LEVEL`,
  or the self-contained viewer page of :mod:`viztracer.html_report` around the bytes;
- the file's envelope, the layout the native writer (``rust/output/snapshot.rs``) streams and
  everything else here copies: :data:`HEAD`, then one event per line separated by
  :data:`SEPARATOR`, then :func:`closing`, which starts with :data:`TAIL` when the
  trace has metadata. Escaped JSON never holds a raw newline, so the events of a file
  in this layout can be cut out and counted without parsing them (:func:`merge_traces`);
- the three ways a trace is written: a native snapshot (:func:`write_snapshot`,
  streamed by the native writer for JSON and gzip), a trace held as a dict
  (:func:`write_report`), and the traces of the processes of a collection spliced into
  one (:func:`merge_traces`);
- a trace given to a sender a piece at a time instead (:func:`stream_snapshot`,
  :func:`stream_report`), its timestamps moved onto the collector's clock.

Every file is written atomically (:func:`atomic_file`): under a hidden temporary name
in its directory, renamed onto its path once complete. A save that fails (a full disk,
a directory gone, no permission) leaves what was at the path as it was, no partial
file, and raises :class:`SaveError`, whose message is one line.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import zlib
from contextlib import contextmanager
from typing import (
    Any,
    BinaryIO,
    Callable,
    Collection,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Protocol,
    Sequence,
    Tuple,
)

OUTPUT_KINDS = ("json", "gz", "html")
# The level of every gzip file written here; the native writer writes gzip at the
# same level (``flate2::Compression::new(6)`` in rust/api/snapshot.rs).
GZIP_LEVEL = 6

EVENTS = "traceEvents"
METADATA = "viztracer_metadata"
FILE_INFO = "file_info"

# One encoder for everything written from Python: compact, as the native writer is.
_encode = json.JSONEncoder(separators=(",", ":")).encode


def _member(key: str) -> bytes:
    """What introduces a top-level member after the events: ``,"key":``."""
    return b"," + _encode(key).encode() + b":"


HEAD = b"{" + _encode(EVENTS).encode() + b":[\n"
SEPARATOR = b",\n"
_SEPARATOR_TEXT = SEPARATOR.decode()
_CLOSE = b"\n]"
TAIL = _CLOSE + _member(METADATA)
END = b"}\n"
# Events encoded per write when writing a dict; also the size of a copy when merging.
_BATCH = 10_000
_COPY_BYTES = 1 << 22


def output_kind(path: str) -> str:
    """``"json"``, ``"gz"`` or ``"html"`` from a file name, or a ValueError."""
    kind = path.rsplit(".", 1)[-1].lower() if "." in os.path.basename(path) else ""
    if kind not in OUTPUT_KINDS:
        raise ValueError(f"Only html, json and gz are supported, can't save to {path!r}")
    return kind


class Sink(Protocol):
    """Where trace bytes go: a file opened by :func:`open_trace`."""

    def write(self, data: bytes, /) -> int: ...


class SaveError(OSError):
    """A trace file that could not be written. What was at its path before is there
    as it was, and no partial file is left behind. The message is one line."""

    def __init__(self, path: str, cause: BaseException) -> None:
        errno = getattr(cause, "errno", None)
        reason = os.strerror(errno) if errno else _first_line(cause)
        kept = f"the previous {os.path.basename(path)} is unchanged" if os.path.exists(path) else "nothing was written"
        super().__init__(errno, reason)
        self.filename = path
        self.message = f"could not save the trace to {path}: {reason} ({kept})"

    def __str__(self) -> str:
        return self.message


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def failure_line(error: BaseException) -> str:
    """Why a save failed, in the one line the exit paths and the command line print."""
    if isinstance(error, SaveError):
        return f"VizTracer: {error}"
    return f"VizTracer: could not save the trace: {type(error).__name__}: {_first_line(error)}"


@contextmanager
def atomic_file(path: str) -> Iterator[BinaryIO]:
    """A new file that becomes ``path`` only once it is complete and closed: it is
    written under a hidden, unique name in the same directory and renamed onto
    ``path`` (``os.replace``). If anything fails, or the caller raises, the temporary
    file goes and ``path`` keeps what it had; an OSError becomes a :class:`SaveError`.
    Every file viztracer writes goes through here. (Not fsync'd: the rename makes a
    crash of this process harmless, not one of the machine.)"""
    target = os.path.realpath(path)  # through a link: the link stays, its target is replaced
    directory, name = os.path.split(target)
    temp = os.path.join(directory, f".{name}.{os.urandom(4).hex()}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except OSError as e:
        raise SaveError(path, e) from e
    try:
        _keep_mode(fd, target)
        with open(fd, "wb") as f:  # closing it is checked too: a failed close is a failed save
            yield f
        os.replace(temp, target)
    except BaseException as e:
        _remove_quietly(temp)
        if isinstance(e, OSError) and not isinstance(e, SaveError):
            raise SaveError(path, e) from e
        raise


def make_parent_dir(path: str) -> None:
    """Creates the directory of ``path`` if it is missing (a save does, for its output
    file); a :class:`SaveError` if it can't."""
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    except OSError as e:
        raise SaveError(path, e) from e


def _keep_mode(fd: int, target: str) -> None:
    """The new file gets the permissions of the one it replaces, if any (a trace holds
    source code)."""
    try:
        os.fchmod(fd, stat.S_IMODE(os.stat(target).st_mode))
    except OSError:
        pass


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


@contextmanager
def open_trace(path: str) -> Iterator[Sink]:
    """Opens ``path`` for writing as its kind says: the bytes written are the trace
    JSON, stored as is, gzip-compressed, or inside the viewer page. Atomic
    (:func:`atomic_file`)."""
    kind = output_kind(path)
    with atomic_file(path) as f:
        if kind == "json":
            yield f
        elif kind == "gz":
            import gzip  # start-up: .gz output of a merge or a dict only
            with gzip.GzipFile(fileobj=f, mode="wb", compresslevel=GZIP_LEVEL) as gz:
                yield gz
        else:
            from .html_report import HtmlPage  # start-up: .html output only
            page = HtmlPage(f, title=os.path.basename(path))
            yield page
            page.finish()


def _event_lines(events: Sequence[Any]) -> bytes:
    """Events as JSON, one per line, separated by :data:`SEPARATOR`."""
    return _SEPARATOR_TEXT.join(map(_encode, events)).encode()


def closing(members: Mapping[str, Any]) -> bytes:
    """The bytes after the last event: the end of the events array, the other
    top-level members (the metadata first, as the native writer puts it) and the end."""
    keys = sorted(members, key=lambda k: k != METADATA)
    return _CLOSE + b"".join(_member(k) + _encode(members[k]).encode() for k in keys) + END


# --------------------------------------------------------------------------- writers

def write_snapshot(snap: Any, path: str, *, pid: int, process_name: str,
                   thread_names: Sequence[Tuple[int, str]], metadata: Dict[str, Any],
                   file_info: Optional[Dict[str, Any]],
                   progress: Optional[Callable[[int, int], None]] = None) -> int:
    """Writes a native ``Snapshot``; returns the number of events (metadata events not
    counted). JSON and gzip are streamed by the native writer with the GIL released;
    HTML takes the same bytes into the page."""
    header: Dict[str, Any] = {
        "pid": pid, "process_name": process_name, "thread_names": thread_names,
        "metadata_json": _encode(metadata),
        "file_info_json": None if file_info is None else _encode(file_info),
    }
    kind = output_kind(path)
    if kind == "html":
        data = snap.to_bytes(**header)
        with open_trace(path) as out:
            out.write(data)
        return int(snap.entries)
    with atomic_file(path) as f:
        return int(snap.write(f.fileno(), gzip=kind == "gz", progress=progress, **header))


def report_chunks(report: Mapping[str, Any]) -> Iterator[bytes]:
    """A trace held as a dict, in the envelope's layout, a batch of events at a time:
    the events first, then the metadata, then the other members in their order."""
    events = report.get(EVENTS, [])
    yield HEAD
    for i in range(0, len(events), _BATCH):
        lines = _event_lines(events[i:i + _BATCH])
        yield lines if i == 0 else SEPARATOR + lines
    yield closing({k: v for k, v in report.items() if k != EVENTS})


def write_report(report: Mapping[str, Any], path: str) -> None:
    """Writes a trace held as a dict (``{"traceEvents": [...], ...}``) to ``path``."""
    with open_trace(path) as out:
        for chunk in report_chunks(report):
            out.write(chunk)


def stream_snapshot(snap: Any, sink: Callable[[bytes], Any], *, compress: bool, chunk_size: int, pid: int,
                    process_name: str, thread_names: Sequence[Tuple[int, str]], metadata: Dict[str, Any],
                    file_info: Optional[Dict[str, Any]], ts_offset_ns: int) -> int:
    """Gives a native ``Snapshot``'s trace file to ``sink`` about ``chunk_size`` bytes at
    a time (gzip-compressed with ``compress``), every ``ts`` moved by ``ts_offset_ns``;
    returns the number of events."""
    return int(snap.stream(sink, gzip=compress, chunk_size=chunk_size, pid=pid, process_name=process_name,
                           thread_names=thread_names, metadata_json=_encode(metadata),
                           file_info_json=None if file_info is None else _encode(file_info),
                           ts_offset_ns=ts_offset_ns))


def stream_report(report: Mapping[str, Any], sink: Callable[[bytes], Any], ts_offset_ns: int,
                  compress: bool) -> int:
    """:func:`stream_snapshot` for a trace held as a dict (the dict is not changed)."""
    events = report.get(EVENTS, [])
    if ts_offset_ns:
        us = ts_offset_ns / 1000
        events = [dict(e, ts=e["ts"] + us) if _is_time(e.get("ts")) else e for e in events]
        meta = dict(report.get(METADATA, {}))
        if _is_time(meta.get("sync_marker")):
            meta["sync_marker"] += us
        if _is_time(meta.get("baseTimeNanoseconds")):
            meta["baseTimeNanoseconds"] -= ts_offset_ns
        report = dict(report, **{EVENTS: events, METADATA: meta})
    gz = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31) if compress else None
    for chunk in report_chunks(report):
        out = gz.compress(chunk) if gz is not None else chunk
        if out:
            sink(out)
    if gz is not None:
        sink(gz.flush())
    return sum(1 for e in events if not (isinstance(e, dict) and e.get("ph") == "M"))


def _is_time(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def split_events(data: Any) -> Tuple[int, int]:
    """(start, end) of the events in a file in the envelope's layout (bytes), or a
    ValueError."""
    if not data[:len(HEAD)] == HEAD:
        raise ValueError("not a trace written by viztracer")
    end = data.rfind(TAIL)
    if end < 0:
        raise ValueError("trace file is truncated")
    return len(HEAD), end


class _Merge:
    """The state of a merge: events written so far, metadata and file_info seen."""

    def __init__(self, out: Sink) -> None:
        self.out = out
        self.count = 0
        self.overflow = False
        self.first = True
        self.metadata: Dict[str, Any] = {}
        self.file_info: Dict[str, Dict[str, Any]] = {"files": {}, "functions": {}}
        self.has_file_info = False
        out.write(HEAD)

    def separate(self) -> None:
        if not self.first:
            self.out.write(SEPARATOR)
        self.first = False

    def copy_events(self, f: Any, start: int, end: int) -> None:
        """Copies the event lines ``[start, end)`` of file ``f`` unparsed, a piece at a
        time, counting them (the metadata events, which come first, are not counted)."""
        if end <= start:
            return
        self.separate()
        lines = 1
        f.seek(start)
        left = end - start
        first = True
        while left > 0:
            chunk = f.read(min(left, _COPY_BYTES))
            if not chunk:
                raise ValueError("trace file changed while being read")
            left -= len(chunk)
            lines += chunk.count(b"\n")
            if first:
                lines -= _leading_metadata(chunk)
                first = False
            self.out.write(chunk)
        self.count += lines

    def write_events(self, events: List[Any]) -> None:
        if not events:
            return
        self.separate()
        self.out.write(_event_lines(events))
        self.count += sum(1 for e in events if not (isinstance(e, dict) and e.get("ph") == "M"))

    def add_members(self, members: Dict[str, Any]) -> None:
        meta = members.get(METADATA, {})
        self.overflow = self.overflow or bool(meta.get("overflow"))
        for key, value in meta.items():
            self.metadata.setdefault(key, value)
        if FILE_INFO in members:
            self.has_file_info = True
            self.file_info["files"].update(members[FILE_INFO].get("files", {}))
            self.file_info["functions"].update(members[FILE_INFO].get("functions", {}))

    def add_file(self, path: str, partial: bool = False) -> None:
        """Adds the events of the trace at ``path``; a ``partial`` one (cut short: no
        end) up to its last complete event. A file that can't be opened or parsed raises
        :class:`_Unreadable` before anything of it is written (any other OSError is the
        output's)."""
        try:
            f = open(path, "rb")
        except OSError as e:
            raise _Unreadable(e) from e
        with f:
            size = os.fstat(f.fileno()).st_size
            if f.read(len(HEAD)) != HEAD:
                if partial:
                    raise _Unreadable("not a trace written by viztracer")
                # Not in the envelope's layout: parse it and write its events.
                f.seek(0)
                whole = _parsed(f.read())
                self.write_events(whole.pop(EVENTS, []))
                self.add_members(whole)
                return
            end = _rfind(f, len(HEAD), size, _CLOSE)
            members: Dict[str, Any] = {}
            if end >= 0:
                f.seek(end + len(_CLOSE))
                rest = f.read()
                try:
                    members = _parsed(b"{" + rest[1:]) if rest.startswith(b",") else {}
                except _Unreadable:
                    if not partial:
                        raise
                    # Cut short in its metadata or file_info: its events are whole.
            elif partial:
                end = _rfind(f, len(HEAD), size, SEPARATOR)
            else:
                raise _Unreadable("trace file is truncated")
            self.copy_events(f, len(HEAD), end)
        self.add_members(members)

    def finish(self, metadata: Optional[Dict[str, Any]]) -> None:
        self.metadata.update(metadata or {})
        self.metadata["overflow"] = self.overflow
        members: Dict[str, Any] = {METADATA: self.metadata}
        if self.has_file_info:
            members[FILE_INFO] = self.file_info
        self.out.write(closing(members))


def _rfind(f: Any, start: int, end: int, needle: bytes) -> int:
    """The offset of the last ``needle`` in ``[start, end)`` of file ``f``, or -1, read
    from the end a block at a time."""
    pos = end
    while pos > start:
        block_start = max(start, pos - _COPY_BYTES)
        f.seek(block_start)
        block = f.read(min(end, pos + len(needle) - 1) - block_start)
        found = block.rfind(needle)
        if found >= 0:
            return block_start + found
        pos = block_start
    return -1


class _Unreadable(ValueError):
    """A member file of a merge that can't be read or is not a trace: it is skipped."""


def _parsed(data: bytes) -> Dict[str, Any]:
    try:
        members = json.loads(data)
    except ValueError as e:
        raise _Unreadable(e) from e
    if not isinstance(members, dict):
        raise _Unreadable("not a trace")
    return members


def merge_traces(paths: Iterable[str], output_file: str, metadata: Optional[Dict[str, Any]] = None,
                 partial: Collection[str] = ()) -> Tuple[int, bool]:
    """Writes one trace holding the events of every file in ``paths``, their merged
    ``file_info`` and metadata (``metadata`` added on top). Files in the envelope's
    layout are copied, not parsed (those in ``partial``, cut short, up to their last
    complete event); unreadable files are skipped with a message. Returns (number of
    events, overflow)."""
    with open_trace(output_file) as out:
        merge = _Merge(out)
        for path in paths:
            try:
                merge.add_file(path, path in partial)
            except _Unreadable as e:
                print(f"VizTracer: skipped an unreadable trace {os.path.basename(path)}: {e}", file=sys.stderr)
        merge.finish(metadata)
    return merge.count, merge.overflow


def _leading_metadata(chunk: bytes) -> int:
    """How many lines at the start of ``chunk`` are metadata (``"ph":"M"``) events."""
    n = 0
    pos = 0
    while chunk.startswith(b'{"ph":"M"', pos):
        n += 1
        nl = chunk.find(b"\n", pos)
        if nl < 0:
            break
        pos = nl + 1
    return n
