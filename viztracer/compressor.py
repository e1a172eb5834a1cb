"""A compact binary file format for traces (``.cvf``), and the conversion both ways.

``viztracer --compress trace.json -o trace.cvf`` and ``viztracer --decompress
trace.cvf -o trace.json`` use it. The format is our own (standard library only) and
loses nothing: decompressing gives back every event, in the same order, with the
same keys in the same order and the same values (floats bit for bit, ints as ints),
and every other top-level key of the trace (metadata, ``file_info``...).

How it gets small: events are grouped by *shape* (their tuple of keys), and each
key of a shape becomes a column, encoded by what it holds:

* a column whose values are all equal is stored once;
* integers, and floats that are whole numbers of thousandths (timestamps and
  durations in µs with ns precision, as tracers write them), become 64-bit
  integers, delta-encoded when that makes them smaller (timestamps), zigzagged,
  and split into byte planes (all low bytes, then all second bytes...; planes
  that are all zero are dropped);
* strings (function names...) become indices into one table of distinct strings;
* anything else (args dicts, odd values) is stored as compact JSON text, through
  the same string table, so repeated values are stored once.

The columns, the string table and a small JSON header are then compressed together
with LZMA, which finds what is left (repeated call patterns, sources in
``file_info``).

File layout::

    b"VZCF"  u8 version (1)  u8 codec  compressed payload
    codec 1: raw LZMA2 stream of: u32 header length, header (JSON), then the blobs
             (columns, shape of each event, string table) the header points to
    codec 2: raw deflate stream of the compact JSON text (chosen for tiny traces
             when it is smaller)
"""

from __future__ import annotations

import gc
import gzip
import json
import lzma
import math
import os
import struct
import sys
import zlib
from array import array
from contextlib import contextmanager
from itertools import accumulate, repeat
from operator import itemgetter
from typing import Any, Dict, Iterator, List, Optional, Tuple

from .trace_writer import atomic_file, write_report

MAGIC = b"VZCF"
VERSION = 1
CODEC_XZ = 1            # the columns described above, LZMA2 (raw stream)
CODEC_PLAIN_ZLIB = 2    # tiny traces: the compact JSON text, deflate (raw stream)
SMALL_TRACE = 5000      # below this many events both are tried, the smaller kept

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_BIG_ENDIAN = sys.byteorder == "big"

# column encodings
CONST, NUM, STR, JSON, FLOAT = "const", "num", "str", "json", "float"


class FormatError(ValueError):
    """The input is not a trace this module can convert (or not a .cvf file)."""


# --------------------------------------------------------------------------- integers

def _pack_u64(values: List[int]) -> bytes:
    """Unsigned 64-bit integers as byte planes: u8 width, then ``width`` planes."""
    if not values:
        return b"\0"
    width = (max(values).bit_length() + 7) // 8
    arr = array("Q", values)
    if _BIG_ENDIAN:
        arr.byteswap()
    raw = arr.tobytes()
    return bytes([width]) + b"".join(raw[i::8] for i in range(width))


def _unpack_u64(blob: memoryview, n: int) -> List[int]:
    if n == 0:
        return []
    width = blob[0]
    if width > 8 or len(blob) != 1 + width * n:
        raise FormatError("corrupt integer column")
    raw = bytearray(8 * n)
    for i in range(width):
        raw[i::8] = blob[1 + i * n:1 + (i + 1) * n]
    arr = array("Q")
    arr.frombytes(bytes(raw))
    if _BIG_ENDIAN:
        arr.byteswap()
    return arr.tolist()


def _fits_int64(values: List[int]) -> bool:
    return not values or (min(values) >= _INT64_MIN and max(values) <= _INT64_MAX)


def _pack_i64(values: List[int]) -> bytes:
    """Signed integers, zigzagged (small magnitudes stay small) and packed."""
    return _pack_u64([(v << 1) ^ (v >> 63) for v in values])


def _unpack_i64(blob: memoryview, n: int) -> List[int]:
    return [(z >> 1) ^ -(z & 1) for z in _unpack_u64(blob, n)]


def _as_millis(values: List[Any]) -> Optional[List[int]]:
    """The values as whole thousandths, if every one is a float that is exactly
    ``k / 1000`` for an integer k (and not -0.0), else None."""
    try:
        ks = [round(v * 1000) for v in values]
    except (OverflowError, ValueError):  # inf, nan
        return None
    if [k / 1000 for k in ks] != values:
        return None
    if values.count(0.0) and any(math.copysign(1.0, v) < 0 for v in values if v == 0):
        return None
    return ks if _fits_int64(ks) else None


# --------------------------------------------------------------------------- strings

class _StringTable:
    def __init__(self) -> None:
        self.index: Dict[str, int] = {}
        self.items: List[str] = []

    def ids(self, values: List[str]) -> List[int]:
        index, items = self.index, self.items
        for s in dict.fromkeys(values):
            if s not in index:
                index[s] = len(items)
                items.append(s)
        return list(map(index.__getitem__, values))

    def blob(self) -> bytes:
        encoded = [s.encode("utf-8", "surrogatepass") for s in self.items]
        return _pack_u64([len(b) for b in encoded]) + b"".join(encoded)


def _read_strings(blob: memoryview, n: int) -> List[str]:
    if n == 0:
        return []
    width = blob[0]
    lengths = _unpack_u64(blob[:1 + width * n], n)
    data = bytes(blob[1 + width * n:])
    ends = list(accumulate(lengths))
    if ends[-1] != len(data):
        raise FormatError("corrupt string table")
    starts = [0] + ends[:-1]
    return [data[a:b].decode("utf-8", "surrogatepass") for a, b in zip(starts, ends)]


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# --------------------------------------------------------------------------- compress

def _numbers(values: List[Any], t: type) -> Optional[Tuple[int, List[int]]]:
    """(scale, integers) for a column of ints (scale 0) or of floats that are whole
    thousandths (scale 1000); None for anything else."""
    if t is int:
        return (0, values) if _fits_int64(values) else None
    if t is float:
        ks = _as_millis(values)
        return None if ks is None else (1000, ks)
    return None


def _encode_numbers(ints: List[int], scale: int, end_of: Optional[str] = None) -> Tuple[List[Any], bytes]:
    """A numeric column: deltas from the previous value when they are much smaller
    than the values (the first value then goes in the description)."""
    use_delta = False
    if len(ints) > 1:
        deltas = [b - a for a, b in zip(ints, ints[1:])]
        big = max(abs(min(ints)), abs(max(ints)))
        step = max(abs(min(deltas)), abs(max(deltas)))
        use_delta = step * 16 < big and _fits_int64(deltas)
    if use_delta:
        return [NUM, scale, ints[0], end_of], _pack_i64(deltas)
    return [NUM, scale, None, end_of], _pack_i64(ints)


def _encode_column(
    values: List[Any], strings: _StringTable,
) -> Tuple[List[Any], bytes, Optional[Tuple[int, List[int]]]]:
    """(description, blob, numbers) of one column; numbers is (scale, ints) for a
    numeric column."""
    first = values[0]
    t = type(first)
    if len(set(map(type, values))) == 1:
        if values.count(first) == len(values) and (t is not float or len(set(map(float.hex, values))) == 1):
            if t in (int, float, str, bool, type(None)):  # (-0.0 and nan kept by the hex test)
                return [CONST, first], b"", None
        nums = _numbers(values, t)
        if nums is not None:
            desc, blob = _encode_numbers(nums[1], nums[0])
            return desc, blob, nums
        if t is float:
            arr = array("d", values)
            if _BIG_ENDIAN:
                arr.byteswap()
            raw = arr.tobytes()
            return [FLOAT], b"".join(raw[i::8] for i in range(8)), None
        if t is str:
            return [STR], _pack_u64(strings.ids(values)), None
    return [JSON], _pack_u64(strings.ids([_json_text(v) for v in values])), None


def _group_by_shape(events: List[Any]) -> Tuple[List[Optional[List[str]]], List[int], List[List[Any]]]:
    """(shapes, shape id of each event, events of each shape). A shape is the tuple
    of an event's keys (None for an event that is not an object)."""
    keys: List[Optional[Tuple[Any, ...]]]
    if set(map(type, events)) <= {dict}:
        keys = list(map(tuple, events))
    else:
        keys = [tuple(e) if type(e) is dict else None for e in events]
    index = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    shape_ids = list(map(index.__getitem__, keys))
    shapes = [list(k) if k is not None else None for k in index]
    if len(shapes) <= 16:
        rows = [[e for e, s in zip(events, shape_ids) if s == sid] for sid in range(len(shapes))]
    else:
        rows = [[] for _ in shapes]
        for e, s in zip(events, shape_ids):
            rows[s].append(e)
    return shapes, shape_ids, rows


def compress(trace: Dict[str, Any], preset: int = 6) -> bytes:
    """The .cvf bytes of a trace (a dict as loaded from a trace's JSON)."""
    if not isinstance(trace, dict) or not isinstance(trace.get("traceEvents"), list):
        raise FormatError("not a trace: expected a JSON object with a traceEvents list")
    with _no_gc():
        data = _compress_columns(trace, preset)
    if len(trace["traceEvents"]) < SMALL_TRACE:
        # Tiny traces: the column descriptions can cost more than they save.
        plain = json.dumps(trace, separators=(",", ":")).encode("utf-8", "surrogatepass")
        plain = MAGIC + bytes([VERSION, CODEC_PLAIN_ZLIB]) + zlib.compress(plain, 9)[2:-4]
        if len(plain) < len(data):
            return plain
    return data


@contextmanager
def _no_gc() -> Iterator[None]:
    """Millions of containers are made here: the cyclic GC would walk them over and
    over for nothing (they form no cycles)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _compress_columns(trace: Dict[str, Any], preset: int) -> bytes:
    events = trace["traceEvents"]
    shapes, shape_ids, rows = _group_by_shape(events)

    strings = _StringTable()
    blobs: List[bytes] = []
    columns: List[List[Any]] = []

    def add(sid: int, key: Optional[str], desc: List[Any], blob: bytes) -> None:
        if blob:
            blobs.append(blob)
        columns.append([sid, key, len(blobs) - 1 if blob else -1] + desc)

    for sid, keys in enumerate(shapes):
        group = rows[sid]
        if keys is None:
            add(sid, None, [JSON], _pack_u64(strings.ids([_json_text(v) for v in group])))
            continue
        ts_values: Optional[List[Any]] = None
        dur: Optional[Tuple[int, List[int]]] = None
        for key in keys:
            values = list(map(itemgetter(key), group))
            if key == "ts" and "dur" in keys:
                ts_values = values  # below, once dur is known
                continue
            desc, blob, nums = _encode_column(values, strings)
            if key == "dur":
                dur = nums
            add(sid, key, desc, blob)
        if ts_values is not None:
            if dur is not None and len(set(map(type, ts_values))) == 1:
                ts = _numbers(ts_values, type(ts_values[0]))
                if ts is not None and ts[0] == dur[0]:
                    # Complete events are written when they end: their end times grow
                    # steadily, their start times do not.
                    ends = [a + b for a, b in zip(ts[1], dur[1])]
                    if _fits_int64(ends):
                        add(sid, "ts", *_encode_numbers(ends, ts[0], end_of="dur"))
                        continue
            desc, blob, _ = _encode_column(ts_values, strings)
            add(sid, "ts", desc, blob)

    top = [[k, None] if k == "traceEvents" else [k, v] for k, v in trace.items()]
    blobs.append(_pack_u64(shape_ids))
    blobs.append(strings.blob())
    header = {
        "events": len(events),
        "top": top,
        "shapes": shapes,
        "counts": [len(r) for r in rows],
        "columns": columns,
        "shape_ids": len(blobs) - 2,
        "strings": [len(blobs) - 1, len(strings.items)],
        "blobs": [len(b) for b in blobs],
    }
    head = json.dumps(header, separators=(",", ":"), allow_nan=True).encode("utf-8", "surrogatepass")
    payload = b"".join([struct.pack("<I", len(head)), head] + blobs)
    return MAGIC + bytes([VERSION, CODEC_XZ]) + lzma.compress(payload, format=lzma.FORMAT_RAW,
                                                                 filters=_filters(preset))


def _filters(preset: int) -> List[Dict[str, Any]]:
    return [{"id": lzma.FILTER_LZMA2, "preset": preset, "dict_size": 1 << 24}]


# --------------------------------------------------------------------------- decompress

def _decode_numbers(desc: List[Any], blob: memoryview, n: int, raw: Dict[Any, List[int]], key: Any) -> List[Any]:
    _, scale, first, end_of = desc[:4]
    if first is not None:
        ints = list(accumulate(_unpack_i64(blob, n - 1), initial=first)) if n else []
    else:
        ints = _unpack_i64(blob, n)
    if end_of is not None:
        ints = [a - b for a, b in zip(ints, raw[end_of])]
    raw[key] = ints
    return [k / scale for k in ints] if scale else ints


def _decode_column(desc: List[Any], blob: memoryview, n: int, strings: List[str]) -> Any:
    kind = desc[0]
    if kind == CONST:
        return repeat(desc[1], n)
    if kind == FLOAT:
        if len(blob) != 8 * n:
            raise FormatError("corrupt float column")
        raw = bytearray(8 * n)
        for i in range(8):
            raw[i::8] = blob[i * n:(i + 1) * n]
        arr = array("d")
        arr.frombytes(bytes(raw))
        if _BIG_ENDIAN:
            arr.byteswap()
        return arr.tolist()
    if kind == STR:
        return list(map(strings.__getitem__, _unpack_u64(blob, n)))
    if kind == JSON:
        texts = map(strings.__getitem__, _unpack_u64(blob, n))
        cache: Dict[str, Any] = {}
        out = []
        for t in texts:
            # Mutable values (dicts, lists) are parsed per event, so that no two events share one.
            v = cache.get(t, cache)
            if v is cache:
                v = json.loads(t)
                if not isinstance(v, (dict, list)):
                    cache[t] = v
            out.append(v)
        return out
    raise FormatError(f"unknown column encoding {kind!r}")


def decompress(data: bytes) -> Dict[str, Any]:
    """The trace (a dict) stored in .cvf bytes."""
    if len(data) < 6 or data[:4] != MAGIC:
        raise FormatError("not a viztracer compressed trace (.cvf)")
    if data[4] != VERSION:
        raise FormatError(f"unsupported .cvf version {data[4]}")
    if data[5] == CODEC_PLAIN_ZLIB:
        try:
            return json.loads(zlib.decompress(data[6:], -15).decode("utf-8", "surrogatepass"))
        except (zlib.error, ValueError) as e:
            raise FormatError(f"corrupt .cvf file ({e})") from None
    if data[5] != CODEC_XZ:
        raise FormatError(f"unsupported .cvf codec {data[5]}")
    with _no_gc():
        return _decompress_columns(data)


def _decompress_columns(data: bytes) -> Dict[str, Any]:
    try:
        payload = memoryview(lzma.decompress(data[6:], format=lzma.FORMAT_RAW, filters=_filters(6)))
        (head_len,) = struct.unpack_from("<I", payload, 0)
        header = json.loads(bytes(payload[4:4 + head_len]).decode("utf-8", "surrogatepass"))
        blobs = []
        pos = 4 + head_len
        for size in header["blobs"]:
            blobs.append(payload[pos:pos + size])
            pos += size
        if pos != len(payload):
            raise FormatError("corrupt file: sizes do not add up")
        string_blob, string_count = header["strings"]
        strings = _read_strings(blobs[string_blob], string_count)
        counts = header["counts"]
        shape_ids = _unpack_u64(blobs[header["shape_ids"]], header["events"])
        by_shape: List[Dict[Any, Any]] = [{} for _ in counts]
        numbers: List[Dict[Any, List[int]]] = [{} for _ in counts]
        for sid, key, blob_index, *desc in header["columns"]:
            blob = blobs[blob_index] if blob_index >= 0 else memoryview(b"")
            if desc[0] == NUM:
                by_shape[sid][key] = _decode_numbers(desc, blob, counts[sid], numbers[sid], key)
            else:
                by_shape[sid][key] = _decode_column(desc, blob, counts[sid], strings)
        iters = []
        for sid, keys in enumerate(header["shapes"]):
            if keys is None:
                iters.append(iter(by_shape[sid][None]))
            else:
                cols = [by_shape[sid][k] for k in keys]
                iters.append(map(dict, map(zip, repeat(keys), zip(*cols))))
        nexts = [it.__next__ for it in iters]
        events = [nexts[s]() for s in shape_ids]
    except (lzma.LZMAError, struct.error, KeyError, IndexError, TypeError, ValueError, StopIteration) as e:
        if isinstance(e, FormatError):
            raise
        raise FormatError(f"corrupt .cvf file ({type(e).__name__}: {e})") from None
    trace: Dict[str, Any] = {}
    for key, value in header["top"]:
        trace[key] = events if key == "traceEvents" else value
    return trace


# --------------------------------------------------------------------------- files

def load_json_trace(path: str) -> Dict[str, Any]:
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            return json.loads(f.read())
    except (OSError, EOFError, ValueError) as e:
        raise FormatError(f"not a JSON trace ({e})") from None


def compress_file(src: str, dst: str, preset: int = 6) -> Dict[str, int]:
    """Write ``src`` (.json or .json.gz) to ``dst`` in .cvf; returns the sizes."""
    data = compress(load_json_trace(src), preset=preset)
    with atomic_file(dst) as f:
        f.write(data)
    return {"input_bytes": os.path.getsize(src), "output_bytes": len(data)}


def decompress_file(src: str, dst: str) -> None:
    """Write the trace stored in ``src`` (.cvf) to ``dst`` (any kind of trace file)."""
    with open(src, "rb") as f:
        trace = decompress(f.read())
    write_report(trace, dst)
