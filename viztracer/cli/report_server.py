"""``viztracer --report_server [HOST:PORT]``: a standalone collector (collector.py).
Imported by the command line for this mode only: the collector's modules (``socket``,
``selectors``) stay out of every traced program."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
from typing import Any, List

from ..collector import (
    Collector,
    collector_metadata,
    listen,
    say_on_stderr,
    size_text,
    spool_directory,
    wait_for_members,
)
from ..options import check_seconds
from ..wire import ENV_ENDPOINT, parse_endpoint
from .arguments import output_path
from .errors import CliError

# Upstream VizTracer's form is ``[HOST:PORT][|CONFIG,...]``; its one configuration,
# append_newline, changes nothing here (every line ends with one).
_CONFIGS = ("append_newline",)


def endpoint_to_bind(value: str) -> tuple:
    text, _, configs = value.partition("|")
    for config in filter(None, configs.split(",")):
        if config not in _CONFIGS:
            raise CliError(f"Unknown report_server config: {config}")
    text = text or os.environ.get(ENV_ENDPOINT, "") or ":0"
    try:
        return parse_endpoint(text, listening=True)
    except ValueError as e:
        raise CliError(f"report_server endpoint should be in host:port format: {e}") from None


def run_report_server(ns: argparse.Namespace) -> int:
    host, port = endpoint_to_bind(ns.report_server)
    if ns.senders is not None and ns.senders < 1:
        raise CliError(f"--senders must be 1 or more, not {ns.senders}")
    try:
        timeout = check_seconds("--report_timeout", 10.0 if ns.report_timeout is None else ns.report_timeout)
    except (TypeError, ValueError) as e:
        raise CliError(str(e)) from None
    output = output_path(ns, "result")
    try:
        listener = listen(host, port)
    except OSError as e:
        raise CliError(f"Can't listen on {host}:{port}: {e.strerror or e}") from None
    return run_standalone(listener, output, senders=ns.senders or 0, timeout=timeout, verbose=0 if ns.quiet else 1)


def run_standalone(listener: Any, output: str, *, senders: int, timeout: float, verbose: int) -> int:
    """``viztracer --report_server``: collect until Ctrl+C, Enter on stdin, or (with
    ``senders``) once that many senders are done and no other is still sending; then
    write ``output``. Returns the exit status."""
    spool = spool_directory()
    collector = Collector(listener, spool, timeout, say=say_on_stderr)
    print(f"Report server started at {collector.endpoint}", flush=True)
    if verbose:
        until = f", or once {senders} sender(s) have finished" if senders else ""
        print(f"Collecting traces into {output}: Ctrl+C or Enter writes it now{until}", flush=True)
    stdin = _watch_stdin(collector)
    try:
        def enter_pressed(readable: List[Any]) -> bool:
            nonlocal stdin
            if stdin is None or stdin not in readable:
                return False
            line = stdin.readline()
            if not line:  # end of input: only Ctrl+C (or --senders) ends the collection now
                collector.unwatch(stdin)
                stdin = None
                return False
            return line.strip() == ""

        try:
            while not (senders and len(collector.finished()) >= senders):
                if enter_pressed(collector.poll(1.0)):
                    break
            else:
                wait_for_members(collector, interrupted=enter_pressed)
        except KeyboardInterrupt:
            pass
        # Ctrl+C or Enter: the members still sending are saved as far as they came.
        collector.give_up(lambda m: "still running when the collection ended" if m.state == "running"
                          else f"connection cut after {size_text(m.received)}")
        if not collector.traces():
            print("No reports collected, nothing to save.", flush=True)
            return 0
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the output is being written: let it be
        count, _ = collector.write(output, metadata=collector_metadata())
        if verbose:
            shown = f'"{output}"' if " " in output else output
            print(f"Saved {count} trace entries from {len(collector.traces())} processes to {shown} "
                  f"(view it with: vizviewer {shown})", flush=True)
        line = collector.missing_line()
        if line:
            say_on_stderr(line)
        return 0
    finally:
        collector.close()
        shutil.rmtree(spool, ignore_errors=True)


def _watch_stdin(collector: Collector) -> Any:
    if sys.stdin is None or sys.platform == "win32":
        return None
    try:
        collector.watch(sys.stdin)
    except (ValueError, OSError):  # /dev/null, a closed or unpollable stdin
        return None
    return sys.stdin
