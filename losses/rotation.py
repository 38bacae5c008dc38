"""V2's losses for the auto-rectify network (ARN) (docs/method.md, V2).

ARN(a, b) predicts the rotation ``rot`` (Euler angles) such that ``rotation_warp(b, rot, K)``
looks like ``a`` up to translation. Two self-supervised losses train it:

- rotation consistency: on a pair whose rotation is known, ARN must recover it;
- rotation triplet: a rectified reference must be closer in rotation to the target than
  the raw reference was (``|rot2| < |rot1|`` by a margin).

The "known rotation" pair comes from :func:`select_rotation_target`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from geometry import rotation_warp

__all__ = [
    "ROT_MAX_RANDOM",
    "ROT_TRUST_RANGE",
    "TRIPLET_MARGIN",
    "random_rotation_pair",
    "rotation_consistency_loss",
    "rotation_triplet_loss",
    "select_rotation_target",
]

# ARN's own prediction is trusted as a label only inside this range of mean |rot1| (radians):
# below it the pair barely rotates (a label ~0 teaches nothing), above it the prediction is
# more likely wrong than a real hand-held rotation between neighbouring frames.
ROT_TRUST_RANGE = (0.02, 0.1)
# Otherwise a synthetic rotation is drawn uniformly in [-0.05, 0.05] rad (~3°) per angle.
ROT_MAX_RANDOM = 0.05
TRIPLET_MARGIN = 0.05


def rotation_consistency_loss(rot3: Tensor, rot3_gt: Tensor) -> Tensor:
    """``mean|rot3 − rot3_gt|``: ARN's prediction on a pair with a known rotation.

    rot3, rot3_gt: ``[B,3]`` Euler angles. Returns a scalar.
    """
    return (rot3 - rot3_gt).abs().mean()


def rotation_triplet_loss(rot1: Tensor, rot2: Tensor, margin: float = TRIPLET_MARGIN) -> Tensor:
    """``mean(max(|rot2| − |rot1| + margin, 0))``, element-wise over the angles.

    rot1: ``[B,3]`` ARN(tgt, r); rot2: ``[B,3]`` ARN(tgt, r') with ``r'`` the reference
    rectified by ``rot1``. The rectified pair must be at least ``margin`` rad less rotated
    than the raw one (a triplet: target anchor, rectified positive, raw negative).
    Returns a scalar.
    """
    return torch.clamp(rot2.abs() - rot1.abs() + margin, min=0).mean()


def random_rotation_pair(
    ref: Tensor,
    K: Tensor,
    max_random: float = ROT_MAX_RANDOM,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor]:
    """A known rotation and the image it makes of ``ref``: ``rot_gt`` uniform in
    ``[-max_random, max_random]`` per angle and sample, ``w = rotation_warp(ref, rot_gt, K)``.

    ref: ``[B,3,H,W]``; K: ``[B,3,3]``. generator: source of the draw (None: torch's global
    generator); the draw happens on the generator's device and is moved to ``ref``'s.
    Returns ``(rot_gt [B,3], w [B,3,H,W])``, neither with a graph (the label is fixed).
    """
    device = generator.device if generator is not None else ref.device
    u = torch.rand((ref.shape[0], 3), generator=generator, device=device, dtype=dtype)
    rot_gt = ((2.0 * u - 1.0) * max_random).to(ref.device)
    with torch.no_grad():
        w = rotation_warp(ref, rot_gt, K)
    return rot_gt, w


def select_rotation_target(
    rot1: Tensor,
    ref: Tensor,
    rectified: Tensor,
    K: Tensor,
    generator: torch.Generator | None = None,
    trust_range: tuple[float, float] | None = ROT_TRUST_RANGE,
    max_random: float = ROT_MAX_RANDOM,
) -> tuple[Tensor, Tensor, bool]:
    """The self-supervision pair of ARN: a rotation label and the image it produces from ``ref``.

    If ``trust_range[0] < mean|rot1| < trust_range[1]`` ARN's own rotation is the label:
    ``rot3_gt = rot1.detach()`` and ``w = rectified.detach()`` (``rectified`` is
    ``rotation_warp(ref, rot1, K)``). Otherwise (and always when ``trust_range`` is None)
    the label is a known random rotation (:func:`random_rotation_pair`, ``max_random``).
    The caller then regresses ``ARN(w, ref)`` onto ``rot3_gt``.

    The choice is made once per batch, as the paper does: ``mean|rot1|`` is the mean over
    the whole ``[B,3]`` tensor (batch and angles), so all samples of a batch take the same
    branch. (Reading it reaches the host once per call; it decides a Python branch.)

    rot1: ``[B,3]``; ref, rectified: ``[B,3,H,W]``; K: ``[B,3,3]``.
    Returns ``(rot3_gt [B,3] (no grad), w [B,3,H,W] (no grad), used_prediction)``.
    """
    if trust_range is not None:
        low, high = trust_range
        mean_rot = float(rot1.detach().abs().mean())
        if low < mean_rot < high:
            return rot1.detach(), rectified.detach(), True
    rot3_gt, w = random_rotation_pair(ref, K, max_random, generator, rot1.dtype)
    return rot3_gt, w, False
