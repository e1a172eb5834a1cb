"""The modes that work on trace files instead of a program: ``--combine``,
``--align_combine``, ``--compress`` and ``--decompress``."""

from __future__ import annotations

import argparse
import os
from typing import List

from ..trace_writer import SaveError, failure_line, output_kind
from .arguments import DEFAULT_OUTPUT
from .errors import CliError


def run_combine(ns: argparse.Namespace, files: List[str], align: bool) -> int:
    from ..report_builder import ReportBuilder  # start-up: this mode only (report_builder imports gzip)

    if not files:
        raise CliError("Nothing to combine: give the trace files after --combine/--align_combine")
    for f in files:
        if not os.path.isfile(f):
            raise CliError(f"Unable to find file {f}")
        if not (f.endswith(".json") or f.endswith(".json.gz")):
            raise CliError(f"Only json reports can be combined, {f} is not one")
    out = ns.output_file or DEFAULT_OUTPUT
    if ns.output_dir:
        out = os.path.join(ns.output_dir, out)
    try:
        output_kind(out)
    except ValueError as e:
        raise CliError("Only html, json and gz are supported") from e
    try:
        builder = ReportBuilder(files, verbose=0 if ns.quiet else 1, align=align,
                                minimize_memory=ns.minimize_memory)
        builder.save(out)
    except SaveError as e:
        raise _save_failed(e) from e
    except ValueError as e:
        raise CliError(str(e)) from e
    return 0


def _save_failed(error: SaveError) -> CliError:
    return CliError(failure_line(error), stream="stderr")


def run_compress(ns: argparse.Namespace) -> int:
    from .. import compressor  # start-up: this mode only (compressor imports lzma)

    src = ns.compress
    if not os.path.isfile(src):
        raise CliError(f"Unable to find file {src}")
    if not (src.endswith(".json") or src.endswith(".json.gz") or src.endswith(".gz")):
        raise CliError("Only support compressing json report")
    out = ns.output_file or "result.cvf"
    try:
        stats = compressor.compress_file(src, out)
    except compressor.FormatError as e:
        raise CliError(f"Unable to compress {src}: {e}") from e
    except SaveError as e:
        raise _save_failed(e) from e
    if not ns.quiet:
        print(f"Compressed {src} ({stats['input_bytes']} bytes) to {out} ({stats['output_bytes']} bytes)")
    return 0


def run_decompress(ns: argparse.Namespace) -> int:
    from .. import compressor  # start-up: this mode only (compressor imports lzma)

    src = ns.decompress
    if not os.path.isfile(src):
        raise CliError(f"Unable to find file {src}")
    out = ns.output_file or DEFAULT_OUTPUT
    try:
        kind = output_kind(out)
    except ValueError as e:
        raise CliError("Only html, json and gz are supported") from e
    try:
        if kind == "html":
            from ..report_builder import ReportBuilder  # start-up: this mode only (report_builder imports gzip)
            with open(src, "rb") as f:
                trace = compressor.decompress(f.read())
            ReportBuilder(trace, verbose=0).save(out, file_info="file_info" not in trace)
        else:
            compressor.decompress_file(src, out)
    except compressor.FormatError as e:
        raise CliError(f"Unable to decompress {src}: {e}") from e
    except SaveError as e:
        raise _save_failed(e) from e
    if not ns.quiet:
        print(f"Decompressed {src} to {out}")
    return 0
