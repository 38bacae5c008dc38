"""Turning depth into pictures: one colour map for validation logs, inference and the demo.

Colours follow disparity (1 / depth), so near is bright and far is dark (magma), and the
normalisation is always stated: either a fixed depth range ``lo..hi`` (the same colour means
the same depth in every picture: use it to compare frames, runs or a prediction with its
ground truth), or, without one, each picture's own disparity divided by its 95th percentile
(the public code's rule: one far outlier does not wash the picture out, but colours are not
comparable between pictures).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

__all__ = ["add_colorbar", "colorize_depth", "colorize_error", "depth_panel", "label",
           "to_numpy"]

_MAGMA = cv2.COLORMAP_MAGMA
_ERROR_MAP = cv2.COLORMAP_INFERNO


def to_numpy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy()
    return np.asarray(x)


def _apply(norm: np.ndarray, colormap: int, invalid: np.ndarray | None = None) -> np.ndarray:
    """[H,W] in [0,1] -> uint8 RGB; ``invalid`` pixels black."""
    bgr = cv2.applyColorMap((np.clip(norm, 0.0, 1.0) * 255.0).astype(np.uint8), colormap)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if invalid is not None:
        rgb[invalid] = 0
    return rgb


def colorize_depth(depth: torch.Tensor | np.ndarray, lo: float | None = None,
                   hi: float | None = None) -> np.ndarray:
    """depth ``[H,W]`` or ``[1,H,W]`` -> uint8 ``[H,W,3]`` RGB (magma, near is bright).

    With ``lo`` and ``hi`` (depths, in the map's units) the disparity range
    ``[1/hi, 1/lo]`` spans the colour map for every picture; without, each picture's
    disparity is divided by its own 95th percentile. Depth ≤ 0 (no value) is black.
    """
    d = to_numpy(depth).astype(np.float32)
    if d.ndim == 3 and d.shape[0] == 1:
        d = d[0]
    valid = d > 0
    disp = np.where(valid, 1.0 / np.maximum(d, 1e-6), 0.0)
    if lo is not None and hi is not None:
        if not 0 < lo < hi:
            raise ValueError(f"need 0 < lo < hi for a depth range, got {lo}, {hi}")
        norm = (disp - 1.0 / hi) / (1.0 / lo - 1.0 / hi)
    else:
        top = float(np.percentile(disp[valid], 95)) if valid.any() else 1.0
        norm = disp / max(top, 1e-6)
    return _apply(norm, _MAGMA, ~valid)


def colorize_error(pred: np.ndarray, gt: np.ndarray, max_error: float = 0.5) -> np.ndarray:
    """Per-pixel relative error ``|pred − gt| / gt`` of two ``[H,W]`` depth maps, 0 … max_error
    on the inferno map (dark: right, bright: wrong); pixels without ground truth black."""
    valid = gt > 0
    rel = np.where(valid, np.abs(pred - gt) / np.maximum(gt, 1e-6), 0.0)
    return _apply(rel / max_error, _ERROR_MAP, ~valid)


def label(rgb: np.ndarray, text: str) -> np.ndarray:
    """``rgb`` with ``text`` written in its top left corner (white on a dark band)."""
    out = rgb.copy()
    scale = max(0.35, min(0.6, rgb.shape[1] / 500))
    (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(out, (0, 0), (w + 6, h + 8), (0, 0, 0), -1)
    cv2.putText(out, text, (3, h + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                cv2.LINE_AA)
    return out


def add_colorbar(rgb: np.ndarray, lo: float, hi: float, unit: str = "") -> np.ndarray:
    """``rgb`` (a :func:`colorize_depth` picture of the range ``lo..hi``) with a colour bar on
    its right: the colours of depths from ``lo`` (top) to ``hi``, with five labels."""
    H = rgb.shape[0]
    depths = 1.0 / np.linspace(1.0 / lo, 1.0 / hi, H)  # top row: lo (near, bright)
    bar = np.repeat(colorize_depth(depths[:, None], lo, hi), 16, axis=1)
    text = np.zeros((H, 64, 3), np.uint8)
    for k in range(5):
        row = round(k * (H - 1) / 4)
        value = 1.0 / (1.0 / lo + k / 4 * (1.0 / hi - 1.0 / lo))
        cv2.putText(text, f"{value:.3g}{unit}", (2, min(max(row + 4, 10), H - 2)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([rgb, bar, text], axis=1)


def depth_panel(image: np.ndarray, pred: np.ndarray, gt: np.ndarray,
                max_error: float = 0.5) -> np.ndarray:
    """input | prediction | ground truth | error, side by side at the input's size.

    image: uint8 ``[h,w,3]``; pred: ``[h',w']`` depth in any unit (resized to the ground
    truth and median-scaled to it, as the metrics do); gt: ``[H,W]`` metres (0 = none).
    Prediction and ground truth share one colour scale (the ground truth's 2nd–98th
    percentile), so equal colours are equal depths; the error is ``|pred − gt| / gt`` from 0
    to ``max_error``.
    """
    h, w = image.shape[:2]
    pred = cv2.resize(np.asarray(pred, np.float32), (gt.shape[1], gt.shape[0]),
                      interpolation=cv2.INTER_LINEAR)
    valid = gt > 0
    if valid.any():
        pred = pred * float(np.median(gt[valid]) / max(np.median(pred[valid]), 1e-6))
    lo, hi = (np.percentile(gt[valid], [2, 98]) if valid.any() else (1.0, 10.0))
    lo, hi = float(lo), float(max(hi, lo * 1.01))

    def fit(rgb: np.ndarray) -> np.ndarray:
        return cv2.resize(rgb, (w, h), interpolation=cv2.INTER_NEAREST)

    return np.concatenate([
        label(image, "input"),
        label(fit(colorize_depth(pred, lo, hi)), "prediction"),
        label(fit(colorize_depth(gt, lo, hi)), f"ground truth {lo:.3g}-{hi:.3g} m"),
        label(fit(colorize_error(pred, gt, max_error)), f"error 0-{max_error:g}"),
    ], axis=1)
