"""geometry.depth_to_normals: kornia's Sobel normals, from our back-projection."""

from __future__ import annotations

import pytest
import torch
from kornia.geometry.depth import depth_to_normals as kornia_depth_to_normals

from geometry import backproject, depth_to_normals

H, W = 16, 20
F64 = torch.float64


def _intrinsics(B: int = 1, f: float = 20.0, dtype: torch.dtype = F64) -> torch.Tensor:
    K = torch.tensor([[f, 0.0, W / 2], [0.0, 1.1 * f, H / 2], [0.0, 0.0, 1.0]], dtype=dtype)
    return K.expand(B, 3, 3).clone()


def _plane_depth(normal: torch.Tensor, d: float, K_inv: torch.Tensor) -> torch.Tensor:
    """Depth of the plane n·X = d seen through K: D = d / (n·K⁻¹[u,v,1])."""
    rays = backproject(torch.ones(K_inv.shape[0], 1, H, W, dtype=K_inv.dtype), K_inv)
    return d / (normal.view(1, 3, 1, 1) * rays).sum(dim=1, keepdim=True)


def _noisy_depth(B: int = 2, noise: float = 0.05, seed: int = 0,
                 dtype: torch.dtype = F64) -> torch.Tensor:
    """A smooth depth map (a tilted plane) with relative noise: a network's early output."""
    g = torch.Generator().manual_seed(seed)
    base = torch.linspace(2.0, 6.0, W, dtype=dtype).expand(B, 1, H, W)
    return base * (1 + noise * torch.randn(B, 1, H, W, generator=g, dtype=dtype))


def _angles_deg(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.rad2deg(torch.acos((a * b).sum(dim=1).clamp(-1, 1)))


def test_shape_and_unit_length() -> None:
    normals = depth_to_normals(_noisy_depth(), torch.linalg.inv(_intrinsics(2)))
    assert normals.shape == (2, 3, H, W)
    torch.testing.assert_close(normals.norm(dim=1), torch.ones(2, H, W, dtype=F64))


@pytest.mark.parametrize("noise", [0.01, 0.05, 0.2])
def test_equals_kornia_on_noisy_depth(noise: float) -> None:
    """The public V3 code calls kornia.geometry.depth.depth_to_normals(depth, K)."""
    for dtype, atol in ((F64, 1e-10), (torch.float32, 1e-5)):
        depth, K = _noisy_depth(noise=noise, dtype=dtype), _intrinsics(2, dtype=dtype)
        ours = depth_to_normals(depth, torch.linalg.inv(K))
        theirs = kornia_depth_to_normals(depth, K)
        # same orientation, not only the same line
        torch.testing.assert_close(ours, theirs, atol=atol, rtol=0)
        assert _angles_deg(ours.double(), theirs.double()).median() < 0.05


def test_tilted_plane_gives_its_analytic_normal_everywhere() -> None:
    K_inv = torch.linalg.inv(_intrinsics())
    facing = torch.tensor([0.3, -0.2, -1.0], dtype=F64)  # towards the camera: n·X = d < 0
    facing = facing / facing.norm()
    depth = _plane_depth(facing, -2.0, K_inv)
    assert (depth > 0).all()
    normals = depth_to_normals(depth, K_inv)
    # kornia's orientation: away from the camera. Border pixels included: every Sobel
    # difference (replicate-padded ones too) is a difference of points on the plane.
    expected = -facing.view(1, 3, 1, 1).expand_as(normals)
    assert (normals - expected).abs().max() < 1e-10


def test_fronto_parallel_plane_points_away_from_the_camera() -> None:
    normals = depth_to_normals(torch.full((1, 1, H, W), 3.0, dtype=F64),
                               torch.linalg.inv(_intrinsics()))
    expected = torch.tensor([0.0, 0.0, 1.0], dtype=F64).view(1, 3, 1, 1)
    torch.testing.assert_close(normals, expected.expand_as(normals))


def test_scale_invariance() -> None:
    depth, K_inv = _noisy_depth(seed=1), torch.linalg.inv(_intrinsics(2))
    for s in (2.0, 1e-3, 1e3):
        torch.testing.assert_close(depth_to_normals(s * depth, K_inv),
                                   depth_to_normals(depth, K_inv))


@pytest.mark.parametrize("focal", [20.0, 1e4])
def test_extreme_depths_stay_finite_and_zero_depth_gives_zero_normals(focal: float) -> None:
    K_inv = torch.linalg.inv(_intrinsics(1, f=focal, dtype=torch.float32))
    depth = torch.full((1, 1, H, W), 1e-3)
    depth[..., :, W // 2:] = 1e3
    depth.requires_grad_(True)
    normals = depth_to_normals(depth, K_inv)
    torch.testing.assert_close(normals.norm(dim=1), torch.ones(1, H, W))
    normals.sum().backward()
    assert torch.isfinite(depth.grad).all()
    zero = depth_to_normals(torch.zeros(1, 1, H, W), K_inv)  # an invalid prior: 0, not NaN
    assert torch.equal(zero, torch.zeros_like(zero))


def test_gradcheck() -> None:
    depth = (1 + torch.rand(1, 1, 4, 5, generator=torch.Generator().manual_seed(8),
                            dtype=F64)).requires_grad_(True)
    K_inv = torch.linalg.inv(_intrinsics())
    assert torch.autograd.gradcheck(lambda d: depth_to_normals(d, K_inv), (depth,))
