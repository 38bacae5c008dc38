"""Surface normals of a depth map, as kornia computes them (``kornia.geometry.depth``).

The normal of pixel ``(u, v)`` is the cross product of the spatial derivatives of the
back-projected points, ``n = normalize(∂X/∂u × ∂X/∂v)``, with the derivatives taken by
kornia's normalised 3×3 Sobel filter (``kornia.filters.spatial_gradient``: kernel / 8,
replicate padding of the points). This is exactly what the public SC-Depth V3 code uses
(``kornia.geometry.depth.depth_to_normals``), and it matters: on a noisy depth map (an early
prediction, a real prior) Sobel normals, which average over 3×3 neighbourhoods, differ from
forward-difference normals by tens of degrees, so the V3 losses built on them would pull
towards different depths.

Orientation (kornia's): with camera axes x right, y down, z forward, ``∂X/∂u`` points right
and ``∂X/∂v`` down, so a surface facing the camera gets a normal pointing **away** from it
(a fronto-parallel plane: ``(0, 0, +1)``). The V3 losses only compare normals computed the
same way (``|n_p − n_q|``, ``|n_A·n_B|``), so the orientation is a convention, not a choice
that changes training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from geometry.camera import backproject

__all__ = ["depth_to_normals"]

# The cross product is first divided by its largest absolute component (detached: a positive
# per-pixel factor changes neither the direction nor, after normalisation, its gradient). Its
# magnitude ~ (D/f)² spans many decades, and squaring it for the norm would underflow float32
# for small depth units; after the division it lies in [1, √3] wherever it is not zero.
# _SCALE_FLOOR keeps a zero cross product (a constant-point neighbourhood, e.g. depth 0) at
# 0 instead of 0/0, and F.normalize (kornia's normalisation, eps 1e-12) leaves it at 0.
_SCALE_FLOOR = 1e-30


def depth_to_normals(depth: torch.Tensor, K_inv: torch.Tensor) -> torch.Tensor:
    """Unit surface normals of a depth map (kornia's ``depth_to_normals``, from ``K⁻¹``).

    depth: ``[B,1,H,W]``; K_inv: ``[B,3,3]``. Returns normals ``[B,3,H,W]``, unit length
    where the 3×3 neighbourhood is not degenerate (zero where it is, e.g. all-zero depth).
    Equal to ``kornia.geometry.depth.depth_to_normals(depth, K)`` up to rounding, and
    invariant to the scale of the depth (``n(s·D) = n(D)`` for ``s > 0``).
    """
    # kornia's import takes a noticeable fraction of a second and only V3's losses need it
    from kornia.filters import spatial_gradient

    points = backproject(depth, K_inv)
    gradients = spatial_gradient(points, mode="sobel", order=1, normalized=True)  # [B,3,2,H,W]
    normal = torch.linalg.cross(gradients[:, :, 0], gradients[:, :, 1], dim=1)
    scale = normal.detach().abs().amax(dim=1, keepdim=True).clamp_min(_SCALE_FLOOR)
    return F.normalize(normal / scale, dim=1)
