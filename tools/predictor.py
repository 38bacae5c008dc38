"""Depth from a trained checkpoint: the one inference path of the tools and the Python API.

:class:`Predictor` turns a checkpoint into a frozen network (BatchNorm folded, weights in the
inference precision) and images into depth: resized to the network's input size as in
training, batched, predicted, and, if asked, resized back to each image's size.
``inference.py``, ``test.py``, ``eval_pose.py`` and ``generate_pseudo_depth.py`` all use it;
:func:`stream` feeds it any sequence of frames in batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import cv2
import numpy as np
import torch

from datasets.formats import normalize_image
from datasets.registry import dataset_spec
from datasets.transforms import Resize
from systems import SCDepthV1, load_from_checkpoint
from utils.runtime import check_precision, resolve_device

__all__ = ["BatchPredictor", "Predictor", "batched", "checkpoint_size", "resize_depth",
           "stream"]

T = TypeVar("T")


def resize_depth(depth: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of a depth map ``[h,w]`` to ``[height,width]`` (float32)."""
    depth = np.asarray(depth, dtype=np.float32)
    if depth.shape == (height, width):
        return depth
    return cv2.resize(depth, (width, height), interpolation=cv2.INTER_LINEAR)


class BatchPredictor(Protocol):
    """Anything that maps a batch of RGB images (``[H,W,3]`` float 0..255, any sizes) to
    their depth maps ``[H,W]`` at the images' own sizes."""

    def predict(self, images: Sequence[np.ndarray]) -> list[np.ndarray]: ...


class Predictor:
    """A trained SC-Depth DepthNet, ready to run.

    model: the loaded system (its PoseNet and options stay reachable); height, width: the
    network's input size; precision: "32", "bf16-mixed" or "16-mixed" (GPUs only).
    """

    def __init__(self, model: SCDepthV1, height: int, width: int, precision: str = "32"
                 ) -> None:
        self.model = model.eval()
        self.device = model.device
        check_precision(precision, self.device)
        self.net = model.inference_net(precision)
        self.height, self.width = int(height), int(width)
        self._resize = Resize(self.height, self.width)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "auto",
                        precision: str = "32", height: int | None = None,
                        width: int | None = None) -> Predictor:
        """Load ``path`` (ours or a published checkpoint) onto ``device``; the input size is
        ``height × width`` when given, else the size the checkpoint was trained at (its
        dataset's training size if it does not say)."""
        device = resolve_device(device) if isinstance(device, str) else device
        check_precision(precision, device)  # before the (slow) load
        model = load_from_checkpoint(path, device)
        trained = checkpoint_size(model)
        return cls(model, height or trained[0], width or trained[1], precision)

    def prepare(self, image: np.ndarray) -> torch.Tensor:
        """RGB ``[H,W,3]`` float 0..255 -> the network input ``[3,h,w]``, resized
        (bilinear) and normalised exactly as in training."""
        (resized,), _, _ = self._resize([image], np.eye(3, dtype=np.float32), [])
        return normalize_image(resized)

    @torch.inference_mode()
    def depth(self, x: torch.Tensor) -> torch.Tensor:
        """Network inputs ``[B,3,h,w]`` -> depth ``[B,1,h,w]``, float32 on the CPU."""
        return self.net(x.to(self.device)).float().cpu()

    def predict(self, images: Sequence[np.ndarray], resolution: str = "input"
                ) -> list[np.ndarray]:
        """Depth maps of RGB images (any sizes), at each input's size (``"input"``) or at
        the network's (``"network"``)."""
        if resolution not in ("input", "network"):
            raise ValueError(f"resolution must be 'input' or 'network', got {resolution!r}")
        if not images:
            return []
        depth = self.depth(torch.stack([self.prepare(img) for img in images]))[:, 0].numpy()
        if resolution == "network":
            return list(depth)
        return [resize_depth(d, *img.shape[:2]) for d, img in zip(depth, images)]


def checkpoint_size(model: SCDepthV1) -> tuple[int, int]:
    """The input size a system was trained at: its stored ``img_height``/``img_width``, else
    its dataset's training size."""
    opts = model.opts
    default = dataset_spec(opts.dataset_name).train_size
    return (opts.img_height or default[0], opts.img_width or default[1])


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of ``size`` items (the last may be shorter)."""
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def stream(predict: Callable[[list[Any]], list[np.ndarray]], items: Iterable[T],
           batch_size: int, image: Callable[[T], np.ndarray] = lambda item: item
           ) -> Iterator[tuple[T, np.ndarray]]:
    """``(item, depth)`` for every item, predicted ``batch_size`` at a time: only one batch of
    images is in memory, however long the sequence. ``predict`` maps a list of images to
    their depths (e.g. ``Predictor.predict``); ``image`` gets an item's image."""
    for batch in batched(items, batch_size):
        yield from zip(batch, predict([image(it) for it in batch]))
