"""Turning depth into pictures: one colour map for validation logs, inference and the demo."""

from __future__ import annotations

import cv2
import numpy as np
import torch


def to_numpy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy()
    return np.asarray(x)


def colorize_depth(depth: torch.Tensor | np.ndarray, colormap: int = cv2.COLORMAP_MAGMA,
                   ) -> np.ndarray:
    """depth: [H,W] or [1,H,W] -> uint8 [H,W,3] RGB.

    Colours follow disparity (1/depth) normalised by its 95th percentile, as the public
    code does: near is bright, and one far outlier does not wash the picture out.
    """
    d = to_numpy(depth).astype(np.float32).squeeze()
    disp = np.where(d > 0, 1.0 / np.maximum(d, 1e-6), 0.0)
    hi = float(np.percentile(disp, 95)) if disp.size else 1.0
    norm = np.clip(disp / max(hi, 1e-6), 0.0, 1.0)
    bgr = cv2.applyColorMap((norm * 255.0).astype(np.uint8), colormap)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
