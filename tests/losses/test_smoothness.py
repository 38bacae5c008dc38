"""Tests of losses.smoothness.edge_aware_smoothness."""

import math

import torch

from losses.smoothness import edge_aware_smoothness


def test_constant_depth_is_zero():
    depth = torch.full((2, 1, 6, 7), 3.0)
    assert edge_aware_smoothness(depth, torch.rand(2, 3, 6, 7)).item() == 0


def test_horizontal_ramp_hand_value():
    # depth = 1..5 along x: mean 3, normalised step 1/3; the image steps by 0.5 along x in
    # every channel, so the weight is exp(−0.5); nothing changes along y.
    depth = torch.arange(1.0, 6.0).expand(1, 1, 4, 5)
    img = (0.5 * torch.arange(5.0)).expand(1, 3, 4, 5)
    expected = math.exp(-0.5) / 3
    assert math.isclose(edge_aware_smoothness(depth, img).item(), expected, rel_tol=1e-5)


def test_vertical_ramp_hand_value():
    # depth = 2, 4, 6, 8 along y: mean 5, step 2/5; image channels step by 0.1, 0.2, 0.3
    # along y (mean 0.2): weight exp(−0.2).
    depth = (2.0 * torch.arange(1.0, 5.0)).reshape(1, 1, 4, 1).expand(1, 1, 4, 3)
    img = torch.stack([s * torch.arange(4.0) for s in (0.1, 0.2, 0.3)]).reshape(1, 3, 4, 1)
    img = img.expand(1, 3, 4, 3)
    expected = 0.4 * math.exp(-0.2)
    assert math.isclose(edge_aware_smoothness(depth, img).item(), expected, rel_tol=1e-5)


def test_scale_invariance_and_gradcheck():
    torch.manual_seed(0)
    depth = torch.rand(2, 1, 5, 6, dtype=torch.float64) + 0.5
    img = torch.rand(2, 3, 5, 6, dtype=torch.float64)
    s = edge_aware_smoothness(depth, img)
    assert torch.isclose(edge_aware_smoothness(7.0 * depth, img), s)
    assert torch.autograd.gradcheck(edge_aware_smoothness, (depth.requires_grad_(), img))
