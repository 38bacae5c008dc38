"""Tests of geometry.direct_alignment: refining a rotation by photometric alignment."""

import math

import pytest
import torch
import torch.nn.functional as F

from geometry import crop_intrinsics, refine_rotation, rotation_warp
from geometry.direct_alignment import _pooled

H, W, MARGIN, F_PX = 64, 80, 16, 80.0


def base_image(seed: int) -> torch.Tensor:
    """A smooth random texture ``[1,3,H+2M,W+2M]``: white noise upsampled bicubically."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, (H + 2 * MARGIN) // 4, (W + 2 * MARGIN) // 4, generator=gen)
    return F.interpolate(coarse, scale_factor=4, mode="bicubic", align_corners=False)


def pair(rot: tuple[float, float, float], seed: int) -> tuple[torch.Tensor, ...]:
    """(tgt, ref, K) where tgt is ref's camera turned by ``rot``: target pixel p sees what ref
    sees at K·R·K⁻¹·p. Both are crops of one wide view, so neither has an empty border."""
    big = base_image(seed)
    Hb, Wb = big.shape[-2:]
    K_big = torch.tensor([[F_PX, 0, (Wb - 1) / 2], [0, F_PX, (Hb - 1) / 2], [0, 0, 1.0]])[None]
    turned = rotation_warp(big, torch.tensor([rot]), K_big)
    crop = (slice(None), slice(None), slice(MARGIN, MARGIN + H), slice(MARGIN, MARGIN + W))
    return turned[crop], big[crop], crop_intrinsics(K_big, MARGIN, MARGIN)


def stacked(rots: list[tuple[float, float, float]]) -> tuple[torch.Tensor, ...]:
    pairs = [pair(rot, seed) for seed, rot in enumerate(rots)]
    return tuple(torch.cat(parts) for parts in zip(*pairs))


TRUE = [(0.03, -0.02, 0.01), (-0.015, 0.035, -0.02)]


def test_recovers_a_known_rotation_from_a_start_a_degree_off() -> None:
    tgt, ref, K = stacked(TRUE)
    truth = torch.tensor(TRUE)
    start = truth + torch.tensor([[0.012, -0.01, 0.008], [-0.01, 0.012, 0.01]])
    refined = refine_rotation(tgt, ref, start, K)
    assert (start - truth).abs().max() > 0.01  # about a degree off
    assert (refined - truth).abs().max() < 1e-3  # under 0.06°
    assert refined.dtype == start.dtype and not refined.requires_grad


def test_pairs_of_a_batch_are_refined_independently() -> None:
    tgt, ref, K = stacked(TRUE)
    start = torch.tensor(TRUE) + 0.01
    together = refine_rotation(tgt, ref, start, K)
    for i in range(2):
        alone = refine_rotation(tgt[i:i + 1], ref[i:i + 1], start[i:i + 1], K[i:i + 1])
        assert torch.allclose(alone, together[i:i + 1], atol=1e-5)


def test_does_not_move_where_there_is_nothing_to_align() -> None:
    # A uniform image has no gradient: the start stays (to rounding).
    flat = torch.full((1, 3, H, W), 0.5)
    K = torch.tensor([[F_PX, 0, (W - 1) / 2], [0, F_PX, (H - 1) / 2], [0, 0, 1.0]])[None]
    start = torch.tensor([[0.01, -0.02, 0.03]])
    assert torch.allclose(refine_rotation(flat, flat, start, K), start, atol=1e-6)
    # Already exact (identical images, no rotation): stays at zero.
    tgt = base_image(3)[..., :H, :W]
    zero = torch.zeros(1, 3)
    assert refine_rotation(tgt, tgt, zero, K).abs().max() < 1e-4


def test_keeps_the_start_where_the_search_made_it_worse(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    # Gauss-Newton steps that all go the wrong way (a degree and more): the pair whose error
    # rises keeps its start exactly.
    tgt, ref, K = stacked(TRUE)
    truth = torch.tensor(TRUE)
    monkeypatch.setattr(torch.linalg, "solve", lambda A, b: -torch.ones_like(b))
    assert torch.equal(refine_rotation(tgt, ref, truth, K), truth)


def test_pooled_intrinsics_follow_pixel_centres() -> None:
    # A 4× average-pool: pooled pixel j covers old pixels 4j..4j+3, centred at 4j + 1.5; a
    # ray through old pixel u = 4j + 1.5 goes through pooled pixel j.
    K = torch.tensor([[F_PX, 0, 39.5], [0, F_PX, 31.5], [0, 0, 1.0]])[None]
    _, Kp = _pooled(torch.zeros(1, 1, H, W), K, 4)
    ray = torch.linalg.inv(K[0]) @ torch.tensor([4 * 5 + 1.5, 4 * 3 + 1.5, 1.0])
    pixel = Kp[0] @ ray
    assert torch.allclose(pixel[:2] / pixel[2], torch.tensor([5.0, 3.0]), atol=1e-5)
    assert math.isclose(float(Kp[0, 0, 0]), F_PX / 4)
