"""A dataset check that runs before any training or testing starts (`--check_only` alone).

It walks the dataset layout once, with the same readers the datasets use
(`datasets.formats`), and stops at the first user mistake with a one-line `DatasetError`
naming the file or scene, instead of a traceback from a worker process an hour into
training (docs/reliability.md lists every case):

- a scene named in ``train.txt``/``val.txt`` that does not exist or leaves ``training/``, a
  missing or unreadable scene list, two frames of one scene with the same name;
- a missing, malformed or singular ``cam.txt``, a bad ``frame_index.txt``;
- an empty, unreadable, truncated, non-JPEG/PNG or oversized image (decompression bombs),
  frames of one scene with different sizes;
- a V3 prior missing for a target frame, without a frame, or of a type the reader refuses
  (empty, truncated, colour, not numbers); a moving-object mask of another size;
- ground-truth depth missing for a validation (or test) frame, without a frame, of the
  wrong encoding (8-bit PNG), or leaving no valid pixel in the whole validation set;
- a scene shorter than a sample (warned and skipped; an error if no scene is left).

What is opened, per kind of file, so that the check stays cheap on large datasets:
training frames, priors and masks by their header and last bytes (signature, size, sample
type, end marker; the first frame of every scene is also decoded in full); the validation
and test frames and their ground truth decoded in full, as one validation does, because a
bad one would otherwise end the run after a whole epoch. A training frame damaged in its
middle is found when it is decoded: the training loader reports it and draws another sample
(``datasets.video_folder.TrainFolder``).
"""

from __future__ import annotations

import argparse
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from datasets.formats import (
    GT_DIR,
    MOTION_MASK_DIR,
    PRIOR_DIR,
    PRIOR_SUFFIXES,
    DatasetError,
    check_image_file,
    check_prior_file,
    gt_depth_suffixes,
    list_frames,
    list_images,
    pair_by_name,
    read_dynamic_colors,
    read_frame_index,
    read_gt_depth,
    read_image,
    read_intrinsics,
    scene_dirs,
)
from datasets.registry import dataset_spec, eval_mask
from datasets.transforms import resize_note

__all__ = ["DatasetSummary", "check_dataset", "samples_in"]

_MAX_NAMED = 3  # files named in a message, the rest counted


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
    ``sequence_length``, ``skip_frames``, ``use_frame_index``, ``val_mode`` and, for the
    resize warnings, ``img_height``/``img_width``) or "test" (``testing/``; uses
    ``dataset_dir`` and ``dataset_name``).
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


def _named(paths: list[Path]) -> str:
    """The first few of ``paths``, and how many more."""
    shown = ", ".join(str(p) for p in paths[:_MAX_NAMED])
    return shown + (f" (and {len(paths) - _MAX_NAMED} more)" if len(paths) > _MAX_NAMED else "")


def _check_images(images: list[Path], decode_all: bool = False) -> tuple[int, int] | None:
    """Every image's header and end; all of them decoded with ``decode_all``, else the
    first. They must share one size, which is returned (None for no image)."""
    size = None
    for img in images:
        header = check_image_file(img)
        if size is None:
            size, first = (header.height, header.width), img
        elif (header.height, header.width) != size:
            raise DatasetError(f"frame {img} is {header.width}x{header.height}, {first} is "
                               f"{size[1]}x{size[0]}: the frames of a scene must share one size")
    for img in images if decode_all else images[:1]:
        read_image(img)  # the format is one we can read; with decode_all, every byte
    return size


def _warn_resize(scene: Path, size: tuple[int, int] | None, opts: argparse.Namespace) -> None:
    height, width = getattr(opts, "img_height", None), getattr(opts, "img_width", None)
    if size is None or height is None or width is None:
        return
    note = resize_note(size[0], size[1], height, width)
    if note is not None:
        warnings.warn(f"scene {scene.name}: {note} (--img_height/--img_width)", stacklevel=4)


def _scene_frames(scene: Path, opts: argparse.Namespace) -> tuple[list[Path], list[Path]]:
    """(all images of the scene, the frames samples are built from), as TrainFolder does."""
    all_frames = list_frames(scene)
    frames = all_frames
    if opts.use_frame_index:
        frames = [all_frames[i] for i in read_frame_index(scene / "frame_index.txt",
                                                          len(all_frames))]
    return all_frames, frames


def _check_companions(scene: Path, targets: list[Path], all_frames: list[Path],
                      size: tuple[int, int]) -> None:
    """V3: the priors of the targets (paired by name, headers checked) and, where the
    scene has them, the moving-object masks (their size must be the frames')."""
    for prior in pair_by_name(targets, scene / PRIOR_DIR, PRIOR_SUFFIXES, "V3 prior",
                              all_images=all_frames):
        check_prior_file(prior)
    if (scene / MOTION_MASK_DIR).is_dir():
        for mask in pair_by_name(targets, scene / MOTION_MASK_DIR, (".png",),
                                 "moving-object mask", all_images=all_frames):
            header = check_image_file(mask)
            if (header.height, header.width) != size:
                raise DatasetError(f"moving-object mask {mask} is {header.width}x"
                                   f"{header.height}, its frames are {size[1]}x{size[0]}")


def _check_snippet_scenes(training: Path, split_file: str, opts: argparse.Namespace,
                          with_prior: bool, summary: DatasetSummary,
                          counts: dict[str, int], decode_all: bool = False) -> int:
    """Scenes used as training snippets (train.txt, or val.txt with val_mode photo).

    Fills ``counts`` (scene -> frames) and returns the number of samples.
    """
    reach = _reach(opts)
    samples = 0
    for scene in scene_dirs(training, split_file):
        read_intrinsics(scene / "cam.txt")  # missing, malformed, singular -> DatasetError
        all_frames, frames = _scene_frames(scene, opts)
        size = _check_images(all_frames, decode_all)
        if samples_in(len(frames), opts) == 0:
            warnings.warn(f"scene {scene.name} ({split_file}) has {len(frames)} frames, fewer "
                          f"than the {2 * reach + 1} a sample needs: skipped", stacklevel=3)
            summary.skipped.append(scene.name)
            continue
        _warn_resize(scene, size, opts)
        if with_prior:
            _check_companions(scene, frames[reach:len(frames) - reach], all_frames, size)
        counts[scene.name] = len(frames)
        samples += samples_in(len(frames), opts)
    if samples == 0:
        raise DatasetError(f"no samples: every scene of {training / split_file} is shorter "
                           f"than a sample ({2 * reach + 1} frames with --sequence_length "
                           f"{opts.sequence_length} and --skip_frames {opts.skip_frames})")
    return samples


def _check_ground_truth(paths: list[Path], dataset_name: str, what: str
                        ) -> list[tuple[int, ...]]:
    """Decode every ground-truth file; none with a pixel that the metrics score is an
    error naming the files and their values (millimetres where metres are expected, all
    zero, all NaN), some without one is a warning. Returns the depth maps' shapes."""
    spec = dataset_spec(dataset_name)
    empty: list[Path] = []
    shapes: list[tuple[int, ...]] = []
    low, high = np.inf, -np.inf
    for path in paths:
        gt = read_gt_depth(path, dataset_name)
        shapes.append(gt.shape)
        if not eval_mask(gt, spec).any():
            empty.append(path)
            measured = gt[gt > 0]
            if measured.size:
                low, high = min(low, float(measured.min())), max(high, float(measured.max()))
    if not empty:
        return shapes
    lo, hi = spec.eval_range
    values = (f"its values are {low:g}..{high:g}" if np.isfinite(low)
              else "it is all zero or not finite")
    if len(empty) == len(paths):
        raise DatasetError(
            f"no {what} ground truth has a pixel inside the {dataset_name} evaluation range "
            f"{lo:g}..{hi:g} m (--dataset_name sets the encoding): {_named(empty)}; {values}")
    warnings.warn(f"{len(empty)} of {len(paths)} {what} ground-truth files have no pixel "
                  f"inside {lo:g}..{hi:g} m and are not scored: {_named(empty)}", stacklevel=3)
    return shapes


def _check_training(training: Path, opts: argparse.Namespace, summary: DatasetSummary) -> None:
    if not training.is_dir():
        raise DatasetError(f"missing folder {training} (expected DATASET/training/<scenes>)")
    with_prior = opts.model_version == "v3"
    summary.train_samples = _check_snippet_scenes(training, "train.txt", opts, with_prior,
                                                  summary, summary.train_scenes)
    if opts.val_mode == "photo":
        summary.val_items = _check_snippet_scenes(training, "val.txt", opts, with_prior,
                                                  summary, summary.val_scenes,
                                                  decode_all=True)
        return
    suffixes = gt_depth_suffixes(opts.dataset_name)
    gts: list[Path] = []
    for scene in scene_dirs(training, "val.txt"):
        frames = list_frames(scene)  # ValidationDepthSet uses every frame of the scene
        _check_images(frames, decode_all=True)
        gts += pair_by_name(frames, scene / GT_DIR, suffixes, "ground-truth depth")
        summary.val_scenes[scene.name] = len(frames)
        summary.val_items += len(frames)
    if summary.val_items == 0:
        raise DatasetError(f"no validation frames in the scenes of {training / 'val.txt'}")
    _check_ground_truth(gts, opts.dataset_name, "validation")


def _check_testing(testing: Path, dataset_name: str, summary: DatasetSummary) -> None:
    color = testing / "color"
    if not color.is_dir():
        raise DatasetError(f"missing folder {color} (expected DATASET/testing/color)")
    images = list_images(color)
    if not images:
        raise DatasetError(f"no images in {color}")
    for img in images:
        check_image_file(img)
        read_image(img)
    gts = pair_by_name(images, testing / GT_DIR, gt_depth_suffixes(dataset_name),
                       "ground-truth depth")
    shapes = _check_ground_truth(gts, dataset_name, "test")
    seg_dir = testing / "seg_mask"
    if seg_dir.is_dir():
        read_dynamic_colors(seg_dir / "dynamic_colors.txt")
        masks = pair_by_name(images, seg_dir, (".png",), "segmentation mask")
        for mask, shape in zip(masks, shapes):
            header = check_image_file(mask)
            if (header.height, header.width) != tuple(shape):
                raise DatasetError(f"segmentation mask {mask} is {header.width}x"
                                   f"{header.height}, its ground truth is {shape[1]}x{shape[0]}")
    summary.test_items = len(images)
