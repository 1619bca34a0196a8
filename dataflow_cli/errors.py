"""The one error type users see.

Anything raised as `DataflowError` is printed by the CLI as a single message with a hint and
no traceback. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class DataflowError(Exception):
    """A problem the user can fix: bad spec, bad input, unwritable output.

    `location` is `file:line:col` (or `file:line`, or a path) when one is known.
    `exit_code` is 2 for invalid specs/usage and 1 for failures at run time.
    """

    exit_code = 1

    def __init__(self, reason: str, hint: str | None = None, location: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.hint = hint
        self.location = location

    def render(self) -> str:
        head = f"{self.location}: {self.reason}" if self.location else self.reason
        return f"{head}\n  hint: {self.hint}" if self.hint else head


class SpecError(DataflowError):
    """The spec (or a command-line value) is invalid; nothing has been read or run."""

    exit_code = 2


class InputError(DataflowError):
    """An input file is missing, empty or malformed."""


def did_you_mean(name: str, choices) -> str:
    """Return ``"; did you mean `x`?"`` for the closest choice, or an empty string."""
    import difflib

    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean `{close[0]}`?" if close else ""
