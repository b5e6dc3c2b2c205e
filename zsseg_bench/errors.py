"""The one exception type that the CLI turns into a one-line message and a non-zero exit.

Library code raises `ZsbenchError` for anything a user can fix (a bad split file, a missing
dataset folder, a wrong-shaped embedding table, a NaN loss). The message must name the file
or field at fault and say what to do; the CLI prints it on one line, with no traceback.
"""

from __future__ import annotations

__all__ = ["ZsbenchError", "Terminated", "did_you_mean"]


class ZsbenchError(Exception):
    """A user-fixable problem. `exit_code` is what the CLI exits with (2 = bad input)."""

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class Terminated(KeyboardInterrupt):
    """SIGTERM (a `timeout`, a batch scheduler's time limit), raised in the main thread by the
    handler `zsbench run` installs, so that it stops a run the way Ctrl-C does: `interrupted`
    and resumable."""


def did_you_mean(name: str, candidates) -> str:
    """' (did you mean 'x'?)' for the closest candidate, or '' when nothing is close."""
    import difflib

    close = difflib.get_close_matches(name, [str(c) for c in candidates], n=3, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"
