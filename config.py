"""The command-line parsers of every tool, built from the one options schema (options.py).

A tool asks for the option groups it needs; each group becomes a section of its ``--help``.
Config files (``--config FILE``, ``key = value`` lines) hold only what differs from the
defaults; flags on the command line override them. A bad option is a one-line UsageError.
"""

from __future__ import annotations

import argparse
import math
import types
import typing
from collections.abc import Callable, Collection, Sequence

import configargparse

from datasets.registry import dataset_spec
from options import CHECKPOINT_SETTINGS, GROUPS, own_fields
from utils.cli import OneLineConfigParser
from utils.errors import UsageError

__all__ = ["checked", "finalize", "get_parser", "option_keys", "parse_options"]

TRAINING_GROUPS = ("data", "model", "losses", "training")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a default once, and only when there is one (not for switches, "none" or an empty
    list, nor when the help already says what the default is)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help_text = action.help or ""
        if (action.default in (None, False, argparse.SUPPRESS) or action.default == []
                or "%(default)" in help_text or "(default" in help_text):
            return action.help
        return super()._get_help_string(action)


def _scalar_type(annotation: object) -> type:
    """int for ``int`` and ``int | None`` (likewise float, str)."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        (annotation,) = [a for a in typing.get_args(annotation) if a is not type(None)]
    return annotation  # type: ignore[return-value]


def checked(kind: type, at_least: float | None = None, above: float | None = None,
            below: float | None = None) -> Callable[[str], object]:
    """The argparse ``type`` of an option: ``kind(text)``, refused (as ``argument --x: ...``,
    one line) when not finite (floats), below ``at_least``, not above ``above`` or not below
    ``below``. Values from a config file pass through it too."""
    def parse(text: str) -> object:
        value = kind(text)
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        if at_least is not None and value < at_least:
            raise argparse.ArgumentTypeError(f"must be at least {at_least:g}, got {text}")
        if above is not None and not value > above:
            raise argparse.ArgumentTypeError(f"must be greater than {above:g}, got {text}")
        if below is not None and not value < below:
            raise argparse.ArgumentTypeError(f"must be less than {below:g}, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse's "invalid int value: 'x'"
    return parse


def add_group(parser: configargparse.ArgumentParser, name: str,
              names: Collection[str] | None = None) -> None:
    """Add the options of group ``name`` (options.GROUPS), or those of them in ``names``,
    as a section of ``parser``."""
    section = parser.add_argument_group(name)
    for f, annotation in own_fields(GROUPS[name]):
        if names is not None and f.name not in names:
            continue
        meta = dict(f.metadata)
        flags = [f"--{f.name}", *meta.pop("aliases", ())]
        limits = {k: meta.pop(k, None) for k in ("at_least", "above", "below")}
        kind = _scalar_type(annotation)
        if kind is bool:
            section.add_argument(*flags, dest=f.name, action="store_true", default=f.default,
                                 **meta)
        else:
            parse = checked(kind, **limits) if kind in (int, float) else kind
            section.add_argument(*flags, dest=f.name, type=parse, default=f.default, **meta)


def option_keys() -> set[str]:
    """Every option name of every group, with its other spellings, as a config file may
    write it (``lr``, ``save-vis``)."""
    keys = set()
    for group in GROUPS.values():
        for f, _ in own_fields(group):
            keys.add(f.name)
            keys.update(alias.lstrip("-") for alias in f.metadata.get("aliases", ()))
    return keys


def get_parser(groups: Sequence[str] = TRAINING_GROUPS, description: str | None = None,
               parser: configargparse.ArgumentParser | None = None,
               names: Collection[str] | None = None,
               from_checkpoint: bool = False) -> configargparse.ArgumentParser:
    """A parser with ``--config`` and the named option groups (only the options in
    ``names`` when given: a tool lists the options it uses). ``from_checkpoint``: a tool
    that runs a checkpoint; the options a checkpoint knows (CHECKPOINT_SETTINGS) then
    default to None, meaning "the checkpoint's"."""
    if parser is None:
        parser = OneLineConfigParser(
            description=description,
            formatter_class=HelpFormatter,
            # A training config may be passed to test.py/inference.py: keys of options a
            # script does not use are ignored; a key that is no option at all (a typo) is
            # an error, as it is on the command line.
            other_tools_keys=option_keys(),
        )
    parser.add_argument("--config", is_config_file=True,
                        help="config file of `key = value` lines (flags override it)")
    for name in groups:
        add_group(parser, name, names)
    if from_checkpoint:
        for action in parser._actions:
            if action.dest in CHECKPOINT_SETTINGS:
                action.default = None
                action.help = (action.help.split(" (default:")[0]
                               + " (default: the checkpoint's)")
    return parser


def finalize(opts: argparse.Namespace) -> argparse.Namespace:
    """Fill the defaults that depend on other options (the dataset's training size) and
    refuse combinations that contradict each other."""
    if getattr(opts, "arn_pose_weight", 0) > 0 and getattr(opts, "arn_owns_rotation", False):
        raise UsageError("--arn_pose_weight teaches ARN the rotation PoseNet finds, which "
                         "--arn_owns_rotation discards: use one of them")
    if getattr(opts, "arn_frozen", False):
        if getattr(opts, "arn_pose_weight", 0) > 0:
            raise UsageError("--arn_pose_weight trains ARN, which --arn_frozen keeps fixed: "
                             "use one of them")
        if getattr(opts, "arn_warmup_steps", 0) == 0 and not getattr(opts, "ckpt_path", None):
            raise UsageError("--arn_frozen keeps ARN as the warm-up or --ckpt_path left it: "
                             "give --arn_warmup_steps N or --ckpt_path")
    if hasattr(opts, "dataset_name"):
        height, width = dataset_spec(opts.dataset_name).train_size
        if getattr(opts, "img_height", None) is None:
            opts.img_height = height
        if getattr(opts, "img_width", None) is None:
            opts.img_width = width
    return opts


def parse_options(argv: Sequence[str] | None = None,
                  groups: Sequence[str] = TRAINING_GROUPS,
                  description: str | None = None,
                  names: Collection[str] | None = None) -> argparse.Namespace:
    parser = get_parser(groups, description, names=names)
    return finalize(parser.parse_args(argv))
