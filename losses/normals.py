"""The V3 normal-matching loss (docs/method.md, V3).

Normals come from :func:`geometry.depth_to_normals` (kornia's Sobel normals, as the public
code computes them).
"""

from __future__ import annotations

import torch
from torch import nn

from geometry import depth_to_normals

__all__ = ["NormalMatchingLoss", "normal_matching_loss"]


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
