"""log_audit: sys.audit events as instants; saving before os.exec."""

import json
import sys

from support import events, load_trace, run_script
from viztracer import VizTracer


def work():
    id(object())
    __import__("colorsys")
    sys.audit("viztracer.test", 1, "two")


def audit_names(tmp_path, patterns):
    path = str(tmp_path / "audit.json")
    sys.modules.pop("colorsys", None)
    tracer = VizTracer(output_file=path, verbose=0, log_audit=patterns)
    tracer.start()
    work()
    tracer.stop()
    sys.audit("viztracer.test", "after stop")
    tracer.save()
    return events(load_trace(path), "i")


def test_every_event_with_an_empty_list(tmp_path):
    evs = audit_names(tmp_path, [])
    names = [e["name"] for e in evs]
    assert "builtins.id" in names and "import" in names
    (custom,) = [e for e in evs if e["name"] == "viztracer.test"]
    assert custom["args"] == {"args": ["1", "two"]} and custom["s"] == "t"


def test_patterns_are_full_matches(tmp_path):
    names = [e["name"] for e in audit_names(tmp_path, ["i.*"])]
    assert "import" in names and "builtins.id" not in names
    names = [e["name"] for e in audit_names(tmp_path, ["builtins.id"])]
    assert "builtins.id" in names and "import" not in names
    assert "viztracer.test" not in names


def test_nothing_without_log_audit(tmp_path):
    path = str(tmp_path / "none.json")
    with VizTracer(output_file=path, verbose=0):
        work()
    assert events(load_trace(path), "i") == []


def test_trace_is_saved_before_exec(tmp_path):
    source = """
        import os, sys
        from viztracer import VizTracer
        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2)
        tracer = VizTracer(output_file="before_exec.json", verbose=0)
        tracer.register_exit()
        tracer.start()
        fib(4)
        os.execv(sys.executable, [sys.executable, "-c", "print('exec done')"])
        """
    result = run_script(tmp_path, source)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "exec done"
    trace = json.loads((tmp_path / "before_exec.json").read_text())
    assert len([e for e in trace["traceEvents"] if e.get("name", "").startswith("fib ")]) == 9
