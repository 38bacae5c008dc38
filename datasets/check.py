"""A dataset check that runs before any training or testing starts (`--check_only` alone).

It walks the dataset layout once, with the same helpers the datasets use to build their
sample lists (`datasets.formats`), and stops at the first user
mistake with a one-line `DatasetError` naming the file or scene, instead of a traceback
from a worker process an hour into training:

- a scene named in ``train.txt``/``val.txt`` that does not exist, a missing scene list;
- a missing or malformed ``cam.txt``, a bad ``frame_index.txt``;
- an empty, unreadable, truncated or non-JPEG/PNG image;
- a V3 prior missing for a target frame, or a prior without a frame;
- ground-truth depth missing for a validation (or test) frame, or without a frame;
- a scene shorter than a sample (warned and skipped; an error if no scene is left).

Images are checked from their first and last bytes (signature, JPEG end-of-image marker,
PNG IEND chunk), which stays cheap on large datasets; the first frame of every scene is
also decoded in full. Decoding errors of the other frames are still caught by the readers.
"""

from __future__ import annotations

import argparse
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from datasets.formats import (
    PRIOR_DIR,
    PRIOR_SUFFIXES,
    DatasetError,
    check_image_file,
    gt_depth_suffixes,
    list_images,
    pair_by_name,
    read_dynamic_colors,
    read_frame_index,
    read_image,
    read_intrinsics,
    scene_dirs,
)

__all__ = ["DatasetSummary", "check_dataset", "samples_in"]


@dataclass
class DatasetSummary:
    """What the check found: scenes with their frame counts, and sample counts."""

    train_scenes: dict[str, int] = field(default_factory=dict)   # scene -> frames used
    train_samples: int = 0
    val_scenes: dict[str, int] = field(default_factory=dict)
    val_items: int = 0       # frames with GT (val_mode depth) or snippets (val_mode photo)
    test_items: int = 0
    skipped: list[str] = field(default_factory=list)  # scenes too short for a sample

    def describe(self) -> str:
        """A few lines for `--check_only`."""
        lines = []
        if self.train_scenes:
            lines.append(f"training: {len(self.train_scenes)} scenes, "
                         f"{sum(self.train_scenes.values())} frames, "
                         f"{self.train_samples} samples")
        if self.val_scenes:
            lines.append(f"validation: {len(self.val_scenes)} scenes, "
                         f"{sum(self.val_scenes.values())} frames, {self.val_items} samples")
        if self.test_items:
            lines.append(f"testing: {self.test_items} images")
        lines.extend(f"skipped (too short): {name}" for name in self.skipped)
        lines.append("dataset check passed")
        return "\n".join(lines)


def samples_in(num_frames: int, opts: argparse.Namespace) -> int:
    """Targets with all references inside the scene (i ± k·s, s = 1 … (n−1)/2)."""
    return max(0, num_frames - 2 * _reach(opts))


def _reach(opts: argparse.Namespace) -> int:
    return opts.skip_frames * ((opts.sequence_length - 1) // 2)


def check_dataset(opts: argparse.Namespace, stage: str) -> DatasetSummary:
    """Check the dataset of ``opts`` and count what a run will use.

    ``stage``: "train" (``training/``: the scenes of train.txt and val.txt; uses
    ``dataset_dir``, ``dataset_name``, ``model_version`` (v3 needs priors),
    ``sequence_length``, ``skip_frames``, ``use_frame_index`` and ``val_mode``) or "test"
    (``testing/``; uses ``dataset_dir`` and ``dataset_name``).
    Raises DatasetError (one line, naming the file or scene) at the first problem.
    """
    if not opts.dataset_dir:
        raise DatasetError("no --dataset_dir given")
    root = Path(opts.dataset_dir)
    if not root.is_dir():
        raise DatasetError(f"--dataset_dir: not a folder: {root}")
    summary = DatasetSummary()
    if stage == "train":
        if opts.sequence_length < 3 or opts.sequence_length % 2 == 0:
            raise DatasetError(f"--sequence_length must be odd and >= 3, "
                               f"got {opts.sequence_length}")
        if opts.skip_frames < 1:
            raise DatasetError(f"--skip_frames must be >= 1, got {opts.skip_frames}")
        _check_training(root / "training", opts, summary)
    elif stage == "test":
        _check_testing(root / "testing", opts.dataset_name, summary)
    else:
        raise ValueError(f"unknown check stage {stage!r} (train or test)")
    return summary


def _check_images(images: list[Path]) -> None:
    for img in images:
        check_image_file(img)
    if images:
        read_image(images[0])  # one full decode per scene: the format is one we can read


def _scene_frames(scene: Path, opts: argparse.Namespace) -> tuple[list[Path], list[Path]]:
    """(all images of the scene, the frames samples are built from), as TrainFolder does."""
    all_frames = list_images(scene)
    frames = all_frames
    if opts.use_frame_index:
        frames = [all_frames[i] for i in read_frame_index(scene / "frame_index.txt",
                                                          len(all_frames))]
    return all_frames, frames


def _check_snippet_scenes(training: Path, split_file: str, opts: argparse.Namespace,
                          with_prior: bool, summary: DatasetSummary,
                          counts: dict[str, int]) -> int:
    """Scenes used as training snippets (train.txt, or val.txt with val_mode photo).

    Fills ``counts`` (scene -> frames) and returns the number of samples.
    """
    reach = _reach(opts)
    samples = 0
    for scene in scene_dirs(training, split_file):
        read_intrinsics(scene / "cam.txt")  # missing or malformed -> DatasetError
        all_frames, frames = _scene_frames(scene, opts)
        _check_images(all_frames)
        if samples_in(len(frames), opts) == 0:
            warnings.warn(f"scene {scene.name} ({split_file}) has {len(frames)} frames, fewer "
                          f"than the {2 * reach + 1} a sample needs: skipped", stacklevel=3)
            summary.skipped.append(scene.name)
            continue
        if with_prior:
            targets = frames[reach:len(frames) - reach]
            pair_by_name(targets, scene / PRIOR_DIR, PRIOR_SUFFIXES, "V3 prior",
                         all_images=all_frames)
        counts[scene.name] = len(frames)
        samples += samples_in(len(frames), opts)
    if samples == 0:
        raise DatasetError(f"no samples: every scene of {training / split_file} is shorter "
                           f"than a sample ({2 * reach + 1} frames with --sequence_length "
                           f"{opts.sequence_length} and --skip_frames {opts.skip_frames})")
    return samples


def _check_training(training: Path, opts: argparse.Namespace, summary: DatasetSummary) -> None:
    if not training.is_dir():
        raise DatasetError(f"missing folder {training} (expected DATASET/training/<scenes>)")
    with_prior = opts.model_version == "v3"
    summary.train_samples = _check_snippet_scenes(training, "train.txt", opts, with_prior,
                                                  summary, summary.train_scenes)
    if opts.val_mode == "photo":
        summary.val_items = _check_snippet_scenes(training, "val.txt", opts, with_prior,
                                                  summary, summary.val_scenes)
        return
    suffixes = gt_depth_suffixes(opts.dataset_name)
    for scene in scene_dirs(training, "val.txt"):
        frames = list_images(scene)  # ValidationDepthSet uses every frame of the scene
        _check_images(frames)
        pair_by_name(frames, scene / "depth", suffixes, "ground-truth depth")
        summary.val_scenes[scene.name] = len(frames)
        summary.val_items += len(frames)
    if summary.val_items == 0:
        raise DatasetError(f"no validation frames in the scenes of {training / 'val.txt'}")


def _check_testing(testing: Path, dataset_name: str, summary: DatasetSummary) -> None:
    color = testing / "color"
    if not color.is_dir():
        raise DatasetError(f"missing folder {color} (expected DATASET/testing/color)")
    images = list_images(color)
    if not images:
        raise DatasetError(f"no images in {color}")
    _check_images(images)
    pair_by_name(images, testing / "depth", gt_depth_suffixes(dataset_name),
                 "ground-truth depth")
    seg_dir = testing / "seg_mask"
    if seg_dir.is_dir():
        read_dynamic_colors(seg_dir / "dynamic_colors.txt")
        pair_by_name(images, seg_dir, (".png",), "segmentation mask")
    summary.test_items = len(images)
