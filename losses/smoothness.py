"""Edge-aware depth smoothness (docs/method.md, V1)."""

from __future__ import annotations

import torch

__all__ = ["edge_aware_smoothness"]


def edge_aware_smoothness(depth: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
    """First-order smoothness of depth, relaxed where the image has edges.

    depth: ``[B,1,H,W]``; img: ``[B,3,H,W]``. Returns the scalar
    ``mean(|∂x d|·exp(−mean_c|∂x I|)) + mean(|∂y d|·exp(−mean_c|∂y I|))`` with ``d`` the depth
    divided by its per-image mean.
    """
    # Normalising by the mean makes the term scale-invariant: otherwise the cheapest way to
    # lower it would be to shrink the whole depth map, which the photometric loss (itself
    # blind to scale) would not resist.
    d = depth / (depth.mean(dim=(2, 3), keepdim=True) + 1e-7)
    grad_d_x = (d[:, :, :, :-1] - d[:, :, :, 1:]).abs()
    grad_d_y = (d[:, :, :-1, :] - d[:, :, 1:, :]).abs()
    grad_i_x = (img[:, :, :, :-1] - img[:, :, :, 1:]).abs().mean(dim=1, keepdim=True)
    grad_i_y = (img[:, :, :-1, :] - img[:, :, 1:, :]).abs().mean(dim=1, keepdim=True)
    return (grad_d_x * torch.exp(-grad_i_x)).mean() + (grad_d_y * torch.exp(-grad_i_y)).mean()
