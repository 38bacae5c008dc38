"""Command-line plumbing shared by the scripts: user mistakes become one line, not a traceback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NoReturn

import configargparse

from utils.errors import UsageError, UserError

__all__ = ["OneLineConfigParser", "OneLineParser", "UsageError", "report_user_errors",
           "run_main"]


class _OneLineErrors:
    """argparse raising UsageError instead of printing the usage block: one line, exit 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


class OneLineParser(_OneLineErrors, argparse.ArgumentParser):
    """A stand-alone tool's parser (eval_depth.py, generate_valid_frame_index.py)."""


class OneLineConfigParser(_OneLineErrors, configargparse.ArgumentParser):
    """The same for tools that also read `--config` files."""


def report_user_errors(prog: str, run: Callable[[], int | None]) -> int:
    """Call `run`; a user error is printed as `prog: error: ...` and gives exit status 2."""
    try:
        return run() or 0
    except UserError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2


def run_main(main: Callable[[], int | None], prog: str) -> NoReturn:
    """A script's entry point: main() with user errors reported, then sys.exit."""
    try:
        code = report_user_errors(prog, main)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        code = 130
    sys.exit(code)
