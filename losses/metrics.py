"""Depth evaluation: the one place for the metrics (docs/method.md, Evaluation).

Validation (the systems), `test.py`, `eval_depth.py` and `eval_pose.py` all score depth
through `DepthEvaluator`, so a number printed by any of them means the same thing.

Per image, on the valid pixels (GT inside the dataset's range and inside its crop):
the prediction is resized to the GT's resolution (bilinear), scaled by
`median(gt) / median(pred)` (monocular depth is known only up to scale), clamped to the
range, and scored. The mean over images is reported; each image counts once (the public
code double counted images when dynamic/static masks were used). With a dynamic mask, the
same per-image scale is used on the dynamic and on the static valid pixels.

The range and crop come from the dataset's entry in `datasets.registry` (a `DatasetSpec`),
which the caller passes in: this module knows no dataset by name.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from datasets.registry import eval_mask

METRIC_NAMES: tuple[str, ...] = (
    "abs_rel", "sq_rel", "log10", "rmse", "rmse_log", "a1", "a2", "a3",
)

_SPLITS = ("full", "dynamic", "static")


class EvalProtocol(Protocol):
    """What the evaluation needs of a dataset (``datasets.registry.DatasetSpec``):
    ``eval_range`` (min, max) in metres and ``crop`` (``.bounds(h, w)`` -> top, bottom,
    left, right) or None."""

    eval_range: tuple[float, float]
    crop: Any


def masked_median(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Median of each row of `x` over the entries where `mask` is True.

    x: [B, N] float, mask: [B, N] bool -> [B]. For an even count the two middle values are
    averaged (as `numpy.median`); a row without any True entry gives NaN.
    """
    count = mask.sum(dim=1)
    # Masked-out entries sort to the end, so the valid ones occupy the first `count` slots.
    values = torch.where(mask, x, torch.full_like(x, math.inf)).sort(dim=1).values
    lo = ((count - 1).clamp(min=0) // 2).unsqueeze(1)
    hi = (count // 2).clamp(max=x.shape[1] - 1).unsqueeze(1)
    median = 0.5 * (values.gather(1, lo) + values.gather(1, hi)).squeeze(1)
    return torch.where(count > 0, median, torch.full_like(median, math.nan))


def masked_depth_metrics(
    pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The METRIC_NAMES of each image over its masked pixels.

    pred, gt: [B, N] positive where `mask` holds (pred already scaled and clamped);
    mask: [B, N] bool. Returns (metrics [B, 8] in METRIC_NAMES order, count [B]); rows with
    count 0 are NaN.
    """
    w = mask.to(pred.dtype)
    count = w.sum(dim=1)
    # Outside the mask gt may be 0: substitute 1 so that logs and ratios stay finite there.
    one = torch.ones_like(gt)
    gt = torch.where(mask, gt, one)
    pred = torch.where(mask, pred, one)

    def mean(values: torch.Tensor) -> torch.Tensor:
        return (values * w).sum(dim=1) / count

    thresh = torch.maximum(gt / pred, pred / gt)
    diff = gt - pred
    log_diff = torch.log(gt) - torch.log(pred)
    metrics = torch.stack(
        [
            mean(diff.abs() / gt),                              # abs_rel
            mean(diff.pow(2) / gt),                             # sq_rel
            mean((torch.log10(gt) - torch.log10(pred)).abs()),  # log10
            mean(diff.pow(2)).sqrt(),                           # rmse
            mean(log_diff.pow(2)).sqrt(),                       # rmse_log
            mean((thresh < 1.25).to(pred.dtype)),               # a1
            mean((thresh < 1.25**2).to(pred.dtype)),            # a2
            mean((thresh < 1.25**3).to(pred.dtype)),            # a3
        ],
        dim=1,
    )
    return metrics, count


class DepthEvaluator:
    """Accumulates per-image depth metrics over batches; `compute()` gives the means.

    spec: the dataset's registry entry (``datasets.registry.dataset_spec(name)``).

    Everything is computed and kept in float64 on the CPU, so sums over thousands of images
    do not lose precision and the evaluator never holds GPU memory.
    """

    def __init__(self, spec: EvalProtocol) -> None:
        self.spec = spec
        self.min_depth, self.max_depth = spec.eval_range
        self.reset()

    def reset(self) -> None:
        """Forget all images seen so far (e.g. at the start of a validation epoch)."""
        self._metrics: dict[str, list[torch.Tensor]] = {s: [] for s in _SPLITS}
        self._ratios: list[torch.Tensor] = []
        self._num_skipped = 0
        self._seen_dynamic = False

    @torch.no_grad()
    def update(
        self, pred: torch.Tensor, gt: torch.Tensor, dynamic: torch.Tensor | None = None
    ) -> None:
        """Score one batch.

        pred: [B,1,h,w] or [B,h,w] predicted depth (any positive scale);
        gt: [B,H,W] (or [B,1,H,W]) GT depth in metres, 0 where unknown;
        dynamic: [B,H,W] (or [B,1,H,W]) bool, True on moving objects, or None.
        Images without any valid GT pixel are skipped and counted in `num_skipped`.
        """
        gt = _drop_channel(gt, "gt").detach().to("cpu", torch.float64)
        if pred.dim() == 3:
            pred = pred.unsqueeze(1)
        if pred.dim() != 4 or pred.shape[1] != 1:
            raise ValueError(f"pred must be [B,1,h,w] or [B,h,w], got {tuple(pred.shape)}")
        if pred.shape[0] != gt.shape[0]:
            raise ValueError(f"batch sizes differ: pred {pred.shape[0]}, gt {gt.shape[0]}")
        pred = pred.detach().to("cpu", torch.float64)
        B, H, W = gt.shape
        if pred.shape[-2:] != (H, W):
            pred = F.interpolate(pred, size=(H, W), mode="bilinear", align_corners=False)
        pred = pred.reshape(B, H * W)

        valid = eval_mask(gt, self.spec).reshape(B, H * W)
        gt = gt.reshape(B, H * W)
        has_valid = valid.any(dim=1)
        self._num_skipped += int((~has_valid).sum())

        ratio = masked_median(gt, valid) / masked_median(pred, valid)
        # Skipped images have ratio NaN; use 1 so their (unused) values stay finite.
        ratio = torch.where(has_valid, ratio, torch.ones_like(ratio))
        pred = (pred * ratio.unsqueeze(1)).clamp(self.min_depth, self.max_depth)
        self._ratios.append(ratio[has_valid])

        masks = {"full": valid}
        if dynamic is not None:
            dynamic = _drop_channel(dynamic, "dynamic").to("cpu", torch.bool)
            if dynamic.shape != (B, H, W):
                raise ValueError(
                    f"dynamic mask {tuple(dynamic.shape)} does not match gt {(B, H, W)}"
                )
            dynamic = dynamic.reshape(B, H * W)
            masks["dynamic"] = valid & dynamic
            masks["static"] = valid & ~dynamic
            self._seen_dynamic = True
        for split, mask in masks.items():
            metrics, count = masked_depth_metrics(pred, gt, mask)
            self._metrics[split].append(metrics[count > 0])

    def compute(self) -> dict:
        """Mean metrics over the images seen.

        Returns {"full": {metric: float}, "dynamic": {...} | None, "static": {...} | None,
        "ratio_mean", "ratio_std" (population std of the per-image scales), "num_images"
        (images scored), "num_skipped" (images without valid GT), "num_dynamic_images",
        "num_static_images"}. "dynamic"/"static" are None when no dynamic mask was given;
        "dynamic" averages over the images with any valid dynamic pixel. With no image
        scored the "full" values are NaN.
        """
        results: dict = {}
        counts: dict[str, int] = {}
        for split in _SPLITS:
            rows = _cat(self._metrics[split], (0, len(METRIC_NAMES)))
            counts[split] = rows.shape[0]
            if split != "full" and not self._seen_dynamic:
                results[split] = None
                continue
            if split == "dynamic" and rows.shape[0] == 0:
                results[split] = None  # masks were given but no image had a dynamic pixel
                continue
            if rows.shape[0]:
                means = rows.mean(dim=0)
            else:
                means = torch.full((len(METRIC_NAMES),), math.nan)
            results[split] = {name: float(v) for name, v in zip(METRIC_NAMES, means)}
        ratios = _cat(self._ratios, (0,))
        results["ratio_mean"] = float(ratios.mean()) if ratios.numel() else math.nan
        results["ratio_std"] = float(ratios.std(correction=0)) if ratios.numel() else math.nan
        results["num_images"] = counts["full"]
        results["num_skipped"] = self._num_skipped
        results["num_dynamic_images"] = counts["dynamic"]
        results["num_static_images"] = counts["static"]
        return results


def results_problem(results: dict) -> str | None:
    """Why :meth:`DepthEvaluator.compute`'s results are no evaluation, or None: no image
    had a valid ground-truth pixel, or a metric is not finite (NaN/Inf predictions). The
    tools print the table and then fail with this, rather than exit 0 on NaN."""
    if results["num_images"] == 0:
        return (f"no image was scored: none of the {results['num_skipped']} has a "
                "ground-truth pixel inside the evaluation range")
    bad = [name for name, value in results["full"].items() if not math.isfinite(value)]
    if bad:
        return (f"{', '.join(bad)} not finite over {results['num_images']} images: the "
                "predicted depth holds NaN or Inf values")
    return None


def format_table(results: dict) -> str:
    """The metrics table that test.py and eval_depth.py print (one row per split)."""
    header = f"{'':>8} " + " ".join(f"{name:>9}" for name in METRIC_NAMES)
    lines = [header]
    for split in _SPLITS:
        values = results.get(split)
        if values is None:
            continue
        lines.append(f"{split:>8} " + " ".join(f"{values[n]:>9.4f}" for n in METRIC_NAMES))
    lines.append(
        f"scale ratio: mean {results['ratio_mean']:.4f}, std {results['ratio_std']:.4f}"
        f" | images: {results['num_images']}"
        + (f" (dynamic {results['num_dynamic_images']})"
           if results.get("dynamic") is not None else "")
        + (f", skipped without valid GT: {results['num_skipped']}"
           if results.get("num_skipped") else "")
    )
    return "\n".join(lines)


def metrics_for_logging(results: dict) -> dict[str, float]:
    """Flatten `compute()`'s result for a logger: "abs_rel", "dynamic/abs_rel", "ratio_mean"…"""
    flat: dict[str, float] = {}
    for split in _SPLITS:
        values = results.get(split)
        if values is None:
            continue
        prefix = "" if split == "full" else f"{split}/"
        flat.update({f"{prefix}{name}": float(values[name]) for name in METRIC_NAMES})
    flat["ratio_mean"] = float(results["ratio_mean"])
    flat["ratio_std"] = float(results["ratio_std"])
    return flat


def _drop_channel(x: torch.Tensor, name: str) -> torch.Tensor:
    """[B,1,H,W] -> [B,H,W]; [B,H,W] unchanged; anything else is an error."""
    if x.dim() == 4 and x.shape[1] == 1:
        return x[:, 0]
    if x.dim() != 3:
        raise ValueError(f"{name} must be [B,H,W] or [B,1,H,W], got {tuple(x.shape)}")
    return x


def _cat(chunks: list[torch.Tensor], empty_shape: tuple[int, ...]) -> torch.Tensor:
    return torch.cat(chunks) if chunks else torch.zeros(empty_shape, dtype=torch.float64)
