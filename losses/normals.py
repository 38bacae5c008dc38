"""Surface normals from depth and the V3 normal-matching loss (SPEC §3 V3).

Sign convention: normals point **towards the camera**, ``n · X < 0`` (camera axes OpenCV:
x right, y down, z forward), so a fronto-parallel plane has the normal ``(0, 0, −1)``.

With forward differences ``t_u = X(u+1, v) − X(u, v)`` and ``t_v = X(u, v+1) − X(u, v)`` the
normal is ``normalize(t_v × t_u)``. That orientation is not a choice made per pixel: for any
strictly positive depth and positive focal lengths,
``(t_v × t_u) · X(u, v) = −D(u+1,v)·D(u,v+1)·D(u,v)·det(K⁻¹) < 0`` exactly (the rays through
three neighbouring pixel centres are never coplanar; the border pixels, whose tangents are
repeated from their neighbours, use another such triple with the same sign), so the cross
product never vanishes and always faces the camera.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["NormalMatchingLoss", "depth_to_normals", "normal_matching_loss"]

# The cross product is first divided by its largest absolute component (detached: any
# positive per-pixel factor leaves the direction, and so the value and gradient of the unit
# normal, unchanged). Its magnitude ~ (D/f)² spans many decades (1e-14 for D = 1 mm at
# f = 10⁴ px), which would overflow the float32 backward of a plain normalisation; after the
# division it is in [1, √3]. _SCALE_FLOOR keeps a zero cross product (only possible where
# the depth is 0, an invalid prior pixel) at 0 instead of 0/0, and _NORMAL_EPS then adds a
# negligible 1e-12 to a squared norm of at least 1.
_SCALE_FLOOR = 1e-30
_NORMAL_EPS = 1e-6


def _backproject(depth: torch.Tensor, K_inv: torch.Tensor) -> torch.Tensor:
    """X = D · K⁻¹ · [u, v, 1]ᵀ with pixel centres (u, v) = (column, row).

    depth: ``[B,1,H,W]``, K_inv: ``[B,3,3]`` -> points ``[B,3,H,W]``. Kept local (a few lines)
    so this module does not depend on ``geometry``.
    """
    B, _, H, W = depth.shape
    v, u = torch.meshgrid(
        torch.arange(H, device=depth.device, dtype=depth.dtype),
        torch.arange(W, device=depth.device, dtype=depth.dtype),
        indexing="ij",
    )
    pix = torch.stack([u, v, torch.ones_like(u)]).reshape(1, 3, H * W)
    rays = K_inv.to(depth.dtype) @ pix  # [B,3,H*W]
    return rays.reshape(B, 3, H, W) * depth


def depth_to_normals(depth: torch.Tensor, K_inv: torch.Tensor) -> torch.Tensor:
    """Unit surface normals of a depth map, oriented towards the camera (``n · X < 0``).

    depth: ``[B,1,H,W]`` (> 0 where valid; 0 gives a zero normal), K_inv: ``[B,3,3]``.
    Returns normals ``[B,3,H,W]``.

    The 3-D points are differenced forwards along columns (``∂X/∂u``) and rows (``∂X/∂v``);
    the last column's / row's difference is repeated (replicate padding of the gradients, not
    of the points, so border pixels get a real tangent instead of a zero one and the output
    keeps H×W). For a plane every tangent lies in the plane, so its normal is exact everywhere.
    """
    points = _backproject(depth, K_inv)
    t_u = points[..., :, 1:] - points[..., :, :-1]
    t_u = torch.cat([t_u, t_u[..., :, -1:]], dim=-1)
    t_v = points[..., 1:, :] - points[..., :-1, :]
    t_v = torch.cat([t_v, t_v[..., -1:, :]], dim=-2)
    normal = torch.linalg.cross(t_v, t_u, dim=1)
    scale = normal.detach().abs().amax(dim=1, keepdim=True).clamp_min(_SCALE_FLOOR)
    normal = normal / scale
    return normal * torch.rsqrt((normal * normal).sum(dim=1, keepdim=True) + _NORMAL_EPS**2)


def normal_matching_loss(
    pred_depth: torch.Tensor, prior_depth: torch.Tensor, K_inv: torch.Tensor
) -> torch.Tensor:
    """``mean |n(D_pred) − n(D_prior)|`` over pixels and the three components.

    pred_depth, prior_depth: ``[B,1,H,W]``, K_inv: ``[B,3,3]``. Returns a scalar.

    The prior (a single-image relative depth) is known only up to an unknown scale; normals
    are invariant to it (``n(s·D) = n(D)`` for any s > 0, since every point and tangent is
    scaled by s), so it can be compared with the prediction without any alignment. The prior
    is a fixed target: no gradient flows into it.
    """
    with torch.no_grad():
        prior_normals = depth_to_normals(prior_depth.detach(), K_inv)
    return (depth_to_normals(pred_depth, K_inv) - prior_normals).abs().mean()


class NormalMatchingLoss(nn.Module):
    """Module form of :func:`normal_matching_loss` (weight ``--normal_matching_weight``).

    forward(pred_depth ``[B,1,H,W]``, prior_depth ``[B,1,H,W]``, K_inv ``[B,3,3]``) -> scalar.
    """

    def forward(
        self, pred_depth: torch.Tensor, prior_depth: torch.Tensor, K_inv: torch.Tensor
    ) -> torch.Tensor:
        return normal_matching_loss(pred_depth, prior_depth, K_inv)
