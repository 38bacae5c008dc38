"""Depth metrics: hand-computed values, crops, median scaling, dynamic/static split."""

from __future__ import annotations

import math

import pytest
import torch

from datasets.registry import dataset_spec
from losses.metrics import (
    METRIC_NAMES,
    DepthEvaluator,
    eval_mask,
    format_table,
    masked_median,
    metrics_for_logging,
)


def _gt(B: int = 1, H: int = 6, W: int = 8, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 1.0 + 4.0 * torch.rand(B, H, W, generator=g, dtype=torch.float64)


def _evaluate(pred, gt, dynamic=None, dataset="bonn") -> dict:
    ev = DepthEvaluator(dataset_spec(dataset))
    ev.update(pred, gt, dynamic)
    return ev.compute()


def test_perfect_prediction():
    gt = _gt(B=2)
    res = _evaluate(gt.unsqueeze(1).clone(), gt)
    full = res["full"]
    for name in ("abs_rel", "sq_rel", "log10", "rmse", "rmse_log"):
        assert full[name] == pytest.approx(0.0, abs=1e-12)
    for name in ("a1", "a2", "a3"):
        assert full[name] == 1.0
    assert res["ratio_mean"] == pytest.approx(1.0)
    assert res["ratio_std"] == pytest.approx(0.0, abs=1e-12)
    assert res["num_images"] == 2 and res["num_skipped"] == 0
    assert res["dynamic"] is None and res["static"] is None


def test_median_scaling_removes_a_global_scale():
    gt = _gt(B=2)
    res = _evaluate(2.0 * gt, gt)  # pred [B,h,w] form
    assert res["full"]["abs_rel"] == pytest.approx(0.0, abs=1e-12)
    assert res["full"]["a1"] == 1.0
    assert res["ratio_mean"] == pytest.approx(0.5)


def test_hand_computed_2x2():
    # gt = [[1,2],[3,4]], pred = [[1,2],[3,8]]: medians 2.5 and 2.5 -> ratio 1.
    gt = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    pred = torch.tensor([[[[1.0, 2.0], [3.0, 8.0]]]])
    res = _evaluate(pred, gt)["full"]
    # Only the last pixel is off: |4-8|/4 = 1, (4-8)^2/4 = 4, (4-8)^2 = 16, over 4 pixels.
    assert res["abs_rel"] == pytest.approx(1.0 / 4)
    assert res["sq_rel"] == pytest.approx(4.0 / 4)
    assert res["rmse"] == pytest.approx(math.sqrt(16.0 / 4))
    assert res["log10"] == pytest.approx(math.log10(2.0) / 4)
    assert res["rmse_log"] == pytest.approx(math.sqrt(math.log(2.0) ** 2 / 4))
    # thresh = 2 at the last pixel: > 1.25 and > 1.5625 but < 1.953125.
    assert res["a1"] == pytest.approx(0.75)
    assert res["a2"] == pytest.approx(0.75)
    assert res["a3"] == pytest.approx(0.75)


def test_hand_computed_with_scaling_and_clamp():
    # gt = [[1,2],[4,20]] on bonn (max 10 m): 20 is out of range -> 3 valid pixels.
    # pred = [[2,2],[2,100]]: median over the valid pixels (2,2,2) is 2, gt median 2 -> ratio 1.
    gt = torch.tensor([[[1.0, 2.0], [4.0, 20.0]]])
    pred = torch.tensor([[[[2.0, 2.0], [2.0, 100.0]]]])
    res = _evaluate(pred, gt)
    full = res["full"]
    # abs_rel = (|1-2|/1 + 0 + |4-2|/4) / 3 = 1.5 / 3.
    assert full["abs_rel"] == pytest.approx(0.5)
    assert full["rmse"] == pytest.approx(math.sqrt((1.0 + 0.0 + 4.0) / 3))
    assert full["a1"] == pytest.approx(1.0 / 3)
    assert res["ratio_mean"] == pytest.approx(1.0)


def test_prediction_is_resized_bilinearly_to_gt():
    gt = torch.full((1, 8, 10), 3.0)
    pred = torch.full((1, 1, 4, 5), 7.0)  # constant: any bilinear resize keeps it
    res = _evaluate(pred, gt)
    assert res["full"]["abs_rel"] == pytest.approx(0.0, abs=1e-12)
    assert res["ratio_mean"] == pytest.approx(3.0 / 7.0)


def test_masked_median_matches_numpy_convention():
    x = torch.tensor([[4.0, 1.0, 3.0, 2.0, 100.0], [5.0, 1.0, 9.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, True, True, False], [True, True, True, False, False]])
    med = masked_median(x, mask)
    assert med.tolist() == [2.5, 5.0]
    assert math.isnan(masked_median(x, torch.zeros_like(mask))[0])


def test_kitti_garg_crop():
    H, W = 40, 100
    mask = eval_mask(torch.full((H, W), 5.0), dataset_spec("kitti"))
    rows = mask.any(dim=1).nonzero().flatten()
    cols = mask.any(dim=0).nonzero().flatten()
    # int(0.40810811*40)=16, int(0.99189189*40)=39, int(0.03594771*100)=3, int(0.96405229*100)=96
    assert (rows.min().item(), rows.max().item() + 1) == (16, 39)
    assert (cols.min().item(), cols.max().item() + 1) == (3, 96)
    assert mask.sum().item() == (39 - 16) * (96 - 3)


def test_nyu_eigen_crop_and_scaled_crop():
    mask = eval_mask(torch.full((480, 640), 5.0), dataset_spec("nyu"))
    expected = torch.zeros(480, 640, dtype=torch.bool)
    expected[45:471, 41:601] = True
    assert torch.equal(mask, expected)
    # half resolution: the crop halves
    half = eval_mask(torch.full((240, 320), 5.0), dataset_spec("nyu"))
    expected = torch.zeros(240, 320, dtype=torch.bool)
    expected[22:235, 20:300] = True
    assert torch.equal(half, expected)


@pytest.mark.parametrize("name", ["ddad", "bonn", "tum", "synthetic"])
def test_no_crop_and_strict_range(name):
    lo, hi = dataset_spec(name).eval_range
    gt = torch.tensor([[0.0, lo, (lo + hi) / 2, hi, hi + 1.0]])
    assert eval_mask(gt, dataset_spec(name)).tolist() == [[False, False, True, False, False]]


def test_mask_works_on_batches():
    gt = torch.full((3, 480, 640), 5.0)
    nyu = dataset_spec("nyu")
    assert torch.equal(eval_mask(gt, nyu), eval_mask(gt[0], nyu).expand(3, -1, -1))


def test_unknown_dataset_raises():
    with pytest.raises(ValueError, match=r"'mars'.*kitti, nyu, ddad, bonn, tum, synthetic"):
        dataset_spec("mars")


def test_images_count_once_in_full_mean():
    gt = _gt(B=2)
    pred = gt.clone()
    pred[1, :, :4] *= 2.0  # second image partly wrong, first perfect
    dynamic = torch.zeros(2, 6, 8, dtype=torch.bool)
    dynamic[:, 0, 0] = True  # masks present: must not add extra entries to the full mean
    per_image = [_evaluate(pred[i : i + 1], gt[i : i + 1])["full"] for i in range(2)]
    both = _evaluate(pred, gt, dynamic)
    assert both["num_images"] == 2
    for name in METRIC_NAMES:
        expected = (per_image[0][name] + per_image[1][name]) / 2
        assert both["full"][name] == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_batches_accumulate_like_one_batch():
    gt = _gt(B=3, seed=1)
    pred = gt * torch.linspace(0.5, 1.5, 8, dtype=torch.float64)
    one = _evaluate(pred, gt)
    ev = DepthEvaluator(dataset_spec("bonn"))
    ev.update(pred[:1], gt[:1])
    ev.update(pred[1:], gt[1:])
    two = ev.compute()
    assert two["full"] == pytest.approx(one["full"])
    assert two["ratio_mean"] == pytest.approx(one["ratio_mean"])
    assert two["ratio_std"] == pytest.approx(one["ratio_std"])


def test_dynamic_static_split():
    # gt = 1 everywhere on a 3x3 image; the centre pixel is dynamic and predicted 3x too far.
    # Median of pred over the 9 valid pixels is 1 -> ratio 1: static perfect, dynamic off x3.
    gt = torch.ones(1, 3, 3)
    pred = torch.ones(1, 1, 3, 3)
    pred[0, 0, 1, 1] = 3.0
    dynamic = torch.zeros(1, 3, 3, dtype=torch.bool)
    dynamic[0, 1, 1] = True
    res = _evaluate(pred, gt, dynamic)
    assert res["static"]["abs_rel"] == pytest.approx(0.0, abs=1e-12)
    assert res["static"]["a1"] == 1.0
    assert res["dynamic"]["abs_rel"] == pytest.approx(2.0)  # |1-3|/1
    assert res["dynamic"]["rmse"] == pytest.approx(2.0)
    assert res["dynamic"]["a1"] == 0.0
    assert res["full"]["abs_rel"] == pytest.approx(2.0 / 9)
    assert res["num_dynamic_images"] == 1


def test_images_without_dynamic_pixels_do_not_count_in_dynamic_mean():
    gt = torch.ones(2, 3, 3)
    pred = torch.ones(2, 1, 3, 3)
    pred[0, 0, 1, 1] = 3.0
    dynamic = torch.zeros(2, 3, 3, dtype=torch.bool)
    dynamic[0, 1, 1] = True  # the second image has no dynamic pixel
    res = _evaluate(pred, gt, dynamic)
    assert res["dynamic"]["abs_rel"] == pytest.approx(2.0)  # not (2 + 0) / 2
    assert res["num_dynamic_images"] == 1
    assert res["static"]["abs_rel"] == pytest.approx(0.0, abs=1e-12)
    assert res["num_static_images"] == 2
    assert res["full"]["abs_rel"] == pytest.approx((2.0 / 9 + 0.0) / 2)


def test_image_without_valid_gt_is_skipped_and_counted():
    gt = torch.ones(2, 3, 3)
    gt[1] = 0.0  # no measurement at all
    res = _evaluate(torch.ones(2, 3, 3), gt)
    assert res["num_images"] == 1 and res["num_skipped"] == 1
    assert res["full"]["abs_rel"] == pytest.approx(0.0, abs=1e-12)
    assert all(math.isfinite(v) for v in res["full"].values())


def test_nothing_scored_gives_nan_not_an_error():
    res = DepthEvaluator(dataset_spec("kitti")).compute()
    assert res["num_images"] == 0
    assert math.isnan(res["full"]["abs_rel"])


def test_reset_forgets():
    ev = DepthEvaluator(dataset_spec("bonn"))
    gt = _gt()
    ev.update(2 * gt, gt)
    ev.reset()
    ev.update(gt, gt)
    assert ev.compute()["num_images"] == 1
    assert ev.compute()["ratio_mean"] == pytest.approx(1.0)


def test_shape_errors():
    ev = DepthEvaluator(dataset_spec("bonn"))
    with pytest.raises(ValueError, match="batch sizes"):
        ev.update(torch.ones(2, 1, 3, 3), torch.ones(1, 3, 3))
    with pytest.raises(ValueError, match="dynamic"):
        ev.update(torch.ones(1, 3, 3), torch.ones(1, 3, 3), torch.ones(1, 2, 2, dtype=torch.bool))


def test_format_table_and_logging():
    gt = torch.ones(1, 3, 3)
    pred = torch.ones(1, 1, 3, 3)
    pred[0, 0, 1, 1] = 3.0
    dynamic = torch.zeros(1, 3, 3, dtype=torch.bool)
    dynamic[0, 1, 1] = True
    res = _evaluate(pred, gt, dynamic)
    table = format_table(res)
    lines = table.splitlines()
    assert all(name in lines[0] for name in METRIC_NAMES)
    full_row = next(line for line in lines if line.split()[0] == "full")
    assert float(full_row.split()[1]) == pytest.approx(2.0 / 9, abs=1e-4)
    assert any(line.split()[0] == "dynamic" for line in lines)
    assert any(line.split()[0] == "static" for line in lines)
    flat = metrics_for_logging(res)
    assert flat["abs_rel"] == pytest.approx(2.0 / 9)
    assert flat["dynamic/abs_rel"] == pytest.approx(2.0)
    assert flat["static/a1"] == 1.0
    assert set(flat) == (
        set(METRIC_NAMES)
        | {f"dynamic/{n}" for n in METRIC_NAMES}
        | {f"static/{n}" for n in METRIC_NAMES}
        | {"ratio_mean", "ratio_std"}
    )
    no_dyn = _evaluate(pred, gt)
    assert "dynamic" not in format_table(no_dyn)
    assert "dynamic/abs_rel" not in metrics_for_logging(no_dyn)
