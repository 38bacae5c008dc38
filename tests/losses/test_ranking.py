"""Tests of losses/ranking.py: dynamic confidence, mask ranking and normal ranking losses."""

from __future__ import annotations

import math

import pytest
import torch

from geometry import depth_to_normals
from losses.ranking import MaskRankingLoss, NormalRankingLoss, dynamic_confidence, ranking_targets

F64 = torch.float64


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


# ---------------------------------------------------------------- dynamic confidence


def test_dynamic_confidence_averages_refs_and_trusts_unchecked_pixels():
    diff1 = torch.tensor([0.2, 0.5, 0.1]).view(1, 1, 1, 3)
    diff2 = torch.tensor([0.4, 0.3, 0.9]).view(1, 1, 1, 3)
    valid1 = torch.tensor([1.0, 1.0, 0.0]).view(1, 1, 1, 3)
    valid2 = torch.tensor([True, False, False]).view(1, 1, 1, 3)
    # The public code's rule (the default): what a warp cannot check counts as static.
    conf = dynamic_confidence([diff1, diff2], [valid1, valid2])
    torch.testing.assert_close(conf, torch.tensor([0.7, 0.75, 1.0]).view(1, 1, 1, 3))
    assert not conf.requires_grad
    # --unchecked_unreliable: confidence 0 there instead.
    conf = dynamic_confidence([diff1, diff2], [valid1, valid2], unchecked=0.0)
    torch.testing.assert_close(conf, torch.tensor([0.7, 0.25, 0.0]).view(1, 1, 1, 3))
    with pytest.raises(ValueError, match="one valid mask per depth_diff"):
        dynamic_confidence([diff1], [valid1, valid2])


# ---------------------------------------------------------------- ranking targets


def test_ranking_targets_follow_the_ratio_rule():
    zA = torch.tensor([1.2, 1.0, 1.1, 1.0, 0.0, 1.2, 0.0, -1.0, 2.0])
    zB = torch.tensor([1.0, 1.2, 1.0, 1.1, 1.0, 0.0, 0.0, 2.0, 1.0])
    target, keep = ranking_targets(zA, zB)
    # 1.2 -> +1; 1/1.2 -> -1; 1.1 either way -> dropped; any invalid side -> dropped
    # (the public code's `|` kept zA valid & zB invalid); 2 -> +1.
    assert target.tolist() == [1.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    assert keep.tolist() == [True, True, False, False, False, False, False, False, True]
    # The ratio is a parameter.
    target, keep = ranking_targets(zA, zB, ratio=1.05)
    assert target[:4].tolist() == [1.0, -1.0, 1.0, -1.0] and keep[:4].all()


# ---------------------------------------------------------------- mask ranking


def test_pair_loss_hand_computed():
    prior = torch.tensor([2.0, 1.0, 1.1, 0.0], dtype=F64).view(1, 1, 2, 2)
    pred = torch.tensor([0.5, 1.5, 3.0, 1.0], dtype=F64).view(1, 1, 2, 2)
    idx_a = torch.tensor([[0, 1, 1, 2, 0, 2, 0]])
    idx_b = torch.tensor([[1, 0, 2, 1, 3, 0, 2]])
    # Kept: (0,1) +1, d=-1; (1,0) -1, d=+1; (2,0) -1, d=2.5; (0,2) +1, d=-2.5.
    # Dropped: (1,2), (2,1) (ratio 1.1) and (0,3) (invalid prior).
    expected = (2 * _softplus(1.0) + 2 * _softplus(2.5)) / 4
    loss = MaskRankingLoss().pair_loss(pred, prior, idx_a, idx_b)
    assert loss.item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_forward_hand_computed_on_2x2(seed):
    # Pixel 0 is the unreliable one (lowest confidence); whichever pixel it is paired with,
    # and whichever global pairs are drawn, every kept pair has the loss softplus(0.5).
    conf = torch.tensor([0.0, 1.0, 1.0, 1.0]).view(1, 1, 2, 2)
    prior = torch.tensor([2.0, 1.0, 1.0, 1.0], dtype=F64).view(1, 1, 2, 2)
    pred = torch.tensor([0.5, 1.0, 1.0, 1.0], dtype=F64).view(1, 1, 2, 2)
    loss_fn = MaskRankingLoss(unreliable_fraction=0.25, global_fraction=0.5)
    idx_a, idx_b = loss_fn.sample_pairs(conf, _gen(seed))
    assert idx_a.shape == idx_b.shape == (1, 3)
    assert idx_a[0, 0].item() == 0 and idx_b[0, 0].item() != 0
    assert loss_fn(pred, prior, conf, _gen(seed)).loss.item() == pytest.approx(_softplus(0.5))


def test_sample_pairs_selects_lowest_confidence_and_reliable_partners():
    B, H, W = 2, 4, 5
    conf = torch.rand(B, 1, H, W, generator=_gen(1))
    loss_fn = MaskRankingLoss()  # 20 % unreliable -> 4 of 20, 10 % global -> 2
    idx_a, idx_b = loss_fn.sample_pairs(conf, _gen(2))
    assert idx_a.shape == idx_b.shape == (B, 6)
    for b in range(B):
        lowest = set(conf[b].flatten().argsort()[:4].tolist())
        assert set(idx_a[b, :4].tolist()) == lowest
        assert not lowest & set(idx_b[b, :4].tolist())
        # Global pairs: distinct random pixels paired with a permutation of themselves.
        assert len(set(idx_a[b, 4:].tolist())) == 2
        assert sorted(idx_b[b, 4:].tolist()) == sorted(idx_a[b, 4:].tolist())


def test_sample_pairs_breaks_confidence_ties_at_random():
    conf = torch.ones(1, 1, 4, 5)
    loss_fn = MaskRankingLoss(global_fraction=0.0)
    first = [set(loss_fn.sample_pairs(conf, _gen(s))[0][0].tolist()) for s in range(3)]
    assert first[0] != first[1] or first[1] != first[2]


def test_raster_global_pairs_are_the_public_codes():
    """--mask_rank_global_pairs raster: the k-th pixels of two random sets in raster order,
    the same sets for every image of the batch."""
    B, H, W = 3, 8, 10
    loss_fn = MaskRankingLoss(global_fraction=0.25, global_pairs="raster")
    idx_a, idx_b = loss_fn.sample_pairs(torch.rand(B, 1, H, W, generator=_gen(1)), _gen(2))
    k, m = int(0.2 * H * W), int(0.25 * H * W)
    a, b = idx_a[:, k:], idx_b[:, k:]
    assert a.shape == b.shape == (B, m)
    for pixels in (a, b):
        assert (pixels == pixels[:1]).all()  # shared by the batch
        assert (pixels[0, 1:] > pixels[0, :-1]).all()  # distinct, in raster order
    assert set(a[0].tolist()) != set(b[0].tolist())
    # "spread" pairs a random set with a permutation of itself, per image
    spread = MaskRankingLoss(global_fraction=0.25)
    s_a, s_b = spread.sample_pairs(torch.rand(B, 1, H, W, generator=_gen(1)), _gen(2))
    assert sorted(s_a[0, k:].tolist()) == sorted(s_b[0, k:].tolist())
    with pytest.raises(ValueError, match="global_pairs"):
        MaskRankingLoss(global_pairs="rows")


def test_mask_ranking_is_deterministic_with_a_generator():
    pred = torch.rand(2, 1, 6, 7, generator=_gen(3)) + 0.5
    prior = torch.rand(2, 1, 6, 7, generator=_gen(4)) + 0.5
    conf = torch.rand(2, 1, 6, 7, generator=_gen(5))
    loss_fn = MaskRankingLoss()
    assert (loss_fn(pred, prior, conf, _gen(7)).loss.item()
            == loss_fn(pred, prior, conf, _gen(7)).loss.item())


def test_mask_ranking_constant_confidence_finite_and_differentiable():
    pred = (torch.rand(2, 1, 6, 7, generator=_gen(3)) + 0.5).requires_grad_(True)
    prior = torch.rand(2, 1, 6, 7, generator=_gen(4)) + 0.5
    loss = MaskRankingLoss()(pred, prior, torch.ones(2, 1, 6, 7), _gen(0)).loss
    loss.backward()
    assert torch.isfinite(loss) and loss.item() > 0
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_mask_ranking_all_prior_invalid_is_zero_with_a_graph():
    pred = (torch.rand(2, 1, 6, 7, generator=_gen(3)) + 0.5).requires_grad_(True)
    loss = MaskRankingLoss()(pred, torch.zeros(2, 1, 6, 7), torch.rand(2, 1, 6, 7),
                             _gen(0)).loss
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(pred.grad, torch.zeros_like(pred))


def test_mask_ranking_near_and_far_depths_do_not_overflow():
    # The prior says A is farther, the prediction says it is 1000 m nearer: softplus(~1000)
    # in float32, where log(1 + exp(x)) would be inf.
    prior = torch.tensor([2.0, 1.0]).view(1, 1, 1, 2)
    pred = torch.tensor([1e-3, 1e3]).view(1, 1, 1, 2).requires_grad_(True)
    loss = MaskRankingLoss().pair_loss(pred, prior, torch.tensor([[0]]), torch.tensor([[1]]))
    assert loss.item() == pytest.approx(1e3 - 1e-3, rel=1e-6)
    loss.backward()
    torch.testing.assert_close(pred.grad, torch.tensor([-1.0, 1.0]).view(1, 1, 1, 2))


def test_mask_ranking_gradcheck():
    pred = (torch.rand(2, 1, 4, 5, generator=_gen(8), dtype=F64) + 0.5).requires_grad_(True)
    prior = torch.rand(2, 1, 4, 5, generator=_gen(9), dtype=F64) + 0.5
    conf = torch.rand(2, 1, 4, 5, generator=_gen(10))
    loss_fn = MaskRankingLoss()
    assert torch.autograd.gradcheck(lambda p: loss_fn(p, prior, conf, _gen(0)).loss, (pred,))


def test_normalized_mask_ranking_hand_computed_and_scale_invariant():
    # One image, mean depth 2: normalised depths 0.5 and 1.5; the prior says A is farther.
    prior = torch.tensor([2.0, 1.0], dtype=F64).view(1, 1, 1, 2)
    pred = torch.tensor([1.0, 3.0], dtype=F64).view(1, 1, 1, 2)
    idx_a, idx_b = torch.tensor([[0]]), torch.tensor([[1]])
    loss_fn = MaskRankingLoss(normalize=True)
    assert loss_fn.pair_loss(pred, prior, idx_a, idx_b).item() == pytest.approx(_softplus(1.0))
    # Raw depths: softplus(2), and a uniform rescaling changes the raw loss but not this one.
    assert MaskRankingLoss().pair_loss(pred, prior, idx_a, idx_b).item() == pytest.approx(
        _softplus(2.0))
    assert loss_fn.pair_loss(10 * pred, prior, idx_a, idx_b).item() == pytest.approx(
        _softplus(1.0))
    # So the gradient has no component along the prediction itself (d/ds L(s·d) = 0).
    pred = (torch.rand(2, 1, 4, 5, generator=_gen(8), dtype=F64) + 0.5).requires_grad_(True)
    prior = torch.rand(2, 1, 4, 5, generator=_gen(9), dtype=F64) + 0.5
    conf = torch.rand(2, 1, 4, 5, generator=_gen(10))
    loss_fn(pred, prior, conf, _gen(0)).loss.backward()
    radial = (pred.grad * pred.detach()).flatten(1).sum(1)
    torch.testing.assert_close(radial, torch.zeros(2, dtype=F64), atol=1e-12, rtol=0)
    assert pred.grad.abs().sum() > 0
    assert torch.autograd.gradcheck(lambda p: loss_fn(p, prior, conf, _gen(0)).loss, (pred,))


# ---------------------------------------------------------------- normal ranking

H, W = 16, 24


def _k_inv(B: int = 1, dtype: torch.dtype = F64) -> torch.Tensor:
    K = torch.tensor([[20.0, 0.0, W / 2], [0.0, 20.0, H / 2], [0.0, 0.0, 1.0]], dtype=dtype)
    return torch.linalg.inv(K).expand(B, 3, 3).clone()


def _plane(normal: list[float], d: float, h: int = H, w: int = W) -> torch.Tensor:
    """Depth [1,1,h,w] of the plane n·X = d (n camera-facing, d < 0)."""
    n = torch.tensor(normal, dtype=F64)
    n = n / n.norm()
    v, u = torch.meshgrid(torch.arange(h, dtype=F64), torch.arange(w, dtype=F64), indexing="ij")
    rays = (_k_inv()[0] @ torch.stack([u, v, torch.ones_like(u)]).reshape(3, -1)).reshape(3, h, w)
    return (d / (n.view(3, 1, 1) * rays).sum(dim=0)).view(1, 1, h, w)


def _vertical_edge_image(h: int = H, w: int = W) -> torch.Tensor:
    image = torch.full((1, 3, h, w), -1.0, dtype=F64)
    image[..., w // 2 :] = 1.5
    return image


def test_image_anchors_lie_on_the_edge_with_horizontal_direction():
    prior = torch.full((1, 1, H, W), 2.0, dtype=F64)
    loss_fn = NormalRankingLoss()
    image_anchors, normal_anchors, image_dir, _ = loss_fn.anchor_maps(
        _vertical_edge_image(), prior, depth_to_normals(prior, _k_inv())
    )
    expected = torch.zeros(1, 1, H, W, dtype=torch.bool)
    expected[..., 1 : H - 1, W // 2 - 1 : W // 2 + 1] = True  # Sobel: both sides, no border
    assert torch.equal(image_anchors, expected)
    assert not normal_anchors.any()  # a plane has no normal edges
    torch.testing.assert_close(image_dir[:, 0][expected[:, 0]], torch.ones(2 * (H - 2), dtype=F64))
    torch.testing.assert_close(image_dir[:, 1][expected[:, 0]], torch.zeros(2 * (H - 2), dtype=F64))


def test_no_anchors_near_prior_depth_edges():
    prior = torch.full((1, 1, H, W), 2.0, dtype=F64)
    prior[..., W // 2 :] = 5.0  # a depth step exactly at the image edge
    image_anchors, normal_anchors, _, _ = NormalRankingLoss().anchor_maps(
        _vertical_edge_image(), prior, depth_to_normals(prior, _k_inv())
    )
    assert not image_anchors.any() and not normal_anchors.any()


def test_normal_anchors_on_a_prior_crease_away_from_border_and_depth_edges():
    # Left half tilted, right half fronto-parallel (meeting continuously at column 12), and
    # a large depth step at row 12 so the smooth slopes are not depth edges themselves.
    tilted, flat = _plane([0.5, 0.1, -1.0], -2.0), _plane([0.0, 0.0, -1.0], -2.0)
    u = torch.arange(W).view(1, 1, 1, W)
    prior = torch.where(u < W // 2, tilted, flat)
    prior[..., 12:, :] = 30.0
    border = 5
    _, normal_anchors, _, normal_dir = NormalRankingLoss(border=border).anchor_maps(
        torch.zeros(1, 3, H, W, dtype=F64), prior, depth_to_normals(prior, _k_inv())
    )
    rows, cols = normal_anchors[0, 0].nonzero().unbind(1)
    assert rows.numel() > 0
    assert rows.min() >= border and rows.max() <= 9  # border, and the band around row 12
    # at the crease between columns 11 and 12: Sobel normals change over columns 11-12,
    # their Sobel edge spans 10-13
    assert cols.min() >= W // 2 - 2 and cols.max() <= W // 2 + 1
    # The normals change across the crease: the sampling direction is horizontal.
    assert (normal_dir[0, 0][normal_anchors[0, 0]].abs() > 0.99).all()


def test_sample_pairs_four_ordered_points_along_the_direction():
    size, centre = 60, 30
    anchors = torch.zeros(1, 1, size, size, dtype=torch.bool)
    anchors[..., centre, centre] = True
    direction = torch.tensor([0.6, 0.8], dtype=F64).view(1, 2, 1, 1).expand(1, 2, size, size)
    loss_fn = NormalRankingLoss(max_anchors=5)
    for seed in range(5):
        idx_a, idx_b, valid = loss_fn.sample_pairs(anchors, direction, _gen(seed))
        assert idx_a.shape == idx_b.shape == valid.shape == (1, 15)
        assert valid.sum() == 3  # one anchor, three pairs; the other slots are empty
        first = valid[0].nonzero()[0].item()
        points = torch.cat([idx_a[0, first : first + 3], idx_b[0, first + 2 :][:1]])
        rows, cols = (points // size - centre).double(), (points % size - centre).double()
        along = 0.6 * cols + 0.8 * rows  # signed position along the line
        across = -0.8 * cols + 0.6 * rows
        assert (along[1:] >= along[:-1]).all() and along[1] < 0 < along[2]
        assert (along.abs() >= 3 - 1).all() and (along.abs() <= 19 + 1).all()
        assert (across.abs() <= 0.71).all()  # rounding to pixels


def test_public_sampling_uses_red_edges_and_folds_the_direction():
    prior = torch.full((1, 1, H, W), 2.0, dtype=F64)
    normals = depth_to_normals(prior, _k_inv())
    # bright on the left: the gradient points to -u
    left_bright = -_vertical_edge_image()
    public = NormalRankingLoss(sampling="public")
    anchors, _, direction, _ = public.anchor_maps(left_bright, prior, normals)
    ours_anchors, _, ours_dir, _ = NormalRankingLoss().anchor_maps(left_bright, prior, normals)
    assert torch.equal(anchors, ours_anchors)
    torch.testing.assert_close(direction[:, 0][anchors[:, 0]].min().item(), 1.0)  # folded
    torch.testing.assert_close(ours_dir[:, 0][anchors[:, 0]].max().item(), -1.0)
    # an edge in the green channel only is no edge for the public code
    green = torch.zeros(1, 3, H, W, dtype=F64)
    green[:, 1, :, W // 2:] = 2.0
    assert not public.anchor_maps(green, prior, normals)[0].any()
    assert NormalRankingLoss().anchor_maps(green, prior, normals)[0].any()


def test_public_sampling_draws_with_replacement_in_random_order():
    size, centre = 60, 30
    anchors = torch.zeros(1, 1, size, size, dtype=torch.bool)
    anchors[..., centre, centre] = True
    direction = torch.tensor([1.0, 0.0], dtype=F64).view(1, 2, 1, 1).expand(1, 2, size, size)
    loss_fn = NormalRankingLoss(max_anchors=5, sampling="public")
    unordered = False
    for seed in range(10):
        idx_a, idx_b, valid = loss_fn.sample_pairs(anchors, direction, _gen(seed))
        assert valid.shape == (1, 15) and valid[0, :3].all() and not valid[0, 3:].any()
        cols = torch.cat([idx_a[0, :3], idx_b[0, 2:3]]) % size - centre
        assert (cols[:2] < 0).all() and (cols[2:] > 0).all()  # two on each side
        unordered |= bool(cols[0] > cols[1])  # a may lie between b and the anchor
    assert unordered
    # as many draws as anchors: two anchors fill two slots, repeats allowed
    anchors[..., centre + 5, centre] = True
    _, _, valid = loss_fn.sample_pairs(anchors, direction, _gen(0))
    assert valid.sum() == 6
    with pytest.raises(ValueError, match="sampling"):
        NormalRankingLoss(sampling="edges")


def test_public_sampling_loss_is_finite_differentiable_and_zero_on_the_prior():
    image, K_inv = _vertical_edge_image(), _k_inv()
    prior = _plane([0.0, 0.0, -1.0], -2.0)
    u = torch.arange(W).view(1, 1, 1, W)
    crease = torch.where(u < W // 2, _plane([0.5, 0.1, -1.0], -2.0), prior).requires_grad_(True)
    loss_fn = NormalRankingLoss(sampling="public")
    assert loss_fn(prior, prior, image, K_inv, _gen(0)).item() == 0.0
    loss = loss_fn(crease, prior, image, K_inv, _gen(0))
    loss.backward()
    assert loss.item() > 0.01 and torch.isfinite(crease.grad).all()


def test_sample_pairs_caps_anchors_per_image_and_handles_empty_images():
    anchors = torch.zeros(2, 1, 8, 8, dtype=torch.bool)
    anchors[0] = True  # 64 anchors in image 0, none in image 1
    direction = torch.zeros(2, 2, 8, 8)
    direction[:, 0] = 1.0
    _, _, valid = NormalRankingLoss(max_anchors=10).sample_pairs(anchors, direction, _gen(0))
    assert valid.shape == (2, 30)
    assert valid[0].all() and not valid[1].any()


def test_normal_ranking_zero_for_equal_or_consistent_planes_positive_for_a_crease():
    image, K_inv = _vertical_edge_image(), _k_inv()
    prior = _plane([0.0, 0.0, -1.0], -2.0)  # fronto-parallel: no depth or normal edges
    loss_fn = NormalRankingLoss()
    assert loss_fn(prior, prior, image, K_inv, _gen(0)).item() == 0.0
    # Another plane: every pair of its normals is parallel, as in the prior.
    tilted = _plane([0.5, 0.1, -1.0], -2.0)
    assert loss_fn(tilted, prior, image, K_inv, _gen(0)).item() < 1e-10
    # A crease at the image edge: pairs across it disagree with the flat prior.
    u = torch.arange(W).view(1, 1, 1, W)
    crease = torch.where(u < W // 2, tilted, prior)
    assert loss_fn(crease, prior, image, K_inv, _gen(0)).item() > 0.01


def test_normal_ranking_batched_with_an_empty_image():
    K_inv = _k_inv(2)
    prior = _plane([0.0, 0.0, -1.0], -2.0).expand(2, 1, H, W)
    u = torch.arange(W).view(1, 1, 1, W)
    crease = torch.where(u < W // 2, _plane([0.5, 0.1, -1.0], -2.0), prior[:1])
    pred = torch.cat([crease, crease]).requires_grad_(True)
    image = torch.cat([_vertical_edge_image(), torch.zeros(1, 3, H, W, dtype=F64)])
    loss_fn = NormalRankingLoss()
    loss = loss_fn(pred, prior, image, K_inv, _gen(0))
    loss.backward()
    # Only image 0 has anchors: image 1 contributes no pair and gets no gradient.
    assert loss.item() > 0.01
    assert pred.grad[1].abs().sum() == 0 and pred.grad[0].abs().sum() > 0


def test_normal_ranking_without_edges_is_zero_with_a_graph():
    pred = (torch.rand(1, 1, H, W, generator=_gen(1), dtype=F64) + 1).requires_grad_(True)
    prior = _plane([0.0, 0.0, -1.0], -2.0)
    loss = NormalRankingLoss()(pred, prior, torch.zeros(1, 3, H, W, dtype=F64), _k_inv())
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(pred.grad, torch.zeros_like(pred))


def test_normal_ranking_all_prior_invalid_is_zero():
    pred = (torch.rand(1, 1, H, W, generator=_gen(1), dtype=F64) + 1).requires_grad_(True)
    prior = torch.zeros(1, 1, H, W, dtype=F64)
    loss = NormalRankingLoss()(pred, prior, _vertical_edge_image(), _k_inv(), _gen(0))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(pred.grad).all()


def test_normal_ranking_near_and_far_depths_finite():
    pred = torch.full((1, 1, H, W), 1e-3)
    pred[..., W // 2 + 3 :] = 1e3
    pred.requires_grad_(True)
    prior = torch.full((1, 1, H, W), 1e3)
    prior[..., : W // 3] = 1e-3
    loss = NormalRankingLoss()(
        pred, prior, _vertical_edge_image().float(), _k_inv(dtype=torch.float32), _gen(0)
    )
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(pred.grad).all()


def test_normal_ranking_gradcheck():
    h, w = 8, 12
    pred = (torch.rand(1, 1, h, w, generator=_gen(2), dtype=F64) + 1).requires_grad_(True)
    prior = torch.full((1, 1, h, w), 2.0, dtype=F64)
    image = _vertical_edge_image(h, w)
    loss_fn = NormalRankingLoss(min_dist=1, max_dist=4)
    assert loss_fn(pred, prior, image, _k_inv(), _gen(0)).item() > 0
    assert torch.autograd.gradcheck(lambda p: loss_fn(p, prior, image, _k_inv(), _gen(0)), (pred,))
