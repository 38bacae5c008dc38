"""Evaluate PoseNet's ego-motion (and the scale consistency of depth) on video sequences.

    python eval_pose.py --dataset_dir D --ckpt_path K --dataset_name synthetic \\
        --img_height 256 --img_width 320 [--scene NAME ...] [--plot traj.png]

A scene is a folder ``D/training/<scene>/`` of frames with ``poses.txt`` (KITTI odometry
format: one camera-to-world 3×4 matrix per line, row-major, one line per frame in name
order) and, optionally, ``depth/`` ground truth. Default scenes: those of ``val.txt`` that
have ``poses.txt``, else every scene folder that has one.

Convention: ``PoseNet(I_t, I_{t+1})`` predicts ``T_{t→t+1}`` (maps points of camera t into
camera t+1); camera-to-world poses are chained as ``P_0 = I``,
``P_{t+1} = P_t · inv(T_{t→t+1})`` (see ``geometry.alignment``). The predicted trajectory
is aligned to the ground truth with a similarity (Umeyama: scale, rotation, translation)
on the camera positions, then:

- ATE: RMSE of the aligned camera positions (metres).
- RPE as the KITTI odometry benchmark: translation error (%) and rotation error (°/100 m)
  over sub-sequences of 100…800 m; for trajectories shorter than 100 m, over sub-sequences
  of 10 %…80 % of the trajectory's length (still expressed per 100 m, so compare them only
  between runs on the same scene). First frames every 10 frames (every frame for
  sequences under 100 frames).
- Frame-to-frame RPE: RMSE of the relative translation error (m) and mean relative
  rotation error (°) between consecutive frames.
- Depth scale consistency (scenes with ``depth/``): the per-frame median-scaling ratios
  ``median(gt) / median(pred)`` and their spread std/mean (0 = perfectly consistent).

The same figures for a zero-motion trajectory (every pose the identity) are printed as a
baseline.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from config import finalize, get_parser
from utils.cli import UsageError, run_main


def build_parser():
    parser = get_parser(("data", "model", "runtime", "evaluation"),
                        description=__doc__.split("\n")[0])
    g = parser.add_argument_group("pose evaluation")
    g.add_argument("--scene", nargs="+", action="extend", default=None, metavar="NAME",
                   help="scene folders under DATASET/training to evaluate (or paths to "
                        "scene folders); default: val.txt's scenes that have poses.txt")
    g.add_argument("--plot", type=str, default=None,
                   help="write a top-down trajectory plot (PNG; GT vs aligned prediction, "
                        "one panel per scene)")
    return parser


def read_poses(path: Path) -> np.ndarray:
    """KITTI odometry poses file -> ``[N,4,4]`` float64 camera-to-world."""
    from datasets.depth_io import DatasetError

    try:
        text = path.read_text()
    except OSError as err:
        raise DatasetError(f"cannot read {path}: {err.strerror or err}") from None
    poses = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            values = [float(v) for v in line.split()]
        except ValueError:
            raise DatasetError(f"{path}:{number}: not a list of numbers") from None
        if len(values) != 12 or not all(math.isfinite(v) for v in values):
            raise DatasetError(f"{path}:{number}: expected 12 finite numbers (a 3x4 "
                               f"camera-to-world matrix), got {len(values)}")
        T = np.eye(4)
        T[:3, :] = np.array(values).reshape(3, 4)
        poses.append(T)
    return np.stack(poses) if poses else np.zeros((0, 4, 4))


def find_scenes(dataset_dir: Path, names: list[str] | None) -> list[Path]:
    """The scene folders to evaluate (see the module docstring)."""
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
    val_list = training / "val.txt"
    if val_list.is_file():
        scenes = [training / n for n in val_list.read_text().split()
                  if (training / n / "poses.txt").is_file()]
        if scenes:
            return scenes
    scenes = sorted(p for p in training.iterdir() if (p / "poses.txt").is_file())
    if not scenes:
        raise UsageError(f"no scene with poses.txt under {training}")
    return scenes


def gt_depth_files(scene: Path, dataset_name: str) -> dict[str, Path]:
    """Ground-truth depth files of a scene by frame name (empty without depth/)."""
    from datasets.depth_io import gt_depth_suffixes

    folder = scene / "depth"
    if not folder.is_dir():
        return {}
    suffixes = gt_depth_suffixes(dataset_name)
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in suffixes:
            files.setdefault(path.stem, path)
    return files


def predict_sequence(model: Any, frames: list[Path], opts: argparse.Namespace, device: Any,
                     gt_depth: dict[str, Path]) -> tuple[np.ndarray, dict | None]:
    """Run PoseNet on consecutive pairs and DepthNet on the frames that have GT.

    Streams the frames (only a batch of images is in memory). Returns the relative motions
    ``[N-1,4,4]`` ``T_{t→t+1}`` and the depth results of ``DepthEvaluator`` (None without GT).
    """
    import torch
    from tqdm import tqdm

    from datasets.depth_io import read_gt_depth, read_image
    from datasets.transforms import Resize, ToTensor
    from geometry import pose_vec2mat
    from losses.metrics import DepthEvaluator

    resize, to_tensor = Resize(opts.img_height, opts.img_width), ToTensor()
    identity_k = np.eye(3, dtype=np.float32)
    evaluator = DepthEvaluator(opts.dataset_name) if gt_depth else None
    motions: list[np.ndarray] = []
    pending: list[tuple[str, torch.Tensor]] = []  # frames of the batch, in order
    previous: torch.Tensor | None = None  # last frame of the previous batch

    def run() -> None:
        nonlocal previous
        x = torch.stack([t for _, t in pending]).to(device)
        seq = x if previous is None else torch.cat([previous.to(device)[None], x])
        if len(seq) > 1:
            vec = model.pose_net(seq[:-1], seq[1:])  # PoseNet(tgt=I_t, ref=I_{t+1})
            mats = pose_vec2mat(vec.double()).cpu().numpy()
            motions.extend(mats)
        if evaluator is not None:
            with_gt = [i for i, (name, _) in enumerate(pending) if name in gt_depth]
            if with_gt:
                depth = model(x[with_gt]).float().cpu()
                for k, i in enumerate(with_gt):
                    gt = torch.from_numpy(read_gt_depth(gt_depth[pending[i][0]],
                                                        opts.dataset_name))
                    evaluator.update(depth[k:k + 1], gt[None])
        previous = x[-1].cpu()
        pending.clear()

    with torch.inference_mode():
        for path in tqdm(frames, desc=frames[0].parent.name, unit="frame", leave=False):
            imgs, _, _ = resize([read_image(path)], identity_k, [])
            tensors, _, _ = to_tensor(imgs, identity_k, [])
            pending.append((path.stem, tensors[0]))
            if len(pending) == opts.infer_batch_size:
                run()
        if pending:
            run()
    rel = np.zeros((len(motions), 4, 4))
    rel[:, 3, 3] = 1.0
    if motions:
        rel[:, :3, :] = np.stack(motions)
    depth_results = evaluator.compute() if evaluator is not None else None
    return rel, depth_results


def trajectory_figures(gt: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    """ATE, KITTI RPE and frame-to-frame RPE of ``pred`` (similarity-aligned) against ``gt``."""
    from geometry.alignment import absolute_trajectory_error, frame_to_frame_rpe, kitti_rpe

    ate = absolute_trajectory_error(gt, pred, with_scale=True)
    rpe = kitti_rpe(gt, ate["aligned"])
    f2f = frame_to_frame_rpe(gt, ate["aligned"])
    return {"ate": ate["ate"], "scale": ate["scale"], "rpe_t": rpe["t_err"],
            "rpe_r": rpe["r_err"], "rpe_lengths": list(rpe["lengths"]),
            "rpe_pairs": rpe["num"], "f2f_t": f2f["trans_rmse"], "f2f_r": f2f["rot_mean"],
            "aligned": ate["aligned"]}


def evaluate_scene(model: Any, scene: Path, opts: argparse.Namespace, device: Any,
                   ) -> dict[str, Any]:
    """All figures of one scene (see the module docstring)."""
    from datasets.depth_io import DatasetError, list_images
    from geometry.alignment import chain_relative_poses, trajectory_distances

    frames = list_images(scene)
    gt = read_poses(scene / "poses.txt")
    if len(gt) != len(frames):
        raise DatasetError(f"{scene / 'poses.txt'} has {len(gt)} poses for {len(frames)} "
                           f"frames in {scene}")
    if len(frames) < 2:
        raise DatasetError(f"{scene}: need at least 2 frames to evaluate poses")
    motions, depth = predict_sequence(model, frames, opts, device,
                                      gt_depth_files(scene, opts.dataset_name))
    pred = chain_relative_poses(motions)
    result: dict[str, Any] = {
        "scene": scene.name, "frames": len(frames),
        "length_m": float(trajectory_distances(gt)[-1]),
        "prediction": trajectory_figures(gt, pred),
        "zero_motion": trajectory_figures(gt, np.tile(np.eye(4), (len(gt), 1, 1))),
        "gt": gt,
    }
    if depth is not None and depth["num_images"] > 0:
        mean, std = depth["ratio_mean"], depth["ratio_std"]
        result["depth_scale"] = {"ratio_mean": mean, "ratio_std": std,
                                 "spread": std / mean if mean > 0 else float("nan"),
                                 "abs_rel": depth["full"]["abs_rel"],
                                 "frames": depth["num_images"]}
    return result


def format_results(results: list[dict[str, Any]]) -> str:
    """The table eval_pose.py prints: per scene, the prediction and the zero-motion baseline."""
    header = (f"{'scene':<24} {'trajectory':<12} {'ATE (m)':>9} {'RPE t(%)':>9} "
              f"{'RPE r(°/100m)':>13} {'f2f t(m)':>9} {'f2f r(°)':>9} {'scale':>8}")
    lines = [header]
    for r in results:
        for key, label in (("prediction", "prediction"), ("zero_motion", "zero motion")):
            f = r[key]
            lines.append(f"{r['scene']:<24} {label:<12} {f['ate']:>9.4f} {f['rpe_t']:>9.2f} "
                         f"{f['rpe_r']:>13.2f} {f['f2f_t']:>9.4f} {f['f2f_r']:>9.3f} "
                         f"{f['scale']:>8.3f}")
    if len(results) > 1:
        for key, label in (("prediction", "prediction"), ("zero_motion", "zero motion")):
            mean = {m: float(np.mean([r[key][m] for r in results]))
                    for m in ("ate", "rpe_t", "rpe_r", "f2f_t", "f2f_r")}
            lines.append(f"{'mean':<24} {label:<12} {mean['ate']:>9.4f} {mean['rpe_t']:>9.2f} "
                         f"{mean['rpe_r']:>13.2f} {mean['f2f_t']:>9.4f} {mean['f2f_r']:>9.3f} "
                         f"{'':>8}")
    for r in results:
        lengths = r["prediction"]["rpe_lengths"]
        kind = ("KITTI 100-800 m" if lengths and lengths[0] >= 100 else
                "10-80 % of the trajectory")
        lines.append(f"{r['scene']}: {r['frames']} frames, {r['length_m']:.2f} m; RPE over "
                     f"{kind} ({r['prediction']['rpe_pairs']} sub-sequences)")
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
    import cv2

    from utils.io import encode_image, write_atomic

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


def _jsonable(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in results:
        item = {k: v for k, v in r.items() if k != "gt"}
        for key in ("prediction", "zero_motion"):
            item[key] = {k: v for k, v in r[key].items() if k != "aligned"}
        out.append(item)
    return out


def main(argv: list[str] | None = None) -> int:
    opts = finalize(build_parser().parse_args(argv))
    if not opts.dataset_dir:
        raise UsageError("--dataset_dir is required")
    if not opts.ckpt_path:
        raise UsageError("--ckpt_path is required")
    if opts.infer_batch_size < 1:
        raise UsageError("--infer_batch_size must be at least 1")
    scenes = find_scenes(Path(opts.dataset_dir), opts.scene)

    import torch

    from models.sc_depth import load_from_checkpoint, resolve_device

    device = resolve_device(opts.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {opts.device}: no CUDA GPU is available")
    model = load_from_checkpoint(opts.ckpt_path, device)
    results = [evaluate_scene(model, scene, opts, device) for scene in scenes]
    print(f"checkpoint: {opts.ckpt_path}  ({model.hparams['model_version']}, "
          f"{len(results)} scene(s), input {opts.img_height}x{opts.img_width})")
    print(format_results(results))
    if opts.plot:
        plot_trajectories(results, Path(opts.plot))
        print(f"trajectory plot: {opts.plot}")
    if opts.output_json:
        Path(opts.output_json).write_text(json.dumps(_jsonable(results), indent=2))
    return 0


if __name__ == "__main__":
    run_main(main, "eval_pose.py")
