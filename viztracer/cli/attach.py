"""``--attach``, ``--attach_installed`` and ``--uninstall``."""

from __future__ import annotations

import argparse

from .errors import CliError


def run_attach(ns: argparse.Namespace) -> int:
    raise CliError("Attaching to a running process (--attach, --attach_installed, --uninstall) "
                   "is not supported by this viztracer; start the program with viztracer instead")
