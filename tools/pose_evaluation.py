"""Ego-motion and depth-scale evaluation of a checkpoint on video scenes with GT poses
(eval_pose.py; the metrics are in ``geometry.alignment``).

Convention: ``PoseNet(I_t, I_{t+1})`` predicts ``T_{t→t+1}`` (maps points of camera t into
camera t+1); camera-to-world poses are chained as ``P_0 = I``,
``P_{t+1} = P_t · inv(T_{t→t+1})``. The predicted trajectory is aligned to the ground truth
with a similarity (Umeyama: scale, rotation, translation) on the camera positions, then:

- ATE: RMSE of the aligned camera positions (metres).
- RPE as the KITTI odometry benchmark: translation error (%) and rotation error (°/100 m)
  over sub-sequences of 100…800 m; for trajectories shorter than 100 m, over sub-sequences
  of 10 %…80 % of the trajectory's length (still expressed per 100 m, so compare them only
  between runs on the same scene).
- Frame-to-frame RPE: RMSE of the relative translation error (m) and mean relative
  rotation error (°) between consecutive frames.
- Depth scale consistency (scenes with ``depth/``): the per-frame median-scaling ratios
  ``median(gt) / median(pred)`` and their spread std/mean (0 = perfectly consistent).

The same figures for a zero-motion trajectory (every pose the identity) are the baseline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from tqdm import tqdm

from datasets.formats import (
    DatasetError,
    companion_files,
    encode_image,
    gt_depth_suffixes,
    list_images,
    read_gt_depth,
    read_image,
    read_intrinsics,
    read_poses,
    read_scene_list,
    write_poses,
    write_tum_trajectory,
)
from datasets.registry import dataset_spec
from geometry import scale_intrinsics
from geometry.alignment import (
    KITTI_RPE_LENGTHS,
    absolute_trajectory_error,
    chain_relative_poses,
    frame_to_frame_rpe,
    kitti_rpe,
    to_homogeneous,
    trajectory_distances,
)
from losses.metrics import DepthEvaluator
from tools.predictor import Predictor, batched
from utils.errors import UsageError
from utils.io import write_atomic

__all__ = ["evaluate_scene", "find_scenes", "format_results", "jsonable", "plot_trajectories",
           "translation_agreement", "write_trajectories"]


def find_scenes(dataset_dir: Path, names: list[str] | None) -> list[Path]:
    """The scene folders to evaluate: ``names`` (folders under training/, or paths), else
    the scenes of ``val.txt`` that have ``poses.txt``, else every scene folder that has one."""
    training = dataset_dir / "training"
    if names:
        scenes = []
        for name in names:
            path = Path(name) if Path(name).is_dir() else training / name
            if not (path / "poses.txt").is_file():
                raise UsageError(f"--scene {name}: no poses.txt in {path}")
            scenes.append(path)
        return scenes
    if not training.is_dir():
        raise UsageError(f"--dataset_dir: no training/ folder in {dataset_dir}")
    if (training / "val.txt").is_file():
        scenes = [training / n for n in read_scene_list(training / "val.txt")
                  if (training / n / "poses.txt").is_file()]
        if scenes:
            return scenes
    scenes = sorted(p for p in training.iterdir() if (p / "poses.txt").is_file())
    if not scenes:
        raise UsageError(f"no scene with poses.txt under {training}")
    return scenes


@torch.inference_mode()
def predict_sequence(predictor: Predictor, frames: list[Path], batch_size: int,
                     dataset_name: str, gt_depth: dict[str, Path],
                     K: np.ndarray | None = None) -> tuple[np.ndarray, dict | None]:
    """Run the pose networks on consecutive pairs (``model.relative_pose``) and DepthNet on
    the frames that have GT.

    K: the frames' ``[3,3]`` intrinsics (only V2 models need them: ARN's rotation warps
    the reference). Streams the frames (only a batch of images is in memory). Returns the relative
    motions ``[N-1,4,4]`` ``T_{t→t+1}`` and the depth results of ``DepthEvaluator`` (None
    without GT).
    """
    model = predictor.model
    evaluator = DepthEvaluator(dataset_spec(dataset_name)) if gt_depth else None
    motions: list[np.ndarray] = []
    previous: torch.Tensor | None = None  # last frame of the previous batch
    K_net = None
    if K is not None:  # at the network's input size
        H, W = read_image(frames[0]).shape[:2]
        K_net = torch.as_tensor(scale_intrinsics(K, predictor.width / W, predictor.height / H),
                                dtype=torch.float32, device=predictor.device)
    for batch in batched(tqdm(frames, desc=frames[0].parent.name, unit="frame",
                              leave=False), batch_size):
        x = torch.stack([predictor.prepare(read_image(p)) for p in batch]).to(predictor.device)
        seq = x if previous is None else torch.cat([previous[None], x])
        if len(seq) > 1:
            # ref_T_tgt with tgt = I_t, ref = I_{t+1}; the networks in fp32 as in training
            Ks = None if K_net is None else K_net.expand(len(seq) - 1, 3, 3)
            motions.extend(model.relative_pose(seq[:-1], seq[1:], Ks).cpu().numpy())
        with_gt = [i for i, p in enumerate(batch) if p.stem in gt_depth]
        if evaluator is not None and with_gt:
            depth = predictor.depth(x[with_gt])
            for k, i in enumerate(with_gt):
                gt = torch.from_numpy(read_gt_depth(gt_depth[batch[i].stem], dataset_name))
                evaluator.update(depth[k:k + 1], gt[None])
        previous = x[-1]
    rel = np.tile(np.eye(4), (len(motions), 1, 1))
    if motions:
        rel[:, :3, :] = np.stack(motions)
    return rel, (evaluator.compute() if evaluator is not None else None)


def trajectory_figures(gt: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    """ATE, KITTI RPE and frame-to-frame RPE of ``pred`` (similarity-aligned) against ``gt``.

    The KITTI rotation error is per 100 m of path; on a trajectory shorter than 100 m it
    would divide small angles by a few metres and mean nothing, so it is NaN there (the
    frame-to-frame rotation error is the figure to read).
    """
    ate = absolute_trajectory_error(gt, pred, with_scale=True)
    rpe = kitti_rpe(gt, ate["aligned"])
    f2f = frame_to_frame_rpe(gt, ate["aligned"])
    long_enough = bool(rpe["lengths"]) and rpe["lengths"][0] >= KITTI_RPE_LENGTHS[0]
    return {"ate": ate["ate"], "scale": ate["scale"], "rpe_t": rpe["t_err"],
            "rpe_r": rpe["r_err"] if long_enough else float("nan"),
            "rpe_lengths": list(rpe["lengths"]), "rpe_pairs": rpe["num"],
            "f2f_t": f2f["trans_rmse"], "f2f_r": f2f["rot_mean"], "aligned": ate["aligned"]}


def translation_agreement(gt: np.ndarray, pred: np.ndarray) -> float:
    """Mean cosine between the predicted and the true frame-to-frame translation directions,
    each in its own camera frame (no alignment needed): near 1 when the prediction moves the
    way the camera did, negative when it runs against it (a PoseNet that has not learned the
    sign yet), which a similarity alignment could otherwise hide by turning it around."""
    G, P = to_homogeneous(gt), to_homogeneous(pred)
    tg = (np.linalg.inv(G[:-1]) @ G[1:])[:, :3, 3]
    tp = (np.linalg.inv(P[:-1]) @ P[1:])[:, :3, 3]
    norms = np.linalg.norm(tg, axis=1) * np.linalg.norm(tp, axis=1)
    moving = norms > 1e-12
    if not moving.any():
        return float("nan")
    return float(np.mean((tg * tp).sum(axis=1)[moving] / norms[moving]))


def warnings_of(result: dict[str, Any]) -> list[str]:
    """What makes a scene's figures misleading: a prediction no better than not moving, or
    one that runs against the camera's motion."""
    found = []
    pred, zero = result["prediction"], result["zero_motion"]
    if pred["ate"] >= zero["ate"]:
        found.append(f"the prediction's ATE {pred['ate']:.4f} m is no better than zero "
                     f"motion's {zero['ate']:.4f} m")
    if result["translation_agreement"] < 0:
        found.append(f"the predicted translations run against the camera's (mean cosine "
                     f"{result['translation_agreement']:.2f}); a similarity alignment turns "
                     "such a trajectory around, so its ATE flatters it")
    return found


def evaluate_scene(predictor: Predictor, scene: Path, dataset_name: str, batch_size: int
                   ) -> dict[str, Any]:
    """All figures of one scene (see the module docstring)."""
    frames = list_images(scene)
    gt = read_poses(scene / "poses.txt")
    if len(gt) != len(frames):
        raise DatasetError(f"{scene / 'poses.txt'} has {len(gt)} poses for {len(frames)} "
                           f"frames in {scene}")
    if len(frames) < 2:
        raise DatasetError(f"{scene}: need at least 2 frames to evaluate poses")
    gt_files = companion_files(scene / "depth", gt_depth_suffixes(dataset_name))
    # V2's ARN rotates the reference with K before PoseNet sees it (systems.v2.relative_pose)
    K = read_intrinsics(scene / "cam.txt") if predictor.model.opts.model_version == "v2" \
        else None
    motions, depth = predict_sequence(predictor, frames, batch_size, dataset_name, gt_files, K)
    pred = chain_relative_poses(motions)
    result: dict[str, Any] = {
        "scene": scene.name, "frames": len(frames),
        "length_m": float(trajectory_distances(gt)[-1]),
        "prediction": trajectory_figures(gt, pred),
        "zero_motion": trajectory_figures(gt, np.tile(np.eye(4), (len(gt), 1, 1))),
        "translation_agreement": translation_agreement(gt, pred),
        "gt": gt, "pred": pred,
    }
    result["warnings"] = warnings_of(result)
    if depth is not None and depth["num_images"] > 0:
        mean, std = depth["ratio_mean"], depth["ratio_std"]
        result["depth_scale"] = {"ratio_mean": mean, "ratio_std": std,
                                 "spread": std / mean if mean > 0 else float("nan"),
                                 "abs_rel": depth["full"]["abs_rel"],
                                 "frames": depth["num_images"]}
    return result


def _cell(value: float, width: int, digits: int) -> str:
    return f"{'–':>{width}}" if not np.isfinite(value) else f"{value:>{width}.{digits}f}"


def format_results(results: list[dict[str, Any]]) -> str:
    """The table eval_pose.py prints: per scene, the prediction and the zero-motion baseline."""
    header = (f"{'scene':<24} {'trajectory':<12} {'ATE (m)':>9} {'RPE t(%)':>9} "
              f"{'RPE r(°/100m)':>13} {'f2f t(m)':>9} {'f2f r(°)':>9} {'scale':>8}")
    lines = [header]
    for r in results:
        for key, label in (("prediction", "prediction"), ("zero_motion", "zero motion")):
            f = r[key]
            lines.append(f"{r['scene']:<24} {label:<12} {f['ate']:>9.4f} {f['rpe_t']:>9.2f} "
                         f"{_cell(f['rpe_r'], 13, 2)} {f['f2f_t']:>9.4f} {f['f2f_r']:>9.3f} "
                         f"{f['scale']:>8.3f}")
    if len(results) > 1:
        for key, label in (("prediction", "prediction"), ("zero_motion", "zero motion")):
            mean = {m: float(np.mean([r[key][m] for r in results]))
                    for m in ("ate", "rpe_t", "rpe_r", "f2f_t", "f2f_r")}
            lines.append(f"{'mean':<24} {label:<12} {mean['ate']:>9.4f} {mean['rpe_t']:>9.2f} "
                         f"{_cell(mean['rpe_r'], 13, 2)} {mean['f2f_t']:>9.4f} "
                         f"{mean['f2f_r']:>9.3f} {'':>8}")
    for r in results:
        lengths = r["prediction"]["rpe_lengths"]
        kind = ("KITTI 100-800 m" if lengths and lengths[0] >= 100 else
                "10-80 % of the trajectory; no °/100 m under 100 m")
        lines.append(f"{r['scene']}: {r['frames']} frames, {r['length_m']:.2f} m; RPE over "
                     f"{kind} ({r['prediction']['rpe_pairs']} sub-sequences)")
        lines.extend(f"  warning: {w}" for w in r["warnings"])
        d = r.get("depth_scale")
        if d is not None:
            lines.append(f"  depth scale consistency: median ratio gt/pred mean "
                         f"{d['ratio_mean']:.4f}, std {d['ratio_std']:.4f}, spread (std/mean) "
                         f"{d['spread']:.4f} over {d['frames']} frames; AbsRel "
                         f"{d['abs_rel']:.4f}")
    return "\n".join(lines)


def plot_trajectories(results: list[dict[str, Any]], path: Path, size: int = 480) -> None:
    """Top-down (x–z plane of the first camera, z up the page) GT and aligned prediction,
    one panel per scene, drawn with OpenCV (no plotting dependency)."""
    panels = []
    for r in results:
        gt = r["gt"][:, [0, 2], 3]
        pred = r["prediction"]["aligned"][:, [0, 2], 3]
        both = np.concatenate([gt, pred])
        lo, hi = both.min(axis=0), both.max(axis=0)
        span = float(max(hi[0] - lo[0], hi[1] - lo[1], 1e-6))
        margin = 40
        scale = (size - 2 * margin) / span
        centre = (lo + hi) / 2

        def to_px(xz: np.ndarray, centre=centre, scale=scale) -> np.ndarray:
            u = size / 2 + (xz[:, 0] - centre[0]) * scale
            v = size / 2 - (xz[:, 1] - centre[1]) * scale  # z (forward) up the page
            return np.stack([u, v], axis=1).round().astype(np.int32)

        panel = np.full((size, size, 3), 255, dtype=np.uint8)
        for xz, colour in ((gt, (0, 160, 0)), (pred, (220, 0, 0))):
            px = to_px(xz)
            cv2.polylines(panel, [px.reshape(-1, 1, 2)], False, colour, 2, cv2.LINE_AA)
            cv2.circle(panel, tuple(int(v) for v in px[0]), 5, colour, -1, cv2.LINE_AA)
        font = cv2.FONT_HERSHEY_SIMPLEX
        cv2.putText(panel, r["scene"], (10, 20), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(panel, "ground truth", (10, 40), font, 0.45, (0, 160, 0), 1, cv2.LINE_AA)
        cv2.putText(panel, f"prediction (aligned), ATE {r['prediction']['ate']:.3f} m",
                    (10, 58), font, 0.45, (220, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(panel, f"x-z plane, {span:.2f} m across", (10, size - 12), font, 0.4,
                    (90, 90, 90), 1, cv2.LINE_AA)
        cv2.rectangle(panel, (0, 0), (size - 1, size - 1), (180, 180, 180), 1)
        panels.append(panel)
    write_atomic(path, encode_image(np.concatenate(panels, axis=1), ".png"))


def write_trajectories(results: list[dict[str, Any]], folder: Path) -> list[Path]:
    """Each scene's GT and predicted (as chained, not aligned) camera-to-world trajectories,
    in the TUM format (``<scene>.gt.tum``, ``<scene>.pred.tum``; timestamps are frame
    indices) and the KITTI odometry format (``<scene>.gt.kitti``, ``<scene>.pred.kitti``),
    for evo and the benchmarks' own tools."""
    written = []
    for r in results:
        frames = np.arange(len(r["gt"]), dtype=np.float64)
        for kind in ("gt", "pred"):
            written.append(write_tum_trajectory(folder / f"{r['scene']}.{kind}.tum",
                                                r[kind], frames))
            written.append(write_poses(folder / f"{r['scene']}.{kind}.kitti", r[kind]))
    return written


def jsonable(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in results:
        item = {k: v for k, v in r.items() if k not in ("gt", "pred")}
        for key in ("prediction", "zero_motion"):
            item[key] = {k: v for k, v in r[key].items() if k != "aligned"}
        out.append(item)
    return out
