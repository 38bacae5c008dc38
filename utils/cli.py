"""Command-line plumbing shared by the scripts: user mistakes become one line, not a traceback."""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Callable, Collection
from typing import Any, NoReturn

import configargparse

from utils.errors import UsageError, UserError

__all__ = ["OneLineConfigParser", "OneLineParser", "UsageError", "one_line",
           "report_user_errors", "run_main"]


class _OneLineErrors:
    """argparse raising UsageError instead of printing the usage block: one line, exit 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


class OneLineParser(_OneLineErrors, argparse.ArgumentParser):
    """A stand-alone tool's parser (eval_depth.py, generate_valid_frame_index.py)."""


class OneLineConfigParser(_OneLineErrors, configargparse.ArgumentParser):
    """The same for tools that also read `--config` files.

    ``other_tools_keys``: config-file keys that are options of other tools (one config file
    serves train.py, test.py and inference.py); they are ignored. Any other key this parser
    does not know is a UsageError naming it, as a misspelt flag is.
    """

    def __init__(self, *args: Any, other_tools_keys: Collection[str] = (), **kwargs: Any
                 ) -> None:
        super().__init__(*args, ignore_unknown_config_file_keys=False, **kwargs)
        self.other_tools_keys = set(other_tools_keys)

    def convert_item_to_command_line_arg(self, action: argparse.Action | None, key: str,
                                         value: Any) -> list[str]:
        if action is None:  # a key that names none of this parser's options
            if key in self.other_tools_keys:
                return []
            close = difflib.get_close_matches(key, [*self._known_keys(), *self.other_tools_keys],
                                              n=1)
            raise UsageError(f"unknown option {key!r} in the --config file"
                             + (f" (did you mean {close[0]!r}?)" if close else ""))
        return super().convert_item_to_command_line_arg(action, key, value)

    def _known_keys(self) -> list[str]:
        return [s.lstrip("-") for a in self._actions for s in a.option_strings]


def one_line(err: BaseException) -> str:
    """The message of ``err`` as one line. A user error raised in a DataLoader worker
    reaches the main process with the worker's traceback in its message ("Caught X in
    DataLoader worker process 0. Original Traceback ... module.X: message"): its last line
    holds the message."""
    text = str(err).strip()
    if text.startswith("Caught ") and "Original Traceback" in text:
        text = text.splitlines()[-1].split(": ", 1)[-1]
    return text.splitlines()[0] if text else type(err).__name__


def report_user_errors(prog: str, run: Callable[[], int | None]) -> int:
    """Call `run`; a user error is printed as `prog: error: ...` and gives exit status 2."""
    try:
        return run() or 0
    except UserError as err:
        print(f"{prog}: error: {one_line(err)}", file=sys.stderr)
        return 2


def run_main(main: Callable[[], int | None], prog: str) -> NoReturn:
    """A script's entry point: main() with user errors reported, then sys.exit."""
    try:
        code = report_user_errors(prog, main)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        code = 130
    sys.exit(code)
