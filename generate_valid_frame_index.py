"""Write training/<scene>/frame_index.txt: the frames where the camera moved enough.

    python generate_valid_frame_index.py --dataset_dir DATA [--pixel_threshold 10]
        [--min_fraction 0.3]

Frame 0 of a scene is kept; each later frame is kept when, compared with the last kept frame,
more than `--min_fraction` of its pixels changed their grey value by more than
`--pixel_threshold` (0..255). Training with `--use_frame_index` then uses only these frames,
so that a camera standing still (a car at a red light) gives no degenerate samples.
The difference is taken in a signed type (the public code subtracted uint8 images, where
5 − 250 wraps around to 11; docs/method.md).

The file holds one 0-based index a line: the position of the frame in the scene's image
files (*.jpg, *.jpeg, *.png) sorted by name. It is written atomically (a temporary file, then
os.replace), so an interrupted run never leaves a half-written index.

Exit status: 0 success, 2 a user mistake (one line on stderr).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from config import get_parser
from utils.cli import report_user_errors
from utils.errors import UsageError

PROG = "generate_valid_frame_index.py"
INDEX_NAME = "frame_index.txt"


def build_parser() -> argparse.ArgumentParser:
    parser = get_parser(("data",), __doc__.split("\n")[0], names=("dataset_dir",))
    parser.prog = PROG
    g = parser.add_argument_group("frame selection")
    g.add_argument("--pixel_threshold", type=float, default=10.0,
                   help="grey-value change (0..255) above which a pixel counts as changed")
    g.add_argument("--min_fraction", type=float, default=0.3,
                   help="keep a frame when more than this fraction of its pixels changed "
                        "since the last kept frame")
    return parser


def changed_fraction(prev: np.ndarray, cur: np.ndarray, pixel_threshold: float) -> float:
    """Fraction of pixels whose grey value differs by more than `pixel_threshold`.

    prev, cur: [H,W] grey images (any numeric dtype, e.g. uint8 0..255). The difference is
    computed in float32, so uint8 inputs cannot wrap around.
    """
    diff = np.abs(cur.astype(np.float32) - prev.astype(np.float32))
    return float(np.count_nonzero(diff > pixel_threshold)) / diff.size


def read_grey(path: Path) -> np.ndarray:
    """[H,W] float32 grey value in 0..255 (ITU-R 601 weights, as OpenCV)."""
    from datasets.formats import read_image

    return cv2.cvtColor(read_image(path), cv2.COLOR_RGB2GRAY)


def select_frames(
    greys: Iterator[np.ndarray], pixel_threshold: float, min_fraction: float
) -> list[int]:
    """Indices of the frames to keep from a sequence of [H,W] grey frames (frame 0 always)."""
    kept: list[int] = []
    last = None
    for i, grey in enumerate(greys):
        if last is not None and grey.shape != last.shape:
            raise ValueError(f"frame {i} is {grey.shape}, earlier frames are {last.shape}")
        if last is None or changed_fraction(last, grey, pixel_threshold) > min_fraction:
            kept.append(i)
            last = grey
    return kept


def scene_dirs(dataset_dir: Path) -> list[Path]:
    """Scenes named in training/train.txt and val.txt (in that order), else every folder."""
    training = dataset_dir / "training"
    if not dataset_dir.is_dir():
        raise UsageError(f"dataset folder not found: {dataset_dir}")
    if not training.is_dir():
        raise UsageError(f"no training/ folder in {dataset_dir}")
    if not any((training / name).is_file() for name in ("train.txt", "val.txt")):
        return sorted(p for p in training.iterdir() if p.is_dir())
    from datasets.formats import listed_scenes

    return listed_scenes(training)


def run(args: argparse.Namespace) -> int:
    """Write the frame index of every scene of `args.dataset_dir`; prints a summary."""
    from tqdm import tqdm

    from datasets.formats import DatasetError, list_frames, write_frame_index
    from utils.io import check_output_dir, remove_stale_temporaries

    if not args.dataset_dir:
        raise UsageError("--dataset_dir is required")
    args.dataset_dir = Path(args.dataset_dir)
    if args.pixel_threshold < 0:
        raise UsageError("--pixel_threshold must be >= 0")
    if not 0 <= args.min_fraction < 1:
        raise UsageError("--min_fraction must be in [0, 1)")
    check_output_dir(args.dataset_dir / "training", "--dataset_dir")
    scenes = {scene: list_frames(scene) for scene in scene_dirs(args.dataset_dir)}
    for scene in scenes:
        for stale in remove_stale_temporaries(scene, [INDEX_NAME]):
            print(f"removed {stale}, left by a run killed while writing it", file=sys.stderr)
    empty = [s.name for s, frames in scenes.items() if not frames]
    if empty:
        print(f"warning: {len(empty)} scenes without frames (no index written): "
              f"{', '.join(empty)}", file=sys.stderr)
    total = sum(len(frames) for frames in scenes.values())
    kept_total = written = 0
    with tqdm(total=total, desc="frames", unit="img", file=sys.stderr) as bar:
        for scene, frames in scenes.items():
            if not frames:
                continue
            bar.set_postfix_str(scene.name)

            def greys(frames: list[Path] = frames) -> Iterator[np.ndarray]:
                for path in frames:
                    yield read_grey(path)
                    bar.update()

            try:
                kept = select_frames(greys(), args.pixel_threshold, args.min_fraction)
            except DatasetError:
                raise  # already names the file
            except ValueError as err:  # frames of different sizes
                raise UsageError(f"{scene}: {err}") from err
            write_frame_index(scene / INDEX_NAME, kept)
            kept_total += len(kept)
            written += 1
    print(f"wrote {INDEX_NAME} for {written} scenes: kept {kept_total} of {total} frames")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse `argv` (default: sys.argv[1:]) and run; returns the exit status."""
    return report_user_errors(PROG, lambda: run(build_parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
