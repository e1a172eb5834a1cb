"""``viztracer.main.main``: the entry point of the command line, kept at this name for
code that imports it (the console script and ``python -m viztracer`` use it too).
The command line itself is the :mod:`viztracer.cli` package."""

from .cli import main

__all__ = ["main"]
