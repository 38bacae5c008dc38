"""Training/validation transforms on numpy frames; the intrinsics follow every change.

Every transform is a callable ``(images, K, maps) -> (images, K, maps)``:

- ``images``: list of ``[H,W,3]`` float32 arrays in 0..255 (the target first, then the refs),
- ``K``: ``[3,3]`` float32 intrinsics of these images,
- ``maps``: list of ``[H,W]`` float32 per-pixel maps aligned with the images (e.g. the V3
  prior), which are flipped, cropped and resized as the images are (resized with nearest
  sampling, never interpolated: :func:`resize_map`).

All the images of a sample get the same random draw, so that they stay a consistent video
snippet for the warps. Randomness comes from numpy's global RNG so that Lightning's
``seed_everything`` and its per-worker seeding make runs repeatable. ``ToTensor`` comes last.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np
import torch

from datasets.formats import normalize_image
from geometry.intrinsics import crop_intrinsics, flip_intrinsics, scale_intrinsics

__all__ = [
    "Compose",
    "RandomHorizontalFlip",
    "RandomScaleCrop",
    "Resize",
    "ToTensor",
    "Transform",
    "resize_map",
    "resize_note",
]

# Resizing to the network's input is silent up to these factors; beyond them the tools say so
# (the depth of a 40x30 thumbnail blown up eightfold, or of a panorama squeezed to 4:3, is
# rarely what was meant).
MAX_UPSCALE = 2.0
MAX_ASPECT_CHANGE = 2.0


Sample = tuple[list[Any], Any, list[Any]]
Transform = Callable[[list[Any], Any, list[Any]], Sample]


def _image_size(images: Sequence[np.ndarray]) -> tuple[int, int]:
    if not images:
        raise ValueError("a transform needs at least one image")
    H, W = images[0].shape[:2]
    return H, W


def _resize(arr: np.ndarray, height: int, width: int) -> np.ndarray:
    """cv2 bilinear resize of an image ``[H,W,3]`` to ``[height,width,3]``."""
    if arr.shape[:2] == (height, width):
        return arr
    return cv2.resize(arr, (width, height), interpolation=cv2.INTER_LINEAR)


def resize_map(arr: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of a per-pixel map ``[H,W]`` to ``[height,width]``.

    Maps (depth priors, masks) are never interpolated: blending two depths across an object
    edge makes a depth that exists on neither side, exactly where the V3 ranking losses
    sample (the public code resizes priors with nearest sampling too). Pixel-centre aligned
    (``INTER_NEAREST_EXACT``), like the bilinear resize of the image, so a map pixel stays on
    the image pixel it belongs to; cv2's ``INTER_NEAREST``, which the public code uses,
    shifts it by up to half a pixel towards the top left.
    """
    if arr.shape[:2] == (height, width):
        return arr
    return cv2.resize(arr, (width, height), interpolation=cv2.INTER_NEAREST_EXACT)


def resize_note(height: int, width: int, net_height: int, net_width: int) -> str | None:
    """Why resizing a ``height × width`` image to the network input ``net_height ×
    net_width`` deserves a word, or None: enlarged more than MAX_UPSCALE times on a side,
    or its aspect ratio changed more than MAX_ASPECT_CHANGE times."""
    upscale = max(net_height / height, net_width / width)
    aspect = (width / height) / (net_width / net_height)
    if upscale > MAX_UPSCALE:
        return (f"{width}x{height} is enlarged {upscale:.1f}x to the network's "
                f"{net_width}x{net_height}")
    if max(aspect, 1 / aspect) > MAX_ASPECT_CHANGE:
        return (f"{width}x{height} is stretched to the network's {net_width}x{net_height} (aspect "
                f"ratio {width / height:.2f} -> {net_width / net_height:.2f})")
    return None


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms = list(transforms)

    def __call__(self, images: list[Any], K: Any, maps: list[Any]) -> Sample:
        for t in self.transforms:
            images, K, maps = t(images, K, maps)
        return images, K, maps

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self.transforms)
        return f"Compose([{inner}])"


class RandomHorizontalFlip:
    """Flip all images and maps left-right with probability ``p``; ``cx ← W - cx``."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, images: list[np.ndarray], K: np.ndarray,
                 maps: list[np.ndarray]) -> Sample:
        if np.random.rand() >= self.p:
            return images, K, maps
        _, W = _image_size(images)
        # cv2.flip writes a new contiguous array (a numpy view would have negative strides)
        images = [cv2.flip(im, 1) for im in images]
        maps = [cv2.flip(m, 1) for m in maps]
        return images, flip_intrinsics(K, W), maps

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class RandomScaleCrop:
    """Zoom in by independent factors ``sx, sy`` in [1, max_scale], then crop back to H×W.

    The zoomed size is ``(round(H·sy), round(W·sx))``; K is scaled by the exact ratios of
    the rounded size and then shifted by the random crop offset ``(ox, oy)``.

    With ``height`` and ``width`` the crop is also resized to ``height × width`` (as
    :class:`Resize` after it would), in one resampling instead of two: each output pixel
    samples the source image once (``cv2.warpAffine``, bilinear; maps nearest) at the point
    that the zoom, the crop and the resize put it, so the full-size zoomed frame is never
    made. Same draws, same K; pixel values differ from the two-step result only by the one
    interpolation less and by warpAffine's sub-pixel positions (1/32 pixel).
    """

    def __init__(self, max_scale: float = 1.15, height: int | None = None,
                 width: int | None = None) -> None:
        if max_scale < 1.0:
            raise ValueError(f"max_scale must be >= 1, got {max_scale}")
        if (height is None) != (width is None):
            raise ValueError("give both height and width, or neither")
        self.max_scale = max_scale
        self.height, self.width = height, width

    def __call__(self, images: list[np.ndarray], K: np.ndarray,
                 maps: list[np.ndarray]) -> Sample:
        H, W = _image_size(images)
        sx, sy = np.random.uniform(1.0, self.max_scale, 2)
        scaled_h, scaled_w = round(H * sy), round(W * sx)
        oy = np.random.randint(scaled_h - H + 1)
        ox = np.random.randint(scaled_w - W + 1)
        K = scale_intrinsics(K, scaled_w / W, scaled_h / H)
        K = crop_intrinsics(K, ox, oy)
        if self.height is None or self.width is None:
            images = [_resize(im, scaled_h, scaled_w)[oy:oy + H, ox:ox + W] for im in images]
            maps = [resize_map(m, scaled_h, scaled_w)[oy:oy + H, ox:ox + W] for m in maps]
            return images, K, maps
        h, w = self.height, self.width
        # cv2's resizes map pixel centres, x_src = (x_dst + 0.5)·(src/dst) − 0.5; chained
        # (zoom by f = scaled/size, crop at o, resize by r = size/out):
        # x_src = ((x_out + 0.5)·r + o) / f − 0.5
        fx, fy, rx, ry = scaled_w / W, scaled_h / H, W / w, H / h
        M = np.array([[rx / fx, 0.0, (0.5 * rx + ox) / fx - 0.5],
                      [0.0, ry / fy, (0.5 * ry + oy) / fy - 0.5]])
        images = [_warp(im, M, h, w, cv2.INTER_LINEAR) for im in images]
        maps = [_warp(m, M, h, w, cv2.INTER_NEAREST) for m in maps]
        return images, scale_intrinsics(K, w / W, h / H), maps

    def __repr__(self) -> str:
        size = "" if self.height is None else f", height={self.height}, width={self.width}"
        return f"RandomScaleCrop(max_scale={self.max_scale}{size})"


def _warp(arr: np.ndarray, M: np.ndarray, height: int, width: int, interpolation: int
          ) -> np.ndarray:
    """``out[y, x] = arr`` sampled at ``M · (x, y, 1)`` (edge pixels repeated beyond the
    border, as cv2.resize does)."""
    return cv2.warpAffine(arr, M, (width, height), flags=interpolation | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


class Resize:
    """Resize all images (bilinear) and maps (nearest) to ``height × width``; K scaled."""

    def __init__(self, height: int, width: int) -> None:
        self.height = height
        self.width = width

    def __call__(self, images: list[np.ndarray], K: np.ndarray,
                 maps: list[np.ndarray]) -> Sample:
        H, W = _image_size(images)
        images = [_resize(im, self.height, self.width) for im in images]
        maps = [resize_map(m, self.height, self.width) for m in maps]
        return images, scale_intrinsics(K, self.width / W, self.height / H), maps

    def __repr__(self) -> str:
        return f"Resize(height={self.height}, width={self.width})"


class ToTensor:
    """numpy → torch: images to normalised ``[3,H,W]`` (``formats.normalize_image``), maps to
    ``[1,H,W]``, K to ``[3,3]``, all float32."""

    def __call__(self, images: list[np.ndarray], K: np.ndarray,
                 maps: list[np.ndarray]) -> Sample:
        tensors = [normalize_image(im) for im in images]
        map_tensors = [torch.from_numpy(np.ascontiguousarray(m, dtype=np.float32))[None]
                       for m in maps]
        return tensors, torch.as_tensor(np.asarray(K), dtype=torch.float32), map_tensors

    def __repr__(self) -> str:
        return "ToTensor()"
