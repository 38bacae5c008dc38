"""Direct (photometric) alignment of two images by a pure camera rotation.

A learnt rotation regressor (V2's ARN) gets the rotation between two frames roughly right
but stays noisy; the photometric error of the rotation warp has a sharp minimum near the
rotation that best explains the image motion, yet it is flat far from it. So the two are
complementary: starting from the network's estimate, a few Gauss-Newton steps on the warp's
intensity error land in that minimum (docs/method.md, V2, ``--arn_refine``).

Conventions as in :mod:`geometry.camera`: ``rot`` are Euler angles ``(rx, ry, rz)`` in
radians, and ``rotation_warp(ref, rot, K)`` makes target pixel ``p`` sample ``ref`` at
``K·R·K⁻¹·p``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from geometry.camera import rotation_warp_valid
from geometry.intrinsics import crop_intrinsics, scale_intrinsics

__all__ = ["refine_rotation"]

# Pyramid levels (downsampling factors) and Gauss-Newton steps at each, coarse to fine. The
# 4× level widens the basin to a few pixels at full size, the finest one sets the precision.
LEVELS = (4, 2, 1)
STEPS = (10, 5, 3)
# Central-difference step of the Jacobian (radians, ~0.06°): grid_sample has no forward-mode
# derivative, and three pairs of extra warps are cheaper than per-pixel backward passes.
FD_STEP = 1e-3
# Residuals above this many times the mean absolute one are down-weighted (Huber IRLS), so
# moving objects and parallax do not pull the rotation.
HUBER = 3.0
# No single Gauss-Newton update may turn any angle by more than this (radians).
MAX_UPDATE = 0.05


def _pooled(gray: torch.Tensor, K: torch.Tensor, factor: int
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Average-pool by ``factor``; pooled pixel ``j`` has its centre at old ``factor·j +
    (factor−1)/2``, so K is shifted by that and scaled by ``1/factor``."""
    if factor == 1:
        return gray, K
    shift = (factor - 1) / 2
    return (F.avg_pool2d(gray, factor),
            scale_intrinsics(crop_intrinsics(K, shift, shift), 1 / factor, 1 / factor))


def _masked_l1(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean ``|a − b|`` ``[B]`` over the pixels of ``mask`` ``[B,1,H,W]``."""
    return ((a - b).abs() * mask).flatten(1).sum(1) / mask.flatten(1).sum(1).clamp(min=1)


@torch.no_grad()
def refine_rotation(tgt: torch.Tensor, ref: torch.Tensor, rot: torch.Tensor,
                    K: torch.Tensor) -> torch.Tensor:
    """Refine the rotation ``rot`` from ``tgt`` to ``ref`` by direct image alignment.

    Minimises the robust (Huber) intensity error between ``tgt`` and
    ``rotation_warp(ref, rot, K)`` over the pixels the warp keeps in view, by Gauss-Newton
    on the three Euler angles, coarse to fine (:data:`LEVELS`, :data:`STEPS`), on the
    images' channel mean. Per pair, the result replaces ``rot`` only where it lowers the
    full-resolution mean absolute error over the pixels that both rotations keep in view,
    so an image without texture keeps its start.

    tgt, ref: ``[B,C,H,W]``; rot: ``[B,3]`` radians (the start, e.g. ARN's); K: ``[B,3,3]``
    at the images' size. Returns the refined ``[B,3]`` in ``rot``'s dtype. Computed in
    float32 at least; no gradient (the update is a fixed-point search, not a layer).
    """
    dtype = torch.promote_types(rot.dtype, torch.float32)
    gray_t = tgt.to(dtype).mean(1, keepdim=True)
    gray_r = ref.to(dtype).mean(1, keepdim=True)
    K = K.to(dtype)
    start = rot.to(dtype)
    current = start.clone()
    eye = torch.eye(3, dtype=dtype, device=rot.device)
    for factor, steps in zip(LEVELS, STEPS):
        t, Kl = _pooled(gray_t, K, factor)
        r, _ = _pooled(gray_r, K, factor)
        for _ in range(steps):
            warped, mask = rotation_warp_valid(r, current, Kl)
            columns = []
            for k in range(3):
                delta = torch.zeros_like(current)
                delta[:, k] = FD_STEP
                plus, valid_p = rotation_warp_valid(r, current + delta, Kl)
                minus, valid_m = rotation_warp_valid(r, current - delta, Kl)
                columns.append(((plus - minus) / (2 * FD_STEP)).flatten(1))
                mask = mask * valid_p * valid_m
            J = torch.stack(columns, dim=-1)  # [B,N,3]
            m = mask.flatten(1)
            res = (warped - t).flatten(1)
            scale = (res.abs() * m).sum(1, keepdim=True) / m.sum(1, keepdim=True).clamp(min=1)
            w = m * torch.clamp(HUBER * scale / res.abs().clamp(min=1e-12), max=1.0)
            H = torch.einsum("bni,bn,bnj->bij", J, w, J) + 1e-6 * eye
            g = torch.einsum("bni,bn,bn->bi", J, w, res)
            current = current - torch.linalg.solve(H, g).clamp(-MAX_UPDATE, MAX_UPDATE)
    # Keep the refinement only where it helps, on the pixels both rotations keep in view.
    warped_start, valid_start = rotation_warp_valid(gray_r, start, K)
    warped_end, valid_end = rotation_warp_valid(gray_r, current, K)
    both = valid_start * valid_end
    better = _masked_l1(warped_end, gray_t, both) < _masked_l1(warped_start, gray_t, both)
    better = better.unsqueeze(1)
    return torch.where(better, current, start).to(rot.dtype)
