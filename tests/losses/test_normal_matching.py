"""Tests of losses/normals.py: the normal-matching loss (normals: tests/geometry)."""

from __future__ import annotations

import pytest
import torch

from geometry import depth_to_normals
from losses.normals import NormalMatchingLoss, normal_matching_loss

H, W = 16, 20


def _k_inv(B: int = 1, f: float = 20.0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    K = torch.tensor([[f, 0.0, W / 2], [0.0, 1.1 * f, H / 2], [0.0, 0.0, 1.0]], dtype=dtype)
    return torch.linalg.inv(K).expand(B, 3, 3).clone()


def _rays(K_inv: torch.Tensor) -> torch.Tensor:
    """K⁻¹·[u, v, 1] for every pixel centre: [B,3,H,W]."""
    v, u = torch.meshgrid(
        torch.arange(H, dtype=K_inv.dtype), torch.arange(W, dtype=K_inv.dtype), indexing="ij"
    )
    pix = torch.stack([u, v, torch.ones_like(u)]).reshape(3, -1)
    return (K_inv @ pix).reshape(-1, 3, H, W)


def _plane_depth(normal: torch.Tensor, d: float, K_inv: torch.Tensor) -> torch.Tensor:
    """Depth of the plane n·X = d seen through K: D = d / (n·K⁻¹[u,v,1])."""
    rays = _rays(K_inv)
    return d / (normal.view(1, 3, 1, 1) * rays).sum(dim=1, keepdim=True)


def _random_depth(B: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 1.0 + 4.0 * torch.rand(B, 1, H, W, generator=g, dtype=torch.float64)


def test_normal_matching_zero_for_equal_or_scaled_depth_positive_otherwise():
    depth, K_inv = _random_depth(seed=4), _k_inv(2)
    assert normal_matching_loss(depth, depth, K_inv).item() == 0.0
    # The prior's unknown scale does not matter.
    assert normal_matching_loss(depth, 7.0 * depth, K_inv).item() < 1e-12
    other = _random_depth(seed=5)
    loss = normal_matching_loss(depth, other, K_inv)
    assert loss.item() > 0.01
    assert loss.item() == pytest.approx(
        (depth_to_normals(depth, K_inv) - depth_to_normals(other, K_inv)).abs().mean().item()
    )
    torch.testing.assert_close(NormalMatchingLoss()(depth, other, K_inv), loss)


def test_no_gradient_into_the_prior():
    depth, K_inv = _random_depth(seed=6).requires_grad_(True), _k_inv(2)
    prior = _random_depth(seed=7).requires_grad_(True)
    normal_matching_loss(depth, prior, K_inv).backward()
    assert prior.grad is None
    assert depth.grad is not None and depth.grad.abs().sum() > 0


def test_gradcheck():
    K_inv = _k_inv(1)
    g = torch.Generator().manual_seed(8)
    depth = (1 + torch.rand(1, 1, 4, 5, generator=g, dtype=torch.float64)).requires_grad_(True)
    prior = 1 + torch.rand(1, 1, 4, 5, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda d: normal_matching_loss(d, prior, K_inv), (depth,))
