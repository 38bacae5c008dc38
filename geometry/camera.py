"""Pinhole camera geometry on batched tensors: back-project, transform, project, warp.

Conventions (stated once, used by every function here):

- Pixel ``(row i, column j)`` has its centre at ``(u, v) = (j, i)`` (OpenCV). ``K`` is a 3×3
  intrinsics matrix in pixels. Camera axes are OpenCV's: x right, y down, z forward.
- Sampling uses ``grid_sample(..., align_corners=True)`` with ``x_norm = 2u/(W-1) - 1`` and
  ``y_norm = 2v/(H-1) - 1``: with ``align_corners=True``, -1 and +1 are the centres of the
  first and last pixels, which is exactly the pixel-centre convention above (the public
  implementation normalised by ``W-1`` but sampled with ``align_corners=False``, a sub-pixel
  shift that we fix; docs/method.md, departures).
- A pose is named by the frames it maps: ``ref_T_tgt`` ``[B,3,4] = [R | t]`` maps a point
  ``X_tgt`` expressed in the target camera frame to ``X_ref = R · X_tgt + t`` in the
  reference camera frame (``T_t→r``, what ``PoseNet(tgt, ref)`` predicts).

Everything is a pure function of its inputs (no grids cached for a batch size), works in any
floating dtype and is differentiable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from geometry.pose import euler2mat

__all__ = [
    "backproject",
    "inverse_warp",
    "pixel_grid",
    "pixels_to_grid",
    "project",
    "rotation_warp",
    "rotation_warp_valid",
    "transform_points",
]


def pixel_grid(
    B: int,
    H: int,
    W: int,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Homogeneous pixel coordinates of every pixel centre.

    Returns ``[B,3,H,W]`` with channels ``(u, v, 1)``, ``u`` the column and ``v`` the row.
    """
    dtype = dtype if dtype is not None else torch.get_default_dtype()
    v, u = torch.meshgrid(
        torch.arange(H, device=device, dtype=dtype),
        torch.arange(W, device=device, dtype=dtype),
        indexing="ij",
    )
    grid = torch.stack([u, v, torch.ones_like(u)], dim=0)  # [3,H,W]
    return grid.unsqueeze(0).expand(B, 3, H, W)


def backproject(depth: torch.Tensor, K_inv: torch.Tensor) -> torch.Tensor:
    """Lift every pixel to 3-D: ``X = D(p) · K⁻¹ · [u, v, 1]ᵀ``.

    depth: ``[B,1,H,W]``; K_inv: ``[B,3,3]``. Returns points ``[B,3,H,W]`` in the camera frame.
    """
    B, _, H, W = depth.shape
    pix = pixel_grid(B, H, W, device=depth.device, dtype=depth.dtype).reshape(B, 3, H * W)
    rays = (K_inv.to(depth.dtype) @ pix).reshape(B, 3, H, W)
    return rays * depth


def transform_points(points: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
    """Apply a rigid transform ``[R | t]`` to a map of points.

    points: ``[B,3,H,W]``; T: ``[B,3,4]`` (e.g. ``ref_T_tgt``). Returns ``R·X + t`` ``[B,3,H,W]``.
    """
    B, _, H, W = points.shape
    R, t = T[:, :, :3], T[:, :, 3:]
    out = R @ points.reshape(B, 3, H * W) + t
    return out.reshape(B, 3, H, W)


def project(
    points: torch.Tensor, K: torch.Tensor, eps: float = 1e-3
) -> tuple[torch.Tensor, torch.Tensor]:
    """Project camera-frame points to pixels: ``p' = K·X``, ``u' = p'_x/p'_z``, ``v' = p'_y/p'_z``.

    points: ``[B,3,H,W]``; K: ``[B,3,3]``.
    Returns ``(pixels [B,2,H,W], z [B,1,H,W])``. ``z`` is the raw depth of the points (it may be
    ≤ 0 for points behind the camera: callers test ``z > eps`` for validity); the division
    uses ``z`` clamped to ``eps`` so that such points give finite pixels instead of inf/NaN.
    """
    B, _, H, W = points.shape
    cam = (K.to(points.dtype) @ points.reshape(B, 3, H * W)).reshape(B, 3, H, W)
    z = cam[:, 2:3]
    pixels = cam[:, :2] / z.clamp(min=eps)
    # The depth of a point is its z coordinate in the camera frame; K's last row is [0,0,1]
    # for a pinhole camera, so cam z equals points z. Return the points' own z so that a
    # non-standard last row cannot leak into depths.
    return pixels, points[:, 2:3]


def pixels_to_grid(pixels: torch.Tensor) -> torch.Tensor:
    """Normalise pixel coordinates for ``grid_sample(..., align_corners=True)``.

    pixels: ``[B,2,H,W]`` ``(u, v)``. Returns grid ``[B,H,W,2]`` with
    ``x = 2u/(W-1) - 1``, ``y = 2v/(H-1) - 1`` (pixel centres 0 and W-1 map to -1 and +1).
    """
    _, _, H, W = pixels.shape
    # max(·, 1) keeps one-pixel-wide maps finite (their only centre maps to -1).
    x = 2.0 * pixels[:, 0] / max(W - 1, 1) - 1.0
    y = 2.0 * pixels[:, 1] / max(H - 1, 1) - 1.0
    return torch.stack([x, y], dim=-1)


def inverse_warp(
    ref_img: torch.Tensor,
    tgt_depth: torch.Tensor,
    ref_depth: torch.Tensor,
    ref_T_tgt: torch.Tensor,
    K: torch.Tensor,
    eps: float = 1e-3,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Synthesise the target view by sampling the reference image where target pixels land.

    Each target pixel ``p`` is back-projected with its depth, moved into the reference frame
    with ``ref_T_tgt`` and projected: the reference image and depth are sampled there
    (bilinear, zeros padding, ``align_corners=True``).

    ref_img: ``[B,C,H,W]``; tgt_depth, ref_depth: ``[B,1,H,W]``; ref_T_tgt: ``[B,3,4]``;
    K: ``[B,3,3]``.
    Returns
        warped_img ``[B,C,H,W]``: the reference image seen from the target view;
        valid ``[B,1,H,W]`` float in {0,1}: the projection lands inside the image
        (``-1 ≤ x_norm, y_norm ≤ 1``) and in front of the reference camera (``z > eps``);
        projected_depth ``[B,1,H,W]``: ``ref_depth`` sampled at the projection;
        computed_depth ``[B,1,H,W]``: z of the target points in the reference frame, clamped
        to ``eps`` (only where the pixel is invalid) so that depth ratios stay finite.
    """
    K = K.to(tgt_depth.dtype)
    points = backproject(tgt_depth, torch.linalg.inv(K))
    points_ref = transform_points(points, ref_T_tgt.to(tgt_depth.dtype))
    pixels, z = project(points_ref, K, eps=eps)
    grid = pixels_to_grid(pixels)

    # One grid_sample call for image and depth (they share the grid).
    both = torch.cat([ref_img, ref_depth.to(ref_img.dtype)], dim=1)
    sampled = F.grid_sample(
        both, grid.to(both.dtype), mode="bilinear", padding_mode="zeros", align_corners=True
    )
    warped_img, projected_depth = sampled[:, :-1], sampled[:, -1:]

    inside = (grid.abs() <= 1.0).all(dim=-1, keepdim=True).permute(0, 3, 1, 2)
    valid = (inside & (z > eps)).to(ref_img.dtype)
    return warped_img, valid, projected_depth, z.clamp(min=eps)


def rotation_warp(img: torch.Tensor, rot: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Warp an image by a pure camera rotation (V2's rectification).

    A target pixel ``p`` samples ``img`` at ``K·R·K⁻¹·p`` with ``R = euler2mat(rot)``: the
    inverse warp with depth 1 and ``t = 0`` (depth does not matter for a pure rotation).

    img: ``[B,C,H,W]``; rot: ``[B,3]`` Euler angles ``(rx, ry, rz)``; K: ``[B,3,3]``.
    Returns warped ``[B,C,H,W]`` (zeros where the rotated ray leaves the image).
    """
    return rotation_warp_valid(img, rot, K)[0]


def rotation_warp_valid(img: torch.Tensor, rot: torch.Tensor, K: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`rotation_warp` and where it is valid: ``(warped [B,C,H,W], valid [B,1,H,W]``
    float in {0,1}, the rotated ray lands inside the image)."""
    B, _, H, W = img.shape
    R = euler2mat(rot.to(img.dtype))
    T = torch.cat([R, R.new_zeros(B, 3, 1)], dim=2)
    ones = img.new_ones(B, 1, H, W)
    warped, valid, _, _ = inverse_warp(img, ones, ones, T, K.to(img.dtype))
    return warped, valid
