"""Datasets over the published folder layout (``datasets.formats`` reads its files).

Companion files (ground truth, priors, segmentation masks) are paired with their image BY
NAME (same stem), never by position: a missing or extra companion is a `DatasetError`
naming the file, raised when the dataset is built rather than mid-epoch.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from datasets.formats import (
    GT_DIR,
    MOTION_MASK_DIR,
    PRIOR_DIR,
    PRIOR_SUFFIXES,
    DatasetError,
    gt_depth_suffixes,
    list_frames,
    list_images,
    pair_by_name,
    read_dynamic_colors,
    read_dynamic_mask,
    read_frame_index,
    read_gt_depth,
    read_image,
    read_intrinsics,
    read_motion_mask,
    read_prior,
    scene_dirs,
)
from datasets.transforms import ToTensor, Transform, resize_map

__all__ = ["FrameCache", "TestDepthSet", "TrainFolder", "ValidationDepthSet"]

# Default budget of --cache_frames per process (each DataLoader worker holds its own copy).
CACHE_BYTES = 2 << 30

# A training sample whose files cannot be read is replaced by the next one; this many
# failures in a row mean the dataset itself is broken, and end the run.
MAX_REPLACED_IN_A_ROW = 10


class FrameCache:
    """A per-process LRU cache of decoded arrays keyed by (reader, path), for small datasets
    whose decoding (JPEG/PNG) costs more than the rest of the pipeline (``--cache_frames``).

    ``get(path, reader)`` returns a fresh float32 copy, so transforms may modify it. Arrays
    whose values are exact 8-bit integers (decoded 8-bit images) are kept as uint8, a quarter
    of the memory, and read back exactly. Least recently used entries are dropped beyond
    ``max_bytes``. Each DataLoader worker fills its own copy; with persistent workers it
    stays warm across epochs.
    """

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = int(max_bytes)
        self.nbytes = 0
        self.hits = 0
        self.misses = 0
        # key -> (stored array, dtype the reader returned)
        self._entries: OrderedDict[tuple[str, Path], tuple[np.ndarray, np.dtype]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, path: Path, reader: Callable[[Path], np.ndarray]) -> np.ndarray:
        """``reader(path)``, decoded once per process (a copy the caller may modify)."""
        key = (getattr(reader, "__qualname__", repr(reader)), Path(path))
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[0].astype(entry[1])  # astype copies
        self.misses += 1
        value = reader(path)
        stored = value.copy()
        if value.dtype == np.float32:
            compact = value.astype(np.uint8)
            if np.array_equal(compact, value):
                stored = compact
        if stored.nbytes <= self.max_bytes:
            self._entries[key] = (stored, value.dtype)
            self.nbytes += stored.nbytes
            while self.nbytes > self.max_bytes:
                _, (old, _) = self._entries.popitem(last=False)
                self.nbytes -= old.nbytes
        return value


def _read(cache: FrameCache | None, path: Path, reader: Callable[[Path], np.ndarray]
          ) -> np.ndarray:
    return reader(path) if cache is None else cache.get(path, reader)




def _apply(transform: Transform, images: list[np.ndarray], K: np.ndarray,
           maps: list[np.ndarray]) -> tuple[list[Tensor], Tensor, list[Tensor]]:
    images_t, K_t, maps_t = transform(images, K, maps)
    if not all(isinstance(t, Tensor) for t in (*images_t, K_t, *maps_t)):
        raise TypeError("the transform must end with ToTensor()")
    return images_t, K_t, maps_t


class TrainFolder(Dataset):
    """Training (or photometric-validation) snippets of video scenes.

    A sample is a target frame ``i`` with references ``i-s·k, …, i-k, i+k, …, i+s·k``
    (``s = (sequence_length-1)//2``, ``k = skip_frames``), in temporal order, for every
    ``i`` whose references all exist. With ``use_frame_index`` the frames are those listed
    in ``frame_index.txt``, in that order. With ``with_prior`` (V3) the target's prior
    ``leres_depth/<stem>.png`` is loaded and transformed along with the images. With
    ``with_motion_masks``, when every scene has a ``dynamic/`` folder of moving-object masks
    (the synthetic generator writes them), the target's mask is loaded too; it feeds a
    training diagnostic only (``has_motion_masks`` tells whether it is loaded).

    Item: dict(tgt [3,H,W], refs list of [3,H,W], K [3,3], K_inv [3,3],
    tgt_prior [1,H,W] (with_prior only), tgt_dynamic [1,H,W] in {0,1} (has_motion_masks only)).

    The start-up check (``datasets.check``) reads only the headers of the training files; a
    sample whose file turns out damaged when it is decoded (a JPEG corrupt in its middle) is
    reported once, with the file, and replaced by the next sample, so that one bad frame of
    a large dataset does not end the run (``MAX_REPLACED_IN_A_ROW`` failures in a row do).
    """

    def __init__(self, root: str | Path, train: bool = True, sequence_length: int = 3,
                 skip_frames: int = 1, use_frame_index: bool = False,
                 transform: Transform | None = None, with_prior: bool = False,
                 cache_frames: bool = False, with_motion_masks: bool = False) -> None:
        if sequence_length < 3 or sequence_length % 2 == 0:
            raise ValueError(f"sequence_length must be odd and >= 3, got {sequence_length}")
        if skip_frames < 1:
            raise ValueError(f"skip_frames must be >= 1, got {skip_frames}")
        self.root = Path(root)
        self.transform = transform if transform is not None else ToTensor()
        self.with_prior = with_prior
        self.cache = FrameCache() if cache_frames else None
        self.scenes = scene_dirs(self.root, "train.txt" if train else "val.txt")
        half = (sequence_length - 1) // 2
        shifts = [s * skip_frames for s in range(-half, half + 1) if s != 0]
        reach = half * skip_frames

        self.has_motion_masks = with_motion_masks and all(
            (scene / MOTION_MASK_DIR).is_dir() for scene in self.scenes)
        self.intrinsics: list[np.ndarray] = []
        # (scene index, target, references, prior or None, motion mask or None)
        self.samples: list[tuple[int, Path, tuple[Path, ...], Path | None, Path | None]] = []
        for scene in self.scenes:
            all_frames = list_frames(scene)
            frames = all_frames
            if use_frame_index:
                index = read_frame_index(scene / "frame_index.txt", len(all_frames))
                frames = [all_frames[i] for i in index]
            if len(frames) < 2 * reach + 1:
                warnings.warn(f"skipping scene {scene}: {len(frames)} frames, a sample of "
                              f"{sequence_length} frames with skip {skip_frames} needs "
                              f"{2 * reach + 1}", stacklevel=2)
                continue
            targets = frames[reach:len(frames) - reach]
            priors: list[Path | None] = [None] * len(targets)
            if with_prior:
                priors = list(pair_by_name(targets, scene / PRIOR_DIR, PRIOR_SUFFIXES,
                                           "prior", all_images=all_frames))
            motion: list[Path | None] = [None] * len(targets)
            if self.has_motion_masks:
                motion = list(pair_by_name(targets, scene / MOTION_MASK_DIR, (".png",),
                                           "moving-object mask", all_images=all_frames))
            scene_idx = len(self.intrinsics)
            self.intrinsics.append(read_intrinsics(scene / "cam.txt"))
            for j, (tgt, prior, mask) in enumerate(zip(targets, priors, motion)):
                i = j + reach
                refs = tuple(frames[i + d] for d in shifts)
                self.samples.append((scene_idx, tgt, refs, prior, mask))
        if not self.samples:
            raise DatasetError(f"no training samples in {self.root} "
                               f"(scenes of {'train' if train else 'val'}.txt, "
                               f"sequence_length={sequence_length}, skip_frames={skip_frames})")

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        last: DatasetError | None = None
        for attempt in range(MAX_REPLACED_IN_A_ROW):
            try:
                return self._load((index + attempt) % len(self.samples))
            except DatasetError as err:
                last = err
                # once per bad file and process (each loader worker reports its own)
                warnings.warn(f"training sample skipped, the next one used instead: {err}",
                              stacklevel=2)
        raise DatasetError(f"{MAX_REPLACED_IN_A_ROW} training samples in a row could not be "
                           f"read (from {self.samples[index][1]} on); last: {last}")

    def _load(self, index: int) -> dict[str, Any]:
        scene_idx, tgt_path, ref_paths, prior_path, motion_path = self.samples[index]
        images = [_read(self.cache, p, read_image) for p in (tgt_path, *ref_paths)]
        shape = images[0].shape
        for path, img in zip(ref_paths, images[1:]):
            if img.shape != shape:
                raise DatasetError(f"frame size {img.shape[:2]} differs from the target's "
                                   f"{shape[:2]} ({tgt_path}): {path}")
        maps = []
        if prior_path is not None:
            prior = _read(self.cache, prior_path, read_prior)
            if prior.shape != shape[:2]:
                # relative depth does not depend on resolution; align it with the image so
                # that the crops and flips hit the same pixels
                prior = resize_map(prior, shape[0], shape[1])
            maps.append(prior)
        if motion_path is not None:
            motion = _read(self.cache, motion_path, read_motion_mask)
            if motion.shape != shape[:2]:
                raise DatasetError(f"moving-object mask size {motion.shape} differs from the "
                                   f"frame's {shape[:2]}: {motion_path}")
            maps.append(motion)
        images_t, K, maps_t = _apply(self.transform, images, self.intrinsics[scene_idx], maps)
        sample = {"tgt": images_t[0], "refs": images_t[1:], "K": K,
                  "K_inv": torch.linalg.inv(K.double()).float()}
        if prior_path is not None:
            sample["tgt_prior"] = maps_t[0]
        if motion_path is not None:
            # resampling may blend the mask's edges: a pixel is moving if mostly covered
            sample["tgt_dynamic"] = (maps_t[-1] > 0.5).float()
        return sample


class ValidationDepthSet(Dataset):
    """Frames of the validation scenes (``val.txt``) with their ground-truth depth.

    GT: ``scene/depth/<stem>.<png|npz|npy>`` (encoding per ``dataset_name``), paired by name.
    Item: dict(tgt [3,h,w] (transformed), gt_depth [H0,W0] float32 at GT resolution).
    """

    def __init__(self, root: str | Path, dataset_name: str,
                 transform: Transform | None = None, cache_frames: bool = False) -> None:
        self.root = Path(root)
        self.dataset_name = dataset_name
        self.transform = transform if transform is not None else ToTensor()
        self.cache = FrameCache() if cache_frames else None
        suffixes = gt_depth_suffixes(dataset_name)
        self.samples: list[tuple[Path, Path]] = []
        for scene in scene_dirs(self.root, "val.txt"):
            frames = list_frames(scene)
            gts = pair_by_name(frames, scene / GT_DIR, suffixes, "ground-truth depth")
            self.samples.extend(zip(frames, gts))
        if not self.samples:
            raise DatasetError(f"no validation frames in the scenes of {self.root / 'val.txt'}")

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        img_path, gt_path = self.samples[index]
        # K does not leave this dataset; the transforms only need one to carry along
        images, _, _ = _apply(self.transform, [_read(self.cache, img_path, read_image)],
                              np.eye(3, dtype=np.float32), [])
        gt = _read(self.cache, gt_path, self._read_gt)
        return {"tgt": images[0], "gt_depth": torch.from_numpy(gt)}

    def _read_gt(self, path: Path) -> np.ndarray:
        return read_gt_depth(path, self.dataset_name)


class TestDepthSet(Dataset):
    """The test split: ``color/`` images, ``depth/`` ground truth, optional ``seg_mask/``.

    Item: dict(tgt [3,h,w], gt_depth [H0,W0] float32, dynamic [H0,W0] bool (only when
    ``seg_mask/`` exists), name (image stem)).
    """

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, test_dir: str | Path, dataset_name: str,
                 transform: Transform | None = None) -> None:
        self.test_dir = Path(test_dir)
        self.dataset_name = dataset_name
        self.transform = transform if transform is not None else ToTensor()
        images = list_images(self.test_dir / "color")
        if not images:
            raise DatasetError(f"no images in {self.test_dir / 'color'}")
        gts = pair_by_name(images, self.test_dir / GT_DIR, gt_depth_suffixes(dataset_name),
                           "ground-truth depth")
        seg_dir = self.test_dir / "seg_mask"
        self.dynamic_colors: np.ndarray | None = None
        masks: list[Path | None] = [None] * len(images)
        if seg_dir.is_dir():
            self.dynamic_colors = read_dynamic_colors(seg_dir / "dynamic_colors.txt")
            masks = list(pair_by_name(images, seg_dir, (".png",), "segmentation mask"))
        self.samples = list(zip(images, gts, masks))

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        img_path, gt_path, mask_path = self.samples[index]
        images, _, _ = _apply(self.transform, [read_image(img_path)],
                              np.eye(3, dtype=np.float32), [])
        gt = read_gt_depth(gt_path, self.dataset_name)
        sample: dict[str, Any] = {"tgt": images[0], "gt_depth": torch.from_numpy(gt),
                                  "name": img_path.stem}
        if mask_path is not None and self.dynamic_colors is not None:
            dynamic = read_dynamic_mask(mask_path, self.dynamic_colors, gt.shape)
            sample["dynamic"] = torch.from_numpy(dynamic)
        return sample
