"""SCDepthV3: the prior losses in the training step, the weights, the keys and train.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import cli, tiny_train_args

from losses.normals import normal_matching_loss
from losses.ranking import MaskRankingOutput, dynamic_confidence
from systems import SCDepthV1, SCDepthV3, build_model, load_from_checkpoint

train = cli("train")

B, H, W = 2, 40, 48
V3_TERMS = {"photo_loss", "geometry_loss", "normal_matching_loss", "mask_rank_loss",
            "normal_rank_loss"}


@pytest.fixture(scope="module")
def model() -> SCDepthV3:
    torch.manual_seed(0)
    return build_model({"model_version": "v3", "no_pretrain": True})


def make_batch(seed: int = 0) -> dict[str, Any]:
    """Random frames whose target has a horizontal edge (image anchors for the normal
    ranking), and a prior with a step (left half depth 1, right half 2): pairs across the
    step pass the 1.15 ratio, and the depth-edge band covers only the step."""
    gen = torch.Generator().manual_seed(seed)
    K = torch.tensor([[30.0, 0.0, 23.5], [0.0, 30.0, 19.5], [0.0, 0.0, 1.0]]).expand(B, 3, 3)
    tgt = 0.1 * torch.randn(B, 3, H, W, generator=gen)
    tgt[:, :, H // 2:] += 1.5
    refs = [tgt + 0.1 * torch.randn(B, 3, H, W, generator=gen) for _ in range(2)]
    prior = torch.ones(B, 1, H, W)
    prior[..., W // 2:] = 2.0
    return {"tgt": tgt, "refs": refs, "K": K.clone(), "K_inv": torch.linalg.inv(K),
            "tgt_prior": prior / 2.0}


def test_state_dict_equals_v1s(model: SCDepthV3) -> None:
    v1 = build_model({"model_version": "v1", "no_pretrain": True})
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == {k: tuple(v.shape) for k, v in v1.state_dict().items()}
    assert not any(k.startswith("rectify_net.") for k in ours)
    model.load_state_dict(v1.state_dict(), strict=True)  # a V1 checkpoint starts a V3 run


def test_loss_weights_have_no_smoothness() -> None:
    default = build_model({"model_version": "v3", "no_pretrain": True, "smooth_weight": 0.5})
    assert isinstance(default, SCDepthV1)
    assert default.loss_weights == {"photo_loss": 1.0, "geometry_loss": 0.1,
                                    "normal_matching_loss": 0.1, "mask_rank_loss": 0.1,
                                    "normal_rank_loss": 0.1}
    custom = build_model({"model_version": "v3", "no_pretrain": True,
                          "normal_matching_weight": 0.3, "mask_rank_weight": 0.2,
                          "normal_rank_weight": 0.05})
    assert custom.loss_weights["normal_matching_loss"] == 0.3
    assert custom.loss_weights["mask_rank_loss"] == 0.2
    assert custom.loss_weights["normal_rank_loss"] == 0.05
    # The ranking is on raw depth as in the paper unless --rank_normalize asks otherwise.
    assert not default.mask_ranking_loss.normalize
    normalized = build_model({"model_version": "v3", "no_pretrain": True,
                              "rank_normalize": True})
    assert normalized.mask_ranking_loss.normalize
    # Unchecked pixels: confidence 1 (public code) unless --unchecked_unreliable.
    assert default.unchecked_confidence == 1.0
    assert build_model({"model_version": "v3", "no_pretrain": True,
                        "unchecked_unreliable": True}).unchecked_confidence == 0.0
    # The sampling follows the method unless the public code's forms are asked for.
    assert default.mask_ranking_loss.global_pairs == "spread"
    assert default.normal_ranking_loss.sampling == "gradient"
    public = build_model({"model_version": "v3", "no_pretrain": True,
                          "mask_rank_global_pairs": "raster", "normal_rank_sampling": "public"})
    assert public.mask_ranking_loss.global_pairs == "raster"
    assert public.normal_ranking_loss.sampling == "public"


def test_training_step_terms_total_and_gradients(model: SCDepthV3) -> None:
    model.train()
    model.zero_grad()
    batch = make_batch()
    torch.manual_seed(1)
    terms, context = model.loss_terms(batch)
    assert set(terms) == V3_TERMS
    for name, value in terms.items():
        assert value.ndim == 0 and torch.isfinite(value), name
    # the batch has something to rank for both ranking losses
    assert terms["mask_rank_loss"] > 0 and terms["normal_rank_loss"] > 0
    # the prior terms are the loss functions on the step's depth, prior and K_inv
    depth = context.tgt_depth
    torch.testing.assert_close(terms["normal_matching_loss"],
                               normal_matching_loss(depth, batch["tgt_prior"], batch["K_inv"]))
    pairs = context.photo.pairs_tr
    assert len(pairs) == 2
    torch.testing.assert_close(context.confidence, dynamic_confidence(
        [p.depth_diff for p in pairs], [p.valid for p in pairs]))
    assert not context.confidence.requires_grad

    total = model.total_loss(terms)
    expected = (terms["photo_loss"] + 0.1 * terms["geometry_loss"]
                + 0.1 * terms["normal_matching_loss"] + 0.1 * terms["mask_rank_loss"]
                + 0.1 * terms["normal_rank_loss"])
    torch.testing.assert_close(total, expected)
    total.backward()
    for net in (model.depth_net, model.pose_net):
        grads = [p.grad for p in net.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)


def test_unchecked_unreliable_gives_unchecked_pixels_confidence_zero(model: SCDepthV3) -> None:
    batch = make_batch()
    torch.manual_seed(1)
    with torch.no_grad():
        _, public = model.loss_terms(batch)
    model.unchecked_confidence = 0.0
    try:
        torch.manual_seed(1)
        with torch.no_grad():
            _, zero = model.loss_terms(batch)
    finally:
        model.unchecked_confidence = 1.0
    pairs = public.photo.pairs_tr
    unchecked = sum(1 - p.valid.float() for p in pairs) / len(pairs)
    assert unchecked.sum() > 0  # the random warps leave some pixels unchecked
    # Each reference that cannot check a pixel adds 1/len(refs) to its default confidence.
    torch.testing.assert_close(public.confidence, zero.confidence + unchecked)


def test_unreliable_dynamic_share_counts_moving_pixels_among_the_unreliable(
        model: SCDepthV3, monkeypatch: pytest.MonkeyPatch) -> None:
    # The ranking takes pixels 0-3 of image 0 and 4-7 of image 1 as unreliable; the moving
    # object covers pixels 0-5 of both images: 4 + 2 of the 8 picks are on it.
    unreliable = torch.tensor([[0, 1, 2, 3], [4, 5, 6, 7]])
    monkeypatch.setattr(model.mask_ranking_loss, "forward", lambda *args: MaskRankingOutput(
        torch.zeros(()), unreliable))
    batch = make_batch()
    dynamic = torch.zeros(B, 1, H, W)
    dynamic.view(B, -1)[:, :6] = 1.0
    batch["tgt_dynamic"] = dynamic
    with torch.no_grad():
        _, context = model.loss_terms(batch)
    assert context.logs["unreliable_dynamic_share"].item() == pytest.approx(6 / 8)
    assert context.logs["dynamic_fraction"].item() == pytest.approx(6 / (H * W))
    del batch["tgt_dynamic"]  # real data without masks: no such figure
    with torch.no_grad():
        _, context = model.loss_terms(batch)
    assert set(context.logs) == {"valid_fraction", "confidence_mean"}


def test_prior_terms_alone_train_the_depth_net(model: SCDepthV3) -> None:
    """The three V3 terms by themselves send gradient into DepthNet (not only photo/geo)."""
    model.zero_grad()
    torch.manual_seed(2)
    terms, _ = model.loss_terms(make_batch())
    (terms["normal_matching_loss"] + terms["mask_rank_loss"]
     + terms["normal_rank_loss"]).backward()
    grads = [p.grad for p in model.depth_net.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    # PoseNet takes no part in them
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.pose_net.parameters())


def test_pair_sampling_follows_the_global_seed(model: SCDepthV3) -> None:
    batch = make_batch()
    with torch.no_grad():
        torch.manual_seed(3)
        first, _ = model.loss_terms(batch)
        torch.manual_seed(3)
        again, _ = model.loss_terms(batch)
        torch.manual_seed(4)
        other, _ = model.loss_terms(batch)
    for name in V3_TERMS:
        torch.testing.assert_close(first[name], again[name], rtol=0, atol=0)
    # a different seed draws other pairs (the depth, hence normal matching, is the same)
    assert first["mask_rank_loss"] != other["mask_rank_loss"]
    torch.testing.assert_close(first["normal_matching_loss"], other["normal_matching_loss"])


def test_a_batch_without_prior_is_a_clear_error(model: SCDepthV3) -> None:
    batch = make_batch()
    del batch["tgt_prior"]
    with pytest.raises(KeyError, match="tgt_prior"):
        model.loss_terms(batch)


@pytest.mark.slow  # a training run
def test_trains_through_train_py(tiny_dataset: Path, tmp_path: Path) -> None:
    assert train.main(tiny_train_args(tiny_dataset, tmp_path, "--model_version", "v3",
                                      "--exp_name", "v3", "--seed", "0",
                                      "--log_images_every_n_steps", "1")) == 0
    ckpt = tmp_path / "v3" / "version_0" / "last.ckpt"
    assert ckpt.is_file()
    # the synthetic scenes have moving-object masks: the ranking diagnostic is logged
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(ckpt.parent)).Reload()
    share = events.Scalars("train/unreliable_dynamic_share")
    assert share and all(0.0 <= s.value <= 1.0 for s in share)
    loaded = load_from_checkpoint(str(ckpt))
    assert type(loaded) is SCDepthV3
    assert "smooth_loss" not in loaded.loss_weights
