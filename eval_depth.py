"""Score saved depth predictions against ground truth (SPEC §5, §6).

    python eval_depth.py --dataset bonn --pred_depth out/depth --gt_depth DATA/testing/depth \
        [--seg_mask DATA/testing/seg_mask]

Predictions: a folder of `<name>.npy` files as `inference.py --save-depth` writes them
(float32 [H,W] or [1,H,W]), or one `.npy` stack [N,H,W] whose order is that of the ground-truth
files sorted by name. Files are paired by name; a prediction without ground truth (or the
reverse) is reported as a warning and left out. Prints the metrics table of
`losses.metrics.format_table`.

Exit status: 0 success, 1 nothing to evaluate (no pair), 2 a user mistake (one line on stderr).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from losses.metrics import EVAL_RANGE
from utils.cli import OneLineParser, UsageError, report_user_errors

PROG = "eval_depth.py"
_MAX_LISTED = 10  # names listed per warning line, the rest are counted


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True, choices=sorted(EVAL_RANGE),
                        help="dataset whose GT encoding, depth range and crop are used")
    parser.add_argument("--pred_depth", required=True, type=Path,
                        help="folder of <name>.npy predicted depths, or one .npy stack [N,H,W]")
    parser.add_argument("--gt_depth", required=True, type=Path,
                        help="folder of ground-truth depth files in the dataset's encoding")
    parser.add_argument("--seg_mask", type=Path, default=None,
                        help="folder of <name>.png colour masks with dynamic_colors.txt "
                             "(one 'R G B' a line): adds metrics on dynamic and static pixels")
    return parser


def _listing(kind: str, names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    more = f" (+{len(names) - _MAX_LISTED} more)" if len(names) > _MAX_LISTED else ""
    return f"warning: {len(names)} {kind}: {shown}{more}"


def _gt_files(gt_dir: Path, dataset: str) -> dict[str, Path]:
    """Ground-truth files of `gt_dir` by stem, for the suffixes the dataset uses."""
    from datasets.depth_io import GT_DEPTH_SUFFIXES

    if not gt_dir.is_dir():
        raise UsageError(f"ground-truth folder not found: {gt_dir}")
    suffixes = GT_DEPTH_SUFFIXES[dataset]
    files: dict[str, Path] = {}
    for path in sorted(gt_dir.iterdir()):
        if path.is_file() and path.suffix.lower() in suffixes:
            if path.stem in files:
                raise UsageError(f"two ground-truth files named {path.stem}: "
                                 f"{files[path.stem].name} and {path.name}")
            files[path.stem] = path
    return files


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise UsageError(f"cannot read prediction {path}: {err}") from err


def _as_depth_map(depth: np.ndarray, where: str) -> np.ndarray:
    """[H,W] or [1,H,W] -> [H,W] float32."""
    if depth.ndim == 3 and depth.shape[0] == 1:
        depth = depth[0]
    if depth.ndim != 2:
        raise UsageError(f"prediction must be [H,W] or [1,H,W], got {depth.shape}: {where}")
    return depth.astype(np.float32, copy=False)


def _read_dynamic_colors(seg_dir: Path) -> np.ndarray:
    """dynamic_colors.txt -> [K,3] float32 RGB colours ('R G B' or 'R,G,B' a line, # comments)."""
    path = seg_dir / "dynamic_colors.txt"
    if not path.is_file():
        raise UsageError(f"missing {path} (the colours of dynamic objects, 'R G B' a line)")
    colors = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.split("#", 1)[0].replace(",", " ").strip()
        if not line:
            continue
        try:
            rgb = [int(v) for v in line.split()]
        except ValueError:
            rgb = []
        if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
            raise UsageError(f"line {number} of {path} is not 'R G B' (0..255): {line!r}")
        colors.append(rgb)
    return np.array(colors, dtype=np.float32).reshape(-1, 3)


def dynamic_from_seg(seg: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """seg: [H,W,3] RGB, colors: [K,3] RGB -> bool [H,W], True where the colour is listed."""
    return (seg[:, :, None, :] == colors[None, None, :, :]).all(axis=-1).any(axis=-1)


def _pair(args: argparse.Namespace, gt: dict[str, Path]) -> tuple[list, list[str]]:
    """[(name, gt_path, prediction loader)] and the warning lines."""
    pred_path: Path = args.pred_depth
    warnings: list[str] = []
    if pred_path.is_dir():
        preds = {p.stem: p for p in sorted(pred_path.glob("*.npy")) if p.is_file()}
        without_gt = sorted(set(preds) - set(gt))
        without_pred = sorted(set(gt) - set(preds))
        if without_gt:
            warnings.append(_listing("predictions without ground truth", without_gt))
        if without_pred:
            warnings.append(_listing("ground-truth files without prediction", without_pred))
        names = sorted(set(preds) & set(gt))
        pairs = [(n, gt[n], lambda p=preds[n]: _as_depth_map(_load_npy(p), str(p)))
                 for n in names]
        return pairs, warnings
    if pred_path.is_file() and pred_path.suffix == ".npy":
        stack = _load_npy(pred_path)
        if stack.ndim == 4 and stack.shape[1] == 1:
            stack = stack[:, 0]
        if stack.ndim != 3:
            raise UsageError(f"prediction stack must be [N,H,W], got {stack.shape}: {pred_path}")
        # A stack carries no names: it follows the sorted GT names, so the counts must agree.
        names = sorted(gt)
        if len(names) != stack.shape[0]:
            raise UsageError(f"prediction stack {pred_path} holds {stack.shape[0]} maps but "
                             f"{args.gt_depth} has {len(names)} ground-truth files")
        pairs = [(n, gt[n], lambda i=i: _as_depth_map(stack[i], f"{pred_path}[{i}]"))
                 for i, n in enumerate(names)]
        return pairs, warnings
    raise UsageError(f"prediction folder or .npy stack not found: {pred_path}")


def run(args: argparse.Namespace) -> int:
    """Evaluate the pairs described by parsed `args`; print warnings and the table."""
    import torch
    from tqdm import tqdm

    from datasets.depth_io import read_gt_depth, read_image
    from losses.metrics import DepthEvaluator, format_table

    gt = _gt_files(args.gt_depth, args.dataset)
    colors = None
    if args.seg_mask is not None:
        if not args.seg_mask.is_dir():
            raise UsageError(f"segmentation mask folder not found: {args.seg_mask}")
        colors = _read_dynamic_colors(args.seg_mask)
    pairs, warnings = _pair(args, gt)
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

    evaluator = DepthEvaluator(args.dataset)
    for name, gt_path, load_pred in tqdm(pairs, desc="eval", unit="img", file=sys.stderr):
        gt_depth = read_gt_depth(gt_path, args.dataset)
        dynamic = None
        seg_path = None if colors is None else args.seg_mask / f"{name}.png"
        if seg_path is not None and seg_path.is_file():
            mask = dynamic_from_seg(read_image(seg_path), colors)
            if mask.shape != gt_depth.shape:
                raise UsageError(f"seg mask {seg_path} is {mask.shape[0]}x{mask.shape[1]}, "
                                 f"its ground truth is {gt_depth.shape[0]}x{gt_depth.shape[1]}")
            dynamic = torch.from_numpy(mask)[None]
        pred = torch.from_numpy(load_pred())[None, None]
        evaluator.update(pred, torch.from_numpy(gt_depth)[None], dynamic)

    results = evaluator.compute()
    print(f"{args.dataset}: {results['num_images']} images from {args.pred_depth}")
    print(format_table(results))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse `argv` (default: sys.argv[1:]) and evaluate; returns the exit status."""
    return report_user_errors(PROG, lambda: run(build_parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
