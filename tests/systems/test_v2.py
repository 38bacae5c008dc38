"""SCDepthV2: the auto-rectify network in the training step, validation, logs and train.py."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import ImageBoard

from geometry import rotation_warp
from losses.rotation import rotation_triplet_loss
from systems import SCDepthV1, SCDepthV2, build_model, load_from_checkpoint

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "state_dict_keys.txt"
B, H, W = 2, 40, 48


def reference_shapes(resnet_layers: int = 18) -> dict[str, tuple[int, ...]]:
    """``{key: shape}`` of the fixture's section for ``resnet_layers``."""
    out: dict[str, tuple[int, ...]] = {}
    current: int | None = None
    for line in FIXTURE.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            current = int(line.partition("=")[2])
        elif current == resnet_layers:
            key, _, shape = line.partition(" ")
            out[key] = tuple(ast.literal_eval(shape.strip()))
    return out


@pytest.fixture(scope="module")
def model() -> SCDepthV2:
    torch.manual_seed(0)
    return build_model({"model_version": "v2", "no_pretrain": True,
                        "rot_c_weight": 2.0, "rot_t_weight": 0.5})


def make_batch(seed: int = 0) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(seed)
    K = torch.tensor([[30.0, 0.0, 23.5], [0.0, 30.0, 19.5], [0.0, 0.0, 1.0]]).expand(B, 3, 3)
    tgt = torch.randn(B, 3, H, W, generator=gen)
    refs = [torch.randn(B, 3, H, W, generator=gen) for _ in range(2)]
    return {"tgt": tgt, "refs": refs, "K": K.clone(), "K_inv": torch.linalg.inv(K)}


def test_state_dict_keys_equal_the_published_layout(model: SCDepthV2) -> None:
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    ref = reference_shapes(18)
    assert any(k.startswith("rectify_net.") for k in ref)
    assert ours == ref


def test_is_a_v1_with_arn_weights(model: SCDepthV2) -> None:
    assert isinstance(model, SCDepthV1)
    assert model.loss_weights["rot_consistency_loss"] == 2.0
    assert model.loss_weights["rot_triplet_loss"] == 0.5
    # the V1 weights are untouched
    assert model.loss_weights["photo_loss"] == 1.0
    assert model.loss_weights["geometry_loss"] == 0.1


def test_training_step_terms_and_gradients(model: SCDepthV2) -> None:
    model.train()
    model.zero_grad()
    torch.manual_seed(1)
    batch = make_batch()
    terms, context = model.loss_terms(batch)
    assert set(terms) == {"photo_loss", "geometry_loss", "smooth_loss",
                          "rot_consistency_loss", "rot_triplet_loss"}
    for name, value in terms.items():
        assert value.ndim == 0 and torch.isfinite(value), name
    # the triplet term is the loss of the rot1/rot2 the step produced, averaged over refs
    expected = torch.stack([rotation_triplet_loss(r1, r2)
                            for r1, r2 in zip(context.rot1, context.rot2)]).mean()
    assert torch.allclose(terms["rot_triplet_loss"], expected)
    # V1's losses saw the rectified references, not the raw ones
    for raw, rect, rot1 in zip(batch["refs"], context.refs, context.rot1):
        assert torch.allclose(rect, rotation_warp(raw, rot1, batch["K"]))
        assert not torch.allclose(rect, raw)
    model.total_loss(terms).backward()
    for name in ("encoder.encoder.conv1.weight", "decoder.convs_pose.2.weight"):
        grad = model.rectify_net.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name
    assert model.depth_net.get_parameter("encoder.encoder.conv1.weight").grad.abs().sum() > 0
    model.zero_grad()


def test_each_arn_loss_alone_trains_arn(model: SCDepthV2) -> None:
    model.train()
    for term in ("rot_consistency_loss", "rot_triplet_loss"):
        model.zero_grad()
        torch.manual_seed(2)
        terms, _ = model.loss_terms(make_batch(1))
        terms[term].backward()
        grad = model.rectify_net.get_parameter("encoder.encoder.conv1.weight").grad
        assert grad is not None and grad.abs().sum() > 0, term
    model.zero_grad()


def test_rotation_logs(model: SCDepthV2) -> None:
    with torch.no_grad():
        _, context = model.loss_terms(make_batch())
    logs = context.logs
    before = torch.cat([r.abs().flatten() for r in context.rot1]).mean()
    after = torch.cat([r.abs().flatten() for r in context.rot2]).mean()
    assert torch.allclose(logs["rot_before"], before)
    assert torch.allclose(logs["rot_after"], after)
    assert 0.0 <= float(logs["rot_label_from_prediction"]) <= 1.0


def test_train_image_strip(model: SCDepthV2, monkeypatch: pytest.MonkeyPatch) -> None:
    board = ImageBoard()
    monkeypatch.setattr(model, "_tensorboard", lambda: board)
    batch = make_batch()
    with torch.no_grad():
        _, context = model.loss_terms(batch)
    model.log_train_images(batch, context)
    strip = board.images["train/target_reference_rectified"]
    assert strip.shape == (H, 3 * W, 3) and strip.dtype == np.uint8
    assert "train/input_depth" in board.images  # V1's picture is kept


def test_photo_validation_rectifies_references(model: SCDepthV2,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[torch.Tensor]] = []
    loss = model.photo_geometry_loss
    original = loss.forward

    def spy(tgt: torch.Tensor, refs: list[torch.Tensor], *args: Any, **kwargs: Any) -> Any:
        seen.append(list(refs))
        return original(tgt, refs, *args, **kwargs)

    monkeypatch.setattr(loss, "forward", spy)
    monkeypatch.setattr(model, "opts", dataclasses.replace(model.opts, val_mode="photo"))
    model.eval()
    batch = make_batch(3)
    model.on_validation_epoch_start()
    with torch.no_grad():
        model.validation_step(batch, 5)
        expected = [rotation_warp(r, model.rectify_net(batch["tgt"], r), batch["K"])
                    for r in batch["refs"]]
    assert len(model._val_losses) == 1 and np.isfinite(model._val_losses[0])
    assert len(seen) == 1
    for got, want in zip(seen[0], expected):
        assert torch.allclose(got, want, atol=1e-6)


# ---------------------------------------------------------------------- end to end
def _scalar_tags(run_dir: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return set(acc.Tags()["scalars"]) | {f"image:{t}" for t in acc.Tags()["images"]}


@pytest.mark.slow  # a training run
def test_v2_trains_through_train_py_on_handheld_scenes(tmp_path: Path) -> None:
    import test as test_cli
    import train
    from datasets.synthetic import generate_dataset

    data = tmp_path / "data"
    generate_dataset(data, scenes=2, frames=6, val_scenes=1, test_scenes=1, height=64,
                     width=80, motion="handheld", progress=False)
    logs = tmp_path / "logs"
    rc = train.main(["--model_version", "v2", "--no_pretrain", "--dataset_dir", str(data),
                     "--dataset_name", "synthetic", "--img_height", "64", "--img_width", "80",
                     "--batch_size", "2", "--epoch_size", "2", "--num_epochs", "1",
                     "--num_workers", "0", "--log_dir", str(logs), "--exp_name", "v2",
                     "--log_images_every_n_steps", "1", "--log_every_n_steps", "1"])
    assert rc in (0, None)
    run_dir = logs / "v2" / "version_0"
    ckpt = run_dir / "last.ckpt"
    assert ckpt.is_file()
    tags = _scalar_tags(run_dir)
    for tag in ("train/rot_consistency_loss", "train/rot_triplet_loss", "train/rot_before",
                "train/rot_after", "image:train/target_reference_rectified"):
        assert tag in tags, tag

    model = load_from_checkpoint(str(ckpt))
    assert isinstance(model, SCDepthV2)
    out = tmp_path / "test.json"
    rc = test_cli.main(["--dataset_dir", str(data), "--dataset_name", "synthetic",
                        "--ckpt_path", str(ckpt), "--img_height", "64", "--img_width", "80",
                        "--num_workers", "0", "--output_json", str(out)])
    assert rc in (0, None)
    import json

    results = json.loads(out.read_text())
    assert results["num_images"] == 6 and np.isfinite(results["full"]["abs_rel"])
