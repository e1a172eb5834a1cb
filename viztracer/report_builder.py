"""Building reports from trace data held in Python: combining files from several
processes or runs, aligning them, and writing the result.

The tracer's own save never goes through here (the native writer streams the events
directly); this is the path for ``--combine``, for data a plugin changed, and for
anything given as dicts or files. The result is written by
:func:`viztracer.trace_writer.write_report`, a batch of events at a time, so
``minimize_memory`` has nothing left to save.
"""

from __future__ import annotations

import gzip
import json
import os
from typing import Any, Dict, List, Optional, Sequence, TextIO, Union

from . import trace_writer
from .file_info import build_file_info, functions_of_raw_events
from .util import color_print
from .version import __version__

ReportInput = Union[Dict[str, Any], str]


def _load_json_file(path: str) -> Dict[str, Any]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return json.load(f)


class ReportBuilder:
    def __init__(self, data: Union[ReportInput, Sequence[ReportInput]], verbose: int = 1,
                 align: bool = False, minimize_memory: bool = False,
                 base_time: Optional[int] = None) -> None:
        if isinstance(data, (dict, str)):
            inputs: List[ReportInput] = [data]
        elif isinstance(data, (list, tuple)):
            inputs = list(data)
        else:
            raise TypeError("Invalid data type for ReportBuilder")
        for item in inputs:
            if isinstance(item, str):
                if not os.path.exists(item):
                    raise ValueError(f"{item} does not exist")
                if not (item.endswith(".json") or item.endswith(".json.gz")):
                    raise ValueError(f"{item} is not a json file")
            elif not isinstance(item, dict):
                raise TypeError("Invalid data type for ReportBuilder")
        self.inputs = inputs
        self.verbose = verbose
        self.align = align
        self.minimize_memory = minimize_memory
        self.base_time = base_time
        self.invalid_files: List[str] = []
        self.combined: Optional[Dict[str, Any]] = None

    def load_jsons(self) -> List[Dict[str, Any]]:
        loaded = []
        for item in self.inputs:
            if isinstance(item, dict):
                loaded.append(item)
                continue
            try:
                loaded.append(_load_json_file(item))
            except (ValueError, OSError, EOFError):
                self.invalid_files.append(item)
        return loaded

    def combine_json(self) -> Dict[str, Any]:
        if self.combined is not None:
            return self.combined
        if not self.inputs:
            raise ValueError("Can't get report of nothing")
        reports = self.load_jsons()
        if not reports:
            raise ValueError("No valid json files found")
        if self.align:
            for report in reports:
                self._align(report)
        base = reports[0]
        base.setdefault("traceEvents", [])
        meta = base.setdefault("viztracer_metadata", {})
        for other in reports[1:]:
            base["traceEvents"].extend(other.get("traceEvents", []))
            other_meta = other.get("viztracer_metadata", {})
            meta["overflow"] = bool(meta.get("overflow")) or bool(other_meta.get("overflow"))
            if "baseTimeNanoseconds" in other_meta:
                meta["baseTimeNanoseconds"] = other_meta["baseTimeNanoseconds"]
            if "file_info" in other:
                fi = base.setdefault("file_info", {"files": {}, "functions": {}})
                fi.setdefault("files", {}).update(other["file_info"].get("files", {}))
                fi.setdefault("functions", {}).update(other["file_info"].get("functions", {}))
        self.combined = base
        return base

    @staticmethod
    def _align(report: Dict[str, Any]) -> None:
        events = report.get("traceEvents", [])
        marker = report.get("viztracer_metadata", {}).get("sync_marker")
        if marker is None:
            stamps = [e["ts"] for e in events if isinstance(e.get("ts"), (int, float))]
            marker = min(stamps) if stamps else 0
        for e in events:
            if isinstance(e.get("ts"), (int, float)):
                e["ts"] -= marker

    def prepare_json(self, file_info: bool = True, display_time_unit: Optional[str] = None) -> Dict[str, Any]:
        report = self.combine_json()
        if display_time_unit is not None:
            report["displayTimeUnit"] = display_time_unit
        meta = report.setdefault("viztracer_metadata", {})
        meta["version"] = __version__
        if self.base_time is not None:
            meta["baseTimeNanoseconds"] = self.base_time
        if file_info:
            funcs = []
            for e in report.get("traceEvents", []):
                funcs.extend(functions_of_raw_events([e]))
            existing = report.get("file_info", {"files": {}, "functions": {}})
            built = build_file_info(f for f in funcs if f[0] not in existing.get("functions", {}))
            existing.setdefault("files", {}).update(built["files"])
            existing.setdefault("functions", {}).update(built["functions"])
            report["file_info"] = existing
        return report

    def save(self, output_file: Union[str, TextIO] = "result.html", file_info: bool = True) -> None:
        if isinstance(output_file, str):
            path = os.path.abspath(output_file)
            kind = trace_writer.output_kind(path)
            trace_writer.make_parent_dir(path)
            report = self.prepare_json(file_info, display_time_unit="ns" if kind == "html" else None)
            trace_writer.write_report(report, path)
        else:
            path = None
            report = self.prepare_json(file_info)
            for chunk in trace_writer.report_chunks(report):
                output_file.write(chunk.decode("utf-8"))
        self._print_summary(report, path)

    def _print_summary(self, report: Dict[str, Any], path: Optional[str]) -> None:
        if self.invalid_files:
            color_print("YELLOW", f"Found and ignored invalid json file {', '.join(self.invalid_files)}")
        if self.verbose <= 0:
            return
        count = sum(1 for e in report.get("traceEvents", []) if e.get("ph") != "M")
        if report.get("viztracer_metadata", {}).get("overflow"):
            color_print("YELLOW", "Circular buffer is full, you lost some early data, "
                                  "but you still have the most recent data.")
        print(f"Total Entries: {count}")
        if path is not None:
            print("Use the following command to open the report:")
            shown = f'"{path}"' if " " in path else path
            color_print("GREEN", f"vizviewer {shown}")
