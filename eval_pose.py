"""Evaluate PoseNet's ego-motion (and the scale consistency of depth) on video sequences.

    python eval_pose.py --dataset_dir D --ckpt_path K --dataset_name synthetic \\
        --img_height 256 --img_width 320 [--scene NAME ...] [--plot traj.png]

A scene is a folder ``D/training/<scene>/`` of frames with ``poses.txt`` (KITTI odometry
format: one camera-to-world 3×4 matrix per line, row-major, one line per frame in name
order) and, optionally, ``depth/`` ground truth. Default scenes: those of ``val.txt`` that
have ``poses.txt``, else every scene folder that has one. Prints ATE, RPE (KITTI-style and
frame to frame) and the depth scale consistency, beside a zero-motion baseline, and warns
when a prediction is no better than not moving or runs against the camera's motion; the
definitions are in tools/pose_evaluation.py. ``--output_dir`` writes every scene's GT and
predicted trajectory in the TUM and KITTI formats (for evo).
"""

from __future__ import annotations

import json
from pathlib import Path

from config import get_parser
from utils.cli import run_main
from utils.errors import UsageError
from utils.io import check_output_dir, check_output_file, write_atomic

OPTIONS = ("dataset_dir", "dataset_name", "img_height", "img_width", "model_version",
           "resnet_layers", "ckpt_path", "device", "infer_batch_size", "infer_precision",
           "infer_compile", "output_json", "output_dir")


def build_parser():
    parser = get_parser(("data", "model", "runtime", "evaluation", "inference"),
                        __doc__.split("\n")[0], names=OPTIONS, from_checkpoint=True)
    g = parser.add_argument_group("pose evaluation")
    g.add_argument("--scene", nargs="+", action="extend", default=None, metavar="NAME",
                   help="scene folders under DATASET/training to evaluate (or paths to "
                        "scene folders); default: val.txt's scenes that have poses.txt")
    g.add_argument("--plot", type=str, default=None,
                   help="write a top-down trajectory plot (PNG; GT vs aligned prediction, "
                        "one panel per scene)")
    return parser


def main(argv: list[str] | None = None) -> int:
    opts = build_parser().parse_args(argv)
    if not opts.dataset_dir:
        raise UsageError("--dataset_dir is required")
    if not opts.ckpt_path:
        raise UsageError("--ckpt_path is required")
    # before the model loads: output places that cannot be written
    if opts.output_dir:
        check_output_dir(opts.output_dir, "--output_dir")
    for flag in ("output_json", "plot"):
        if getattr(opts, flag):
            check_output_file(getattr(opts, flag), f"--{flag}")

    from tools.pose_evaluation import (
        evaluate_scene,
        find_scenes,
        format_results,
        jsonable,
        plot_trajectories,
        write_trajectories,
    )
    from tools.predictor import Predictor

    scenes = find_scenes(Path(opts.dataset_dir), opts.scene)
    predictor, settings = Predictor.from_options(opts)
    print("\n".join([*settings.notes, f"{opts.ckpt_path}: {settings.describe()}"]), flush=True)
    results = [evaluate_scene(predictor, scene, settings.dataset_name, opts.infer_batch_size)
               for scene in scenes]
    print(format_results(results))
    if opts.plot:
        plot_trajectories(results, Path(opts.plot))
        print(f"trajectory plot: {opts.plot}")
    if opts.output_dir:
        written = write_trajectories(results, Path(opts.output_dir))
        print(f"trajectories (TUM and KITTI formats, for evo): {len(written)} files in "
              f"{opts.output_dir}")
    if opts.output_json:
        write_atomic(Path(opts.output_json), json.dumps(jsonable(results), indent=2))
    return 0


if __name__ == "__main__":
    run_main(main, "eval_pose.py")
