"""A monocular video as a pseudo-RGB-D sequence that RGB-D trackers read (TUM RGB-D layout),
and the scale it is written at.

The V1 paper's claim is that its depth is consistent enough over a video to stand in for a
depth sensor in RGB-D SLAM. Only one scale may then convert the whole video to metres: a
scale fixed per frame would hide the very drift the method is about. The scale comes from
the user (metres per network unit), from the ground-truth depth of the first frame, or from
the camera's known height above a ground plane seen in the first frame.

Layout written by :func:`write_rgbd_sequence` (what ORB-SLAM2's ``rgbd_tum`` and Open3D read)::

    OUT/rgb/000000.png …          8-bit RGB at the output size
    OUT/depth/000000.png …        16-bit depth, metres × depth_factor (0: no depth)
    OUT/rgb.txt, depth.txt        "timestamp file" lines
    OUT/associations.txt          "t rgb/x.png t depth/x.png" lines
    OUT/cam.txt                   K at the output size
    OUT/orbslam2_rgbd.yaml        ORB-SLAM2 RGB-D settings (camera, DepthMapFactor, ThDepth)
    OUT/export.json               the scale and how it was fixed, the scale consistency, …
    OUT/depth_gt/, groundtruth.txt  with a dataset scene as input: GT depth, GT trajectory
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import cv2
import numpy as np
import torch
from tqdm import tqdm

from datasets.formats import (
    encode_depth_png16,
    encode_image,
    read_gt_depth,
    read_intrinsics,
    write_intrinsics,
    write_tum_trajectory,
)
from datasets.frames import Frame
from datasets.registry import dataset_spec
from geometry import scale_intrinsics
from losses.metrics import DepthEvaluator
from tools.predictor import Predictor, batched, resize_depth
from utils.errors import UsageError
from utils.io import staged_folder, write_atomic
from utils.pointcloud import depth_to_points

__all__ = ["DEPTH_FACTOR", "ODOMETRY_TERMS", "RgbdExport", "fuse_sequence",
           "ground_plane_height", "open3d_or_none", "orbslam2_settings", "read_associations",
           "read_sequence_info", "track_sequence", "write_rgbd_sequence"]

DEPTH_FACTOR = 5000.0  # TUM RGB-D: 16-bit depth value per metre
# ORB-SLAM2 derives its close/far depth threshold as ThDepth · bf / fx; the settings use a
# virtual baseline of this many metres (about the Kinect's, as in the TUM settings files).
VIRTUAL_BASELINE = 0.08


@dataclass
class RgbdExport:
    """What an export needs besides the frames.

    K: ``[3,3]`` intrinsics of the input frames at their own size. depth_scale: metres per
    network unit (None: fixed from ``scale_from``). scale_from: "given", "gt" (the first
    frame's GT depth, needs ``gt_depth``) or "camera_height" (needs ``camera_height``).
    gt_depth: frame name -> GT depth file of ``dataset_name``'s encoding (optional; each is
    read when its frame comes up, scored and exported to ``depth_gt/``). gt_poses: ``[N,4,4]``
    camera-to-world of all N input frames, readable or not (optional).
    """

    K: np.ndarray
    fps: float
    depth_scale: float | None = None
    scale_from: str = "given"
    camera_height: float | None = None
    gt_depth: dict[str, Path] = field(default_factory=dict)
    gt_poses: np.ndarray | None = None
    depth_factor: float = DEPTH_FACTOR
    output_resolution: str = "network"
    close_depth: float | None = None
    dataset_name: str = "synthetic"


def ground_plane_height(depth: np.ndarray, K: np.ndarray, iterations: int = 200,
                        inlier_fraction: float = 0.02, max_tilt_deg: float = 60.0,
                        seed: int = 0) -> float:
    """Distance from the camera to the ground plane seen in ``depth`` ``[H,W]`` (its units),
    with intrinsics ``K`` ``[3,3]`` of that size.

    RANSAC on the back-projected points of the image's lower third: a plane is kept only if
    its normal is within ``max_tilt_deg`` of the camera's down axis (+y, OpenCV axes: a camera
    pitched down by up to that angle) and it lies below the camera. The inlier distance is
    ``inlier_fraction`` times the median depth there. Raises UsageError when no such plane is
    found.
    """
    H = depth.shape[0]
    lower = np.where(np.arange(H)[:, None] >= 2 * H // 3, depth, 0.0)
    points = depth_to_points(lower, K)[0].astype(np.float64)  # [N,3]
    if len(points) < 3:
        raise UsageError("no depth in the lower third of the first frame to find the ground")
    rng = np.random.default_rng(seed)
    tolerance = inlier_fraction * float(np.median(points[:, 2]))
    best, best_count = None, 0
    for _ in range(iterations):
        a, b, c = points[rng.choice(len(points), 3, replace=False)]
        normal = np.cross(b - a, c - a)
        if np.linalg.norm(normal) < 1e-12:
            continue
        normal /= np.linalg.norm(normal)
        if normal[1] < 0:
            normal = -normal
        offset = -normal @ a  # plane: normal·x + offset = 0; the camera is at x = 0
        if normal[1] < np.cos(np.deg2rad(max_tilt_deg)) or offset >= 0:
            continue  # not a floor below the camera
        count = int((np.abs(points @ normal + offset) < tolerance).sum())
        if count > best_count:
            best, best_count = (normal, offset), count
    if best is None or best_count < 0.2 * len(points):
        raise UsageError("no ground plane in the lower third of the first frame: give "
                         "--depth_scale instead of --camera_height")
    normal, offset = best
    inliers = points[np.abs(points @ normal + offset) < tolerance]
    # refine: least-squares plane through the inliers
    centre = inliers.mean(axis=0)
    normal = np.linalg.svd(inliers - centre)[2][-1]
    return float(abs(normal @ centre))


def orbslam2_settings(K: np.ndarray, width: int, height: int, fps: float,
                      depth_factor: float, close_depth: float) -> str:
    """The ORB-SLAM2 RGB-D settings file (OpenCV YAML) for these intrinsics (no
    distortion), depth factor and close-depth threshold (metres)."""
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    lines = [
        "%YAML:1.0",
        "# Written by export_rgbd.py: a pseudo-RGB-D sequence of predicted depth.",
        f"Camera.fx: {fx:.6f}", f"Camera.fy: {fy:.6f}", f"Camera.cx: {cx:.6f}",
        f"Camera.cy: {cy:.6f}",
        "Camera.k1: 0.0", "Camera.k2: 0.0", "Camera.p1: 0.0", "Camera.p2: 0.0",
        f"Camera.width: {width}", f"Camera.height: {height}", f"Camera.fps: {fps:.6f}",
        "# virtual baseline (m) times fx: ORB-SLAM2's close/far threshold is ThDepth * bf / fx",
        f"Camera.bf: {VIRTUAL_BASELINE * fx:.6f}",
        "Camera.RGB: 1",
        f"ThDepth: {close_depth / VIRTUAL_BASELINE:.6f}",
        f"DepthMapFactor: {depth_factor:.6f}",
        "ORBextractor.nFeatures: 1000", "ORBextractor.scaleFactor: 1.2",
        "ORBextractor.nLevels: 8", "ORBextractor.iniThFAST: 20", "ORBextractor.minThFAST: 7",
        "Viewer.KeyFrameSize: 0.05", "Viewer.KeyFrameLineWidth: 1",
        "Viewer.GraphLineWidth: 0.9", "Viewer.PointSize: 2", "Viewer.CameraSize: 0.08",
        "Viewer.CameraLineWidth: 3", "Viewer.ViewpointX: 0", "Viewer.ViewpointY: -0.7",
        "Viewer.ViewpointZ: -1.8", "Viewer.ViewpointF: 500",
    ]
    return "\n".join(lines) + "\n"


def read_associations(folder: Path) -> list[tuple[float, Path, Path]]:
    """``associations.txt`` of a TUM RGB-D folder: (timestamp, rgb file, depth file)."""
    path = Path(folder) / "associations.txt"
    if not path.is_file():
        raise UsageError(f"no associations.txt in {folder} (write one with export_rgbd.py)")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 4:
            raise UsageError(f"{path}:{number}: expected 't rgb t depth', got {line!r}")
        rows.append((float(parts[0]), Path(folder) / parts[1], Path(folder) / parts[3]))
    return rows


def _scale_ratio(pred: np.ndarray, gt: np.ndarray, dataset_name: str) -> float:
    """median(gt) / median(pred) over the GT's valid pixels (the metrics' rule)."""
    evaluator = DepthEvaluator(dataset_spec(dataset_name))
    evaluator.update(torch.from_numpy(pred)[None, None], torch.from_numpy(gt)[None])
    return float(evaluator.compute()["ratio_mean"])


def _depth_png(depth_m: np.ndarray, factor: float) -> tuple[bytes, int]:
    """16-bit PNG of metres × factor, and how many pixels lie beyond its range: they are
    written as 0 (no depth), as a sensor reports what it cannot measure, not saturated to
    a wrong depth."""
    over = depth_m > 65535 / factor
    return (encode_image(encode_depth_png16(np.where(over, 0.0, depth_m), factor), ".png"),
            int(over.sum()))


def _predict(predictor: Predictor, frames: Iterator[Frame], batch_size: int,
             skipped: list[str]) -> Iterator[tuple[int, Frame, np.ndarray]]:
    """(index in the input, frame, depth at network size) for every readable frame, in
    order; why each unreadable one was left out goes to ``skipped``."""

    def readable() -> Iterator[tuple[int, Frame]]:
        for index, frame in enumerate(frames):
            if frame.image is None:
                skipped.append(frame.error or frame.name)
            else:
                yield index, frame

    for batch in batched(readable(), batch_size):
        x = torch.stack([predictor.prepare(f.image) for _, f in batch])
        for (index, frame), depth in zip(batch, predictor.depth(x)[:, 0].numpy()):
            yield index, frame, depth


def _first_scale(depth: np.ndarray, gt: np.ndarray | None, K: np.ndarray, name: str,
                 export: RgbdExport) -> float:
    """Metres per network unit, fixed on the first frame from its GT depth or from the
    camera's height above the ground it sees."""
    if export.scale_from == "gt":
        if gt is None:
            raise UsageError(f"no GT depth for the first frame {name}: give --depth_scale or "
                             "--camera_height")
        scale = _scale_ratio(depth, gt, export.dataset_name)
    else:
        scale = export.camera_height / ground_plane_height(depth, K)
    if not (np.isfinite(scale) and scale > 0):
        raise UsageError(f"cannot fix the scale on the first frame {name} (its GT depth has no "
                         "valid pixel, or its depth none): give --depth_scale")
    return float(scale)


def write_rgbd_sequence(predictor: Predictor, frames: Iterator[Frame], count: int,
                        output_dir: Path, export: RgbdExport, batch_size: int = 4,
                        overwrite: bool = False) -> dict[str, Any]:
    """Predict every frame and write the TUM RGB-D folder ``output_dir`` (module docstring),
    all of it or nothing. Returns what ``export.json`` holds."""
    h, w = predictor.height, predictor.width
    with staged_folder(output_dir, overwrite) as tmp:
        for sub in ("rgb", "depth") + (("depth_gt",) if export.gt_depth else ()):
            (tmp / sub).mkdir()
        names: list[str] = []
        indices: list[int] = []  # of the written frames in the input (for time and poses)
        skipped: list[str] = []
        consistency = DepthEvaluator(dataset_spec(export.dataset_name))
        scale = export.depth_scale
        close_depth = export.close_depth
        size = K_out = None
        beyond = pixels = 0
        for index, frame, depth in tqdm(_predict(predictor, frames, batch_size, skipped),
                                        total=count or None, desc="frames", unit="frame"):
            H, W = frame.image.shape[:2]
            if size is None:
                size = (h, w) if export.output_resolution == "network" else (H, W)
                K_out = scale_intrinsics(np.asarray(export.K, np.float64), size[1] / W,
                                         size[0] / H)
            depth = resize_depth(depth, *size)
            gt_file = export.gt_depth.get(frame.name)
            gt = read_gt_depth(gt_file, export.dataset_name) if gt_file is not None else None
            if scale is None:  # fixed once, on the first frame
                scale = _first_scale(depth, gt, K_out, frame.name, export)
            depth_m = depth * scale
            out = f"{len(names):06d}.png"
            if gt is not None:
                consistency.update(torch.from_numpy(depth_m)[None, None],
                                   torch.from_numpy(gt)[None])
                gt_out = cv2.resize(gt, size[::-1], interpolation=cv2.INTER_NEAREST)
                (tmp / "depth_gt" / out).write_bytes(_depth_png(gt_out, export.depth_factor)[0])
            rgb = cv2.resize(frame.image, size[::-1], interpolation=cv2.INTER_AREA)
            (tmp / "rgb" / out).write_bytes(
                encode_image(np.clip(rgb + 0.5, 0, 255).astype(np.uint8), ".png"))
            png, over = _depth_png(depth_m, export.depth_factor)
            (tmp / "depth" / out).write_bytes(png)
            beyond += over
            pixels += depth_m.size
            if close_depth is None:  # ORB-SLAM2's close points: up to twice the median
                close_depth = 2.0 * float(np.median(depth_m))
            names.append(frame.name)
            indices.append(index)
        if not names:
            raise UsageError("no frame could be read: " + "; ".join(skipped[:3]))
        # a skipped frame leaves a gap in time rather than shifting the later frames
        stamps = [i / export.fps for i in indices]
        files = [f"{i:06d}.png" for i in range(len(names))]
        listing = "".join(f"{t:.6f} rgb/{f}\n" for t, f in zip(stamps, files))
        write_atomic(tmp / "rgb.txt", "# timestamp filename\n" + listing)
        write_atomic(tmp / "depth.txt", "# timestamp filename\n" + listing.replace(
            " rgb/", " depth/"))
        write_atomic(tmp / "associations.txt", "".join(
            f"{t:.6f} rgb/{f} {t:.6f} depth/{f}\n" for t, f in zip(stamps, files)))
        write_intrinsics(tmp / "cam.txt", K_out)
        write_atomic(tmp / "orbslam2_rgbd.yaml", orbslam2_settings(
            K_out, size[1], size[0], export.fps, export.depth_factor, close_depth))
        if export.gt_poses is not None:
            write_tum_trajectory(tmp / "groundtruth.txt", export.gt_poses[indices], stamps)
        scored = consistency.compute()
        drift = scored if scored["num_images"] else None
        info = {
            "frames": len(names), "names": names, "skipped": skipped, "size": list(size),
            "fps": export.fps, "depth_factor": export.depth_factor, "depth_scale": scale,
            "scale_from": {"given": "--depth_scale",
                           "gt": f"GT depth of the first frame {names[0]}",
                           "camera_height": f"a ground plane {export.camera_height} m below "
                                            "the camera in the first frame"}[
                export.scale_from],
            "close_depth_m": close_depth,
            "beyond_range_share": beyond / pixels,
            # GT/prediction median ratios of the frames under the one scale: their mean and
            # std / mean, the scale drift (0 when the depth is consistent over the video)
            "scale_consistency": None if drift is None else {
                "frames": drift["num_images"], "ratio_mean": drift["ratio_mean"],
                "drift": drift["ratio_std"] / drift["ratio_mean"]},
        }
        write_atomic(tmp / "export.json", json.dumps(info, indent=1) + "\n")
    return info


def open3d_or_none() -> ModuleType | None:
    """The open3d module, or None when it is not installed (it is optional)."""
    try:
        import open3d
    except ImportError:
        return None
    return open3d


def _require_open3d() -> ModuleType:
    """The open3d module, or a one-line UsageError saying how to install it."""
    o3d = open3d_or_none()
    if o3d is None:
        raise UsageError("tracking needs Open3D: pip install open3d (docs/tools.md, RGB-D "
                         "tracking, says which system library it needs)")
    return o3d


def read_sequence_info(folder: Path) -> tuple[np.ndarray, float, list[tuple[float, Path, Path]]]:
    """K ``[3,3]`` (cam.txt), the depth factor (export.json, else TUM's) and the associated
    frames of a TUM RGB-D folder."""
    folder = Path(folder)
    info_path = folder / "export.json"
    factor = (json.loads(info_path.read_text())["depth_factor"] if info_path.is_file()
              else DEPTH_FACTOR)
    return read_intrinsics(folder / "cam.txt"), float(factor), read_associations(folder)


ODOMETRY_TERMS = ("hybrid", "color")


def track_sequence(folder: Path, depth_dir: str = "depth", constant_depth: float | None = None,
                   depth_max: float = 30.0, depth_diff_max: float = 0.15,
                   term: str = "hybrid", progress: bool = True) -> tuple[np.ndarray, int]:
    """Frame-to-frame RGB-D odometry (Open3D) over a TUM RGB-D folder, with the depth of
    ``depth_dir`` (``depth``, ``depth_gt``) or, with ``constant_depth`` (metres), the same
    depth everywhere. term: "hybrid" (photometric + geometric, Open3D's best on sensor
    depth) or "color" (photometric only: depth serves only to warp, so its errors weigh
    less).

    Returns the camera-to-world trajectory ``[N,4,4]`` (frame 0 at the origin) and the number
    of frame pairs Open3D could not register (their motion is taken as zero).
    """
    from geometry.alignment import chain_relative_poses

    o3d = _require_open3d()
    K, factor, frames = read_sequence_info(folder)
    first = cv2.imread(str(frames[0][1]))
    H, W = first.shape[:2]
    intrinsic = o3d.camera.PinholeCameraIntrinsic(W, H, K[0, 0], K[1, 1], K[0, 2], K[1, 2])
    option = o3d.pipelines.odometry.OdometryOption(depth_diff_max=depth_diff_max,
                                                   depth_min=0.0, depth_max=depth_max)
    if term not in ODOMETRY_TERMS:
        raise ValueError(f"term must be one of {ODOMETRY_TERMS}, got {term!r}")
    jacobian = (o3d.pipelines.odometry.RGBDOdometryJacobianFromHybridTerm() if term == "hybrid"
                else o3d.pipelines.odometry.RGBDOdometryJacobianFromColorTerm())

    def rgbd(rgb: Path, depth: Path) -> Any:  # an o3d.geometry.RGBDImage
        color = o3d.io.read_image(str(rgb))
        if constant_depth is not None:
            values = np.full((H, W), round(constant_depth * factor), np.uint16)
            depth_image = o3d.geometry.Image(values)
        else:
            depth_image = o3d.io.read_image(str(depth.parent.parent / depth_dir / depth.name))
        return o3d.geometry.RGBDImage.create_from_color_and_depth(
            color, depth_image, depth_scale=factor, depth_trunc=depth_max,
            convert_rgb_to_intensity=True)

    motions, failures = [], 0
    guess = np.eye(4)  # constant velocity: the last motion is the next one's first guess
    previous = rgbd(frames[0][1], frames[0][2])
    for _, rgb, depth in tqdm(frames[1:], desc=f"odometry ({constant_depth or depth_dir})",
                              unit="frame", disable=not progress):
        current = rgbd(rgb, depth)
        # Open3D's transformation maps the source frame's points into the target's: with
        # source = frame t and target = frame t+1 it is T_{t→t+1}.
        ok, T, _ = o3d.pipelines.odometry.compute_rgbd_odometry(
            previous, current, intrinsic, guess, jacobian, option)
        T = np.asarray(T)
        if not ok or not np.isfinite(T).all():  # Open3D may report success with NaNs
            failures += 1
            T = np.eye(4)
        motions.append(T)
        guess = T
        previous = current
    return chain_relative_poses(np.asarray(motions).reshape(-1, 4, 4)), failures


def fuse_sequence(folder: Path, poses: np.ndarray, path: Path, voxel: float = 0.02,
                  depth_max: float = 30.0) -> Path:
    """TSDF-fuse the frames of a TUM RGB-D folder at camera-to-world ``poses`` ``[N,4,4]``
    into a coloured triangle mesh, written as ``.ply`` (voxel size in metres).

    Open3D's sparse voxel-block grid (its legacy ScalableTSDFVolume extracted nothing here).
    """
    o3d = _require_open3d()
    import open3d.core as o3c

    K, factor, frames = read_sequence_info(folder)
    grid = o3d.t.geometry.VoxelBlockGrid(
        attr_names=("tsdf", "weight", "color"),
        attr_dtypes=(o3c.float32, o3c.float32, o3c.float32), attr_channels=(1, 1, 3),
        voxel_size=voxel, block_resolution=16, block_count=50000, device=o3c.Device("CPU:0"))
    intrinsic = o3c.Tensor(np.asarray(K, np.float64))
    for (_, rgb, depth_path), pose in zip(frames, poses):
        depth = o3d.t.io.read_image(str(depth_path))
        extrinsic = o3c.Tensor(np.linalg.inv(pose))  # world -> camera
        blocks = grid.compute_unique_block_coordinates(depth, intrinsic, extrinsic, factor,
                                                       depth_max)
        grid.integrate(blocks, depth, o3d.t.io.read_image(str(rgb)), intrinsic, extrinsic,
                       factor, depth_max)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not o3d.t.io.write_triangle_mesh(str(path), grid.extract_triangle_mesh()):
        raise OSError(f"could not write {path}")
    return path
