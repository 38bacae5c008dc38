"""Intrinsics that follow image resizes, crops and flips (docs/method.md, Geometry).

Every function takes ``K`` as a numpy array or a torch tensor of shape ``[...,3,3]`` and
returns a new array/tensor of the same kind (the input is never modified in place), so the
same code serves the numpy data pipeline and batched tensors.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

__all__ = ["crop_intrinsics", "flip_intrinsics", "scale_intrinsics"]

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


def _copy(K: ArrayT) -> ArrayT:
    """A floating-point copy of ``K`` (integer matrices would truncate scaled values)."""
    if isinstance(K, torch.Tensor):
        return K.clone() if K.is_floating_point() else K.to(torch.get_default_dtype())
    if isinstance(K, np.ndarray):
        return K.copy() if np.issubdtype(K.dtype, np.floating) else K.astype(np.float64)
    raise TypeError(f"K must be a numpy array or a torch tensor, got {type(K).__name__}")


def scale_intrinsics(K: ArrayT, sx: float, sy: float) -> ArrayT:
    """Intrinsics of the image resized by ``sx`` horizontally and ``sy`` vertically.

    K: ``[...,3,3]``. The first row (``fx, s, cx``) is multiplied by ``sx`` and the second
    (``0, fy, cy``) by ``sy``.
    """
    out = _copy(K)
    out[..., 0, :] = out[..., 0, :] * sx
    out[..., 1, :] = out[..., 1, :] * sy
    return out


def crop_intrinsics(K: ArrayT, ox: float, oy: float) -> ArrayT:
    """Intrinsics of the image cropped with its new top-left corner at column ``ox``, row ``oy``.

    K: ``[...,3,3]``: ``cx -= ox``, ``cy -= oy``.
    """
    out = _copy(K)
    out[..., 0, 2] = out[..., 0, 2] - ox
    out[..., 1, 2] = out[..., 1, 2] - oy
    return out


def flip_intrinsics(K: ArrayT, W: int) -> ArrayT:
    """Intrinsics of the image flipped left-right, ``W`` being its width.

    K: ``[...,3,3]``: ``cx ← W - cx`` (as the public implementation does; the exact mirror of
    pixel centres would be ``W - 1 - cx``).
    """
    out = _copy(K)
    out[..., 0, 2] = W - out[..., 0, 2]
    return out
