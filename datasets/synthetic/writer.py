"""Writing a synthetic dataset: the layout SC-Depth reads, each file through its format in
``datasets.formats``, rendered in worker processes and moved into place at the end."""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from datasets.formats import (
    MOTION_MASK_DIR,
    PRIOR_DIR,
    PRIOR_MAX,
    encode_depth_png16,
    encode_motion_mask,
    encode_prior,
    write_dynamic_colors,
    write_intrinsics,
    write_poses,
    write_scene_list,
)
from datasets.registry import dataset_spec
from datasets.synthetic.raycast import render_frame
from datasets.synthetic.scene import (
    KINDS,
    MOTIONS,
    SyntheticScene,
    _intrinsics,
    build_scene,
    camera_motion,
)
from utils.io import staged_folder

# Colours of the moving objects in testing/seg_mask (RGB), one per object of a scene.
DYNAMIC_COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255), (0, 255, 255),
)
JPEG_QUALITY = 95
DEPTH_PNG_SCALE = dataset_spec("synthetic").png_scale  # millimetres


# --------------------------------------------------------------------------------------
# The LeReS-like prior
# --------------------------------------------------------------------------------------
def make_prior(depth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A relative-depth map made from GT ``depth`` ``[H,W]`` (metres, > 0) that is wrong the
    way a single-image network is: in inverse depth an unknown scale and shift, blurred
    depth boundaries, smooth low-frequency error and 1-2 patches pushed nearer or farther.
    Returns uint16 ``[H,W]`` (``formats.encode_prior``), larger = farther, maximum exactly
    PRIOR_MAX.

    There is deliberately no per-pixel noise: a network's output is smooth, and i.i.d. noise
    of even 1 % of the depth range swamps the neighbour differences that surface normals are
    made of (it put the prior's normals tens of degrees off the true ones, where a real
    prior's are close), which is not the imperfection V3 is meant to cope with."""
    H, W = depth.shape
    disp = 1.0 / np.maximum(depth.astype(np.float32), 1e-3)
    # errors are sized relative to the image's own inverse-depth range, as a network that
    # predicts normalised relative depth makes them (a wall seen head-on keeps its order)
    lo, hi = float(disp.min()), float(disp.max())
    span = max(hi - lo, 1e-3 * hi)
    d = (disp - lo) / span
    d = cv2.GaussianBlur(d, (0, 0), max(1.0, 0.006 * max(H, W)))  # soft depth edges
    low = cv2.resize(rng.standard_normal((4, 5)).astype(np.float32), (W, H),
                     interpolation=cv2.INTER_CUBIC)
    d = d + 0.04 * low
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    for _ in range(int(rng.integers(1, 3))):  # wrong regions, pushed nearer or farther
        cy, cx = rng.uniform(0.1, 0.9) * H, rng.uniform(0.1, 0.9) * W
        ry, rx = rng.uniform(0.06, 0.15) * H, rng.uniform(0.06, 0.15) * W
        inside = np.clip(1.5 - np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2), 0, 1)
        d = d + rng.choice([-1.0, 1.0]) * rng.uniform(0.1, 0.25) * inside
    disp = lo + span * d
    # the unknown affine map of a relative-depth network, in inverse depth
    scale = rng.uniform(0.5, 2.0)
    shift = rng.uniform(0.05, 0.3) * float(np.median(disp))
    disp = scale * (np.maximum(disp, 0.05 * lo) + shift)
    return encode_prior(1.0 / disp)


# --------------------------------------------------------------------------------------
# Dataset writer
# --------------------------------------------------------------------------------------
def default_test_stride(test_scenes: int, frames: int, target: int = 30) -> int:
    """Stride that gives about ``target`` test images (at least 1)."""
    return max(1, round(test_scenes * frames / target))


def _scene_kinds(n: int, motion: str, first: str) -> list[str]:
    if motion != "mixed":
        return [motion] * n
    other = KINDS[1] if first == KINDS[0] else KINDS[0]
    return [first if i % 2 == 0 else other for i in range(n)]


def _scene_seed(seed: int, split: str, index: int) -> int:
    code = {"train": 0, "val": 1, "test": 2}[split]
    return int(np.random.SeedSequence([seed, code, index]).generate_state(1)[0])


def _plan(seed: int, scenes: int, frames: int, val_scenes: int, test_scenes: int,
          motion: str, moving_objects: bool = True) -> list[dict[str, Any]]:
    plan = []
    for split, n, first in (("train", scenes, "driving"), ("val", val_scenes, "handheld"),
                            ("test", test_scenes, "driving")):
        for i, kind in enumerate(_scene_kinds(n, motion, first)):
            plan.append({"name": f"{split}_{i:03d}_{kind}", "split": split, "kind": kind,
                         "seed": _scene_seed(seed, split, i), "frames": frames,
                         "moving_objects": moving_objects})
    return plan


def _write_png(path: Path, array: np.ndarray) -> None:
    if not cv2.imwrite(str(path), array, [cv2.IMWRITE_PNG_COMPRESSION, 1]):
        raise OSError(f"could not write {path}")


def _write_jpg(path: Path, rgb: np.ndarray) -> None:
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY,
              cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
    if not cv2.imwrite(str(path), bgr, params):
        raise OSError(f"could not write {path}")


_SCENE_CACHE: dict[str, SyntheticScene] = {}


def _get_scene(entry: dict[str, Any], height: int, width: int) -> SyntheticScene:
    key = (f"{entry['name']}:{entry['seed']}:{height}x{width}:{entry['frames']}:"
           f"{entry.get('moving_objects', True)}")
    if key not in _SCENE_CACHE:
        if len(_SCENE_CACHE) >= 2:  # frames arrive scene by scene; keep memory bounded
            _SCENE_CACHE.pop(next(iter(_SCENE_CACHE)))
        _SCENE_CACHE[key] = build_scene(entry["kind"], entry["seed"], entry["frames"],
                                        height, width, entry["name"],
                                        entry.get("moving_objects", True))
    return _SCENE_CACHE[key]


def _render_task(task: tuple[dict[str, Any], int, int, int, str]) -> dict[str, Any]:
    """Render and write one frame; returns a few statistics for the summary."""
    entry, index, height, width, root = task
    scene = _get_scene(entry, height, width)
    frame = render_frame(scene, index)
    depth = frame.depth
    stats = {"name": entry["name"], "index": index, "depth_min": float(depth.min()),
             "depth_max": float(depth.max()), "dynamic_fraction": float(frame.dynamic.mean())}
    if index == 0:  # every scene renders frame 0: it carries the per-scene facts
        stats["poses"] = scene.relative_poses().reshape(-1, 12)
        stats["num_moving"] = scene.num_moving
    if entry["split"] == "test":
        out = Path(root) / "testing"
        stem = f"{entry['name']}_{index:06d}"
        _write_jpg(out / "color" / f"{stem}.jpg", frame.image)
        _write_png(out / "depth" / f"{stem}.png", encode_depth_png16(depth, DEPTH_PNG_SCALE))
        seg = np.zeros((height, width, 3), np.uint8)
        for k in scene.dynamic_objects:
            group = scene.objects[k].group
            seg[frame.object_id == 6 + k] = DYNAMIC_COLORS[group % len(DYNAMIC_COLORS)]
        _write_png(out / "seg_mask" / f"{stem}.png", cv2.cvtColor(seg, cv2.COLOR_RGB2BGR))
        valid = depth > 0.1
        med = np.median(depth[valid])
        stats["constant_abs_rel"] = float(np.mean(np.abs(depth[valid] - med) / depth[valid]))
    else:
        out = Path(root) / "training" / entry["name"]
        stem = f"{index:06d}"
        _write_jpg(out / f"{stem}.jpg", frame.image)
        _write_png(out / "depth" / f"{stem}.png", encode_depth_png16(depth, DEPTH_PNG_SCALE))
        prior_rng = np.random.default_rng([entry["seed"], index, 11])
        _write_png(out / PRIOR_DIR / f"{stem}.png", make_prior(depth, prior_rng))
        _write_png(out / MOTION_MASK_DIR / f"{stem}.png", encode_motion_mask(frame.dynamic))
    return stats


def _worker_init() -> None:
    # the pool already uses every core: one OpenCV thread per worker avoids oversubscription
    cv2.setNumThreads(1)


def _run_tasks(tasks: list[tuple], workers: int, bar: tqdm) -> Iterator[dict[str, Any]]:
    if workers <= 1:
        for task in tasks:
            yield _render_task(task)
            bar.update()
        return
    # not "fork": a forked child inherits the state of the parent's thread pools (OpenCV,
    # OpenMP of torch) and can deadlock; the fork server is a clean single-threaded process
    # that imports this module once, and workers fork from it cheaply
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
    else:
        ctx = multiprocessing.get_context("spawn")
    pool = ctx.Pool(workers, initializer=_worker_init)
    try:
        for stats in pool.imap_unordered(_render_task, tasks, chunksize=4):
            yield stats
            bar.update()
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


def _readme(summary: dict[str, Any]) -> str:
    lines = [
        "SC-Depth built-in synthetic dataset (datasets/synthetic.py)",
        "",
        f"seed {summary['seed']}, {summary['height']}x{summary['width']} pixels, "
        f"{summary['frames']} frames per scene, motion '{summary['motion']}'.",
        "Regenerate: python generate_synthetic_dataset.py --output_dir DIR "
        f"--seed {summary['seed']} --scenes {len(summary['train'])} "
        f"--frames {summary['frames']} --val_scenes {len(summary['val'])} "
        f"--test_scenes {summary['test_scenes']} --height {summary['height']} "
        f"--width {summary['width']} --motion {summary['motion']} "
        f"--test_stride {summary['test_stride']}"
        + ("" if summary.get("moving_objects", True) else " --static"),
        "",
        "Ray-cast scenes with exact ground truth: 'driving' (street, KITTI-like, depth "
        "2-60 m, forward motion), 'handheld' (room, depth 0.5-8 m, large rotations about "
        "every axis) and 'nyu' (the same rooms, the camera panning and tilting with about "
        "2 cm of translation a frame). "
        + ("1-3 objects per scene move on their own." if summary.get("moving_objects", True)
           else "Nothing moves but the camera (--static)."),
        "",
        "training/<scene>/NNNNNN.jpg   RGB frames (JPEG quality 95)",
        "training/<scene>/cam.txt      3x3 intrinsics K (pixel centres at integer (u, v))",
        "training/<scene>/poses.txt    camera-to-world 3x4 per frame, row-major, relative to",
        "                              the first frame (KITTI odometry format, OpenCV axes)",
        "training/<scene>/depth/       GT z-depth, 16-bit PNG in millimetres (0 = invalid)",
        "training/<scene>/leres_depth/ relative depth prior (imperfect on purpose), 16-bit PNG,",
        "                              larger = farther, maximum 60000 per image",
        "training/<scene>/dynamic/     uint8 mask, 255 where a moving object is seen",
        "training/train.txt, val.txt   scene folder names (validation scenes live in training/)",
        "testing/color, testing/depth  test frames and GT depth (16-bit PNG, millimetres)",
        "testing/seg_mask              moving objects painted in the colours of",
        "                              seg_mask/dynamic_colors.txt ('R G B' a line), rest black",
        "summary.json                  parameters and per-scene statistics",
        "",
        "Use --dataset_name synthetic (depth PNG / 1000).",
        "",
        "Scenes:",
    ]
    for s in summary["scenes"]:
        motion = s["camera_motion"]
        lines.append(f"  {s['name']:<24} {s['split']:<5} {s['kind']:<8} seed {s['seed']}, "
                     f"{s['num_dynamic_objects']} moving objects, depth "
                     f"{s['depth_min']:.2f}-{s['depth_max']:.2f} m, camera "
                     f"{motion['rotation_deg']:.1f}° and {motion['translation_cm']:.1f} cm "
                     "a frame")
    return "\n".join(lines) + "\n"


def generate_dataset(output_dir: str | Path, seed: int = 0, scenes: int = 6, frames: int = 60,
                     val_scenes: int = 1, test_scenes: int = 2, height: int = 256,
                     width: int = 320, motion: str = "mixed", test_stride: int | None = None,
                     progress: bool = True, overwrite: bool = False,
                     workers: int | None = None, moving_objects: bool = True
                     ) -> dict[str, Any]:
    """Render the dataset into ``output_dir`` (layout in the module docstring).

    The files are written into a temporary folder next to ``output_dir`` that is renamed at
    the end, so a failure or Ctrl-C leaves nothing half-written. motion: "mixed" (scenes
    alternate driving / handheld), "driving", "handheld" or "nyu". test_stride: keep every n-th
    frame of the test scenes (default: about 30 test images). workers: processes (default:
    up to 2 for large sets, 1 for small ones). moving_objects=False renders the same scenes
    with nothing moving but the camera (for tools whose baseline assumes a static world,
    such as RGB-D odometry). Raises FileExistsError when ``output_dir`` is not empty and
    ``overwrite`` is False. Returns the summary (also in summary.json).
    """
    if motion not in MOTIONS:
        raise ValueError(f"motion must be one of {MOTIONS}, got {motion!r}")
    if scenes < 1 or frames < 2 or val_scenes < 0 or test_scenes < 0:
        raise ValueError("need scenes >= 1, frames >= 2, val_scenes >= 0, test_scenes >= 0")
    if height < 8 or width < 8:
        raise ValueError(f"image size too small: {height}x{width}")
    if test_stride is None:
        test_stride = default_test_stride(test_scenes, frames)
    if test_stride < 1:
        raise ValueError(f"test_stride must be >= 1, got {test_stride}")
    settings = {"seed": seed, "height": height, "width": width, "frames": frames,
                "motion": motion, "test_stride": test_stride, "test_scenes": test_scenes,
                "moving_objects": moving_objects}
    plan = _plan(seed, scenes, frames, val_scenes, test_scenes, motion, moving_objects)
    if workers is None:
        big = len(plan) * frames * height * width > 2_000_000
        workers = min(2, os.cpu_count() or 1) if big else 1
    try:
        with staged_folder(output_dir, overwrite) as tmp:
            return _write(tmp, plan, settings, workers, progress)
    finally:
        _SCENE_CACHE.clear()


def _write(tmp: Path, plan: list[dict[str, Any]], settings: dict[str, Any], workers: int,
           progress: bool) -> dict[str, Any]:
    """Render ``plan`` into the folder ``tmp``; returns the summary (``settings`` first)."""
    height, width, frames = settings["height"], settings["width"], settings["frames"]
    tasks = []
    for entry in plan:
        step = settings["test_stride"] if entry["split"] == "test" else 1
        tasks += [(entry, i, height, width, str(tmp)) for i in range(0, frames, step)]
    train_dir, test_dir = tmp / "training", tmp / "testing"
    for entry in plan:
        if entry["split"] == "test":
            continue
        d = train_dir / entry["name"]
        for sub in ("depth", PRIOR_DIR, MOTION_MASK_DIR):
            (d / sub).mkdir(parents=True, exist_ok=True)
        K = _intrinsics(entry["kind"], height, width)
        write_intrinsics(d / "cam.txt", K)
    train_dir.mkdir(parents=True, exist_ok=True)
    for sub in ("color", "depth", "seg_mask"):
        (test_dir / sub).mkdir(parents=True, exist_ok=True)

    stats: dict[str, list[dict[str, Any]]] = {e["name"]: [] for e in plan}
    with tqdm(total=len(tasks), desc="rendering", unit="frame", disable=not progress) as bar:
        for s in _run_tasks(tasks, workers, bar):
            stats[s["name"]].append(s)

    scene_info = []
    n_colours = 0
    for entry in plan:
        ss = stats[entry["name"]]
        first = next(s for s in ss if s["index"] == 0)
        n_dyn = first["num_moving"]
        info = {**entry, "K": _intrinsics(entry["kind"], height, width).tolist(),
                "num_dynamic_objects": n_dyn,
                "depth_min": min(s["depth_min"] for s in ss),
                "depth_max": max(s["depth_max"] for s in ss),
                "dynamic_fraction": float(np.mean([s["dynamic_fraction"] for s in ss])),
                "camera_motion": camera_motion(first["poses"].reshape(-1, 3, 4))}
        if entry["split"] == "test":
            n_colours = max(n_colours, n_dyn)
            info["test_frames"] = sorted(s["index"] for s in ss)
        else:
            write_poses(train_dir / entry["name"] / "poses.txt",
                        first["poses"].reshape(-1, 3, 4))
        scene_info.append(info)
    colours = [DYNAMIC_COLORS[i % len(DYNAMIC_COLORS)] for i in range(max(n_colours, 1))]
    write_dynamic_colors(test_dir / "seg_mask" / "dynamic_colors.txt", colours)
    names = {split: [e["name"] for e in plan if e["split"] == split]
             for split in ("train", "val", "test")}
    write_scene_list(train_dir / "train.txt", names["train"])
    write_scene_list(train_dir / "val.txt", names["val"])
    test_stats = [s for n in names["test"] for s in stats[n]]
    summary = {
        **settings,
        "train": names["train"], "val": names["val"], "test": names["test"],
        "num_test_images": len(test_stats),
        "dynamic_colors": [list(c) for c in colours],
        "depth_png_scale": DEPTH_PNG_SCALE, "prior_max": PRIOR_MAX,
        "constant_depth_abs_rel": (float(np.mean([s["constant_abs_rel"]
                                                  for s in test_stats]))
                                   if test_stats else None),
        "scenes": scene_info,
    }
    (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (tmp / "README.txt").write_text(_readme(summary))
    return summary


def load_scene(dataset_dir: str | Path, name: str) -> SyntheticScene:
    """Rebuild scene ``name`` of a generated dataset (from its summary.json), e.g. to render
    a frame without the moving objects."""
    summary = json.loads((Path(dataset_dir) / "summary.json").read_text())
    for entry in summary["scenes"]:
        if entry["name"] == name:
            return build_scene(entry["kind"], entry["seed"], entry["frames"],
                               summary["height"], summary["width"], name,
                               entry.get("moving_objects", True))
    raise KeyError(f"no scene {name!r} in {dataset_dir}/summary.json")
