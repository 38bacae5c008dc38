"""Turn your own videos into a training set: a scene of frames and cam.txt per video.

    python generate_video_dataset.py --input_video walk1.mp4 walk2.mp4 --output_dir data/mine \\
        --cam_txt cam.txt [--val_video walk3.mp4] [--every 2] [--max_side 640]

Writes ``OUTPUT/training/<video name>/000000.jpg …`` with ``cam.txt`` (the intrinsics, scaled
when the frames are shrunk), and ``training/train.txt`` / ``val.txt``. ``--val_video`` videos
become validation scenes; without them the last ``--val_fraction`` (10 %) of each video is
split off into ``<video name>_val``, so validation never sees a training frame. The folder is
written in full or not at all. The intrinsics are those of the video's own resolution
(``--cam_txt`` or ``--fx --fy --cx --cy``, in pixels); depth learnt from video needs them.

Then (README, "Your own video"): ``generate_valid_frame_index.py`` drops the frames where the
camera stood still, ``generate_pseudo_depth.py`` adds V3's prior, and ``train.py
--use_frame_index --val_mode photo`` trains without any ground truth.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from config import get_parser
from utils.cli import run_main
from utils.errors import UsageError

PROG = "generate_video_dataset.py"


def build_parser() -> argparse.ArgumentParser:
    parser = get_parser(("inference",), __doc__.split("\n")[0],
                        names=("output_dir", "cam_txt", "fx", "fy", "cx", "cy"))
    parser.prog = PROG
    for group in parser._action_groups:  # the shared options' section, named for this tool
        if group.title == "inference":
            group.title = "output and intrinsics"
    g = parser.add_argument_group("videos")
    g.add_argument("--input_video", nargs="+", type=Path, default=[],
                   help="training videos, one scene each (named after the file)")
    g.add_argument("--val_video", nargs="*", type=Path, default=[],
                   help="validation videos (default: the last --val_fraction of each input)")
    g.add_argument("--val_fraction", type=float, default=0.1,
                   help="without --val_video: the share of each video's last frames kept "
                        "for validation (0: no validation scenes)")
    g.add_argument("--every", type=int, default=1,
                   help="keep every n-th frame (thins a high frame rate)")
    g.add_argument("--max_side", type=int, default=0,
                   help="shrink frames so that their longer side is at most this (0: keep "
                        "the video's size)")
    g.add_argument("--overwrite", action="store_true", help="replace a non-empty --output_dir")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from datasets.formats import intrinsics_from
    from tools.video_dataset import write_video_dataset

    args = build_parser().parse_args(argv)
    if not args.output_dir:
        raise UsageError("--output_dir is required")
    K = intrinsics_from(args.cam_txt, args.fx, args.fy, args.cx, args.cy)
    if K is None:
        raise UsageError("give the videos' intrinsics: --cam_txt FILE or --fx --fy --cx --cy "
                         "(pixels, at the video's resolution)")
    summary = write_video_dataset(args.input_video, Path(args.output_dir), K,
                                  args.val_video, args.val_fraction, args.every,
                                  args.max_side, args.overwrite)
    sizes = ", ".join(f"{w}x{h}" for h, w in summary["sizes"])
    print(f"wrote {args.output_dir}: {len(summary['train'])} training scenes "
          f"({sum(summary['train'].values())} frames), {len(summary['val'])} validation "
          f"scenes ({sum(summary['val'].values())} frames), frames of {sizes}")
    return 0


if __name__ == "__main__":
    run_main(main, PROG)
