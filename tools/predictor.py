"""Depth from a trained checkpoint: the one inference path of the tools and the Python API.

:class:`Predictor` turns a checkpoint into a frozen network (BatchNorm folded, weights in the
inference precision) and images into depth: resized to the network's input size as in
training, batched, predicted, and, if asked, resized back to each image's size.
``inference.py``, ``test.py``, ``eval_pose.py`` and ``generate_pseudo_depth.py`` all use it;
:func:`stream` feeds it any sequence of frames in batches.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

import cv2
import numpy as np
import torch

from datasets.formats import normalize_image, read_image
from datasets.registry import dataset_spec
from datasets.transforms import Resize
from options import CHECKPOINT_SETTINGS
from systems import SCDepthV1, model_from_checkpoint
from utils.checkpoint import (
    checkpoint_hparams,
    infer_model_version,
    infer_resnet_layers,
    load_checkpoint,
)
from utils.errors import UsageError
from utils.runtime import check_precision, precision_note, resolve_device

__all__ = ["BatchPredictor", "Predictor", "Settings", "as_rgb", "batched",
           "checkpoint_settings", "resize_depth", "resolve_settings", "stream"]



@dataclass(frozen=True)
class Settings:
    """The effective settings of a tool run on a checkpoint, and the notes on where the
    user's differ from the checkpoint's."""

    model_version: str
    resnet_layers: int
    dataset_name: str
    img_height: int
    img_width: int
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        return (f"SC-Depth {self.model_version}, ResNet-{self.resnet_layers}, dataset "
                f"{self.dataset_name}, input {self.img_height}x{self.img_width}")


def checkpoint_settings(ckpt: dict) -> dict[str, Any]:
    """What a loaded checkpoint says of CHECKPOINT_SETTINGS: its version and encoder depth
    (from its options or its weights), its dataset, and the size it was trained at (its
    dataset's training size when it does not store one; None where nothing says)."""
    hp = checkpoint_hparams(ckpt)
    name = hp.get("dataset_name")
    default = dataset_spec(name).train_size if name else (None, None)
    return {"model_version": infer_model_version(ckpt),
            "resnet_layers": infer_resnet_layers(ckpt), "dataset_name": name,
            "img_height": hp.get("img_height") or default[0],
            "img_width": hp.get("img_width") or default[1]}


def resolve_settings(stored: dict[str, Any], given: dict[str, Any]) -> Settings:
    """The user's value of each setting where given (with a note when it differs from the
    checkpoint's), else the checkpoint's; a dataset neither says is kitti, the papers'
    default, and its training size."""
    values, notes = {}, []
    for name in CHECKPOINT_SETTINGS:
        mine, theirs = given.get(name), stored.get(name)
        if name == "resnet_layers" and mine is not None and mine != theirs:
            raise UsageError(f"--resnet_layers {mine}: the checkpoint holds a ResNet-{theirs} "
                             "DepthNet")
        if mine is not None and theirs is not None and mine != theirs:
            notes.append(f"note: --{name} {mine} differs from the checkpoint's {theirs}; "
                         f"using {mine}")
        values[name] = mine if mine is not None else theirs
    if values["dataset_name"] is None:
        values["dataset_name"] = "kitti"
        notes.append("note: the checkpoint does not name its dataset; using kitti "
                     "(give --dataset_name)")
    size = dataset_spec(values["dataset_name"]).train_size
    values["img_height"] = int(values["img_height"] or size[0])
    values["img_width"] = int(values["img_width"] or size[1])
    return Settings(**values, notes=tuple(notes))

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
    network's input size; precision: "32", "bf16-mixed" or "16-mixed" (GPUs only);
    compile: compile the network (``SCDepthV1.inference_net``). A compiled network compiles
    again for every new input shape, so smaller batches (a folder's last) are padded to the
    largest batch seen.
    """

    def __init__(self, model: SCDepthV1, height: int, width: int, precision: str = "32",
                 compile: bool = False) -> None:
        self.model = model.eval()
        self.device = model.device
        check_precision(precision, self.device)
        self.net = model.inference_net(precision, compile)
        self.compiled = compile
        self._largest_batch = 0
        self.height, self.width = int(height), int(width)
        self._resize = Resize(self.height, self.width)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "auto",
                        precision: str = "32", height: int | None = None,
                        width: int | None = None) -> Predictor:
        """Load ``path`` (ours or a published checkpoint) onto ``device``; the input size is
        ``height × width`` when given, else the size the checkpoint was trained at."""
        predictor, _ = cls.from_options(argparse.Namespace(
            ckpt_path=path, device=device, infer_precision=precision, img_height=height,
            img_width=width))
        return predictor

    @classmethod
    def from_options(cls, opts: argparse.Namespace) -> tuple[Predictor, Settings]:
        """The Predictor of a tool's options (``ckpt_path``, ``device``, ``infer_precision``
        and any of CHECKPOINT_SETTINGS, None where not given) and its effective settings:
        what the user gave, else what the checkpoint says."""
        device = opts.device
        device = resolve_device(device) if isinstance(device, str) else device
        check_precision(opts.infer_precision, device)  # before the (slow) load
        ckpt = load_checkpoint(opts.ckpt_path, map_location="cpu")
        given = {name: getattr(opts, name, None) for name in CHECKPOINT_SETTINGS}
        settings = resolve_settings(checkpoint_settings(ckpt), given)
        slow = precision_note(opts.infer_precision, device)
        if slow is not None:
            settings = replace(settings, notes=(*settings.notes, slow))
        model = model_from_checkpoint(ckpt, opts.ckpt_path, device,
                                      model_version=given["model_version"])
        predictor = cls(model, settings.img_height, settings.img_width, opts.infer_precision,
                        getattr(opts, "infer_compile", False))
        return predictor, settings

    def prepare(self, image: np.ndarray) -> torch.Tensor:
        """RGB ``[H,W,3]`` float 0..255 -> the network input ``[3,h,w]``, resized
        (bilinear) and normalised exactly as in training."""
        (resized,), _, _ = self._resize([image], np.eye(3, dtype=np.float32), [])
        return normalize_image(resized)

    @torch.inference_mode()
    def depth(self, x: torch.Tensor) -> torch.Tensor:
        """Network inputs ``[B,3,h,w]`` -> depth ``[B,1,h,w]``, float32 on the CPU."""
        n = x.shape[0]
        if self.compiled:
            self._largest_batch = max(self._largest_batch, n)
            if n < self._largest_batch:  # one shape, one compilation
                x = torch.cat([x, x[-1:].expand(self._largest_batch - n, *x.shape[1:])])
        return self.net(x.to(self.device))[:n].float().cpu()

    def predict(self, images: ImageInput | Sequence[ImageInput], resolution: str = "input"
                ) -> np.ndarray | list[np.ndarray]:
        """Depth of one image, or of a list of images (any sizes, predicted as one batch).

        An image is an RGB array ``[H,W,3]`` (uint8, or float in 0..255), a PIL image or
        the path of an image file. Depth ``[H,W]`` float32 in network units, at the input's
        size (``resolution="input"``) or at the network's (``"network"``).
        """
        if resolution not in ("input", "network"):
            raise ValueError(f"resolution must be 'input' or 'network', got {resolution!r}")
        single = not isinstance(images, list | tuple)
        arrays = [as_rgb(img) for img in ([images] if single else images)]
        if not arrays:
            return []
        depth = self.depth(torch.stack([self.prepare(img) for img in arrays]))[:, 0].numpy()
        out = (list(depth) if resolution == "network" else
               [resize_depth(d, *img.shape[:2]) for d, img in zip(depth, arrays)])
        return out[0] if single else out


# An image for Predictor.predict: an RGB array [H,W,3], a PIL image, or a path.
ImageInput = Any


def as_rgb(image: ImageInput) -> np.ndarray:
    """An image as RGB float32 ``[H,W,3]`` in 0..255: arrays as they are (grey is
    repeated), PIL images converted, paths read (``datasets.formats.read_image``)."""
    if isinstance(image, str | Path):
        return read_image(image)
    if hasattr(image, "convert") and hasattr(image, "size"):  # a PIL image
        image = np.asarray(image.convert("RGB"))
    array = np.asarray(image, dtype=np.float32)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"an image must be [H,W,3] RGB, got shape {array.shape}")
    return array


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
