"""The two ways the command line stops before a program runs: a mistake in what the
user asked for (:class:`CliError`, one line and a status) and the program's own error
before its first line ran (:class:`ProgramFailedToStart`, shown as python shows it)."""

from __future__ import annotations


class CliError(Exception):
    """A mistake in what the user asked for: printed as one message, exit status ``code``."""

    def __init__(self, message: str, code: int = 1, stream: str = "stdout") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.stream = stream


class ProgramFailedToStart(Exception):
    """The program's own error before it ran (a SyntaxError...): shown like python does."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error
