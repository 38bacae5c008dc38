"""Tests of geometry.intrinsics on hand-computed values, for numpy and torch inputs."""

import numpy as np
import pytest
import torch

from geometry import crop_intrinsics, flip_intrinsics, scale_intrinsics

K_LIST = [[100.0, 0.0, 30.0], [0.0, 120.0, 40.0], [0.0, 0.0, 1.0]]


def as_kind(kind: str, value):
    return np.array(value, dtype=np.float32) if kind == "numpy" else torch.tensor(value)


def to_numpy(x) -> np.ndarray:
    return x.numpy() if isinstance(x, torch.Tensor) else x


@pytest.mark.parametrize("kind", ["numpy", "torch"])
@pytest.mark.parametrize(
    ("fn", "args", "expected"),
    [
        (scale_intrinsics, (0.5, 2.0), [[50.0, 0.0, 15.0], [0.0, 240.0, 80.0], [0.0, 0.0, 1.0]]),
        (crop_intrinsics, (10, 5), [[100.0, 0.0, 20.0], [0.0, 120.0, 35.0], [0.0, 0.0, 1.0]]),
        (flip_intrinsics, (100,), [[100.0, 0.0, 70.0], [0.0, 120.0, 40.0], [0.0, 0.0, 1.0]]),
    ],
)
def test_hand_values_same_kind_and_input_untouched(kind, fn, args, expected):
    K = as_kind(kind, K_LIST)
    out = fn(K, *args)
    assert type(out) is type(K)
    assert out.dtype == K.dtype
    np.testing.assert_allclose(to_numpy(out), expected)
    np.testing.assert_allclose(to_numpy(K), K_LIST)  # a new object, the input is unchanged


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_batched_input(kind):
    K = as_kind(kind, [K_LIST, K_LIST])
    out = scale_intrinsics(crop_intrinsics(K, 10, 5), 2.0, 0.5)
    assert tuple(out.shape) == (2, 3, 3)
    expected = [[200.0, 0.0, 40.0], [0.0, 60.0, 17.5], [0.0, 0.0, 1.0]]
    np.testing.assert_allclose(to_numpy(out), [expected, expected])


def test_flip_twice_is_identity_and_integer_input_becomes_float():
    K = np.array(K_LIST, dtype=np.float64)
    np.testing.assert_allclose(flip_intrinsics(flip_intrinsics(K, 64), 64), K)
    K_int = np.array([[10, 0, 3], [0, 10, 3], [0, 0, 1]])
    out = scale_intrinsics(K_int, 0.5, 0.5)
    assert np.issubdtype(out.dtype, np.floating)
    assert out[0, 2] == 1.5


def test_rejects_other_types():
    with pytest.raises(TypeError):
        scale_intrinsics(K_LIST, 1.0, 1.0)
