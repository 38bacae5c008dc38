"""Euler angles and 6-DoF pose vectors to matrices.

Convention: ``R = Rx(rx) · Ry(ry) · Rz(rz)`` (as the public SC-Depth / SfMLearner code), a pose
vector is ``[tx, ty, tz, rx, ry, rz]`` and its matrix is ``[R | t]`` ``[B,3,4]``, mapping
points of the first image's camera frame into the second's (``ref_T_tgt`` for
``PoseNet(tgt, ref)``; see ``geometry.camera``).
"""

from __future__ import annotations

import torch

__all__ = ["euler2mat", "mat2euler", "pose_vec2mat"]


def euler2mat(angles: torch.Tensor) -> torch.Tensor:
    """Rotation matrices from Euler angles.

    angles: ``[B,3]`` ``(rx, ry, rz)`` in radians. Returns ``R = Rx·Ry·Rz`` ``[B,3,3]``.
    """
    rx, ry, rz = angles[:, 0], angles[:, 1], angles[:, 2]
    zeros, ones = torch.zeros_like(rx), torch.ones_like(rx)
    cx, sx = torch.cos(rx), torch.sin(rx)
    cy, sy = torch.cos(ry), torch.sin(ry)
    cz, sz = torch.cos(rz), torch.sin(rz)

    def mat(*rows: torch.Tensor) -> torch.Tensor:
        return torch.stack(rows, dim=1).reshape(-1, 3, 3)

    Rx = mat(ones, zeros, zeros, zeros, cx, -sx, zeros, sx, cx)
    Ry = mat(cy, zeros, sy, zeros, ones, zeros, -sy, zeros, cy)
    Rz = mat(cz, -sz, zeros, sz, cz, zeros, zeros, zeros, ones)
    return Rx @ Ry @ Rz


def mat2euler(R: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`euler2mat` for ``|ry| < π/2``.

    R: ``[B,3,3]`` rotation matrices. Returns ``(rx, ry, rz)`` ``[B,3]`` radians.
    """
    rx = torch.atan2(-R[:, 1, 2], R[:, 2, 2])
    ry = torch.asin(R[:, 0, 2].clamp(-1.0, 1.0))
    rz = torch.atan2(-R[:, 0, 1], R[:, 0, 0])
    return torch.stack([rx, ry, rz], dim=1)


def pose_vec2mat(vec: torch.Tensor) -> torch.Tensor:
    """Pose matrices from pose vectors.

    vec: ``[B,6]`` ``(tx, ty, tz, rx, ry, rz)``. Returns ``[R | t]`` ``[B,3,4]``.
    """
    t = vec[:, :3].unsqueeze(-1)
    R = euler2mat(vec[:, 3:])
    return torch.cat([R, t], dim=2)
