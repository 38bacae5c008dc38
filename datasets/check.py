"""A dataset check that runs before any training or testing starts (`--check_only` alone).

It walks the SPEC §4 layout once, with the same helpers the datasets use to build their
sample lists (`datasets.video_folder`, `datasets.depth_io`), and stops at the first user
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

from datasets.depth_io import (
    DatasetError,
    gt_depth_suffixes,
    list_images,
    read_image,
    read_intrinsics,
)
from datasets.video_folder import (
    pair_by_name,
    read_dynamic_colors,
    read_frame_index,
    scene_dirs,
)

__all__ = ["DatasetSummary", "check_dataset", "check_image_file", "samples_in"]

PRIOR_SUFFIXES = (".png", ".npy")  # as TrainFolder pairs them
_JPEG_SOI, _JPEG_EOI, _JPEG_SOS = b"\xff\xd8", b"\xff\xd9", b"\xff\xda"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TAIL_BYTES = 4096  # room for the bytes some encoders append after the end marker


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


def check_image_file(path: Path) -> None:
    """Raise DatasetError if ``path`` is empty, unreadable, not a JPEG/PNG, or truncated.

    Reads only the first 8 and the last few KiB bytes. A JPEG must have an end-of-image
    marker after its last start-of-scan marker in that tail (entropy-coded data never holds
    0xFFD9 since 0xFF is byte-stuffed), a PNG must end with its IEND chunk.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8)
            fh.seek(max(0, size - _TAIL_BYTES))
            tail = fh.read()
    except OSError as err:
        raise DatasetError(f"unreadable image {path}: {err.strerror or err}") from None
    if size == 0:
        raise DatasetError(f"empty image file {path}")
    if head[:2] == _JPEG_SOI:
        if tail.rfind(_JPEG_EOI) < 0 or tail.rfind(_JPEG_EOI) < tail.rfind(_JPEG_SOS):
            raise DatasetError(f"truncated JPEG {path} (no end-of-image marker)")
    elif head == _PNG_SIGNATURE:
        if b"IEND" not in tail[-64:]:
            raise DatasetError(f"truncated PNG {path} (no IEND chunk)")
    else:
        raise DatasetError(f"not a JPEG or PNG image (unreadable): {path}")


def samples_in(num_frames: int, opts: argparse.Namespace) -> int:
    """Targets with all references inside the scene (i ± k·s, s = 1 … (n−1)/2)."""
    return max(0, num_frames - 2 * _reach(opts))


def _reach(opts: argparse.Namespace) -> int:
    return int(getattr(opts, "skip_frames", 1)) * ((int(getattr(opts, "sequence_length", 3))
                                                    - 1) // 2)


def check_dataset(opts: argparse.Namespace, stage: str) -> DatasetSummary:
    """Check the dataset of ``opts`` and count what a run will use.

    ``stage``: "train" (``training/``: the scenes of train.txt and val.txt) or "test"
    (``testing/``). Uses ``dataset_dir``, ``dataset_name``, ``model_version`` (v3 needs
    priors), ``sequence_length``, ``skip_frames``, ``use_frame_index`` and ``val_mode``.
    Raises DatasetError (one line, naming the file or scene) at the first problem.
    """
    if not getattr(opts, "dataset_dir", None):
        raise DatasetError("no --dataset_dir given")
    root = Path(opts.dataset_dir)
    if not root.is_dir():
        raise DatasetError(f"--dataset_dir: not a folder: {root}")
    sequence_length = int(getattr(opts, "sequence_length", 3))
    if sequence_length < 3 or sequence_length % 2 == 0:
        raise DatasetError(f"--sequence_length must be odd and >= 3, got {sequence_length}")
    if int(getattr(opts, "skip_frames", 1)) < 1:
        raise DatasetError(f"--skip_frames must be >= 1, got {opts.skip_frames}")
    summary = DatasetSummary()
    if stage == "train":
        _check_training(root / "training", opts, summary)
    elif stage == "test":
        _check_testing(root / "testing", opts, summary)
    else:
        raise ValueError(f"unknown check stage {stage!r} (train or test)")
    return summary


def _check_intrinsics(scene: Path) -> None:
    cam = scene / "cam.txt"
    if not cam.is_file():
        raise DatasetError(f"missing intrinsics file {cam} (3x3 K, 9 numbers)")
    read_intrinsics(cam)  # malformed -> DatasetError naming the file


def _check_images(images: list[Path]) -> None:
    for img in images:
        check_image_file(img)
    if images:
        read_image(images[0])  # one full decode per scene: the format is one we can read


def _scene_frames(scene: Path, opts: argparse.Namespace) -> tuple[list[Path], list[Path]]:
    """(all images of the scene, the frames samples are built from), as TrainFolder does."""
    all_frames = list_images(scene)
    frames = all_frames
    if getattr(opts, "use_frame_index", False):
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
        _check_intrinsics(scene)
        all_frames, frames = _scene_frames(scene, opts)
        _check_images(all_frames)
        if samples_in(len(frames), opts) == 0:
            warnings.warn(f"scene {scene.name} ({split_file}) has {len(frames)} frames, fewer "
                          f"than the {2 * reach + 1} a sample needs: skipped", stacklevel=3)
            summary.skipped.append(scene.name)
            continue
        if with_prior:
            targets = frames[reach:len(frames) - reach]
            pair_by_name(targets, scene / "leres_depth", PRIOR_SUFFIXES, "V3 prior",
                         all_images=all_frames)
        counts[scene.name] = len(frames)
        samples += samples_in(len(frames), opts)
    if samples == 0:
        raise DatasetError(f"no samples: every scene of {training / split_file} is shorter "
                           f"than a sample ({2 * reach + 1} frames with --sequence_length "
                           f"{getattr(opts, 'sequence_length', 3)} and --skip_frames "
                           f"{getattr(opts, 'skip_frames', 1)})")
    return samples


def _check_training(training: Path, opts: argparse.Namespace, summary: DatasetSummary) -> None:
    if not training.is_dir():
        raise DatasetError(f"missing folder {training} (expected DATASET/training/<scenes>)")
    with_prior = getattr(opts, "model_version", "v1") == "v3"
    summary.train_samples = _check_snippet_scenes(training, "train.txt", opts, with_prior,
                                                  summary, summary.train_scenes)
    if getattr(opts, "val_mode", "depth") == "photo":
        summary.val_items = _check_snippet_scenes(training, "val.txt", opts, with_prior,
                                                  summary, summary.val_scenes)
        return
    suffixes = gt_depth_suffixes(getattr(opts, "dataset_name", "kitti"))
    for scene in scene_dirs(training, "val.txt"):
        frames = list_images(scene)  # ValidationDepthSet uses every frame of the scene
        _check_images(frames)
        pair_by_name(frames, scene / "depth", suffixes, "ground-truth depth")
        summary.val_scenes[scene.name] = len(frames)
        summary.val_items += len(frames)
    if summary.val_items == 0:
        raise DatasetError(f"no validation frames in the scenes of {training / 'val.txt'}")


def _check_testing(testing: Path, opts: argparse.Namespace, summary: DatasetSummary) -> None:
    color = testing / "color"
    if not color.is_dir():
        raise DatasetError(f"missing folder {color} (expected DATASET/testing/color)")
    images = list_images(color)
    if not images:
        raise DatasetError(f"no images in {color}")
    _check_images(images)
    pair_by_name(images, testing / "depth", gt_depth_suffixes(getattr(opts, "dataset_name",
                                                                      "kitti")),
                 "ground-truth depth")
    seg_dir = testing / "seg_mask"
    if seg_dir.is_dir():
        read_dynamic_colors(seg_dir / "dynamic_colors.txt")
        pair_by_name(images, seg_dir, (".png",), "segmentation mask")
    summary.test_items = len(images)
