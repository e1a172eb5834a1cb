"""``viztracer --report_server [HOST:PORT]``: a standalone collector (collector.py)."""

from __future__ import annotations

import argparse
import os

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
    from .. import collector  # start-up: the collector's modules (socket, selectors) for this mode only

    host, port = endpoint_to_bind(ns.report_server)
    if ns.senders is not None and ns.senders < 1:
        raise CliError(f"--senders must be 1 or more, not {ns.senders}")
    try:
        timeout = check_seconds("--report_timeout", 10.0 if ns.report_timeout is None else ns.report_timeout)
    except (TypeError, ValueError) as e:
        raise CliError(str(e)) from None
    output = output_path(ns, "result")
    try:
        listener = collector.listen(host, port)
    except OSError as e:
        raise CliError(f"Can't listen on {host}:{port}: {e.strerror or e}") from None
    return collector.run_standalone(listener, output, senders=ns.senders or 0, timeout=timeout,
                                    verbose=0 if ns.quiet else 1)
