"""SCDepthV1's TensorBoard pictures: input | prediction | ground truth | error."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import ImageBoard

from systems import build_model


def test_validation_panel(monkeypatch: pytest.MonkeyPatch) -> None:
    model = build_model({"model_version": "v1", "no_pretrain": True,
                         "dataset_name": "synthetic"}).eval()
    board = ImageBoard()
    monkeypatch.setattr(model, "_tensorboard", lambda: board)
    img = torch.zeros(3, 64, 80)
    gt = torch.linspace(1.0, 9.0, 128 * 160).reshape(128, 160)
    # a prediction at the network's size, off by a scale: median scaling removes it
    pred = 0.01 * torch.nn.functional.interpolate(gt[None, None], size=(64, 80),
                                                  mode="bilinear", align_corners=False)[0, 0]
    model.log_depth_panel("val/panel_0", img, pred, gt)
    panel = board.images["val/panel_0"]
    assert panel.shape == (64, 320, 3) and panel.dtype == np.uint8
    error = panel[32:, 240:]  # below the label: the error of a prediction equal up to scale
    assert error.std() < 10 and error.mean() < 60
