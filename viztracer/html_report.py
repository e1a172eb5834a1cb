"""Self-contained HTML reports: the vizviewer page with the trace inside one file.

The file opens from disk in a browser, with no server and no network: the page's
CSS and JavaScript are inlined, and the trace JSON is stored gzip-compressed and
base64-encoded in a ``<script type="application/octet-stream">`` element, which the
page inflates with the browser's own ``DecompressionStream``. Base64 has no ``<``, so
nothing in the trace (a ``</script>`` in a string, say) can end that element early,
and a 1M-event trace (about 150 MB of JSON) becomes a file of about 10 MB.

This module makes the page; :mod:`viztracer.trace_writer` opens the file and writes
the trace into an :class:`HtmlPage` as it writes any other kind of trace file.
"""

from __future__ import annotations

import base64
import html
import os
import zlib
from typing import BinaryIO, Tuple

_WEB_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "web")
_DATA_MARKER = "<!--VIZVIEWER_DATA-->"
# The embedded trace is compressed for size on disk, at the fastest level: a page is
# written once per trace, and level 1 already shrinks trace JSON about 15 times.
DATA_LEVEL = 1
# Lines of 4 KiB keep editors and diff tools happy; the page strips whitespace.
# 4096 base64 characters hold 3072 bytes.
_LINE_BYTES = 3072


def _read_asset(name: str) -> str:
    with open(os.path.join(_WEB_DIR, name), encoding="utf-8") as f:
        return f.read()


def _inline(tag: str, text: str) -> str:
    # An inline element ends at the first "</tag"; our assets never contain one,
    # but make sure of it rather than produce a broken page.
    if f"</{tag}" in text.lower() or "<!--" in text:
        raise ValueError(f"an inlined {tag} contains '</{tag}' or '<!--'")
    return f"<{tag}>\n{text}\n</{tag}>"


def page_parts(title: str) -> Tuple[str, str]:
    """The viewer page split where the trace goes: (before, after)."""
    page = _read_asset("index.html")
    page = page.replace('<link rel="stylesheet" href="style.css">', _inline("style", _read_asset("style.css")))
    for script in ("model.js", "app.js"):
        page = page.replace(f'<script src="{script}"></script>', _inline("script", _read_asset(script)))
    page = page.replace("<title>vizviewer</title>", f"<title>{html.escape(title)} - vizviewer</title>")
    if _DATA_MARKER not in page or 'src="' in page.split(_DATA_MARKER, 1)[1]:
        raise RuntimeError("viztracer/web/index.html is not in the expected shape")
    before, after = page.split(_DATA_MARKER, 1)
    return before, after


class HtmlPage:
    """Writes the viewer page to ``out`` around the trace bytes given to :meth:`write`,
    which are compressed and encoded as they come; :meth:`finish` ends the page."""

    def __init__(self, out: BinaryIO, title: str) -> None:
        before, self._after = page_parts(title)
        self._out = out
        self._zip = zlib.compressobj(DATA_LEVEL, zlib.DEFLATED, 31)  # a gzip container
        self._pending = b""  # compressed bytes not yet encoded: less than a line's worth
        out.write(before.encode("utf-8"))
        out.write(('<script type="application/octet-stream" id="vizviewer-data" data-encoding="gzip-base64" '
                   f'data-title="{html.escape(title, quote=True)}">').encode("utf-8"))

    def write(self, data: bytes, /) -> int:
        self._encode(self._zip.compress(data), final=False)
        return len(data)

    def finish(self) -> None:
        self._encode(self._zip.flush(), final=True)
        self._out.write(b"</script>")
        self._out.write(self._after.encode("utf-8"))

    def _encode(self, compressed: bytes, final: bool) -> None:
        data = self._pending + compressed
        full = len(data) if final else len(data) - len(data) % _LINE_BYTES
        for i in range(0, full, _LINE_BYTES):
            self._out.write(base64.b64encode(data[i:i + _LINE_BYTES]) + b"\n")
        self._pending = data[full:]
