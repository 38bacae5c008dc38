"""A dataset check that runs before any training, testing or inference starts.

It walks the SPEC §4 layout once and stops at the first user mistake with a one-line
`DatasetError` naming the file or scene, instead of a traceback from a worker process an
hour into training. Images are checked for truncation from their last bytes (JPEG end
marker, PNG IEND chunk) so the check stays cheap on large datasets; full decoding errors
are still caught by the readers.
"""

from __future__ import annotations

import argparse
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from datasets.depth_io import DatasetError, list_images, read_intrinsics

GT_SUFFIXES = (".png", ".npz", ".npy")


@dataclass
class DatasetSummary:
    """What the check found: scenes and their frame and sample counts."""

    train_scenes: dict[str, int] = field(default_factory=dict)   # scene -> frames
    train_samples: int = 0
    val_scenes: dict[str, int] = field(default_factory=dict)
    val_items: int = 0
    test_items: int = 0
    skipped: list[str] = field(default_factory=list)

    def describe(self) -> str:
        lines = [f"training: {len(self.train_scenes)} scenes, "
                 f"{sum(self.train_scenes.values())} frames, {self.train_samples} samples"]
        if self.val_scenes:
            lines.append(f"validation: {len(self.val_scenes)} scenes, {self.val_items} items")
        if self.test_items:
            lines.append(f"testing: {self.test_items} images")
        for name in self.skipped:
            lines.append(f"skipped (too short): {name}")
        lines.append("dataset check passed")
        return "\n".join(lines)


def check_image_file(path: Path) -> None:
    """Raise DatasetError if the file is empty or visibly truncated."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8)
            fh.seek(max(0, size - 16))
            tail = fh.read()
    except OSError as err:
        raise DatasetError(f"unreadable image {path}: {err.strerror}") from None
    if size == 0:
        raise DatasetError(f"empty image file {path}")
    if head[:2] == b"\xff\xd8" and b"\xff\xd9" not in tail:
        raise DatasetError(f"truncated JPEG {path} (no end-of-image marker)")
    if head[:8] == b"\x89PNG\r\n\x1a\n" and b"IEND" not in tail:
        raise DatasetError(f"truncated PNG {path} (no IEND chunk)")


def read_scene_list(path: Path) -> list[str]:
    if not path.is_file():
        raise DatasetError(f"missing scene list {path}")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def scene_frames(scene: Path, use_frame_index: bool) -> list[Path]:
    frames = list_images(scene)
    if not use_frame_index:
        return frames
    index_file = scene / "frame_index.txt"
    if not index_file.is_file():
        raise DatasetError(f"--use_frame_index: missing {index_file} "
                           "(make it with generate_valid_frame_index.py)")
    try:
        index = [int(v) for v in index_file.read_text().split()]
    except ValueError:
        raise DatasetError(f"malformed {index_file}: expected integers") from None
    bad = [i for i in index if not 0 <= i < len(frames)]
    if bad:
        raise DatasetError(f"{index_file}: index {bad[0]} out of range (scene has "
                           f"{len(frames)} frames)")
    return [frames[i] for i in index]


def _find_gt(folder: Path, stem: str) -> Path | None:
    for suffix in GT_SUFFIXES:
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    return None


def _check_scene(scene: Path, opts: argparse.Namespace, need_prior: bool,
                 need_depth: bool) -> list[Path]:
    if not scene.is_dir():
        raise DatasetError(f"scene {scene.name} is listed but {scene} does not exist")
    read_intrinsics(scene / "cam.txt")
    frames = scene_frames(scene, getattr(opts, "use_frame_index", False))
    for frame in frames:
        check_image_file(frame)
    if need_prior:
        prior_dir = scene / "leres_depth"
        # Every image of the scene has its prior (frame_index.txt only selects targets).
        stems = {f.stem for f in list_images(scene)}
        priors = {p.stem: p for p in list_images(prior_dir)} if prior_dir.is_dir() else {}
        missing = sorted(stems - priors.keys())
        if missing:
            raise DatasetError(f"V3 prior missing for frame {scene.name}/{missing[0]}: expected "
                               f"{prior_dir / (missing[0] + '.png')} (generate_pseudo_depth.py)")
        extra = sorted(priors.keys() - stems)
        if extra:
            raise DatasetError(f"V3 prior without a frame: {priors[extra[0]]}")
    if need_depth:
        for frame in frames:
            if _find_gt(scene / "depth", frame.stem) is None:
                raise DatasetError(f"ground-truth depth missing for validation frame {frame}: "
                                   f"expected {scene / 'depth' / frame.stem}.png|.npz|.npy")
    return frames


def samples_in(num_frames: int, opts: argparse.Namespace) -> int:
    """Targets with all references inside the scene (i ± k·s, s = 1 … (n−1)/2)."""
    reach = getattr(opts, "skip_frames", 1) * ((getattr(opts, "sequence_length", 3) - 1) // 2)
    return max(0, num_frames - 2 * reach)


def check_dataset(opts: argparse.Namespace, stage: str) -> DatasetSummary:
    """stage: "train" (training + validation scenes) or "test" (testing/)."""
    if not opts.dataset_dir:
        raise DatasetError("no --dataset_dir given")
    root = Path(opts.dataset_dir)
    if not root.is_dir():
        raise DatasetError(f"--dataset_dir: not a folder: {root}")
    if getattr(opts, "sequence_length", 3) < 3 or getattr(opts, "sequence_length", 3) % 2 == 0:
        raise DatasetError(f"--sequence_length must be odd and >= 3, got {opts.sequence_length}")
    summary = DatasetSummary()
    if stage == "train":
        _check_training(root / "training", opts, summary)
    elif stage == "test":
        _check_testing(root / "testing", summary)
    else:
        raise ValueError(f"unknown check stage {stage!r}")
    return summary


def _check_training(training: Path, opts: argparse.Namespace, summary: DatasetSummary) -> None:
    if not training.is_dir():
        raise DatasetError(f"missing folder {training} (expected DATASET/training/<scenes>)")
    need_prior = getattr(opts, "model_version", "v1") == "v3"
    for name in read_scene_list(training / "train.txt"):
        frames = _check_scene(training / name, opts, need_prior, need_depth=False)
        samples = samples_in(len(frames), opts)
        if samples == 0:
            warnings.warn(f"scene {name} has {len(frames)} frames, fewer than a sequence "
                          f"needs: skipped", stacklevel=2)
            summary.skipped.append(name)
            continue
        summary.train_scenes[name] = len(frames)
        summary.train_samples += samples
    if not summary.train_scenes:
        raise DatasetError(f"no training samples: every scene in {training / 'train.txt'} is "
                           "shorter than --sequence_length frames")
    depth_mode = getattr(opts, "val_mode", "depth") == "depth"
    for name in read_scene_list(training / "val.txt"):
        frames = _check_scene(training / name, opts, need_prior=False, need_depth=depth_mode)
        summary.val_scenes[name] = len(frames)
        summary.val_items += len(frames) if depth_mode else samples_in(len(frames), opts)
    if summary.val_scenes and summary.val_items == 0:
        raise DatasetError(f"no validation items in the scenes of {training / 'val.txt'}")


def _check_testing(testing: Path, summary: DatasetSummary) -> None:
    color = testing / "color"
    if not color.is_dir():
        raise DatasetError(f"missing folder {color} (expected DATASET/testing/color)")
    images = list_images(color)
    if not images:
        raise DatasetError(f"no images in {color}")
    seg_dir = testing / "seg_mask"
    for img in images:
        check_image_file(img)
        if _find_gt(testing / "depth", img.stem) is None:
            raise DatasetError(f"ground-truth depth missing for test image {img.name}: "
                               f"expected {testing / 'depth' / img.stem}.png|.npy|.npz")
        if seg_dir.is_dir() and not (seg_dir / f"{img.stem}.png").is_file():
            raise DatasetError(f"segmentation mask missing for test image {img.name}: "
                               f"expected {seg_dir / (img.stem + '.png')}")
    if seg_dir.is_dir() and not (seg_dir / "dynamic_colors.txt").is_file():
        raise DatasetError(f"missing {seg_dir / 'dynamic_colors.txt'} (lines 'R G B')")
    summary.test_items = len(images)
