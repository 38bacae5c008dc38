"""How much rotation a trained model removes between frames, and how well its pose tracks it.

The model that removes it is SC-Depth V2's auto-rectify network, ARN (docs/method.md, V2).

    python scripts/eval_rectification.py --ckpt_path RUN/last.ckpt --dataset_dir DATA

For every (target, reference) pair of the chosen scenes (``training/val.txt`` by default;
the scenes need ``poses.txt``, camera-to-world 3×4 per frame, as the synthetic dataset
writes) it reports

- ``rot_before`` = mean|rot1|, ``rot1 = ARN(tgt, ref)``, and ``rot_after`` = mean|rot2|,
  ``rot2 = ARN(tgt, ref')`` with ``ref' = rotation_warp(ref, rot1, K)`` (radians, what
  training logs as train/rot_before and train/rot_after);
- the rotation between the pairs measured against the ground-truth poses, in degrees:
  raw = angle of ``R_gt``, rectified = angle of ``R(rot1)ᵀ · R_gt``;
- per axis (rx, ry, rz), ARN's ``rot1`` against the GT Euler angles ``mat2euler(R_gt)``
  over all pairs: the correlation and the least-squares slope. A residual angle alone cannot
  tell noise (low correlation), a sign error (negative slope) and under-shooting (slope
  well below 1, correlation high) apart; these can. A perfect ARN has both at 1;
- the same residual angle and per-axis figures for the rotation of the relative pose the
  model predicts (``model.relative_pose``, what ``eval_pose.py`` chains): PoseNet's for V1
  and V3, ARN's composed with PoseNet's on the rectified pair for V2, so a V1 run is the
  yardstick for what ARN should reach at the same budget (V1 and V3 checkpoints get this
  part only);
- with ``--arn_refine`` (in the checkpoint), ``rot1`` is ARN's rotation refined by direct
  alignment, what rectifies; the residual angle and per-axis figures of ARN's own output
  are reported beside it (``arn_unrefined``).

Why that composition: with camera-to-world poses ``P_t``, ``P_r``, the rotation of
``ref_T_tgt`` (target camera frame → reference camera frame) is ``R_gt = R_rᵀ · R_t``.
``rotation_warp(ref, rot1, K)`` makes target pixel ``p`` sample ``ref`` at ``K·R1·K⁻¹·p``:
``ref'`` is the reference seen by a virtual camera ``c'`` with ``X_r = R1 · X_c'``. So
``c'_T_tgt = R1ᵀ · R_gt`` (``R1 = euler2mat(rot1)``); a perfect ARN predicts ``R1 = R_gt``
and leaves the identity (only the translation is left between the rectified pair).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from config import get_parser  # noqa: E402
from datasets.formats import (  # noqa: E402
    list_images,
    read_image,
    read_intrinsics,
    read_poses,
    scene_dirs,
)
from datasets.transforms import Compose, Resize, ToTensor  # noqa: E402
from geometry import euler2mat, mat2euler  # noqa: E402
from geometry.alignment import rotation_angle  # noqa: E402
from systems import SCDepthV1, SCDepthV2  # noqa: E402
from tools.predictor import Predictor  # noqa: E402
from utils.cli import run_main  # noqa: E402
from utils.errors import UsageError  # noqa: E402
from utils.io import write_atomic  # noqa: E402


def rotation_angle_deg(R: np.ndarray) -> np.ndarray:
    """Angle of rotation matrices ``[...,3,3]`` in degrees."""
    return np.degrees(rotation_angle(R))


def scene_pairs(scene: Path, skip: int) -> list[tuple[int, int]]:
    """(target, reference) frame indices: each target with its i−k and i+k neighbours."""
    n = len(list_images(scene))
    return [(i, j) for i in range(skip, n - skip) for j in (i - skip, i + skip)]


AXES = ("rx", "ry", "rz")


def axis_agreement(pred: np.ndarray, gt: np.ndarray) -> dict[str, dict[str, float | None]]:
    """Per axis of ``[N,3]`` Euler angles: Pearson correlation of ``pred`` with ``gt`` and
    the least-squares slope of ``pred`` on ``gt`` (``cov / var(gt)``). A constant series has
    no correlation (None); a constant ``gt`` no slope either."""
    out: dict[str, dict[str, float | None]] = {}
    for k, axis in enumerate(AXES):
        p, g = pred[:, k] - pred[:, k].mean(), gt[:, k] - gt[:, k].mean()
        var_p, var_g = float(p @ p), float(g @ g)
        cov = float(p @ g)
        out[axis] = {"corr": cov / math.sqrt(var_p * var_g) if var_p > 0 and var_g > 0
                     else None,
                     "slope": cov / var_g if var_g > 0 else None}
    return out


def rotation_figures(R: np.ndarray, R_gt: np.ndarray, euler: np.ndarray | None = None
                     ) -> dict:
    """Predicted rotations ``R`` ``[N,3,3]`` against ``R_gt``: the residual ``Rᵀ · R_gt``'s
    angle (mean and median, degrees) and mean |Euler angle| (radians), and the per-axis
    agreement of the predicted Euler angles (``euler`` ``[N,3]`` when the network gives
    them, else those of ``R``) with the GT ones."""
    residual = np.swapaxes(R, -1, -2) @ R_gt
    angles = rotation_angle_deg(residual)
    if euler is None:
        euler = mat2euler(torch.from_numpy(R)).numpy()
    gt_euler = mat2euler(torch.from_numpy(R_gt)).numpy()
    return {"angle_residual_deg": float(angles.mean()),
            "angle_residual_median_deg": float(np.median(angles)),
            "euler_residual": float(mat2euler(torch.from_numpy(residual)).abs().mean()),
            "per_axis": axis_agreement(euler, gt_euler)}


@torch.inference_mode()
def evaluate(model: SCDepthV1, scenes: list[Path], height: int, width: int,
             skip: int, device: torch.device, batch_size: int = 8) -> dict:
    """The figures described in the module docstring, averaged over all pairs; the ARN ones
    only for a V2 model."""
    transform = Compose([Resize(height, width), ToTensor()])
    has_arn = isinstance(model, SCDepthV2)
    refined = has_arn and model.opts.arn_refine
    rot1_all, rot2_all, arn_all, pose_all, gt_all = [], [], [], [], []
    for scene in scenes:
        frames = list_images(scene)
        poses = read_poses(scene / "poses.txt")
        if len(poses) != len(frames):
            raise UsageError(f"{scene / 'poses.txt'}: {len(poses)} poses for {len(frames)} "
                             "frames")
        K_raw = read_intrinsics(scene / "cam.txt")
        images, K, _ = transform([read_image(p) for p in frames], K_raw, [])
        images = torch.stack(images).to(device)
        K = torch.as_tensor(K, dtype=torch.float32, device=device)
        pairs = scene_pairs(scene, skip)
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start:start + batch_size]
            tgt = images[[i for i, _ in chunk]]
            ref = images[[j for _, j in chunk]]
            Ks = K.expand(len(chunk), 3, 3)
            if has_arn:
                # Exactly training's rectification: rot1 = ARN(tgt, ref), rot2 = ARN(tgt, ref').
                _, (rot1,), (rot2,) = model.rectify(tgt, [ref], Ks)
                rot1_all.append(rot1.cpu().numpy())
                rot2_all.append(rot2.cpu().numpy())
                if refined:  # rot1 was refined: ARN's own output too
                    arn_all.append(model.arn(tgt, ref).cpu().numpy())
            pose_all.append(model.relative_pose(tgt, ref, Ks)[:, :, :3].cpu().numpy())
            # ref_T_tgt rotation from camera-to-world poses: R_r^T · R_t
            gt_all.append(np.stack([poses[j, :3, :3].T @ poses[i, :3, :3] for i, j in chunk]))
    R_gt = np.concatenate(gt_all)
    gt_euler = mat2euler(torch.from_numpy(R_gt)).numpy()
    results: dict = {
        "num_pairs": len(R_gt),
        "gt_rot_raw": float(np.abs(gt_euler).mean()),
        "angle_raw_deg": float(rotation_angle_deg(R_gt).mean()),
        "angle_raw_median_deg": float(np.median(rotation_angle_deg(R_gt))),
        "pose": rotation_figures(np.concatenate(pose_all), R_gt),
    }
    if has_arn:
        rot1 = np.concatenate(rot1_all).astype(np.float64)
        rot2 = np.concatenate(rot2_all).astype(np.float64)
        # per axis: rot1 itself (not its matrix's angles), what the network outputs
        arn = rotation_figures(euler2mat(torch.from_numpy(rot1)).numpy(), R_gt, rot1)
        results.update({
            "rot_before": float(np.abs(rot1).mean()),
            "rot_after": float(np.abs(rot2).mean()),
            "gt_rot_rectified": arn["euler_residual"],
            "angle_rectified_deg": arn["angle_residual_deg"],
            "angle_rectified_median_deg": arn["angle_residual_median_deg"],
            "per_axis": arn["per_axis"],
        })
    if refined:
        raw = np.concatenate(arn_all).astype(np.float64)
        results["arn_unrefined"] = rotation_figures(euler2mat(torch.from_numpy(raw)).numpy(),
                                                    R_gt, raw)
    return results


def print_axes(per_axis: dict) -> None:
    for axis, r in per_axis.items():
        corr = "n/a" if r["corr"] is None else f"{r['corr']:+.3f}"
        slope = "n/a" if r["slope"] is None else f"{r['slope']:+.3f}"
        print(f"  {axis}: correlation {corr}   slope {slope}")


def main(argv: list[str] | None = None) -> int:
    parser = get_parser(("data", "model", "runtime", "evaluation"), __doc__.split("\n")[0],
                        names=("dataset_dir", "skip_frames", "img_height", "img_width",
                               "ckpt_path", "device", "output_json"), from_checkpoint=True)
    parser.add_argument("--split", default="val", choices=("val", "train"),
                        help="scenes of training/val.txt or training/train.txt")
    args = parser.parse_args(argv)
    if not args.ckpt_path or not args.dataset_dir:
        raise UsageError("--ckpt_path and --dataset_dir are required")

    args.infer_precision = "32"
    predictor, settings = Predictor.from_options(args)
    model = predictor.model
    height, width = settings.img_height, settings.img_width
    scenes = scene_dirs(Path(args.dataset_dir) / "training", f"{args.split}.txt")
    results = evaluate(model, scenes, height, width, args.skip_frames, model.device)
    deg = 180.0 / math.pi
    print(f"{results['num_pairs']} pairs of {len(scenes)} {args.split} scenes at "
          f"{height}x{width} ({model.opts.model_version})")
    print(f"rotation angle of the GT poses: {results['angle_raw_deg']:.2f}° "
          f"(median {results['angle_raw_median_deg']:.2f}°)")
    if "rot_before" in results:
        print(f"ARN's estimate   mean|rot1| (rot_before) = {results['rot_before']:.4f} rad "
              f"({results['rot_before'] * deg:.2f}°)   mean|rot2| (rot_after) = "
              f"{results['rot_after']:.4f} rad ({results['rot_after'] * deg:.2f}°)")
        print(f"ground truth     mean|euler| raw = {results['gt_rot_raw']:.4f} rad   "
              f"rectified = {results['gt_rot_rectified']:.4f} rad")
        print(f"rotation left after rectification: {results['angle_rectified_deg']:.2f}° "
              f"(median {results['angle_rectified_median_deg']:.2f}°)")
        print("ARN's rot1 against the GT angles, per axis (1 and 1 when right):")
        print_axes(results["per_axis"])
    if "arn_unrefined" in results:
        raw = results["arn_unrefined"]
        print(f"ARN's own rotation, before --arn_refine: {raw['angle_residual_deg']:.2f}° left "
              f"(median {raw['angle_residual_median_deg']:.2f}°); per axis:")
        print_axes(raw["per_axis"])
    pose = results["pose"]
    print(f"rotation error of the predicted pose: {pose['angle_residual_deg']:.2f}° "
          f"(median {pose['angle_residual_median_deg']:.2f}°); per axis against the GT "
          "angles:")
    print_axes(pose["per_axis"])
    if args.output_json:
        write_atomic(Path(args.output_json), json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    run_main(main, "eval_rectification.py")
