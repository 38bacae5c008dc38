"""ARN losses, ARN's self-supervision target and the rotation-only warp (docs/method.md, V2)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from geometry import rotation_warp
from losses.rotation import (
    rotation_consistency_loss,
    rotation_triplet_loss,
    select_rotation_target,
)

F_PX, CX, CY = 40.0, 31.5, 23.0
H, W = 48, 64


def intrinsics(B: int = 1, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    K = torch.tensor([[F_PX, 0.0, CX], [0.0, F_PX, CY], [0.0, 0.0, 1.0]], dtype=dtype)
    return K.expand(B, 3, 3).clone()


# --------------------------------------------------------------------------- the two losses
def test_rotation_consistency_loss_hand_computed() -> None:
    rot3 = torch.tensor([[0.1, -0.2, 0.3], [0.0, 0.0, -0.05]])
    gt = torch.tensor([[0.0, 0.1, 0.3], [0.02, 0.0, 0.05]])
    # |.1| + |.3| + 0 + |.02| + 0 + |.1| = 0.52 over 6 entries
    assert rotation_consistency_loss(rot3, gt).item() == pytest.approx(0.52 / 6)
    assert rotation_consistency_loss(gt, gt).item() == 0.0


def test_rotation_triplet_loss_hand_computed() -> None:
    rot1 = torch.tensor([[0.1, -0.2, 0.0]])
    rot2 = torch.tensor([[0.02, 0.3, -0.01]])
    # |rot2| − |rot1| + 0.05 = (−0.03, 0.15, 0.06) -> clamped (0, 0.15, 0.06)
    assert rotation_triplet_loss(rot1, rot2).item() == pytest.approx(0.21 / 3)
    # margin 0: (−0.08, 0.1, 0.01) -> (0, 0.1, 0.01)
    assert rotation_triplet_loss(rot1, rot2, margin=0.0).item() == pytest.approx(0.11 / 3)
    # a rectified pair rotated less than the raw one by more than the margin costs nothing
    assert rotation_triplet_loss(rot1 * 0 + 0.3, rot2 * 0 + 0.1).item() == 0.0


def test_rotation_losses_gradcheck() -> None:
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(rotation_consistency_loss, (a, b))
    # away from the kinks of |·| and of the clamp: entries of size ~1, margin 0.05
    rot1 = (torch.rand(3, 3, generator=gen, dtype=torch.float64) * 0.3 + 0.1).requires_grad_()
    rot2 = (torch.rand(3, 3, generator=gen, dtype=torch.float64) * 0.3 + 0.5).requires_grad_()
    torch.autograd.gradcheck(rotation_triplet_loss, (rot1, rot2))


# --------------------------------------------------------------------- target selection
def _images(B: int = 2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    ref = torch.rand(B, 3, 12, 16, generator=gen)
    rectified = torch.rand(B, 3, 12, 16, generator=gen, requires_grad=True)
    K = torch.tensor([[10.0, 0.0, 7.5], [0.0, 10.0, 5.5], [0.0, 0.0, 1.0]]).expand(B, 3, 3)
    return ref, rectified, K


def test_target_is_the_prediction_inside_the_trusted_range() -> None:
    ref, rectified, K = _images()
    rot1 = torch.tensor([[0.05, -0.05, 0.05], [0.03, 0.0, -0.07]], requires_grad=True)
    rot3_gt, w, used = select_rotation_target(rot1, ref, rectified, K)
    assert used
    assert torch.equal(rot3_gt, rot1.detach()) and not rot3_gt.requires_grad
    assert torch.equal(w, rectified.detach()) and not w.requires_grad


def test_target_is_decided_once_per_batch() -> None:
    ref, rectified, K = _images()
    # sample 0 alone (mean 0.12) and sample 1 alone (mean 0) are outside (0.02, 0.1),
    # the batch mean 0.06 is inside: the whole batch uses the prediction
    rot1 = torch.tensor([[0.12, -0.12, 0.12], [0.0, 0.0, 0.0]])
    _, _, used = select_rotation_target(rot1, ref, rectified, K)
    assert used
    # and the other way round: sample 0 inside alone, batch mean 0.15 outside
    rot1 = torch.tensor([[0.05, 0.05, 0.05], [0.25, -0.25, 0.25]])
    _, _, used = select_rotation_target(rot1, ref, rectified, K)
    assert not used


@pytest.mark.parametrize("value", [0.0, 0.02, 0.1, 0.3])
def test_target_is_random_outside_the_trusted_range(value: float) -> None:
    ref, rectified, K = _images()
    rot1 = torch.full((2, 3), value, requires_grad=True)  # mean |rot1| = value (bounds strict)
    rot3_gt, w, used = select_rotation_target(
        rot1, ref, rectified, K, generator=torch.Generator().manual_seed(7))
    assert not used
    expected = (torch.rand(2, 3, generator=torch.Generator().manual_seed(7)) * 2 - 1) * 0.05
    assert torch.allclose(rot3_gt, expected)
    assert rot3_gt.abs().max() <= 0.05 and not rot3_gt.requires_grad
    assert torch.allclose(w, rotation_warp(ref, rot3_gt, K))
    assert not w.requires_grad


def test_random_draw_is_uniform_in_range() -> None:
    ref, rectified, K = _images(B=2000)
    rot3_gt, _, _ = select_rotation_target(torch.zeros(2000, 3), ref[:1].expand(2000, -1, -1, -1),
                                           rectified[:1].expand(2000, -1, -1, -1),
                                           K[:1].expand(2000, 3, 3),
                                           generator=torch.Generator().manual_seed(3))
    assert rot3_gt.min() >= -0.05 and rot3_gt.max() <= 0.05
    # U[-a, a]: mean 0, standard deviation a / sqrt(3)
    assert abs(rot3_gt.mean().item()) < 0.002
    assert rot3_gt.std().item() == pytest.approx(0.05 / math.sqrt(3), rel=0.05)


# ------------------------------------------------------------------- rotation-only warp
def _euler_np(rx: float, ry: float, rz: float) -> np.ndarray:
    """R = Rx·Ry·Rz, written out independently of geometry.pose."""
    cx, sx, cy, sy, cz, sz = (math.cos(rx), math.sin(rx), math.cos(ry), math.sin(ry),
                              math.cos(rz), math.sin(rz))
    Rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    Ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    Rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return Rx @ Ry @ Rz


def _homography_locations(rot: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Where every target pixel samples the source: (u', v') of K·R·K⁻¹·[u, v, 1]ᵀ, [H,W]."""
    K = np.array([[F_PX, 0.0, CX], [0.0, F_PX, CY], [0.0, 0.0, 1.0]])
    Hm = K @ _euler_np(*rot) @ np.linalg.inv(K)
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    q = np.einsum("ij,jhw->ihw", Hm, np.stack([u, v, np.ones_like(u)]))
    return q[0] / q[2], q[1] / q[2]


def _smooth_image(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """A smooth analytic image (3 channels) evaluated at continuous pixel positions."""
    return np.stack([np.sin(0.11 * u + 0.3) * np.cos(0.07 * v),
                     0.5 + 0.004 * u * v / 10.0,
                     np.cos(0.05 * (u - v))])


ROTATIONS = [(0.02, -0.03, 0.01), (0.0, 0.05, 0.0), (-0.04, 0.0, 0.03)]


@pytest.mark.parametrize("rot", ROTATIONS)
def test_rotation_warp_samples_at_the_homography(rot: tuple[float, float, float]) -> None:
    u_exp, v_exp = _homography_locations(rot)
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    # Bilinear sampling is exact on affine images: warping the images "u" and "v" returns
    # exactly the location each pixel sampled.
    coords = torch.from_numpy(np.stack([u, v, np.ones_like(u)]))[None]
    warped = rotation_warp(coords, torch.tensor([rot], dtype=torch.float64), intrinsics())[0]
    inside = (u_exp >= 0) & (u_exp <= W - 1) & (v_exp >= 0) & (v_exp <= H - 1)
    assert inside.mean() > 0.8
    np.testing.assert_allclose(warped[0].numpy()[inside], u_exp[inside], atol=1e-9)
    np.testing.assert_allclose(warped[1].numpy()[inside], v_exp[inside], atol=1e-9)
    # zeros padding: locations far outside the image read 0
    outside = (u_exp < -1) | (u_exp > W) | (v_exp < -1) | (v_exp > H)
    assert np.all(warped[2].numpy()[outside] == 0)

    # A smooth image warps to the analytic image at the rotated locations (up to the
    # bilinear interpolation error, about (0.11² + 0.07²)/8 ≈ 2.1e-3 for these frequencies).
    img = torch.from_numpy(_smooth_image(u, v))[None]
    warped = rotation_warp(img, torch.tensor([rot], dtype=torch.float64), intrinsics())[0]
    expected = _smooth_image(u_exp, v_exp)
    np.testing.assert_allclose(warped.numpy()[:, inside], expected[:, inside], atol=2.5e-3)


def test_rotation_warp_hand_computed_yaw() -> None:
    # A rotation by θ about y maps the principal ray to (sin θ, 0, cos θ): the centre pixel
    # samples the source at (cx + f·tan θ, cy).
    theta = 0.05
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    coords = torch.from_numpy(np.stack([u, v, np.ones_like(u)]))[None]
    # K with the principal point on a pixel centre
    K = torch.tensor([[[F_PX, 0.0, 31.0], [0.0, F_PX, 23.0], [0.0, 0.0, 1.0]]],
                     dtype=torch.float64)
    warped = rotation_warp(coords, torch.tensor([[0.0, theta, 0.0]], dtype=torch.float64), K)
    assert warped[0, 0, 23, 31].item() == pytest.approx(31.0 + F_PX * math.tan(theta), abs=1e-9)
    assert warped[0, 1, 23, 31].item() == pytest.approx(23.0, abs=1e-9)
    # identity rotation: the image itself
    same = rotation_warp(coords, torch.zeros(1, 3, dtype=torch.float64), K)
    assert torch.allclose(same, coords)
