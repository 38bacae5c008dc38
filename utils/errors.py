"""The errors that mean "what the user gave us is wrong" (a file, an option, a checkpoint).

The command-line tools print such an error as one line, ``prog: error: <message>``, and exit
with status 2 (``utils.cli``); everything else is a bug and keeps its traceback. Each package
derives its own errors from :class:`UserError`, so this module imports nothing.
"""

from __future__ import annotations

__all__ = ["UsageError", "UserError"]


class UserError(Exception):
    """A mistake in the user's input; the message names the file or option at fault."""


class UsageError(UserError, ValueError):
    """An option or option combination that cannot work."""
