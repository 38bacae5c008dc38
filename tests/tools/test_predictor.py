"""tools/predictor.py: the one inference path (checkpoint -> frozen network -> depth)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from datasets.formats import normalize_image
from tools.predictor import Predictor, batched, resize_depth, stream


def _image(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (h, w, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def predictor(ckpt: Path) -> Predictor:
    return Predictor.from_checkpoint(ckpt, "cpu", "32", height=48, width=64)


def test_depth_is_the_frozen_network_on_the_training_preprocessing(predictor: Predictor
                                                                     ) -> None:
    img = _image(48, 64, 0)  # already at the network size: no resize
    (depth,) = predictor.predict([img], resolution="network")
    with torch.no_grad():
        reference = predictor.model.eval()(normalize_image(img)[None])[0, 0].numpy()
    assert depth.shape == (48, 64) and depth.dtype == np.float32
    np.testing.assert_allclose(depth, reference, rtol=1e-4)


def test_input_and_network_resolution(predictor: Predictor) -> None:
    images = [_image(60, 90, 1), _image(30, 40, 2)]
    at_input = predictor.predict(images)
    at_network = predictor.predict(images, resolution="network")
    assert [d.shape for d in at_input] == [(60, 90), (30, 40)]
    assert all(d.shape == (48, 64) for d in at_network)
    np.testing.assert_allclose(at_input[1], resize_depth(at_network[1], 30, 40))
    with pytest.raises(ValueError, match="resolution"):
        predictor.predict(images, resolution="native")
    assert predictor.predict([]) == []


def test_size_defaults_to_the_checkpoints(ckpt: Path) -> None:
    # the conftest checkpoint stores no size: its dataset's (kitti) training size
    assert (Predictor.from_checkpoint(ckpt, "cpu").height,
            Predictor.from_checkpoint(ckpt, "cpu").width) == (256, 832)


def test_stream_keeps_order_and_batches(predictor: Predictor) -> None:
    calls: list[int] = []

    def predict(images: list[np.ndarray]) -> list[np.ndarray]:
        calls.append(len(images))
        return [np.full((2, 2), img[0, 0, 0]) for img in images]

    items = [(i, np.full((4, 4, 3), i, np.float32)) for i in range(7)]
    out = list(stream(predict, items, 3, lambda it: it[1]))
    assert [item[0] for item, _ in out] == list(range(7))
    assert [d[0, 0] for _, d in out] == list(range(7))
    assert calls == [3, 3, 1]
    assert [len(b) for b in batched(range(5), 2)] == [2, 2, 1]
    with pytest.raises(ValueError, match="at least 1"):
        list(batched(range(3), 0))


def test_compiled_network_sees_one_batch_shape(predictor: Predictor,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """--infer_compile: the network is compiled with frozen weights, and a smaller batch
    (a folder's last) is padded to the largest one, so that nothing compiles twice."""
    calls: list[dict] = []
    monkeypatch.setattr(torch.nn.Module, "compile",
                        lambda self, **kwargs: calls.append(kwargs))  # stays eager
    compiled = Predictor(predictor.model, 48, 64, "32", compile=True)
    assert calls == [{"options": {"freezing": True}}]
    shapes: list[tuple[int, ...]] = []
    compiled.net.register_forward_pre_hook(lambda _, args: shapes.append(args[0].shape))
    images = [_image(48, 64, s) for s in range(7)]
    depths = [d for batch in batched(images, 4) for d in compiled.predict(batch)]
    assert [s[0] for s in shapes] == [4, 4]  # the batch of 3 went in as 4
    for got, want in zip(depths, predictor.predict(images)):
        np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.slow  # an inductor compilation (about a minute)
def test_compiled_network_gives_the_eager_depth(predictor: Predictor) -> None:
    net = predictor.model.inference_net("32", compile=True)
    x = torch.randn(2, 3, 48, 64)
    with torch.inference_mode():
        torch.testing.assert_close(net(x), predictor.net(x), rtol=1e-4, atol=1e-5)
