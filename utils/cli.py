"""Command-line plumbing shared by the scripts: user mistakes become one line, not a traceback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import configargparse


class UsageError(ValueError):
    """An option or option combination that cannot work."""


class _OneLineErrors:
    """argparse raising UsageError instead of printing the usage block: one line, exit 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


class OneLineParser(_OneLineErrors, argparse.ArgumentParser):
    """A stand-alone tool's parser (eval_depth.py, generate_valid_frame_index.py)."""


class OneLineConfigParser(_OneLineErrors, configargparse.ArgumentParser):
    """The same for tools that also read `--config` files."""


def user_error_types() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "the user gave us something wrong" (bad file, bad option)."""
    from datasets.depth_io import DatasetError
    from models.resnet_encoder import PretrainedWeightsError
    from utils.checkpoint import CheckpointError

    return (DatasetError, CheckpointError, PretrainedWeightsError, UsageError)


def report_user_errors(prog: str, run: Callable[[], int | None]) -> int:
    """Call `run`; a user error is printed as `prog: error: ...` and gives exit status 2."""
    try:
        return run() or 0
    except user_error_types() as err:
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


def check_precision(precision: str, device: Any) -> None:
    """``--infer_precision`` against the device, by the one rule of
    ``models.sc_depth.precision_dtype`` (fp16 only on CUDA); a mismatch is a UsageError
    (one line)."""
    from models.sc_depth import precision_dtype

    try:
        precision_dtype(precision, device)
    except ValueError as err:
        raise UsageError(f"--infer_precision {err}") from None
