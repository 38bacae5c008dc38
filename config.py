"""The command-line parsers of every tool, built from the one options schema (options.py).

A tool asks for the option groups it needs; each group becomes a section of its ``--help``.
Config files (``--config FILE``, ``key = value`` lines) hold only what differs from the
defaults; flags on the command line override them. A bad option is a one-line UsageError.
"""

from __future__ import annotations

import argparse
import types
import typing
from collections.abc import Collection, Sequence

import configargparse

from datasets.registry import dataset_spec
from options import CHECKPOINT_SETTINGS, GROUPS, own_fields
from utils.cli import OneLineConfigParser

__all__ = ["finalize", "get_parser", "parse_options"]

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
        kind = _scalar_type(annotation)
        if kind is bool:
            section.add_argument(*flags, dest=f.name, action="store_true", default=f.default,
                                 **meta)
        else:
            section.add_argument(*flags, dest=f.name, type=kind, default=f.default, **meta)


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
            # A training config may be passed to test.py/inference.py: keys of groups a
            # script does not use are ignored rather than rejected.
            ignore_unknown_config_file_keys=True,
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
    """Fill the defaults that depend on other options: the dataset's training size."""
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
