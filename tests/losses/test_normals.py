"""Tests of losses/normals.py: normals from depth and the normal-matching loss."""

from __future__ import annotations

import pytest
import torch

from losses.normals import NormalMatchingLoss, depth_to_normals, normal_matching_loss

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


def test_shape_and_unit_length():
    depth = _random_depth()
    normals = depth_to_normals(depth, _k_inv(2))
    assert normals.shape == (2, 3, H, W)
    torch.testing.assert_close(normals.norm(dim=1), torch.ones(2, H, W, dtype=torch.float64))


def test_tilted_plane_gives_its_analytic_normal_everywhere():
    K_inv = _k_inv()
    # Camera-facing unit normal (n·X = d < 0 for points in front of the camera).
    normal = torch.tensor([0.3, -0.2, -1.0], dtype=torch.float64)
    normal = normal / normal.norm()
    depth = _plane_depth(normal, -2.0, K_inv)
    assert (depth > 0).all()
    normals = depth_to_normals(depth, K_inv)
    expected = normal.view(1, 3, 1, 1).expand_as(normals)
    # Border pixels included: every tangent (padded ones too) lies in the plane.
    torch.testing.assert_close(normals, expected, atol=1e-4, rtol=0)
    assert (normals - expected).abs().max() < 1e-10


def test_fronto_parallel_plane_faces_the_camera():
    normals = depth_to_normals(torch.full((1, 1, H, W), 3.0, dtype=torch.float64), _k_inv())
    expected = torch.tensor([0.0, 0.0, -1.0], dtype=torch.float64).view(1, 3, 1, 1)
    torch.testing.assert_close(normals, expected.expand_as(normals))


def test_normals_always_face_the_camera():
    K_inv = _k_inv(2)
    depth = _random_depth(seed=3)
    points = _rays(K_inv) * depth
    assert ((depth_to_normals(depth, K_inv) * points).sum(dim=1) < 0).all()


def test_scale_invariance():
    depth, K_inv = _random_depth(seed=1), _k_inv(2)
    torch.testing.assert_close(depth_to_normals(2 * depth, K_inv), depth_to_normals(depth, K_inv))
    torch.testing.assert_close(
        depth_to_normals(1e-3 * depth, K_inv), depth_to_normals(depth, K_inv)
    )


def test_float32_matches_float64():
    depth, K_inv = _random_depth(seed=2), _k_inv(2)
    n32 = depth_to_normals(depth.float(), K_inv.float())
    torch.testing.assert_close(n32.double(), depth_to_normals(depth, K_inv), atol=1e-4, rtol=0)


@pytest.mark.parametrize("focal", [20.0, 1e4])
def test_extreme_depths_and_zero_depth_stay_finite(focal):
    K_inv = _k_inv(1, f=focal, dtype=torch.float32)
    depth = torch.full((1, 1, H, W), 1e-3)
    depth[..., :, W // 2 :] = 1e3
    depth.requires_grad_(True)
    normals = depth_to_normals(depth, K_inv)
    assert torch.isfinite(normals).all()
    torch.testing.assert_close(normals.norm(dim=1), torch.ones(1, H, W))
    normal_matching_loss(depth, depth.detach() * 0.5 + 1.0, K_inv).backward()
    assert torch.isfinite(depth.grad).all()
    # An invalid (all-zero) prior gives zero normals, not NaN.
    zero = depth_to_normals(torch.zeros(1, 1, H, W), K_inv)
    assert torch.equal(zero, torch.zeros_like(zero))


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
    assert torch.autograd.gradcheck(lambda d: depth_to_normals(d, K_inv), (depth,))
    assert torch.autograd.gradcheck(lambda d: normal_matching_loss(d, prior, K_inv), (depth,))
