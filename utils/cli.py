"""Command-line plumbing shared by the scripts: user mistakes become one line, not a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable


def user_error_types() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "the user gave us something wrong" (bad file, bad option)."""
    from datasets.depth_io import DatasetError
    from models.resnet_encoder import PretrainedWeightsError
    from utils.checkpoint import CheckpointError

    return (DatasetError, CheckpointError, PretrainedWeightsError, UsageError)


class UsageError(ValueError):
    """An option combination that cannot work, found after parsing."""


def run_main(main: Callable[[], int], prog: str) -> None:
    """Run a script's main(); print user errors as `prog: error: ...` and exit 2."""
    try:
        code = main()
    except user_error_types() as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)
