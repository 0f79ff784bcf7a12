"""User-facing errors: a mistake in the user's input is one clear line and exit code 2, never a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input (config, file, option). The CLI prints ``ssld: error: <msg>`` and exits 2.

    The message must name what is wrong and where: a file (and line), a config key path, or an option.
    """

    exit_code = 2


def first_line(e: BaseException) -> str:
    """The first non-blank line of an exception's message, or its type name when the message is empty (an
    ``EOFError()`` from a truncated file has none): what a one-line error about a third-party failure shows."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return lines[0] if lines else type(e).__name__


def describe_range(low: float | None, high: float | None) -> str:
    """An inclusive range as an error message says it: ``between 0 and 1``, ``at least 1``, ``at most 2``."""
    if low is not None and high is not None:
        return f"between {low:g} and {high:g}"
    return f"at least {low:g}" if low is not None else f"at most {high:g}"
