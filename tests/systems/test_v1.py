"""SCDepthV1's TensorBoard pictures (input | prediction | ground truth | error) and the
warning about a saturated DepthNet."""

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


@pytest.mark.parametrize("bias, warned", [(0.0, False), (50.0, True), (-50.0, True)])
def test_validation_warns_about_a_saturated_depth_net(
        bias: float, warned: bool, recwarn: pytest.WarningsRecorder,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # bias ±50 puts every depth at the 0.1 m floor or the 100 m ceiling (sigmoid 1 or 0)
    model = build_model({"model_version": "v1", "no_pretrain": True,
                         "dataset_name": "synthetic"}).eval()
    with torch.no_grad():
        model.depth_net.decoder.dispconvs[0].conv.bias.fill_(bias)
    logged: dict[str, float] = {}
    model.log = lambda name, value, **kwargs: logged.update({name: value})
    monkeypatch.setattr(model, "_val_pictures", lambda: {})  # no TensorBoard pictures
    batch = {"tgt": torch.randn(2, 3, 64, 80), "gt_depth": torch.rand(2, 64, 80) + 1.0}
    model.on_validation_epoch_start()
    with torch.no_grad():
        model.validation_step(batch, 0)
    model.on_validation_epoch_end()
    messages = [str(w.message) for w in recwarn if "of DepthNet's output" in str(w.message)]
    assert logged["val/saturated_fraction"] == (1.0 if warned else 0.0)
    assert len(messages) == int(warned)
    if warned:
        assert messages[0].startswith("validation at step 0: 100.0% of the predicted depths")
