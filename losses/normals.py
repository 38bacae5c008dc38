"""Surface normals from depth and the V3 normal-matching loss (SPEC §3 V3).

Sign convention: normals point **towards the camera**, ``n · X < 0`` (camera axes OpenCV:
x right, y down, z forward), so a fronto-parallel plane has the normal ``(0, 0, −1)``.

With forward differences ``t_u = X(u+1, v) − X(u, v)`` and ``t_v = X(u, v+1) − X(u, v)`` the
normal is ``normalize(t_v × t_u)``. That orientation is not a choice made per pixel: for any
strictly positive depth, ``(t_v × t_u) · X(u, v) = −D(u+1,v)·D(u,v+1)·D(u,v)·det(K⁻¹) < 0``
exactly (the three rays through neighbouring pixel centres are never coplanar), so the
cross product never vanishes and always faces the camera.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["depth_to_normals", "normal_matching_loss", "NormalMatchingLoss"]

# Added under the square root when normalising: keeps a zero cross product (only possible
# where the depth is 0, i.e. an invalid prior pixel) finite instead of 0/0. The depth is
# divided by its per-image mean first, so even a pixel 1000× nearer than the mean at a focal
# length of 10^4 px has |cross| ≈ 1e-14, far above this value (and its square, 1e-36, is
# still a normal float32).
_NORMAL_EPS = 1e-18


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
    # Normals are invariant to a global scale of the depth; dividing by the per-image mean
    # puts every input at the same magnitude, so the eps of the normalisation is relative.
    scale = depth.mean(dim=(1, 2, 3), keepdim=True).clamp_min(torch.finfo(depth.dtype).tiny)
    points = _backproject(depth / scale, K_inv)
    t_u = points[..., :, 1:] - points[..., :, :-1]
    t_u = torch.cat([t_u, t_u[..., :, -1:]], dim=-1)
    t_v = points[..., 1:, :] - points[..., :-1, :]
    t_v = torch.cat([t_v, t_v[..., -1:, :]], dim=-2)
    normal = torch.linalg.cross(t_v, t_u, dim=1)
    # Smooth normalisation (no clamp): finite value and gradient even at a zero vector.
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
