"""utils/visualization.py: colour maps with a stated normalisation, colour bars, panels."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from utils.visualization import add_colorbar, colorize_depth, colorize_error, depth_panel


def _magma(value: float) -> np.ndarray:
    level = np.array([[round(value * 255)]], np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(level, cv2.COLORMAP_MAGMA), cv2.COLOR_BGR2RGB)[0, 0]


def test_fixed_range_maps_near_to_bright_far_to_dark_in_every_picture() -> None:
    a = colorize_depth(np.array([[1.0, 10.0, 0.0]]), lo=1.0, hi=10.0)
    np.testing.assert_array_equal(a[0, 0], _magma(1.0))
    np.testing.assert_array_equal(a[0, 1], _magma(0.0))
    np.testing.assert_array_equal(a[0, 2], [0, 0, 0])  # no depth: black
    # the same depth has the same colour whatever else the picture holds
    b = colorize_depth(np.array([[10.0, 50.0]]), lo=1.0, hi=10.0)
    np.testing.assert_array_equal(b[0, 0], a[0, 1])
    with pytest.raises(ValueError, match="lo < hi"):
        colorize_depth(np.ones((2, 2)), lo=5.0, hi=1.0)


def test_own_normalisation_is_relative() -> None:
    near, far = colorize_depth(np.array([[1.0, 2.0]])), colorize_depth(np.array([[2.0, 4.0]]))
    np.testing.assert_array_equal(near, far)  # only ratios matter without a fixed range


def test_colorbar_and_error_and_panel() -> None:
    vis = colorize_depth(np.full((50, 20), 2.0), lo=1.0, hi=4.0)
    bar = add_colorbar(vis, 1.0, 4.0)
    assert bar.shape == (50, 20 + 16 + 64, 3)
    np.testing.assert_array_equal(bar[0, 20], _magma(1.0))  # the top is lo, brightest
    np.testing.assert_array_equal(bar[-1, 20], _magma(0.0))
    gt = np.array([[2.0, 4.0, 0.0]])
    err = colorize_error(np.array([[2.0, 6.0, 1.0]]), gt, max_error=0.5)
    dark = cv2.cvtColor(cv2.applyColorMap(np.zeros((1, 1), np.uint8), cv2.COLORMAP_INFERNO),
                        cv2.COLOR_BGR2RGB)[0, 0]
    np.testing.assert_array_equal(err[0, 0], dark)  # no error
    np.testing.assert_array_equal(err[0, 2], [0, 0, 0])  # no ground truth
    image = np.zeros((48, 64, 3), np.uint8)
    gt = np.linspace(1, 5, 96 * 128).reshape(96, 128)
    panel = depth_panel(image, gt, gt)
    assert panel.shape == (48, 256, 3) and panel.dtype == np.uint8
    # prediction and ground truth on one scale: equal depths, equal pictures (below labels)
    np.testing.assert_array_equal(panel[-16:, 64:128], panel[-16:, 128:192])
