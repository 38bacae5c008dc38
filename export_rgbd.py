"""Turn a monocular video into a pseudo-RGB-D sequence (TUM RGB-D layout) for RGB-D SLAM.

    python export_rgbd.py --ckpt_path K --input_video clip.mp4 --cam_txt cam.txt \\
        --output_dir rgbd/ --camera_height 1.65
    python export_rgbd.py --ckpt_path K --input_dir DATA/training/SCENE --output_dir rgbd/

Writes rgb/ and depth/ (16-bit, metres × --depth_factor, 5000 as TUM), rgb.txt, depth.txt,
associations.txt (timestamps from --fps), cam.txt and an ORB-SLAM2 RGB-D settings file
(orbslam2_rgbd.yaml) at the output size, and export.json. The whole video gets ONE depth
scale, never one per frame (that would hide the scale drift the method is about):
``--depth_scale`` (metres per network unit), or fixed on the first frame from its GT depth
(a dataset scene with depth/: the default there) or from ``--camera_height`` (metres above
a ground plane the first frame sees). export.json says which was used, and, with GT depth,
the scale drift over the video (std/mean of the per-frame GT/prediction median ratios).
A dataset scene's GT depth and poses.txt are exported too (depth_gt/, groundtruth.txt), so
that scripts/rgbd_odometry.py can compare tracking on predicted and on true depth.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from config import get_parser
from utils.cli import run_main
from utils.errors import UsageError

PROG = "export_rgbd.py"
OPTIONS = ("img_height", "img_width", "dataset_name", "ckpt_path", "device",
           "infer_batch_size", "infer_precision", "infer_compile", "input_dir", "input_video",
           "output_dir", "cam_txt", "fx", "fy", "cx", "cy", "output_resolution")


def build_parser() -> argparse.ArgumentParser:
    parser = get_parser(("data", "model", "runtime", "inference"), __doc__.split("\n")[0],
                        names=OPTIONS, from_checkpoint=True)
    parser.prog = PROG
    g = parser.add_argument_group("RGB-D export")
    g.add_argument("--depth_scale", type=float, default=None,
                   help="metres per network depth unit, for the whole video")
    g.add_argument("--camera_height", type=float, default=None,
                   help="the camera's height above the ground (m): fixes the scale from a "
                        "ground plane in the first frame")
    g.add_argument("--fps", type=float, default=None,
                   help="frame rate for the timestamps (default: the video's, else 30)")
    g.add_argument("--depth_factor", type=float, default=5000.0,
                   help="16-bit depth value per metre: 5000 (TUM) reaches 13.1 m, 1000 "
                        "reaches 65 m (outdoor); depth beyond the range is written as 0")
    g.add_argument("--close_depth", type=float, default=None,
                   help="ORB-SLAM2's close-point threshold in metres (default: twice the "
                        "first frame's median depth)")
    g.add_argument("--overwrite", action="store_true", help="replace a non-empty --output_dir")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    import numpy as np

    from datasets.formats import (
        companion_files,
        gt_depth_suffixes,
        intrinsics_from,
        read_intrinsics,
        read_poses,
    )
    from datasets.frames import folder_frames, video_frames
    from tools.predictor import Predictor
    from tools.rgbd import RgbdExport, write_rgbd_sequence

    opts = build_parser().parse_args(argv)
    if not opts.ckpt_path or not opts.output_dir:
        raise UsageError("--ckpt_path and --output_dir are required")
    if bool(opts.input_dir) == bool(opts.input_video):
        raise UsageError("give one of --input_dir and --input_video")
    if sum(x is not None for x in (opts.depth_scale, opts.camera_height)) > 1:
        raise UsageError("give --depth_scale or --camera_height, not both")
    for name in ("depth_scale", "camera_height", "fps", "depth_factor", "close_depth"):
        value = getattr(opts, name)
        if value is not None and not (np.isfinite(value) and value > 0):
            raise UsageError(f"--{name} must be a positive number, got {value}")
    predictor, settings = Predictor.from_options(opts)
    print(f"{opts.ckpt_path}: {settings.describe()}")
    for note in settings.notes:
        print(note)

    K = intrinsics_from(opts.cam_txt, opts.fx, opts.fy, opts.cx, opts.cy)
    gt_depth, gt_poses, fps = {}, None, opts.fps
    if opts.input_video:
        frames, count, video_fps = video_frames(Path(opts.input_video))
        fps = fps or video_fps or 30.0
    else:
        folder = Path(opts.input_dir)
        frames, count = folder_frames(folder)
        fps = fps or 30.0
        if K is None and (folder / "cam.txt").is_file():
            K = read_intrinsics(folder / "cam.txt")
        if (folder / "depth").is_dir():
            files = companion_files(folder / "depth", gt_depth_suffixes(settings.dataset_name))
            gt_depth = dict(files)  # read frame by frame during the export
        if (folder / "poses.txt").is_file():
            gt_poses = read_poses(folder / "poses.txt")
            if len(gt_poses) != count:
                raise UsageError(f"{folder / 'poses.txt'} has {len(gt_poses)} poses for "
                                 f"{count} frames")
    if K is None:
        raise UsageError("give the input's intrinsics: --cam_txt FILE or --fx --fy --cx --cy")
    if opts.depth_scale is not None:
        scale_from = "given"
    elif opts.camera_height is not None:
        scale_from = "camera_height"
    elif gt_depth:
        scale_from = "gt"
    else:
        raise UsageError("the depth needs a scale: --depth_scale (metres per network unit) "
                         "or --camera_height (or a dataset scene with depth/)")
    export = RgbdExport(K=K, fps=fps, depth_scale=opts.depth_scale, scale_from=scale_from,
                        camera_height=opts.camera_height, gt_depth=gt_depth,
                        gt_poses=gt_poses, depth_factor=opts.depth_factor,
                        output_resolution=opts.output_resolution,
                        close_depth=opts.close_depth, dataset_name=settings.dataset_name)
    try:
        info = write_rgbd_sequence(predictor, frames, count, Path(opts.output_dir), export,
                                   opts.infer_batch_size, opts.overwrite)
    except FileExistsError as err:
        raise UsageError(str(err)) from None
    line = (f"wrote {opts.output_dir}: {info['frames']} frames at {info['size'][1]}x"
            f"{info['size'][0]}, {info['depth_scale']:.4g} m per network unit "
            f"(from {info['scale_from']})")
    if info["scale_consistency"]:
        line += f"; scale drift over the video {100 * info['scale_consistency']['drift']:.1f} %"
    print(line)
    if info["skipped"]:
        print(f"skipped {len(info['skipped'])} unreadable frames (their time stays a gap):\n"
              + "\n".join(f"  {why}" for why in info["skipped"]))
    if info["beyond_range_share"] > 0.01:
        limit = 65535 / info["depth_factor"]
        print(f"note: {100 * info['beyond_range_share']:.1f} % of the depth lies beyond "
              f"{limit:.1f} m, the 16-bit range at --depth_factor {info['depth_factor']:g}, "
              "and is written as 0 (no depth); for outdoor video use --depth_factor 1000 "
              "(up to 65 m)")
    return 0


if __name__ == "__main__":
    run_main(main, PROG)
