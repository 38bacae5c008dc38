"""Render the built-in synthetic video dataset (exact depth, poses, intrinsics, motion masks).

    python generate_synthetic_dataset.py --output_dir data/synthetic [--seed 0] [--scenes 6]
        [--frames 60] [--val_scenes 1] [--test_scenes 2] [--img_height 256] [--img_width 320]
        [--motion mixed|driving|handheld|nyu] [--static] [--test_stride N] [--overwrite]

The layout is the one SC-Depth reads (docs/method.md, Data); train with
``--dataset_name synthetic``.
See datasets/synthetic/ for what the scenes contain.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from config import get_parser
from datasets.synthetic import MOTIONS, default_test_stride, generate_dataset
from utils.cli import run_main
from utils.errors import UsageError

PROG = "generate_synthetic_dataset.py"


def build_parser() -> argparse.ArgumentParser:
    parser = get_parser((), "Render the built-in synthetic SC-Depth dataset.")
    parser.prog = PROG
    parser.add_argument("--output_dir", required=True,
                        help="folder to create (must be empty or missing unless --overwrite)")
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed; the same seed gives byte-identical files")
    parser.add_argument("--scenes", type=int, default=6, help="number of training scenes")
    parser.add_argument("--frames", type=int, default=60, help="frames per scene")
    parser.add_argument("--val_scenes", type=int, default=1,
                        help="validation scenes (listed in training/val.txt, with depth/)")
    parser.add_argument("--test_scenes", type=int, default=2,
                        help="scenes sampled into testing/ (every --test_stride frames)")
    parser.add_argument("--img_height", "--height", type=int, default=256,
                        help="image height in pixels")
    parser.add_argument("--img_width", "--width", type=int, default=320,
                        help="image width in pixels")
    parser.add_argument("--motion", choices=MOTIONS, default="mixed",
                        help="camera motion: 'driving' (street, forward motion), 'handheld' "
                             "(room, a few cm and several degrees a frame about every axis), "
                             "'nyu' (room, rotation-dominated as in NYUv2 video: the camera "
                             "pans and tilts by degrees and moves about 2 cm a frame) or "
                             "'mixed' (driving and handheld scenes alternate)")
    parser.add_argument("--static", action="store_true",
                        help="leave the moving objects out: the same scenes with nothing "
                             "moving but the camera (e.g. to measure RGB-D tracking)")
    parser.add_argument("--test_stride", type=int, default=None,
                        help="keep every n-th frame of the test scenes (default: about 30 "
                             "test images)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a non-empty --output_dir")
    parser.add_argument("--workers", type=int, default=None,
                        help="rendering processes (default: up to 2 for large sets)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.scenes < 1 or args.frames < 2 or args.val_scenes < 0 or args.test_scenes < 0:
        raise UsageError("need --scenes >= 1, --frames >= 2, --val_scenes >= 0, "
                         "--test_scenes >= 0")
    if args.img_height < 8 or args.img_width < 8:
        raise UsageError("--img_height and --img_width must be at least 8")
    if args.test_stride is not None and args.test_stride < 1:
        raise UsageError("--test_stride must be at least 1")
    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be at least 1")
    stride = args.test_stride or default_test_stride(args.test_scenes, args.frames)
    try:
        summary = generate_dataset(
            args.output_dir, seed=args.seed, scenes=args.scenes, frames=args.frames,
            val_scenes=args.val_scenes, test_scenes=args.test_scenes, height=args.img_height,
            width=args.img_width, motion=args.motion, test_stride=stride, progress=True,
            overwrite=args.overwrite, workers=args.workers, moving_objects=not args.static)
    except FileExistsError as err:
        raise UsageError(str(err)) from None
    n_train = len(summary["train"]) * summary["frames"]
    n_val = len(summary["val"]) * summary["frames"]
    abs_rel = summary["constant_depth_abs_rel"]
    line = (f"wrote {args.output_dir}: {n_train} training and {n_val} validation frames, "
            f"{summary['num_test_images']} test images")
    if abs_rel is not None:
        line += f" (constant-depth AbsRel on the test set: {abs_rel:.3f})"
    print(line)
    return 0


if __name__ == "__main__":
    run_main(main, PROG)
