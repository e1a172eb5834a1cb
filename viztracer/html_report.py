"""Self-contained HTML reports: the vizviewer page with the trace inside one file.

The file opens from disk in a browser, with no server and no network: the page's
CSS and JavaScript are inlined, and the trace JSON is stored gzip-compressed and
base64-encoded in a ``<script type="application/octet-stream">`` element, which the
page inflates with the browser's own ``DecompressionStream``. Base64 has no ``<``, so
nothing in the trace (a ``</script>`` in a string, say) can end that element early,
and a 1M-event trace (about 150 MB of JSON) becomes a file of about 10 MB.
"""

from __future__ import annotations

import base64
import html
import json
import os
import zlib
from typing import Any, Dict, List, Optional, Tuple

_WEB_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "web")
_DATA_MARKER = "<!--VIZVIEWER_DATA-->"


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


def _encode_trace(trace_json: bytes) -> bytes:
    comp = zlib.compressobj(1, zlib.DEFLATED, 31)  # gzip container, fast level
    gz = comp.compress(trace_json) + comp.flush()
    return base64.b64encode(gz)


def write_html(trace_json: bytes, path: str, title: Optional[str] = None) -> None:
    """Writes the viewer page with ``trace_json`` (the bytes of a trace file) inside."""
    if title is None:
        title = os.path.basename(path)
    before, after = page_parts(title)
    data = _encode_trace(trace_json)
    tag = ('<script type="application/octet-stream" id="vizviewer-data" data-encoding="gzip-base64" '
           f'data-title="{html.escape(title, quote=True)}">')
    with open(path, "wb") as f:
        f.write(before.encode("utf-8"))
        f.write(tag.encode("utf-8"))
        # Lines of 4 KiB keep editors and diff tools happy; the page strips whitespace.
        for i in range(0, len(data), 4096):
            f.write(data[i:i + 4096])
            f.write(b"\n")
        f.write(b"</script>")
        f.write(after.encode("utf-8"))


def write_html_snapshot(snap: Any, path: str, *, pid: int, process_name: str,
                        thread_names: List[Tuple[int, str]], metadata_json: str,
                        file_info_json: Optional[str]) -> int:
    """Writes a tracer snapshot as a self-contained HTML report; returns the number of events."""
    trace_json = snap.to_bytes(pid=pid, process_name=process_name, thread_names=thread_names,
                               metadata_json=metadata_json, file_info_json=file_info_json)
    write_html(trace_json, path)
    return snap.entries


def write_html_report(report: Dict[str, Any], path: str) -> None:
    """Writes a trace dict (``{"traceEvents": [...], ...}``) as a self-contained HTML report."""
    write_html(json.dumps(report).encode("utf-8"), path)
