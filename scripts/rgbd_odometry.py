"""Track a pseudo-RGB-D sequence with Open3D's RGB-D odometry and score the trajectory.

    python scripts/rgbd_odometry.py --rgbd_dir rgbd/ [--baselines] [--fuse mesh.ply]

Reads a TUM RGB-D folder (export_rgbd.py writes one), runs Open3D's frame-to-frame RGB-D
odometry (hybrid photometric + geometric term, or photometric only with ``--term color``;
depth up to --depth_max metres) and writes
the camera trajectory in TUM format (trajectory_predicted.txt). When the folder has
groundtruth.txt it reports ATE after similarity and after rigid alignment, and the
frame-to-frame RPE (of the similarity-aligned trajectory, as eval_pose.py); with
``--baselines`` the same sequence is also tracked on its GT depth (depth_gt/,
trajectory_gt_depth.txt) and on a constant depth (trajectory_constant_depth.txt: the median
of the first frame's GT depth, else of its predicted depth), the bounds a predicted depth
sits between. ``--fuse`` TSDF-fuses the frames
at the tracked poses into a mesh. Open3D is optional: ``pip install open3d``
(docs/tools.md, "RGB-D tracking").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from datasets.formats import read_tum_trajectory, write_tum_trajectory  # noqa: E402
from geometry.alignment import absolute_trajectory_error, trajectory_distances  # noqa: E402
from tools.pose_evaluation import trajectory_figures  # noqa: E402
from tools.rgbd import (  # noqa: E402
    ODOMETRY_TERMS,
    fuse_sequence,
    read_sequence_info,
    track_sequence,
)
from utils.cli import run_main  # noqa: E402
from utils.errors import UsageError  # noqa: E402
from utils.io import write_atomic  # noqa: E402

PROG = "rgbd_odometry.py"


def score(gt: np.ndarray, poses: np.ndarray) -> dict[str, float]:
    """ATE (m) after similarity and after rigid alignment, the similarity's scale and the
    frame-to-frame RPE of ``poses`` against ``gt``, both camera-to-world ``[N,4,4]``."""
    sim = trajectory_figures(gt, poses)
    rigid = absolute_trajectory_error(gt, poses, with_scale=False)
    return {"ate_sim3": sim["ate"], "scale": sim["scale"], "ate_rigid": rigid["ate"],
            "rpe_t": sim["f2f_t"], "rpe_r_deg": sim["f2f_r"]}


def constant_depth(frames: list[tuple[float, Path, Path]], factor: float) -> float:
    """Metres of the constant-depth baseline: the median of the first frame's GT depth
    (depth_gt/), else of its predicted depth, so that it does not depend on the checkpoint
    when GT exists."""
    depth = frames[0][2]
    for path in (depth.parent.parent / "depth_gt" / depth.name, depth):
        if path.is_file():
            values = cv2.imread(str(path), cv2.IMREAD_UNCHANGED).astype(np.float64)
            if (values > 0).any():
                return float(np.median(values[values > 0])) / factor
    raise UsageError(f"no depth in the first frame ({depth.name}) for the constant-depth "
                     "baseline")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    parser.add_argument("--rgbd_dir", type=Path, required=True,
                        help="a TUM RGB-D folder (export_rgbd.py)")
    parser.add_argument("--output_dir", type=Path, default=None,
                        help="where trajectories and results go (default: --rgbd_dir)")
    parser.add_argument("--baselines", action="store_true",
                        help="also track on the GT depth (depth_gt/) and on a constant depth")
    parser.add_argument("--depth_max", type=float, default=30.0,
                        help="depth beyond this (m) is ignored by the odometry")
    parser.add_argument("--depth_diff_max", type=float, default=0.15,
                        help="Open3D's largest depth difference (m) of a correspondence "
                             "(its own default, 0.03, loses fast hand-held motion)")
    parser.add_argument("--term", choices=ODOMETRY_TERMS, default="hybrid",
                        help="Open3D's odometry term: hybrid (photometric + geometric) or "
                             "color (photometric only; depth only warps)")
    parser.add_argument("--fuse", type=Path, default=None,
                        help="TSDF-fuse the frames at the tracked poses into this .ply mesh")
    parser.add_argument("--voxel", type=float, default=0.02, help="TSDF voxel size (m)")
    args = parser.parse_args(argv)
    folder = args.rgbd_dir
    out = args.output_dir or folder
    _, factor, frames = read_sequence_info(folder)
    stamps = [t for t, _, _ in frames]
    gt = None
    if (folder / "groundtruth.txt").is_file():
        gt = read_tum_trajectory(folder / "groundtruth.txt")[1]
        if len(gt) != len(frames):
            raise UsageError(f"groundtruth.txt has {len(gt)} poses for {len(frames)} frames")

    runs = {"predicted": {"depth_dir": "depth"}}
    if args.baselines:
        if (folder / "depth_gt").is_dir():
            runs["gt_depth"] = {"depth_dir": "depth_gt"}
        runs["constant_depth"] = {"constant_depth": constant_depth(frames, factor)}
    results = {}
    for name, kwargs in runs.items():
        poses, failures = track_sequence(folder, depth_max=args.depth_max,
                                         depth_diff_max=args.depth_diff_max, term=args.term,
                                         **kwargs)
        write_tum_trajectory(out / f"trajectory_{name}.txt", poses, stamps)
        results[name] = {"failed_pairs": failures}
        if gt is not None:
            results[name].update(score(gt, poses))
        if name == "predicted" and args.fuse is not None:
            fuse_sequence(folder, poses, args.fuse, args.voxel, args.depth_max)
    if gt is not None:
        length = float(trajectory_distances(gt)[-1])
        print(f"{folder}: {len(frames)} frames, GT path {length:.2f} m")
        print(f"{'depth':16} {'ATE sim3 m':>10} {'ATE rigid m':>11} {'RPE m':>8} "
              f"{'RPE °':>7} {'failed':>6}")
        for name, r in results.items():
            print(f"{name:16} {r['ate_sim3']:10.4f} {r['ate_rigid']:11.4f} {r['rpe_t']:8.4f} "
                  f"{r['rpe_r_deg']:7.3f} {r['failed_pairs']:6d}")
        results["gt_path_m"] = length
    else:
        failed = results["predicted"]["failed_pairs"]
        print(f"{folder}: tracked {len(frames)} frames ({failed} pairs Open3D could not "
              "register); no groundtruth.txt to score against")
    write_atomic(out / "odometry.json", json.dumps(results, indent=1) + "\n")
    print(f"wrote {out / 'trajectory_predicted.txt'} (TUM format)"
          + (f" and the fused mesh {args.fuse}" if args.fuse else ""))
    return 0


if __name__ == "__main__":
    run_main(main, PROG)
