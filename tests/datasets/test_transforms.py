"""Transforms: images, maps and intrinsics change together."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from datasets.transforms import Compose, RandomHorizontalFlip, RandomScaleCrop, Resize, ToTensor

H, W = 32, 40
K0 = np.array([[30.0, 0.0, 18.5], [0.0, 28.0, 14.0], [0.0, 0.0, 1.0]], np.float32)
POINT = np.array([0.3, -0.2, 2.0])  # a 3-D point in the camera frame (x right, y down)


def _project(K: np.ndarray, X: np.ndarray = POINT) -> tuple[float, float]:
    p = K.astype(np.float64) @ X
    return p[0] / p[2], p[1] / p[2]


def _blob(u: float, v: float, h: int = H, w: int = W, sigma: float = 2.5) -> np.ndarray:
    """A smooth bright dot centred at pixel coordinates (u, v), as an RGB image."""
    jj, ii = np.meshgrid(np.arange(w), np.arange(h))
    g = 255.0 * np.exp(-((jj - u) ** 2 + (ii - v) ** 2) / (2 * sigma**2))
    return np.repeat(g[:, :, None], 3, axis=2).astype(np.float32)


def _centroid(img: np.ndarray) -> tuple[float, float]:
    g = img[..., 0].astype(np.float64)
    jj, ii = np.meshgrid(np.arange(g.shape[1]), np.arange(g.shape[0]))
    return float((g * jj).sum() / g.sum()), float((g * ii).sum() / g.sum())


def test_flip_mirrors_images_maps_and_principal_point() -> None:
    img = np.zeros((H, W, 3), np.float32)
    u, v = 5, 7
    img[v, u] = 255.0
    depth_map = np.zeros((H, W), np.float32)
    depth_map[v, u] = 3.0
    (out,), K, (m,) = RandomHorizontalFlip(p=1.0)([img], K0, [depth_map])
    assert np.argwhere(out[..., 0] > 0).tolist() == [[v, W - 1 - u]]
    assert np.argwhere(m > 0).tolist() == [[v, W - 1 - u]]
    assert K[0, 2] == pytest.approx(W - K0[0, 2])  # cx <- W - cx, as the public code
    np.testing.assert_array_equal(np.delete(K.ravel(), 2), np.delete(K0.ravel(), 2))
    # the offset from the principal point changes sign; with cx <- W - cx (public) the
    # mirrored pixel centre lands exactly one pixel short of -(u - cx)
    assert (W - 1 - u) - K[0, 2] == pytest.approx(-(u - K0[0, 2]) - 1.0)
    assert K0[0, 2] == 18.5  # the input K is not modified in place


def test_flip_with_p_zero_is_identity() -> None:
    img = np.random.default_rng(0).random((H, W, 3), np.float32) * 255
    (out,), K, _ = RandomHorizontalFlip(p=0.0)([img], K0, [])
    np.testing.assert_array_equal(out, img)
    np.testing.assert_array_equal(K, K0)


def test_resize_scales_intrinsics_and_moves_the_dot_with_them() -> None:
    u, v = _project(K0)
    img = _blob(u, v)
    prior = img[..., 0] / 255.0
    (out,), K, (m,) = Resize(24, 30)([img], K0, [prior])
    assert out.shape == (24, 30, 3) and m.shape == (24, 30)
    sx, sy = 30 / W, 24 / H
    np.testing.assert_allclose(K, [[30.0 * sx, 0, 18.5 * sx], [0, 28.0 * sy, 14.0 * sy],
                                   [0, 0, 1]], rtol=1e-6)
    # K·X is where the dot is, up to the half-pixel term (s - 1)/2 of resizing pixel centres
    cu, cv = _centroid(out)
    pu, pv = _project(K)
    assert cu == pytest.approx(pu + (sx - 1) / 2, abs=0.05)
    assert cv == pytest.approx(pv + (sy - 1) / 2, abs=0.05)
    # the map is sampled, not interpolated: only values it had, at the image's pixels
    assert set(np.unique(m)) <= set(np.unique(prior))
    np.testing.assert_array_equal(
        m, cv2.resize(prior, (30, 24), interpolation=cv2.INTER_NEAREST_EXACT))
    np.testing.assert_allclose(_centroid(m[..., None]), (cu, cv), atol=0.25)


@pytest.mark.parametrize("seed", [0, 6, 8])  # draws with non-zero crop offsets on both axes
def test_random_scale_crop_follows_its_draws(seed: int) -> None:
    u, v = _project(K0)
    img = _blob(u, v)
    np.random.seed(seed)
    (out,), K, (m,) = RandomScaleCrop(max_scale=1.15)([img], K0, [img[..., 0].copy()])
    # the same draws, in the documented order: sx, sy, then the crop offset oy, ox
    np.random.seed(seed)
    sx, sy = np.random.uniform(1.0, 1.15, 2)
    sh, sw = round(H * sy), round(W * sx)
    oy, ox = np.random.randint(sh - H + 1), np.random.randint(sw - W + 1)
    assert 1.0 <= sx <= 1.15 and 1.0 <= sy <= 1.15 and ox > 0 and oy > 0
    expected = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_LINEAR)[oy:oy + H, ox:ox + W]
    assert out.shape == (H, W, 3) and m.shape == (H, W)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(m, cv2.resize(img[..., 0], (sw, sh),
                                                interpolation=cv2.INTER_NEAREST_EXACT)
                                  [oy:oy + H, ox:ox + W])
    ex, ey = sw / W, sh / H
    np.testing.assert_allclose(K, [[30.0 * ex, 0, 18.5 * ex - ox], [0, 28.0 * ey, 14.0 * ey - oy],
                                   [0, 0, 1]], rtol=1e-6)
    cu, cv = _centroid(out)
    pu, pv = _project(K)
    assert cu == pytest.approx(pu + (ex - 1) / 2, abs=0.05)
    assert cv == pytest.approx(pv + (ey - 1) / 2, abs=0.05)


@pytest.mark.parametrize(("height", "width"), [(H // 2, W // 2), (37, 46)])
def test_maps_resize_by_nearest_sampling_centred_on_the_image_pixels(height: int,
                                                                     width: int) -> None:
    """A one-pixel object keeps its depth (no blend with the background) and lands where
    the image's resize puts it. Pixel 13 (odd) halves to pixel 6: cv2's plain INTER_NEAREST
    (the public code's) would sample pixels 2j only and lose it."""
    img = np.zeros((H, W, 3), np.float32)
    img[13, 13] = 255.0
    depth = np.full((H, W), 5.0, np.float32)
    depth[13, 13] = 2.0
    (out,), _, (m,) = Resize(height, width)([img], K0, [depth])
    assert set(np.unique(m)) == {2.0, 5.0}
    near = np.argwhere(m == 2.0)
    peak = np.unravel_index(out[..., 0].argmax(), out.shape[:2])
    assert list(peak) in near.tolist()


def test_all_frames_of_a_sample_get_the_same_draw() -> None:
    img = np.random.default_rng(1).random((H, W, 3), np.float32) * 255
    t = Compose([RandomHorizontalFlip(), RandomScaleCrop()])
    for seed in range(4):
        np.random.seed(seed)
        (a, b, c), _, _ = t([img, img.copy(), img.copy()], K0, [])
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


def test_global_numpy_seed_makes_it_repeatable() -> None:
    img = np.random.default_rng(2).random((H, W, 3), np.float32) * 255
    t = Compose([RandomHorizontalFlip(), RandomScaleCrop(), Resize(16, 20), ToTensor()])
    np.random.seed(11)
    first = t([img], K0, [])
    np.random.seed(11)
    second = t([img], K0, [])
    torch.testing.assert_close(first[0][0], second[0][0])
    torch.testing.assert_close(first[1], second[1])


def test_to_tensor_normalises_and_shapes() -> None:
    img = np.zeros((2, 3, 3), np.float32)
    img[0, 1] = (255.0, 0.0, 114.75)
    prior = np.arange(6, dtype=np.float32).reshape(2, 3)
    (t,), K, (m,) = ToTensor()([img], K0, [prior])
    assert t.shape == (3, 2, 3) and t.dtype == torch.float32
    torch.testing.assert_close(t[:, 0, 1], torch.tensor([(1 - 0.45) / 0.225, -2.0, 0.0]))
    torch.testing.assert_close(t[:, 1, 1], torch.full((3,), -2.0))
    assert m.shape == (1, 2, 3) and m.dtype == torch.float32
    torch.testing.assert_close(m[0], torch.from_numpy(prior))
    assert isinstance(K, torch.Tensor) and K.dtype == torch.float32
    torch.testing.assert_close(K, torch.from_numpy(K0))


@pytest.mark.parametrize("chain", ["two_steps", "training"])
def test_full_training_chain_output(chain: str) -> None:
    img = np.random.default_rng(3).random((H, W, 3), np.float32) * 255
    t = (Compose([RandomHorizontalFlip(), RandomScaleCrop(), Resize(16, 20), ToTensor()])
         if chain == "two_steps" else  # the data module's
         Compose([RandomScaleCrop(height=16, width=20), RandomHorizontalFlip(), ToTensor()]))
    np.random.seed(0)
    imgs, K, maps = t([img, img], K0, [img[..., 0]])
    assert [x.shape for x in imgs] == [(3, 16, 20)] * 2 and maps[0].shape == (1, 16, 20)
    assert K.shape == (3, 3) and K[2, 2] == 1.0
    # zooming in by 1–1.15 then halving: focal lengths within those bounds
    assert 15.0 <= float(K[0, 0]) <= 30.0 * 1.15 / 2 + 1e-4


@pytest.mark.parametrize("seed", [0, 6, 8])
def test_scale_crop_to_the_network_size_resamples_once(seed: int) -> None:
    """RandomScaleCrop(height, width): the draws and K of zoom + crop + Resize, the image
    sampled once where those three put each pixel."""
    u, v = _project(K0)
    img = _blob(u, v)
    index = np.arange(H * W, dtype=np.float32).reshape(H, W)  # which source pixel
    np.random.seed(seed)
    (two,), K_two, _ = Compose([RandomScaleCrop(), Resize(24, 30)])([img], K0, [index])
    np.random.seed(seed)
    (out,), K, (m,) = RandomScaleCrop(height=24, width=30)([img], K0, [index])
    assert out.shape == (24, 30, 3) and m.shape == (24, 30)
    np.testing.assert_array_equal(K, K_two)
    # the dot is where K puts it (same half-pixel term as Resize), and where it was
    ex, ey = K[0, 0] / K0[0, 0], K[1, 1] / K0[1, 1]
    cu, cv = _centroid(out)
    pu, pv = _project(K)
    assert cu == pytest.approx(pu + (ex - 1) / 2, abs=0.05)
    assert cv == pytest.approx(pv + (ey - 1) / 2, abs=0.05)
    np.testing.assert_allclose(out, two, atol=6.0)  # a smooth image barely changes
    # maps are sampled, never blended: output pixel x takes source pixel
    # round(((x + 0.5)·W/30 + ox)/fx − 0.5) of the chained resizes
    np.random.seed(seed)
    sx, sy = np.random.uniform(1.0, 1.15, 2)
    sh, sw = round(H * sy), round(W * sx)
    oy, ox = np.random.randint(sh - H + 1), np.random.randint(sw - W + 1)
    xs = ((np.arange(30) + 0.5) * W / 30 + ox) / (sw / W) - 0.5
    ys = ((np.arange(24) + 0.5) * H / 24 + oy) / (sh / H) - 0.5
    cols, rows = m % W, m // W
    assert np.abs(cols - xs[None, :]).max() <= 0.5 + 1 / 32
    assert np.abs(rows - ys[:, None]).max() <= 0.5 + 1 / 32


def test_scale_crop_needs_both_sizes() -> None:
    with pytest.raises(ValueError, match="both height and width"):
        RandomScaleCrop(height=24)


def test_to_tensor_leaves_its_input_alone() -> None:
    img = np.full((1, 1, 3), 255.0, np.float32)  # a shape whose CHW view is contiguous
    ToTensor()([img], K0, [])
    assert (img == 255.0).all()
