"""The ``viztracer`` command: picks the mode from the options and runs it."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from ..util import color_print
from .arguments import build_parser, build_tracer, leave_outer_trace, output_path, parse_command_line, tracer_kwargs
from .attach import run_attach
from .errors import CliError, ProgramFailedToStart
from .program import launch_state_restored, prepare_program, program_import_path
from .trace_files import run_combine, run_compress, run_decompress
from .traced_run import TracedRun


class CommandLine:
    def __init__(self, argv: Optional[Sequence[str]] = None) -> None:
        self.argv = list(sys.argv[1:] if argv is None else argv)
        self.parser: Optional[argparse.ArgumentParser] = None

    def run(self) -> int:
        if not self.argv:
            build_parser().print_help()
            return 0
        ns, command, self.parser = parse_command_line(self.argv)
        self.ns, self.command = ns, command
        for flag in ("log_subprocess", "log_multiprocess"):
            if getattr(ns, flag):
                color_print("YELLOW", f"--{flag} is deprecated and has no effect: "
                                      "child processes are traced by default")
        if ns.attach != -1 or ns.attach_installed != -1 or ns.uninstall != -1:
            return run_attach(ns)
        if ns.report_server is not None:
            from .report_server import run_report_server  # start-up: the collector's modules for this mode only

            return run_report_server(ns)
        if ns.cmd_string is not None or ns.module is not None or command:
            return self.trace_program()
        if ns.compress is not None:
            return run_compress(ns)
        if ns.decompress is not None:
            return run_decompress(ns)
        if ns.combine is not None:
            return run_combine(ns, ns.combine, align=False)
        if ns.align_combine is not None:
            return run_combine(ns, ns.align_combine, align=True)
        self.parser.print_help()
        return 0

    def trace_program(self) -> int:
        ns = self.ns
        with launch_state_restored():
            program = prepare_program(ns, self.command)
            output = output_path(ns, program.base_name)
            leave_outer_trace()
            with program_import_path(program):
                tracer = build_tracer(tracer_kwargs(ns, output))
            if tracer.report_endpoint is not None and tracer.process_name is None:
                # A process sending to a collector is named after its program there.
                tracer.process_name = program_label(ns, self.command)
            return TracedRun(tracer, program, log_exit=ns.log_exit, open_viewer=ns.open).run()


def program_label(ns: argparse.Namespace, command: Sequence[str]) -> str:
    """The script as typed, the module of ``-m``, or ``python -c``."""
    if ns.cmd_string is not None:
        return "python -c"
    if ns.module is not None:
        return ns.module
    return command[0] if command else "python"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``viztracer`` console script and ``python -m viztracer``;
    returns the exit status."""
    try:
        return CommandLine(argv).run()
    except CliError as e:
        stream = sys.stderr if e.stream == "stderr" else sys.stdout
        print(e.message, file=stream)
        return e.code
    except ProgramFailedToStart as e:
        error = e.error
        error.__traceback__ = None
        error.__context__ = None
        sys.excepthook(type(error), error, None)
        return 1
