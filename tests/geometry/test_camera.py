"""Tests of geometry.camera: grids, back-projection, projection and the warps."""

import math

import numpy as np
import pytest
import torch

from geometry import (
    backproject,
    euler2mat,
    inverse_warp,
    pixel_grid,
    pixels_to_grid,
    pose_vec2mat,
    project,
    rotation_warp,
    transform_points,
)

H, W = 16, 20


def intrinsics(B: int = 1, fx: float = 10.0, fy: float = 11.0, cx: float = 9.5, cy: float = 7.5,
           dtype: torch.dtype = torch.float32) -> torch.Tensor:
    K = torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=dtype)
    return K.expand(B, 3, 3).clone()


def pose(B: int, t=(0.0, 0.0, 0.0), rot=(0.0, 0.0, 0.0), dtype=torch.float32) -> torch.Tensor:
    vec = torch.tensor([[*t, *rot]], dtype=dtype).expand(B, 6)
    return pose_vec2mat(vec)


def linear_image(B: int, u_coef=(0.1, -0.05, 0.02), v_coef=(0.03, 0.07, -0.04),
                 offset=(0.2, 0.1, 0.5)) -> torch.Tensor:
    """img[c, v, u] = a_c·u + b_c·v + c_c: bilinear interpolation reproduces it exactly."""
    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float32),
                          torch.arange(W, dtype=torch.float32), indexing="ij")
    chans = [a * u + b * v + c for a, b, c in zip(u_coef, v_coef, offset)]
    return torch.stack(chans).expand(B, 3, H, W).clone()


def linear_image_at(u: np.ndarray, v: np.ndarray, u_coef=(0.1, -0.05, 0.02),
                    v_coef=(0.03, 0.07, -0.04), offset=(0.2, 0.1, 0.5)) -> np.ndarray:
    return np.stack([a * u + b * v + c for a, b, c in zip(u_coef, v_coef, offset)])


def test_pixel_grid_values_and_shape():
    grid = pixel_grid(2, 3, 4)
    assert grid.shape == (2, 3, 3, 4)
    assert grid[1, 0, 2, 3] == 3  # u = column
    assert grid[1, 1, 2, 3] == 2  # v = row
    assert torch.all(grid[:, 2] == 1)
    assert pixel_grid(1, 2, 2, dtype=torch.float64).dtype == torch.float64


def test_pixels_to_grid_maps_first_and_last_centres_to_minus_one_and_one():
    pix = pixel_grid(1, H, W)[:, :2]
    grid = pixels_to_grid(pix)
    assert grid.shape == (1, H, W, 2)
    assert torch.allclose(grid[0, 0, 0], torch.tensor([-1.0, -1.0]))
    assert torch.allclose(grid[0, -1, -1], torch.tensor([1.0, 1.0]))
    assert torch.allclose(grid[0, 0, -1], torch.tensor([1.0, -1.0]))


def test_backproject_project_round_trip():
    torch.manual_seed(0)
    B = 2
    depth = torch.rand(B, 1, H, W) * 5 + 0.5
    K = intrinsics(B)
    points = backproject(depth, torch.linalg.inv(K))
    assert points.shape == (B, 3, H, W)
    assert torch.allclose(points[:, 2:3], depth)
    pixels, z = project(points, K)
    assert torch.allclose(pixels, pixel_grid(B, H, W)[:, :2], atol=1e-4)
    assert torch.allclose(z, depth)


def test_backproject_hand_value():
    depth = torch.full((1, 1, H, W), 2.0)
    K = intrinsics(1)
    points = backproject(depth, torch.linalg.inv(K))
    # Pixel (row 3, column 5): X = 2·(5 − 9.5)/10, Y = 2·(3 − 7.5)/11, Z = 2.
    expected = torch.tensor([2 * (5 - 9.5) / 10, 2 * (3 - 7.5) / 11, 2.0])
    assert torch.allclose(points[0, :, 3, 5], expected)


def test_transform_points_hand_value():
    points = torch.zeros(1, 3, 1, 1)
    points[0, :, 0, 0] = torch.tensor([1.0, 2.0, 3.0])
    T = pose(1, t=(0.5, -1.0, 2.0), rot=(0.0, 0.0, math.pi / 2))
    out = transform_points(points, T)[0, :, 0, 0]
    # Rz(90°)·(1,2,3) = (−2, 1, 3), plus t.
    assert torch.allclose(out, torch.tensor([-1.5, 0.0, 5.0]), atol=1e-6)


def test_project_clamps_depth_for_points_on_the_camera_plane():
    points = torch.zeros(1, 3, 2, 2)
    points[:, 0] = 1.0  # z = 0: a plain division would give inf
    pixels, z = project(points, intrinsics(1), eps=1e-3)
    assert torch.isfinite(pixels).all()
    assert torch.all(z == 0)  # z is returned unclamped so callers can test z > eps


@pytest.mark.parametrize("B", [1, 2, 3])
def test_inverse_warp_shapes(B):
    torch.manual_seed(B)
    out = inverse_warp(torch.rand(B, 3, H, W), torch.rand(B, 1, H, W) + 1,
                       torch.rand(B, 1, H, W) + 1, pose(B, t=(0.1, 0.0, 0.05)), intrinsics(B))
    warped, valid, projected, computed = out
    assert warped.shape == (B, 3, H, W)
    for x in (valid, projected, computed):
        assert x.shape == (B, 1, H, W)
    assert set(valid.unique().tolist()) <= {0.0, 1.0}
    assert rotation_warp(torch.rand(B, 3, H, W), torch.zeros(B, 3), intrinsics(B)).shape == (
        B, 3, H, W)


def test_identity_pose_maps_image_onto_itself():
    torch.manual_seed(1)
    B = 2
    ref_img = torch.rand(B, 3, H, W)
    tgt_depth = torch.rand(B, 1, H, W) * 3 + 0.5
    ref_depth = torch.rand(B, 1, H, W) * 3 + 0.5
    warped, valid, projected, computed = inverse_warp(ref_img, tgt_depth, ref_depth, pose(B),
                                                      intrinsics(B))
    inner = (..., slice(1, -1), slice(1, -1))
    assert torch.allclose(warped[inner], ref_img[inner], atol=1e-5)
    assert torch.allclose(projected[inner], ref_depth[inner], atol=1e-5)
    assert torch.all(valid[inner] == 1)
    assert torch.allclose(computed, tgt_depth)


def test_translation_shifts_by_fx_tx_over_depth():
    # fx·tx/D = 10·0.4/2 = 2 pixels: the warped image is the reference shifted left by 2.
    torch.manual_seed(2)
    B, D, tx, shift = 2, 2.0, 0.4, 2
    ref_img = torch.rand(B, 3, H, W)
    depth = torch.full((B, 1, H, W), D)
    warped, valid, projected, computed = inverse_warp(ref_img, depth, depth,
                                                      pose(B, t=(tx, 0.0, 0.0)), intrinsics(B))
    expected = torch.roll(ref_img, shifts=-shift, dims=-1)
    assert torch.allclose(warped[..., : W - shift - 1], expected[..., : W - shift - 1],
                          atol=1e-5)
    assert torch.all(valid[..., : W - shift - 1] == 1)
    assert torch.all(valid[..., W - shift + 1:] == 0)  # lands right of the last column
    assert torch.all(warped[..., W - shift + 1:].abs() < 1e-5)  # zeros padding
    assert torch.allclose(projected[..., : W - shift - 1], torch.full_like(projected, D)[
        ..., : W - shift - 1], atol=1e-5)
    assert torch.allclose(computed, depth)


def test_fronto_parallel_plane_forward_motion_is_a_zoom():
    # Plane at depth 4; the reference camera is 1 forward, so points lie at z = 3 there and
    # u' = cx + (u − cx)·4/3. The reference image is linear in (u, v), hence sampled exactly.
    B, D, dz = 1, 4.0, 1.0
    K = intrinsics(B)
    cx, cy = 9.5, 7.5
    ref_img = linear_image(B)
    tgt_depth = torch.full((B, 1, H, W), D)
    ref_depth = torch.full((B, 1, H, W), D - dz)
    warped, valid, projected, computed = inverse_warp(ref_img, tgt_depth, ref_depth,
                                                      pose(B, t=(0.0, 0.0, -dz)), K)
    v, u = np.meshgrid(np.arange(H, dtype=np.float64), np.arange(W, dtype=np.float64),
                       indexing="ij")
    u2 = cx + (u - cx) * D / (D - dz)
    v2 = cy + (v - cy) * D / (D - dz)
    inside = (u2 >= 0) & (u2 <= W - 1) & (v2 >= 0) & (v2 <= H - 1)
    assert inside.sum() > 50 and (~inside).sum() > 50  # the test covers both cases
    assert np.array_equal(valid[0, 0].numpy() == 1, inside)
    expected = linear_image_at(u2, v2)
    np.testing.assert_allclose(warped[0].numpy()[:, inside], expected[:, inside], atol=1e-4)
    assert torch.allclose(computed, torch.full_like(computed, D - dz))
    np.testing.assert_allclose(projected[0, 0].numpy()[inside], D - dz, atol=1e-5)


def test_points_behind_the_camera_are_invalid_and_finite():
    B = 1
    depth = torch.full((B, 1, H, W), 2.0)
    warped, valid, projected, computed = inverse_warp(torch.rand(B, 3, H, W), depth, depth,
                                                      pose(B, t=(0.0, 0.0, -10.0)), intrinsics(B))
    assert torch.all(valid == 0)
    for x in (warped, projected, computed):
        assert torch.isfinite(x).all()
    assert torch.all(computed > 0)  # clamped to eps for invalid pixels


def numpy_euler(rx: float, ry: float, rz: float) -> np.ndarray:
    """Rx·Ry·Rz written out independently of geometry.pose."""
    cx, sx, cy, sy, cz, sz = (np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz),
                              np.sin(rz))
    Rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    Ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    Rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return Rx @ Ry @ Rz


def test_rotation_warp_matches_analytic_homography():
    rot = (0.06, -0.08, 0.1)
    fx, fy, cx, cy = 12.0, 13.0, 9.0, 8.0
    K = intrinsics(1, fx=fx, fy=fy, cx=cx, cy=cy)
    img = linear_image(1)
    warped = rotation_warp(img, torch.tensor([rot]), K)[0].numpy()

    K_np = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]])
    Hom = K_np @ numpy_euler(*rot) @ np.linalg.inv(K_np)
    v, u = np.meshgrid(np.arange(H, dtype=np.float64), np.arange(W, dtype=np.float64),
                       indexing="ij")
    q = Hom @ np.stack([u.ravel(), v.ravel(), np.ones(H * W)])
    u2, v2 = (q[0] / q[2]).reshape(H, W), (q[1] / q[2]).reshape(H, W)
    inside = (u2 >= 1e-3) & (u2 <= W - 1 - 1e-3) & (v2 >= 1e-3) & (v2 <= H - 1 - 1e-3)
    outside = (u2 < -1) | (u2 > W) | (v2 < -1) | (v2 > H)
    assert inside.sum() > 100 and outside.sum() > 5
    np.testing.assert_allclose(warped[:, inside], linear_image_at(u2, v2)[:, inside],
                               atol=1e-4)
    assert np.all(warped[:, outside] == 0)


def test_rotation_warp_is_inverse_warp_without_translation_at_any_depth():
    torch.manual_seed(3)
    B = 2
    img, K = torch.rand(B, 3, H, W), intrinsics(B)
    rot = torch.tensor([[0.01, 0.02, -0.03], [-0.02, 0.0, 0.04]])
    T = torch.cat([euler2mat(rot), torch.zeros(B, 3, 1)], dim=2)
    depth = torch.rand(B, 1, H, W) + 0.5
    expected = inverse_warp(img, depth, depth, T, K)[0]
    assert torch.allclose(rotation_warp(img, rot, K), expected, atol=1e-5)


def test_inverse_warp_gradcheck_float64():
    torch.manual_seed(4)
    B, C, h, w = 1, 2, 4, 5
    dt = torch.float64
    K = torch.tensor([[[4.0, 0.0, 2.0], [0.0, 4.5, 1.5], [0.0, 0.0, 1.0]]], dtype=dt)
    ref_img = torch.rand(B, C, h, w, dtype=dt, requires_grad=True)
    tgt_depth = (torch.rand(B, 1, h, w, dtype=dt) + 1).requires_grad_()
    ref_depth = (torch.rand(B, 1, h, w, dtype=dt) + 1).requires_grad_()
    vec = torch.tensor([[0.13, -0.07, 0.05, 0.03, -0.02, 0.04]], dtype=dt, requires_grad=True)

    def fn(ref_img, tgt_depth, ref_depth, vec):
        warped, _, projected, computed = inverse_warp(ref_img, tgt_depth, ref_depth,
                                                      pose_vec2mat(vec), K)
        return warped, projected, computed

    assert torch.autograd.gradcheck(fn, (ref_img, tgt_depth, ref_depth, vec), eps=1e-6,
                                    atol=1e-5)


def test_rotation_warp_gradcheck_float64():
    torch.manual_seed(5)
    dt = torch.float64
    K = torch.tensor([[[4.0, 0.0, 2.0], [0.0, 4.5, 1.5], [0.0, 0.0, 1.0]]], dtype=dt)
    img = torch.rand(1, 2, 4, 5, dtype=dt, requires_grad=True)
    rot = torch.tensor([[0.03, -0.05, 0.04]], dtype=dt, requires_grad=True)
    assert torch.autograd.gradcheck(lambda i, r: rotation_warp(i, r, K), (img, rot), eps=1e-6,
                                    atol=1e-5)
