"""User-facing errors: a mistake in the user's input is one clear line and exit code 2, never a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input (config, file, option). The CLI prints ``ssld: error: <msg>`` and exits 2.

    The message must name what is wrong and where: a file (and line), a config key path, or an option.
    """

    exit_code = 2
