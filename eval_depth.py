"""Score saved depth predictions against ground truth (docs/method.md, Evaluation).

    python eval_depth.py --dataset_name bonn --pred_depth out/depth \\
        --gt_depth DATA/testing/depth [--seg_mask DATA/testing/seg_mask]

Predictions: a folder of `<name>.npy` files as `inference.py --save_depth` writes them
(float32 [H,W] or [1,H,W]), or one `.npy` stack [N,H,W] whose order is that of the ground-truth
files sorted by name. Files are paired by name; a prediction without ground truth (or the
reverse) is reported as a warning and left out. Prints the metrics table of
`losses.metrics.format_table`.

Exit status: 0 success, 1 nothing to evaluate (no pair), 2 a user mistake (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from config import get_parser
from utils.cli import report_user_errors
from utils.errors import UsageError, UserError
from utils.io import check_output_file, write_atomic

PROG = "eval_depth.py"
_MAX_LISTED = 10  # names listed per warning line, the rest are counted


def build_parser() -> argparse.ArgumentParser:
    parser = get_parser(("data", "evaluation"), __doc__.split("\n")[0],
                        names=("dataset_name", "output_json"))
    parser.prog = PROG
    # no silent default: the dataset decides how the ground truth is decoded and scored
    parser.set_defaults(dataset_name=None)
    g = parser.add_argument_group("predictions")
    g.add_argument("--pred_depth", type=Path, required=True,
                   help="folder of <name>.npy predicted depths, or one .npy stack [N,H,W]")
    g.add_argument("--gt_depth", type=Path, required=True,
                   help="folder of ground-truth depth files in the dataset's encoding")
    g.add_argument("--seg_mask", type=Path, default=None,
                   help="folder of <name>.png colour masks with dynamic_colors.txt "
                        "(one 'R G B' a line): adds metrics on dynamic and static pixels")
    return parser


def _listing(kind: str, names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    more = f" (+{len(names) - _MAX_LISTED} more)" if len(names) > _MAX_LISTED else ""
    return f"warning: {len(names)} {kind}: {shown}{more}"


def _pair(pred_path: Path, gt: dict[str, Path]
          ) -> tuple[list[tuple[str, Path, Callable[[], np.ndarray]]], list[str]]:
    """[(name, gt_path, prediction loader)] and the warning lines."""
    from datasets.formats import DatasetError, companion_files, read_depth_npy

    warnings: list[str] = []
    if pred_path.is_dir():
        preds = companion_files(pred_path, (".npy",))
        without_gt = sorted(set(preds) - set(gt))
        without_pred = sorted(set(gt) - set(preds))
        if without_gt:
            warnings.append(_listing("predictions without ground truth", without_gt))
        if without_pred:
            warnings.append(_listing("ground-truth files without prediction", without_pred))
        names = sorted(set(preds) & set(gt))
        return [(n, gt[n], lambda p=preds[n]: read_depth_npy(p)) for n in names], warnings
    if pred_path.is_file() and pred_path.suffix == ".npy":
        stack = read_depth_npy_stack(pred_path)
        # A stack carries no names: it follows the sorted GT names, so the counts must agree.
        names = sorted(gt)
        if len(names) != stack.shape[0]:
            raise DatasetError(f"prediction stack {pred_path} holds {stack.shape[0]} maps but "
                               f"the ground-truth folder has {len(names)} files")
        return [(n, gt[n], lambda i=i: stack[i]) for i, n in enumerate(names)], warnings
    raise UsageError(f"--pred_depth: prediction folder or .npy stack not found: {pred_path}")


def read_depth_npy_stack(path: Path) -> np.ndarray:
    """A stack of predictions ``[N,H,W]`` (or ``[N,1,H,W]``) -> float32 ``[N,H,W]``."""
    from datasets.formats import DatasetError

    try:
        stack = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise DatasetError(f"cannot read prediction stack {path}: {err}") from err
    if stack.ndim == 4 and stack.shape[1] == 1:
        stack = stack[:, 0]
    if stack.ndim != 3:
        raise DatasetError(f"prediction stack must be [N,H,W], got {stack.shape}: {path}")
    return stack.astype(np.float32, copy=False)


def run(args: argparse.Namespace) -> int:
    """Evaluate the pairs described by parsed `args`; print warnings and the table."""
    import torch
    from tqdm import tqdm

    from datasets.formats import (
        companion_files,
        gt_depth_suffixes,
        read_dynamic_colors,
        read_dynamic_mask,
        read_gt_depth,
    )
    from datasets.registry import dataset_spec
    from losses.metrics import DepthEvaluator, format_table, results_problem

    if args.dataset_name is None:
        raise UsageError("--dataset_name is required (it sets the ground-truth encoding, "
                         "the depth range and the crop)")
    if not args.gt_depth.is_dir():
        raise UsageError(f"--gt_depth: ground-truth folder not found: {args.gt_depth}")
    if args.output_json:
        check_output_file(args.output_json, "--output_json")
    gt = companion_files(args.gt_depth, gt_depth_suffixes(args.dataset_name))
    colors = None
    if args.seg_mask is not None:
        if not args.seg_mask.is_dir():
            raise UsageError(f"--seg_mask: segmentation mask folder not found: {args.seg_mask}")
        colors = read_dynamic_colors(args.seg_mask / "dynamic_colors.txt")
    pairs, warnings = _pair(args.pred_depth, gt)
    if colors is not None:
        no_seg = [n for n, _, _ in pairs if not (args.seg_mask / f"{n}.png").is_file()]
        if no_seg:
            warnings.append(_listing("images without a seg mask (full metrics only)", no_seg))
    for line in warnings:
        print(line, file=sys.stderr)
    if not pairs:
        print(f"{PROG}: error: no prediction pairs with a ground-truth file "
              f"({args.pred_depth} vs {args.gt_depth})", file=sys.stderr)
        return 1

    evaluator = DepthEvaluator(dataset_spec(args.dataset_name))
    for name, gt_path, load_pred in tqdm(pairs, desc="eval", unit="img", file=sys.stderr):
        gt_depth = read_gt_depth(gt_path, args.dataset_name)
        dynamic = None
        seg_path = None if colors is None else args.seg_mask / f"{name}.png"
        if seg_path is not None and seg_path.is_file():
            mask = read_dynamic_mask(seg_path, colors, gt_depth.shape)
            dynamic = torch.from_numpy(mask)[None]
        pred = torch.from_numpy(load_pred())[None, None]
        evaluator.update(pred, torch.from_numpy(gt_depth)[None], dynamic)

    results = evaluator.compute()
    print(f"{args.dataset_name}: {results['num_images']} images from {args.pred_depth}")
    print(format_table(results))
    problem = results_problem(results)
    if problem is not None:
        raise UserError(f"{problem} ({args.pred_depth} against {args.gt_depth})")
    if args.output_json:
        write_atomic(Path(args.output_json), json.dumps(results, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse `argv` (default: sys.argv[1:]) and evaluate; returns the exit status."""
    return report_user_errors(PROG, lambda: run(build_parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
